"""Auto-increment columns for non-superusers: serial and identity columns on their own
tables work (the sequence is theirs), and nothing about them reaches another user's
sequences or tables: no nextval/setval on a sequence one does not own, no OWNED BY
of another's sequence, and a forged ownership marker (a comment anyone may write on
a sequence of theirs) neither drops another's sequence nor blocks another's INSERT."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.attack.target import Target, sqlstate
from tests.attack.target import target as target  # the fixture


@pytest.fixture
def users(target: Target) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    with target.admin() as c:
        for name in ("sq_bo", "sq_cy"):
            c.execute(f"DROP USER IF EXISTS {name}")
            c.execute(f"CREATE USER {name} PASSWORD '{name}-pw'")
    with target.connect("sq_bo", "sq_bo-pw") as bo, target.connect("sq_cy", "sq_cy-pw") as cy:
        yield bo, cy


def test_serial_and_identity_on_ones_own_table(
        users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, _cy = users
    bo.execute("CREATE TABLE sq_t (id serial PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, "
               "v text)")
    assert bo.execute("INSERT INTO sq_t (v) VALUES ('a'), ('b') RETURNING id, n").fetchall() \
        == [(1, 1), (2, 2)]
    assert sqlstate(bo, "INSERT INTO sq_t (n, v) VALUES (5, 'c')") == "428C9"
    assert bo.execute("SELECT pg_get_serial_sequence('sq_t', 'n')").fetchone() == \
        ("public.sq_t_n_seq",)
    bo.execute("DROP TABLE sq_t")
    assert bo.execute("SELECT count(*) FROM duckdb_sequences() WHERE sequence_name LIKE "
                      "'sq_t_%'").fetchone() == (0,)


def test_nothing_reaches_anothers_sequence(
        users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, cy = users
    bo.execute("CREATE TABLE sq_bo_t (id serial, v text)")
    cy.execute("CREATE TABLE sq_cy_t (id int, v text)")
    for sql in ("INSERT INTO sq_bo_t (v) VALUES ('x')",
                "SELECT nextval('sq_bo_t_id_seq')", "SELECT setval('sq_bo_t_id_seq', 5)",
                "SELECT currval('sq_bo_t_id_seq')",
                "ALTER SEQUENCE sq_bo_t_id_seq OWNED BY sq_cy_t.id",
                "COMMENT ON SEQUENCE sq_bo_t_id_seq IS NULL",
                "DROP SEQUENCE sq_bo_t_id_seq",
                "DROP TABLE sq_bo_t"):
        assert sqlstate(cy, sql) == "42501", sql
    bo.execute("DROP TABLE sq_bo_t")
    cy.execute("DROP TABLE sq_cy_t")


def test_a_forged_marker_does_nothing(
        users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    bo, cy = users
    cy.execute("CREATE TABLE sq_victim (id int, v text)")
    bo.execute("CREATE SEQUENCE sq_forged")
    bo.execute("""COMMENT ON SEQUENCE sq_forged IS
                  '{"quackml_owned_by": ["sq_victim", "id"], "identity": "always"}'""")
    cy.execute("INSERT INTO sq_victim VALUES (1, 'still mine')")   # no 428C9
    cy.execute("DROP TABLE sq_victim")
    assert bo.execute("SELECT nextval('sq_forged')").fetchone() == (1,)   # not dropped
    bo.execute("DROP SEQUENCE sq_forged")


def test_a_grant_on_the_table_reaches_its_sequence(
        users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    """As PostgreSQL's GRANT USAGE on the sequence would: INSERT on a table of the
    sequence's owner whose column draws from it lets one draw from it; without it, a
    table of one's own cannot borrow another's sequence; setval needs UPDATE."""
    bo, cy = users
    bo.execute("CREATE TABLE sq_shared (id serial, v text)")
    cy.execute("CREATE TABLE sq_borrow (id bigint DEFAULT nextval('sq_shared_id_seq'), v int)")
    for sql in ("INSERT INTO sq_shared (v) VALUES ('x')", "INSERT INTO sq_borrow (v) VALUES (1)",
                "SELECT nextval('sq_shared_id_seq')", "SELECT currval('main.sq_shared_id_seq')"):
        assert sqlstate(cy, sql) == "42501", sql
    bo.execute("GRANT INSERT ON sq_shared TO sq_cy")
    cy.execute("INSERT INTO sq_borrow (v) VALUES (1)")
    cy.execute("INSERT INTO sq_shared (v) VALUES ('x')")
    assert sqlstate(cy, "SELECT setval('sq_shared_id_seq', 100)") == "42501"   # no UPDATE
    cy.execute("DROP TABLE sq_borrow")
    assert bo.execute("SELECT id FROM sq_shared").fetchall() == [(2,)]
    bo.execute("DROP TABLE sq_shared")


def test_grants_on_sequences(target: Target,
                             users: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    """GRANT USAGE / SELECT / UPDATE ON SEQUENCE as PostgreSQL: nextval needs USAGE or
    UPDATE, currval USAGE or SELECT, setval UPDATE; only the owner grants; REVOKE takes
    them back; ALL SEQUENCES IN SCHEMA."""
    bo, cy = users
    bo.execute("CREATE SEQUENCE sq_g")
    assert sqlstate(cy, "GRANT USAGE ON SEQUENCE sq_g TO sq_cy") == "42501"   # not cy's
    assert sqlstate(cy, "SELECT nextval('sq_g')") == "42501"
    bo.execute("GRANT SELECT ON SEQUENCE sq_g TO sq_cy")
    assert sqlstate(cy, "SELECT nextval('sq_g')") == "42501"
    bo.execute("GRANT USAGE ON SEQUENCE public.sq_g TO sq_cy")
    assert cy.execute("SELECT nextval('sq_g')").fetchone() == (1,)
    assert sqlstate(cy, "SELECT setval('sq_g', 10)") == "42501"
    bo.execute("GRANT UPDATE ON SEQUENCE sq_g TO sq_cy")
    cy.execute("SELECT setval('sq_g', 10)")
    bo.execute("REVOKE ALL ON SEQUENCE sq_g FROM sq_cy")
    assert sqlstate(cy, "SELECT nextval('sq_g')") == "42501"
    assert sqlstate(bo, "GRANT INSERT ON SEQUENCE sq_g TO sq_cy") == "0LP01"
    bo.execute("DROP SEQUENCE sq_g")
    bo.execute("CREATE SCHEMA sq_bo_s")
    bo.execute("CREATE SEQUENCE sq_bo_s.g START 7")
    bo.execute("GRANT USAGE ON SCHEMA sq_bo_s TO sq_cy")
    assert sqlstate(cy, "SELECT nextval('sq_bo_s.g')") == "42501"
    bo.execute("GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA sq_bo_s TO sq_cy")
    assert cy.execute("SELECT nextval('sq_bo_s.g')").fetchone() == (7,)
    bo.execute("DROP SCHEMA sq_bo_s CASCADE")
