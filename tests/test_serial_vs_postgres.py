"""Auto-increment columns and PREPARE with types, side by side with PostgreSQL 15.

Each script runs statement by statement on a throwaway PostgreSQL and on QuackML;
every statement must give the same rows (values and type OIDs), the same command
tag, or the same SQLSTATE: serial/bigserial/smallserial, GENERATED ALWAYS / BY
DEFAULT AS IDENTITY (428C9 for an explicit value, OVERRIDING SYSTEM VALUE),
RETURNING of the generated keys, pg_get_serial_sequence, the sequence names
PostgreSQL picks (numbered when taken), DROP TABLE dropping the owned sequences,
and ``PREPARE name (types) AS`` with EXECUTE.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import RunningServer, start_server_process
from tests.pgcluster import throwaway_postgres


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    yield from throwaway_postgres()


# DuckDB's VARCHAR is sent as varchar: the same text here (the types are another matter)
TEXT = {1043: 25}


def outcome(conn: psycopg.Connection, sql: str) -> object:
    """What a statement gives: its rows with their type OIDs, its tag, or its SQLSTATE."""
    try:
        cur = conn.execute(sql)
    except psycopg.Error as exc:
        return ("error", exc.sqlstate)
    if cur.description is None:
        return ("tag", cur.statusmessage)
    return ("rows", [TEXT.get(d.type_code, d.type_code) for d in cur.description],
            cur.fetchall(), cur.statusmessage)


SCRIPTS = {
    "serial": [
        "DROP TABLE IF EXISTS ser_t",
        "CREATE TABLE ser_t (id serial PRIMARY KEY, label text)",
        "INSERT INTO ser_t (label) VALUES ('one'), ('two') RETURNING id",
        "INSERT INTO ser_t (label) VALUES ('three') RETURNING id, label",
        "INSERT INTO ser_t VALUES (DEFAULT, 'four') RETURNING *",
        "SELECT id, label FROM ser_t ORDER BY id",
        "SELECT pg_get_serial_sequence('ser_t', 'id')",
        "SELECT pg_get_serial_sequence('public.ser_t', 'id')",
        "SELECT pg_get_serial_sequence('ser_t', 'label')",
        # Django's sequence reset (after loaddata, sqlsequencereset)
        "SELECT setval(pg_get_serial_sequence('\"ser_t\"','id'), coalesce(max(\"id\"), 1), "
        "max(\"id\") IS NOT null) FROM \"ser_t\"",
        "INSERT INTO ser_t (label) VALUES ('after reset') RETURNING id",
        "SELECT nextval('ser_t_id_seq')",
        "SELECT setval('public.ser_t_id_seq'::regclass, 41, false)",
        "INSERT INTO ser_t (label) VALUES ('after setval') RETURNING id",
        "INSERT INTO ser_t (id, label) VALUES (NULL, 'null id')",
        "DROP TABLE ser_t",
        # the owned sequence went with its table: the name is free again
        "CREATE SEQUENCE ser_t_id_seq",
        "DROP SEQUENCE ser_t_id_seq",
    ],
    "bigserial and smallserial": [
        "DROP TABLE IF EXISTS ser_b",
        "CREATE TABLE ser_b (b bigserial, s smallserial, x int)",
        "INSERT INTO ser_b (x) VALUES (1), (2) RETURNING b, s",
        "SELECT b, s, x FROM ser_b ORDER BY x",
        "SELECT pg_get_serial_sequence('ser_b', 's')",
        "DROP TABLE ser_b",
    ],
    "a taken sequence name is numbered": [
        "DROP TABLE IF EXISTS ser_n",
        "DROP SEQUENCE IF EXISTS ser_n_id_seq",
        "CREATE SEQUENCE ser_n_id_seq",
        "CREATE TABLE ser_n (id serial, x int)",
        "SELECT pg_get_serial_sequence('ser_n', 'id')",
        "INSERT INTO ser_n (x) VALUES (5) RETURNING id",
        "DROP TABLE ser_n",
        "SELECT nextval('ser_n_id_seq')",
        "DROP SEQUENCE ser_n_id_seq",
    ],
    "quoted and schema-qualified names": [
        'DROP TABLE IF EXISTS "Ser Q"',
        'CREATE TABLE "Ser Q" ("ID" serial, v int)',
        'INSERT INTO "Ser Q" (v) VALUES (1) RETURNING "ID"',
        """SELECT pg_get_serial_sequence('"Ser Q"', 'ID')""",
        'DROP TABLE "Ser Q"',
        'CREATE SEQUENCE "Ser Q_ID_seq"',
        'DROP SEQUENCE "Ser Q_ID_seq"',
        "DROP SCHEMA IF EXISTS ser_s CASCADE",
        "CREATE SCHEMA ser_s",
        "CREATE TABLE ser_s.t (id bigserial, v int)",
        "INSERT INTO ser_s.t (v) VALUES (1), (2) RETURNING id",
        "SELECT pg_get_serial_sequence('ser_s.t', 'id')",
        "DROP TABLE IF EXISTS t",
        "CREATE TABLE t (id serial, v int)",
        "DROP TABLE t",   # public.t: ser_s.t keeps its sequence
        "INSERT INTO ser_s.t (v) VALUES (3) RETURNING id",
        "DROP TABLE ser_s.t",
        "CREATE SEQUENCE ser_s.t_id_seq",
        "DROP SCHEMA ser_s CASCADE",
    ],
    "long names are cut as PostgreSQL cuts them": [
        "DROP TABLE IF EXISTS a_rather_long_table_name_for_testing_names",
        "CREATE TABLE a_rather_long_table_name_for_testing_names "
        "(id serial, a_long_column_name_that_goes_on_and_on bigserial)",
        "SELECT pg_get_serial_sequence('a_rather_long_table_name_for_testing_names', 'id'), "
        "pg_get_serial_sequence('a_rather_long_table_name_for_testing_names', "
        "'a_long_column_name_that_goes_on_and_on')",
        "DROP TABLE a_rather_long_table_name_for_testing_names",
    ],
    "identity always": [
        "DROP TABLE IF EXISTS ident_a",
        "CREATE TABLE ident_a (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text)",
        "INSERT INTO ident_a (label) VALUES ('a'), ('b') RETURNING id",
        "INSERT INTO ident_a (id, label) VALUES (10, 'x')",
        "INSERT INTO public.ident_a (id, label) VALUES (10, 'x')",
        "UPDATE public.ident_a SET id = 3",
        "INSERT INTO ident_a VALUES (11, 'y')",
        "INSERT INTO ident_a SELECT 12, 'z'",
        "INSERT INTO ident_a VALUES (DEFAULT, 'c') RETURNING *",
        "INSERT INTO ident_a (id, label) VALUES (DEFAULT, 'd'), (DEFAULT, 'e') RETURNING id",
        "INSERT INTO ident_a (id, label) OVERRIDING SYSTEM VALUE VALUES (100, 'forced') "
        "RETURNING id",
        "INSERT INTO ident_a (label) VALUES ('f') RETURNING id",
        "SELECT id, label FROM ident_a ORDER BY id",
        "UPDATE ident_a SET id = 5 WHERE label = 'a'",
        "UPDATE ident_a SET label = 'A', id = id + 1 WHERE label = 'a'",
        "UPDATE ident_a SET label = 'A' WHERE label = 'a' RETURNING id, label",
        "SELECT pg_get_serial_sequence('ident_a', 'id')",
        "DROP TABLE ident_a",
        "CREATE SEQUENCE ident_a_id_seq",
        "DROP SEQUENCE ident_a_id_seq",
    ],
    "identity by default, with options": [
        "DROP TABLE IF EXISTS ident_d",
        "CREATE TABLE ident_d (id bigint GENERATED BY DEFAULT AS IDENTITY "
        "(START WITH 100 INCREMENT BY 10) PRIMARY KEY, label text)",
        "INSERT INTO ident_d (label) VALUES ('a'), ('b') RETURNING id",
        "INSERT INTO ident_d (id, label) VALUES (7, 'explicit') RETURNING id",
        "SELECT id, label FROM ident_d ORDER BY id",
        "DROP TABLE ident_d",
    ],
    "restart, truncate, added columns": [
        "DROP TABLE IF EXISTS ser_r",
        "DROP TABLE IF EXISTS ser_r2",
        "CREATE TABLE ser_r (id serial, v int)",
        "CREATE TABLE ser_r2 (id bigserial, v int)",
        "INSERT INTO ser_r (v) VALUES (1), (2), (3) RETURNING id",
        "INSERT INTO ser_r2 (v) VALUES (1), (2) RETURNING id",
        "TRUNCATE ser_r RESTART IDENTITY",
        "INSERT INTO ser_r (v) VALUES (4) RETURNING id",
        "TRUNCATE TABLE ONLY ser_r CONTINUE IDENTITY",
        "INSERT INTO ser_r (v) VALUES (5) RETURNING id",
        "ALTER SEQUENCE ser_r_id_seq RESTART WITH 50",
        "INSERT INTO ser_r (v) VALUES (6) RETURNING id",
        "ALTER SEQUENCE ser_r_id_seq RESTART",
        "INSERT INTO ser_r (v) VALUES (7) RETURNING id",
        "TRUNCATE ser_r, ser_r2 RESTART IDENTITY",
        "INSERT INTO ser_r2 (v) VALUES (8) RETURNING id",
        "INSERT INTO ser_r (v) VALUES (10), (20), (30)",
        "ALTER TABLE ser_r ADD COLUMN extra smallserial",
        "ALTER TABLE ser_r ADD n bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 7)",
        "SELECT v, extra, n FROM ser_r ORDER BY v",
        "INSERT INTO ser_r (v) VALUES (40) RETURNING id, extra, n",
        "SELECT pg_get_serial_sequence('ser_r', 'extra'), pg_get_serial_sequence('ser_r', 'n')",
        "DROP TABLE ser_r",
        "DROP TABLE ser_r2",
        "CREATE SEQUENCE ser_r_extra_seq",
        "DROP SEQUENCE ser_r_extra_seq",
    ],
    "prepare with types": [
        "PREPARE typed_p (integer, text) AS SELECT $1 + 1 AS n, $2 || '!' AS s",
        "EXECUTE typed_p('41', 'hi')",
        "EXECUTE typed_p(1, 'x')",
        "DEALLOCATE typed_p",
        "PREPARE typed_q (numeric, date) AS SELECT $1 AS n, $2 + 1 AS d",
        "EXECUTE typed_q('12.345', '2024-02-28')",
        "DEALLOCATE typed_q",
        "DROP TABLE IF EXISTS prep_t",
        "CREATE TABLE prep_t (id serial, v bigint)",
        "PREPARE typed_ins (bigint) AS INSERT INTO prep_t (v) VALUES ($1) RETURNING id, v",
        "EXECUTE typed_ins('9000000000')",
        "EXECUTE typed_ins(3)",
        "DEALLOCATE typed_ins",
        "DROP TABLE prep_t",
    ],
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_same_as_postgres(server: RunningServer, pg: str, script: str) -> None:
    with psycopg.connect(pg, autocommit=True) as p, server.connect() as q:
        for sql in SCRIPTS[script]:
            assert outcome(q, sql) == outcome(p, sql), sql


@pytest.mark.parametrize("sql", ["INSERT INTO ident_msg (id) VALUES (1)",
                                 "UPDATE ident_msg SET id = 2"])
def test_identity_always_error_is_postgres_s(server: RunningServer, pg: str, sql: str) -> None:
    errors = []
    for dsn in (pg, server.dsn()):
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS ident_msg")
            c.execute("CREATE TABLE ident_msg (id int GENERATED ALWAYS AS IDENTITY)")
            with pytest.raises(psycopg.Error) as info:
                c.execute(sql)
            d = info.value.diag
            errors.append((d.sqlstate, d.message_primary, d.message_detail, d.message_hint))
            c.execute("DROP TABLE ident_msg")
    assert errors[0] == errors[1]


def test_serial_in_a_transaction_rolls_back_whole(server: RunningServer) -> None:
    with server.connect() as q:
        q.execute("DROP TABLE IF EXISTS ser_tx")
        q.execute("BEGIN")
        q.execute("CREATE TABLE ser_tx (id serial, x int)")
        q.execute("ROLLBACK")
        assert q.execute("SELECT count(*) FROM duckdb_sequences() "
                         "WHERE sequence_name = 'ser_tx_id_seq'").fetchone() == (0,)
        # created in one statement: a failure leaves nothing behind
        with pytest.raises(psycopg.Error):
            q.execute("CREATE TABLE ser_tx (id serial, x no_such_type)")
        assert q.execute("SELECT count(*) FROM duckdb_sequences() "
                         "WHERE sequence_name = 'ser_tx_id_seq'").fetchone() == (0,)


def test_generated_keys_through_the_extended_protocol(server: RunningServer) -> None:
    """What ORMs do: a parameterised INSERT ... RETURNING of the generated key."""
    with server.connect() as q:
        q.execute("DROP TABLE IF EXISTS ser_orm")
        q.execute("CREATE TABLE ser_orm (id bigserial PRIMARY KEY, name varchar(20))")
        ids = [q.execute("INSERT INTO ser_orm (name) VALUES (%s) RETURNING ser_orm.id",
                         (n,)).fetchone() for n in ("a", "b", "c")]
        assert ids == [(1,), (2,), (3,)]
        q.execute("DROP TABLE ser_orm")


def test_ownership_and_identity_survive_a_restart(tmp_path: Path) -> None:
    """Kept in DuckDB's catalog (the sequence's comment): after a restart DROP TABLE
    still drops the owned sequences and GENERATED ALWAYS still refuses a value."""
    database, data = tmp_path / "db.duckdb", tmp_path / "data"
    first = start_server_process(database, data, "--no-samples")
    try:
        with psycopg.connect(first.dsn(), autocommit=True) as c:
            c.execute("CREATE TABLE kept (id serial, n int GENERATED ALWAYS AS IDENTITY, v int)")
            c.execute("INSERT INTO kept (v) VALUES (1)")
    finally:
        first.stop()
    second = start_server_process(database, data, "--no-samples")
    try:
        with psycopg.connect(second.dsn(), autocommit=True) as c:
            assert c.execute("INSERT INTO kept (v) VALUES (2) RETURNING id, n").fetchall() == \
                [(2, 2)]
            with pytest.raises(psycopg.Error) as info:
                c.execute("INSERT INTO kept (n, v) VALUES (9, 3)")
            assert info.value.sqlstate == "428C9"
            assert c.execute("SELECT pg_get_serial_sequence('kept', 'id')").fetchone() == \
                ("public.kept_id_seq",)
            c.execute("DROP TABLE kept")
            assert c.execute("SELECT count(*) FROM duckdb_sequences()").fetchone() == (0,)
    finally:
        second.stop()


def test_public_schema_with_parameters(server: RunningServer, pg: str) -> None:
    """``public.t`` (DuckDB's main.t) through the extended protocol, as ORMs send it."""
    seen = []
    for dsn in (pg, server.dsn()):
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS public.ser_pub")
            c.execute("CREATE TABLE public.ser_pub (id serial PRIMARY KEY, v int)")
            keys = [c.execute("INSERT INTO public.ser_pub (v) VALUES (%s) RETURNING id",
                              (v,)).fetchone() for v in (10, 20)]
            rows = c.execute("SELECT id, v FROM public.ser_pub WHERE v > %s ORDER BY id",
                             (5,)).fetchall()
            c.execute("DROP TABLE public.ser_pub")
            seen.append((keys, rows))
    assert seen[1] == seen[0] == ([(1,), (2,)], [(1, 10), (2, 20)])
