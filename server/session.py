"""A session: one client's DuckDB cursor, transaction state and statements.

Knows nothing of sockets. ``Session.run`` executes one statement (an ML
statement through its handler, anything else in DuckDB exactly as written)
and returns a ``Result``. It tracks the PostgreSQL transaction status:
'I' idle, 'T' in a block, 'E' in a failed block where everything but
COMMIT/ROLLBACK is refused with 25P02.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from duckdb import _seam  # DuckDB's binder: statement signatures without running them

from catalog.files import all_function_names
from server.engine import Engine
from server.errors import (
    DataException,
    FeatureNotSupported,
    InFailedTransaction,
    InsufficientPrivilege,
    InvalidParameterValue,
    ServerError,
    SyntaxError_,
    UndefinedObject,
)
from server.models.caller import Caller
from server.models.lifecycle import model_or_error
from server.models.statements import ModelStatements
from server.postgres import (
    activity,
    colnames,
    cursors,
    ddl,
    exprtypes,
    literals,
    lock,
    names,
    resulttypes,
    sequences,
)
from server.postgres import catalog as pgcatalog
from server.postgres import copy as copy_formats
from server.postgres.names import Names
from server.postgres.sqlstate import message_of, sqlstate_of
from server.protocol.types import Oid, TypedParam, pg_type_for_duckdb
from server.results import (
    Column,
    Command,
    CopyIn,
    CopyOut,
    Deallocate,
    Result,
    Rows,
    Stream,
)
from server.security.firewall import Effect, prepared_name
from server.security.privileges import Privileges
from server.security.roles import DuckDBObjects, Roles
from server.sql import cursors as cursor_sql
from server.sql import multi, param_context, params
from server.sql.classify import (
    CHECKED_WHERE_THEY_RUN,
    PLAIN,
    Classified,
    Kind,
    TxKind,
    classify,
    savepoint_name,
)
from server.sql.copy_spec import CopyFormat, CopySpec, needs_conversion
from server.sql.lock import Lock
from server.sql.sequence_read import SequenceRead
from server.sql.text import Statement, split

BATCH_ROWS = 16_384

# Statement types whose result is a row set (sent as RowDescription + DataRows).
_ROWSET_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN,
                 duckdb.StatementType.PRAGMA, duckdb.StatementType.CALL,
                 duckdb.StatementType.EXECUTE, duckdb.StatementType.RELATION}
# DML whose RETURNING rows are sent, with PostgreSQL's tag prefix ("INSERT 0 n")
_RETURNING_TAGS = {duckdb.StatementType.INSERT: "INSERT 0",
                   duckdb.StatementType.UPDATE: "UPDATE",
                   duckdb.StatementType.DELETE: "DELETE",
                   duckdb.StatementType.MERGE_INTO: "MERGE"}
# Statement types that never change what a name binds to (others may: DDL, ATTACH,
# SET, PREPARE ... and privilege decisions cached on them are then stale).
_DATA_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.INSERT,
               duckdb.StatementType.UPDATE, duckdb.StatementType.DELETE,
               duckdb.StatementType.COPY, duckdb.StatementType.EXPLAIN,
               duckdb.StatementType.MERGE_INTO}
_SKIP_WORDS = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "IF", "NOT", "EXISTS",
               "PERSISTENT", "MATERIALIZED"}


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


@dataclass(frozen=True, slots=True)
class _Plain:
    """A statement that goes to DuckDB as is: the text DuckDB runs, its type, and
    PostgreSQL's names for its result columns (decided at its first result)."""
    stmt: Statement
    stype: duckdb.StatementType | None
    names: colnames.ResultNames
    context: Names | None = None   # what it was rewritten against (Session.names)
    client_text: str | None = None   # the client's text, when DuckDB runs another

    def pg_types(self, duckdb_types: Sequence[object]) -> tuple[Oid | None, ...] | None:
        """PostgreSQL's types of the result columns DuckDB's types do not tell
        (``server.postgres.exprtypes``)."""
        return exprtypes.pg_types(self.client_text or self.stmt.text,
                                  self.stmt.text, duckdb_types)


@dataclass(frozen=True)
class Description:
    param_types: tuple[str, ...]                     # DuckDB type names (see Session.describe)
    columns: tuple[tuple[str, str], ...] | None      # (name, DuckDB type); None: no rows


#: a value of each PostgreSQL type category DuckDB casts from text (see Session.describe)
_SAMPLES: dict[int, str] = {
    Oid.BOOL: "false", Oid.INT2: "0", Oid.INT4: "0", Oid.INT8: "0", Oid.OID: "0",
    Oid.FLOAT4: "0", Oid.FLOAT8: "0", Oid.NUMERIC: "0", Oid.DATE: "2000-01-01",
    Oid.TIMESTAMP: "2000-01-01 00:00:00", Oid.TIMESTAMPTZ: "2000-01-01 00:00:00+00",
    Oid.TIME: "00:00:00", Oid.TIMETZ: "00:00:00+00", Oid.INTERVAL: "0 seconds",
    Oid.UUID: "00000000-0000-0000-0000-000000000000", Oid.JSON: "null",
    **{oid: "[]" for oid in (Oid.BOOL_ARRAY, Oid.INT2_ARRAY, Oid.INT4_ARRAY, Oid.INT8_ARRAY,
                             Oid.TEXT_ARRAY, Oid.FLOAT4_ARRAY, Oid.FLOAT8_ARRAY,
                             Oid.NUMERIC_ARRAY, Oid.DATE_ARRAY, Oid.TIMESTAMP_ARRAY,
                             Oid.TIMESTAMPTZ_ARRAY, Oid.UUID_ARRAY, Oid.JSON_ARRAY)},
}


