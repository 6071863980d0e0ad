"""Load: many concurrent non-superuser clients mixing small queries, prediction
queries and inserts while a CREATE MODEL trains (issues 6 and 10).

Starts ``quackml serve`` as a subprocess (port 0, throwaway database and data
dir, sample tables, SCRAM-SHA-256 with a bootstrap superuser). The superuser
trains a first model (MODEL_TYPE XGBOOST, a small budget) and waits for READY,
creates ``--users`` users with passwords, grants them EXECUTE on that model
and, if the server has table grants, SELECT on the tables they read and INSERT
on the one they write (it tries, and prints what the server answered). It then
starts a second CREATE MODEL (budget = the run length) and runs ``--clients``
psycopg clients for ``--seconds``, client n logged in as user n % users, so
every statement goes through the SQL firewall. Each client loops over: a point
query on a 100,000-row table (50%), a prediction query scoring the credit rows
of one seniority (25%) and a single-row INSERT of its own sequence (25%). It
prints queries/s, p50/p99 latency per kind, errors, the server's peak resident
memory (VmHWM, training workers excluded) and checks that every acknowledged
insert is in the table afterwards. It exits with status 1 unless there were
zero errors and nothing was lost.
``--as-superuser`` runs the clients as the superuser instead, for comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
SUPERUSER, SUPERUSER_PW = "bench", "bench-su-pw"
USER_PW = "load-user-pw"
FEATURES = ("seniority, home, time, age, marital, records, job, expenses, income, assets, "
            "debt, amount, price")


def start_server(folder: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
    env["QUACKML_SUPERUSER_PASSWORD"] = SUPERUSER_PW
    cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
           "--database", str(folder / "load.duckdb"), "--data-dir", str(folder / "data"),
           "--training-workers", "1", "--training-threads", "2", "--max-connections", "200",
           "--log-level", "WARNING", "--auth", "scram-sha-256", "--superuser", SUPERUSER]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on [\d.]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()],
                             daemon=True).start()
            return proc, int(match.group(1))
    raise SystemExit("server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(c: psycopg.Connection, model: str) -> str:
    while True:
        state = dict(c.execute(f"SHOW MODEL {model}").fetchall())["Model State"]
        if state != "TRAINING":
            return str(state)
        time.sleep(0.2)


def create_users(c: psycopg.Connection, users: list[str]) -> None:
    """The clients' users: EXECUTE on the first model, and table grants if the
    server has them (a server without refuses the GRANT; say so and go on)."""
    names = ", ".join(users)
    for user in users:
        c.execute(f"CREATE USER {user} PASSWORD '{USER_PW}'")
    c.execute(f"GRANT EXECUTE ON MODEL load_first TO {names}")
    for grant in (f"GRANT SELECT ON points, credit TO {names}",
                  f"GRANT SELECT, INSERT ON events TO {names}"):
        try:
            c.execute(grant)
            print(f"{grant}: granted", flush=True)
        except psycopg.Error as exc:
            print(f"{grant}: refused with {exc.sqlstate} "
                  f"({str(exc).splitlines()[0][:60]}), skipped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=8,
                        help="non-superusers the clients log in as (client n: user n %% users)")
    parser.add_argument("--as-superuser", action="store_true",
                        help="run the clients as the superuser (no firewall), for comparison")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="quackml-load-"))
    proc, port = start_server(folder)
    server = f"host=127.0.0.1 port={port} dbname=quackml"
    dsn = f"{server} user={SUPERUSER} password={SUPERUSER_PW}"
    users = [f"load_user{k}" for k in range(args.users)]

    def client_dsn(n: int) -> str:
        if args.as_superuser:
            return dsn
        return f"{server} user={users[n % len(users)]} password={USER_PW}"

    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE points AS SELECT i AS id, i * 0.5 AS v "
                      "FROM range(100000) t(i)")
            c.execute("CREATE TABLE events (client INTEGER, seq INTEGER, ts TIMESTAMP)")
            # MODEL_TYPE XGBOOST: the learner the search may pick changes what a prediction
            # costs (a random forest's is many times an XGBoost model's); pin it so that
            # runs compare
            c.execute("CREATE MODEL load_first FROM (SELECT * EXCLUDE (split) FROM credit) "
                      "TARGET status FUNCTION predict_load MODEL_TYPE XGBOOST "
                      "SETTINGS (MAX_RUNTIME 5)")
            state = wait_ready(c, "load_first")
            learner = dict(c.execute("SHOW MODEL load_first").fetchall())["Model Type"]
            print(f"first model: {state}, model type {learner}", flush=True)
            if not args.as_superuser:
                create_users(c, users)
            c.execute("CREATE MODEL load_during FROM (SELECT * EXCLUDE (split) FROM credit) "
                      f"TARGET status FUNCTION predict_during SETTINGS "
                      f"(MAX_RUNTIME {max(5, int(args.seconds))})")
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: Counter[str] = Counter()
        acknowledged = [0] * args.clients
        stop = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            rng = random.Random(n)
            mine: dict[str, list[float]] = defaultdict(list)
            try:
                conn = psycopg.connect(client_dsn(n), autocommit=True)
            except psycopg.Error as exc:
                with lock:
                    errors[f"connect: {exc.sqlstate}"] += 1
                return
            with conn:
                while not stop.is_set():
                    r = rng.random()
                    started = time.perf_counter()
                    try:
                        if r < 0.5:
                            kind = "point"
                            conn.execute("SELECT v FROM points WHERE id = %s",
                                         [rng.randrange(100000)]).fetchall()
                        elif r < 0.75:
                            kind = "predict"
                            conn.execute(f"SELECT predict_load({FEATURES}) FROM credit "
                                         "WHERE seniority = %s", [rng.randrange(20)]).fetchall()
                        else:
                            kind = "insert"
                            conn.execute("INSERT INTO events VALUES (%s, %s, now())",
                                         [n, acknowledged[n]])
                            acknowledged[n] += 1
                    except psycopg.Error as exc:
                        with lock:
                            errors[f"{kind}: {exc.sqlstate} {str(exc)[:80]}"] += 1
                        continue
                    mine[kind].append(time.perf_counter() - started)
            with lock:
                for k, v in mine.items():
                    latencies[k].extend(v)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        with psycopg.connect(dsn, autocommit=True) as c:
            rows = dict(c.execute("SELECT client, count(*) FROM events GROUP BY client")
                        .fetchall())
            training = dict(c.execute("SHOW MODEL load_during").fetchall())["Model State"]
        missing = sum(max(0, a - rows.get(i, 0)) for i, a in enumerate(acknowledged))
        total = sum(len(v) for v in latencies.values())
        who = "the superuser" if args.as_superuser else f"{len(users)} non-superusers"
        print(f"\n{args.clients} clients as {who} for {elapsed:.1f} s; CREATE MODEL "
              f"load_during was {training} at the end")
        print(f"{'kind':<8} {'queries':>9} {'q/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for kind in ("point", "predict", "insert"):
            v = sorted(latencies[kind])
            if v:
                print(f"{kind:<8} {len(v):>9} {len(v) / elapsed:>9.0f} "
                      f"{v[len(v) // 2] * 1000:>8.2f} {v[int(len(v) * 0.99)] * 1000:>8.2f}")
        every = sorted(x for v in latencies.values() for x in v)
        if every:
            print(f"{'all':<8} {total:>9} {total / elapsed:>9.0f} "
                  f"{every[len(every) // 2] * 1000:>8.2f} "
                  f"{every[int(len(every) * 0.99)] * 1000:>8.2f}")
        print(f"errors: {sum(errors.values())}" +
              "".join(f"\n  {n} x {e}" for e, n in errors.most_common(5)))
        print(f"server peak RSS: {peak_rss_mb(proc.pid):.0f} MB")
        print(f"inserts acknowledged: {sum(acknowledged)}, present: {sum(rows.values())}, "
              f"missing: {missing}")
        failed = sum(errors.values()) > 0 or missing > 0
        print("FAIL: errors or lost inserts" if failed else "OK: zero errors, nothing lost")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
