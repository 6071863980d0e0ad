"""Table and schema privileges as in PostgreSQL, attacked as a non-superuser: every
privilege alone, through roles and PUBLIC, ALL TABLES IN SCHEMA, REVOKE, ownership
(DROP, ALTER, replace, OWNER TO), schema USAGE/CREATE, views over ungranted tables,
and what information_schema, pg_class.relacl and psql's \\dp show."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from tests.attack.target import ADMIN, ADMIN_PW, Target, sqlstate
from tests.attack.target import target as target  # the fixture

STATEMENTS = {
    "SELECT": "SELECT count(*) FROM {t}",
    "INSERT": "INSERT INTO {t} VALUES (99, 'x')",
    "UPDATE": "UPDATE {t} SET v = 'y' WHERE id = 99",
    "DELETE": "DELETE FROM {t} WHERE id = 99",
    "TRUNCATE": "TRUNCATE {t}",
}


@pytest.fixture
def users(target: Target) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """A table of the superuser's, and two fresh non-superusers, bo (in role readers)
    and cy."""
    with target.admin() as c:
        for name in ("bo", "cy"):
            c.execute(f"DROP USER IF EXISTS {name}")
            c.execute(f"CREATE USER {name} PASSWORD '{name}-pw'")
        c.execute("DROP ROLE IF EXISTS readers")
        c.execute("CREATE ROLE readers")
        c.execute("GRANT ROLE readers TO bo")
        c.execute("CREATE OR REPLACE TABLE secrets (id INTEGER, v VARCHAR)")
        c.execute("INSERT INTO secrets VALUES (1, 'a'), (2, 'b')")
    with target.connect("bo", "bo-pw") as bo, target.connect("cy", "cy-pw") as cy:
        yield bo, cy


def test_nothing_without_a_grant(users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, _cy = users
    for privilege, sql in STATEMENTS.items():
        assert sqlstate(bo, sql.format(t="secrets")) == "42501", privilege
    # ...by any route: qualified, quoted, public., a CTE, a subquery, a view, a macro,
    # COPY TO STDOUT, a cursor, EXPLAIN ANALYZE, a prepared statement, the extended protocol
    for sql in ('SELECT * FROM main."secrets"',
                "SELECT * FROM db.main.secrets",
                "WITH s AS (SELECT * FROM secrets) SELECT * FROM s",
                "SELECT (SELECT max(v) FROM secrets)", "EXPLAIN ANALYZE SELECT * FROM secrets",
                "PREPARE ps AS SELECT * FROM secrets",
                "CREATE TABLE mine AS SELECT * FROM secrets",
                "INSERT INTO secrets SELECT * FROM secrets",
                "SELECT * FROM duckdb_tables() t, secrets s"):
        assert sqlstate(bo, sql) == "42501", sql
    assert sqlstate(bo, "SELECT * FROM secrets", prepare=True) == "42501"
    with pytest.raises(psycopg.Error) as info, \
            bo.cursor().copy("COPY secrets TO STDOUT") as copy:
        list(copy.rows())
    assert info.value.sqlstate == "42501"
    with pytest.raises(psycopg.Error) as info, bo.cursor().copy("COPY secrets FROM STDIN") as cp:
        cp.write(b"5\tz\n")
    assert info.value.sqlstate == "42501"
    with pytest.raises(psycopg.Error) as info, bo.transaction():
        bo.cursor(name="cur").execute("SELECT * FROM secrets").fetchall()
    assert info.value.sqlstate == "42501"
    assert "permission denied for table secrets" in str(info.value)


def test_each_privilege_alone(target: Target,
                              users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, _cy = users
    for privilege in STATEMENTS:
        with target.admin() as c:
            c.execute("REVOKE ALL ON secrets FROM bo")
            c.execute(f"GRANT {privilege} ON TABLE secrets TO bo")
        for other, sql in STATEMENTS.items():
            code = sqlstate(bo, sql.format(t="secrets"))
            # UPDATE and DELETE read the rows they change: they need SELECT as well
            # (PostgreSQL asks for it only when a WHERE reads columns)
            if other == privilege and other not in ("UPDATE", "DELETE"):
                assert code is None, (privilege, other)
            else:
                assert code == "42501", (privilege, other)
    with target.admin() as c:
        c.execute("GRANT SELECT, UPDATE, DELETE ON secrets TO bo")
    assert sqlstate(bo, STATEMENTS["UPDATE"].format(t="secrets")) is None
    assert sqlstate(bo, STATEMENTS["DELETE"].format(t="secrets")) is None


def test_roles_public_all_tables_and_revoke(
        target: Target, users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, cy = users
    with target.admin() as c:
        c.execute("GRANT SELECT ON secrets TO ROLE readers")
    assert bo.execute("SELECT count(*) FROM secrets").fetchone() == (2,)
    assert sqlstate(cy, "SELECT count(*) FROM secrets") == "42501"
    with target.admin() as c:
        c.execute("REVOKE SELECT ON secrets FROM ROLE readers")
        c.execute("GRANT SELECT ON secrets TO PUBLIC")
    assert cy.execute("SELECT count(*) FROM secrets").fetchone() == (2,)
    with target.admin() as c:
        c.execute("REVOKE ALL PRIVILEGES ON secrets FROM PUBLIC")
        c.execute("CREATE SCHEMA IF NOT EXISTS sales")
        c.execute("CREATE OR REPLACE TABLE sales.q1 AS SELECT 1 AS x")
        c.execute("CREATE OR REPLACE VIEW sales.q1v AS SELECT x FROM sales.q1")
        c.execute("GRANT USAGE ON SCHEMA sales TO cy")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA sales TO cy")
    assert sqlstate(cy, "SELECT count(*) FROM secrets") == "42501"
    assert cy.execute("SELECT * FROM sales.q1v").fetchone() == (1,)
    # USAGE on the schema is needed too
    with target.admin() as c:
        c.execute("REVOKE USAGE ON SCHEMA sales FROM cy")
    assert sqlstate(cy, "SELECT * FROM sales.q1") == "42501"
    # REVOKE takes effect at the next statement of an open session, prepared or not
    with target.admin() as c:
        c.execute("GRANT USAGE ON SCHEMA sales TO cy")
    cy.execute("PREPARE q AS SELECT * FROM sales.q1")
    assert cy.execute("EXECUTE q").fetchone() == (1,)
    with target.admin() as c:
        c.execute("REVOKE SELECT ON sales.q1 FROM cy")
    assert sqlstate(cy, "EXECUTE q") == "42501"
    # a view does not lend its base tables' privileges (docs: security_invoker)
    assert sqlstate(cy, "SELECT * FROM sales.q1v") == "42501"
    # bad grants: unknown table, role, privilege
    with target.admin() as c:
        assert sqlstate(c, "GRANT SELECT ON nope TO cy") == "42P01"
        assert sqlstate(c, "GRANT SELECT ON secrets TO nobody") == "42704"
        assert sqlstate(c, "GRANT USAGE ON secrets TO cy") == "0LP01"
        assert sqlstate(c, "GRANT SELECT ON SCHEMA nope TO cy") == "0LP01"
        assert sqlstate(c, "GRANT USAGE ON SCHEMA nope TO cy") == "3F000"


def test_ownership(target: Target, users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, cy = users
    bo.execute("CREATE TABLE bo_t (id INTEGER, v VARCHAR)")
    bo.execute("INSERT INTO bo_t VALUES (1, 'mine')")
    assert bo.execute("SELECT * FROM bo_t").fetchall() == [(1, "mine")]   # the creator owns
    for sql in ("SELECT * FROM bo_t", "DROP TABLE bo_t", "ALTER TABLE bo_t ADD COLUMN z INT",
                "ALTER TABLE bo_t RENAME TO cy_t", "CREATE OR REPLACE TABLE bo_t (x INT)",
                "CREATE INDEX bo_i ON bo_t (id)", "COMMENT ON TABLE bo_t IS 'cy was here'",
                "GRANT SELECT ON bo_t TO cy", "ALTER TABLE bo_t OWNER TO cy",
                "DROP TABLE secrets", "ALTER TABLE secrets ADD COLUMN z INT"):
        assert sqlstate(cy, sql) == "42501", sql
    bo.execute("GRANT SELECT ON bo_t TO cy")   # the owner grants
    assert cy.execute("SELECT count(*) FROM bo_t").fetchone() == (1,)
    bo.execute("ALTER TABLE bo_t RENAME TO bo_t2")   # ownership and grants follow a rename
    assert cy.execute("SELECT count(*) FROM bo_t2").fetchone() == (1,)
    assert sqlstate(bo, "ALTER TABLE bo_t2 OWNER TO cy") == "42501"  # not bo's to give
    with target.admin() as c:
        c.execute("ALTER TABLE bo_t2 OWNER TO cy")
    cy.execute("ALTER TABLE bo_t2 ADD COLUMN z INTEGER")
    assert sqlstate(bo, "DROP TABLE bo_t2") == "42501"
    cy.execute("DROP TABLE bo_t2")
    # a dropped table's grants do not pass to a new table of the same name
    bo.execute("CREATE TABLE bo_t2 (x INTEGER)")
    assert sqlstate(cy, "SELECT * FROM bo_t2") == "42501"
    bo.execute("DROP TABLE bo_t2")
    # schemas: the creator owns; CREATE on main is PUBLIC's (PostgreSQL 14's default)
    bo.execute("CREATE SCHEMA bo_s")
    bo.execute("CREATE TABLE bo_s.t (x INTEGER)")
    assert sqlstate(cy, "CREATE TABLE bo_s.u (x INTEGER)") == "42501"
    assert sqlstate(cy, "SELECT * FROM bo_s.t") == "42501"
    assert sqlstate(cy, "DROP SCHEMA bo_s CASCADE") == "42501"
    bo.execute("GRANT CREATE, USAGE ON SCHEMA bo_s TO cy")
    cy.execute("CREATE TABLE bo_s.u (x INTEGER)")
    bo.execute("DROP SCHEMA bo_s CASCADE")
    with target.admin() as c:
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        assert sqlstate(cy, "CREATE TABLE cy_t (x INTEGER)") == "42501"
    finally:
        with target.admin() as c:
            c.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    cy.execute("CREATE TEMP TABLE cy_tmp (x INTEGER)")   # temporary objects are one's own


def test_grants_are_shown(target: Target,
                          users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    _bo, _cy = users   # the users must exist
    with target.admin() as c:
        c.execute("GRANT SELECT, INSERT ON secrets TO bo")
        c.execute("GRANT SELECT ON secrets TO PUBLIC")
        rows = c.execute("SELECT grantor, grantee, table_name, privilege_type "
                         "FROM information_schema.table_privileges "
                         "WHERE table_name = 'secrets' ORDER BY 2, 4").fetchall()
        assert rows == [(ADMIN, "PUBLIC", "secrets", "SELECT"), (ADMIN, "bo", "secrets", "INSERT"),
                        (ADMIN, "bo", "secrets", "SELECT")]
        acl = c.execute("SELECT relacl FROM pg_class WHERE relname = 'secrets'").fetchone()
        assert acl == ([f"{ADMIN}=arwdD/{ADMIN}", f"=r/{ADMIN}", f"bo=ar/{ADMIN}"],)
        c.execute("REVOKE ALL ON secrets FROM PUBLIC")
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    out = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(target.port), "-U", ADMIN,
                          "-d", "quackml", "-c", r"\dp secrets"], capture_output=True,
                         text=True, timeout=60, env={"PGPASSWORD": ADMIN_PW})
    assert out.returncode == 0, out.stderr
    assert f"bo=ar/{ADMIN}" in out.stdout


def test_a_read_only_bi_user_reads_exactly_what_was_granted(target: Target) -> None:
    with target.admin() as c:
        c.execute("DROP USER IF EXISTS bi")
        c.execute("CREATE USER bi PASSWORD 'bi-pw'")
        c.execute("CREATE SCHEMA IF NOT EXISTS mart")
        c.execute("CREATE OR REPLACE TABLE mart.revenue AS SELECT 10 AS amount")
        c.execute("CREATE OR REPLACE TABLE mart.salaries AS SELECT 99 AS amount")
        c.execute("GRANT USAGE ON SCHEMA mart TO bi")
        c.execute("GRANT SELECT ON mart.revenue TO bi")
    with target.connect("bi", "bi-pw") as bi:
        assert bi.execute("SELECT amount FROM mart.revenue").fetchone() == (10,)
        assert sqlstate(bi, "SELECT amount FROM mart.salaries") == "42501"
        assert sqlstate(bi, "INSERT INTO mart.revenue VALUES (1)") == "42501"
        assert sqlstate(bi, "SELECT * FROM mart.revenue r JOIN mart.salaries s ON true") \
            == "42501"
        # listing tables is allowed (as in PostgreSQL), reading their rows is not
        names = {r[0] for r in bi.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'mart'").fetchall()}
        assert names == {"revenue", "salaries"}
