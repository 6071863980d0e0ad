"""Bulk encoding of Arrow record batches into PostgreSQL DataRow messages.

Role: the hot path of every result. ``batch_encoder(schema, formats)`` decides
once per result set how each column is sent (type OID, text or binary) and
``BatchEncoder.encode(batch)`` turns a whole ``pyarrow.RecordBatch`` into the
concatenated DataRow messages for its rows.

How: each column is converted once per batch, with Arrow compute kernels and
numpy, into an Arrow binary array holding the wire bytes of every value
(text: what PostgreSQL's output function prints with DateStyle ISO,
IntervalStyle postgres, TimeZone UTC, extra_float_digits 1; binary: the
PostgreSQL binary send format). The DataRow framing (tag, length, column
count, per-value length prefix) is built with numpy and the rows are
assembled by a single ``binary_join_element_wise`` call. There is no
per-value Python work for booleans, integers, floats, decimals, strings,
bytea, uuid, dates, times, timestamps and their lists; intervals, durations,
structs and maps are formatted value by value (rarely bulk data), unions as
their members' text.

Invariants:

- No socket, no ``duckdb`` import.
- ``encode`` returns exactly ``batch.num_rows`` DataRow messages, in order;
  SQL NULL is a -1 length.
- A column whose type has no binary encoder is sent as text even when binary
  was asked for, and its ``Field.format`` says 0, so clients decode it right.
"""

from __future__ import annotations

import decimal
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.protocol.messages import Field
from server.protocol.types import (
    PG_EPOCH_DAYS,
    PG_EPOCH_US,
    PG_OID_KEY,
    Oid,
    encode_numeric_binary,
    pg_type_for_arrow,
    pg_type_len,
    vector_oid,
)

__all__ = ["BatchEncoder", "FormatCodeError", "batch_encoder", "decimal_text", "pg_float_text"]

#: An encoder of one column: Arrow array -> binary array of wire values (nulls kept).
ValueEncoder = Callable[[pa.Array], pa.Array]

_MAX_JOIN = 2**31 - 2**20  # int32 offsets of the joined array, with headroom
_YEAR1_DAYS = -719162  # 0001-01-01 as days since 1970-01-01
_YEAR1_US = _YEAR1_DAYS * 86_400_000_000


class FormatCodeError(Exception):
    """Result format codes that do not fit the result (an error, not fatal)."""

    def __init__(self, message: str, *, sqlstate: str = "08P01") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail: str | None = None
        self.hint: str | None = None
        self.position: int | None = None


# --------------------------------------------------------------------------
# Small Arrow/numpy helpers


def _offsets(arr: pa.Array) -> np.ndarray:
    """The int32 offsets (len + 1) of a string/binary array, honouring its slice offset."""
    return np.frombuffer(
        arr.buffers()[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4
    )


def values_bytes(arr: pa.Array) -> memoryview:
    """The bytes of all values of a string/binary array, back to back."""
    off = _offsets(arr)
    return memoryview(arr.buffers()[2])[off[0] : off[-1]]


def _as_binary(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_binary(t):
        return arr
    if pa.types.is_string(t):
        return arr.view(pa.binary())
    return pc.cast(arr, pa.binary())


def _validity(arr: pa.Array) -> pa.Buffer | None:
    if arr.null_count == 0:
        return None
    return pc.is_valid(arr).buffers()[1]


@functools.lru_cache(maxsize=64)
def _fixed_offsets(width: int, n: int) -> pa.Buffer:
    return pa.py_buffer(np.arange(0, width * n + 1, width, dtype=np.int32))


def _fixed_binary(
    data: bytes | np.ndarray, width: int, n: int, validity: pa.Buffer | None, null_count: int = 0
) -> pa.Array:
    """A binary array of ``n`` values of ``width`` bytes each from a packed buffer."""
    buf = pa.py_buffer(data)
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, _fixed_offsets(width, n), buf], null_count=null_count
    )


