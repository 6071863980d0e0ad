"""The per-session memory limit (DuckDB's connection-local operator_memory_limit)
through psycopg against a server started with --session-memory-limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from server.listener import Server
from server.settings import Settings

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
LIMIT = "20MB"           # DuckDB shows it as 19.0 MiB
BIG_GROUP_BY = ("SELECT count(*), sum(n) FROM (SELECT i % 3000000 AS k, count(*) AS n "
                "FROM range(9000000) t(i) GROUP BY k)")


def _settings(folder: Path, **extra: object) -> Settings:
    return Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                    data_dir=str(folder / "data"), samples=False, training_workers=1,
                    training_threads=1, duckdb_threads=2, auth="scram-sha-256",
                    superuser=ADMIN, superuser_password=ADMIN_PW,
                    **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(_settings(tmp_path_factory.mktemp("limited"), session_memory_limit=LIMIT))
    srv.start()
    try:
        with _connect(srv, ADMIN, ADMIN_PW) as c:
            c.execute("CREATE USER walt PASSWORD 'w-pw'")
        yield srv
    finally:
        srv.stop()


def _connect(srv: Server, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(f"host=127.0.0.1 port={srv.port} user={user} password={password} "
                           "dbname=quackml connect_timeout=10", autocommit=True)


def _limit(c: psycopg.Connection) -> str | None:
    # DuckDB's own current_setting (unqualified, the name answers client parameters)
    row = c.execute("SELECT system.main.current_setting('operator_memory_limit')").fetchone()
    assert row is not None
    return row[0]


def test_every_session_has_the_limit(limited: Server) -> None:
    with _connect(limited, ADMIN, ADMIN_PW) as su, _connect(limited, "walt", "w-pw") as walt:
        assert _limit(su) == "19.0 MiB"
        assert _limit(walt) == "19.0 MiB"
        # the global limit is DuckDB's own: no --memory-limit was given
        row = walt.execute("SELECT system.main.current_setting('memory_limit')").fetchone()
        assert row is not None and row[0] != "19.0 MiB"
        # a server-side cursor (DECLARE) runs on its own DuckDB connection: limited too
        with walt.transaction(), walt.cursor(name="walt_cur") as cur:
            cur.execute("SELECT system.main.current_setting('operator_memory_limit') "
                        "FROM range(3)")
            assert cur.fetchall() == [("19.0 MiB",)] * 3


def test_a_superuser_changes_only_their_own_session(limited: Server) -> None:
    with _connect(limited, ADMIN, ADMIN_PW) as su, _connect(limited, ADMIN, ADMIN_PW) as other:
        su.execute("SET operator_memory_limit = '50MB'")
        assert _limit(su) == "47.6 MiB"
        assert _limit(other) == "19.0 MiB"
        su.execute("RESET operator_memory_limit")
        assert _limit(su) is None                      # no limit left for this session
        assert _limit(other) == "19.0 MiB"


@pytest.mark.parametrize("sql", ["SET operator_memory_limit = '100GB'",
                                 "RESET operator_memory_limit",
                                 "SET memory_limit = '100GB'", "SET threads = 1",
                                 "SET temp_directory = '/tmp'"])
def test_a_user_cannot_raise_their_limit(limited: Server, sql: str) -> None:
    with _connect(limited, "walt", "w-pw") as walt:
        with pytest.raises(psycopg.Error) as info:
            walt.execute(sql)
        assert info.value.sqlstate == "42501"
        assert _limit(walt) == "19.0 MiB"


def test_a_big_group_by_completes_and_others_keep_working(limited: Server) -> None:
    """A GROUP BY whose hash table is far past the session's limit completes
    (DuckDB does not fail it with 53200), and other sessions are served meanwhile."""
    result: list[object] = []

    def big() -> None:
        with _connect(limited, "walt", "w-pw") as walt:
            try:
                result.append(walt.execute(BIG_GROUP_BY).fetchone())
            except psycopg.Error as exc:      # kept, to fail below with the reason
                result.append(exc)

    worker = threading.Thread(target=big)
    worker.start()
    with _connect(limited, ADMIN, ADMIN_PW) as other:
        served = 0
        while worker.is_alive() and served < 50:
            assert other.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)
            served += 1
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert served > 0
    assert result == [(3000000, 9000000)]
    with _connect(limited, "walt", "w-pw") as walt:
        assert walt.execute("SELECT 1").fetchone() == (1,)


def test_a_bad_limit_stops_the_start(tmp_path: Path) -> None:
    srv = Server(_settings(tmp_path, session_memory_limit="lots"))
    with pytest.raises(duckdb.Error, match="Memory"):
        srv.start()


@pytest.mark.parametrize("locked", [True, False])
def test_lock_configuration_setting(tmp_path: Path, locked: bool) -> None:
    """Locked (the default), no SQL changes a DuckDB setting, a superuser's included;
    --no-lock-configuration lets a superuser SET threads; a non-superuser never may."""
    srv = Server(_settings(tmp_path, lock_configuration=locked))
    srv.start()
    try:
        with _connect(srv, ADMIN, ADMIN_PW) as su:
            su.execute("CREATE USER lena PASSWORD 'l-pw'")
            if locked:
                with pytest.raises(psycopg.Error) as info:
                    su.execute("SET threads = 1")
                assert info.value.sqlstate == "55P02"
                assert "locked" in str(info.value)
            else:
                su.execute("SET threads = 1")
                assert su.execute("SELECT system.main.current_setting('threads')"
                                  ).fetchone() == (1,)
            with _connect(srv, "lena", "l-pw") as lena, pytest.raises(psycopg.Error) as info:
                lena.execute("SET threads = 2")
            assert info.value.sqlstate == "42501"
    finally:
        srv.stop()
