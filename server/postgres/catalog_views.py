"""Catalog objects clients read, in PostgreSQL's names (see ``server.postgres.names``).

Views and macros created in ``quackml_pg`` next to ``server.postgres.catalog``'s:

- ``information_schema``'s ``tables``, ``columns``, ``schemata``, ``views``,
  ``table_constraints``, ``key_column_usage``: DuckDB's, limited to the user's
  database (never ``quackml_pg``, ``system``, ``temp`` or the ML views), with the
  client's database name, ``public`` for ``main`` and, in ``columns``,
  PostgreSQL's type names (``integer``, ``character varying``, ...);
- ``pg_tables``, ``pg_views``, ``pg_indexes``, ``pg_matviews`` (none: DuckDB has no
  materialized views), ``pg_opclass``, ``pg_language``, ``pg_seclabel``,
  ``pg_shseclabel``;
- ``pg_stat_activity``: the server's sessions (``server.postgres.activity``);
- ``current_schema()``, ``current_schemas(bool)``, ``current_database()``,
  ``pg_backend_pid()``.

The bodies use ``{schema}``, ``{owners}`` and ``{bootstrap}`` as server.postgres.catalog's do.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from catalog import errors
from catalog import views as ml_views
from catalog.files import EXPLAIN_TOP_SUFFIX, function_names
from catalog.store import ModelStore
from server.postgres.names import DATABASE_SQL, PID_VARIABLE, schema_sql
from server.protocol.types import Oid, pg_type_for_duckdb, pg_type_name

# DuckDB type names (information_schema.columns.data_type) -> PostgreSQL's SQL names
_SQL_NAMES = {Oid.BOOL: "boolean", Oid.INT2: "smallint", Oid.INT4: "integer",
              Oid.INT8: "bigint", Oid.FLOAT4: "real", Oid.FLOAT8: "double precision",
              Oid.VARCHAR: "character varying", Oid.BPCHAR: "character", Oid.TEXT: "text",
              Oid.TIME: "time without time zone", Oid.TIMETZ: "time with time zone",
              Oid.TIMESTAMP: "timestamp without time zone",
              Oid.TIMESTAMPTZ: "timestamp with time zone", Oid.NUMERIC: "numeric",
              Oid.DATE: "date", Oid.INTERVAL: "interval", Oid.BYTEA: "bytea",
              Oid.UUID: "uuid", Oid.JSON: "json"}
_DUCKDB_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT",
                 "DOUBLE", "VARCHAR", "BLOB", "DATE", "TIME", "TIMESTAMP",
                 "TIMESTAMP WITH TIME ZONE", "TIME WITH TIME ZONE", "INTERVAL", "UUID",
                 "JSON", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


def _type_case(expr: str, udt: bool, element: bool = False) -> str:
    """SQL: PostgreSQL's data_type (``udt``: udt_name) of the DuckDB type named by ``expr``."""
    whens = []
    for duck in _DUCKDB_TYPES:
        oid = Oid(pg_type_for_duckdb(duck))
        name = pg_type_name(oid) if udt else _SQL_NAMES.get(oid, pg_type_name(oid))
        whens.append(f"WHEN '{duck}' THEN '{name}'")
    if not udt:
        array, other = "'ARRAY'", "'USER-DEFINED'"
    elif element:
        array, other = "'_record'", f"lower({expr})"
    else:
        inner = _type_case(f"regexp_replace({expr}, '\\[\\d*\\]$', '')", True, True)
        array, other = f"'_' || {inner}", f"lower({expr})"
    return (f"CASE WHEN {expr} LIKE 'DECIMAL%' THEN 'numeric' WHEN {expr} LIKE '%]' "
            f"THEN {array} ELSE CASE {expr} {' '.join(whens)} ELSE {other} END END")


def pg_type_sql(expr: str) -> str:
    """SQL: PostgreSQL's name of the DuckDB type named by ``expr`` (``integer`` ...)."""
    return _type_case(expr, False)


_HIDDEN_VIEWS = ", ".join(f"'{v}'" for v in ml_views.VIEWS)


def _visible(catalog: str, schema: str | None = None, name: str | None = None) -> str:
    """SQL: the object is the user's: in DuckDB's database, not one of the ML views."""
    visible = f"{catalog} = system.main.current_database()"
    if schema is None or name is None:
        return visible
    return f"{visible} AND NOT ({schema} = 'main' AND {name} IN ({_HIDDEN_VIEWS}))"


