"""Training errors. Each class carries the SQLSTATE the server reports.

The worker process reports these as data (class name, SQLSTATE, message) in
its result file; the server turns them into FAILED model states and
ErrorResponse fields.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class: training could not produce a model."""

    sqlstate = "XX000"  # internal_error: only for bugs

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint


class InvalidOption(TrainingError):
    """An option value (OBJECTIVE, PROBLEM_TYPE for this target, MAX_RUNTIME) is not usable."""

    sqlstate = "22023"  # invalid_parameter_value


class BudgetTooSmall(InvalidOption):
    """MAX_RUNTIME ran out before a single model could be fitted."""


class UnsupportedFeature(TrainingError):
    """A feature column has a type QuackML cannot train on."""

    sqlstate = "0A000"  # feature_not_supported


class TargetTypeMismatch(TrainingError):
    """The target column's type cannot be used for the problem type."""

    sqlstate = "42804"  # datatype_mismatch


class InsufficientData(TrainingError):
    """Too few rows, or too few (or too many) distinct target values, to train."""

    sqlstate = "22000"  # data_exception


class SnapshotMissing(TrainingError):
    """The training snapshot is missing or unreadable, or lacks a column."""

    sqlstate = "58030"  # io_error


class UnknownColumn(TrainingError):
    """An option (PREPROCESSORS) names a column the training data does not have."""

    sqlstate = "42703"  # undefined_column


class TrainingQueueFull(TrainingError):
    """CREATE MODEL found the bounded training queue full (training_queue_full = error)."""

    sqlstate = "53000"  # insufficient_resources


class TrainingWaitCancelled(TrainingError):
    """CREATE MODEL was cancelled while it waited for a training queue slot."""

    sqlstate = "57014"  # query_canceled
