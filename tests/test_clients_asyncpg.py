"""asyncpg: untyped $n parameters (inferred by Describe), binary results, COPY."""

from __future__ import annotations

import asyncio
import datetime
import decimal

import asyncpg

from tests.conftest import RunningServer


def run(server: RunningServer, scenario):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        conn = await asyncpg.connect(host=server.host, port=server.port, user="tester",
                                     database="quackml")
        try:
            return await scenario(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


def test_untyped_parameters_and_binary_results(server: RunningServer) -> None:
    async def scenario(conn: asyncpg.Connection) -> None:
        assert await conn.fetchval("SELECT $1::INTEGER + 1", 41) == 42
        assert await conn.fetchval("SELECT $1", "untyped") == "untyped"
        row = await conn.fetchrow(
            "SELECT -5::INTEGER AS a, -7::BIGINT AS b, -3::SMALLINT AS c, "
            "-12.50::DECIMAL(10,2) AS n, TIMESTAMPTZ '2024-01-02 03:04:05.25+00' AS t, "
            "INTERVAL '1 day 2 hours' AS iv, [1, -2, 3] AS arr, ['x', NULL] AS sarr, "
            "true AS flag, DATE '1999-12-31' AS d")
        assert dict(row) == {
            "a": -5, "b": -7, "c": -3, "n": decimal.Decimal("-12.50"),
            "t": datetime.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=datetime.UTC),
            "iv": datetime.timedelta(days=1, hours=2), "arr": [1, -2, 3],
            "sarr": ["x", None], "flag": True, "d": datetime.date(1999, 12, 31)}
    run(server, scenario)


def test_prepared_dml_and_copy_records(server: RunningServer) -> None:
    async def scenario(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE OR REPLACE TABLE apg_t (i INTEGER, s VARCHAR, "
                           "ts TIMESTAMPTZ)")
        insert = await conn.prepare("INSERT INTO apg_t VALUES ($1, $2, $3)")
        when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
        await insert.executemany([(i, f"v{i}", when) for i in range(10)])
        assert await conn.execute("UPDATE apg_t SET s = $1 WHERE i < $2", "low", 3) == \
            "UPDATE 3"
        await conn.execute("CREATE OR REPLACE TABLE apg_ddl AS SELECT 1 AS x")
        result = await conn.copy_records_to_table(
            "apg_t", records=[(100, "copied", when), (101, None, None)])
        assert result == "COPY 2"
        rows = await conn.fetch("SELECT i, s FROM apg_t WHERE i < 3 OR i >= 100 ORDER BY i")
        assert [tuple(r) for r in rows] == [(0, "low"), (1, "low"), (2, "low"),
                                            (100, "copied"), (101, None)]
        stmt = await conn.prepare("SELECT s FROM apg_t WHERE i = $1")
        for i in range(3, 10):
            assert await stmt.fetchval(i) == f"v{i}"
    run(server, scenario)


def test_errors_keep_connection(server: RunningServer) -> None:
    async def scenario(conn: asyncpg.Connection) -> None:
        try:
            await conn.fetch("SELECT * FROM apg_no_such_table")
        except asyncpg.PostgresError as exc:
            assert exc.sqlstate == "42P01"
        else:
            raise AssertionError("expected an error")
        assert await conn.fetchval("SELECT 1") == 1
    run(server, scenario)


def test_portal_row_limits_and_describe_without_running(server: RunningServer) -> None:
    async def scenario(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            # a cursor with prefetch sends Execute with a row limit: PortalSuspended
            got = [r[0] async for r in conn.cursor("SELECT range FROM range(1000)",
                                                   prefetch=64)]
            assert got == list(range(1000))
            cur = await conn.cursor("SELECT range FROM range(10)")
            assert [r[0] for r in await cur.fetch(3)] == [0, 1, 2]
            assert [r[0] for r in await cur.fetch(3)] == [3, 4, 5]
        await conn.execute("CREATE OR REPLACE TABLE apg_desc (i INTEGER, d DATE)")
        stmt = await conn.prepare("INSERT INTO apg_desc VALUES ($1, $2)")
        assert [t.name for t in stmt.get_parameters()] == ["int4", "date"]
        assert await conn.fetchval("SELECT count(*) FROM apg_desc") == 0
        query = await conn.prepare("SELECT i, d FROM apg_desc WHERE i > $1")
        assert [a.name for a in query.get_attributes()] == ["i", "d"]
        assert [t.name for t in query.get_parameters()] == ["int4"]
    run(server, scenario)
