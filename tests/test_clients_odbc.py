"""ODBC: psqlODBC (Debian odbc-postgresql) through unixODBC and pyodbc."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer

pyodbc = pytest.importorskip("pyodbc")
pytestmark = pytest.mark.skipif("PostgreSQL Unicode" not in pyodbc.drivers(),
                                reason="odbc-postgresql: make system-deps")


def test_odbc_query_parameters_and_catalog(server: RunningServer) -> None:
    conn = pyodbc.connect(
        f"DRIVER={{PostgreSQL Unicode}};SERVER={server.host};PORT={server.port};"
        "DATABASE=quackml;UID=tester;SSLmode=disable", autocommit=True, timeout=10)
    try:
        cur = conn.cursor()
        assert tuple(cur.execute("SELECT 40 + 2, 'x', 1.5::DOUBLE").fetchone()) == (42, "x", 1.5)
        cur.execute("CREATE OR REPLACE TABLE od_t (i INTEGER, s VARCHAR)")
        cur.execute("INSERT INTO od_t VALUES (?, ?)", 1, "a")
        cur.executemany("INSERT INTO od_t VALUES (?, ?)", [(2, "b"), (3, None)])
        rows = cur.execute("SELECT * FROM od_t WHERE i >= ? ORDER BY i", 2).fetchall()
        assert [tuple(r) for r in rows] == [(2, "b"), (3, None)]
        assert [(r.table_schem, r.table_name) for r in cur.tables(table="od%")] == [
            ("public", "od_t")]
        assert [(r.column_name, r.type_name) for r in cur.columns(table="od_t")] == [
            ("i", "int4"), ("s", "varchar")]
    finally:
        conn.close()
