"""A sequence read as a relation: ``SELECT last_value, is_called FROM seq``.

PostgreSQL lets a sequence be read like a one-row table (pg_dump reads each
sequence's state that way); DuckDB has no such relation, but
``duckdb_sequences()`` has the state. ``parse`` recognises the statement
(``SELECT`` of the sequence columns, or ``*``, ``FROM`` one name, nothing
else) and ``SequenceRead.sql`` is the query over ``duckdb_sequences()``
that answers it; the session uses it only when the name is a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import TokenType

from server.sql.text import Statement

# PostgreSQL's columns of a sequence relation, over duckdb_sequences()
_COLUMNS = {"last_value": "coalesce(last_value, start_value)::BIGINT",
            "log_cnt": "0::BIGINT",
            "is_called": "last_value IS NOT NULL"}


@dataclass(frozen=True)
class SequenceRead:
    schema: str | None      # None: unqualified
    name: str
    columns: tuple[str, ...]

    def sql(self) -> str:
        """The query answering the read; no row when the name is no sequence."""
        select = ", ".join(f'{_COLUMNS[c]} AS "{c}"' for c in self.columns)
        schema = "current_schema()" if self.schema is None else _literal(self.schema)
        return (f"SELECT {select} FROM duckdb_sequences() "
                f"WHERE database_name = current_database() AND schema_name = {schema} "
                f"AND sequence_name = {_literal(self.name)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
            columns.extend(_COLUMNS)
        elif tok.text.lower() in _COLUMNS:
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
