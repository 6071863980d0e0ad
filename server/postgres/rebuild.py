"""ALTER TABLE on a table other objects depend on, as PostgreSQL allows it.

DuckDB refuses (2BP01 "Cannot alter entry ... because there are entries that depend
on it") to rename, retype, drop a column of, change NOT NULL of, or rename a table
that has a ``CREATE INDEX`` index or that a foreign key of another table references.
Migrations (Alembic, Django, dbt) do this all the time, so the ALTER runs, in one
transaction, between taking the dependents away and putting them back:

- the table's own indexes (``duckdb_indexes()`` has their SQL) are dropped and
  recreated, following a renamed column or table;
- a table whose foreign key references the table is copied to a temporary table,
  dropped, recreated from its SQL (``duckdb_tables()``, the reference following a
  renamed column or table), refilled, with its own indexes and comments.

Where it stops: a column an index is on cannot be dropped or change type (0A000:
DuckDB keeps a dropped index's storage until the transaction ends, so it cannot be
done atomically); a referencing table that is itself referenced, or references
itself, is not rebuilt (DuckDB's 2BP01 stands); a column of a PRIMARY KEY or UNIQUE
constraint cannot change type (DuckDB's own refusal); otherwise PRIMARY KEY and UNIQUE
constraints need nothing (they are not separate entries in DuckDB). A referencing table's
grants start afresh for a non-superuser (it is a new table); its rows are copied,
which costs time on a big table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from server.errors import ServerError
from server.sql.text import split


@dataclass(frozen=True)
class Index:
    name: str
    sql: str
    comment: str | None


@dataclass(frozen=True)
class Referencing:
    """A table with a foreign key to the altered table."""
    schema: str
    name: str
    sql: str
    comment: str | None
    column_comments: tuple[tuple[str, str], ...]
    indexes: tuple[Index, ...]
    referenced: bool     # itself referenced by a foreign key (not rebuilt)


@dataclass(frozen=True)
class Dependents:
    indexes: tuple[Index, ...] = ()
    referencing: tuple[Referencing, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.indexes or self.referencing)


@dataclass(frozen=True)
class Change:
    """What the ALTER does to names: a renamed column, a dropped column, a new table name."""
    renamed: tuple[str, str] | None = None
    dropped: str | None = None
    new_table: str | None = None
    retyped: str | None = None


def change_of(words: Sequence[str], rest: Sequence[Token]) -> Change | None:
    """The change an ALTER TABLE's action (``rest``, after the table name) makes, or
    None: an action DuckDB runs with dependents (ADD, SET/DROP DEFAULT) or one this
    does not know."""
    n = len(words)
    if words[:2] == ["RENAME", "TO"] and n == 3:
        return Change(new_table=name_of(rest[2]))
    if words[:1] == ["RENAME"]:
        j = 2 if words[1:2] == ["COLUMN"] else 1
        if n == j + 3 and words[j + 1] == "TO":
            return Change(renamed=(name_of(rest[j]), name_of(rest[j + 2])))
        return None
    if words[:1] == ["DROP"] and words[1:2] != ["CONSTRAINT"]:
        j = 2 if words[1:2] == ["COLUMN"] else 1
        if words[j:j + 2] == ["IF", "EXISTS"]:
            j += 2
        if j < n:
            return Change(dropped=name_of(rest[j]))
        return None
    if words[:1] == ["ALTER"]:
        j = 2 if words[1:2] == ["COLUMN"] else 1
        action = words[j + 1:j + 4]
        if action[:1] == ["TYPE"] or action[:3] == ["SET", "DATA", "TYPE"]:
            return Change(retyped=name_of(rest[j]))
        if action[1:3] == ["NOT", "NULL"]:
            return Change()
    return None


def statements(schema: str, alter: str, dependents: Dependents,
               change: Change) -> tuple[str, ...] | None:
    """The DuckDB statements that run ``alter`` on a table with these dependents, or
    None: a dependent this cannot take away."""
    if any(r.referenced for r in dependents.referencing):
        return None
    column = change.retyped or change.dropped
    on_it = [i.name for i in dependents.indexes if column and _mentions(i.sql, column)]
    if on_it:   # DuckDB keeps a dropped index's storage to the end of the transaction
        what = "change the type of" if change.retyped else "drop"
        raise ServerError(
            f'cannot {what} column "{column}": index "{on_it[0]}" is on it (DuckDB cannot '
            "drop the index in the same transaction: drop the index first)", sqlstate="0A000")
    before: list[str] = []
    after: list[str] = []
    for k, ref in enumerate(dependents.referencing):
        keep = f"_quackml_rebuild_{k}"
        name = f"{ident(ref.schema)}.{ident(ref.name)}"
        before += [f"CREATE TEMP TABLE {keep} AS SELECT * FROM {name}", f"DROP TABLE {name}"]
        after += [_follow(ref.sql, change, references=True),
                  f"INSERT INTO {name} SELECT * FROM {keep}", f"DROP TABLE {keep}"]
        after += [i.sql for i in ref.indexes]
        after += _comments(name, ref.comment, ref.column_comments, ref.indexes, ref.schema)
    for index in dependents.indexes:
        before.append(f"DROP INDEX {ident(schema)}.{ident(index.name)}")
        after.append(_follow(index.sql, change, references=False))
        if index.comment is not None:
            after.append(f"COMMENT ON INDEX {ident(schema)}.{ident(index.name)} IS "
                         f"{_literal(index.comment)}")
    return (*before, alter, *after)


def _comments(table: str, comment: str | None, columns: Sequence[tuple[str, str]],
              indexes: Sequence[Index], schema: str) -> list[str]:
    out = [f"COMMENT ON TABLE {table} IS {_literal(comment)}"] if comment is not None else []
    out += [f"COMMENT ON COLUMN {table}.{ident(c)} IS {_literal(text)}" for c, text in columns]
    out += [f"COMMENT ON INDEX {ident(schema)}.{ident(i.name)} IS {_literal(i.comment)}"
            for i in indexes if i.comment is not None]
    return out


def _mentions(index_sql: str, column: str) -> bool:
    tokens = split(index_sql)[0].tokens
    start = next((i for i, t in enumerate(tokens) if t.token_type is TokenType.L_PAREN), None)
    return start is not None and any(
        _is_name(t) and name_of(t) == column for t in tokens[start:])


def _follow(sql: str, change: Change, references: bool) -> str:
    """An index's (``references`` False) or a referencing table's CREATE statement with
    the altered table's new column or table name."""
    stmt = split(sql)[0]
    tokens = stmt.tokens
    edits: list[tuple[Token, str]] = []
    if references:
        spans = [i for i, t in enumerate(tokens) if t.text.upper() == "REFERENCES"]
    else:
        spans = [i for i, t in enumerate(tokens) if t.text.upper() == "ON"][:1]
    for i in spans:
        j = i + 1
        while j + 2 < len(tokens) and tokens[j + 1].token_type is TokenType.DOT:
            j += 2
        if j >= len(tokens):
            continue
        if change.new_table is not None:
            edits.append((tokens[j], ident(change.new_table)))
        if change.renamed is not None and j + 1 < len(tokens) and \
                tokens[j + 1].token_type is TokenType.L_PAREN:
            depth = 0
            for t in tokens[j + 1:]:
                depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(t.token_type, 0)
                if depth == 0:
                    break
                if _is_name(t) and name_of(t) == change.renamed[0]:
                    edits.append((t, ident(change.renamed[1])))
    text = stmt.text
    for tok, new in sorted(edits, key=lambda e: e[0].start, reverse=True):
        text = text[:tok.start - stmt.offset] + new + text[tok.end + 1 - stmt.offset:]
    return text


def _is_name(tok: Token) -> bool:
    return tok.token_type in (TokenType.VAR, TokenType.IDENTIFIER) or \
        (tok.text.isidentifier() and tok.token_type is not TokenType.STRING)


def name_of(tok: Token) -> str:
    """An identifier's name: as written if quoted, else lower case (PostgreSQL folds)."""
    return tok.text if tok.token_type is TokenType.IDENTIFIER else tok.text.lower()


def ident(name: str) -> str:
    """A name as SQL, quoted (a column may be named as a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
