"""Process-pool scoring for evaluators that hold the GIL.

scikit-learn models (MODEL_TYPE MLP, LINEAR_LEARNER, AutoML's random forest
and extra trees, KMEANS) score through the library's Python ``predict``: in
the server process, DuckDB's threads take turns on the GIL.
:class:`ScoringPool` runs a few spawned worker processes that score vectors
for the server instead:

- each worker loads an artifact itself, once, from the artifact file,
  checking its sha256 exactly as :func:`catalog.artifact.read_artifact` does
  (it *is* that function), and scores with
  :class:`inference.evaluators.LibraryEvaluator`: the in-process code on the
  same frame. Each worker computes with one thread (BLAS, OpenMP, the
  estimators' own ``n_jobs``), so sums whose order depends on the thread
  count (a forest's average) may differ from the in-process ones in the last
  bits; labels are the same. Every worker that scored a model holds its own
  copy of it (memory: the artifact once per such worker, besides the server's);
- a request is the vector's Arrow arguments as one Arrow IPC stream over the
  worker's own socket pair (``multiprocessing`` Pipe); the answer is the raw
  NumPy result. The calling DuckDB thread waits in a blocking socket read,
  which releases the GIL;
- a worker serves one request at a time; callers check an idle worker out
  and wait for one when all are busy;
- a worker exits when the server process dies (parent watch, as the
  training workers do) or its socket closes;
- a worker that dies during a request fails that query with
  :class:`inference.errors.ScoringWorkerDied` (SQLSTATE 58000) and is
  replaced at once; one found dead while idle is replaced silently;
- :meth:`ScoringPool.release` (DROP MODEL, replace, cache eviction) makes
  every worker forget the model: idle workers at once, busy ones as soon as
  they finish their request. A request for a released model is answered and
  its model forgotten again.

Whether a model kind is scored in the pool by default is the table
:data:`POOL_BY_DEFAULT`, measured with ``bench/inference.py --only pool``
(1,000,000 rows through the server, DuckDB threads = 2); the server setting
``--scoring-pool`` overrides it (``on``/``off``). Vectors smaller than
:data:`MIN_POOL_ROWS` rows (point queries) are scored in process: the round
trip would cost more than it saves.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from catalog.artifact import ModelArtifact
from catalog.frames import flatten
from catalog.workers import exit_with_parent, ignore_interrupts
from inference.errors import ScoringWorkerDied

log = logging.getLogger("quackml.inference")

_CTX = multiprocessing.get_context("spawn")
Args = Sequence[pa.Array | pa.ChunkedArray]

# Model kind (``ModelArtifact.learner``) -> scored in the pool by default. Measured
# with ``bench/inference.py --only pool``: 2 cores, 2 workers, 1,000,000 wa_churn rows
# (19 features, 10 categorical), ``SELECT sum(f(...))`` through psycopg, rows/s (one
# run; three other runs gave pool/in at 2 threads of 1.70-1.96 for mlp, 2.04-2.57
# linear_learner, 3.27-3.85 rf, 1.56-1.98 kmeans):
#
#   kind             threads 2: in process -> pool       threads 1: in process -> pool
#   mlp                     176,419 ->   300,334 (1.70x)        216,279 -> 202,341 (0.94x)
#   linear_learner          170,455 ->   384,088 (2.25x)        225,516 -> 200,255 (0.89x)
#   rf (100 trees)           69,646 ->   241,118 (3.46x)         72,434 -> 125,360 (1.73x)
#   kmeans (k 5)            836,925 -> 1,576,452 (1.88x)      1,172,973 -> 958,987 (0.82x)
#
# The pool wins at 2 threads for every kind, so every kind defaults to it. At 1 thread
# the round trip of one 2,048-row vector (Arrow IPC there, NumPy back, about 0.4-0.9
# ms) costs up to 18% (kmeans, whose predict is 1.5 ms). Scoring in process while no
# other call of the model runs, in the pool otherwise, was tried: as fast as in
# process at 1 thread, but at 2 threads 1.47x instead of 1.90x for mlp (its in-process
# BLAS threads compete with the worker). Forests gain more than the parallelism
# because a worker predicts with one thread (joblib's per-call thread start-up is
# most of an in-process forest predict of one vector). extra_tree runs the random
# forest's code. LightGBM and XGBoost models the compiler cannot take (and models
# with PREPROCESSORS, whose kind is their learner's) are not listed: not measured,
# they stay in process.
POOL_BY_DEFAULT: dict[str, bool] = {
    "mlp": True,
    "linear_learner": True,
    "rf": True,
    "extra_tree": True,
    "kmeans": True,
}

# Vectors below this many rows are scored in process: a point query would pay a round
# trip for a predict that costs less (not tuned; a full vector's round trip is 0.4-0.9
# ms, see above, and most of it grows with the rows).
MIN_POOL_ROWS = 256

# A worker that has not answered one request within this long is killed (one vector
# takes milliseconds; this only catches a hung library call).
ANSWER_TIMEOUT_S = 120.0

# Learners whose estimator is not a local computation (an HTTP endpoint): never pooled.
_NEVER_POOLED = frozenset({"sagemaker"})


def model_kind(artifact: ModelArtifact) -> str:
    return (artifact.learner or type(artifact.estimator).__name__).lower()


def wants_pool(artifact: ModelArtifact, mode: str) -> bool:
    """Whether a model scored by the library evaluator should use the pool."""
    kind = model_kind(artifact)
    if mode == "off" or kind in _NEVER_POOLED:
        return False
    if mode == "on":
        return True
    return POOL_BY_DEFAULT.get(kind, False)


# -- the worker process --------------------------------------------------------

def _worker_main(conn: multiprocessing.connection.Connection, server_pid: int) -> None:
    """Serve requests until the socket closes or the server dies."""
    ignore_interrupts()
    _one_thread()
    exit_with_parent(server_pid)
    # An estimator with n_jobs > 1 that _one_thread did not reach predicts with one
    # thread in a daemon process anyway, and would warn at every call.
    warnings.filterwarnings("ignore", message="Loky-backed parallel loops cannot be called")
    from catalog.artifact import read_artifact
    from inference.evaluators import LibraryEvaluator

    models: dict[str, LibraryEvaluator] = {}
    while True:
        try:
            header = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        op = header["op"]
        try:
            if op == "status":
                conn.send_bytes(pickle.dumps({"ok": True, "models": sorted(models)}))
                continue
            if op == "drop":
                for key in header["keys"]:
                    models.pop(key, None)
                conn.send_bytes(pickle.dumps({"ok": True}))
                continue
            key = header["key"]
            body = conn.recv_bytes() if op == "score" else None
            evaluator = models.get(key)
            if evaluator is None:
                artifact = read_artifact(header["path"], header["sha256"])
                _one_thread(artifact.estimator)
                evaluator = LibraryEvaluator(artifact)
                models[key] = evaluator
            if op == "load":
                conn.send_bytes(pickle.dumps({"ok": True}))
                continue
            assert body is not None
            batch = pa.ipc.open_stream(pa.py_buffer(body)).read_next_batch()
            args = batch.columns
            if header["method"] == "predict_proba":
                result = evaluator.predict_proba(args)
            else:
                result = evaluator.predict(args)
            result = np.ascontiguousarray(result)
            if not header["keep"]:
                models.pop(key, None)
            conn.send_bytes(pickle.dumps({"ok": True, "dtype": result.dtype.str,
                                          "shape": result.shape}))
            conn.send_bytes(result.tobytes() if result.size else b"")
        except Exception as exc:  # noqa: BLE001 - reported to the query; the worker lives on
            try:
                conn.send_bytes(pickle.dumps({
                    "ok": False, "class": type(exc).__name__, "message": str(exc),
                    "detail": getattr(exc, "detail", None), "hint": getattr(exc, "hint", None)}))
            except (OSError, ValueError):
                return


def _one_thread(estimator: Any = None, depth: int = 0) -> None:
    """One BLAS / OpenMP thread in this worker, and estimators that predict with one
    thread: the workers are the parallelism, and a spinning thread team in every worker
    oversubscribes the cores (measured: two KMEANS workers ran 3x slower than one).
    scikit-learn keeps the thread counts of the fit (KMeans ``_n_threads``, forests'
    ``n_jobs``) on the estimator; predictions do not depend on them."""
    if depth == 0:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # also for the libraries the artifact just brought in
    if estimator is None or depth > 8:
        return
    if isinstance(getattr(estimator, "_n_threads", None), int):
        estimator._n_threads = 1
    if isinstance(getattr(estimator, "n_jobs", None), int):
        estimator.n_jobs = 1
    parts: list[Any] = [step for _, step in getattr(estimator, "steps", None) or []]
    parts += [t for _, t, _ in getattr(estimator, "transformers_", None) or []]
    parts += [getattr(estimator, name, None) for name in ("regressor_", "estimator")]
    for part in parts:
        if part is not None and not isinstance(part, str):
            _one_thread(part, depth + 1)


# -- the parent side -------------------------------------------------------------

class _WorkerLost(Exception):
    pass


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    pending_drops: set[str] = field(default_factory=set)

    def call(self, header: dict[str, Any], body: pa.Buffer | None = None) -> dict[str, Any]:
        try:
            self.conn.send_bytes(pickle.dumps(header))
            if body is not None:
                self.conn.send_bytes(body)
            if not self.conn.poll(ANSWER_TIMEOUT_S):  # waits without the GIL
                self.process.kill()
                raise _WorkerLost(f"no answer within {ANSWER_TIMEOUT_S:g} s")
            return pickle.loads(self.conn.recv_bytes())  # type: ignore[no-any-return]
        except (EOFError, OSError) as exc:
            raise _WorkerLost(str(exc)) from exc

    def recv_body(self) -> bytes:
        try:
            return self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise _WorkerLost(str(exc)) from exc

    def how_it_died(self) -> str:
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _remote_error(reply: dict[str, Any]) -> Exception:
    """The worker's exception as the class the server maps to a SQLSTATE."""
    from catalog import errors as catalog_errors
    from catalog.frames import FeatureTypeMismatch
    from inference import errors as inference_errors

    name = reply["class"]
    cls = getattr(catalog_errors, name, None) or getattr(inference_errors, name, None)
    if cls is None and name == FeatureTypeMismatch.__name__:
        cls = FeatureTypeMismatch
    if isinstance(cls, type) and issubclass(cls, catalog_errors.CatalogError):
        return cls(reply["message"], detail=reply["detail"], hint=reply["hint"])
    if name in ("ValueError", "TypeError"):
        return ValueError(reply["message"]) if name == "ValueError" else TypeError(reply["message"])
    return inference_errors.InferenceError(f"{name} in the scoring worker: {reply['message']}")


