"""pg_dump 15 of a QuackML database restores into a real PostgreSQL 15.

A QuackML server of its own (no sample tables, so the dump is the whole
database) holds tables of every type both systems have, in the default
schema and in one more, with primary keys, unique and check constraints,
defaults and NULLs. pg_dump (plain, restored with psql -v ON_ERROR_STOP=1;
custom format, restored with pg_restore --exit-on-error) must produce a
dump that a fresh PostgreSQL 15 database takes, with the same rows, read
back through psycopg from both servers, and PostgreSQL's types.
"""

from __future__ import annotations

import math
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.listener import Server
from server.settings import Settings
from tests.conftest import RunningServer
from tests.pgcluster import pg_bin, throwaway_postgres

# table -> (columns, PostgreSQL's type of each column after the restore, rows SQL)
TABLES: dict[str, tuple[str, dict[str, str], str]] = {
    "numbers": (
        "id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(18,4), "
        "n0 numeric(5,0), d double precision, r real",
        {"id": "integer", "i2": "smallint", "i4": "integer", "i8": "bigint",
         "n": "numeric(18,4)", "n0": "numeric(5,0)", "d": "double precision", "r": "real"},
        "VALUES (1, 1, 2, 3, 12345.6789, 5, 1.5e300, 0.25), "
        "(2, -32768, -2147483648, -9223372036854775808, -0.0001, 0, 'nan', 'inf'), "
        "(3, 32767, 2147483647, 9223372036854775807, 99999999999999.9999, 99999, "
        "'-inf', -0.0), (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
        "(5, 0, 0, 0, 0, 0, 0.1, 0.1), (6, 7, 7, 7, 1.5, 2, 5e-324, 1.17549435e-38)"),
    "texts": (
        "id integer PRIMARY KEY, t text, v varchar(20), b boolean, j json, u uuid, "
        "bb bytea",
        {"id": "integer", "t": "character varying", "v": "character varying",
         "b": "boolean", "j": "json", "u": "uuid", "bb": "bytea"},
        "VALUES (1, E'tab\\there\\nnew line \\\\ back\\rslash', 'x', true, "
        "'{\"a\": [1, null, \"x\"], \"b\": {\"c\": 2.5}}', "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00\\xFF\\x5C\\x0A'::blob), "
        "(2, '', '', false, '[]', '00000000-0000-0000-0000-000000000000', ''::blob), "
        "(3, NULL, NULL, NULL, NULL, NULL, NULL), "
        "(4, 'comma, \"quote\" and ''single'' {}[]', 'ünïcødé ✓', true, '\"s\"', "
        "'ffffffff-ffff-ffff-ffff-ffffffffffff', 'AB'::blob)"),
    "times": (
        "id integer PRIMARY KEY, d date, ts timestamp, tz timestamptz, iv interval, "
        "tm time",
        {"id": "integer", "d": "date", "ts": "timestamp without time zone",
         "tz": "timestamp with time zone", "iv": "interval",
         "tm": "time without time zone"},
        "VALUES (1, '2024-02-29', '2024-01-01 12:34:56.789', "
        "'2024-01-01 12:34:56.789+02', '1 year 2 months 3 days 04:05:06.5', "
        "'23:59:59.999999'), "
        "(2, '0001-01-01', '1970-01-01', '1970-01-01 00:00:00+00', '-1 days', '00:00'), "
        "(3, NULL, NULL, NULL, NULL, NULL), "
        "(4, '9999-12-31', '2000-02-29 23:59:59.999999', '2038-01-19 03:14:08-05:30', "
        "'-3 hours -2 minutes', '12:00:00.5')"),
    "arrays": (
        "id integer PRIMARY KEY, ai integer[], ab bigint[], atx text[], af double precision[], "
        "abool boolean[], an numeric(10,2)[], ad date[]",
        {"id": "integer", "ai": "integer[]", "ab": "bigint[]", "atx": "text[]",
         "af": "double precision[]", "abool": "boolean[]", "an": "numeric(10,2)[]",
         "ad": "date[]"},
        "VALUES (1, [1, NULL, 3], [9223372036854775807], "
        "['a', 'b c', NULL, 'd\"e', 'f,g', '', 'NULL', '{x}'], "
        "[1.5, -0.0, 1e-300], [true, false, NULL], [1.25, NULL], ['2024-01-01', NULL]), "
        "(2, [], [], [], [], [], [], []), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"),
    "shop.orders": (
        "id bigint PRIMARY KEY, what varchar NOT NULL, price decimal(12,2), "
        "qty integer DEFAULT 1 NOT NULL CHECK (qty > 0), code integer UNIQUE",
        {"id": "bigint", "what": "character varying", "price": "numeric(12,2)",
         "qty": "integer", "code": "integer"},
        "SELECT i, 'item ' || i, i * 1.25, 1 + i % 7, i * 10 FROM range(1, 2001) t(i)"),
    "shop.lines": (
        "id integer PRIMARY KEY, order_id bigint REFERENCES shop.orders (id), qty integer",
        {"id": "integer", "order_id": "bigint", "qty": "integer"},
        "SELECT i, i % 50 + 1, i FROM range(1, 101) t(i)"),
    # a default from a sequence of the default schema, named unqualified
    "tickets": (
        "id integer DEFAULT nextval('ticket_no') PRIMARY KEY, note varchar",
        {"id": "integer", "note": "character varying"},
        "(note) VALUES ('first'), ('second'), (NULL)"),
    # serial: a sequence owned by the column
    "events": (
        "id serial PRIMARY KEY, what varchar",
        {"id": "integer", "what": "character varying"},
        "(what) VALUES ('start'), ('stop')"),
}
# views (their rows are compared) and sequences (their state is)
VIEWS = {"cheap_orders": "SELECT id, price FROM shop.orders WHERE price < 10",
         "shop.recent": "SELECT id, t, length(t) AS n FROM texts WHERE id > 1",
         "shop.firsts (id, label)": "SELECT id, what FROM shop.orders WHERE id < 4"}
