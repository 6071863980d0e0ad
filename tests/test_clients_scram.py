"""SCRAM-SHA-256 as the drivers that implement it themselves (not through libpq)
do it: pg8000 (with scramp), node-postgres and asyncpg log in to a server run with
`--auth scram-sha-256`; a wrong password is 28P01 for each."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pg8000.native
import psycopg
import pytest

from server.listener import Server
from server.settings import Settings

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
USER, USER_PW = "erin", "e-pw ünïcode"
NODE = shutil.which("node")
NODE_DIR = Path(__file__).parent / "clients" / "node"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("scram")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, superuser=ADMIN, superuser_password=ADMIN_PW,
                          auth="scram-sha-256"))
    srv.start()
    try:
        with psycopg.connect(host="127.0.0.1", port=srv.port, user=ADMIN, password=ADMIN_PW,
                             dbname="quackml", autocommit=True) as c:
            c.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
        yield srv.port
    finally:
        srv.stop()


def test_pg8000(port: int) -> None:
    con = pg8000.native.Connection(USER, password=USER_PW, host="127.0.0.1", port=port,
                                   database="quackml", timeout=30)
    try:
        assert con.run("SELECT current_user") == [[USER]]
    finally:
        con.close()
    with pytest.raises(pg8000.native.DatabaseError) as info:
        pg8000.native.Connection(USER, password="wrong", host="127.0.0.1", port=port,
                                 database="quackml", timeout=30)
    assert info.value.args[0]["C"] == "28P01"


def test_asyncpg(port: int) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user=USER, password=USER_PW,
                                     database="quackml", ssl=False)
        try:
            assert await conn.fetchval("SELECT current_user") == USER
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=port, user=USER, password="wrong",
                                  database="quackml", ssl=False)
    asyncio.run(main())


@pytest.mark.skipif(NODE is None, reason="node: make system-deps")
def test_node_postgres(port: int) -> None:
    script = """
const { Client } = require('pg');
(async () => {
  const [port, user, password] = process.argv.slice(1);
  const config = { host: '127.0.0.1', port: Number(port), user, database: 'quackml' };
  const c = new Client({ ...config, password });
  await c.connect();
  console.log((await c.query('SELECT current_user AS u')).rows[0].u);
  await c.end();
  const bad = new Client({ ...config, password: 'wrong' });
  try { await bad.connect(); console.log('no error'); } catch (e) { console.log(e.code); }
})().catch((e) => { console.log('FAIL', e); process.exit(1); });
"""
    assert NODE is not None
    out = subprocess.run([NODE, "-e", script, str(port), USER, USER_PW], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == [USER, "28P01"], out.stdout + out.stderr
