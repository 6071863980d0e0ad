"""Model artifacts: the fitted model and everything needed to score it.

An artifact is one pickle file in a model version's folder. It holds the
fitted estimator of a learner library (LightGBM, XGBoost, scikit-learn),
never training data and never classes from ``automl`` or ``server``: the
server unpickles it with only ``catalog`` and the learner libraries
imported.

Invariants:

- files are written atomically (temp file in the same folder, flush, fsync,
  ``os.replace``, fsync of the folder) and identified by the sha256 of
  their bytes;
- :func:`read_artifact` checks that sha256 *before* unpickling anything;
- the model input is always built by :func:`catalog.frames.to_frame` with
  this artifact's ``features`` and ``categories``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from catalog.errors import ArtifactCorrupt
from catalog.frames import to_frame
from catalog.spec import Column, ProblemType

FORMAT_VERSION = 1


@dataclass
class ModelArtifact:
    """A fitted model with its input schema, label mapping and validation metric."""

    features: tuple[Column, ...]
    target: Column
    problem_type: ProblemType
    labels: tuple[object, ...]  # target values in model index order; () for regression
    categories: tuple[tuple[str, ...] | None, ...]  # per feature, see catalog.frames
    estimator: Any  # fitted LightGBM / XGBoost / scikit-learn estimator
    metric_name: str
    metric_value: float
    format_version: int = FORMAT_VERSION
    # Binary classification: predict label index ``positive_index`` when its
    # probability is >= threshold, else the other label. None means argmax.
    threshold: float | None = None
    positive_index: int = 1
    # True when the estimator was fitted on integer category codes (-1 for
    # missing) instead of pandas Categorical columns (scikit-learn and XGBoost
    # learners as FLAML drives them).
    category_codes: bool = False
    learner: str = ""

    def frame(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> pd.DataFrame:
        """The model input frame for one Arrow array per feature (see catalog.frames)."""
        return to_frame(columns, self.features, self.categories)

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """What the estimator itself takes (see :func:`estimator_input`)."""
        return estimator_input(frame, self.category_codes)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Label indices (int64) for classification, float64 values for regression."""
        if not self.problem_type.is_classification:
            return np.asarray(self.estimator.predict(self.model_input(frame)), dtype=np.float64)
        proba = self.predict_proba_frame(frame)
        if self.threshold is not None and proba.shape[1] == 2:
            positive = self.positive_index
            return np.where(proba[:, positive] >= self.threshold, positive, 1 - positive).astype(
                np.int64
            )
        return np.argmax(proba, axis=1).astype(np.int64)

    def predict_proba_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (rows, len(labels)), columns in label index order."""
        if not self.problem_type.is_classification:
            raise TypeError("predict_proba_frame is only defined for classification models")
        proba = np.asarray(self.estimator.predict_proba(self.model_input(frame)), dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(self.labels):
            raise ArtifactCorrupt(
                f"model returned probabilities of shape {proba.shape} for {len(self.labels)} labels"
            )
        return proba

    def decode(self, indices: np.ndarray) -> list[object]:
        """Label values for label indices (classification only)."""
        return [self.labels[i] for i in indices.tolist()]


def estimator_input(frame: pd.DataFrame, category_codes: bool) -> pd.DataFrame:
    """The frame as the estimator was fitted on it: unchanged, or with each categorical
    column replaced by its integer codes (-1 for missing) when ``category_codes``."""
    if not category_codes:
        return frame
    cat_columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cat_columns:
        return frame
    codes = frame.copy()
    for column in cat_columns:
        codes[column] = frame[column].cat.codes
    return codes


def write_artifact(artifact: ModelArtifact, path: str) -> str:
    """Atomically write the artifact to ``path``; return the sha256 hex of its bytes."""
    data = pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(data).hexdigest()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".artifact-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_path(folder)
    return digest


def read_artifact(path: str, expected_sha256: str) -> ModelArtifact:
    """Read an artifact after checking its sha256; raise ArtifactCorrupt otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise ArtifactCorrupt(f"model artifact {path} is missing") from exc
    except OSError as exc:
        raise ArtifactCorrupt(f"model artifact {path} cannot be read: {exc.strerror}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ArtifactCorrupt(
            f"model artifact {path} failed its checksum: it was changed or damaged after training",
            detail=f"expected sha256 {expected_sha256}, found {actual}",
            hint="retrain the model (DROP MODEL, then CREATE MODEL)",
        )
    artifact = pickle.loads(data)
    if not isinstance(artifact, ModelArtifact):
        raise ArtifactCorrupt(f"model artifact {path} holds a {type(artifact).__name__}")
    if artifact.format_version != FORMAT_VERSION:
        raise ArtifactCorrupt(
            f"model artifact {path} has format version {artifact.format_version}; "
            f"this server reads version {FORMAT_VERSION}"
        )
    return artifact


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder (after os.replace, so the rename is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
