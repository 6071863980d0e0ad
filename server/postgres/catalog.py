"""pg_catalog emulation for clients (psql's backslash commands, drivers, BI tools).

DuckDB ships a partial ``pg_catalog`` in its read-only system catalog. What
clients need beyond it (``pg_roles``, ``pg_get_userbyid``, a ``pg_proc``
that lists the prediction functions, a PostgreSQL-style ``version()`` ...)
lives in a reserved in-memory database, ``quackml_pg``, attached once per
engine: never in the user's database file.

A statement reaches those objects through ``rewrite``: it walks the
statement's *tokens* (from ``server.sql.text``, never a regex over the text)
and, only where a token names an emulated object, splices a new qualifier
in; ``OPERATOR(pg_catalog.~)`` becomes ``~`` and ``COLLATE
pg_catalog.default`` is dropped (DuckDB has neither). Every other byte of
the statement is kept, and a statement that names nothing emulated is
returned unchanged (``None``), so user SQL reaches DuckDB as written.
"""

from __future__ import annotations

import threading

import duckdb
from sqlglot.tokens import Token, TokenType

from catalog.views import rows_of
from server.postgres import catalog_views, dump_catalog, functions, names, syntax
from server.protocol.types import (
    ARRAY_OF,
    ELEMENT_OF,
    Oid,
    pg_type_for_duckdb,
    pg_type_len,
    pg_type_name,
)
from server.sql.text import Statement, back_at_depth, closing_paren, in_from_list

SCHEMA = "quackml_pg"
PG_VERSION = "15.0"

# Client parameters the session keeps (PostgreSQL names, lower-cased) and
# their defaults; SHOW / current_setting() answer them.
CLIENT_PARAMS: dict[str, str] = {
    "application_name": "",
    "client_encoding": "UTF8",
    "client_min_messages": "notice",
    "datestyle": "ISO, MDY",
    "extra_float_digits": "1",
    "intervalstyle": "postgres",
    "lc_messages": "C",
    "lc_monetary": "C",
    "lc_numeric": "C",
    "lc_time": "C",
    "search_path": '"$user", public',
    "server_encoding": "UTF8",
    "server_version": PG_VERSION,
    "server_version_num": "150000",
    "standard_conforming_strings": "on",
    "statement_timeout": "0",
    "timezone": "UTC",
    "transaction_isolation": "serializable",
    "default_transaction_isolation": "serializable",
    "transaction_read_only": "off",
    "default_transaction_read_only": "off",
    "integer_datetimes": "on",
    "max_identifier_length": "63",
    "bytea_output": "hex",
    "is_superuser": "on",
    "lock_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "join_collapse_limit": "8",
    "geqo": "on",
    "jit": "off",
    "row_security": "on",
    # set by pg_dump, pg_restore and pgbench scripts; kept, with no effect on DuckDB
    "synchronize_seqscans": "on",
    "check_function_bodies": "on",
    "xmloption": "content",
    "default_tablespace": "",
    "default_table_access_method": "heap",
    "escape_string_warning": "on",
    "default_with_oids": "off",
    "quote_all_identifiers": "off",   # pg_dump --quote-all-identifiers
}
# Parameters reported to the client with ParameterStatus when they change.
REPORTED = {"application_name": "application_name", "client_encoding": "client_encoding",
            "datestyle": "DateStyle", "intervalstyle": "IntervalStyle",
            "timezone": "TimeZone", "standard_conforming_strings": "standard_conforming_strings",
            "is_superuser": "is_superuser"}
# Parameters whose values are fixed by the server: SET accepts only these.
FIXED = {"client_encoding": {"UTF8", "UNICODE", "UTF-8"},
         "server_encoding": {"UTF8"}, "server_version": {PG_VERSION},
         "server_version_num": {"150000"}, "standard_conforming_strings": {"ON"},
         "integer_datetimes": {"ON"}, "max_identifier_length": {"63"}}

# PostgreSQL's oids of its system catalogs (what 'pg_class'::regclass answers)
_CATALOG_OIDS = dump_catalog.CATALOG_OIDS

# A regproc value: PostgreSQL sends (and casts to text) the function's name and compares it
# with oids (typreceive != 0): a union of the two, sent as its member's text. The types' I/O
# functions (pg_type.typinput ...) hold their PostgreSQL names (int4recv, date_recv,
# array_recv: ADBC maps types by them), 'name'::regproc of them too.
REGPROC = "UNION(name VARCHAR, oid BIGINT)"
# types whose I/O functions are named without an underscore (int4in, not int4_in)
_OLD_IO_NAMES = ("bool", "bytea", "char", "name", "int8", "int2", "int2vector", "int4",
                 "regproc", "text", "oid", "float4", "float8", "unknown", "bpchar", "varchar")

