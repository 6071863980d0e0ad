"""A non-superuser and PostgreSQL's names (server/postgres/names.py): ``public`` is
DuckDB's ``main``, reached through the rewrite, and the firewall decides on the
rewritten statement: what holds for ``main`` holds for ``public``, three-part names
with the client's database name and schema-qualified prediction functions."""

from __future__ import annotations

import psycopg
import pytest

from tests.attack.target import FUNCTION, MALLORY, Target
from tests.attack.target import target as target  # the fixture


def sqlstate(conn: psycopg.Connection, sql: str) -> str | None:
    try:
        conn.execute(sql).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@pytest.fixture
def mallory(target: Target) -> psycopg.Connection:
    with target.admin() as c:
        c.execute("CREATE OR REPLACE TABLE pub_secret (v VARCHAR)")
        c.execute("INSERT INTO pub_secret VALUES ('s')")
    return target.mallory()


def test_public_is_main_for_a_non_superuser(mallory: psycopg.Connection) -> None:
    with mallory:
        # CREATE on public (main) is PUBLIC's, as in PostgreSQL 14
        mallory.execute("CREATE TABLE public.pub_own (i INTEGER)")
        mallory.execute("INSERT INTO quackml.public.pub_own VALUES (1)")
        assert mallory.execute("SELECT i FROM public.pub_own").fetchall() == [(1,)]
        assert mallory.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'pub_own'"
                               ).fetchall() == [(MALLORY,)]
        # psql's \dt: pg_get_userbyid(pg_class.relowner)
        assert mallory.execute("SELECT pg_catalog.pg_get_userbyid(c.relowner) "
                               "FROM pg_catalog.pg_class c WHERE c.relname IN "
                               "('pub_own', 'pub_secret') ORDER BY c.relname").fetchall() == [
            (MALLORY,), ("admin",)]
        mallory.execute("CREATE SCHEMA IF NOT EXISTS public")   # exists: nothing to do
        assert sqlstate(mallory, "CREATE SCHEMA public") is not None
        # a table of another's, by every spelling of public
        for sql in ("SELECT * FROM public.pub_secret", 'SELECT * FROM "public"."pub_secret"',
                    "SELECT * FROM quackml.public.pub_secret",
                    'SELECT * FROM "quackml".public.pub_secret',
                    "DROP TABLE public.pub_secret"):
            assert sqlstate(mallory, sql) == "42501", sql
        # the superuser's prediction function: no EXECUTE, qualified or not
        for sql in (f"SELECT {FUNCTION}(1.0, 2.0)", f"SELECT public.{FUNCTION}(1.0, 2.0)"):
            assert sqlstate(mallory, sql) == "42501", sql
        # the server's variables stay the server's
        for sql in ("SET VARIABLE quackml_database = 'x'",
                    "SET VARIABLE quackml_backend_pid = 1"):
            assert sqlstate(mallory, sql) == "42501", sql
        assert mallory.execute("SELECT current_database(), pg_backend_pid() = %s",
                               [mallory.info.backend_pid]).fetchone() == ("quackml", True)
        mallory.execute("DROP TABLE public.pub_own")


def test_others_statements_are_hidden(target: Target) -> None:
    with target.admin() as admin, target.mallory() as mallory:
        admin.execute("SELECT 'admin was here'")
        rows = dict(mallory.execute("SELECT usename, query FROM pg_stat_activity "
                                    "WHERE pid = %s OR pid = %s",
                                    [admin.info.backend_pid,
                                     mallory.info.backend_pid]).fetchall())
        assert rows["admin"] == "<insufficient privilege>"
        assert rows[MALLORY].startswith("SELECT usename")
        # a superuser sees everyone's
        assert admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                             [mallory.info.backend_pid]).fetchone() == (
            rows[MALLORY],)