SEQUENCES = ("ticket_no", "shop.order_no", "events_id_seq")


@pytest.fixture(scope="module")
def quackml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of this module's own, with the tables (and nothing else of users')."""
    folder = tmp_path_factory.mktemp("dumped")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1))
    srv.start()
    try:
        running = RunningServer("127.0.0.1", srv.port, folder / "data")
        with running.connect() as conn:
            conn.execute("CREATE SCHEMA shop")
            conn.execute("CREATE SEQUENCE ticket_no START 100")
            conn.execute("CREATE SEQUENCE shop.order_no INCREMENT BY 5")   # never used
            for table, (columns, _types, rows) in TABLES.items():
                conn.execute(f"CREATE TABLE {table} ({columns})")
                conn.execute(f"INSERT INTO {table} {rows}")
            for view, query in VIEWS.items():
                conn.execute(f"CREATE VIEW {view} AS {query}")
            conn.execute("CREATE INDEX orders_what ON shop.orders (what)")
            conn.execute("COMMENT ON TABLE numbers IS 'every integer size'")
            conn.execute("COMMENT ON COLUMN shop.orders.price IS 'in euro, it''s net'")
        yield running
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    yield from throwaway_postgres()


def pg_dump(server: RunningServer, *args: str) -> bytes:
    done = subprocess.run([pg_bin("pg_dump"), "-h", server.host, "-p", str(server.port),
                           "-U", "tester", *args, "quackml"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def fresh_database(pg: str, name: str) -> str:
    """A new, empty database in the PostgreSQL cluster (and the role the dump names as
    owner, as ``pg_dumpall --globals-only`` would have made it); its DSN."""
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'quackml'").fetchall():
            conn.execute("CREATE ROLE quackml")
    return pg.replace("dbname=postgres", f"dbname={name}")


def _dsn_args(dsn: str) -> list[str]:
    parts = dict(p.split("=", 1) for p in dsn.split())
    return ["-h", parts["host"], "-p", parts["port"], "-U", parts["user"], "-d", parts["dbname"]]


def _same(value: object) -> object:
    """A value as compared: NaN equal to NaN; a uuid as its text (QuackML sends uuids as
    text, which psycopg does not parse)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


def _schema(conn: psycopg.Connection, table: str) -> str:
    """The schema a table of TABLES lives in (unqualified: the default schema)."""
    if "." in table:
        return table.split(".")[0]
    row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return str(row[0])


def assert_same_rows(quackml: RunningServer, restored: str) -> None:
    with quackml.connect() as source, psycopg.connect(restored, autocommit=True) as target:
        for table, (_columns, types, _rows) in TABLES.items():
            name = f"{_schema(source, table)}.{table.split('.')[-1]}"
            got_types = dict(target.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 ORDER BY a.attnum",
                [name]).fetchall())
            assert got_types == types, table
            # json as its text (QuackML sends it as text; PostgreSQL keeps json's text as is)
            select = ", ".join(f"{c}::text" if t == "json" else c for c, t in types.items())
            want = source.execute(f"SELECT {select} FROM {name} ORDER BY id").fetchall()
            got = target.execute(f"SELECT {select} FROM {name} ORDER BY id").fetchall()
            assert len(got) == len(want), table
            for w, g in zip(want, got, strict=True):
                assert _same(list(g)) == _same(list(w)), table
        for view in VIEWS:
            name = f"{_schema(source, view)}.{view.split()[0].split('.')[-1]}"
            want = source.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
            assert want
            assert target.execute(f"SELECT * FROM {name} ORDER BY id").fetchall() == want
        for sequence in SEQUENCES:
            name = f"{_schema(source, sequence)}.{sequence.split('.')[-1]}"
            state = f"SELECT last_value, is_called FROM {name}"
            assert target.execute(state).fetchall() == source.execute(state).fetchall()


