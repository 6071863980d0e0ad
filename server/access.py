"""Who may do what: user/role statements, model privileges, and the SQL a
non-superuser may not send to DuckDB.

One ``Access`` per session, for the session's (authenticated) user. Under
``--auth trust`` every client is a superuser (trust admits loopback clients
only), as before authentication existed. Whether the user is a superuser is
read when the session starts (ALTER USER ... SUPERUSER applies to new
sessions). Denials are 42501.

The SQL check for non-superusers works on the statement's tokens and
DuckDB's own statement type, never on regexes: it refuses statement types
that reach files or the server (ATTACH, DETACH, INSTALL/LOAD, COPY to or from
a file, EXPORT/IMPORT DATABASE, PRAGMA, SET of DuckDB options), calls of
file-reading table functions, a quoted file name in FROM/JOIN, names in the
catalog schema, and calls of a model's prediction functions without EXECUTE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from sqlglot.tokens import TokenType

from catalog.store import SCHEMA, ModelRecord
from catalog.users import Grant
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
from server.errors import DuplicateObject, InsufficientPrivilege, UndefinedObject
from server.results import Command
from server.sqltext import Statement

if TYPE_CHECKING:
    from server.engine import Engine



# Table and scalar functions that read or list server files, or run SQL text.
FILE_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
    "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
    "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "glob",
    "sniff_csv", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "parquet_bloom_probe", "read_xlsx", "st_read", "query",
    "query_table", "delta_scan", "iceberg_scan", "read_duckdb", "sqlite_scan",
    "postgres_scan", "mysql_scan", "duckdb_secrets", "duckdb_extensions", "which_secret",
    "load_extension",
})
# Statement types a non-superuser may not run: they reach files, extensions or
# server-wide configuration.
_REFUSED_TYPES = {
    duckdb.StatementType.ATTACH, duckdb.StatementType.DETACH, duckdb.StatementType.LOAD,
    duckdb.StatementType.COPY, duckdb.StatementType.EXPORT,
    duckdb.StatementType.COPY_DATABASE, duckdb.StatementType.PRAGMA,
    duckdb.StatementType.SET, duckdb.StatementType.EXTENSION,
}
_CATALOG_TABLES = frozenset({"models", "meta", "users", "role_members", "privileges"})
_OWNER_ONLY_ROWS = frozenset({"IAM Role", "S3 Bucket", "KMS Key", "Estimated Cost"})


def denied(what: str) -> InsufficientPrivilege:
    return InsufficientPrivilege(f"permission denied: {what}")


class Access:
    def __init__(self, engine: Engine, user: str):
        self.engine = engine
        self.user = user
        # Read once per session (as is_superuser is reported once at start-up): the
        # check before every statement must not query the catalog.
        if engine.settings.auth == "trust":
            self.superuser = True
        else:
            record = engine.users.get(user)
            self.superuser = record is not None and record.superuser

    # -- model privileges ------------------------------------------------------
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

    def visible_rows(self, record: ModelRecord,
                     rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """SHOW MODEL rows: the owner-only ones only for owners, superusers, grantees."""
        if self.can_execute(record):
            return rows
        return [r for r in rows if r[0] not in _OWNER_ONLY_ROWS]

    # -- SQL sent to DuckDB ----------------------------------------------------
    def check_sql(self, stmt: Statement, stype: duckdb.StatementType | None,
                  to_client_copy: bool) -> None:
        """Refuse (42501) what a non-superuser may not send to DuckDB."""
        if self.superuser:
            return
        if stmt.untokenized:
            return   # DuckDB will refuse it as a syntax error
        variable = stmt.words(2)[1:] == ("VARIABLE",)   # SET/RESET VARIABLE: session-local
        if stype in _REFUSED_TYPES and not (stype is duckdb.StatementType.COPY
                                            and to_client_copy) and not (
                stype is duckdb.StatementType.SET and variable):
            raise denied(f"{stype.name if stype else 'this'} statements need a superuser")
        words = stmt.words(1)
        if words and words[0] in ("INSTALL", "LOAD", "ATTACH", "DETACH", "PRAGMA", "EXPORT",
                                  "IMPORT", "CHECKPOINT", "VACUUM"):
            raise denied(f"{words[0]} needs a superuser")
        tokens = stmt.tokens
        functions: dict[str, ModelRecord] | None = None
        for i, tok in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            prev = tokens[i - 1] if i else None
            text = tok.text.lower()
            if tok.token_type in (TokenType.STRING, TokenType.HEREDOC_STRING):
                if prev is not None and prev.text.upper() in ("FROM", "JOIN"):
                    raise denied("reading files needs a superuser")
                continue
            if nxt is not None and nxt.token_type is TokenType.L_PAREN:
                if text in FILE_FUNCTIONS:
                    raise denied(f"{text}() needs a superuser")
                if text == "explain_model":
                    self._check_explain_model(tokens[i + 2] if i + 2 < len(tokens) else None)
                    continue
                if functions is None:
                    functions = {r.function_name.lower(): r for r in self.engine.store.all()}
                record = functions.get(text) or functions.get(text.removesuffix("_explain"))
                if record is not None:
                    self.require_execute(record)
            if nxt is not None and nxt.token_type is TokenType.DOT and text == SCHEMA:
                after = tokens[i + 2].text.lower() if i + 2 < len(tokens) else ""
                if after in _CATALOG_TABLES or after == SCHEMA:
                    raise denied(f'the "{SCHEMA}" catalog schema is reserved')

    def _check_explain_model(self, arg: object) -> None:
        """EXPLAIN_MODEL('m'): needs EXECUTE on m; the name must be a literal."""
        from server.grammar import QualifiedName
        from server.ml import model_or_error
        if getattr(arg, "token_type", None) is not TokenType.STRING:
            raise denied("EXPLAIN_MODEL takes a model name as a string literal "
                         "for non-superusers")
        schema, _, name = str(getattr(arg, "text", "")).rpartition(".")
        self.require_execute(model_or_error(self.engine, QualifiedName(schema or None, name)))

    # -- user, role and privilege statements --------------------------------
    def handle(self, statement: AccessStatement) -> Command:
        users = self.engine.users
        match statement:
            case CreateUser(name=name, password=password, superuser=superuser, role=role):
                self._require_superuser("CREATE USER/ROLE")
                if users.get(name) is not None:
                    raise DuplicateObject(f'role "{name}" already exists')
                users.create(name, password, superuser=superuser, can_login=not role)
                return Command("CREATE ROLE" if role else "CREATE USER")
            case AlterUser(name=name, password=password, superuser=superuser):
                if not self.superuser and (name != self.user or superuser is not None):
                    raise denied("only superusers alter other users or SUPERUSER")
                self._existing(name)
                users.alter(name, password=password, superuser=superuser)
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
                    if name == self.engine.settings.superuser or name == self.user:
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
                from server.ml import model_or_error
                records = [model_or_error(self.engine, m) for m in models]
                for record in records:
                    if not self.owns_or_super(record):
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
            self.engine.users.revoke(grant)
        else:
            self.engine.users.grant(grant)

    def _grantee(self, g: Grantee) -> tuple[str, str]:
        if g.kind != "public":
            self._existing(g.name)
        return g.name, g.kind

    def _existing(self, name: str) -> None:
        if self.engine.users.get(name) is None:
            raise UndefinedObject(f'role "{name}" does not exist')

    def _require_superuser(self, what: str) -> None:
        if not self.superuser:
            raise denied(f"{what} needs a superuser")
