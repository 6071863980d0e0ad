"""Wire benchmark: QuackML vs a throwaway PostgreSQL 15, same tables, same client.

Starts PostgreSQL (initdb in a temporary folder, 127.0.0.1 only, stopped at
the end) and QuackML as a subprocess (SCRAM-SHA-256, a bootstrap superuser),
loads a 1,000,000-row, 5-column table (int, double, varchar, date, bool) in
both, and measures with psycopg 3:

- streaming the whole table: rows/s, text and binary results;
- a prepared point query with one parameter: queries/s from 1 and 8 clients;
- COPY FROM STDIN of the same 1,000,000 rows (text format), and COPY TO STDOUT.

QuackML's figures are the superuser's. The point query is also run, against
the same server and interleaved with the superuser's runs, as a non-superuser
(``CREATE USER``; ``GRANT SELECT ON wire_t`` if the server has table grants),
whose every statement goes through the SQL firewall (a cached decision for a
repeated text). The one-time cost of a firewall check is shown as the mean
latency of distinct unprepared point-query texts (a new literal each time, so
the decision cache misses) for both users, next to one text repeated.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pgcluster import postgres  # noqa: E402

SUPERUSER, SUPERUSER_PW = "bench", "bench-su-pw"
USER, USER_PW = "bench_user", "bench-user-pw"


@contextmanager
def quackml(folder: Path, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """A QuackML server with SCRAM-SHA-256 (and ``extra`` arguments to ``quackml
    serve``); yields the superuser's DSN."""
    with quackml_port(folder, extra) as port:
        yield f"host=127.0.0.1 port={port} user={SUPERUSER} password={SUPERUSER_PW} " \
            "dbname=quackml"


@contextmanager
def quackml_port(folder: Path, extra: tuple[str, ...] = ()) -> Iterator[int]:
    """A QuackML server with SCRAM-SHA-256 in a subprocess (superuser SUPERUSER);
    yields its port. bench/big_statement.py starts its server with this too."""
    with quackml_process(folder, extra) as (port, _):
        yield port


@contextmanager
def quackml_process(folder: Path, extra: Sequence[str] = (),
                    command: Sequence[str] = (sys.executable, "-m", "server"),
                    env_extra: dict[str, str] | None = None
                    ) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``command serve`` with SCRAM-SHA-256 in a subprocess (superuser SUPERUSER, a
    throwaway database in ``folder``); yields its port and the process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    env["QUACKML_SUPERUSER_PASSWORD"] = SUPERUSER_PW
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [*command, "serve", "--port", "0", "--http-port", "0", "--database",
         str(folder / "bench.duckdb"), "--data-dir", str(folder / "qdata"), "--no-samples",
         "--training-workers", "1", "--auth", "scram-sha-256", "--superuser", SUPERUSER,
         *extra],
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
        yield port, proc
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


def non_superuser(dsn: str) -> tuple[str, str]:
    """Create the non-superuser and try to grant it SELECT on wire_t (servers
    without table grants refuse the GRANT: 42601, 0A000). Returns its DSN and
    what became of the grant, which the report prints."""
    grant = f"GRANT SELECT ON wire_t TO {USER}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
        try:
            conn.execute(grant)
            outcome = f"{grant}: granted"
        except psycopg.Error as exc:   # no table grants in this server (yet)
            outcome = (f"{grant}: refused with {exc.sqlstate} "
                       f"({str(exc).splitlines()[0][:60]}), skipped")
    user_dsn = dsn.replace(f"user={SUPERUSER} password={SUPERUSER_PW}",
                           f"user={USER} password={USER_PW}")
    return user_dsn, outcome


