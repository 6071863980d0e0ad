"""server.postgres.exprtypes: the result column types read from a statement's select
list, applied only where DuckDB's own type is the one each stands for (the statements
run side by side with PostgreSQL in tests/test_postgres_types.py)."""

from __future__ import annotations

import pytest

from server.errors import ServerError
from server.postgres.exprtypes import pg_types
from server.protocol.types import Oid

J, B, F, V = "JSON", "BIGINT", "FLOAT", "VARCHAR"


@pytest.mark.parametrize(("sql", "duckdb_types", "expected"), [
    # jsonb: casts, jsonb functions, operators over jsonb; json stays json
    ("SELECT '{}'::jsonb, '{}'::json, CAST(x AS JSONB)", [J, J, J],
     (Oid.JSONB, None, Oid.JSONB)),
    ("SELECT '{}'::jsonb -> 'a' -> 0, '{}'::json -> 'a', x::jsonb || '{}', "
     "'{}'::jsonb - 'a', '{}' || '{}'::jsonb", [J, J, J, J, V],
     (Oid.JSONB, None, Oid.JSONB, Oid.JSONB, None)),
    ("SELECT jsonb_build_object('a', 1), to_jsonb(1), to_json(1), jsonb_agg(x ORDER BY y) "
     "FROM t", [J, J, J, J], (Oid.JSONB, Oid.JSONB, None, Oid.JSONB)),
    # #> and #>> (not DuckDB's syntax) are read as -> and ->>
    ("SELECT '{}'::jsonb #> '{a}', '{}'::jsonb #>> '{a}', '{}'::json #> '{a}'", [J, V, J],
     (Oid.JSONB, None, None)),
    # never where DuckDB's type is another: ->> is text, a jsonb_* function may not be JSON
    ("SELECT '{}'::jsonb ->> 'a', jsonb_typeof('1'::jsonb)", [V, V], None),
    # integer where DuckDB's is BIGINT only
    ("SELECT position('a' IN 'ba'), ntile(2) OVER (), ntile(2) OVER () + 1", [B, B, B],
     (Oid.INT4, Oid.INT4, None)),
    ("SELECT DATE '2024-01-02' - d, d - DATE '2024-01-01', current_date - d, a - b, "
     "d - 1 FROM t", [B, B, B, B, "DATE"], (Oid.INT4, Oid.INT4, Oid.INT4, None, None)),
    # real with an integer or numeric is double precision; real with real stays real
    ("SELECT f * 2, f + 1.5, f - 2::int2, f * f, 2 * g FROM t", [F, F, F, F, "DOUBLE"],
     (Oid.FLOAT8, Oid.FLOAT8, Oid.FLOAT8, None, None)),
    ("SELECT pg_typeof(1), pg_typeof(1)::text", [V, V], (Oid.REGTYPE, None)),
    # generate_series of int4 constants in FROM (not of bigger ones)
    ("SELECT * FROM generate_series(1, 3) AS g", [B], (Oid.INT4,)),
    ("SELECT g.a, a + 1 FROM generate_series(1, 3) AS g (a)", [B, B], (Oid.INT4, None)),
    ("SELECT * FROM generate_series(1, 3000000000) AS g", [B], None),
    # information_schema: sql_identifier is name, character_data and yes_or_no varchar
    ("SELECT table_name, table_type, c.column_name, is_nullable, ordinal_position "
     "FROM information_schema.columns c", [V, V, V, V, "INTEGER"],
     (Oid.NAME, Oid.VARCHAR, Oid.NAME, Oid.VARCHAR, None)),
    # joined with a table: only qualified names are the view's
    ("SELECT c.column_name, name FROM information_schema.columns c JOIN t ON true", [V, V],
     (Oid.NAME, None)),
    # varchar casts, not char(n) nor text
    ("SELECT 'a'::varchar(3), 'a'::char(3), 'a'::text, CAST('a' AS character varying)",
     [V, V, V, V], (Oid.VARCHAR, Oid.BPCHAR, None, Oid.VARCHAR)),
    # through a subquery or CTE, by name and by *; a table's columns are DuckDB's
    ("SELECT x, * FROM (SELECT '{}'::jsonb AS x, 1 AS y) s", [J, J, "INTEGER"],
     (Oid.JSONB, Oid.JSONB, None)),
    ("WITH c AS (SELECT jsonb_build_object('a', 1) AS j) SELECT c.j FROM c", [J],
     (Oid.JSONB,)),
    ("SELECT *, '{}'::jsonb FROM t", [J, "INTEGER", J], (None, None, Oid.JSONB)),
    # the first query of a set operation
    ("SELECT '1'::jsonb UNION ALL SELECT '2'::jsonb", [J], (Oid.JSONB,)),
])
def test_types(sql: str, duckdb_types: list[str], expected: tuple[Oid | None, ...] | None
               ) -> None:
    assert pg_types(sql, None, duckdb_types) == expected


def test_columns_must_line_up() -> None:
    """A result whose width is not the select list's gets no type (nothing is guessed)."""
    assert pg_types("SELECT '{}'::jsonb, 1", None, [J]) is None


def test_statements_without_trigger_words_are_not_parsed() -> None:
    assert pg_types("SELECT x FROM t", None, [J]) is None


def test_generate_series_takes_one_column_alias() -> None:
    with pytest.raises(ServerError) as raised:
        pg_types("SELECT * FROM generate_series(1, 3) AS g (a, b)", None, [B])
    assert raised.value.sqlstate == "42P10"
    assert str(raised.value) == 'table "g" has 1 columns available but 2 columns specified'
