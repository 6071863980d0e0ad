"""Crash safety with real processes and real signals: kill -9 of the server
during inserts and during training, and of a training worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ServerProcess, wait_for_state
from tests.conftest import start_server_process as _start

_started: list[ServerProcess] = []


def start_server_process(database: Path, data_dir: Path, *extra: str) -> ServerProcess:
    proc = _start(database, data_dir, *extra)
    _started.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_server_left_behind() -> object:
    """A failing test must not leave a server process running."""
    yield None
    while _started:
        proc = _started.pop()
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # that thread just ended
        out.extend(int(c) for c in text)
    return out


def _training_worker(server_pid: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(server_pid):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmd:
                return child
        time.sleep(0.1)
    raise AssertionError("no training worker process appeared")


def test_kill9_during_inserts_keeps_every_committed_row(tmp_path: Path) -> None:
    db, data = tmp_path / "quackml.duckdb", tmp_path / "data"
    first = start_server_process(db, data, "--no-samples")
    acknowledged = 0
    with psycopg.connect(first.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE events (i INTEGER)")
    stop = threading.Event()

    def insert() -> None:
        nonlocal acknowledged
        try:
            with psycopg.connect(first.dsn(), autocommit=True) as c:
                i = 0
                while not stop.is_set():
                    c.execute("INSERT INTO events VALUES (%s)", [i])
                    acknowledged = i + 1
                    i += 1
        except psycopg.OperationalError:
            pass  # the server was killed under us

    thread = threading.Thread(target=insert)
    thread.start()
    time.sleep(1.5)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    stop.set()
    thread.join()
    assert acknowledged > 10
    second = start_server_process(db, data, "--no-samples")
    try:
        with psycopg.connect(second.dsn(), autocommit=True) as c:
            count, top = c.execute("SELECT count(*), max(i) FROM events").fetchone()  # type: ignore[misc]
        assert count >= acknowledged
        assert count == top + 1  # no holes: rows are the committed prefix
    finally:
        second.stop()


def test_kill9_during_training_resumes_after_restart(tmp_path: Path) -> None:
    db, data = tmp_path / "quackml.duckdb", tmp_path / "data"
    first = start_server_process(db, data)
    with psycopg.connect(first.dsn(), autocommit=True) as c:
        c.execute("CREATE MODEL crash_model FROM (SELECT * EXCLUDE (split) FROM credit) "
                  "TARGET status FUNCTION predict_crash SETTINGS (MAX_RUNTIME 6)")
    worker = _training_worker(first.process.pid)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the orphaned worker notices and exits
    assert not Path(f"/proc/{worker}/cmdline").exists() or \
        not Path(f"/proc/{worker}/cmdline").read_bytes()
    second = start_server_process(db, data)
    try:
        with psycopg.connect(second.dsn(), autocommit=True) as c:
            assert wait_for_state(c, "crash_model") == "READY"
            n = c.execute("SELECT count(*) FROM credit WHERE predict_crash(seniority, home, "
                          "time, age, marital, records, job, expenses, income, assets, debt, "
                          "amount, price) IN ('good', 'bad')").fetchone()
            assert n == (4454,)
    finally:
        second.stop()


def test_killed_worker_fails_the_model_and_server_stays_up(tmp_path: Path) -> None:
    db, data = tmp_path / "quackml.duckdb", tmp_path / "data"
    proc = start_server_process(db, data)
    try:
        with psycopg.connect(proc.dsn(), autocommit=True) as c:
            c.execute("CREATE MODEL doomed FROM (SELECT * EXCLUDE (split) FROM credit) "
                      "TARGET status FUNCTION predict_doomed SETTINGS (MAX_RUNTIME 60)")
            os.kill(_training_worker(proc.process.pid), signal.SIGKILL)
            assert wait_for_state(c, "doomed", timeout=30) == "FAILED"
            rows = dict(c.execute("SHOW MODEL doomed").fetchall())
            assert "died" in rows["Failure Reason"]
            assert c.execute("SELECT count(*) FROM credit").fetchone() == (4454,)
            c.execute("DROP MODEL doomed")
    finally:
        proc.stop()