def statement_latency(dsns: dict[str, str], rows: int, n: int,
                      fresh: bool) -> dict[str, float]:
    """Mean seconds per unprepared point query for each DSN, ``n`` each, in
    interleaved rounds of 50. ``fresh``: a new literal, so a new statement text,
    every time (no cached plan or firewall decision can serve it); otherwise one
    text repeated. The users take turns, in alternating order."""
    conns = {who: psycopg.connect(dsn, autocommit=True) for who, dsn in dsns.items()}
    spent = dict.fromkeys(dsns, 0.0)
    try:
        for conn in conns.values():   # warm-up: connection, first plan, first decision
            conn.execute("SELECT s FROM wire_t WHERE i = 1", prepare=False).fetchone()
        users = list(enumerate(conns.items()))
        for start in range(0, n, 50):
            for j, (who, conn) in users[::-1] if start % 100 else users:   # take turns
                cur = conn.cursor()
                began = time.perf_counter()
                for k in range(start, min(n, start + 50)):
                    # distinct texts across users too, in case anything is cached by text alone
                    key = (k * 7919 + 13 + j * 104_729) % rows if fresh else 1
                    cur.execute(f"SELECT s FROM wire_t WHERE i = {key}", prepare=False)
                    cur.fetchone()
                spent[who] += time.perf_counter() - began
    finally:
        for conn in conns.values():
            conn.close()
    return {who: t / n for who, t in spent.items()}


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


