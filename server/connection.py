"""One client connection: the socket loop around the sans-IO protocol.

Runs in its own thread with its own ``Session`` (and DuckDB cursor), so a
slow query never blocks other clients. Handles start-up (SSLRequest answered
with TLS when a certificate is configured, else 'N'; GSSENC refused; client
authentication through ``server.security.auth``, with the size limits of
start-up and password messages; the listener enforces the authentication
timeout and the cap on connections not yet logged in), the simple and extended query protocols
(with error recovery up to Sync), cancel requests, and streams results
batch by batch. Every error becomes an ErrorResponse with a SQLSTATE; only a
broken protocol closes the connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from server import errors
from server.errors import ServerError, SyntaxError_
from server.postgres import catalog as pgcatalog
from server.postgres import copy, names
from server.protocol import codec
from server.protocol import messages as m
from server.protocol.types import (
    Oid,
    TypedParam,
    decode_param,
    duckdb_param_type,
    is_untyped,
    pg_type_for_duckdb,
)
from server.results import Command, CopyIn, CopyOut, Deallocate, Result, Rows, Stream
from server.security import auth, tls
from server.session import Session
from server.sql.copy_spec import CopyFormat
from server.sql.text import Statement, split

if TYPE_CHECKING:
    from server.engine import Engine
    from server.settings import Settings


class Listener(Protocol):
    """What a connection needs of the server that accepted it (the listener implements
    it; the connection never imports the listener)."""

    engine: Engine | None
    settings: Settings
    auth_secret: bytes

    @property
    def stopping(self) -> bool: ...

    def admit(self, pid: int, secret: int, conn: Connection, *,
              superuser: bool) -> str | None: ...

    def forget(self, pid: int) -> None: ...

    def cancel(self, pid: int, secret: int) -> None: ...

log = logging.getLogger("quackml.connection")

SERVER_VERSION = pgcatalog.PG_VERSION
_FLUSH_AT = 256 * 1024


@dataclass
class Prepared:
    statement: Statement | None   # None: empty query
    param_oids: tuple[int, ...]   # as the client gave them (0 or unknown: untyped)
    encoder: tuple[tuple[int, ...], codec.BatchEncoder] | None = None
    row_description: bytes = b""   # the encoder's RowDescription message
    # the DuckDB type of every parameter, from Session.describe (see Connection.param_types)
    param_types: tuple[str, ...] | None = None
    # parameters a Bind must supply: the highest $n, or more if Parse gave more types
    param_count: int = 0


@dataclass
class CopyInProgress:
    """COPY FROM STDIN under way: CopyData is appended to a temporary file."""
    request: CopyIn
    path: str
    writer: copy.CopyInWriter
    remaining: list[Statement] | None   # simple query: the statements after the COPY


@dataclass
class Portal:
    prepared: Prepared
    params: tuple[object, ...]
    result_formats: tuple[int, ...]
    result: Result | None = None
    encoder: codec.BatchEncoder | None = None
    pending: list[pa.RecordBatch] = field(default_factory=list)
    sent: int = 0
    done: bool = False


class Connection:
    def __init__(self, sock: socket.socket, server: Listener, pid: int, secret: int):
        self.sock = sock
        self.server = server
        self.pid = pid
        self.secret = secret
        self.out = bytearray()
        self.session: Session | None = None
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_until_sync = False
        self.copy_in: CopyInProgress | None = None
        self.tls = False
        self.exchange: auth.Exchange | None = None
        self.startup_params: dict[str, str] = {}
        self._message_limit: int | None = None   # the reader's own, while authenticating
        # read by the listener's watchdog (statement timeout, client hang-up)
        self.busy_since: float | None = None
        self.timed_out = False

    # -- I/O -------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    def send_error(self, exc: BaseException) -> None:
        if self.server.stopping and self.session is not None:
            self.send_fatal("57P01", "terminating connection due to administrator command")
            raise _Terminated
        fields = errors.translate(exc)
        if self.timed_out and fields.sqlstate == "57014":
            fields = dataclasses.replace(
                fields, message="canceling statement due to statement timeout")
        self.send(m.error_response(fields.as_protocol_fields()))

    def send_fatal(self, sqlstate: str, message: str) -> None:
        """A FATAL ErrorResponse, flushed: the connection closes after it."""
        self.send(m.error_response({"S": "FATAL", "V": "FATAL", "C": sqlstate, "M": message}))
        with contextlib.suppress(OSError):
            self.flush()

    def send_notice(self, text: str, severity: str = "WARNING") -> None:
        self.send(m.notice_response({"S": severity, "V": severity, "C": "01000", "M": text}))

    # -- main loop -------------------------------------------------------
    def run(self) -> None:
        reader = m.MessageReader()
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    if self.server.stopping and self.session is not None:
                        self.send_fatal("57P01",
                                        "terminating connection due to administrator command")
                    return
                try:
                    messages = reader.feed(data)
                except m.ProtocolViolation as exc:
                    self.violation(exc)
                    return
                for msg in messages:
                    self.timed_out = False
                    self.busy_since = time.monotonic()
                    try:
                        if not self.dispatch(msg, reader):
                            self.flush()
                            return
                    finally:
                        self.busy_since = None
                try:
                    # a violation behind the messages just handled: now, not after
                    # the client's next bytes (it may wait for our answer first)
                    reader.raise_pending()
                except m.ProtocolViolation as exc:
                    self.violation(exc)
                    return
        except (ConnectionError, OSError) as exc:
            log.debug("connection %s closed: %s", self.pid, exc)
        finally:
            self.end_copy_in()
            if self.session is not None:
                self.session.close()
            self.server.forget(self.pid)
            with contextlib.suppress(OSError):
                self.sock.close()

    def dispatch(self, msg: object, reader: m.MessageReader) -> bool:
        """Handle one message; False closes the connection."""
        match msg:
            case m.SSLRequest():
                return self.start_tls(reader)
            case m.GSSENCRequest():
                self.sock.sendall(b"N")
                return True
            case m.CancelRequest(pid=pid, secret=secret):
                self.server.cancel(pid, secret)
                return False
            case m.StartupMessage(params=params):
                return self.startup(params, reader)
            case m.Terminate():
                return False
            case m.PasswordMessage(data=data) if self.exchange is not None:
                return self.password(data, reader)
        if self.session is None:
            self.send_error(ServerError("expected a startup message", sqlstate="08P01"))
            return False
        if self.skip_until_sync and not isinstance(msg, m.Sync):
            return True
        if self.copy_in is not None:
            return self.copy_message(msg)
        try:
            match msg:
                case m.Query(sql=sql):
                    self.simple_query(sql)
                case m.Parse():
                    self.parse(msg)
                case m.Bind():
                    self.bind(msg)
                case m.Describe():
                    self.describe(msg)
                case m.Execute():
                    self.execute(msg)
                case m.Close(kind=kind, name=name):
                    closed = (self.prepared if kind == "S" else self.portals).pop(name, None)
                    if isinstance(closed, Portal) and closed.result is not None:
                        self.session.release()
                    self.send(m.close_complete())
                case m.Sync():
                    self.skip_until_sync = False
                    if self.portals.pop("", None) is not None:
                        self.session.release()
                    self.send(m.ready_for_query(self.session.status))
                    self.flush()
                case m.Flush():
                    self.flush()
                case m.CopyData() | m.CopyDone() | m.CopyFail():
                    pass  # stray COPY messages outside COPY mode are ignored, as PostgreSQL does
                case _:
                    raise ServerError(f"unsupported protocol message {type(msg).__name__}",
                                      sqlstate="08P01")
        except (ConnectionError, OSError):
            raise
        except BaseException as exc:  # noqa: BLE001 - every error becomes an ErrorResponse
            self.session.release()
            self.session.failed()
            self.send_error(exc)
            if not isinstance(msg, m.Query):
                self.skip_until_sync = True
                self.flush()   # the client may wait for it before sending Sync
        return True

    # -- start-up: TLS and authentication ------------------------------------------
    def start_tls(self, reader: m.MessageReader) -> bool:
        """Answer SSLRequest: 'S' and a TLS handshake when a certificate is
        configured, else 'N'. Bytes sent after the SSLRequest and before the
        handshake would bypass TLS (CVE-2021-23214): they are a protocol error."""
        context = tls.server_context(self.server.settings)
        if context is None or self.tls:
            self.sock.sendall(b"N")
            return True
        if reader.buffered:
            self.send_error(ServerError("unencrypted data after SSL request",
                                        sqlstate="08P01"))
            return False
        self.sock.sendall(b"S")
        # self.sock is the TLS socket before the handshake, so that the listener's
        # authentication_timeout (a shutdown of self.sock) also ends a stalled handshake
        self.sock = context.wrap_socket(self.sock, server_side=True,
                                        do_handshake_on_connect=False)
        self.sock.do_handshake()
        self.tls = True
        return True

    def peer_address(self) -> str:
        try:
            peer = self.sock.getpeername()
        except OSError:
            return ""
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    def startup(self, params: dict[str, str], reader: m.MessageReader) -> bool:
        """Check the client may connect, then authenticate it (or admit it at once).
        Until the password checks out, no message may be larger than a password
        message may be (``auth.MAX_AUTH_MESSAGE``; 08P01 past it)."""
        settings = self.server.settings
        user = params.get("user", "quackml")
        self.startup_params = params
        loopback = auth.is_loopback(self.peer_address())
        assert self.server.engine is not None
        try:
            if not loopback and not self.tls and settings.tls_required_remote:
                raise auth.Rejected(f"connections from {self.peer_address()} must use TLS "
                                    "(sslmode=require)")
            method = settings.auth
            if method == "trust":
                if not loopback:
                    raise auth.Rejected("trust authentication admits loopback clients only; "
                                        "set --auth scram-sha-256")
                return self.admit(params)
            if method not in auth.METHODS:
                raise auth.Rejected(f"unknown authentication method {method!r}")
            self.exchange = auth.Exchange.start(user, self.server.engine.users.get(user),
                                                method, self.server.auth_secret)
        except ServerError as exc:
            self.refuse(exc)
            return False
        self._message_limit = reader.max_message_size
        reader.max_message_size = auth.MAX_AUTH_MESSAGE + 4   # + the length word
        if self.exchange.step is auth.Step.CLEARTEXT:
            self.send(m.authentication_cleartext())
        else:
            self.send(m.authentication_sasl(["SCRAM-SHA-256"]))
        self.flush()
        return True

    def violation(self, exc: m.ProtocolViolation) -> None:
        """Broken input: the error, then the connection closes (the caller returns)."""
        if self.session is None:
            self.refuse(exc)   # before login: FATAL, as PostgreSQL sends it
        else:
            self.send_error(exc)
            self.flush()

    def refuse(self, exc: ServerError | m.ProtocolViolation) -> None:
        """A start-up or authentication failure: FATAL, as PostgreSQL sends it."""
        fields = errors.translate(exc)
        self.send_fatal(fields.sqlstate, fields.message)

    def password(self, data: bytes, reader: m.MessageReader) -> bool:
        """A PasswordMessage (or SASL response) during authentication."""
        exchange = self.exchange
        assert exchange is not None
        try:
            reply = exchange.feed(data)
        except ServerError as exc:
            self.refuse(exc)
            return False
        if not exchange.done:
            assert reply is not None
            self.send(m.authentication_sasl_continue(reply))
            self.flush()
            return True
        if reply is not None:
            self.send(m.authentication_sasl_final(reply))
        self.exchange = None
        if self._message_limit is not None:
            reader.max_message_size = self._message_limit
        return self.admit(self.startup_params)

    def admit(self, params: dict[str, str]) -> bool:
        user = params.get("user", "quackml")
        database = params.get("database", user)
        assert self.server.engine is not None
        # under trust every (loopback) client is a superuser, as Access decides
        privileged = self.server.settings.auth == "trust"
        if not privileged:
            record = self.server.engine.users.get(user)
            privileged = record is not None and record.superuser
        if database.lower() in names.RESERVED_DATABASES:
            # DuckDB's own catalogs: the client's database name is the user's database's
            self.send_fatal("3D000", f'database "{database}" does not exist')
            return False
        refusal = self.server.admit(self.pid, self.secret, self, superuser=privileged)
        if refusal is not None:   # max_connections, superuser_reserved_connections
            self.send_fatal("53300", refusal)
            return False
        self.session = Session(self.server.engine, user, database, params, pid=self.pid,
                               client_addr=self.peer_address() or None)
        default_timeout = self.server.settings.statement_timeout_ms
        if default_timeout > 0 and self.session.params.get("statement_timeout") == "0":
            self.session.params["statement_timeout"] = str(default_timeout)
        self.send(m.authentication_ok())
        p = self.session.params
        superuser = "on" if self.session.privileges.superuser else "off"
        for k, v in (("server_version", SERVER_VERSION), ("server_encoding", "UTF8"),
                     ("client_encoding", "UTF8"), ("DateStyle", p["datestyle"]),
                     ("TimeZone", p["timezone"]), ("integer_datetimes", "on"),
                     ("standard_conforming_strings", "on"), ("IntervalStyle", "postgres"),
                     ("is_superuser", superuser), ("session_authorization", user),
                     ("application_name", p["application_name"])):
            self.send(m.parameter_status(k, v))
        self.send(m.backend_key_data(self.pid, self.secret))
        self.send(m.ready_for_query("I"))
        self.flush()
        return True

    # -- simple query --------------------------------------------------------
    def _cancel_flag(self) -> threading.Event:
        """The session's cancel flag, cleared as a Query or Parse starts: as in
        PostgreSQL, a CancelRequest that arrived while no statement was under way
        (nor while the message itself was read) cancels nothing. A long split
        checks it between chunks, and a simple query between statements."""
        assert self.session is not None
        self.session.cancel_requested.clear()
        return self.session.cancel_requested

    def simple_query(self, sql: str) -> None:
        assert self.session is not None
        try:
            statements = split(sql, self._cancel_flag())
        except ServerError as exc:   # cancelled (57014), too long (54000): nothing ran
            self.session.failed()
            self.send_error(exc)
            self.send(m.ready_for_query(self.session.status))
            self.flush()
            return
        if not statements:
            self.send(m.empty_query_response())
        self.run_statements(statements)

    def run_statements(self, statements: list[Statement]) -> None:
        """Run a simple query's statements; a COPY FROM STDIN pauses the run
        until CopyDone (the rest runs then)."""
        assert self.session is not None
        for i, stmt in enumerate(statements):
            try:
                if self.session.cancel_requested.is_set():   # between statements
                    raise errors.QueryCanceled("canceling statement due to user request")
                result = self.session.run(stmt)
                if isinstance(result, CopyIn):
                    self.start_copy_in(result, statements[i + 1:])
                    return
                self.send_result(result, (), describe=True, max_rows=0)
            except (ConnectionError, OSError):
                raise
            except BaseException as exc:  # noqa: BLE001
                self.session.release()
                self.session.failed()
                self.send_error(exc)
                break
        self.send(m.ready_for_query(self.session.status))
        self.flush()

    # -- COPY ------------------------------------------------------------------
    def start_copy_in(self, request: CopyIn, remaining: list[Statement] | None) -> None:
        # in DuckDB's temporary directory, the one folder DuckDB reads for the server
        assert self.server.engine is not None
        fd, path = tempfile.mkstemp(prefix="quackml-copy-", suffix=".txt",
                                    dir=self.server.engine.staging_dir)
        self.copy_in = CopyInProgress(request, path,
                                      copy.CopyInWriter(request.spec, os.fdopen(fd, "wb")),
                                      remaining)
        fmt = 1 if request.spec.format is CopyFormat.BINARY else 0
        self.send(m.copy_in_response(fmt, request.columns, [fmt] * request.columns))
        self.flush()

    def end_copy_in(self) -> None:
        state, self.copy_in = self.copy_in, None
        if state is not None:
            state.writer.close()
            with contextlib.suppress(OSError):
                os.unlink(state.path)

    def copy_message(self, msg: object) -> bool:
        """A message while COPY FROM STDIN is under way."""
        state = self.copy_in
        assert state is not None and self.session is not None
        match msg:
            case m.CopyData(data=data):
                state.writer.write(data)
                return True
            case m.Flush() | m.Sync():
                return True   # ignored during COPY, as PostgreSQL does
            case m.CopyDone():
                state.writer.finish()
                try:
                    result: Result | BaseException = self.session.copy_from(
                        state.request, state.path, state.writer.escapes)
                except (ConnectionError, OSError):
                    raise
                except BaseException as exc:  # noqa: BLE001 - becomes an ErrorResponse
                    result = exc
            case m.CopyFail(message=message):
                result = errors.QueryCanceled(f"COPY from stdin failed: {message}")
                self.session.failed()
            case _:
                result = ServerError(f"unexpected message {type(msg).__name__} during COPY",
                                     sqlstate="08P01")
                self.session.failed()
        self.end_copy_in()
        if isinstance(result, BaseException):
            self.send_error(result)
            if state.remaining is None:
                self.skip_until_sync = True
            else:
                self.send(m.ready_for_query(self.session.status))
                self.flush()
            return True
        self.send_result(result, (), describe=False, max_rows=0)
        if state.remaining is not None:
            self.run_statements(state.remaining)
        return True

    def send_copy_out(self, result: CopyOut) -> None:
        """Stream the rows of COPY TO STDOUT, one CopyData per row (as PostgreSQL sends)."""
        spec, reader = result.spec, result.reader
        binary = spec.format is CopyFormat.BINARY
        self.send(m.copy_out_response(int(binary), result.columns,
                                      [int(binary)] * result.columns))
        rows = 0
        if binary:
            encoder = codec.batch_encoder(reader.schema, [1])
            for batch in reader:
                if batch.num_rows:
                    self.send(copy.binary_copy_data(encoder.encode(batch), first=rows == 0))
                    rows += batch.num_rows
            self.send(m.copy_data(copy.BINARY_TRAILER if rows else
                                  copy.BINARY_HEADER + copy.BINARY_TRAILER))
        else:
            lines = copy.RowEncoder(spec, reader.schema)
            header = lines.header()
            if header is not None:
                self.send(m.copy_data(header))
            for batch in reader:
                if batch.num_rows:
                    self.send(codec.tagged_messages(b"d", lines.lines(batch)))
                    rows += batch.num_rows
        self.send(m.copy_done())
        self.session_release()
        self.send(m.command_complete(f"COPY {rows}"))

    # -- extended query -------------------------------------------------------
    def parse(self, msg: m.Parse) -> None:
        if msg.name and msg.name in self.prepared:
            raise ServerError(f'prepared statement "{msg.name}" already exists',
                              sqlstate="42P05")
        statements = split(msg.query, self._cancel_flag())
        if len(statements) > 1:
            raise SyntaxError_("cannot insert multiple commands into a prepared statement")
        stmt = statements[0] if statements else None
        self.prepared[msg.name] = Prepared(
            stmt, tuple(msg.param_oids),
            param_count=max(len(msg.param_oids), _count_params(stmt)))
        self.send(m.parse_complete())

    def bind(self, msg: m.Bind) -> None:
        prepared = self.prepared.get(msg.statement)
        if prepared is None:
            raise ServerError(f'prepared statement "{msg.statement}" does not exist',
                              sqlstate="26000")
        formats = msg.param_formats
        oids = prepared.param_oids
        # PostgreSQL's check (08P01): libpq and node-postgres send what the caller gave
        if len(msg.params) != prepared.param_count:
            raise ServerError(f"bind message supplies {len(msg.params)} parameters, but "
                              f'prepared statement "{msg.statement}" requires '
                              f"{prepared.param_count}", sqlstate="08P01")
        types = self.param_types(prepared) if any(
            is_untyped(oids[i] if i < len(oids) else 0) for i in range(len(msg.params))) else ()
        values: list[object] = []
        for i, raw in enumerate(msg.params):
            oid = oids[i] if i < len(oids) else 0
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            if is_untyped(oid) and i < len(types):
                # typed from its context, as PostgreSQL types it at Parse
                values.append(TypedParam(decode_param(raw, pg_type_for_duckdb(types[i]), fmt),
                                         types[i]))
            else:
                values.append(decode_param(raw, oid, fmt))
        if msg.portal and msg.portal in self.portals:
            raise ServerError(f'portal "{msg.portal}" already exists', sqlstate="42P03")
        self.portals[msg.portal] = Portal(prepared, tuple(values), tuple(msg.result_formats))
        self.send(m.bind_complete())

    def describe(self, msg: m.Describe) -> None:
        assert self.session is not None
        if msg.kind == "S":
            prepared = self.prepared.get(msg.name)
            if prepared is None:
                raise ServerError(f'prepared statement "{msg.name}" does not exist',
                                  sqlstate="26000")
            self.describe_statement(prepared)
            return
        portal = self.portals.get(msg.name)
        if portal is None:
            cursor = self.session.cursors.get(msg.name)
            if cursor is None:
                raise ServerError(f'portal "{msg.name}" does not exist', sqlstate="34000")
            # a cursor made by DECLARE is a portal too (psycopg describes it)
            self.send(m.row_description(codec.batch_encoder(cursor.schema, ()).fields))
            return
        self.start_portal(portal)
        if isinstance(portal.result, Stream):
            assert portal.encoder is not None
            cached = portal.prepared.encoder
            if cached is not None and cached[1] is portal.encoder:
                if not portal.prepared.row_description:
                    portal.prepared.row_description = m.row_description(portal.encoder.fields)
                self.send(portal.prepared.row_description)
            else:
                self.send(m.row_description(portal.encoder.fields))
        elif isinstance(portal.result, Rows):
            self.send(m.row_description(_rows_fields(portal.result)))
        else:
            self.send(m.no_data())

    def param_types(self, prepared: Prepared) -> tuple[str, ...]:
        """The DuckDB type of each parameter: the client's, or for those it left
        untyped (OID 0 or unknown: node-postgres, pg8000, psycopg's str and lists) the
        type their context gives (Session.describe); asked once per statement."""
        assert self.session is not None
        if prepared.param_types is None:
            if prepared.statement is None:
                prepared.param_types = ()
            else:
                given = tuple(duckdb_param_type(oid) for oid in prepared.param_oids)
                prepared.param_types = self.session.describe(prepared.statement,
                                                             given).param_types
        return prepared.param_types

    def describe_statement(self, prepared: Prepared) -> None:
        """ParameterDescription and RowDescription without running the statement;
        parameter types the client left unspecified are those their context gives."""
        assert self.session is not None
        stmt = prepared.statement
        n_params = prepared.param_count
        description = self.session.describe(
            stmt, tuple(duckdb_param_type(oid) for oid in prepared.param_oids)) \
            if stmt is not None else None
        inferred = description.param_types if description is not None else ()
        if description is not None:
            prepared.param_types = inferred
        oids = []
        for i in range(n_params):
            given = prepared.param_oids[i] if i < len(prepared.param_oids) else 0
            if is_untyped(given) and i < len(inferred) and inferred[i] != "VARCHAR":
                given = pg_type_for_duckdb(inferred[i])
            oids.append(int(Oid.TEXT) if is_untyped(given) else given)
        self.send(m.parameter_description(oids))
        if description is None or description.columns is None:
            self.send(m.no_data())
            return
        self.send(m.row_description([m.Field(name, pg_type_for_duckdb(t), -1)
                                     for name, t in description.columns]))

    def start_portal(self, portal: Portal) -> None:
        assert self.session is not None
        if portal.result is not None or portal.prepared.statement is None:
            return
        portal.result = self.session.run(portal.prepared.statement, portal.params)
        if isinstance(portal.result, Stream):
            portal.encoder = self.encoder_for(portal.prepared, portal.result.reader.schema,
                                              portal.result_formats)

    def encoder_for(self, prepared: Prepared, schema: pa.Schema,
                    formats: tuple[int, ...]) -> codec.BatchEncoder:
        """The statement's encoder, reused while its schema and formats stay the same
        (a prepared statement executed many times)."""
        cached = prepared.encoder
        if cached is not None and cached[0] == formats and cached[1].schema.equals(schema):
            return cached[1]
        encoder = codec.batch_encoder(schema, formats)
        prepared.encoder = (formats, encoder)
        prepared.row_description = b""
        return encoder

    def execute(self, msg: m.Execute) -> None:
        portal = self.portals.get(msg.portal)
        if portal is None:
            raise ServerError(f'portal "{msg.portal}" does not exist', sqlstate="34000")
        if portal.prepared.statement is None:
            self.send(m.empty_query_response())
            return
        described = portal.result is not None
        self.start_portal(portal)
        assert portal.result is not None
        if portal.done:
            self.send(m.command_complete(_select_tag(portal)))
            return
        self.send_result(portal.result, portal.result_formats, describe=False,
                         max_rows=msg.max_rows, portal=portal, described=described)

    def session_release(self) -> None:
        if self.session is not None:
            self.session.release()

    # -- results ----------------------------------------------------------------
    def send_result(self, result: Result, formats: Sequence[int], *, describe: bool,
                    max_rows: int, portal: Portal | None = None, described: bool = True) -> None:
        del described
        match result:
            case Command(tag=tag, notices=notices, status=status):
                for n in notices:
                    self.send_notice(n)
                for name, value in status:
                    self.send(m.parameter_status(name, value))
                self.send(m.command_complete(tag))
            case Rows():
                for n in result.notices:
                    self.send_notice(n)
                if describe:
                    self.send(m.row_description(_rows_fields(result)))
                for row in result.rows:
                    self.send(m.data_row([None if v is None else v.encode() for v in row]))
                self.send(m.command_complete(result.tag))
            case Deallocate(name=name):
                if name is None:
                    self.prepared = {k: v for k, v in self.prepared.items() if not k}
                elif self.prepared.pop(name, None) is None:
                    raise ServerError(f'prepared statement "{name}" does not exist',
                                      sqlstate="26000")
                self.send(m.command_complete("DEALLOCATE ALL" if name is None
                                             else "DEALLOCATE"))
            case CopyOut():
                self.send_copy_out(result)
            case CopyIn():
                self.start_copy_in(result, None)
            case Stream():
                if portal is None:
                    portal = Portal(Prepared(None, ()), (), tuple(formats), result,
                                    codec.batch_encoder(result.reader.schema, formats))
                assert portal.encoder is not None
                if describe:
                    self.send(m.row_description(portal.encoder.fields))
                self.stream(portal, max_rows)

    def stream(self, portal: Portal, max_rows: int) -> None:
        assert isinstance(portal.result, Stream) and portal.encoder is not None
        reader = portal.result.reader
        limit = max_rows if max_rows > 0 else None
        sent_now = 0
        while limit is None or sent_now < limit:
            if portal.pending:
                batch = portal.pending.pop()
            else:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    portal.done = True
                    break
            if limit is not None and sent_now + batch.num_rows > limit:
                take = limit - sent_now
                portal.pending.append(batch.slice(take))
                batch = batch.slice(0, take)
            if batch.num_rows:
                self.send(portal.encoder.encode(batch))
            sent_now += batch.num_rows
            portal.sent += batch.num_rows
        if portal.done:
            self.session_release()
            self.send(m.command_complete(_select_tag(portal)))
        elif not portal.pending:
            # the limit fell exactly on a batch boundary: look ahead once
            try:
                portal.pending.append(reader.read_next_batch())
                self.send(m.portal_suspended())
            except StopIteration:
                portal.done = True
                self.session_release()
                self.send(m.command_complete(_select_tag(portal)))
        else:
            self.send(m.portal_suspended())


class _Terminated(ConnectionError):
    """The server is shutting down: 57P01 was sent, the connection closes."""


def _select_tag(portal: Portal) -> str:
    prefix = portal.result.tag_prefix if isinstance(portal.result, Stream) else "SELECT"
    return f"{prefix} {portal.sent}"


def _rows_fields(rows: Rows) -> list[m.Field]:
    return [m.Field(c.name, c.oid, -1) for c in rows.columns]


def _count_params(stmt: Statement | None) -> int:
    """The highest $n placeholder in the statement (0 for PREPARE: its $n are those
    of the statement it prepares, as in PostgreSQL)."""
    if stmt is None or (stmt.tokens and stmt.tokens[0].text.upper() == "PREPARE"):
        return 0
    highest = 0
    tokens = stmt.tokens
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if tok.text == "$" and nxt.text.isdigit() and nxt.start == tok.end + 1:
            highest = max(highest, int(nxt.text))
        elif tok.text.startswith("$") and tok.text[1:].isdigit():
            highest = max(highest, int(tok.text[1:]))
    return highest
