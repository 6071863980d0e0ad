"""Overload: max_connections (53300), statement timeout (57014), the DuckDB
memory limit (53200), the bounded training queue (53000 or a cancellable
wait) and a client that hangs up mid-query. Each test checks the SQLSTATE
through psycopg and that the server stays usable afterwards."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from server.listener import Server, timeout_ms
from server.settings import Settings
from tests import rawwire
from tests.conftest import RunningServer

LONG_QUERY = "SELECT sum(i) FROM range(100000000000) t(i)"
TRAIN_TABLE = ("CREATE TABLE IF NOT EXISTS train AS SELECT i::DOUBLE AS x, "
               "(i * 7 % 13)::DOUBLE AS z, (i % 2)::INTEGER AS y FROM range(1000) t(i)")


@contextlib.contextmanager
def running(tmp_path: Path, **overrides: object) -> Iterator[tuple[Server, str]]:
    settings = replace(Settings(host="127.0.0.1", port=0, database=str(tmp_path / "db.duckdb"),
                                data_dir=str(tmp_path / "data"), samples=False,
                                training_workers=1, training_threads=1), **overrides)
    srv = Server(settings)
    srv.start()
    try:
        yield srv, f"host=127.0.0.1 port={srv.port} user=tester dbname=quackml connect_timeout=10"
    finally:
        srv.stop()


def test_max_connections_refuses_with_53300_and_recovers(tmp_path: Path) -> None:
    with running(tmp_path, max_connections=2) as (srv, dsn):
        a = psycopg.connect(dsn, autocommit=True)
        b = psycopg.connect(dsn, autocommit=True)
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(dsn)
        # the raw reply is a FATAL ErrorResponse with SQLSTATE 53300, then close
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall(rawwire.startup_packet())
        msgs, closed = rawwire.read_messages(sock)
        sock.close()
        fields = rawwire.error_fields(msgs[-1][1])
        assert (fields["S"], fields["C"]) == ("FATAL", "53300") and closed
        assert a.execute("SELECT 1").fetchone() == (1,)
        b.close()
        deadline = time.monotonic() + 5
        while len(srv._connections) > 1:   # the server notices the close
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with psycopg.connect(dsn, autocommit=True) as c:
            assert c.execute("SELECT 2").fetchone() == (2,)
        a.close()


def test_statement_timeout_cancels_with_57014(tmp_path: Path) -> None:
    with running(tmp_path, statement_timeout_ms=300) as (_, dsn), \
            psycopg.connect(dsn, autocommit=True) as c:
        assert c.execute("SHOW statement_timeout").fetchone() == ("300",)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout") as info:
            c.execute(LONG_QUERY)
        assert info.value.sqlstate == "57014"
        assert time.monotonic() - started < 10
        assert c.execute("SELECT 1").fetchone() == (1,)
        c.execute("SET statement_timeout = 0")
        assert c.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)


def test_statement_timeout_set_per_session(server: RunningServer) -> None:
    with server.connect() as c:
        c.execute("SET statement_timeout = '200ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            c.execute(LONG_QUERY)
        assert info.value.sqlstate == "57014"
        c.execute("RESET statement_timeout")
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_timeout_values_read_as_postgresql_does() -> None:
    assert timeout_ms("0") == 0 and timeout_ms("250") == 250
    assert timeout_ms("2s") == 2000 and timeout_ms("1min") == 60_000
    assert timeout_ms("nonsense") == 0


def test_memory_limit_gives_53200_and_server_stays_usable(tmp_path: Path) -> None:
    with running(tmp_path, memory_limit="64MB", duckdb_threads=2) as (_, dsn), \
            psycopg.connect(dsn, autocommit=True) as c:
        limit = c.execute("SELECT value FROM duckdb_settings() "
                          "WHERE name = 'memory_limit'").fetchone()
        assert limit is not None and limit[0].startswith("61")
        with pytest.raises(psycopg.Error) as info:
            c.execute("SELECT len(list(i)) FROM range(30000000) t(i)")
        assert info.value.sqlstate == "53200"
        assert c.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)


def _create(c: psycopg.Connection, name: str) -> None:
    c.execute(f"CREATE MODEL {name} FROM train TARGET y FUNCTION f_{name} "
              "SETTINGS (MAX_RUNTIME 60)")


def test_full_training_queue_gives_53000(tmp_path: Path) -> None:
    with running(tmp_path, training_queue_size=0) as (_, dsn), \
            psycopg.connect(dsn, autocommit=True) as c:
        c.execute(TRAIN_TABLE)
        _create(c, "q1")
        with pytest.raises(psycopg.Error) as info:
            _create(c, "q2")
        assert info.value.sqlstate == "53000"
        with pytest.raises(psycopg.Error) as gone:
            c.execute("SHOW MODEL q2")
        assert gone.value.sqlstate == "42704"   # nothing left behind
        c.execute("DROP MODEL q1")              # frees the slot
        _create(c, "q2")
        c.execute("DROP MODEL q2")
        assert c.execute("SELECT count(*) FROM train").fetchone() == (1000,)


def test_full_training_queue_waits_and_the_wait_is_cancellable(tmp_path: Path) -> None:
    with running(tmp_path, training_queue_size=0, training_queue_full="wait") as (_, dsn), \
            psycopg.connect(dsn, autocommit=True) as c, \
            psycopg.connect(dsn, autocommit=True) as other:
        c.execute(TRAIN_TABLE)
        _create(c, "w1")
        # a wait that is cancelled by the client
        timer = threading.Timer(0.5, other.cancel_safe)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            _create(other, "w2")
        assert info.value.sqlstate == "57014"
        # a wait that ends when the slot frees
        threading.Timer(0.5, lambda: c.execute("DROP MODEL w1")).start()
        started = time.monotonic()
        _create(other, "w2")
        assert time.monotonic() - started >= 0.4
        other.execute("DROP MODEL w2")
        assert other.execute("SELECT 1").fetchone() == (1,)


def test_client_hanging_up_mid_query_frees_its_session(tmp_path: Path) -> None:
    with running(tmp_path) as (srv, dsn):
        sock = rawwire.connect("127.0.0.1", srv.port)
        sock.sendall(rawwire.query(LONG_QUERY))
        deadline = time.monotonic() + 5
        while not any(c.busy_since for _, c in srv._connections.values()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sock.close()
        deadline = time.monotonic() + 5
        while srv._connections:   # the query was interrupted and the session closed
            assert time.monotonic() < deadline, "the hung-up session was not freed"
            time.sleep(0.02)
        with psycopg.connect(dsn, autocommit=True) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
