"""Users, roles and model privileges, kept in the security catalog (``catalog.db``),
out of SQL's reach.

Tables:

- ``users``: one row per user or role; ``password`` holds a SCRAM-SHA-256
  verifier (RFC 5803 form, as PostgreSQL stores it), never a password;
  ``file_access`` is the FILEACCESS attribute (may read and write server files);
- ``role_members``: ``GRANT role TO user``;
- ``privileges``: ``CREATE MODEL`` (no model) and ``EXECUTE`` on a model, granted
  to a user, a role, or PUBLIC.

All writes go through one ``UserStore`` under the catalog's lock; a change
that touches several rows (DROP USER) is one transaction. Membership is one
level deep (a role granted to a user), as Redshift roles are used for model
privileges.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from scramp import ScramMechanism

from catalog.db import CatalogDB

_DDL = """
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    password    TEXT,               -- SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey
    superuser   INTEGER NOT NULL,
    can_login   INTEGER NOT NULL,
    file_access INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS role_members (
    role_name  TEXT NOT NULL,
    member     TEXT NOT NULL,
    PRIMARY KEY (role_name, member)
);
CREATE TABLE IF NOT EXISTS privileges (
    privilege     TEXT NOT NULL,    -- CREATE MODEL | EXECUTE
    schema_name   TEXT,             -- NULL for CREATE MODEL
    model_name    TEXT,
    grantee       TEXT NOT NULL,    -- user or role name; 'public' for PUBLIC
    grantee_type  TEXT NOT NULL     -- user | role | public
);
"""

ITERATIONS = 4096
_MECHANISM = ScramMechanism("SCRAM-SHA-256")


@dataclass(frozen=True)
class Verifier:
    """A SCRAM-SHA-256 verifier: what the server keeps instead of the password."""
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def encode(self) -> str:
        b64 = base64.b64encode
        return (f"SCRAM-SHA-256${self.iterations}:{b64(self.salt).decode()}$"
                f"{b64(self.stored_key).decode()}:{b64(self.server_key).decode()}")

    @classmethod
    def decode(cls, text: str) -> Verifier:
        method, params, keys = text.split("$")
        if method != "SCRAM-SHA-256":
            raise ValueError(f"not a SCRAM-SHA-256 verifier: {method}")
        iterations, salt = params.split(":")
        stored, server = keys.split(":")
        d = base64.b64decode
        return cls(d(salt), d(stored), d(server), int(iterations))

    @classmethod
    def make(cls, password: str) -> Verifier:
        salt, stored_key, server_key, iterations = _MECHANISM.make_auth_info(
            password, iteration_count=ITERATIONS)
        return cls(salt, stored_key, server_key, iterations)

    def matches(self, password: str) -> bool:
        """Check a cleartext password (the 'password' method) against the verifier."""
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key)


@dataclass(frozen=True)
class User:
    name: str
    verifier: Verifier | None
    superuser: bool
    can_login: bool
    file_access: bool = False


@dataclass(frozen=True)
class Grant:
    privilege: str          # CREATE MODEL | EXECUTE
    schema_name: str | None
    model_name: str | None
    grantee: str
    grantee_type: str       # user | role | public


class UserStore:
    """Reads and writes the user, role and privilege tables of the security catalog."""

    def __init__(self, db: CatalogDB):
        self._db = db
        db.script(_DDL)

    @property
    def generation(self) -> int:
        """Moves with every catalog change: sessions re-read their attributes then."""
        return self._db.generation

    # -- users and roles -------------------------------------------------------
    def get(self, name: str) -> User | None:
        rows = self._db.query("SELECT name, password, superuser, can_login, file_access "
                              "FROM users WHERE name = ?", (name,))
        if not rows:
            return None
        name_, password, superuser, can_login, file_access = rows[0]
        return User(str(name_), Verifier.decode(str(password)) if password else None,
                    bool(superuser), bool(can_login), bool(file_access))

    def all(self) -> list[User]:
        return [u for u in (self.get(str(r[0])) for r in
                            self._db.query("SELECT name FROM users ORDER BY name"))
                if u is not None]

    def create(self, name: str, password: str | None, *, superuser: bool,
               can_login: bool, file_access: bool = False) -> None:
        verifier = Verifier.make(password).encode() if password is not None else None
        self._db.execute("INSERT INTO users (name, password, superuser, can_login, file_access) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (name, verifier, superuser, can_login, file_access))

    def alter(self, name: str, *, password: str | None = None,
              superuser: bool | None = None, file_access: bool | None = None) -> None:
        with self._db.transaction():
            if file_access is not None:
                self._db.execute("UPDATE users SET file_access = ? WHERE name = ?",
                                 (file_access, name))
            if password is not None:
                self._db.execute("UPDATE users SET password = ? WHERE name = ?",
                                 (Verifier.make(password).encode(), name))
            if superuser is not None:
                self._db.execute("UPDATE users SET superuser = ? WHERE name = ?",
                                 (superuser, name))

    def drop(self, name: str) -> None:
        with self._db.transaction():
            for table, column in (("users", "name"), ("role_members", "member"),
                                  ("role_members", "role_name"), ("privileges", "grantee")):
                self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    def count(self) -> int:
        rows = self._db.query("SELECT count(*) FROM users")
        return int(str(rows[0][0]))

    def add_member(self, role: str, member: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO role_members VALUES (?, ?)", (role, member))

    def remove_member(self, role: str, member: str) -> None:
        self._db.execute("DELETE FROM role_members WHERE role_name = ? AND member = ?",
                         (role, member))

    def roles_of(self, member: str) -> set[str]:
        rows = self._db.query("SELECT role_name FROM role_members WHERE member = ?", (member,))
        return {str(r[0]) for r in rows}

    def memberships(self) -> list[tuple[str, str]]:
        """(role, member) pairs."""
        return [(str(r), str(m)) for r, m in
                self._db.query("SELECT role_name, member FROM role_members ORDER BY 1, 2")]

    # -- privileges ------------------------------------------------------------
    def grant(self, g: Grant) -> None:
        with self._db.transaction():
            self.revoke(g)
            self._db.execute("INSERT INTO privileges VALUES (?, ?, ?, ?, ?)",
                             (g.privilege, g.schema_name, g.model_name, g.grantee,
                              g.grantee_type))

    def revoke(self, g: Grant) -> None:
        self._db.execute(
            "DELETE FROM privileges WHERE privilege = ? AND schema_name IS ? "
            "AND model_name IS ? AND grantee = ? AND grantee_type = ?",
            (g.privilege, g.schema_name, g.model_name, g.grantee, g.grantee_type))

    def grants(self) -> list[Grant]:
        return [Grant(str(p), None if s is None else str(s), None if m is None else str(m),
                      str(g), str(t)) for p, s, m, g, t in self._db.query(
                          "SELECT privilege, schema_name, model_name, grantee, grantee_type "
                          "FROM privileges ORDER BY 1, 2, 3, 4")]

    def forget_model(self, schema: str, name: str) -> None:
        self._db.execute("DELETE FROM privileges WHERE schema_name = ? AND model_name = ?",
                         (schema, name))

    def has(self, user: str, privilege: str, schema: str | None = None,
            name: str | None = None) -> bool:
        """Whether ``user`` holds the privilege directly, through a role, or via PUBLIC."""
        identities = [user, *self.roles_of(user)]
        marks = ", ".join("?" for _ in identities)
        rows = self._db.query(
            "SELECT count(*) FROM privileges WHERE privilege = ? AND schema_name IS ? "
            f"AND model_name IS ? AND (grantee_type = 'public' OR grantee IN ({marks}))",
            (privilege, schema, name, *identities))
        return int(str(rows[0][0])) > 0
