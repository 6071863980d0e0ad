"""Per-row explanations: what ``f_explain(...)`` returns for a vector of rows.

For each row: the top k feature attributions ordered by absolute value, the
baseline and the raw prediction, with ``baseline + sum(all attributions) =
prediction``. The work is one library call per DuckDB vector (never a Python
loop over rows), on the model input :func:`catalog.frames.to_frame` builds.

Methods (the ``method`` field says which one a model uses):

- ``tree_shap``: exact TreeSHAP of LightGBM (``predict(pred_contrib=True)``)
  and XGBoost (``predict(pred_contribs=True)``). The prediction is the raw
  score, as the sum of the contributions and the bias (TreeSHAP's local
  accuracy): LightGBM's ``raw_score`` within float64 rounding, XGBoost's
  ``output_margin`` within its float32 arithmetic. It is log-odds of the second label for
  a binary model, the predicted class's raw score (before softmax) for a
  multiclass model, the raw score (before the objective's link) for
  regression. The baseline is the expected raw score over the training data.
- ``linear``: exact for linear models (logistic regression, ridge): each
  feature's attribution is its term ``coef * (z(x) - z(reference))`` where
  ``z`` is the fitted input transformation and the reference row has every
  feature missing (numbers at their training median, no category); the
  baseline is the prediction for that reference row. The prediction is the
  decision function: log-odds (binary), the predicted class's logit
  (multiclass), the value (regression).
- ``approximate: occlusion``: any other model (MLP): a feature's attribution
  is the prediction minus the prediction with that feature missing; the
  baseline is the prediction with every feature missing. Not additive: the
  attributions need not sum to prediction - baseline. The prediction is the
  predicted class's probability for a classifier, the value for regression.

Attributions are per INPUT feature: where PREPROCESSORS turn one column set
into several model columns, their attributions are summed back to the set
(named after its columns joined with ``+``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from catalog.artifact import ModelArtifact, estimator_input
from catalog.estimators import HardLabelClassifier, LightGBMBooster
from catalog.imported import ImportedBooster
from catalog.preprocessing import FramePreprocessor, PreprocessedEstimator
from inference.errors import WrongProblemType

DEFAULT_TOP_K = 5

TREE_SHAP = "tree_shap"
LINEAR = "linear"
OCCLUSION = "approximate: occlusion"

# The raw prediction's space, per method and problem.
LOG_ODDS = "log-odds"
RAW_SCORE = "raw score"
VALUE = "value"
PROBABILITY = "probability"

_ATTRIBUTION = pa.struct([("feature", pa.string()), ("attribution", pa.float64())])


def explain_type(label_type: str) -> str:
    """The SQL type ``f_explain`` returns, for a model whose prediction has ``label_type``."""
    return (f"STRUCT(method VARCHAR, label {label_type}, space VARCHAR, prediction DOUBLE, "
            "baseline DOUBLE, attributions STRUCT(feature VARCHAR, attribution DOUBLE)[])")


@dataclass(frozen=True)
class Explanation:
    """Explanations of n rows over G input features (or column sets)."""

    method: str
    space: str
    label: np.ndarray          # int64 label index explained per row, -1 for regression
    prediction: np.ndarray     # float64 (n,)
    baseline: np.ndarray       # float64 (n,)
    attributions: np.ndarray   # float64 (n, G)


class Explainer:
    """Explains one model's rows; built once per loaded model."""

    def __init__(self, artifact: ModelArtifact):
        self._artifact = artifact
        estimator = artifact.estimator
        self._codes = artifact.category_codes
        self._pre: FramePreprocessor | None = None
        if isinstance(estimator, PreprocessedEstimator):
            self._pre = estimator.preprocessor
            self._codes = estimator.category_codes
            estimator = estimator.estimator
        # binary:hinge / multi:softmax: the margin is no log-odds
        self._hard_labels = isinstance(estimator, HardLabelClassifier)
        if isinstance(estimator, HardLabelClassifier):
            estimator = estimator.estimator
        self._estimator = estimator
        if artifact.learner == "kmeans":
            raise WrongProblemType("explanations are not defined for k-means models")
        module = type(estimator).__module__.split(".")[0]
        self._imported = isinstance(estimator, ImportedBooster)
        if module == "lightgbm" or isinstance(estimator, LightGBMBooster) or (
                self._imported and estimator.library == "lightgbm"):
            self.method = TREE_SHAP
            self._library = "lightgbm"
            self._lightgbm = estimator._load() if self._imported else estimator.booster_
        elif module == "xgboost" or self._imported:
            self.method = TREE_SHAP
            self._library = "xgboost"
            booster = estimator._load() if self._imported else estimator.get_booster()
            self._xgboost = booster.copy()   # ours: one thread per call
            self._xgboost.set_param({"nthread": 1})
        elif module == "sklearn":
            self._library = "sklearn"
            self.method = LINEAR if _is_linear(estimator) else OCCLUSION
        else:   # e.g. a remote endpoint (BYOM)
            raise WrongProblemType(
                f"explanations are not available for {type(estimator).__name__} models")
        self._classification = artifact.problem_type.is_classification
        # Input groups: one per feature, or per PREPROCESSORS column set.
        features = [f.name for f in artifact.features]
        grouped: dict[str, int] = {}
        self.groups: list[str] = []
        self._group_columns: list[list[str]] = []
        sets = self._pre.sets if self._pre is not None else ()
        for s in sets:
            grouped.update({c: len(self.groups) for c in s.columns})
            self.groups.append("+".join(s.columns))
            self._group_columns.append(list(s.columns))
        for name in features:
            if name not in grouped:
                grouped[name] = len(self.groups)
                self.groups.append(name)
                self._group_columns.append([name])
        self._feature_group = grouped
        self._group_matrix: np.ndarray | None = None   # model columns -> groups

    # -- the model input ---------------------------------------------------
    def _model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self._pre is not None:
            frame = self._pre.transform(frame)
        return estimator_input(frame, self._codes)

    def _groups_of(self, columns: Sequence[str]) -> np.ndarray:
        """The 0/1 matrix (model columns x groups) that sums columns to their group."""
        if self._group_matrix is None or self._group_matrix.shape[0] != len(columns):
            matrix = np.zeros((len(columns), len(self.groups)))
            for j, column in enumerate(columns):
                if column in self._feature_group:
                    matrix[j, self._feature_group[column]] = 1.0
                else:  # "set<i>__<n>": PREPROCESSORS output of column set i
                    matrix[j, int(column.split("__", 1)[0].removeprefix("set"))] = 1.0
            self._group_matrix = matrix
        return self._group_matrix

    # -- explanations ------------------------------------------------------
    def explain(self, args: Sequence[pa.Array | pa.ChunkedArray]) -> Explanation:
        frame = self._artifact.frame(args)
        if self.method == TREE_SHAP:
            return self._tree_shap(frame)
        return self._occlusion(frame)

    def _tree_shap(self, frame: pd.DataFrame) -> Explanation:
        x = self._model_input(frame)
        n = len(x)
        data: Any = x.to_numpy(dtype=np.float64, na_value=np.nan) if self._imported else x
        # One thread per call: DuckDB already runs one call per thread.
        if self._library == "lightgbm":
            contrib = np.asarray(self._lightgbm.predict(data, pred_contrib=True, num_threads=1),
                                 dtype=np.float64)
        else:
            import xgboost

            matrix = xgboost.DMatrix(data, enable_categorical=not self._imported,
                                     missing=np.nan, nthread=1)
            contrib = np.asarray(self._xgboost.predict(matrix, pred_contribs=True),
                                 dtype=np.float64)
        m = x.shape[1]
        if contrib.ndim == 2 and contrib.shape[1] != m + 1:   # LightGBM multiclass
            contrib = contrib.reshape(n, -1, m + 1)
        # The raw score is the sum of the contributions and the bias (TreeSHAP's local
        # accuracy): LightGBM's raw score within float64 rounding, XGBoost's margin within
        # its float32 arithmetic; no second pass over the trees.
        raw = contrib.sum(axis=-1)
        if contrib.ndim == 3:   # multiclass: the predicted class
            label = np.argmax(raw, axis=1).astype(np.int64)
            rows = np.arange(n)
            contrib = contrib[rows, label]
            raw = raw[rows, label]
            space = RAW_SCORE
        elif self._classification:
            label = np.full(n, 1, dtype=np.int64)   # the second label's log-odds
            space = RAW_SCORE if self._hard_labels else LOG_ODDS
        else:
            label = np.full(n, -1, dtype=np.int64)
            space = RAW_SCORE
        attributions = contrib[:, :m] @ self._groups_of(list(x.columns))
        return Explanation(self.method, space, label, raw, contrib[:, m], attributions)

    def _occlusion(self, frame: pd.DataFrame) -> Explanation:
        """f(x), f(x with group g missing) for every g, f(all missing): one call."""
        n = len(frame)
        g = len(self.groups)
        if n == 0:
            empty = np.zeros(0)
            return Explanation(self.method, "", np.zeros(0, dtype=np.int64), empty, empty,
                               np.zeros((0, g)))
        parts = [frame]
        for columns in self._group_columns:
            occluded = frame.copy()
            for c in columns:
                occluded[c] = _missing(frame[c])
            parts.append(occluded)
        reference = frame.iloc[:1].copy()
        for c in reference.columns:
            reference[c] = _missing(reference[c])
        parts.append(reference)
        stacked = pd.concat(parts, ignore_index=True)
        scores = self._raw_scores(self._model_input(stacked))
        full = scores[:n]
        if self._classification:
            label = np.argmax(full, axis=1).astype(np.int64)
            binary_linear = self.method == LINEAR and scores.shape[1] == 1
            if binary_linear:   # decision_function of a binary model: one column
                label = np.full(n, 1, dtype=np.int64)
            column = np.zeros(n, dtype=np.int64) if binary_linear else label
        else:
            label = np.full(n, -1, dtype=np.int64)
            column = np.zeros(n, dtype=np.int64)
        rows = np.arange(n)
        prediction = full[rows, column]
        occluded_scores = scores[n: n * (g + 1)].reshape(g, n, -1)[:, rows, column].T
        baseline = scores[n * (g + 1)][column]
        attributions = prediction[:, None] - occluded_scores
        if self._classification and self.method == LINEAR and scores.shape[1] == 1:
            space = LOG_ODDS
        elif self.method == LINEAR:
            space = RAW_SCORE if self._classification else VALUE
        else:
            space = PROBABILITY if self._classification else VALUE
        return Explanation(self.method, space, label, prediction, baseline, attributions)

    def _raw_scores(self, x: pd.DataFrame) -> np.ndarray:
        """(rows, outputs): decision function (linear), probabilities, or values."""
        est = self._estimator
        if self._classification:
            if self.method == LINEAR:
                out = np.asarray(est.decision_function(x), dtype=np.float64)
            else:
                out = np.asarray(est.predict_proba(x), dtype=np.float64)
        else:
            out = np.asarray(est.predict(x), dtype=np.float64)
        return out.reshape(len(x), -1)