def _string_array(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


def _per_value(arr: pa.Array, fn: Callable[[object], str]) -> pa.Array:
    """Text by calling ``fn`` for each non-null value (slow path for rare types)."""
    return _string_array([None if v is None else fn(v) for v in arr.to_pylist()])


def _fix_up(text: pa.Array, mask: np.ndarray, fn: Callable[[int], str]) -> pa.Array:
    """Replace the values of ``text`` where ``mask`` is set by ``fn(index)``."""
    if not mask.any():
        return text
    idx = np.flatnonzero(mask)
    repl = _string_array([fn(int(i)) for i in idx])
    return pc.replace_with_mask(text, pa.array(mask), repl)


# --------------------------------------------------------------------------
# Text format

_HEX_TABLE = np.frombuffer(
    b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8
).reshape(256, 2)


def pg_float_text(x: float, single: bool = False) -> str:
    """PostgreSQL's float4out/float8out (shortest round-trip digits, %g-style layout)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    r = str(np.float32(x)) if single else repr(float(x))
    sign, digit_t, exp = decimal.Decimal(r).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_t)).lstrip("0")
    if not digits:
        return "-0" if sign else "0"
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    digits = stripped
    sci = len(digits) + exp - 1
    hi = 6 if single else 15
    if -4 <= sci < hi:
        if exp >= 0:
            out = digits + "0" * exp
        else:
            point = len(digits) + exp
            out = (
                digits[:point] + "." + digits[point:]
                if point > 0
                else "0." + "0" * (-point) + digits
            )
    else:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        out = f"{mant}e{'-' if sci < 0 else '+'}{abs(sci):02d}"
    return "-" + out if sign else out


def _text_float(arr: pa.Array) -> pa.Array:
    single = not pa.types.is_float64(arr.type)
    if pa.types.is_float16(arr.type):
        arr = pc.cast(arr, pa.float32())
    text = pc.cast(arr, pa.string())
    vals = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    mag = np.abs(vals)
    lo, hi = (np.float32(1e-4), np.float32(1e6)) if single else (1e-4, 1e15)
    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(vals) | ((mag != 0) & ((mag < lo) | (mag >= hi)))
    # Arrow switches to exponent notation by its own rules: re-render those too.
    mask |= pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    if arr.null_count:
        mask &= pc.is_valid(arr).to_numpy(zero_copy_only=False)
    return _fix_up(text, mask, lambda i: pg_float_text(float(vals[i]), single))


def _text_bool(arr: pa.Array) -> pa.Array:
    return pc.if_else(arr, "t", "f")


def _text_cast(arr: pa.Array) -> pa.Array:
    return pc.cast(arr, pa.string())


def decimal_text(arr: pa.Array) -> pa.Array:
    """numeric_out: Arrow writes small decimals and zeros of a large scale with an
    exponent (``0E-10``, ``1.0E-7``); PostgreSQL writes every digit of the scale."""
    text = pc.cast(arr, pa.string())
    mask = pc.fill_null(pc.match_substring(text, "E"), False).to_numpy(zero_copy_only=False)
    values = arr.to_pylist() if mask.any() else []
    return _fix_up(text, mask, lambda i: format(values[i], "f"))


def _text_string(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    return pc.cast(arr, pa.string())


def _text_bytea(arr: pa.Array) -> pa.Array:
    arr = _as_binary(arr)
    n = len(arr)
    off = _offsets(arr).astype(np.int64)
    data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)[off[0] : off[-1]]
    hexdata = _HEX_TABLE[data].tobytes()
    hex_arr = pa.Array.from_buffers(
        pa.string(),
        n,
        [
            _validity(arr),
            pa.py_buffer((2 * (off - off[0])).astype(np.int32)),
            pa.py_buffer(hexdata),
        ],
        null_count=arr.null_count,
    )
    return pc.binary_join_element_wise(pa.scalar("\\x"), hex_arr, "")


def _text_uuid(arr: pa.Array) -> pa.Array:
    storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    n = len(storage)
    raw = np.frombuffer(
        storage.buffers()[1], dtype=np.uint8, count=16 * n, offset=16 * storage.offset
    ).reshape(n, 16)
    hexed = _HEX_TABLE[raw].reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        out[:, dst : dst + width] = hexed[:, src : src + width]
    return _fixed_binary(out.tobytes(), 36, n, _validity(storage), storage.null_count).view(
        pa.string()
    )


def _bc_fix(s: str) -> str:
    """Arrow prints astronomical years ('-0044-03-15'); PostgreSQL prints '0045-03-15 BC'."""
    year_end = s.index("-", 1)
    year = int(s[:year_end])
    return f"{1 - year:04d}{s[year_end:]} BC"


def _trim_fraction(text: pa.Array) -> pa.Array:
    # The input always has a 6-digit fraction: strip its trailing zeros, then the dot.
    return pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), ".")


def _text_date(arr: pa.Array) -> pa.Array:
    if pa.types.is_date64(arr.type):
        arr = pc.cast(arr, pa.date32())
    text = pc.cast(arr, pa.string())
    days = pc.fill_null(arr.view(pa.int32()), 0).to_numpy(zero_copy_only=False)
    mask = days < _YEAR1_DAYS
    return _fix_up(text, mask, lambda i: _bc_fix(text[i].as_py()))


def _to_us(arr: pa.Array) -> pa.Array:
    t = arr.type
    if t.unit == "us" and t.tz is None:
        return arr
    return pc.cast(arr, pa.timestamp("us"), safe=False)


def _text_timestamp(arr: pa.Array) -> pa.Array:
    tz = arr.type.tz is not None
    us = _to_us(arr)
    text = _trim_fraction(pc.cast(us, pa.string()))
    if tz:
        text = pc.binary_join_element_wise(text, pa.scalar("+00"), "")
    raw = pc.fill_null(us.view(pa.int64()), 0).to_numpy(zero_copy_only=False)
    mask = raw < _YEAR1_US
    return _fix_up(text, mask, lambda i: _bc_fix(text[i].as_py()))


def _text_time(arr: pa.Array) -> pa.Array:
    us = pc.cast(arr, pa.time64("us"), safe=False)
    return _trim_fraction(pc.cast(us, pa.string()))


def _interval_text(months: int, days: int, us: int) -> str:
    """PostgreSQL's interval_out with IntervalStyle 'postgres'."""
    parts: list[str] = []
    is_before = False
    years, mons = abs(months) // 12, abs(months) % 12
    if months < 0:
        years, mons = -years, -mons
    for value, unit in ((years, "year"), (mons, "mon"), (days, "day")):
        if value == 0:
            continue
        plus = "+" if is_before and value > 0 else ""
        parts.append(f"{plus}{value} {unit}{'' if value == 1 else 's'}")
        is_before = value < 0
    if not parts or us != 0:
        minus = us < 0
        a = abs(us)
        secs, frac = divmod(a, 1_000_000)
        hours, rem = divmod(secs, 3600)
        mins, s = divmod(rem, 60)
        sign = "-" if minus else ("+" if is_before else "")
        clock = f"{sign}{hours:02d}:{mins:02d}:{s:02d}"
        if frac:
            clock += f".{frac:06d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def _text_interval(arr: pa.Array) -> pa.Array:
    n = len(arr)
    raw = np.frombuffer(
        arr.buffers()[1],
        dtype=np.dtype([("m", "<i4"), ("d", "<i4"), ("ns", "<i8")]),
        count=n,
        offset=16 * arr.offset,
    )
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    return _string_array(
        [
            _interval_text(int(r["m"]), int(r["d"]), int(r["ns"]) // 1000) if ok else None
            for r, ok in zip(raw, valid, strict=True)
        ]
    )


def _text_duration(arr: pa.Array) -> pa.Array:
    us = pc.cast(arr, pa.duration("us"), safe=False)
    vals = pc.fill_null(us.view(pa.int64()), 0).to_numpy(zero_copy_only=False)
    valid = pc.is_valid(us).to_numpy(zero_copy_only=False)
    out: list[str | None] = []
    for v, ok in zip(vals.tolist(), valid.tolist(), strict=True):
        if not ok:
            out.append(None)
            continue
        days = int(v / 86_400_000_000)  # truncate toward zero, as PostgreSQL justifies
        out.append(_interval_text(0, days, v - days * 86_400_000_000))
    return _string_array(out)


def _jsonable(v: object) -> object:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # a map
            return {str(k): _jsonable(x) for k, x in v}
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return str(v)


def _map_json(v: object) -> str:
    assert isinstance(v, list)  # a map value is a list of (key, value) pairs
    return json.dumps({str(k): _jsonable(x) for k, x in v}, ensure_ascii=False)


def _text_json(arr: pa.Array) -> pa.Array:
    if pa.types.is_map(arr.type):
        return _per_value(arr, _map_json)
    return _per_value(arr, lambda v: json.dumps(_jsonable(v), ensure_ascii=False))


_NEEDS_QUOTE = r'^$|[{}",\\ \t\n\r\f\x0b]|^[nN][uU][lL][lL]$'


def _as_list(arr: pa.Array) -> pa.ListArray:
    if pa.types.is_list(arr.type):
        return arr
    return pc.cast(arr, pa.list_(arr.type.value_type))


def _list_parts(arr: pa.Array) -> tuple[pa.ListArray, pa.Array, np.ndarray]:
    """(list array, its elements, offsets rebased to 0) of a list-like array."""
    lst = _as_list(arr)
    off = _offsets(lst)
    elems = lst.values.slice(int(off[0]), int(off[-1] - off[0]))
    return lst, elems, off - off[0]


def _text_list(elem_encoder: ValueEncoder, quote: bool) -> ValueEncoder:
    def encode(arr: pa.Array) -> pa.Array:
        lst, elems, off = _list_parts(arr)
        ev = elem_encoder(elems)
        if quote:
            need = pc.fill_null(pc.match_substring_regex(ev, _NEEDS_QUOTE), False)
            escaped = pc.replace_substring_regex(ev, r'(["\\])', r"\\\1")
            quoted = pc.binary_join_element_wise(pa.scalar('"'), escaped, pa.scalar('"'), "")
            ev = pc.if_else(need, quoted, ev)
        ev = pc.fill_null(ev, "NULL")
        mask = pc.is_null(lst) if lst.null_count else None
        rebuilt = pa.ListArray.from_arrays(pa.array(off, pa.int32()), ev, mask=mask)
        joined = pc.binary_join(rebuilt, ",")
        return pc.binary_join_element_wise(pa.scalar("{"), joined, pa.scalar("}"), "")

    return encode


def _text_vector(elem_encoder: ValueEncoder) -> ValueEncoder:
    """int2vector and friends (``types.VECTORS``): the elements separated by spaces."""
    def encode(arr: pa.Array) -> pa.Array:
        lst, elems, off = _list_parts(arr)
        ev = pc.fill_null(elem_encoder(elems), "")
        mask = pc.is_null(lst) if lst.null_count else None
        rebuilt = pa.ListArray.from_arrays(pa.array(off, pa.int32()), ev, mask=mask)
        return pc.binary_join(rebuilt, " ")

    return encode


def _text_null(arr: pa.Array) -> pa.Array:
    return pa.nulls(len(arr), pa.string())


def _is_list(t: pa.DataType) -> bool:
    pt = pa.types
    return bool(
        pt.is_list(t)
        or pt.is_large_list(t)
        or pt.is_fixed_size_list(t)
        or pt.is_list_view(t)
        or pt.is_large_list_view(t)
    )


def _unwrap(enc: ValueEncoder, how: Callable[[pa.Array], pa.Array]) -> ValueEncoder:
    return lambda arr: enc(how(arr))


def text_encoder(t: pa.DataType) -> ValueEncoder:
    """The text-format encoder for an Arrow type (every type has one)."""
    pt = pa.types
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return _text_uuid
        return _unwrap(text_encoder(t.storage_type), lambda a: a.storage)
    if pt.is_dictionary(t):
        return _unwrap(text_encoder(t.value_type), lambda a: a.dictionary_decode())
    if pt.is_boolean(t):
        return _text_bool
    if pt.is_decimal(t):
        return decimal_text
    if pt.is_integer(t):
        return _text_cast
    if pt.is_floating(t):
        return _text_float
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t):
        return _text_string
    if (
        pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_binary_view(t)
        or pt.is_fixed_size_binary(t)
    ):
        return _text_bytea
    if pt.is_date(t):
        return _text_date
    if pt.is_timestamp(t):
        return _text_timestamp
    if pt.is_time(t):
        return _text_time
    if t == pa.month_day_nano_interval():
        return _text_interval
    if pt.is_duration(t):
        return _text_duration
    if vector_oid(t) is not None:
        return _text_vector(text_encoder(t.value_type))
    if _is_list(t):
        inner = t.value_type
        return _text_list(text_encoder(inner), quote=not _is_list(inner))
    if pt.is_null(t):
        return _text_null
    if pt.is_union(t):
        return _text_union
    return _text_json


def _text_union(arr: pa.Array) -> pa.Array:
    """A union value is sent as its member's text, as DuckDB casts it to VARCHAR
    (PostgreSQL has no unions; a regproc-like catalog column is one)."""
    t = arr.type
    members = [text_encoder(t.field(i).type)(arr.field(i)).to_pylist()
               for i in range(t.num_fields)]
    member_of = {code: i for i, code in enumerate(t.type_codes)}
    codes = arr.type_codes.to_pylist()
    positions = arr.offsets.to_pylist() if t.mode == "dense" else range(len(arr))
    return _string_array([members[member_of[c]][p]
                          for c, p in zip(codes, positions, strict=True)])


# --------------------------------------------------------------------------
# Binary format


def _numeric_be(np_type: str, width: int, cast: pa.DataType | None = None) -> ValueEncoder:
    def encode(arr: pa.Array) -> pa.Array:
        if cast is not None:
            arr = pc.cast(arr, cast)
        vals = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        data = vals.astype(np_type, copy=False).tobytes()
        return _fixed_binary(data, width, len(arr), _validity(arr), arr.null_count)

    return encode


def _bin_bool(arr: pa.Array) -> pa.Array:
    vals = pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return _fixed_binary(vals.tobytes(), 1, len(arr), _validity(arr), arr.null_count)


def _bin_date(arr: pa.Array) -> pa.Array:
    if pa.types.is_date64(arr.type):
        arr = pc.cast(arr, pa.date32())
    days = pc.fill_null(arr.view(pa.int32()), 0).to_numpy(zero_copy_only=False)
    data = (days.astype(np.int64) - PG_EPOCH_DAYS).astype(">i4").tobytes()
    return _fixed_binary(data, 4, len(arr), _validity(arr), arr.null_count)


def _bin_timestamp(arr: pa.Array) -> pa.Array:
    us = _to_us(arr)
    vals = pc.fill_null(us.view(pa.int64()), 0).to_numpy(zero_copy_only=False)
    data = (vals - PG_EPOCH_US).astype(">i8").tobytes()
    return _fixed_binary(data, 8, len(arr), _validity(arr), arr.null_count)


def _bin_time(arr: pa.Array) -> pa.Array:
    us = pc.cast(arr, pa.time64("us"), safe=False)
    vals = pc.fill_null(us.view(pa.int64()), 0).to_numpy(zero_copy_only=False)
    return _fixed_binary(vals.astype(">i8").tobytes(), 8, len(arr), _validity(arr), arr.null_count)


def _bin_interval(arr: pa.Array) -> pa.Array:
    n = len(arr)
    if pa.types.is_duration(arr.type):
        us = pc.fill_null(pc.cast(arr, pa.duration("us"), safe=False).view(pa.int64()), 0)
        months = np.zeros(n, np.int32)
        days = np.zeros(n, np.int32)
        micros = us.to_numpy(zero_copy_only=False)
    else:
        raw = np.frombuffer(
            arr.buffers()[1],
            dtype=np.dtype([("m", "<i4"), ("d", "<i4"), ("ns", "<i8")]),
            count=n,
            offset=16 * arr.offset,
        )
        months, days, micros = raw["m"], raw["d"], raw["ns"] // 1000
    out = np.empty(n, dtype=np.dtype([("us", ">i8"), ("d", ">i4"), ("m", ">i4")]))
    out["us"], out["d"], out["m"] = micros, days, months
    return _fixed_binary(out.tobytes(), 16, n, _validity(arr), arr.null_count)


def _bin_bytes(arr: pa.Array) -> pa.Array:
    return _as_binary(arr)


def _bin_uuid(arr: pa.Array) -> pa.Array:
    storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    return pc.cast(storage, pa.binary())


def _bin_numeric(arr: pa.Array) -> pa.Array:
    values = arr.to_pylist()
    return pa.array(
        [None if v is None else encode_numeric_binary(decimal.Decimal(v)) for v in values],
        pa.binary(),
    )


def _bin_jsonb(arr: pa.Array) -> pa.Array:
    """jsonb's binary form: a version byte (1), then the JSON text."""
    text = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    return pc.binary_join_element_wise(pa.scalar(b"\x01"), text.cast(pa.binary()), b"")


def _bin_text(arr: pa.Array) -> pa.Array:
    """A text type's binary form is its text."""
    return arr.cast(pa.binary())


# binary encoders of columns whose PG_OID_KEY names their type (their values are text)
_NAMED_BINARY: dict[int, ValueEncoder] = {Oid.NUMERIC: _bin_numeric, Oid.JSONB: _bin_jsonb,
                                          Oid.NAME: _bin_text, Oid.VARCHAR: _bin_text,
                                          Oid.BPCHAR: _bin_text}


def _length_prefixed(values: pa.Array) -> pa.Array:
    """Each value prefixed by its int32 length (-1 and no bytes for NULL)."""
    values = _as_binary(values)
    n = len(values)
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False) if values.null_count else None
    filled = pc.fill_null(values, b"") if valid is not None else values
    lens = np.diff(_offsets(filled))
    if valid is not None:
        lens = np.where(valid, lens, -1)
    prefix = _fixed_binary(lens.astype(">i4").tobytes(), 4, n, None)
    return pc.binary_join_element_wise(prefix, filled, b"")


