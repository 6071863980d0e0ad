"""The ``quackml`` command as an operator meets it (--help and --version:
tests/test_packaging.py): Ctrl-C, and the start-up failures they can fix (one line with a hint, a
non-zero exit, never a traceback). Each test runs ``python -m server`` (the
console script's ``main``) as a real process."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent


def quackml(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60,
            run_as: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    return subprocess.run([*run_as, sys.executable, "-m", "server", *args], cwd=REPO,
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def serve_args(folder: Path, *extra: str) -> list[str]:
    return ["serve", "--port", "0", "--http-port", "0", "--no-samples", "--database",
            str(folder / "db.duckdb"), "--data-dir", str(folder / "data"), *extra]


def _one_line_failure(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("quackml")]
    assert len(errors) == 1, out.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("args", "env", "words"), [
    (["--port", "70000"], {}, ["--port", "70000", "--help"]),
    (["--training-workers", "0"], {}, ["--training-workers", "at least 1"]),
    (["--memory-limit", "lots"], {}, ["--memory-limit", "memory size"]),
    (["--log-level", "loud"], {}, ["--log-level", "DEBUG"]),
    ([], {"QUACKML_PORT": "many"}, ["QUACKML_PORT", "'many'", "--help"]),
    ([], {"QUACKML_AUTH": "none"}, ["QUACKML_AUTH", "scram-sha-256"]),
])
def test_bad_setting_value(tmp_path: Path, args: list[str], env: dict[str, str],
                           words: list[str]) -> None:
    _one_line_failure(quackml(*serve_args(tmp_path, *args), env=env), *words)


def test_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = quackml(*serve_args(tmp_path, "--port", str(port)))
    _one_line_failure(out, f"port {port}", "already in use", "--port")


def test_database_locked_by_another_process(tmp_path: Path) -> None:
    """A second server on the same database file (here the holder is this test
    process; DuckDB's lock is the same whoever holds it)."""
    holder = duckdb.connect(str(tmp_path / "db.duckdb"))
    try:
        out = quackml(*serve_args(tmp_path))
    finally:
        holder.close()
    _one_line_failure(out, str(tmp_path / "db.duckdb"), f"in use by process {os.getpid()}",
                      "another QuackML server", "--database")


def test_data_dir_not_writable(tmp_path: Path) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:   # root writes anywhere: run the server as nobody
        setpriv = shutil.which("setpriv")   # util-linux, in every Debian
        assert setpriv, "setpriv (util-linux) is needed to drop root in this test"
        run_as = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        tmp_path.chmod(0o755)
    else:
        folder.chmod(0o555)
    out = quackml(*serve_args(folder), run_as=run_as)
    _one_line_failure(out, str(folder / "data"), "writable", "--data-dir")


def test_ctrl_c_stops_in_phases_without_tracebacks(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, while a
    training worker is still booting (importing scikit-learn): the server stops
    in order, one line per phase, and no worker prints a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "server", *serve_args(tmp_path,
                             "--training-workers", "1", "--training-threads", "1")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"listening on [\d.]+:(\d+)", first)
        assert match, first + proc.stderr.read() if proc.stderr else first
        dsn = f"host=127.0.0.1 port={match.group(1)} user=quackml dbname=quackml"
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE t AS SELECT i AS x, i % 2 AS y FROM range(600) r(i)")
            c.execute("CREATE MODEL m FROM t TARGET y FUNCTION f IAM_ROLE default "
                      "SETTINGS (S3_BUCKET 'b', MAX_RUNTIME 60)")
            worker = _wait_for_worker(proc.pid)
            time.sleep(0.3)   # the worker is booting: importing scikit-learn, LightGBM ...
            # ignored from its first instruction (a KeyboardInterrupt traceback from a
            # booting worker races the server's kill, so the output alone may miss it)
            ignored = int(re.findall(r"SigIgn:\s*(\w+)", Path(f"/proc/{worker}/status")
                                     .read_text())[0], 16)
            assert ignored & (1 << (signal.SIGINT - 1)), "the worker does not ignore SIGINT"
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err, err
    phases = [line for line in out.splitlines() if line.startswith("QuackML shutdown:")]
    assert [p.split(": ", 1)[1].split(" ")[0] for p in phases] == [
        "SIGINT", "stopped", "training", "scoring", "database", "stopped"], out
    assert "1 running job will resume" in out, out
    deadline = time.monotonic() + 10   # no worker outlives the server
    while _group_alive(proc.pid):
        assert time.monotonic() < deadline, subprocess.run(
            ["ps", "-o", "pid,stat,args", "-g", str(proc.pid)], capture_output=True,
            text=True).stdout
        time.sleep(0.1)


def _wait_for_worker(server_pid: int) -> int:
    """The pid of the server's first spawned worker process."""
    deadline = time.monotonic() + 30
    while True:
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server_pid)],
                                  capture_output=True, text=True).stdout.split()
        for pid in children:
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
        assert time.monotonic() < deadline, "no training worker started"
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_while_starting(tmp_path: Path) -> None:
    """Ctrl-C while the server is still importing its modules and opening the
    database: it finishes starting, then stops in order, without a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "server", *serve_args(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err, err
    assert "QuackML shutdown: SIGINT received" in out and "QuackML shutdown: stopped" in out
