"""SQL over DuckDB's catalog about sequences, shared by the PostgreSQL emulation
(``server.postgres.ddl``: which sequences a table owns) and the privilege checks
(``server.security.privileges``: which tables a sequence feeds)."""

from __future__ import annotations


def default_uses(default: str, name: str) -> str:
    """A condition: the column default ``default`` (an SQL expression, as
    ``duckdb_columns().column_default`` holds it: ``nextval('s')``,
    ``nextval('main.s')``, ``nextval('"S"')``) takes its values from the sequence named
    by the SQL expression ``name``."""
    unquoted = f"replace({default}, '\"', '')"
    return (f"({default} LIKE 'nextval(%' AND (contains({unquoted}, chr(39) || {name} "
            f"|| chr(39)) OR contains({unquoted}, '.' || {name} || chr(39))))")
