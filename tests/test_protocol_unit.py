"""Unit tests of the sans-IO protocol layer: framing, parameter decoding, row encoding.

Frontend messages are built here with ``struct`` (independently of the code
under test) and fed to ``MessageReader`` in random chunk splits. Encoded rows
are parsed back with psycopg's own text and binary loaders (no connection),
which is what real clients run.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import struct
import uuid
from collections.abc import Sequence

import numpy as np
import psycopg.adapt
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.pq import Format

from server.protocol import messages as m
from server.protocol.codec import FormatCodeError, batch_encoder, pg_float_text
from server.protocol.types import (
    Oid,
    ParamDecodeError,
    decode_param,
    encode_numeric_binary,
    pg_type_for_arrow,
    pg_type_for_duckdb,
    pg_type_name,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------
# Frontend message construction (independent of the reader)


def cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def tagged(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack(">i", len(body) + 4) + body


def startup_packet(code: int, body: bytes = b"") -> bytes:
    return struct.pack(">ii", len(body) + 8, code) + body


def encode_frontend(msg: m.FrontendMessage) -> bytes:
    match msg:
        case m.Query(sql):
            return tagged(b"Q", cstr(sql))
        case m.Parse(name, query, oids):
            body = cstr(name) + cstr(query) + struct.pack(f">h{len(oids)}I", len(oids), *oids)
            return tagged(b"P", body)
        case m.Bind(portal, statement, pfmts, params, rfmts):
            body = cstr(portal) + cstr(statement)
            body += struct.pack(f">h{len(pfmts)}h", len(pfmts), *pfmts)
            body += struct.pack(">h", len(params))
            for p in params:
                body += struct.pack(">i", -1) if p is None else struct.pack(">i", len(p)) + p
            body += struct.pack(f">h{len(rfmts)}h", len(rfmts), *rfmts)
            return tagged(b"B", body)
        case m.Describe(kind, name):
            return tagged(b"D", kind.encode() + cstr(name))
        case m.Execute(portal, max_rows):
            return tagged(b"E", cstr(portal) + struct.pack(">i", max_rows))
        case m.Close(kind, name):
            return tagged(b"C", kind.encode() + cstr(name))
        case m.Sync():
            return tagged(b"S", b"")
        case m.Flush():
            return tagged(b"H", b"")
        case m.Terminate():
            return tagged(b"X", b"")
        case m.CopyData(data):
            return tagged(b"d", data)
        case m.CopyDone():
            return tagged(b"c", b"")
        case m.CopyFail(message):
            return tagged(b"f", cstr(message))
        case m.PasswordMessage(data):
            return tagged(b"p", data)
    raise AssertionError(msg)


names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
)
i16s = st.integers(0, 1)
tagged_messages = st.one_of(
    st.builds(m.Query, names),
    st.builds(m.Parse, names, names, st.lists(st.integers(0, 2**32 - 1), max_size=5).map(tuple)),
    st.integers(0, 5).flatmap(
        lambda n: st.builds(
            m.Bind,
            names,
            names,
            st.one_of(
                st.just(()), st.tuples(i16s), st.lists(i16s, min_size=n, max_size=n).map(tuple)
            ),
            st.lists(st.one_of(st.none(), st.binary(max_size=30)), min_size=n, max_size=n).map(
                tuple
            ),
            st.lists(i16s, max_size=5).map(tuple),
        )
    ),
    st.builds(m.Describe, st.sampled_from("SP"), names),
    st.builds(m.Execute, names, st.integers(0, 2**31 - 1)),
    st.builds(m.Close, st.sampled_from("SP"), names),
    st.just(m.Sync()),
    st.just(m.Flush()),
    st.just(m.Terminate()),
    st.builds(m.CopyData, st.binary(max_size=100)),
    st.just(m.CopyDone()),
    st.builds(m.CopyFail, names),
    st.builds(m.PasswordMessage, st.binary(max_size=40)),
)


def feed_in_chunks(reader: m.MessageReader, data: bytes, cuts: Sequence[int]) -> list[object]:
    out: list[object] = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    prev = 0
    for p in [*points, len(data)]:
        out += reader.feed(data[prev:p])
        prev = p
    return out


@FAST
@given(
    params=st.dictionaries(names.filter(bool), names, max_size=4),
    msgs=st.lists(tagged_messages, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
)
def test_framing_round_trip_in_random_chunks(
    params: dict[str, str], msgs: list[m.FrontendMessage], cuts: list[int]
) -> None:
    body = b"".join(cstr(k) + cstr(v) for k, v in params.items()) + b"\x00"
    data = startup_packet(m.PROTOCOL_3_0, body) + b"".join(encode_frontend(x) for x in msgs)
    reader = m.MessageReader()
    got = feed_in_chunks(reader, data, cuts)
    assert got == [m.StartupMessage(m.PROTOCOL_3_0, params), *msgs]
    assert reader.buffered == 0
    assert not reader.in_startup


def test_ssl_request_pauses_and_keeps_startup_phase() -> None:
    reader = m.MessageReader()
    startup = startup_packet(m.PROTOCOL_3_0, cstr("user") + cstr("u") + b"\x00")
    assert reader.feed(startup_packet(m.SSL_REQUEST_CODE) + startup) == [m.SSLRequest()]
    assert reader.in_startup
    assert reader.buffered == len(startup)  # must be rejected before a TLS handshake
    assert reader.feed(b"") == [m.StartupMessage(m.PROTOCOL_3_0, {"user": "u"})]
    assert reader.feed(startup_packet(m.GSSENC_REQUEST_CODE)) == []  # now tagged: needs more
    assert m.MessageReader().feed(startup_packet(m.GSSENC_REQUEST_CODE)) == [m.GSSENCRequest()]


def test_cancel_request() -> None:
    data = startup_packet(m.CANCEL_REQUEST_CODE, struct.pack(">iI", 1234, 0xDEADBEEF))
    assert m.MessageReader().feed(data) == [m.CancelRequest(1234, 0xDEADBEEF)]


def test_function_call_is_unsupported_not_fatal() -> None:
    reader = m.MessageReader()
    reader.feed(startup_packet(m.PROTOCOL_3_0, b"\x00"))
    assert reader.feed(tagged(b"F", b"\x00\x00\x00\x01") + tagged(b"S", b"")) == [
        m.Unsupported(b"F"),
        m.Sync(),
    ]


def after_startup() -> m.MessageReader:
    reader = m.MessageReader(max_message_size=1 << 16)
    reader.feed(startup_packet(m.PROTOCOL_3_0, b"\x00"))
    return reader


@pytest.mark.parametrize(
    "data",
    [
        tagged(b"Q", b"select 1"),  # missing NUL
        tagged(b"Q", b"select 1\x00junk"),  # trailing bytes
        tagged(b"Q", b"\xff\xfe\x00"),  # invalid UTF-8
        b"Q" + struct.pack(">i", 3),  # length < 4
        b"Q" + struct.pack(">i", -5),
        b"Q" + struct.pack(">i", (1 << 16) + 1),  # oversized, rejected on the header
        tagged(b"Z", b""),  # not a frontend message
        tagged(b"S", b"x"),  # Sync has no body
        tagged(b"D", b"X\x00"),  # bad describe kind
        tagged(b"E", b"\x00\x00\x00"),  # truncated int
        tagged(b"P", b"\x00q\x00" + struct.pack(">h", -1)),  # negative count
        tagged(b"P", b"\x00q\x00" + struct.pack(">hI", 2, 23)),  # count mismatch
        tagged(b"B", b"\x00\x00" + struct.pack(">hhh", 0, 1, 0) + struct.pack(">i", -2)),
        tagged(b"B", b"\x00\x00" + struct.pack(">hhh", 0, 1, 0) + struct.pack(">i", 10) + b"ab"),
        tagged(
            b"B", b"\x00\x00" + struct.pack(">hhhhh", 2, 0, 0, 1, -1) + b"\xff\xff\xff\xff\x00\x00"
        ),
    ],
)
def test_malformed_tagged_messages_raise_protocol_violation(data: bytes) -> None:
    with pytest.raises(m.ProtocolViolation) as exc:
        after_startup().feed(data)
    assert exc.value.sqlstate in ("08P01", "22021")


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">i", 3),
        struct.pack(">i", 7) + b"abc",
        struct.pack(">i", 100_000),
        startup_packet(m.SSL_REQUEST_CODE, b"x"),
        startup_packet(m.PROTOCOL_3_0, cstr("user")),  # value missing
        startup_packet(m.PROTOCOL_3_0, cstr("user") + cstr("u")),  # final NUL missing
        startup_packet(m.CANCEL_REQUEST_CODE, b"\x00\x00"),
    ],
)
def test_malformed_startup_packets_raise_protocol_violation(data: bytes) -> None:
    with pytest.raises(m.ProtocolViolation):
        m.MessageReader().feed(data)


def test_messages_before_a_violation_are_delivered_first() -> None:
    reader = after_startup()
    assert reader.feed(tagged(b"Q", cstr("select 1")) + tagged(b"Z", b"")) == [m.Query("select 1")]
    for _ in range(2):
        with pytest.raises(m.ProtocolViolation):
            reader.feed(tagged(b"S", b""))


def test_protocol_2_is_feature_not_supported() -> None:
    with pytest.raises(m.ProtocolViolation) as exc:
        m.MessageReader().feed(startup_packet(2 << 16, b"\x00"))
    assert exc.value.sqlstate == "0A000"


@FAST
@given(data=st.binary(max_size=300), startup=st.booleans())
def test_garbage_only_ever_raises_protocol_violation(data: bytes, startup: bool) -> None:
    reader = m.MessageReader(max_message_size=1024) if startup else after_startup()
    try:
        for _ in range(3):  # resume after pauses
            reader.feed(data)
            data = b""
    except m.ProtocolViolation:
        pass


# --------------------------------------------------------------------------
# Backend messages


def test_backend_messages_bytes() -> None:
    assert m.authentication_ok() == b"R\x00\x00\x00\x08\x00\x00\x00\x00"
    assert m.ready_for_query("I") == b"Z\x00\x00\x00\x05I"
    assert m.command_complete("SELECT 1") == b"C\x00\x00\x00\x0dSELECT 1\x00"
    assert m.parameter_status("a", "b") == b"S\x00\x00\x00\x08a\x00b\x00"
    assert m.data_row([b"1", None]) == b"D\x00\x00\x00\x0f\x00\x02\x00\x00\x00\x011\xff\xff\xff\xff"
    assert (
        m.parameter_description([23, 25])
        == b"t\x00\x00\x00\x0e\x00\x02\x00\x00\x00\x17\x00\x00\x00\x19"
    )
    assert m.error_response({"S": "ERROR", "C": "42601", "M": "x\x00y"}) == (
        b"E\x00\x00\x00\x17SERROR\x00C42601\x00Mxy\x00\x00"
    )
    assert m.copy_in_response(0, 2) == b"G\x00\x00\x00\x0b\x00\x00\x02\x00\x00\x00\x00"
    rd = m.row_description([m.Field("a", 23, 4)])
    assert rd == b"T" + struct.pack(">ih", 26, 1) + b"a\x00" + struct.pack(
        ">ihihih", 0, 0, 23, 4, -1, 0
    )
    with pytest.raises(ValueError):
        m.ready_for_query("X")


# --------------------------------------------------------------------------
# pgtypes


def test_type_mapping() -> None:
    assert pg_type_for_arrow(pa.int32()) == (Oid.INT4, 4, -1)
    assert pg_type_for_arrow(pa.int8()) == (Oid.INT2, 2, -1)
    assert pg_type_for_arrow(pa.uint32()) == (Oid.OID, 4, -1)
    assert pg_type_for_arrow(pa.decimal128(18, 3)) == (Oid.NUMERIC, -1, ((18 << 16) | 3) + 4)
    assert pg_type_for_arrow(pa.timestamp("us", tz="UTC"))[0] == Oid.TIMESTAMPTZ
    assert pg_type_for_arrow(pa.list_(pa.float64()))[0] == Oid.FLOAT8_ARRAY
    assert pg_type_for_arrow(pa.struct([("a", pa.int8())]))[0] == Oid.TEXT
    assert pg_type_for_arrow(pa.month_day_nano_interval())[0] == Oid.INTERVAL
    assert pg_type_for_arrow(pa.uuid())[0] == Oid.UUID
    assert pg_type_name(Oid.INT4) == "int4"
    assert pg_type_name(Oid.INT4_ARRAY) == "_int4"
    assert pg_type_for_duckdb("DECIMAL(18,3)") == Oid.NUMERIC
    assert pg_type_for_duckdb("timestamp with time zone") == Oid.TIMESTAMPTZ
    assert pg_type_for_duckdb("INTEGER[]") == Oid.INT4_ARRAY
    assert pg_type_for_duckdb("VARCHAR") == Oid.TEXT
    assert pg_type_for_duckdb("STRUCT(a INTEGER)") == Oid.TEXT


UTC = dt.UTC
TEXT_PARAMS: list[tuple[bytes, int, object]] = [
    (b"42", Oid.INT4, 42),
    (b" -7 ", Oid.INT2, -7),
    (b"9223372036854775807", Oid.INT8, 2**63 - 1),
    (b"1.5", Oid.FLOAT8, 1.5),
    (b"-Infinity", Oid.FLOAT8, -math.inf),
    (b"12.50", Oid.NUMERIC, decimal.Decimal("12.50")),
    (b"t", Oid.BOOL, True),
    (b"no", Oid.BOOL, False),
    (b"ON", Oid.BOOL, True),
    (b"2024-02-29", Oid.DATE, dt.date(2024, 2, 29)),
    (b"2024-02-29 12:00:01.5", Oid.TIMESTAMP, dt.datetime(2024, 2, 29, 12, 0, 1, 500000)),
    (b"2024-02-29 12:00:00+02", Oid.TIMESTAMPTZ, dt.datetime(2024, 2, 29, 10, tzinfo=UTC)),
    (b"2024-02-29 12:00:00", Oid.TIMESTAMPTZ, dt.datetime(2024, 2, 29, 12, tzinfo=UTC)),
    (b"13:14:15.000001", Oid.TIME, dt.time(13, 14, 15, 1)),
    (b"\\x00ff", Oid.BYTEA, b"\x00\xff"),
    (b"a\\\\b\\001", Oid.BYTEA, b"a\\b\x01"),
    (b"00000000-0000-0000-0000-000000000001", Oid.UUID, uuid.UUID(int=1)),
    (b'{"a": 1}', Oid.JSONB, '{"a": 1}'),
    (b"{1,2,NULL}", Oid.INT4_ARRAY, [1, 2, None]),
    (b'{"a b","\\"",NULL,"NULL",c}', Oid.TEXT_ARRAY, ["a b", '"', None, "NULL", "c"]),
    (b"{{1,2},{3,4}}", Oid.INT8_ARRAY, [[1, 2], [3, 4]]),
    (b"{}", Oid.FLOAT8_ARRAY, []),
    (b"caf\xc3\xa9", Oid.TEXT, "café"),
    (b"x", 0, "x"),
    (b"1 day", Oid.INTERVAL, "1 day"),
]


@pytest.mark.parametrize(("raw", "oid", "expected"), TEXT_PARAMS)
def test_decode_param_text(raw: bytes, oid: int, expected: object) -> None:
    assert decode_param(raw, oid, 0) == expected


@pytest.mark.parametrize(
    ("raw", "oid", "sqlstate"),
    [
        (b"4x", Oid.INT4, "22P02"),
        (b"99999", Oid.INT2, "22003"),
        (b"", Oid.INT8, "22P02"),
        (b"one", Oid.FLOAT8, "22P02"),
        (b"1e99", Oid.FLOAT4, "22003"),
        (b"1.2.3", Oid.NUMERIC, "22P02"),
        (b"maybe", Oid.BOOL, "22P02"),
        (b"o", Oid.BOOL, "22P02"),
        (b"2024-02-30", Oid.DATE, "22007"),
        (b"noon", Oid.TIMESTAMP, "22007"),
        (b"\\xZZ", Oid.BYTEA, "22P02"),
        (b"\\9", Oid.BYTEA, "22P02"),
        (b"not-a-uuid", Oid.UUID, "22P02"),
        (b"{bad", Oid.JSON, "22P02"),
        (b"{1,2", Oid.INT4_ARRAY, "22P02"),
        (b"{1,x}", Oid.INT4_ARRAY, "22P02"),
        (b"1,2", Oid.INT4_ARRAY, "22P02"),
        (b"\xff", Oid.TEXT, "22021"),
    ],
)
def test_decode_param_text_errors(raw: bytes, oid: int, sqlstate: str) -> None:
    with pytest.raises(ParamDecodeError) as exc:
        decode_param(raw, oid, 0)
    assert exc.value.sqlstate == sqlstate


def dump_binary(value: object, oid: int) -> bytes:
    """psycopg's binary dumper for ``value`` as type ``oid`` (arrays: built by hand)."""
    if isinstance(value, list):
        elem = {Oid.INT4_ARRAY: Oid.INT4}[oid]
        head = struct.pack(">iiI", 1 if value else 0, None in value, elem)
        if value:
            head += struct.pack(">ii", len(value), 1)
        return head + b"".join(
            struct.pack(">i", -1) if v is None else struct.pack(">i", 4) + struct.pack(">i", v)
            for v in value
        )
    tx = psycopg.adapt.Transformer()
    dumper = tx.get_dumper(value, psycopg.adapt.PyFormat.BINARY)
    if dumper.oid != oid:
        cls = psycopg.adapters.get_dumper_by_oid(oid, Format.BINARY)
        dumper = cls(type(value))
    out = dumper.dump(value)
    assert out is not None
    return bytes(out)


