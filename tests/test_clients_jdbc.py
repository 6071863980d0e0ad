"""JDBC: pgjdbc (Debian libpostgresql-jdbc-java) driven by a small Java program,
compiled here. Covers server-side prepared statements (reused more than 5
times: pgjdbc switches to named statements and binary transfer), getBoolean,
executeUpdate counts, transactions and DatabaseMetaData (getSchemas,
getTables, getColumns, getPrimaryKeys, getFunctions)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunningServer

JAR = Path("/usr/share/java/postgresql.jar")
JAVAC = shutil.which("javac")
pytestmark = pytest.mark.skipif(JAVAC is None or not JAR.exists(),
                                reason="javac and libpostgresql-jdbc-java: make system-deps")
SOURCE = Path(__file__).parent / "clients" / "JdbcProbe.java"


def test_jdbc_probe(server: RunningServer, tmp_path: Path) -> None:
    assert JAVAC is not None
    shutil.copy(SOURCE, tmp_path / "JdbcProbe.java")
    subprocess.run([JAVAC, "-cp", str(JAR), "JdbcProbe.java"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run(["java", "-cp", f"{JAR}:{tmp_path}", "JdbcProbe", str(server.port)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "update 3" in lines
    assert "product PostgreSQL 15.0" in lines
    assert "schema public" in lines
    assert "table public.jd_t" in lines
    assert [line for line in lines if line.startswith("column ")] == [
        "column id int4", "column name varchar", "column ok bool", "column amount numeric"]
    assert "pk id" in lines
    assert lines[-1] == "OK"
