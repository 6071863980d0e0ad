"""PREPROCESSORS: named column sets with their transformers, fitted and applied.

A :class:`FramePreprocessor` is fitted at training time on the model input
frame (see catalog.frames) and travels inside the artifact; prediction
applies the same fitted transformers. Columns in a set are replaced by the
transformers' outputs (float64 columns named ``<set>__<n>``); columns in no
set pass through unchanged (AUTO ON still preprocesses them automatically).

It lives in ``catalog`` because the server reads artifacts without
``automl``; the transformers are scikit-learn's. An artifact stores the
column sets as JSON and each fitted pipeline as a skops file (see
catalog.formats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from catalog.frames import estimator_input

TRANSFORMERS = ("OneHotEncoder", "OrdinalEncoder", "NumericPassthrough", "Imputer",
                "ImputerWithIndicator", "Normalizer", "DateTimeVectorizer", "PCA",
                "StandardScaler", "MinMax")
# Transformers that read the categorical values themselves (the others read numbers:
# a categorical column reaches them as its category code, missing as NaN).
_CATEGORICAL_INPUT = ("OneHotEncoder", "OrdinalEncoder")
MAX_ONE_HOT = 100


@dataclass(frozen=True)
class ColumnSet:
    columns: tuple[str, ...]
    transformers: tuple[str, ...]


class DateTimeVectorizer(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Seconds since the epoch -> year, month, day, weekday, hour, minute (NaN stays NaN)."""

    def fit(self, X: Any, y: Any = None) -> DateTimeVectorizer:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        values = np.asarray(X, dtype=np.float64)
        parts = []
        for j in range(values.shape[1]):
            ts = pd.to_datetime(pd.Series(values[:, j]), unit="s", errors="coerce")
            parts += [ts.dt.year, ts.dt.month, ts.dt.day, ts.dt.day_of_week, ts.dt.hour,
                      ts.dt.minute]
        return np.column_stack([np.asarray(p, dtype=np.float64) for p in parts])


def _step(name: str) -> list[tuple[str, Any]]:
    match name:
        case "OneHotEncoder":
            return [("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                             max_categories=MAX_ONE_HOT, sparse_output=False))]
        case "OrdinalEncoder":
            return [("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value",
                                               unknown_value=-1, encoded_missing_value=-1))]
        case "NumericPassthrough":
            return []
        case "Imputer":
            return [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        case "ImputerWithIndicator":
            return [("impute", SimpleImputer(strategy="median", add_indicator=True,
                                             keep_empty_features=True))]
        case "Normalizer":
            return [("impute0", SimpleImputer(strategy="constant", fill_value=0.0,
                                              keep_empty_features=True)),
                    ("normalize", Normalizer())]
        case "DateTimeVectorizer":
            return [("datetime", DateTimeVectorizer())]
        case "PCA":
            return [("impute_pca", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("pca", PCA(n_components=0.95, svd_solver="full", random_state=0))]
        case "StandardScaler":
            return [("standard", StandardScaler())]
        case "MinMax":
            return [("minmax", MinMaxScaler())]
    raise ValueError(name)


def _input(frame: pd.DataFrame, columns: tuple[str, ...], categorical: bool) -> Any:
    part = frame[list(columns)]
    if categorical:
        return part.astype(object).where(part.notna(), np.nan)
    data = {}
    for c in columns:
        col = part[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            data[c] = codes
        else:
            data[c] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(data).to_numpy(dtype=np.float64)


class FramePreprocessor:
    """Fitted transformers for named column sets; see the module docstring."""

    def __init__(self, sets: Sequence[ColumnSet]):
        self.sets = tuple(sets)
        self.fitted: list[tuple[ColumnSet, bool, Pipeline | None]] = []

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.fitted = []
        for column_set in self.sets:
            categorical = any(t in _CATEGORICAL_INPUT for t in column_set.transformers)
            steps = [s for name in column_set.transformers for s in _step(name)]
            pipeline = Pipeline(steps) if steps else None
            if pipeline is not None:
                pipeline.fit(_input(frame, column_set.columns, categorical))
            self.fitted.append((column_set, categorical, pipeline))
        return self.transform(frame)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        named = {c for s in self.sets for c in s.columns}
        out: dict[str, Any] = {c: frame[c] for c in frame.columns if c not in named}
        for i, (column_set, categorical, pipeline) in enumerate(self.fitted):
            values = _input(frame, column_set.columns, categorical)
            if pipeline is not None:
                values = pipeline.transform(values)
            values = np.asarray(values, dtype=np.float64).reshape(len(frame), -1)
            for j in range(values.shape[1]):
                out[f"set{i}__{j}"] = values[:, j]
        return pd.DataFrame(out, index=frame.index)


class PreprocessedEstimator:
    """A fitted estimator behind its fitted PREPROCESSORS: it takes the model input frame
    (catalog.frames), applies the column-set transformers, then hands the estimator the
    frame as it was fitted on it (categorical codes when ``category_codes``).

    Artifacts hold this wrapper as their estimator (with ``category_codes`` False), so
    every scorer of ``ModelArtifact`` applies the preprocessing."""

    def __init__(self, preprocessor: FramePreprocessor, estimator: Any, category_codes: bool):
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.category_codes = category_codes

    def _input(self, frame: pd.DataFrame) -> pd.DataFrame:

        return estimator_input(self.preprocessor.transform(frame), self.category_codes)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict(self._input(frame)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(self._input(frame)))