finite_floats = st.floats(allow_nan=False)
BINARY_CASES = [
    (st.booleans(), Oid.BOOL),
    (st.integers(-(2**15), 2**15 - 1), Oid.INT2),
    (st.integers(-(2**31), 2**31 - 1), Oid.INT4),
    (st.integers(-(2**63), 2**63 - 1), Oid.INT8),
    (finite_floats, Oid.FLOAT8),
    (st.floats(width=32, allow_nan=False), Oid.FLOAT4),
    (st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")), Oid.TEXT),
    (st.binary(), Oid.BYTEA),
    (st.dates(), Oid.DATE),
    (st.datetimes(), Oid.TIMESTAMP),
    (st.datetimes(timezones=st.just(UTC)), Oid.TIMESTAMPTZ),
    (st.times(), Oid.TIME),
    (st.decimals(allow_nan=False, allow_infinity=False, places=None), Oid.NUMERIC),
    (st.uuids(), Oid.UUID),
    (st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1))), Oid.INT4_ARRAY),
]


@pytest.mark.parametrize(
    ("strategy", "oid"), BINARY_CASES, ids=[pg_type_name(o) for _, o in BINARY_CASES]
)
def test_decode_param_binary_round_trip(strategy: st.SearchStrategy[object], oid: int) -> None:
    @FAST
    @given(value=strategy)
    def check(value: object) -> None:
        raw = dump_binary(value, oid)
        got = decode_param(raw, oid, 1)
        if oid == Oid.FLOAT4:
            assert got == pytest.approx(value, rel=1e-6) or got == value
        elif oid == Oid.NUMERIC:
            assert got == value
            assert isinstance(got, decimal.Decimal)
        else:
            assert got == value

    check()