def _bin_list(elem_encoder: ValueEncoder, elem_oid: int) -> ValueEncoder:
    def encode(arr: pa.Array) -> pa.Array:
        lst, elems, off = _list_parts(arr)
        n = len(lst)
        frags = _length_prefixed(elem_encoder(elems)) if len(elems) else pa.array([], pa.binary())
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(off, pa.int32()), frags), b"")
        sizes = np.diff(off)
        if elems.null_count:
            cum = np.concatenate(([0], np.cumsum(pc.is_null(elems).to_numpy(zero_copy_only=False))))
            has_null = (cum[off[1:]] - cum[off[:-1]]) > 0
        else:
            has_null = np.zeros(n, bool)
        head = np.empty(
            n,
            dtype=np.dtype(
                [("ndim", ">i4"), ("flags", ">i4"), ("oid", ">u4"), ("dim", ">i4"), ("lb", ">i4")]
            ),
        )
        nonempty = sizes > 0
        head["ndim"] = nonempty
        head["flags"] = has_null
        head["oid"] = elem_oid
        head["dim"] = sizes
        head["lb"] = 1
        keep = np.ones((n, 20), bool)
        keep[:, 12:] = nonempty[:, None]
        data = head.view(np.uint8).reshape(n, 20)[keep]
        widths = np.where(nonempty, 20, 12)
        head_off = np.concatenate(([0], np.cumsum(widths))).astype(np.int32)
        head_arr = pa.Array.from_buffers(
            pa.binary(), n, [None, pa.py_buffer(head_off), pa.py_buffer(data.tobytes())]
        )
        out = pc.binary_join_element_wise(head_arr, joined, b"")
        if lst.null_count:
            out = pc.if_else(pc.is_valid(lst), out, pa.scalar(None, pa.binary()))
        return out

    return encode


