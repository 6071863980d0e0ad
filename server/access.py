"""Who may do what: user/role statements, model privileges, and the SQL a
non-superuser may not send to DuckDB.

One ``Access`` per session, for the session's (authenticated) user. Under
``--auth trust`` every client is a superuser (trust admits loopback clients
only), as before authentication existed. Whether the user is a superuser is
read when the session starts (ALTER USER ... SUPERUSER applies to new
sessions); the FILEACCESS attribute is read again whenever a user's
attributes changed (it applies at once). Denials are 42501.

The SQL check for non-superusers works on the statement's tokens and
DuckDB's own statement type, never on regexes. Without FILEACCESS it refuses
what reaches server files: statement types ATTACH, DETACH, INSTALL/LOAD, COPY
to or from a file, EXPORT/IMPORT DATABASE (also inside EXPLAIN ANALYZE or
PREPARE), calls of file-reading functions, and a file name (a string, or a
quoted name that looks like a path) in a FROM list. For every non-superuser
it refuses PRAGMA, SET/RESET of DuckDB options (global ones act on every
session; operator_memory_limit is the session's memory limit), secrets,
functions that run SQL text, names in the catalog schema, and calls of a
model's prediction functions without EXECUTE, also inside the views and
macros the statement names (``server.reach``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
from sqlglot.tokens import Token, TokenType

from catalog.store import SCHEMA, ModelRecord
from catalog.users import Grant
from inference.functions import PROBABILITIES_SUFFIX
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
from server.reach import EXPLAIN_ANY, EXPLAIN_PREFIX, definitions
from server.results import Command
from server.sqltext import Statement

if TYPE_CHECKING:
    from server.engine import Engine



# Table and scalar functions that read, write or list server files, or load
# extensions: superusers and users with the FILEACCESS attribute.
FILE_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
    "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
    "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "glob",
    "sniff_csv", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "parquet_bloom_probe", "read_xlsx", "st_read",
    "delta_scan", "iceberg_scan", "read_duckdb", "sqlite_scan", "duckdb_extensions",
    "load_extension",
})
# Functions that run SQL text (past this check), reach secrets or other database
# servers: superusers only.
SUPERUSER_FUNCTIONS = frozenset({
    "query", "query_table", "duckdb_secrets", "which_secret", "postgres_scan",
    "postgres_query", "postgres_execute", "mysql_scan", "mysql_query", "mysql_execute",
})
# Statement types that reach files or extensions: superusers and FILEACCESS users.
_FILE_TYPES = {
    duckdb.StatementType.ATTACH, duckdb.StatementType.DETACH, duckdb.StatementType.LOAD,
    duckdb.StatementType.COPY, duckdb.StatementType.EXPORT,
    duckdb.StatementType.COPY_DATABASE, duckdb.StatementType.EXTENSION,
}
_FILE_WORDS = frozenset({"INSTALL", "LOAD", "ATTACH", "DETACH", "EXPORT", "IMPORT"})
# Statement types and first words that change server-wide state: superusers only.
# SET and RESET of any DuckDB option (SET VARIABLE aside) need a superuser too:
# the global ones (memory_limit, threads, temp_directory ...) and
# operator_memory_limit, the per-session memory limit.
_SUPERUSER_TYPES = {duckdb.StatementType.PRAGMA}
_SUPERUSER_WORDS = frozenset({"PRAGMA", "CHECKPOINT", "VACUUM"})
# CREATE OR REPLACE PERSISTENT SECRET ...: the words before the kind of object
_OBJECT_PREFIXES = frozenset({"OR", "REPLACE", "PERSISTENT", "TEMPORARY", "TEMP"})
# Words that end a FROM clause at its nesting depth (not ON: "JOIN u ON c, 'f.csv'"
# goes on with another FROM item).
_FROM_ENDS = frozenset({"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "QUALIFY",
                        "WINDOW", "UNION", "EXCEPT", "INTERSECT", "SELECT", "RETURNING",
                        "SET", "VALUES"})
_CATALOG_TABLES = frozenset({"models", "meta", "users", "role_members", "privileges"})
_OWNER_ONLY_ROWS = frozenset({"IAM Role", "S3 Bucket", "KMS Key", "Estimated Cost"})


def denied(what: str) -> InsufficientPrivilege:
    return InsufficientPrivilege(f"permission denied: {what}")


def _wrapped(tokens: list[Token]) -> list[Token] | None:
    """The statement inside ``EXPLAIN [ANALYZE] [(options)] stmt`` or ``PREPARE name
    [(types)] AS stmt``, or None."""
    first = tokens[0].text.upper() if tokens else ""
    i = 1
    if first == "EXPLAIN":
        while i < len(tokens) and tokens[i].text.upper() in ("ANALYZE", "ANALYSE", "VERBOSE"):
            i += 1
        if i < len(tokens) and tokens[i].token_type is TokenType.L_PAREN:
            i = _after_parens(tokens, i)
    elif first == "PREPARE":
        while i < len(tokens) and tokens[i].text.upper() != "AS":
            i = _after_parens(tokens, i) if tokens[i].token_type is TokenType.L_PAREN else i + 1
        i += 1
    else:
        return None
    return tokens[i:] or None


def _after_parens(tokens: list[Token], i: int) -> int:
    depth = 0
    while i < len(tokens):
        if tokens[i].token_type is TokenType.L_PAREN:
            depth += 1
        elif tokens[i].token_type is TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _file_like(name: str) -> bool:
    """A quoted name DuckDB may read as a file (a path or a name with an extension)."""
    return any(c in name for c in "/\\:.*?")


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
        self._generation = -1
        self._file_access = self.superuser

    @property
    def file_access(self) -> bool:
        """Whether the user may read and write server files (FILEACCESS): read again
        after any change of a user's attributes, so ALTER USER applies at once."""
        if self.superuser:
            return True
        generation = self.engine.users.generation
        if generation != self._generation:
            record = self.engine.users.get(self.user)
            self._file_access = record is not None and record.file_access
            self._generation = generation
        return self._file_access

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
        self._check_statement(stmt, list(stmt.tokens), stype, to_client_copy)
        self._check_tokens(stmt.tokens)

    def _check_statement(self, stmt: Statement, tokens: list[Token],
                         stype: duckdb.StatementType | None, to_client_copy: bool) -> None:
        """The statement's kind, and the kind of the statement an EXPLAIN ANALYZE or a
        PREPARE wraps (DuckDB reports those as EXPLAIN and PREPARE)."""
        words = [t.text.upper() for t in tokens[:6]]
        if not words:
            return
        if stype is duckdb.StatementType.SET and words[1:2] != ["VARIABLE"]:
            raise denied("SET and RESET of DuckDB settings need a superuser")
        if stype in _SUPERUSER_TYPES or words[0] in _SUPERUSER_WORDS:
            raise denied(f"{words[0]} needs a superuser")
        if words[0] in ("CREATE", "DROP") and next(
                (w for w in words[1:] if w not in _OBJECT_PREFIXES), "") == "SECRET":
            raise denied("secrets need a superuser")
        file_statement = (stype in _FILE_TYPES and not (stype is duckdb.StatementType.COPY
                                                        and to_client_copy)) \
            or words[0] in _FILE_WORDS
        if file_statement and not self.file_access:
            raise denied(f"{words[0]} reaches server files: it needs a superuser or the "
                         "FILEACCESS attribute")
        inner = _wrapped(tokens)
        if inner is not None:
            text = stmt.text[max(0, inner[0].start - stmt.offset):]
            try:
                parsed = duckdb.extract_statements(text)
            except duckdb.Error:
                parsed = []
            self._check_statement(stmt, inner, parsed[0].type if len(parsed) == 1 else None,
                                  False)

    def _check_tokens(self, tokens: Sequence[Token]) -> None:
        """File names, file and SQL-running functions, the catalog schema, and
        EXECUTE on the model functions the statement calls, directly or through
        views and macros."""
        file_access = self.file_access
        called: set[str] = set()
        names: set[str] = set()
        depth = 0
        from_depths: list[int] = []   # nesting depths of the open FROM clauses
        for i, tok in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            prev = tokens[i - 1] if i else None
            text = tok.text.lower()
            kind = tok.token_type
            if kind is TokenType.L_PAREN:
                depth += 1
                continue
            if kind is TokenType.R_PAREN:
                depth -= 1
                while from_depths and from_depths[-1] > depth:
                    from_depths.pop()
                continue
            in_from = bool(from_depths) and from_depths[-1] == depth
            if kind in (TokenType.STRING, TokenType.HEREDOC_STRING):
                if not file_access and prev is not None and (
                        prev.text.upper() in ("FROM", "JOIN")
                        or (in_from and prev.token_type is TokenType.COMMA)):
                    raise denied("reading files needs a superuser or the FILEACCESS attribute")
                continue
            upper = tok.text.upper()
            if kind is not TokenType.IDENTIFIER:
                if upper == "FROM" or upper == "JOIN":
                    if not in_from:
                        from_depths.append(depth)
                elif upper in _FROM_ENDS and in_from:
                    from_depths.pop()
            elif not file_access and _file_like(tok.text) and prev is not None \
                    and prev.token_type is not TokenType.DOT \
                    and (nxt is None or nxt.token_type is not TokenType.DOT) \
                    and (prev.text.upper() in ("FROM", "JOIN")
                         or (in_from and prev.token_type is TokenType.COMMA)):
                # FROM "data.csv": DuckDB reads a file named like a table
                raise denied("reading files needs a superuser or the FILEACCESS attribute")
            if nxt is not None and nxt.token_type is TokenType.L_PAREN:
                if text in SUPERUSER_FUNCTIONS:
                    raise denied(f"{text}() needs a superuser")
                if text in FILE_FUNCTIONS and not file_access:
                    raise denied(f"{text}() reaches server files: it needs a superuser or "
                                 "the FILEACCESS attribute")
                if text == "explain_model":
                    self._check_explain_model(tokens[i + 2] if i + 2 < len(tokens) else None)
                    continue
                called.add(text)
            else:
                names.add(text)
            if nxt is not None and nxt.token_type is TokenType.DOT and text == SCHEMA:
                after = tokens[i + 2].text.lower() if i + 2 < len(tokens) else ""
                if after in _CATALOG_TABLES or after == SCHEMA:
                    raise denied(f'the "{SCHEMA}" catalog schema is reserved')
        functions: dict[str, ModelRecord] | None = None

        def models() -> dict[str, ModelRecord]:
            nonlocal functions
            if functions is None:
                functions = {r.function_name.lower(): r for r in self.engine.store.all()}
            return functions

        def is_model_function(name: str) -> bool:
            # the registered functions first: no catalog query for ordinary functions
            return self.engine.functions.is_model_function(name) and (
                name in models() or name.removesuffix(PROBABILITIES_SUFFIX) in models())

        called |= definitions(self.engine, self.engine.con).calls(names, called,
                                                                   is_model_function)
        if not called:
            return
        for name in called:
            if name.startswith(EXPLAIN_PREFIX):
                # explain_model() inside a view or macro
                model = name.removeprefix(EXPLAIN_PREFIX)
                if name == EXPLAIN_ANY:
                    raise denied("a view or macro calls EXPLAIN_MODEL with a computed "
                                 "model name: only superusers may use it")
                self._check_model_name(model)
                continue
            if not self.engine.functions.is_model_function(name):
                continue
            # f and f_probabilities both belong to the model of f
            record = models().get(name) or models().get(
                name.removesuffix(PROBABILITIES_SUFFIX))
            if record is not None:
                self.require_execute(record)

    def _check_explain_model(self, arg: object) -> None:
        """EXPLAIN_MODEL('m'): needs EXECUTE on m; the name must be a literal."""
        if getattr(arg, "token_type", None) is not TokenType.STRING:
            raise denied("EXPLAIN_MODEL takes a model name as a string literal "
                         "for non-superusers")
        self._check_model_name(str(getattr(arg, "text", "")))

    def _check_model_name(self, text: str) -> None:
        from server.grammar import QualifiedName
        from server.ml import model_or_error
        schema, _, name = text.rpartition(".")
        self.require_execute(model_or_error(self.engine, QualifiedName(schema or None, name)))

    # -- user, role and privilege statements --------------------------------
    def handle(self, statement: AccessStatement) -> Command:
        users = self.engine.users
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
                if not self.superuser and (name != self.user or superuser is not None
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
