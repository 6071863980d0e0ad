"""PostgreSQL statements on several objects that DuckDB takes one object at a time.

``DROP {TABLE | VIEW | SEQUENCE | INDEX | SCHEMA | TYPE | MACRO | FUNCTION} [IF
EXISTS] a, b [CASCADE | RESTRICT]`` and ``TRUNCATE [TABLE] [ONLY] a, b [RESTART |
CONTINUE IDENTITY] [CASCADE | RESTRICT]`` (pg_dump, pg_restore --clean, ORMs)
become one DuckDB statement per object, each cut from the client's own text (the
object names exactly as written), to be run in one transaction. A statement on a
single object is left alone (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from server.sql.text import Statement, closing_paren

_DROP_KINDS = frozenset({"TABLE", "VIEW", "SEQUENCE", "INDEX", "SCHEMA", "TYPE", "MACRO",
                         "FUNCTION"})


@dataclass(frozen=True)
class Split:
    statements: tuple[str, ...]   # one DuckDB statement per object
    tag: str                      # PostgreSQL's command tag


def split_objects(stmt: Statement) -> Split | None:
    words = stmt.words(3)
    if len(words) >= 2 and words[0] == "DROP" and words[1] in _DROP_KINDS:
        return _drop(stmt, words[1])
    if words[:1] == ("TRUNCATE",):
        return _truncate(stmt)
    return None


def _drop(stmt: Statement, kind: str) -> Split | None:
    tokens = stmt.tokens
    i = 2
    if_exists = [t.text.upper() for t in tokens[2:4]] == ["IF", "EXISTS"]
    if if_exists:
        i = 4
    names, rest = _names(tokens[i:])
    if len(names) < 2:
        return None
    suffix = " " + " ".join(t.text.upper() for t in rest) if rest else ""
    head = f"DROP {kind} {'IF EXISTS ' if if_exists else ''}"
    return Split(tuple(head + _text(stmt, n) + suffix for n in names), f"DROP {kind}")


def _truncate(stmt: Statement) -> Split | None:
    tokens = stmt.tokens
    i = 1
    while i < len(tokens) and tokens[i].text.upper() in ("TABLE", "ONLY"):
        i += 1
    names, rest = _names(tokens[i:])
    if len(names) < 2:
        return None
    # RESTART/CONTINUE IDENTITY and CASCADE/RESTRICT: DuckDB's TRUNCATE takes none
    for tok in rest:
        if tok.text.upper() not in ("RESTART", "CONTINUE", "IDENTITY", "CASCADE", "RESTRICT"):
            return None
    return Split(tuple(f"TRUNCATE {_text(stmt, n)}" for n in names), "TRUNCATE TABLE")


def _names(tokens: tuple[Token, ...]) -> tuple[list[tuple[Token, ...]], tuple[Token, ...]]:
    """Comma-separated (possibly qualified) names, then the tokens after the last one."""
    names: list[tuple[Token, ...]] = []
    current: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.token_type is TokenType.COMMA:
            if not current:
                return [], tokens
            names.append(tuple(current))
            current = []
        elif tok.token_type is TokenType.DOT or not current or \
                current[-1].token_type is TokenType.DOT:
            current.append(tok)
        else:
            break
        i += 1
    if current:
        names.append(tuple(current))
    return names, tokens[i:]


def _text(stmt: Statement, name: tuple[Token, ...]) -> str:
    """A name as the client wrote it (quotes kept)."""
    start = name[0].start - stmt.offset
    end = name[-1].end - stmt.offset + 1
    return stmt.text[start:end]


def without_storage_parameters(stmt: Statement) -> tuple[str, str] | None:
    """``CREATE TABLE t (...) WITH (fillfactor = 70, ...)``: the text without the WITH
    clause (DuckDB has no storage parameters) and the notice to send, or None."""
    tokens = stmt.tokens
    words = [t.text.upper() for t in tokens[:6]]
    if not words or words[0] != "CREATE" or "TABLE" not in words:
        return None
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if depth == 0 and nxt is not None and nxt.text.upper() == "WITH" and \
                    after is not None and after.token_type is TokenType.L_PAREN:
                close = closing_paren(tokens, i + 2)
                if close is None:
                    return None
                start = nxt.start - stmt.offset
                end = tokens[close].end - stmt.offset + 1
                text = stmt.text[:start] + stmt.text[end:]
                ignored = stmt.text[after.start - stmt.offset:end]
                return text, f"storage parameters {ignored} ignored: DuckDB has none"
    return None
