"""Model artifacts: the fitted model and everything needed to score it.

An artifact is a small set of files in a model version's folder, none of
which can run code when read:

- the manifest, ``artifact.json`` (:data:`catalog.files.ARTIFACT_FILE`): format version,
  feature schema, target, problem type, labels, categories, metric,
  decision threshold, what kind of estimator it is (with its preprocessors)
  as JSON, and the name and sha256 of every other file;
- the estimator's files, ``artifact.<role>.<ext>``: LightGBM model text,
  XGBoost UBJSON, or skops for scikit-learn objects (see catalog.formats).

The catalog records the manifest's name and sha256; the manifest vouches
for the rest. An artifact holds the learner libraries' estimators and
catalog's wrappers, never training data nor classes from ``automl`` or
``server``.

Invariants:

- every file is written atomically (:func:`catalog.files.write_atomic`); the
  manifest is written last, so it only ever names files already on disk;
- :func:`read_artifact` checks the manifest's sha256, then every listed
  file's, *before* decoding any of them;
- nothing is unpickled: an artifact from an earlier version (one pickle
  file) is refused with ArtifactOutdated (retrain the model), because its
  checksum was kept in a catalog SQL could write;
- the model input is always built by :func:`catalog.frames.to_frame` with
  this artifact's ``features`` and ``categories``.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from catalog import formats
from catalog.errors import ArtifactCorrupt, ArtifactOutdated
from catalog.files import write_atomic
from catalog.frames import estimator_input, to_frame
from catalog.spec import Column, ProblemType

FORMAT_VERSION = 2  # 1: one pickle file (no longer read)
_PICKLE_PROTOCOL_2_PLUS = b"\x80"  # how every pickle QuackML ever wrote starts


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
    # Bytes of the files it was read from (0 for an artifact built in memory).
    stored_bytes: int = field(default=0, compare=False, repr=False)

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


def write_artifact(artifact: ModelArtifact, path: str) -> str:
    """Write the artifact with its manifest at ``path`` (its other files beside it);
    return the manifest's sha256 hex, which the catalog records."""
    folder, manifest_name = os.path.split(os.path.abspath(path))
    files = formats.PartFiles(manifest_name.rsplit(".", 1)[0])
    estimator = formats.encode(artifact.estimator, files)
    digests = {}
    for name, data in files.files.items():
        write_atomic(os.path.join(folder, name), data)
        digests[name] = hashlib.sha256(data).hexdigest()
    manifest = {
        "format_version": FORMAT_VERSION,
        "features": [_column_json(c) for c in artifact.features],
        "target": _column_json(artifact.target),
        "problem_type": artifact.problem_type.value,
        "labels": [_label_json(v) for v in artifact.labels],
        "categories": [None if c is None else list(c) for c in artifact.categories],
        "category_codes": artifact.category_codes,
        "threshold": artifact.threshold,
        "positive_index": artifact.positive_index,
        "metric_name": artifact.metric_name,
        "metric_value": None if np.isnan(artifact.metric_value) else artifact.metric_value,
        "learner": artifact.learner,
        "estimator": estimator,
        "files": digests,
    }
    data = json.dumps(manifest, indent=1, allow_nan=False).encode("utf-8")
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_artifact(path: str, expected_sha256: str) -> ModelArtifact:
    """Read an artifact after checking the sha256 of its manifest and of every file the
    manifest lists; raise ArtifactCorrupt (or ArtifactOutdated) otherwise."""
    data = _read_checked(path, expected_sha256)
    if data.startswith(_PICKLE_PROTOCOL_2_PLUS):
        raise ArtifactOutdated(
            f"model artifact {path} was written by an earlier QuackML version as a pickle, "
            "which this server no longer loads (a pickle can run code when it is read)",
            hint="retrain the model (DROP MODEL, then CREATE MODEL)")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ArtifactCorrupt(f"model artifact {path} is not an artifact manifest") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ArtifactCorrupt(
            f"model artifact {path} has format version {version}; "
            f"this server reads version {FORMAT_VERSION}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    files: dict[str, bytes] = {}
    try:
        for name, sha256 in manifest["files"].items():
            if not _plain_name(name) or not isinstance(sha256, str):
                raise ArtifactCorrupt(f"model artifact {path} lists a bad file name {name!r}")
            files[name] = _read_checked(os.path.join(folder, name), sha256)
        return ModelArtifact(
            features=tuple(_column(c) for c in manifest["features"]),
            target=_column(manifest["target"]),
            problem_type=ProblemType(manifest["problem_type"]),
            labels=tuple(_label(v) for v in manifest["labels"]),
            categories=tuple(None if c is None else tuple(str(v) for v in c)
                             for c in manifest["categories"]),
            estimator=formats.decode(manifest["estimator"], files),
            metric_name=str(manifest["metric_name"]),
            metric_value=(float("nan") if manifest["metric_value"] is None
                          else float(manifest["metric_value"])),
            threshold=None if manifest["threshold"] is None else float(manifest["threshold"]),
            positive_index=int(manifest["positive_index"]),
            category_codes=bool(manifest["category_codes"]),
            learner=str(manifest["learner"]),
            stored_bytes=len(data) + sum(len(b) for b in files.values()),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactCorrupt(
            f"model artifact {path} is malformed: {type(exc).__name__}: {exc}") from None


def _read_checked(path: str, expected_sha256: str) -> bytes:
    """The file's bytes when their sha256 is ``expected_sha256``; else ArtifactCorrupt."""
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
    return data


def _plain_name(name: object) -> bool:
    """A file name in the artifact's own folder (no folder part, not hidden)."""
    return (isinstance(name, str) and bool(name) and not name.startswith(".")
            and os.path.basename(name) == name and "/" not in name and "\\" not in name)


def _column_json(column: Column) -> dict[str, str]:
    return {"name": column.name, "type": column.type}


def _column(value: Any) -> Column:
    return Column(str(value["name"]), str(value["type"]))


# Label values JSON has no type for, tagged: {"<tag>": text}.
_LABEL_TAGS: dict[str, Any] = {
    "decimal": decimal.Decimal,
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
}


def _label_json(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"label {value!r} cannot be stored")
        return value
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime.datetime):  # before date: a datetime is a date
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"time": value.isoformat()}
    raise TypeError(f"a label of type {type(value).__name__} cannot be stored")


def _label(value: Any) -> object:
    if isinstance(value, dict):
        ((tag, text),) = value.items()
        return _LABEL_TAGS[tag](text)
    return value


