"""The model catalog: one row per model version in the security catalog's
``model_versions`` table.

A model is its versions. At most one is *active*: the one its functions score
with and SHOW MODEL shows. A model's first version is active from the start
(its functions answer "still training" until it is READY); a version made by
CREATE OR REPLACE or RETRAIN becomes active only when it is READY (and, with
ONLY IF BETTER, only when it beats the active one), in the same transaction
that clears the flag of the one before, so there is never a moment with two
or none. ``get`` gives the active version (or the latest, when none is).

The catalog is a SQLite file in the data directory (``catalog.db.CatalogDB``), out of
SQL's reach: user SQL runs against DuckDB, which cannot open it, so no
statement can change a model's owner, artifact path or checksum. All writes
go through one ``ModelStore`` under the catalog's lock (one writer); a
replace is one transaction, so a crash never leaves a half-written row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from catalog.db import CatalogDB
from catalog.spec import Column, ModelState, ProblemType, Settings, TrainingResult

_DDL = """
CREATE TABLE IF NOT EXISTS model_versions (
    schema_name     TEXT NOT NULL,
    model_name      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    owner           TEXT NOT NULL,
    created_at      TEXT NOT NULL,      -- ISO 8601 with time zone
    state           TEXT NOT NULL,
    failure_reason  TEXT,
    statement       TEXT NOT NULL,
    source_query    TEXT,
    source_table    TEXT,
    target          TEXT,
    target_type     TEXT,
    function_name   TEXT NOT NULL,
    features        TEXT NOT NULL,      -- JSON [[name, duckdb type], ...]
    iam_role        TEXT,
    settings        TEXT NOT NULL,      -- JSON of catalog.spec.Settings
    model_type      TEXT,
    problem_type    TEXT,
    objective       TEXT,
    metric_name     TEXT,
    metric_value    REAL,
    labels          TEXT,               -- JSON list, model index order
    rows_total      INTEGER,
    rows_used       INTEGER,
    model_dir       TEXT NOT NULL,      -- relative to the data dir
    artifact_file   TEXT,
    artifact_sha256 TEXT,
    best_learner    TEXT,
    trials          INTEGER,
    train_seconds   REAL,
    finished_at     TEXT,
    auto            INTEGER,
    hyperparameters TEXT,               -- JSON [[key, value], ...] as written
    preprocessors   TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    created_by      TEXT,
    fingerprint     TEXT,               -- sha256 of the training snapshot
    decision        TEXT,               -- how the version came to be active (or not)
    champion_score  REAL,               -- RETRAIN ONLY IF BETTER: the active version's
    challenger_score REAL,              -- and this version's score on this one's holdout
    PRIMARY KEY (schema_name, model_name, version)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass(frozen=True)
class ModelRecord:
    schema_name: str
    model_name: str
    version: int
    owner: str
    created_at: datetime
    state: ModelState
    statement: str
    function_name: str
    features: tuple[Column, ...]
    settings: Settings
    model_dir: str
    source_query: str | None = None
    source_table: str | None = None
    target: str | None = None
    target_type: str | None = None
    iam_role: str | None = None
    model_type: str | None = None
    problem_type: ProblemType | None = None
    objective: str | None = None
    failure_reason: str | None = None
    metric_name: str | None = None
    metric_value: float | None = None
    labels: tuple[object, ...] = ()
    rows_total: int | None = None
    rows_used: int | None = None
    artifact_file: str | None = None
    artifact_sha256: str | None = None
    best_learner: str | None = None
    trials: int | None = None
    train_seconds: float | None = None
    finished_at: datetime | None = None
    auto: bool = True
    hyperparameters: tuple[tuple[str, str], ...] = ()
    preprocessors: str | None = None
    active: bool = True
    created_by: str | None = None
    fingerprint: str | None = None
    decision: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None

    @property
    def bring_your_own(self) -> bool:
        """An imported model file or a SAGEMAKER endpoint (not trained here)."""
        model_type = self.model_type or ""
        return model_type.startswith("IMPORTED ") or model_type == "SAGEMAKER"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.model_name}"


