"""Privilege decisions: one object per session answers "may this user do that?".

``Privileges`` is what handlers receive (never the session): the user, whether
they are a superuser or hold FILEACCESS, model privileges (owner, EXECUTE,
CREATE MODEL), and ``check_sql``, which asks the firewall
(``server.security.firewall``) about SQL bound for DuckDB. Under ``--auth
trust`` every client is a superuser (trust admits loopback clients only).
Whether the user is a superuser is read when the session starts (ALTER USER
... SUPERUSER applies to new sessions); FILEACCESS and grants are read again
whenever the security catalog changed, so REVOKE applies at the next statement.
Denials are 42501.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import duckdb

from catalog.errors import ModelNotFound
from catalog.files import base_function
from catalog.store import ModelRecord
from catalog.views import FUNCTIONS as CATALOG_FUNCTIONS
from catalog.views import VIEWS as ML_VIEWS
from server.errors import InsufficientPrivilege, ServerError
from server.security.firewall import Effect, Firewall, Path, Policy, Subject, denied
from server.sql import sequences

if TYPE_CHECKING:
    from server.engine import Engine

_OWNER_ONLY_ROWS = frozenset({"IAM Role", "S3 Bucket", "KMS Key", "Estimated Cost"})
# names every session relies on, defined by the server per session or emulated
_SESSION_NAMES = frozenset({"current_user", "session_user", "user", "current_role",
                            "current_database", "current_schema", "current_catalog",
                            "version", "explain_model", "evaluate_model"})


class Privileges:
    def __init__(self, engine: Engine, user: str):
        self.engine = engine
        self.user = user
        if engine.settings.auth == "trust":
            self.superuser = True
        else:
            record = engine.users.get(user)
            self.superuser = record is not None and record.superuser
        self._generation = -1
        self._file_access = self.superuser
        self.firewall = Firewall(engine.decision_generation)

    @property
    def file_access(self) -> bool:
        """Whether the user may read and write files in the import/export directory
        (FILEACCESS): read again after any catalog change, so ALTER USER applies at once."""
        if self.superuser:
            return True
        generation = self.engine.users.generation
        if generation != self._generation:
            record = self.engine.users.get(self.user)
            self._file_access = record is not None and record.file_access
            self._generation = generation
        return self._file_access

    # -- models ----------------------------------------------------------------------
    def owns_or_super(self, record: ModelRecord) -> bool:
        return record.owner == self.user or self.superuser

    def can_execute(self, record: ModelRecord) -> bool:
        return self.owns_or_super(record) or self.engine.users.has(
            self.user, "EXECUTE", record.schema_name, record.model_name)

    def require_create_model(self) -> None:
        if not self.superuser and not self.engine.users.has(self.user, "CREATE MODEL"):
            raise denied("CREATE MODEL needs the CREATE MODEL privilege "
                         f'(GRANT CREATE MODEL TO "{self.user}")')

    def require_drop(self, record: ModelRecord) -> None:
        if not self.owns_or_super(record):
            raise denied(f"only the owner or a superuser may drop model "
                         f"{record.qualified_name}")

    def require_execute(self, record: ModelRecord) -> None:
        if not self.can_execute(record):
            raise denied(f"no EXECUTE privilege on model {record.qualified_name}")

    def require_superuser(self, what: str) -> None:
        if not self.superuser:
            raise denied(f"{what} needs a superuser")

    def visible_rows(self, record: ModelRecord,
                     rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """SHOW MODEL rows: the owner-only ones only for owners, superusers, grantees."""
        if self.can_execute(record):
            return rows
        return [r for r in rows if r[0] not in _OWNER_ONLY_ROWS]

    # -- SQL bound for DuckDB ----------------------------------------------------------
    def check_sql(self, cursor: duckdb.DuckDBPyConnection, text: str,
                  prepared: Mapping[str, str] | None = None) -> tuple[Effect, ...]:
        """Refuse (42501) what this user may not run; free for superusers. Returns the
        ownership changes the statement makes (``record`` them once it succeeded)."""
        if self.superuser:
            return ()
        engine = self.engine
        policy = Policy(self._model_check, engine.reserved_names,
                        engine.settings.file_dir or None, self._table_check,
                        lambda path, what, missing_ok: self._owner_check(
                            cursor, path, what, missing_ok), self._create_check,
                        lambda function, path: self._sequence_check(cursor, function, path))
        return self.firewall.check(cursor, text, Subject(self.user, self.file_access),
                                   policy, prepared)

    def record(self, effects: tuple[Effect, ...]) -> None:
        """Apply a succeeded statement's ownership changes to the catalog."""
        acl = self.engine.acl
        for e in effects:
            match e.action:
                case "create":
                    # a new object (or one this user replaced): its grants start afresh
                    acl.forget(e.path)
                    acl.set_owner(e.path, e.kind, self.user)
                case "drop":
                    acl.forget(e.path)
                case "rename":
                    acl.rename(e.path, e.new_name)

    def identities(self) -> list[str]:
        return [self.user, *self.engine.users.roles_of(self.user)]

    def _table_check(self, privilege: str, path: Path) -> None:
        acl = self.engine.acl
        identities = self.identities()
        # PostgreSQL's words: "permission denied for table t"
        if not acl.has_schema(identities, path[0], path[1], "USAGE"):
            raise InsufficientPrivilege(f"permission denied for schema {path[1]}")
        if not acl.has_table(identities, path, privilege):
            raise InsufficientPrivilege(
                f"permission denied for table {path[2]}",
                detail=f"{privilege} on {path[1]}.{path[2]} is not granted to {self.user}",
                hint=f'the owner grants it: GRANT {privilege} ON {path[1]}.{path[2]} '
                     f'TO "{self.user}"')

    def _create_check(self, database: str, schema: str) -> None:
        if not self.engine.acl.has_schema(self.identities(), database, schema, "CREATE"):
            raise denied(f"CREATE in schema {schema}")

    def _owner_check(self, cursor: duckdb.DuckDBPyConnection, path: Path, what: str,
                     missing_ok: bool) -> None:
        if self.engine.acl.owner(path) in self.identities():
            return
        if missing_ok and not _exists(cursor, path):
            return
        name = f"{path[1]}.{path[2]}" if path[2] else path[1]
        raise InsufficientPrivilege(f"must be owner of {what} {name}")

    def _sequence_check(self, cursor: duckdb.DuckDBPyConnection, function: str,
                        path: Path) -> None:
        """A sequence is its owner's; others need PostgreSQL's privilege on it (GRANT
        USAGE or UPDATE for nextval, UPDATE for setval, USAGE or SELECT for currval), or
        reach it through a table of the same owner whose column takes its default from
        it, with INSERT (nextval), UPDATE (setval) or SELECT (currval) on that table."""
        acl = self.engine.acl
        identities = self.identities()
        owner = acl.owner(path)
        if owner in identities:
            return
        granted = {"nextval": ("USAGE", "UPDATE"), "setval": ("UPDATE",)}.get(
            function, ("USAGE", "SELECT"))   # PostgreSQL's privileges on the sequence
        privilege = {"nextval": "INSERT", "setval": "UPDATE"}.get(function, "SELECT")
        if acl.has_schema(identities, path[0], path[1], "USAGE"):
            if any(acl.has_table(identities, path, p) for p in granted):
                return
            for (table,) in cursor.execute(
                    "SELECT DISTINCT table_name FROM duckdb_columns() WHERE database_name = ? "
                    f"AND schema_name = ? AND {sequences.default_uses('column_default', '?')}",
                    [path[0], path[1], path[2], path[2]]).fetchall():
                fed: Path = (path[0], path[1], str(table))
                if acl.owner(fed) == owner and acl.has_table(identities, fed, privilege):
                    return
        raise InsufficientPrivilege(
            f"permission denied for sequence {path[2]}",
            hint=f"the owner grants {' or '.join(granted)} on the sequence, or {privilege} "
                 "on a table whose column takes its default from it")

    def _model_check(self, name: str) -> bool:
        """EXECUTE on the model behind a function name (or an EXPLAIN_MODEL or
        EVALUATE_MODEL target)."""
        if name.startswith(("explain_model:", "evaluate_model:")):
            schema, _, model = name.partition(":")[2].rpartition(".")
            record = self.engine.store.get(schema or "public", model)
            if record is None:
                raise ModelNotFound(f'model "{schema or "public"}.{model}" does not exist')
            self.require_execute(record)
            return True
        functions = self.engine.functions
        if not functions.is_model_function(name):
            return False
        store = self.engine.store
        record = store.by_function(name) or store.by_function(
            base_function(name))
        if record is None:   # a function that outlived its model: nothing to run
            raise denied(f"function {name} belongs to no model")
        self.require_execute(record)
        return True


