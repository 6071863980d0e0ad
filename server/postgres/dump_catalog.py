"""The pg_catalog that pg_dump (15) reads, beyond what ``server.postgres.catalog`` emulates.

pg_dump asks the catalog for every kind of object PostgreSQL has. What QuackML
has is here as PostgreSQL lists it: ``pg_constraint`` (primary keys, unique,
check and foreign keys, with ``pg_get_constraintdef``), ``pg_attrdef``
(defaults), ``pg_depend`` (the order pg_dump needs: views after tables,
defaults after their sequences, sequences owned by columns; the models'
functions and macros internal, so never dumped), ``pg_description``
(comments), ``pg_settings`` (the session's PostgreSQL parameters),
``acldefault()``, and ``pg_get_viewdef``'s view query in PostgreSQL's SQL
(``view_query``). Every other catalog pg_dump reads (operators, casts,
text-search objects, foreign servers, event triggers, large objects ...) is an
empty view with PostgreSQL's columns, so that the dump contains nothing of them.

The objects are created by ``server.postgres.catalog.install`` in its reserved
``quackml_pg`` database and reached through its token rewrite, like the
others: ``VIEWS`` and ``MACROS`` fill the names it does not define itself,
and ``with_tableoid`` gives every emulated catalog its ``tableoid`` column
(PostgreSQL's system column: the oid of the catalog table, which pg_dump
reads to identify objects). docs/pg_dump.md says what a dump holds.
"""

from __future__ import annotations

import duckdb
import sqlglot
from sqlglot import exp

from catalog.views import VIEWS as SECURITY_VIEWS
from server.postgres.names import schema_sql
from server.protocol.types import Oid, pg_type_for_duckdb, pg_type_len

# The oids of PostgreSQL's catalog tables (``tableoid``; ``'pg_class'::regclass``).
CATALOG_OIDS: dict[str, int] = {
    "pg_am": 2601, "pg_attrdef": 2604, "pg_attribute": 1249, "pg_authid": 1260,
    "pg_auth_members": 1261, "pg_cast": 2605, "pg_class": 1259, "pg_collation": 3456,
    "pg_constraint": 2606, "pg_conversion": 2607, "pg_database": 1262,
    "pg_default_acl": 826, "pg_depend": 2608, "pg_description": 2609,
    "pg_event_trigger": 3466, "pg_extension": 3079, "pg_foreign_data_wrapper": 2328,
    "pg_foreign_server": 1417, "pg_foreign_table": 3118, "pg_index": 2610,
    "pg_inherits": 2611, "pg_init_privs": 3394, "pg_language": 2612,
    "pg_largeobject_metadata": 2995, "pg_namespace": 2615, "pg_opclass": 2616,
    "pg_operator": 2617, "pg_opfamily": 2753, "pg_partitioned_table": 3350,
    "pg_policy": 3256, "pg_proc": 1255, "pg_publication": 6104,
    "pg_publication_namespace": 6237, "pg_publication_rel": 6106, "pg_range": 3541,
    "pg_rewrite": 2618, "pg_sequence": 2224, "pg_statistic_ext": 3381,
    "pg_subscription": 6100, "pg_tablespace": 1213, "pg_transform": 3576,
    "pg_trigger": 2620, "pg_ts_config": 3602, "pg_ts_dict": 3600, "pg_ts_parser": 3601,
    "pg_ts_template": 3764, "pg_type": 1247, "pg_amop": 2602, "pg_amproc": 2603,
    "pg_seclabel": 3596, "pg_shseclabel": 3592, "pg_db_role_setting": 2964,
    "pg_shdescription": 2396, "pg_largeobject": 2613, "pg_user_mapping": 1418,
    "pg_aggregate": 2600, "pg_enum": 3501,
}