class ScoringPool:
    """A fixed number of scoring worker processes (started at the first use)."""

    def __init__(self, workers: int):
        self.size = max(1, workers)
        self._lock = threading.Lock()
        self._idle_cond = threading.Condition(self._lock)
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._live: dict[str, int] = {}  # key -> evaluators that hold it
        self._closed = False

    # -- models ------------------------------------------------------------
    def register(self, key: str) -> None:
        """A model that may be scored here (until :meth:`release`)."""
        with self._lock:
            self._live[key] = self._live.get(key, 0) + 1

    def release(self, key: str) -> None:
        """Make every worker forget the model (idle ones now, busy ones after their
        request) once no evaluator holds it any more."""
        with self._lock:
            holders = self._live.pop(key, 0) - 1
            if holders > 0:
                self._live[key] = holders
                return
            for w in self._workers:
                w.pending_drops.add(key)
            idle, self._idle = self._idle, []
        for w in idle:
            self._checkin(w)

    def loaded(self) -> list[list[str]]:
        """The models each worker holds (asks every worker; for tests and diagnostics)."""
        out = []
        for w in self._each_worker():
            try:
                out.append(list(w.call({"op": "status"})["models"]))
            except _WorkerLost:
                self._replace(w)
                continue
            self._checkin(w)
        return out

    def busy_workers(self) -> int:
        """Workers scoring a request right now."""
        with self._lock:
            return len(self._workers) - len(self._idle)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    # -- scoring -----------------------------------------------------------
    def preload(self, key: str, path: str, sha256: str) -> None:
        """Load the model in every worker now, not at its first query."""
        for w in self._each_worker():
            try:
                reply = w.call({"op": "load", "key": key, "path": path, "sha256": sha256})
            except _WorkerLost:
                with self._lock:
                    closing = self._closed
                if closing:
                    return  # the server is shutting down: nothing left to warm
                self._replace(w)
                continue
            self._checkin(w)
            if not reply["ok"]:
                raise _remote_error(reply)

    def score(self, key: str, path: str, sha256: str, method: str, args: Args,
              model_name: str) -> np.ndarray:
        columns = [flatten(a) for a in args]
        batch = pa.RecordBatch.from_arrays(columns, names=[f"a{i}" for i in range(len(columns))])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        body = sink.getvalue()
        w = self._checkout()
        with self._lock:
            keep = key in self._live
        header = {"op": "score", "key": key, "path": path, "sha256": sha256,
                  "method": method, "keep": keep}
        try:
            reply = w.call(header, body)
            data = w.recv_body() if reply["ok"] else b""
        except _WorkerLost as exc:
            how = w.how_it_died()
            self._replace(w)
            self._replace_dead_idle()  # e.g. the OOM killer took more than one
            raise ScoringWorkerDied(
                f'the scoring worker process died ({how}) while scoring model "{model_name}"',
                detail=f"worker pid {w.process.pid}: {exc}",
                hint="the worker was replaced; run the query again") from None
        self._checkin(w)
        if not reply["ok"]:
            raise _remote_error(reply)
        return np.frombuffer(data, dtype=np.dtype(reply["dtype"])).reshape(reply["shape"])

    # -- workers -----------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = _CTX.Pipe(duplex=True)
        process = _CTX.Process(target=_worker_main, args=(child, os.getpid()),
                               name="quackml-score", daemon=True)
        process.start()
        child.close()
        log.info("scoring worker started in process %s", process.pid)
        return _Worker(process, parent)

    def _checkout(self) -> _Worker:
        # a worker that died while idle (killed with the one that was scoring, say) is
        # replaced at the next request, not only when its turn in the idle list comes
        self._replace_dead_idle()
        with self._lock:
            if self._closed:
                raise ScoringWorkerDied("the server is shutting down")
            while len(self._workers) < self.size:
                w = self._spawn()
                self._workers.append(w)
                self._idle.append(w)
            while not self._idle:
                self._idle_cond.wait()
                if self._closed:
                    raise ScoringWorkerDied("the server is shutting down")
            w = self._idle.pop()
        if w.process.is_alive():
            return w
        log.warning("scoring worker %s died while idle (%s); replacing it",
                    w.process.pid, w.how_it_died())
        return self._replace(w, idle=False)

    def _each_worker(self) -> Iterator[_Worker]:
        """Every worker in turn, each checked out when it is idle (the caller checks it in)."""
        self._checkin(self._checkout())  # start the workers
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            with self._lock:
                while w in self._workers and w not in self._idle and not self._closed:
                    self._idle_cond.wait()
                if w not in self._idle:
                    continue  # replaced meanwhile, or closing
                self._idle.remove(w)
            if not w.process.is_alive():
                self._checkin(self._replace(w, idle=False))
                continue
            yield w

    def _checkin(self, w: _Worker) -> None:
        while True:
            with self._lock:
                drops = sorted(w.pending_drops)
                w.pending_drops.clear()
                if not drops:
                    if self._closed or w not in self._workers:
                        return
                    self._idle.append(w)
                    self._idle_cond.notify_all()
                    return
            try:
                w.call({"op": "drop", "keys": drops})
            except _WorkerLost:
                self._replace(w)
                return

    def _replace_dead_idle(self) -> None:
        with self._lock:
            dead = [w for w in self._idle if not w.process.is_alive()]
            for w in dead:
                self._idle.remove(w)
        for w in dead:
            log.warning("scoring worker %s died while idle (%s); replacing it",
                        w.process.pid, w.how_it_died())
            self._replace(w)

    def _replace(self, dead: _Worker, idle: bool = True) -> _Worker:
        """Start a worker in place of ``dead``; it joins the idle list unless ``idle`` is False."""
        with contextlib.suppress(OSError):
            dead.conn.close()
        if dead.process.is_alive():
            dead.process.kill()
        dead.process.join(timeout=5)
        with self._lock:
            if self._closed:
                raise ScoringWorkerDied("the server is shutting down")
            fresh = self._spawn()
            if dead in self._workers:
                self._workers[self._workers.index(dead)] = fresh
            else:
                self._workers.append(fresh)
            if idle:
                self._idle.append(fresh)
                self._idle_cond.notify_all()
        return fresh

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers, self._idle = self._workers, [], []
            self._idle_cond.notify_all()
        for w in workers:
            with contextlib.suppress(OSError):
                w.conn.close()
        for w in workers:
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)


