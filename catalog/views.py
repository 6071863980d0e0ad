"""The ML system views, as DuckDB views over the model catalog.

Created (or replaced) at start-up in the database's default schema, so
``SELECT * FROM svv_ml_model_info`` works from every session and the views
join and filter like tables:

- ``svv_ml_model_info``: database_name, schema_name, user_name, model_name,
  life_cycle, is_refreshable, model_state;
- ``stv_ml_model_info``: the same without database_name;
- ``svv_ml_model_privileges``: namespace_name, model_name, model_version,
  privilege_type, identity_id, identity_name, identity_type, admin_option.
  one row per EXECUTE grant (created by ``catalog.users.UserStore``; owners
  and superusers hold every privilege implicitly and are not listed).
"""

from __future__ import annotations

import duckdb

_MODEL_STATE = """CASE state WHEN 'READY' THEN 'Model is Ready'
                             WHEN 'TRAINING' THEN 'Training'
                             ELSE 'Failed' END"""


def create_views(con: duckdb.DuckDBPyConnection, qualified_models: str) -> None:
    """(Re)create the views over the catalog table ``qualified_models``."""
    # A view that names "db".quackml.models directly fails to bind when the database
    # itself is called quackml (catalog and schema names clash); query_table resolves
    # the qualified name when the view runs.
    models_table = "query_table('" + qualified_models.replace("'", "''") + "')"
    con.execute(f"""
        CREATE OR REPLACE VIEW svv_ml_model_info AS
        SELECT current_database() AS database_name, schema_name, owner AS user_name,
               model_name, 'ACTIVE' AS life_cycle, false AS is_refreshable,
               {_MODEL_STATE} AS model_state
        FROM {models_table}""")
    con.execute(f"""
        CREATE OR REPLACE VIEW stv_ml_model_info AS
        SELECT schema_name, owner AS user_name, model_name, 'ACTIVE' AS life_cycle,
               false AS is_refreshable, {_MODEL_STATE} AS model_state
        FROM {models_table}""")


def create_privileges_view(con: duckdb.DuckDBPyConnection, qualified_privileges: str,
                           qualified_models: str) -> None:
    """(Re)create ``svv_ml_model_privileges`` over the privilege table: one row per
    EXECUTE grant on a model (ALL is recorded as EXECUTE, the only model privilege)."""
    privileges = "query_table('" + qualified_privileges.replace("'", "''") + "')"
    models = "query_table('" + qualified_models.replace("'", "''") + "')"
    con.execute(f"""
        CREATE OR REPLACE VIEW svv_ml_model_privileges AS
        SELECT p.schema_name AS namespace_name, p.model_name, m.version AS model_version,
               p.privilege AS privilege_type, NULL::INTEGER AS identity_id,
               p.grantee AS identity_name, p.grantee_type AS identity_type,
               false AS admin_option
        FROM {privileges} p JOIN {models} m
          ON m.schema_name = p.schema_name AND m.model_name = p.model_name
        WHERE p.privilege = 'EXECUTE'""")
