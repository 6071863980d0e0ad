"""Attacks on the SQL guarantees of docs/security.md, as a non-superuser over a real
socket: files, server state, the security catalog, settings, model privileges,
nested statements, SQL-running functions, shadowing, current_user and paths.

Each denied route is asserted by its SQLSTATE; routes that DuckDB itself cannot
resolve any more (a catalog schema that no longer exists, a file name read as a
table name with external access off) fail with "does not exist" and are listed
apart, so a test never accepts "any error".
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.attack.target import (
    ADMIN,
    FUNCTION,
    MALLORY,
    MODEL,
    Target,
    sqlstate,
    target,  # noqa: F401  (the fixture)
)

F = FUNCTION


@pytest.fixture
def mallory(target: Target) -> Iterator[psycopg.Connection]:  # noqa: F811
    with target.mallory() as c:
        yield c


# -- files --------------------------------------------------------------------------------
def test_files_are_out_of_reach(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    db, io = target.database, target.file_dir
    (io / "data.csv").write_text("a,b\n1,2\n")
    denied = [
        f"SELECT * FROM read_blob('{db}')",               # DuckDB admits its own file...
        f"SELECT * FROM read_text('{db}.wal')",
        "SELECT * FROM read_text('/etc/passwd')",
        f"SELECT * FROM read_csv('{io}/data.csv')",       # ...and the import directory
        f"SELECT * FROM read_csv_auto(['{io}/data.csv'])",
        f"SELECT count(*) FROM glob('{io}/*')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        f"COPY (SELECT 1) TO '{io}/out.csv'",             # mallory has no FILEACCESS
        "COPY (SELECT 1) TO '/tmp/quackml-attack.csv'",
        f"COPY pts FROM '{io}/data.csv'",
        f"ATTACH '{io}/new.duckdb' AS other",
        "ATTACH ':memory:' AS other",
        "DETACH quackml_pg",
        "INSTALL httpfs",
        "LOAD httpfs",
        f"EXPORT DATABASE '{io}/export'",
        f"IMPORT DATABASE '{io}/export'",
        "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        f"CREATE TABLE leak AS SELECT * FROM read_blob('{db}')",
        f"CREATE VIEW leak_v AS SELECT * FROM read_blob('{db}')",
        f"SELECT * FROM read_blob('{io}/../db.duckdb')",
        f"PREPARE leak AS SELECT * FROM read_blob('{db}')",
        f"EXPLAIN ANALYZE SELECT * FROM read_blob('{db}')",
        "CHECKPOINT",
        "PRAGMA database_list",
    ]
    for sql in denied:
        assert sqlstate(mallory, sql) == "42501", sql
    # file names written as table names: DuckDB does not read them as files at all
    for sql in ("SELECT * FROM '/etc/passwd'", "SELECT 1 FROM range(1) t, '/etc/passwd'"):
        assert sqlstate(mallory, sql) == "42P01", sql
    # ...except where DuckDB may read: its own file and the import directory
    for sql in (f"SELECT * FROM '{db}'", f'SELECT * FROM "{io}/data.csv"',
                f"SELECT 1 FROM range(1) t JOIN '{io}/data.csv' ON true"):
        assert sqlstate(mallory, sql) == "42501", sql
    assert not (io / "out.csv").exists()


def test_server_state_is_out_of_reach_even_for_superusers(target: Target) -> None:  # noqa: F811
    data = target.data_dir
    artifact = next(data.glob("models/public/*/v*/artifact.json"))
    with target.admin() as c:
        for sql in (f"SELECT * FROM read_blob('{data}/catalog.sqlite3')",
                    f"SELECT * FROM read_text('{artifact}')",
                    f"SELECT * FROM glob('{data}/**')",
                    f"ATTACH '{data}/catalog.sqlite3' AS cat (TYPE sqlite)",
                    f"COPY (SELECT 1) TO '{artifact.parent}/evil.json'",
                    f"COPY (SELECT 1) TO '{target.file_dir}/../data/evil.csv'",
                    "SET enable_external_access = true",
                    "SET allowed_directories = ['/']",
                    "SET lock_configuration = false"):
            assert sqlstate(c, sql) is not None, sql
        assert not (artifact.parent / "evil.json").exists()
        # the operator's directory works for a superuser
        c.execute(f"COPY (SELECT 42 AS x) TO '{target.file_dir}/ok.csv'")
        assert (target.file_dir / "ok.csv").exists()


def test_fileaccess_writes_only_inside_the_import_directory(target: Target) -> None:  # noqa: F811
    with target.admin() as c:
        c.execute("CREATE USER ivy PASSWORD 'ivy-pw'")
    try:
        with target.connect("ivy", "ivy-pw") as ivy, target.admin() as su:
            write = f"COPY (SELECT 1 AS x) TO '{target.file_dir}/ivy.csv'"
            assert sqlstate(ivy, write) == "42501"
            # only a superuser grants or removes FILEACCESS, even for oneself
            assert sqlstate(ivy, "ALTER USER ivy FILEACCESS") == "42501"
            su.execute("ALTER USER ivy FILEACCESS")   # applies at once, in the open session
            ivy.execute(f"COPY (SELECT 1 AS x) TO '{target.file_dir}/ivy.csv'")
            assert (target.file_dir / "ivy.csv").read_text().strip() == "x\n1"
            for path in (f"{target.file_dir}/../data/x.csv", "/tmp/quackml-ivy.csv"):
                assert sqlstate(ivy, f"COPY (SELECT 1) TO '{path}'") == "42501", path
            # DuckDB's binder refuses its own file before the firewall would (42703-class)
            assert sqlstate(ivy, f"COPY (SELECT 1) TO '{target.database}'") is not None
            # reading server files stays with superusers (docs/security.md, FILEACCESS)
            assert sqlstate(ivy, f"SELECT * FROM read_csv('{target.file_dir}/ivy.csv')") \
                == "42501"
            su.execute("ALTER USER ivy NOFILEACCESS")
            assert sqlstate(ivy, write) == "42501"
    finally:
        with target.admin() as c:
            c.execute("DROP USER ivy")


# -- the security catalog -----------------------------------------------------------------
def test_catalog_is_out_of_reach(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    for sql in ("SELECT * FROM quackml.users", "SELECT * FROM quackml.models",
                "DELETE FROM quackml.privileges", "SELECT * FROM users",
                "INSERT INTO quackml.users VALUES ('x', NULL, true, true, true)"):
        assert sqlstate(mallory, sql) in ("42P01", "3F000"), sql
    listed = mallory.execute(
        "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
        "WHERE table_name IN ('users', 'models', 'privileges', 'role_members', 'meta')"
    ).fetchall()
    assert listed == []
    # read-only views: writes and redefinitions are refused
    # DuckDB cannot insert into a view: 42P01 "not a table"
    assert sqlstate(mallory, "INSERT INTO svv_ml_model_info VALUES ('x')") == "42P01"
    for sql in ("CREATE OR REPLACE VIEW svv_ml_model_info AS SELECT 1",
                "DROP VIEW svv_ml_model_privileges",
                "ALTER VIEW stv_ml_model_info RENAME TO x",
                "CREATE OR REPLACE VIEW quackml_pg.main.pg_roles AS SELECT 'x' AS rolname",
                "CREATE TABLE quackml_pg.main.pg_user (usename VARCHAR)",
                "DROP VIEW quackml_pg.main.pg_roles",
                "CREATE OR REPLACE MACRO quackml_roles() AS []"):
        assert sqlstate(mallory, sql) in ("42501",), sql
    # what the views show is served from the catalog, without secrets
    roles = dict(mallory.execute("SELECT rolname, rolsuper FROM pg_roles").fetchall())
    assert roles[ADMIN] is True and roles[MALLORY] is False
    assert mallory.execute("SELECT DISTINCT rolpassword FROM pg_roles").fetchall() == \
        [("********",)]
    info = mallory.execute("SELECT model_name, user_name FROM svv_ml_model_info").fetchall()
    assert (MODEL, ADMIN) in info
    # a superuser has no SQL route to write it either
    with target.admin() as c:
        assert sqlstate(c, "INSERT INTO quackml.users VALUES ('x')") in ("42P01", "3F000")
    with target.admin() as c:
        assert c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                         [MALLORY]).fetchone() == (False,)


def test_settings_are_locked(mallory: psycopg.Connection) -> None:
    for sql in ("SET memory_limit = '100GB'", "RESET memory_limit", "SET GLOBAL threads = 1",
                "SET threads = 1", "SET operator_memory_limit = '100GB'",
                "SET temp_directory = '/tmp/elsewhere'", "SET enable_external_access = true",
                "SET lock_configuration = false", "PRAGMA threads = 1",
                "SET VARIABLE quackml_params = map(['search_path'], ['x'])",
                "EXPLAIN ANALYZE SET threads = 1"):
        assert sqlstate(mallory, sql) == "42501", sql
    # the session's own client parameters and variables stay settable
    mallory.execute("SET search_path = public")
    mallory.execute("SET VARIABLE mine = 1")
    assert mallory.execute("SELECT getvariable('mine')").fetchone() == (1,)


# -- one parser of truth --------------------------------------------------------------------
def test_hidden_second_statement(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    db = target.database
    for sql in (f"SELECT 1 AS `'`; SELECT * FROM read_blob('{db}'); SELECT 1 AS `'`",
                f"SELECT $$;$$; SELECT * FROM read_blob('{db}')",
                f"SELECT E'\\';'; SELECT * FROM read_blob('{db}')",
                f"SELECT 1 /* ; */; SELECT * FROM read_blob('{db}')",
                f"SELECT {F}(1.0, 2.0) -- ;\n",
                f"SELECT 1; SELECT {F}(1.0, 2.0)"):
        assert sqlstate(mallory, sql) == "42501", sql


# -- model privileges: decided on the bound plan ----------------------------------------------
ROUTES = [
    f"SELECT {F}(1.0, 2.0)",
    f'SELECT "{F}"(1.0, 2.0)',
    f"SELECT {F.upper()}(1.0, 2.0)",
    f"SELECT system.main.{F}(1.0, 2.0)",
    f"SELECT {F} /* c */ (1.0, 2.0)",
    f"SELECT {F}(a, b) FROM pts",
    f"SELECT count(*) FROM pts WHERE {F}(a, b) = 1",
    f"SELECT 1 WHERE false AND {F}(1.0, 2.0) = 1",
    f"WITH c AS (SELECT {F}(a, b) AS k FROM pts) SELECT count(*) FROM c",
    f"SELECT (SELECT max({F}(a, b)) FROM pts)",
    f"SELECT [{F}(x, 1.0) FOR x IN [1.0, 2.0]]",
    f"SELECT list_transform([1.0], lambda x: {F}(x, 1.0))",
    f"SELECT sum({F}(a, b)) OVER () FROM pts",
    f"CREATE TABLE stolen AS SELECT {F}(a, b) AS k FROM pts",
    f"CREATE TEMP TABLE stolen AS SELECT {F}(a, b) AS k FROM pts",
    f"INSERT INTO mine SELECT {F}(a, b) FROM pts",
    f"UPDATE mine SET k = {F}(1.0, 2.0)",
    f"DELETE FROM mine WHERE k = {F}(1.0, 2.0)",
    f"CREATE VIEW mv AS SELECT {F}(a, b) FROM pts",
    f"EXPLAIN SELECT {F}(1.0, 2.0)",
    f"EXPLAIN ANALYZE SELECT {F}(1.0, 2.0)",
    f"EXPLAIN (FORMAT json) SELECT {F}(1.0, 2.0)",
    f"PREPARE p1 AS SELECT {F}(1.0, 2.0)",
    f"PREPARE p2 AS SELECT {F}($1, 2.0)",
    f"DECLARE c1 CURSOR FOR SELECT {F}(a, b) FROM pts",
    f"SELECT explain_model('{MODEL}')",
    f"SELECT explain_model('public.{MODEL}')",
    "SELECT explain_model(lower('ADM_KM'))",
    f"SET VARIABLE v = {F}(1.0, 2.0)",
    f"SELECT {F}_probabilities(1.0, 2.0)",
    f"SELECT {F}_explain(1.0, 2.0)",
    f"SELECT {F}_explain_top(a, b, 3) FROM pts",
    f"SELECT (x).prediction FROM (SELECT {F}_explain(a, b) AS x FROM pts)",
    f"CREATE VIEW mv2 AS SELECT {F}_explain(a, b) FROM pts",
]


@pytest.mark.parametrize("sql", ROUTES)
def test_model_functions_need_execute(target: Target, mallory: psycopg.Connection,  # noqa: F811
                                      sql: str) -> None:
    mallory.execute("CREATE TABLE IF NOT EXISTS mine (k BIGINT)")
    code = sqlstate(mallory, sql)
    # a KMEANS model has no _probabilities function: DuckDB does not know the name
    assert code == ("42883" if "_probabilities" in sql else "42501"), sql


def test_model_functions_through_views_macros_and_protocols(target: Target) -> None:  # noqa: F811
    with target.admin() as c:
        c.execute(f"CREATE OR REPLACE VIEW km_view AS SELECT {F}(a, b) AS k FROM pts")
        c.execute("CREATE OR REPLACE VIEW km_view2 AS SELECT count(*) AS n FROM km_view")
        c.execute(f"CREATE OR REPLACE MACRO km_macro(x, y) AS {F}(x, y)")
        c.execute("CREATE OR REPLACE MACRO km_outer(x) AS km_macro(x, 1.0) + 0")
        c.execute("CREATE OR REPLACE MACRO km_table() AS TABLE SELECT * FROM km_view2")
        c.execute("CREATE SCHEMA IF NOT EXISTS hidden")
        c.execute(f"CREATE OR REPLACE VIEW hidden.v AS SELECT {F}(a, b) FROM pts")
    through = ["SELECT * FROM km_view", "SELECT n FROM km_view2", "SELECT km_macro(1.0, 2.0)",
               "SELECT km_outer(1.0)", "SELECT * FROM km_table()", "SELECT * FROM hidden.v",
               "SELECT * FROM pts WHERE a IN (SELECT k FROM main.km_view)",
               "CREATE TEMP VIEW tv AS SELECT * FROM km_view",
               "COPY (SELECT * FROM km_view) TO STDOUT"]
    with target.mallory() as m:
        for sql in through:
            assert sqlstate(m, sql) == "42501", sql
            assert sqlstate(m, sql, prepare=True) == "42501", sql   # extended protocol
        with pytest.raises(psycopg.Error) as info, \
                m.cursor().copy("COPY (SELECT * FROM km_view) TO STDOUT") as copy:
            list(copy.rows())
        assert info.value.sqlstate == "42501"
        with pytest.raises(psycopg.Error) as info:
            m.cursor(name="server_side").execute("SELECT * FROM km_view").fetchall()
        assert info.value.sqlstate == "42501"
        assert m.execute("SELECT count(*) FROM pts").fetchone() == (600,)   # plain SQL works
    with target.admin() as c:
        c.execute(f"GRANT EXECUTE ON MODEL {MODEL} TO {MALLORY}")
    try:
        with target.mallory() as m:
            for sql in through[:-2]:
                m.execute(sql).fetchall()
            m.execute(f"SELECT {F}(1.0, 2.0)", prepare=True).fetchall()
    finally:
        with target.admin() as c:
            c.execute(f"REVOKE EXECUTE ON MODEL {MODEL} FROM {MALLORY}")


def test_create_model_from_query_is_checked(target: Target,  # noqa: F811
                                            mallory: psycopg.Connection) -> None:
    """CREATE MODEL runs its FROM query as the user: the same checks apply."""
    for query in (f"SELECT a, b, {F}(a, b) AS k FROM pts",
                  f"SELECT * FROM read_blob('{target.database}')",
                  "SELECT * FROM query('SELECT 1 AS a, 2 AS b')"):
        sql = (f"CREATE MODEL stolen_m FROM ({query}) FUNCTION stolen_f IAM_ROLE default "
               "AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '2') "
               "SETTINGS (S3_BUCKET 'b')")
        assert sqlstate(mallory, sql) == "42501", query
    assert mallory.execute("SELECT count(*) FROM svv_ml_model_info "
                           "WHERE model_name = 'stolen_m'").fetchone() == (0,)


def test_revoke_after_prepare(target: Target) -> None:  # noqa: F811
    with target.admin() as c:
        c.execute(f"GRANT EXECUTE ON MODEL {MODEL} TO {MALLORY}")
    with target.mallory() as m:
        m.execute(f"PREPARE pr AS SELECT {F}(1.0, 2.0)")
        assert m.execute("EXECUTE pr").fetchone() is not None
        # a protocol-level prepared statement too
        assert m.execute(f"SELECT {F}(%s, 2.0)", [1.0], prepare=True).fetchone() is not None
        with target.admin() as c:
            c.execute(f"REVOKE EXECUTE ON MODEL {MODEL} FROM {MALLORY}")
        assert sqlstate(m, "EXECUTE pr") == "42501"
        with pytest.raises(psycopg.Error) as info:
            m.execute(f"SELECT {F}(%s, 2.0)", [1.0], prepare=True)
        assert info.value.sqlstate == "42501"
        # EXECUTE's own arguments are checked as well
        m.execute("PREPARE plain AS SELECT $1::DOUBLE + 1")
        assert m.execute("EXECUTE plain(1)").fetchone() == (2.0,)
        assert sqlstate(m, f"EXECUTE plain({F}(1.0, 2.0))") == "42501"
        assert sqlstate(m, "EXECUTE never_prepared") == "42501"


def test_sql_running_functions(mallory: psycopg.Connection) -> None:
    for sql in ("SELECT * FROM query('SELECT 1')", "SELECT * FROM query_table('pts')",
                'SELECT * FROM "query"(\'SELECT 1\')', "SELECT * FROM QUERY ('SELECT 1')",
                "SELECT * FROM system.main.query('SELECT 1')",
                "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
                "CREATE MACRO run(q) AS TABLE SELECT * FROM query(q)",
                f"SELECT * FROM query('SELECT {F}(1.0, 2.0)')"):
        assert sqlstate(mallory, sql) == "42501", sql


def test_postgres_functions_for_everyone(mallory: psycopg.Connection) -> None:
    """The PostgreSQL functions of server/postgres/functions.py (macros, table macros and
    the Python functions behind them) pass the firewall; their names cannot be taken."""
    assert mallory.execute(
        "SELECT format('%s=%L', 'a', 'b'), to_char(DATE '2024-05-07', 'DD/MM/YYYY'), "
        "regexp_match('a1', '([a-z])([0-9])'), initcap('ab cd')").fetchone() == \
        ("a='b'", "07/05/2024", ["a", "1"], "Ab Cd")
    assert mallory.execute("SELECT key, value FROM jsonb_each_text('{\"a\": \"1\"}') "
                           "UNION ALL SELECT 'x', value FROM json_array_elements_text('[2]')"
                           ).fetchall() == [("a", "1"), ("x", "2")]
    assert [str(v) for v in mallory.execute(
        "SELECT avg(x), avg(DISTINCT x), stddev(x), var_pop(x) "
        "FROM (VALUES (1), (2), (2)) v (x)").fetchone() or ()] == \
        ["1.6666666666666667", "1.5000000000000000", "0.5773502691896257",
         "0.2222222222222222"]
    assert str(mallory.execute("SELECT avg(x) OVER () FROM (VALUES (1), (2)) v (x)"
                               ).fetchone()) == "(Decimal('1.5000000000000000'),)"
    for sql in ("CREATE MACRO initcap(x) AS x", "CREATE MACRO jsonb_each_text(j) AS TABLE "
                "SELECT 1", "CREATE MACRO quackml_pg.main.format(x) AS x"):
        assert sqlstate(mallory, sql) == "42501", sql


# -- no shadowing ----------------------------------------------------------------------
def test_no_shadowing(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    for sql in ("CREATE MACRO sum(x) AS 0", "CREATE OR REPLACE MACRO lower(x) AS 'owned'",
                "CREATE TEMP MACRO upper(x) AS x", "CREATE MACRO \"Count\"(x) AS 0",
                f"CREATE MACRO {F}(a, b) AS 0", f"CREATE MACRO main.{F}(a, b) AS 0",
                "CREATE MACRO explain_model(m) AS 'x'",
                "CREATE MACRO current_user() AS 'admin'",
                "CREATE TEMP MACRO session_user() AS 'admin'",
                "CREATE MACRO version() AS 'x'", "CREATE MACRO pg_get_userbyid(x) AS 'x'",
                "CREATE VIEW svv_ml_model_info AS SELECT 1",
                "CREATE TABLE pg_roles (rolname VARCHAR)",
                "CREATE VIEW pg_class AS SELECT 1",
                "CREATE TYPE integer AS VARCHAR",
                "CREATE TABLE quackml_anything (x INT)",
                "CREATE SCHEMA pg_catalog", "CREATE SCHEMA quackml_x",
                "CREATE SCHEMA temp", "CREATE SCHEMA pg_temp", "CREATE SCHEMA db",
                "CREATE SCHEMA system",
                "CREATE MACRO generate_series(a) AS TABLE SELECT 1",
                "DROP MACRO current_user"):
        assert sqlstate(mallory, sql) == "42501", sql
    # CREATE MODEL refuses a built-in as its FUNCTION name, whatever its case
    for name in ("sum", "LOWER", "explain_model", F):
        create = (f"CREATE MODEL m_{name.lower()} FROM pts FUNCTION {name} IAM_ROLE default "
                  "AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '2') "
                  "SETTINGS (S3_BUCKET 'b')")
        assert sqlstate(mallory, create) == "42723", name
    # other users' statements keep their meaning
    with target.admin() as c:
        assert c.execute("SELECT sum(x), lower('A') FROM (VALUES (1), (2)) t(x)").fetchone() \
            == (3, "a")
    # ordinary objects of mallory's own are fine
    mallory.execute("CREATE OR REPLACE MACRO mallory_double(x) AS x * 2")
    assert mallory.execute("SELECT mallory_double(2)").fetchone() == (4,)


def test_current_user_is_fixed(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    assert mallory.execute("SELECT current_user, session_user").fetchone() == \
        (MALLORY, MALLORY)
    mallory.execute("SET VARIABLE mallory_user = 'admin'")
    for sql in ("SET VARIABLE quackml_user = 'admin'",
                "CREATE OR REPLACE TEMP MACRO current_user() AS 'admin'",
                "DROP MACRO current_user"):
        assert sqlstate(mallory, sql) == "42501", sql
    assert mallory.execute("SELECT current_user").fetchone() == (MALLORY,)
    # a user's own objects never break another user's login
    with target.admin() as c:
        assert c.execute("SELECT current_user").fetchone() == (ADMIN,)


def test_no_server_paths(target: Target, mallory: psycopg.Connection) -> None:  # noqa: F811
    # current_setting answers client parameters only; DuckDB's own answers settings
    # that hold no path, with a constant name
    assert mallory.execute("SELECT current_setting('temp_directory')").fetchone() == (None,)
    assert mallory.execute("SELECT system.main.current_setting('threads')").fetchone()
    assert sqlstate(mallory, "SELECT system.main.current_setting(lower('TEMP_DIRECTORY'))") \
        == "42501"
    for sql in ("SELECT * FROM duckdb_settings()",
                "SELECT system.main.current_setting('temp_directory')",
                "SELECT path FROM duckdb_databases()",
                "SELECT * FROM duckdb_databases()",
                "SELECT * FROM duckdb_extensions()",
                "SELECT * FROM duckdb_temporary_files()",
                "SELECT * FROM pragma_database_list"):
        assert sqlstate(mallory, sql) == "42501", sql
    # the names of databases are not secret
    names = mallory.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    assert ("db",) in names
    # errors name no server path
    try:
        mallory.execute(f"SELECT * FROM read_blob('{target.database}')")
    except psycopg.Error as exc:
        assert str(target.data_dir) not in str(exc)
    # client parameters still answer
    assert mallory.execute("SELECT current_setting('server_version_num')").fetchone() == \
        ("150000",)


def test_a_decision_holds_for_its_session_only(target: Target) -> None:  # noqa: F811
    """A temporary view of one session must not lend its decision to another session of
    the same user, where the same text reads the real table."""
    with target.admin() as c:
        c.execute("CREATE OR REPLACE TABLE hidden_t AS SELECT 42 AS answer")
    with target.mallory() as a, target.mallory() as b:
        a.execute("CREATE TEMP VIEW hidden_t AS SELECT 1 AS answer FROM pts LIMIT 1")
        assert a.execute("SELECT * FROM hidden_t").fetchone() == (1,)
        assert sqlstate(b, "SELECT * FROM hidden_t") == "42501"
        # and a grant made meanwhile is seen at once by the open session
        with target.admin() as c:
            c.execute(f"GRANT SELECT ON hidden_t TO {MALLORY}")
        assert b.execute("SELECT * FROM hidden_t").fetchone() == (42,)
