"""PostgreSQL's ``LOCK [TABLE] [ONLY] name [*] [, ...] [IN mode MODE] [NOWAIT]``, parsed.

What the statement does in QuackML (it checks, and locks nothing) is
``server.postgres.lock``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import TokenType

from server.errors import SyntaxError_
from server.sql.text import Statement

_MODES = {"ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
          "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}


@dataclass(frozen=True)
class Lock:
    tables: tuple[str, ...]     # as written (qualified, quoted)
    mode: str                   # upper case, e.g. "ACCESS SHARE"


def parse(stmt: Statement) -> Lock | None:
    """The LOCK statement, or None for any other statement."""
    tokens = stmt.tokens
    if not tokens or tokens[0].token_type is not TokenType.LOCK:
        return None
    i = 1
    if i < len(tokens) and tokens[i].text.upper() == "TABLE":
        i += 1
    tables: list[str] = []
    current: list[str] = []
    while i < len(tokens) and tokens[i].text.upper() not in ("IN", "NOWAIT"):
        tok = tokens[i]
        if tok.token_type is TokenType.COMMA:
            tables.append("".join(current))
            current = []
        elif tok.token_type is TokenType.ONLY or tok.token_type is TokenType.STAR:
            pass   # no inheritance in DuckDB: ONLY and * change nothing
        else:
            current.append(stmt.text[tok.start - stmt.offset:tok.end - stmt.offset + 1])
        i += 1
    tables.append("".join(current))
    mode = "ACCESS EXCLUSIVE"   # PostgreSQL's default
    if i < len(tokens) and tokens[i].text.upper() == "IN":
        words = []
        i += 1
        while i < len(tokens) and tokens[i].text.upper() != "MODE":
            words.append(tokens[i].text.upper())
            i += 1
        mode = " ".join(words)
        if i >= len(tokens) or mode not in _MODES:
            raise SyntaxError_(f"syntax error in lock mode: {mode or 'missing'}")
        i += 1
    if i < len(tokens) and tokens[i].text.upper() == "NOWAIT":
        i += 1
    if i < len(tokens) or not all(tables):
        raise SyntaxError_("syntax error in LOCK statement")
    return Lock(tuple(tables), mode)
