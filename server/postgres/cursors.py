"""SQL cursors: DECLARE / FETCH / MOVE / CLOSE, run (``server.sql.cursors`` reads them).

psycopg's server-side ("named") cursors and other clients declare a cursor
and fetch from it in pieces. DuckDB has no SQL cursors, so each declared
cursor gets its own DuckDB cursor (an independent connection to the same
database) streaming the query's Arrow batches; FETCH takes the next rows
from it, so a large result is never materialised.

A ``SCROLL`` cursor moves both ways (``FETCH PRIOR | FIRST | LAST | ABSOLUTE n |
RELATIVE n | BACKWARD [n | ALL]`` and ``MOVE`` alike): its result is read whole
when it is declared (as PostgreSQL keeps a scrollable cursor's rows) and the
position moves over it as PostgreSQL's does. A cursor declared without SCROLL
moves forward only; a direction that would move it back fails with 55000, as in
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from server.errors import ServerError
from server.sql.cursors import Fetch


@dataclass
class SqlCursor:
    """A forward-only cursor: the query's batches as DuckDB streams them."""
    cursor: duckdb.DuckDBPyConnection
    reader: pa.RecordBatchReader
    hold: bool
    pending: list[pa.RecordBatch] = field(default_factory=list)
    position: int = 0    # rows read so far

    @property
    def schema(self) -> pa.Schema:
        return self.reader.schema

    def fetch(self, fetch: Fetch) -> Iterator[pa.RecordBatch]:
        count = fetch.count
        if fetch.direction == "forward" and count != 0:
            return self.take(count)
        ahead = None   # rows to move forward to the wanted row, if it is ahead
        if fetch.direction == "relative" and count is not None and count > 0:
            ahead = count
        elif fetch.direction == "absolute" and count is not None and count > self.position:
            ahead = count - self.position
        if ahead is not None:
            skipped = sum(b.num_rows for b in self.take(ahead - 1))
            return self.take(1) if skipped == ahead - 1 else iter(())
        raise ServerError("cursor can only scan forward", sqlstate="55000",
                          hint="Declare it with SCROLL option to enable backward scan.")

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
            self.position += batch.num_rows
            yield batch

    def close(self) -> None:
        self.reader.close()
        self.cursor.close()


@dataclass
class ScrollCursor:
    """A SCROLL cursor: its rows, and PostgreSQL's position over them (0: before the
    first row, 1..n: on a row, n + 1: after the last)."""
    table: pa.Table
    hold: bool
    position: int = 0

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def fetch(self, fetch: Fetch) -> Iterator[pa.RecordBatch]:
        rows = self.table.num_rows
        count = fetch.count
        match fetch.direction:
            case "absolute" | "relative":
                assert count is not None
                target = count if fetch.direction == "absolute" else self.position + count
                if fetch.direction == "absolute" and count < 0:
                    target = rows + 1 + count
                if 1 <= target <= rows:
                    self.position = target
                    return self._rows(target - 1, 1, backward=False)
                self.position = 0 if target < 1 else rows + 1
                return iter(())
            case "forward":
                if count == 0:   # the current row again
                    on_row = 1 <= self.position <= rows
                    return self._rows(self.position - 1, int(on_row), backward=False)
                first = self.position + 1
                last = rows if count is None else min(rows, self.position + count)
                self.position = rows + 1 if count is None or self.position + count > rows \
                    else self.position + count
                return self._rows(first - 1, max(0, last - first + 1), backward=False)
            case _:
                if count == 0:
                    on_row = 1 <= self.position <= rows
                    return self._rows(self.position - 1, int(on_row), backward=False)
                first = min(self.position - 1, rows)      # the row before the position
                last = 1 if count is None else max(1, self.position - count)
                self.position = 0 if count is None or self.position - count < 1 \
                    else self.position - count
                return self._rows(last - 1, max(0, first - last + 1), backward=True)

    def _rows(self, start: int, length: int, backward: bool) -> Iterator[pa.RecordBatch]:
        if length <= 0:
            return iter(())
        part = self.table.slice(start, length)
        if backward:
            part = part.take(pa.array(range(length - 1, -1, -1)))
        return iter(part.to_batches())

    def close(self) -> None:
        self.table = self.table.slice(0, 0)


def missing(name: str) -> ServerError:
    return ServerError(f'cursor "{name}" does not exist', sqlstate="34000")
