"""Small estimator wrappers that artifacts may hold.

They live in ``catalog`` (not ``automl``) because the server reads
artifacts with only ``catalog`` and the learner libraries imported; the
artifact stores them as JSON plus the library's own file for what they wrap
(see catalog.formats).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class HardLabelClassifier:
    """A classifier whose objective yields labels, not probabilities (XGBoost's
    ``binary:hinge`` and ``multi:softmax``): ``predict_proba`` is the one-hot
    encoding of the predicted label index, so the artifact contract holds."""

    def __init__(self, estimator: Any, n_classes: int):
        self.estimator = estimator
        self.n_classes = n_classes

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict(X)).astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        index = np.clip(self.predict(X), 0, self.n_classes - 1)
        proba = np.zeros((len(index), self.n_classes), dtype=np.float64)
        proba[np.arange(len(index)), index] = 1.0
        return proba


class LightGBMBooster:
    """A LightGBM model read back from its model text (``Booster.model_to_string``),
    scoring exactly as LightGBM's scikit-learn estimators do: ``predict`` is the
    booster's output (values for regression), ``predict_proba`` the class
    probabilities (two columns for a binary model)."""

    def __init__(self, booster: Any, classifier: bool):
        self.booster_ = booster  # the attribute name LightGBM's estimators use
        self.classifier = classifier

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        if self.classifier and not kwargs:
            return np.argmax(self.predict_proba(X), axis=1)
        return np.asarray(self.booster_.predict(X, **kwargs))

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = np.asarray(self.booster_.predict(X))
        if raw.ndim == 1:
            return np.vstack((1.0 - raw, raw)).transpose()
        return raw