#: the type name a described column of a statement-derived type is given (read by
#: server.protocol.types.pg_type_for_duckdb)
_DESCRIBED_AS = {Oid.JSONB: "JSONB", Oid.INT4: "INTEGER", Oid.REGTYPE: "REGTYPE",
                 Oid.FLOAT8: "DOUBLE", Oid.NAME: "NAME", Oid.VARCHAR: "CHARACTER VARYING",
                 Oid.BPCHAR: "CHARACTER"}


@functools.lru_cache(maxsize=256)
def _duckdb_type(name: str) -> duckdb.sqltypes.DuckDBPyType:
    return duckdb.sqltype(name)


def _bindable(params: Sequence[object]) -> list[object]:
    """The values DuckDB binds: a parameter the client left untyped is bound as the
    type its context gave it (decimals and text by their value, so that a numeric keeps
    its own precision and a string stays a literal DuckDB may cast)."""
    values = list(params)
    for i, p in enumerate(values):
        if isinstance(p, TypedParam):
            t = p.duckdb_type
            values[i] = p.value if t == "VARCHAR" or t.startswith("DECIMAL") \
                else duckdb.Value(p.value, _duckdb_type(t))
    return values


def _pg_named(reader: pa.RecordBatchReader, names: colnames.ResultNames
              ) -> pa.RecordBatchReader:
    """The reader with PostgreSQL's column names (``server.postgres.colnames``); its
    batches are renamed as they are read, never copied."""
    schema = reader.schema
    renamed = names.rename(schema.names)
    if renamed is None:
        return reader
    schema = pa.schema([f.with_name(n) for f, n in zip(schema, renamed, strict=True)],
                       metadata=schema.metadata)
    return pa.RecordBatchReader.from_batches(
        schema, (batch.rename_columns(renamed) for batch in reader))


# a file the server staged COPY data in, as DuckDB's messages name it
_STAGED_FILE = re.compile(r'"[^"]*quackml-copy-[^"]*"')


