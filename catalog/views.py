"""What SQL users see of the security catalog: read-only views served by the server.

The catalog lives in ``catalog.db`` (SQLite), which DuckDB cannot open. The
server registers four table-valued functions in DuckDB, each a Python
function that returns the rows of one catalog table *as the server reads
them*, limited to what any user may see (never verifiers, artifact paths or
checksums):

- ``quackml_ml_models()``: schema_name, model_name, owner, state, version, function_name;
- ``quackml_ml_model_versions()``: every version of every model (svv_ml_model_versions);
- ``quackml_roles()``: name, superuser, can_login;
- ``quackml_role_members()``: role_name, member;
- ``quackml_model_grants()``: privilege, schema_name, model_name, grantee, grantee_type;
- ``quackml_table_grants()``: database_name, schema_name, name, privilege, grantee,
  grantee_type (``information_schema.table_privileges``, ``pg_class.relacl``);
- ``quackml_owners()``: database_name, schema_name, name, kind, owner.

(Seven in all, with ``quackml_relacl()``: the aclitem lists of pg_class.relacl.)
They return a list of structs (DuckDB has no Python table functions); views
unnest it. Nothing writes through them: a view over a function result has no
table to write to. The rows are cached per catalog generation, so a query
pays for a catalog read only after a change.

Views (created or replaced at start-up in the database's default schema, so
``SELECT * FROM svv_ml_model_info`` works from every session and they join
and filter like tables):

- ``svv_ml_model_info``: database_name, schema_name, user_name, model_name,
  life_cycle, is_refreshable, model_state;
- ``stv_ml_model_info``: the same without database_name;
- ``svv_ml_model_privileges``: namespace_name, model_name, model_version,
  privilege_type, identity_id, identity_name, identity_type, admin_option:
  one row per EXECUTE grant (owners and superusers hold every privilege
  implicitly and are not listed);
- ``svv_ml_model_versions``: schema_name, model_name, version, state, active,
  created, created_by, training_rows, training_data_fingerprint (sha256 of the
  training snapshot), metric_name, validation_metric, learner, decision (how
  the version came to be active, or why not), champion_score and
  challenger_score (RETRAIN ONLY IF BETTER: both versions scored on the new
  version's holdout rows).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb

from catalog.acl import Acl
from catalog.store import ModelStore
from catalog.users import UserStore

# function name -> (DuckDB struct fields)
FUNCTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "quackml_ml_models": (("schema_name", "VARCHAR"), ("model_name", "VARCHAR"),
                          ("owner", "VARCHAR"), ("state", "VARCHAR"), ("version", "INTEGER"),
                          ("function_name", "VARCHAR")),
    "quackml_ml_model_versions": (
        ("schema_name", "VARCHAR"), ("model_name", "VARCHAR"), ("version", "INTEGER"),
        ("state", "VARCHAR"), ("active", "BOOLEAN"), ("created", "TIMESTAMPTZ"),
        ("created_by", "VARCHAR"), ("training_rows", "BIGINT"),
        ("training_data_fingerprint", "VARCHAR"), ("metric_name", "VARCHAR"),
        ("validation_metric", "DOUBLE"), ("learner", "VARCHAR"), ("decision", "VARCHAR"),
        ("champion_score", "DOUBLE"), ("challenger_score", "DOUBLE")),
    "quackml_roles": (("name", "VARCHAR"), ("superuser", "BOOLEAN"), ("can_login", "BOOLEAN")),
    "quackml_role_members": (("role_name", "VARCHAR"), ("member", "VARCHAR")),
    "quackml_model_grants": (("privilege", "VARCHAR"), ("schema_name", "VARCHAR"),
                             ("model_name", "VARCHAR"), ("grantee", "VARCHAR"),
                             ("grantee_type", "VARCHAR")),
    "quackml_table_grants": (("database_name", "VARCHAR"), ("schema_name", "VARCHAR"),
                             ("name", "VARCHAR"), ("privilege", "VARCHAR"),
                             ("grantee", "VARCHAR"), ("grantee_type", "VARCHAR")),
    "quackml_owners": (("database_name", "VARCHAR"), ("schema_name", "VARCHAR"),
                       ("name", "VARCHAR"), ("kind", "VARCHAR"), ("owner", "VARCHAR")),
    "quackml_relacl": (("database_name", "VARCHAR"), ("schema_name", "VARCHAR"),
                       ("name", "VARCHAR"), ("acl", "VARCHAR[]")),
}
# PostgreSQL's aclitem letters
# USAGE: a grant on a sequence (kept with the table grants)
_ACL_LETTERS = {"INSERT": "a", "SELECT": "r", "UPDATE": "w", "DELETE": "d", "TRUNCATE": "D",
                "USAGE": "U"}
VIEWS = ("svv_ml_model_info", "stv_ml_model_info", "svv_ml_model_privileges",
         "svv_ml_model_versions")

_MODEL_STATE = """CASE m.state WHEN 'READY' THEN 'Model is Ready'
                               WHEN 'TRAINING' THEN 'Training'
                               ELSE 'Failed' END"""


def rows_of(function: str) -> str:
    """A FROM item with the rows of one catalog function, columns as its struct fields."""
    return f"(SELECT unnest({function}(), recursive := true))"


class CatalogRows:
    """The rows each function returns, read from the stores once per catalog generation."""

    def __init__(self, models: ModelStore, users: UserStore, acl: Acl):
        self._models = models
        self._users = users
        self._acl = acl
        self._lock = threading.Lock()
        self._generation = -1
        self._rows: dict[str, list[dict[str, object]]] = {}

    def rows(self, function: str) -> list[dict[str, object]]:
        with self._lock:
            generation = self._models.db.generation
            if generation != self._generation:
                self._rows = self._read()
                self._generation = generation
            return self._rows[function]

    def _read(self) -> dict[str, list[dict[str, object]]]:
        return {
            "quackml_ml_models": [
                {"schema_name": r.schema_name, "model_name": r.model_name, "owner": r.owner,
                 "state": str(r.state), "version": r.version,
                 "function_name": r.function_name} for r in self._models.all()],
            "quackml_ml_model_versions": [
                {"schema_name": r.schema_name, "model_name": r.model_name,
                 "version": r.version, "state": str(r.state), "active": r.active,
                 "created": r.created_at, "created_by": r.created_by or r.owner,
                 "training_rows": r.rows_used, "training_data_fingerprint": r.fingerprint,
                 "metric_name": r.metric_name, "validation_metric": r.metric_value,
                 "learner": r.best_learner, "decision": r.decision,
                 "champion_score": r.champion_score, "challenger_score": r.challenger_score}
                for r in self._models.all_versions()],
            "quackml_roles": [{"name": u.name, "superuser": u.superuser,
                               "can_login": u.can_login} for u in self._users.all()],
            "quackml_role_members": [{"role_name": r, "member": m}
                                     for r, m in self._users.memberships()],
            "quackml_model_grants": [
                {"privilege": g.privilege, "schema_name": g.schema_name,
                 "model_name": g.model_name, "grantee": g.grantee,
                 "grantee_type": g.grantee_type} for g in self._users.grants()],
            "quackml_table_grants": [
                {"database_name": g.path[0], "schema_name": g.path[1], "name": g.path[2],
                 "privilege": g.privilege, "grantee": g.grantee,
                 "grantee_type": g.grantee_type} for g in self._acl.table_grants()],
            "quackml_relacl": self._relacl(),
            "quackml_owners": [
                {"database_name": p[0], "schema_name": p[1], "name": p[2], "kind": k,
                 "owner": o} for p, k, o in self._acl.owners()],
        }


    def _relacl(self) -> list[dict[str, object]]:
        """pg_class.relacl: ``grantee=letters/owner`` items (PUBLIC is an empty grantee),
        the owner's own first, for every table or view with a grant (NULL: defaults)."""
        granted: dict[tuple[str, str, str], dict[str, str]] = {}
        for g in self._acl.table_grants():
            who = "" if g.grantee_type == "public" else g.grantee
            letters = granted.setdefault(g.path, {})
            letters[who] = letters.get(who, "") + _ACL_LETTERS[g.privilege]
        out: list[dict[str, object]] = []
        for path, by_grantee in granted.items():
            owner = self._acl.owner(path)
            items = [f"{owner}=arwdD/{owner}"]
            for who, held in sorted(by_grantee.items()):
                ordered = "".join(c for c in "arwdDU" if c in held)
                items.append(f"{who}={ordered}/{owner}")
            out.append({"database_name": path[0], "schema_name": path[1], "name": path[2],
                        "acl": items})
        return out


