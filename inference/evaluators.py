"""Evaluators: from a vector's Arrow arguments to model scores.

Every evaluator answers as ``ModelArtifact`` does: ``predict`` gives label
indices (int64) for classifiers and float64 values for regression
(``predict_frame``), ``predict_proba`` gives float64 class probabilities of
shape (rows, labels) in label index order (``predict_proba_frame``).

- :class:`LibraryEvaluator` runs the learner library's predict on the
  frame from :func:`catalog.frames.to_frame`: always available, the oracle.
- :class:`TreeEvaluator` runs a pylignum model (compiled trees or its
  interpreter) on the Arrow columns from :mod:`inference.inputs`; its
  output equals the library's bit for bit (pylignum reproduces LightGBM's
  float64 and XGBoost's float32 arithmetic, and the conversions below
  reproduce the sklearn wrappers' ``predict_proba``). It releases the GIL
  while it walks the trees, so DuckDB's threads score in parallel.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from catalog.artifact import ModelArtifact
from catalog.estimators import LightGBMBooster
from catalog.imported import ImportedBooster
from catalog.spec import ProblemType
from inference.inputs import TreeInputs

Args = Sequence[pa.Array | pa.ChunkedArray]


class Evaluator(Protocol):
    kind: str  # "library", "lignum-interpreter" or "lignum-compiled"

    def predict(self, args: Args) -> np.ndarray: ...

    def predict_proba(self, args: Args) -> np.ndarray: ...


class LibraryEvaluator:
    """The artifact's own scoring (``predict_frame`` / ``predict_proba_frame``)."""

    kind = "library"

    def __init__(self, artifact: ModelArtifact):
        self._artifact = artifact

    def predict(self, args: Args) -> np.ndarray:
        return self._artifact.predict_frame(self._artifact.frame(args))

    def predict_proba(self, args: Args) -> np.ndarray:
        return self._artifact.predict_proba_frame(self._artifact.frame(args))

    def scores(self, args: Args) -> np.ndarray:
        """Probabilities for classifiers, values for regression."""
        if self._artifact.problem_type.is_classification:
            return self.predict_proba(args)
        return self.predict(args)


def tree_library(artifact: ModelArtifact) -> str | None:
    """"lightgbm" or "xgboost" when pylignum can take the estimator, else None.
    A bring-your-own booster (:class:`catalog.imported.ImportedBooster`) is one of
    these too: it is compiled and served exactly like a trained one."""
    if isinstance(artifact.estimator, ImportedBooster):
        return artifact.estimator.library
    module = type(artifact.estimator).__module__.split(".")[0]
    if module == "lightgbm" or isinstance(artifact.estimator, LightGBMBooster):
        return "lightgbm"
    has_categories = any(c is not None for c in artifact.categories)
    if module == "xgboost" and (artifact.category_codes or not has_categories):
        return "xgboost"
    return None


_LIVE: weakref.WeakSet[TreeEvaluator] = weakref.WeakSet()


@atexit.register
def _release_models() -> None:
    """Free pylignum models before the interpreter tears its modules down, so
    nanobind does not report them as leaked at exit."""
    for evaluator in list(_LIVE):
        evaluator._model = None


class TreeEvaluator:
    """A pylignum model behind the library's output conventions."""

    def __init__(self, artifact: ModelArtifact, model: Any, library: str):
        _LIVE.add(self)
        self.kind = "lignum-compiled" if model.uses_compiled else "lignum-interpreter"
        self._artifact = artifact
        self._model = model
        self._library = library
        self._problem = artifact.problem_type
        self._n_labels = len(artifact.labels)
        self._inputs = TreeInputs(artifact.features, artifact.categories,
                                  -1 if artifact.category_codes else None)

    def predict(self, args: Args) -> np.ndarray:
        raw = self._raw(args)
        if self._problem is ProblemType.BINARY and self._n_labels == 2 and raw.ndim == 1:
            return self._binary_labels(raw)
        return decide(self._artifact, self.library_output(raw))

    def predict_proba(self, args: Args) -> np.ndarray:
        if not self._problem.is_classification:
            raise TypeError("predict_proba is only defined for classification models")
        return self.scores(args)

    def scores(self, args: Args) -> np.ndarray:
        """Probabilities for classifiers, values for regression."""
        return self.library_output(self._raw(args))

    def _raw(self, args: Args) -> np.ndarray:
        batch = self._inputs.batch(args)
        # One thread per call: DuckDB already runs one call per thread.
        return np.asarray(self._model.predict(batch, n_jobs=1, strategy="serial"))

    def _binary_labels(self, raw: np.ndarray) -> np.ndarray:
        """:func:`decide` on [1 - p, p] without building the probability matrix
        (same arithmetic, same comparisons, so the same labels)."""
        threshold = self._artifact.threshold
        if self._library == "xgboost":
            p32 = raw.astype(np.float32)
            if threshold is None:
                # float32 -> float64 is exact and monotonic: comparing in float32 is the
                # same comparison, without two conversions.
                return (p32 > np.float32(1.0) - p32).astype(np.int64)
            q = (np.float32(1.0) - p32).astype(np.float64)
            p = p32.astype(np.float64)
        else:
            p = raw
            q = 1.0 - p
        if threshold is not None:
            positive = self._artifact.positive_index
            chosen = p if positive == 1 else q
            return np.where(chosen >= threshold, positive, 1 - positive).astype(np.int64)
        return (p > q).astype(np.int64)  # argmax: the first of equal values wins

    def library_output(self, raw: np.ndarray) -> np.ndarray:
        """pylignum's output as the sklearn wrapper's predict_proba / predict gives it."""
        xgb = self._library == "xgboost"
        if xgb:  # XGBoost predicts in float32; its wrapper works on float32 arrays
            raw = raw.astype(np.float32)
        if self._problem is ProblemType.REGRESSION:
            if raw.ndim == 2:  # an imported multi-output booster: its first output, as
                raw = raw[:, 0]  # ImportedBooster.predict takes it
            return raw.astype(np.float64).reshape(-1)
        if raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1):
            p = raw.reshape(-1)
            one = np.float32(1.0) if xgb else 1.0
            proba = np.vstack((one - p, p)).transpose()
        else:
            proba = raw
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape[1] != self._n_labels:
            raise ValueError(f"evaluator returned {proba.shape[1]} classes for "
                             f"{self._n_labels} labels")
        return proba


def decide(artifact: ModelArtifact, scores: np.ndarray) -> np.ndarray:
    """Label indices (int64) from probabilities, or float64 regression values:
    the rule of ``ModelArtifact.predict_frame``."""
    if not artifact.problem_type.is_classification:
        return np.asarray(scores, dtype=np.float64)
    if artifact.threshold is not None and scores.shape[1] == 2:
        positive = artifact.positive_index
        return np.where(scores[:, positive] >= artifact.threshold, positive,
                        1 - positive).astype(np.int64)
    return np.argmax(scores, axis=1).astype(np.int64)