# Catalogs of objects QuackML does not have: PostgreSQL's columns (those clients
# read), no rows.
_EMPTY: dict[str, str] = {
    "pg_init_privs": "objoid UINTEGER, classoid UINTEGER, objsubid INTEGER, "
                     "privtype VARCHAR, initprivs VARCHAR[]",
    "pg_language": "oid UINTEGER, lanname VARCHAR, lanowner UINTEGER, lanispl BOOLEAN, "
                   "lanpltrusted BOOLEAN, lanplcallfoid UINTEGER, laninline UINTEGER, "
                   "lanvalidator UINTEGER, lanacl VARCHAR[]",
    "pg_operator": "oid UINTEGER, oprname VARCHAR, oprnamespace UINTEGER, oprowner UINTEGER, "
                   "oprkind VARCHAR, oprcanmerge BOOLEAN, oprcanhash BOOLEAN, "
                   "oprleft UINTEGER, oprright UINTEGER, oprresult UINTEGER, "
                   "oprcom UINTEGER, oprnegate UINTEGER, oprcode UINTEGER, "
                   "oprrest UINTEGER, oprjoin UINTEGER",
    "pg_opclass": "oid UINTEGER, opcmethod UINTEGER, opcname VARCHAR, "
                  "opcnamespace UINTEGER, opcowner UINTEGER, opcfamily UINTEGER, "
                  "opcintype UINTEGER, opcdefault BOOLEAN, opckeytype UINTEGER",
    "pg_opfamily": "oid UINTEGER, opfmethod UINTEGER, opfname VARCHAR, "
                   "opfnamespace UINTEGER, opfowner UINTEGER",
    "pg_amop": "oid UINTEGER, amopfamily UINTEGER",
    "pg_amproc": "oid UINTEGER, amprocfamily UINTEGER",
    "pg_ts_parser": "oid UINTEGER, prsname VARCHAR, prsnamespace UINTEGER, "
                    "prsstart UINTEGER, prstoken UINTEGER, prsend UINTEGER, "
                    "prsheadline UINTEGER, prslextype UINTEGER",
    "pg_ts_template": "oid UINTEGER, tmplname VARCHAR, tmplnamespace UINTEGER, "
                      "tmplinit UINTEGER, tmpllexize UINTEGER",
    "pg_ts_dict": "oid UINTEGER, dictname VARCHAR, dictnamespace UINTEGER, "
                  "dictowner UINTEGER, dicttemplate UINTEGER, dictinitoption VARCHAR",
    "pg_ts_config": "oid UINTEGER, cfgname VARCHAR, cfgnamespace UINTEGER, "
                    "cfgowner UINTEGER, cfgparser UINTEGER",
    "pg_foreign_data_wrapper": "oid UINTEGER, fdwname VARCHAR, fdwowner UINTEGER, "
                               "fdwhandler UINTEGER, fdwvalidator UINTEGER, "
                               "fdwacl VARCHAR[], fdwoptions VARCHAR[]",
    "pg_foreign_server": "oid UINTEGER, srvname VARCHAR, srvowner UINTEGER, srvfdw UINTEGER, "
                         "srvtype VARCHAR, srvversion VARCHAR, srvacl VARCHAR[], "
                         "srvoptions VARCHAR[]",
    "pg_default_acl": "oid UINTEGER, defaclrole UINTEGER, defaclnamespace UINTEGER, "
                      "defaclobjtype VARCHAR, defaclacl VARCHAR[]",
    "pg_conversion": "oid UINTEGER, conname VARCHAR, connamespace UINTEGER, "
                     "conowner UINTEGER, conforencoding INTEGER, contoencoding INTEGER, "
                     "conproc UINTEGER, condefault BOOLEAN",
    "pg_cast": "oid UINTEGER, castsource UINTEGER, casttarget UINTEGER, castfunc UINTEGER, "
               "castcontext VARCHAR, castmethod VARCHAR",
    "pg_transform": "oid UINTEGER, trftype UINTEGER, trflang UINTEGER, "
                    "trffromsql UINTEGER, trftosql UINTEGER",
    "pg_event_trigger": "oid UINTEGER, evtname VARCHAR, evtevent VARCHAR, evtowner UINTEGER, "
                        "evtfoid UINTEGER, evtenabled VARCHAR, evttags VARCHAR[]",
    "pg_subscription": "oid UINTEGER, subdbid UINTEGER, subskiplsn VARCHAR, "
                       "subname VARCHAR, subowner UINTEGER, subenabled BOOLEAN, "
                       "subbinary BOOLEAN, substream BOOLEAN, subtwophasestate VARCHAR, "
                       "subdisableonerr BOOLEAN, subconninfo VARCHAR, subslotname VARCHAR, "
                       "subsynccommit VARCHAR, subpublications VARCHAR[]",
    "pg_largeobject_metadata": "oid UINTEGER, lomowner UINTEGER, lomacl VARCHAR[]",
    "pg_seclabel": "objoid UINTEGER, classoid UINTEGER, objsubid INTEGER, "
                   "provider VARCHAR, label VARCHAR",
    "pg_seclabels": "objoid UINTEGER, classoid UINTEGER, objsubid INTEGER, "
                    "objtype VARCHAR, objnamespace UINTEGER, objname VARCHAR, "
                    "provider VARCHAR, label VARCHAR",
    "pg_shseclabel": "objoid UINTEGER, classoid UINTEGER, provider VARCHAR, label VARCHAR",
    "pg_db_role_setting": "setdatabase UINTEGER, setrole UINTEGER, setconfig VARCHAR[]",
}


