"""A minimal raw PostgreSQL wire client for tests that must send what no
real client would (fuzzing, half-finished connections)."""

from __future__ import annotations

import socket
import struct


def startup_packet(user: str = "tester", database: str = "quackml") -> bytes:
    body = struct.pack("!I", 196608) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in
        (("user", user), ("database", database))) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!I", len(body) + 4) + body


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def read_messages(sock: socket.socket, until: bytes = b"Z",
                  timeout: float = 10.0) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Read backend messages until one with tag ``until`` or EOF.
    Returns the messages and whether the server closed the connection."""
    sock.settimeout(timeout)
    buf = b""
    out: list[tuple[bytes, bytes]] = []
    while True:
        while len(buf) >= 5:
            length = struct.unpack("!I", buf[1:5])[0]
            if len(buf) < 1 + length:
                break
            tag, body, buf = buf[:1], buf[5:1 + length], buf[1 + length:]
            out.append((tag, body))
            if tag == until:
                return out, False
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return out, True
        if not data:
            return out, True
        buf += data


def error_fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def connect(host: str, port: int) -> socket.socket:
    """A raw connection that has completed start-up (ReadyForQuery seen)."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(startup_packet())
    msgs, closed = read_messages(sock)
    assert not closed and msgs[-1][0] == b"Z", msgs
    return sock
