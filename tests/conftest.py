"""Fixtures: a real QuackML server on 127.0.0.1:0, real clients.

``server`` runs in this process (its listener thread and connection threads
are real; clients talk to it over TCP). ``server_process`` starts
``quackml serve`` as a subprocess for restart tests. Readiness is waited
for, never slept for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from server.listener import Server
from server.settings import Settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class RunningServer:
    host: str
    port: int
    data_dir: Path

    def dsn(self, **extra: str) -> str:
        parts = {"host": self.host, "port": str(self.port), "user": "tester",
                 "dbname": "quackml", "connect_timeout": "10", **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def connect(self, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.dsn(), autocommit=True, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("quackml")
    settings = Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                        data_dir=str(folder / "data"), samples=True, training_workers=2,
                        training_threads=1)
    srv = Server(settings)
    srv.start()
    try:
        yield RunningServer("127.0.0.1", srv.port, folder / "data")
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def pg() -> Iterator[str]:
    """One throwaway PostgreSQL 15 for the session's side-by-side tests (each module's
    tables carry its own prefix; a module that needs a database of its own defines its
    own ``pg``)."""
    from tests.pgcluster import throwaway_postgres

    yield from throwaway_postgres()


@contextmanager
def side_by_side(server: RunningServer, pg: str, setup: Sequence[str] = (),
                 teardown: Sequence[str] = ()
                 ) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """A PostgreSQL connection and a QuackML one (autocommit), each after ``setup`` ran
    on it; ``teardown`` runs on both at the end."""
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        for c in (p, q):
            for stmt in setup:
                c.execute(stmt)
        yield p, q
        for c in (p, q):
            for stmt in teardown:
                c.execute(stmt)


@pytest.fixture
def conn(server: RunningServer) -> Iterator[psycopg.Connection]:
    with server.connect() as c:
        yield c


def wait_for_state(conn: psycopg.Connection, model: str, timeout: float = 300.0) -> str:
    """Poll SHOW MODEL until the model leaves TRAINING; return the final state."""
    deadline = time.monotonic() + timeout
    while True:
        rows = dict(conn.execute(f"SHOW MODEL {model}").fetchall())
        if rows["Model State"] != "TRAINING":
            return str(rows["Model State"])
        if time.monotonic() > deadline:
            raise AssertionError(f"{model} still TRAINING after {timeout} s: {rows}")
        time.sleep(0.5)


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    lines: list[str]

    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=tester dbname=quackml connect_timeout=10"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server_process(database: Path, data_dir: Path, *extra: str) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
           "--database", str(database),
           "--data-dir", str(data_dir), *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening on [\d.]+:(\d+)", line)
        if match:
            threading.Thread(target=_drain, args=(proc, lines), daemon=True).start()
            return ServerProcess(proc, int(match.group(1)), lines)
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


def _drain(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
