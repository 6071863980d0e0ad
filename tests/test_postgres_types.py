"""PostgreSQL types and functions that mean what they mean in PostgreSQL (issue 11,
item 10): each statement runs on PostgreSQL 15 and on QuackML, side by side, and
must give the same column names, type OIDs, rows and values (or the same SQLSTATE),
compared as the differential corpus compares (tests/test_corpus_vs_postgres.py).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import RunningServer
from tests.test_corpus_vs_postgres import Outcome, Statement, compare, outcomes_of

SETUP = [
    "CREATE TABLE pt_items (id integer PRIMARY KEY, name text, qty integer, "
    "price numeric(10, 2), tag uuid, doc jsonb, note json)",
    "INSERT INTO pt_items VALUES "
    "(1, 'apple', 3, 1.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": 1}', '[1]'), "
    "(2, NULL, NULL, NULL, NULL, NULL, NULL), "
    "(3, 'pear', 5, 2.25, 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '{\"k\": 2, \"z\": null}', "
    "'{\"a\": [1, 2]}')",
    "CREATE TABLE pt_literals (a integer, u integer[], v text[], r bytea, s text)",
]

SAME = [
    # strings are text (25), not varchar
    "SELECT 'hello', 'a' || 'b', upper(name) FROM pt_items WHERE id = 1",
    "SELECT name FROM pt_items ORDER BY id",
    # NULLs sort last ascending, first descending
    "SELECT name FROM pt_items ORDER BY name",
    "SELECT name FROM pt_items ORDER BY name DESC",
    "SELECT qty, rank() OVER (ORDER BY qty DESC) FROM pt_items ORDER BY id",
    # uuid, json and jsonb columns; sum of integers is bigint
    "SELECT tag, tag::text FROM pt_items ORDER BY id",
    "SELECT note FROM pt_items ORDER BY id",
    "SELECT sum(qty), sum(DISTINCT qty), sum(price) FROM pt_items",
    "SELECT name, sum(qty) FROM pt_items GROUP BY name ORDER BY name",
    # jsonb: a type, its operators and functions
    "SELECT doc ->> 'k', (doc ->> 'k')::int + 1 FROM pt_items ORDER BY id",
    "SELECT id FROM pt_items WHERE doc ->> 'k' = '2'",
    "SELECT '{\"a\": {\"b\": 2}}'::jsonb -> 'a' ->> 'b'",
    "SELECT json_agg(id ORDER BY id DESC) FROM pt_items",
    # jsonb operators
    "SELECT '{\"a\": 1}'::jsonb ? 'a', '{\"a\": 1}'::jsonb ? 'z', '[\"x\"]'::jsonb ? 'x'",
    "SELECT '{\"a\": 1, \"b\": 2}'::jsonb ?| ARRAY['b', 'x'], "
    "'{\"a\": 1}'::jsonb ?& ARRAY['a', 'x']",
    "SELECT '{\"a\": 1, \"b\": 2}'::jsonb @> '{\"b\": 2}', "
    "'{\"a\": 1}'::jsonb <@ '{\"a\": 1, \"b\": 2}', ARRAY[1, 2] @> ARRAY[1]",
    "SELECT '{\"a\": {\"b\": 2}}'::jsonb #>> '{a,b}', '{\"a\": [5, 6]}'::json #>> '{a,1}'",
    "SELECT id FROM pt_items WHERE doc ? 'z' ORDER BY id",
    # (jsonb is sent as json: compared as text)
    "SELECT ('{\"a\": 1}'::jsonb || '{\"b\": 2}'::jsonb)::text, "
    "('{\"a\": 1, \"b\": 2}'::jsonb - 'a')::text, 'a' || 'b' || 'c', 5 - 2",
    "SELECT (doc || '{\"new\": true}')::text FROM pt_items ORDER BY id",
    "SELECT doc ->> 'k' || '!', (doc -> 'k')::text || '{\"a\": 1}', name || '{\"x\": 1}' "
    "FROM pt_items ORDER BY id",
    "SELECT id FROM pt_items WHERE doc @> '{\"k\": 1}' OR NOT (doc) ? 'k' ORDER BY id",
    "SELECT json_build_object('a', 1, 'b', true), json_build_array(1, 'x', NULL)",
    "SELECT json_typeof('[1]'::json), json_typeof('\"s\"'), json_typeof('1.5'), "
    "json_typeof('null'), json_array_length('[1, 2, 3]'::json)",
    "SELECT * FROM json_each_text('{\"a\": \"1\", \"b\": \"2\"}'::json) ORDER BY key",
    "SELECT value FROM json_array_elements_text('[\"x\", \"y\"]') ORDER BY value",
    "SELECT json_object_keys('{\"b\": 1, \"a\": 2}'::json) AS k ORDER BY k",
    "SELECT json_array_elements('[1, {\"a\": 2}]'::json) AS e, 'x' AS y",
    "SELECT jsonb_pretty('{\"a\": 1}'::jsonb), jsonb_set('{\"a\": 1}'::jsonb, '{a}', '2')::text, "
    "jsonb_set('{\"a\": {\"b\": 1}}', '{a,c}', '\"new\"')::text, "
    "jsonb_strip_nulls('{\"a\": 1, \"b\": null}'::jsonb)::text",
    # jsonb results are jsonb (3802), json ones json (114): read from the select list
    "SELECT '{\"a\": 1}'::jsonb, '{\"a\": 1}'::json, CAST('[1]' AS jsonb), "
    "'{\"a\": {\"b\": 2}}'::jsonb -> 'a', '{\"a\": [1]}'::jsonb -> 'a' -> 0, "
    "'{\"a\": [1]}'::json -> 'a'",
    "SELECT '{\"a\": 1}'::jsonb || '{\"b\": 2}', '{\"a\": 1, \"b\": 2}'::jsonb - 'a', "
    "'{\"a\": 1}'::jsonb ->> 'a', ('{\"a\": 1}'::jsonb -> 'a')::text, "
    "jsonb_typeof('1'::jsonb)",
    "SELECT jsonb_build_object('a', 1), jsonb_build_array(1, 'x'), to_jsonb(42), to_json(42), "
    "jsonb_set('{\"a\": 1}'::jsonb, '{a}', '2'), jsonb_strip_nulls('{\"a\": null}'::jsonb), "
    "json_build_object('a', 1)",
    "SELECT jsonb_agg(id ORDER BY id), jsonb_object_agg(id, qty), json_agg(id ORDER BY id) "
    "FROM pt_items WHERE id <> 2",
    "SELECT jsonb_array_elements('[1, {\"a\": 2}]'::jsonb) AS e",
    "SELECT '{\"a\": {\"b\": 2}}'::jsonb #> '{a,b}', '{\"a\": {\"b\": 2}}'::jsonb #>> '{a,b}'",
    "SELECT x FROM (SELECT '{\"a\": 1}'::jsonb AS x) s",
    # integer (int4) results where DuckDB's are bigint
    "SELECT position('gre' IN 'PostgreSQL'), position('z' IN name), array_upper(ARRAY[1, 2], 1) "
    "FROM pt_items ORDER BY id",
    "SELECT id, ntile(2) OVER (ORDER BY id) FROM pt_items ORDER BY id",
    # pg_typeof is regtype, with PostgreSQL's type names
    "SELECT pg_typeof(1), pg_typeof(1.5), pg_typeof('a'::text), pg_typeof(true), "
    "pg_typeof(1::bigint), pg_typeof(2.5::float8), pg_typeof(DATE '2024-01-01'), "
    "pg_typeof(ARRAY[1, 2]), pg_typeof(now()), pg_typeof(TIMESTAMP '2024-01-01')",
    # (a column declared jsonb is json here: pg_typeof(doc) says json)
    "SELECT pg_typeof(qty), pg_typeof(price), pg_typeof(name), pg_typeof(note), "
    "pg_typeof(tag), pg_typeof(1)::text FROM pt_items WHERE id = 1",
    # date - date is integer; real with an integer or numeric is double precision
    "SELECT DATE '2024-03-01' - DATE '2024-02-01', current_date - current_date, "
    "d - DATE '2024-01-01' AS days FROM (VALUES (DATE '2024-02-15')) v (d)",
    "SELECT f * 2, f + 1.5, f - 2::smallint, f * f, -f FROM (VALUES (1.5::real)) v (f)",
    # generate_series of integers in FROM is integer; one column, one alias
    "SELECT * FROM generate_series(1, 10, 4) AS g ORDER BY 1",
    "SELECT g.a, generate_series FROM generate_series(1, 2) AS g (a), generate_series(3, 3)",
    "SELECT * FROM generate_series(1, 3) AS g (a, b)",
    # a cast to varchar is varchar (1043), to text text
    "SELECT 'hello'::varchar(10), CAST('a' AS character varying), 'a'::text, upper('a'::varchar), "
    "x FROM (SELECT 'b'::VARCHAR AS x) s",
    # sign(integer or double precision) is double precision, sign(numeric) numeric
    "SELECT sign(-3), sign(0), sign(2.5), sign(-2.5::float8), sign(price) FROM pt_items "
    "WHERE id = 1",
    # information_schema's identifiers are name, its other text varchar
    "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
    "WHERE table_name = 'pt_items' AND column_name IN ('id', 'name', 'qty') "
    "ORDER BY ordinal_position",
    "SELECT t.table_name, t.table_schema, t.table_type FROM information_schema.tables t "
    "WHERE t.table_name = 'pt_items'",
    # format()
    "SELECT format('%s has %s items', 'cart', 3)",
    "SELECT format('%I.%L', 'My Table', 'it''s'), format('%I', 'plain'), format('%I', 'select')",
    "SELECT format('%L, %L, %s.', NULL, 'a\\b', NULL)",
    "SELECT format('%2$s %1$s %%', 'a', 'b'), format('|%5s|%-5s|', 'x', 'y')",
    "SELECT format('%s %s', 1)",
    "SELECT format('%z', 1)",
    "SELECT format('%I', NULL)",
    "SELECT to_date('xx', 'DD/MM/YYYY')",
    # other string functions
    "SELECT initcap('hello wORLD-foo bar2baz'), btrim('--a--', '-'), btrim('  a  ')",
    "SELECT lpad('abcdef', 3), lpad('ab', 4), rpad('ab', 4), lpad('7', 3, '0')",
    "SELECT quote_literal('O''Neil'), quote_literal(42), quote_nullable(NULL), "
    "quote_ident('select'), quote_ident('Mixed'), quote_ident('ok_1')",
    "SELECT to_hex(255), to_hex(4096)",
    "SELECT regexp_match('foo123bar', '[0-9]+'), regexp_match('foo123', '([a-z]+)([0-9]+)'), "
    "regexp_match('abc', 'x')",
    "SELECT regexp_match('ABC', 'b', 'i'), regexp_match('k=v', '(\\w)=(\\w)')",
    "SELECT length('héllo'), length(name), strpos('PostgreSQL', 'SQL') FROM pt_items "
    "ORDER BY id",
    # LIKE escapes with a backslash by default; SIMILAR TO takes % and _
    "SELECT 'a%b' LIKE 'a\\%b', 'axb' LIKE 'a\\%b', 'a_b' LIKE 'a\\_b', 'AxB' ILIKE 'a\\%b'",
    "SELECT 'abc' SIMILAR TO 'a%', 'abc' SIMILAR TO 'a_c', 'abc' SIMILAR TO 'b%', "
    "'a.c' SIMILAR TO 'a.c', 'abc' SIMILAR TO 'a.c', 'abc' NOT SIMILAR TO '(x|a)%'",
    # numbers
    "SELECT div(7, 2), div(-7, 2), div(9.5, 2)",
    "SELECT width_bucket(5.35, 0.024, 10.06, 5), width_bucket(-1, 0, 10, 5), "
    "width_bucket(10, 0, 10, 5), width_bucket(5, 10, 0, 5)",
    "SELECT every(qty > 0), every(qty > 3) FROM pt_items",
    "SELECT gcd(12, 18), lcm(4, 6), gcd(12::bigint, 18), factorial(5)",
    "SELECT round(2.5::float8), round(-2.5::float8), round(3.5::float8), round(0.5::float8), "
    "round(2.4::float8), round(2.5), round(-2.5), round(2.567, 2), round(price) FROM pt_items "
    "WHERE id = 1",
    # a row IS NULL when every field is
    "SELECT (NULL::int, 1) IS NULL, (NULL::int, NULL::int) IS NULL, ROW(NULL, NULL) IS NOT NULL, "
    "ROW(1, 2) IS NOT NULL, (1) IS NULL, ROW(1, NULL) IS NOT NULL, coalesce(NULL, 2) IS NULL",
    "SELECT id FROM pt_items WHERE (name, qty) IS NULL OR (SELECT 1 FROM pt_items t, "
    "pt_items u LIMIT 1) IS NULL ORDER BY id",
    # numeric without a type modifier does not round to 3 decimals
    "SELECT 1::numeric, '1e3'::numeric, 12.345::numeric, -0.5::numeric, 0::numeric",
    "SELECT round(0.16666666::numeric, 4), 12345678901234567890.123456789::numeric",
    "SELECT qty::numeric * 2, sum(qty::numeric) OVER () FROM pt_items ORDER BY id",
    "SELECT CAST('0.123456789' AS decimal)",
    # array literals, bytea hex input, encode/decode, type names as functions
    "SELECT '{1,2,3}'::int[], '{}'::text[], '{\"a b\",c,NULL}'::text[], "
    "CAST('{{1,2},{3,4}}' AS integer[][]), 'b' = ANY ('{a,b}'::text[])",
    "SELECT '\\x48656c6c6f'::bytea, encode('hello'::bytea, 'base64'), "
    "decode('aGVsbG8=', 'base64'), encode('\\x01ff'::bytea, 'hex'), decode('01ff', 'hex')",
    "SELECT int4('7'), int8('8'), float8('1.5'), text(123), array_remove(ARRAY[1, 2, 1], 1)",
    # literals of INSERT ... VALUES read for their column, as PostgreSQL reads them
    "INSERT INTO pt_literals VALUES (1, '{1,2}', '{x,\"y z\"}', '\\x0102', '{not,an,array}')",
    "INSERT INTO pt_literals (s, r, a) VALUES ('\\x41', '\\x41', 2), ('{}', '\\x', 3)",
    "UPDATE pt_literals SET u = '{3,4}', r = '\\x43', s = '\\x43' WHERE a = 2 RETURNING u, r, s",
    "SELECT a, u, v, r, s FROM pt_literals ORDER BY a",
    # generate_series in the SELECT list gives rows
    "SELECT generate_series(1, 3), generate_series(1::bigint, 2)",
    "SELECT generate_series(1, 10, 4) AS g",
    "SELECT generate_series(DATE '2024-01-01', DATE '2024-01-03', INTERVAL '1 day')",
    "SELECT generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01 02:00', "
    "INTERVAL '1 hour')",
    "SELECT 'x' AS a, g::int FROM (SELECT generate_series(1, 2) AS g) s ORDER BY g",
    # dates and times
    "SELECT to_char(TIMESTAMP '2024-05-07 13:04:05', 'YYYY-MM-DD HH24:MI:SS')",
    "SELECT extract(year FROM DATE '2024-05-17'), EXTRACT(dow FROM DATE '2024-05-17'), "
    "extract(epoch FROM TIMESTAMP '2024-01-01 00:00:01.25'), "
    "extract(second FROM TIMESTAMP '2024-01-01 00:00:05.5'), "
    "extract(milliseconds FROM TIME '00:00:05.5'), extract(epoch FROM INTERVAL '1 day 1 hour')",
    "SELECT extract(month FROM d) AS m, count(*) FROM (VALUES (DATE '2024-01-02'), "
    "(DATE '2024-01-09'), (DATE '2024-03-01')) v (d) GROUP BY 1 ORDER BY 1",
    "SELECT to_char(DATE '2024-05-07', 'DD/MM/YYYY'), to_char(DATE '2024-05-07', 'Mon DD, YYYY')",
    "SELECT to_char(TIMESTAMP '2024-05-07 01:04:05', 'FMMonth FMDD, HH12:MI AM Dy')",
    "SELECT to_date('07/05/2024', 'DD/MM/YYYY')",
    "SELECT date_trunc('month', DATE '2024-05-17'), date_trunc('hour', TIMESTAMP "
    "'2024-05-17 10:30:00'), date_trunc('day', TIMESTAMPTZ '2024-05-17 10:30:00+00')",
    "SELECT to_char(TIMESTAMPTZ '2024-05-07 10:00:00+02', 'HH24:MI'), "
    "to_char(TIME '13:04:05', 'HH12:MI AM')",
    "SELECT to_char(1234.5, 'FM9999.00'), to_char(-1234.5, '9999.99'), to_char(0.5, '9.99'), "
    "to_char(1234567.891, '9,999,999.99'), to_char(-5, 'S999'), to_char(12, '9'), "
    "to_char(42::bigint, '000'), to_char(3.14159, 'FM990.0099')",
    "SELECT to_number('1,234.5', '9G999D9'), to_number('-12', '999')",
    "SELECT 'on'::bool, 'n'::bool, 'yes'::boolean, 'off'::boolean, '0'::boolean, "
    "CAST('of' AS boolean)",
    "SELECT octet_length('héllo'), octet_length('\\x0102'::bytea)",
    "SELECT to_timestamp('2024-05-07 13:04:05', 'YYYY-MM-DD HH24:MI:SS')",
    "SELECT date_part('year', DATE '2024-05-17'), date_part('month', TIMESTAMP '2024-05-17')",
]


@pytest.fixture(scope="module")
def outcomes(server: RunningServer, pg: str) -> list[tuple[Outcome, Outcome]]:
    return outcomes_of((pg, server.dsn()), ["SET TIME ZONE 'UTC'", *SETUP], SAME,
                       ["pt_items", "pt_literals"])


@pytest.mark.parametrize("index", range(len(SAME)), ids=SAME)
def test_same_as_postgres(index: int, outcomes: list[tuple[Outcome, Outcome]]) -> None:
    theirs, ours = outcomes[index]
    statement = Statement("postgres_types", index, SAME[index])
    assert compare(statement, theirs, ours) == [], (theirs.describe(), ours.describe())


def test_uuid_and_json_in_binary_format(conn: psycopg.Connection) -> None:
    """psycopg asks for binary results (and decodes each column as binary whatever the
    RowDescription says): uuid, json, jsonb (with its version byte), bigint sums and
    unconstrained numerics decode; a described statement (prepared) gives the same types."""
    cur = conn.cursor(binary=True)
    for prepare in (False, True):
        cur.execute("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, "
                    "'{\"a\": 1}'::jsonb AS j, sum(x) AS s, 1.50::numeric AS n, "
                    "0::numeric AS z, '[1]'::json AS k, "
                    "position('b' IN 'ab') AS p FROM (VALUES (1), (2)) v (x)", prepare=prepare)
        assert [d.type_code for d in cur.description] == \
            [2950, 3802, 20, 1700, 1700, 114, 23]
        (u, j, s, n, z, k, p), = cur.fetchall()
        assert (str(u), j, s, str(n), str(z), k, p) == \
            ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", {"a": 1}, 3, "1.5", "0", [1], 2)


def test_sum_beyond_bigint_is_out_of_range(conn: psycopg.Connection) -> None:
    """DuckDB's sum of integers is a 128-bit integer, sent as bigint: a sum that does
    not fit is 22003, as PostgreSQL's sum(int8) overflowing bigint would be."""
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        conn.execute("SELECT sum(x) FROM (VALUES (9223372036854775807), (1)) v (x)").fetchall()


