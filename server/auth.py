"""Client authentication, sans-IO: which method a client gets and the
password exchanges (SCRAM-SHA-256 through ``scramp``, or a cleartext password
checked against the stored SCRAM verifier).

Methods (``--auth``):

- ``trust``: no password, loopback clients only (28000 for others);
- ``scram-sha-256``: SASL SCRAM-SHA-256 (no channel binding);
- ``md5``: passwords are stored only as SCRAM verifiers, from which an MD5
  exchange cannot be checked; like PostgreSQL with SCRAM-stored passwords,
  the client is asked for SCRAM-SHA-256 instead;
- ``password``: a cleartext password (use it only over TLS).

An unknown user, a role that cannot log in, a user without a password and a
wrong password all fail the same way (28P01, same message, after a full
exchange against a throwaway verifier), so nothing tells which users exist.
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
import struct
from dataclasses import dataclass, field

from scramp import ScramException, ScramMechanism

from catalog.users import User, Verifier
from server.errors import ServerError

METHODS = ("trust", "scram-sha-256", "md5", "password")


class AuthFailed(ServerError):
    sqlstate = "28P01"


class Rejected(ServerError):
    sqlstate = "28000"


class Step(enum.Enum):
    SASL_INITIAL = "sasl-initial"
    SASL_FINAL = "sasl-final"
    CLEARTEXT = "cleartext"


_DUMMY: Verifier | None = None


def _dummy() -> Verifier:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = Verifier.make(secrets.token_hex(16))
    return _DUMMY


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False   # a Unix socket path or something else: not a TCP loopback peer
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@dataclass
class Exchange:
    """One client's password exchange. ``feed`` takes a PasswordMessage body and
    returns the bytes to send next (a SASL continue/final body), or raises
    ``AuthFailed``; ``done`` turns true once the password checked out."""
    user: str
    record: User | None
    method: str
    step: Step = Step.CLEARTEXT
    done: bool = False
    _scram: object = field(default=None, repr=False)

    @classmethod
    def start(cls, user: str, record: User | None, method: str) -> Exchange:
        ex = cls(user, record, method)
        if method in ("scram-sha-256", "md5"):
            ex.step = Step.SASL_INITIAL
            verifier = ex.verifier()
            info = (verifier.salt, verifier.stored_key, verifier.server_key,
                    verifier.iterations)
            ex._scram = ScramMechanism("SCRAM-SHA-256").make_server(lambda _name: info)
        return ex

    def verifier(self) -> Verifier:
        r = self.record
        if r is None or r.verifier is None or not r.can_login:
            return _dummy()
        return r.verifier

    def valid_account(self) -> bool:
        r = self.record
        return r is not None and r.verifier is not None and r.can_login

    def failed(self) -> AuthFailed:
        return AuthFailed(f'password authentication failed for user "{self.user}"')

    def feed(self, data: bytes) -> bytes | None:
        match self.step:
            case Step.CLEARTEXT:
                password = data.split(b"\x00", 1)[0].decode("utf-8", "replace")
                ok = self.verifier().matches(password)
                if not (ok and self.valid_account()):
                    raise self.failed()
                self.done = True
                return None
            case Step.SASL_INITIAL:
                mechanism, _, rest = data.partition(b"\x00")
                if mechanism != b"SCRAM-SHA-256" or len(rest) < 4:
                    raise ServerError("unsupported SASL mechanism", sqlstate="28000")
                (length,) = struct.unpack("!i", rest[:4])
                body = rest[4:4 + length] if length >= 0 else b""
                try:
                    self._client_first(body.decode("utf-8"))
                except (ScramException, UnicodeDecodeError, ValueError) as exc:
                    raise ServerError(f"malformed SCRAM message: {exc}",
                                      sqlstate="08P01") from exc
                self.step = Step.SASL_FINAL
                return str(self._server().get_server_first()).encode()
            case Step.SASL_FINAL:
                try:
                    self._server().set_client_final(data.decode("utf-8"))
                except (ScramException, UnicodeDecodeError) as exc:
                    raise self.failed() from exc
                if not self.valid_account():
                    raise self.failed()
                self.done = True
                return str(self._server().get_server_final()).encode()
        raise AssertionError(self.step)

    def _client_first(self, message: str) -> None:
        """libpq sends an empty user name (``n=,``; PostgreSQL uses the start-up
        user), which scramp's parser rejects: scramp gets a placeholder name, and
        the exchange is then signed over the client's own message."""
        header, sep, bare = message.partition(",")
        header2, sep2, bare = bare.partition(",")
        if not sep or not sep2:
            raise ValueError("malformed client-first message")
        server = self._server()
        if bare.startswith("n=,"):
            server.set_client_first(f"{header},{header2},n=*,{bare[3:]}")
            server.client_first_bare = bare   # the text the client's proof covers
        else:
            server.set_client_first(message)

    def _server(self):  # type: ignore[no-untyped-def]  # scramp is untyped
        return self._scram
