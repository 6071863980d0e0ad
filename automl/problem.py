"""Problem detection, label encoding and objectives.

From the target column (its DuckDB type and its values) this module decides
the problem type when CREATE MODEL did not name one, checks a named one
against the data, encodes class labels as 0..k-1 in sorted order, and maps
the SQL objective names (``MSE``, ``Accuracy``, ``F1``, ``F1Macro``, ``AUC``)
to the metric the search optimizes and reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from automl.errors import InsufficientData, InvalidOption, TargetTypeMismatch
from catalog.spec import Column, ProblemType

# An integer target with at most this many distinct values (and few relative
# to the rows) is read as class labels rather than as a quantity.
MAX_AUTO_CLASSES = 20
ROWS_PER_AUTO_CLASS = 10
MAX_CLASSES = 256
MIN_ROWS = 10

_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT")
_FLOAT_TYPES = ("FLOAT", "REAL", "DOUBLE")


@dataclass(frozen=True)
class Objective:
    """The metric a search optimizes and reports."""

    metric_name: str  # FLAML's name: "f1", "accuracy", "macro_f1", "roc_auc" or "mse"
    higher_is_better: bool
    sql_name: str = ""  # the SQL spelling: "F1", "Accuracy", "F1Macro", "AUC" or "MSE"

    def value_from_loss(self, loss: float) -> float:
        """The metric for a FLAML loss (losses are minimized: 1 - score, or the error)."""
        return 1.0 - loss if self.higher_is_better else loss


_OBJECTIVES = {
    "mse": Objective("mse", higher_is_better=False, sql_name="MSE"),
    "accuracy": Objective("accuracy", higher_is_better=True, sql_name="Accuracy"),
    "f1": Objective("f1", higher_is_better=True, sql_name="F1"),
    "f1macro": Objective("macro_f1", higher_is_better=True, sql_name="F1Macro"),
    "auc": Objective("roc_auc", higher_is_better=True, sql_name="AUC"),
}
_DEFAULTS = {
    ProblemType.BINARY: "f1",
    ProblemType.MULTICLASS: "accuracy",
    ProblemType.REGRESSION: "mse",
}
_ALLOWED = {
    ProblemType.BINARY: ("accuracy", "f1", "f1macro", "auc"),
    ProblemType.MULTICLASS: ("accuracy", "f1macro"),
    ProblemType.REGRESSION: ("mse",),
}
_SQL_NAMES = {"mse": "MSE", "accuracy": "Accuracy", "f1": "F1", "f1macro": "F1Macro", "auc": "AUC"}


def target_family(target: Column) -> str:
    """'boolean', 'string', 'integer' or 'float'; raise when the type cannot be a target."""
    t = target.type.upper()
    if t == "BOOLEAN":
        return "boolean"
    if t == "VARCHAR" or t.startswith("VARCHAR(") or t.startswith("CHAR"):
        return "string"
    if t in _INTEGER_TYPES:
        return "integer"
    if t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        return "float"
    raise TargetTypeMismatch(
        f"target column {target.name!r} has type {target.type}, which cannot be a target",
        hint="use a SMALLINT, INTEGER, BIGINT, REAL, DOUBLE, BOOLEAN, CHAR or VARCHAR column",
    )


def detect_problem(target: Column, y: pa.Array, requested: ProblemType | None) -> ProblemType:
    """The problem type for the non-NULL target values ``y``: ``requested`` (checked)
    or detected."""
    return explain_problem(target, y, requested)[0]


def explain_problem(target: Column, y: pa.Array,
                    requested: ProblemType | None) -> tuple[ProblemType, str]:
    """:func:`detect_problem` with the reason for its answer (EXPLAIN CREATE MODEL)."""
    family = target_family(target)
    rows = len(y)
    if rows < MIN_ROWS:
        raise InsufficientData(
            f"only {rows} rows have a non-NULL {target.name!r}; at least {MIN_ROWS} are needed"
        )
    distinct = len(pc.unique(y))
    if distinct < 2:
        raise InsufficientData(
            f"target column {target.name!r} has a single distinct value; nothing to learn"
        )
    if requested is not None:
        problem, reason = requested, f"given; the target has {distinct} distinct values"
    else:
        problem, reason = _detect(family, distinct, rows)
    if problem is ProblemType.REGRESSION and family not in ("integer", "float"):
        raise TargetTypeMismatch(
            f"REGRESSION needs a numeric target; {target.name!r} is {target.type}",
            hint="use BINARY_CLASSIFICATION or MULTICLASS_CLASSIFICATION",
        )
    if problem is ProblemType.BINARY and distinct != 2:
        raise InsufficientData(
            f"BINARY_CLASSIFICATION needs exactly 2 distinct target values; "
            f"{target.name!r} has {distinct}",
            hint="use MULTICLASS_CLASSIFICATION" if distinct > 2 else None,
        )
    if problem.is_classification and distinct > MAX_CLASSES:
        raise InsufficientData(
            f"target column {target.name!r} has {distinct} distinct values; "
            f"classification supports at most {MAX_CLASSES} classes",
            hint="use REGRESSION for a quantity",
        )
    return problem, reason


def _detect(family: str, distinct: int, rows: int) -> tuple[ProblemType, str]:
    """The detected problem type and why."""
    classes = ProblemType.BINARY if distinct == 2 else ProblemType.MULTICLASS
    if family in ("boolean", "string"):
        return classes, f"a {family} target with {distinct} distinct values"
    few = distinct <= MAX_AUTO_CLASSES and distinct * ROWS_PER_AUTO_CLASS <= rows
    if family == "integer" and few:
        return classes, (f"an integer target with {distinct} distinct values (at most "
                         f"{MAX_AUTO_CLASSES}, and at least {ROWS_PER_AUTO_CLASS} rows per "
                         f"value): class labels")
    if family == "integer":
        return ProblemType.REGRESSION, (
            f"an integer target with {distinct} distinct values in {rows} rows (more than "
            f"{MAX_AUTO_CLASSES}, or fewer than {ROWS_PER_AUTO_CLASS} rows per value): "
            f"a quantity")
    return ProblemType.REGRESSION, "a floating-point or decimal target: a quantity"


def encode_labels(y: pa.Array, problem: ProblemType) -> tuple[np.ndarray, tuple[object, ...]]:
    """Codes 0..k-1 in sorted label order and the labels (Python values) for classification;
    float64 values and () for regression. ``y`` has no NULLs."""
    if not problem.is_classification:
        values = pc.cast(y, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), ()
    if pa.types.is_decimal(y.type):
        y = pc.cast(y, pa.float64())
    elif pa.types.is_large_string(y.type) or pa.types.is_string_view(y.type):
        y = pc.cast(y, pa.string())
    distinct = pc.unique(y)
    labels = pc.take(distinct, pc.array_sort_indices(distinct))
    codes = pc.index_in(y, value_set=labels).to_numpy(zero_copy_only=False)
    return np.asarray(codes, dtype=np.int64), tuple(labels.to_pylist())


def positive_index(labels: tuple[object, ...], codes: np.ndarray) -> int:
    """The label index F1 treats as positive in a binary problem: True or 1 when the
    labels are (False, True) or (0, 1), otherwise the less frequent label."""
    if labels in ((False, True), (0, 1)):
        return 1
    counts = np.bincount(codes, minlength=2)
    return 0 if counts[0] < counts[1] else 1


def resolve_objective(objective: str | None, problem: ProblemType) -> Objective:
    """The objective for the SQL OBJECTIVE value (any case, ``F1_Macro`` too) or the default."""
    if objective is None:
        return _OBJECTIVES[_DEFAULTS[problem]]
    key = objective.strip().strip("'\"").replace("_", "").lower()
    if key not in _OBJECTIVES:
        raise InvalidOption(
            f"unknown OBJECTIVE {objective!r}",
            hint="AUTO ON objectives are MSE, Accuracy, F1, F1Macro and AUC",
        )
    if key not in _ALLOWED[problem]:
        allowed = ", ".join(_SQL_NAMES[k] for k in _ALLOWED[problem])
        raise InvalidOption(
            f"OBJECTIVE {_SQL_NAMES[key]} does not apply to {problem.value}",
            hint=f"for {problem.value} use one of: {allowed}",
        )
    return _OBJECTIVES[key]
