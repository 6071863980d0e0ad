"""Graceful shutdown on SIGTERM of a real server process: running queries are
cancelled, every client gets FATAL 57P01, training workers are stopped,
committed rows survive, the database is checkpointed and the model left
TRAINING is resumed at the next start."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import start_server_process
from tests.test_crash import _training_worker


def test_sigterm_terminates_clients_with_57p01_and_restarts_clean(tmp_path: Path) -> None:
    db, data = tmp_path / "quackml.duckdb", tmp_path / "data"
    first = start_server_process(db, data, "--no-samples", "--training-workers", "1")
    idle = psycopg.connect(first.dsn(), autocommit=True)
    busy = psycopg.connect(first.dsn(), autocommit=True)
    idle.execute("CREATE TABLE kept AS SELECT i::DOUBLE AS x, (i * 7 % 13)::DOUBLE AS z, "
                 "(i % 2)::INTEGER AS y FROM range(1000) t(i)")
    idle.execute("CREATE MODEL m FROM kept TARGET y FUNCTION f_m SETTINGS (MAX_RUNTIME 30)")
    worker = _training_worker(first.process.pid)
    outcome: list[BaseException] = []

    def long_query() -> None:
        try:
            busy.execute("SELECT sum(i) FROM range(100000000000) t(i)")
        except psycopg.Error as exc:
            outcome.append(exc)

    thread = threading.Thread(target=long_query)
    thread.start()
    time.sleep(0.5)   # let the query start running in the server
    os.kill(first.process.pid, signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    thread.join(timeout=10)
    assert outcome and getattr(outcome[0], "sqlstate", None) == "57P01", outcome
    with pytest.raises(psycopg.OperationalError, match="administrator command"):
        idle.execute("SELECT 1")
    idle.close()
    busy.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists(), "the training worker outlived the server"
    wal = Path(str(db) + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the database was not checkpointed"
    second = start_server_process(db, data, "--no-samples", "--training-workers", "1")
    try:
        with psycopg.connect(second.dsn(), autocommit=True) as c:
            assert c.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
            state = dict(c.execute("SHOW MODEL m").fetchall())["Model State"]
            assert state in ("TRAINING", "READY")   # resumed from its snapshot
            c.execute("DROP MODEL m")
    finally:
        second.stop()