def _empty(columns: str) -> str:
    parts = [c.strip().split(" ", 1) for c in columns.split(",")]
    return "SELECT " + ", ".join(f"NULL::{t} AS {n}" for n, t in parts) + " WHERE false"


VIEWS: dict[str, str] = {name: _empty(cols) for name, cols in _EMPTY.items()}

# Dependencies pg_dump follows:
# - functions outside pg_catalog (the models' prediction functions, DuckDB macros) are
#   internal ('i') to QuackML: PostgreSQL could not run them, pg_dump leaves them out;
# - a view comes after the tables of the database and the views made before it (DuckDB
#   binds a view when it is made, so what it reads existed then).
VIEWS["pg_depend"] = """
    SELECT 1255::UINTEGER AS classid, p.oid::UINTEGER AS objid, 0 AS objsubid,
           0::UINTEGER AS refclassid, 0::UINTEGER AS refobjid, 0 AS refobjsubid,
           'i' AS deptype
    FROM quackml_pg.pg_proc p WHERE p.pronamespace <> 11
    UNION ALL
    SELECT 1259, v.view_oid, 0, 1259, r.oid, 0, 'n'
    FROM duckdb_views() v
    JOIN (SELECT table_oid AS oid, false AS is_view FROM duckdb_tables()
          WHERE database_name = current_database()
          UNION ALL
          SELECT view_oid, true FROM duckdb_views()
          WHERE database_name = current_database() AND NOT internal) r
      ON NOT r.is_view OR r.oid < v.view_oid
    WHERE v.database_name = current_database() AND NOT v.internal
    UNION ALL
    -- a column default (pg_attrdef) after the sequence it takes values from
    SELECT 2604, (c.table_oid * 1000 + c.column_index)::UINTEGER, 0, 1259, q.sequence_oid,
           0, 'n'
    FROM duckdb_columns() c JOIN duckdb_sequences() q
      ON q.database_name = c.database_name
         AND c.column_default LIKE '%nextval(''%' || q.sequence_name || '''%'
    WHERE c.database_name = current_database()
    UNION ALL
    -- a sequence owned by a column (serial, identity, OWNED BY: server.postgres.ddl's
    -- marker in the sequence's comment): pg_dump writes ALTER SEQUENCE ... OWNED BY
    SELECT 1259, q.sequence_oid, 0, 1259, c.table_oid, c.column_index, 'a'
    FROM duckdb_sequences() q JOIN duckdb_columns() c
      ON c.database_name = q.database_name AND c.schema_name = q.schema_name
         AND c.table_name = json_extract_string(q.comment, '$.quackml_owned_by[0]')
         AND c.column_name = json_extract_string(q.comment, '$.quackml_owned_by[1]')
    WHERE q.database_name = current_database()
          AND q.comment LIKE '{"quackml_owned_by"%'"""

