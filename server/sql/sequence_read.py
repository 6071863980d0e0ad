"""A sequence read as a relation, parsed: ``SELECT last_value, is_called FROM seq``.

PostgreSQL lets a sequence be read like a one-row table (pg_dump reads each
sequence's state that way). ``parse`` recognises the form (``SELECT`` of the
sequence columns, or ``*``, ``FROM`` one name, nothing else); whether the
name is a sequence, and the answer, are ``server.postgres.sequences``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import TokenType

from server.sql.text import Statement

# PostgreSQL's columns of a sequence relation
COLUMNS = ("last_value", "log_cnt", "is_called")


@dataclass(frozen=True)
class SequenceRead:
    schema: str | None      # None: unqualified
    name: str
    columns: tuple[str, ...]


def _name(tok_text: str, quoted: bool) -> str:
    return tok_text if quoted else tok_text.lower()


def parse(stmt: Statement) -> SequenceRead | None:
    tokens = stmt.tokens
    if not tokens or tokens[0].token_type is not TokenType.SELECT:
        return None
    i = 1
    columns: list[str] = []
    while i < len(tokens) and tokens[i].token_type is not TokenType.FROM:
        tok = tokens[i]
        if tok.token_type is TokenType.STAR:
            columns.extend(COLUMNS)
        elif tok.text.lower() in COLUMNS:
            columns.append(tok.text.lower())
        elif tok.token_type is not TokenType.COMMA:
            return None
        i += 1
    names = tokens[i + 1:]
    if not columns or not names:
        return None
    parts = [t for t in names if t.token_type is not TokenType.DOT]
    dots = len(names) - len(parts)
    if len(parts) > 2 or dots != len(parts) - 1 or \
            any(t.token_type not in (TokenType.VAR, TokenType.IDENTIFIER) for t in parts):
        return None
    quoted = [t.token_type is TokenType.IDENTIFIER for t in parts]
    idents = [_name(t.text, q) for t, q in zip(parts, quoted, strict=True)]
    schema = idents[0] if len(idents) == 2 else None
    return SequenceRead(schema, idents[-1], tuple(columns))