def test_builtin_still_reachable(conn: psycopg.Connection) -> None:
    """The PostgreSQL to_hex overrides DuckDB's for unqualified calls; DuckDB's own is
    still system.main.to_hex."""
    assert conn.execute("SELECT to_hex(255), system.main.to_hex(255)").fetchall() == \
        [("ff", "FF")]


def test_numeric_text_has_no_exponent(conn: psycopg.Connection) -> None:
    """numeric values are written digit by digit (psql shows them as they come), never
    with the exponent Arrow writes for small decimals and zeros of a large scale."""
    cur = conn.cursor()
    cur.adapters.register_loader("numeric", psycopg.types.string.TextLoader)
    cur.execute("SELECT 0::numeric(20, 10), 0.0000001::numeric(20, 10), "
                "-0.00000012::numeric(20, 10), 0::numeric, 0.00000001::numeric")
    assert cur.fetchall() == [("0.0000000000", "0.0000001000", "-0.0000001200", "0",
                               "0.00000001")]


def test_cursor_rows_have_the_select_lists_types(conn: psycopg.Connection) -> None:
    """A SQL cursor's rows are typed as the statement's would be (jsonb, integer)."""
    with conn.transaction():
        conn.execute("DECLARE pt_c CURSOR FOR SELECT '{\"a\": 1}'::jsonb AS j, "
                     "position('a' IN 'ba') AS p, '[1]'::json AS k")
        cur = conn.execute("FETCH 1 FROM pt_c")
        assert [d.type_code for d in cur.description] == [3802, 23, 114]
        assert cur.fetchall() == [({"a": 1}, 2, [1])]
