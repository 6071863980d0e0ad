"""Ordinary SQL through the wire: tags, transaction status, errors."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import pq

from tests.conftest import RunningServer


def test_ddl_dml_tags_and_counts(conn: psycopg.Connection) -> None:
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS tags_t")
    cur.execute("CREATE TABLE tags_t (id INTEGER, name VARCHAR)")
    assert cur.statusmessage == "CREATE TABLE"
    cur.execute("INSERT INTO tags_t VALUES (1, 'a'), (2, 'b'), (3, NULL)")
    assert cur.statusmessage == "INSERT 0 3"
    assert cur.rowcount == 3
    cur.execute("UPDATE tags_t SET name = 'z' WHERE id >= 2")
    assert cur.statusmessage == "UPDATE 2"
    cur.execute("SELECT id, name FROM tags_t ORDER BY id")
    assert cur.fetchall() == [(1, "a"), (2, "z"), (3, "z")]
    assert cur.statusmessage == "SELECT 3"
    cur.execute("CREATE TABLE tags_ctas AS SELECT * FROM tags_t WHERE id > 1")
    assert cur.statusmessage == "SELECT 2"
    cur.execute("DELETE FROM tags_t WHERE id = 1")
    assert cur.statusmessage == "DELETE 1"
    cur.execute("DROP TABLE tags_ctas")
    assert cur.statusmessage == "DROP TABLE"


def test_join_and_types(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT 1::INTEGER, -2::BIGINT, 1.5::DOUBLE, 'x'::VARCHAR, true, NULL::INTEGER, "
        "DATE '2024-02-29', 12.50::DECIMAL(10,2)").fetchone()
    import datetime
    import decimal
    assert row == (1, -2, 1.5, "x", True, None, datetime.date(2024, 2, 29),
                   decimal.Decimal("12.50"))
    rows = conn.execute(
        "SELECT a.i, b.j FROM (SELECT range AS i FROM range(3)) a "
        "JOIN (SELECT range AS j FROM range(3)) b ON a.i = b.j ORDER BY 1").fetchall()
    assert rows == [(0, 0), (1, 1), (2, 2)]


def test_multi_statement_and_empty_query(conn: psycopg.Connection) -> None:
    # without parameters psycopg sends a simple Query: both results come back
    cur = conn.cursor()
    cur.execute("SELECT 1 AS a; SELECT 'two' AS b, 3 AS c")
    assert cur.fetchall() == [(1,)]
    assert cur.nextset()
    assert cur.fetchall() == [("two", 3)]
    assert [d.name for d in cur.description] == ["b", "c"]
    assert cur.statusmessage == "SELECT 1"
    for empty in ("", " ; -- only a comment\n"):
        cur.execute(empty)
        assert cur.pgresult is not None
        assert cur.pgresult.status == pq.ExecStatus.EMPTY_QUERY


def test_transactions_map_to_duckdb(server: RunningServer) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        c.execute("CREATE OR REPLACE TABLE tx_t (v INTEGER)")
        pgconn = c.pgconn
        assert pgconn.transaction_status == pq.TransactionStatus.IDLE
        c.execute("BEGIN")
        assert pgconn.transaction_status == pq.TransactionStatus.INTRANS
        c.execute("INSERT INTO tx_t VALUES (1)")
        c.execute("ROLLBACK")
        assert pgconn.transaction_status == pq.TransactionStatus.IDLE
        assert c.execute("SELECT count(*) FROM tx_t").fetchone() == (0,)
        c.execute("BEGIN")
        c.execute("INSERT INTO tx_t VALUES (2)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM no_such_table")
        assert pgconn.transaction_status == pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.execute("COMMIT")  # in a failed block COMMIT rolls back, as PostgreSQL does
        assert pgconn.transaction_status == pq.TransactionStatus.IDLE
        assert c.execute("SELECT count(*) FROM tx_t").fetchone() == (0,)


def test_psycopg_non_autocommit_commits(server: RunningServer) -> None:
    with psycopg.connect(server.dsn()) as c:
        c.execute("CREATE OR REPLACE TABLE tx_commit (v INTEGER)")
        c.execute("INSERT INTO tx_commit VALUES (7)")
        c.commit()
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        assert c.execute("SELECT v FROM tx_commit").fetchall() == [(7,)]


@pytest.mark.parametrize(("sql", "sqlstate"), [
    ("SELEC 1", "42601"),
    ("SELECT * FROM missing_table_xyz", "42P01"),
    ("SELECT missing_col FROM (SELECT 1 AS a)", "42703"),
    ("SELECT CAST('abc' AS INTEGER)", "22P02"),
    ("SELECT abs(1, 2, 3)", "42883"),
])
def test_errors_have_sqlstate_and_connection_survives(conn: psycopg.Connection, sql: str,
                                                      sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == sqlstate
    assert info.value.diag.severity == "ERROR"
    assert conn.execute("SELECT 42").fetchone() == (42,)


def test_extended_protocol_parameters(conn: psycopg.Connection) -> None:
    import datetime
    row = conn.execute("SELECT %s::INTEGER + 1, %s, %s, %s::DATE, %s IS NULL",
                       [41, "text", 2.5, datetime.date(2024, 1, 2), None]).fetchone()
    assert row == (42, "text", 2.5, datetime.date(2024, 1, 2), True)
    cur = conn.cursor()
    cur.execute("CREATE OR REPLACE TABLE params_t (i INTEGER, s VARCHAR)")
    cur.executemany("INSERT INTO params_t VALUES (%s, %s)", [(i, f"v{i}") for i in range(20)])
    for i in range(8):  # prepared after the 5th execution
        assert conn.execute("SELECT s FROM params_t WHERE i = %s", [i]).fetchone() == (f"v{i}",)


def test_psycopg_binary_results(conn: psycopg.Connection) -> None:
    cur = conn.cursor(binary=True)
    cur.execute("SELECT -5::INTEGER, 2.25::DOUBLE, 'é'::VARCHAR, false, 9000000000::BIGINT")
    assert cur.fetchone() == (-5, 2.25, "é", False, 9000000000)


def test_large_result_streams(conn: psycopg.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT range AS i, range * 0.5 AS d FROM range(200000)")
    total = 0
    n = 0
    for i, _d in cur:
        total += i
        n += 1
    assert n == 200000
    assert total == sum(range(200000))
    assert cur.statusmessage == "SELECT 200000"


def test_cancel_running_query(server: RunningServer) -> None:
    import threading

    with server.connect() as c:
        timer = threading.Timer(0.5, c.cancel_safe)
        timer.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT count(*) FROM range(100000000000) t(a) WHERE a % 7 = 3")
        finally:
            timer.cancel()
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_explain_pragma_call_and_set(conn: psycopg.Connection) -> None:
    cur = conn.execute("EXPLAIN SELECT 1")
    assert cur.fetchall()
    assert next(r[0] for r in conn.execute("PRAGMA version").fetchall()).startswith("v")
    assert conn.execute("CALL pragma_version()").fetchone() is not None
    cur = conn.execute("SET VARIABLE passthrough_var = 1")
    assert cur.statusmessage == "SET"
    cur = conn.execute("CHECKPOINT")
    assert cur.statusmessage == "CHECKPOINT"


def test_returning_rows_tags_and_postgres_arithmetic(server: RunningServer) -> None:
    """INSERT/UPDATE/DELETE ... RETURNING send their rows with PostgreSQL's tag, in the
    simple and the extended protocol; 7/2 is 3 and 1/0 is 22012, as in PostgreSQL."""
    with server.connect() as c:
        c.execute("CREATE OR REPLACE TABLE ret_t (id INTEGER PRIMARY KEY, v TEXT)")
        cur = c.execute("INSERT INTO ret_t VALUES (1, 'a'), (2, 'b') RETURNING id")
        assert (cur.statusmessage, cur.fetchall()) == ("INSERT 0 2", [(1,), (2,)])
        cur = c.execute("UPDATE ret_t SET v = %s WHERE id = %s RETURNING id, v", ["x", 1])
        assert (cur.statusmessage, cur.fetchall()) == ("UPDATE 1", [(1, "x")])
        cur = c.execute("INSERT INTO ret_t VALUES (2, 'z') ON CONFLICT (id) DO UPDATE "
                        "SET v = excluded.v RETURNING v", prepare=True)
        assert (cur.statusmessage, cur.fetchall()) == ("INSERT 0 1", [("z",)])
        cur = c.execute("DELETE FROM ret_t RETURNING id")
        assert cur.statusmessage == "DELETE 2" and sorted(cur.fetchall()) == [(1,), (2,)]
        assert c.execute("DELETE FROM ret_t").statusmessage == "DELETE 0"
        assert c.execute("SELECT 7 / 2, 7 % 3, 7.0 / 2").fetchone() == (3, 1, 3.5)
        for sql in ("SELECT 1 / 0", "SELECT 1.5 / 0", "SELECT 7 % 0"):
            with pytest.raises(psycopg.Error) as info:
                c.execute(sql)
            assert info.value.sqlstate == "22012", sql


def test_settings_that_dump_tools_send(server: RunningServer) -> None:
    """The SET lines at the top of a pg_dump script are accepted and read back."""
    with server.connect() as c:
        for sql in ("SET statement_timeout = 0", "SET lock_timeout = 0",
                    "SET idle_in_transaction_session_timeout = 0",
                    "SET client_encoding = 'UTF8'", "SET standard_conforming_strings = on",
                    "SELECT pg_catalog.set_config('search_path', '', false)",
                    "SET check_function_bodies = false", "SET xmloption = content",
                    "SET client_min_messages = warning", "SET row_security = off",
                    "SET default_tablespace = ''", "SET default_table_access_method = heap",
                    "SET synchronize_seqscans = off",
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                    "BEGIN ISOLATION LEVEL READ COMMITTED", "COMMIT"):
            c.execute(sql)
        assert c.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert c.execute("SHOW default_tablespace").fetchone() == ("",)
        assert c.execute("SHOW xmloption").fetchone() == ("content",)
        with pytest.raises(psycopg.Error) as info:
            c.execute("SET xmloption")
        assert info.value.sqlstate == "42601"


def test_drop_and_truncate_of_several_objects(server: RunningServer) -> None:
    """As pg_restore --clean and ORMs send them: one transaction, all or nothing."""
    with server.connect() as c:
        c.execute('CREATE OR REPLACE TABLE m1 (x INTEGER); '
                  'CREATE OR REPLACE TABLE "M 2" (x INTEGER)')
        c.execute('INSERT INTO m1 VALUES (1); INSERT INTO "M 2" VALUES (2)')
        assert c.execute('TRUNCATE TABLE m1, "M 2" RESTART IDENTITY').statusmessage == \
            "TRUNCATE TABLE"
        assert c.execute('SELECT (SELECT count(*) FROM m1) + (SELECT count(*) FROM "M 2")'
                         ).fetchone() == (0,)
        with pytest.raises(psycopg.Error) as info:
            c.execute('DROP TABLE m1, no_such_table, "M 2"')
        assert info.value.sqlstate == "42P01"
        assert c.execute("SELECT count(*) FROM m1").fetchone() == (0,)   # rolled back
        assert c.execute('DROP TABLE IF EXISTS m1, no_such_table, "M 2"').statusmessage \
            == "DROP TABLE"
        with pytest.raises(psycopg.Error) as info:
            c.execute("SELECT * FROM m1")
        assert info.value.sqlstate == "42P01"


def test_storage_parameters_are_accepted_with_a_notice(server: RunningServer) -> None:
    with server.connect() as c:
        notices: list[str] = []
        c.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        c.execute("CREATE OR REPLACE TABLE ff (x INTEGER, y NUMERIC(10, 2)) "
                  "WITH (fillfactor = 70, autovacuum_enabled = false)")
        c.execute("INSERT INTO ff VALUES (1, 2.5)")
        assert c.execute("SELECT x, y FROM ff").fetchone() is not None
        assert any("fillfactor" in n for n in notices), notices
