"""Sans-IO units of the client layer: catalog rewrite, SET/SHOW parsing, COPY
parsing and the binary COPY format (hypothesis round trip)."""

from __future__ import annotations

import datetime
import io

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import FeatureNotSupported, SyntaxError_
from server.postgres import catalog as pgcatalog
from server.postgres import copy as copy_formats
from server.postgres.names import Names
from server.protocol import codec
from server.protocol.types import Oid
from server.sql import copy_spec as copy
from server.sql import cursors, params
from server.sql.text import split

CLIENT = pgcatalog.CLIENT_PARAMS


def one(sql: str):  # type: ignore[no-untyped-def]
    [stmt] = split(sql)
    return stmt


@given(st.lists(st.sampled_from(["a", "b", "tbl", "x1", "customers", "sum", "(", ")", ",",
                                 "1", "'s'", "+", "*", "SELECT", "FROM", "WHERE", "="]),
                min_size=1, max_size=30))
def test_rewrite_leaves_ordinary_sql_alone(words: list[str]) -> None:
    stmts = split(" ".join(words))
    for stmt in stmts:
        assert pgcatalog.rewrite(stmt) is None


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT version()", 'SELECT quackml_pg.version() AS "version"'),
    ("SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c",
     "SELECT quackml_pg.pg_get_userbyid(c.relowner) FROM quackml_pg.pg_class c"),
    ("SELECT 1 WHERE 'a' OPERATOR(pg_catalog.~) '^a$' COLLATE pg_catalog.default",
     "SELECT 1 WHERE 'a'  ~  '^a$' "),
    ("SELECT 'customers'::regclass", "SELECT quackml_pg.regclass_oid('customers')"),
    ("SELECT t.typelem::regtype::text FROM pg_type t",
     "SELECT quackml_pg.regtype_name(t.typelem)::text FROM quackml_pg.pg_type t"),
    ("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class",
     "SELECT pg_class.relname FROM quackml_pg.pg_class"),
    ("SELECT * FROM pg_catalog.unnest([1])", "SELECT * FROM unnest([1])"),
    ("SELECT CAST(x AS REGCLASS) FROM t", "SELECT CAST(x AS UINTEGER) FROM t"),
    ("SELECT information_schema._pg_expandarray(k)",
     "SELECT quackml_pg._pg_expandarray(k)"),
    # pg_dump's forms: an oid[] array literal, a comma-joined catalog, FROM ONLY
    ("SELECT x FROM unnest('{1,2}'::pg_catalog.oid[]) AS s(x)",
     "SELECT x FROM unnest('[1,2]'::UINTEGER[]) AS s(x)"),
    ("SELECT 1 FROM pg_depend d, pg_amop o WHERE o.oid = d.objid",
     "SELECT 1 FROM quackml_pg.pg_depend d, quackml_pg.pg_amop o WHERE o.oid = d.objid"),
    ("SELECT a, pg_amop FROM t", None),
    ("SELECT a FROM ONLY main.t", "SELECT a FROM  main.t"),
])
def test_rewrite_cases(sql: str, expected: str) -> None:
    assert pgcatalog.rewrite(one(sql)) == expected


_NAMES = Names("quackml", "db", {"f": frozenset({"analytics", "public"}),
                                  "f_probabilities": frozenset({"analytics", "public"})})


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM public.t", "SELECT * FROM main.t"),
    ('SELECT * FROM "public"."t"', 'SELECT * FROM main."t"'),
    ("SELECT * FROM quackml.public.t", 'SELECT * FROM "db".main.t'),
    ('SELECT * FROM "quackml".s.t', 'SELECT * FROM "db".s.t'),
    ("SELECT * FROM db.public.t", "SELECT * FROM db.main.t"),
    ("CREATE SCHEMA IF NOT EXISTS public", "CREATE SCHEMA IF NOT EXISTS main"),
    ('CREATE SCHEMA IF NOT EXISTS "quackml"."x"', 'CREATE SCHEMA IF NOT EXISTS "db"."x"'),
    ('CREATE SCHEMA IF NOT EXISTS "quackml"."public"',
     'CREATE SCHEMA IF NOT EXISTS "db".main'),
    ("SELECT analytics.f(a), public.f_probabilities(a) FROM t",
     "SELECT f(a), f_probabilities(a) FROM t"),
    ("SELECT other.f(a) FROM t", None),   # not the model's schema: not its function
    ('SELECT * FROM "quackml".information_schema."columns"',
     'SELECT * FROM quackml_pg."columns"'),
    ("SELECT current_database(), pg_catalog.current_schema()",
     'SELECT quackml_pg.quackml_current_database() AS "current_database", '
     "quackml_pg.quackml_current_schema()"),
    ("SELECT current_schema, current_catalog AS c",
     'SELECT quackml_pg.quackml_current_schema() AS "current_schema", '
     "quackml_pg.quackml_current_database() AS c"),
    # strings, columns and aliases named public stay as written
    ("SELECT 'public.t', t.public, quackml FROM t", None),
    ("SELECT CAST('t' AS regclass)", "SELECT quackml_pg.regclass_oid('t')"),
])
def test_rewrite_names(sql: str, expected: str | None) -> None:
    assert pgcatalog.rewrite(one(sql), _NAMES) == expected


