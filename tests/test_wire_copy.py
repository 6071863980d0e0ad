"""COPY FROM STDIN / TO STDOUT with psycopg 3's cursor.copy()."""

from __future__ import annotations

import datetime

import psycopg
import pytest


def test_copy_rows_in_and_out(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE wc_t (i INTEGER, s VARCHAR, d DATE, f DOUBLE)")
    rows = [(i, f"name {i}" if i % 3 else None, datetime.date(2024, 1, 1 + i % 28), i / 4)
            for i in range(1000)]
    cur = conn.cursor()
    with cur.copy("COPY wc_t (i, s, d, f) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    assert cur.statusmessage == "COPY 1000"
    assert conn.execute("SELECT count(*), count(s), sum(i) FROM wc_t").fetchone() == (
        1000, 666, sum(range(1000)))
    with cur.copy("COPY (SELECT i, s, d, f FROM wc_t ORDER BY i) TO STDOUT") as copy:
        copy.set_types(["int4", "text", "date", "float8"])
        back = list(copy.rows())
    assert back == rows


def test_copy_csv_block_writes(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE wc_csv (a INTEGER, b VARCHAR)")
    cur = conn.cursor()
    with cur.copy("COPY wc_csv FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        copy.write("a,b\n1,\"x,y\"\n")
        copy.write("2,\n")
    assert conn.execute("SELECT * FROM wc_csv ORDER BY a").fetchall() == [(1, "x,y"), (2, None)]
    with cur.copy("COPY wc_csv TO STDOUT (FORMAT csv)") as copy:
        data = b"".join(bytes(block) for block in copy)
    assert sorted(data.decode().splitlines()) == ['1,"x,y"', "2,"]


def test_copy_errors_keep_connection(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE wc_err (a INTEGER)")
    cur = conn.cursor()
    with pytest.raises(psycopg.Error) as info, \
            cur.copy("COPY wc_err FROM STDIN") as copy:
        copy.write("not a number\n")
    assert info.value.sqlstate == "22P02"
    with pytest.raises(psycopg.errors.FeatureNotSupported), \
            cur.copy("COPY wc_err TO STDOUT (FORMAT csv, FORCE_QUOTE *)"):
        pass
    with pytest.raises(psycopg.errors.UndefinedTable), cur.copy("COPY wc_nope FROM STDIN"):
        pass
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_client_failure(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE wc_fail (a INTEGER)")
    cur = conn.cursor()
    with pytest.raises(ZeroDivisionError), cur.copy("COPY wc_fail FROM STDIN") as copy:
        copy.write("1\n")
        raise ZeroDivisionError
    assert conn.execute("SELECT count(*) FROM wc_fail").fetchone() == (0,)


def test_copy_binary_in_and_out(conn: psycopg.Connection) -> None:
    conn.execute("CREATE OR REPLACE TABLE wc_bin (i BIGINT, s VARCHAR, d DATE, f DOUBLE, "
                 "b BOOLEAN)")
    rows = [(i, f"s{i}" if i % 2 else None, datetime.date(2024, 2, 1 + i % 28), -i / 8,
             i % 3 == 0) for i in range(-500, 500)]
    cur = conn.cursor()
    with cur.copy("COPY wc_bin (i, s, d, f, b) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "date", "float8", "bool"])
        for row in rows:
            copy.write_row(row)
    assert cur.statusmessage == "COPY 1000"
    with cur.copy("COPY (SELECT * FROM wc_bin ORDER BY i) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "date", "float8", "bool"])
        back = list(copy.rows())
    assert back == rows
    with cur.copy("COPY (SELECT 1 WHERE false) TO STDOUT (FORMAT BINARY)") as copy:
        assert list(copy.rows()) == []
