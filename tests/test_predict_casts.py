"""Prediction functions take their arguments as PostgreSQL functions do, by implicit
casts (issue 11 item 6): a Python int (psycopg binds it as int2/int4/int8) for a
SMALLINT feature without ``::smallint``, an INTEGER column for a DOUBLE feature, a
numeric literal for a FLOAT feature, and the scores are those of the exact types."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import RunningServer, wait_for_state


@pytest.fixture(scope="module")
def casts_model(server: RunningServer) -> Iterator[psycopg.Connection]:
    with server.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS casts_train")
        conn.execute("CREATE TABLE casts_train (s SMALLINT, d DOUBLE, f FLOAT, i INTEGER)")
        conn.execute("INSERT INTO casts_train SELECT (g % 50)::SMALLINT, g::DOUBLE, "
                     "(g % 7)::FLOAT, g FROM range(600) t(g)")
        conn.execute("DROP MODEL IF EXISTS casts_km")
        conn.execute("CREATE MODEL casts_km FROM (SELECT s, d, f FROM casts_train) "
                     "FUNCTION casts_cluster IAM_ROLE default AUTO OFF MODEL_TYPE KMEANS "
                     "HYPERPARAMETERS DEFAULT EXCEPT (K '3') SETTINGS (S3_BUCKET 'b')")
        assert wait_for_state(conn, "casts_km") == "READY"
        yield conn


def test_python_int_for_smallint_feature(casts_model: psycopg.Connection) -> None:
    conn = casts_model
    exact = conn.execute("SELECT casts_cluster(3::SMALLINT, 10.0::DOUBLE, 2.0::FLOAT)").fetchone()
    cur = conn.execute("SELECT casts_cluster(%s, %s, %s) AS c", [3, 10.0, 2.0])
    assert [d.name for d in cur.description] == ["c"]
    assert cur.fetchall() == [exact]
    # prepared, and in binary
    cur = conn.cursor(binary=True)
    for _ in range(6):
        assert cur.execute("SELECT casts_cluster(%s, %s, %s)", [3, 10.0, 2.0],
                           prepare=True).fetchall() == [exact]


def test_integer_column_and_literals(casts_model: psycopg.Connection) -> None:
    conn = casts_model
    exact = conn.execute("SELECT s, casts_cluster(s, d, f) FROM casts_train "
                         "ORDER BY i").fetchall()
    # an INTEGER column for the SMALLINT and DOUBLE features, numeric literals for FLOAT
    cast = conn.execute("SELECT i % 50, casts_cluster((i % 50)::INTEGER, i, f::DECIMAL(6,1)) "
                        "FROM casts_train ORDER BY i").fetchall()
    assert cast == exact
    one = conn.execute("SELECT casts_cluster(3, 10, 2.0)").fetchall()
    assert one == conn.execute(
        "SELECT casts_cluster(3::SMALLINT, 10::DOUBLE, 2.0::FLOAT)").fetchall()


def test_untyped_text_parameters(casts_model: psycopg.Connection) -> None:
    # what node-postgres and pg8000 send: every value as untyped text
    conn = casts_model
    exact = conn.execute("SELECT casts_cluster(3::SMALLINT, 10.0::DOUBLE, 2.0::FLOAT)").fetchone()
    cur = conn.execute("SELECT casts_cluster(%s, %s, %s)", ["3", "10.0", "2.0"])
    assert cur.fetchall() == [exact]


def test_still_refused_without_an_implicit_cast(casts_model: psycopg.Connection) -> None:
    # PostgreSQL has no implicit cast from text to a number: neither does the function
    with pytest.raises(psycopg.Error):
        casts_model.execute("SELECT casts_cluster('3'::VARCHAR, 1, 1)")
