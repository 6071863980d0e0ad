"""Before login (issue 10, item 8): what a client that has not authenticated can
do to the server, tried over raw sockets and psycopg against real servers.

- start-up packets over 10,000 bytes and password / SASL messages over 1,000
  bytes: FATAL 08P01, the connection closes, the server keeps serving;
- ``authentication_timeout``: a client that has not logged in in time is
  closed (without a message, as PostgreSQL closes it);
- ``max_startup_connections``: past it a new socket gets FATAL 53300 at once;
- ``superuser_reserved_connections``: the last slots of ``max_connections``
  are for superusers (53300 for others);
- SCRAM salts of unknown users (and of users that cannot log in with a
  password) are stable per name, differ between names, survive a restart and
  look like real ones.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from scramp import ScramClient

from server.listener import Server
from server.security import auth
from server.settings import Settings
from tests import rawwire
from tests.test_security import OPENSSL, make_certs

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
USER, USER_PW = "bob", "b0b-pw"


def settings(folder: Path, **overrides: object) -> Settings:
    base = Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                    data_dir=str(folder / "data"), samples=False, training_workers=1,
                    training_threads=1, auth="scram-sha-256", superuser=ADMIN,
                    superuser_password=ADMIN_PW)
    return replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.contextmanager
def running(folder: Path, **overrides: object) -> Iterator[Server]:
    srv = Server(settings(folder, **overrides))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def dsn(srv: Server, user: str, password: str) -> str:
    return (f"host=127.0.0.1 port={srv.port} user={user} password={password} "
            "dbname=quackml connect_timeout=10")


def login(srv: Server, user: str = ADMIN, password: str = ADMIN_PW,
          sslmode: str = "prefer") -> psycopg.Connection:
    return psycopg.connect(dsn(srv, user, password) + f" sslmode={sslmode}", autocommit=True)


def raw(srv: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=10)


def fatal(msgs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The fields of the last message, which must be an ErrorResponse."""
    assert msgs and msgs[-1][0] == b"E", msgs
    return rawwire.error_fields(msgs[-1][1])


def sasl_started(srv: Server, user: str) -> socket.socket:
    """A socket whose start-up was sent and answered with AuthenticationSASL."""
    sock = raw(srv)
    sock.sendall(rawwire.startup_packet(user))
    msgs, closed = rawwire.read_messages(sock, until=b"R")
    assert not closed and msgs[-1][0] == b"R", msgs
    assert struct.unpack("!i", msgs[-1][1][:4])[0] == 10   # AuthenticationSASL
    return sock


def sasl_initial(client_first: bytes) -> bytes:
    return rawwire.message(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(client_first))
                           + client_first)


def server_first(srv: Server, user: str) -> dict[str, str]:
    """The SCRAM server-first message a user gets: r (nonce), s (salt), i (iterations)."""
    sock = sasl_started(srv, user)
    try:
        sock.sendall(sasl_initial(b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL"))
        msgs, closed = rawwire.read_messages(sock, until=b"R")
        assert not closed and msgs[-1][0] == b"R", msgs
        body = msgs[-1][1]
        assert struct.unpack("!i", body[:4])[0] == 11   # AuthenticationSASLContinue
        return dict(part.split("=", 1) for part in body[4:].decode().split(","))
    finally:
        sock.close()


def raw_login(srv: Server, user: str, password: str) -> tuple[socket.socket, dict[str, str]]:
    """Log in over a raw socket with SCRAM-SHA-256: the socket and {} once
    ReadyForQuery arrived, or the fields of the ErrorResponse the server sent."""
    sock = sasl_started(srv, user)
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    sock.sendall(sasl_initial(client.get_client_first().encode()))
    msgs, _ = rawwire.read_messages(sock, until=b"R")
    if msgs[-1][0] == b"E":
        return sock, rawwire.error_fields(msgs[-1][1])
    client.set_server_first(msgs[-1][1][4:].decode())
    sock.sendall(rawwire.message(b"p", client.get_client_final().encode()))
    msgs, _ = rawwire.read_messages(sock, until=b"Z")
    errors = [rawwire.error_fields(body) for tag, body in msgs if tag == b"E"]
    return sock, errors[0] if errors else {}


def assert_closed(sock: socket.socket, within: float) -> list[tuple[bytes, bytes]]:
    """Wait (on the socket, no sleeps) until the server closes it; return what it sent."""
    msgs, closed = rawwire.read_messages(sock, until=b"\xff", timeout=within)
    assert closed, msgs
    return msgs


# -- size limits ------------------------------------------------------------------
@pytest.mark.parametrize("length", [10_001, 2**31 - 1])
def test_oversize_startup_packet_is_08P01_and_server_keeps_serving(tmp_path: Path,
                                                                    length: int) -> None:
    with running(tmp_path) as srv:
        sock = raw(srv)
        # only the length word and a little of the body: the server must not wait for more
        sock.sendall(struct.pack("!i", length) + struct.pack("!i", 196608) + b"user\x00")
        fields = fatal(assert_closed(sock, within=5))
        assert (fields["S"], fields["C"]) == ("FATAL", "08P01")
        assert "invalid length of startup packet" in fields["M"]
        sock.close()
        with login(srv) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)


def test_startup_packet_at_the_limit_is_read(tmp_path: Path) -> None:
    with running(tmp_path) as srv:
        packet = rawwire.startup_packet(ADMIN)
        pad = 10_000 - len(packet) - len(b"application_name\x00\x00")
        body = packet[4:-1] + b"application_name\x00" + b"a" * pad + b"\x00\x00"
        sock = raw(srv)
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        msgs, closed = rawwire.read_messages(sock, until=b"R")
        assert not closed and msgs[-1][0] == b"R", msgs   # asked for a password
        sock.close()


def test_oversize_password_messages_are_08P01(tmp_path: Path) -> None:
    limit = auth.MAX_AUTH_MESSAGE
    with running(tmp_path) as srv:
        # a SASLInitialResponse one byte over the limit
        sock = sasl_started(srv, ADMIN)
        client_first = b"n,,n=,r=" + b"x" * limit
        sock.sendall(sasl_initial(client_first))
        fields = fatal(assert_closed(sock, within=5))
        assert (fields["S"], fields["C"]) == ("FATAL", "08P01")
        sock.close()

        # a header announcing 64 MB: refused on the header, the body never awaited
        sock = sasl_started(srv, ADMIN)
        sock.sendall(b"p" + struct.pack("!i", 64 * 1024 * 1024))
        assert fatal(assert_closed(sock, within=5))["C"] == "08P01"
        sock.close()

        # sent in the same packet as the start-up message
        sock = raw(srv)
        sock.sendall(rawwire.startup_packet(ADMIN) + rawwire.message(b"p", b"y" * 5000 + b"\0"))
        msgs = assert_closed(sock, within=5)
        assert msgs[0][0] == b"R" and fatal(msgs)["C"] == "08P01"
        sock.close()

        with login(srv) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)


