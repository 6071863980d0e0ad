"""numeric results of avg, variance and stddev as PostgreSQL gives them (issue 11,
item 11): of integers and numeric they are numeric, the exact quotient rounded to 16
decimals (server/postgres/functions.py), not DuckDB's DOUBLE; numbers written with an
exponent are numeric too (server/postgres/syntax.py). Each statement runs on
PostgreSQL 15 and on QuackML side by side and must give the same column names, type
OIDs and values (numeric compared by text, as the differential corpus compares).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import RunningServer
from tests.test_corpus_vs_postgres import Outcome, Statement, compare, outcomes_of

SETUP = [
    "CREATE TABLE nv_sales (id integer PRIMARY KEY, region text, qty integer, "
    "big bigint, small smallint, amount numeric(10, 2), ratio double precision, "
    "r real)",
    "INSERT INTO nv_sales VALUES "
    "(1, 'north', 3, 9000000000000000000, 3, 4.50, 0.5, 0.5), "
    "(2, 'north', 2, 9000000000000000000, 2, 2.00, 1.5, 1.5), "
    "(3, 'south', 5, -3, 5, 7.50, 2.25, 2.25), "
    "(4, 'south', -2, 7, -2, -3.33, NULL, NULL), "
    "(5, 'east', NULL, NULL, NULL, NULL, NULL, NULL), "
    "(6, 'north', 4, 5, 4, 6.05, 3.0, 3.0), "
    "(7, 'west', 1, 1, 1, 1.25, 1.0, 1.0)",
]

SAME = [
    "SELECT avg(qty), avg(small), avg(amount) FROM nv_sales",
    "SELECT region, avg(qty) AS a, avg(amount) FROM nv_sales WHERE region <> 'west' "
    "GROUP BY region ORDER BY region",
    # NULL for no rows and all-NULL groups
    "SELECT avg(qty), stddev(qty), var_pop(qty) FROM nv_sales WHERE false",
    "SELECT avg(qty), variance(qty) FROM nv_sales WHERE region = 'east'",
    # negative averages round half away from zero
    "SELECT avg(x) FROM (VALUES (-8), (0), (0)) AS v (x)",
    "SELECT avg(x) FROM (VALUES (-1.5), (-2.25)) AS v (x)",
    # nested: round of avg keeps the requested scale
    "SELECT region, round(avg(amount), 2), round(avg(qty), 1) FROM nv_sales "
    "GROUP BY region ORDER BY region",
    "SELECT avg(qty) * 2 FROM nv_sales",
    "SELECT region FROM nv_sales GROUP BY region HAVING avg(qty) > 2.5 ORDER BY region",
    "SELECT stddev(qty), variance(qty), stddev_samp(qty), var_samp(qty) FROM nv_sales",
    "SELECT stddev_pop(qty), var_pop(qty) FROM nv_sales",
    "SELECT stddev(small), variance(small), stddev_pop(big) FROM nv_sales WHERE id > 2",
    # avg(column) OVER w: from sum and count over the window
    "SELECT id, qty, avg(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) "
    "FROM nv_sales WHERE id < 5 ORDER BY id",
    "SELECT s.id, avg(s.amount) OVER w AS a, avg(ratio) OVER w, avg(r) OVER w "
    "FROM nv_sales AS s WHERE region IN ('north', 'south') "
    "WINDOW w AS (PARTITION BY region ORDER BY id) ORDER BY id",
    "SELECT region, avg(region_n) OVER () FROM (SELECT region, count(*) + 1 AS region_n "
    "FROM nv_sales WHERE region < 'w' GROUP BY region) AS g ORDER BY region",
    # float arguments keep float8 results, intervals intervals
    "SELECT avg(ratio), avg(r), stddev(ratio), variance(r) FROM nv_sales",
    "SELECT avg(DISTINCT qty), avg(DISTINCT amount), avg(DISTINCT ratio), "
    "avg(ratio) FILTER (WHERE id > 1) FROM nv_sales",
    "SELECT region, avg(DISTINCT small) AS d FROM nv_sales WHERE id < 7 GROUP BY region "
    "ORDER BY region",
    "SELECT avg(INTERVAL '1 day') FROM nv_sales",
    "SELECT avg(i) OVER () FROM (SELECT INTERVAL '1 day' AS i) AS v",
    # a number with an exponent is numeric (when it fits numeric here)
    "SELECT 1e3, 1.5E-3, 2.5e2 * 2, -1e3::int, 1e3 * 1.5::float8, 1e308::float8 > 0",
    "SELECT qty FROM nv_sales WHERE qty * 1e0 > 2.5e0 ORDER BY qty",
]


@pytest.fixture(scope="module")
def outcomes(server: RunningServer, pg: str) -> list[tuple[Outcome, Outcome]]:
    return outcomes_of((pg, server.dsn()), SETUP, SAME, ["nv_sales"])


@pytest.mark.parametrize("index", range(len(SAME)), ids=SAME)
def test_same_as_postgres(index: int, outcomes: list[tuple[Outcome, Outcome]]) -> None:
    theirs, ours = outcomes[index]
    statement = Statement("numeric", index, SAME[index])
    assert compare(statement, theirs, ours) == [], (theirs.describe(), ours.describe())


def test_scale_is_sixteen_decimals(conn: psycopg.Connection) -> None:
    """Where PostgreSQL's scale is not 16 (it keeps 16 significant digits: more decimals
    below 1 and when the leading digits of sum and count are equal, fewer from 10000
    on), the value is the same number with 16 decimals (docs/postgres-differences.md)."""
    cur = conn.cursor()
    cur.adapters.register_loader("numeric", psycopg.types.string.TextLoader)
    cur.execute("SELECT avg(x), avg(x / 3), avg(x * 10000000) FROM (VALUES (1), (1)) v (x)")
    # PostgreSQL: 1.00000000000000000000, 0.00000000000000000000, 10000000.000000000000
    assert cur.fetchall() == [("1.0000000000000000", "0.0000000000000000",
                               "10000000.0000000000000000")]
    cur.execute("SELECT avg(x) FROM (VALUES (1), (2), (0), (0)) v (x)")
    assert cur.fetchall() == [("0.7500000000000000",)]   # PostgreSQL: 0.75000000000000000000


def test_window_filter_order_stay_double(conn: psycopg.Connection) -> None:
    """DuckDB's macros take no OVER, DISTINCT, FILTER or ORDER BY (and pick a typed
    overload only for arguments that are no aggregates or windows): those calls are
    DuckDB's own aggregates, double precision (PostgreSQL: numeric); avg(DISTINCT x)
    and avg(column) OVER w have macros of their own."""
    cur = conn.execute("SELECT avg(x) FILTER (WHERE x > 1), avg(x ORDER BY x), "
                       "stddev(DISTINCT x), avg(x) FROM (VALUES (1), (2)) v (x)")
    assert [d.type_code for d in cur.description] == [701, 701, 701, 1700]
    cur = conn.execute("SELECT avg(x + 0) OVER (), avg(DISTINCT x) OVER () "
                       "FROM (VALUES (1), (2)) v (x)")
    assert [d.type_code for d in cur.description] == [701, 701]


def test_variance_beyond_int128_is_out_of_range(conn: psycopg.Connection) -> None:
    """n * sum(x * x) is a 128-bit integer: variance of bigints near the limits is
    22003 (PostgreSQL's numeric has room for it)."""
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        conn.execute("SELECT variance(x) FROM (VALUES (9000000000000000000), (1), (2), (3)) "
                     "v (x)").fetchall()
