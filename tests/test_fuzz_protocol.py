"""Hostile input on the wire: hypothesis sends random message types,
lengths and bodies, truncated and oversized messages over a real socket to
the real server. No input may crash the server or disturb another session;
malformed messages get an ErrorResponse (08P01 for framing) and the
connection closes cleanly; no error is ever an internal one (XX000)."""

from __future__ import annotations

import socket
import struct

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import rawwire
from tests.conftest import RunningServer

FRONTEND_TAGS = b"BCDEFHPQSXcdfp"   # the message types a client may send
ALL_TAGS = st.one_of(st.sampled_from([bytes([t]) for t in FRONTEND_TAGS]),
                     st.binary(min_size=1, max_size=1))


@st.composite
def message(draw: st.DrawFn) -> bytes:
    tag = draw(ALL_TAGS)
    body = draw(st.one_of(
        st.binary(max_size=64),
        # plausible bodies: names, counts and C strings mixed
        st.lists(st.one_of(st.binary(max_size=8).map(lambda b: b + b"\0"),
                           st.integers(-2, 70000).map(lambda n: struct.pack("!i", n)),
                           st.integers(-2, 3).map(lambda n: struct.pack("!h", n))),
                 max_size=8).map(b"".join)))
    mode = draw(st.sampled_from(["exact", "exact", "exact", "short", "long", "huge", "tiny"]))
    length = {"exact": len(body) + 4, "short": max(0, len(body) + 4 - 3),
              "long": len(body) + 4 + 100, "huge": 0x7FFFFFF0, "tiny": 2}[mode]
    return tag + struct.pack("!I", length) + body


def _exchange(server: RunningServer, payload: bytes, startup: bool) -> tuple[
        list[tuple[bytes, bytes]], bool]:
    sock = (rawwire.connect(server.host, server.port) if startup
            else socket.create_connection((server.host, server.port), timeout=10))
    try:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)   # then the server sees the end of input
        except OSError:
            pass   # the server already closed on an earlier malformed message
        return rawwire.read_messages(sock, until=b"\xff", timeout=20)
    finally:
        sock.close()


def _check(messages: list[tuple[bytes, bytes]], closed: bool) -> None:
    assert closed, "the server must close the connection at end of input"
    for tag, body in messages:
        if tag == b"E":
            fields = rawwire.error_fields(body)
            code = fields.get("C", "")
            assert len(code) == 5 and code != "XX000", fields


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=st.lists(message(), min_size=1, max_size=6), startup=st.booleans())
def test_random_messages_never_hurt_the_server(server: RunningServer, messages: list[bytes],
                                               startup: bool) -> None:
    with server.connect() as bystander:
        bystander.execute("SELECT 1")
        msgs, closed = _exchange(server, b"".join(messages), startup)
        _check(msgs, closed)
        assert bystander.execute("SELECT 41 + 1").fetchone() == (42,)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=40))
def test_random_startup_packets(server: RunningServer, raw: bytes) -> None:
    msgs, closed = _exchange(server, raw, startup=False)
    _check(msgs, closed)


def test_malformed_message_gets_08p01_and_close(server: RunningServer) -> None:
    for bad in (b"\x01" + struct.pack("!I", 8) + b"abcd",   # unknown type
                b"Q" + struct.pack("!I", 0x7FFFFFF0),       # oversized
                b"Q" + struct.pack("!I", 2)):               # length below 4
        sock = rawwire.connect(server.host, server.port)
        try:
            sock.sendall(bad)
            msgs, closed = rawwire.read_messages(sock, until=b"\xff")
        finally:
            sock.close()
        assert closed and msgs and msgs[-1][0] == b"E"
        assert rawwire.error_fields(msgs[-1][1])["C"] == "08P01"
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_bind_counts_are_checked_and_the_connection_stays(server: RunningServer) -> None:
    """A Bind whose parameter count differs from the statement's is 08P01 as in
    PostgreSQL, an ERROR: the connection goes on. One with more than one format
    code but not one per parameter is broken input: 08P01, then the connection
    closes, also when it arrives behind good messages (it used to wait for the
    client's next bytes)."""
    def bind(n_formats: int, params: list[bytes]) -> bytes:
        body = b"\0\0" + struct.pack("!H", n_formats) + b"\0\0" * n_formats
        body += struct.pack("!H", len(params))
        body += b"".join(struct.pack("!I", len(p)) + p for p in params)
        return rawwire.message(b"B", body + b"\0\0")

    parse = rawwire.message(b"P", b"\0SELECT $1::int + 1\0\0\0")
    execute = rawwire.message(b"E", b"\0\0\0\0\0")
    sync = rawwire.message(b"S", b"")
    sock = rawwire.connect(server.host, server.port)
    try:
        for bad, text in ((bind(0, []), 'bind message supplies 0 parameters, but prepared '
                                        'statement "" requires 1'),
                          (bind(1, [b"1", b"2"]), "bind message supplies 2 parameters")):
            sock.sendall(parse + bad + execute + sync)
            msgs, closed = rawwire.read_messages(sock)
            assert not closed and [t for t, _ in msgs] == [b"1", b"E", b"Z"], msgs
            fields = rawwire.error_fields(msgs[1][1])
            assert (fields["S"], fields["C"]) == ("ERROR", "08P01")
            assert fields["M"].startswith(text), fields
        sock.sendall(parse + bind(1, [b"41"]) + execute + sync)
        msgs, closed = rawwire.read_messages(sock)
        assert [t for t, _ in msgs] == [b"1", b"2", b"D", b"C", b"Z"], msgs
        assert msgs[2][1].endswith(b"42")
        sock.sendall(parse + bind(2, [b"1"]) + execute + sync)
        msgs, closed = rawwire.read_messages(sock, until=b"\xff")
        assert closed and [t for t, _ in msgs] == [b"1", b"E"], msgs
        fields = rawwire.error_fields(msgs[1][1])
        assert fields["C"] == "08P01"
        assert fields["M"] == "bind message has 2 parameter formats but 1 parameters"
    finally:
        sock.close()
