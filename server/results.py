"""What executing one statement produces, before wire encoding.

``Rows``: a small, already-materialised result (ML statements). ``Stream``:
an Arrow record-batch reader that the connection encodes batch by batch, so
large results never materialise on the server. ``Command``: a tag only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from server.sql.copy_spec import CopySpec


@dataclass(frozen=True)
class Column:
    name: str
    oid: int


@dataclass
class Rows:
    columns: Sequence[Column]
    rows: Sequence[Sequence[str | None]]
    tag: str
    notices: Sequence[str] = field(default_factory=tuple)


@dataclass
class Stream:
    reader: pa.RecordBatchReader
    tag_prefix: str = "SELECT"


@dataclass
class Command:
    tag: str
    notices: Sequence[str] = field(default_factory=tuple)
    # ParameterStatus messages to send (name, value), e.g. after SET DateStyle
    status: Sequence[tuple[str, str]] = field(default_factory=tuple)


@dataclass
class CopyIn:
    """COPY FROM STDIN: the connection collects CopyData into ``path``, then
    calls ``Session.copy_from``."""
    spec: CopySpec
    columns: int
    oids: tuple[int, ...] = ()    # column types, for the binary format
    types: tuple[str, ...] = ()   # DuckDB column types, for conversions
    names: tuple[str, ...] = ()   # column names, for errors


@dataclass
class CopyOut:
    """COPY TO STDOUT: the rows, streamed from ``reader`` in the spec's format."""
    spec: CopySpec
    columns: int
    reader: pa.RecordBatchReader


@dataclass
class Deallocate:
    """DEALLOCATE of protocol-level prepared statements (held by the connection)."""
    name: str | None   # None: ALL


Result = Rows | Stream | Command | CopyIn | CopyOut | Deallocate