_COLUMNS = tuple(f for f in ModelRecord.__dataclass_fields__)
# the columns versions added: a catalog from before them gets their defaults
_NEW_COLUMNS = ("active", "created_by", "fingerprint", "decision", "champion_score",
                "challenger_score")


def _to_row(r: ModelRecord) -> list[object]:
    row: list[object] = []
    for name in _COLUMNS:
        v = getattr(r, name)
        if name == "features":
            v = json.dumps([[c.name, c.type] for c in v])
        elif name == "settings":
            v = json.dumps(asdict(v))
        elif name in ("labels", "hyperparameters"):
            v = json.dumps([list(x) for x in v] if name == "hyperparameters" else list(v))
        elif name in ("state", "problem_type") and v is not None:
            v = str(v)
        elif isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, bool):
            v = int(v)
        row.append(v)
    return row


def _from_row(row: tuple[object, ...]) -> ModelRecord:
    d = dict(zip(_COLUMNS, row, strict=True))
    d["features"] = tuple(Column(n, t) for n, t in json.loads(str(d["features"])))
    d["settings"] = Settings(**json.loads(str(d["settings"])))
    d["labels"] = tuple(json.loads(str(d["labels"]))) if d["labels"] else ()
    d["hyperparameters"] = tuple(
        (str(k), str(v)) for k, v in json.loads(str(d["hyperparameters"] or "[]")))
    d["auto"] = True if d["auto"] is None else bool(d["auto"])
    d["active"] = bool(d["active"])
    d["state"] = ModelState(str(d["state"]))
    d["problem_type"] = ProblemType(str(d["problem_type"])) if d["problem_type"] else None
    for name in ("created_at", "finished_at"):
        if d[name] is not None and not isinstance(d[name], datetime):
            d[name] = datetime.fromisoformat(str(d[name]))
    return ModelRecord(**d)  # type: ignore[arg-type]