# The emulated objects. Macros take the PostgreSQL argument lists clients use.
_MACROS: dict[str, str] = {
    "pg_get_userbyid": f"(role_oid) AS coalesce((SELECT first(rolname) FROM {SCHEMA}.pg_roles "
                       "WHERE oid = role_oid), 'quackml')",
    "pg_encoding_to_char": "(enc) AS 'UTF8'",
    "pg_char_to_encoding": "(name) AS 6",
    "version": f"() AS 'PostgreSQL {PG_VERSION} (QuackML, DuckDB ' || "
               "system.main.version() || ') on x86_64-pc-linux-gnu, 64-bit'",
    "obj_description": "(o) AS NULL::VARCHAR, (o, c) AS NULL::VARCHAR",
    "col_description": "(o, n) AS NULL::VARCHAR",
    "shobj_description": "(o, c) AS NULL::VARCHAR",
    "pg_get_function_result": "(fn_oid) AS (SELECT first(fn_p.quackml_result) FROM "
                              f"{SCHEMA}.pg_proc fn_p WHERE fn_p.oid = fn_oid)",
    "pg_get_function_arguments": "(fn_oid) AS (SELECT first(fn_p.quackml_arguments) FROM "
                                 f"{SCHEMA}.pg_proc fn_p WHERE fn_p.oid = fn_oid)",
    "pg_get_function_identity_arguments": "(fn_oid) AS (SELECT first(fn_p.quackml_arguments) FROM "
                                          f"{SCHEMA}.pg_proc fn_p WHERE fn_p.oid = fn_oid)",
    "pg_function_is_visible": "(fn_oid) AS true",
    "pg_table_is_visible": "(rel_oid) AS (SELECT bool_or(list_contains("
                           f"{SCHEMA}.quackml_current_schemas(true), rel_n.nspname)) "
                           f"FROM {SCHEMA}.pg_class rel_c "
                           f"JOIN {SCHEMA}.pg_namespace rel_n "
                           "ON rel_n.oid = rel_c.relnamespace WHERE rel_c.oid = rel_oid)",
    "array_to_string": "(arr, sep) AS list_aggr(arr, 'string_agg', sep)",
    "pg_type_is_visible": "(type_oid) AS true",
    "pg_get_indexdef": f"(idx) AS (SELECT first(indexdef) FROM {SCHEMA}.quackml_indexes "
                       "WHERE indexrelid = idx), "
                       "(idx, col, pretty) AS (SELECT first(indexdef) FROM "
                       f"{SCHEMA}.quackml_indexes WHERE indexrelid = idx)",
    "pg_get_statisticsobjdef_columns": "(o) AS NULL::VARCHAR",
    "pg_get_partkeydef": "(o) AS NULL::VARCHAR",
    "pg_get_triggerdef": "(o) AS NULL::VARCHAR, (o, pretty) AS NULL::VARCHAR",
    "pg_get_ruledef": "(o) AS NULL::VARCHAR, (o, pretty) AS NULL::VARCHAR",
    "pg_tablespace_location": "(o) AS ''",
    "pg_relation_is_publishable": "(o) AS false",
    # the view's query in PostgreSQL's SQL (server.postgres.dump_catalog.view_query)
    "pg_get_viewdef": f"(o) AS {dump_catalog.VIEWDEF.format(oid='o')}, "
                      f"(o, pretty) AS {dump_catalog.VIEWDEF.format(oid='o')}",
    # the sequence a column owns (server.postgres.ddl marks it in the sequence's comment)
    "pg_get_serial_sequence": "(t, c) AS (SELECT first(CASE WHEN s.database_name = 'temp' "
                              "THEN 'pg_temp' WHEN s.schema_name = 'main' THEN 'public' "
                              "ELSE s.schema_name END || '.' || CASE WHEN regexp_full_match("
                              "s.sequence_name, '[a-z_][a-z0-9_]*') THEN s.sequence_name ELSE "
                              "'\"' || replace(s.sequence_name, '\"', '\"\"') || '\"' END) "
                              "FROM duckdb_sequences() s WHERE s.database_name IN ("
                              "current_database(), 'temp') "
                              "AND s.comment LIKE '{\"quackml_owned_by\"%' "
                              "AND lower(json_extract_string(s.comment, '$.quackml_owned_by[0]'))"
                              " = lower(replace(string_split(t, '.')[-1], '\"', '')) "
                              "AND lower(json_extract_string(s.comment, '$.quackml_owned_by[1]'))"
                              " = lower(replace(c, '\"', '')) AND (len(string_split(t, '.')) = 1 "
                              "OR replace(string_split(t, '.')[1], '\"', '') "
                              "IN (s.schema_name, CASE WHEN s.schema_name = 'main' "
                              "THEN 'public' END)))",
    # over the int2vector (pg_index.indkey, '1 2') or int2[] (pg_constraint.conkey) JDBC
    # expands
    "_pg_expandarray": "(arr) AS unnest(list_transform(range(1, len("
                       "regexp_extract_all(arr::VARCHAR, '-?[0-9]+')) + 1), "
                       "lambda k: {'x': regexp_extract_all(arr::VARCHAR, '-?[0-9]+')[k]"
                       "::SMALLINT, 'n': k}))",
    "json_build_object": ", ".join(
        "({}) AS json_object({})".format(
            ", ".join(f"a{k}" for k in range(n)),
            ", ".join(f"a{k}::VARCHAR" if k % 2 == 0 else f"a{k}" for k in range(n)))
        for n in range(2, 17, 2)),
    "array_upper": "(arr, dim) AS CAST(len(arr) AS INTEGER)",
    "array_lower": "(arr, dim) AS CASE WHEN len(arr) > 0 THEN 1 END",
    "pg_postmaster_start_time": "() AS now()",
    "txid_current": "() AS 1",
    "pg_is_in_recovery": "() AS false",
    # sizes: an estimate, rows (DuckDB's estimate) times the columns' widths (16 bytes
    # for a variable-width one); 0 for anything but a table
    "pg_total_relation_size": f"(o) AS {SCHEMA}.pg_table_size(o)",
    "pg_relation_size": f"(o) AS {SCHEMA}.pg_table_size(o), "
                        f"(o, fork) AS {SCHEMA}.pg_table_size(o)",
    "pg_table_size": "(o) AS coalesce((SELECT first(sz_t.estimated_size) * (SELECT "
                     "sum(CASE WHEN sz_a.attlen > 0 THEN sz_a.attlen ELSE 16 END) "
                     "FROM pg_catalog.pg_attribute sz_a WHERE sz_a.attrelid = o) "
                     "FROM duckdb_tables() sz_t WHERE sz_t.table_oid = o), 0)::BIGINT",
    "pg_indexes_size": "(o) AS 0",
    # a client parameter, else DuckDB's own setting (operator_memory_limit, threads ...)
    # client parameters only: DuckDB's own settings (paths among them) are not shown
    # through it (superusers read duckdb_settings())
    "current_setting": "(n) AS getvariable('quackml_params')[lower(n)], "
                       "(n, missing_ok) AS getvariable('quackml_params')[lower(n)]",
    "pg_get_expr": "(node, rel) AS node::VARCHAR, (node, rel, pretty) AS node::VARCHAR",
    "set_config": "(name, value, is_local) AS value",
    "regtype_name": f"(o) AS {SCHEMA}.format_type(o, NULL)",
    # qualified when its schema is not on the search path, as PostgreSQL writes it
    "regclass_name": f"(o) AS (SELECT first(CASE WHEN list_contains("
                     f"{SCHEMA}.quackml_current_schemas(true), rel_n.nspname) THEN rel_c.relname "
                     "ELSE rel_n.nspname || '.' || rel_c.relname END) "
                     f"FROM {SCHEMA}.pg_class rel_c JOIN {SCHEMA}.pg_namespace rel_n "
                     "ON rel_n.oid = rel_c.relnamespace WHERE rel_c.oid = o)",
    # a relation of the user's, else a system catalog's (PostgreSQL's oids: drivers write
    # classoid = 'pg_class'::regclass)
    # ('16384'::regclass: that oid, as PostgreSQL reads a number)
    "to_regclass": f"(t) AS coalesce(TRY_CAST(t AS UINTEGER), "
                   f"(SELECT first(rel_c.oid) FROM {SCHEMA}.pg_class rel_c "
                   f"JOIN {SCHEMA}.pg_namespace rel_n ON rel_n.oid = rel_c.relnamespace "
                   "WHERE lower(rel_c.relname) = "
                   "lower(trim(string_split(replace(t, '\"', ''), '.')[-1])) "
                   "AND (len(string_split(t, '.')) = 1 "
                   "OR rel_n.nspname = lower(trim(string_split(replace(t, '\"', ''), '.')[1])))), "
                   "(SELECT first(rel_k.oid) FROM (VALUES "
                   + ", ".join(f"('{name}', {oid})" for name, oid in _CATALOG_OIDS.items())
                   + ") rel_k(name, oid) WHERE rel_k.name = lower(replace(replace(t, '\"', ''), "
                   "'pg_catalog.', ''))), "
                   # an oid as text ('16384'::regclass)
                   "TRY_CAST(t AS UINTEGER))::UINTEGER",
    # a type's I/O function (by its name), else a function of pg_proc (by its oid)
    "to_regproc": "(t) AS CASE WHEN EXISTS (SELECT 1 FROM "
                  f"{SCHEMA}.pg_type rp_t WHERE replace(t, 'pg_catalog.', '') IN "
                  "(rp_t.typinput::VARCHAR, rp_t.typoutput::VARCHAR, rp_t.typreceive::VARCHAR, "
                  "rp_t.typsend::VARCHAR)) "
                  f"THEN union_value(name := replace(t, 'pg_catalog.', ''))::{REGPROC} "
                  f"ELSE (SELECT first(union_value(oid := oid)::{REGPROC}) FROM {SCHEMA}.pg_proc "
                  "WHERE proname = t) END",
    "to_regnamespace": f"(t) AS (SELECT first(oid) FROM {SCHEMA}.pg_namespace "
                       "WHERE nspname = t)",
    # an oid (of pg_proc) or a regproc (pg_type.typinput ...: its name), 0 is '-'
    "regproc_name": f"(o) AS coalesce((SELECT first(proname) FROM {SCHEMA}.pg_proc "
                    "WHERE oid::VARCHAR = o::VARCHAR), CASE WHEN o::VARCHAR = '0' THEN '-' "
                    "ELSE o::VARCHAR END)",
    "regnamespace_name": f"(o) AS (SELECT first(nspname) FROM {SCHEMA}.pg_namespace "
                         "WHERE oid = o)",
}
_VIEWS: dict[str, str] = {
    "pg_roles": """
        SELECT CASE WHEN name = '{bootstrap}' THEN 10
                    ELSE (16384 + hash(name) % 1000000000) END::INTEGER AS oid,
               name AS rolname, superuser AS rolsuper, true AS rolinherit,
               superuser AS rolcreaterole, superuser AS rolcreatedb, can_login AS rolcanlogin,
               false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword,
               NULL::TIMESTAMPTZ AS rolvaliduntil, superuser AS rolbypassrls,
               NULL::VARCHAR[] AS rolconfig
        FROM {users}""",
    "pg_user": """
        SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS usecreatedb,
               rolsuper AS usesuper, false AS userepl, rolbypassrls AS usebypassrls,
               '********' AS passwd, NULL::TIMESTAMPTZ AS valuntil, NULL::VARCHAR[] AS useconfig
        FROM {schema}.pg_roles WHERE rolcanlogin""",
    "pg_authid": "SELECT * FROM quackml_pg.pg_roles",
    "pg_auth_members": """
        SELECT r.oid AS roleid, u.oid AS member, 10::INTEGER AS grantor,
               false AS admin_option
        FROM {role_members} m JOIN {schema}.pg_roles r ON r.rolname = m.role_name
             JOIN {schema}.pg_roles u ON u.rolname = m.member""",
    "pg_am": """
        -- amhandler is a regproc: the handler function's oid
        SELECT * FROM (VALUES (2::INTEGER, 'heap', 3::UINTEGER, 't'),
                              (403::INTEGER, 'btree', 330::UINTEGER, 'i'))
               t(oid, amname, amhandler, amtype)""",
    "pg_database": """
        SELECT d.database_oid::INTEGER AS oid, {database} AS datname, 10::INTEGER AS datdba,
               6 AS encoding, 'c' AS datlocprovider, true AS datallowconn, -1 AS datconnlimit,
               false AS datistemplate, 'C' AS datcollate, 'C' AS datctype,
               NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS datcollversion,
               NULL::VARCHAR[] AS datacl, 1663::INTEGER AS dattablespace,
               '0' AS datfrozenxid, '1' AS datminmxid
        FROM duckdb_databases() d
        WHERE d.database_name = system.main.current_database()""",
    "pg_proc": """
        SELECT f.function_oid::UINTEGER AS oid, f.function_name AS proname,
               coalesce(n.oid, 0)::UINTEGER AS pronamespace, 10::INTEGER AS proowner,
               13::INTEGER AS prolang, 1.0 AS procost, 0.0 AS prorows, 0 AS provariadic,
               CASE f.function_type WHEN 'aggregate' THEN 'a' WHEN 'table' THEN 'f'
                    WHEN 'table_macro' THEN 'f' ELSE 'f' END AS prokind,
               false AS prosecdef, false AS proleakproof, false AS proisstrict,
               f.function_type IN ('table', 'table_macro') AS proretset, 'v' AS provolatile,
               'u' AS proparallel, len(f.parameters)::SMALLINT AS pronargs,
               0::SMALLINT AS pronargdefaults, 0::UINTEGER AS prorettype,
               '' AS proargtypes, NULL::INTEGER[] AS proallargtypes,
               NULL::VARCHAR[] AS proargmodes,
               coalesce(m.argument_names, f.parameters) AS proargnames,
               NULL::VARCHAR AS proargdefaults, NULL::VARCHAR AS prosrc,
               NULL::VARCHAR AS probin, NULL::VARCHAR[] AS proconfig,
               NULL::VARCHAR[] AS proacl, f.function_type = 'aggregate' AS proisagg,
               CASE WHEN m.function_name IS NULL
                    THEN coalesce(lower(f.return_type), 'record')
                    -- a prediction function: its model's feature names, PostgreSQL's types
                    WHEN f.return_type LIKE 'STRUCT%' THEN 'record'
                    ELSE {pg_type_of_return} END AS quackml_result,
               CASE WHEN m.function_name IS NULL
                    THEN array_to_string(list_transform(
                             list_zip(f.parameters, coalesce(f.parameter_types, [])),
                             lambda x: x[1] || ' ' || lower(coalesce(x[2], 'any'))), ', ')
                    ELSE array_to_string(list_transform(
                             list_zip(m.argument_names, f.parameter_types),
                             lambda x: x[1] || ' ' || {pg_type_of_argument}), ', ')
                    END AS quackml_arguments
        FROM duckdb_functions() f
        LEFT JOIN (SELECT unnest({model_functions}(), recursive := true)) m
             ON f.database_name = 'system' AND f.extension_name IS NULL
             AND m.function_name = f.function_name
        LEFT JOIN pg_catalog.pg_namespace n
             ON n.nspname = coalesce({model_schema}, f.schema_name)
        WHERE (NOT f.internal AND f.database_name NOT IN ('system', 'temp', 'quackml_pg')
               AND f.schema_name NOT IN ('pg_catalog', 'information_schema'))
           OR m.function_name IS NOT NULL""",
    "pg_class": """
        SELECT c.* REPLACE (c.oid::UINTEGER AS oid, c.relnamespace::UINTEGER AS relnamespace,
                            c.reltype::UINTEGER AS reltype,
                            -- foreign keys are triggers in PostgreSQL (pg_dump reads
                            -- them for tables that have any)
                            c.oid IN (SELECT f.table_oid FROM duckdb_constraints() f
                                      WHERE f.constraint_type = 'FOREIGN KEY')
                            OR (n.nspname, c.relname) IN (
                                SELECT (f.schema_name, f.referenced_table)
                                FROM duckdb_constraints() f
                                WHERE f.constraint_type = 'FOREIGN KEY')
                                AS relhastriggers,
                            c.reloptions::VARCHAR[] AS reloptions,
                            'd' AS relreplident, a.acl AS relacl,
                            -- tables are heap tables (psql's \\dt+ "Access method"),
                            -- indexes btree ones
                            CASE c.relkind WHEN 'r' THEN 2 WHEN 'i' THEN 403
                                 ELSE c.relam END AS relam,
                            -- the owner the security catalog knows (the bootstrap's else)
                            coalesce(r.oid, 10) AS relowner),
               false AS relforcerowsecurity
        FROM pg_catalog.pg_class c
        -- the relations of the current database (as in PostgreSQL), not the emulation's
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN {relacl} a ON a.schema_name = n.nspname AND a.name = c.relname
        LEFT JOIN {owners} o ON o.database_name = system.main.current_database()
             AND o.schema_name = n.nspname AND o.name = c.relname
        LEFT JOIN {schema}.pg_roles r ON r.rolname = coalesce(o.owner, '{bootstrap}')
        -- the user's database only (never quackml_pg's views)
        WHERE c.relnamespace IN (SELECT oid FROM duckdb_schemas()
                                 WHERE database_name = system.main.current_database())
              AND NOT (c.relkind = 'v' AND c.relname IN ({emulation_views}))
        UNION ALL BY NAME
        SELECT i.indexrelid AS oid, i.relname, i.relnamespace, 'i' AS relkind,
               403::UINTEGER AS relam, 10 AS relowner, 'p' AS relpersistence,
               false AS relforcerowsecurity, false AS relrowsecurity, false AS relhasindex,
               false AS relispartition, 0 AS relchecks, false AS relhasrules,
               false AS relhastriggers, 0::UINTEGER AS reltype, 0 AS reloftype,
               0 AS reltablespace, 'd' AS relreplident
        FROM {schema}.quackml_indexes i WHERE i.indisconstraint""",
    # information_schema.table_privileges (reached through the rewrite): explicit grants,
    # and the owner's own privileges on objects that have any
    "table_privileges": """
        SELECT coalesce(o.owner, '{bootstrap}') AS grantor,
               CASE g.grantee_type WHEN 'public' THEN 'PUBLIC' ELSE g.grantee END AS grantee,
               g.database_name AS table_catalog, g.schema_name AS table_schema,
               g.name AS table_name, g.privilege AS privilege_type, 'NO' AS is_grantable,
               CASE g.privilege WHEN 'SELECT' THEN 'YES' ELSE 'NO' END AS with_hierarchy
        FROM {table_grants} g
        LEFT JOIN {owners} o ON o.database_name = g.database_name
             AND o.schema_name = g.schema_name AND o.name = g.name""",
    "quackml_indexes": """
        -- DuckDB's primary keys and unique constraints as PostgreSQL indexes
        SELECT (k.table_oid * 100 + k.constraint_index)::UINTEGER AS indexrelid,
               k.table_oid::UINTEGER AS indrelid, k.constraint_name AS relname,
               n.oid::UINTEGER AS relnamespace,
               list_transform(k.constraint_column_indexes, lambda x: (x + 1)::SMALLINT)
                   AS indkey,
               k.constraint_type = 'PRIMARY KEY' AS indisprimary,
               true AS indisunique, true AS indisconstraint,
               'CREATE UNIQUE INDEX ' || k.constraint_name || ' ON '
                   || {public_schema} || '.' || k.table_name || ' USING btree ('
                   || array_to_string(k.constraint_column_names, ', ') || ')' AS indexdef
        FROM duckdb_constraints() k
        JOIN pg_catalog.pg_namespace n ON n.nspname = k.schema_name
        WHERE k.constraint_type IN ('PRIMARY KEY', 'UNIQUE')
              AND k.database_name = system.main.current_database()
        UNION ALL BY NAME
        -- CREATE INDEX's indexes (DuckDB's pg_class has them already)
        SELECT x.index_oid::UINTEGER AS indexrelid, x.table_oid::UINTEGER AS indrelid,
               x.index_name AS relname, x.schema_oid::UINTEGER AS relnamespace,
               (SELECT list(c.column_index::SMALLINT
                            ORDER BY list_position(x.columns, c.column_name))
                FROM duckdb_columns() c
                WHERE c.table_oid = x.table_oid AND list_contains(x.columns, c.column_name))
                   AS indkey,
               x.is_primary AS indisprimary, x.is_unique AS indisunique,
               'CREATE ' || CASE WHEN x.is_unique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
                   || x.index_name || ' ON ' || {public_x_schema} || '.' || x.table_name
                   || ' USING btree (' || array_to_string(x.columns, ', ') || ')' AS indexdef,
               false AS indisconstraint
        FROM (SELECT *, list_transform(string_split(trim(expressions, '[]'), ', '),
                                       lambda e: trim(e, '"')) AS columns
              FROM duckdb_indexes()) x
        WHERE x.database_name = system.main.current_database()""",
    "pg_index": """
        SELECT i.indexrelid, i.indrelid, len(i.indkey)::SMALLINT AS indnatts,
               len(i.indkey)::SMALLINT AS indnkeyatts, i.indisunique,
               false AS indnullsnotdistinct, i.indisprimary, false AS indisexclusion,
               true AS indimmediate, false AS indisclustered, true AS indisvalid,
               false AS indcheckxmin, true AS indisready, true AS indislive,
               false AS indisreplident,
               -- int2vectors (server.protocol.types.VECTORS): sent as PostgreSQL writes
               -- them, '1 2' (pg_dump parses that), lists in SQL (unnest(indkey))
               list_transform(i.indkey, lambda x: union_value(int2vector := x::BIGINT)) AS indkey,
               NULL::UINTEGER[] AS indcollation, NULL::UINTEGER[] AS indclass,
               -- ascending, nulls last, per column
               list_transform(i.indkey, lambda x: union_value(int2vector := 0::BIGINT))
                   AS indoption,
               NULL::VARCHAR AS indexprs, NULL::VARCHAR AS indpred
        FROM {schema}.quackml_indexes i""",
    "pg_attribute": r"""
        SELECT a.* REPLACE (a.attrelid::UINTEGER AS attrelid, a.atttypid AS atttypid,
                            a.attcollation::UINTEGER AS attcollation, a.attlen AS attlen,
                            CASE WHEN a.attlen = -1 THEN 'x' ELSE 'p' END AS attstorage,
                            -1 AS attstattarget,
                            -- DuckDB writes precision * 1000 + scale; PostgreSQL's numeric
                            -- typmod is ((precision << 16) | scale) + 4
                            CASE WHEN a.atttypid IN (1700, 1231) AND a.atttypmod > 0
                                 THEN (((a.atttypmod // 1000) << 16) | (a.atttypmod % 1000)) + 4
                                 ELSE a.atttypmod END AS atttypmod)
        FROM (SELECT a.* REPLACE (t.atttypid AS atttypid, {type_len} AS attlen,
                                  -- numeric(p,s)[] too
                                  CASE WHEN c.data_type LIKE 'DECIMAL(%'
                                       THEN regexp_extract(c.data_type, 'DECIMAL\((\d+),',
                                                           1)::INTEGER * 1000 +
                                            regexp_extract(c.data_type, ',(\d+)\)', 1)::INTEGER
                                       ELSE a.atttypmod END AS atttypmod)
              FROM pg_catalog.pg_attribute a
              JOIN duckdb_columns() c ON c.table_oid = a.attrelid
                   AND c.column_index = a.attnum,
              -- the type the server sends the column's values as
              LATERAL (SELECT ({type_oid})::UINTEGER AS atttypid) t) a""",
    "pg_range": """
        SELECT NULL::UINTEGER AS rngtypid, NULL::UINTEGER AS rngsubtype,
               NULL::UINTEGER AS rngmultitypid, NULL::INTEGER AS rngcollation,
               NULL::INTEGER AS rngsubopc, NULL::VARCHAR AS rngcanonical,
               NULL::VARCHAR AS rngsubdiff WHERE false""",
    "pg_collation": """
        SELECT 100::UINTEGER AS oid, 'default' AS collname, 11::UINTEGER AS collnamespace,
               10::UINTEGER AS collowner, 'd' AS collprovider, true AS collisdeterministic,
               -1 AS collencoding, NULL::VARCHAR AS collcollate, NULL::VARCHAR AS collctype,
               NULL::VARCHAR AS colliculocale, NULL::VARCHAR AS collversion""",
    "pg_sequence": """
        SELECT s.sequence_oid::UINTEGER AS seqrelid, 20::UINTEGER AS seqtypid,
               s.start_value AS seqstart, s.increment_by AS seqincrement,
               s.max_value AS seqmax, s.min_value AS seqmin, 1::BIGINT AS seqcache,
               s.cycle AS seqcycle
        FROM duckdb_sequences() s WHERE s.database_name = current_database()""",
    "pg_inherits": """
        SELECT NULL::INTEGER AS inhrelid, NULL::INTEGER AS inhparent, NULL::INTEGER AS inhseqno,
               false AS inhdetachpending WHERE false""",
    "pg_policy": """
        SELECT NULL::INTEGER AS oid, NULL::VARCHAR AS polname, NULL::INTEGER AS polrelid,
               NULL::VARCHAR AS polcmd, NULL::BOOLEAN AS polpermissive,
               NULL::INTEGER[] AS polroles, NULL::VARCHAR AS polqual,
               NULL::VARCHAR AS polwithcheck WHERE false""",
    "pg_trigger": """
        SELECT NULL::INTEGER AS oid, NULL::INTEGER AS tgrelid, NULL::INTEGER AS tgparentid,
               NULL::VARCHAR AS tgname, NULL::INTEGER AS tgfoid, NULL::INTEGER AS tgtype,
               NULL::VARCHAR AS tgenabled, NULL::BOOLEAN AS tgisinternal WHERE false""",
    "pg_rewrite": """
        SELECT NULL::INTEGER AS oid, NULL::VARCHAR AS rulename, NULL::INTEGER AS ev_class,
               NULL::VARCHAR AS ev_type, NULL::VARCHAR AS ev_enabled,
               NULL::BOOLEAN AS is_instead WHERE false""",
    "pg_statistic_ext": """
        SELECT NULL::INTEGER AS oid, NULL::INTEGER AS stxrelid, NULL::VARCHAR AS stxname,
               NULL::INTEGER AS stxnamespace, NULL::INTEGER AS stxowner,
               NULL::INTEGER AS stxstattarget, NULL::VARCHAR AS stxkeys,
               NULL::VARCHAR[] AS stxkind, NULL::VARCHAR AS stxexprs WHERE false""",
    "pg_publication": """
        SELECT NULL::INTEGER AS oid, NULL::VARCHAR AS pubname, NULL::UINTEGER AS pubowner,
               NULL::BOOLEAN AS puballtables,
               NULL::BOOLEAN AS pubinsert, NULL::BOOLEAN AS pubupdate,
               NULL::BOOLEAN AS pubdelete, NULL::BOOLEAN AS pubtruncate,
               NULL::BOOLEAN AS pubviaroot WHERE false""",
    "pg_publication_rel": """
        SELECT NULL::INTEGER AS oid, NULL::INTEGER AS prpubid, NULL::INTEGER AS prrelid,
               NULL::VARCHAR AS prqual, NULL::SMALLINT[] AS prattrs WHERE false""",
    "pg_publication_namespace": """
        SELECT NULL::INTEGER AS oid, NULL::INTEGER AS pnpubid, NULL::INTEGER AS pnnspid
        WHERE false""",
    "pg_foreign_table": """
        SELECT NULL::INTEGER AS ftrelid, NULL::INTEGER AS ftserver,
               NULL::VARCHAR[] AS ftoptions WHERE false""",
    "pg_partitioned_table": """
        SELECT NULL::INTEGER AS partrelid, NULL::VARCHAR AS partstrat,
               NULL::UINTEGER[] AS partclass WHERE false""",
    "pg_extension": """
        SELECT 3079::UINTEGER AS tableoid, 13000::UINTEGER AS oid, 'plpgsql' AS extname,
               10::UINTEGER AS extowner, 11::UINTEGER AS extnamespace,
               false AS extrelocatable, '1.0' AS extversion, NULL::UINTEGER[] AS extconfig,
               NULL::VARCHAR[] AS extcondition""",
}

