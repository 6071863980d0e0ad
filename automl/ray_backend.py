"""Training on a Ray cluster (``--training-backend ray``, docs/scale-out.md).

Shape: the server's training pool is unchanged. Each job still runs in a local
worker process (automl.pool), so DROP MODEL's kill, the budget watchdog and the
result file work as with the local backend. With Ray that process becomes a Ray
driver (:func:`run_on_ray`) and FLAML's trials run on the cluster:

1. ``ray.init(address)``; QuackML's own packages (``automl``, ``catalog``) go to
   the cluster with the job (a ``py_modules`` runtime environment), so the
   nodes run the server's exact code and need only the libraries;
2. automl.train.train runs in the driver as for a local job, with FLAML's
   ``use_ray`` and ``n_concurrent_trials`` = the cluster's CPUs: each trial is
   a Ray Tune trial of one CPU on whichever node has one free. The training
   data reaches the trials through Ray's object store (FLAML's
   ``with_parameters``), never through a file: the nodes read no server path;
3. each trial reports its loss and the node it ran on to a small actor
   (:class:`_TrialBoard`) that a driver thread polls into the progress file
   (SHOW MODEL; FLAML writes its own trial log only when a parallel search
   ends);
4. the best trial's fitted estimator comes back to the driver through the
   object store (Tune's result); the driver writes the artifact into the
   version folder as a local job does (catalog.artifact.write_artifact, atomic),
   and the server checks its sha256 and records the version as always.

Why the search loop stays in the driver rather than in a remote task: the
driver's node is the server's machine, which does not fail without the server,
so a lost cluster node can only take trials with it; and a remote task would
need one more Ray worker process started per CREATE MODEL (measured 6-8 s on
this 2-core machine, under load more) before the first trial.

Failures: killing the driver (DROP MODEL, the budget watchdog, the server's
exit) ends its Ray job, and Ray kills the job's trial actors. A node lost
mid-search loses the trials running there: Ray Tune reports them as failed,
FLAML goes on with the other nodes, and the model ends READY (its trials were
fewer). The cluster unreachable at CREATE MODEL: 08001 from
:func:`check_reachable`; unreachable or lost later: the model FAILS with 08006.

Which models: AUTO ON searches (FLAML) only; AUTO OFF, KMEANS and FORECAST
models train in the local worker process (:func:`runs_on_ray`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from automl.errors import BudgetTooSmall, TrainingError
from automl.progress import Poller, ProgressWriter
from catalog.spec import TrainingJob, TrainingResult

log = logging.getLogger("quackml.training.ray")

# Seconds the connection check at CREATE MODEL waits for the cluster's head.
CONNECT_TIMEOUT_S = 3.0
# Seconds kept from FLAML's budget for Ray Tune's end of search (stopping trials,
# collecting results): measured 1-7 s on a loaded 2-core machine.
TUNE_RESERVE_S = 4.0
# FLAML's estimator classes -> the learner names SHOW MODEL uses.
_LEARNER_NAMES = {
    "LGBMEstimator": "lgbm",
    "XGBoostSklearnEstimator": "xgboost",
    "XGBoostLimitDepthEstimator": "xgb_limitdepth",
    "RandomForestEstimator": "rf",
    "ExtraTreesEstimator": "extra_tree",
    "MLPLearner": "mlp",
    "LinearLearner": "linear_learner",
}


class ClusterUnreachable(TrainingError):
    """The Ray cluster cannot be reached (CREATE MODEL, before anything is queued)."""

    sqlstate = "08001"  # sqlclient_unable_to_establish_sqlconnection


class ClusterFailure(TrainingError):
    """The driver could not join the cluster, or lost its connection mid-search."""

    sqlstate = "08006"  # connection_failure


def runs_on_ray(auto: bool, model_type: str | None) -> bool:
    """Whether a model of this kind trains on the cluster with the ray backend: AUTO ON
    searches; AUTO OFF, KMEANS and FORECAST stay in the local worker process."""
    return auto and model_type not in ("KMEANS", "FORECAST")


def _host_port(address: str) -> tuple[str, int]:
    rest = address[len("ray://"):] if address.lower().startswith("ray://") else address
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ClusterUnreachable (08001) unless the head at ``address`` accepts a TCP
    connection within ``timeout_s``: a fast check at CREATE MODEL, before the training
    snapshot is written and the job queued."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterUnreachable(
            f"could not connect to the Ray cluster at {address}: {reason}",
            hint="start the cluster (ray start --head) or correct --ray-address / "
                 "QUACKML_RAY_ADDRESS; --training-backend local trains on this machine") \
            from None


class _TrialBoard:
    """A Ray actor (no CPU): what the trials report, read by the driver."""

    def __init__(self) -> None:
        self.trials = 0
        self.best_loss: float | None = None
        self.best_metric: float | None = None
        self.metric_name: str | None = None
        self.learner: str | None = None
        self.nodes: Counter[str] = Counter()

    def report(self, loss: float, metric: float, metric_name: str, learner: str,
               node: str) -> None:
        self.trials += 1
        self.metric_name = metric_name
        self.learner = _LEARNER_NAMES.get(learner, learner)
        self.nodes[node] += 1
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_metric = float(loss), float(metric)

    def state(self) -> dict[str, Any]:
        return {"trials": self.trials, "best_metric": self.best_metric,
                "metric_name": self.metric_name, "current_learner": self.learner,
                "nodes": dict(self.nodes)}


class TrialReporter:
    """Called in each trial (automl.train.HoldoutMetric): tells the board, without
    waiting, the trial's loss and the node it ran on. Pickled with FLAML's state into
    every trial; holds only the actor handle."""

    def __init__(self, board: Any):
        self.board = board

    def __call__(self, loss: float, metric: float, metric_name: str, learner: str) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()
        self.board.report.remote(loss, metric, metric_name, learner, node)


@dataclasses.dataclass(frozen=True)
class RayOutcome:
    result: TrainingResult
    trial_nodes: dict[str, int]   # node id -> trials it ran
    driver_node: str              # the node the driver (FLAML's search loop) is on


def run_on_ray(job: TrainingJob, address: str, progress: ProgressWriter,
               share: int = 1) -> RayOutcome:
    """Run ``job``'s search with its trials on the cluster at ``address`` (see the module
    docstring). Runs in the worker process, which becomes a Ray driver. ``share``: how many
    searches may run at once (the pool's workers); each keeps at most its share of the
    cluster's CPUs busy, because Ray Tune's reused trial actors hold their CPU for the
    whole search: with every search asking for all CPUs, the first took them all and
    three models of four started together FAILED without a trial."""
    import ray
    import ray.exceptions
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    import automl
    import catalog
    from automl.train import ParallelSearch, train

    deadline = time.monotonic() + job.time_budget_s
    progress.update(phase="loading")
    try:
        ray.init(address=address, namespace="quackml", log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False,
                 runtime_env={"py_modules": [automl, catalog]})
    except Exception as exc:  # noqa: BLE001 -- ray.init raises ConnectionError, TimeoutError ...
        raise ClusterFailure(f"could not join the Ray cluster at {address}: "
                             f"{type(exc).__name__}: {exc}") from None
    try:
        here = ray.get_runtime_context().get_node_id()
        board: Any = ray.remote(num_cpus=0)(_TrialBoard).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        poller = _BoardPoller(board, progress)
        with tempfile.TemporaryDirectory(prefix="quackml-tune-") as tune_dir:
            parallel = ParallelSearch(concurrent_trials=max(1, cpus // max(1, share)),
                                      storage=tune_dir,
                                      reporter=TrialReporter(board), reserve_s=TUNE_RESERVE_S)
            remaining = dataclasses.replace(job,
                                            time_budget_s=max(0.0, deadline - time.monotonic()))
            poller.start()
            try:
                with _trials_wait_for_their_actors():
                    result = train(remaining, progress, parallel)
            except ray.exceptions.RayError as exc:
                raise ClusterFailure(
                    f"the Ray cluster at {address} failed the search: {_reason(exc)}") \
                    from None
            except BudgetTooSmall:
                raise BudgetTooSmall(
                    f"MAX_RUNTIME {job.time_budget_s:g} s is too small to fit any model on the "
                    f"Ray cluster (joining it took "
                    f"{job.time_budget_s - remaining.time_budget_s:.1f} s, and each trial needs "
                    "a Ray worker process started)",
                    hint="increase MAX_RUNTIME, or use --training-backend local for small "
                         "budgets") from None
            finally:
                poller.stop()
        nodes = poller.nodes
        log.info("model %s trained on Ray: %d trials on %d nodes (%s), driver on %s",
                 job.model_name, result.trials, len(nodes), nodes, here)
        return RayOutcome(result, nodes, here)
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _trials_wait_for_their_actors() -> Iterator[None]:
    """Keep a trial with the actor started for it (Ray Tune's TuneController).

    With actor reuse, Tune moves a trial that waits for its actor (still starting, on
    another node) to the first cached actor that frees up, and drops the new actor when it
    is ready. With trials shorter than a worker's start (wa_churn: 0.5 s against 5-15 s)
    the other nodes never got a trial: 34-93 trials all on one node of two. Here a
    PENDING trial with an actor of its own waits for it; the freed actor takes the
    search's next trial instead. Private API of Ray Tune: without the method, nothing is
    changed (trials may then stay on the first node)."""
    try:
        from ray.tune.execution.tune_controller import TuneController
        from ray.tune.experiment import Trial
    except ImportError:
        yield
        return
    original = getattr(TuneController, "_maybe_reuse_cached_actor", None)
    if original is None:
        yield
        return

    def reuse_unless_own_actor_starting(self: Any, trial: Any) -> bool:
        if trial in getattr(self, "_trial_to_actor", {}) and trial.status == Trial.PENDING:
            return False
        return bool(original(self, trial))

    TuneController._maybe_reuse_cached_actor = reuse_unless_own_actor_starting  # type: ignore[method-assign]
    try:
        yield
    finally:
        TuneController._maybe_reuse_cached_actor = original  # type: ignore[method-assign]


class _BoardPoller:
    """Copies the board's state into the progress file every 0.5 s while FLAML searches
    (FLAML writes its trial log only when a parallel search ends)."""

    def __init__(self, board: Any, progress: ProgressWriter, interval_s: float = 0.5):
        self._board = board
        self._progress = progress
        self._poller = Poller(self._poll, interval_s, "ray-trial-board")
        self.nodes: dict[str, int] = {}

    def start(self) -> None:
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()

    def _poll(self) -> None:
        import ray
        import ray.exceptions

        try:
            state = dict(ray.get(self._board.state.remote(), timeout=5))
        except (ray.exceptions.RayError, TimeoutError):
            return   # the board is not up yet, or its node died: progress stays as it was
        self.nodes = dict(state.pop("nodes"))
        if state["trials"]:
            self._progress.update(**state)


def _reason(exc: BaseException) -> str:
    """One line about a Ray failure (its first line; no traceback)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
