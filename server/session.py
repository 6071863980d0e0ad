"""A session: one client's DuckDB cursor, transaction state and statements.

Knows nothing of sockets. ``Session.run`` executes one statement (an ML
statement through its handler, anything else in DuckDB exactly as written)
and returns a ``Result``. It tracks the PostgreSQL transaction status:
'I' idle, 'T' in a block, 'E' in a failed block where everything but
COMMIT/ROLLBACK is refused with 25P02.
"""

from __future__ import annotations

import contextlib
import enum
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from server import grammar
from server.engine import Engine
from server.errors import InFailedTransaction
from server.ml import MLHandlers
from server.results import Command, Result, Stream
from server.sqltext import Statement

BATCH_ROWS = 16_384

# Statement types whose result is a row set (sent as RowDescription + DataRows).
_ROWSET_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN,
                 duckdb.StatementType.PRAGMA, duckdb.StatementType.CALL,
                 duckdb.StatementType.EXECUTE, duckdb.StatementType.RELATION}
_SKIP_WORDS = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "IF", "NOT", "EXISTS",
               "PERSISTENT", "MATERIALIZED"}


class TxKind(enum.Enum):
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ROLLBACK = "ROLLBACK"


def transaction_kind(stmt: Statement) -> TxKind | None:
    words = stmt.words(2)
    if not words:
        return None
    first = words[0]
    if first in ("BEGIN", "START"):
        return TxKind.BEGIN
    if first in ("COMMIT", "END"):
        return TxKind.COMMIT
    if first in ("ROLLBACK", "ABORT") and (len(words) < 2 or words[1] != "TO"):
        return TxKind.ROLLBACK
    return None


def statement_type(text: str) -> duckdb.StatementType | None:
    """DuckDB's own classification of a statement (None if it cannot parse it:
    executing it will then report DuckDB's syntax error)."""
    try:
        parsed = duckdb.extract_statements(text)
    except duckdb.Error:
        return None
    return parsed[0].type if len(parsed) == 1 else None


def _object_word(stmt: Statement, start: int) -> str:
    for word in stmt.words(8)[start:]:
        if word not in _SKIP_WORDS:
            return word
    return ""


def command_tag(stmt: Statement, stype: duckdb.StatementType | None,
                count: int | None) -> str:
    """The PostgreSQL CommandComplete tag for a non-row-set statement."""
    n = count or 0
    match stype:
        case duckdb.StatementType.INSERT:
            return f"INSERT 0 {n}"
        case duckdb.StatementType.UPDATE:
            return f"UPDATE {n}"
        case duckdb.StatementType.DELETE:
            return f"DELETE {n}"
        case duckdb.StatementType.MERGE_INTO:
            return f"MERGE {n}"
        case duckdb.StatementType.COPY:
            return f"COPY {n}"
        case duckdb.StatementType.CREATE:
            obj = _object_word(stmt, 1)
            if obj == "TABLE" and count is not None:
                return f"SELECT {n}"  # CREATE TABLE AS, as PostgreSQL tags it
            return f"CREATE {obj}".strip()
        case duckdb.StatementType.DROP | duckdb.StatementType.ALTER:
            return f"{stmt.words(1)[0]} {_object_word(stmt, 1)}".strip()
        case duckdb.StatementType.SET | duckdb.StatementType.VARIABLE_SET:
            return "RESET" if stmt.words(1) == ("RESET",) else "SET"
    words = stmt.words(1)
    return words[0] if words else ""


class Session:
    def __init__(self, engine: Engine, user: str, database: str):
        self.engine = engine
        self.user = user
        self.database = database
        self.cursor = engine.cursor()
        self.status = "I"
        self.ml = MLHandlers(engine)
        self._types: OrderedDict[str, duckdb.StatementType | None] = OrderedDict()
        self._open: pa.RecordBatchReader | None = None

    def release(self) -> None:
        """Close the open result stream, if any: a DuckDB connection runs one
        statement at a time, so a new statement ends an unfinished stream."""
        reader, self._open = self._open, None
        if reader is not None:
            reader.close()

    def close(self) -> None:
        self.release()
        with contextlib.suppress(duckdb.Error):
            self.cursor.close()

    def interrupt(self) -> None:
        self.cursor.interrupt()

    def failed(self) -> None:
        """An error happened while running or streaming a statement."""
        if self.status == "T":
            self.status = "E"

    def statement_type(self, text: str) -> duckdb.StatementType | None:
        if text in self._types:
            self._types.move_to_end(text)
            return self._types[text]
        stype = statement_type(text)
        self._types[text] = stype
        if len(self._types) > 256:
            self._types.popitem(last=False)
        return stype

    def run(self, stmt: Statement, params: Sequence[object] = ()) -> Result:
        tx = transaction_kind(stmt)
        if self.status == "E" and tx not in (TxKind.COMMIT, TxKind.ROLLBACK):
            raise InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        self.release()
        try:
            if tx is not None:
                return self._transaction(tx)
            if grammar.is_ml_statement(stmt):
                return self.ml.handle(grammar.parse(stmt), self)
            return self._duckdb(stmt, params)
        except BaseException:
            self.failed()
            raise

    def _transaction(self, tx: TxKind) -> Command:
        if tx is TxKind.BEGIN:
            if self.status != "I":
                return Command("BEGIN", ("there is already a transaction in progress",))
            self.cursor.execute("BEGIN TRANSACTION")
            self.status = "T"
            return Command("BEGIN")
        if self.status == "I":
            return Command(tx.value, ("there is no transaction in progress",))
        failed = self.status == "E"
        self.status = "I"
        self.cursor.execute("ROLLBACK" if failed or tx is TxKind.ROLLBACK else "COMMIT")
        return Command("ROLLBACK" if failed else tx.value)

    def _duckdb(self, stmt: Statement, params: Sequence[object]) -> Result:
        stype = self.statement_type(stmt.text)
        bound = list(params) if params else None
        if stype is duckdb.StatementType.SELECT:
            relation = self.cursor.sql(stmt.text, params=bound)
            self._open = relation.to_arrow_reader(BATCH_ROWS)
            return Stream(self._open)
        self.cursor.execute(stmt.text, bound)
        description = self.cursor.description
        if stype in _ROWSET_TYPES and description and \
                [d[0] for d in description] != ["Success"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table = self.cursor.to_arrow_table()
            assert table is not None
            return Stream(table.to_reader(BATCH_ROWS))
        count = None
        if description and description[0][0] == "Count":
            rows = self.cursor.fetchall()
            count = int(rows[0][0]) if rows and rows[0][0] is not None else None
        return Command(command_tag(stmt, stype, count))