class ModelStore:
    """Reads and writes the ``models`` and ``meta`` tables of the security catalog."""

    def __init__(self, db: CatalogDB):
        self._db = db
        db.script(_DDL)
        legacy = db.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                          "AND name = 'models'")
        if legacy:   # one row per model, before versions: each is its active version
            with db.transaction():
                names = ", ".join(c for c in _COLUMNS if c not in _NEW_COLUMNS)
                db.execute(f"INSERT INTO model_versions ({names}) SELECT {names} FROM models")
                db.execute("DROP TABLE models")

    @property
    def db(self) -> CatalogDB:
        return self._db

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writer lock across a read-check-write sequence (one transaction)."""
        with self._db.transaction():
            yield

    def _select(self, where: str = "", params: tuple[object, ...] = ()) -> list[ModelRecord]:
        rows = self._db.query(f"SELECT {', '.join(_COLUMNS)} FROM model_versions {where}",
                              params)
        return [_from_row(r) for r in rows]

    def get(self, schema: str, name: str) -> ModelRecord | None:
        """The model's active version; the latest one when none is active."""
        found = self._select("WHERE schema_name = ? AND model_name = ? "
                             "ORDER BY active DESC, version DESC LIMIT 1", (schema, name))
        return found[0] if found else None

    def version(self, schema: str, name: str, version: int) -> ModelRecord | None:
        found = self._select("WHERE schema_name = ? AND model_name = ? AND version = ?",
                             (schema, name, version))
        return found[0] if found else None

    def versions(self, schema: str, name: str) -> list[ModelRecord]:
        return self._select("WHERE schema_name = ? AND model_name = ? ORDER BY version",
                            (schema, name))

    def training(self, schema: str, name: str) -> ModelRecord | None:
        """The model's version in training (at most one at a time)."""
        found = self._select("WHERE schema_name = ? AND model_name = ? AND state = ? "
                             "ORDER BY version DESC LIMIT 1",
                             (schema, name, str(ModelState.TRAINING)))
        return found[0] if found else None

    def all(self) -> list[ModelRecord]:
        """Every model, as its active (or latest) version."""
        return self._select(
            "AS v WHERE version = (SELECT w.version FROM model_versions AS w "
            "WHERE w.schema_name = v.schema_name AND w.model_name = v.model_name "
            "ORDER BY w.active DESC, w.version DESC LIMIT 1) "
            "ORDER BY schema_name, model_name")

    def all_versions(self) -> list[ModelRecord]:
        return self._select("ORDER BY schema_name, model_name, version")

    def by_function(self, function_name: str) -> ModelRecord | None:
        found = self._select("WHERE function_name = ? ORDER BY active DESC, version DESC "
                             "LIMIT 1", (function_name,))
        return found[0] if found else None

    def insert(self, record: ModelRecord) -> None:
        self._db.execute(f"INSERT INTO model_versions ({', '.join(_COLUMNS)}) VALUES "
                         f"({', '.join('?' for _ in _COLUMNS)})", _to_row(record))

    def next_version(self, schema: str, name: str) -> int:
        rows = self._db.query("SELECT max(version) FROM model_versions WHERE schema_name = ? "
                              "AND model_name = ?", (schema, name))
        return int(rows[0][0] or 0) + 1 if rows else 1   # type: ignore[call-overload]

    def _replace(self, record: ModelRecord) -> None:
        with self._db.transaction():
            self._db.execute("DELETE FROM model_versions WHERE schema_name = ? AND "
                             "model_name = ? AND version = ?",
                             (record.schema_name, record.model_name, record.version))
            self.insert(record)

    def update(self, record: ModelRecord) -> None:
        """Write a version's record back (one transaction)."""
        self._replace(record)

    def activate(self, record: ModelRecord) -> ModelRecord:
        """Make ``record`` the active version: one transaction clears the flag of the one
        before and sets this one's."""
        with self._db.transaction():
            self._db.execute("UPDATE model_versions SET active = 0 WHERE schema_name = ? "
                             "AND model_name = ?", (record.schema_name, record.model_name))
            record = replace(record, active=True)
            self._replace(record)
        return record

    def mark_ready(self, schema: str, name: str, version: int, result: TrainingResult,
                   finished_at: datetime) -> ModelRecord | None:
        with self._db.transaction():
            record = self.version(schema, name, version)
            if record is None:
                return None
            record = replace(
                record, state=ModelState.READY, problem_type=result.problem_type,
                metric_name=result.metric_name, metric_value=result.metric_value,
                labels=result.labels, artifact_file=result.artifact_file,
                artifact_sha256=result.artifact_sha256, best_learner=result.best_learner,
                trials=result.trials, train_seconds=result.seconds, finished_at=finished_at)
            self._replace(record)
            return record

    def mark_failed(self, schema: str, name: str, version: int, reason: str,
                    finished_at: datetime) -> ModelRecord | None:
        with self._db.transaction():
            record = self.version(schema, name, version)
            if record is None:
                return None
            record = replace(record, state=ModelState.FAILED, failure_reason=reason,
                             finished_at=finished_at)
            self._replace(record)
            return record

    def delete(self, schema: str, name: str) -> None:
        """Every version of the model."""
        self._db.execute("DELETE FROM model_versions WHERE schema_name = ? AND model_name = ?",
                         (schema, name))

    def delete_version(self, schema: str, name: str, version: int) -> None:
        self._db.execute("DELETE FROM model_versions WHERE schema_name = ? AND model_name = ? "
                         "AND version = ?", (schema, name, version))

    def meta(self, key: str) -> str | None:
        """A server-wide marker (e.g. whether the sample tables were loaded)."""
        rows = self._db.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
