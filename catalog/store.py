"""The model catalog: one row per model in ``quackml.models``.

The catalog lives in a reserved schema of the same DuckDB database as the
user's data, so models and the tables they came from are backed up together.
Only the server process opens the database; all writes go through one
``ModelStore`` guarded by a lock (one writer), each a single statement in
autocommit, so a crash never leaves a half-written row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import duckdb

from catalog.spec import Column, ModelState, ProblemType, Settings, TrainingResult
from catalog.views import create_views

SCHEMA = "quackml"

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.models (
    schema_name     VARCHAR NOT NULL,
    model_name      VARCHAR NOT NULL,
    version         INTEGER NOT NULL,
    owner           VARCHAR NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    state           VARCHAR NOT NULL,
    failure_reason  VARCHAR,
    statement       VARCHAR NOT NULL,
    source_query    VARCHAR,
    source_table    VARCHAR,
    target          VARCHAR,
    target_type     VARCHAR,
    function_name   VARCHAR NOT NULL,
    features        VARCHAR NOT NULL,   -- JSON [[name, duckdb type], ...]
    iam_role        VARCHAR,
    settings        VARCHAR NOT NULL,   -- JSON of catalog.spec.Settings
    model_type      VARCHAR,
    problem_type    VARCHAR,
    objective       VARCHAR,
    metric_name     VARCHAR,
    metric_value    DOUBLE,
    labels          VARCHAR,            -- JSON list, model index order
    rows_total      BIGINT,
    rows_used       BIGINT,
    model_dir       VARCHAR NOT NULL,   -- relative to the data dir
    artifact_file   VARCHAR,
    artifact_sha256 VARCHAR,
    best_learner    VARCHAR,
    trials          INTEGER,
    train_seconds   DOUBLE,
    finished_at     TIMESTAMPTZ,
    auto            BOOLEAN,
    hyperparameters VARCHAR,            -- JSON [[key, value], ...] as written
    preprocessors   VARCHAR
);
ALTER TABLE {schema}.models ADD COLUMN IF NOT EXISTS auto BOOLEAN;
ALTER TABLE {schema}.models ADD COLUMN IF NOT EXISTS hyperparameters VARCHAR;
ALTER TABLE {schema}.models ADD COLUMN IF NOT EXISTS preprocessors VARCHAR;
CREATE TABLE IF NOT EXISTS {schema}.meta (key VARCHAR NOT NULL, value VARCHAR);
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

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.model_name}"


_COLUMNS = tuple(f for f in ModelRecord.__dataclass_fields__)


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
    d["state"] = ModelState(str(d["state"]))
    d["problem_type"] = ProblemType(str(d["problem_type"])) if d["problem_type"] else None
    return ModelRecord(**d)  # type: ignore[arg-type]


class ModelStore:
    """Reads and writes ``quackml.models`` through its own DuckDB cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con.cursor()
        self._lock = threading.RLock()
        with self._lock:
            rows = self._con.execute("SELECT current_database()").fetchall()
            # Qualified by the database: a file named quackml.duckdb is a
            # catalog called "quackml", which would make "quackml.models" ambiguous.
            database = str(rows[0][0]).replace('"', '""')
            self._schema = f'"{database}".{SCHEMA}'
            self._con.execute(_DDL.format(schema=self._schema))
            create_views(self._con, f"{self._schema}.models")

    @property
    def qualified_schema(self) -> str:
        """The catalog schema, qualified by the database (for sibling stores)."""
        return self._schema

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writer lock across a read-check-write sequence."""
        with self._lock:
            yield

    def get(self, schema: str, name: str) -> ModelRecord | None:
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM {self._schema}.models "
                "WHERE schema_name = ? AND model_name = ?", [schema, name]).fetchall()
        return _from_row(rows[0]) if rows else None

    def all(self) -> list[ModelRecord]:
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM {self._schema}.models "
                "ORDER BY schema_name, model_name").fetchall()
        return [_from_row(r) for r in rows]

    def by_function(self, function_name: str) -> ModelRecord | None:
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM {self._schema}.models WHERE function_name = ?",
                [function_name]).fetchall()
        return _from_row(rows[0]) if rows else None

    def insert(self, record: ModelRecord) -> None:
        with self._lock:
            self._con.execute(
                f"INSERT INTO {self._schema}.models ({', '.join(_COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in _COLUMNS)})", _to_row(record))

    def _replace(self, record: ModelRecord) -> None:
        with self._lock:
            self._con.execute("BEGIN")
            try:
                self._con.execute(f"DELETE FROM {self._schema}.models WHERE schema_name = ? "
                                  "AND model_name = ?", [record.schema_name, record.model_name])
                self.insert(record)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def mark_ready(self, schema: str, name: str, result: TrainingResult,
                   finished_at: datetime) -> ModelRecord | None:
        with self._lock:
            record = self.get(schema, name)
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

    def mark_failed(self, schema: str, name: str, reason: str,
                    finished_at: datetime) -> ModelRecord | None:
        with self._lock:
            record = self.get(schema, name)
            if record is None:
                return None
            record = replace(record, state=ModelState.FAILED, failure_reason=reason,
                             finished_at=finished_at)
            self._replace(record)
            return record

    def delete(self, schema: str, name: str) -> None:
        with self._lock:
            self._con.execute(f"DELETE FROM {self._schema}.models WHERE schema_name = ? "
                              "AND model_name = ?", [schema, name])

    def meta(self, key: str) -> str | None:
        """A server-wide marker (e.g. whether the sample tables were loaded)."""
        with self._lock:
            rows = self._con.execute(f"SELECT value FROM {self._schema}.meta WHERE key = ?",
                                     [key]).fetchall()
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._con.execute(f"DELETE FROM {self._schema}.meta WHERE key = ?", [key])
            self._con.execute(f"INSERT INTO {self._schema}.meta VALUES (?, ?)", [key, value])

    def close(self) -> None:
        with self._lock:
            self._con.close()
