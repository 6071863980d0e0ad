"""AUTO OFF training: one XGBoost model with exactly the given settings, or k-means.

No search and no holdout: the model is fitted on every snapshot row and SHOW
MODEL reports the training metric (``train:error``, ``train:merror``,
``train:rmse`` for XGBoost; ``train:msd``, the mean squared distance to the
nearest centre, for KMEANS).

A KMEANS artifact is a REGRESSION-shaped artifact whose target is the
INTEGER cluster id: its estimator's ``predict`` returns 0-based cluster ids,
which the prediction function casts to INTEGER.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from automl.errors import InvalidOption, SnapshotMissing, UnsupportedFeature
from automl.explain import write_explanation
from automl.hyperparams import (
    TRAIN_METRICS,
    resolve_kmeans,
    resolve_xgboost,
    xgboost_problem,
)
from automl.preprocessors import KMEANS_TRANSFORMERS, parse_preprocessors
from automl.problem import detect_problem, encode_labels
from automl.progress import ProgressWriter
from catalog.artifact import ModelArtifact, write_artifact
from catalog.estimators import HardLabelClassifier
from catalog.files import ARTIFACT_FILE
from catalog.frames import to_frame
from catalog.preprocessing import FramePreprocessor, PreprocessedEstimator
from catalog.spec import (
    Column,
    FeatureKind,
    ProblemType,
    TrainingJob,
    TrainingResult,
)

CLUSTER_COLUMN = Column("cluster_id", "INTEGER")


def train_auto_off(job: TrainingJob, progress: ProgressWriter) -> TrainingResult:
    started = time.monotonic()
    progress.update(phase="loading")
    for feature in job.features:
        if feature.kind not in (FeatureKind.NUMERIC, FeatureKind.BOOLEAN):
            raise UnsupportedFeature(
                f"AUTO OFF needs numeric or boolean features; {feature.name!r} is {feature.type}")
    table = _read(job)
    progress.update(phase="training")
    if job.model_type == "KMEANS":
        artifact = _kmeans(job, table)
        rows_validation = 0
    else:
        artifact = _xgboost(job, table)
        rows_validation = 0
    progress.update(phase="saving")
    os.makedirs(job.output_dir, exist_ok=True)
    sha256 = write_artifact(artifact, os.path.join(job.output_dir, ARTIFACT_FILE))
    frame = to_frame([table.column(f.name) for f in job.features], job.features,
                     [None] * len(job.features))
    write_explanation(artifact, frame, job.output_dir)
    progress.update(phase="done")
    return TrainingResult(
        problem_type=artifact.problem_type,
        metric_name=artifact.metric_name,
        metric_value=artifact.metric_value,
        labels=artifact.labels,
        best_learner=artifact.learner,
        trials=1,
        artifact_file=ARTIFACT_FILE,
        artifact_sha256=sha256,
        rows_train=table.num_rows,
        rows_validation=rows_validation,
        seconds=round(time.monotonic() - started, 3),
    )


def _read(job: TrainingJob) -> pa.Table:
    names = [f.name for f in job.features] + ([job.target.name] if job.target else [])
    try:
        table = pq.read_table(job.snapshot_path, columns=names)
    except (FileNotFoundError, pa.ArrowInvalid, OSError) as exc:
        raise SnapshotMissing(f"training snapshot {job.snapshot_path} cannot be read") from exc
    if job.target is not None:
        table = table.filter(pc.is_valid(table.column(job.target.name)))
    return table


def _xgboost(job: TrainingJob, table: pa.Table) -> ModelArtifact:
    import xgboost as xgb

    assert job.target is not None
    objective, problem = xgboost_problem(job.objective)
    params = resolve_xgboost(job.hyperparameters, objective)
    y_raw = table.column(job.target.name).combine_chunks()
    problem = detect_problem(job.target, y_raw, problem)
    y, labels = encode_labels(y_raw, problem)
    if objective == "multi:softmax" and len(labels) > int(params["num_class"]):
        raise InvalidOption(
            f"NUM_CLASS {params['num_class']} is less than the {len(labels)} distinct values "
            f"of {job.target.name!r}")
    frame = to_frame([table.column(f.name) for f in job.features], job.features,
                     [None] * len(job.features))
    kwargs: dict[str, Any] = {
        "n_estimators": int(params["num_round"]),
        "max_depth": int(params["max_depth"]),
        "min_child_weight": float(params["min_child_weight"]),
        "subsample": float(params["subsample"]),
        "gamma": float(params["gamma"]),
        "reg_alpha": float(params["alpha"]),
        "learning_rate": float(params["eta"]),
        "colsample_bylevel": float(params["colsample_bylevel"]),
        "colsample_bynode": float(params["colsample_bynode"]),
        "colsample_bytree": float(params["colsample_bytree"]),
        "reg_lambda": float(params["lambda"]),
        "max_delta_step": float(params["max_delta_step"]),
        "objective": objective,
        "n_jobs": job.n_jobs,
        "random_state": job.seed,
    }
    if params["tree_method"] != "auto":
        kwargs["tree_method"] = params["tree_method"]
    estimator: Any
    try:
        if problem.is_classification:
            model = xgb.XGBClassifier(**kwargs)
            model.fit(frame, y)
            estimator = (model if objective == "binary:logistic"
                         else HardLabelClassifier(model, len(labels)))
            predicted = np.argmax(estimator.predict_proba(frame), axis=1)
            metric = float(np.mean(predicted != y))
        else:
            model = xgb.XGBRegressor(**kwargs)
            model.fit(frame, y)
            estimator = model
            metric = float(np.sqrt(np.mean((model.predict(frame) - y) ** 2)))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "XGBoost error"
        raise InvalidOption(f"XGBoost cannot train with OBJECTIVE '{objective}': {first}") \
            from None
    return ModelArtifact(
        features=job.features, target=job.target, problem_type=problem, labels=labels,
        categories=tuple(None for _ in job.features), estimator=estimator,
        metric_name=TRAIN_METRICS[problem], metric_value=metric, learner="xgboost")


def _kmeans(job: TrainingJob, table: pa.Table) -> ModelArtifact:
    from sklearn.cluster import KMeans
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    params = resolve_kmeans(job.hyperparameters, len(job.features))
    k = int(params["k"])
    if k > table.num_rows:
        raise InvalidOption(f"K {k} is more than the {table.num_rows} training rows")
    sets = parse_preprocessors(job.preprocessors, job.features, None, KMEANS_TRANSFORMERS)
    frame = to_frame([table.column(f.name) for f in job.features], job.features,
                     [None] * len(job.features))
    preprocessor = FramePreprocessor(sets) if sets else None
    model_input = preprocessor.fit_transform(frame) if preprocessor else frame
    init = "k-means++" if params["init_method"] == "kmeans++" else "random"
    pipeline = Pipeline([
        ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
        ("kmeans", KMeans(n_clusters=k, init=init, n_init=max(1, int(params["epochs"])),
                          random_state=job.seed)),
    ])
    pipeline.fit(model_input)
    msd = float(pipeline.named_steps["kmeans"].inertia_) / max(1, len(model_input))
    estimator = (PreprocessedEstimator(preprocessor, pipeline, False) if preprocessor
                 else pipeline)
    return ModelArtifact(
        features=job.features, target=CLUSTER_COLUMN, problem_type=ProblemType.REGRESSION,
        labels=(), categories=tuple(None for _ in job.features), estimator=estimator,
        metric_name="train:msd", metric_value=msd, learner="kmeans")
