"""String literals of INSERT ... VALUES read as PostgreSQL reads them for their column.

PostgreSQL reads an untyped string literal with the input function of the
column it lands in: ``'{1,2}'`` into an ``integer[]`` column is an array,
``'\\x0102'`` into a ``bytea`` column is two bytes. DuckDB reads the same
literals its own way: an array literal is ``[1,2]`` (``{1,2}`` fails) and a
blob literal takes ``\\x01`` escapes (``'\\x0102'`` is three bytes, a wrong
answer without an error). For ``INSERT INTO t [(columns)] VALUES (...), ...``
and ``UPDATE t SET c = '...', ...`` whose values hold such literals, the
target columns' types are asked from DuckDB and the literals of list and
blob columns rewritten: ``'[1,2]'`` and
``unhex('0102')``. ``INSERT INTO t VALUES (...)`` without a column list and
with fewer values than ``t`` has columns names the first columns, as
PostgreSQL does (the others take their defaults; DuckDB wants them all).
Casts (``'{1,2}'::int[]``) are ``server.postgres.syntax``' business; other
statements and other literals are left as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlglot.tokens import Token, TokenType

from server.postgres.syntax import array_literal
from server.sql.text import Statement, closing_paren, split, top_level_items

#: the DuckDB types of a table's columns, in order, by the table's name as written
#: (None: no such table)
ColumnTypes = Callable[[str], Sequence[tuple[str, str]] | None]

_BYTEA_HEX = re.compile(r"\\x[0-9a-fA-F]*")


def _candidate(tok: Token) -> bool:
    return tok.token_type is TokenType.STRING and (
        tok.text.lstrip().startswith("{") or _BYTEA_HEX.fullmatch(tok.text) is not None)


def _items(tokens: tuple[Token, ...], open_: int, close: int) -> list[tuple[int, int]]:
    """The (first, last) token indexes of the comma-separated items in a parenthesis."""
    return [(first, past - 1) for first, past in top_level_items(tokens, open_ + 1, close)]


def _without_column_list(stmt: Statement) -> bool:
    """INSERT INTO t VALUES (...): PostgreSQL fills the columns past the values given
    with their defaults (DuckDB wants a value for each)."""
    tokens = stmt.tokens
    i = _table_end(tokens, 2) + 1
    return i < len(tokens) and tokens[i].token_type is TokenType.VALUES


def depends_on_columns(stmt: Statement) -> bool:
    """Whether ``typed`` may rewrite the statement, after its target table's column
    types (a rewrite not to remember past DDL)."""
    if len(stmt.tokens) < 5:
        return False
    if stmt.words(2) == ("INSERT", "INTO"):
        return _without_column_list(stmt) or any(_candidate(t) for t in stmt.tokens)
    return stmt.words(1) == ("UPDATE",) and any(_candidate(t) for t in stmt.tokens)


def _literal(tok: Token, target: str) -> str | None:
    """The DuckDB text of a literal landing in a column of DuckDB type ``target``, or
    None when DuckDB reads it as PostgreSQL does."""
    target = target.upper()
    if target.endswith("]") and tok.text.lstrip().startswith("{"):
        return "'" + array_literal(tok.text).replace("'", "''") + "'"
    if target == "BLOB" and _BYTEA_HEX.fullmatch(tok.text):
        return f"unhex('{tok.text[2:]}')"
    return None


def _table_end(tokens: tuple[Token, ...], i: int) -> int:
    while i + 2 < len(tokens) and tokens[i + 1].token_type is TokenType.DOT:
        i += 2
    return i


def _update_edits(stmt: Statement, column_types: ColumnTypes) -> list[tuple[int, int, str]]:
    """UPDATE t SET a = '{1,2}', b = '\\x01' ...: the literals assigned to columns."""
    tokens = stmt.tokens
    end = _table_end(tokens, 1)
    i = end + 1
    if i < len(tokens) and tokens[i].token_type is not TokenType.SET:   # an alias
        i += 2 if tokens[i].text.upper() == "AS" else 1
    if i >= len(tokens) or tokens[i].token_type is not TokenType.SET:
        return []
    columns = column_types(stmt.text[tokens[1].start - stmt.offset:
                                     tokens[end].end + 1 - stmt.offset])
    if not columns:
        return []
    types = {name.lower(): t for name, t in columns}
    edits = []
    j = i + 1
    while j + 2 < len(tokens):
        name, eq, value = tokens[j], tokens[j + 1], tokens[j + 2]
        after = tokens[j + 3] if j + 3 < len(tokens) else None
        if eq.token_type is not TokenType.EQ:
            break
        if _candidate(value) and (after is None or after.token_type in (
                TokenType.COMMA, TokenType.WHERE, TokenType.FROM, TokenType.RETURNING)):
            literal = _literal(value, types.get(name.text.lower(), ""))
            if literal is not None:
                edits.append((value.start, value.end, literal))
        if after is None or after.token_type is not TokenType.COMMA:
            break
        j += 4
    return edits


def typed(stmt: Statement, column_types: ColumnTypes) -> Statement:
    """The statement with the literals of its VALUES read for their columns; the
    statement itself when there is nothing to read otherwise (the usual case)."""
    tokens = stmt.tokens
    if not depends_on_columns(stmt):
        return stmt
    if stmt.words(1) == ("UPDATE",):
        return _apply(stmt, _update_edits(stmt, column_types))
    i = _table_end(tokens, 2)
    table = stmt.text[tokens[2].start - stmt.offset:tokens[i].end + 1 - stmt.offset]
    i += 1
    named: list[str] | None = None
    if i < len(tokens) and tokens[i].token_type is TokenType.L_PAREN:
        close = closing_paren(tokens, i)
        if close is None:
            return stmt
        named = [tokens[a].text.lower() for a, b in _items(tokens, i, close) if a == b]
        i = close + 1
    if i >= len(tokens) or tokens[i].token_type is not TokenType.VALUES:
        return stmt
    columns = column_types(table)
    if not columns:
        return stmt
    types = {name.lower(): t for name, t in columns}
    targets = [types.get(n, "") for n in named] if named is not None else \
        [t for _, t in columns]
    edits: list[tuple[int, int, str]] = []
    i += 1
    if named is None and i < len(tokens) and tokens[i].token_type is TokenType.L_PAREN:
        close = closing_paren(tokens, i)
        given = len(_items(tokens, i, close)) if close is not None else len(columns)
        if 0 < given < len(columns):   # the columns given values; the others take defaults
            listed = ", ".join('"' + name.replace('"', '""') + '"'
                               for name, _ in columns[:given])
            end = tokens[i - 2]
            edits.append((end.end + 1, end.end, f" ({listed})"))
    while i < len(tokens) and tokens[i].token_type is TokenType.L_PAREN:
        close = closing_paren(tokens, i)
        if close is None:
            return stmt
        for position, (a, b) in enumerate(_items(tokens, i, close)):
            if a != b or position >= len(targets) or not _candidate(tokens[a]):
                continue
            literal = _literal(tokens[a], targets[position])
            if literal is not None:
                edits.append((tokens[a].start, tokens[a].end, literal))
        i = close + 1
        if i < len(tokens) and tokens[i].token_type is TokenType.COMMA:
            i += 1
    return _apply(stmt, edits)


def _apply(stmt: Statement, edits: list[tuple[int, int, str]]) -> Statement:
    if not edits:
        return stmt
    text = stmt.text
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start - stmt.offset] + replacement + text[end + 1 - stmt.offset:]
    rewritten = split(text)
    return rewritten[0] if len(rewritten) == 1 else stmt
