"""psql, the PostgreSQL 15 command-line client, as a subprocess."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import RunningServer

PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")


def psql(server: RunningServer, *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PSQL is not None
    cmd = [PSQL, "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "quackml",
           "-X", "-v", "VERBOSITY=verbose", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                          env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})


def test_psql_query_and_multi_statement(server: RunningServer) -> None:
    out = psql(server, "-A", "-t", "-c", "SELECT 40 + 2 AS answer")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    out = psql(server, "-A", "-t", "-c", "CREATE OR REPLACE TABLE psql_t AS SELECT 1 AS v; "
               "INSERT INTO psql_t VALUES (2); SELECT sum(v) FROM psql_t")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "3"


def test_psql_script_with_tags_and_error(server: RunningServer) -> None:
    script = ("CREATE OR REPLACE TABLE psql_s (i INTEGER);\n"
              "INSERT INTO psql_s VALUES (1), (2), (3);\n"
              "SELECT count(*) FROM psql_s;\n"
              "SELECT * FROM psql_no_such_table;\n"
              "SELECT 'still alive';\n")
    out = psql(server, "-f", "-", stdin=script)
    assert "INSERT 0 3" in out.stdout
    assert "still alive" in out.stdout
    assert "ERROR:  42P01" in out.stderr


def test_psql_show_model_errors(server: RunningServer) -> None:
    out = psql(server, "-c", "SHOW MODEL psql_missing_model")
    assert out.returncode != 0
    assert "ERROR:  42704" in out.stderr
    out = psql(server, "-c", "CREATE MODEL m FROM customers TARGET churn FUNCTIO f")
    assert "ERROR:  42601" in out.stderr
    assert "LINE 1" in out.stderr or "syntax error" in out.stderr
