"""The SQLSTATE of each class of error, side by side with a real PostgreSQL 15.

Each statement fails on both; the SQLSTATE QuackML sends (DuckDB's exception
mapped by server/postgres/sqlstate.py's table, or the server's own check) must
be the one PostgreSQL sends, and the one named here (so that a statement
failing on PostgreSQL for another reason, such as a missing table, is caught).
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import psycopg
import pytest

from server.postgres import sqlstate
from tests.conftest import RunningServer, side_by_side

SETUP = [
    "DROP TABLE IF EXISTS ss_child",
    "DROP TABLE IF EXISTS ss_parent",
    "DROP TABLE IF EXISTS ss_check",
    "CREATE TABLE ss_parent (id integer PRIMARY KEY, code text, qty integer)",
    "CREATE TABLE ss_child (id integer, parent_id integer REFERENCES ss_parent (id))",
    "CREATE TABLE ss_check (a integer CHECK (a > 0))",
    "CREATE INDEX ss_idx ON ss_parent (qty)",
    "INSERT INTO ss_parent VALUES (1, 'a', 10), (2, 'b', 20)",
    "CREATE SCHEMA IF NOT EXISTS ss_schema",
]

CASES = [
    # undefined / ambiguous functions and operators
    ("42883", "SELECT abs(1, 2)"),
    ("42883", "SELECT 1 + true"),
    ("42883", "SELECT ss_no_such_function(1)"),
    ("42725", "SELECT 'a' - 'b'"),
    # names
    ("42703", "SELECT nope FROM ss_parent"),
    ("42702", "SELECT id FROM ss_parent p JOIN ss_child c ON p.id = c.id"),
    ("42712", "SELECT * FROM ss_parent t1, ss_parent t1"),
    ("42712", "WITH x AS (SELECT 1), x AS (SELECT 2) SELECT 1"),
    ("42P01", "SELECT * FROM ss_nope"),
    ("42P01", "SELECT nope.id FROM ss_parent"),
    ("3F000", "DROP SCHEMA ss_nope"),
    ("42704", "CREATE TABLE ss_bad (x notatype)"),
    ("42704", "DROP INDEX ss_no_such_index"),
    # settings
    ("42704", "SET ss_no_such_setting = 1"),
    ("42704", "SHOW ss_no_such_setting"),
    ("42704", "RESET ss_no_such_setting"),
    # grouping, windows, positions
    ("42803", "SELECT id, count(*) FROM ss_parent"),
    ("42803", "SELECT count(*) FROM ss_parent WHERE count(*) > 1"),
    ("42803", "SELECT sum(sum(qty)) FROM ss_parent"),
    ("42P20", "SELECT id FROM ss_parent WHERE row_number() OVER () > 1"),
    ("42P10", "SELECT * FROM ss_parent ORDER BY 5"),
    ("42P10", "SELECT id FROM ss_parent GROUP BY 5"),
    ("2201W", "SELECT 1 LIMIT -1"),
    # statement shape
    ("42601", "SELEC 1"),
    ("42601", "SELECT id FROM ss_parent UNION SELECT id, qty FROM ss_parent"),
    ("42601", "INSERT INTO ss_parent (id) VALUES (9, 10)"),
    ("42601", "INSERT INTO ss_parent (id, code) VALUES (10)"),
    ("42P16", "CREATE TABLE ss_two_pk (a integer PRIMARY KEY, b integer PRIMARY KEY)"),
    # duplicates
    ("42701", "CREATE TABLE ss_dup (a integer, a text)"),
    ("42701", "ALTER TABLE ss_parent ADD COLUMN qty integer"),
    ("42701", "INSERT INTO ss_parent (id, id) VALUES (1, 2)"),
    ("42P07", "CREATE TABLE ss_parent (a integer)"),
    ("42P07", "CREATE INDEX ss_idx ON ss_parent (qty)"),
    ("42P06", "CREATE SCHEMA ss_schema"),
    ("2BP01", "DROP TABLE ss_parent"),
    # datatype mismatch
    ("42804", "SELECT COALESCE(1, 'a'::text)"),
    ("42804", "SELECT CASE WHEN true THEN 1 ELSE 'a'::text END"),
    ("42804", "SELECT ARRAY[1, 'a'::text]"),
    ("42846", "SELECT DATE '2024-01-01'::integer"),
    # values
    ("22P02", "SELECT 'abc'::integer"),
    ("22P02", "SELECT 'x'::boolean"),
    ("22003", "SELECT '99999999999'::integer"),
    ("22003", "SELECT '123456'::numeric(5, 2)"),
    ("22003", "SELECT 70000::smallint"),
    ("22003", "SELECT 12345.678::numeric(4, 1)"),
    ("22003", "SELECT 2147483647::integer + 1"),
    ("22003", "SELECT acos(2)"),
    ("22008", "SELECT '2024-13-01'::date"),
    ("22008", "SELECT '25:00:00'::time"),
    ("22008", "SELECT '2024-01-01 25:00'::timestamp"),
    ("22008", "SELECT make_date(2024, 13, 1)"),
    ("22007", "SELECT 'tomorrow-ish'::date"),
    ("22007", "SELECT 'not a date'::timestamp"),
    ("22007", "SELECT interval '1 fortnight'"),
    ("22007", "SELECT 'x'::interval"),
    ("2201F", "SELECT sqrt(-1)"),
    ("2201F", "SELECT power(0, -1)"),
    ("2201E", "SELECT ln(0)"),
    ("2201E", "SELECT log(-1)"),
    ("22012", "SELECT 1 / 0"),
    ("22012", "SELECT 1 % 0"),
    ("2201B", "SELECT 'abc' ~ '('"),
    ("21000", "SELECT (SELECT id FROM ss_parent)"),
    # constraints
    ("23505", "INSERT INTO ss_parent VALUES (1, 'x', 1)"),
    ("23502", "INSERT INTO ss_parent (id) VALUES (NULL)"),
    ("23503", "INSERT INTO ss_child VALUES (5, 99)"),
    ("23514", "INSERT INTO ss_check VALUES (-1)"),
]


@pytest.fixture(scope="module")
def both(server: RunningServer, pg: str) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    with side_by_side(server, pg, SETUP) as pair:
        yield pair


def _failure(conn: psycopg.Connection, stmt: str) -> psycopg.errors.Diagnostic:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(stmt)
    return info.value.diag


@pytest.mark.parametrize(("expected", "stmt"), CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_sqlstate_matches_postgres(both: tuple[psycopg.Connection, psycopg.Connection],
                                   expected: str, stmt: str) -> None:
    p, q = both
    pg_diag = _failure(p, stmt)
    assert pg_diag.sqlstate == expected, pg_diag.message_primary
    ours = _failure(q, stmt)
    assert ours.sqlstate == expected, ours.message_primary
    # one line, PostgreSQL's shape: DuckDB's candidate lists and hints are not the message
    assert ours.message_primary and "\n" not in ours.message_primary


def test_rules_reach_every_row() -> None:
    """Within one exception class the catch-all row comes last, so no row is shadowed."""
    seen_catch_all: set[type] = set()
    for cls, pattern, code in sqlstate.RULES:
        assert cls not in seen_catch_all, (cls, pattern, code)
        assert len(code) == 5
        if pattern is None:
            seen_catch_all.add(cls)
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as info:
        con.execute("SELECT 'abc'::integer")
    assert sqlstate.sqlstate_of(info.value) == "22P02"
