"""SQL cursors: DECLARE / FETCH / MOVE / CLOSE, run (``server.sql.cursors`` reads them).

psycopg's server-side ("named") cursors and other clients declare a cursor
and fetch from it in pieces. DuckDB has no SQL cursors, so each declared
cursor gets its own DuckDB cursor (an independent connection to the same
database) streaming the query's Arrow batches; FETCH takes the next rows
from it, so a large result is never materialised. Cursors are forward-only
(SCROLL is refused with 0A000).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from server.errors import ServerError


@dataclass
class SqlCursor:
    cursor: duckdb.DuckDBPyConnection
    reader: pa.RecordBatchReader
    hold: bool
    pending: list[pa.RecordBatch] = field(default_factory=list)

    @property
    def schema(self) -> pa.Schema:
        return self.reader.schema

    def take(self, count: int | None) -> Iterator[pa.RecordBatch]:
        """The next ``count`` rows (all when None), batch by batch."""
        left = count
        while left is None or left > 0:
            if self.pending:
                batch = self.pending.pop()
            else:
                try:
                    batch = self.reader.read_next_batch()
                except StopIteration:
                    return
            if left is not None and batch.num_rows > left:
                self.pending.append(batch.slice(left))
                batch = batch.slice(0, left)
            if left is not None:
                left -= batch.num_rows
            yield batch

    def close(self) -> None:
        self.reader.close()
        self.cursor.close()


def missing(name: str) -> ServerError:
    return ServerError(f'cursor "{name}" does not exist', sqlstate="34000")