def _exists(cursor: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether a table, view, macro, sequence or type of that name is in DuckDB's catalog."""
    rows = cursor.execute(
        "SELECT count(*) FROM (SELECT database_name, schema_name, table_name AS name "
        "FROM duckdb_tables() UNION ALL SELECT database_name, schema_name, view_name "
        "FROM duckdb_views() UNION ALL SELECT database_name, schema_name, function_name "
        "FROM duckdb_functions() WHERE NOT internal UNION ALL SELECT database_name, "
        "schema_name, sequence_name FROM duckdb_sequences() UNION ALL SELECT database_name, "
        "schema_name, type_name FROM duckdb_types()) "
        "WHERE lower(database_name) = lower(?) AND lower(schema_name) = lower(?) "
        "AND lower(name) = lower(?)", list(path)).fetchall()
    return bool(rows and rows[0][0])


def reserved_names(con: duckdb.DuckDBPyConnection, pg_names: frozenset[str]) -> frozenset[str]:
    """Names no user object may take: DuckDB's built-in functions and types, the
    server's functions (models' prediction functions are registered as built-ins),
    the ML views and the pg_catalog emulation objects."""
    rows = con.execute(
        "SELECT lower(function_name) FROM duckdb_functions() WHERE database_name = 'system' "
        "UNION SELECT lower(type_name) FROM duckdb_types() WHERE database_name = 'system' "
        "UNION SELECT lower(keyword_name) FROM duckdb_keywords() "
        "WHERE keyword_category <> 'unreserved'").fetchall()
    return frozenset(str(r[0]) for r in rows) | pg_names | _SESSION_NAMES | \
        frozenset(ML_VIEWS) | frozenset(CATALOG_FUNCTIONS)


__all__ = ["Privileges", "ServerError", "reserved_names"]
