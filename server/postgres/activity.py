"""The server's sessions as ``pg_stat_activity`` shows them.

Each session enters itself when it starts (its backend pid is the one the client got
in BackendKeyData), notes the statement it runs and leaves when it ends; the DuckDB
function ``quackml_activity()`` returns the rows (a list of structs, as the catalog
functions of ``catalog.views``), read by the ``pg_stat_activity`` view.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

FUNCTION = "quackml_activity"
_FIELDS = (("pid", "INTEGER"), ("datname", "VARCHAR"), ("usename", "VARCHAR"),
           ("application_name", "VARCHAR"), ("client_addr", "VARCHAR"),
           ("client_port", "INTEGER"), ("backend_start", "TIMESTAMPTZ"),
           ("xact_start", "TIMESTAMPTZ"), ("query_start", "TIMESTAMPTZ"),
           ("state_change", "TIMESTAMPTZ"), ("state", "VARCHAR"), ("query", "VARCHAR"))


@dataclass
class Backend:
    pid: int
    datname: str
    usename: str
    application_name: str
    client_addr: str | None
    client_port: int | None
    backend_start: datetime
    xact_start: datetime | None = None
    query_start: datetime | None = None
    state_change: datetime | None = None
    state: str = "idle"
    query: str = ""

    def running(self, query: str, in_block: bool) -> None:
        now = datetime.now(UTC)
        self.query, self.query_start, self.state_change, self.state = \
            query, now, now, "active"
        if in_block and self.xact_start is None:
            self.xact_start = now

    def finished(self, status: str) -> None:
        """The statement ended; ``status``: the session's transaction status (I, T, E)."""
        self.state = {"T": "idle in transaction",
                      "E": "idle in transaction (aborted)"}.get(status, "idle")
        self.state_change = datetime.now(UTC)
        if status == "I":
            self.xact_start = None
        elif self.xact_start is None:   # BEGIN: the block started with it
            self.xact_start = self.query_start


class Activity:
    """The sessions of one engine, by backend pid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backends: dict[int, Backend] = {}

    def enter(self, backend: Backend) -> None:
        with self._lock:
            self._backends[backend.pid] = backend

    def leave(self, pid: int) -> None:
        with self._lock:
            self._backends.pop(pid, None)

    def rows(self) -> list[dict[str, object]]:
        with self._lock:
            backends = list(self._backends.values())
        return [{name: getattr(b, name) for name, _ in _FIELDS}
                for b in sorted(backends, key=lambda b: b.pid)]

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        struct = ", ".join(f'"{f}" {t}' for f, t in _FIELDS)
        con.create_function(FUNCTION, self.rows, [],  # type: ignore[call-overload]
                            con.sqltype(f"STRUCT({struct})[]"), type="native",
                            side_effects=True)
