"""The SQLSTATE error boundary.

Every package raises its own exception classes carrying a SQLSTATE. This
module alone turns them (and DuckDB's exceptions, by class) into the fields
of a PostgreSQL ErrorResponse: S, V, C, M and, when known, D, H, P. Bugs
become XX000 with the traceback logged and internals kept out of M.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import duckdb

log = logging.getLogger("quackml.errors")


class ServerError(Exception):
    """An error raised by the server package, with its SQLSTATE."""

    sqlstate = "XX000"

    def __init__(self, message: str, *, sqlstate: str | None = None, detail: str | None = None,
                 hint: str | None = None, position: int | None = None):
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position


class SyntaxError_(ServerError):
    sqlstate = "42601"


class FeatureNotSupported(ServerError):
    sqlstate = "0A000"


class InvalidParameterValue(ServerError):
    sqlstate = "22023"


class UndefinedColumn(ServerError):
    sqlstate = "42703"


class UndefinedTable(ServerError):
    sqlstate = "42P01"


class InFailedTransaction(ServerError):
    sqlstate = "25P02"


class QueryCanceled(ServerError):
    sqlstate = "57014"


class DataException(ServerError):
    sqlstate = "22000"


class DatatypeMismatch(ServerError):
    sqlstate = "42804"


class InsufficientPrivilege(ServerError):
    sqlstate = "42501"


class InvalidSchemaName(ServerError):
    sqlstate = "3F000"


class InvalidGrantOperation(ServerError):
    sqlstate = "0LP01"


class DuplicateObject(ServerError):
    sqlstate = "42710"


class UndefinedObject(ServerError):
    sqlstate = "42704"


@dataclass(frozen=True)
class ErrorFields:
    severity: str
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    position: int | None = None

    def as_protocol_fields(self) -> dict[str, str]:
        out = {"S": self.severity, "V": self.severity, "C": self.sqlstate, "M": self.message}
        if self.detail:
            out["D"] = self.detail
        if self.hint:
            out["H"] = self.hint
        if self.position is not None:
            out["P"] = str(self.position)
        return out


# DuckDB exception class -> SQLSTATE. Refined below for classes whose
# messages distinguish standard conditions (e.g. a missing vs. a duplicate
# catalog entry).
_DUCKDB_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (duckdb.ParserException, "42601"),
    (duckdb.SyntaxException, "42601"),
    (duckdb.CatalogException, "42P01"),
    (duckdb.BinderException, "42703"),
    (duckdb.ConstraintException, "23000"),
    (duckdb.ConversionException, "22P02"),
    (duckdb.OutOfRangeException, "22003"),
    (duckdb.InterruptException, "57014"),
    (duckdb.TransactionException, "25000"),
    (duckdb.NotImplementedException, "0A000"),
    (duckdb.OutOfMemoryException, "53200"),
    (duckdb.PermissionException, "42501"),
    (duckdb.IOException, "58030"),
    (duckdb.HTTPException, "58030"),
    (duckdb.SerializationException, "22000"),
    (duckdb.TypeMismatchException, "42804"),
    (duckdb.InvalidTypeException, "42804"),
    (duckdb.SequenceException, "22000"),
    (duckdb.DependencyException, "2BP01"),
    (duckdb.InvalidInputException, "22023"),
    (duckdb.FatalException, "XX000"),
    (duckdb.InternalException, "XX000"),
)

_UDF_ERROR = re.compile(
    r"Python exception occurred while executing the UDF: (?P<cls>[A-Za-z_][A-Za-z0-9_]*): "
    r"(?P<msg>.*)", re.S)
_DUCKDB_PREFIX = re.compile(r"^[A-Za-z ]+ Error: ")
_LINE_MARK = re.compile(r"\n\nLINE \d+: .*", re.S)

# Exceptions raised inside prediction functions travel through DuckDB as
# text; inference registers their class names here with their SQLSTATEs.
UDF_ERROR_CLASSES: dict[str, str] = {}


def _duckdb_sqlstate(exc: duckdb.Error, text: str) -> str:
    if isinstance(exc, duckdb.CatalogException):
        if "already exists" in text:
            return "42P07" if "Table" in text or "View" in text else "42710"
        if "Function with name" in text or "Scalar Function" in text:
            return "42883"
        if "Schema with name" in text:
            return "3F000"
        return "42P01"
    if isinstance(exc, duckdb.BinderException):
        if "No function matches" in text or "Function with name" in text:
            return "42883"
        if "GROUP BY" in text:
            return "42803"
        return "42703"
    if isinstance(exc, duckdb.ConstraintException):
        if "NOT NULL" in text:
            return "23502"
        if "foreign key" in text.lower():
            return "23503"
        if "CHECK" in text:
            return "23514"
        return "23505"
    if isinstance(exc, duckdb.TransactionException):
        if "aborted" in text:
            return "25P02"
        if "Conflict" in text or "conflict" in text:
            return "40001"
        return "25001" if "within a transaction" in text else "25000"
    if isinstance(exc, duckdb.InvalidInputException) and "Division by zero" in text:
        return "22012"
    if isinstance(exc, duckdb.InvalidInputException) and "configuration has been locked" in text:
        return "55P02"   # PostgreSQL's cant_change_runtime_param
    for cls, code in _DUCKDB_CLASSES:
        if isinstance(exc, cls):
            return code
    return "XX000"


# Server paths (data directory, database file, DuckDB's temporary directory) and the
# words shown instead: no client sees where the server keeps its state.
_HIDDEN: list[tuple[str, str]] = []


def hide_paths(paths: dict[str, str]) -> None:
    """Register server paths to replace in every error sent to a client (longest first)."""
    for path, label in paths.items():
        if path and (path, label) not in _HIDDEN:
            _HIDDEN.append((path, label))
    _HIDDEN.sort(key=lambda p: len(p[0]), reverse=True)


def hide(text: str) -> str:
    """``text`` with server paths replaced by names (for messages shown to clients)."""
    return _hidden(text) or ""


def _hidden(text: str | None) -> str | None:
    if text is None:
        return None
    for path, label in _HIDDEN:
        text = text.replace(path, label)
    return text


def translate(exc: BaseException) -> ErrorFields:
    """Turn any exception into ErrorResponse fields (server paths replaced by names)."""
    fields = _translate(exc)
    return ErrorFields(fields.severity, fields.sqlstate, _hidden(fields.message) or "",
                       _hidden(fields.detail), _hidden(fields.hint), fields.position)


def _translate(exc: BaseException) -> ErrorFields:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5 and not isinstance(exc, duckdb.Error):
        message = getattr(exc, "message", None) or str(exc)
        return ErrorFields("ERROR", sqlstate, message, getattr(exc, "detail", None),
                           getattr(exc, "hint", None), getattr(exc, "position", None))
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        udf = _UDF_ERROR.search(text)
        if udf and udf.group("cls") in UDF_ERROR_CLASSES:
            return ErrorFields("ERROR", UDF_ERROR_CLASSES[udf.group("cls")],
                               udf.group("msg").strip())
        code = _duckdb_sqlstate(exc, text)
        message = _LINE_MARK.sub("", _DUCKDB_PREFIX.sub("", text, count=1)).strip()
        if code == "XX000":
            log.error("DuckDB internal error: %s", text)
        return ErrorFields("ERROR", code, message)
    if isinstance(exc, MemoryError):
        return ErrorFields("ERROR", "53200", "out of memory")
    log.exception("internal error", exc_info=exc)
    return ErrorFields("ERROR", "XX000", f"internal error: {type(exc).__name__}",
                       hint="This is a bug in QuackML; the server log has the details.")
