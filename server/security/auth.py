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
exchange against a mock verifier), so nothing tells which users exist. The
mock verifier's salt is HMAC-SHA256(server secret, user name) cut to the
length of a real salt, with the real iteration count, as PostgreSQL derives
its mock salt: the same name always gets the same salt (also across restarts)
and different names get different ones, as real users do. The server secret
is 32 random bytes made at the first start and kept in ``auth_secret`` in the
data directory (mode 0600, written atomically).

Limits before login (PostgreSQL's): a PasswordMessage or SASL response over
``MAX_AUTH_MESSAGE`` bytes is a protocol violation (08P01).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

from scramp import ScramException, ScramMechanism

from catalog.files import write_atomic
from catalog.users import ITERATIONS, User, Verifier
from server.errors import ServerError

METHODS = ("trust", "scram-sha-256", "md5", "password")
SECRET_FILE = "auth_secret"
SECRET_BYTES = 32
SALT_BYTES = 32   # what Verifier.make (scramp's make_auth_info) gives a real user
# PasswordMessage / SASLInitialResponse / SASLResponse bodies: a SCRAM message is
# about 100 bytes; PostgreSQL before 14 read password packets up to 1000 bytes.
MAX_AUTH_MESSAGE = 1000


class AuthFailed(ServerError):
    sqlstate = "28P01"


class Rejected(ServerError):
    sqlstate = "28000"


class Step(enum.Enum):
    SASL_INITIAL = "sasl-initial"
    SASL_FINAL = "sasl-final"
    CLEARTEXT = "cleartext"


# keys of the mock verifiers: no password matches them (a fresh random pair per process)
_MOCK_KEYS = (secrets.token_bytes(32), secrets.token_bytes(32))


def server_secret(data_dir: Path) -> bytes:
    """The server secret behind mock salts: read from the data directory, or made
    (32 random bytes, mode 0600, temp file + fsync + rename) at the first start."""
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(SECRET_BYTES)
        write_atomic(path, secret)   # mode 0600
        return secret
    if len(secret) != SECRET_BYTES:
        raise SystemExit(f"quackml: {path} is damaged ({len(secret)} bytes, not "
                         f"{SECRET_BYTES}); remove it to make a new one")
    return secret


def mock_verifier(secret: bytes, user: str) -> Verifier:
    """What an unknown user (or one that cannot log in with a password) is checked
    against: a salt stable per name that looks like a real one, real iterations."""
    salt = hmac.new(secret, user.encode(),
                    hashlib.sha256).digest()[:SALT_BYTES]
    return Verifier(salt, _MOCK_KEYS[0], _MOCK_KEYS[1], ITERATIONS)


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
    secret: bytes = field(repr=False)
    step: Step = Step.CLEARTEXT
    done: bool = False
    _scram: object = field(default=None, repr=False)

    @classmethod
    def start(cls, user: str, record: User | None, method: str, secret: bytes) -> Exchange:
        ex = cls(user, record, method, secret)
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
            return mock_verifier(self.secret, self.user)
        return r.verifier

    def valid_account(self) -> bool:
        r = self.record
        return r is not None and r.verifier is not None and r.can_login

    def failed(self) -> AuthFailed:
        return AuthFailed(f'password authentication failed for user "{self.user}"')

    def feed(self, data: bytes) -> bytes | None:
        if len(data) > MAX_AUTH_MESSAGE:
            raise ServerError(f"invalid password packet size: {len(data)} bytes "
                              f"(at most {MAX_AUTH_MESSAGE})", sqlstate="08P01")
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
