"""node-postgres (npm `pg` and `pg-cursor`, installed by `make client-deps` from
the committed tests/clients/node/package-lock.json) as its users use it:
untyped parameters (pg sends every value as text with type 0), `= ANY($1)` with
a JS array, INSERT/UPDATE/DELETE ... RETURNING with rowCount, named prepared
statements, an error that keeps the connection, a cursor read in batches, a
transaction, startup options (application_name, statement_timeout) and a Pool
of concurrent clients. tests/clients/node/probe.js runs every step once and prints
`ok <step>` or `FAIL <step>: ...`; each step is one test here. Then
tests/clients/node/compare.js runs statements valid in both systems, in text and
binary format, against QuackML and a throwaway PostgreSQL 15: node-postgres must
see the same rows, type OIDs, formats, command tags and SQLSTATEs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.pgcluster import throwaway_postgres

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
        "node-postgres is not installed: make client-deps (npm ci in tests/clients/node)"
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


XFAIL: dict[str, str] = {}   # step -> why QuackML differs (none now)


@pytest.mark.parametrize("step", [pytest.param(s, marks=pytest.mark.xfail(
    strict=True, reason=XFAIL[s])) if s in XFAIL else s for s in STEPS])
def test_node_postgres(probe: dict[str, str], step: str) -> None:
    assert probe[step] == "ok", probe[step]


# What a node-postgres application sees, QuackML beside PostgreSQL 15: statements
# valid in both, in text and binary result format (`binary: true`; pg parses
# some binary types wrongly, e.g. float8 and timestamptz, and then must do so
# the same way with both servers: the bytes on the wire are equal).
_VALUES: list[tuple[str, list[Any]]] = [
    ("SELECT 1::int AS i, 2::bigint AS b, 3::smallint AS sm, 1.5::float8 AS f, "
     "2.5::real AS r, true AS t, NULL::int AS z", []),
    ("SELECT $1::int + 1 AS n, $2::float8 * 2 AS f, $3::bool AS b", [41, 1.25, "true"]),
    ("SELECT TIMESTAMPTZ '2024-01-02 03:04:05.25+00' AS tz, DATE '2024-02-29' AS d, "
     "TIMESTAMP '1999-12-31 23:59:59.999999' AS ts", []),
    ("SELECT 12.50::numeric(10,2) AS n, -0.001::numeric(6,3) AS m", []),
    ("SELECT INTERVAL '1 day 02:03:04.5' AS iv, INTERVAL '-3 months' AS neg", []),
    ("SELECT ARRAY[1, 2, NULL]::int[] AS a, ARRAY[true, false]::bool[] AS b", []),
    ("SELECT x FROM (VALUES (1), (2), (3)) t(x) WHERE x = ANY($1) ORDER BY x", [[1, 3]]),
    ("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u", []),
    ("SELECT $1::int AS bad", ["x"]),
    ("SELECT $1::int + $2::int AS too_few", [1]),
    ("SELECT $1::int AS too_many", [1, 2]),
    ("SELECT 1 AS none_expected", [5]),
    ("SELECT 1 / 0 AS boom", []),
    ("SET TimeZone = 'UTC'", []),
    ("SHOW TimeZone", []),
    ("SHOW datestyle", []),
    ("SELECT 1 AS a; SELECT 1 / 0; SELECT 3", None),
    ("SELECT $1::date AS d, $2::timestamptz AS t", ["2024-01-02", "2024-01-02T03:04:05.000Z"]),
    ("SELECT 'Infinity'::float8 AS f, '-Infinity'::float8 AS g, 'NaN'::float8 AS n", []),
    ("SELECT ARRAY['a', NULL, 'b c', '\"q\"']::text[] AS a", []),
    ("SELECT x, y FROM (VALUES (1, 2.5), (2, NULL)) t(x, y) ORDER BY x", []),
    ("SELECT 'x'::text AS s, $1::text AS p", ["y"]),
    ("SELECT '{\"a\": [1, 2]}'::json AS j", []),
]
CASES = [{"text": text, "values": values, "binary": binary}
         for text, values in _VALUES for binary in (False, True)]
DIFFERENT: dict[str, str] = {}   # statement prefix -> why QuackML differs (none now)


def _run_cases(port: int, user: str, database: str, folder: Path) -> list[dict[str, Any]]:
    assert NODE is not None
    cases = folder / "cases.json"
    cases.write_text(json.dumps(CASES))
    out = subprocess.run([NODE, "compare.js", str(port), str(cases), user, database],
                         cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == len(CASES), out.stdout
    return lines


@pytest.fixture(scope="module")
def side_by_side(server: RunningServer) -> Iterator[tuple[list[Any], list[Any]]]:
    folder = Path(tempfile.mkdtemp(prefix="quackml-node-"))
    try:
        quack = _run_cases(server.port, "tester", "quackml", folder)
        for dsn in throwaway_postgres():
            port = int(dsn.split("port=")[1].split()[0])
            yield quack, _run_cases(port, "postgres", "postgres", folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _case_param(i: int) -> Any:
    case = CASES[i]
    ident = f"{i // 2}-{'binary' if case['binary'] else 'text'}"
    reason = next((why for start, why in DIFFERENT.items() if case["text"].startswith(start)),
                  None)
    if reason is None:
        return pytest.param(i, id=ident)
    return pytest.param(i, id=ident, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("index", [_case_param(i) for i in range(len(CASES))])
def test_node_postgres_sees_what_postgres_gives(side_by_side: tuple[list[Any], list[Any]],
                                                index: int) -> None:
    quack, postgres = side_by_side
    assert quack[index] == postgres[index], CASES[index]