@FAST
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_numeric_binary_matches_psycopg(value: decimal.Decimal) -> None:
    loader = psycopg.adapt.Transformer().get_loader(Oid.NUMERIC, Format.BINARY)
    got = loader.load(encode_numeric_binary(value))
    assert got == value
    if value == value.to_integral_value() and value.as_tuple().exponent >= 0:  # type: ignore[operator]
        return
    assert str(got) == str(value) or got.as_tuple().exponent == value.as_tuple().exponent


@pytest.mark.parametrize(
    ("raw", "oid", "fmt"),
    [
        (b"\x00\x01\x02", Oid.INT4, 1),
        (b"", Oid.BOOL, 1),
        (b"\x00" * 7, Oid.TIMESTAMP, 1),
        (b"\x00\x05\x00\x00\x00\x00\x00\x00", Oid.NUMERIC, 1),
        (b"\x00" * 15, Oid.UUID, 1),
        (b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x17", Oid.INT4_ARRAY, 1),
        (b"1", Oid.INT4, 2),
        (b"x", Oid.TIMETZ, 1),
    ],
)
def test_decode_param_binary_errors(raw: bytes, oid: int, fmt: int) -> None:
    with pytest.raises(ParamDecodeError):
        decode_param(raw, oid, fmt)


def test_decode_param_null() -> None:
    assert decode_param(None, Oid.INT4, 1) is None
    assert decode_param(None, Oid.INT4, 0) is None


# --------------------------------------------------------------------------
# Codec


def parse_data_rows(data: bytes) -> list[list[bytes | None]]:
    rows: list[list[bytes | None]] = []
    pos = 0
    while pos < len(data):
        tag, length = struct.unpack_from(">ci", data, pos)
        assert tag == b"D"
        end = pos + 1 + length
        (ncols,) = struct.unpack_from(">h", data, pos + 5)
        p = pos + 7
        row: list[bytes | None] = []
        for _ in range(ncols):
            (n,) = struct.unpack_from(">i", data, p)
            p += 4
            if n == -1:
                row.append(None)
            else:
                row.append(data[p : p + n])
                p += n
        assert p == end
        rows.append(row)
        pos = end
    return rows


def encode_and_load(arr: pa.Array, fmt: int) -> tuple[list[object], m.Field]:
    """Encode one column and load every value back with psycopg's loader for its OID."""
    batch = pa.record_batch([arr], names=["c"])
    enc = batch_encoder(batch.schema, [fmt])
    field = enc.fields[0]
    rows = parse_data_rows(enc.encode(batch))
    assert len(rows) == len(arr)
    loader = psycopg.adapt.Transformer().get_loader(field.type_oid, Format(field.format))
    return [None if r[0] is None else loader.load(r[0]) for r in rows], field


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


PG_RANGE_DATES = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
PG_RANGE_TIMES = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
CODEC_CASES: list[tuple[st.SearchStrategy[object], pa.DataType]] = [
    (st.booleans(), pa.bool_()),
    (st.integers(-(2**7), 2**7 - 1), pa.int8()),
    (st.integers(-(2**15), 2**15 - 1), pa.int16()),
    (st.integers(-(2**31), 2**31 - 1), pa.int32()),
    (st.integers(-(2**63), 2**63 - 1), pa.int64()),
    (st.integers(0, 2**64 - 1), pa.uint64()),
    (st.floats(), pa.float64()),
    (st.floats(width=32), pa.float32()),
    (st.decimals(min_value=-(10**15) + 1, max_value=10**15 - 1, places=3), pa.decimal128(18, 3)),
    (st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")), pa.string()),
    (st.binary(), pa.binary()),
    (PG_RANGE_DATES, pa.date32()),
    (PG_RANGE_TIMES, pa.timestamp("us")),
    (PG_RANGE_TIMES.map(lambda d: d.replace(tzinfo=UTC)), pa.timestamp("us", tz="UTC")),
    (st.times(), pa.time64("us")),
    (st.uuids().map(lambda u: u.bytes), pa.uuid()),
    (
        st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=5),
        pa.list_(pa.int64()),
    ),
    (st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=5), pa.list_(pa.string())),
    (st.lists(st.one_of(st.none(), st.floats()), max_size=5), pa.list_(pa.float64())),
    (st.lists(st.one_of(st.none(), st.booleans()), max_size=5), pa.list_(pa.bool_())),
    (st.lists(st.one_of(st.none(), PG_RANGE_DATES), max_size=5), pa.list_(pa.date32())),
]


