"""pg8000 (pure-Python driver), both of its interfaces as their users use them:
pg8000.native (`run` with :named parameters, `prepare`, `columns`, `row_count`)
and pg8000.dbapi (DB-API 2.0: %s parameters, executemany, commit/rollback,
cursor.description), COPY through its `stream` argument. pg8000 sends every
parameter untyped (OID 0) as text and reads every result in text format."""

from __future__ import annotations

import datetime
import decimal
import io
from collections.abc import Iterator

import pg8000.dbapi
import pg8000.native
import pytest

from tests.conftest import RunningServer


@pytest.fixture
def native(server: RunningServer) -> Iterator[pg8000.native.Connection]:
    con = pg8000.native.Connection("tester", host=server.host, port=server.port,
                                   database="quackml", timeout=30)
    yield con
    con.close()


@pytest.fixture
def dbapi(server: RunningServer) -> Iterator[pg8000.dbapi.Connection]:
    con = pg8000.dbapi.connect("tester", host=server.host, port=server.port,
                               database="quackml", timeout=30)
    yield con
    con.close()


def test_native_parameters_and_types(native: pg8000.native.Connection) -> None:
    assert native.run("SELECT :a + 1 AS n", a=41) == [[42]]
    assert native.columns is not None and native.columns[0]["name"] == "n"
    assert native.run("SELECT :s || '!'", s="hi") == [["hi!"]]
    row = native.run(
        "SELECT 1::INTEGER, 2::BIGINT, 1.5::DOUBLE, 'x'::VARCHAR, true, DATE '2024-01-02', "
        "TIMESTAMP '2024-01-02 03:04:05', TIMESTAMPTZ '2024-01-02 03:04:05+00', "
        "12.50::DECIMAL(10,2), NULL::INTEGER, [1, 2]::INTEGER[]")[0]
    assert row == [1, 2, 1.5, "x", True, datetime.date(2024, 1, 2),
                   datetime.datetime(2024, 1, 2, 3, 4, 5),
                   datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
                   decimal.Decimal("12.50"), None, [1, 2]]
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    # pg8000 sends every parameter untyped (OID 0) as text: a cast or the context
    # types it; a bare one is text, as in PostgreSQL.
    assert native.run("SELECT :d::DECIMAL(10,2), :t::TIMESTAMPTZ, :day::DATE, :b::BOOLEAN, "
                      ":f::FLOAT8, :bare", d=decimal.Decimal("3.25"), t=when,
                      day=datetime.date(2020, 2, 29), b=False, f=2.5, bare=7) == [
        [decimal.Decimal("3.25"), when, datetime.date(2020, 2, 29), False, 2.5, "7"]]
    assert native.run("SELECT :n + 1, :f * 2.0::FLOAT8", n=3, f=1.25) == [[4, 2.5]]
    assert native.run("SELECT count(*) FROM customers WHERE tenure > :t", t=60)[0][0] > 0


def test_native_dml_prepare_and_errors(native: pg8000.native.Connection) -> None:
    native.run("DROP TABLE IF EXISTS p8_items")
    native.run("CREATE TABLE p8_items (id INTEGER PRIMARY KEY, name VARCHAR, price DOUBLE)")
    ins = native.prepare("INSERT INTO p8_items VALUES (:id, :name, :price)")
    for i in range(5):
        ins.run(id=i, name=f"n{i}", price=i * 1.5)
    ins.close()
    assert native.run("UPDATE p8_items SET price = 0 WHERE id >= :lo", lo=3) is None
    assert native.row_count == 2
    assert native.run("DELETE FROM p8_items WHERE id = :id RETURNING name", id=4) == [["n4"]]
    assert native.run("SELECT id, name FROM p8_items WHERE id = ANY(:ids) ORDER BY id",
                      ids=[1, 3]) == [[1, "n1"], [3, "n3"]]
    with pytest.raises(pg8000.native.DatabaseError) as info:
        native.run("SELECT * FROM p8_no_such_table")
    assert info.value.args[0]["C"] == "42P01"
    assert native.run("SELECT 1") == [[1]]
    native.run("START TRANSACTION")
    native.run("INSERT INTO p8_items VALUES (9, 'tx', 0)")
    native.run("ROLLBACK")
    assert native.run("SELECT count(*) FROM p8_items") == [[4]]


def test_dbapi_cursor_transactions(dbapi: pg8000.dbapi.Connection) -> None:
    cur = dbapi.cursor()
    cur.execute("DROP TABLE IF EXISTS p8_db")
    cur.execute("CREATE TABLE p8_db (id INTEGER, label VARCHAR, amount DECIMAL(10,2))")
    dbapi.commit()
    cur.executemany("INSERT INTO p8_db VALUES (%s, %s, %s)",
                    [(i, f"l{i}", decimal.Decimal(i) / 4) for i in range(6)])
    dbapi.commit()
    cur.execute("SELECT id, label, amount FROM p8_db WHERE id > %s ORDER BY id", (3,))
    assert cur.description is not None
    assert [d[0] for d in cur.description] == ["id", "label", "amount"]
    assert cur.fetchone() == [4, "l4", decimal.Decimal("1.00")]
    assert cur.fetchall() == ([5, "l5", decimal.Decimal("1.25")],)
    cur.execute("UPDATE p8_db SET label = %s WHERE id < %s", ("low", 2))
    assert cur.rowcount == 2
    dbapi.rollback()
    cur.execute("SELECT count(*) FROM p8_db WHERE label = 'low'")
    assert cur.fetchone() == [0]
    with pytest.raises(pg8000.dbapi.DatabaseError) as info:
        cur.execute("SELECT no_such_column FROM p8_db")
    assert info.value.args[0]["C"] == "42703"
    dbapi.rollback()
    cur.execute("SELECT version()")
    row = cur.fetchone()
    assert row is not None and "PostgreSQL" in row[0]
    dbapi.autocommit = True
    cur.execute("SELECT %s::INTEGER * 2", (21,))
    assert cur.fetchone() == [42]


def test_native_copy_streams(native: pg8000.native.Connection) -> None:
    native.run("CREATE OR REPLACE TABLE p8_copy (id INTEGER, name VARCHAR, day DATE)")
    native.run("COPY p8_copy FROM STDIN WITH (FORMAT csv, HEADER)",
               stream=io.StringIO("id,name,day\n1,a,2024-01-01\n2,,2024-01-02\n3,\"x,y\",\n"))
    assert native.row_count == 3
    assert native.run("SELECT * FROM p8_copy ORDER BY id") == [
        [1, "a", datetime.date(2024, 1, 1)], [2, None, datetime.date(2024, 1, 2)],
        [3, "x,y", None]]
    out = io.StringIO()
    native.run("COPY (SELECT * FROM p8_copy ORDER BY id) TO STDOUT WITH (FORMAT csv)",
               stream=out)
    assert out.getvalue() == "1,a,2024-01-01\n2,,2024-01-02\n3,\"x,y\",\n"
    text = io.BytesIO()
    native.run("COPY p8_copy TO STDOUT", stream=text)
    assert sorted(text.getvalue().decode().splitlines()) == [
        "1\ta\t2024-01-01", "2\t\\N\t2024-01-02", "3\tx,y\t\\N"]