def test_oversize_cleartext_password_is_08P01(tmp_path: Path) -> None:
    with running(tmp_path, auth="password") as srv:
        sock = raw(srv)
        sock.sendall(rawwire.startup_packet(ADMIN))
        msgs, closed = rawwire.read_messages(sock, until=b"R")
        assert not closed and struct.unpack("!i", msgs[-1][1][:4])[0] == 3   # cleartext
        sock.sendall(rawwire.message(b"p", b"z" * (auth.MAX_AUTH_MESSAGE + 1) + b"\0"))
        assert fatal(assert_closed(sock, within=5))["C"] == "08P01"
        sock.close()
        with login(srv) as c:   # a normal password still logs in
            assert c.execute("SELECT current_user").fetchone() == (ADMIN,)


# -- authentication timeout ---------------------------------------------------------
def test_authentication_timeout_closes_clients_that_do_not_log_in(tmp_path: Path) -> None:
    with running(tmp_path, authentication_timeout=1.0) as srv:
        started = time.monotonic()
        silent = raw(srv)                       # connects and sends nothing
        half = sasl_started(srv, ADMIN)         # stops in the middle of SCRAM
        trickle = raw(srv)                      # sends part of its start-up packet
        trickle.sendall(rawwire.startup_packet(ADMIN)[:6])
        for sock in (silent, half, trickle):
            msgs = assert_closed(sock, within=10)
            assert not [t for t, _ in msgs if t == b"E"], msgs   # closed without a message
            sock.close()
        assert time.monotonic() - started >= 0.9   # the timeout closed them, not an error
        # a client that logs in promptly is not affected, nor is its session later
        with login(srv) as c:
            deadline = time.monotonic() + 10
            while srv._startup:   # the closed ones are gone
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert c.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command for a certificate")
def test_authentication_timeout_ends_a_stalled_tls_handshake(tmp_path: Path) -> None:
    _ca, cert, key = make_certs(tmp_path)
    with running(tmp_path, authentication_timeout=1.0, tls_cert=str(cert),
                 tls_key=str(key)) as srv:
        sock = raw(srv)
        sock.sendall(struct.pack("!ii", 8, 80877103))   # SSLRequest
        assert sock.recv(1) == b"S"
        sock.sendall(b"\x16\x03\x01")   # the first bytes of a ClientHello, then nothing
        assert_closed(sock, within=10)
        sock.close()
        with login(srv, sslmode="require") as c:
            assert c.execute("SELECT 1").fetchone() == (1,)