VIEWS["pg_tablespace"] = """
    SELECT * FROM (VALUES (1663::UINTEGER, 'pg_default', 10::UINTEGER),
                          (1664::UINTEGER, 'pg_global', 10::UINTEGER))
           t(oid, spcname, spcowner),
         LATERAL (SELECT NULL::VARCHAR[] AS spcacl, NULL::VARCHAR[] AS spcoptions)"""

# COMMENT ON of tables, views, sequences and columns (pg_dump writes them back)
VIEWS["pg_description"] = """
    SELECT table_oid::UINTEGER AS objoid, 1259::UINTEGER AS classoid, 0 AS objsubid,
           comment AS description
    FROM duckdb_tables() WHERE comment IS NOT NULL AND database_name = current_database()
    UNION ALL
    SELECT view_oid, 1259, 0, comment FROM duckdb_views()
    WHERE comment IS NOT NULL AND database_name = current_database() AND NOT internal
    UNION ALL
    SELECT sequence_oid, 1259, 0, comment FROM duckdb_sequences()
    WHERE comment IS NOT NULL AND database_name = current_database()
          AND comment NOT LIKE '{"quackml_owned_by"%'   -- server.postgres.ddl's marker
    UNION ALL
    SELECT table_oid, 1259, column_index, comment FROM duckdb_columns()
    WHERE comment IS NOT NULL AND database_name = current_database()"""

# PostgreSQL's parameters, as the session has them (SHOW, current_setting); DuckDB's
# own settings are not PostgreSQL's (superusers read them in duckdb_settings())
VIEWS["pg_settings"] = """
    SELECT p.key AS name, p.value AS setting, NULL::VARCHAR AS unit,
           'Client Connection Defaults' AS category, '' AS short_desc,
           NULL::VARCHAR AS extra_desc, 'user' AS context, 'string' AS vartype,
           'session' AS source, NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val,
           NULL::VARCHAR[] AS enumvals, p.value AS boot_val, p.value AS reset_val,
           NULL::VARCHAR AS sourcefile, NULL::INTEGER AS sourceline,
           false AS pending_restart
    FROM (SELECT unnest(map_entries(getvariable('quackml_params')), recursive := true)) p"""

# Column defaults (DuckDB's expressions, which pg_dump writes as DEFAULT clauses).
VIEWS["pg_attrdef"] = r"""
    SELECT (c.table_oid * 1000 + c.column_index)::UINTEGER AS oid,
           c.table_oid::UINTEGER AS adrelid, c.column_index::SMALLINT AS adnum,
           -- nextval('s') -> nextval('schema.s'::regclass): pg_dump's script runs with an
           -- empty search_path; schemas by the names clients see (main's: public)
           regexp_replace(regexp_replace(c.column_default, 'nextval\(''([^''.]+)''\)',
                                         'nextval(''' || n.nspname || '.\1''::regclass)',
                                         'g'),
                          'nextval\(''main[.]', 'nextval(''' || m.nspname || '.', 'g')
               AS adbin
    FROM duckdb_columns() c
    JOIN quackml_pg.pg_namespace n ON n.oid = c.schema_oid
    JOIN duckdb_schemas() s ON s.database_name = c.database_name AND s.schema_name = 'main'
    JOIN quackml_pg.pg_namespace m ON m.oid = s.oid
    WHERE c.column_default IS NOT NULL AND c.database_name = current_database()"""