def test_parse_client_parameters() -> None:
    assert params.parse(one("SET DateStyle TO 'ISO, MDY'"), CLIENT) == \
        params.SetParam("datestyle", "ISO, MDY")
    assert params.parse(one("set search_path = \"$user\", public"), CLIENT) == \
        params.SetParam("search_path", "$user, public")
    assert params.parse(one("SET SESSION extra_float_digits = -1"), CLIENT) == \
        params.SetParam("extra_float_digits", "-1")
    assert params.parse(one("SET TIME ZONE 'UTC'"), CLIENT) == params.SetParam("timezone", "UTC")
    assert params.parse(one("SET application_name TO DEFAULT"), CLIENT) == \
        params.SetParam("application_name", None)
    assert params.parse(one("SHOW ALL"), CLIENT) == params.ShowParam("all")
    assert params.parse(one("RESET DateStyle"), CLIENT) == params.ResetParam("datestyle")
    assert params.parse(one("SET threads = 4"), CLIENT) is None      # DuckDB's own setting
    assert params.parse(one("SHOW TABLES"), CLIENT) is None


def test_parse_copy() -> None:
    spec = copy.parse(one("COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)"))
    assert spec is not None
    assert (spec.target, spec.from_client, spec.format, spec.header, spec.delimiter) == (
        "t (a, b)", True, copy.CopyFormat.CSV, True, ",")
    assert spec.columns == ('"a"', '"b"')
    spec = copy.parse(one("copy t from stdin csv header delimiter as ';'"))
    assert spec is not None and spec.header and spec.delimiter == ";"
    spec = copy.parse(one("COPY (SELECT 1) TO STDOUT"))
    assert spec is not None and not spec.from_client
    assert (spec.format, spec.null, spec.delimiter) == (copy.CopyFormat.TEXT, "\\N", "\t")
    assert copy.parse(one("COPY t FROM 'file.csv'")) is None     # server-side: DuckDB's
    with pytest.raises(FeatureNotSupported):
        copy.parse(one("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)"))


def test_parse_cursor_statements() -> None:
    declared = cursors.parse(one('DECLARE "c1" NO SCROLL CURSOR WITH HOLD FOR SELECT 1'))
    assert isinstance(declared, cursors.Declare)
    assert (declared.name, declared.hold, declared.query.text) == ("c1", True, "SELECT 1")
    assert cursors.parse(one('FETCH FORWARD 10 FROM "c1"')) == cursors.Fetch("c1", 10, False)
    assert cursors.parse(one("FETCH ALL IN c1")) == cursors.Fetch("c1", None, False)
    assert cursors.parse(one("MOVE 3 c1")) == cursors.Fetch("c1", 3, True)
    assert cursors.parse(one("CLOSE ALL")) == cursors.CloseCursor(None)
    assert cursors.parse(one("FETCH BACKWARD 2 FROM c1")) == \
        cursors.Fetch("c1", 2, False, "backward")
    assert cursors.parse(one("FETCH -3 c1")) == cursors.Fetch("c1", 3, False, "backward")
    assert cursors.parse(one("MOVE ABSOLUTE -1 IN c1")) == \
        cursors.Fetch("c1", -1, True, "absolute")
    assert cursors.parse(one("FETCH LAST c1")) == cursors.Fetch("c1", -1, False, "absolute")
    assert cursors.parse(one("FETCH FORWARD -2 c1")) == \
        cursors.Fetch("c1", 2, False, "backward")
    with pytest.raises(SyntaxError_):
        cursors.parse(one("FETCH SIDEWAYS 1 FROM c1"))