def _information_schema(view: str, catalogs: tuple[str, ...], schemas: tuple[str, ...],
                        where: tuple[str, ...], exclude: str = "", extra: str = "") -> str:
    """DuckDB's information_schema view with the names PostgreSQL's says; ``where``:
    the catalog column (and schema and table name columns) that place its rows."""
    replaced = [f"{DATABASE_SQL} AS {c}" for c in catalogs]
    replaced += [f"{schema_sql('v.' + s)} AS {s}" for s in schemas]
    replaced += [extra] if extra else []
    return (f"SELECT v.* {exclude} REPLACE ({', '.join(replaced)}) "
            f"FROM system.information_schema.{view} v "
            f"WHERE {_visible(*('v.' + t for t in where))}")


_OWNER = "coalesce(o.owner, '{bootstrap}')"

VIEWS: dict[str, str] = {
    "tables": _information_schema(
        "tables", ("table_catalog",), ("table_schema",),
        ("table_catalog", "table_schema", "table_name"), 'EXCLUDE ("TABLE_COMMENT")'),
    "columns": _information_schema(
        "columns", ("table_catalog", "udt_catalog"), ("table_schema",),
        ("table_catalog", "table_schema", "table_name"), 'EXCLUDE ("COLUMN_COMMENT")',
        f"{_type_case('v.data_type', False)} AS data_type, "
        f"'pg_catalog' AS udt_schema, {_type_case('v.data_type', True)} AS udt_name"),
    "views": _information_schema(
        "views", ("table_catalog",), ("table_schema",),
        ("table_catalog", "table_schema", "table_name")),
    "table_constraints": _information_schema(
        "table_constraints", ("constraint_catalog", "table_catalog"),
        ("constraint_schema", "table_schema"),
        ("table_catalog", "table_schema", "table_name")),
    "key_column_usage": _information_schema(
        "key_column_usage", ("constraint_catalog", "table_catalog"),
        ("constraint_schema", "table_schema"),
        ("table_catalog", "table_schema", "table_name")),
    "constraint_column_usage": _information_schema(
        "constraint_column_usage", ("table_catalog", "constraint_catalog"),
        ("table_schema", "constraint_schema"),
        ("table_catalog", "table_schema", "table_name")),
    "constraint_table_usage": _information_schema(
        "constraint_table_usage", ("table_catalog", "constraint_catalog"),
        ("table_schema", "constraint_schema"),
        ("table_catalog", "table_schema", "table_name")),
    "referential_constraints": _information_schema(
        "referential_constraints", ("constraint_catalog", "unique_constraint_catalog"),
        ("constraint_schema", "unique_constraint_schema"), ("constraint_catalog",)),
    "check_constraints": _information_schema(
        "check_constraints", ("constraint_catalog",), ("constraint_schema",),
        ("constraint_catalog",)),
    "pg_indexes": f"""
        SELECT {schema_sql('s.schema_name')} AS schemaname, t.table_name AS tablename,
               i.relname AS indexname, NULL::VARCHAR AS tablespace, i.indexdef
        FROM {{schema}}.quackml_indexes i
        JOIN duckdb_tables() t ON t.table_oid = i.indrelid
        JOIN duckdb_schemas() s ON s.oid = i.relnamespace
        WHERE {_visible('t.database_name')}""",
    "schemata": f"""
        SELECT {DATABASE_SQL} AS catalog_name, {schema_sql('s.schema_name')} AS schema_name,
               {_OWNER} AS schema_owner, NULL::VARCHAR AS default_character_set_catalog,
               NULL::VARCHAR AS default_character_set_schema,
               NULL::VARCHAR AS default_character_set_name, NULL::VARCHAR AS sql_path
        FROM duckdb_schemas() s
        LEFT JOIN {{owners}} o ON o.database_name = s.database_name
             AND o.schema_name = s.schema_name AND o.name = ''
        WHERE s.database_name = system.main.current_database()
        UNION ALL
        SELECT {DATABASE_SQL}, name, '{{bootstrap}}', NULL, NULL, NULL, NULL
        FROM (VALUES ('pg_catalog'), ('information_schema')) t(name)""",
    "pg_tables": f"""
        SELECT {schema_sql('t.schema_name')} AS schemaname, t.table_name AS tablename,
               {_OWNER} AS tableowner, NULL::VARCHAR AS tablespace,
               t.index_count > 0 OR t.has_primary_key AS hasindexes, false AS hasrules,
               false AS hastriggers, false AS rowsecurity
        FROM duckdb_tables() t
        LEFT JOIN {{owners}} o ON o.database_name = t.database_name
             AND o.schema_name = t.schema_name AND o.name = t.table_name
        WHERE {_visible('t.database_name', 't.schema_name', 't.table_name')}""",
    "pg_views": f"""
        SELECT {schema_sql('v.schema_name')} AS schemaname, v.view_name AS viewname,
               {_OWNER} AS viewowner, v.sql AS definition
        FROM duckdb_views() v
        LEFT JOIN {{owners}} o ON o.database_name = v.database_name
             AND o.schema_name = v.schema_name AND o.name = v.view_name
        WHERE NOT v.internal
              AND {_visible('v.database_name', 'v.schema_name', 'v.view_name')}""",
    "pg_matviews": """
        SELECT NULL::VARCHAR AS schemaname, NULL::VARCHAR AS matviewname,
               NULL::VARCHAR AS matviewowner, NULL::VARCHAR AS tablespace,
               NULL::BOOLEAN AS hasindexes, NULL::BOOLEAN AS ispopulated,
               NULL::VARCHAR AS definition WHERE false""",
    "pg_opclass": """
        -- a default btree operator class per type, as PostgreSQL's <type>_ops
        SELECT (10000 + t.oid)::UINTEGER AS oid, 403::UINTEGER AS opcmethod,
               t.typname || '_ops' AS opcname, 11::UINTEGER AS opcnamespace,
               10::UINTEGER AS opcowner, (10000 + t.oid)::UINTEGER AS opcfamily,
               t.oid AS opcintype, true AS opcdefault, 0::UINTEGER AS opckeytype
        FROM {schema}.pg_type t WHERE t.typnamespace = 11 AND t.typcategory <> 'A'
              AND t.typtype = 'b'""",
    "pg_language": """
        SELECT oid::UINTEGER AS oid, lanname, 10::UINTEGER AS lanowner, lanispl,
               lanpltrusted, 0::UINTEGER AS lanplcallfoid, 0::UINTEGER AS laninline,
               0::UINTEGER AS lanvalidator, NULL::VARCHAR[] AS lanacl
        FROM (VALUES (12, 'internal', false, false), (13, 'c', false, false),
                     (14, 'sql', false, true), (13576, 'plpgsql', true, true))
             t(oid, lanname, lanispl, lanpltrusted)""",
    "pg_seclabel": """
        SELECT NULL::UINTEGER AS objoid, NULL::UINTEGER AS classoid,
               NULL::INTEGER AS objsubid, NULL::VARCHAR AS provider,
               NULL::VARCHAR AS label WHERE false""",
    "pg_shseclabel": """
        SELECT NULL::UINTEGER AS objoid, NULL::UINTEGER AS classoid,
               NULL::VARCHAR AS provider, NULL::VARCHAR AS label WHERE false""",
    "pg_stat_activity": """
        SELECT d.oid AS datid, a.datname, a.pid, NULL::INTEGER AS leader_pid,
               r.oid AS usesysid, a.usename, a.application_name,
               a.client_addr, NULL::VARCHAR AS client_hostname, a.client_port,
               a.backend_start, a.xact_start, a.query_start, a.state_change,
               NULL::VARCHAR AS wait_event_type, NULL::VARCHAR AS wait_event, a.state,
               NULL::VARCHAR AS backend_xid, NULL::VARCHAR AS backend_xmin,
               NULL::BIGINT AS query_id,
               -- others' statements: for superusers only, as pg_read_all_stats
               CASE WHEN a.usename = current_user OR coalesce((SELECT first(s.rolsuper)
                         FROM {schema}.pg_roles s WHERE s.rolname = current_user), false)
                    THEN a.query ELSE '<insufficient privilege>' END AS query,
               'client backend' AS backend_type
        FROM (SELECT unnest(quackml_activity(), recursive := true)) a
        LEFT JOIN {schema}.pg_roles r ON r.rolname = a.usename
        LEFT JOIN (SELECT first(oid) AS oid FROM {schema}.pg_database) d ON true""",
}