def register_functions(con: duckdb.DuckDBPyConnection, rows: CatalogRows) -> None:
    """Register the catalog functions on the shared connection (visible to every cursor)."""
    for name, fields in FUNCTIONS.items():
        struct = ", ".join(f'"{f}" {t}' for f, t in fields)
        return_type = con.sqltype(f"STRUCT({struct})[]")

        # side_effects: read at every query, never folded into a plan
        con.create_function(name, _fetcher(rows, name), [], return_type,  # type: ignore[call-overload]
                            type="native", side_effects=True)


def _fetcher(rows: CatalogRows, name: str) -> Callable[[], list[dict[str, object]]]:
    def fetch() -> list[dict[str, object]]:
        return rows.rows(name)
    return fetch


def create_views(con: duckdb.DuckDBPyConnection,
                 database_sql: str = "current_database()") -> None:
    """(Re)create the ML views over the catalog functions; ``database_sql``: SQL for
    the database name they show (the server's: the one the client connected with)."""
    models = rows_of("quackml_ml_models")
    con.execute(f"""
        CREATE OR REPLACE VIEW svv_ml_model_info AS
        SELECT {database_sql} AS database_name, m.schema_name, m.owner AS user_name,
               m.model_name, 'ACTIVE' AS life_cycle, false AS is_refreshable,
               {_MODEL_STATE} AS model_state
        FROM {models} m""")
    con.execute(f"""
        CREATE OR REPLACE VIEW stv_ml_model_info AS
        SELECT m.schema_name, m.owner AS user_name, m.model_name, 'ACTIVE' AS life_cycle,
               false AS is_refreshable, {_MODEL_STATE} AS model_state
        FROM {models} m""")
    con.execute(f"""
        CREATE OR REPLACE VIEW svv_ml_model_privileges AS
        SELECT p.schema_name AS namespace_name, p.model_name, m.version AS model_version,
               p.privilege AS privilege_type, NULL::INTEGER AS identity_id,
               p.grantee AS identity_name, p.grantee_type AS identity_type,
               false AS admin_option
        FROM {rows_of("quackml_model_grants")} p JOIN {models} m
          ON m.schema_name = p.schema_name AND m.model_name = p.model_name
        WHERE p.privilege = 'EXECUTE'""")
    con.execute(f"""
        CREATE OR REPLACE VIEW svv_ml_model_versions AS
        SELECT v.schema_name, v.model_name, v.version, v.state, v.active, v.created,
               v.created_by, v.training_rows, v.training_data_fingerprint, v.metric_name,
               v.validation_metric, v.learner, v.decision, v.champion_score,
               v.challenger_score
        FROM {rows_of("quackml_ml_model_versions")} v""")