def _keywords() -> str:
    """The keywords an identifier must be quoted for (all but the unreserved ones, as
    PostgreSQL's quote_ident; DuckDB's grammar is PostgreSQL's), as SQL literals."""
    with duckdb.connect() as con:
        rows = con.execute("SELECT keyword_name FROM duckdb_keywords() "
                           "WHERE keyword_category <> 'unreserved' ORDER BY 1").fetchall()
    return ", ".join(f"'{r[0]}'" for r in rows)


_KEYWORDS = _keywords()

# Primary keys, unique, check and not-null-free constraints, as PostgreSQL lists them;
# ``condef`` is what pg_get_constraintdef answers.
VIEWS["pg_constraint"] = """
    SELECT (k.table_oid * 1000 + k.constraint_index)::UINTEGER AS oid,
           CASE WHEN k.constraint_type = 'CHECK'
                THEN k.table_name || '_' || k.constraint_index || '_check'
                ELSE k.constraint_name END AS conname,
           k.schema_oid::UINTEGER AS connamespace,
           CASE k.constraint_type WHEN 'CHECK' THEN 'c' WHEN 'UNIQUE' THEN 'u'
                WHEN 'PRIMARY KEY' THEN 'p' WHEN 'FOREIGN KEY' THEN 'f' ELSE 'x' END
               AS contype,
           false AS condeferrable, false AS condeferred, true AS convalidated,
           k.table_oid::UINTEGER AS conrelid, 0::UINTEGER AS contypid,
           CASE WHEN k.constraint_type IN ('PRIMARY KEY', 'UNIQUE')
                THEN (k.table_oid * 100 + k.constraint_index)::UINTEGER
                ELSE 0::UINTEGER END AS conindid,
           0::UINTEGER AS conparentid, coalesce(r.table_oid, 0)::UINTEGER AS confrelid,
           true AS conislocal, 0 AS coninhcount, false AS connoinherit,
           list_transform(k.constraint_column_indexes, lambda x: (x + 1)::SMALLINT)
               AS conkey,
           CASE k.constraint_type
                WHEN 'PRIMARY KEY' THEN 'PRIMARY KEY (' || {columns} || ')'
                WHEN 'UNIQUE' THEN 'UNIQUE (' || {columns} || ')'
                WHEN 'CHECK' THEN 'CHECK (' || k.expression || ')'
                -- DuckDB's foreign keys stay in their table's schema (PostgreSQL's name
                -- of it, written when it is not on the search path, as PostgreSQL does)
                WHEN 'FOREIGN KEY' THEN 'FOREIGN KEY (' || {columns} || ') REFERENCES '
                    || array_to_string(list_transform(
                           CASE WHEN list_contains(
                                    CASE WHEN len(system.main.current_schemas(false)) = 0
                                         THEN ['main']
                                         ELSE system.main.current_schemas(false) END,
                                    k.schema_name)
                                THEN [k.referenced_table]
                                ELSE [{pg_schema}, k.referenced_table] END,
                           lambda c: {ident}), '.')
                    || '(' || array_to_string(list_transform(k.referenced_column_names,
                                                             lambda c: {ident}), ', ') || ')'
           END AS condef
    FROM duckdb_constraints() k
    LEFT JOIN duckdb_tables() r ON k.constraint_type = 'FOREIGN KEY'
         AND r.database_name = k.database_name AND r.schema_name = k.schema_name
         AND r.table_name = k.referenced_table
    WHERE k.database_name = current_database()
          AND k.constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'CHECK', 'FOREIGN KEY')""".replace(
    "{pg_schema}", schema_sql("k.schema_name")).replace(
    "{columns}", "array_to_string(list_transform(k.constraint_column_names, "
                 "lambda c: {ident}), ', ')").replace(
    "{ident}", "CASE WHEN regexp_full_match(c, '[a-z_][a-z0-9_]*') "
               f"AND NOT list_contains([{_KEYWORDS}], c) THEN c "
               "ELSE '\"' || replace(c, '\"', '\"\"') || '\"' END")

