"""node-postgres (npm `pg` and `pg-cursor`, installed by `make client-deps` from
the committed tests/clients/node/package-lock.json) as its users use it:
untyped parameters (pg sends every value as text with type 0), `= ANY($1)` with
a JS array, INSERT/UPDATE/DELETE ... RETURNING with rowCount, named prepared
statements, an error that keeps the connection, a cursor read in batches, a
transaction, startup options (application_name, statement_timeout) and a Pool
of concurrent clients. tests/clients/node/probe.js runs every step once and prints
`ok <step>` or `FAIL <step>: ...`; each step is one test here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunningServer

NODE_DIR = Path(__file__).parent / "clients" / "node"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node: make system-deps")

STEPS = ["untyped parameters", "types of results", "parameter types", "json column parsed",
         "multi-statement simple query", "create, insert with RETURNING",
         "= ANY($1) with an array", "DELETE RETURNING and rowCount",
         "named prepared statement reused", "rowMode array", "error keeps the connection",
         "pg-cursor reads in batches", "transaction rollback", "startup options", "pool"]


@pytest.fixture(scope="module")
def probe(server: RunningServer) -> dict[str, str]:
    assert NODE is not None
    assert (NODE_DIR / "node_modules" / "pg").is_dir(), \
        "node-postgres is not installed: make node-deps (npm ci in tests/clients/node)"
    out = subprocess.run([NODE, "probe.js", str(server.port)], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=120)
    results: dict[str, str] = {}
    current = ""
    for line in out.stdout.splitlines():
        if line.startswith("ok "):
            current = line[3:]
            results[current] = "ok"
        elif line.startswith("FAIL "):
            current = line[5:].split(":", 1)[0]
            results[current] = line
        elif current and results.get(current, "ok") != "ok":
            results[current] += "\n" + line
    assert set(results) == set(STEPS), out.stdout + out.stderr
    return results


XFAIL = {"json column parsed": "needs JSON columns sent as json, OID 114 "
                               "(issue 11 item 10)"}


@pytest.mark.parametrize("step", [pytest.param(s, marks=pytest.mark.xfail(
    strict=True, reason=XFAIL[s])) if s in XFAIL else s for s in STEPS])
def test_node_postgres(probe: dict[str, str], step: str) -> None:
    assert probe[step] == "ok", probe[step]