def expected_value(v: object, t: pa.DataType) -> object:
    if pa.types.is_floating(t) and isinstance(v, float) and t == pa.float32():
        return float(np.float32(v))
    if isinstance(t, pa.BaseExtensionType):
        return uuid.UUID(bytes=v)  # type: ignore[arg-type]
    if pa.types.is_uint64(t):
        return decimal.Decimal(v)  # type: ignore[arg-type]
    return v


@pytest.mark.parametrize("fmt", [0, 1], ids=["text", "binary"])
@pytest.mark.parametrize(
    ("strategy", "arrow_type"), CODEC_CASES, ids=[str(t) for _, t in CODEC_CASES]
)
def test_codec_round_trip_through_psycopg(
    strategy: st.SearchStrategy[object], arrow_type: pa.DataType, fmt: int
) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values=st.lists(st.one_of(st.none(), strategy), max_size=20), start=st.integers(0, 3))
    def check(values: list[object], start: int) -> None:
        # A slice with an offset checks that buffer offsets are honoured.
        padded = [None] * start + values
        arr = pa.array(padded, arrow_type).slice(start)
        got, field = encode_and_load(arr, fmt)
        assert field.type_oid == pg_type_for_arrow(arrow_type)[0]
        for v, g in zip(values, got, strict=True):
            want = None if v is None else expected_value(v, arrow_type)
            if arrow_type == pa.float32() and isinstance(g, float):
                g = float(np.float32(g))  # text float4 is parsed back as a double
            assert same(g, want), (v, g)

    check()


