"""Names as PostgreSQL clients see them (server/postgres/names.py, catalog_views.py):
the schema public, the client's database name, the catalog objects tools read, the
reg* casts, and psql's backslash commands, side by side with PostgreSQL 15 where the
values can be compared."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import RunningServer, wait_for_state
from tests.pgcluster import throwaway_postgres

PSQL = shutil.which("psql")


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection]:
    for dsn in throwaway_postgres():
        with psycopg.connect(dsn, autocommit=True) as c:
            yield c


@pytest.fixture(scope="module")
def qm(server: RunningServer) -> Iterator[psycopg.Connection]:
    with server.connect() as c:
        yield c


def both(qm: psycopg.Connection, pg: psycopg.Connection, sql: str) -> list[tuple[object, ...]]:
    """The rows of ``sql`` on both servers, which must be equal."""
    ours = qm.execute(sql).fetchall()
    theirs = pg.execute(sql).fetchall()
    assert ours == theirs, sql
    return ours


def sqlstate(conn: psycopg.Connection, sql: str) -> str | None:
    try:
        conn.execute(sql).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def psql(server: RunningServer, *args: str) -> str:
    assert PSQL is not None
    out = subprocess.run([PSQL, "-h", server.host, "-p", str(server.port), "-U", "tester",
                          "-d", "quackml", "-X", *args], capture_output=True, text=True,
                         timeout=60, env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def tables(qm: psycopg.Connection, pg: psycopg.Connection) -> None:
    for conn in (qm, pg):
        conn.execute("DROP TABLE IF EXISTS public.nm_t")
        conn.execute("CREATE TABLE public.nm_t (a integer PRIMARY KEY, b text, "
                     "d numeric(10,2), e boolean, f double precision, g timestamp, "
                     "h bigint[])")
        conn.execute("CREATE INDEX nm_t_b ON nm_t (b)")
        conn.execute("INSERT INTO public.nm_t VALUES (1, 'x', 1.5, true, 2.5, NULL, NULL)")
        conn.execute("DROP SCHEMA IF EXISTS nm_s CASCADE")
        conn.execute("CREATE SCHEMA nm_s")
        conn.execute("CREATE TABLE nm_s.nm_u (x integer)")


def test_default_schema_is_public(qm: psycopg.Connection, pg: psycopg.Connection,
                                  tables: None) -> None:
    assert both(qm, pg, "SELECT current_schema(), current_schemas(false), "
                        "current_schemas(true)") == [("public", ["public"],
                                                      ["pg_catalog", "public"])]
    both(qm, pg, "SHOW search_path")
    both(qm, pg, "SELECT current_schema, current_catalog = current_database()")
    for conn in (qm, pg):
        cur = conn.execute("SELECT current_schema, current_catalog")
        assert [d.name for d in cur.description or ()] == ["current_schema", "current_catalog"]
    both(qm, pg, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('public', 'nm_s')")
    assert qm.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'main'"
                      ).fetchone() == (0,)
    both(qm, pg, "SELECT schema_name FROM information_schema.schemata "
                 "WHERE schema_name IN ('public', 'nm_s', 'main') ORDER BY 1")
    both(qm, pg, "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                 "WHERE table_name IN ('nm_t', 'nm_u') ORDER BY 2")
    both(qm, pg, "SELECT a, b FROM public.nm_t")
    both(qm, pg, "SELECT schemaname, tablename, hasindexes FROM pg_tables "
                 "WHERE tablename IN ('nm_t', 'nm_u') ORDER BY 2")
    for conn in (qm, pg):
        conn.execute("SET search_path = nm_s, public")
    try:
        assert both(qm, pg, "SELECT current_schema(), current_schemas(true)") == [
            ("nm_s", ["pg_catalog", "nm_s", "public"])]
        both(qm, pg, "SELECT x FROM nm_u")
    finally:
        for conn in (qm, pg):
            conn.execute("RESET search_path")
    both(qm, pg, "SELECT current_schema()")


def test_database_name_is_the_clients(qm: psycopg.Connection, pg: psycopg.Connection,
                                      server: RunningServer, tables: None) -> None:
    for conn, name in ((qm, "quackml"), (pg, "postgres")):
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
        # dbt's three-part names
        assert conn.execute(f'SELECT a FROM {name}.public.nm_t').fetchall() == [(1,)]
        assert conn.execute(f'SELECT x FROM "{name}"."nm_s"."nm_u"').fetchall() == []
        assert conn.execute("SELECT table_catalog FROM information_schema.tables "
                            "WHERE table_name = 'nm_t'").fetchall() == [(name,)]
        assert conn.execute("SELECT datname FROM pg_database WHERE datname = "
                            "current_database()").fetchall() == [(name,)]
        # dbt's statements for a model: three-part names, its information_schema
        conn.execute("DROP SCHEMA IF EXISTS nm_dbt CASCADE")
        conn.execute("CREATE SCHEMA IF NOT EXISTS nm_dbt")
        conn.execute(f'CREATE TABLE "{name}"."nm_dbt"."m1" AS SELECT 1 AS id')
        assert conn.execute(
            f'SELECT column_name, data_type FROM "{name}".information_schema."columns" '
            f"WHERE table_name = 'm1' AND table_schema = 'nm_dbt' AND table_catalog = '{name}'"
        ).fetchall() == [("id", "integer")]
        assert conn.execute(f'SELECT count(*) FROM "{name}".pg_catalog.pg_namespace '
                            "WHERE nspname = 'nm_dbt'").fetchone() == (1,)
        conn.execute(f'ALTER TABLE "{name}"."nm_dbt"."m1" RENAME TO m2')
        conn.execute("DROP SCHEMA nm_dbt CASCADE")
    with psycopg.connect(server.dsn(dbname="analytics_db"), autocommit=True) as other:
        assert other.execute("SELECT current_database()").fetchone() == ("analytics_db",)
        assert other.execute("SELECT a FROM analytics_db.public.nm_t").fetchall() == [(1,)]
    # DuckDB's own catalogs are no database of the user's
    for name in ("system", "temp", "quackml_pg"):
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(server.dsn(dbname=name))
        assert 'database "' + name + '" does not exist' in str(info.value)


def test_internals_are_not_listed(qm: psycopg.Connection, tables: None) -> None:
    rows = qm.execute("SELECT DISTINCT table_catalog, table_schema "
                      "FROM information_schema.tables").fetchall()
    assert rows and all(r[0] == "quackml" for r in rows)
    assert not {r[1] for r in rows} & {"main", "pg_catalog", "information_schema"}
    names = {r[0] for r in qm.execute("SELECT table_name FROM information_schema.tables "
                                      "UNION ALL SELECT tablename FROM pg_tables "
                                      "UNION ALL SELECT viewname FROM pg_views "
                                      "UNION ALL SELECT table_name FROM "
                                      "information_schema.columns").fetchall()}
    assert not names & {"pg_roles", "pg_class", "quackml_indexes", "svv_ml_model_info",
                        "stv_ml_model_info", "svv_ml_model_privileges", "tables"}
    assert qm.execute("SELECT count(*) FROM pg_class WHERE relname = 'quackml_installed'"
                      ).fetchone() == (0,)


def test_columns_say_postgres_type_names(qm: psycopg.Connection, pg: psycopg.Connection,
                                         tables: None) -> None:
    both(qm, pg, "SELECT column_name, data_type, udt_name FROM information_schema.columns "
                 "WHERE table_name = 'nm_t' ORDER BY ordinal_position")


def test_reg_casts(qm: psycopg.Connection, pg: psycopg.Connection, tables: None) -> None:
    both(qm, pg, "SELECT 'nm_t'::regclass::text, 'public.nm_t'::regclass::text, "
                 "'nm_s.nm_u'::regclass::text, 'integer'::regtype::text, "
                 "'nm_s'::regnamespace::text, to_regclass('nm_nosuch'), "
                 "to_regtype('nm_nosuch')")
    both(qm, pg, "SELECT CAST('nm_t' AS regclass) = 'nm_t'::regclass, "
                 "'pg_class'::regclass::oid, 'int4'::regtype::oid")
    both(qm, pg, "SELECT count(*) FROM pg_class WHERE oid = 'nm_t'::regclass")
    for sql, code in (("SELECT 'nm_nosuch'::regclass", "42P01"),
                      ("SELECT CAST('nm_nosuch' AS regclass)", "42P01"),
                      ("SELECT 'nm_s.nm_nosuch'::regclass", "42P01"),
                      ("SELECT 'nm_nosuch'::regtype", "42704"),
                      ("SELECT CAST('nm_nosuch' AS regtype)", "42704"),
                      ("SELECT 'nm_nosuch'::regproc", "42883"),
                      ("SELECT 'nm_nosuch'::regnamespace", "3F000")):
        assert sqlstate(qm, sql) == sqlstate(pg, sql) == code, sql


def test_catalog_objects_tools_read(qm: psycopg.Connection, pg: psycopg.Connection) -> None:
    both(qm, pg, "SELECT count(*) FROM pg_type WHERE typinput = 0 OR typoutput = 0::regproc")
    both(qm, pg, "SELECT typname, typinput::regproc::text, typsend::regproc::text "
                 "FROM pg_type WHERE typname IN ('int4', 'text', 'bool') ORDER BY 1")
    # ADBC maps types by their receive functions' names
    both(qm, pg, "SELECT typname, typreceive::text, typsend, typinput = 0, typreceive <> 0 "
                 "FROM pg_type WHERE typname IN ('int2', 'date', '_int4', 'numeric', "
                 "'timestamptz', 'uuid', 'varchar') ORDER BY 1")
    both(qm, pg, "SELECT typname FROM pg_type WHERE typinput = 'pg_catalog.int8in'::regproc")
    both(qm, pg, "SELECT 'int4recv'::regproc::text, to_regproc('nm_nosuch')")
    both(qm, pg, "SELECT count(*) FROM pg_matviews")
    both(qm, pg, "SELECT tableoid, extname FROM pg_extension")
    both(qm, pg, "SELECT opcname, opcdefault FROM pg_opclass "
                 "WHERE opcname = 'int4_ops' AND opcmethod = 403")
    both(qm, pg, "SELECT count(*) FROM pg_seclabel")
    both(qm, pg, "SELECT count(*) FROM pg_shseclabel")
    for conn in (qm, pg):
        assert conn.execute("SELECT pg_backend_pid()").fetchone() == (conn.info.backend_pid,)
    both(qm, pg, "SELECT state, query, usename = current_user, datname = current_database() "
                 "FROM pg_stat_activity WHERE pid = pg_backend_pid()")


def test_pg_stat_activity_shows_the_sessions(server: RunningServer,
                                             qm: psycopg.Connection) -> None:
    with server.connect() as other:
        pid = other.info.backend_pid
        other.execute("SET application_name = 'nm_probe'")
        other.execute("BEGIN")
        other.execute("SELECT 1")
        rows = qm.execute("SELECT usename, application_name, state, query, "
                          "xact_start <= query_start, backend_start <= xact_start "
                          "FROM pg_stat_activity WHERE pid = %s", [pid]).fetchall()
        assert rows == [("tester", "nm_probe", "idle in transaction", "SELECT 1", True,
                         True)]
        other.execute("ROLLBACK")
    deadline = time.monotonic() + 10
    while qm.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                     [pid]).fetchone() != (0,):
        assert time.monotonic() < deadline, "a closed session is still listed"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def schema_model(qm: psycopg.Connection) -> str:
    qm.execute("CREATE SCHEMA IF NOT EXISTS nm_an")
    qm.execute("""
        CREATE MODEL nm_an.nm_churn
        FROM (SELECT tenure, monthly_charges, churn FROM public.customers)
        TARGET churn FUNCTION nm_an.nm_churn_fn AUTO OFF MODEL_TYPE XGBOOST
        OBJECTIVE 'binary:logistic' HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '5')""")
    assert wait_for_state(qm, "nm_an.nm_churn", timeout=120) == "READY"
    return "nm_an.nm_churn"


def test_schema_qualified_model_functions(qm: psycopg.Connection, schema_model: str) -> None:
    one = qm.execute("SELECT nm_an.nm_churn_fn(tenure, monthly_charges), "
                     "nm_churn_fn(tenure, monthly_charges), "
                     "nm_an.nm_churn_fn_probabilities(tenure, monthly_charges) "
                     "FROM public.customers LIMIT 1").fetchone()
    assert one is not None and one[0] == one[1] and one[0] in (True, False)
    for sql, code in (
            ("CREATE MODEL nm_missing.m FROM customers TARGET churn FUNCTION nm_f1", "3F000"),
            ("CREATE MODEL m FROM customers TARGET churn FUNCTION nm_missing.nm_f1", "3F000"),
            ("CREATE MODEL nm_an.m2 FROM customers TARGET churn FUNCTION nm_s.nm_f1", "0A000")):
        assert sqlstate(qm, sql) == code, sql
    # a qualifier that is not the model's schema names no function (DuckDB reads
    # nm_s.f(x) as a method call on a column nm_s: 42703)
    assert sqlstate(qm, "SELECT nm_s.nm_churn_fn(1, 2.0)") in ("42703", "42883")


@pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")
def test_psql_backslash_commands(server: RunningServer, schema_model: str,
                                 tables: None) -> None:
    schemas = psql(server, "-A", "-t", "-c", r"\dn")
    listed_schemas = {line.split("|")[0] for line in schemas.splitlines()}
    # other modules sharing the session's server may have schemas of their own
    assert listed_schemas >= {"public", "nm_s", "nm_an"}
    assert not listed_schemas & {"main", "pg_catalog", "information_schema", "quackml_pg",
                                 "pg_toast", "temp"}
    listed = psql(server, "-A", "-t", "-c", r"\dt")
    assert "public|nm_t|table|" in listed and "public|customers|table|" in listed
    names = [line.split("|")[1] for line in listed.splitlines()]
    assert not [n for n in names if n.startswith(("pg_", "svv_", "stv_", "quackml"))]
    assert "nm_u" not in names   # not on the search path, as in PostgreSQL
    indexes = psql(server, "-A", "-t", "-c", r"\di")
    assert "public|nm_t_b|index|" in indexes and "public|nm_t_a_pkey|index|" in indexes
    described = psql(server, "-c", r"\d nm_t")
    assert 'Table "public.nm_t"' in described
    assert '"nm_t_b" btree (b)' in described and "PRIMARY KEY, btree (a)" in described
    sizes = {line.split("|")[1]: line.split("|")[6]
             for line in psql(server, "-A", "-t", "-c", r"\dt+").splitlines()}
    assert sizes["customers"].endswith((" kB", " MB")) and sizes["nm_t"].endswith(" bytes")
    functions = psql(server, "-A", "-t", "-c", r"\df nm_an.*").splitlines()
    assert functions == [
        "nm_an|nm_churn_fn|boolean|tenure double precision, monthly_charges double precision"
        "|func",
        "nm_an|nm_churn_fn_explain|record|tenure double precision, monthly_charges "
        "double precision|func",
        "nm_an|nm_churn_fn_explain_top|record|tenure double precision, monthly_charges "
        "double precision, k bigint|func",
        "nm_an|nm_churn_fn_probabilities|record|tenure double precision, monthly_charges "
        "double precision|func"]
    verbose = psql(server, "-A", "-t", "-c", r"\df+ nm_an.nm_churn_fn").split("|")
    assert verbose[:3] == ["nm_an", "nm_churn_fn", "boolean"] and "c" in verbose


def test_index_and_constraint_catalogs(qm: psycopg.Connection, pg: psycopg.Connection,
                                       tables: None) -> None:
    both(qm, pg, "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
                 "WHERE indexname = 'nm_t_b'")
    both(qm, pg, "SELECT table_catalog = current_database(), table_schema, table_name, "
                 "constraint_type FROM information_schema.table_constraints "
                 "WHERE table_name = 'nm_t' AND constraint_type = 'PRIMARY KEY'")
    both(qm, pg, "SELECT table_schema, column_name FROM information_schema.key_column_usage "
                 "WHERE table_name = 'nm_t'")
    # SQLAlchemy finds primary keys so: conindid is the index, conkey 1-based,
    # indoption an int2vector ("0")
    both(qm, pg, "SELECT c.contype, c.conkey, i.indoption, i.indkey, "
                 "c.confrelid FROM pg_constraint c JOIN pg_index i ON c.conindid = i.indexrelid "
                 "WHERE c.conrelid = 'nm_t'::regclass")
    both(qm, pg, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'nm_t'::regclass")
    # a bare oid argument is the row's (SQLAlchemy's foreign keys)
    both(qm, pg, "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint "
                 "WHERE conrelid = 'nm_t'::regclass ORDER BY 1")
    sql = "SELECT indoption FROM pg_index WHERE indrelid = 'nm_t'::regclass LIMIT 1"
    assert [d.type_code for d in qm.execute(sql).description or ()] == \
        [d.type_code for d in pg.execute(sql).description or ()] == [22]   # int2vector
    both(qm, pg, "SELECT typname, typlen, typcategory, typreceive::text FROM pg_type "
                 "WHERE oid = 22")
    with qm.cursor() as qc, pg.cursor() as pc:
        sql = "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass::oid " \
              "AND attnum > 0 AND attrelid = CAST(%s AS regclass)"
        for name in ("nm_t", '"public" . "nm_t"', "nm_s.nm_u"):
            assert qc.execute(sql, (name, name)).fetchall() == \
                pc.execute(sql, (name, name)).fetchall(), name