def binary_encoder(t: pa.DataType) -> ValueEncoder | None:
    """The binary-format encoder for an Arrow type, or None (send it as text)."""
    pt = pa.types
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return _bin_uuid
        if t.extension_name == "arrow.json":
            return None
        inner = binary_encoder(t.storage_type)
        return None if inner is None else _unwrap(inner, lambda a: a.storage)
    if pt.is_dictionary(t):
        inner = binary_encoder(t.value_type)
        return None if inner is None else _unwrap(inner, lambda a: a.dictionary_decode())
    if pt.is_boolean(t):
        return _bin_bool
    if pt.is_int8(t) or pt.is_int16(t) or pt.is_uint8(t):
        return _numeric_be(">i2", 2)
    if pt.is_int32(t) or pt.is_uint16(t):
        return _numeric_be(">i4", 4)
    if pt.is_uint32(t):
        return _numeric_be(">u4", 4)   # oid
    if pt.is_int64(t):
        return _numeric_be(">i8", 8)
    if pt.is_float16(t):
        return _numeric_be(">f4", 4, pa.float32())
    if pt.is_float32(t):
        return _numeric_be(">f4", 4)
    if pt.is_float64(t):
        return _numeric_be(">f8", 8)
    if pt.is_decimal(t) or pt.is_uint64(t):
        return _bin_numeric
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t):
        return _bin_bytes
    if (
        pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_binary_view(t)
        or pt.is_fixed_size_binary(t)
    ):
        return _bin_bytes
    if pt.is_date(t):
        return _bin_date
    if pt.is_timestamp(t):
        return _bin_timestamp
    if pt.is_time(t):
        return _bin_time
    if t == pa.month_day_nano_interval() or pt.is_duration(t):
        return _bin_interval
    if _is_list(t) and not _is_list(t.value_type):
        elem = binary_encoder(t.value_type)
        if elem is None:
            return None
        return _bin_list(elem, pg_type_for_arrow(t.value_type)[0])
    return None