@FAST
@given(st.lists(st.one_of(st.floats(), st.floats(width=32)), min_size=1, max_size=30))
def test_float_text_is_postgres_shortest(values: list[float]) -> None:
    arr = pa.array(values, pa.float64())
    rows = parse_data_rows(
        batch_encoder(pa.schema([("f", pa.float64())]), []).encode(
            pa.record_batch([arr], names=["f"])
        )
    )
    for v, r in zip(values, rows, strict=True):
        assert r[0] == pg_float_text(v).encode()
        assert same(float(r[0].decode().replace("Infinity", "inf")), v)


@pytest.mark.parametrize(
    ("value", "single", "pg"),
    [
        (0.1, False, "0.1"),
        (1e15, False, "1e+15"),
        (1e14, False, "100000000000000"),
        (123456789012345.6, False, "123456789012345.6"),
        (1.5e-5, False, "1.5e-05"),
        (0.0001, False, "0.0001"),
        (-0.0, False, "-0"),
        (1e100, False, "1e+100"),
        (5e-324, False, "5e-324"),
        (1.7976931348623157e308, False, "1.7976931348623157e+308"),
        (math.nan, False, "NaN"),
        (-math.inf, False, "-Infinity"),
        (1e6, True, "1e+06"),
        (123456.0, True, "123456"),
        (1234567.0, True, "1.234567e+06"),
        (float(np.float32(0.1)), True, "0.1"),
        (float(np.float32(3.4028235e38)), True, "3.4028235e+38"),
    ],
)
def test_pg_float_text_known_values(value: float, single: bool, pg: str) -> None:
    assert pg_float_text(value, single) == pg


