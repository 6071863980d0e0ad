"""Train one model: Parquet snapshot -> FLAML search -> model artifact.

:func:`train` runs in a worker process (see automl.worker). It reads the
snapshot, drops rows whose target is NULL, detects or checks the problem
type, builds the model input with :func:`catalog.frames.to_frame` (the same
conversion prediction uses), runs FLAML within the time budget on a 20%
validation holdout, and writes the artifact atomically.

Invariants:

- the whole call, from reading the snapshot to the artifact on disk, aims
  to end within ``job.time_budget_s`` (FLAML gets what is left after
  loading, minus a reserve for saving);
- the reported metric is the objective itself (``f1``, not ``1 - f1``),
  measured on the holdout, and the served model is the very model the holdout
  scored (no refit on all rows: FLAML's budget-limited refit could stop a
  booster after a few rounds and serve a far weaker model than it reported);
- binary F1 models carry the probability threshold that maximized F1 on the
  holdout, so imbalanced targets do not collapse to the majority class;
- the artifact holds the learner library's own estimator, never FLAML's
  AutoML object (which keeps training data) nor an ``automl`` class.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_squared_error,
    roc_auc_score,
)

from automl.errors import BudgetTooSmall, SnapshotMissing, TrainingError, UnsupportedFeature
from automl.explain import write_explanation
from automl.hyperparams import search_learners
from automl.learners import CUSTOM_LEARNERS
from automl.preprocessors import parse_preprocessors
from automl.problem import (
    Objective,
    detect_problem,
    encode_labels,
    positive_index,
    resolve_objective,
)
from automl.progress import ProgressWriter, TrialLogTailer
from catalog.artifact import ModelArtifact, write_artifact
from catalog.files import ARTIFACT_FILE, HOLDOUT_FILE, write_atomic
from catalog.frames import estimator_input, fit_categories, to_frame
from catalog.preprocessing import FramePreprocessor, PreprocessedEstimator
from catalog.spec import Column, FeatureKind, ProblemType, TrainingJob, TrainingResult

TRIAL_LOG_FILE = "trials.jsonl"
SPLIT_RATIO = 0.2
# Seconds kept back from FLAML's budget for what follows the search: the
# artifact check, serializing and the fsyncs.
SAVE_RESERVE_S = 0.5
# Below this, FLAML cannot fit even its cheapest first trial.
MIN_SEARCH_S = 0.2
# A categorical column with this many distinct values and one per row is an
# identifier: it is kept as an input but given no categories (always missing).
MIN_ID_ROWS = 50


@dataclass(frozen=True)
class ParallelSearch:
    """How the FLAML search runs its trials on a Ray cluster (automl.ray_backend): at
    most ``concurrent_trials`` at once, each as a Ray Tune trial of one CPU, Tune's files
    under ``storage``. ``reporter(loss, metric, metric_name, learner)`` is called in the
    trial after each evaluation (SHOW MODEL's progress and the nodes that ran trials).
    ``reserve_s`` of the budget is kept for what Ray Tune does after its time budget
    (stopping the trials, gathering their results)."""

    concurrent_trials: int
    storage: str
    reporter: Any = None
    reserve_s: float = 0.0


def train(job: TrainingJob, progress: ProgressWriter | None = None,
          parallel: ParallelSearch | None = None) -> TrainingResult:
    """Train the model ``job`` describes; write its artifact into ``job.output_dir``.
    With ``parallel`` an AUTO ON search runs its trials on the Ray cluster this process
    is connected to."""
    progress = progress or ProgressWriter(job.progress_path, job.time_budget_s)
    if job.model_type == "FORECAST":
        from automl.forecast import train_forecast
        return train_forecast(job, progress)
    if not job.auto or job.model_type == "KMEANS":
        from automl.auto_off import train_auto_off
        return train_auto_off(job, progress)
    started = time.monotonic()
    deadline = started + job.time_budget_s
    progress.update(phase="loading")
    assert job.target is not None

    data = _load(job)
    problem = detect_problem(job.target, data.y, job.problem_type)
    objective = resolve_objective(job.objective, problem)
    y, labels = encode_labels(data.y, problem)
    positive = positive_index(labels, y) if problem is ProblemType.BINARY else 1
    progress.update(phase="searching", metric_name=objective.metric_name)

    sets = parse_preprocessors(job.preprocessors, job.features, job.target.name)
    preprocessor = FramePreprocessor(sets) if sets else None
    frame = preprocessor.fit_transform(data.frame) if preprocessor else data.frame

    metric = HoldoutMetric(objective, positive,
                           parallel.reporter if parallel is not None else None)
    search = _search(job, frame, y, problem, metric, deadline, progress, parallel)

    progress.update(phase="saving")
    artifact = ModelArtifact(
        features=job.features,
        target=job.target,
        problem_type=problem,
        labels=labels,
        categories=data.categories,
        estimator=(PreprocessedEstimator(preprocessor, search.estimator, search.category_codes)
                   if preprocessor else search.estimator),
        metric_name=objective.metric_name,
        metric_value=search.metric_value,
        threshold=search.threshold,
        positive_index=positive,
        category_codes=search.category_codes and preprocessor is None,
        learner=search.learner,
    )
    os.makedirs(job.output_dir, exist_ok=True)
    sha256 = write_artifact(artifact, os.path.join(job.output_dir, ARTIFACT_FILE))
    write_holdout(job, data, search.holdout)
    write_explanation(artifact, data.frame, job.output_dir)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(job.output_dir, TRIAL_LOG_FILE))
    seconds = time.monotonic() - started
    progress.update(phase="done")
    return TrainingResult(
        problem_type=problem,
        metric_name=objective.metric_name,
        metric_value=search.metric_value,
        labels=labels,
        best_learner=search.learner,
        trials=search.trials,
        artifact_file=ARTIFACT_FILE,
        artifact_sha256=sha256,
        rows_train=len(y) - search.rows_validation,
        rows_validation=search.rows_validation,
        seconds=round(seconds, 3),
    )


def write_holdout(job: TrainingJob, data: _Data, rows: np.ndarray) -> None:
    """The holdout rows of the snapshot, as they were given (features and target)."""
    table = data.table.take(pa.array(rows))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(os.path.join(job.output_dir, HOLDOUT_FILE), sink.getvalue().to_pybytes())


@dataclass(frozen=True)
class _Data:
    frame: pd.DataFrame
    y: pa.Array  # the target, no NULLs
    categories: tuple[tuple[str, ...] | None, ...]
    table: pa.Table   # the snapshot's rows with a target (features and target)


def _load(job: TrainingJob) -> _Data:
    for feature in job.features:
        if feature.kind is None:
            raise UnsupportedFeature(
                f"feature column {feature.name!r} has type {feature.type}, which cannot be used "
                "for training",
                hint="cast it to a numeric, BOOLEAN, VARCHAR, DATE, TIME or TIMESTAMP type",
            )
    assert job.target is not None
    names = [f.name for f in job.features] + [job.target.name]
    try:
        table = pq.read_table(job.snapshot_path, columns=names)
    except FileNotFoundError as exc:
        raise SnapshotMissing(f"training snapshot {job.snapshot_path} is missing") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise SnapshotMissing(
            f"training snapshot {job.snapshot_path} cannot be read: {exc}"
        ) from exc
    target = table.column(job.target.name)
    keep = pc.is_valid(target)
    if pa.types.is_floating(target.type):
        keep = pc.and_(keep, pc.invert(pc.is_nan(target)))
    table = table.filter(keep)
    y = table.column(job.target.name).combine_chunks()
    categories = _prune_identifiers(table, job.features, fit_categories(table, job.features))
    frame = to_frame([table.column(f.name) for f in job.features], job.features, categories)
    return _Data(frame=frame, y=y, categories=categories, table=table)


def _prune_identifiers(
    table: pa.Table, features: tuple[Column, ...], categories: tuple[tuple[str, ...] | None, ...]
) -> tuple[tuple[str, ...] | None, ...]:
    """Give no categories to text columns holding a distinct value per row (ids, names):
    as categories they only let trees memorize rows."""
    pruned = list(categories)
    for i, (feature, cats) in enumerate(zip(features, categories, strict=True)):
        if feature.kind is FeatureKind.CATEGORICAL and cats is not None:
            present = len(table) - table.column(feature.name).null_count
            if present >= MIN_ID_ROWS and len(cats) == present:
                pruned[i] = ()
    return tuple(pruned)


@dataclass(frozen=True)
class _SearchResult:
    estimator: Any
    learner: str
    metric_value: float
    threshold: float | None
    category_codes: bool
    trials: int
    rows_validation: int
    holdout: np.ndarray   # row positions of the validation holdout


def _search(
    job: TrainingJob,
    frame: pd.DataFrame,
    y: np.ndarray,
    problem: ProblemType,
    metric: HoldoutMetric,
    deadline: float,
    progress: ProgressWriter,
    parallel: ParallelSearch | None = None,
) -> _SearchResult:
    from flaml import AutoML
    from flaml.automl.model import SKLearnEstimator

    budget = deadline - time.monotonic() - SAVE_RESERVE_S
    if parallel is not None:
        budget -= min(parallel.reserve_s, budget / 4)
    if budget < MIN_SEARCH_S:
        raise _too_small(job)
    log_path = os.path.join(job.output_dir, TRIAL_LOG_FILE)
    os.makedirs(job.output_dir, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(log_path)
    objective = metric.objective
    train_rows, holdout = holdout_split(y, problem)
    automl = AutoML()
    learners = list(search_learners(job.model_type))
    for name in learners:
        if name in CUSTOM_LEARNERS:
            automl.add_learner(name, CUSTOM_LEARNERS[name])
    tailer = TrialLogTailer(log_path, progress, objective.metric_name, objective.higher_is_better)
    tailer.start()
    options: dict[str, Any] = {}
    if parallel is not None:
        # Ray Tune trials, one CPU each, as many at once as the cluster has CPUs, with
        # FLAML's parallel default, BlendSearch (CFO, the sequential default, keeps one
        # local search going and ran all 40 trials of a 2-node test on one node). Trial
        # actors are reused between trials: a new Python process per trial costs seconds
        # (measured: 4 trials in 40 s without, 73 with, on this 2-core machine).
        options = {"use_ray": {"reuse_actors": True, "storage_path": parallel.storage},
                   "n_concurrent_trials": max(1, parallel.concurrent_trials)}
    try:
        with _quiet(), _cpu_always_listed(parallel is not None):
            automl.fit(
                X_train=frame.iloc[train_rows],
                y_train=y[train_rows],
                X_val=frame.iloc[holdout],
                y_val=y[holdout],
                task="regression" if problem is ProblemType.REGRESSION else "classification",
                metric=metric,
                estimator_list=learners,
                time_budget=budget,
                eval_method="holdout",
                retrain_full=False,  # serve the model the holdout scored (see module doc)
                skip_transform=True,
                seed=job.seed,
                n_jobs=job.n_jobs,
                verbose=0,
                log_file_name=log_path,
                log_type="all",
                early_stop=True,
                **options,
            )
    finally:
        tailer.stop()
    model = automl.model
    if model is None or model.estimator is None:
        raise _too_small(job)
    best_loss, logged = automl.metrics_for_best_config
    logged = logged or {}
    result = _SearchResult(
        estimator=model.estimator,
        learner=str(automl.best_estimator),
        metric_value=float(logged.get("metric", objective.value_from_loss(best_loss))),
        threshold=logged.get("threshold"),
        category_codes=isinstance(model, SKLearnEstimator),
        trials=max(tailer.trials, 1),
        rows_validation=len(holdout),
        holdout=holdout,
    )
    _check_same_predictions(automl, result, frame, problem)
    return result


def _too_small(job: TrainingJob) -> BudgetTooSmall:
    return BudgetTooSmall(
        f"MAX_RUNTIME {job.time_budget_s:g} s is too small to fit any model",
        hint="increase MAX_RUNTIME (a few seconds suffice for small tables)",
    )


def holdout_split(y: np.ndarray, problem: ProblemType) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training rows and of the validation holdout: FLAML's own
    holdout split (shuffle, then a train/test split, stratified for classes with at least
    two rows, both with FLAML's seed), made here so that the holdout rows can be kept
    beside the model (HOLDOUT_FILE): EVALUATE MODEL without ON and RETRAIN ONLY IF
    BETTER score on them."""
    from flaml.config import RANDOM_SEED
    from sklearn.model_selection import train_test_split
    from sklearn.utils import shuffle

    positions = shuffle(np.arange(len(y)), random_state=RANDOM_SEED)
    stratify = None
    if problem.is_classification and np.bincount(y.astype(np.int64)).min() >= 2:
        stratify = y[positions]
    train_rows, holdout = train_test_split(positions, test_size=SPLIT_RATIO,
                                           random_state=RANDOM_SEED, stratify=stratify)
    return np.asarray(train_rows), np.asarray(holdout)


def _check_same_predictions(automl: Any, result: _SearchResult, frame: pd.DataFrame,
                            problem: ProblemType) -> None:
    """The estimator that goes into the artifact must score exactly as FLAML's model does."""
    sample = frame.iloc[:256]
    model_input = estimator_input(sample, result.category_codes)
    if problem.is_classification:
        ours = result.estimator.predict_proba(model_input)
        theirs = automl.predict_proba(sample)
    else:
        ours = result.estimator.predict(model_input)
        theirs = automl.predict(sample)
    if not np.allclose(ours, theirs, rtol=1e-9, atol=1e-12, equal_nan=True):
        raise TrainingError("the extracted estimator does not reproduce FLAML's predictions")


class HoldoutMetric:
    """FLAML's custom metric: a loss to minimize on the validation holdout, plus the
    objective itself, logged as ``metric`` with ``rows_validation``.

    For binary F1 the search minimizes log loss, a smooth proper score that
    picks models which generalize better than picking by the jumpy F1 of a
    1,000-row holdout (measured on wa_churn: test F1 0.62-0.64 against
    0.61-0.63). Each trial then gets the probability threshold (on the label
    at ``positive_index``) that maximizes F1 on the holdout, logged as
    ``threshold``: 0.5 would give F1 = 0 on targets with few positives."""

    def __init__(self, objective: Objective, positive_index: int = 1, reporter: Any = None):
        self.objective = objective
        self.positive_index = positive_index
        self.reporter = reporter

    def __call__(self, X_val: Any, y_val: Any, estimator: Any, labels: Any, X_train: Any,
                 y_train: Any, *args: Any) -> tuple[float, dict[str, Any]]:
        loss, logged = self._evaluate(X_val, y_val, estimator)
        if self.reporter is not None:
            self.reporter(loss, logged["metric"], self.objective.metric_name,
                          type(estimator).__name__)
        return loss, logged

    def _evaluate(self, X_val: Any, y_val: Any, estimator: Any) -> tuple[float, dict[str, Any]]:
        y_true = np.asarray(y_val)
        name = self.objective.metric_name
        if name == "mse":
            mse = float(mean_squared_error(y_true, estimator.predict(X_val)))
            return mse, self._logged(y_true, mse)
        proba = np.asarray(estimator.predict_proba(X_val))
        if name == "f1":
            positive = self.positive_index
            f1, threshold = best_f1_threshold(y_true == positive, proba[:, positive])
            loss = float(log_loss(y_true, proba, labels=np.arange(proba.shape[1])))
            return loss, self._logged(y_true, f1, threshold=threshold)
        if name == "roc_auc":
            auc = float(roc_auc_score(y_true, proba[:, 1])) if len(np.unique(y_true)) > 1 else 0.5
            return 1.0 - auc, self._logged(y_true, auc)
        predicted = np.argmax(proba, axis=1)
        if name == "macro_f1":
            score = float(f1_score(y_true, predicted, average="macro",
                                   labels=np.arange(proba.shape[1]), zero_division=0))
        else:
            score = float(accuracy_score(y_true, predicted))
        return 1.0 - score, self._logged(y_true, score)

    @staticmethod
    def _logged(y_true: np.ndarray, metric: float, **extra: float) -> dict[str, Any]:
        return {"metric": float(metric), "rows_validation": len(y_true), **extra}


F1_TOLERANCE = 0.005


def best_f1_threshold(y_true: np.ndarray, p_positive: np.ndarray) -> tuple[float, float]:
    """The best F1 over thresholds on P(positive), and a threshold that reaches it (a
    midpoint between adjacent distinct probabilities; predict positive when p >= threshold).

    The F1 curve is flat near its top; among cuts within ``F1_TOLERANCE`` of the best,
    the one nearest 0.5 is taken, which keeps accuracy from sliding for nothing."""
    is_positive = np.asarray(y_true, dtype=bool)
    order = np.argsort(-p_positive, kind="stable")
    p = p_positive[order]
    positives = int(np.sum(is_positive))
    if positives == 0 or len(p) == 0:
        return 0.0, 0.5
    tp = np.cumsum(is_positive[order])
    predicted = np.arange(1, len(p) + 1)
    # Only cut between distinct probabilities: equal scores fall on one side.
    cut = np.append(p[1:] < p[:-1], True)
    f1 = np.where(cut, 2.0 * tp / (predicted + positives), -1.0)
    best = int(np.argmax(f1))
    thresholds = np.append((p[:-1] + p[1:]) / 2, p[-1])
    near = np.flatnonzero(f1 >= f1[best] - F1_TOLERANCE)
    k = int(near[np.argmin(np.abs(thresholds[near] - 0.5))])
    return float(f1[k]), float(thresholds[k])


@contextlib.contextmanager
def _cpu_always_listed(active: bool) -> Iterator[None]:
    """FLAML 2.8's fit reads ``ray.available_resources()["CPU"]``, which Ray leaves out
    while every CPU of the cluster is busy (another model's trials): a KeyError. For the
    fit, the key is there (0.0) then; FLAML uses the figure only for n_jobs < 0."""
    if not active:
        yield
        return
    import ray

    real = ray.available_resources

    def with_cpu() -> dict[str, float]:
        return {"CPU": 0.0, **real()}

    ray.available_resources = with_cpu
    try:
        yield
    finally:
        ray.available_resources = real


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence FLAML's and the learners' warnings and log lines for the search."""
    flaml_logger = logging.getLogger("flaml")
    level = flaml_logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flaml_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            flaml_logger.setLevel(level)
