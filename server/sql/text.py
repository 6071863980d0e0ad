"""Splitting a query string into statements where DuckDB's own parser splits it.

The split points are the ``;`` tokens of DuckDB's tokenizer (``duckdb.tokenize``),
so the server and the engine can never disagree on where a statement ends,
whatever the quoting (DuckDB's strings, dollar quotes, backquotes, comments).
Each piece keeps its exact original text (user SQL reaches DuckDB as written)
and its offset in the query string, for error positions. Its tokens, for the
ML and access grammars, come from sqlglot's PostgreSQL tokenizer; a piece that
tokenizer cannot read is kept without tokens, and DuckDB reports the error.

Big texts: DuckDB's tokenizer, which holds the GIL for a whole call, reads
them ``_CHUNK`` characters at a time; the session's cancel flag is checked
between chunks and between statements (57014); and a statement of more than
``MAX_STATEMENT_TOKENS`` tokens is refused before any statement is tokenized
by sqlglot (54000), since every later step costs time in proportion to tokens.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from server.errors import QueryCanceled, ServerError

# A statement of more tokens (DuckDB's, comments aside) is refused with 54000:
# every layer after the split (sqlglot's tokens, DuckDB's parser, the firewall)
# costs time proportional to the tokens, some of it holding the GIL.
MAX_STATEMENT_TOKENS = 100_000
# DuckDB's tokenizer reads at most this many characters per call (while it
# holds the GIL): about 15 ms of a text made of one-character tokens.
_CHUNK = 16 * 1024


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


class StatementTooLong(ServerError):
    """A statement beyond ``MAX_STATEMENT_TOKENS`` (PostgreSQL's program_limit_exceeded)."""
    sqlstate = "54000"


def split(sql: str, cancelled: threading.Event | None = None) -> list[Statement]:
    """Split ``sql`` on top-level semicolons, dropping empty statements (as
    PostgreSQL does); an empty list means an empty query.

    A string the tokenizer rejects (say, an unterminated quote) is returned
    whole as one statement without tokens, so DuckDB reports the error.

    Raises ``QueryCanceled`` (57014) once ``cancelled`` is set, and
    ``StatementTooLong`` (54000) for a statement of more than
    ``MAX_STATEMENT_TOKENS`` tokens, before tokenizing any statement.

    Short texts are remembered (statements are immutable): a client sending
    the same query again, prepared or not, is not tokenized again.
    """
    if len(sql) > _CACHED_TEXT_MAX:
        return list(_split(sql, cancelled))
    return list(_split_cached(sql))


_CACHED_TEXT_MAX = 4096


def _split(sql: str, cancelled: threading.Event | None = None) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    start = 0
    for end in [*_semicolons(sql, cancelled), len(sql)]:
        _check(cancelled)
        statements.append(_piece(sql, start, end))
        start = end + 1
    return tuple(s for s in statements if not s.is_empty)


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise QueryCanceled("canceling statement due to user request")


def _semicolons(sql: str, cancelled: threading.Event | None = None,
                chunk: int = _CHUNK) -> list[int]:
    """Offsets of the statement-ending semicolons, as DuckDB's tokenizer reads them.

    The text is read ``chunk`` characters at a time. A chunk starts where a
    token starts; of its tokens, the last two may be cut (or read differently)
    by the chunk's end, so they are read again at the start of the next chunk.
    A chunk holding fewer (inside a long string or comment) is doubled.
    """
    found: list[int] = []
    tokens = 0   # of the statement under way, comments aside
    pos, size = 0, chunk
    while True:
        _check(cancelled)
        end = min(len(sql), pos + size)
        raw = duckdb.tokenize(sql[pos:end])
        last = end == len(sql)
        keep = len(raw) if last else len(raw) - 2
        if keep < 1 and not last:
            size *= 2
            continue
        for i in range(keep):
            start, kind = raw[i]
            if kind == duckdb.token_type.comment:
                continue
            tokens += 1
            if kind == duckdb.token_type.operator:
                stop = raw[i + 1][0] if i + 1 < len(raw) else end - pos
                for j, ch in enumerate(sql[pos + start:pos + stop]):
                    if ch == ";":
                        found.append(pos + start + j)
                        tokens = 0
            if tokens > MAX_STATEMENT_TOKENS:
                raise StatementTooLong(
                    f"statement too long: more than {MAX_STATEMENT_TOKENS:,} tokens",
                    hint="split it into smaller statements, or load rows with "
                         "COPY ... FROM STDIN")
        if last:
            return found
        pos += raw[keep][0]
        size = chunk


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


def closing_paren(tokens: Sequence[Token], i: int,
                  pair: tuple[TokenType, TokenType] = (TokenType.L_PAREN, TokenType.R_PAREN)
                  ) -> int | None:
    """Index of the token closing the parenthesis (or the ``pair``, say brackets) that
    opens at ``tokens[i]``, or None."""
    opening, closing = pair
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].token_type is opening:
            depth += 1
        elif tokens[j].token_type is closing:
            depth -= 1
            if depth == 0:
                return j
    return None


def back_at_depth(tokens: Sequence[Token], i: int) -> Iterator[int]:
    """The indexes before ``i`` of the tokens at ``tokens[i]``'s parenthesis depth,
    nearest first (what lies inside a nested parenthesis is skipped); last, the
    parenthesis that encloses ``i``, if there is one."""
    depth = 0
    for j in range(i - 1, -1, -1):
        kind = tokens[j].token_type
        if kind is TokenType.R_PAREN:
            depth += 1
        elif kind is TokenType.L_PAREN:
            if depth == 0:
                yield j
                return
            depth -= 1
        elif depth == 0:
            yield j


#: words that end a FROM list, looking back from one of its commas
_CLAUSE_WORDS = frozenset({"SELECT", "WHERE", "ON", "USING", "GROUP", "ORDER", "HAVING",
                           "LIMIT", "SET", "VALUES", "RETURNING", "WINDOW", "QUALIFY"})


def in_from_list(tokens: Sequence[Token], comma: int) -> bool:
    """Whether the comma at ``comma`` separates items of a FROM list."""
    for j in back_at_depth(tokens, comma):
        if tokens[j].token_type is TokenType.L_PAREN:
            return False
        word = tokens[j].text.upper()
        if word == "FROM":
            return True
        if word in _CLAUSE_WORDS:
            return False
    return False


def top_level_items(tokens: Sequence[Token], start: int, end: int) -> list[tuple[int, int]]:
    """The comma-separated items of ``tokens[start:end]`` (commas inside parentheses
    and brackets do not count), as half-open index ranges ``(first, past_last)``."""
    out: list[tuple[int, int]] = []
    depth = 0
    begin = start
    for j in range(start, end):
        kind = tokens[j].token_type
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif kind is TokenType.COMMA and depth == 0:
            out.append((begin, j))
            begin = j + 1
    out.append((begin, end))
    return out
