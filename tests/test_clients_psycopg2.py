"""psycopg2 (the driver dbt-postgres and much older code use): it sends every
statement with the simple Query protocol, its parameters interpolated on the
client (%s and %(name)s), and reads text results. Covers executemany and
execute_values, RealDictCursor, named (server-side, DECLARE/FETCH) cursors,
copy_expert in and out, transactions with rollback, errors with pgcode, and the
connection's server_version / encoding / isolation level start-up queries."""

from __future__ import annotations

import datetime
import decimal
import io
from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest

from tests.conftest import RunningServer


@pytest.fixture
def pg2(server: RunningServer) -> Iterator[psycopg2.extensions.connection]:
    con = psycopg2.connect(host=server.host, port=server.port, user="tester",
                           dbname="quackml", connect_timeout=10)
    yield con
    con.close()


def test_parameters_types_and_dict_rows(pg2: psycopg2.extensions.connection) -> None:
    assert pg2.server_version >= 150000
    assert pg2.encoding == "UTF8"
    with pg2.cursor() as cur:
        cur.execute("SELECT %s::INTEGER + 1, %s, %s, %s, %s, %s, %s",
                    (41, "it's", 1.5, True, None, datetime.date(2024, 2, 29),
                     decimal.Decimal("12.50")))
        assert cur.fetchone() == (42, "it's", 1.5, True, None, datetime.date(2024, 2, 29),
                                  decimal.Decimal("12.50"))
        cur.execute("SELECT %(a)s || %(b)s AS ab, %(when)s::TIMESTAMPTZ AS t",
                    {"a": "x", "b": "y",
                     "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)})
        ab, when = cur.fetchone()  # type: ignore[misc]
        assert ab == "xy" and when == datetime.datetime(2024, 1, 2, 3, 4, 5,
                                                        tzinfo=datetime.UTC)
        cur.execute("SELECT count(*) FROM customers WHERE contract = ANY(%s)",
                    (["One year", "Two year"],))
        assert cur.fetchone()[0] > 0  # type: ignore[index]
    pg2.rollback()
    with pg2.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT 1 AS one, 'a' AS letter")
        assert cur.fetchall() == [{"one": 1, "letter": "a"}]


def test_executemany_execute_values_and_transactions(
        pg2: psycopg2.extensions.connection) -> None:
    with pg2.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE p2_items (id INTEGER, name VARCHAR, "
                    "price DECIMAL(8,2))")
        cur.executemany("INSERT INTO p2_items VALUES (%s, %s, %s)",
                        [(i, f"n{i}", decimal.Decimal(i) / 4) for i in range(5)])
        psycopg2.extras.execute_values(cur, "INSERT INTO p2_items VALUES %s",
                                       [(i, None, None) for i in range(5, 10)])
        pg2.commit()
        cur.execute("UPDATE p2_items SET name = 'cheap' WHERE price < %s", (0.5,))
        assert cur.rowcount == 2
        cur.execute("DELETE FROM p2_items WHERE id >= %s RETURNING id", (8,))
        assert sorted(r[0] for r in cur.fetchall()) == [8, 9]
        pg2.rollback()
        cur.execute("SELECT count(*), count(*) FILTER (WHERE name = 'cheap') FROM p2_items")
        assert cur.fetchone() == (10, 0)
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cur.execute("SELECT * FROM p2_no_such_table")
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        pg2.rollback()
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_named_cursor_and_copy(pg2: psycopg2.extensions.connection) -> None:
    with pg2.cursor(name="p2_stream") as cur:
        cur.itersize = 100
        cur.execute("SELECT range AS i FROM range(1000) ORDER BY i")
        assert [r[0] for r in cur] == list(range(1000))
    pg2.commit()
    with pg2.cursor() as cur:
        cur.execute("CREATE OR REPLACE TABLE p2_copy (id INTEGER, name VARCHAR)")
        cur.copy_expert("COPY p2_copy FROM STDIN WITH (FORMAT csv)",
                        io.StringIO('1,a\n2,\n3,"x,y"\n'))
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT * FROM p2_copy ORDER BY id) TO STDOUT", out)
        assert out.getvalue() == "1\ta\n2\t\\N\n3\tx,y\n"
    pg2.commit()


def test_autocommit_and_isolation(pg2: psycopg2.extensions.connection) -> None:
    pg2.autocommit = True
    with pg2.cursor() as cur:
        cur.execute("SELECT 1; SELECT 2")   # one Query message, the last result kept
        assert cur.fetchone() == (2,)
        cur.execute("SHOW transaction_isolation")
        assert cur.fetchone() is not None
    pg2.autocommit = False
    # accepted (README: snapshot isolation for every transaction, READ ONLY not enforced)
    pg2.set_session(isolation_level="REPEATABLE READ", readonly=False)
    with pg2.cursor() as cur:
        cur.execute("SELECT 41 + 1")
        assert cur.fetchone() == (42,)
    pg2.commit()
