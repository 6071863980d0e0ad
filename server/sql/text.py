"""Splitting a query string into statements where DuckDB's own parser splits it.

The split points are the ``;`` tokens of DuckDB's tokenizer (``duckdb.tokenize``),
so the server and the engine can never disagree on where a statement ends,
whatever the quoting (DuckDB's strings, dollar quotes, backquotes, comments).
Each piece keeps its exact original text (user SQL reaches DuckDB as written)
and its offset in the query string, for error positions. Its tokens, for the
ML and access grammars, come from sqlglot's PostgreSQL tokenizer; a piece that
tokenizer cannot read is kept without tokens, and DuckDB reports the error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import duckdb
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError
from sqlglot.tokens import Token


class _Tokenizer(Postgres.Tokenizer):
    # PostgreSQL's tokenizer swallows the rest of SHOW/CALL/... as one string;
    # the ML grammar needs the words after SHOW, so no command keywords.
    COMMANDS = set()  # type: ignore[misc]  # noqa: RUF012


def tokenize(sql: str) -> list[Token]:
    """Tokens of ``sql``; raises sqlglot's TokenError on malformed text."""
    return list(_Tokenizer(dialect=Postgres()).tokenize(sql))


@dataclass(frozen=True)
class Statement:
    text: str                 # exact original text, without the terminating ';'
    offset: int               # index of text[0] in the whole query string
    tokens: tuple[Token, ...]  # tokens with positions relative to the whole query
    untokenized: bool = False  # the tokenizer rejected the text; DuckDB will say why

    @property
    def is_empty(self) -> bool:
        return not self.tokens and not self.untokenized

    def words(self, n: int) -> tuple[str, ...]:
        """The first n tokens upper-cased (keywords, names)."""
        return tuple(t.text.upper() for t in self.tokens[:n])


def split(sql: str) -> list[Statement]:
    """Split ``sql`` on top-level semicolons, dropping empty statements (as
    PostgreSQL does); an empty list means an empty query.

    A string the tokenizer rejects (say, an unterminated quote) is returned
    whole as one statement without tokens, so DuckDB reports the error.

    Short texts are remembered (statements are immutable): a client sending
    the same query again, prepared or not, is not tokenized again.
    """
    if len(sql) > _CACHED_TEXT_MAX:
        return list(_split(sql))
    return list(_split_cached(sql))


_CACHED_TEXT_MAX = 4096


def _split(sql: str) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    start = 0
    for end in _semicolons(sql):
        statements.append(_piece(sql, start, end))
        start = end + 1
    statements.append(_piece(sql, start, len(sql)))
    return tuple(s for s in statements if not s.is_empty)


def _semicolons(sql: str) -> list[int]:
    """Offsets of the statement-ending semicolons, as DuckDB's tokenizer reads them."""
    raw = duckdb.tokenize(sql)
    found: list[int] = []
    for i, (start, kind) in enumerate(raw):
        if kind != duckdb.token_type.operator:
            continue
        end = raw[i + 1][0] if i + 1 < len(raw) else len(sql)
        found.extend(start + j for j, ch in enumerate(sql[start:end]) if ch == ";")
    return found


def _piece(sql: str, start: int, end: int) -> Statement:
    text = sql[start:end]
    stripped = len(text) - len(text.lstrip())
    offset = start + stripped
    text = text.strip()
    if not text:
        return Statement("", offset, ())
    try:
        tokens = tokenize(text)
    except TokenError:
        return Statement(text, offset, (), untokenized=True)
    if not tokens:   # only comments
        return Statement("", offset, ())
    return Statement(text, offset, tuple(_shift(t, offset) for t in tokens))


def _shift(tok: Token, offset: int) -> Token:
    """A token with positions relative to the whole query string."""
    return Token(tok.token_type, tok.text, tok.line, tok.col, tok.start + offset,
                 tok.end + offset, tok.comments)


_split_cached = functools.lru_cache(maxsize=512)(_split)


