"""Result column types as PostgreSQL gives them, where DuckDB's Arrow export loses them.

DuckDB exports a result as Arrow, and the wire codec picks each column's type
OID from its Arrow type (``server.protocol.types.pg_type_for_arrow``). Three
DuckDB types leave Arrow as something else than their PostgreSQL counterpart,
so their columns are re-typed here from the DuckDB type names of the result:

- ``UUID`` leaves as a string: re-typed as Arrow's ``arrow.uuid`` extension
  (sent as ``uuid``, OID 2950), converted column-wise, never value by value;
- ``JSON`` leaves as a string: wrapped, without a copy, as ``arrow.json``
  (sent as ``json``, OID 114; DuckDB has one JSON type: what the statement
  shows to be ``jsonb`` is sent as ``jsonb``, see below);
- ``HUGEINT`` (DuckDB's ``sum()`` of any integer type) leaves as
  ``decimal(38,0)``: sent as ``bigint`` (OID 20), as PostgreSQL's ``sum`` of
  ``smallint`` and ``integer`` is; a sum that does not fit a ``bigint`` is
  22003, as in PostgreSQL. (PostgreSQL's ``sum(bigint)`` is ``numeric``:
  DuckDB's sum does not tell the two apart.)

- ``DECIMAL(38,10)``, what ``numeric`` without a type modifier is here
  (``server.postgres.functions.UNCONSTRAINED_NUMERIC``), is sent as
  ``numeric`` without a type modifier and its values as text without
  trailing zeros (PostgreSQL keeps the scale each value came with:
  ``1.50::numeric`` is ``1.50`` there, ``1.5`` here).

Columns whose PostgreSQL type DuckDB's type cannot tell (``jsonb``, the
``integer`` of ``ntile()``, ``regtype``, information_schema's ``name``...) get the
type ``server.postgres.exprtypes`` reads from the statement (``declared``).

DuckDB's ``arrow_lossless_conversion`` setting exports UUID and JSON as
these extensions too, but also turns HUGEINT, TIMETZ and BIT into opaque
binaries every other Arrow consumer of the server would have to learn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import ServerError
from server.postgres import functions
from server.protocol.codec import decimal_text
from server.protocol.types import PG_OID_KEY, Oid

_Convert = Callable[[pa.Array], pa.Array]

# ASCII hex digit -> its value (other bytes never occur: DuckDB writes UUIDs itself)
_HEX = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = _i + 10
_NULL_UUID = "00000000-0000-0000-0000-000000000000"


def _uuid(arr: pa.Array) -> pa.Array:
    """Canonical UUID strings (36 characters each) -> ``arrow.uuid``."""
    hex32 = pc.replace_substring(pc.fill_null(arr.cast(pa.string()), _NULL_UUID), "-", "")
    n = len(hex32)
    offsets = np.frombuffer(hex32.buffers()[1], dtype=np.int32)[hex32.offset:hex32.offset + n + 1]
    data = np.frombuffer(hex32.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]] \
        if n else np.zeros(0, dtype=np.uint8)
    nibbles = _HEX[data].reshape(-1, 2)
    raw = (nibbles[:, 0] << 4) | nibbles[:, 1]
    storage = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n,
                                                   [None, pa.py_buffer(raw.tobytes())])
    if arr.null_count:
        storage = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.binary(16)), storage)
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _json(arr: pa.Array) -> pa.Array:
    return pa.ExtensionArray.from_storage(pa.json_(pa.string()), arr.cast(pa.string()))


def _bigint(arr: pa.Array) -> pa.Array:
    try:
        return arr.cast(pa.int64())
    except pa.ArrowInvalid:
        raise ServerError("bigint out of range", sqlstate="22003") from None


def _numeric_text(arr: pa.Array) -> pa.Array:
    """Decimals as their text without trailing zeros (``2.5000000000`` -> ``2.5``)."""
    text = pc.replace_substring_regex(decimal_text(arr), r"(\.[0-9]*?)0+$", r"\1")
    return pc.replace_substring_regex(text, r"\.$", "")


_NUMERIC_FIELD = {PG_OID_KEY: str(int(Oid.NUMERIC)).encode()}
_CONVERT: dict[str, tuple[_Convert, pa.DataType]] = {
    "UUID": (_uuid, pa.uuid()),
    "JSON": (_json, pa.json_(pa.string())),
    "HUGEINT": (_bigint, pa.int64()),
    functions.UNCONSTRAINED_NUMERIC: (_numeric_text, pa.string()),
}


def _int4(arr: pa.Array) -> pa.Array:
    try:
        return arr.cast(pa.int32())
    except pa.ArrowInvalid:
        raise ServerError("integer out of range", sqlstate="22003") from None


def _text(arr: pa.Array) -> pa.Array:
    return arr.cast(pa.string())


def _field_oid(oid: Oid) -> dict[bytes, bytes]:
    return {PG_OID_KEY: str(int(oid)).encode()}


# statement-derived types (server.postgres.exprtypes): how the column of DuckDB's type
# is converted, its Arrow type, and the OID named in the field's metadata (if any)
_DECLARED: dict[Oid, tuple[_Convert, pa.DataType, dict[bytes, bytes] | None]] = {
    Oid.JSONB: (_json, pa.json_(pa.string()), _field_oid(Oid.JSONB)),
    Oid.INT4: (_int4, pa.int32(), None),
    Oid.REGTYPE: (_text, pa.string(), _field_oid(Oid.REGTYPE)),
    Oid.NAME: (_text, pa.string(), _field_oid(Oid.NAME)),
    Oid.VARCHAR: (_text, pa.string(), _field_oid(Oid.VARCHAR)),
    Oid.BPCHAR: (_text, pa.string(), _field_oid(Oid.BPCHAR)),
    Oid.FLOAT8: (lambda arr: arr.cast(pa.float64()), pa.float64(), None),
}


def pg_typed(reader: pa.RecordBatchReader, duckdb_types: Sequence[object],
             declared: Sequence[Oid | None] | None = None) -> pa.RecordBatchReader:
    """The reader with the columns of ``duckdb_types`` (DuckDB's type of each column,
    as the result's description gives it) that Arrow mistypes re-typed, and those
    ``declared`` (``server.postgres.exprtypes.pg_types``: PostgreSQL's type read from
    the statement) sent as that type; the reader itself when there is none (the usual
    case)."""
    if len(duckdb_types) != len(reader.schema):
        return reader
    todo: dict[int, tuple[_Convert, pa.DataType, dict[bytes, bytes] | None]] = {}
    for i, t in enumerate(duckdb_types):
        oid = declared[i] if declared is not None and i < len(declared) else None
        if oid is not None:
            todo[i] = _DECLARED[oid]
        elif str(t) in _CONVERT:
            convert, arrow_type = _CONVERT[str(t)]
            todo[i] = (convert, arrow_type,
                       _NUMERIC_FIELD if str(t) == functions.UNCONSTRAINED_NUMERIC else None)
    if not todo:
        return reader
    schema = reader.schema
    for i, (_, arrow_type, metadata) in todo.items():
        field = schema.field(i).with_type(arrow_type)
        if metadata is not None:
            field = field.with_metadata(metadata)
        schema = schema.set(i, field)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            columns = list(batch.columns)
            for i, (convert, _, _) in todo.items():
                columns[i] = convert(columns[i])
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
