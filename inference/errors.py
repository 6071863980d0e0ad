"""Errors raised while scoring. Each carries a SQLSTATE; they travel through
DuckDB as text and the server maps the class name back (see server.errors)."""

from __future__ import annotations

from catalog.errors import CatalogError


class InferenceError(CatalogError):
    sqlstate = "XX000"


class WrongProblemType(InferenceError):
    sqlstate = "0A000"  # e.g. probabilities of a regression model


class InvalidTopK(InferenceError):
    sqlstate = "22023"  # invalid_parameter_value: f_explain_top's k


class CompilationFailed(InferenceError):
    """A model could not be compiled (or its compiled form did not reproduce the
    library's predictions); the library evaluator serves it instead. Never reaches
    a client."""


class ScoringWorkerDied(InferenceError):
    """A scoring pool worker process died while it scored a vector (see
    inference.procpool); it has been replaced, the query may be run again."""

    sqlstate = "58000"  # system_error