# --------------------------------------------------------------------------
# Row assembly


# Below this many rows the vectorized assembly's fixed cost (a dozen Arrow
# kernels) exceeds a plain loop: point queries return one row.
_SMALL_BATCH = 16


def _assemble_rows(columns: list[list[bytes | None]], n: int, ncols: int) -> bytes:
    out = bytearray()
    for r in range(n):
        body = bytearray(ncols.to_bytes(2, "big"))
        for col in columns:
            value = col[r]
            if value is None:
                body += b"\xff\xff\xff\xff"
            else:
                body += len(value).to_bytes(4, "big")
                body += value
        out += b"D"
        out += (len(body) + 4).to_bytes(4, "big")
        out += body
    return bytes(out)


# Text of one value for the common scalar types, for batches of a few rows
# (point queries), where a Python call per value costs less than the Arrow
# kernels of the column encoders; the same text as those (tests compare them).
ScalarText = Callable[[Any], bytes]


def _scalar_text(t: pa.DataType) -> ScalarText | None:
    pt = pa.types
    if pt.is_boolean(t):
        return lambda v: b"t" if v else b"f"
    if pt.is_integer(t):
        return lambda v: str(v).encode()
    if pt.is_float64(t):
        return lambda v: pg_float_text(v).encode()
    if pt.is_float32(t):
        return lambda v: pg_float_text(v, True).encode()
    if pt.is_string(t) or pt.is_large_string(t):
        return str.encode
    return None


