"""SCRAM-SHA-256 as the drivers that implement it themselves (not through libpq)
do it: pg8000 (with scramp), node-postgres and asyncpg log in to a server run with
`--auth scram-sha-256`, in plain text and over TLS (each driver's own SSLRequest
and handshake, verifying the server's certificate); a wrong password is 28P01."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pg8000.native
import psycopg
import pytest

from server.listener import Server
from server.settings import Settings
from tests.test_security import OPENSSL, make_certs

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
USER, USER_PW = "erin", "e-pw ünïcode"
NODE = shutil.which("node")
NODE_DIR = Path(__file__).parent / "clients" / "node"


@dataclass
class Target:
    port: int
    ca: Path | None   # TLS: the CA that signed the server's certificate

    def context(self) -> ssl.SSLContext | None:
        return None if self.ca is None else ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module", params=["plain", "tls"])
def target(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("scram")
    tls: dict[str, str] = {}
    ca = None
    if request.param == "tls":
        if OPENSSL is None:
            pytest.skip("openssl makes the test certificates")
        ca, cert, key = make_certs(folder)
        tls = {"tls_cert": str(cert), "tls_key": str(key)}
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, superuser=ADMIN, superuser_password=ADMIN_PW,
                          auth="scram-sha-256", **tls))  # type: ignore[arg-type]
    srv.start()
    try:
        with psycopg.connect(host="127.0.0.1", port=srv.port, user=ADMIN, password=ADMIN_PW,
                             dbname="quackml", autocommit=True) as c:
            c.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
        yield Target(srv.port, ca)
    finally:
        srv.stop()


def test_pg8000(target: Target) -> None:
    con = pg8000.native.Connection(USER, password=USER_PW, host="127.0.0.1", port=target.port,
                                   database="quackml", timeout=30,
                                   ssl_context=target.context())
    try:
        assert con.run("SELECT current_user") == [[USER]]
    finally:
        con.close()
    with pytest.raises(pg8000.native.DatabaseError) as info:
        pg8000.native.Connection(USER, password="wrong", host="127.0.0.1", port=target.port,
                                 database="quackml", timeout=30,
                                 ssl_context=target.context())
    assert info.value.args[0]["C"] == "28P01"


def test_asyncpg(target: Target) -> None:
    tls = target.context() or False

    async def main() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=target.port, user=USER,
                                     password=USER_PW, database="quackml", ssl=tls)
        try:
            assert await conn.fetchval("SELECT current_user") == USER
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=target.port, user=USER,
                                  password="wrong", database="quackml", ssl=tls)
    asyncio.run(main())


@pytest.mark.skipif(NODE is None, reason="node: make system-deps")
def test_node_postgres(target: Target) -> None:
    script = """
const fs = require('node:fs');
const { Client } = require('pg');
(async () => {
  const [port, user, password, ca] = process.argv.slice(1);
  const config = { host: '127.0.0.1', port: Number(port), user, database: 'quackml',
                   ssl: ca ? { ca: fs.readFileSync(ca) } : false };
  const c = new Client({ ...config, password });
  await c.connect();
  console.log((await c.query('SELECT current_user AS u')).rows[0].u);
  console.log(Boolean(c.connection.stream.encrypted));
  await c.end();
  const bad = new Client({ ...config, password: 'wrong' });
  try { await bad.connect(); console.log('no error'); } catch (e) { console.log(e.code); }
})().catch((e) => { console.log('FAIL', e); process.exit(1); });
"""
    assert NODE is not None
    assert (NODE_DIR / "node_modules" / "pg").is_dir(), \
        "node-postgres is not installed: make client-deps (npm ci in tests/clients/node)"
    out = subprocess.run([NODE, "-e", script, str(target.port), USER, USER_PW,
                          str(target.ca or "")], cwd=NODE_DIR, capture_output=True, text=True,
                         timeout=60)
    encrypted = "true" if target.ca else "false"
    assert out.stdout.splitlines() == [USER, encrypted, "28P01"], out.stdout + out.stderr
