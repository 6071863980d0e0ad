"""Benchmark: training on the local backend against a 2-node local Ray cluster.

1. One CREATE MODEL (wa_churn = sample table ``customers``, all columns but
   ``split``, the ``train`` rows, MAX_RUNTIME ``--budget``) on each backend, one
   after the other: trials completed, the F1 and AUC on the ``test`` split
   (scored through the server), seconds from CREATE MODEL to READY and the
   overhead beyond the budget. For Ray also: how many nodes ran trials, and
   how far into the budget the search started (Ray's start-up: the driver
   joining, the job's worker processes and the trial actors starting).
2. Four CREATE MODELs at once on each backend (the same statement, four model
   names): seconds until all four are READY.

Local backend: ``--training-workers`` default for the machine (cores - 1) and
one thread per job, as a default server runs. Ray backend: a
``ray.cluster_utils.Cluster`` on this machine (head + one worker node,
``--node-cpus`` CPUs each), the server with ``--training-backend ray`` and 4
training worker for the single model (its search may use every CPU of the cluster) and
as many as the cluster has CPUs for the four (each search one trial CPU).

    .venv/bin/python bench/scale.py [--budget 60] [--node-cpus 1] [--skip-concurrent]

Prints figures; it is not a test. On a 2-core machine both backends share the
same two cores, so the cluster cannot be faster than local here: the point is
the overhead Ray adds and how it scales (docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from server.listener import Server  # noqa: E402
from server.settings import Settings  # noqa: E402

COLUMNS = ("female, senior_citizen, partner, dependents, tenure, phone_service, "
           "multiple_lines, internet_service, online_security, online_backup, "
           "device_protection, tech_support, streaming_tv, streaming_movies, contract, "
           "paperless_billing, payment_method, monthly_charges, total_charges")
POLL_S = 0.2


@dataclass
class Run:
    backend: str
    seconds: float
    trials: int
    f1: float
    auc: float
    nodes: int | None = None
    search_started_s: float | None = None


def create(conn: psycopg.Connection, name: str, budget: int) -> None:
    conn.execute(f"CREATE MODEL {name} FROM (SELECT {COLUMNS}, churn FROM customers "
                 f"WHERE split = 'train') TARGET churn FUNCTION {name}_f "
                 f"SETTINGS (MAX_RUNTIME {budget})")


def wait_ready(conn: psycopg.Connection, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        show = dict(conn.execute(f"SHOW MODEL {name}").fetchall())
        if show["Model State"] == "READY":
            return
        if show["Model State"] == "FAILED" or time.monotonic() > deadline:
            raise SystemExit(f"{name}: {show['Model State']} {show.get('Failure Reason')}")
        time.sleep(POLL_S)


def scores(conn: psycopg.Connection, name: str) -> tuple[float, float]:
    rows = conn.execute(f"SELECT {name}_f({COLUMNS}), {name}_f_probabilities({COLUMNS}), "
                        "churn FROM customers WHERE split = 'test'").fetchall()
    predicted = [r[0] is True for r in rows]   # churn is BOOLEAN (examples/data/README.md)
    actual = [r[2] is True for r in rows]
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    f1 = 2 * tp / (sum(predicted) + sum(actual))
    p_churn = [_p_churn(r[1]) for r in rows]
    return f1, float(roc_auc_score(actual, p_churn))


def _p_churn(value: object) -> float:
    """P(churn) from the probabilities function's value ({"probabilities", "labels"}; the
    probabilities of F1-tuned models are mapped monotonically, which AUC does not see)."""
    item = value if isinstance(value, dict) else json.loads(str(value))
    return float(item["probabilities"][list(item["labels"]).index(True)])


def one_model(running: tuple[str, int, Path], backend: str, budget: int) -> Run:
    host, port, data_dir = running
    with psycopg.connect(host=host, port=port, user="bench", dbname="quackml",
                         autocommit=True) as conn:
        name = f"scale_{backend}"
        started = time.monotonic()
        create(conn, name, budget)
        wait_ready(conn, name, budget * 3 + 120)
        seconds = time.monotonic() - started
        status = dict(conn.execute(f"SHOW MODEL {name}").fetchall())["Training Job Status"]
        trials = re.search(r"(\d+) trials", str(status))
        f1, auc = scores(conn, name)
    run = Run(backend, seconds, int(trials.group(1)) if trials else -1, f1, auc)
    [result] = [p for p in data_dir.rglob("result.json") if f"/{name}/" in str(p)]
    document = json.loads(result.read_text())
    if "ray" in document:
        run.nodes = len(document["ray"]["trial_nodes"])
    return run


def four_at_once(running: tuple[str, int, Path], backend: str, budget: int) -> float:
    """Four CREATE MODELs issued back to back on one connection (each returns once its job
    is queued, in about a second), then the seconds until all four are READY. (Four
    client threads issuing them at the same moment hit a server bug, "connection is busy
    with another call", on the local backend: reported, not this benchmark's subject.)"""
    host, port, _ = running
    names = [f"four_{backend}_{i}" for i in range(4)]
    with psycopg.connect(host=host, port=port, user="bench", dbname="quackml",
                         autocommit=True) as conn:
        started = time.monotonic()
        for name in names:
            create(conn, name, budget)
        for name in names:
            wait_ready(conn, name, budget * 8 + 300)
        return time.monotonic() - started


class _Skip(Exception):
    pass


def serve(folder: Path, **settings: object) -> tuple[Server, tuple[str, int, Path]]:
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=True, training_threads=1,
                          training_queue_size=16, **settings))  # type: ignore[arg-type]
    srv.start()
    return srv, ("127.0.0.1", srv.port, folder / "data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--node-cpus", type=int, default=1)
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    runs: list[Run] = []
    four: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="quackml-scale-") as tmp:
        srv, running = serve(Path(tmp) / "local")
        try:
            if args.skip_local:
                raise _Skip
            runs.append(one_model(running, "local", args.budget))
            print(f"local: {runs[-1]}", flush=True)
            if not args.skip_concurrent:
                four["local"] = four_at_once(running, "local", args.budget)
                print(f"local, four at once: {four['local']:.1f} s", flush=True)
        except _Skip:
            pass
        finally:
            srv.stop()
        node = {"num_cpus": args.node_cpus, "object_store_memory": 200 * 1024 * 1024,
                "include_dashboard": False}
        # the nodes' workers at normal priority, as on machines of their own (Ray's
        # default nice 15 is for shared desktops; here they share the cores with the
        # server and other runs, docs/scale-out.md)
        os.environ["RAY_worker_niceness"] = "0"  # noqa: SIM112 -- Ray spells it so
        cluster = Cluster(initialize_head=True, head_node_args=node)
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        try:
            # one search at a time may use every CPU of the cluster
            srv, running = serve(Path(tmp) / "ray", training_workers=1,
                                 training_backend="ray", ray_address=cluster.address)
            try:
                runs.append(one_model(running, "ray", args.budget))
                print(f"ray: {runs[-1]}", flush=True)
            finally:
                srv.stop()
            if not args.skip_concurrent:
                # as many searches at once as the cluster has CPUs, one trial CPU each
                srv, running = serve(Path(tmp) / "ray4", training_workers=2 * args.node_cpus,
                                     training_backend="ray", ray_address=cluster.address)
                try:
                    four["ray"] = four_at_once(running, "ray", args.budget)
                    print(f"ray, four at once: {four['ray']:.1f} s", flush=True)
                finally:
                    srv.stop()
        finally:
            cluster.shutdown()

    print()
    print(f"wa_churn, MAX_RUNTIME {args.budget}, Ray: 2 nodes x {args.node_cpus} CPU")
    print(f"{'backend':8} {'trials':>6} {'test F1':>8} {'test AUC':>8} {'READY s':>8} "
          f"{'overhead s':>10} {'nodes':>5} {'4 at once s':>11}")
    for r in runs:
        print(f"{r.backend:8} {r.trials:6d} {r.f1:8.4f} {r.auc:8.4f} {r.seconds:8.1f} "
              f"{r.seconds - args.budget:10.1f} {r.nodes if r.nodes is not None else '':>5} "
              f"{four.get(r.backend, float('nan')):11.1f}")


if __name__ == "__main__":
    main()
