"""A throwaway PostgreSQL cluster (Debian's ``postgresql`` package) for
comparisons: initdb in a temporary folder, 127.0.0.1 only, stopped at the end.
Used by tests that compare QuackML's output with PostgreSQL's and by
``bench/wire.py``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found: install Debian's postgresql package (make system-deps)")
    return found


@contextmanager
def postgres(folder: Path) -> Iterator[str]:
    data = folder / "pgdata"
    port = free_port()
    env = dict(os.environ)
    run_as: list[str] = []
    if os.geteuid() == 0:   # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, pg_bin("initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                   capture_output=True, env=env)
    subprocess.run([*run_as, pg_bin("pg_ctl"), "-D", str(data), "-w", "-l",
                    str(folder / "pg.log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c shared_buffers=256MB", "start"], check=True, capture_output=True, env=env)
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run([*run_as, pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                        "stop"], capture_output=True, env=env)


def throwaway_postgres() -> Iterator[str]:
    """For a pytest fixture: a cluster in a temporary folder, its DSN, removed after."""
    import tempfile

    import pytest

    if shutil.which("runuser") is None and not list(Path("/usr/lib/postgresql").glob("*/bin")):
        pytest.fail("PostgreSQL is not installed: run `make system-deps`")
    folder = Path(tempfile.mkdtemp(prefix="quackml-pg-"))
    try:
        with postgres(folder) as dsn:
            yield dsn
    finally:
        shutil.rmtree(folder, ignore_errors=True)
