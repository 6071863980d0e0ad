"""The console's HTTP server: uvicorn running the Starlette app in a thread of the
QuackML process.

Uvicorn and Starlette: both are well kept (Encode), already in the dependency
tree (MLflow's), and small; Starlette's SessionMiddleware gives signed,
expiring cookies (itsdangerous), and a sync endpoint runs in a worker thread,
where a DuckDB cursor may block without stalling other requests.

The socket is bound by ``start`` in the caller's thread, so a port in use fails
there (``server.cli`` turns it into one line). Uvicorn installs no signal
handlers outside the main thread: Ctrl-C stays with ``server.cli``, which calls
``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time

import uvicorn

from server.console.app import make_app
from server.engine import Engine
from server.settings import Settings

log = logging.getLogger("quackml.console")


class Console:
    """The web console of one server: ``start`` binds and serves, ``stop`` ends it."""

    def __init__(self, engine: Engine, settings: Settings, auth_secret: bytes,
                 port: int | None = None):
        self.engine = engine
        self.settings = settings
        self.auth_secret = auth_secret
        self._wanted_port = settings.http_port if port is None else port
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    @property
    def tls(self) -> bool:
        return bool(self.settings.tls_cert and self.settings.tls_key)

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{self.port}/"

    def start(self, timeout_s: float = 30.0) -> None:
        self._sock = socket.create_server((self.settings.host, self._wanted_port),
                                          reuse_port=False, backlog=128)
        app = make_app(self.engine, self.settings, self.auth_secret)
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2, server_header=False,
            ssl_certfile=self.settings.tls_cert if self.tls else None,
            ssl_keyfile=self.settings.tls_key if self.tls else None)
        self._server = uvicorn.Server(config)
        sock, server = self._sock, self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="console",
            daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the web console did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
