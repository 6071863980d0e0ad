"""ALTER TABLE on a table with indexes and a referencing foreign key (DuckDB refuses
these by itself: server/postgres/rebuild.py), side by side with PostgreSQL 15:
the columns, the rows, the indexes still there and the foreign key still enforced;
a failing ALTER changes nothing; TRUNCATE's command tag."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import RunningServer, side_by_side

SETUP = [
    "DROP TABLE IF EXISTS ad_posts",
    "DROP TABLE IF EXISTS ad_users",
    "CREATE TABLE ad_users (id integer PRIMARY KEY, email varchar(255) NOT NULL UNIQUE, "
    "name text, nickname text DEFAULT 'none', age integer)",
    "CREATE TABLE ad_posts (id integer PRIMARY KEY, "
    "user_id integer NOT NULL REFERENCES ad_users (id), title text)",
    "CREATE INDEX ad_users_name_idx ON ad_users (name)",
    "CREATE INDEX ad_users_nick_idx ON ad_users (nickname, name)",
    "CREATE INDEX ad_posts_user_idx ON ad_posts (user_id)",
    "INSERT INTO ad_users VALUES (1, 'a@x', 'Ann', 'an', 30), (2, 'b@x', 'Bob', 'bo', NULL)",
    "INSERT INTO ad_posts VALUES (10, 1, 'hello'), (11, 2, 'world')",
]

MIGRATION = [
    "ALTER TABLE ad_users RENAME COLUMN nickname TO handle",
    "ALTER TABLE ad_users ALTER COLUMN age TYPE bigint",
    "ALTER TABLE ad_users ALTER COLUMN name SET NOT NULL",
    "ALTER TABLE ad_users ALTER COLUMN name DROP NOT NULL",
    "ALTER TABLE ad_users RENAME COLUMN id TO user_key",
    "DROP INDEX ad_users_nick_idx",
    "ALTER TABLE ad_users DROP COLUMN handle",
]

CHECKS = [
    "SELECT column_name, is_nullable FROM information_schema.columns "
    "WHERE table_name = 'ad_users' ORDER BY ordinal_position",
    "SELECT * FROM ad_users ORDER BY 1",
    "SELECT * FROM ad_posts ORDER BY 1",
    "SELECT u.name, p.title FROM ad_users u JOIN ad_posts p ON p.user_id = u.user_key "
    "ORDER BY 1",
]


@pytest.fixture(scope="module")
def both(server: RunningServer, pg: str) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    with side_by_side(server, pg, SETUP, [f"DROP TABLE IF EXISTS {t}" for t in
                                          ("ad_posts", "ad_users", "ad_people")]) as pair:
        yield pair


def _sqlstate(conn: psycopg.Connection, stmt: str) -> str | None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(stmt)
    return info.value.sqlstate


def test_migration_on_a_table_with_indexes_and_a_referencing_key(
        both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    p, q = both
    for stmt in MIGRATION:
        tags = [conn.execute(stmt).statusmessage for conn in (p, q)]
        assert tags[0] == tags[1] == " ".join(stmt.split()[:2]), stmt
    for stmt in CHECKS:
        assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall(), stmt
    # the index followed the renamed column
    assert q.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'ad_users' "
                     "ORDER BY 1").fetchall() == [("ad_users_name_idx",)]
    assert q.execute("SELECT index_name FROM duckdb_indexes() "
                     "WHERE table_name = 'ad_posts'").fetchall() == [("ad_posts_user_idx",)]
    # the foreign key follows the renamed key and is still enforced
    for conn in (p, q):
        assert _sqlstate(conn, "INSERT INTO ad_posts VALUES (12, 99, 'x')") == "23503"
        conn.execute("INSERT INTO ad_posts VALUES (12, 2, 'again')")
    stmt = "SELECT count(*) FROM ad_posts WHERE user_id = 2"
    assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall() == [(2,)]


def test_failing_alter_changes_nothing(
        both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    p, q = both
    for conn in (p, q):
        assert _sqlstate(conn, "ALTER TABLE ad_users ALTER COLUMN age SET NOT NULL") == "23502"
    assert q.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'ad_users'"
                     ).fetchall() == [("ad_users_name_idx",)]
    stmt = "SELECT count(*) FROM ad_posts"
    assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall()
    assert q.execute("SELECT data_type FROM information_schema.columns WHERE "
                     "table_name = 'ad_users' AND column_name = 'age'").fetchall() == [("bigint",)]
    # where it stops: DuckDB cannot retype or drop an indexed column in the transaction
    # that dropped the index
    assert _sqlstate(q, "ALTER TABLE ad_users ALTER COLUMN name TYPE varchar(100)") == "0A000"
    assert _sqlstate(q, "ALTER TABLE ad_users DROP COLUMN name") == "0A000"
    # and DuckDB's own refusal: a column of a PRIMARY KEY or UNIQUE constraint
    assert _sqlstate(q, "ALTER TABLE ad_users ALTER COLUMN email TYPE text") == "0A000"


def test_rename_of_a_referenced_table(
        both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    """The referencing table's foreign key and the index follow the new name."""
    p, q = both
    for conn in (p, q):
        conn.execute("ALTER TABLE ad_users RENAME TO ad_people")
        assert _sqlstate(conn, "INSERT INTO ad_posts VALUES (20, 99, 'x')") == "23503"
    stmt = "SELECT (SELECT count(*) FROM ad_people), (SELECT count(*) FROM ad_posts)"
    assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall()
    assert q.execute("SELECT table_name FROM duckdb_indexes() WHERE index_name = "
                     "'ad_users_name_idx'").fetchall() == [("ad_people",)]
    for conn in (p, q):
        conn.execute("ALTER TABLE ad_people RENAME TO ad_users")


def test_truncate_tag_has_no_count(both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    for conn in both:
        conn.execute("CREATE TABLE ad_trunc (a integer)")
        conn.execute("INSERT INTO ad_trunc VALUES (1), (2)")
        cur = conn.execute("TRUNCATE ad_trunc")
        assert (cur.statusmessage, cur.rowcount) == ("TRUNCATE TABLE", -1)
        conn.execute("DROP TABLE ad_trunc")


def test_a_column_named_at(both: tuple[psycopg.Connection, psycopg.Connection]) -> None:
    p, q = both
    for conn in (p, q):
        conn.execute("CREATE TABLE ad_audit (id integer, at timestamp)")
        conn.execute("INSERT INTO ad_audit (id, at) VALUES (1, '2024-01-02 03:04:05')")
    stmt = "SELECT id, at, at AT TIME ZONE 'UTC' IS NOT NULL FROM ad_audit"
    assert q.execute(stmt).fetchall() == p.execute(stmt).fetchall()
    for conn in (p, q):
        conn.execute("DROP TABLE ad_audit")