def text_of(arr: pa.Array) -> list[bytes | None]:
    batch = pa.record_batch([arr], names=["c"])
    return [r[0] for r in parse_data_rows(batch_encoder(batch.schema, []).encode(batch))]


def test_text_matches_postgres_output() -> None:
    assert text_of(pa.array([True, False, None])) == [b"t", b"f", None]
    assert text_of(pa.array([decimal.Decimal("12.50")], pa.decimal128(5, 2))) == [b"12.50"]
    assert text_of(pa.array([dt.datetime(2020, 1, 2, 3, 4, 5, 120000)])) == [
        b"2020-01-02 03:04:05.12"
    ]
    assert text_of(pa.array([dt.datetime(2020, 1, 2)], pa.timestamp("s"))) == [
        b"2020-01-02 00:00:00"
    ]
    assert text_of(pa.array([dt.datetime(2020, 1, 2)], pa.timestamp("ns", tz="UTC"))) == [
        b"2020-01-02 00:00:00+00"
    ]
    assert text_of(pa.array([-800_000], pa.date32())) == [b"0222-09-04 BC"]
    assert text_of(pa.array([dt.time(1, 2, 3, 400000)])) == [b"01:02:03.4"]
    assert text_of(pa.array([b"\x01\xab"])) == [b"\\x01ab"]
    assert text_of(pa.array([uuid.UUID(int=255).bytes], pa.uuid())) == [
        b"00000000-0000-0000-0000-0000000000ff"
    ]
    assert text_of(pa.array([["a b", "", None, "null", 'q"\\'], []])) == [
        b'{"a b","",NULL,"null","q\\"\\\\"}',
        b"{}",
    ]
    assert text_of(pa.array([[[1, 2], [3, 4]]])) == [b"{{1,2},{3,4}}"]
    assert text_of(pa.array([[b"\x00"]])) == [b'{"\\\\x00"}']
    intervals = pa.array(
        [
            pa.MonthDayNano([14, 3, 4 * 3600 * 10**9 + 5 * 10**9 + 6000]),
            pa.MonthDayNano([0, 0, 0]),
            pa.MonthDayNano([-1, 1, -3600 * 10**9]),
            pa.MonthDayNano([0, 1, 0]),
        ]
    )
    assert text_of(intervals) == [
        b"1 year 2 mons 3 days 04:00:05.000006",
        b"00:00:00",
        b"-1 mons +1 day -01:00:00",
        b"1 day",
    ]
    assert text_of(pa.array([dt.timedelta(hours=36)])) == [b"1 day 12:00:00"]
    assert text_of(pa.array([{"a": 1, "b": "x"}])) == [b'{"a": 1, "b": "x"}']
    assert text_of(pa.array([None, None], pa.null())) == [None, None]
    assert text_of(pa.array(["x", None, "x"]).dictionary_encode()) == [b"x", None, b"x"]


