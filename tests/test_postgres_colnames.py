"""Result column names as PostgreSQL gives them (issue 11, item 10).

Unit tests of ``server.postgres.colnames`` on DuckDB's own parse trees, and
select lists sent to a real PostgreSQL 15 and to QuackML over psycopg, in
the simple protocol (libpq's PQexec) and the extended one (Describe of the
statement and of the portal), comparing the column names.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from server.postgres import colnames
from server.postgres.colnames import Slot
from tests.conftest import RunningServer
from tests.pgcluster import throwaway_postgres


def names(sql: str) -> tuple[str | Slot, ...] | None:
    found = colnames.naming(colnames.parse(sql), sql)
    return None if found is None else found.slots


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT count(*), sum(x), lower(y), pg_catalog.upper(y) FROM t",
     ("count", "sum", "lower", "upper")),
    ("SELECT 1, 'a', true, NULL, x + 1, -x, x IS NULL, $1 FROM t", ("?column?",) * 8),
    ("SELECT x, t.x, X, \"X\", x AS Total, x AS \"Total\" FROM t",
     ("x", "x", "x", "X", "total", "Total")),
    ("SELECT 1::int, 1::integer, 1::bigint, 1::smallint, 1::real, 1::float, "
     "1::double precision, 1::decimal, 1::numeric(10, 2)",
     ("int4", "int4", "int8", "int2", "float4", "float8", "float8", "numeric", "numeric")),
    ("SELECT 'a'::text, 'a'::varchar(3), 'a'::character varying, 'a'::char(2), 't'::boolean, "
     "'{1}'::int[], 1::pg_catalog.int4, 65::\"char\"",
     ("text", "varchar", "varchar", "bpchar", "bool", "int4", "int4", "char")),
    ("SELECT now()::timestamp with time zone, now()::time with time zone, "
     "date '2024-01-01', interval '1 day', interval '1' day, CAST(1 AS int)",
     ("now", "now", "date", "interval", "interval", "int4")),
    ("SELECT x::text, count(*)::int, 'a'::varchar(3)::text, 1::text::int4 FROM t",
     ("x", "count", "text", "int4")),
    ("SELECT CASE WHEN true THEN 1 END, CASE WHEN true THEN 1 ELSE x END, "
     "CASE WHEN true THEN 1 ELSE 2::int END FROM t", ("case", "x", "case")),
    ("SELECT ARRAY[1], ARRAY(SELECT 1), ROW(1, 2), (1, 2), coalesce(x, 1), greatest(1, 2), "
     "least(1, 2), nullif(1, 2), EXISTS (SELECT 1) FROM t",
     ("array", "array", "row", "row", "coalesce", "greatest", "least", "nullif", "exists")),
    ("SELECT (SELECT max(x) FROM t), (SELECT 1), (SELECT x AS q FROM t), x IN (SELECT 1) FROM t",
     ("max", "?column?", "q", "?column?")),
    ("SELECT a[1], a[1:2], (r).f, y COLLATE \"C\" FROM t", ("a", "a", "f", "y")),
    ("SELECT extract(year FROM d), date_part('year', d), trim(y), trim(leading FROM y), "
     "substring(y FROM 1 FOR 2), position('a' IN y), d AT TIME ZONE 'UTC' FROM t",
     ("extract", "date_part", "btrim", "ltrim", "substring", "position", "timezone")),
    ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), mode() WITHIN GROUP (ORDER BY x), "
     "count(*) OVER (), row_number() OVER (), sum(x) FILTER (WHERE x > 1) FROM t",
     ("percentile_cont", "mode", "count", "row_number", "sum")),
    ("SELECT y ~ 'a', y SIMILAR TO 'a', lower(y) LIKE 'a', now() AT TIME ZONE 'UTC' FROM t",
     ("?column?", "?column?", "?column?", "timezone")),
    ("SELECT current_date, current_timestamp, localtime, current_schema",
     ("current_date", "current_timestamp", "localtime", "current_schema")),
    ("VALUES (1, 'a')", ("column1", "column2")),
    ("SELECT * FROM (VALUES (1, 'a')) v(p)", ("p", "column2")),
    ("SELECT * FROM t", (Slot.STAR,)),
    ("SELECT 1, t.*, count(*) FROM t", ("?column?", Slot.STAR, "count")),
    ("WITH c AS (SELECT count(*), 1 FROM t) SELECT * FROM c", ("count", "?column?")),
    ("WITH c(n) AS (SELECT count(*), 1 FROM t) SELECT c.* FROM c", ("n", "?column?")),
    ("SELECT * FROM (SELECT lower(y) FROM t) s", ("lower",)),
    ("SELECT 1 + 1 UNION SELECT count(*) FROM t", ("?column?",)),
    ("SELECT 'é' AS \"é\", lower('É'), 'ü'::text", ("é", "lower", "text")),
])
def test_names_from_duckdbs_tree(sql: str, expected: tuple[str | Slot, ...]) -> None:
    assert names(sql) == expected


def test_statements_that_are_not_queries_are_not_named() -> None:
    assert names("INSERT INTO t VALUES (1) RETURNING x") is None
    assert names("SELECT 1; SELECT 2") is None
    assert colnames.naming_for("CREATE TABLE t (x int)") is None


def test_a_star_keeps_the_engines_names_of_its_columns() -> None:
    naming = colnames.Naming(("?column?", Slot.STAR, "count"))
    assert naming.apply(["1", "a", "b", "count_star()"]) == ("?column?", "a", "b", "count")
    assert naming.apply(["1", "count_star()"]) == ("?column?", "count")
    assert naming.apply(["1"]) is None   # fewer columns than named: left alone
    assert colnames.Naming(("count",)).apply(["count", "x"]) is None
    assert colnames.Naming(("count", Slot.KEEP)).apply(["count_star()", "x"]) == ("count", "x")
    assert colnames.Naming(("x",)).apply(["x"]) is None   # nothing to change


def test_plain_names_are_never_parsed() -> None:
    assert not colnames.needs_naming(["id", "name", "total_2"])
    for engine_name in ("count_star()", "1", "Total", "col0", "true", "(x + 1)"):
        assert colnames.needs_naming(["id", engine_name])
    plain = colnames.ResultNames("SELECT id, name FROM t")
    assert plain.rename(["id", "name"]) is None and plain.settled
    named = colnames.ResultNames("SELECT count(*) FROM t")
    assert named.rename(["count_star()"]) == ("count",) and not named.settled
    assert named.rename(["count_star()"]) == ("count",)


# -- against PostgreSQL 15 ---------------------------------------------------------------
SETUP = ["DROP TABLE IF EXISTS cn_t",
         "CREATE TABLE cn_t (x integer, y text, a integer[], d date, ts timestamp, n numeric)",
         "INSERT INTO cn_t VALUES (1, 'a', ARRAY[1, 2], DATE '2024-01-02', "
         "TIMESTAMP '2024-01-02 03:04:05', 1.5)"]

SELECT_LISTS = [
    "SELECT count(*) FROM cn_t",
    "SELECT count(x), count(DISTINCT y), sum(x), avg(x), min(x), max(y) FROM cn_t",
    "SELECT y, count(*) FROM cn_t GROUP BY y",
    "SELECT round(avg(n), 2), coalesce(sum(x), 0), nullif(count(*), 0) FROM cn_t",
    "SELECT sum(x)::float8 / count(*) FROM cn_t",
    "SELECT 1, 'a', true, NULL, 1.5, -1",
    "SELECT x + 1, -x, x * 2, x / 2, x % 2, y || 'b' FROM cn_t",
    "SELECT x IS NULL, x = 1, x IN (1, 2), x BETWEEN 1 AND 2, y LIKE 'a%', NOT true FROM cn_t",
    "SELECT 1::int, 1::integer, 1::bigint, 1::smallint, 1::real, 1::float, 1::double precision",
    "SELECT 1::numeric, 1::decimal, 1::numeric(10, 2), 'a'::text, 'a'::varchar(3)",
    "SELECT 'a'::character varying, 'a'::char(2), 't'::boolean, 't'::bool",
    "SELECT CAST(1 AS int), CAST(x AS text), x::text, count(*)::int FROM cn_t GROUP BY x",
    "SELECT date '2024-01-01', timestamp '2024-01-01 00:00', interval '1 day'",
    "SELECT '2024-01-01'::date, '12:00'::time, '2024-01-01'::timestamptz",
    "SELECT CASE WHEN x > 0 THEN 'pos' ELSE 'neg' END, CASE WHEN true THEN 1 ELSE x END "
    "FROM cn_t",
    "SELECT CASE x WHEN 1 THEN y END, CASE WHEN x > 0 THEN 'p' END AS sign FROM cn_t",
    "SELECT ARRAY[1, 2], ARRAY(SELECT x FROM cn_t), ROW(1, 2)",
    "SELECT coalesce(y, 'z'), greatest(x, 2), least(x, 0), nullif(x, 1) FROM cn_t",
    "SELECT EXISTS (SELECT 1 FROM cn_t), (SELECT max(x) FROM cn_t), (SELECT 1)",
    "SELECT x IN (SELECT x FROM cn_t), (SELECT x AS q FROM cn_t LIMIT 1) FROM cn_t",
    "SELECT a[1], a[1:2], array_length(a, 1), cardinality(a) FROM cn_t",
    "SELECT x, cn_t.x, X, x AS Total, x AS \"Total\", y AS label FROM cn_t",
    "SELECT lower(y), upper(y), length(y), LOWER(y), pg_catalog.lower(y) FROM cn_t",
    "SELECT extract(year FROM d), date_part('year', d), date_trunc('month', ts) FROM cn_t",
    "SELECT substring(y FROM 1 FOR 1), position('a' IN y), trim(y), trim(leading FROM y), "
    "ltrim(y), overlay(y PLACING 'b' FROM 1) FROM cn_t",
    "SELECT ts AT TIME ZONE 'UTC', ts::date FROM cn_t",
    "SELECT string_agg(y, ','), array_agg(x ORDER BY x), sum(x) FILTER (WHERE x > 0) FROM cn_t",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), "
    "percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM cn_t",
    "SELECT row_number() OVER (), rank() OVER (ORDER BY x), sum(x) OVER (), "
    "count(*) OVER () FROM cn_t",
    "SELECT current_date IS NOT NULL, abs(-1), ceil(1.5), floor(1.5), mod(7, 2), power(2, 3)",
    "SELECT * FROM cn_t",
    "SELECT cn_t.*, 1 FROM cn_t",
    "SELECT 1 AS a UNION SELECT 2",
    "SELECT x + 1 FROM cn_t UNION ALL SELECT x FROM cn_t",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT * FROM (VALUES (1, 'a')) v",
    "SELECT * FROM (VALUES (1, 'a')) v (p, q)",
    "WITH c AS (SELECT count(*), max(x) FROM cn_t) SELECT * FROM c",
    "SELECT * FROM (SELECT count(*), 1 FROM cn_t) s",
    "SELECT x::int::text, 1::text::int4, 'a'::varchar(3)::text FROM cn_t",
    "SELECT (x), ((x)), (x + 1), (lower(y)) FROM cn_t",
    "SELECT generate_series(1, 2), unnest(ARRAY[1])",
]


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    yield from throwaway_postgres()


def _setup(conn: psycopg.Connection) -> None:
    for sql in SETUP:
        conn.execute(sql)


def _simple(conn: psycopg.Connection, sql: str) -> list[str]:
    """The names in the simple query protocol's RowDescription (libpq's PQexec)."""
    result = conn.pgconn.exec_(sql.encode())
    assert result.error_message == b"", result.error_message
    return [(result.fname(i) or b"").decode() for i in range(result.nfields)]


def _extended(conn: psycopg.Connection, sql: str, prepare: bool) -> list[str]:
    cur = conn.execute(sql, prepare=prepare)
    assert cur.description is not None
    return [d.name for d in cur.description]


@pytest.fixture(scope="module")
def expected(pg: str) -> dict[str, list[str]]:
    with psycopg.connect(pg, autocommit=True) as conn:
        _setup(conn)
        return {sql: _simple(conn, sql) for sql in SELECT_LISTS}


@pytest.fixture(scope="module")
def quackml(server: RunningServer) -> Iterator[psycopg.Connection]:
    with server.connect() as conn:
        _setup(conn)
        yield conn


@pytest.mark.parametrize("sql", SELECT_LISTS)
def test_names_as_postgres_gives_them(quackml: psycopg.Connection,
                                      expected: dict[str, list[str]], sql: str) -> None:
    assert _simple(quackml, sql) == expected[sql]
    assert _extended(quackml, sql, prepare=False) == expected[sql]   # portal Describe
    for _ in range(2):   # Describe of the prepared statement, then its cached names
        assert _extended(quackml, sql, prepare=True) == expected[sql]


def test_names_with_parameters(quackml: psycopg.Connection, pg: str) -> None:
    sql = "SELECT %s::int + 1, count(*), max(y) AS top FROM cn_t WHERE x = %s"
    with psycopg.connect(pg, autocommit=True) as theirs:
        _setup(theirs)
        want = [d.name for d in theirs.execute(sql, (1, 1)).description or ()]
    assert want == ["?column?", "count", "top"]
    for prepare in (False, True, True):
        cur = quackml.execute(sql, (1, 1), prepare=prepare)
        assert [d.name for d in cur.description or ()] == want
        assert cur.fetchall() == [(2, 1, "a")]
