"""server.postgres.ddl's translation on its own: what each PostgreSQL statement
becomes for DuckDB (the behaviour is tested side by side with PostgreSQL in
tests/test_serial_vs_postgres.py and tests/test_pg_dump_into_quackml.py)."""

from __future__ import annotations

from collections.abc import Sequence

from server.postgres import ddl, rebuild
from server.sql.text import split


class _Empty:
    """A database with nothing in it."""

    def current_schema(self) -> str:
        return "main"

    def sequence_exists(self, schema: str | None, name: str) -> bool:
        return name == "taken_id_seq"

    def table_exists(self, schema: str | None, name: str) -> bool:
        return False

    def sequence_start(self, schema: str | None, name: str) -> int | None:
        return 1

    def owned_sequences(self) -> Sequence[ddl.OwnedSequence]:
        return ()

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        return "integer"

    def column_position(self, schema: str | None, table: str, column: str) -> int | None:
        return 0

    def dependents(self, schema: str | None, table: str) -> rebuild.Dependents:
        return rebuild.Dependents()


def translate(sql: str) -> ddl.Translation | None:
    return ddl.translate(split(sql)[0], _Empty())


def test_statements_that_need_nothing() -> None:
    for sql in ("SELECT 1", "INSERT INTO t VALUES (1)", "CREATE TABLE t (id int)",
                "CREATE SEQUENCE s START 5", "DROP TABLE t", "SELECT 'public.x'",
                "CREATE MODEL public.m FROM t TARGET y FUNCTION f IAM_ROLE default "
                "SETTINGS (S3_BUCKET 'b')", "DROP MODEL public.m", "SHOW MODEL public.m"):
        assert translate(sql) is None, sql


def test_pg_dump_spelling() -> None:
    assert translate("SELECT * FROM public.t") == ddl.Translation(("SELECT * FROM main.t",),
                                                                   None)
    assert translate("SELECT pg_catalog.setval('public.t_id_seq', 3, true)").statements == \
        ("SELECT pg_catalog.setval('main.t_id_seq', 3, true)",)
    assert translate("ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT "
                     "nextval('public.t_id_seq'::regclass)").statements == \
        ("ALTER TABLE  main.t ALTER COLUMN id SET DEFAULT nextval('main.t_id_seq')",)
    assert translate("CREATE INDEX i ON public.t USING btree (a)").statements == \
        ("CREATE INDEX i ON main.t  (a)",)
    seq = translate("CREATE SEQUENCE public.s AS integer START WITH 1 INCREMENT BY 1 "
                    "NO MINVALUE NO MAXVALUE CACHE 1")
    assert seq is not None and seq.statements == (
        "CREATE SEQUENCE main.s START WITH 1 INCREMENT BY 1 MAXVALUE 2147483647",)
    fk = translate("ALTER TABLE ONLY public.o ADD CONSTRAINT o_fk FOREIGN KEY (p) "
                   "REFERENCES public.p(id)")
    assert fk is not None and fk.statements == () and "not enforced" in fk.notices[0]


def test_serial_and_identity() -> None:
    done = translate("CREATE TABLE taken (id serial PRIMARY KEY, "
                     "n bigint GENERATED ALWAYS AS IDENTITY (START WITH 10), v text)")
    assert done is not None and done.tag == "CREATE TABLE"
    assert done.statements[:3] == (
        "CREATE SEQUENCE taken_id_seq1 MAXVALUE 2147483647",   # taken_id_seq is taken
        "CREATE SEQUENCE taken_n_seq START WITH 10",
        "CREATE TABLE taken (id INTEGER NOT NULL DEFAULT nextval('taken_id_seq1') PRIMARY "
        "KEY, n bigint NOT NULL DEFAULT nextval('taken_n_seq'), v text)")
    assert ddl.read_marker(done.statements[4].split(" IS ", 1)[1][1:-1]) == \
        ddl.Owner("taken", "n", "always")


def test_prepare_with_types() -> None:
    done = translate("PREPARE p (int, text[]) AS SELECT $1 + $1, $2, $3")
    assert done is not None and done.statements == (
        "PREPARE p  AS SELECT CAST($1 AS int) + CAST($1 AS int), CAST($2 AS text[]), $3",)
