"""PostgreSQL type knowledge in one place: OIDs, names, and the Arrow/DuckDB mapping.

Role: the single table of PostgreSQL types the server speaks (like psycopg's
``_oids.py``), the mapping from Arrow result types and DuckDB type names to
them, and the decoding of Bind parameters (text and binary format) into Python
values that DuckDB can bind.

Invariants:

- No I/O and no ``duckdb`` import; pure functions over bytes, strings and
  ``pyarrow`` types.
- ``decode_param`` either returns a value or raises ``ParamDecodeError`` (which
  carries a SQLSTATE); it never lets another exception escape for bad input.
- The session time zone is UTC: ``timestamptz`` values decode to aware
  ``datetime`` objects in UTC.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "ARRAY_OF",
    "ELEMENT_OF",
    "PG_EPOCH_DATE",
    "PG_EPOCH_DAYS",
    "PG_EPOCH_US",
    "PG_OID_KEY",
    "Oid",
    "ParamDecodeError",
    "TypedParam",
    "decode_param",
    "duckdb_param_type",
    "is_untyped",
    "pg_type_for_arrow",
    "pg_type_for_duckdb",
    "pg_type_len",
    "pg_type_name",
    "vector_oid",
]


class Oid(enum.IntEnum):
    """PostgreSQL type OIDs (values from ``pg_type.dat``)."""

    BOOL = 16
    BYTEA = 17
    CHAR = 18
    NAME = 19
    INT8 = 20
    INT2 = 21
    INT2VECTOR = 22
    INT4 = 23
    REGPROC = 24
    TEXT = 25
    OID = 26
    JSON = 114
    FLOAT4 = 700
    FLOAT8 = 701
    UNKNOWN = 705
    BPCHAR = 1042
    VARCHAR = 1043
    DATE = 1082
    TIME = 1083
    TIMESTAMP = 1114
    TIMESTAMPTZ = 1184
    INTERVAL = 1186
    TIMETZ = 1266
    NUMERIC = 1700
    REGTYPE = 2206
    RECORD = 2249
    VOID = 2278
    UUID = 2950
    JSONB = 3802
    # Arrays ("_int4" and friends).
    JSON_ARRAY = 199
    BOOL_ARRAY = 1000
    BYTEA_ARRAY = 1001
    CHAR_ARRAY = 1002
    NAME_ARRAY = 1003
    INT2_ARRAY = 1005
    INT4_ARRAY = 1007
    TEXT_ARRAY = 1009
    BPCHAR_ARRAY = 1014
    VARCHAR_ARRAY = 1015
    INT8_ARRAY = 1016
    FLOAT4_ARRAY = 1021
    FLOAT8_ARRAY = 1022
    OID_ARRAY = 1028
    TIMESTAMP_ARRAY = 1115
    DATE_ARRAY = 1182
    TIME_ARRAY = 1183
    TIMESTAMPTZ_ARRAY = 1185
    INTERVAL_ARRAY = 1187
    NUMERIC_ARRAY = 1231
    TIMETZ_ARRAY = 1270
    UUID_ARRAY = 2951
    JSONB_ARRAY = 3807


#: element type OID -> array type OID
ARRAY_OF: dict[int, int] = {
    Oid.BOOL: Oid.BOOL_ARRAY,
    Oid.BYTEA: Oid.BYTEA_ARRAY,
    Oid.CHAR: Oid.CHAR_ARRAY,
    Oid.NAME: Oid.NAME_ARRAY,
    Oid.INT2: Oid.INT2_ARRAY,
    Oid.INT4: Oid.INT4_ARRAY,
    Oid.INT8: Oid.INT8_ARRAY,
    Oid.TEXT: Oid.TEXT_ARRAY,
    Oid.BPCHAR: Oid.BPCHAR_ARRAY,
    Oid.VARCHAR: Oid.VARCHAR_ARRAY,
    Oid.FLOAT4: Oid.FLOAT4_ARRAY,
    Oid.FLOAT8: Oid.FLOAT8_ARRAY,
    Oid.OID: Oid.OID_ARRAY,
    Oid.TIMESTAMP: Oid.TIMESTAMP_ARRAY,
    Oid.DATE: Oid.DATE_ARRAY,
    Oid.TIME: Oid.TIME_ARRAY,
    Oid.TIMESTAMPTZ: Oid.TIMESTAMPTZ_ARRAY,
    Oid.INTERVAL: Oid.INTERVAL_ARRAY,
    Oid.NUMERIC: Oid.NUMERIC_ARRAY,
    Oid.TIMETZ: Oid.TIMETZ_ARRAY,
    Oid.UUID: Oid.UUID_ARRAY,
    Oid.JSON: Oid.JSON_ARRAY,
    Oid.JSONB: Oid.JSONB_ARRAY,
}
#: array type OID -> element type OID
ELEMENT_OF: dict[int, int] = {a: e for e, a in ARRAY_OF.items()}

_TYPLEN: dict[int, int] = {
    Oid.BOOL: 1,
    Oid.CHAR: 1,
    Oid.NAME: 64,
    Oid.INT8: 8,
    Oid.INT2: 2,
    Oid.INT4: 4,
    Oid.REGPROC: 4,
    Oid.REGTYPE: 4,
    Oid.OID: 4,
    Oid.FLOAT4: 4,
    Oid.FLOAT8: 8,
    Oid.UNKNOWN: -2,
    Oid.DATE: 4,
    Oid.TIME: 8,
    Oid.TIMESTAMP: 8,
    Oid.TIMESTAMPTZ: 8,
    Oid.INTERVAL: 16,
    Oid.TIMETZ: 12,
    Oid.UUID: 16,
    Oid.VOID: 4,
}

_NAMES: dict[int, str] = {
    Oid.BOOL: "bool",
    Oid.BYTEA: "bytea",
    Oid.CHAR: "char",
    Oid.NAME: "name",
    Oid.INT8: "int8",
    Oid.INT2: "int2",
    Oid.INT2VECTOR: "int2vector",
    Oid.INT4: "int4",
    Oid.REGPROC: "regproc",
    Oid.REGTYPE: "regtype",
    Oid.TEXT: "text",
    Oid.OID: "oid",
    Oid.JSON: "json",
    Oid.FLOAT4: "float4",
    Oid.FLOAT8: "float8",
    Oid.UNKNOWN: "unknown",
    Oid.BPCHAR: "bpchar",
    Oid.VARCHAR: "varchar",
    Oid.DATE: "date",
    Oid.TIME: "time",
    Oid.TIMESTAMP: "timestamp",
    Oid.TIMESTAMPTZ: "timestamptz",
    Oid.INTERVAL: "interval",
    Oid.TIMETZ: "timetz",
    Oid.NUMERIC: "numeric",
    Oid.RECORD: "record",
    Oid.VOID: "void",
    Oid.UUID: "uuid",
    Oid.JSONB: "jsonb",
}

#: PostgreSQL's vector types (pg_index.indkey, indoption): a DuckDB list whose elements are
#: a UNION with one member named after the type (``UNION(int2vector BIGINT)[]``: a list
#: DuckDB unnests and compares with integers) is sent as that type, its text the elements
#: separated by spaces (``1 2``), as PostgreSQL writes it
VECTORS: dict[str, int] = {"int2vector": Oid.INT2VECTOR}
_VECTOR_TYPE = re.compile(r'UNION\("?(\w+)"? \w+\)\[\]')


def vector_oid(t: pa.DataType) -> int | None:
    """The OID of the vector type (``VECTORS``) the Arrow type stands for, if any."""
    if _is_list(t) and pa.types.is_union(t.value_type) and t.value_type.num_fields == 1:
        return VECTORS.get(t.value_type.field(0).name)
    return None


#: Arrow field metadata naming the PostgreSQL type OID of a column whose Arrow type
#: says otherwise (its values are sent in text format, as the Arrow text encoder
#: writes them, with no type modifier)
PG_OID_KEY = b"postgres.oid"

#: 2000-01-01, the PostgreSQL epoch of binary dates and timestamps.
PG_EPOCH_DATE = dt.date(2000, 1, 1)
#: days from 1970-01-01 to 2000-01-01
PG_EPOCH_DAYS = 10957
#: microseconds from 1970-01-01 to 2000-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000

_NUMERIC_TYPMOD_OFFSET = 4  # VARHDRSZ


class ParamDecodeError(Exception):
    """A Bind parameter could not be decoded; carries its SQLSTATE.

    ``22P02`` (invalid_text_representation) for bad text, ``22P03``
    (invalid_binary_representation) for bad binary data, ``22003`` for values
    out of range, ``22023`` for an unknown format code, ``22021`` for invalid
    UTF-8.
    """

    sqlstate = "22P02"

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail: str | None = None
        self.hint: str | None = None
        self.position: int | None = None


# --------------------------------------------------------------------------
# Names and lengths


def pg_type_name(oid: int) -> str:
    """The PostgreSQL internal type name (``pg_type.typname``) of ``oid``.

    Arrays are named like PostgreSQL names them (``_int4``); an unknown OID
    gives ``"unknown"``.
    """
    name = _NAMES.get(oid)
    if name is not None:
        return name
    elem = ELEMENT_OF.get(oid)
    if elem is not None:
        return "_" + _NAMES[elem]
    return "unknown"


def pg_type_len(oid: int) -> int:
    """``pg_type.typlen``: the fixed size in bytes, or -1 for variable length."""
    return _TYPLEN.get(oid, -1)


def _numeric_typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0xFFFF)) + _NUMERIC_TYPMOD_OFFSET


# --------------------------------------------------------------------------
# Arrow -> PostgreSQL


def _is_uuid(t: pa.DataType) -> bool:
    return isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.uuid"


def _is_json(t: pa.DataType) -> bool:
    return isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.json"


def _scalar_oid(t: pa.DataType) -> tuple[int, int]:
    """(oid, typmod) of a non-list Arrow type."""
    pt = pa.types
    if isinstance(t, pa.BaseExtensionType):
        if _is_uuid(t):
            return Oid.UUID, -1
        if _is_json(t):
            return Oid.JSON, -1
        return _scalar_oid(t.storage_type)
    if pt.is_dictionary(t):
        return _scalar_oid(t.value_type)
    if pt.is_boolean(t):
        return Oid.BOOL, -1
    if pt.is_int8(t) or pt.is_int16(t) or pt.is_uint8(t):
        return Oid.INT2, -1
    if pt.is_int32(t) or pt.is_uint16(t):
        return Oid.INT4, -1
    if pt.is_uint32(t):
        return Oid.OID, -1   # PostgreSQL's oid is an unsigned 32-bit integer
    if pt.is_int64(t):
        return Oid.INT8, -1
    if pt.is_uint64(t):
        return Oid.NUMERIC, -1
    if pt.is_float16(t) or pt.is_float32(t):
        return Oid.FLOAT4, -1
    if pt.is_float64(t):
        return Oid.FLOAT8, -1
    if pt.is_decimal(t):
        return Oid.NUMERIC, _numeric_typmod(t.precision, t.scale)
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t):
        return Oid.TEXT, -1   # DuckDB has one string type; PostgreSQL's own is text
    if (
        pt.is_binary(t)
        or pt.is_large_binary(t)
        or pt.is_binary_view(t)
        or pt.is_fixed_size_binary(t)
    ):
        return Oid.BYTEA, -1
    if pt.is_date(t):
        return Oid.DATE, -1
    if pt.is_time(t):
        return Oid.TIME, -1
    if pt.is_timestamp(t):
        return (Oid.TIMESTAMP if t.tz is None else Oid.TIMESTAMPTZ), -1
    if pt.is_duration(t) or pt.is_interval(t):
        return Oid.INTERVAL, -1
    if pt.is_null(t):
        return Oid.TEXT, -1
    return Oid.TEXT, -1


def _is_list(t: pa.DataType) -> bool:
    pt = pa.types
    return bool(
        pt.is_list(t)
        or pt.is_large_list(t)
        or pt.is_fixed_size_list(t)
        or pt.is_list_view(t)
        or pt.is_large_list_view(t)
    )


def array_oid(elem: int) -> int:
    """The array type OID for an element type OID; elements without an array
    type make ``_text``."""
    return int(ARRAY_OF.get(elem, Oid.TEXT_ARRAY))


def pg_type_for_arrow(t: pa.DataType) -> tuple[int, int, int]:
    """(type OID, typlen, typmod) used in RowDescription for an Arrow type.

    Lists map to the array type of their innermost element (PostgreSQL arrays
    are multi-dimensional arrays of one element type); element types without
    an array OID make ``_text``. Structs, maps, unions and anything else are
    sent as ``text``.
    """
    vector = vector_oid(t)
    if vector is not None:
        return vector, -1, -1
    if _is_list(t):
        inner = t.value_type
        while _is_list(inner):
            inner = inner.value_type
        elem, _ = _scalar_oid(inner)
        return array_oid(elem), -1, -1
    oid, typmod = _scalar_oid(t)
    return int(oid), pg_type_len(oid), typmod


# --------------------------------------------------------------------------
# DuckDB type names -> PostgreSQL

_DUCKDB_NAMES: dict[str, int] = {
    "BOOLEAN": Oid.BOOL,
    "BOOL": Oid.BOOL,
    "LOGICAL": Oid.BOOL,
    "TINYINT": Oid.INT2,
    "INT1": Oid.INT2,
    "UTINYINT": Oid.INT2,
    "SMALLINT": Oid.INT2,
    "INT2": Oid.INT2,
    "SHORT": Oid.INT2,
    "USMALLINT": Oid.INT4,
    "INTEGER": Oid.INT4,
    "INT": Oid.INT4,
    "INT4": Oid.INT4,
    "SIGNED": Oid.INT4,
    "UINTEGER": Oid.OID,
    "BIGINT": Oid.INT8,
    "INT8": Oid.INT8,
    "LONG": Oid.INT8,
    "UBIGINT": Oid.NUMERIC,
    # sent as bigint: DuckDB's sum() of integers (server/postgres/resulttypes.py)
    "HUGEINT": Oid.INT8,
    "INT128": Oid.INT8,
    "UHUGEINT": Oid.NUMERIC,
    "VARINT": Oid.NUMERIC,
    "BIGNUM": Oid.NUMERIC,
    "DECIMAL": Oid.NUMERIC,
    "NUMERIC": Oid.NUMERIC,
    "FLOAT": Oid.FLOAT4,
    "FLOAT4": Oid.FLOAT4,
    "REAL": Oid.FLOAT4,
    "DOUBLE": Oid.FLOAT8,
    "FLOAT8": Oid.FLOAT8,
    "DOUBLE PRECISION": Oid.FLOAT8,
    "VARCHAR": Oid.TEXT,
    "CHAR": Oid.TEXT,
    "BPCHAR": Oid.TEXT,
    "TEXT": Oid.TEXT,
    "STRING": Oid.TEXT,
    "NAME": Oid.NAME,
    "BLOB": Oid.BYTEA,
    "BYTEA": Oid.BYTEA,
    "BINARY": Oid.BYTEA,
    "VARBINARY": Oid.BYTEA,
    "BIT": Oid.TEXT,
    "BITSTRING": Oid.TEXT,
    "DATE": Oid.DATE,
    "TIME": Oid.TIME,
    "TIME_NS": Oid.TIME,
    "TIMETZ": Oid.TIMETZ,
    "TIME WITH TIME ZONE": Oid.TIMETZ,
    "TIMESTAMP": Oid.TIMESTAMP,
    "DATETIME": Oid.TIMESTAMP,
    "TIMESTAMP_US": Oid.TIMESTAMP,
    "TIMESTAMP_MS": Oid.TIMESTAMP,
    "TIMESTAMP_S": Oid.TIMESTAMP,
    "TIMESTAMP_NS": Oid.TIMESTAMP,
    "TIMESTAMP WITHOUT TIME ZONE": Oid.TIMESTAMP,
    "TIMESTAMPTZ": Oid.TIMESTAMPTZ,
    "TIMESTAMP WITH TIME ZONE": Oid.TIMESTAMPTZ,
    "INTERVAL": Oid.INTERVAL,
    "UUID": Oid.UUID,
    "JSON": Oid.JSON,
    # PostgreSQL's types of columns DuckDB types otherwise, as a statement describes them
    # (server/postgres/exprtypes.py)
    "JSONB": Oid.JSONB,
    "REGTYPE": Oid.REGTYPE,
    "CHARACTER VARYING": Oid.VARCHAR,
    "CHARACTER": Oid.BPCHAR,
    "NULL": Oid.UNKNOWN,
    "UNKNOWN": Oid.UNKNOWN,
    "SQLNULL": Oid.UNKNOWN,
}

_ARRAY_SUFFIX = re.compile(r"\[\d*\]\s*$")
_TYPE_ARGS = re.compile(r"\(.*\)\s*$", re.S)


def pg_type_for_duckdb(type_name: str) -> int:
    """The PostgreSQL type OID for a DuckDB type string (``DECIMAL(18,3)``, ``INTEGER[]``).

    Nested DuckDB types (STRUCT, MAP, UNION, ENUM) and unrecognised names map
    to ``text``, as their values are sent as text.
    """
    vector = _VECTOR_TYPE.fullmatch(type_name.strip())
    if vector is not None and vector.group(1).lower() in VECTORS:
        return int(VECTORS[vector.group(1).lower()])
    name = " ".join(type_name.strip().upper().split())
    if _ARRAY_SUFFIX.search(name):
        inner = name
        while _ARRAY_SUFFIX.search(inner):
            inner = _ARRAY_SUFFIX.sub("", inner)
        elem = pg_type_for_duckdb(inner)
        return array_oid(elem)
    base = _TYPE_ARGS.sub("", name).strip()
    return int(_DUCKDB_NAMES.get(base, Oid.TEXT))


# --------------------------------------------------------------------------
# Bind parameters: text format

_INT_RANGES: dict[int, tuple[int, int]] = {
    Oid.INT2: (-(2**15), 2**15 - 1),
    Oid.INT4: (-(2**31), 2**31 - 1),
    Oid.INT8: (-(2**63), 2**63 - 1),
    Oid.OID: (0, 2**32 - 1),
}
_DEC_INT = re.compile(r"[+-]?[0-9](?:_?[0-9])*")
_PREFIXED_INT = re.compile(r"[+-]?0[xXoObB][0-9a-fA-F_]+")
_BOOL_TRUE = ("true", "yes", "on", "1")
_BOOL_FALSE = ("false", "no", "off", "0")
_TEXT_LIKE = frozenset({Oid.TEXT, Oid.VARCHAR, Oid.BPCHAR, Oid.NAME, Oid.CHAR, Oid.UNKNOWN, 0})


def _text_int(s: str, oid: int) -> int:
    t = s.strip()
    try:
        if _DEC_INT.fullmatch(t):
            v = int(t)
        elif _PREFIXED_INT.fullmatch(t):
            v = int(t, 0)
        else:
            raise ValueError(t)
    except ValueError:
        raise ParamDecodeError(
            f'invalid input syntax for type {pg_type_name(oid)}: "{s}"'
        ) from None
    lo, hi = _INT_RANGES[oid]
    if not lo <= v <= hi:
        raise ParamDecodeError(
            f'value "{s}" is out of range for type {pg_type_name(oid)}', sqlstate="22003"
        )
    return v


def _text_float(s: str, oid: int) -> float:
    try:
        v = float(s.strip())
    except ValueError:
        raise ParamDecodeError(
            f'invalid input syntax for type {pg_type_name(oid)}: "{s}"'
        ) from None
    if oid == Oid.FLOAT4 and abs(v) != float("inf") and abs(v) > 3.4028234663852886e38:
        raise ParamDecodeError(f'"{s}" is out of range for type real', sqlstate="22003")
    return v


def _text_numeric(s: str) -> decimal.Decimal:
    t = s.strip()
    try:
        v = decimal.Decimal(t)
    except decimal.InvalidOperation:
        raise ParamDecodeError(f'invalid input syntax for type numeric: "{s}"') from None
    if v.is_snan():
        raise ParamDecodeError(f'invalid input syntax for type numeric: "{s}"')
    return v


def _text_bool(s: str) -> bool:
    t = s.strip().lower()
    if t:
        # PostgreSQL accepts any unique prefix of true/false/yes/no (and on/off
        # from two letters on), plus 1 and 0.
        if t in ("1", "0"):
            return t == "1"
        if t not in ("o",):
            for word in _BOOL_TRUE:
                if word.startswith(t) and (word != "on" or len(t) == 2):
                    return True
            for word in _BOOL_FALSE:
                if word.startswith(t) and (word != "off" or len(t) >= 2):
                    return False
    raise ParamDecodeError(f'invalid input syntax for type boolean: "{s}"')


def _bad_datetime(s: str, oid: int) -> ParamDecodeError:
    return ParamDecodeError(
        f'invalid input syntax for type {pg_type_name(oid)}: "{s}"', sqlstate="22007"
    )


def _text_date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s.strip())
    except ValueError:
        raise _bad_datetime(s, Oid.DATE) from None


def _text_timestamp(s: str, oid: int) -> dt.datetime:
    try:
        v = dt.datetime.fromisoformat(s.strip())
    except ValueError:
        raise _bad_datetime(s, oid) from None
    if oid == Oid.TIMESTAMP:
        return v.replace(tzinfo=None)
    if v.tzinfo is None:
        return v.replace(tzinfo=dt.UTC)
    return v.astimezone(dt.UTC)


def _text_time(s: str, oid: int) -> dt.time:
    try:
        v = dt.time.fromisoformat(s.strip())
    except ValueError:
        raise _bad_datetime(s, oid) from None
    if oid == Oid.TIME:
        return v.replace(tzinfo=None)
    return v if v.tzinfo is not None else v.replace(tzinfo=dt.UTC)


_ESCAPED_OCTAL = re.compile(r"\\([0-3][0-7]{2})|\\\\")


def _text_bytea(s: str) -> bytes:
    if s.startswith("\\x"):
        try:
            return bytes.fromhex(s[2:])
        except ValueError:
            raise ParamDecodeError("invalid hexadecimal data for type bytea") from None
    # escape format: backslash octal triples and doubled backslashes
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        m = _ESCAPED_OCTAL.match(s, i)
        if m is None:
            raise ParamDecodeError("invalid input syntax for type bytea")
        out.append(int(m.group(1), 8) if m.group(1) else 0x5C)
        i = m.end()
    return bytes(out)


def _text_uuid(s: str) -> uuid.UUID:
    try:
        return uuid.UUID(s.strip())
    except ValueError:
        raise ParamDecodeError(f'invalid input syntax for type uuid: "{s}"') from None


def _text_json(s: str) -> str:
    try:
        json.loads(s)
    except ValueError:
        raise ParamDecodeError("invalid input syntax for type json") from None
    return s


class _ArrayParser:
    """A parser of PostgreSQL array literals (``{1,2,NULL}``, ``{{"a b",c}}``)."""

    def __init__(self, s: str, elem: Callable[[str], object]) -> None:
        self.s = s
        self.i = 0
        self.elem = elem

    def fail(self, why: str) -> ParamDecodeError:
        return ParamDecodeError(f'malformed array literal: "{self.s}" ({why})')

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def parse(self) -> list[object]:
        self.skip_ws()
        if self.s.startswith("["):  # dimension decoration: [1:3]={...}
            eq = self.s.find("=", self.i)
            if eq < 0:
                raise self.fail("missing '=' after dimensions")
            self.i = eq + 1
            self.skip_ws()
        result = self.parse_array()
        self.skip_ws()
        if self.i != len(self.s):
            raise self.fail("junk after closing right brace")
        return result

    def parse_array(self) -> list[object]:
        if self.i >= len(self.s) or self.s[self.i] != "{":
            raise self.fail('array value must start with "{"')
        self.i += 1
        items: list[object] = []
        self.skip_ws()
        if self.i < len(self.s) and self.s[self.i] == "}":
            self.i += 1
            return items
        while True:
            self.skip_ws()
            if self.i >= len(self.s):
                raise self.fail("unexpected end of input")
            c = self.s[self.i]
            if c == "{":
                items.append(self.parse_array())
            elif c == '"':
                items.append(self.elem(self.parse_quoted()))
            else:
                items.append(self.parse_bare())
            self.skip_ws()
            if self.i >= len(self.s):
                raise self.fail("unexpected end of input")
            c = self.s[self.i]
            self.i += 1
            if c == "}":
                return items
            if c != ",":
                raise self.fail(f"unexpected {c!r}")

    def parse_quoted(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                if self.i + 1 >= len(self.s):
                    break
                out.append(self.s[self.i + 1])
                self.i += 2
            elif c == '"':
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1
        raise self.fail("unterminated quoted element")

    def parse_bare(self) -> object:
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in ",}":
                break
            if c in '{"':
                raise self.fail(f"unexpected {c!r}")
            if c == "\\":
                if self.i + 1 >= len(self.s):
                    raise self.fail("unexpected end of input")
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        token = "".join(out).strip()
        if not token:
            raise self.fail("empty element")
        if token.upper() == "NULL":
            return None
        return self.elem(token)


def _decode_text(s: str, oid: int) -> object:
    if oid in _TEXT_LIKE:
        return s
    if oid in _INT_RANGES:
        return _text_int(s, oid)
    if oid in (Oid.FLOAT4, Oid.FLOAT8):
        return _text_float(s, oid)
    if oid == Oid.NUMERIC:
        return _text_numeric(s)
    if oid == Oid.BOOL:
        return _text_bool(s)
    if oid == Oid.DATE:
        return _text_date(s)
    if oid in (Oid.TIMESTAMP, Oid.TIMESTAMPTZ):
        return _text_timestamp(s, oid)
    if oid in (Oid.TIME, Oid.TIMETZ):
        return _text_time(s, oid)
    if oid == Oid.BYTEA:
        return _text_bytea(s)
    if oid == Oid.UUID:
        return _text_uuid(s)
    if oid in (Oid.JSON, Oid.JSONB):
        return _text_json(s)
    elem = ELEMENT_OF.get(oid)
    if elem is not None:
        return _ArrayParser(s, lambda t: _decode_text(t, elem)).parse()
    # interval and types without a decoder: DuckDB casts the string itself.
    return s


# --------------------------------------------------------------------------
# Bind parameters: binary format

_FIXED: dict[int, struct.Struct] = {
    Oid.INT2: struct.Struct(">h"),
    Oid.INT4: struct.Struct(">i"),
    Oid.INT8: struct.Struct(">q"),
    Oid.OID: struct.Struct(">I"),
    Oid.FLOAT4: struct.Struct(">f"),
    Oid.FLOAT8: struct.Struct(">d"),
}
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_INTERVAL = struct.Struct(">qii")
_NUMERIC_HEAD = struct.Struct(">hhHH")
_NUMERIC_POS = 0x0000
_NUMERIC_NEG = 0x4000
_NUMERIC_NAN = 0xC000
_NUMERIC_PINF = 0xD000
_NUMERIC_NINF = 0xF000


def _bad_binary(oid: int, why: str) -> ParamDecodeError:
    return ParamDecodeError(
        f"incorrect binary data format for type {pg_type_name(oid)}: {why}", sqlstate="22P03"
    )


def decode_numeric_binary(b: bytes) -> decimal.Decimal:
    """Decode PostgreSQL's binary ``numeric`` (base-10000 digits) into a Decimal."""
    if len(b) < 8:
        raise _bad_binary(Oid.NUMERIC, "too short")
    ndigits, weight, sign, dscale = _NUMERIC_HEAD.unpack_from(b)
    if ndigits < 0 or len(b) != 8 + 2 * ndigits:
        raise _bad_binary(Oid.NUMERIC, "digit count does not match length")
    if sign == _NUMERIC_NAN:
        return decimal.Decimal("NaN")
    if sign == _NUMERIC_PINF:
        return decimal.Decimal("Infinity")
    if sign == _NUMERIC_NINF:
        return decimal.Decimal("-Infinity")
    if sign not in (_NUMERIC_POS, _NUMERIC_NEG) or dscale > 0x3FFF:
        raise _bad_binary(Oid.NUMERIC, "invalid sign or scale")
    groups = struct.unpack_from(f">{ndigits}H", b, 8)
    if any(g > 9999 for g in groups):
        raise _bad_binary(Oid.NUMERIC, "invalid digit")
    digits = [int(c) for c in "".join(f"{g:04d}" for g in groups)] or [0]
    exp = (weight + 1 - ndigits) * 4
    if ndigits == 0:
        exp = 0
    # Present the value with exactly dscale fractional digits, as PostgreSQL does.
    if exp > -dscale:
        digits += [0] * (exp + dscale)
        exp = -dscale
    elif exp < -dscale:
        digits = digits[: len(digits) - (-dscale - exp)] or [0]
        exp = -dscale
    return decimal.Decimal((1 if sign == _NUMERIC_NEG else 0, tuple(digits), exp))