PG_CATALOG_OID = 11
_CATEGORY = {Oid.BOOL: "B", Oid.INT2: "N", Oid.INT4: "N", Oid.INT8: "N", Oid.FLOAT4: "N",
             Oid.FLOAT8: "N", Oid.NUMERIC: "N", Oid.OID: "N", Oid.REGPROC: "N",
             Oid.INT2VECTOR: "A",
             Oid.TEXT: "S", Oid.VARCHAR: "S", Oid.BPCHAR: "S", Oid.NAME: "S", Oid.CHAR: "S",
             Oid.DATE: "D", Oid.TIME: "D", Oid.TIMETZ: "D", Oid.TIMESTAMP: "D",
             Oid.TIMESTAMPTZ: "D", Oid.INTERVAL: "T", Oid.UNKNOWN: "X", Oid.RECORD: "P",
             Oid.VOID: "P"}


def _pg_type_rows() -> str:
    """pg_type rows for the PostgreSQL built-in types the server sends."""
    rows = []
    for oid in Oid:
        elem = ELEMENT_OF.get(oid, 0)
        array = next((a for a, e in ELEMENT_OF.items() if e == oid), 0)
        category = "A" if elem else _CATEGORY.get(oid, "U")
        typtype = "p" if oid in (Oid.RECORD, Oid.VOID) else "b"
        length = pg_type_len(oid)
        name = pg_type_name(oid)
        rows.append(f"({int(oid)}, '{name}', {length}, {str(0 < length <= 8).lower()}, "
                    f"'{typtype}', '{category}', {int(elem)}, {int(array)})")
    return ",\n".join(rows)


