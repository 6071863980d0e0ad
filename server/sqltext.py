"""Splitting a query string into statements with a real SQL tokenizer.

sqlglot's PostgreSQL tokenizer understands quotes, dollar quotes, escape
strings and comments, so a ``;`` inside any of them never splits. Each piece
keeps its exact original text (user SQL reaches DuckDB as written) and its
offset in the query string, for error positions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType


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
    try:
        tokens = tokenize(sql)
    except TokenError:
        return (Statement(sql, 0, (), untokenized=True),) if sql.strip() else ()
    statements: list[Statement] = []
    current: list[Token] = []
    start = 0
    for tok in tokens:
        if tok.token_type is TokenType.SEMICOLON:
            statements.append(_make(sql, start, tok.start, current))
            current = []
            start = tok.end + 1
        else:
            current.append(tok)
    statements.append(_make(sql, start, len(sql), current))
    return tuple(s for s in statements if not s.is_empty)


_split_cached = functools.lru_cache(maxsize=512)(_split)


def _make(sql: str, start: int, end: int, tokens: list[Token]) -> Statement:
    text = sql[start:end]
    stripped = len(text) - len(text.lstrip())
    return Statement(text.strip(), start + stripped, tuple(tokens))