class PoolEvaluator:
    """The library evaluator, run in the scoring pool for vectors of MIN_POOL_ROWS
    rows or more and in process for smaller ones (the answers are the same)."""

    kind = "library-pool"

    def __init__(self, artifact: ModelArtifact, path: str, sha256: str, pool: ScoringPool,
                 model_name: str, min_rows: int = MIN_POOL_ROWS):
        from inference.evaluators import LibraryEvaluator

        self._local = LibraryEvaluator(artifact)
        self._path = path
        self._sha256 = sha256
        self._pool = pool
        self._model_name = model_name
        self._min_rows = min_rows
        self.key = f"{sha256}:{path}"
        self._released = False
        pool.register(self.key)

    def _rows(self, args: Args) -> int:
        return len(args[0]) if args else 0

    def predict(self, args: Args) -> np.ndarray:
        if self._rows(args) < self._min_rows:
            return self._local.predict(args)
        return self._pool.score(self.key, self._path, self._sha256, "predict", args,
                                self._model_name)

    def predict_proba(self, args: Args) -> np.ndarray:
        if self._rows(args) < self._min_rows:
            return self._local.predict_proba(args)
        return self._pool.score(self.key, self._path, self._sha256, "predict_proba", args,
                                self._model_name)

    def preload(self) -> None:
        self._pool.preload(self.key, self._path, self._sha256)

    def release(self) -> None:
        """Once per evaluator: the model left the cache (DROP MODEL, replace, eviction)."""
        if not self._released:
            self._released = True
            self._pool.release(self.key)
