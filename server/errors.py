"""The SQLSTATE error boundary.

Every package raises its own exception classes carrying a SQLSTATE. This
module alone turns them (and DuckDB's exceptions, by class and message as
``server.postgres.sqlstate.RULES`` lists them) into the fields of a
PostgreSQL ErrorResponse: S, V, C, M and, when known, D, H, P, W. Bugs
become XX000 with the traceback logged and internals kept out of M.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import duckdb

from server.postgres.sqlstate import message_of, sqlstate_of

log = logging.getLogger("quackml.errors")


class ServerError(Exception):
    """An error raised by the server package, with its SQLSTATE."""

    sqlstate = "XX000"

    def __init__(self, message: str, *, sqlstate: str | None = None, detail: str | None = None,
                 hint: str | None = None, position: int | None = None,
                 context: str | None = None):
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.context = context   # PostgreSQL's CONTEXT (W): where, e.g. "COPY t, line 3"


class SyntaxError_(ServerError):
    sqlstate = "42601"


class FeatureNotSupported(ServerError):
    sqlstate = "0A000"


class InvalidFunctionDefinition(ServerError):
    sqlstate = "42P13"


class ObjectInUse(ServerError):
    sqlstate = "55006"


class NotInPrerequisiteState(ServerError):
    sqlstate = "55000"


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
    context: str | None = None

    def as_protocol_fields(self) -> dict[str, str]:
        out = {"S": self.severity, "V": self.severity, "C": self.sqlstate, "M": self.message}
        if self.detail:
            out["D"] = self.detail
        if self.hint:
            out["H"] = self.hint
        if self.position is not None:
            out["P"] = str(self.position)
        if self.context:
            out["W"] = self.context
        return out


_UDF_ERROR = re.compile(
    r"Python exception occurred while executing the UDF: (?P<cls>[A-Za-z_][A-Za-z0-9_]*): "
    r"(?P<msg>.*)", re.S)
_LINE_MARK = re.compile(r"\n\nLINE \d+: .*", re.S)

# Exceptions raised inside prediction functions travel through DuckDB as
# text; inference registers their class names here with their SQLSTATEs.
UDF_ERROR_CLASSES: dict[str, str] = {}


def _message_detail_hint(text: str) -> tuple[str, str | None, str | None]:
    """DuckDB's message as PostgreSQL shapes one: its first line is the message; the
    suggestions ("Did you mean ...") are the hint, any other lines (candidate
    functions, settings) the detail; DuckDB's LINE/caret excerpt is dropped."""
    message, _, rest = _LINE_MARK.sub("", text).strip().partition("\n")
    detail: list[str] = []
    hint: list[str] = []
    for line in rest.strip().splitlines():
        line = line.strip()
        if line:
            (hint if line.startswith("Did you mean") else detail).append(line)
    return message.strip(), "\n".join(detail) or None, "\n".join(hint) or None


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
                       _hidden(fields.detail), _hidden(fields.hint), fields.position,
                       _hidden(fields.context))


def _translate(exc: BaseException) -> ErrorFields:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5 and not isinstance(exc, duckdb.Error):
        message = getattr(exc, "message", None) or str(exc)
        return ErrorFields("ERROR", sqlstate, message, getattr(exc, "detail", None),
                           getattr(exc, "hint", None), getattr(exc, "position", None),
                           getattr(exc, "context", None))
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        udf = _UDF_ERROR.search(text)
        if udf and udf.group("cls") in UDF_ERROR_CLASSES:
            return ErrorFields("ERROR", UDF_ERROR_CLASSES[udf.group("cls")],
                               udf.group("msg").strip())
        code = sqlstate_of(exc)
        if code == "XX000":
            log.error("DuckDB internal error: %s", text)
        return ErrorFields("ERROR", code, *_message_detail_hint(message_of(exc)))
    if isinstance(exc, MemoryError):
        return ErrorFields("ERROR", "53200", "out of memory")
    log.exception("internal error", exc_info=exc)
    return ErrorFields("ERROR", "XX000", f"internal error: {type(exc).__name__}",
                       hint="This is a bug in QuackML; the server log has the details.")
