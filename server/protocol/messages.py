"""PostgreSQL v3 wire messages: the frontend decoder and the backend encoders.

Role: the sans-IO message layer (in the spirit of psycopg's ``generators.py``).
``MessageReader`` turns bytes received from a client into typed, frozen
frontend messages; the ``*_response`` / ``*_complete`` functions turn backend
messages into bytes. Nothing here touches a socket, a thread or DuckDB.

Invariants:

- ``MessageReader.feed`` either returns complete messages or raises
  ``ProtocolViolation`` (SQLSTATE 08P01, or 0A000 for an unsupported
  protocol version, 22021 for invalid UTF-8); bytes of an incomplete message
  stay buffered. It never raises another exception for any input.
- Memory is bounded: a length prefix above ``max_message_size`` (startup
  packets: 10000 bytes) is rejected as soon as the 4 or 5 header bytes arrive,
  before the body is buffered.
- After an ``SSLRequest`` or ``GSSENCRequest`` the reader stops decoding and
  leaves any further bytes buffered: the connection must check that
  ``MessageReader.buffered == 0`` before the TLS handshake (bytes sent in the
  clear before the handshake must be rejected, as PostgreSQL does since
  CVE-2021-23214).
- Strings are UTF-8 (the only client_encoding the server offers).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CANCEL_REQUEST_CODE",
    "GSSENC_REQUEST_CODE",
    "MAX_STARTUP_PACKET",
    "PROTOCOL_3_0",
    "SSL_REQUEST_CODE",
    "Bind",
    "CancelRequest",
    "Close",
    "CopyData",
    "CopyDone",
    "CopyFail",
    "Describe",
    "Execute",
    "Field",
    "Flush",
    "FrontendMessage",
    "GSSENCRequest",
    "MessageReader",
    "Parse",
    "PasswordMessage",
    "ProtocolViolation",
    "Query",
    "SSLRequest",
    "StartupMessage",
    "Sync",
    "Terminate",
    "TransactionStatus",
    "Unsupported",
    "authentication_cleartext",
    "authentication_md5",
    "authentication_ok",
    "authentication_sasl",
    "authentication_sasl_continue",
    "authentication_sasl_final",
    "backend_key_data",
    "bind_complete",
    "close_complete",
    "command_complete",
    "copy_data",
    "copy_done",
    "copy_in_response",
    "copy_out_response",
    "data_row",
    "empty_query_response",
    "error_response",
    "negotiate_protocol_version",
    "no_data",
    "notice_response",
    "parameter_description",
    "parameter_status",
    "parse_complete",
    "portal_suspended",
    "ready_for_query",
    "row_description",
]

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3_0 = 196608  # 3 << 16
MAX_STARTUP_PACKET = 10000
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


class ProtocolViolation(Exception):
    """The client broke the wire protocol; the connection should send the error and close."""

    sqlstate = "08P01"

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail: str | None = None
        self.hint: str | None = None
        self.position: int | None = None


class TransactionStatus(enum.StrEnum):
    """The status byte of ReadyForQuery."""

    IDLE = "I"
    IN_TRANSACTION = "T"
    FAILED = "E"


# --------------------------------------------------------------------------
# Frontend messages


@dataclass(frozen=True, slots=True)
class SSLRequest:
    pass


@dataclass(frozen=True, slots=True)
class GSSENCRequest:
    pass


@dataclass(frozen=True, slots=True)
class StartupMessage:
    protocol: int
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelRequest:
    pid: int
    secret: int


@dataclass(frozen=True, slots=True)
class Query:
    sql: str


@dataclass(frozen=True, slots=True)
class Parse:
    name: str
    query: str
    param_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...]
    params: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Describe:
    kind: str  # 'S' (statement) or 'P' (portal)
    name: str


@dataclass(frozen=True, slots=True)
class Execute:
    portal: str
    max_rows: int


@dataclass(frozen=True, slots=True)
class Close:
    kind: str  # 'S' or 'P'
    name: str


@dataclass(frozen=True, slots=True)
class Sync:
    pass


@dataclass(frozen=True, slots=True)
class Flush:
    pass


@dataclass(frozen=True, slots=True)
class Terminate:
    pass


@dataclass(frozen=True, slots=True)
class CopyData:
    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    pass


@dataclass(frozen=True, slots=True)
class CopyFail:
    message: str


@dataclass(frozen=True, slots=True)
class PasswordMessage:
    """'p': a password, or a SASLInitialResponse / SASLResponse (raw body)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A valid message the server does not implement (FunctionCall 'F')."""

    tag: bytes


FrontendMessage = (
    SSLRequest
    | GSSENCRequest
    | StartupMessage
    | CancelRequest
    | Query
    | Parse
    | Bind
    | Describe
    | Execute
    | Close
    | Sync
    | Flush
    | Terminate
    | CopyData
    | CopyDone
    | CopyFail
    | PasswordMessage
    | Unsupported
)

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">ci")


class _Body:
    """A cursor over one message body; every read checks bounds."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def fail(self, why: str) -> ProtocolViolation:
        return ProtocolViolation(f"invalid {self.what} message: {why}")

    def cstr(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise self.fail("missing string terminator")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation(
                f"invalid byte sequence for encoding UTF8 in {self.what} message",
                sqlstate="22021",
            ) from None

    def byte(self) -> str:
        if self.pos >= len(self.data):
            raise self.fail("message too short")
        c = chr(self.data[self.pos])
        self.pos += 1
        return c

    def int16(self) -> int:
        if self.pos + 2 > len(self.data):
            raise self.fail("message too short")
        (v,) = _I16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(v)

    def count(self) -> int:
        n = self.int16()
        if n < 0:
            raise self.fail(f"negative count {n}")
        return n

    def int32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise self.fail("message too short")
        (v,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(v)

    def uint32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise self.fail("message too short")
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(v)

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("value length out of bounds")
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def rest(self) -> bytes:
        v = self.data[self.pos :]
        self.pos = len(self.data)
        return v

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")


def _decode_query(b: _Body) -> FrontendMessage:
    return Query(b.cstr())


def _decode_parse(b: _Body) -> FrontendMessage:
    name = b.cstr()
    query = b.cstr()
    n = b.count()
    return Parse(name, query, tuple(b.uint32() for _ in range(n)))


def _decode_bind(b: _Body) -> FrontendMessage:
    portal = b.cstr()
    statement = b.cstr()
    param_formats = tuple(b.int16() for _ in range(b.count()))
    nparams = b.count()
    params: list[bytes | None] = []
    for _ in range(nparams):
        n = b.int32()
        if n == -1:
            params.append(None)
        elif n < 0:
            raise b.fail(f"invalid parameter length {n}")
        else:
            params.append(b.raw(n))
    result_formats = tuple(b.int16() for _ in range(b.count()))
    if len(param_formats) > 1 and len(param_formats) != nparams:
        raise ProtocolViolation(
            f"bind message has {len(param_formats)} parameter formats but {nparams} parameters"
        )
    return Bind(portal, statement, param_formats, tuple(params), result_formats)


def _kind(b: _Body) -> str:
    kind = b.byte()
    if kind not in ("S", "P"):
        raise b.fail(f"invalid object type {kind!r}")
    return kind


def _decode_describe(b: _Body) -> FrontendMessage:
    kind = _kind(b)
    return Describe(kind, b.cstr())


def _decode_close(b: _Body) -> FrontendMessage:
    kind = _kind(b)
    return Close(kind, b.cstr())


def _decode_execute(b: _Body) -> FrontendMessage:
    portal = b.cstr()
    return Execute(portal, b.int32())


def _decode_copy_fail(b: _Body) -> FrontendMessage:
    return CopyFail(b.cstr())


_DECODERS: dict[int, tuple[str, Callable[[_Body], FrontendMessage]]] = {
    ord("Q"): ("Query", _decode_query),
    ord("P"): ("Parse", _decode_parse),
    ord("B"): ("Bind", _decode_bind),
    ord("D"): ("Describe", _decode_describe),
    ord("E"): ("Execute", _decode_execute),
    ord("C"): ("Close", _decode_close),
    ord("f"): ("CopyFail", _decode_copy_fail),
}
_EMPTY_BODY: dict[int, FrontendMessage] = {
    ord("S"): Sync(),
    ord("H"): Flush(),
    ord("X"): Terminate(),
    ord("c"): CopyDone(),
}


class MessageReader:
    """Incremental decoder of frontend messages (sans-IO).

    Starts in the startup phase (untagged packets: SSLRequest, GSSENCRequest,
    CancelRequest, StartupMessage) and switches to tagged messages after a
    StartupMessage. ``feed`` returns every complete message in order.
    """

    __slots__ = ("_buf", "_error", "_paused", "_startup", "max_message_size")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._startup = True
        self._paused = False
        self._error: ProtocolViolation | None = None

    @property
    def in_startup(self) -> bool:
        """True until a StartupMessage has been decoded."""
        return self._startup

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[FrontendMessage]:
        """Add received bytes; return the messages now complete.

        Raises ``ProtocolViolation`` once the input is broken; messages decoded
        before the broken one are returned first, and every later call raises.

        After an SSLRequest/GSSENCRequest, decoding pauses until the next call
        (see the module docstring); ``feed(b"")`` resumes it.
        """
        if self._error is not None:
            raise self._error
        if data:
            self._buf += data
        self._paused = False
        out: list[FrontendMessage] = []
        buf = self._buf
        pos = 0
        try:
            while not self._paused:
                if self._startup:
                    pos, msg = self._startup_message(buf, pos)
                else:
                    pos, msg = self._tagged_message(buf, pos)
                if msg is None:
                    break
                out.append(msg)
        except ProtocolViolation as exc:
            # Messages before the violation are still delivered, in order; the
            # violation is raised by this call if there are none, else by the next.
            self._error = exc
            if not out:
                raise
        finally:
            if pos:
                del buf[:pos]
        return out

    def raise_pending(self) -> None:
        """Raise the violation found behind the messages ``feed`` last returned, if any."""
        if self._error is not None:
            raise self._error

    def _startup_message(self, buf: bytearray, pos: int) -> tuple[int, FrontendMessage | None]:
        if len(buf) - pos < 4:
            return pos, None
        (length,) = _I32.unpack_from(buf, pos)
        if length < 8 or length > MAX_STARTUP_PACKET:
            raise ProtocolViolation(f"invalid length of startup packet: {length}")
        if len(buf) - pos < length:
            return pos, None
        (code,) = _I32.unpack_from(buf, pos + 4)
        body = _Body(bytes(buf[pos + 8 : pos + length]), "startup packet")
        end = pos + length
        if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
            body.end()
            self._paused = True
            return end, SSLRequest() if code == SSL_REQUEST_CODE else GSSENCRequest()
        if code == CANCEL_REQUEST_CODE:
            pid = body.int32()
            secret_bytes = body.rest()
            if not 4 <= len(secret_bytes) <= 256:
                raise body.fail("invalid cancel key length")
            return end, CancelRequest(pid, int.from_bytes(secret_bytes, "big"))
        major = code >> 16
        if major != 3:
            raise ProtocolViolation(
                f"unsupported frontend protocol {major}.{code & 0xFFFF}:"
                " server supports 3.0 to 3.0",
                sqlstate="0A000",
            )
        params: dict[str, str] = {}
        while True:
            key = body.cstr()
            if not key:
                break
            params[key] = body.cstr()
        body.end()
        self._startup = False
        return end, StartupMessage(code, params)

    def _tagged_message(self, buf: bytearray, pos: int) -> tuple[int, FrontendMessage | None]:
        if len(buf) - pos < 5:
            return pos, None
        tag, length = _HEAD.unpack_from(buf, pos)
        if length < 4:
            raise ProtocolViolation(f"invalid message length {length}")
        if length > self.max_message_size:
            raise ProtocolViolation(
                f"message of {length} bytes exceeds the limit of {self.max_message_size}"
            )
        end = pos + 1 + length
        if len(buf) < end:
            return pos, None
        t = tag[0]
        if t == ord("d"):
            return end, CopyData(bytes(buf[pos + 5 : end]))
        if t == ord("p"):
            return end, PasswordMessage(bytes(buf[pos + 5 : end]))
        if t == ord("F"):
            return end, Unsupported(tag)
        empty = _EMPTY_BODY.get(t)
        if empty is not None:
            if length != 4:
                raise ProtocolViolation(f"invalid message length {length} for type {t}")
            return end, empty
        entry = _DECODERS.get(t)
        if entry is None:
            raise ProtocolViolation(f"invalid frontend message type {t}")
        what, decoder = entry
        body = _Body(bytes(buf[pos + 5 : end]), what)
        msg = decoder(body)
        body.end()
        return end, msg


# --------------------------------------------------------------------------
# Backend messages


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a RowDescription."""

    name: str
    type_oid: int
    type_size: int
    type_modifier: int = -1
    format: int = 0
    table_oid: int = 0
    column_attr: int = 0


def _cstr(s: str) -> bytes:
    # A NUL would end the string early and desynchronise the client.
    return s.replace("\x00", "").encode("utf-8") + b"\x00"


def _msg(tag: bytes, body: bytes = b"") -> bytes:
    return tag + _I32.pack(len(body) + 4) + body


def authentication_ok() -> bytes:
    return _msg(b"R", _I32.pack(0))


def authentication_cleartext() -> bytes:
    return _msg(b"R", _I32.pack(3))


def authentication_md5(salt: bytes) -> bytes:
    if len(salt) != 4:
        raise ValueError("the MD5 salt is 4 bytes")
    return _msg(b"R", _I32.pack(5) + salt)


def authentication_sasl(mechanisms: Sequence[str]) -> bytes:
    return _msg(b"R", _I32.pack(10) + b"".join(_cstr(m) for m in mechanisms) + b"\x00")


def authentication_sasl_continue(data: bytes) -> bytes:
    return _msg(b"R", _I32.pack(11) + data)


def authentication_sasl_final(data: bytes) -> bytes:
    return _msg(b"R", _I32.pack(12) + data)


def parameter_status(name: str, value: str) -> bytes:
    return _msg(b"S", _cstr(name) + _cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return _msg(b"K", _I32.pack(pid) + _U32.pack(secret & 0xFFFFFFFF))


def negotiate_protocol_version(newest_minor: int, unrecognized: Sequence[str] = ()) -> bytes:
    body = _I32.pack(newest_minor) + _I32.pack(len(unrecognized))
    return _msg(b"v", body + b"".join(_cstr(o) for o in unrecognized))


def ready_for_query(status: str) -> bytes:
    if status not in ("I", "T", "E"):
        raise ValueError(f"invalid transaction status {status!r}")
    return _msg(b"Z", status.encode("ascii"))


_FIELD = struct.Struct(">ihihih")


def row_description(fields: Sequence[Field]) -> bytes:
    parts = [_I16.pack(len(fields))]
    for f in fields:
        parts.append(_cstr(f.name))
        parts.append(
            _FIELD.pack(
                f.table_oid,
                f.column_attr,
                f.type_oid if f.type_oid < 2**31 else f.type_oid - 2**32,
                f.type_size,
                f.type_modifier,
                f.format,
            )
        )
    return _msg(b"T", b"".join(parts))


def command_complete(tag: str) -> bytes:
    return _msg(b"C", _cstr(tag))


def empty_query_response() -> bytes:
    return b"I\x00\x00\x00\x04"


def parse_complete() -> bytes:
    return b"1\x00\x00\x00\x04"


def bind_complete() -> bytes:
    return b"2\x00\x00\x00\x04"


def close_complete() -> bytes:
    return b"3\x00\x00\x00\x04"


def no_data() -> bytes:
    return b"n\x00\x00\x00\x04"


def portal_suspended() -> bytes:
    return b"s\x00\x00\x00\x04"


def parameter_description(oids: Sequence[int]) -> bytes:
    return _msg(b"t", _I16.pack(len(oids)) + b"".join(_U32.pack(o) for o in oids))


def _fields_body(fields: Mapping[str, str]) -> bytes:
    parts = []
    for code, value in fields.items():
        if len(code) != 1:
            raise ValueError(f"error field codes are one character, got {code!r}")
        parts.append(code.encode("ascii") + _cstr(value))
    parts.append(b"\x00")
    return b"".join(parts)


def error_response(fields: Mapping[str, str]) -> bytes:
    """ErrorResponse; ``fields`` maps codes ('S','V','C','M','D','H','P',...) to values."""
    return _msg(b"E", _fields_body(fields))


def notice_response(fields: Mapping[str, str]) -> bytes:
    return _msg(b"N", _fields_body(fields))


def _copy_response(tag: bytes, format: int, ncols: int, col_formats: Sequence[int] | None) -> bytes:
    formats = [format] * ncols if col_formats is None else list(col_formats)
    if len(formats) != ncols:
        raise ValueError("one format per column")
    return _msg(tag, struct.pack(f">bh{ncols}h", format, ncols, *formats))


def copy_in_response(format: int, ncols: int, col_formats: Sequence[int] | None = None) -> bytes:
    return _copy_response(b"G", format, ncols, col_formats)


def copy_out_response(format: int, ncols: int, col_formats: Sequence[int] | None = None) -> bytes:
    return _copy_response(b"H", format, ncols, col_formats)


def copy_data(data: bytes) -> bytes:
    return _msg(b"d", data)


def copy_done() -> bytes:
    return b"c\x00\x00\x00\x04"


_NULL_VALUE = _I32.pack(-1)


def data_row(values: Sequence[bytes | None]) -> bytes:
    """One DataRow; ``None`` is SQL NULL. For small results; see ``codec`` for bulk rows."""
    parts = [_I16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(_NULL_VALUE)
        else:
            parts.append(_I32.pack(len(v)))
            parts.append(v)
    return _msg(b"D", b"".join(parts))
