"""A sequence read as a relation (``server.sql.sequence_read``), answered.

PostgreSQL's sequence relation has one row: ``last_value``, ``log_cnt``,
``is_called``. DuckDB has no such relation; ``duckdb_sequences()`` has the
state: ``last_value`` is NULL until the first ``nextval`` (PostgreSQL then
says the start value, not called).
"""

from __future__ import annotations

from server.protocol.types import Oid
from server.sql.sequence_read import SequenceRead

_COLUMNS = {"last_value": ("coalesce(last_value, start_value)::BIGINT", Oid.INT8),
            "log_cnt": ("0::BIGINT", Oid.INT8),
            "is_called": ("last_value IS NOT NULL", Oid.BOOL)}


def state_sql(read: SequenceRead) -> str:
    """The query answering the read: one row, or none when the name is no sequence."""
    select = ", ".join(f'{_COLUMNS[c][0]} AS "{c}"' for c in read.columns)
    schema = "current_schema()" if read.schema is None else _literal(read.schema)
    return (f"SELECT {select} FROM duckdb_sequences() "
            f"WHERE database_name = current_database() AND schema_name = {schema} "
            f"AND sequence_name = {_literal(read.name)}")


def column_oid(column: str) -> int:
    return int(_COLUMNS[column][1])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
