"""Typed values that describe models: columns, problem types, states, jobs.

These frozen dataclasses are what crosses package boundaries (server ->
catalog -> automl worker -> inference); nothing passes untyped dicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ProblemType(enum.StrEnum):
    BINARY = "BINARY_CLASSIFICATION"
    MULTICLASS = "MULTICLASS_CLASSIFICATION"
    REGRESSION = "REGRESSION"

    @property
    def is_classification(self) -> bool:
        return self is not ProblemType.REGRESSION


class ModelState(enum.StrEnum):
    TRAINING = "TRAINING"
    READY = "READY"
    FAILED = "FAILED"


class FeatureKind(enum.StrEnum):
    """How a column is treated by training and scoring."""

    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    TEMPORAL = "temporal"


@dataclass(frozen=True)
class Column:
    """A training column: its name and DuckDB logical type as DuckDB prints it
    (``BIGINT``, ``VARCHAR``, ``DECIMAL(10,2)``, ``TIMESTAMP WITH TIME ZONE``)."""

    name: str
    type: str

    @property
    def kind(self) -> FeatureKind | None:
        """The feature kind, or None when QuackML cannot use the type."""
        return feature_kind(self.type)


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
_TEMPORAL = ("DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S",
             "TIMESTAMP_MS", "TIMESTAMP_NS", "TIME WITH TIME ZONE")


def feature_kind(duckdb_type: str) -> FeatureKind | None:
    t = duckdb_type.upper()
    if t in _NUMERIC or t.startswith("DECIMAL"):
        return FeatureKind.NUMERIC
    if t == "BOOLEAN":
        return FeatureKind.BOOLEAN
    if t == "VARCHAR" or t.startswith("VARCHAR(") or t.startswith("CHAR"):
        return FeatureKind.CATEGORICAL
    if t in _TEMPORAL:
        return FeatureKind.TEMPORAL
    return None


@dataclass(frozen=True)
class TrainingJob:
    """Everything a worker process needs to train one model from its snapshot."""

    model_name: str
    snapshot_path: str            # Parquet file: the feature columns and the target
    features: tuple[Column, ...]  # in the order of the prediction function's arguments
    target: Column | None         # None: KMEANS (no target)
    problem_type: ProblemType | None  # None: detect from the target
    objective: str | None             # None: the default for the problem type
    time_budget_s: float
    output_dir: str                   # the model version's folder; artifact goes here
    progress_path: str                # JSON file the worker rewrites atomically
    n_jobs: int = 1
    seed: int = 0
    auto: bool = True                 # False: AUTO OFF (XGBOOST or KMEANS with fixed settings)
    model_type: str | None = None     # XGBOOST, MLP, LINEAR_LEARNER, KMEANS; None: any learner
    # HYPERPARAMETERS DEFAULT EXCEPT (...) as given (keys lower case, values as written)
    hyperparameters: tuple[tuple[str, str], ...] = ()
    preprocessors: str | None = None  # the PREPROCESSORS JSON or 'none', as written
    # MODEL_TYPE FORECAST (automl.forecast): HORIZON, FREQUENCY, PERCENTILES
    horizon: int | None = None
    frequency: str | None = None
    percentiles: str | None = None


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training job reports back to the server."""

    problem_type: ProblemType
    metric_name: str              # e.g. "f1", "accuracy", "mse"
    metric_value: float           # measured on the validation holdout
    labels: tuple[object, ...]    # class labels in model index order; () for regression
    best_learner: str
    trials: int
    artifact_file: str            # file name inside output_dir
    artifact_sha256: str
    rows_train: int
    rows_validation: int
    seconds: float


@dataclass(frozen=True)
class Progress:
    """A snapshot of a training job's progress, shown by SHOW MODEL."""

    phase: str                    # "queued", "loading", "searching", "refitting", "saving"
    elapsed_s: float
    budget_s: float
    trials: int = 0
    metric_name: str | None = None
    best_metric: float | None = None
    current_learner: str | None = None
    # the search so far: [elapsed_s, trials, best_metric] each time the best changed
    # (automl.progress records it; the web console charts it)
    history: tuple[tuple[float, int, float], ...] = ()


@dataclass(frozen=True)
class Settings:
    """CREATE MODEL SETTINGS (...)."""

    s3_bucket: str | None = None
    kms_key_id: str | None = None
    tags: str | None = None
    s3_garbage_collect: bool = True
    max_cells: int = 1_000_000
    max_runtime: int = 5400
    max_batch_rows: int = 2_147_483_647
    # MODEL_TYPE FORECAST: the forecast length in steps, the series' frequency and the
    # percentiles as written (automl.forecast checks them)
    horizon: int | None = None
    frequency: str | None = None
    percentiles: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A validated CREATE MODEL statement."""

    name: str
    schema: str
    function_name: str
    source_query: str | None      # FROM ( query )
    source_table: str | None      # FROM table
    target: str | None
    iam_role: str | None
    settings: Settings = field(default_factory=Settings)
    auto: bool = True
    model_type: str | None = None
    problem_type: ProblemType | None = None
    objective: str | None = None
    preprocessors: str | None = None
    hyperparameters: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class TrainingFailure:
    """What a failed training job reports back: the error as data."""

    error_class: str              # e.g. "BudgetTooSmall"
    sqlstate: str                 # e.g. "22023"
    message: str