class DuckDBAlone:
    """The ceiling for point queries: DuckDB in this process, no wire, no server, on
    the same table, in memory and in a database file (the server's kind of storage,
    which is slower for a point query: its blocks are read through the buffer
    manager). DuckDB's Python API plans every execute() afresh, as the server does."""

    def __init__(self, folder: Path, rows: int) -> None:
        import duckdb

        self.rows = rows
        self.cons = {"in memory": duckdb.connect(),
                     "database file": duckdb.connect(str(folder / "alone.duckdb"))}
        for con in self.cons.values():
            con.execute("CREATE TABLE wire_t (i INTEGER PRIMARY KEY, d DOUBLE, s VARCHAR, "
                        "dt DATE, b BOOLEAN)")
            con.execute("INSERT INTO wire_t SELECT g::INTEGER, g * 0.5, 'name ' || g, "
                        f"DATE '2020-01-01' + (g % 1000)::INTEGER, g % 2 = 0 FROM range({rows}) "
                        "t(g)")
            con.execute("CHECKPOINT")

    def point_queries(self, where: str, seconds: float = 3.0) -> float:
        con = self.cons[where]
        done, i = 0, 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(50):
                con.execute("SELECT s FROM wire_t WHERE i = $1",
                            [(i * 7919) % self.rows]).fetchall()
                i += 1
            done += 50
        return done / (time.perf_counter() - start)

    def close(self) -> None:
        for con in self.cons.values():
            con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("stream", "point", "copy"), action="append",
                        help="measure only these parts (repeatable; default: all)")
    parser.add_argument("--texts", type=int, default=1000,
                        help="statement texts per user for the first-execution cost")
    parser.add_argument("--duckdb-threads", type=int, default=0,
                        help="QuackML's --duckdb-threads (default: DuckDB's, one per core; "
                             "DuckDB alone, the ceiling, keeps its default)")
    args = parser.parse_args()
    rows = args.rows
    parts = set(args.only or ("stream", "point", "copy"))
    data = copy_data(rows) if "copy" in parts else []
    figures: dict[str, dict[str, float]] = {"PostgreSQL": {}, "QuackML": {},
                                            "non-superuser": {}}
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
    latency: dict[str, dict[str, float]] = {}
    ceiling: dict[str, float] = {}
    grant = ""
    with tempfile.TemporaryDirectory(prefix="quackml-wire-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)   # the postgres user must reach its data folder
        (folder / "pg").mkdir()
        (folder / "q").mkdir()
        alone = DuckDBAlone(folder, rows) if "point" in parts else None
        for name, server in (("PostgreSQL", postgres(folder / "pg")),
                             ("QuackML", quackml(folder / "q", ("--duckdb-threads",
                                                                str(args.duckdb_threads))))):
            with server as dsn:
                load(dsn, rows, name == "PostgreSQL")
                dsns = {name: dsn}
                if name == "QuackML" and "point" in parts:
                    dsns["non-superuser"], grant = non_superuser(dsn)
                for label, _unit, fn in measures:
                    # the point query runs for each user; the users take turns (one
                    # order, then the other), so that a noisy neighbour weighs on both
                    who_runs = dsns if part_of.get(label, "point") == "point" else {name: dsn}
                    for d in who_runs.values():
                        fn(d)  # warm-up (caches, prepared statements, firewall decisions)
                    for turn in range(2):
                        order = list(who_runs.items())
                        for who, d in order[::-1] if turn else order:
                            figures[who][label] = max(figures[who].get(label, 0.0), fn(d))
                        if alone is not None and name == "QuackML" \
                                and label == "point query, 1 client":
                            # the ceiling takes its turns between QuackML's, in this run
                            for where in alone.cons:
                                ceiling[where] = max(ceiling.get(where, 0.0),
                                                     alone.point_queries(where))
                if "point" in parts:
                    latency[name] = statement_latency(dsns, rows, args.texts, fresh=True)
                    latency[name + " repeated"] = statement_latency(dsns, rows, args.texts,
                                                                    fresh=False)
    print(f"{'measure':<24} {'PostgreSQL':>14} {'QuackML':>14} {'ratio':>7}")
    for label, unit, _fn in measures:
        pg, q = figures["PostgreSQL"][label], figures["QuackML"][label]
        print(f"{label:<24} {pg:>10,.0f} {unit:<4}{q:>10,.0f} {unit:<4}{q / pg:>6.2f}x")
    if alone is not None:
        alone.close()
    if "point" not in parts:
        return
    served = figures["QuackML"]["point query, 1 client"]
    print("\nThe ceiling: the same point query run by DuckDB in this process (no wire, no "
          "server),\nits turns taken between QuackML's in this run:")
    print(f"{'point, DuckDB alone':<24} {'DuckDB q/s':>14} {'QuackML q/s':>14} "
          f"{'QuackML/DuckDB':>15}")
    for where, rate in ceiling.items():
        print(f"{'  ' + where:<24} {rate:>14,.0f} {served:>14,.0f} {served / rate:>14.2f}x")
    print(f"\nQuackML as a non-superuser ({USER}, SCRAM; {grant}); the superuser's column "
          "above is the same server, same run:")
    print(f"{'measure':<24} {'PostgreSQL':>14} {'non-superuser':>14} {'ratio':>7}"
          f" {'non-super/super':>16}")
    for label in ("point query, 1 client", "point query, 8 clients"):
        pg, q = figures["PostgreSQL"][label], figures["QuackML"][label]
        ns = figures["non-superuser"][label]
        print(f"{label:<24} {pg:>10,.0f} q/s {ns:>10,.0f} q/s {ns / pg:>6.2f}x "
              f"{ns / q:>15.2f}x")
    fresh, same = latency["QuackML"], latency["QuackML repeated"]
    pg_fresh = latency["PostgreSQL"]["PostgreSQL"]
    pg_same = latency["PostgreSQL repeated"]["PostgreSQL"]
    print(f"\nUnprepared point query, mean ms per query over {args.texts} per user "
          "(new text: a new literal each time, so no cached firewall decision):")
    print(f"{'':<24} {'PostgreSQL':>11} {'superuser':>11} {'non-superuser':>14} "
          f"{'difference':>11}")
    for label, lat, pgl in (("new text each time", fresh, pg_fresh),
                            ("one text repeated", same, pg_same)):
        su, ns = lat["QuackML"] * 1000, lat["non-superuser"] * 1000
        print(f"{label:<24} {pgl * 1000:>11.3f} {su:>11.3f} {ns:>14.3f} {ns - su:>+11.3f}")
    print(f"one firewall check (new text, non-superuser minus superuser): "
          f"{(fresh['non-superuser'] - fresh['QuackML']) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
