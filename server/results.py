"""What executing one statement produces, before wire encoding.

``Rows``: a small, already-materialised result (ML statements). ``Stream``:
an Arrow record-batch reader that the connection encodes batch by batch, so
large results never materialise on the server. ``Command``: a tag only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa


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


Result = Rows | Stream | Command
