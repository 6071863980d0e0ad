"""The progress file of a training job, shown by SHOW MODEL while it trains.

The worker owns the file and rewrites it whole (temp file + ``os.replace``),
so a reader sees either the previous or the next version, never a mix. The
reader (the server) is tolerant anyway: a missing, empty or half-written file
reads as ``None``. While FLAML searches, :class:`TrialLogTailer` follows
FLAML's JSON-lines trial log and reports trials, the best validation metric
so far and the learner last tried.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from catalog.files import write_json_atomic
from catalog.spec import Progress

_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))
MAX_HISTORY = 1000


class ProgressWriter:
    """Rewrites one progress JSON file atomically; thread-safe."""

    def __init__(self, path: str, budget_s: float):
        self.path = path
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"phase": "queued", "elapsed_s": 0.0, "budget_s": budget_s,
                                       "trials": 0}

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._start

    def update(self, **fields: Any) -> Progress:
        """Merge ``fields`` (names of catalog.spec.Progress) into the state and rewrite the file.

        ``elapsed_s`` is measured from the writer's creation unless given."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"unknown progress fields: {sorted(unknown)}")
        with self._lock:
            best = self._state.get("best_metric")
            self._state.update(fields)
            if "elapsed_s" not in fields:
                self._state["elapsed_s"] = round(self.elapsed_s, 3)
            self._record(best)
            state = dict(self._state)
            write_json_atomic(self.path, state)
        return Progress(**state)


    def _record(self, best_before: Any) -> None:
        """Append [elapsed_s, trials, best_metric] to the history when the best metric
        changed (at most ``MAX_HISTORY`` points: later ones replace the last)."""
        best = self._state.get("best_metric")
        if not isinstance(best, int | float) or best == best_before:
            return
        history = self._state.setdefault("history", [])
        point = [self._state["elapsed_s"], self._state.get("trials", 0), best]
        if len(history) >= MAX_HISTORY:
            history[-1] = point
        else:
            history.append(point)


def read_progress(path: str) -> Progress | None:
    """The last complete progress snapshot, or None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not {"phase", "elapsed_s", "budget_s"} <= data.keys():
        return None
    try:
        fields = {k: v for k, v in data.items() if k in _FIELDS}
        fields["history"] = tuple((float(p[0]), int(p[1]), float(p[2]))
                                  for p in fields.get("history") or ())
        return Progress(**fields)
    except (TypeError, ValueError, IndexError):
        return None


class Poller:
    """A daemon thread that calls ``poll`` every ``interval_s`` until stopped, and once
    more on ``stop`` (so what arrived last is taken in)."""

    def __init__(self, poll: Callable[[], None], interval_s: float, name: str):
        self._poll = poll
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._poll()


class TrialLogTailer:
    """A daemon thread that follows FLAML's trial log and reports to a ProgressWriter.

    FLAML (``log_file_name``, ``log_type="all"``) appends one JSON object per
    trial with ``record_id``, ``learner``, ``validation_loss``,
    ``wall_clock_time`` and ``logged_metric`` (what automl.train's metric
    logs: ``metric``, the objective itself), then a checkpoint object
    ``{"curr_best_record_id": n}`` when the search ends.
    """

    def __init__(self, log_path: str, writer: ProgressWriter, metric_name: str,
                 higher_is_better: bool, interval_s: float = 0.5):
        self._log_path = log_path
        self._writer = writer
        self._metric_name = metric_name
        self._higher_is_better = higher_is_better
        self._offset = 0
        self._pending = b""
        self._trials = 0
        self._best_loss: float | None = None
        self._best_metric: float | None = None
        self._learner: str | None = None
        self._search_done = False
        self._poller = Poller(self.poll, interval_s, "flaml-log-tailer")

    @property
    def trials(self) -> int:
        return self._trials

    @property
    def best_loss(self) -> float | None:
        return self._best_loss

    def start(self) -> TrialLogTailer:
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop the thread and take in whatever the log holds now."""
        self._poller.stop()

    def poll(self) -> None:
        """Read new complete lines and update the progress file if anything changed."""
        try:
            with open(self._log_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._offset += len(chunk)
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        changed = [self._take(line) for line in lines]
        if not any(changed):
            return
        fields: dict[str, Any] = {"trials": self._trials, "current_learner": self._learner,
                                  "metric_name": self._metric_name}
        if self._best_loss is not None:
            fields["best_metric"] = self._metric(self._best_loss)
        if self._search_done:
            fields["phase"] = "refitting"
        self._writer.update(**fields)

    def _take(self, line: bytes) -> bool:
        if not line.strip():
            return False
        try:
            record = json.loads(line)
        except ValueError:
            return False
        if "curr_best_record_id" in record:
            self._search_done = True
            return True
        loss = record.get("validation_loss")
        if not isinstance(loss, int | float) or math.isnan(loss):
            return False
        self._trials += 1
        self._learner = record.get("learner")
        if self._best_loss is None or loss < self._best_loss:
            self._best_loss = float(loss)
            logged = record.get("logged_metric")
            metric = logged.get("metric") if isinstance(logged, dict) else None
            self._best_metric = float(metric) if isinstance(metric, int | float) else None
        return True

    def _metric(self, loss: float) -> float:
        """The objective of the best trial: as the metric function logged it, else from
        FLAML's loss (1 - score, or the error itself)."""
        if self._best_metric is not None:
            return self._best_metric
        return 1.0 - loss if self._higher_is_better else loss


