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
    # a qualifier is DuckDB's name of the schema or the one clients see (pg_namespace's)
    schema = "schema_name = current_schema()" if read.schema is None else \
        (f"{_literal(read.schema)} IN (schema_name, (SELECT first(n.nspname) "
         f"FROM quackml_pg.pg_namespace n WHERE n.oid = schema_oid))")
    return (f"SELECT {select} FROM duckdb_sequences() "
            f"WHERE database_name = current_database() AND {schema} "
            f"AND sequence_name = {_literal(read.name)}")


def column_oid(column: str) -> int:
    return int(_COLUMNS[column][1])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
