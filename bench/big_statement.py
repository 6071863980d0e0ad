"""Big statements against everyone else: do multi-megabyte statements stall other sessions?

Starts QuackML as a subprocess (SCRAM-SHA-256, a bootstrap superuser, a
non-superuser), so that the clients below do not share the server's GIL. For
each statement shape and each user (superuser, then non-superuser, whose
statements also go through the SQL firewall):

- one client sends the big statement (simple query protocol) while another
  sends ``SELECT 1`` in a loop; prints the big statement's wall time and
  outcome (``ok`` or its SQLSTATE) and the small queries' p50 / p99 / max
  latency during it (and their count), next to the same figures when idle;
- then the big statement is sent again and cancelled (``conn.cancel_safe()``, a
  CancelRequest) ``--cancel-after`` seconds after it was sent: prints the
  time from the cancel to the statement's end, and its outcome.

Shapes: a 4 MB string literal, an IN list of about 4 MB, ``SELECT 1+1+...``
of about 1 MB, one query string of 50,000 ``SELECT 1;``, and an IN list just
under the statement token limit (``in_99k_tokens``, about 0.3 MB). Prints figures,
asserts nothing. Run: ``.venv/bin/python bench/big_statement.py``
(``--shapes literal,in_list`` for a subset).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
# the server as bench/wire.py starts it (this folder is on sys.path when run as a script)
from wire import SUPERUSER, SUPERUSER_PW  # noqa: E402
from wire import quackml_port as quackml  # noqa: E402

USER, USER_PW = "bench_user", "bench-user-pw"

SHAPES: dict[str, Callable[[], str]] = {
    "literal": lambda: "SELECT '" + "x" * 4_000_000 + "'",
    "in_list": lambda: "SELECT 1 WHERE 1 IN (" + ",".join(
        str(i) for i in range(600_000)) + ")",
    "plus": lambda: "SELECT 1" + "+1" * 500_000,
    "multi": lambda: "SELECT 1;" * 50_000,
    # just under server.sql.text.MAX_STATEMENT_TOKENS (100,000): the largest accepted
    "in_99k_tokens": lambda: "SELECT 1 WHERE 1 IN (" + ",".join(
        str(i) for i in range(49_900)) + ")",
}


def connect(port: int, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                           dbname="quackml", autocommit=True)


def run_big(conn: psycopg.Connection, sql: str) -> str:
    """Send ``sql`` (simple query protocol: no parameters); ``ok`` or the SQLSTATE."""
    try:
        conn.execute(sql)
    except psycopg.Error as exc:
        return exc.sqlstate or type(exc).__name__
    return "ok"


def small_latencies(port: int, user: str, password: str, stop: threading.Event,
                    out: list[tuple[float, float]]) -> None:
    """``SELECT 1`` in a loop until ``stop``: (start, latency) of each."""
    with connect(port, user, password) as conn:
        while not stop.is_set():
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchall()
            out.append((start, time.perf_counter() - start))


def figures(latencies: list[float]) -> str:
    if not latencies:
        return "no small query answered"
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"n={len(ms):6d}  p50={statistics.median(ms):8.2f} ms  p99={p99:8.2f} ms  "
            f"max={ms[-1]:8.2f} ms")


def idle(port: int, user: str, password: str, seconds: float = 1.0) -> str:
    stop = threading.Event()
    out: list[tuple[float, float]] = []
    t = threading.Thread(target=small_latencies, args=(port, user, password, stop, out))
    t.start()
    time.sleep(seconds)
    stop.set()
    t.join()
    return figures([lat for _, lat in out])


def under_load(port: int, user: str, password: str, sql: str) -> tuple[float, str, str]:
    """The big statement's seconds and outcome, and the small queries' figures meanwhile."""
    stop = threading.Event()
    out: list[tuple[float, float]] = []
    with connect(port, user, password) as big:
        t = threading.Thread(target=small_latencies, args=(port, user, password, stop, out))
        t.start()
        while not out:   # the small client is up and answered once
            time.sleep(0.01)
        start = time.perf_counter()
        outcome = run_big(big, sql)
        end = time.perf_counter()
        stop.set()
        t.join()
    # every small query that was in flight at some point during the big one
    during = [lat for s, lat in out if s < end and s + lat > start]
    return end - start, outcome, figures(during)


def cancelled(port: int, user: str, password: str, sql: str,
              after: float) -> tuple[float | None, str]:
    """Seconds from the CancelRequest to the big statement's end (None: it ended
    before the cancel was sent), and its outcome."""
    result: list[str] = []
    ended = threading.Event()
    with connect(port, user, password) as big:
        def work() -> None:
            result.append(run_big(big, sql))
            ended.set()
        t = threading.Thread(target=work)
        t.start()
        if ended.wait(after):
            t.join()
            return None, result[0]
        sent = time.perf_counter()
        big.cancel_safe()
        ended.wait()
        took = time.perf_counter() - sent
        t.join()
    return took, result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--cancel-after", type=float, default=0.3,
                        help="seconds between sending a big statement and cancelling it")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp, quackml(Path(tmp)) as port:
        with connect(port, SUPERUSER, SUPERUSER_PW) as admin:
            admin.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
        users = (("superuser", SUPERUSER, SUPERUSER_PW), ("non-superuser", USER, USER_PW))
        for label, user, password in users:
            print(f"\n== {label} ==")
            print(f"{'idle':34s}{'':22s}small: {idle(port, user, password)}")
            for shape in shapes:
                sql = SHAPES[shape]()
                seconds, outcome, small = under_load(port, user, password, sql)
                print(f"{shape:9s} {len(sql) / 1e6:5.2f} MB  big: {seconds:7.2f} s "
                      f"{outcome:6s}  small: {small}", flush=True)
            for shape in shapes:
                sql = SHAPES[shape]()
                took, outcome = cancelled(port, user, password, sql, args.cancel_after)
                when = "ended before the cancel" if took is None else \
                    f"cancel -> end {took:7.3f} s"
                print(f"{shape:9s} cancel after {args.cancel_after} s: {when}  "
                      f"outcome {outcome}", flush=True)


if __name__ == "__main__":
    main()
