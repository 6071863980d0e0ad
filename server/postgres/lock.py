"""PostgreSQL's ``LOCK [TABLE] [ONLY] name [*] [, ...] [IN mode MODE] [NOWAIT]``.

DuckDB has no table locks: a transaction reads one snapshot (what pg_dump's
``LOCK TABLE ... IN ACCESS SHARE MODE`` is for is a consistent read, which
DuckDB's MVCC gives). The statement is checked as PostgreSQL checks it: only
in a transaction block (25P01), each table must exist (42P01) and the user
needs SELECT on it for ACCESS SHARE mode, DELETE for the stronger modes
(42501). ``probes`` are the statements that check it: the session runs them
through the firewall and DuckDB, and nothing else happens.
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

    @property
    def probes(self) -> tuple[str, ...]:
        """Statements that need the privilege the lock needs and touch no row."""
        if self.mode == "ACCESS SHARE":
            return tuple(f"SELECT 1 FROM {t} LIMIT 0" for t in self.tables)
        return tuple(f"DELETE FROM {t} WHERE false" for t in self.tables)


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