# Macros named as DuckDB's own functions would change what DuckDB's own pg_catalog
# views (bound in quackml_pg's search path) compute: these take other names, which
# the rewrite gives the client's calls.
RENAMED = {"current_database": "quackml_current_database",
           "current_schema": "quackml_current_schema",
           "current_schemas": "quackml_current_schemas"}

_SEARCH_PATH = ("list_transform(CASE WHEN len(system.main.current_schemas(false)) = 0 "
                "THEN ['main'] ELSE system.main.current_schemas(false) END, "
                f"lambda s: {schema_sql('s')})")

#: SQL's functions without parentheses (DuckDB's say main and its database's name)
BARE = {"current_schema": "quackml_current_schema",
        "current_catalog": "quackml_current_database"}

MACROS: dict[str, str] = {
    "quackml_current_database": f"() AS {DATABASE_SQL}",
    "quackml_current_schema": f"() AS {schema_sql('system.main.current_schema()')}",
    # the search path's schemas that exist (DuckDB's, or main when it has none set),
    # pg_catalog first when implicit ones are asked for
    "quackml_current_schemas": "(implicit) AS "
                               "(CASE WHEN implicit THEN ['pg_catalog'] ELSE [] END) || "
                               f"list_filter({_SEARCH_PATH}, lambda s, i: s <> 'pg_catalog' "
                               f"AND list_position({_SEARCH_PATH}, s) = i)",
    "pg_backend_pid": f"() AS getvariable('{PID_VARIABLE}')::INTEGER",
    # psql's \df+ (no function has an SQL-standard body)
    "pg_get_function_sqlbody": "(o) AS NULL::VARCHAR",
    # PostgreSQL's units (kB, MB ... with its rounding), not DuckDB's KiB, MiB
    "pg_size_pretty": "(b) AS CASE WHEN abs(b) < 10240 THEN b::BIGINT || ' bytes' "
                      + " ".join(f"WHEN abs(b::BIGINT >> {shift}) < 20479 THEN "
                                 f"((b::BIGINT >> {shift}) + 1) // 2 || ' {unit}'"
                                 for shift, unit in ((9, "kB"), (19, "MB"), (29, "GB"),
                                                     (39, "TB")))
                      + " ELSE ((b::BIGINT >> 49) + 1) // 2 || ' PB' END",
}

