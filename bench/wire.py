"""Wire benchmark: QuackML vs a throwaway PostgreSQL 15, same tables, same client.

Starts PostgreSQL (initdb in a temporary folder, 127.0.0.1 only, stopped at
the end) and QuackML as a subprocess, loads a 1,000,000-row, 5-column table
(int, double, varchar, date, bool) in both, and measures with psycopg 3:

- streaming the whole table: rows/s, text and binary results;
- a prepared point query with one parameter: queries/s from 1 and 8 clients;
- COPY FROM STDIN of the same 1,000,000 rows (text format), and COPY TO STDOUT.

Prints each figure and the ratio QuackML / PostgreSQL. Run: `make bench`
(or `.venv/bin/python bench/wire.py [--rows N] [--only stream|point|copy ...]`).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pgcluster import postgres  # noqa: E402


@contextmanager
def quackml(folder: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--database",
         str(folder / "bench.duckdb"), "--data-dir", str(folder / "qdata"), "--no-samples",
         "--training-workers", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    port = None
    while port is None:
        line = proc.stdout.readline()
        if not line:
            sys.exit("QuackML did not start")
        found = re.search(r"listening on [\d.]+:(\d+)", line)
        if found:
            port = int(found.group(1))
    threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
    try:
        yield f"host=127.0.0.1 port={port} user=bench dbname=quackml"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load(dsn: str, rows: int, postgres_flavour: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS wire_t")
        if postgres_flavour:
            conn.execute(
                "CREATE TABLE wire_t AS SELECT g::int AS i, g * 0.5::float8 AS d, "
                "'name ' || g AS s, DATE '2020-01-01' + (g % 1000) AS dt, g % 2 = 0 AS b "
                f"FROM generate_series(0, {rows - 1}) g")
            conn.execute("ALTER TABLE wire_t ADD PRIMARY KEY (i)")
            conn.execute("VACUUM ANALYZE wire_t")
        else:
            conn.execute(
                "CREATE TABLE wire_t (i INTEGER PRIMARY KEY, d DOUBLE, s VARCHAR, dt DATE, "
                "b BOOLEAN)")
            conn.execute(
                "INSERT INTO wire_t SELECT g::INTEGER, g * 0.5, 'name ' || g, "
                "DATE '2020-01-01' + (g % 1000)::INTEGER, g % 2 = 0 "
                f"FROM range({rows}) t(g)")


def stream(dsn: str, binary: bool) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        start = time.perf_counter()
        cur.execute("SELECT i, d, s, dt, b FROM wire_t")
        n = len(cur.fetchall())
        return n / (time.perf_counter() - start)


def point_queries(dsn: str, clients: int, rows: int, seconds: float = 3.0) -> float:
    counts = [0] * clients

    def work(k: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.cursor()
            i = k
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                for _ in range(50):
                    cur.execute("SELECT s FROM wire_t WHERE i = %s", ((i * 7919) % rows,),
                                prepare=True)
                    cur.fetchone()
                    i += 1
                counts[k] += 50

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def copy_in(dsn: str, data: list[bytes], rows: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS wire_copy")
        conn.execute("CREATE TABLE wire_copy (i INTEGER, d DOUBLE PRECISION, s VARCHAR, "
                     "dt DATE, b BOOLEAN)")
        cur = conn.cursor()
        start = time.perf_counter()
        with cur.copy("COPY wire_copy FROM STDIN") as copy:
            for block in data:
                copy.write(block)
        elapsed = time.perf_counter() - start
        got = conn.execute("SELECT count(*) FROM wire_copy").fetchone()
        assert got == (rows,), got
        return rows / elapsed


def copy_out(dsn: str, rows: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        start = time.perf_counter()
        lines = 0
        with cur.copy("COPY wire_t TO STDOUT") as copy:
            for data in copy:
                lines += bytes(data).count(b"\n")
        assert lines == rows, (lines, rows)
        return rows / (time.perf_counter() - start)


def copy_data(rows: int) -> list[bytes]:
    lines = [f"{g}\t{g * 0.5}\tname {g}\t2020-{1 + g % 12:02d}-{1 + g % 28:02d}\t"
             f"{'t' if g % 2 == 0 else 'f'}\n" for g in range(rows)]
    return ["".join(lines[k:k + 10_000]).encode() for k in range(0, rows, 10_000)]


def duckdb_point_queries(rows: int, seconds: float = 3.0) -> float:
    """The ceiling for point queries: DuckDB in this process, no wire, no server.

    DuckDB's Python API plans every execute() afresh (it keeps no prepared
    plan to reuse), which is most of a QuackML point query's time."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE wire_t (i INTEGER PRIMARY KEY, d DOUBLE, s VARCHAR, dt DATE, "
                "b BOOLEAN)")
    con.execute("INSERT INTO wire_t SELECT g::INTEGER, g * 0.5, 'name ' || g, "
                f"DATE '2020-01-01' + (g % 1000)::INTEGER, g % 2 = 0 FROM range({rows}) t(g)")
    done, i = 0, 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            con.execute("SELECT s FROM wire_t WHERE i = $1", [(i * 7919) % rows]).fetchone()
            i += 1
        done += 50
    rate = done / (time.perf_counter() - start)
    con.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("stream", "point", "copy"), action="append",
                        help="measure only these parts (repeatable; default: all)")
    args = parser.parse_args()
    rows = args.rows
    parts = set(args.only or ("stream", "point", "copy"))
    data = copy_data(rows) if "copy" in parts else []
    figures: dict[str, dict[str, float]] = {"PostgreSQL": {}, "QuackML": {}}
    measures: list[tuple[str, str, Callable[[str], float]]] = [
        ("stream text", "rows/s", lambda dsn: stream(dsn, False)),
        ("stream binary", "rows/s", lambda dsn: stream(dsn, True)),
        ("point query, 1 client", "q/s", lambda dsn: point_queries(dsn, 1, rows)),
        ("point query, 8 clients", "q/s", lambda dsn: point_queries(dsn, 8, rows)),
        ("COPY FROM STDIN", "rows/s", lambda dsn: copy_in(dsn, data, rows)),
        ("COPY TO STDOUT", "rows/s", lambda dsn: copy_out(dsn, rows)),
    ]
    part_of = {"stream text": "stream", "stream binary": "stream", "COPY FROM STDIN": "copy",
               "COPY TO STDOUT": "copy"}
    measures = [m for m in measures if part_of.get(m[0], "point") in parts]
    with tempfile.TemporaryDirectory(prefix="quackml-wire-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)   # the postgres user must reach its data folder
        (folder / "pg").mkdir()
        (folder / "q").mkdir()
        for name, server in (("PostgreSQL", postgres(folder / "pg")),
                             ("QuackML", quackml(folder / "q"))):
            with server as dsn:
                load(dsn, rows, name == "PostgreSQL")
                for label, _unit, fn in measures:
                    fn(dsn)  # warm-up (caches, prepared statements)
                    figures[name][label] = max(fn(dsn) for _ in range(2))
    print(f"{'measure':<24} {'PostgreSQL':>14} {'QuackML':>14} {'ratio':>7}")
    for label, unit, _fn in measures:
        pg, q = figures["PostgreSQL"][label], figures["QuackML"][label]
        print(f"{label:<24} {pg:>10,.0f} {unit:<4}{q:>10,.0f} {unit:<4}{q / pg:>6.2f}x")
    if "point" in parts:
        alone = duckdb_point_queries(rows)
        pg = figures["PostgreSQL"]["point query, 1 client"]
        print(f"{'point, DuckDB alone':<24} {pg:>10,.0f} q/s {alone:>10,.0f} q/s "
              f"{alone / pg:>6.2f}x   (the same query in-process, no wire: the ceiling)")


if __name__ == "__main__":
    main()