def _typprocs(typname: str, typelem: str) -> str:
    """typinput, typoutput, typreceive, typsend: regprocs with PostgreSQL's names
    (int4in, date_recv, array_send ...)."""
    old = ", ".join(f"'{name}'" for name in _OLD_IO_NAMES)
    prefix = (f"CASE WHEN {typelem} <> 0 THEN 'array_' WHEN {typname} IN ({old}) "
              f"THEN {typname} ELSE {typname} || '_' END")
    return ", ".join(f"union_value(name := {prefix} || '{suffix}')::{REGPROC} AS {column}"
                     for column, suffix in (("typinput", "in"), ("typoutput", "out"),
                                            ("typreceive", "recv"), ("typsend", "send")))

_VIEWS["pg_type"] = f"""
    SELECT t.oid::UINTEGER AS oid, t.typname, {PG_CATALOG_OID}::UINTEGER AS typnamespace,
           10::INTEGER AS typowner, t.typlen::SMALLINT AS typlen, t.typbyval, t.typtype,
           t.typcategory, false AS typispreferred, true AS typisdefined, ',' AS typdelim,
           0::UINTEGER AS typrelid, NULL::VARCHAR AS typsubscript,
           t.typelem::UINTEGER AS typelem, t.typarray::UINTEGER AS typarray,
           {_typprocs('t.typname', 't.typelem')}, 0::UINTEGER AS typmodin,
           0::UINTEGER AS typmodout, 0::UINTEGER AS typanalyze, 'i' AS typalign,
           CASE WHEN t.typlen = -1 THEN 'x' ELSE 'p' END AS typstorage, false AS typnotnull,
           0::UINTEGER AS typbasetype, -1 AS typtypmod, 0 AS typndims, 0::INTEGER AS typcollation,
           NULL::VARCHAR AS typdefaultbin, NULL::VARCHAR AS typdefault,
           NULL::VARCHAR[] AS typacl
    FROM (VALUES {_pg_type_rows()})
         t(oid, typname, typlen, typbyval, typtype, typcategory, typelem, typarray)
    UNION ALL
    -- DuckDB's own types (and the user's: QuackML dumps none) belong to pg_catalog
    SELECT d.oid::UINTEGER, d.typname, {PG_CATALOG_OID}::UINTEGER,
           10::INTEGER, d.typlen::SMALLINT, d.typbyval, d.typtype, d.typcategory, false, true,
           ',', 0::UINTEGER, NULL::VARCHAR, 0::UINTEGER, 0::UINTEGER, {_typprocs('d.typname', '0')},
           0, 0, 0, 'i',
           'p', false, 0::UINTEGER, -1, 0, 0::INTEGER, NULL, NULL, NULL
    FROM pg_catalog.pg_type d
    WHERE d.oid IS NOT NULL AND d.oid NOT IN ({', '.join(str(int(o)) for o in Oid)})"""
