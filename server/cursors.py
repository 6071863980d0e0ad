"""SQL cursors: DECLARE / FETCH / MOVE / CLOSE, read from tokens.

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

from server.errors import ServerError, SyntaxError_
from server.sql.text import Statement, split


@dataclass(frozen=True)
class Declare:
    name: str
    query: Statement
    hold: bool
    scroll: bool = False


@dataclass(frozen=True)
class Fetch:
    name: str
    count: int | None     # rows (negative: backward); None: ALL forward, see ``direction``
    move: bool            # MOVE: skip rows, return none
    # forward (count rows; None: ALL), backward (count rows; None: ALL), absolute or
    # relative (count is the position)
    direction: str = "forward"


@dataclass(frozen=True)
class CloseCursor:
    name: str | None      # None: ALL


CursorStatement = Declare | Fetch | CloseCursor


def parse(stmt: Statement) -> CursorStatement | None:
    words = stmt.words(1)
    if not words or words[0] not in ("DECLARE", "FETCH", "MOVE", "CLOSE"):
        return None
    tokens = stmt.tokens
    texts = [t.text for t in tokens]
    upper = [t.upper() for t in texts]
    if upper[0] == "CLOSE":
        if len(texts) != 2:
            raise SyntaxError_("CLOSE needs a cursor name or ALL")
        return CloseCursor(None if upper[1] == "ALL" else texts[1])
    if upper[0] == "DECLARE":
        if "CURSOR" not in upper or len(texts) < 2:
            return None   # not a cursor declaration: let DuckDB report it
        options = upper[2:upper.index("CURSOR")]
        scroll = "SCROLL" in options and "NO" not in options
        rest = upper[upper.index("CURSOR") + 1:]
        hold = rest[:2] == ["WITH", "HOLD"]
        for_at = upper.index("FOR", upper.index("CURSOR"))
        query_start = tokens[for_at].end + 1 - stmt.offset
        inner = split(stmt.text[query_start:])
        if len(inner) != 1:
            raise SyntaxError_("DECLARE CURSOR needs one query after FOR")
        return Declare(texts[1], inner[0], hold, scroll)
    # FETCH / MOVE [direction] [count] [FROM | IN] name
    move = upper[0] == "MOVE"
    if len(texts) < 2:
        raise SyntaxError_(f"{upper[0]} needs a cursor name")
    name = texts[-1]
    body = upper[1:-1]
    if body and body[-1] in ("FROM", "IN"):
        body = body[:-1]
    direction, count = _direction(body, upper[0])
    return Fetch(name, count, move, direction)


def _direction(body: list[str], verb: str) -> tuple[str, int | None]:
    """(direction, count) of FETCH's words between the verb and the cursor name."""
    words = list(body)
    if len(words) >= 2 and words[-2] in ("-", "+"):   # a signed count: two tokens
        words[-2:] = [words[-2].replace("+", "") + words[-1]]
    head = words[0] if words else ""
    number = words[1] if len(words) == 2 else None

    def integer(word: str | None) -> int:
        try:
            return int(word or "")
        except ValueError:
            raise SyntaxError_(f"{verb} {' '.join(body)}: a count is needed") from None

    match words:
        case [] | ["NEXT"] | ["FORWARD"]:
            return "forward", 1
        case ["PRIOR"] | ["BACKWARD"]:
            return "backward", 1
        case ["FIRST"]:
            return "absolute", 1
        case ["LAST"]:
            return "absolute", -1
        case ["ALL"] | ["FORWARD", "ALL"]:
            return "forward", None
        case ["BACKWARD", "ALL"]:
            return "backward", None
        case ["ABSOLUTE" | "RELATIVE", _]:
            return head.lower(), integer(number)
        case ["FORWARD" | "BACKWARD", _]:
            n = integer(number)
            return ("forward", n) if (head == "FORWARD") == (n >= 0) else ("backward", abs(n))
        case [_]:
            n = integer(head)
            return ("forward", n) if n >= 0 else ("backward", -n)
    raise SyntaxError_(f"{verb} {' '.join(body)} is not a FETCH direction")


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
