"""Small estimator wrappers that artifacts may hold.

They live in ``catalog`` (not ``automl``) because the server unpickles
artifacts with only ``catalog`` and the learner libraries imported.
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