_SQL_NAMES = {Oid.BOOL: "boolean", Oid.INT2: "smallint", Oid.INT4: "integer",
              Oid.INT8: "bigint", Oid.FLOAT4: "real", Oid.FLOAT8: "double precision",
              Oid.VARCHAR: "character varying", Oid.BPCHAR: "character",
              Oid.TIME: "time without time zone", Oid.TIMETZ: "time with time zone",
              Oid.TIMESTAMP: "timestamp without time zone",
              Oid.TIMESTAMPTZ: "timestamp with time zone", Oid.CHAR: '"char"'}


def _format_type_body() -> str:
    """format_type(type_oid, typmod) with PostgreSQL's names (SQLAlchemy maps them)."""
    cases = []
    for oid in Oid:
        elem = ELEMENT_OF.get(oid)
        base = elem if elem is not None else oid
        name = _SQL_NAMES.get(Oid(base), pg_type_name(base))
        if base == Oid.NUMERIC:
            name_sql = ("CASE WHEN typmod >= 4 THEN 'numeric(' || ((typmod - 4) >> 16) || ',' "
                        "|| ((typmod - 4) & 65535) || ')' ELSE 'numeric' END")
        else:
            name_sql = f"'{name}'"
        suffix = " || '[]'" if elem else ""
        cases.append(f"WHEN {int(oid)} THEN {name_sql}{suffix}")
    return (f"(type_oid, typmod) AS CASE type_oid {' '.join(cases)} ELSE "
            f"(SELECT first(typname) FROM {SCHEMA}.pg_type WHERE oid = type_oid) END")


