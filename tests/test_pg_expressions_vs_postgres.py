"""PostgreSQL expressions DuckDB lacks (server/postgres/syntax.py rewrites,
server/postgres/functions.py macros), side by side with PostgreSQL 15: the same
values and the same result column names."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import RunningServer, side_by_side

QUERIES = [
    "SELECT 10 # 6, 5 # 5, (1 + 2) # abs(-4)",
    "SELECT |/ 16.0, |/ (4 * 4)",
    "SELECT 5 BETWEEN SYMMETRIC 10 AND 1, 5 BETWEEN SYMMETRIC 1 AND 4, 5 BETWEEN 10 AND 1",
    "SELECT justify_hours(INTERVAL '36 hours'), justify_hours(INTERVAL '-50 hours 3 minutes'), "
    "justify_hours(INTERVAL '1 month 27 hours 10 seconds')",
    "SELECT make_interval(days => 10), make_interval(hours => 2, mins => 30), "
    "make_interval(1, 2)",
    "SELECT array_dims(ARRAY[1, 2, 3]), array_dims(ARRAY[]::int[])",
    "SELECT (DATE '2024-01-01', DATE '2024-02-01') OVERLAPS (DATE '2024-01-15', "
    "DATE '2024-03-01'), (DATE '2024-03-01', DATE '2024-02-01') OVERLAPS "
    "(DATE '2024-01-01', DATE '2024-01-15')",
    "SELECT INTERVAL '1 hour' / 2, '3 days'::interval / 4, INTERVAL '1 day' / 7",
    "SELECT ARRAY[1, 2] || ARRAY[3], ARRAY[1, 2] || 3, 0 || ARRAY[1], (ARRAY[1, 2])[2]",
    "SELECT substring('abcdef', 2, 3), substring('abcdef' FROM 2 FOR 3), substring('abc', 2), "
    "chr(65)",
    # literals read with PostgreSQL's input rules (server/postgres/literal_input.py)
    "SELECT 'May 17, 2024'::date, '20240517'::date, DATE '05/17/2024', "
    "CAST('17 May 2024' AS date), '2024-05-17'::date",
    "SELECT 'P1DT2H'::interval, INTERVAL 'PT1.5S', 'P1Y2M3W'::interval",
    "SELECT ' 42 '::integer, '-7'::int8, '5' + 1, 2 * '3', '1' + 1.5",
    # explicit casts to a sized string type cut (char(n) pads); jsonb literals as
    # jsonb writes them back; numbers with an exponent keep the scale they are written with
    "SELECT 'abc'::varchar(2), CAST('abcdef' AS character varying(3)), 'ab'::varchar(5), "
    "'abc'::char(2), 'ab'::char(4), CAST('x' AS character(3)), 'it''s'::varchar(3)",
    """SELECT '{"b":1,"a":2, "a": 3}'::jsonb::text, '{"a":1}'::jsonb::text, """
    """CAST('[1, {"bb": 1.50, "c": null}]' AS jsonb)::text, '{"b": 1}'::json::text""",
    "SELECT 1e3, 1e10::text, 1.5e-3, 2.5E+2::text",
]
TYPED = [   # the same type OIDs too
    "SELECT 'abc'::varchar(2), 'ab'::char(4), CAST('x' AS character(3)), 'a'::varchar",
    "SELECT 1e3, 1.5e-3",
]

ERRORS = [
    ("22P02", "SELECT '42.5'::integer"),
    ("42846", "SELECT DATE '2024-01-01'::integer"),
    ("22P02", "SELECT CAST('1e3' AS bigint)"),
    ("22P02", "SELECT '5.5' + 1"),
    ("22P02", "SELECT 'a' + 1"),
    ("22P02", "SELECT 1 - 'x.5'"),
    ("22008", "SELECT '17/05/2024'::date"),
    ("22008", "SELECT '20241301'::date"),
    ("22008", "SELECT to_date('2024-99-99', 'YYYY-MM-DD')"),
    ("22007", "SELECT to_date('nope', 'YYYY-MM-DD')"),
    ("22011", "SELECT substring('abc', 1, -1)"),
    ("54000", "SELECT chr(0)"),
    ("42601", "SELECT ARRAY[1, 2][1]"),
]


@pytest.fixture(scope="module")
def both(server: RunningServer, pg: str) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    with side_by_side(server, pg) as pair:
        yield pair


@pytest.mark.parametrize("query", QUERIES)
def test_same_as_postgres(both: tuple[psycopg.Connection, psycopg.Connection],
                          query: str) -> None:
    p, q = both
    expected, ours = p.execute(query), q.execute(query)
    assert ours.fetchall() == expected.fetchall()
    assert [c.name for c in ours.description or ()] == \
        [c.name for c in expected.description or ()]


@pytest.mark.parametrize("query", TYPED)
def test_same_types_as_postgres(both: tuple[psycopg.Connection, psycopg.Connection],
                                query: str) -> None:
    p, q = both
    expected, ours = p.execute(query), q.execute(query)
    assert [c.type_code for c in ours.description or ()] == \
        [c.type_code for c in expected.description or ()]
    assert ours.fetchall() == expected.fetchall()


@pytest.mark.parametrize(("sqlstate", "query"), ERRORS)
def test_same_error_as_postgres(both: tuple[psycopg.Connection, psycopg.Connection],
                                sqlstate: str, query: str) -> None:
    for conn in both:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(query)
        assert info.value.sqlstate == sqlstate, str(info.value)


def test_insert_of_fewer_values_than_columns(
        both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    """PostgreSQL fills the columns past the values with their defaults."""
    p, q = both
    for conn in (p, q):
        conn.execute("DROP TABLE IF EXISTS s1_short")
        conn.execute("CREATE TABLE s1_short (id integer PRIMARY KEY, code text DEFAULT 'd', "
                     "qty integer)")
        conn.execute("INSERT INTO s1_short VALUES (1, 'a', 2)")
        conn.execute("INSERT INTO s1_short VALUES (2, 'b'), (3, 'c')")
        conn.execute("INSERT INTO s1_short VALUES (4)")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO s1_short VALUES (1)")
        assert info.value.sqlstate == "23505"
    stmt = "SELECT * FROM s1_short ORDER BY id"
    assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall()
    for conn in (p, q):
        conn.execute("DROP TABLE s1_short")


def test_select_for_update(both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    """The locking clause is checked and dropped (DuckDB locks no rows)."""
    p, q = both
    for conn in (p, q):
        conn.execute("DROP TABLE IF EXISTS s1_lock")
        conn.execute("CREATE TABLE s1_lock (id integer, v text)")
        conn.execute("INSERT INTO s1_lock VALUES (1, 'a'), (2, 'b')")
    for stmt in ["SELECT * FROM s1_lock WHERE id = 1 FOR UPDATE",
                 "SELECT l.v FROM s1_lock l FOR NO KEY UPDATE OF l NOWAIT",
                 "SELECT id FROM s1_lock ORDER BY id LIMIT 1 FOR SHARE SKIP LOCKED",
                 "SELECT count(*) FROM (SELECT id FROM s1_lock FOR KEY SHARE) s"]:
        with p.transaction(), q.transaction():
            assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall(), stmt
    for conn in (p, q):
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT 1 FROM s1_lock FOR UPDATE OF nope")
        assert info.value.sqlstate == "42P01"
        conn.execute("DROP TABLE s1_lock")


def test_a_user_who_is_not_superuser_may_use_them(server: RunningServer) -> None:
    """The firewall lets the macros through (it sees what they expand to)."""
    with server.connect() as su:
        su.execute("DROP USER IF EXISTS s1_plain")
        su.execute("CREATE USER s1_plain PASSWORD 's1-pw'")
    try:
        with psycopg.connect(server.dsn(user="s1_plain", password="s1-pw"),
                             autocommit=True) as plain:
            assert plain.execute("SELECT current_user").fetchone() == ("s1_plain",)
            for query in QUERIES:
                assert plain.execute(query).fetchall()
    finally:
        with server.connect() as su:
            su.execute("DROP USER s1_plain")