def _unframe(messages: bytes) -> bytes:
    """The payload of a run of CopyData messages."""
    out = bytearray()
    pos = 0
    while pos < len(messages):
        assert messages[pos:pos + 1] == b"d"
        size = int.from_bytes(messages[pos + 1:pos + 5], "big")
        out += messages[pos + 5:pos + 1 + size]
        pos += 1 + size
    return bytes(out)


_rows = st.lists(st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31))),
    st.one_of(st.none(), st.floats(allow_nan=False)),
    st.one_of(st.none(), st.booleans())), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(_rows)
def test_binary_copy_round_trip(rows: list[tuple[object, ...]]) -> None:
    schema = pa.schema([("i", pa.int64()), ("s", pa.string()), ("d", pa.date32()),
                        ("f", pa.float64()), ("b", pa.bool_())])
    batch = pa.RecordBatch.from_pylist([dict(zip(schema.names, r, strict=True))
                                        for r in rows], schema=schema)
    encoder = codec.batch_encoder(schema, [1])
    payload = _unframe(copy_formats.binary_copy_data(encoder.encode(batch), first=True)) + \
        copy_formats.BINARY_TRAILER
    oids = [Oid.INT8, Oid.TEXT, Oid.DATE, Oid.FLOAT8, Oid.BOOL]
    [columns] = list(copy_formats.read_binary(io.BytesIO(payload), oids))
    assert [tuple(r) for r in zip(*columns, strict=True)] == rows


_SCALAR_TYPES = [pa.bool_(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint32(),
                 pa.uint64(), pa.float32(), pa.float64(), pa.string(), pa.large_string()]


def _values(t: pa.DataType) -> st.SearchStrategy[object]:
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_integer(t):
        info = (t.bit_width, pa.types.is_signed_integer(t))
        lo = -(2 ** (info[0] - 1)) if info[1] else 0
        hi = 2 ** (info[0] - 1) - 1 if info[1] else 2 ** info[0] - 1
        return st.integers(lo, hi)
    if pa.types.is_float32(t):
        return st.floats(width=32)
    if pa.types.is_float64(t):
        return st.floats()
    return st.text()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_small_batches_encode_as_large_ones(data: st.DataObject) -> None:
    """Point-query rows take a per-value path; it must write what the column
    encoders write for the same values in a large batch."""
    types = data.draw(st.lists(st.sampled_from(_SCALAR_TYPES), min_size=1, max_size=4))
    rows = data.draw(st.integers(1, 16))
    columns = [pa.array(data.draw(st.lists(st.one_of(st.none(), _values(t)),
                                           min_size=rows, max_size=rows)), type=t)
               for t in types]
    schema = pa.schema([(f"c{i}", t) for i, t in enumerate(types)])
    small = pa.RecordBatch.from_arrays(columns, schema=schema)
    large = pa.RecordBatch.from_arrays(
        [pa.concat_arrays([c] * (40 // rows + 1)) for c in columns], schema=schema)
    encoder = codec.batch_encoder(schema, [])
    small_bytes = encoder.encode(small)
    assert large.num_rows > 16
    assert encoder.encode(large)[:len(small_bytes)] == small_bytes


def test_token_scans_over_parentheses_and_brackets() -> None:
    from sqlglot.tokens import TokenType

    from server.sql.text import back_at_depth, closing_paren, top_level_items
    stmt = one("SELECT f(a, (b, c)), ARRAY[1, [2, 3]] FROM t")
    tokens = stmt.tokens
    texts = [t.text for t in tokens]
    comma = texts.index(",", texts.index("c") - 2)       # the comma between b and c
    assert [texts[j] for j in back_at_depth(tokens, comma)] == ["b", "("]
    last = len(tokens) - 1                                # t: every token before is at depth 0
    assert [texts[j] for j in back_at_depth(tokens, last)][:2] == ["FROM", "]"]
    bracket = texts.index("[")
    assert texts[closing_paren(tokens, bracket, (TokenType.L_BRACKET, TokenType.R_BRACKET))
                  + 1] == "FROM"
    assert closing_paren(tokens, texts.index("(")) == texts.index(",", texts.index("c")) - 1
    items = top_level_items(tokens, 1, texts.index("FROM"))
    assert [texts[a] for a, _ in items] == ["f", "ARRAY"]