_MACROS["format_type"] = _format_type_body()

# DuckDB's type names (typeof(), without type modifiers) whose PostgreSQL type
# pg_typeof() names
_TYPEOF_NAMES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "VARCHAR",
                 "BLOB", "DATE", "TIME", "TIME WITH TIME ZONE", "TIMESTAMP",
                 "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
                 "INTERVAL", "UUID", "JSON", '"NULL"', "STRUCT")


def _pg_typeof_body() -> str:
    """pg_typeof(x): PostgreSQL's name of x's type (``numeric``, not ``decimal(2,1)``;
    ``text``, not ``varchar``); sent as regtype (server.postgres.exprtypes). A type
    PostgreSQL has no counterpart of keeps DuckDB's name."""
    cases = []
    for name in _TYPEOF_NAMES:
        oid = {'"NULL"': int(Oid.UNKNOWN), "STRUCT": int(Oid.RECORD)}.get(
            name, pg_type_for_duckdb(name))
        cases.append(f"WHEN '{name}' THEN {oid}")
        if oid in ARRAY_OF:
            cases.append(f"WHEN '{name}[]' THEN {int(ARRAY_OF[oid])}")
    base = r"regexp_replace(typeof(x), '\([^)]*\)', '', 'g')"
    return (f"(x) AS coalesce({SCHEMA}.format_type(CASE {base} {' '.join(cases)} END, NULL), "
            "lower(typeof(x)))")


_MACROS["pg_typeof"] = _pg_typeof_body()


def _add_reg_casts() -> None:
    """'name'::regclass (and regtype, regproc, regnamespace): the oid, else PostgreSQL's
    error (42P01, 42704, 42883, 3F000); to_regclass() and friends answer NULL."""
    _MACROS["to_regtype"] = (f"(t) AS (SELECT first(oid) FROM {SCHEMA}.pg_type "
                             f"WHERE typname = lower(t) OR {SCHEMA}.format_type(oid, NULL) "
                             "= lower(t))")
    undefined = {"regclass": "relation", "regtype": "type", "regproc": "function",
                 "regnamespace": "schema"}
    for reg, what in undefined.items():
        _MACROS[f"{reg}_oid"] = (f"(t) AS CASE WHEN {SCHEMA}.to_{reg}(t) IS NULL "
                                 f"THEN {catalog_views.UNDEFINED}('{what}', t) "
                                 f"ELSE {SCHEMA}.to_{reg}(t) END")


_add_reg_casts()

_VIEWS["pg_namespace"] = f"""
    SELECT oid::UINTEGER AS oid, {names.schema_sql('nspname')} AS nspname,
           10::INTEGER AS nspowner,
           NULL::VARCHAR[] AS nspacl FROM pg_catalog.pg_namespace
    UNION ALL SELECT {PG_CATALOG_OID}, 'pg_catalog', 10, NULL"""


def _add_names_objects() -> None:
    """server.postgres.catalog_views' objects (public, database names, tools' catalog)."""
    for name in set(catalog_views.VIEWS) & set(_VIEWS):
        raise AssertionError(f"{name} is emulated twice")
    _VIEWS.update(catalog_views.VIEWS)
    _MACROS.update(catalog_views.MACROS)


_add_names_objects()

# what pg_dump reads besides (server/postgres/dump_catalog.py): the names no one else
# emulates
_VIEWS.update({k: v for k, v in dump_catalog.VIEWS.items() if k not in _VIEWS})
_MACROS.update({k: v for k, v in dump_catalog.MACROS.items() if k not in _MACROS})

# Names the rewrite qualifies; macros may be called unqualified, views only
# through pg_catalog or unqualified right after FROM / JOIN.
FUNCTIONS = frozenset(_MACROS) | frozenset(catalog_views.RENAMED) | functions.NAMES
# reached as information_schema.name only: DuckDB's information_schema lacks them
INFORMATION_SCHEMA = frozenset({"table_privileges"}) | catalog_views.INFORMATION_SCHEMA
RELATIONS = frozenset(_VIEWS) - INFORMATION_SCHEMA
_CASTS = {"regclass": "UINTEGER", "regtype": "UINTEGER", "regproc": "UINTEGER",
          "regprocedure": "UINTEGER", "regnamespace": "UINTEGER", "regrole": "UINTEGER",
          "oid": "UINTEGER", "name": "VARCHAR", "char": "VARCHAR", "\"char\"": "VARCHAR"}
_REG_TYPES = {"regclass", "regtype", "regproc", "regnamespace"}
_TRIGGERS = FUNCTIONS | RELATIONS | set(_CASTS) | set(catalog_views.BARE) | syntax.TRIGGERS | {
    "pg_catalog", "information_schema", "operator", "collate", "only"}

_lock = threading.Lock()


def install(con: duckdb.DuckDBPyConnection, bootstrap: str) -> None:
    """Attach ``quackml_pg`` and create the emulated objects (once per database)."""
    with _lock:
        present = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = ? "
                              "AND view_name = 'quackml_installed'", [SCHEMA]).fetchall()
        if present[0][0]:
            return
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SCHEMA}")
        dump_catalog.register(con)
        models = rows_of("quackml_ml_models")
        # views that others read first
        first = ("quackml_indexes", "pg_roles")
        for name in sorted(_VIEWS, key=lambda v: v not in first):
            body = _VIEWS[name].replace("{models}", models)
            body = body.replace("{users}", rows_of("quackml_roles"))
            body = body.replace("{role_members}", rows_of("quackml_role_members"))
            body = body.replace("{relacl}", rows_of("quackml_relacl"))
            body = body.replace("{table_grants}", rows_of("quackml_table_grants"))
            body = body.replace("{owners}", rows_of("quackml_owners"))
            body = body.replace("{bootstrap}", bootstrap.replace("'", "''"))
            body = body.replace("{schema}", SCHEMA)
            body = body.replace("{database}", names.DATABASE_SQL)
            body = body.replace("{model_functions}", catalog_views.MODEL_FUNCTIONS)
            body = body.replace("{model_schema}", "CASE WHEN lower(m.schema_name) = "
                                f"'{names.PUBLIC}' THEN '{names.DUCKDB_SCHEMA}' "
                                "ELSE m.schema_name END")
            body = body.replace("{pg_type_of_return}",
                                catalog_views.pg_type_sql("f.return_type"))
            body = body.replace("{pg_type_of_argument}", catalog_views.pg_type_sql("x[2]"))
            body = body.replace("{public_schema}", names.schema_sql("k.schema_name"))
            body = body.replace("{public_x_schema}", names.schema_sql("x.schema_name"))
            body = body.replace("{emulation_views}", ", ".join(
                f"'{v}'" for v in dump_catalog.EMULATION_VIEWS))
            body = body.replace("{type_len}", dump_catalog.type_len_sql("t.atttypid"))
            body = body.replace("{type_oid}", dump_catalog.type_oid_sql("c.data_type"))
            body = dump_catalog.with_tableoid(name, body)
            con.execute(f"CREATE OR REPLACE VIEW {SCHEMA}.main.{name} AS {body}")
        # a macro binds the macros it calls: each after those (in rounds)
        pending = list(_MACROS.items())
        while pending:
            failed: list[tuple[str, str]] = []
            for name, body in pending:
                try:
                    con.execute(f"CREATE OR REPLACE MACRO {SCHEMA}.main.{name}{body}")
                except duckdb.CatalogException:
                    failed.append((name, body))
            if len(failed) == len(pending):
                name, body = failed[0]
                con.execute(f"CREATE OR REPLACE MACRO {SCHEMA}.main.{name}{body}")   # raises
            pending = failed
        dump_catalog.create_table_macros(con, SCHEMA)
        # last: its presence marks the installation complete
        con.execute(f"CREATE OR REPLACE VIEW {SCHEMA}.main.quackml_installed AS SELECT 1 AS x")


