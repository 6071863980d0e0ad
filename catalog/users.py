"""Users, roles and model privileges, kept in the catalog schema.

Tables (in the same reserved schema as ``models``):

- ``users``: one row per user or role; ``password`` holds a SCRAM-SHA-256
  verifier (RFC 5803 form, as PostgreSQL stores it), never a password;
  ``file_access`` is the FILEACCESS attribute (may read and write server files);
- ``role_members``: ``GRANT role TO user``;
- ``privileges``: ``CREATE MODEL`` (no model) and ``EXECUTE`` on a model, granted
  to a user, a role, or PUBLIC.

All writes go through one ``UserStore`` guarded by a lock, each a single
statement in autocommit. Membership is one level deep (a role granted to a
user), as Redshift roles are used for model privileges.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from dataclasses import dataclass

import duckdb
from scramp import ScramMechanism

from catalog.views import create_privileges_view

_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.users (
    name       VARCHAR PRIMARY KEY,
    password   VARCHAR,            -- SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey
    superuser  BOOLEAN NOT NULL,
    can_login  BOOLEAN NOT NULL
);
ALTER TABLE {schema}.users ADD COLUMN IF NOT EXISTS file_access BOOLEAN DEFAULT false;
CREATE TABLE IF NOT EXISTS {schema}.role_members (
    role_name  VARCHAR NOT NULL,
    member     VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.privileges (
    privilege     VARCHAR NOT NULL,   -- CREATE MODEL | EXECUTE
    schema_name   VARCHAR,            -- NULL for CREATE MODEL
    model_name    VARCHAR,
    grantee       VARCHAR NOT NULL,   -- user or role name; 'public' for PUBLIC
    grantee_type  VARCHAR NOT NULL    -- user | role | public
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
    """Reads and writes the user, role and privilege tables through its own cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, qualified_schema: str):
        self._con = con.cursor()
        self._lock = threading.RLock()
        self._schema = qualified_schema
        # bumped by every change of a user's attributes: sessions re-read theirs then
        self.generation = 0
        with self._lock:
            self._con.execute(_DDL.format(schema=qualified_schema))
            create_privileges_view(self._con, f"{qualified_schema}.privileges",
                                   f"{qualified_schema}.models")

    # -- users and roles -------------------------------------------------------
    def get(self, name: str) -> User | None:
        with self._lock:
            rows = self._con.execute(
                f"SELECT name, password, superuser, can_login, file_access "
                f"FROM {self._schema}.users WHERE name = ?", [name]).fetchall()
        if not rows:
            return None
        name_, password, superuser, can_login, file_access = rows[0]
        return User(str(name_), Verifier.decode(str(password)) if password else None,
                    bool(superuser), bool(can_login), bool(file_access))

    def create(self, name: str, password: str | None, *, superuser: bool,
               can_login: bool, file_access: bool = False) -> None:
        verifier = Verifier.make(password).encode() if password is not None else None
        with self._lock:
            self._con.execute(f"INSERT INTO {self._schema}.users (name, password, superuser, "
                              "can_login, file_access) VALUES (?, ?, ?, ?, ?)",
                              [name, verifier, superuser, can_login, file_access])
            self.generation += 1

    def alter(self, name: str, *, password: str | None = None,
              superuser: bool | None = None, file_access: bool | None = None) -> None:
        with self._lock:
            self.generation += 1
            if file_access is not None:
                self._con.execute(f"UPDATE {self._schema}.users SET file_access = ? "
                                  "WHERE name = ?", [file_access, name])
            if password is not None:
                self._con.execute(f"UPDATE {self._schema}.users SET password = ? WHERE name = ?",
                                  [Verifier.make(password).encode(), name])
            if superuser is not None:
                self._con.execute(f"UPDATE {self._schema}.users SET superuser = ? "
                                  "WHERE name = ?", [superuser, name])

    def drop(self, name: str) -> None:
        with self._lock:
            self.generation += 1
            self._con.execute("BEGIN")
            try:
                for table, column in (("users", "name"), ("role_members", "member"),
                                      ("role_members", "role_name"), ("privileges", "grantee")):
                    self._con.execute(f"DELETE FROM {self._schema}.{table} WHERE {column} = ?",
                                      [name])
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def count(self) -> int:
        with self._lock:
            rows = self._con.execute(f"SELECT count(*) FROM {self._schema}.users").fetchall()
        return int(rows[0][0])

    def add_member(self, role: str, member: str) -> None:
        with self._lock:
            self.remove_member(role, member)
            self._con.execute(f"INSERT INTO {self._schema}.role_members VALUES (?, ?)",
                              [role, member])

    def remove_member(self, role: str, member: str) -> None:
        with self._lock:
            self._con.execute(f"DELETE FROM {self._schema}.role_members "
                              "WHERE role_name = ? AND member = ?", [role, member])

    def roles_of(self, member: str) -> set[str]:
        with self._lock:
            rows = self._con.execute(f"SELECT role_name FROM {self._schema}.role_members "
                                     "WHERE member = ?", [member]).fetchall()
        return {str(r[0]) for r in rows}

    # -- privileges ------------------------------------------------------------
    def grant(self, g: Grant) -> None:
        with self._lock:
            self.revoke(g)
            self._con.execute(f"INSERT INTO {self._schema}.privileges VALUES (?, ?, ?, ?, ?)",
                              [g.privilege, g.schema_name, g.model_name, g.grantee,
                               g.grantee_type])

    def revoke(self, g: Grant) -> None:
        with self._lock:
            self._con.execute(
                f"DELETE FROM {self._schema}.privileges WHERE privilege = ? "
                "AND schema_name IS NOT DISTINCT FROM ? AND model_name IS NOT DISTINCT FROM ? "
                "AND grantee = ? AND grantee_type = ?",
                [g.privilege, g.schema_name, g.model_name, g.grantee, g.grantee_type])

    def forget_model(self, schema: str, name: str) -> None:
        with self._lock:
            self._con.execute(f"DELETE FROM {self._schema}.privileges WHERE schema_name = ? "
                              "AND model_name = ?", [schema, name])

    def has(self, user: str, privilege: str, schema: str | None = None,
            name: str | None = None) -> bool:
        """Whether ``user`` holds the privilege directly, through a role, or via PUBLIC."""
        identities = [user, *self.roles_of(user)]
        with self._lock:
            rows = self._con.execute(
                f"SELECT count(*) FROM {self._schema}.privileges WHERE privilege = ? "
                "AND schema_name IS NOT DISTINCT FROM ? AND model_name IS NOT DISTINCT FROM ? "
                "AND (grantee_type = 'public' OR grantee IN (SELECT unnest(?::VARCHAR[])))",
                [privilege, schema, name, identities]).fetchall()
        return int(rows[0][0]) > 0
