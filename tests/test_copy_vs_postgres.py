"""COPY text and CSV, byte for byte against a real PostgreSQL.

A throwaway PostgreSQL cluster (Debian's postgresql package, started here)
and QuackML hold the same rows of awkward values: tabs, newlines and
backslashes in strings, NULLs, booleans, NaN and infinities, arrays, bytea,
dates and timestamps. COPY TO STDOUT must write what PostgreSQL writes,
and what PostgreSQL writes must load back into QuackML as the same rows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from server.postgres.copy import CopyInWriter
from server.sql.copy_spec import CopyFormat, CopySpec
from tests.conftest import RunningServer
from tests.test_psql import PSQL

COLUMNS = ("i integer, s varchar, b boolean, d date, f double precision, "
           "n numeric(10,3), arr integer[], sa varchar[], bb bytea, ts timestamp")
ROWS = [
    (1, "plain", True, "2020-01-02", 1.5, "12.345", [1, 2], ["a", "b"], b"AB",
     "2020-01-02 03:04:05.25"),
    (2, None, False, None, None, None, None, None, None, None),
    (3, "tab\there\nnew line\\ back\rslash", True, "1999-12-31", float("nan"), "-0.001", [],
     ["x y", 'q"uote', "c,omma"], b"\x00\xff\\", "1999-12-31 23:59:59"),
    (4, "", False, "2024-02-29", float("inf"), "0", [None, 3], [None], b"", None),
    (5, "comma, \"quote\" and 'single'", None, "2001-01-01", -0.0, "1000.5", [-7], ["{}"],
     b"\n", "2001-01-01 00:00:00"),
]
OPTIONS = ["", "WITH (FORMAT csv)", "WITH (FORMAT csv, HEADER)", "WITH (DELIMITER '|')",
           "WITH (FORMAT csv, DELIMITER ';', NULL 'NULL')", "WITH (NULL 'nil')"]


def _fill(conn: psycopg.Connection, table: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} ({COLUMNS})")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES "
                        "(%s, %s, %s, %s::date, %s, %s::numeric(10,3), %s, %s, %s, %s::timestamp)",
                        ROWS)


def _copy_out(conn: psycopg.Connection, sql: str) -> bytes:
    out = bytearray()
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for data in copy:
            out += data
    return bytes(out)


def _copy_in(conn: psycopg.Connection, sql: str, data: bytes) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        copy.write(data)


def _rows(conn: psycopg.Connection, table: str) -> str:
    return repr(conn.execute(f"SELECT * FROM {table} ORDER BY i").fetchall())


@pytest.mark.parametrize("options", OPTIONS)
def test_copy_out_matches_postgres(server: RunningServer, pg: str, options: str) -> None:
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        for conn in (p, q):
            _fill(conn, "copy_cmp")
        sql = f"COPY (SELECT * FROM copy_cmp ORDER BY i) TO STDOUT {options}"
        expected = _copy_out(p, sql)
        assert _copy_out(q, sql) == expected


@pytest.mark.parametrize("options", OPTIONS)
def test_postgres_output_loads_back(server: RunningServer, pg: str, options: str) -> None:
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        _fill(p, "copy_src")
        data = _copy_out(p, f"COPY (SELECT * FROM copy_src ORDER BY i) TO STDOUT {options}")
        q.execute("DROP TABLE IF EXISTS copy_dst")
        q.execute(f"CREATE TABLE copy_dst ({COLUMNS})")
        _copy_in(q, f"COPY copy_dst FROM STDIN {options}", data)
        assert _rows(q, "copy_dst") == _rows(p, "copy_src")


def test_text_escapes_decoded(server: RunningServer) -> None:
    with server.connect() as q:
        q.execute("CREATE OR REPLACE TABLE copy_esc (i integer, s varchar)")
        _copy_in(q, "COPY copy_esc FROM STDIN",
                 b"1\ta\\tb\\\\c\\nd\n2\t\\101\\x42\\q\n3\t\\\\N\n4\t\\N\n")
        assert q.execute("SELECT i, s FROM copy_esc ORDER BY i").fetchall() == [
            (1, "a\tb\\c\nd"), (2, "ABq"), (3, "\\N"), (4, None)]


def test_copy_column_count_errors(server: RunningServer) -> None:
    with server.connect() as q:
        q.execute("CREATE OR REPLACE TABLE copy_bad (i integer, s varchar)")
        for data in (b"1\tx\textra\n", b"1\n"):
            with pytest.raises(psycopg.errors.BadCopyFileFormat):
                _copy_in(q, "COPY copy_bad FROM STDIN", data)
        with pytest.raises(psycopg.errors.BadCopyFileFormat, match="line 2"):
            _copy_in(q, "COPY copy_bad FROM STDIN", b"1\t\\\\x\n2\ty\tz\n")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            _copy_in(q, "COPY copy_bad FROM STDIN", b"one\tx\n")
        assert q.execute("SELECT count(*) FROM copy_bad").fetchone() == (0,)


def test_escapes_found_in_any_copydata_message(server: RunningServer) -> None:
    """Escapes are noted message by message: one in a late message still decodes."""
    with server.connect() as q:
        q.execute("CREATE OR REPLACE TABLE copy_split (i integer, s varchar)")
        with q.cursor() as cur, cur.copy("COPY copy_split FROM STDIN") as copy:
            copy.write(b"1\tplain\n2\t\\N\n")
            copy.write(b"3\ttab\\there\n")
        assert q.execute("SELECT i, s FROM copy_split ORDER BY i").fetchall() == [
            (1, "plain"), (2, None), (3, "tab\there")]


# -- the end-of-data marker and bad rows, against PostgreSQL ------------------------------

ERR_COLUMNS = "i integer, s varchar, d date, n smallint"
BAD_ROWS = [
    ("COPY copy_err FROM STDIN",
     b"1\tx\t2024-01-01\t1\n2\ty\t2024-01-02\t2\nx\tz\t2024-01-03\t3\n"),
    ("COPY copy_err FROM STDIN", b"1\ta\\tb\t2024-01-01\t1\nnope\tz\t2024-01-03\t3\n"),
    ("COPY copy_err (s, i) FROM STDIN", b"x\t1\nz\t3x\n"),
    ("COPY copy_err FROM STDIN", b"1\tx\t2024-01-01\t70000\n"),
    ("COPY copy_err FROM STDIN (FORMAT csv)", b"1,x,2024-01-01,1\n2,y,2024-13-01,2\n"),
    ("COPY copy_err FROM STDIN (FORMAT csv)", b"1,x,2024-01-01,1\n2,y,someday,2\n"),
    ("COPY copy_err FROM STDIN", b"1\tx\t2024-01-01\t1\n2\ty\n"),
    ("COPY copy_err FROM STDIN", b"1\tx\t2024-01-01\t1\t5\n"),
    ("COPY copy_err FROM STDIN", b"1\t\\\\x\t2024-01-01\t1\n2\ty\n"),
    ("COPY copy_err FROM STDIN (FORMAT csv, HEADER)", b"i,s,d,n\n1,x,2024-01-01,1\n2\n"),
    ("COPY copy_err FROM STDIN", b"1\t\\\\x\t2024-01-01\t1\n2\t\xfe\t2024-01-01\t2\n"),
]
# the same SQLSTATE and CONTEXT ("COPY t, line n" and, when the error names a column,
# the column and value); the message words it differently
BAD_ROWS_ALIKE = [
    ("COPY copy_err FROM STDIN (FORMAT csv)", b'1,"abc\n'),
    ("COPY copy_err FROM STDIN (FORMAT csv)", b"1,x,2024-01-01,1\n2,\xff,2024-01-01,2\n"),
    ("COPY copy_err FROM STDIN", b"1\tx\t2024-01-01\t1\n2\t\xff\t2024-01-01\t2\n"),
    # array columns are converted after loading: the rows are read again for the line
    ("COPY copy_arr FROM STDIN", b"{1,2}\tx\n{3}\ty\n{1,a}\tz\n"),
    ("COPY copy_arr FROM STDIN", b"{1,2}\ta\\tb\n{x}\tz\n"),
    ("COPY copy_arr FROM STDIN (FORMAT csv, HEADER)", b'a,s\n"{1,2}",x\n"{1,a}",z\n'),
]


def _copy_errors(server: RunningServer, pg: str, sql: str,
                 data: bytes) -> list[tuple[str | None, str | None, str | None]]:
    errors = []
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        for conn in (p, q):
            conn.execute("DROP TABLE IF EXISTS copy_err")
            conn.execute(f"CREATE TABLE copy_err ({ERR_COLUMNS})")
            conn.execute("DROP TABLE IF EXISTS copy_arr")
            conn.execute("CREATE TABLE copy_arr (a integer[], s varchar)")
            with pytest.raises(psycopg.Error) as info:
                _copy_in(conn, sql, data)
            diag = info.value.diag
            errors.append((diag.sqlstate, diag.message_primary, diag.context))
            table = sql.split()[1]
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert "quackml-copy" not in repr(errors[1])
    return errors


@pytest.mark.parametrize(("sql", "data"), BAD_ROWS)
def test_bad_row_error_matches_postgres(server: RunningServer, pg: str, sql: str,
                                        data: bytes) -> None:
    """One line naming the type and value, CONTEXT with the line, column and value."""
    errors = _copy_errors(server, pg, sql, data)
    assert errors[1] == errors[0]


@pytest.mark.parametrize(("sql", "data"), BAD_ROWS_ALIKE)
def test_bad_row_error_like_postgres(server: RunningServer, pg: str, sql: str,
                                     data: bytes) -> None:
    (pg_code, _, pg_context), (code, message, context) = \
        _copy_errors(server, pg, sql, data)
    assert pg_context and context and message and "\n" not in message
    assert code == pg_code
    if ", column " in pg_context:
        assert context == pg_context
    else:
        assert context.split(":")[0] == pg_context.split(":")[0]


END_MARKER = [
    ("COPY copy_end FROM STDIN", [b"1\tx\n2\ty\n\\.\nthis is not a row\n"]),
    ("COPY copy_end FROM STDIN", [b"1\tx\n\\", b".", b"\n3\tjunk\n"]),
    ("COPY copy_end FROM STDIN", [b"1\ta\\tb\n\\.\n"]),
    ("COPY copy_end FROM STDIN (FORMAT csv)", [b"1,x\n\\.x,2\n"]),   # not the marker: data
    ("COPY copy_end FROM STDIN (FORMAT csv)", [b"1,x\n\\.\nnot,a,row\n"]),
    ("COPY copy_end FROM STDIN (FORMAT csv, HEADER)", [b"i,s\n1,x\n", b"\\.\n", b"junk\n"]),
]


@pytest.mark.parametrize(("sql", "chunks"), END_MARKER)
def test_end_of_data_marker(server: RunningServer, pg: str, sql: str,
                            chunks: list[bytes]) -> None:
    """A line with only \\. ends the data; what follows it is ignored, as PostgreSQL does."""
    rows = []
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        for conn in (p, q):
            conn.execute("DROP TABLE IF EXISTS copy_end")
            conn.execute("CREATE TABLE copy_end (i varchar, s varchar)")
            with conn.cursor() as cur, cur.copy(sql) as copy:
                for chunk in chunks:
                    copy.write(chunk)
            rows.append(conn.execute("SELECT * FROM copy_end ORDER BY i").fetchall())
    assert rows[1] == rows[0]
    assert rows[0]


def test_end_of_data_marker_across_messages(tmp_path: Path) -> None:
    """The marker is found however CopyData cuts the data; text data ends at a marker
    without its newline too, CSV data keeps it (PostgreSQL reads it as a value)."""
    cases = [
        (CopyFormat.TEXT, [b"1\tx\n\\", b".", b"\njunk\n"], b"1\tx\n"),
        (CopyFormat.TEXT, [b"1\tx\n\\", b".\r", b"\njunk\n"], b"1\tx\n"),
        (CopyFormat.TEXT, [b"1\tx", b"\n\\.\n"], b"1\tx\n"),
        (CopyFormat.TEXT, [b"1\tx\n\\."], b"1\tx\n"),
        (CopyFormat.TEXT, [b"1\t\\.x\n\\", b"N\t2\n"], b"1\t\\.x\n\\N\t2\n"),
        (CopyFormat.CSV, [b"1,x\n\\."], b"1,x\n\\."),
        (CopyFormat.CSV, [b"1,x\r\n\\.\r\nmore\r\n"], b"1,x\r\n"),
        (CopyFormat.BINARY, [b"\\.\n"], b"\\.\n"),
    ]
    for fmt, chunks, expected in cases:
        spec = CopySpec("t", True, fmt, ",", "", False, '"', '"')
        path = tmp_path / "data"
        writer = CopyInWriter(spec, path.open("wb"))
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()
        assert path.read_bytes() == expected, (fmt, chunks)


@pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")
def test_psql_copy_from_stdin_in_a_script(server: RunningServer, pg: str) -> None:
    """psql reads COPY data from its script up to \\. and sends the marker line; the
    script goes on after it."""
    assert PSQL is not None
    script = ("DROP TABLE IF EXISTS copy_psql;\n"
              "CREATE TABLE copy_psql (i integer, s varchar);\n"
              "\\copy copy_psql from stdin\n1\tx\n2\t\\N\n\\.\n"
              "COPY copy_psql FROM STDIN (FORMAT csv);\n3,\"q\"\n\\.\n"
              "SELECT i, coalesce(s, 'null') FROM copy_psql ORDER BY i;\n")
    outputs = []
    for dsn in (pg, server.dsn()):
        out = subprocess.run([PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn,
                              "-f", "-"], input=script, capture_output=True, text=True,
                             timeout=60, env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert outputs[1] == outputs[0]
    assert outputs[0].splitlines()[-3:] == ["1|x", "2|null", "3|q"]