MACROS: dict[str, str] = {
    # the owner's privileges on a new object of a kind, as aclitem texts (QuackML's
    # table privileges are arwdD: pg_class.relacl)
    "acldefault": "(kind, owner) AS (SELECT list_transform(CASE kind "
                  "WHEN 'r' THEN ['{o}=arwdD/{o}'] WHEN 's' THEN ['{o}=rwU/{o}'] "
                  "WHEN 'n' THEN ['{o}=UC/{o}'] WHEN 'f' THEN ['=X/{o}', '{o}=X/{o}'] "
                  "WHEN 'T' THEN ['=U/{o}', '{o}=U/{o}'] "
                  "WHEN 'd' THEN ['=Tc/{o}', '{o}=CTc/{o}'] ELSE [] END, "
                  "lambda item: replace(item, '{o}', name)) "
                  "FROM (SELECT coalesce((SELECT first(rolname) FROM quackml_pg.pg_roles "
                  "WHERE oid = owner), '') AS name))",
    # (the argument is often the caller's bare `oid`: no column of that name in scope here)
    "pg_get_constraintdef": "(c) AS (SELECT first(k.condef) FROM (SELECT oid AS con_oid, "
                            "condef FROM quackml_pg.pg_constraint) k WHERE k.con_oid = c), "
                            "(c, pretty) AS (SELECT first(k.condef) FROM (SELECT oid AS "
                            "con_oid, condef FROM quackml_pg.pg_constraint) k "
                            "WHERE k.con_oid = c)",
    # no partitions: a relation is its own only ancestor (set-returning; in FROM, the
    # table macro of the same name, TABLE_MACROS)
    "pg_partition_ancestors": "(rel) AS unnest([quackml_pg.to_regclass(rel::VARCHAR)])",
    "pg_options_to_table": "(options) AS TABLE SELECT NULL::VARCHAR AS option_name, "
                           "NULL::VARCHAR AS option_value WHERE false",
}


def with_tableoid(name: str, body: str) -> str:
    """A catalog view's body with PostgreSQL's ``tableoid`` column added."""
    oid = CATALOG_OIDS.get(name)
    if oid is None or "tableoid" in body:
        return body
    return f"SELECT *, {oid}::UINTEGER AS tableoid FROM ({body}\n)"


#: relations of the user's database that are emulation objects, never dumped
EMULATION_VIEWS = SECURITY_VIEWS


# DuckDB's type names as duckdb_columns() writes them (without arguments or [])
_DUCKDB_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
                 "VARCHAR", "BLOB", "DATE", "TIME", "TIME WITH TIME ZONE", "TIMESTAMP",
                 "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
                 "INTERVAL", "UUID", "JSON", "BIGNUM", "VARINT", "BIT")


def _map(pairs: dict[str, int]) -> str:
    return "MAP {" + ", ".join(f"'{k}': {v}" for k, v in pairs.items()) + "}"


def type_oid_sql(data_type: str) -> str:
    """SQL: the PostgreSQL type oid of a column from its DuckDB type name (the oid the
    server sends its values as, ``server.protocol.types.pg_type_for_duckdb``)."""
    # a string column is character varying in the catalog (as DuckDB's own pg_attribute
    # and drivers' metadata have it), whatever type its values are sent as
    scalars = {t: pg_type_for_duckdb(t) for t in _DUCKDB_TYPES} | {"VARCHAR": int(Oid.VARCHAR)}
    arrays = {t: pg_type_for_duckdb(t + "[]") for t in _DUCKDB_TYPES}
    base = f"regexp_extract({data_type}, '^[A-Z_0-9 ]*[A-Z_0-9]')"
    return (f"CASE WHEN {data_type} LIKE '%]' "
            f"THEN coalesce({_map(arrays)}[{base}], {int(Oid.TEXT_ARRAY)}) "
            f"ELSE coalesce({_map(scalars)}[{base}], {int(Oid.TEXT)}) END")


