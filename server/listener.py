"""The TCP listener: accepts clients and runs one thread per connection.

``Server.start()`` binds (port 0 picks a free port), recovers the catalog and
returns; ``Server.port`` is then the bound port. Cancel requests are matched
to connections by (pid, secret) from BackendKeyData.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
from typing import TYPE_CHECKING

from server.engine import Engine
from server.errors import UDF_ERROR_CLASSES
from server.settings import Settings

if TYPE_CHECKING:
    from server.connection import Connection

log = logging.getLogger("quackml.server")


def _register_udf_errors() -> None:
    from catalog import errors as catalog_errors
    from inference import errors as inference_errors

    for module in (catalog_errors, inference_errors):
        for value in vars(module).values():
            sqlstate = getattr(value, "sqlstate", None)
            if isinstance(value, type) and issubclass(value, Exception) and \
                    isinstance(sqlstate, str):
                UDF_ERROR_CLASSES[value.__name__] = sqlstate


class Server:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine: Engine | None = None
        self._sock: socket.socket | None = None
        self._connections: dict[int, tuple[int, Connection]] = {}
        self._lock = threading.Lock()
        self._next_pid = 1000
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        _register_udf_errors()
        self.engine = Engine(self.settings)
        if self.settings.samples and self.engine.store.meta("samples_loaded") is None:
            from server.samples import load_samples
            loaded = load_samples(self.engine.con)
            self.engine.store.set_meta("samples_loaded", ",".join(loaded))
        self.engine.recover()
        self._sock = socket.create_server((self.settings.host, self.settings.port),
                                          reuse_port=False, backlog=128)
        self._thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        from server.connection import Connection

        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._next_pid += 1
                pid = self._next_pid
            conn = Connection(client, self, pid, secrets.randbits(31))
            threading.Thread(target=conn.run, name=f"conn-{pid}", daemon=True).start()

    def register(self, pid: int, secret: int, conn: Connection) -> None:
        with self._lock:
            self._connections[pid] = (secret, conn)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._connections.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self._lock:
            entry = self._connections.get(pid)
        if entry is not None and entry[0] == secret and entry[1].session is not None:
            entry[1].session.interrupt()

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            conns = [c for _, c in self._connections.values()]
        for c in conns:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        if self.engine is not None:
            self.engine.close()
