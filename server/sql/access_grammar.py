"""The grammar of user, role and privilege statements (over sqlglot tokens).

Recognises, case-insensitively:

- ``CREATE USER name [WITH] [PASSWORD 'p' | PASSWORD DISABLE | SUPERUSER |
  NOSUPERUSER | CREATEUSER | NOCREATEUSER | FILEACCESS | NOFILEACCESS]...``,
  ``CREATE ROLE name``;
- ``ALTER USER name [WITH] ...`` (same options);
- ``DROP USER [IF EXISTS] name [, ...]``, ``DROP ROLE [IF EXISTS] name [, ...]``;
- ``GRANT [ROLE] r TO user``, ``REVOKE [ROLE] r FROM user``;
- ``GRANT CREATE MODEL TO grantee [, ...]``, ``REVOKE CREATE MODEL FROM ...``;
- ``GRANT { EXECUTE | ALL [PRIVILEGES] } ON MODEL m [, ...] TO grantee [, ...]``
  and its REVOKE, where a grantee is ``user``, ``ROLE r`` or ``PUBLIC``;
- ``GRANT { SELECT | INSERT | UPDATE | DELETE | TRUNCATE } [, ...] | ALL [PRIVILEGES]
  ON { [TABLE] t [, ...] | ALL TABLES IN SCHEMA s [, ...] } TO grantee [, ...]``;
- ``GRANT { USAGE | CREATE } [, ...] | ALL [PRIVILEGES] ON SCHEMA s [, ...] TO ...``;
- ``GRANT { USAGE | SELECT | UPDATE } [, ...] | ALL [PRIVILEGES] ON { SEQUENCE s [, ...] |
  ALL SEQUENCES IN SCHEMA s [, ...] } TO ...``;
- ``ALTER { TABLE | VIEW | SEQUENCE | SCHEMA | MACRO | FUNCTION } name OWNER TO user``.

Every GRANT and REVOKE is claimed here (DuckDB has neither); errors carry
the position like the ML grammar's.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import InvalidGrantOperation
from server.sql.ml_grammar import QualifiedName, _Parser
from server.sql.text import Statement


@dataclass(frozen=True)
class Grantee:
    name: str
    kind: str   # user | role | public


@dataclass(frozen=True)
class CreateUser:
    name: str
    password: str | None
    superuser: bool
    role: bool          # CREATE ROLE: cannot log in
    file_access: bool = False


@dataclass(frozen=True)
class AlterUser:
    name: str
    password: str | None
    superuser: bool | None
    file_access: bool | None = None


@dataclass(frozen=True)
class DropUser:
    names: tuple[str, ...]
    if_exists: bool
    role: bool


@dataclass(frozen=True)
class GrantRole:
    role: str
    members: tuple[str, ...]
    revoke: bool


@dataclass(frozen=True)
class GrantCreateModel:
    grantees: tuple[Grantee, ...]
    revoke: bool


@dataclass(frozen=True)
class GrantOnModel:
    models: tuple[QualifiedName, ...]
    grantees: tuple[Grantee, ...]
    revoke: bool


TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")


@dataclass(frozen=True)
class GrantOnTable:
    privileges: tuple[str, ...]          # from TABLE_PRIVILEGES
    tables: tuple[QualifiedName, ...]    # empty with in_schemas
    in_schemas: tuple[str, ...]          # ALL TABLES IN SCHEMA s, ...
    grantees: tuple[Grantee, ...]
    revoke: bool


@dataclass(frozen=True)
class GrantOnSchema:
    privileges: tuple[str, ...]          # from SCHEMA_PRIVILEGES
    schemas: tuple[str, ...]
    grantees: tuple[Grantee, ...]
    revoke: bool


@dataclass(frozen=True)
class GrantOnSequence:
    privileges: tuple[str, ...]             # from SEQUENCE_PRIVILEGES
    sequences: tuple[QualifiedName, ...]    # empty with in_schemas
    in_schemas: tuple[str, ...]             # ALL SEQUENCES IN SCHEMA s, ...
    grantees: tuple[Grantee, ...]
    revoke: bool


@dataclass(frozen=True)
class AlterOwner:
    kind: str                            # TABLE, VIEW, SEQUENCE, SCHEMA, MACRO, FUNCTION
    name: QualifiedName
    owner: str


AccessStatement = (CreateUser | AlterUser | DropUser | GrantRole | GrantCreateModel
                   | GrantOnModel | GrantOnTable | GrantOnSchema | GrantOnSequence
                   | AlterOwner)
_OWNED_KINDS = ("TABLE", "VIEW", "SEQUENCE", "SCHEMA", "MACRO", "FUNCTION")


def is_access_statement(stmt: Statement) -> bool:
    w = stmt.words(2)
    if not w:
        return False
    if w[0] in ("GRANT", "REVOKE"):
        return True
    if w[0] == "ALTER" and len(w) == 2 and w[1] in _OWNED_KINDS:
        tail = [t.text.upper() for t in stmt.tokens[-3:-1]]
        return tail == ["OWNER", "TO"]
    return len(w) == 2 and w[0] in ("CREATE", "ALTER", "DROP") and w[1] in ("USER", "ROLE")


def parse(stmt: Statement) -> AccessStatement:
    """Parse an access statement (``is_access_statement(stmt)`` must be true)."""
    return _AccessParser(stmt).statement()


class _AccessParser(_Parser):
    def statement(self) -> AccessStatement:  # type: ignore[override]
        if self.accept("CREATE", "USER"):
            return self.create_user(role=False)
        if self.accept("CREATE", "ROLE"):
            return self.create_user(role=True)
        for kind in _OWNED_KINDS:
            if self.accept("ALTER", kind):
                owned = self.qualified(f"a {kind.lower()} name")
                self.expect("OWNER", "TO")
                owner = self.identifier("a user name")
                self.end()
                return AlterOwner(kind, owned, owner)
        if self.accept("ALTER", "USER") or self.accept("ALTER", "ROLE"):
            name = self.identifier("a user name")
            password, superuser, file_access = self.user_options()
            return AlterUser(name, password, superuser, file_access)
        if self.accept("DROP", "USER") or self.accept("DROP", "ROLE"):
            role = self.tokens[1].text.upper() == "ROLE"
            if_exists = self.accept("IF", "EXISTS")
            names = self.names("a user name")
            self.end()
            return DropUser(tuple(names), if_exists, role)
        revoke = self.accept("REVOKE")
        if not revoke:
            self.expect("GRANT")
        return self.grant(revoke)

    def privilege_list(self) -> tuple[str, ...] | None:
        """SELECT, INSERT, ... or ALL [PRIVILEGES]; None if the next words are no list."""
        if self.accept("ALL"):
            self.accept("PRIVILEGES")
            return ("ALL",)
        found: list[str] = []
        while (word := self.word()) is not None and word in (*TABLE_PRIVILEGES,
                                                              *SCHEMA_PRIVILEGES):
            found.append(word)
            self.i += 1
            tok = self.peek()
            if tok is None or tok.text != ",":
                break
            self.i += 1
        return tuple(found) or None

    def names(self, what: str) -> list[str]:
        out = [self.identifier(what)]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.i += 1
            out.append(self.identifier(what))
        return out

    def create_user(self, role: bool) -> CreateUser:
        name = self.identifier("a role name" if role else "a user name")
        password, superuser, file_access = self.user_options()
        return CreateUser(name, password, bool(superuser), role, bool(file_access))

    def user_options(self) -> tuple[str | None, bool | None, bool | None]:
        self.accept("WITH")
        password: str | None = None
        superuser: bool | None = None
        file_access: bool | None = None
        while self.peek() is not None:
            if self.accept("PASSWORD"):
                if self.accept("DISABLE"):
                    continue
                password = self.string("a password")
            elif self.accept("SUPERUSER") or self.accept("CREATEUSER"):
                superuser = True
            elif self.accept("NOSUPERUSER") or self.accept("NOCREATEUSER"):
                superuser = False
            elif self.accept("FILEACCESS"):
                file_access = True
            elif self.accept("NOFILEACCESS"):
                file_access = False
            elif self.accept("LOGIN") or self.accept("NOLOGIN"):
                continue
            else:
                raise self.error("syntax error: expected PASSWORD, SUPERUSER, NOSUPERUSER, "
                                 "FILEACCESS or NOFILEACCESS")
        return password, superuser, file_access

    def grantees(self) -> tuple[Grantee, ...]:
        out = []
        while True:
            if self.accept("PUBLIC"):
                out.append(Grantee("public", "public"))
            elif self.accept("ROLE"):
                out.append(Grantee(self.identifier("a role name"), "role"))
            else:
                self.accept("USER")
                out.append(Grantee(self.identifier("a user name"), "user"))
            tok = self.peek()
            if tok is None or tok.text != ",":
                break
            self.i += 1
        self.end()
        return tuple(out)

    def grant(self, revoke: bool) -> AccessStatement:
        to = "FROM" if revoke else "TO"
        if self.accept("CREATE", "MODEL"):
            self.expect(to)
            return GrantCreateModel(self.grantees(), revoke)
        start = self.i
        privileges = self.privilege_list()
        if privileges is not None and self.accept("ON"):
            if self.accept("SCHEMA"):
                wanted = _expand(privileges, SCHEMA_PRIVILEGES, "schema")
                schemas = self.names("a schema name")
                self.expect(to)
                return GrantOnSchema(wanted, tuple(schemas), self.grantees(), revoke)
            if self.at("SEQUENCE") or self.at("ALL", "SEQUENCES"):
                wanted = _expand(privileges, SEQUENCE_PRIVILEGES, "sequence")
                if self.accept("ALL", "SEQUENCES", "IN", "SCHEMA"):
                    in_schemas = tuple(self.names("a schema name"))
                    self.expect(to)
                    return GrantOnSequence(wanted, (), in_schemas, self.grantees(), revoke)
                self.expect("SEQUENCE")
                sequences = [self.qualified("a sequence name")]
                while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    sequences.append(self.qualified("a sequence name"))
                self.expect(to)
                return GrantOnSequence(wanted, tuple(sequences), (), self.grantees(), revoke)
            if not self.at("MODEL"):
                wanted = _expand(privileges, TABLE_PRIVILEGES, "table")
                if self.accept("ALL", "TABLES", "IN", "SCHEMA"):
                    in_schemas = tuple(self.names("a schema name"))
                    self.expect(to)
                    return GrantOnTable(wanted, (), in_schemas, self.grantees(), revoke)
                self.accept("TABLE")
                tables = [self.qualified("a table name")]
                while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    tables.append(self.qualified("a table name"))
                self.expect(to)
                return GrantOnTable(wanted, tuple(tables), (), self.grantees(), revoke)
        self.i = start
        if self.accept("EXECUTE") or (self.accept("ALL") and (self.accept("PRIVILEGES") or True)):
            self.expect("ON", "MODEL")
            models = [self.qualified("a model name")]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.i += 1
                models.append(self.qualified("a model name"))
            self.expect(to)
            return GrantOnModel(tuple(models), self.grantees(), revoke)
        self.accept("ROLE")
        role = self.identifier("a role name")
        self.expect(to)
        members = self.names("a user name")
        self.end()
        return GrantRole(role, tuple(members), revoke)


def _expand(privileges: tuple[str, ...], valid: tuple[str, ...], what: str) -> tuple[str, ...]:
    if privileges == ("ALL",):
        return valid
    for p in privileges:
        if p not in valid:
            raise InvalidGrantOperation(f"invalid privilege type {p} for {what}")
    return tuple(dict.fromkeys(privileges))