# -- connections that have not logged in ------------------------------------------
def test_cap_on_connections_not_logged_in(tmp_path: Path) -> None:
    cap = 3
    with running(tmp_path, max_startup_connections=cap) as srv:
        idle = [sasl_started(srv, ADMIN) for _ in range(cap - 1)]
        idle.append(raw(srv))
        idle[-1].sendall(rawwire.startup_packet(USER)[:3])   # half a length word
        # the server has accepted all of them: the SASL ones answered; wait for the last
        deadline = time.monotonic() + 10
        while len(srv._startup) < cap:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        extra = raw(srv)   # turned away, after its start-up packet is read
        extra.sendall(rawwire.startup_packet(ADMIN))
        fields = fatal(assert_closed(extra, within=5))
        assert (fields["S"], fields["C"]) == ("FATAL", "53300")
        extra.close()
        silent = raw(srv)   # turned away without a word: it said nothing
        assert assert_closed(silent, within=5) == []
        silent.close()
        # libpq (SSLRequest first, then its start-up packet) gets the reason
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            login(srv)
        for sock in idle:
            sock.close()
        deadline = time.monotonic() + 10
        while True:   # the server notices the closes
            try:
                c = login(srv)
                break
            except psycopg.OperationalError as exc:
                assert "too many clients" in str(exc) and time.monotonic() < deadline, exc
        with c:
            assert c.execute("SELECT 1").fetchone() == (1,)


# -- superuser_reserved_connections ---------------------------------------------------
def test_superuser_reserved_connections(tmp_path: Path) -> None:
    with running(tmp_path, max_connections=3, superuser_reserved_connections=1) as srv:
        first = login(srv)   # a superuser: 1 of 3
        first.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
        bob = login(srv, USER, USER_PW)   # 2 of 3: the last one is reserved
        sock, fields = raw_login(srv, USER, USER_PW)
        sock.close()
        assert (fields["S"], fields["C"]) == ("FATAL", "53300")
        assert fields["M"] == ("remaining connection slots are reserved for roles with the "
                               "SUPERUSER attribute")
        with pytest.raises(psycopg.OperationalError, match="reserved for roles"):
            login(srv, USER, USER_PW)
        second = login(srv)   # a superuser takes the reserved slot
        assert second.execute("SELECT current_user").fetchone() == (ADMIN,)
        sock, fields = raw_login(srv, ADMIN, ADMIN_PW)
        sock.close()
        assert (fields["C"], fields["M"]) == ("53300", "sorry, too many clients already")
        assert bob.execute("SELECT current_user").fetchone() == (USER,)
        for c in (first, bob, second):
            c.close()


def test_trust_counts_every_client_as_superuser(tmp_path: Path) -> None:
    with running(tmp_path, auth="trust", max_connections=2,
                 superuser_reserved_connections=1) as srv:
        conns = [psycopg.connect(f"host=127.0.0.1 port={srv.port} user={USER} dbname=quackml",
                                 autocommit=True) for _ in range(2)]
        assert all(c.execute("SELECT 1").fetchone() == (1,) for c in conns)
        for c in conns:
            c.close()


# -- mock SCRAM salts ----------------------------------------------------------------
def test_mock_salts_are_stable_per_name_and_look_real(tmp_path: Path) -> None:
    with running(tmp_path) as srv:
        with login(srv) as c:
            c.execute(f"CREATE USER {USER} PASSWORD '{USER_PW}'")
            c.execute("CREATE USER nopw")
            c.execute("CREATE ROLE analysts")
        real = server_first(srv, USER)
        ghost = server_first(srv, "ghost")
        again = server_first(srv, "ghost")
        other = server_first(srv, "phantom")
        nopw = server_first(srv, "nopw")
        role = server_first(srv, "analysts")
        assert ghost["s"] == again["s"] and ghost["r"] != again["r"]
        assert len({ghost["s"], other["s"], nopw["s"], role["s"], real["s"]}) == 5
        for first in (ghost, other, nopw, role):
            assert len(base64.b64decode(first["s"], validate=True)) == \
                len(base64.b64decode(real["s"])) == auth.SALT_BYTES
            assert first["i"] == real["i"] == "4096"
            assert set(first) == set(real) == {"r", "s", "i"}
        # a user without a password fails exactly as an unknown user does
        errors = []
        for user in ("nopw", "ghost", "analysts"):
            sock, fields = raw_login(srv, user, "guess")
            sock.close()
            assert fields["C"] == "28P01"
            errors.append({k: v.replace(user, "USER") for k, v in fields.items()})
        assert errors[0] == errors[1] == errors[2]
    secret = tmp_path / "data" / auth.SECRET_FILE
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_bytes()) == auth.SECRET_BYTES
    with running(tmp_path) as srv:   # the same data dir after a restart
        assert server_first(srv, "ghost")["s"] == ghost["s"]
        assert server_first(srv, "nopw")["s"] == nopw["s"]
    with running(tmp_path / "elsewhere") as srv:   # another server: another secret
        assert server_first(srv, "ghost")["s"] != ghost["s"]
