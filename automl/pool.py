"""The training worker pool: each job runs in its own spawned process.

At most ``workers`` jobs run at once; the rest wait in FIFO order. A job's
process can crash, run away or be cancelled (DROP MODEL) without touching the
server: the pool notices through the process sentinel, reads the result file
the worker wrote (or reports the crash), and calls ``on_finish`` once per job
that was not cancelled. A job that outlives its budget by more than the grace
period is killed and reported as a failure: training never hangs. The budget
counts from the moment the worker is ready to train (its imports done: a
spawned worker on a loaded machine takes tens of seconds to import FLAML and
the learners); a worker that is not ready within ``STARTUP_LIMIT_S`` is killed
as well.

The queue is bounded: ``reserve`` takes a slot before a job is prepared (at
most ``workers + queue_size`` jobs running, waiting or reserved); when none is
free it raises ``TrainingQueueFull`` or, with ``wait``, blocks until a slot
frees or its ``cancelled`` event is set. ``submit(..., reserved=True)`` uses
the slot; ``release`` gives it back. Jobs resumed at start-up bypass the bound.

Fair use: ``reserve(user=..., key=..., per_user=n)`` also bounds the jobs one
user holds (reserved, waiting or running) to ``n``; past it the reservation
fails at once with ``TrainingQueueFull``, also under ``wait`` (the user's own
jobs are what is in the way). A reserved job is the user's from ``reserve`` on
(by its key) until it finishes, is cancelled or its slot is released. Jobs
resumed at start-up belong to no one and count only towards the overall bound.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from automl.errors import TrainingQueueFull, TrainingWaitCancelled
from automl.worker import read_result, run_job
from catalog.spec import TrainingFailure, TrainingJob, TrainingResult
from catalog.workers import exit_with_parent, ignore_interrupts

log = logging.getLogger("quackml.training")

Outcome = TrainingResult | TrainingFailure
_CTX = multiprocessing.get_context("spawn")


STARTUP_LIMIT_S = 300.0


def grace_seconds(budget_s: float) -> float:
    """How long past its budget a job may run before it is killed."""
    return 30.0 + 0.25 * budget_s


@dataclass
class _Running:
    key: str
    job: TrainingJob
    result_path: str
    process: multiprocessing.process.BaseProcess
    spawned: float
    ready: multiprocessing.synchronize.Event   # set by the worker once it can train
    started: float | None = None               # when the pool first saw ``ready`` set


@dataclass(frozen=True)
class PoolStatus:
    workers: int
    queue_size: int
    running: int
    waiting: int
    reserved: int   # slots taken by CREATE MODEL statements still writing their snapshot
    held_by_user: int

    @property
    def ahead(self) -> int:
        """Jobs a new one would come after: running, waiting and about to be queued."""
        return self.running + self.waiting + self.reserved


class TrainingPool:
    def __init__(self, workers: int, on_finish: Callable[[str, Outcome], None],
                 queue_size: int = 1 << 30, ray_address: str | None = None):
        self._workers = max(1, workers)
        self._ray_address = ray_address   # AUTO ON searches run there (automl.ray_backend)
        self._queue_size = max(0, queue_size)
        self._on_finish = on_finish
        self._queue: deque[tuple[str, TrainingJob, str]] = deque()
        self._running: dict[str, _Running] = {}
        self._reserved = 0
        self._reserved_by: Counter[tuple[str, str]] = Counter()  # (key, user): slots
        self._owners: dict[str, str] = {}   # key of a waiting or running job -> user
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._wake_r, self._wake_w = _CTX.Pipe(duplex=False)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="training-pool", daemon=True)
        self._thread.start()

    def reserve(self, *, wait: bool, cancelled: threading.Event | None = None,
                user: str | None = None, key: str | None = None, per_user: int = 0) -> None:
        """Take a slot for a job about to be submitted (see the module docstring).
        With ``user``, ``key`` and ``per_user`` > 0 the user may hold at most
        ``per_user`` jobs; ``key`` is the one the job will be submitted under."""
        with self._lock:
            while True:
                if self._closed:
                    raise TrainingQueueFull("the server is shutting down")
                if user is not None and per_user > 0:
                    held = self._held_by(user)
                    if held >= per_user:
                        raise TrainingQueueFull(
                            f'user "{user}" already has {held} training jobs running or '
                            f"queued, the most one user may have "
                            f"(training_queue_per_user is {per_user})",
                            hint="wait until one finishes (SHOW MODEL shows its state) or "
                                 "DROP MODEL one; the operator sets "
                                 "--training-queue-per-user")
                if len(self._queue) + len(self._running) + self._reserved < \
                        self._workers + self._queue_size:
                    break
                if not wait:
                    raise TrainingQueueFull(
                        f"the training queue is full ({self._workers} running, "
                        f"{self._queue_size} waiting)",
                        hint="retry later, or raise --training-queue-size; with "
                             "--training-queue-full wait CREATE MODEL waits instead")
                if cancelled is not None and cancelled.is_set():
                    raise TrainingWaitCancelled(
                        "canceling statement due to user request (CREATE MODEL was "
                        "waiting for a training queue slot)")
                self._slot_freed.wait(timeout=0.1)
            self._reserved += 1
            if user is not None and key is not None:
                self._reserved_by[key, user] += 1

    def release(self, key: str | None = None, user: str | None = None) -> None:
        """Give back a reserved slot that will not be used (``key`` and ``user`` as
        given to ``reserve``)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            if key is not None and user is not None:
                self._unreserve(key, user)
            self._slot_freed.notify_all()

    def submit(self, key: str, job: TrainingJob, result_path: str,
               reserved: bool = False) -> None:
        with self._lock:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
                owner = next((u for k, u in self._reserved_by if k == key), None)
                if owner is not None:
                    self._unreserve(key, owner)
                    self._owners[key] = owner
            self._queue.append((key, job, result_path))
        self._wake()

    def _unreserve(self, key: str, user: str) -> None:
        """One reserved slot of (key, user) less (lock held)."""
        if self._reserved_by[key, user] > 1:
            self._reserved_by[key, user] -= 1
        else:
            self._reserved_by.pop((key, user), None)

    def _held_by(self, user: str) -> int:
        """Jobs the user holds: reserved slots, waiting and running jobs (lock held)."""
        return sum(n for (_, u), n in self._reserved_by.items() if u == user) + \
            sum(1 for u in self._owners.values() if u == user)

    def status(self, user: str | None = None) -> PoolStatus:
        """How full the pool is now (EXPLAIN CREATE MODEL shows where a job would go)."""
        with self._lock:
            return PoolStatus(self._workers, self._queue_size, len(self._running),
                              len(self._queue), self._reserved,
                              self._held_by(user) if user is not None else 0)

    def queued(self, key: str) -> bool:
        with self._lock:
            return any(k == key for k, _, _ in self._queue)

    def cancel(self, key: str) -> bool:
        """Forget a queued job or kill a running one; on_finish is not called."""
        with self._lock:
            for item in list(self._queue):
                if item[0] == key:
                    self._queue.remove(item)
                    self._owners.pop(key, None)
                    self._slot_freed.notify_all()
                    return True
            running = self._running.pop(key, None)
            if running is not None:
                self._owners.pop(key, None)
            self._slot_freed.notify_all()
        if running is None:
            return False
        _kill(running.process)
        self._wake()
        return True

    def shutdown(self) -> int:
        """Kill the running jobs and forget the queued ones; the number killed."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            self._running.clear()
            self._queue.clear()
            self._owners.clear()
            self._slot_freed.notify_all()
        for r in running:
            _kill(r.process)
        self._wake()
        self._thread.join(timeout=10)
        return len(running)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"x")

    def _start_ready(self) -> None:
        with self._lock:
            while not self._closed and self._queue and len(self._running) < self._workers:
                key, job, result_path = self._queue.popleft()
                ready = _CTX.Event()
                process = _CTX.Process(
                    target=_run_guarded,
                    args=(job, result_path, os.getpid(), ready, self._ray_address, self._workers),
                    name=f"quackml-train-{job.model_name}", daemon=True)
                process.start()
                self._running[key] = _Running(key, job, result_path, process, time.monotonic(),
                                              ready)
                log.info("training %s started in process %s", key, process.pid)

    def _loop(self) -> None:
        while True:
            self._start_ready()
            with self._lock:
                if self._closed:
                    return
                sentinels = {r.process.sentinel: r for r in self._running.values()}
            ready = multiprocessing.connection.wait([self._wake_r, *sentinels], timeout=1.0)
            for obj in ready:
                if obj is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                elif isinstance(obj, int):
                    self._finish(sentinels[obj], None)
            now = time.monotonic()
            for r in list(sentinels.values()):
                if r.started is None and r.ready.is_set():
                    r.started = now
                if r.started is None:
                    if now - r.spawned > STARTUP_LIMIT_S:
                        _kill(r.process)
                        self._finish(r, TrainingFailure(
                            "WorkerStartTimeout", "53000",
                            f"the training worker did not start within {STARTUP_LIMIT_S:g} s "
                            "(the machine is overloaded)"))
                    continue
                if now - r.started > r.job.time_budget_s + grace_seconds(r.job.time_budget_s):
                    _kill(r.process)
                    self._finish(r, TrainingFailure(
                        "TrainingTimeout", "57014",
                        f"training exceeded MAX_RUNTIME {r.job.time_budget_s:g} s "
                        f"by more than {grace_seconds(r.job.time_budget_s):g} s and was stopped"))

    def _finish(self, running: _Running, forced: Outcome | None) -> None:
        with self._lock:
            if self._running.get(running.key) is not running:
                return  # cancelled meanwhile
            del self._running[running.key]
            self._owners.pop(running.key, None)
            self._slot_freed.notify_all()
        running.process.join(timeout=5)
        outcome = forced or read_result(running.result_path)
        if isinstance(outcome, TrainingFailure) and outcome.error_class == "WorkerDied":
            code = running.process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else \
                f"exit code {code}"
            outcome = TrainingFailure(
                "WorkerDied", "XX000",
                f"the training worker process died ({how}) before reporting a result")
        try:
            self._on_finish(running.key, outcome)
        except Exception:
            log.exception("recording the outcome of %s failed", running.key)


def _run_guarded(job: TrainingJob, result_path: str, server_pid: int,
                 ready: multiprocessing.synchronize.Event,
                 ray_address: str | None = None, ray_share: int = 1) -> None:
    """The worker's entry point: run the job, and exit at once if the server
    process dies (kill -9 leaves no one to read the result; a restarted server
    resumes the job itself and must not race an orphan for the same files).
    By the time it runs, the spawned process has imported the learners: ``ready``
    tells the pool that the job's budget starts now."""
    ignore_interrupts()
    exit_with_parent(server_pid)
    ready.set()
    run_job(job, result_path, ray_address, ray_share)


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join(timeout=5)
