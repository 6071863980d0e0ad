"""Where a model's files live, and how every file is published.

One module owns the layout of the data directory's ``models/`` folder, so no
other code builds a model path or a model function name by hand::

    models/<schema>/<model>/v<N>-<created, UTC>/   one folder per version
        artifact.json  + the files it names      the model (catalog.artifact)
        snapshot.parquet                         the training rows, until READY
        holdout.parquet                          the validation holdout rows (AUTO ON)
        progress.json  result.json               the training worker's reports
        explanation.json                         EXPLAIN_MODEL's document
        compiled.*                               compiled trees (inference.compiled)

A model's SQL functions are ``f``, ``f_probabilities`` (classifiers) and
``f_explain`` and ``f_explain_top`` (k attributions); their names come from :func:`function_names`.

Every file is published with :func:`write_atomic` (or :func:`publish`, for a
file written in place first): one durability rule everywhere, so a crash
leaves either the old file or the new one, never a torn one, and a file that
was published survives a power cut: temp file in the same folder, flush,
fsync, ``os.replace``, fsync of the folder.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ARTIFACT_FILE = "artifact.json"
SNAPSHOT_FILE = "snapshot.parquet"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.json"
EXPLANATION_FILE = "explanation.json"
HOLDOUT_FILE = "holdout.parquet"
MODELS_FOLDER = "models"

PROBABILITIES_SUFFIX = "_probabilities"
EXPLAIN_SUFFIX = "_explain"
EXPLAIN_TOP_SUFFIX = "_explain_top"   # f_explain with a trailing k (DuckDB has no overloads
                                      # of Python functions)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def function_names(function_name: str, classification: bool) -> list[str]:
    """The SQL functions of a model whose prediction function is ``function_name``."""
    names = [function_name]
    if classification:
        names.append(function_name + PROBABILITIES_SUFFIX)
    names += [function_name + EXPLAIN_SUFFIX, function_name + EXPLAIN_TOP_SUFFIX]
    return names


def all_function_names(function_name: str) -> tuple[str, ...]:
    """Every name a model's functions may take (reserved when the model is created)."""
    return (function_name, function_name + PROBABILITIES_SUFFIX, function_name + EXPLAIN_SUFFIX,
            function_name + EXPLAIN_TOP_SUFFIX)


def base_function(name: str) -> str:
    """The prediction function behind one of a model's function names."""
    for suffix in (PROBABILITIES_SUFFIX, EXPLAIN_TOP_SUFFIX, EXPLAIN_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def version_folder(schema: str, model: str, version: int, created: datetime) -> str:
    """A new version's folder, relative to the data directory."""
    return str(Path(MODELS_FOLDER) / _SAFE_NAME.sub("_", schema) / _SAFE_NAME.sub("_", model)
               / f"v{version}-{created.strftime('%Y%m%d%H%M%S%f')}")


@dataclass(frozen=True)
class VersionFiles:
    """The files of one model version (``folder`` is absolute)."""

    folder: Path

    @classmethod
    def of(cls, data_dir: Path, model_dir: str) -> VersionFiles:
        return cls(data_dir / model_dir)

    @property
    def model_folder(self) -> Path:
        """The folder holding every version of the model."""
        return self.folder.parent

    @property
    def artifact(self) -> Path:
        return self.folder / ARTIFACT_FILE

    @property
    def snapshot(self) -> Path:
        return self.folder / SNAPSHOT_FILE

    @property
    def result(self) -> Path:
        return self.folder / RESULT_FILE

    @property
    def progress(self) -> Path:
        return self.folder / PROGRESS_FILE

    @property
    def holdout(self) -> Path:
        return self.folder / HOLDOUT_FILE

    @property
    def explanation(self) -> Path:
        return self.folder / EXPLANATION_FILE


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Publish ``data`` at ``path`` atomically and durably (the module's rule)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".publish-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:   # mkstemp makes it 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_path(folder)


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> None:
    write_atomic(path, json.dumps(document).encode())


def publish(written: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Publish a file already written elsewhere in the same file system (a temp file,
    a compiler's output) at ``path``, by the same rule as :func:`write_atomic`."""
    fsync_path(written)
    os.replace(written, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder (after os.replace, so the rename is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