class Session:
    def __init__(self, engine: Engine, user: str, database: str,
                 startup: dict[str, str] | None = None, pid: int = 0,
                 client_addr: str | None = None):
        self.engine = engine
        self.user = user
        self.database = database
        self.pid = pid
        self.cursor = engine.cursor()
        self.params: dict[str, str] = dict(pgcatalog.CLIENT_PARAMS)
        self._publish_params()
        # current_database() and pg_backend_pid() (variables only the server may set)
        self.cursor.execute(f"SET VARIABLE {names.DATABASE_VARIABLE} = ?", [database])
        self.cursor.execute(f"SET VARIABLE {names.PID_VARIABLE} = ?", [pid])
        self._names: tuple[int, names.Names] | None = None
        # current_user and session_user are the start-up (authenticated) user, as a
        # constant: no SQL can change them (the firewall refuses macros of these names)
        literal = "'" + user.replace("'", "''") + "'"
        for name in ("current_user", "session_user"):
            self.cursor.execute(f"CREATE TEMP MACRO {name}() AS {literal}")
        for name, value in (startup or {}).items():
            if name.lower() in pgcatalog.CLIENT_PARAMS and name.lower() not in pgcatalog.FIXED:
                with contextlib.suppress(InvalidParameterValue):
                    self._set_param(name.lower(), value)
        self.status = "I"
        self.models = ModelStatements(engine)
        self.privileges = Privileges(engine, user)
        self.roles = Roles(engine.users, engine.acl, self.privileges, engine.settings.superuser,
                           lambda name: model_or_error(engine, name), DuckDBObjects(self.cursor))
        # SQL PREPARE name AS stmt: the text of stmt, checked again at every EXECUTE
        self._sql_prepared: dict[str, str] = {}
        self._types: OrderedDict[str, duckdb.StatementType | None] = OrderedDict()
        # statement text -> what it is (server.sql.classify), most recent last
        self._kinds: OrderedDict[str, Classified] = OrderedDict()
        # client text -> plain DuckDB statement (see ``run``), most recent last
        self._plain: OrderedDict[str, _Plain] = OrderedDict()
        # (DuckDB text, client parameter types) -> (DDL generation, its Description)
        self._described: OrderedDict[tuple[str, tuple[str | None, ...]],
                                     tuple[object, Description]] = OrderedDict()
        self._open: pa.RecordBatchReader | None = None
        # savepoints of the open block: (name, statements run in the block when set)
        self._savepoints: list[tuple[str, int]] = []
        self.cursors: dict[str, cursors.SqlCursor | cursors.ScrollCursor] = {}
        self._block_statements = 0
        # what PostgreSQL DDL translation asks of the database (server.postgres.ddl)
        self._ddl = ddl.DuckDBCatalog(self.cursor, engine.decision_generation)
        # set by interrupt(): wakes statements that wait outside DuckDB (a CREATE
        # MODEL waiting for a training queue slot)
        self.cancel_requested = threading.Event()
        self.backend = activity.Backend(
            pid, database, user, self.params.get("application_name", ""), client_addr, None,
            datetime.now(UTC))
        engine.activity.enter(self.backend)

    def release(self) -> None:
        """Close the open result stream, if any: a DuckDB connection runs one
        statement at a time, so a new statement ends an unfinished stream."""
        reader, self._open = self._open, None
        if reader is not None:
            reader.close()

    def close(self) -> None:
        self.engine.activity.leave(self.pid)
        self.release()
        self._close_cursors(everything=True)
        with contextlib.suppress(duckdb.Error):
            self.cursor.close()

    def interrupt(self) -> None:
        self.cancel_requested.set()
        with contextlib.suppress(duckdb.ConnectionException):   # closed meanwhile
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

    def classify(self, stmt: Statement) -> Classified:
        """The statement's kind (``server.sql.classify``), decided once per text."""
        found = self._kinds.get(stmt.text)
        if found is not None:
            self._kinds.move_to_end(stmt.text)
            return found
        found = classify(stmt, pgcatalog.CLIENT_PARAMS)
        self._kinds[stmt.text] = found   # what a text is does not change: it is read alone
        if len(self._kinds) > 256:
            self._kinds.popitem(last=False)
        return found

    def run(self, stmt: Statement, params_: Sequence[object] = ()) -> Result:
        self.backend.running(stmt.text, self.status != "I")
        try:
            return self._run(stmt, params_)
        finally:
            self.backend.finished(self.status)

    def _run(self, stmt: Statement, params_: Sequence[object] = ()) -> Result:
        # plain DuckDB SQL seen before (a prepared statement run again): its routing,
        # rewrite and DuckDB statement type are known from its text (while the names
        # it was read against are the same)
        plain = self._plain.get(stmt.text)
        if plain is not None and plain.context is not self.names():
            plain = None
        what = PLAIN if plain is not None else self.classify(stmt)
        tx = what.detail if what.kind is Kind.TRANSACTION else None
        assert tx is None or isinstance(tx, TxKind)
        if self.status == "E" and tx not in (TxKind.COMMIT, TxKind.ROLLBACK,
                                             TxKind.ROLLBACK_TO):
            raise InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        self.release()
        try:
            if plain is not None:
                if self.status == "T":
                    self._block_statements += 1
                effects = () if self.privileges.superuser else self.check_text(plain.stmt.text)
                result = self._run_plain(plain, params_)
                self.privileges.record(effects)
                return result
            if tx in (TxKind.SAVEPOINT, TxKind.RELEASE, TxKind.ROLLBACK_TO):
                return self._savepoint(tx, savepoint_name(stmt))
            if tx is not None:
                return self._transaction(tx)
            if self.status == "T":
                self._block_statements += 1
            match what.kind, what.detail:
                case Kind.DEALLOCATE, name:
                    assert name is None or isinstance(name, str)
                    return self._deallocate(Deallocate(name))
                case Kind.ACCESS, access:
                    return self.roles.handle(access)  # type: ignore[arg-type]
                case Kind.STORAGE, (str() as text, str() as notice):
                    # CREATE TABLE ... WITH (fillfactor = 70): run without, with a notice
                    result = self._run(split(text)[0], params_)
                    assert isinstance(result, Command)
                    return replace(result, notices=(notice, *result.notices))
            if what.kind is not Kind.ML:
                translation = ddl.translate(stmt, self._ddl)
                if translation is not None:   # serial, identity, pg_dump's DDL, PREPARE (types)
                    return self._translated(translation, params_)
            match what.kind, what.detail:
                case Kind.CURSOR, action:
                    return self._cursor(action, params_)  # type: ignore[arg-type]
                case Kind.ML, ml:
                    return self.models.handle(ml, self.caller())  # type: ignore[arg-type]
                case Kind.PARAM, action:
                    return self._param(action)  # type: ignore[arg-type]
                case Kind.COPY, spec:
                    assert isinstance(spec, CopySpec)
                    return self._copy(spec)
                case Kind.SEVERAL, several:
                    assert isinstance(several, multi.Split)
                    return self._several(several)
                case Kind.LOCK, locking:
                    assert isinstance(locking, Lock)
                    return self._lock(locking)
                case Kind.SEQUENCE_READ, read:
                    assert isinstance(read, SequenceRead)
                    state = self._sequence(read)
                    if state is not None:
                        return state
                    what = PLAIN   # no sequence of that name: DuckDB's, as written
            self._check_setting_exists(stmt)
            effects = self.check_access(stmt, what)
            result = self._duckdb(stmt, params_)
            self.privileges.record(effects)
            return result
        except BaseException:
            self.failed()
            raise

    def _deallocate(self, request: Deallocate) -> Result:
        """DEALLOCATE of a SQL PREPARE (DuckDB's), else of the connection's prepared
        statements (one namespace, as in PostgreSQL)."""
        names = list(self._sql_prepared) if request.name is None else \
            [n for n in self._sql_prepared if n.lower() == request.name.lower()]
        for name in names:
            self.cursor.execute(f'DEALLOCATE "{name}"')
            del self._sql_prepared[name]
        if names and request.name is not None:
            return Command("DEALLOCATE")
        return request

    def check_access(self, stmt: Statement, what: Classified) -> tuple[Effect, ...]:
        """Refuse (42501) SQL a non-superuser may not run, decided on the text DuckDB will
        run (after the catalog rewrite); free for superusers. The kinds QuackML handles
        itself (client SET/SHOW, cursors, COPY with the client, ML and access
        statements ...) are checked where they run.
        Returns the ownership changes to record once the statement succeeded."""
        if self.privileges.superuser or what.kind in CHECKED_WHERE_THEY_RUN:
            return ()
        return self.check_text(self.duckdb_text(stmt))

    def _check_setting_exists(self, stmt: Statement) -> None:
        """PostgreSQL's 42704 for SET / RESET / SHOW of a setting that does not exist,
        for every user: DuckDB would say 55P02 under a locked configuration, and reads
        ``SHOW x`` as ``DESCRIBE x`` (kept for tables and views)."""
        named = params.setting_name(stmt, pgcatalog.CLIENT_PARAMS)
        if named is None:
            return
        verb, name = named
        known = self.cursor.execute(
            "SELECT count(*) FROM duckdb_settings() WHERE name = $1 OR list_contains(aliases, $1)",
            [name]).fetchall()
        if known[0][0]:
            return
        if verb == "SHOW" and self.cursor.execute(
                "SELECT count(*) FROM (SELECT table_name FROM duckdb_tables() UNION ALL "
                "SELECT view_name FROM duckdb_views()) WHERE table_name = $1", [name]
        ).fetchall()[0][0]:
            return
        raise UndefinedObject(f'unrecognized configuration parameter "{name}"')

    def check_text(self, text: str) -> tuple[Effect, ...]:
        return self.privileges.check_sql(self.cursor, text, self._sql_prepared)

    def _lock(self, locking: Lock) -> Command:
        """LOCK TABLE: checked (``server.postgres.lock``), nothing to lock in DuckDB."""
        if self.status == "I":
            raise ServerError("LOCK TABLE can only be used in transaction blocks",
                              sqlstate="25P01")
        for probe in lock.probes(locking):
            text = self.duckdb_text(split(probe)[0])   # names as in any statement
            if not self.privileges.superuser:
                self.check_text(text)
            self.cursor.execute(text).fetchall()
        return Command("LOCK TABLE")

    def _sequence(self, read: SequenceRead) -> Rows | None:
        """A sequence read as a relation (``server.postgres.sequences``); None when the
        name is no sequence."""
        sql = sequences.state_sql(read)
        rows = self.cursor.execute(sql).fetchall()
        if not rows:
            return None
        if not self.privileges.superuser:
            self.check_text(sql)
        text = [tuple(None if v is None else ("t" if v else "f") if isinstance(v, bool)
                      else str(v) for v in row) for row in rows]
        return Rows([Column(c, sequences.column_oid(c)) for c in read.columns], text,
                    f"SELECT {len(rows)}")

    def _several(self, several: multi.Split) -> Result:
        """DROP/TRUNCATE of several objects: one DuckDB statement each."""
        return self._translated(ddl.Translation(several.statements, several.tag), ())

    def _translated(self, translation: ddl.Translation, params_: Sequence[object]) -> Result:
        """Run the DuckDB statements of a translated statement: one statement as any
        other; several checked each, all in one transaction (the client's, or one of its
        own). An optional statement the user may not run is skipped with a notice."""
        if translation.tag is None:
            (text,) = translation.statements
            return self._run(split(text)[0], params_)
        notices = list(translation.notices)
        own_block = self.status == "I" and len(translation.statements) > 1
        if own_block:
            self.cursor.execute("BEGIN TRANSACTION")
        try:
            for k, text in enumerate(translation.statements):
                try:
                    effects = () if self.privileges.superuser else self.check_text(text)
                except InsufficientPrivilege:
                    if k not in translation.optional:
                        raise
                    notices.append(f"not run (permission denied): {text}")
                    continue
                self.cursor.execute(text)
                self.privileges.record(effects)
            if own_block:
                self.cursor.execute("COMMIT")
        except BaseException:
            if own_block:
                self.cursor.execute("ROLLBACK")
            raise
        finally:
            self.engine.catalog_changed()
        return Command(translation.tag, tuple(notices))

    # -- SQL cursors -------------------------------------------------------------
    def _cursor(self, action: cursor_sql.CursorStatement, bound: Sequence[object]) -> Result:
        match action:
            case cursor_sql.Declare(name=name, query=query, hold=hold, scroll=scroll):
                if name in self.cursors:
                    raise ServerError(f'cursor "{name}" already exists', sqlstate="42P03")
                self.check_text(self.duckdb_text(query))
                own = self.engine.cursor()
                try:
                    text = self.duckdb_text(query)
                    relation = own.sql(text, params=_bindable(bound) if bound else None)
                    reader = resulttypes.pg_typed(
                        relation.to_arrow_reader(BATCH_ROWS), relation.types,
                        exprtypes.pg_types(query.text, text, relation.types))
                    if scroll:   # read whole: the position moves both ways over it
                        self.cursors[name] = cursors.ScrollCursor(reader.read_all(), hold)
                        own.close()
                    else:
                        self.cursors[name] = cursors.SqlCursor(own, reader, hold)
                except BaseException:
                    own.close()
                    raise
                return Command("DECLARE CURSOR")
            case cursor_sql.Fetch(name=name, move=move) as fetch:
                cursor = self.cursors.get(name)
                if cursor is None:
                    raise cursors.missing(name)
                batches = cursor.fetch(fetch)
                if move:
                    return Command(f"MOVE {sum(b.num_rows for b in batches)}")
                return Stream(pa.RecordBatchReader.from_batches(cursor.schema, batches),
                              "FETCH")
            case cursor_sql.CloseCursor(name=name):
                if name is None:
                    self._close_cursors(everything=True)
                else:
                    closing = self.cursors.pop(name, None)
                    if closing is None:
                        raise cursors.missing(name)
                    closing.close()
                return Command("CLOSE CURSOR")
        raise AssertionError(action)

    def _close_cursors(self, everything: bool) -> None:
        """Close the cursors a transaction end closes (all but WITH HOLD), or all."""
        for name in [n for n, c in self.cursors.items() if everything or not c.hold]:
            with contextlib.suppress(duckdb.Error):
                self.cursors.pop(name).close()

    def _savepoint(self, tx: TxKind, name: str) -> Command:
        """Savepoints as far as DuckDB allows (it has none): SAVEPOINT and
        RELEASE are recorded; ROLLBACK TO succeeds only when nothing ran since
        the savepoint, else 0A000 (the block must be rolled back whole)."""
        if self.status == "I":
            raise ServerError(f"{tx.value} can only be used in transaction blocks",
                              sqlstate="25P01")
        if tx is TxKind.SAVEPOINT:
            self._savepoints.append((name, self._block_statements))
            return Command("SAVEPOINT")
        index = next((i for i in range(len(self._savepoints) - 1, -1, -1)
                      if self._savepoints[i][0].lower() == name.lower()), None)
        if index is None:
            raise ServerError(f'savepoint "{name}" does not exist', sqlstate="3B001")
        if tx is TxKind.RELEASE:
            del self._savepoints[index:]
            return Command("RELEASE")
        if self.status == "E" or self._block_statements != self._savepoints[index][1]:
            raise FeatureNotSupported(
                "ROLLBACK TO SAVEPOINT after statements ran since the savepoint is not "
                "supported (DuckDB has no savepoints); roll back the whole transaction")
        del self._savepoints[index + 1:]
        return Command("ROLLBACK")

    def _transaction(self, tx: TxKind) -> Command:
        if tx is TxKind.BEGIN:
            if self.status != "I":
                return Command("BEGIN", ("there is already a transaction in progress",))
            self.cursor.execute("BEGIN TRANSACTION")
            self.status = "T"
            self._savepoints.clear()
            self._block_statements = 0
            return Command("BEGIN")
        if self.status == "I":
            return Command(tx.value, ("there is no transaction in progress",))
        failed = self.status == "E"
        self.status = "I"
        self.engine.catalog_changed()   # DDL in the block took effect or was undone
        self._close_cursors(everything=False)
        self.cursor.execute("ROLLBACK" if failed or tx is TxKind.ROLLBACK else "COMMIT")
        return Command("ROLLBACK" if failed else tx.value)

    # -- Describe ----------------------------------------------------------------
    def describe(self, stmt: Statement, given: Sequence[str | None] = ()) -> Description:
        """Parameter and result types of a statement, from DuckDB's binder:
        the statement is bound, never run. ``given``: the DuckDB types of the
        parameters the client typed (None: left untyped). Every parameter gets a
        type as PostgreSQL's parser gives it: the client's, else DuckDB's inference,
        else its operand's (``server.sql.param_context``), else text; the result
        columns are those of the statement bound with parameters of these types."""
        translation = ddl.translate(stmt, self._ddl, check=False)
        if translation is not None:
            if translation.tag is None:
                return self.describe(split(translation.statements[0])[0], given)
            return Description((), None)
        what = self.classify(stmt)
        if isinstance(what.detail, cursor_sql.Declare):   # its parameters are its query's
            return Description(self.describe(what.detail.query, given).param_types, None)
        if isinstance(what.detail, SequenceRead):
            if self._sequence(what.detail) is not None:
                return Description((), tuple(
                    (c, "BOOLEAN" if c == "is_called" else "BIGINT")
                    for c in what.detail.columns))
            what = PLAIN   # no sequence of that name
        if what.kind is not Kind.PLAIN:
            return Description((), None)
        self.check_access(stmt, what)
        text = self.duckdb_text(stmt)
        key = (text, tuple(given))
        generation = self.engine.decision_generation()
        cached = self._described.get(key)
        if cached is not None and cached[0] == generation:
            self._described.move_to_end(key)
            return cached[1]
        description = self._bind_description(text, given)
        renamed = colnames.pg_names([n for n, _ in description.columns or ()], stmt.text, text)
        if renamed is not None and description.columns is not None:
            description = replace(description, columns=tuple(
                (name, t) for name, (_, t) in zip(renamed, description.columns, strict=True)))
        declared = exprtypes.pg_types(stmt.text, text, [t for _, t in description.columns or ()])
        if declared is not None and description.columns is not None:
            description = replace(description, columns=tuple(
                (name, t if oid is None else _DESCRIBED_AS[oid])
                for (name, t), oid in zip(description.columns, declared, strict=True)))
        self._described[key] = (generation, description)
        if len(self._described) > 256:
            self._described.popitem(last=False)
        return description

    def _bind_description(self, text: str, given: Sequence[str | None]) -> Description:
        signature = _seam.bind(self.cursor, text)
        inferred = dict((name, str(t)) for name, t in signature.parameters)
        names = sorted(inferred, key=lambda n: int(n) if n.isdigit() else 0)
        client = {str(i + 1): t for i, t in enumerate(given) if t is not None}
        types = {n: client.get(n) or inferred[n] for n in names}
        pending = [n for n in names if types[n] == "UNKNOWN"]
        arguments: frozenset[str] = frozenset()
        if pending:
            context = param_context.analyse(text, pending, client)
            arguments = context.arguments
            if context.probe is not None:
                with contextlib.suppress(duckdb.Error):   # no operand type: text
                    from_operands = dict(_seam.bind(self.cursor, context.probe).parameters)
                    for n in pending:
                        found = str(from_operands.get(n, "UNKNOWN"))
                        if found not in ("UNKNOWN", '"NULL"', "NULL"):
                            types[n] = found
            for n in pending:
                if types[n] == "UNKNOWN":
                    types[n] = "VARCHAR"   # a bare parameter is text, as in PostgreSQL
        if any(inferred[n] == "UNKNOWN" for n in names):
            # DuckDB could not bind the statement without the types: bind it with values
            # of them (its result columns without them are a placeholder)
            try:
                signature = self._bind_typed(text, [types[n] for n in names])
            except duckdb.Error:
                # a function that takes no text: the numeric category's preferred type
                retry = {n: "DOUBLE" for n in pending if n in arguments and types[n] == "VARCHAR"}
                if not retry:
                    raise
                types.update(retry)
                signature = self._bind_typed(text, [types[n] for n in names])
        param_types = tuple(types[n] for n in names)
        if signature.return_type != "query_result":
            return Description(param_types, None)
        return Description(param_types, tuple(
            (name, str(t)) for name, t in zip(signature.names, signature.types, strict=True)))

    def _bind_typed(self, text: str, types: Sequence[str]) -> _seam.Signature:
        """The statement bound with a value of each parameter type (a sample value, so
        that a bare parameter is typed as its column; typed NULLs where DuckDB casts no
        sample)."""
        try:
            return _seam.bind(self.cursor, text, values=[
                duckdb.Value(_SAMPLES.get(pg_type_for_duckdb(t), ""), _duckdb_type(t))
                for t in types])
        except (duckdb.ConversionException, duckdb.InvalidInputException):
            return _seam.bind(self.cursor, text, values=[
                duckdb.Value(None, _duckdb_type(t)) for t in types])

    # -- COPY ------------------------------------------------------------------
    def _copy(self, spec: CopySpec) -> CopyIn | CopyOut:
        # the client's rows or query, checked as the statement DuckDB will run on them
        self.check_text(f"INSERT INTO {spec.target} {spec.probe_sql()}" if spec.from_client
                        else spec.select_sql())
        signature = _seam.bind(self.cursor, spec.probe_sql())
        columns = len(signature.names)
        if spec.from_client:
            return CopyIn(spec, columns, tuple(pg_type_for_duckdb(str(t))
                                               for t in signature.types),
                          tuple(str(t) for t in signature.types), tuple(signature.names))
        self._open = self.cursor.sql(spec.select_sql()).to_arrow_reader(BATCH_ROWS)
        return CopyOut(spec, columns, self._open)

    def copy_from(self, request: CopyIn, path: str, escapes: bool) -> Command:
        """Load the rows the client sent (collected in ``path``) in one statement;
        ``escapes``: text data with backslash escapes, which DuckDB's reader cannot take."""
        spec = request.spec
        transcoded: str | None = None
        if os.path.getsize(path) == 0:
            return Command("COPY 0")   # no rows (DuckDB's CSV sniffer refuses an empty file)
        try:
            if spec.format is CopyFormat.BINARY:
                return self._copy_binary(request, path)
            if spec.format is CopyFormat.TEXT and escapes:
                fd, transcoded = tempfile.mkstemp(prefix="quackml-copy-", suffix=".csv",
                                                  dir=self.engine.staging_dir)
                with open(path, "rb") as source, os.fdopen(fd, "wb") as target:
                    csv = copy_formats.transcode_text(spec, request.names, source, target)
                sql = spec.insert_sql(transcoded, request.types, csv)
                text_read: tuple[str, CopySpec] | None = (transcoded, csv)
            elif needs_conversion(request.types):
                sql = spec.insert_sql(path, request.types)
                text_read = (path, spec)
            else:
                sql = spec.load_sql(path)
                text_read = None
            if _seam.statement_count(self.cursor, sql) != 1:   # a target DuckDB reads otherwise
                raise SyntaxError_("COPY target is not a table name")
            try:
                self.cursor.execute(sql)
            except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
                raise self._copy_row_error(request, exc, text_read) from exc
            rows = self.cursor.fetchall()
            row = rows[0] if rows else None
        except BaseException:
            self.failed()
            raise
        finally:
            if transcoded is not None:
                with contextlib.suppress(OSError):
                    os.unlink(transcoded)
        return Command(f"COPY {int(row[0]) if row else 0}")

    def _copy_row_error(self, request: CopyIn, exc: duckdb.Error,
                        text_read: tuple[str, CopySpec] | None) -> BaseException:
        """PostgreSQL's error for the row DuckDB's CSV reader stopped at (one line, and the
        line number, column and value as CONTEXT), not the reader's dump of its options.
        ``text_read``: the file and CSV spec the loading statement read as text, when it
        converted the columns itself (a failing conversion names no row: the rows are
        read again to find it)."""
        spec = request.spec
        own = self.engine.cursor()   # this connection's transaction may be aborted now

        def cast_sqlstate(value: str, duckdb_type: str) -> str:
            try:
                own.execute(f"SELECT CAST($1 AS {duckdb_type})", [value])
            except duckdb.Error as err:
                return sqlstate_of(err)
            return "22P02"

        try:
            found = copy_formats.row_error(spec, request.names, request.types, str(exc),
                                           cast_sqlstate)
            if found is not None:
                return found
            if isinstance(exc, duckdb.ConversionException) and text_read is not None:
                path, csv = text_read
                bad = copy_formats.first_failing(own.sql(spec.check_sql(path, request.types, csv))
                                         .to_arrow_reader(BATCH_ROWS))
                if bad is not None:
                    line, col, value = bad
                    return DataException(
                        message_of(exc).split("\n", 1)[0], sqlstate=sqlstate_of(exc),
                        context=f"COPY {spec.table_name}, line {line + int(csv.header)}, "
                                f'column {request.names[col]}: "{value}"')
        finally:
            own.close()
        if isinstance(exc, duckdb.InvalidInputException):   # the CSV reader's other errors
            first = _STAGED_FILE.sub("the COPY data", message_of(exc).split("\n", 1)[0])
            return DataException(f"COPY from stdin: {first}", sqlstate="22P04")
        return exc

    def _copy_binary(self, request: CopyIn, path: str) -> Command:
        spec = request.spec
        count = 0
        with open(path, "rb") as f:
            for columns in copy_formats.read_binary(f, request.oids):
                try:
                    batch = pa.table({f"c{i}": pa.array(col)
                                      for i, col in enumerate(columns)})
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise DataException(f"binary COPY data: {exc}",
                                        sqlstate="22P04") from exc
                self.cursor.register("__quackml_copy_batch", batch)
                try:
                    self.cursor.execute(
                        f"INSERT INTO {spec.target} SELECT * FROM __quackml_copy_batch")
                    self.cursor.fetchall()
                finally:
                    self.cursor.unregister("__quackml_copy_batch")
                count += batch.num_rows
        return Command(f"COPY {count}")

    # -- client parameters -------------------------------------------------
    def _publish_params(self) -> None:
        """Make the parameters visible to current_setting() in SQL."""
        self.cursor.execute("SET VARIABLE quackml_params = map(?::VARCHAR[], ?::VARCHAR[])",
                            [list(self.params), list(self.params.values())])

    def _store_param(self, name: str, value: str) -> None:
        self.params[name] = value
        self._publish_params()
        if name == "application_name" and hasattr(self, "backend"):
            self.backend.application_name = value

    def _set_param(self, name: str, value: str | None) -> None:
        if value is None:
            value = pgcatalog.CLIENT_PARAMS[name]
        if name in pgcatalog.FIXED and value.upper() not in pgcatalog.FIXED[name]:
            raise InvalidParameterValue(f'parameter "{name}" cannot be changed',
                                        sqlstate="55P02")
        if name == "datestyle" and "ISO" not in value.upper():
            raise InvalidParameterValue(f"DateStyle {value!r} is not supported: only ISO",
                                        sqlstate="0A000")
        if name == "search_path":
            self._duckdb_search_path(value)
        self._store_param(name, value)

    def _duckdb_search_path(self, value: str) -> None:
        """Forward the schemas that exist to DuckDB's search_path (public is main)."""
        wanted = [v.strip().strip('"') for v in value.split(",")]
        wanted = [names.duckdb_schema(v) for v in wanted]
        existing = {r[0] for r in self.cursor.execute(
            "SELECT DISTINCT schema_name FROM duckdb_schemas() "
            "WHERE database_name = current_database()").fetchall()}
        keep = [v for v in wanted if v in existing]
        if keep:
            self.cursor.execute("SET search_path = ?", [",".join(keep)])

    def _param(self, action: params.ParamAction) -> Result:
        match action:
            case params.ShowParam(name="all"):
                return Rows([Column("name", Oid.TEXT), Column("setting", Oid.TEXT),
                             Column("description", Oid.TEXT)],
                            [(k, v, "") for k, v in sorted(self.params.items())],
                            f"SHOW {len(self.params)}")
            case params.ShowParam(name=name):
                # the column is named as PostgreSQL spells the parameter (TimeZone)
                return Rows([Column(pgcatalog.REPORTED.get(name, name), Oid.TEXT)],
                            [(self.params[name],)], "SHOW")
            case params.SetParam(name=name, value=value):
                self._set_param(name, value)
                return Command("SET", status=self._reported(name))
            case params.ResetParam(name=name):
                names = list(pgcatalog.CLIENT_PARAMS) if name == "all" else [name]
                status: list[tuple[str, str]] = []
                for n in names:
                    if n not in pgcatalog.FIXED:
                        self._set_param(n, None)
                        status.extend(self._reported(n))
                return Command("RESET", status=status)
        raise AssertionError(action)

    def _reported(self, name: str) -> tuple[tuple[str, str], ...]:
        reported = pgcatalog.REPORTED.get(name)
        return ((reported, self.params[name]),) if reported else ()

    # -- DuckDB ----------------------------------------------------------------
    def caller(self) -> Caller:
        """What a model statement's handler may use of this session."""
        return Caller(self.user, self.cursor, self.privileges, self.cancel_requested,
                      self.duckdb_text)

    def duckdb_text(self, stmt: Statement) -> str:
        """The text DuckDB runs: the client's, with emulated catalog names qualified,
        PostgreSQL's names made DuckDB's (``server.postgres.names``) and the PostgreSQL
        syntax DuckDB reads otherwise in DuckDB's words (``server.postgres.syntax``,
        ``server.postgres.literals``)."""
        typed = literals.typed(stmt, self._column_types)
        rewritten = pgcatalog.rewrite(typed, self.names())
        return typed.text if rewritten is None else rewritten

    def _column_types(self, table: str) -> list[tuple[str, str]] | None:
        """The names and DuckDB types of a table's columns (bound, never read)."""
        try:
            signature = _seam.bind(self.cursor, f"SELECT * FROM {table}")
        except duckdb.Error:
            return None
        return [(n, str(t)) for n, t in zip(signature.names, signature.types, strict=True)]

    def names(self) -> names.Names:
        """What statements are read against: the client's database name, the schemas
        of the models' prediction functions (read again after a change of the model
        catalog; the same object while they are the same)."""
        generation = self.engine.catalog_db.generation
        if self._names is None or self._names[0] != generation:
            functions: dict[str, frozenset[str]] = {}
            forecasts = frozenset(r.function_name.lower() for r in self.engine.store.all()
                                  if r.model_type == "FORECAST")
            for record in self.engine.store.all():
                schemas = frozenset({record.schema_name.lower(), names.PUBLIC})
                for fn in all_function_names(record.function_name):
                    functions[fn.lower()] = functions.get(fn.lower(), frozenset()) | schemas
            found = names.Names(self.database, self.engine.database_name, functions,
                                forecasts)
            if self._names is not None and self._names[1] == found:
                found = self._names[1]
            self._names = (generation, found)
        return self._names[1]

    def _duckdb(self, stmt: Statement, params: Sequence[object]) -> Result:
        text = self.duckdb_text(stmt)
        if text is not stmt.text:
            client_text = stmt.text
            stmt = Statement(text, stmt.offset, stmt.tokens)
        else:
            client_text = text
        plain = _Plain(stmt, self.statement_type(stmt.text),
                       colnames.ResultNames(client_text, stmt.text), self.names(),
                       client_text if client_text is not stmt.text else None)
        if not literals.depends_on_columns(stmt):   # else read again after the next DDL
            self._plain[client_text] = plain
        if len(self._plain) > 256:
            self._plain.popitem(last=False)
        return self._run_plain(plain, params)

    def _run_plain(self, plain: _Plain, params: Sequence[object]) -> Result:
        bound = _bindable(params) if params else None
        if self.engine.calls_models(plain.stmt.tokens):
            # one version of each model for the whole statement (server.models.switch)
            with self.engine.switch.reading():
                return self._materialised(self._execute_plain(plain, bound))
        return self._execute_plain(plain, bound)

    def _materialised(self, result: Result) -> Result:
        if isinstance(result, Stream):
            table = result.reader.read_all()
            self.release()
            return Stream(table.to_reader(BATCH_ROWS), result.tag_prefix)
        return result

    def _execute_plain(self, plain: _Plain, bound: list[object] | None) -> Result:
        stmt, stype = plain.stmt, plain.stype
        if stype is duckdb.StatementType.SELECT:
            # DuckDB's statement runner straight to a record-batch stream: the relation
            # API (cursor.sql) binds and plans the text twice more first, which
            # halves the rate of short queries.
            submitted = _seam.submit(self.cursor, stmt.text, bound, "stream", BATCH_ROWS)
            types = [d[1] for d in submitted.description]
            self._open = submitted.arrow_reader()
            reader = resulttypes.pg_typed(self._open, types, plain.pg_types(types))
            return Stream(reader if plain.names.settled else _pg_named(reader, plain.names))
        try:
            self.cursor.execute(stmt.text, bound)
        finally:
            if stype not in _DATA_TYPES:
                self.engine.catalog_changed()   # names may bind differently now
        if stype is duckdb.StatementType.PREPARE:
            name, inner = prepared_name(stmt.text)
            self._sql_prepared[name] = inner
        description = self.cursor.description
        if stype is duckdb.StatementType.EXECUTE and len(stmt.tokens) > 1:
            # tagged as the statement it runs ("INSERT 0 1", not a row set of its count)
            executed = self._sql_prepared.get(stmt.tokens[1].text.lower())
            stype = (self.statement_type(executed) if executed is not None else None) or stype
        returning = stype in _RETURNING_TAGS and bool(description) and \
            [d[0] for d in description] != ["Count"]
        if (stype in _ROWSET_TYPES or returning) and description and \
                [d[0] for d in description] != ["Success"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table = self.cursor.to_arrow_table()
            assert table is not None
            types = [d[1] for d in description]
            reader = resulttypes.pg_typed(table.to_reader(BATCH_ROWS), types,
                                          plain.pg_types(types))
            # INSERT/UPDATE/DELETE ... RETURNING: the rows, tagged "INSERT 0 n" etc.
            prefix = _RETURNING_TAGS[stype] if returning and stype is not None else "SELECT"
            return Stream(reader, prefix)
        count = None
        if description and description[0][0] == "Count":
            rows = self.cursor.fetchall()
            count = int(rows[0][0]) if rows and rows[0][0] is not None else None
        return Command(command_tag(stmt, stype, count))