def rewrite(stmt: Statement, context: names.Names | None = None) -> str | None:
    """The statement's text with emulated catalog names qualified (and, given the
    session's ``context``, PostgreSQL's names made DuckDB's: ``server.postgres.names``),
    or None when it names nothing emulated (the usual case)."""
    tokens = stmt.tokens
    extra = context.triggers if context is not None else frozenset()
    if not _triggered(tokens, extra):
        return None
    # (start, end inclusive, replacement), absolute
    edits: list[tuple[int, int, str]] = syntax.edits(tokens)
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        low = tok.text.lower()
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < n else None
        if low == "operator" and nxt is not None and nxt.token_type is TokenType.L_PAREN:
            # OPERATOR(pg_catalog.~) -> ~
            close = _find(tokens, i + 2, TokenType.R_PAREN)
            if close is not None:
                op = tokens[close - 1]
                edits.append((tok.start, tokens[close].end, f" {op.text} "))
                i = close + 1
                continue
        if tok.token_type is TokenType.ONLY and prev is not None and \
                prev.text.upper() in ("FROM", "JOIN"):
            # FROM ONLY t -> FROM t (DuckDB has no inheritance: ONLY changes nothing)
            edits.append((tok.start, tok.end, ""))
            i += 1
            continue
        if low == "collate" and _qualified(tokens, i + 1):
            # COLLATE pg_catalog.default -> nothing
            edits.append((tok.start, tokens[i + 3].end, ""))
            i += 4
            continue
        if prev is not None and prev.token_type is TokenType.DCOLON:
            # casts: ::pg_catalog.text -> ::text, ::regclass -> ::INTEGER (oids are integers)
            qualified = _qualified(tokens, i)
            name_tok = tokens[i + 2] if qualified else tok
            target = name_tok.text.lower()
            cast = _CASTS.get(target)
            end = i + 3 if qualified else i + 1
            operand = _operand_start(tokens, i - 2)
            if target in _REG_TYPES and operand is not None:
                # x::regtype::text -> the type's name; 'name'::regclass -> its oid
                as_text = end + 1 < n and tokens[end].token_type is TokenType.DCOLON and \
                    tokens[end + 1].text.lower() in ("text", "varchar", "name", "pg_catalog")
                kind = target.removeprefix("reg")
                if _is_parameter(tokens, operand):
                    operand -= 1
                # a name: a string literal or a parameter ('t'::regclass, $1::regclass)
                literal = tokens[operand].token_type is TokenType.STRING or \
                    _is_parameter(tokens, operand + 1)
                if as_text or literal:
                    # 'name'::regclass::text: the name of the oid of the name
                    fns = [f"{SCHEMA}.reg{kind}_{f}" for f, wanted in
                           (("name", as_text), ("oid", literal)) if wanted]
                    edits.append((tokens[operand].start, tokens[operand].start - 1,
                                  "".join(f"{fn}(" for fn in fns)))
                    edits.append((prev.start, name_tok.end, ")" * len(fns)))
                    i = end
                    continue
            if qualified or cast:
                edits.append((tok.start, name_tok.end, cast or name_tok.text))
                i = end
                continue
        start = i - 3 if _is_parameter(tokens, i - 2) else i - 2
        if low in _REG_TYPES and start >= 2 and prev is not None and prev.text.upper() == "AS" \
                and (tokens[i - 2].token_type is TokenType.STRING or start == i - 3) \
                and tokens[start - 1].token_type is TokenType.L_PAREN \
                and tokens[start - 2].text.upper() == "CAST" \
                and nxt is not None and nxt.token_type is TokenType.R_PAREN:
            # CAST('name' AS regclass), CAST($1 AS regclass) -> its oid, as 'name'::regclass
            edits.append((tokens[start - 2].start, tokens[start - 1].end,
                          f"{SCHEMA}.{low}_oid("))
            edits.append((tokens[i - 2].end + 1, tok.end, ""))
            i += 1
            continue
        if prev is not None and prev.text.upper() == "AS" and low in _CASTS and \
                nxt is not None and nxt.token_type is TokenType.R_PAREN and \
                _inside_cast(tokens, i):
            # CAST(x AS REGCLASS) -> CAST(x AS UINTEGER)
            edits.append((tok.start, tok.end, _CASTS[low]))
            i += 1
            continue
        if low == "information_schema" and nxt is not None and \
                nxt.token_type is TokenType.DOT and i + 2 < n and \
                tokens[i + 2].text.lower() in FUNCTIONS | INFORMATION_SCHEMA:
            # information_schema._pg_expandarray(...) -> quackml_pg._pg_expandarray(...),
            # information_schema.table_privileges -> quackml_pg.table_privileges
            edits.append((tok.start, tok.end, SCHEMA))
            i += 3
            continue
        if low == "pg_catalog" and _is_name(tok) and nxt is not None and \
                nxt.token_type is TokenType.DOT and i + 2 < n:
            target = tokens[i + 2].text.lower()
            call = i + 3 < n and tokens[i + 3].token_type is TokenType.L_PAREN
            column = i + 4 < n and tokens[i + 3].token_type is TokenType.DOT
            if column:
                # pg_catalog.pg_class.relname -> pg_class.relname (the FROM item's name)
                edits.append((tok.start, nxt.end, ""))
            elif target in catalog_views.RENAMED:
                edits.append((tok.start, tokens[i + 2].end,
                              f"{SCHEMA}.{catalog_views.RENAMED[target]}"))
            elif target in RELATIONS or target in FUNCTIONS:
                edits.append((tok.start, tok.end, SCHEMA))
            elif call:
                # a built-in function: DuckDB resolves it unqualified
                edits.append((tok.start, nxt.end, ""))
            i += 3
            continue
        if _is_name(tok) and (prev is None or prev.token_type is not TokenType.DOT) and \
                low in catalog_views.BARE and \
                (nxt is None or nxt.token_type not in (TokenType.L_PAREN, TokenType.DOT)) and \
                (prev is None or prev.text.upper() != "AS"):
            # SELECT current_schema, current_catalog: functions without parentheses
            name = f' AS "{low}"' if prev is not None and \
                prev.token_type in (TokenType.SELECT, TokenType.COMMA) and \
                (nxt is None or nxt.token_type in (TokenType.COMMA, TokenType.FROM)) else ""
            edits.append((tok.start, tok.end, f"{SCHEMA}.{catalog_views.BARE[low]}(){name}"))
            i += 1
            continue
        if _is_name(tok) and (prev is None or prev.token_type is not TokenType.DOT):
            distinct = low == "avg" and i + 2 < n and \
                tokens[i + 2].token_type is TokenType.DISTINCT
            window = _window_avg(stmt, i) if low == "avg" else None
            if window is not None:
                # avg(col) OVER w -> quackml_pg.quackml_pg_avg_window(col, sum(col) OVER w,
                # count(col) OVER w, avg(col) OVER w)
                edits.append((tok.start, tokens[i + 1].end,
                              f"{SCHEMA}.{functions.AVG_WINDOW}({window[1]}, sum("))
                edits.append((window[0], window[0] - 1, window[2]))
            elif low in FUNCTIONS and nxt is not None and nxt.token_type is TokenType.L_PAREN \
                    and not (low in functions.AGGREGATES and
                             _aggregate_clause(tokens, i + 1, distinct)):
                if distinct:
                    # avg(DISTINCT x) -> quackml_pg.quackml_pg_avg_distinct(x)
                    edits.append((tok.start, tokens[i + 2].end,
                                  f"{SCHEMA}.{functions.AVG_DISTINCT}("))
                else:
                    edits.append((tok.start, tok.end,
                                  f"{SCHEMA}.{catalog_views.RENAMED.get(low, tok.text)}"))
                close = closing_paren(tokens, i + 1)
                after = tokens[close + 1] if close is not None and close + 1 < n else None
                if close is not None and prev is not None and \
                        (prev.token_type in (TokenType.SELECT, TokenType.COMMA)) and \
                        (after is None or after.token_type in (TokenType.COMMA, TokenType.FROM)):
                    # keep PostgreSQL's column name for an unaliased call
                    # (its arguments are read on: 'x'::regclass in them too)
                    edits.append((tokens[close].start, tokens[close].end, f') AS "{low}"'))
            elif low in RELATIONS and prev is not None and \
                    (prev.text.upper() in ("FROM", "JOIN") or
                     (prev.token_type is TokenType.COMMA and in_from_list(tokens, i - 1))) and \
                    (nxt is None or nxt.token_type is not TokenType.DOT):
                edits.append((tok.start, tok.end, f"{SCHEMA}.{tok.text}"))
        i += 1
    if context is not None:
        taken = [(start, end) for start, end, _ in edits]
        edits.extend(e for e in names.edits(tokens, context)
                     if not any(e[0] <= end and start <= e[1] for start, end in taken))
    if not edits:
        return None
    sql_start = stmt.offset
    text = stmt.text
    out: list[str] = []
    pos = 0
    edits.sort(key=lambda e: (e[0], e[1]))
    for start, end, replacement in edits:
        out.append(text[pos:start - sql_start])
        out.append(replacement)
        pos = end + 1 - sql_start
    out.append(text[pos:])
    return "".join(out)