def _missing(column: pd.Series) -> pd.Series:
    """The column with every value missing, in its own dtype."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical.from_codes(np.full(len(column), -1), dtype=column.dtype),
                         index=column.index)
    return pd.Series(np.full(len(column), np.nan), index=column.index)


def _is_linear(estimator: Any) -> bool:
    """A linear model (maybe behind a scikit-learn Pipeline of per-column transforms)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    last = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(last, LogisticRegression | Ridge | LinearRegression)


def explanation_arrow(artifact: ModelArtifact, explanation: Explanation, k: np.ndarray,
                      groups: Sequence[str], label_type: pa.DataType) -> pa.StructArray:
    """The STRUCT rows of ``explain_type`` (top ``k[i]`` attributions of row i)."""
    n, g = explanation.attributions.shape
    values = explanation.attributions
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    counts = np.clip(k, 0, g).astype(np.int64)
    keep = np.arange(g)[None, :] < counts[:, None]
    picked = order[keep]          # row-major: each row's first counts[i] columns
    rows = np.repeat(np.arange(n), counts)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    names = pa.array(np.asarray(groups, dtype=object)[picked], type=pa.string()) \
        if len(picked) else pa.array([], type=pa.string())
    items = pa.StructArray.from_arrays(
        [names, pa.array(values[rows, picked], type=pa.float64())],
        fields=list(_ATTRIBUTION))
    if artifact.labels:
        label_values = pa.array(list(artifact.labels), type=label_type)
        index = pa.array(explanation.label, mask=explanation.label < 0)
        label = label_values.take(index)
    else:
        label = pa.nulls(n, label_type)
    return pa.StructArray.from_arrays(
        [pa.array(np.full(n, explanation.method, dtype=object), type=pa.string()),
         label,
         pa.array(np.full(n, explanation.space, dtype=object), type=pa.string()),
         pa.array(explanation.prediction, type=pa.float64()),
         pa.array(explanation.baseline, type=pa.float64()),
         pa.ListArray.from_arrays(pa.array(offsets), items)],
        names=["method", "label", "space", "prediction", "baseline", "attributions"])
