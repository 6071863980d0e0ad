"""CREATE/ALTER/DROP USER and ROLE, GRANT and REVOKE: changes to the security catalog.

These statements are the only way to change users, roles and privileges: the
catalog itself is out of SQL's reach (``catalog.db``). The handler receives
the user store, the acting user's ``Privileges`` and a model lookup, never
the session.
"""

from __future__ import annotations

from collections.abc import Callable

from catalog.store import ModelRecord
from catalog.users import Grant, UserStore
from server.accessgrammar import (
    AccessStatement,
    AlterUser,
    CreateUser,
    DropUser,
    GrantCreateModel,
    Grantee,
    GrantOnModel,
    GrantRole,
)
from server.errors import DuplicateObject, UndefinedObject
from server.grammar import QualifiedName
from server.results import Command
from server.security.firewall import denied
from server.security.privileges import Privileges


class Roles:
    def __init__(self, users: UserStore, privileges: Privileges, bootstrap: str,
                 model: Callable[[QualifiedName], ModelRecord]):
        self.users = users
        self.privileges = privileges
        self.bootstrap = bootstrap
        self.model = model

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
        raise AssertionError(statement)

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
