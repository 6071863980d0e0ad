"""What kind of statement this is, decided once, before anything runs it.

PostgreSQL's ``exec_simple_query`` parses a statement once and then switches
on its node type; QuackML does the same: ``classify`` reads the statement's
tokens once and returns its ``Kind`` with what was parsed for it (a cursor
statement, an ML statement, a client SET ...). The session dispatches on the
kind, the access check skips the kinds that are checked where they run, and
Describe answers from it; nobody asks a recogniser twice.

Recognisers run in PostgreSQL's order of precedence for QuackML's extensions:
transaction control first (a failed block accepts nothing else), then the
statements QuackML handles itself, then plain SQL for DuckDB. A recogniser
that finds its statement malformed raises (42601, 0A000); the error reaches
the client as for any other statement.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from server.errors import ServerError
from server.sql import (
    access_grammar,
    copy_spec,
    cursors,
    lock,
    ml_grammar,
    multi,
    params,
    sequence_read,
)
from server.sql.text import Statement


class Kind(enum.Enum):
    TRANSACTION = "transaction"   # BEGIN, COMMIT, ROLLBACK, SAVEPOINT ...: a TxKind
    DEALLOCATE = "deallocate"     # DEALLOCATE [PREPARE] name | ALL: the name, None for ALL
    ACCESS = "access"             # CREATE/ALTER/DROP USER, GRANT, REVOKE ...: an access statement
    STORAGE = "storage"           # CREATE TABLE ... WITH (fillfactor ...): (text, notice)
    CURSOR = "cursor"             # DECLARE, FETCH, MOVE, CLOSE: a cursor statement
    ML = "ml"                     # CREATE/SHOW/DROP MODEL: an ML statement
    PARAM = "param"               # SET/SHOW/RESET of a client parameter: a ParamAction
    COPY = "copy"                 # COPY ... FROM STDIN / TO STDOUT: a CopySpec
    SEVERAL = "several"           # DROP/TRUNCATE of several objects: a multi.Split
    LOCK = "lock"                 # LOCK [TABLE] ...: a lock.Lock
    SEQUENCE_READ = "sequence"    # SELECT last_value, ... FROM name: a SequenceRead (plain
                                  # SQL when the name is no sequence)
    PLAIN = "plain"               # anything else: DuckDB's, as written


class TxKind(enum.Enum):
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ROLLBACK = "ROLLBACK"
    SAVEPOINT = "SAVEPOINT"
    RELEASE = "RELEASE"
    ROLLBACK_TO = "ROLLBACK TO"


# the kinds whose privileges are checked where they run, not on the statement's text
CHECKED_WHERE_THEY_RUN = frozenset({Kind.TRANSACTION, Kind.DEALLOCATE, Kind.ACCESS,
                                    Kind.STORAGE, Kind.CURSOR, Kind.ML, Kind.PARAM,
                                    Kind.COPY, Kind.SEVERAL, Kind.LOCK,
                                    Kind.SEQUENCE_READ})


@dataclass(frozen=True, slots=True)
class Classified:
    kind: Kind
    detail: object = None   # what the kind's recogniser parsed (see Kind)


PLAIN = Classified(Kind.PLAIN)


def classify(stmt: Statement, client_params: Collection[str]) -> Classified:
    """The statement's kind and what was parsed for it. ``client_params``: the
    parameters the session keeps itself (lower-case names); SET of any other
    goes to DuckDB."""
    tx = transaction_kind(stmt)
    if tx is not None:
        return Classified(Kind.TRANSACTION, tx)
    if stmt.words(1) == ("DEALLOCATE",):
        return Classified(Kind.DEALLOCATE, deallocated(stmt))
    if access_grammar.is_access_statement(stmt):
        return Classified(Kind.ACCESS, access_grammar.parse(stmt))
    stripped = multi.without_storage_parameters(stmt)
    if stripped is not None:
        return Classified(Kind.STORAGE, stripped)
    cursor = cursors.parse(stmt)
    if cursor is not None:
        return Classified(Kind.CURSOR, cursor)
    if ml_grammar.is_ml_statement(stmt):
        return Classified(Kind.ML, ml_grammar.parse(stmt))
    action = params.parse(stmt, client_params)
    if action is not None:
        return Classified(Kind.PARAM, action)
    spec = copy_spec.parse(stmt)
    if spec is not None:
        return Classified(Kind.COPY, spec)
    several = multi.split_objects(stmt)
    if several is not None:
        return Classified(Kind.SEVERAL, several)
    locking = lock.parse(stmt)
    if locking is not None:
        return Classified(Kind.LOCK, locking)
    read = sequence_read.parse(stmt)
    if read is not None:
        return Classified(Kind.SEQUENCE_READ, read)
    return PLAIN


def transaction_kind(stmt: Statement) -> TxKind | None:
    words = stmt.words(2)
    if not words:
        return None
    first = words[0]
    if first in ("BEGIN", "START"):
        return TxKind.BEGIN
    if first in ("COMMIT", "END"):
        return TxKind.COMMIT
    if first in ("ROLLBACK", "ABORT"):
        return TxKind.ROLLBACK_TO if len(words) > 1 and words[1] == "TO" else TxKind.ROLLBACK
    if first == "SAVEPOINT":
        return TxKind.SAVEPOINT
    if first == "RELEASE":
        return TxKind.RELEASE
    return None


def deallocated(stmt: Statement) -> str | None:
    """The prepared statement a DEALLOCATE names; None for ALL."""
    words = [t.text for t in stmt.tokens[1:]]
    if words and words[0].upper() == "PREPARE":
        words = words[1:]
    if len(words) != 1:
        raise ServerError("DEALLOCATE needs a statement name or ALL", sqlstate="42601")
    return None if words[0].upper() == "ALL" else words[0]


def savepoint_name(stmt: Statement) -> str:
    words = [t.text for t in stmt.tokens[1:]]
    if words and words[0].upper() in ("TO", "SAVEPOINT"):
        words = words[1:]
    if words and words[0].upper() == "SAVEPOINT":
        words = words[1:]
    return words[0] if words else ""
