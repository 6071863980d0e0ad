"""psycopg 3 beyond plain queries: named cursors, pipeline mode, typed parameters,
SAVEPOINT, DEALLOCATE, client parameters."""

from __future__ import annotations

import datetime
import decimal

import psycopg
import pytest

from tests.conftest import RunningServer


def test_named_cursor_streams_in_pieces(server: RunningServer) -> None:
    with psycopg.connect(server.dsn()) as conn:
        with conn.cursor("pc_named") as cur:
            cur.itersize = 1000
            cur.execute("SELECT range AS i, range * 2 AS j FROM range(%s)", (5000,))
            assert [d.name for d in cur.description] == ["i", "j"]
            assert cur.fetchone() == (0, 0)
            assert cur.fetchmany(3) == [(1, 2), (2, 4), (3, 6)]
            rest = cur.fetchall()
            assert len(rest) == 4996 and rest[-1] == (4999, 9998)
        with conn.cursor("pc_binary", binary=True) as cur:
            cur.execute("SELECT * FROM customers")
            assert sum(1 for _ in cur) == conn.execute(
                "SELECT count(*) FROM customers").fetchone()[0]  # type: ignore[index]
        conn.execute("DECLARE pc_sql CURSOR FOR SELECT range FROM range(10)")
        assert conn.execute("MOVE 3 FROM pc_sql").statusmessage == "MOVE 3"
        assert conn.execute("FETCH 2 FROM pc_sql").fetchall() == [(3,), (4,)]
        conn.execute("CLOSE pc_sql")
        with pytest.raises(psycopg.errors.InvalidCursorName):
            conn.execute("FETCH 1 FROM pc_sql")
        conn.rollback()


def test_hold_cursor_in_autocommit(conn: psycopg.Connection) -> None:
    with conn.cursor("pc_held", withhold=True) as cur:
        cur.execute("SELECT range FROM range(10)")
        assert cur.fetchall()[-1] == (9,)


def test_pipeline_mode(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE pc_pipe (i INTEGER, s VARCHAR)")
    with conn.pipeline():
        cur = conn.cursor()
        for i in range(20):
            cur.execute("INSERT INTO pc_pipe VALUES (%s, %s)", (i, f"s{i}"))
        counted = conn.execute("SELECT count(*) FROM pc_pipe")
    assert counted.fetchone() == (20,)


def test_parameters_of_common_types(conn: psycopg.Connection) -> None:
    values = ("text", None, True, -42, 2**40, 1.25, decimal.Decimal("-12.345"),
              datetime.date(2024, 2, 29), datetime.datetime(2024, 1, 2, 3, 4, 5),
              datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), b"\x00\xffb",
              [1, 2, 3])
    for binary in (False, True):
        row = conn.cursor(binary=binary).execute(
            "SELECT " + ", ".join(["%s"] * len(values)), values).fetchone()
        assert row == values
    # a list of str is sent untyped in text mode (PostgreSQL answers text too)
    assert conn.cursor(binary=True).execute("SELECT %b", (["a", None],)).fetchone() == (
        ["a", None],)


def test_savepoints_and_deallocate(server: RunningServer) -> None:
    with psycopg.connect(server.dsn()) as conn:
        conn.execute("CREATE OR REPLACE TABLE pc_sp (i INTEGER)")
        with conn.transaction():
            conn.execute("INSERT INTO pc_sp VALUES (1)")
            with conn.transaction():    # SAVEPOINT ... RELEASE
                conn.execute("INSERT INTO pc_sp VALUES (2)")
        assert conn.execute("SELECT count(*) FROM pc_sp").fetchone() == (2,)
        conn.commit()
        with pytest.raises(psycopg.errors.FeatureNotSupported), conn.transaction():
            conn.execute("SAVEPOINT a")
            conn.execute("INSERT INTO pc_sp VALUES (3)")
            conn.execute("ROLLBACK TO SAVEPOINT a")
        conn.rollback()
        for _ in range(3):
            conn.execute("SELECT %s::INTEGER", (1,), prepare=True)
        conn.execute("DEALLOCATE ALL")
        assert conn.execute("SELECT %s::INTEGER", (2,), prepare=True).fetchone() == (2,)


def test_client_parameters(conn: psycopg.Connection) -> None:
    assert conn.info.parameter_status("server_version") == "15.0"
    conn.execute("SET application_name = 'pc app'")
    assert conn.info.parameter_status("application_name") == "pc app"
    assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("pc app",)
    conn.execute("RESET application_name")
    assert conn.execute("SHOW application_name").fetchone() == ("",)
    with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
        conn.execute("SET client_encoding = 'LATIN1'")
    assert conn.execute("SELECT version()").fetchone()[0].startswith(  # type: ignore[index]
        "PostgreSQL 15.0")


@pytest.mark.parametrize("binary", [False, True])
def test_union_values_are_their_members_text(conn: psycopg.Connection, binary: bool) -> None:
    """DuckDB UNION values (no PostgreSQL equivalent) arrive as text: the member's
    value as DuckDB casts it to VARCHAR, not a JSON rendering of it."""
    cur = conn.cursor(binary=binary)
    rows = cur.execute(
        "SELECT u, u::VARCHAR AS duck FROM (VALUES "
        "(union_value(n := 'boolrecv')::UNION(n VARCHAR, i INTEGER)), "
        "(union_value(i := -5)::UNION(n VARCHAR, i INTEGER)), "
        "(NULL::UNION(n VARCHAR, i INTEGER)), "
        "(union_value(n := 'it''s \"q\"')::UNION(n VARCHAR, i INTEGER))) t(u)").fetchall()
    assert cur.description is not None and cur.description[0].type_code == 25  # text
    assert [r[0] for r in rows] == ["boolrecv", "-5", None, "it's \"q\""]
    assert [r[0] for r in rows] == [r[1] for r in rows]
