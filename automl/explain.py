"""Global feature attributions for EXPLAIN_MODEL, computed at the end of training.

Tree learners give exact SHAP values through their own contributions
(LightGBM ``pred_contrib``, XGBoost ``pred_contribs``). Other estimators
(scikit-learn forests, MLP, linear models, models behind PREPROCESSORS,
KMEANS) get an occlusion estimate: the mean absolute change of the model
output when one feature is set to its median (numbers) or to missing
(categories), with ``expected_value`` the mean output over the rows. For
classifiers the output explained is the probability (log-odds for trees) of
the label at the positive (binary) or first index.

The result is written as ``explanation.json`` next to the artifact, in the
shape SQL.md gives for EXPLAIN_MODEL.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from catalog.artifact import ModelArtifact
from catalog.files import EXPLANATION_FILE, write_json_atomic

MAX_ROWS = 500


def explain(artifact: ModelArtifact, frame: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    if len(frame) > MAX_ROWS:
        frame = frame.sample(n=MAX_ROWS, random_state=seed)
    names = [f.name for f in artifact.features]
    contributions = _tree_contributions(artifact, frame)
    if contributions is not None:
        values = np.mean(np.abs(contributions[:, :-1]), axis=0)
        expected = float(np.mean(contributions[:, -1]))
    else:
        values, expected = _occlusion(artifact, frame)
    return {"version": "1.0", "explanations": {"kernel_shap": {"label0": {
        "global_shap_values": {n: round(float(v), 6) for n, v in zip(names, values,
                                                                      strict=True)},
        "expected_value": round(expected, 6)}}}}


def write_explanation(artifact: ModelArtifact, frame: pd.DataFrame, output_dir: str) -> None:
    document = explain(artifact, frame)
    write_json_atomic(os.path.join(output_dir, EXPLANATION_FILE), document)


def _output_index(artifact: ModelArtifact) -> int:
    return artifact.positive_index if len(artifact.labels) == 2 else 0


def _tree_contributions(artifact: ModelArtifact, frame: pd.DataFrame) -> np.ndarray | None:
    estimator = artifact.estimator
    module = type(estimator).__module__.split(".")[0]
    n_features = len(artifact.features)
    model_input = artifact.model_input(frame)
    if module == "lightgbm":
        raw = np.asarray(estimator.predict(model_input, pred_contrib=True))
    elif module == "xgboost":
        import xgboost as xgb

        booster = estimator.get_booster()
        matrix = xgb.DMatrix(model_input, enable_categorical=not artifact.category_codes)
        raw = np.asarray(booster.predict(matrix, pred_contribs=True))
    else:
        return None
    width = n_features + 1
    if raw.ndim == 3:  # XGBoost multiclass: (rows, classes, features + 1)
        raw = raw[:, _output_index(artifact), :]
    elif raw.shape[1] != width:  # LightGBM multiclass: classes side by side
        k = _output_index(artifact)
        raw = raw[:, k * width:(k + 1) * width]
    if raw.shape[1] != width:
        return None
    if artifact.problem_type.is_classification and len(artifact.labels) == 2 and \
            artifact.positive_index == 0:
        raw = -raw  # contributions are toward label index 1
    return raw


def _output(artifact: ModelArtifact, frame: pd.DataFrame) -> np.ndarray:
    if artifact.problem_type.is_classification:
        return artifact.predict_proba_frame(frame)[:, _output_index(artifact)]
    return np.asarray(artifact.estimator.predict(artifact.model_input(frame)),
                      dtype=np.float64)


def _occlusion(artifact: ModelArtifact, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    base = _output(artifact, frame)
    values = []
    for column in frame.columns:
        changed = frame.copy()
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            changed[column] = pd.Categorical.from_codes(
                np.full(len(frame), -1), dtype=series.dtype)
        else:
            median = float(np.nanmedian(series.to_numpy(dtype=np.float64))) \
                if series.notna().any() else np.nan
            changed[column] = median
        values.append(float(np.mean(np.abs(base - _output(artifact, changed)))))
    return np.asarray(values), float(np.mean(base))