def _assemble(values: list[pa.Array], n: int) -> bytes:
    """Concatenate DataRow messages for ``n`` rows from per-column wire values."""
    ncols = len(values)
    if n <= _SMALL_BATCH:
        return _assemble_rows([_as_binary(v).to_pylist() for v in values], n, ncols)
    total = np.full(n, 6 + 4 * ncols, dtype=np.int64)
    pieces: list[pa.Array] = []
    prefixes: list[np.ndarray] = []
    for v in values:
        v = _as_binary(v)
        if v.null_count:
            valid = pc.is_valid(v).to_numpy(zero_copy_only=False)
            v = pc.fill_null(v, b"")
            lens = np.diff(_offsets(v))
            total += lens
            prefixes.append(np.where(valid, lens, -1))
        else:
            lens = np.diff(_offsets(v))
            total += lens
            prefixes.append(lens)
        pieces.append(v)
    if n > 1 and int(total.sum()) + n > _MAX_JOIN:
        half = n // 2
        return _assemble([v.slice(0, half) for v in values], half) + _assemble(
            [v.slice(half) for v in values], n - half
        )
    head_fields = [("t", "S1"), ("l", ">i4"), ("c", ">i2")]
    if ncols:
        head_fields.append(("p", ">i4"))
    head = np.empty(n, dtype=np.dtype(head_fields))
    head["t"] = b"D"
    head["l"] = total
    head["c"] = ncols
    if ncols:
        head["p"] = prefixes[0]
    args: list[pa.Array] = [_fixed_binary(head.tobytes(), head.itemsize, n, None)]
    for i, v in enumerate(pieces):
        if i:
            args.append(_fixed_binary(prefixes[i].astype(">i4").tobytes(), 4, n, None))
        args.append(v)
    out = args[0] if len(args) == 1 else pc.binary_join_element_wise(*args, b"")
    return bytes(values_bytes(out))