@pytest.mark.parametrize("options", [(), ("--column-inserts", "--quote-all-identifiers")],
                         ids=["copy", "inserts"])
def test_plain_dump_restores_with_psql(quackml: RunningServer, pg: str, tmp_path: Path,
                                       options: tuple[str, ...]) -> None:
    dump = tmp_path / "quackml.sql"
    dump.write_bytes(pg_dump(quackml, *options))
    restored = fresh_database(pg, "from_plain")
    done = subprocess.run([pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                           *_dsn_args(restored), "-f", str(dump)],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert_same_rows(quackml, restored)


def test_custom_format_restores_with_pg_restore(quackml: RunningServer, pg: str,
                                                tmp_path: Path) -> None:
    dump = tmp_path / "quackml.dump"
    dump.write_bytes(pg_dump(quackml, "-Fc"))
    restored = fresh_database(pg, "from_custom")
    done = subprocess.run([pg_bin("pg_restore"), "--exit-on-error", *_dsn_args(restored),
                           str(dump)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert_same_rows(quackml, restored)


def test_dump_holds_user_objects_only(quackml: RunningServer) -> None:
    text = pg_dump(quackml, "--schema-only").decode()
    created = sorted(line for line in text.splitlines() if line.startswith("CREATE "))
    with quackml.connect() as conn:
        default = _schema(conn, "numbers")
    def qualified(name: str) -> str:
        return name if "." in name else f"{default}.{name}"

    # pg_dump never creates public (initdb made it)
    schemas = ["CREATE SCHEMA shop;"] + ([] if default == "public" else
                                         [f"CREATE SCHEMA {default};"])
    assert created == sorted([*schemas,
                              "CREATE INDEX orders_what ON shop.orders USING btree (what);",
                              *(f"CREATE TABLE {qualified(t)} (" for t in TABLES),
                              *(f"CREATE VIEW {qualified(v.split()[0])} AS" for v in VIEWS),
                              *(f"CREATE SEQUENCE {qualified(q)}" for q in SEQUENCES)])
    # the constraints, as constraints
    assert "ADD CONSTRAINT numbers_id_pkey PRIMARY KEY (id);" in text
    assert "ADD CONSTRAINT orders_code_key UNIQUE (code);" in text
    assert "CHECK ((qty > 0))" in text
    assert "CREATE INDEX orders_what ON shop.orders USING btree (what);" in text
    assert "ADD CONSTRAINT lines_order_id_id_fkey FOREIGN KEY (order_id) " \
        "REFERENCES shop.orders(id);" in text
    assert "qty integer DEFAULT 1 NOT NULL" in text
    assert f"ALTER SEQUENCE {default}.events_id_seq OWNED BY {default}.events.id;" in text
    assert f"ALTER TABLE ONLY {default}.events ALTER COLUMN id SET DEFAULT " \
        f"nextval('{default}.events_id_seq'::regclass);" in text
    assert f"COMMENT ON TABLE {default}.numbers IS 'every integer size';" in text
    assert "quackml_owned_by" not in text
    assert "COMMENT ON COLUMN shop.orders.price IS 'in euro, it''s net';" in text
    for internal in ("quackml_pg", "svv_ml_model_info", "pg_catalog.pg_", "duckdb_"):
        assert internal not in text


ADMIN, ADMIN_PW, READER_PW = "admin", "adm1n-pw", "r3ader-pw"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with passwords: a superuser, and a user who may read one table."""
    folder = tmp_path_factory.mktemp("dumped-secured")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, auth="scram-sha-256", superuser=ADMIN,
                          superuser_password=ADMIN_PW))
    srv.start()
    try:
        with psycopg.connect(f"host=127.0.0.1 port={srv.port} user={ADMIN} "
                             f"password={ADMIN_PW} dbname=quackml", autocommit=True) as conn:
            conn.execute(f"CREATE USER reader PASSWORD '{READER_PW}'")
            conn.execute("CREATE TABLE open_t (a integer PRIMARY KEY, b varchar)")
            conn.execute("INSERT INTO open_t VALUES (1, 'readable')")
            conn.execute("CREATE TABLE secret_t (a integer)")
            conn.execute("INSERT INTO secret_t VALUES (42)")
            conn.execute("GRANT SELECT ON open_t TO reader")
        yield RunningServer("127.0.0.1", srv.port, folder / "data")
    finally:
        srv.stop()


def reader_dump(server: RunningServer, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([pg_bin("pg_dump"), "-h", server.host, "-p", str(server.port),
                           "-U", "reader", *args, "quackml"], capture_output=True, timeout=60,
                          env={"PGPASSWORD": READER_PW, "PATH": "/usr/bin:/bin"})


def _default_schema(server: RunningServer) -> str:
    with psycopg.connect(f"host={server.host} port={server.port} user={ADMIN} "
                         f"password={ADMIN_PW} dbname=quackml") as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return str(row[0])


def test_non_superuser_dumps_what_they_may_read(secured: RunningServer) -> None:
    done = reader_dump(secured, "-t", "open_t")
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    schema = _default_schema(secured)
    assert f"COPY {schema}.open_t (a, b) FROM stdin;\n1\treadable\n\\.\n" in text
    assert f"ALTER TABLE {schema}.open_t OWNER TO admin;" in text
    assert f"GRANT SELECT ON TABLE {schema}.open_t TO reader;" in text
    assert "secret_t" not in text


def test_non_superuser_cannot_dump_what_they_may_not_read(secured: RunningServer) -> None:
    # pg_dump locks every table it dumps first: the lock needs SELECT (42501, as in
    # PostgreSQL), and no row of the table reaches the client
    for args in ((), ("-t", "secret_t")):
        done = reader_dump(secured, *args)
        assert done.returncode == 1
        err = done.stderr.decode()
        assert "permission denied for table secret_t" in err, err
        assert f"LOCK TABLE {_default_schema(secured)}.secret_t IN ACCESS SHARE MODE" in err
        assert b"secret_t" not in done.stdout


def test_lock_table(quackml: RunningServer) -> None:
    with quackml.connect() as conn:
        with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
            conn.execute("LOCK TABLE numbers IN ACCESS SHARE MODE")
        with conn.transaction():
            conn.execute("LOCK TABLE numbers, shop.orders IN ACCESS SHARE MODE")
            conn.execute("LOCK ONLY numbers")
            conn.execute("LOCK TABLE numbers IN SHARE ROW EXCLUSIVE MODE NOWAIT")
        with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction():
            conn.execute("LOCK TABLE no_such_table IN ACCESS SHARE MODE")
        with pytest.raises(psycopg.errors.SyntaxError), conn.transaction():
            conn.execute("LOCK TABLE numbers IN SIDEWAYS MODE")


def test_sequence_read_as_a_relation(quackml: RunningServer) -> None:
    with quackml.connect() as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS shop.probe_seq START 7")
        read = "SELECT last_value, is_called FROM shop.probe_seq"
        assert conn.execute(read).fetchall() == [(7, False)]
        conn.execute("SELECT nextval('shop.probe_seq')")
        conn.execute("SELECT nextval('shop.probe_seq')")
        cur = conn.execute("SELECT * FROM shop.probe_seq")
        assert [d.name for d in cur.description or ()] == ["last_value", "log_cnt", "is_called"]
        assert cur.fetchall() == [(8, 0, True)]
        # a table with such columns is a table
        conn.execute("CREATE TABLE shop.not_a_seq AS SELECT 1 AS last_value, false AS is_called")
        assert conn.execute("SELECT last_value, is_called FROM shop.not_a_seq").fetchall() == \
            [(1, False)]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT last_value FROM shop.no_such_seq")
        conn.execute("DROP TABLE shop.not_a_seq")
        conn.execute("DROP SEQUENCE shop.probe_seq")


def test_psql_describes_foreign_keys(quackml: RunningServer) -> None:
    # the catalog pg_dump reads foreign keys from is psql's too
    done = subprocess.run([pg_bin("psql"), "-X", "-h", quackml.host, "-p", str(quackml.port),
                           "-U", "tester", "-d", "quackml", "-c", r"\d shop.lines",
                           "-c", r"\d shop.orders"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "Foreign-key constraints:\n    \"lines_order_id_id_fkey\" FOREIGN KEY (order_id) " \
        "REFERENCES shop.orders(id)" in out
    assert "Referenced by:" in out
    assert not done.stderr
