"""CREATE/ALTER/DROP USER and ROLE, GRANT and REVOKE: changes to the security catalog.

These statements are the only way to change users, roles and privileges: the
catalog itself is out of SQL's reach (``catalog.db``). The handler receives
the user store, the acting user's ``Privileges`` and a model lookup, never
the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import duckdb

from catalog.acl import Acl, Path
from catalog.store import ModelRecord
from catalog.users import Grant, UserStore
from server.errors import (
    DuplicateObject,
    InsufficientPrivilege,
    InvalidSchemaName,
    UndefinedObject,
    UndefinedTable,
)
from server.results import Command
from server.security.firewall import denied
from server.security.privileges import Privileges
from server.sql.access_grammar import (
    AccessStatement,
    AlterOwner,
    AlterUser,
    CreateUser,
    DropUser,
    GrantCreateModel,
    Grantee,
    GrantOnModel,
    GrantOnSchema,
    GrantOnSequence,
    GrantOnTable,
    GrantRole,
)
from server.sql.ml_grammar import QualifiedName


class Objects(Protocol):
    """How the handler finds tables and schemas in DuckDB's catalog (the session's cursor)."""

    def relation(self, name: QualifiedName) -> tuple[Path, str]:
        """The path and kind (table | view) of a table or view; 42P01 if none."""
        ...

    def relations_in(self, schema: str) -> list[tuple[Path, str]]:
        """The tables and views of a schema; 3F000 if no such schema."""
        ...

    def schema(self, name: str) -> Path:
        """The path of a schema; 3F000 if none."""
        ...

    def any_object(self, kind: str, name: QualifiedName) -> Path:
        """The path of a sequence, macro or function; 42704 if none."""
        ...

    def sequences_in(self, schema: str) -> list[Path]:
        """The sequences of a schema; 3F000 if no such schema."""
        ...


class Roles:
    def __init__(self, users: UserStore, acl: Acl, privileges: Privileges, bootstrap: str,
                 model: Callable[[QualifiedName], ModelRecord], objects: Objects):
        self.users = users
        self.acl = acl
        self.privileges = privileges
        self.bootstrap = bootstrap
        self.model = model
        self.objects = objects

    def handle(self, statement: AccessStatement) -> Command:
        users = self.users
        match statement:
            case CreateUser(name=name, password=password, superuser=superuser, role=role,
                            file_access=file_access):
                self._require_superuser("CREATE USER/ROLE")
                if users.get(name) is not None:
                    raise DuplicateObject(f'role "{name}" already exists')
                users.create(name, password, superuser=superuser, can_login=not role,
                             file_access=file_access)
                return Command("CREATE ROLE" if role else "CREATE USER")
            case AlterUser(name=name, password=password, superuser=superuser,
                           file_access=file_access):
                if not self.privileges.superuser and (
                        name != self.privileges.user or superuser is not None
                        or file_access is not None):
                    raise denied("only superusers alter other users, SUPERUSER or FILEACCESS")
                self._existing(name)
                users.alter(name, password=password, superuser=superuser,
                            file_access=file_access)
                return Command("ALTER USER")
            case DropUser(names=names, if_exists=if_exists, role=role):
                self._require_superuser("DROP USER/ROLE")
                notices = []
                for name in names:
                    if users.get(name) is None:
                        if if_exists:
                            notices.append(f'role "{name}" does not exist, skipping')
                            continue
                        raise UndefinedObject(f'role "{name}" does not exist')
                    if name == self.bootstrap or name == self.privileges.user:
                        raise denied(f'"{name}" cannot be dropped (bootstrap or current user)')
                    users.drop(name)
                    self.acl.forget_user(name)
                return Command("DROP ROLE" if role else "DROP USER", tuple(notices))
            case GrantRole(role=role, members=members, revoke=revoke):
                self._require_superuser("GRANT/REVOKE of roles")
                self._existing(role)
                for member in members:
                    self._existing(member)
                    if revoke:
                        users.remove_member(role, member)
                    else:
                        users.add_member(role, member)
                return Command("REVOKE" if revoke else "GRANT")
            case GrantCreateModel(grantees=grantees, revoke=revoke):
                self._require_superuser("GRANT/REVOKE CREATE MODEL")
                for g in grantees:
                    self._grant(Grant("CREATE MODEL", None, None, *self._grantee(g)), revoke)
                return Command("REVOKE" if revoke else "GRANT")
            case GrantOnModel(models=models, grantees=grantees, revoke=revoke):
                records = [self.model(m) for m in models]
                for record in records:
                    if not self.privileges.owns_or_super(record):
                        raise denied(f"only the owner or a superuser may grant on model "
                                     f"{record.qualified_name}")
                for record in records:
                    for g in grantees:
                        self._grant(Grant("EXECUTE", record.schema_name, record.model_name,
                                          *self._grantee(g)), revoke)
                return Command("REVOKE" if revoke else "GRANT")
            case GrantOnTable(privileges=privileges, tables=tables, in_schemas=in_schemas,
                              grantees=grantees, revoke=revoke):
                targets = [self.objects.relation(t) for t in tables]
                for schema in in_schemas:
                    targets.extend(self.objects.relations_in(schema))
                for path, kind in targets:
                    self._require_owner(path, kind)
                for path, _kind in targets:
                    for g in grantees:
                        grantee, grantee_type = self._grantee(g)
                        for privilege in privileges:
                            self.acl.grant_table(path, privilege, grantee, grantee_type,
                                                 revoke)
                return Command("REVOKE" if revoke else "GRANT")
            case GrantOnSequence(privileges=privileges, sequences=sequences,
                                 in_schemas=in_schemas, grantees=grantees, revoke=revoke):
                paths = [self.objects.any_object("SEQUENCE", q) for q in sequences]
                for schema in in_schemas:
                    paths.extend(self.objects.sequences_in(schema))
                for path in paths:
                    self._require_owner(path, "sequence")
                for path in paths:   # kept with the table grants, by the sequence's path
                    for g in grantees:
                        grantee, grantee_type = self._grantee(g)
                        for privilege in privileges:
                            self.acl.grant_table(path, privilege, grantee, grantee_type,
                                                 revoke)
                return Command("REVOKE" if revoke else "GRANT")
            case GrantOnSchema(privileges=privileges, schemas=schemas, grantees=grantees,
                               revoke=revoke):
                paths = [self.objects.schema(s_) for s_ in schemas]
                for path in paths:
                    self._require_owner(path, "schema")
                for path in paths:
                    for g in grantees:
                        grantee, grantee_type = self._grantee(g)
                        for privilege in privileges:
                            self.acl.grant_schema(path[0], path[1], privilege, grantee,
                                                  grantee_type, revoke)
                return Command("REVOKE" if revoke else "GRANT")
            case AlterOwner(kind=kind, name=name, owner=owner):
                if kind in ("TABLE", "VIEW"):
                    try:
                        path, found = self.objects.relation(name)
                    except UndefinedTable:
                        if kind != "TABLE":
                            raise
                        # ALTER TABLE takes a sequence too (pg_dump writes it so)
                        try:
                            path, found = self.objects.any_object("SEQUENCE", name), "sequence"
                        except UndefinedObject:
                            raise UndefinedTable(f'relation "{name.name}" does not exist') \
                                from None
                elif kind == "SCHEMA":
                    path, found = self.objects.schema(name.name), "schema"
                else:
                    path, found = self.objects.any_object(kind, name), kind.lower()
                self._require_owner(path, found)
                self._existing(owner)
                if not self.privileges.superuser and \
                        owner not in (self.privileges.user,
                                      *self.users.roles_of(self.privileges.user)):
                    raise denied(f'must be able to SET ROLE "{owner}"')
                self.acl.set_owner(path, found, owner)
                return Command(f"ALTER {kind}")
        raise AssertionError(statement)

    def _require_owner(self, path: Path, what: str) -> None:
        if self.privileges.superuser:
            return
        if self.acl.owner(path) not in (self.privileges.user,
                                        *self.users.roles_of(self.privileges.user)):
            name = f"{path[1]}.{path[2]}" if path[2] else path[1]
            raise InsufficientPrivilege(f"must be owner of {what} {name}")

    def _grant(self, grant: Grant, revoke: bool) -> None:
        if revoke:
            self.users.revoke(grant)
        else:
            self.users.grant(grant)

    def _grantee(self, g: Grantee) -> tuple[str, str]:
        if g.kind != "public":
            self._existing(g.name)
        return g.name, g.kind

    def _existing(self, name: str) -> None:
        if self.users.get(name) is None:
            raise UndefinedObject(f'role "{name}" does not exist')

    def _require_superuser(self, what: str) -> None:
        self.privileges.require_superuser(what)


class DuckDBObjects:
    """``Objects`` answered from DuckDB's catalog through a session's cursor (the names
    the session can see: its search path, PostgreSQL's ``public`` as ``main``)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self.cursor = cursor

    def _schema_name(self, schema: str | None) -> str:
        if schema is None:
            return str(self.cursor.execute("SELECT current_schema()").fetchall()[0][0])
        return "main" if schema.lower() == "public" else schema

    def relation(self, name: QualifiedName) -> tuple[Path, str]:
        schema = self._schema_name(name.schema)
        rows = self._relations("AND lower(schema_name) = lower(?) AND lower(name) = lower(?)",
                               [schema, name.name])
        if not rows:
            shown = f"{name.schema}.{name.name}" if name.schema else name.name
            raise UndefinedTable(f'relation "{shown}" does not exist')
        return rows[0]

    def relations_in(self, schema: str) -> list[tuple[Path, str]]:
        path = self.schema(schema)
        return self._relations("AND lower(schema_name) = lower(?)", [path[1]])

    def _relations(self, where: str, params: list[object]) -> list[tuple[Path, str]]:
        rows = self.cursor.execute(
            "SELECT database_name, schema_name, name, kind FROM ("
            "SELECT database_name, schema_name, table_name AS name, 'table' AS kind "
            "FROM duckdb_tables() WHERE NOT temporary UNION ALL "
            "SELECT database_name, schema_name, view_name, 'view' FROM duckdb_views() "
            "WHERE NOT internal AND NOT temporary) "
            f"WHERE database_name = current_database() {where} ORDER BY 3", params).fetchall()
        return [((str(d), str(s), str(n)), str(k)) for d, s, n, k in rows]

    def schema(self, name: str) -> Path:
        schema = self._schema_name(name)
        rows = self.cursor.execute(
            "SELECT database_name, schema_name FROM duckdb_schemas() "
            "WHERE database_name = current_database() AND lower(schema_name) = lower(?)",
            [schema]).fetchall()
        if not rows:
            raise InvalidSchemaName(f'schema "{name}" does not exist')
        return (str(rows[0][0]), str(rows[0][1]), "")

    def sequences_in(self, schema: str) -> list[Path]:
        path = self.schema(schema)
        rows = self.cursor.execute(
            "SELECT database_name, schema_name, sequence_name FROM duckdb_sequences() "
            "WHERE database_name = ? AND schema_name = ? ORDER BY 3",
            [path[0], path[1]]).fetchall()
        return [(str(d), str(s), str(n)) for d, s, n in rows]

    def any_object(self, kind: str, name: QualifiedName) -> Path:
        schema = self._schema_name(name.schema)
        if kind == "SEQUENCE":
            query = ("SELECT database_name, schema_name, sequence_name FROM duckdb_sequences() "
                     "WHERE lower(sequence_name) = lower(?)")
        else:
            query = ("SELECT database_name, schema_name, function_name FROM duckdb_functions() "
                     "WHERE NOT internal AND lower(function_name) = lower(?)")
        rows = self.cursor.execute(
            f"SELECT * FROM ({query}) t(d, s, n) WHERE d = current_database() "
            "AND lower(s) = lower(?)", [name.name, schema]).fetchall()
        if not rows:
            raise UndefinedObject(f'{kind.lower()} "{name.name}" does not exist')
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2]))