def tagged_messages(tag: bytes, bodies: pa.Array) -> bytes:
    """One message per value of ``bodies`` (no NULLs): ``tag``, int32 length, body."""
    bodies = _as_binary(bodies)
    n = len(bodies)
    if n == 0:
        return b""
    lens = np.diff(_offsets(bodies)) + 4
    head = np.empty(n, dtype=np.dtype([("t", "S1"), ("l", ">i4")]))
    head["t"] = tag
    head["l"] = lens
    out = pc.binary_join_element_wise(_fixed_binary(head.tobytes(), 5, n, None), bodies, b"")
    return bytes(values_bytes(out))


class BatchEncoder:
    """Encodes record batches of one schema into DataRow messages."""

    __slots__ = ("_encoders", "_scalar", "fields", "schema")

    def __init__(self, schema: pa.Schema, formats: Sequence[int]) -> None:
        ncols = len(schema)
        if len(formats) == 0:
            wanted = [0] * ncols
        elif len(formats) == 1:
            wanted = [formats[0]] * ncols
        elif len(formats) == ncols:
            wanted = list(formats)
        else:
            raise FormatCodeError(
                f"bind message has {len(formats)} result formats but query has {ncols} columns"
            )
        self.schema = schema
        self.fields: list[Field] = []
        self._encoders: list[ValueEncoder] = []
        self._scalar: list[ScalarText | None] = []
        for f, fmt in zip(schema, wanted, strict=True):
            if fmt not in (0, 1):
                raise FormatCodeError(f"unsupported format code: {fmt}", sqlstate="22023")
            named = (f.metadata or {}).get(PG_OID_KEY)
            if named is not None:   # a type the Arrow type does not tell; values: its text
                oid, size, typmod = int(named), pg_type_len(int(named)), -1
                enc = _NAMED_BINARY.get(oid) if fmt == 1 else None
            else:
                oid, size, typmod = pg_type_for_arrow(f.type)
                enc = binary_encoder(f.type) if fmt == 1 else None
            if enc is None:
                enc, fmt = text_encoder(f.type), 0
            self._encoders.append(enc)
            self._scalar.append(_scalar_text(f.type) if fmt == 0 else None)
            self.fields.append(Field(f.name, oid, size, typmod, fmt))

    def encode(self, batch: pa.RecordBatch) -> bytes:
        """The DataRow messages for every row of ``batch`` (same schema), concatenated."""
        n = batch.num_rows
        if n == 0:
            return b""
        if n <= _SMALL_BATCH:
            columns: list[list[bytes | None]] = []
            for i, enc in enumerate(self._encoders):
                scalar = self._scalar[i]
                if scalar is None:
                    columns.append(_as_binary(enc(batch.column(i))).to_pylist())
                else:
                    columns.append([None if v is None else scalar(v)
                                    for v in batch.column(i).to_pylist()])
            return _assemble_rows(columns, n, len(columns))
        values = [enc(batch.column(i)) for i, enc in enumerate(self._encoders)]
        return _assemble(values, n)


def batch_encoder(schema: pa.Schema, formats: Sequence[int]) -> BatchEncoder:
    """A BatchEncoder for ``schema`` with the client's result format codes.

    ``formats`` follows the protocol: empty means all text, one code applies to
    every column, otherwise one code per column. Raises ``FormatCodeError``.
    """
    return BatchEncoder(schema, formats)