def type_len_sql(type_oid: str) -> str:
    """SQL: pg_type.typlen of a type oid (as the emulated pg_type has it)."""
    return f"coalesce({_map({str(int(o)): pg_type_len(o) for o in Oid})}[{type_oid}::VARCHAR], -1)"


def _emulated_unqualified(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func) and \
            node.this.sql().lower() in ("quackml_pg", "quackml_pg.main"):
        inner: exp.Expression = node.args["expression"]
        return inner
    return node


def view_query(sql: str, schema: str, local: list[str], default: str) -> str:
    """pg_get_viewdef: the query of a DuckDB view (``duckdb_views().sql``) as PostgreSQL
    SQL; sqlglot turns DuckDB's dialect into PostgreSQL's. Relations are qualified as
    DuckDB resolves them (pg_dump's script runs with an empty search_path): an
    unqualified name is the view's schema's relation when ``local`` (the relations of
    that schema) has it, else the default schema's. A view with column names reads
    its query through them."""
    try:
        create = sqlglot.parse_one(sql, read="duckdb")
        query = create.expression
        if not isinstance(create, exp.Create) or not isinstance(query, exp.Query):
            return sql.rstrip()
        # the server's emulated functions (quackml_pg.f(...)) are PostgreSQL's own
        query = query.copy().transform(_emulated_unqualified)
        ctes = {cte.alias for cte in query.find_all(exp.CTE)}
        for table in query.find_all(exp.Table):
            if table.db or table.name in ctes or not isinstance(table.this, exp.Identifier):
                continue
            table.set("db", exp.to_identifier(schema if table.name in local else default))
        text = query.sql(dialect="postgres")
    except sqlglot.errors.SqlglotError:
        return sql.rstrip()
    target = create.this
    if isinstance(target, exp.Schema) and target.expressions:
        names = ", ".join(c.sql(dialect="postgres") for c in target.expressions)
        alias = exp.to_identifier(target.this.name).sql(dialect="postgres")
        text = f"SELECT * FROM ({text}) AS {alias}({names})"
    return text + ";"   # as PostgreSQL ends it (pg_dump cuts the last character)


# Set-returning functions called in FROM too: DuckDB keeps a table macro apart from the
# scalar one of the same name (MACROS). psql reads pg_partition_ancestors WITH
# ORDINALITY, which DuckDB does not add to a table macro: depth is that column.
TABLE_MACROS: dict[str, str] = {
    "pg_partition_ancestors": "(rel) AS TABLE SELECT quackml_pg.to_regclass(rel::VARCHAR) "
                              "AS relid, 1 AS depth",
}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions the emulated catalog calls (before it is made)."""
    con.create_function("quackml_view_query", view_query,
                        ["VARCHAR", "VARCHAR", "VARCHAR[]", "VARCHAR"], "VARCHAR")


def create_table_macros(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """TABLE_MACROS, made after the scalar macros they call."""
    for name, body in TABLE_MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {schema}.main.{name}{body}")


# pg_get_viewdef(view_oid): relations qualified with their schemas' names as clients see
# them (pg_namespace's)
VIEWDEF = """(SELECT first(quackml_view_query(v.sql,
                   (SELECT first(n.nspname) FROM quackml_pg.pg_namespace n
                    WHERE n.oid = v.schema_oid),
                   (SELECT list(t.table_name) FROM duckdb_tables() t
                    WHERE t.database_name = v.database_name AND t.schema_name = v.schema_name)
                   || (SELECT list(w.view_name) FROM duckdb_views() w
                       WHERE w.database_name = v.database_name
                             AND w.schema_name = v.schema_name),
                   (SELECT first(n.nspname) FROM quackml_pg.pg_namespace n
                    JOIN duckdb_schemas() s ON s.oid = n.oid
                    WHERE s.database_name = v.database_name
                          AND s.schema_name = current_schema())))
              FROM duckdb_views() v WHERE v.view_oid = {oid})"""
