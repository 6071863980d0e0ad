"""The TCP listener: accepts clients and runs one thread per connection.

``Server.start()`` binds (port 0 picks a free port), recovers the catalog and
returns; ``Server.port`` is then the bound port. Cancel requests are matched
to connections by (pid, secret) from BackendKeyData.

Overload and shutdown: at most ``max_connections`` sessions are admitted
(``admit``; the connection refuses the rest with FATAL 53300), and of those
the last ``superuser_reserved_connections`` only to superusers (53300 for
others), so an administrator can always get in.

Before login: at most ``max_startup_connections`` connections may be in
start-up or authentication at once, each with its thread. More are turned
away by a small fixed pool (``_TURN_AWAY_WORKERS`` threads): it reads the
client's start-up packet for at most ``_TURN_AWAY_S`` seconds (answering 'N'
to SSLRequest, serving CancelRequest) and answers FATAL 53300, so a client
learns why; past ``_TURN_AWAY_BACKLOG`` such sockets waiting, a new one is
closed at once. So idle unauthenticated sockets cannot tie up threads. A
connection that has not finished start-up and authentication
(TLS handshake included) within ``authentication_timeout`` seconds of its
accept is closed by the watchdog without a message, as PostgreSQL closes it
(the client may be in the middle of a TLS handshake or a SASL exchange). A
watchdog
thread interrupts statements that outlive their session's statement_timeout
(57014) and statements whose client has hung up (the session's resources are
freed at once rather than when the query ends). ``stop()`` stops accepting,
interrupts every session, lets each connection send FATAL 57P01 and close,
kills the training workers and checkpoints and closes the database.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from server.engine import Engine
from server.errors import UDF_ERROR_CLASSES
from server.protocol import messages as m
from server.security import auth
from server.settings import Settings

if TYPE_CHECKING:
    from server.connection import Connection

log = logging.getLogger("quackml.server")

_WATCH_EVERY_S = 0.02
_HANGUP_CHECK_AFTER_S = 0.1   # statements shorter than this never pay for a poll
_TURN_AWAY_WORKERS = 2
_TURN_AWAY_BACKLOG = 32
_TURN_AWAY_S = 1.0
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(ms|s|min|h|d)?\s*", re.IGNORECASE)
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


def timeout_ms(value: str) -> float:
    """A statement_timeout value as PostgreSQL reads it (bare numbers are
    milliseconds); 0 for no limit or an unreadable value."""
    match = _DURATION.fullmatch(value)
    if match is None:
        return 0.0
    return float(match.group(1)) * _UNIT_MS[(match.group(2) or "ms").lower()]


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
        self._threads: dict[int, threading.Thread] = {}
        # connections in start-up or authentication: pid -> (accept time, connection);
        # the time becomes inf once the watchdog closed it for authentication_timeout
        self._startup: dict[int, tuple[float, Connection]] = {}
        self.auth_secret = b""   # the mock-salt secret (server.security.auth)
        self._turn_away = ThreadPoolExecutor(_TURN_AWAY_WORKERS, "turn-away")
        self._turning_away = 0

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        """Bind first (a port in use fails before any work), then open the engine.
        A failure closes what was opened and propagates (``server.cli`` turns the
        known ones into one line)."""
        _register_udf_errors()
        self._sock = socket.create_server((self.settings.host, self.settings.port),
                                          reuse_port=False, backlog=128)
        try:
            self.engine = Engine(self.settings)   # loads the sample tables into a new database
            self.engine.recover()
            self.auth_secret = auth.server_secret(self.engine.data_dir)
        except BaseException:
            self._sock.close()
            if self.engine is not None:
                with contextlib.suppress(Exception):
                    self.engine.close()
            raise
        if self.settings.superuser_reserved_connections >= self.settings.max_connections:
            log.warning("superuser_reserved_connections (%d) is not below max_connections "
                        "(%d): one slot stays open to non-superusers",
                        self.settings.superuser_reserved_connections,
                        self.settings.max_connections)
        self._thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()

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
                starting = len(self._startup)
                self._next_pid += 1
                pid = self._next_pid
            if starting >= self.settings.max_startup_connections:
                self._refuse(client)
                continue
            conn = Connection(client, self, pid, secrets.randbits(31))
            thread = threading.Thread(target=conn.run, name=f"conn-{pid}", daemon=True)
            with self._lock:
                self._threads[pid] = thread
                self._startup[pid] = (time.monotonic(), conn)
            thread.start()

    def _refuse(self, client: socket.socket) -> None:
        """Past max_startup_connections: FATAL 53300 from the turn-away pool, or
        closed at once when its backlog is full."""
        with self._lock:
            full = self._turning_away >= _TURN_AWAY_BACKLOG
            if not full:
                self._turning_away += 1
        if full:
            with contextlib.suppress(OSError):
                client.close()
            return
        self._turn_away.submit(self._turn_away_one, client)

    def _turn_away_one(self, client: socket.socket) -> None:
        reader = m.MessageReader()
        deadline = time.monotonic() + _TURN_AWAY_S
        try:
            while True:
                client.settimeout(max(0.001, deadline - time.monotonic()))
                data = client.recv(m.MAX_STARTUP_PACKET)
                if not data:
                    return
                messages = reader.feed(data)
                if not messages:
                    continue
                match messages[0]:
                    case m.SSLRequest() | m.GSSENCRequest():
                        client.sendall(b"N")
                        messages = reader.feed(b"")   # resume decoding after it
                        if not messages:
                            continue
                    case m.CancelRequest(pid=pid, secret=secret):
                        self.cancel(pid, secret)
                        return
                client.sendall(m.error_response({
                    "S": "FATAL", "V": "FATAL", "C": "53300",
                    "M": "sorry, too many clients are logging in already"}))
                return
        except (OSError, m.ProtocolViolation):
            return   # a timeout, a hang-up or garbage: just close
        finally:
            with contextlib.suppress(OSError):
                client.close()
            with self._lock:
                self._turning_away -= 1

    def admit(self, pid: int, secret: int, conn: Connection, *, superuser: bool) -> str | None:
        """Register a connection that finished start-up and authentication; or,
        when max_connections sessions are open (or all but the slots reserved for
        superusers, for a non-superuser), the message to refuse it with (53300)."""
        limit = self.settings.max_connections
        reserved = max(0, min(self.settings.superuser_reserved_connections, limit - 1))
        with self._lock:
            self._startup.pop(pid, None)
            used = len(self._connections)
            if used >= limit:
                return "sorry, too many clients already"
            if not superuser and used >= limit - reserved:
                return ("remaining connection slots are reserved for roles with the "
                        "SUPERUSER attribute")
            self._connections[pid] = (secret, conn)
            return None

    def register(self, pid: int, secret: int, conn: Connection) -> None:
        with self._lock:
            self._connections[pid] = (secret, conn)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._connections.pop(pid, None)
            self._threads.pop(pid, None)
            self._startup.pop(pid, None)

    def _watch(self) -> None:
        """Interrupt statements past their timeout or whose client hung up."""
        while not self._stopping.wait(_WATCH_EVERY_S):
            self._close_late_logins()
            with self._lock:
                conns = [c for _, c in self._connections.values()]
            now = time.monotonic()
            poller: select.poll | None = None
            watched: dict[int, Connection] = {}
            for c in conns:
                since, session = c.busy_since, c.session
                if since is None or session is None:
                    continue
                limit = timeout_ms(session.params.get("statement_timeout", "0"))
                if limit > 0 and (now - since) * 1000.0 >= limit and not c.timed_out:
                    c.timed_out = True
                    session.interrupt()
                    continue
                if now - since >= _HANGUP_CHECK_AFTER_S:
                    with contextlib.suppress(OSError, ValueError):
                        poller = poller or select.poll()
                        poller.register(c.sock.fileno(), select.POLLRDHUP)
                        watched[c.sock.fileno()] = c
            if poller is not None and watched:
                for fd, events in poller.poll(0):
                    c = watched[fd]
                    if events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR) and \
                            c.session is not None and c.busy_since is not None:
                        log.info("client of connection %s hung up mid-statement: "
                                 "interrupting it", c.pid)
                        c.session.interrupt()

    def _close_late_logins(self) -> None:
        """Close connections past authentication_timeout: shutting the socket down
        wakes the connection's thread (in recv, send or the TLS handshake) and it ends."""
        deadline = time.monotonic() - self.settings.authentication_timeout
        with self._lock:
            late = [(pid, c) for pid, (since, c) in self._startup.items() if since <= deadline]
            for pid, c in late:
                self._startup[pid] = (float("inf"), c)
        for pid, c in late:
            log.info("connection %s did not authenticate within authentication_timeout "
                     "(%g s): closing it", pid, self.settings.authentication_timeout)
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)

    def cancel(self, pid: int, secret: int) -> None:
        with self._lock:
            entry = self._connections.get(pid)
        if entry is not None and entry[0] == secret and entry[1].session is not None:
            entry[1].session.interrupt()

    def stop(self, grace_s: float = 5.0, report: Callable[[str], None] = lambda _: None) -> None:
        """Graceful shutdown: refuse new clients, interrupt running statements,
        let every connection send FATAL 57P01 and close, then close the engine;
        ``report`` gets one line per phase."""
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            conns = [c for _, c in self._connections.values()]
            threads = list(self._threads.values())
            starting = [c for _, c in self._startup.values()]
        for c in starting:   # not logged in yet: nothing to tell them
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        self._turn_away.shutdown(wait=False, cancel_futures=True)
        for c in conns:
            if c.session is not None:
                c.session.interrupt()
        for c in conns:
            # wakes a connection blocked in recv; it answers 57P01 and closes
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + grace_s
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = [c for _, c in self._connections.values()]
        for c in left:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        report(f"stopped accepting connections; {len(conns)} "
               f"session{'' if len(conns) == 1 else 's'} ended with FATAL 57P01")
        if self.engine is not None:
            self.engine.close(report)