def test_interval_text_parses_in_psycopg() -> None:
    arr = pa.array(
        [pa.MonthDayNano([0, 3, 4 * 3600 * 10**9 + 6000]), pa.MonthDayNano([0, -2, 10**9])]
    )
    got, field = encode_and_load(arr, 0)
    assert field.type_oid == Oid.INTERVAL
    assert got == [dt.timedelta(days=3, hours=4, microseconds=6), dt.timedelta(days=-2, seconds=1)]
    got, field = encode_and_load(arr, 1)
    assert field.format == 1
    assert got == [dt.timedelta(days=3, hours=4, microseconds=6), dt.timedelta(days=-2, seconds=1)]


def test_unsupported_binary_falls_back_to_text() -> None:
    schema = pa.schema([("s", pa.struct([("a", pa.int8())])), ("i", pa.int32())])
    enc = batch_encoder(schema, [1])
    assert [(f.type_oid, f.format) for f in enc.fields] == [(Oid.TEXT, 0), (Oid.INT4, 1)]


def test_format_codes() -> None:
    schema = pa.schema([("a", pa.int32()), ("b", pa.string())])
    assert [f.format for f in batch_encoder(schema, [0, 1]).fields] == [0, 1]
    assert [f.format for f in batch_encoder(schema, []).fields] == [0, 0]
    with pytest.raises(FormatCodeError):
        batch_encoder(schema, [0, 1, 1])
    with pytest.raises(FormatCodeError) as exc:
        batch_encoder(schema, [2])
    assert exc.value.sqlstate == "22023"


def test_many_columns_and_empty_batch() -> None:
    schema = pa.schema([(f"c{i}", pa.int64()) for i in range(30)])
    batch = pa.record_batch([pa.array([i, None]) for i in range(30)], schema=schema)
    rows = parse_data_rows(batch_encoder(schema, []).encode(batch))
    assert rows[0] == [str(i).encode() for i in range(30)]
    assert rows[1] == [None] * 30
    assert batch_encoder(schema, []).encode(batch.slice(0, 0)) == b""