def encode_numeric_binary(v: decimal.Decimal) -> bytes:
    """Encode a Decimal as PostgreSQL's binary ``numeric``."""
    if v.is_nan():
        return _NUMERIC_HEAD.pack(0, 0, _NUMERIC_NAN, 0)
    if v.is_infinite():
        return _NUMERIC_HEAD.pack(0, 0, _NUMERIC_NINF if v < 0 else _NUMERIC_PINF, 0)
    sign, digit_t, exp = v.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_t))
    if exp > 0:
        digits += "0" * exp
        exp = 0
    dscale = -exp
    if dscale >= len(digits):
        int_part, frac_part = "", digits.rjust(dscale, "0")
    else:
        int_part, frac_part = digits[: len(digits) - dscale], digits[len(digits) - dscale :]
    int_part = int_part.rjust((len(int_part) + 3) // 4 * 4, "0")
    frac_part = frac_part.ljust((len(frac_part) + 3) // 4 * 4, "0")
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    head = _NUMERIC_HEAD.pack(
        len(groups), weight, _NUMERIC_NEG if sign and groups else _NUMERIC_POS, dscale
    )
    return head + struct.pack(f">{len(groups)}H", *groups)


def _binary_array(b: bytes, oid: int) -> list[object]:
    try:
        ndim, _flags, elem_oid = struct.unpack_from(">iiI", b)
        if ndim < 0 or ndim > 6:
            raise _bad_binary(oid, "invalid number of dimensions")
        dims = [struct.unpack_from(">ii", b, 12 + 8 * i)[0] for i in range(ndim)]
        pos = 12 + 8 * ndim
        if any(d < 0 for d in dims):
            raise _bad_binary(oid, "negative dimension")
        declared = ELEMENT_OF.get(oid, elem_oid)
        flat: list[object] = []
        count = 1
        for d in dims:
            count *= d
        if ndim == 0:
            count = 0
        for _ in range(count):
            (n,) = _I32.unpack_from(b, pos)
            pos += 4
            if n == -1:
                flat.append(None)
                continue
            if n < 0 or pos + n > len(b):
                raise _bad_binary(oid, "element length out of bounds")
            flat.append(_decode_binary(b[pos : pos + n], declared))
            pos += n
    except struct.error:
        raise _bad_binary(oid, "truncated array") from None
    if pos != len(b):
        raise _bad_binary(oid, "trailing bytes after array")

    def nest(items: list[object], shape: list[int]) -> list[object]:
        if len(shape) <= 1:
            return items
        step = len(items) // shape[0] if shape[0] else 0
        return [nest(items[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]

    return nest(flat, dims)


def _decode_binary(b: bytes, oid: int) -> object:
    fixed = _FIXED.get(oid)
    if fixed is not None:
        if len(b) != fixed.size:
            raise _bad_binary(oid, f"expected {fixed.size} bytes, got {len(b)}")
        return fixed.unpack(b)[0]
    if oid == Oid.BOOL:
        if len(b) != 1:
            raise _bad_binary(oid, f"expected 1 byte, got {len(b)}")
        return b != b"\x00"
    if oid in _TEXT_LIKE or oid == Oid.JSON:
        return _utf8(b)
    if oid == Oid.JSONB:
        if not b or b[0] != 1:
            raise _bad_binary(oid, "unsupported jsonb version")
        return _utf8(b[1:])
    if oid == Oid.BYTEA:
        return bytes(b)
    if oid == Oid.DATE:
        if len(b) != 4:
            raise _bad_binary(oid, f"expected 4 bytes, got {len(b)}")
        try:
            return PG_EPOCH_DATE + dt.timedelta(days=_I32.unpack(b)[0])
        except OverflowError:
            raise ParamDecodeError("date out of range", sqlstate="22008") from None
    if oid in (Oid.TIMESTAMP, Oid.TIMESTAMPTZ, Oid.TIME):
        if len(b) != 8:
            raise _bad_binary(oid, f"expected 8 bytes, got {len(b)}")
        us = _I64.unpack(b)[0]
        if oid == Oid.TIME:
            if not 0 <= us <= 86_400_000_000:
                raise ParamDecodeError("time out of range", sqlstate="22008")
            if us == 86_400_000_000:
                us -= 1  # 24:00:00 has no Python time; the closest value
            s, micro = divmod(us, 1_000_000)
            return dt.time(s // 3600, s // 60 % 60, s % 60, micro)
        try:
            ts = dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=us)
        except OverflowError:
            raise ParamDecodeError("timestamp out of range", sqlstate="22008") from None
        return ts if oid == Oid.TIMESTAMP else ts.replace(tzinfo=dt.UTC)
    if oid == Oid.NUMERIC:
        return decode_numeric_binary(b)
    if oid == Oid.UUID:
        if len(b) != 16:
            raise _bad_binary(oid, f"expected 16 bytes, got {len(b)}")
        return uuid.UUID(bytes=bytes(b))
    if oid == Oid.INTERVAL:
        if len(b) != 16:
            raise _bad_binary(oid, f"expected 16 bytes, got {len(b)}")
        us, days, months = _INTERVAL.unpack(b)
        if months == 0:
            try:
                return dt.timedelta(days=days, microseconds=us)
            except OverflowError:
                raise ParamDecodeError("interval out of range", sqlstate="22008") from None
        return f"{months} months {days} days {us} microseconds"
    if oid in ELEMENT_OF:
        return _binary_array(b, oid)
    raise ParamDecodeError(
        f"binary format is not supported for parameters of type {pg_type_name(oid)}",
        sqlstate="0A000",
    )


def _utf8(b: bytes) -> str:
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError:
        raise ParamDecodeError(
            "invalid byte sequence for encoding UTF8", sqlstate="22021"
        ) from None


def decode_param(value: bytes | None, oid: int, fmt: int) -> object:
    """Decode one Bind parameter into a Python value DuckDB can bind.

    ``oid`` is the parameter type from Parse (0 means unspecified and gives a
    ``str``); ``fmt`` is 0 (text) or 1 (binary). Text covers every type in
    ``Oid``; interval text, and types without a decoder, are passed on as
    ``str`` for DuckDB to cast. Binary covers bool, int2/4/8, oid, float4/8,
    text types, json/jsonb, bytea, date, time, timestamp(tz), interval,
    numeric, uuid and arrays of them. Raises ``ParamDecodeError``.
    """
    if value is None:
        return None
    if fmt == 0:
        s = _utf8(value)
        if "\x00" in s:
            raise ParamDecodeError(
                "invalid byte sequence for encoding UTF8: 0x00", sqlstate="22021"
            )
        return _decode_text(s, oid)
    if fmt == 1:
        return _decode_binary(value, oid)
    raise ParamDecodeError(f"unsupported format code: {fmt}", sqlstate="22023")


# --------------------------------------------------------------------------
# Untyped parameters (OID 0 or unknown): typed from their context

#: scalar OID -> the DuckDB type a parameter of that type binds as
_PARAM_DUCKDB: dict[int, str] = {
    Oid.BOOL: "BOOLEAN", Oid.INT2: "SMALLINT", Oid.INT4: "INTEGER", Oid.INT8: "BIGINT",
    Oid.OID: "UINTEGER", Oid.FLOAT4: "FLOAT", Oid.FLOAT8: "DOUBLE",
    Oid.NUMERIC: "DECIMAL(38,10)", Oid.TEXT: "VARCHAR", Oid.VARCHAR: "VARCHAR",
    Oid.BPCHAR: "VARCHAR", Oid.NAME: "VARCHAR", Oid.CHAR: "VARCHAR", Oid.BYTEA: "BLOB",
    Oid.DATE: "DATE", Oid.TIME: "TIME", Oid.TIMETZ: "TIMETZ", Oid.TIMESTAMP: "TIMESTAMP",
    Oid.TIMESTAMPTZ: "TIMESTAMPTZ", Oid.INTERVAL: "INTERVAL", Oid.UUID: "UUID",
    Oid.JSON: "JSON", Oid.JSONB: "JSON",
}


def is_untyped(oid: int) -> bool:
    """Whether a Parse parameter type leaves the type to the statement (0 or unknown)."""
    return oid == 0 or oid == Oid.UNKNOWN


def duckdb_param_type(oid: int) -> str | None:
    """The DuckDB type of a parameter the client typed ``oid``; None if untyped or
    without a DuckDB equivalent."""
    elem = ELEMENT_OF.get(oid)
    if elem is not None:
        inner = _PARAM_DUCKDB.get(elem)
        return None if inner is None else inner + "[]"
    return _PARAM_DUCKDB.get(oid)


@dataclass(frozen=True, slots=True)
class TypedParam:
    """A parameter the client sent untyped, decoded as the type its context in the
    statement gives it (``duckdb_type``, as DuckDB names it): the session binds it as
    that type, as PostgreSQL types an ``unknown`` parameter at parse time."""

    value: object
    duckdb_type: str