#: reached as information_schema.<name> only (DuckDB's own views have these names)
INFORMATION_SCHEMA = frozenset({"tables", "columns", "views", "schemata",
                                "table_constraints", "key_column_usage",
                                "constraint_column_usage", "constraint_table_usage",
                                "referential_constraints", "check_constraints"})

#: the function the reg* casts call for a name that names nothing (an error, as
#: PostgreSQL's casts raise; to_regclass() and friends answer NULL instead)
UNDEFINED = "quackml_undefined"
_UNDEFINED_ERRORS = {"relation": errors.UnknownRelation, "type": errors.UnknownType,
                     "function": errors.UnknownFunction, "schema": errors.UnknownSchema}


def _undefined(kind: str, name: str) -> int:
    raise _UNDEFINED_ERRORS[kind](f'{kind} "{name}" does not exist')


#: the prediction functions of the models (pg_proc's rows of them): function_name,
#: schema_name (the model's), argument_names (its features)
MODEL_FUNCTIONS = "quackml_model_functions"


def _model_functions(store: ModelStore) -> Callable[[], list[dict[str, object]]]:
    def rows() -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for record in store.all():
            argument_names = [c.name for c in record.features]
            classification = record.problem_type is not None and \
                record.problem_type.is_classification
            for name in function_names(record.function_name, classification):
                top = name == record.function_name + EXPLAIN_TOP_SUFFIX
                out.append({"function_name": name, "schema_name": record.schema_name,
                            "argument_names": [*argument_names, "k"] if top
                            else argument_names})
        return out
    return rows


def register_functions(con: duckdb.DuckDBPyConnection, store: ModelStore) -> None:
    con.create_function(UNDEFINED, _undefined, ["VARCHAR", "VARCHAR"],  # type: ignore[call-overload]
                        "UINTEGER", side_effects=True)
    struct = con.sqltype('STRUCT("function_name" VARCHAR, "schema_name" VARCHAR, '
                         '"argument_names" VARCHAR[])[]')
    con.create_function(MODEL_FUNCTIONS, _model_functions(store), [],  # type: ignore[call-overload]
                        struct, type="native", side_effects=True)