def _triggered(tokens: tuple[Token, ...], extra: frozenset[str]) -> bool:
    """Whether a token names something the rewrite changes (a word of ``_TRIGGERS`` or
    ``extra``, or a number with an exponent: syntax.py's numeric 1e3)."""
    for t in tokens:
        low = t.text.lower()
        if low in _TRIGGERS or low in extra or \
                ("e" in low and t.token_type is TokenType.NUMBER):
            return True
    return False


def _window_avg(stmt: Statement, i: int) -> tuple[int, str, str] | None:
    """For ``avg(col) OVER w`` at token i, ``col`` a column's (dotted) name: where the
    window ends, the column's text and what to insert there, ``, count(col) OVER w,
    avg(col) OVER w)``.
    None for any other call: a macro takes no OVER, and its overload is chosen by
    the column's type (the window aggregates' types are unknown to that choice, so
    an argument holding an aggregate could not be typed at all)."""
    tokens = stmt.tokens
    close = i + 3
    while close < len(tokens) and tokens[close].token_type is TokenType.DOT and \
            close + 1 < len(tokens) and _is_column_word(tokens[close + 1]):
        close += 2
    if close + 2 >= len(tokens) or tokens[i + 1].token_type is not TokenType.L_PAREN or \
            not _is_column_word(tokens[i + 2]) or \
            tokens[close].token_type is not TokenType.R_PAREN or \
            tokens[close + 1].token_type is not TokenType.OVER:
        return None
    end: int | None = close + 2
    if tokens[close + 2].token_type is TokenType.L_PAREN:
        end = closing_paren(tokens, close + 2)
    if end is None:
        return None

    def text(first: int, last: int) -> str:
        return stmt.text[tokens[first].start - stmt.offset:tokens[last].end + 1 - stmt.offset]

    column, over = text(i + 2, close - 1), text(close + 2, end)
    return tokens[end].end + 1, column, \
        f", count({column}) OVER {over}, avg({column}) OVER {over})"


def _is_column_word(tok: Token) -> bool:
    return tok.token_type is TokenType.VAR or \
        (tok.token_type is TokenType.IDENTIFIER and tok.text != "")


def _aggregate_clause(tokens: tuple[Token, ...], open_paren: int, distinct: bool = False
                      ) -> bool:
    """Whether the aggregate call whose parenthesis opens at ``open_paren`` has DISTINCT
    (unless ``distinct``: a macro of its own takes it), ALL or ORDER BY in it or FILTER
    or OVER after it (which a macro cannot take)."""
    close = closing_paren(tokens, open_paren)
    if close is None:
        return True
    first = tokens[open_paren + 1].token_type if open_paren + 1 < close else None
    if first is TokenType.ALL or (first is TokenType.DISTINCT and not distinct):
        return True
    if close + 1 < len(tokens) and tokens[close + 1].text.upper() in ("FILTER", "OVER"):
        return True
    depth = 0
    for tok in tokens[open_paren + 1:close]:
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif depth == 0 and tok.token_type is TokenType.ORDER_BY:
            return True
    return False


def _is_name(tok: Token) -> bool:
    return tok.token_type is not TokenType.STRING and tok.text.isidentifier()


def _is_parameter(tokens: tuple[Token, ...], j: int) -> bool:
    """Whether token j is the number of a $n parameter."""
    return j >= 1 and tokens[j].token_type is TokenType.NUMBER and \
        tokens[j - 1].token_type is TokenType.PARAMETER and tokens[j - 1].text == "$"


def _qualified(tokens: tuple[Token, ...], i: int) -> bool:
    return (i + 2 < len(tokens) and tokens[i].text.lower() == "pg_catalog"
            and tokens[i + 1].token_type is TokenType.DOT)


def _operand_start(tokens: tuple[Token, ...], j: int) -> int | None:
    """Start of the simple operand (a literal or a dotted name) ending at j."""
    if j < 0:
        return None
    if tokens[j].token_type in (TokenType.STRING, TokenType.NUMBER):
        return j
    if not _is_name(tokens[j]):
        return None
    while j >= 2 and tokens[j - 1].token_type is TokenType.DOT and _is_name(tokens[j - 2]):
        j -= 2
    return j


def _inside_cast(tokens: tuple[Token, ...], i: int) -> bool:
    """Whether token i sits directly in a CAST( ... ) call."""
    for j in back_at_depth(tokens, i):
        if tokens[j].token_type is TokenType.L_PAREN:
            return j > 0 and tokens[j - 1].text.upper() in ("CAST", "TRY_CAST")
    return False


def _find(tokens: tuple[Token, ...], i: int, kind: TokenType) -> int | None:
    for j in range(i, min(len(tokens), i + 6)):
        if tokens[j].token_type is kind:
            return j
    return None
