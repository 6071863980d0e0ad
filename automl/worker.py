"""The entry point of a training worker process, and how its result is read back.

The server starts ``multiprocessing.get_context("spawn").Process(target=run_job,
args=(job, result_path))``. :func:`run_job` trains and then writes one JSON
document to ``result_path`` atomically: the TrainingResult, or the error as
data (class name, SQLSTATE, message). Workers never open the DuckDB
database; the server alone writes the catalog after :func:`read_result`.

Result file format (version 1)::

    {"version": 1, "status": "ok", "result": {TrainingResult fields}}
    {"version": 1, "status": "error", "failure": {TrainingFailure fields}}
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from automl.errors import TrainingError
from automl.progress import ProgressWriter
from automl.ray_backend import run_on_ray, runs_on_ray
from automl.train import train
from catalog.files import write_json_atomic
from catalog.spec import ProblemType, TrainingFailure, TrainingJob, TrainingResult

RESULT_VERSION = 1

logger = logging.getLogger(__name__)


def run_job(job: TrainingJob, result_path: str, ray_address: str | None = None,
            ray_share: int = 1) -> None:
    """Train ``job`` and write its result (or failure) to ``result_path``. With
    ``ray_address`` an AUTO ON search runs on that Ray cluster (automl.ray_backend);
    the result document then also says which nodes ran the trials (``"ray"``). Each of
    up to ``ray_share`` such searches at once gets that share of the cluster's CPUs."""
    progress = ProgressWriter(job.progress_path, job.time_budget_s)
    document: dict[str, Any]
    extra: dict[str, Any] = {}
    try:
        if ray_address and runs_on_ray(job.auto, job.model_type):
            outcome = run_on_ray(job, ray_address, progress, ray_share)
            result = outcome.result
            extra["ray"] = {"trial_nodes": outcome.trial_nodes,
                            "driver_node": outcome.driver_node}
        else:
            result = train(job, progress)
    except TrainingError as exc:
        failure = TrainingFailure(type(exc).__name__, exc.sqlstate, exc.message)
        document = {"status": "error", "failure": dataclasses.asdict(failure)}
        progress.update(phase="failed")
    except Exception as exc:
        # A bug or a library failure: report it as data (XX000) rather than
        # leaving the server to guess from an exit code; the traceback goes
        # to the worker's log.
        logger.exception("training job for model %s failed", job.model_name)
        failure = TrainingFailure(
            type(exc).__name__, "XX000", f"training failed: internal error ({type(exc).__name__})"
        )
        document = {"status": "error", "failure": dataclasses.asdict(failure)}
        progress.update(phase="failed")
    else:
        document = {"status": "ok", "result": dataclasses.asdict(result), **extra}
    document["version"] = RESULT_VERSION
    os.makedirs(os.path.dirname(os.path.abspath(result_path)), exist_ok=True)
    write_json_atomic(result_path, document)


def read_result(result_path: str) -> TrainingResult | TrainingFailure:
    """What the worker reported. A missing or unreadable file (the worker died before
    writing it) reads as a TrainingFailure with SQLSTATE XX000."""
    try:
        with open(result_path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        return TrainingFailure("WorkerDied", "XX000",
                               "training worker exited without reporting a result")
    except (OSError, ValueError) as exc:
        return TrainingFailure("WorkerDied", "XX000",
                               f"training worker left an unreadable result: {exc}")
    if document.get("status") == "ok":
        fields = dict(document["result"])
        fields["problem_type"] = ProblemType(fields["problem_type"])
        fields["labels"] = tuple(fields["labels"])
        return TrainingResult(**fields)
    return TrainingFailure(**document["failure"])


