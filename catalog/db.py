"""The security catalog's database: a SQLite file in the data directory, out of SQL's reach.

Users, password verifiers, role memberships, privileges and model records
(with their artifact paths and checksums) live here, not in the DuckDB
database that user SQL runs against. DuckDB runs with external access off and
the data directory outside its allowed directories, so no SQL statement, from
any user, can attach, read or write this file; what SQL users see of it are
read-only views served by the server (``catalog.views``).

SQLite (the standard library's ``sqlite3``) is the store because it is
transactional and crash-safe on its own (WAL, synchronous=FULL): a crash never
leaves a half-written row, and a group of writes commits as one.

One ``CatalogDB`` per server; all access goes through its lock (one writer,
and reads that never see a write half done). ``generation`` counts committed
writes: caches of decisions or of what the views show are valid while it stays.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

FILE_NAME = "catalog.sqlite3"


class CatalogDB:
    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by the server's threads, serialised by the lock
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        self.generation = 0
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            Path(self.path).chmod(0o600)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock; writes inside commit together (nested uses join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._con.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._con.execute("COMMIT")
                self.generation += 1

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """One write, in its own transaction unless inside ``transaction()``."""
        with self.transaction():
            self._con.execute(sql, tuple(params))

    def script(self, sql: str) -> None:
        with self._lock:
            self._con.executescript(sql)
            self.generation += 1

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._con.execute(sql, tuple(params)).fetchall())

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._con.close()
