"""A shared target for the attack suite: a SCRAM server with an import/export
directory, a superuser, a trained model, and a non-superuser, mallory, who
holds CREATE MODEL but no EXECUTE on the superuser's model.

Test modules import the ``target`` fixture from here (a second conftest.py
beside tests/conftest.py would clash: tests/ is not a package)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from server.listener import Server
from server.settings import Settings

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
MALLORY, MALLORY_PW = "mallory", "m4llory-pw"
MODEL, FUNCTION = "adm_km", "adm_km_f"


@dataclass
class Target:
    server: Server
    folder: Path
    file_dir: Path

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, user: str, password: str, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                               dbname="quackml", connect_timeout=10, autocommit=True,
                               **kwargs)  # type: ignore[call-overload]

    def admin(self) -> psycopg.Connection:
        return self.connect(ADMIN, ADMIN_PW)

    def mallory(self, **kwargs: object) -> psycopg.Connection:
        return self.connect(MALLORY, MALLORY_PW, **kwargs)

    @property
    def database(self) -> Path:
        return self.folder / "db.duckdb"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("attack")
    file_dir = folder / "io"
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, superuser=ADMIN, superuser_password=ADMIN_PW,
                          auth="scram-sha-256", file_dir=str(file_dir)))
    srv.start()
    t = Target(srv, folder, file_dir)
    try:
        with t.admin() as c:
            c.execute(f"CREATE USER {MALLORY} PASSWORD '{MALLORY_PW}'")
            c.execute(f"GRANT CREATE MODEL TO {MALLORY}")
            c.execute("CREATE TABLE pts AS SELECT (i % 3)::DOUBLE AS a, (i % 17)::DOUBLE AS b "
                      "FROM range(600) t(i)")
            c.execute(f"GRANT SELECT ON pts TO {MALLORY}")
            c.execute(f"CREATE MODEL {MODEL} FROM pts FUNCTION {FUNCTION} IAM_ROLE default "
                      "AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '3') "
                      "SETTINGS (S3_BUCKET 'b')")
            deadline = time.monotonic() + 120
            while dict(c.execute(f"SHOW MODEL {MODEL}").fetchall())["Model State"] != "READY":
                assert time.monotonic() < deadline, "the model did not train"
                time.sleep(0.2)
        yield t
    finally:
        srv.stop()


def sqlstate(conn: psycopg.Connection, sql: str, *, prepare: bool | None = None) -> str | None:
    """The SQLSTATE ``sql`` fails with, or None if it ran."""
    try:
        conn.execute(sql, prepare=prepare)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None
