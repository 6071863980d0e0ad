"""What a model statement's handler gets from the session that runs it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from server.security.privileges import Privileges
from server.sql.ml_grammar import QualifiedName
from server.sql.text import Statement

DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class Caller:
    """The user a model statement runs as, and what it may use of their session: their
    DuckDB cursor, their privilege checker, the flag a CancelRequest sets, and the
    translation of PostgreSQL names (``public``, the database name) into DuckDB's."""

    user: str
    cursor: duckdb.DuckDBPyConnection
    privileges: Privileges
    cancel_requested: threading.Event
    duckdb_text: Callable[[Statement], str]


def schema_of(name: QualifiedName) -> str:
    return name.schema or DEFAULT_SCHEMA


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
