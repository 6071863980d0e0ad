"""Where a prepared point query's time goes, in DuckDB alone and through the server.

The question of issue 11 item 16: ``bench/wire.py``'s prepared point query
(``SELECT s FROM wire_t WHERE i = $1``, psycopg, one client) runs at about
0.55x of DuckDB's own in-process rate; where does the rest go? Two parts:

1. DuckDB alone, in this process, on the same table in a database file (the
   server's kind of storage): the statement's wall time per execution at
   DuckDB's default thread count and with ``threads=1``, each with and without
   a 0.3 ms pause between executions (the server waits for its client between
   two queries: a sleep, a busy-wait, or 8 MB of memory touched); ``SELECT 1``
   (DuckDB's floor per statement); and DuckDB's own
   profiler (``enable_profiling='json'``, ``profiling_mode='detailed'``), which
   splits one execution into binding/planning, optimizer, physical planning and
   execution.
2. Through the server: ``quackml serve`` in a subprocess whose connection
   classes are wrapped (in that subprocess only, by this script; the server's
   code is unchanged) to time, per protocol message and per call into DuckDB,
   the wall and the connection thread's CPU time, and the wait in ``recv``
   for the client's next message. The client's own CPU time and the server
   process's CPU time (all threads: the connection thread, DuckDB's workers,
   the rest) are measured around the run.

Prints the figures per query. Timings are medians of rounds (part 1) or means
over the run (part 2); on a shared machine read them next to ``uptime``.
Run: ``.venv/bin/python bench/point_breakdown.py [--rows N] [--duckdb-threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERY = "SELECT s FROM wire_t WHERE i = $1"
CREATE = "CREATE TABLE wire_t (i INTEGER PRIMARY KEY, d DOUBLE, s VARCHAR, dt DATE, b BOOLEAN)"
FILL = ("INSERT INTO wire_t SELECT g::INTEGER, g * 0.5, 'name ' || g, "
        "DATE '2020-01-01' + (g % 1000)::INTEGER, g % 2 = 0 FROM range({rows}) t(g)")


# -- part 1: DuckDB alone -------------------------------------------------------------
def duckdb_alone(folder: Path, rows: int, rounds: int) -> None:
    import duckdb

    cons: dict[str, duckdb.DuckDBPyConnection] = {}
    for threads in ("default", "1"):
        config: dict[str, str | bool | int | float | list[str]] = \
            {} if threads == "default" else {"threads": threads}
        con = duckdb.connect(str(folder / f"alone-{threads}.duckdb"), config=config)
        con.execute(CREATE)
        con.execute(FILL.format(rows=rows))
        con.execute("CHECKPOINT")
        cons[threads] = con
    def point(con: duckdb.DuckDBPyConnection) -> Callable[[int], object]:
        return lambda k: con.execute(QUERY, [k]).fetchall()

    def select_1(con: duckdb.DuckDBPyConnection) -> Callable[[int], object]:
        return lambda k: con.execute("SELECT 1").fetchall()

    junk = bytearray(8 << 20)

    def nothing() -> None:
        pass

    def sleep() -> None:
        time.sleep(0.0003)

    def busy_wait() -> None:
        until = time.perf_counter() + 0.0003
        while time.perf_counter() < until:
            pass

    def touch_8mb() -> None:   # evicts the caches without leaving the core
        junk[::64] = b"\x01" * (len(junk) // 64)

    # name -> (what runs before each execution, untimed; the execution)
    cases: dict[str, tuple[Callable[[], None], Callable[[int], object]]] = {}
    for threads, con in cons.items():
        cases[f"point query, threads={threads}"] = (nothing, point(con))
        cases[f"point query, threads={threads}, 0.3 ms sleep before"] = (sleep, point(con))
        if threads == "1":
            cases["point query, threads=1, 0.3 ms busy-wait before"] = (busy_wait, point(con))
            cases["point query, threads=1, 8 MB touched before"] = (touch_8mb, point(con))
        cases[f"SELECT 1, threads={threads}"] = (nothing, select_1(con))
    # per case: wall, CPU of the calling thread, CPU of DuckDB's other threads
    spent: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    n = 200
    for r in range(rounds):   # the cases take turns, so that a noisy neighbour weighs on all
        for name, (before, run) in cases.items():
            for k in range(10):
                run(k)
            total = thread = others = 0.0
            for k in range(n):
                before()
                began, process, cpu = time.perf_counter(), time.process_time(), time.thread_time()
                run((k * 7919 + r) % rows)
                total += time.perf_counter() - began
                cpu = time.thread_time() - cpu
                thread += cpu
                others += time.process_time() - process - cpu
            spent[name].append((total / n, thread / n, others / n))
    print("DuckDB alone, in this process (database file), per execution, "
          f"median of {rounds} rounds of {n}:")
    print(f"  {'':<52} {'wall us':>8} {'CPU us':>8} {'other threads CPU us':>21}")
    for name, times in spent.items():
        wall, cpu, others = (statistics.median(t[i] for t in times) * 1e6 for i in range(3))
        print(f"  {name:<52} {wall:8.0f} {cpu:8.0f} {others:21.0f}")
    # DuckDB's profiler: the phases of one execution (threads=1: all on this thread)
    con = cons["1"]
    out = folder / "profile.json"
    con.execute("SET enable_profiling = 'json'")
    con.execute("SET profiling_mode = 'detailed'")
    con.execute(f"SET profiling_output = '{out}'")
    phases: dict[str, list[float]] = {}
    for k in range(300):
        con.execute(QUERY, [(k * 7919) % rows]).fetchall()
        profile = json.loads(out.read_text())
        for phase, value in (("binding and planning", profile["planner"]["total_time"]),
                             ("optimizer", profile["optimizer"]["total_time"]),
                             ("physical planning", profile["physical_planner"]["total_time"]),
                             ("execution (CPU)", profile["query"]["cpu_time"]),
                             ("total", profile["query"]["total_time"])):
            phases.setdefault(phase, []).append(value)
    con.execute("SET enable_profiling = 'no_output'")
    print("DuckDB's profiler, one execution of the point query (threads=1, profiling "
          "on, so slower than above), median of 300:")
    for phase, values in phases.items():
        print(f"  {phase:<52} {statistics.median(values) * 1e6:7.0f} us")
    for con in cons.values():
        con.close()


# -- part 2: through the server ---------------------------------------------------------
def serve_instrumented(argv: list[str]) -> int:
    """``quackml serve`` with its connection's work timed; the figures are written as
    JSON to $POINT_BREAKDOWN_OUT when the server stops."""
    sys.path.insert(0, str(REPO))
    from duckdb import _seam

    from server import cli
    from server import connection as connection_mod

    stats: dict[str, list[float]] = {}   # name -> [calls, wall s, connection-thread CPU s]
    lock = threading.Lock()

    def note(name: str, wall: float, cpu: float) -> None:
        with lock:
            entry = stats.setdefault(name, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += wall
            entry[2] += cpu

    def timed(name: str, fn: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                note(name, time.perf_counter() - wall, time.thread_time() - cpu)
        return wrapper

    class TimedResult:
        """DuckDB's result: the calls the session makes on it, timed."""

        def __init__(self, result: object) -> None:
            self._result = result

        def __getattr__(self, name: str) -> object:
            value = getattr(self._result, name)
            return timed(f"duckdb: result.{name}()", value) if callable(value) else value

    submit = timed("duckdb: submit (parse, bind, plan, start)", _seam.submit)
    _seam.submit = lambda *a, **k: TimedResult(submit(*a, **k))   # type: ignore[assignment]
    conn_cls = connection_mod.Connection
    dispatch = conn_cls.dispatch

    def timed_dispatch(self: object, msg: object, reader: object) -> bool:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return dispatch(self, msg, reader)  # type: ignore[arg-type]
        finally:
            note(f"message {type(msg).__name__}", time.perf_counter() - wall,
                 time.thread_time() - cpu)

    conn_cls.dispatch = timed_dispatch  # type: ignore[method-assign]
    conn_cls.stream = timed("stream: read batches and encode DataRows",  # type: ignore
                            conn_cls.stream)
    conn_cls.flush = timed("sendall (in Sync's flush)", conn_cls.flush)  # type: ignore
    init = conn_cls.__init__

    def timed_init(self: object, sock: object, *args: object) -> None:
        init(self, sock, *args)  # type: ignore[arg-type]
        recv = sock.recv  # type: ignore[attr-defined]

        class Socket:
            def __getattr__(self, name: str) -> object:
                return getattr(sock, name)

            def recv(self, n: int) -> bytes:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    return recv(n)  # type: ignore[no-any-return]
                finally:
                    note("recv (waiting for the client)", time.perf_counter() - wall,
                         time.thread_time() - cpu)
        self.sock = Socket()  # type: ignore[attr-defined]

    conn_cls.__init__ = timed_init  # type: ignore[method-assign, assignment]
    exit_after_stop = cli._exit_after_stop

    def dump_and_exit() -> None:
        Path(os.environ["POINT_BREAKDOWN_OUT"]).write_text(json.dumps(stats))
        exit_after_stop()

    cli._exit_after_stop = dump_and_exit  # type: ignore[assignment]
    return cli.main(argv)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_server(folder: Path, rows: int, seconds: float, extra: list[str]) -> None:
    import psycopg

    sys.path.insert(0, str(REPO))
    from bench.wire import SUPERUSER, SUPERUSER_PW, load, quackml_process

    out = folder / "server.json"
    with quackml_process(folder, extra, (sys.executable, __file__, "--serve-instrumented"),
                         {"POINT_BREAKDOWN_OUT": str(out)}) as (port, proc):
        dsn = (f"host=127.0.0.1 port={port} user={SUPERUSER} password={SUPERUSER_PW} "
               "dbname=quackml")
        load(dsn, rows, False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.cursor()
            for k in range(200):   # warm-up
                cur.execute("SELECT s FROM wire_t WHERE i = %s", (k,), prepare=True)
                cur.fetchone()
            out.unlink(missing_ok=True)
            server_cpu = process_cpu(proc.pid)
            client_cpu = time.thread_time()
            began = time.perf_counter()
            done = 0
            while time.perf_counter() - began < seconds:
                for _ in range(50):
                    cur.execute("SELECT s FROM wire_t WHERE i = %s",
                                ((done * 7919) % rows,), prepare=True)
                    cur.fetchone()
                    done += 1
            wall = time.perf_counter() - began
            client_cpu = time.thread_time() - client_cpu
            server_cpu = process_cpu(proc.pid) - server_cpu
    stats = json.loads(out.read_text())
    queries = stats["message Bind"][0]   # one Bind per execution (the load used Query)
    print(f"\nThrough the server ({' '.join(extra) or 'default settings'}): {done} queries "
          f"in {wall:.1f} s, {done / wall:,.0f} q/s, {wall / done * 1e6:.0f} us per query")
    print(f"  client (psycopg) CPU per query            {client_cpu / done * 1e6:7.0f} us")
    print(f"  server process CPU per query, all threads {server_cpu / done * 1e6:7.0f} us")
    print("  server's connection thread, per query (the warm-up's queries included):")
    print(f"    {'':<50} {'wall us':>8} {'CPU us':>8}")
    for name, (_calls, spent, cpu) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        if name.startswith("message ") and name[8:] not in ("Bind", "Describe", "Execute",
                                                              "Sync"):
            continue
        print(f"    {name:<50} {spent / queries * 1e6:8.0f} {cpu / queries * 1e6:8.0f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-instrumented":
        raise SystemExit(serve_instrumented(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of part 1")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of part 2")
    parser.add_argument("--duckdb-threads", type=int, action="append", default=None,
                        help="run part 2 with this --duckdb-threads too (repeatable)")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="quackml-point-") as tmp:
        folder = Path(tmp)
        duckdb_alone(folder, args.rows, args.rounds)
        for threads in [None, *(args.duckdb_threads or [])]:
            sub = folder / f"server-{threads}"
            sub.mkdir()
            through_server(sub, args.rows, args.seconds,
                           [] if threads is None else ["--duckdb-threads", str(threads)])
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
