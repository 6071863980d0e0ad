"""What SQL a non-superuser may run, decided on what DuckDB will actually run.

The check never reads SQL text the way a tokenizer of our own would: DuckDB's
parser says how many statements a text holds and of which type
(``duckdb.extract_statements``), and DuckDB's binder says what each one does
(``json_serialize_plan``): the tables it scans and writes, every function it
calls after views and macros are expanded, the files it writes, the objects it
creates, drops or alters. The decision is taken on that plan:

- a plan operator, table function or statement type that is not on a reviewed
  allow list is refused (fail closed); so is a statement whose plan DuckDB
  cannot serialize (it could hide anything);
- a model's prediction function needs EXECUTE on the model, wherever the call
  sits (a view, a macro, a CTE, a lambda, a subquery);
- functions that run SQL given as data (``query``, ``query_table``,
  ``json_execute_serialized_sql``) are refused;
- files: COPY to a file needs FILEACCESS and a path inside ``--file-dir``;
  everything else that reaches files does not serialize and is refused;
- no shadowing: an object may not be created, replaced, altered or dropped if
  its name is a built-in function or type, a model's function, an ML view or a
  pg_catalog emulation object, or if it lives in the emulation or system catalog;
- settings: only variables and the schema search path (DuckDB's own locked
  configuration refuses the rest as well).

Statements inside statements are checked as themselves: the statement an
EXPLAIN or a PREPARE wraps here, the one an EXECUTE runs when it runs (the
session passes the prepared text), the query of DECLARE CURSOR and of COPY.

Decisions are cached per session by (statement text, the engine's DDL
generation, the security catalog's generation): a repeated statement is
checked once while nothing it could depend on changed. Superusers are not
checked.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
from duckdb import _seam

from server.errors import InsufficientPrivilege, ServerError

# Plan operators a non-superuser's statement may contain.
_OPERATORS = frozenset({
    "LOGICAL_PROJECTION", "LOGICAL_FILTER", "LOGICAL_GET", "LOGICAL_CHUNK_GET",
    "LOGICAL_EXPRESSION_GET", "LOGICAL_DUMMY_SCAN", "LOGICAL_EMPTY_RESULT",
    "LOGICAL_AGGREGATE_AND_GROUP_BY", "LOGICAL_WINDOW", "LOGICAL_UNNEST",
    "LOGICAL_ORDER_BY", "LOGICAL_TOP_N", "LOGICAL_LIMIT", "LOGICAL_SAMPLE", "LOGICAL_DISTINCT",
    "LOGICAL_PIVOT", "LOGICAL_COMPARISON_JOIN", "LOGICAL_ANY_JOIN", "LOGICAL_CROSS_PRODUCT",
    "LOGICAL_POSITIONAL_JOIN", "LOGICAL_ASOF_JOIN", "LOGICAL_DEPENDENT_JOIN",
    "LOGICAL_DELIM_JOIN", "LOGICAL_DELIM_GET", "LOGICAL_JOIN",
    "LOGICAL_UNION", "LOGICAL_EXCEPT", "LOGICAL_INTERSECT",
    "LOGICAL_RECURSIVE_CTE", "LOGICAL_MATERIALIZED_CTE", "LOGICAL_CTE_REF",
    "LOGICAL_INSERT", "LOGICAL_UPDATE", "LOGICAL_DELETE", "LOGICAL_MERGE_INTO",
    "LOGICAL_CREATE_TABLE", "LOGICAL_CREATE_VIEW", "LOGICAL_CREATE_MACRO",
    "LOGICAL_CREATE_SCHEMA", "LOGICAL_CREATE_SEQUENCE", "LOGICAL_CREATE_TYPE",
    "LOGICAL_CREATE_INDEX", "LOGICAL_DROP", "LOGICAL_ALTER",
    "LOGICAL_SET", "LOGICAL_RESET", "LOGICAL_COPY_TO_FILE", "LOGICAL_TRANSACTION",
})
# Table functions a non-superuser may scan: generators and DuckDB's catalog
# listings (the pg_catalog and information_schema views are built on them).
# Columns that hold server file paths are refused where a function has them.
_TABLE_FUNCTIONS: Mapping[str, frozenset[str]] = {
    "seq_scan": frozenset(), "generate_series": frozenset(), "range": frozenset(),
    "unnest": frozenset(), "repeat": frozenset(), "repeat_row": frozenset(),
    "duckdb_tables": frozenset(), "duckdb_columns": frozenset(), "duckdb_views": frozenset(),
    "duckdb_schemas": frozenset(), "duckdb_types": frozenset(),
    "duckdb_functions": frozenset(), "duckdb_indexes": frozenset(),
    "duckdb_constraints": frozenset(), "duckdb_sequences": frozenset(),
    "duckdb_keywords": frozenset(), "duckdb_dependencies": frozenset(),
    "duckdb_databases": frozenset({"path"}), "pragma_table_info": frozenset(),
    "pragma_version": frozenset(), "pragma_show": frozenset(), "test_all_types": frozenset(),
    "duckdb_approx_database_count": frozenset(), "summary": frozenset(),
}
# Functions that run SQL handed to them as data: refused even where the plan shows
# what they bound to, so the SQL a user runs is always the SQL they sent.
SQL_RUNNING = frozenset({"query", "query_table", "json_execute_serialized_sql"})
# Functions that read or move a sequence: the sequence is checked (Policy.sequence_check).
SEQUENCE_FUNCTIONS = frozenset({"nextval", "currval", "setval"})
# Scalar functions that reveal server state.
_SCALAR_REFUSED = frozenset({"duckdb_settings", "getenv"})
# current_setting(name) is allowed with a constant name of a setting that holds no
# server path (the session's own memory limit, threads, ...): these words in a
# setting's name mark the ones that may.
_PATH_SETTING_WORDS = ("directory", "directories", "path", "file", "repository", "output",
                       "secret", "home", "log", "api", "agent", "filesystem")
# Settings a non-superuser may change: their own variables and schema search path.
_SETTABLE = frozenset({"schema", "search_path"})
RESERVED_CATALOGS = frozenset({"system", "quackml_pg"})
# Plan errors that are the statement's own (a missing table, a type mismatch): the
# binder raises them again, typed; any other error refuses the statement.
_OWN_ERRORS = frozenset({"binder", "catalog", "parser", "syntax", "conversion",
                         "out of range", "mismatch type"})
RESERVED_PREFIX = "quackml_"
_KINDS = {"TABLE_ENTRY": "table", "VIEW_ENTRY": "view", "MACRO_ENTRY": "macro",
          "TABLE_MACRO_ENTRY": "macro", "SEQUENCE_ENTRY": "sequence", "TYPE_ENTRY": "type",
          "INDEX_ENTRY": "index", "SCHEMA_ENTRY": "schema", "ALTER_TABLE": "table",
          "ALTER_VIEW": "view", "ALTER_SEQUENCE": "sequence", "SET_COMMENT": "object",
          "ALTER_SCHEMA": "schema", "ALTER_MACRO": "macro"}


def denied(what: str, hint: str | None = None) -> InsufficientPrivilege:
    return InsufficientPrivilege(f"permission denied: {what}", hint=hint)


@dataclass(frozen=True)
class Subject:
    """Who runs the statement, as the firewall needs to know them."""
    user: str
    file_access: bool


Path = tuple[str, str, str]   # database, schema, name ('' for a schema)


@dataclass(frozen=True)
class Policy:
    """What the firewall asks of the rest of the server (all cheap after the first call).

    - ``model_check(function_name)``: raise 42501 unless the user may call that model
      function; return False if the name is no model's function;
    - ``reserved_names()``: names no object may take (built-ins, models' functions,
      ML views, emulation objects), lower-case;
    - ``file_dir``: the operator's import/export directory, or None;
    - ``table_check(privilege, path)``: raise 42501 unless the user holds the table
      privilege (SELECT, INSERT, ...) on the table or view and USAGE on its schema;
    - ``owner_check(path, what, missing_ok)``: raise 42501 unless the user owns the
      object (or, with ``missing_ok``, it does not exist);
    - ``create_check(database, schema)``: raise 42501 without CREATE on the schema;
    - ``sequence_check(function, path)``: raise 42501 unless the user may call
      nextval/currval/setval on the sequence.
    """
    model_check: Callable[[str], bool]
    reserved_names: Callable[[], frozenset[str]]
    file_dir: str | None
    table_check: Callable[[str, Path], None]
    owner_check: Callable[[Path, str, bool], None]
    create_check: Callable[[str, str], None]
    sequence_check: Callable[[str, Path], None]


@dataclass(frozen=True)
class Effect:
    """A change of ownership a statement makes once it succeeded: ``create`` (the
    user owns the new object), ``drop`` (owner and grants go), ``rename``."""
    action: str          # create | drop | rename
    kind: str            # table | view | macro | sequence | type | schema | index
    path: Path
    new_name: str = ""
    replace: bool = False


class Firewall:
    """The decision point for one session's SQL (non-superusers). Its cache is the
    session's own: temporary objects and the search path are per session, so a
    decision holds for that session only. ``generation()`` moves whenever a decision
    could change: any DDL, ATTACH, SET or transaction end on any session (the
    engine counts them), or any change of the security catalog."""

    def __init__(self, generation: Callable[[], tuple[int, int]], size: int = 1024):
        self._generation = generation
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, tuple[int, int]],
                                 tuple[ServerError | None, tuple[Effect, ...]]] = OrderedDict()
        self._size = size

    def check(self, cursor: duckdb.DuckDBPyConnection, text: str, subject: Subject,
              policy: Policy, prepared: Mapping[str, str] | None = None) -> tuple[Effect, ...]:
        """Raise 42501 (or the statement's own bind error) unless ``subject`` may run
        ``text``; the ownership changes it makes if it succeeds."""
        key = (text, self._generation())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                cached, effects = self._cache[key]
                if cached is not None:
                    raise cached
                return effects
        error: ServerError | None = None
        check = _Check(cursor, subject, policy, prepared or {})
        try:
            check.statement(text, depth=0)
        except ServerError as exc:
            error = exc
        effects = tuple(check.effects)
        cacheable = not text.lstrip()[:7].upper().startswith("EXECUTE")
        if cacheable:
            with self._lock:
                self._cache[key] = (error, effects)
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        if error is not None:
            raise error
        return effects


class _Check:
    def __init__(self, cursor: duckdb.DuckDBPyConnection, subject: Subject, policy: Policy,
                 prepared: Mapping[str, str]):
        self.cursor = cursor
        self.subject = subject
        self.policy = policy
        self.prepared = prepared
        self.effects: list[Effect] = []
        self.truncate = False

    # -- statements --------------------------------------------------------------
    def statement(self, text: str, depth: int) -> None:
        if depth > 8:
            raise denied("statements nested too deep")
        try:
            parsed = duckdb.extract_statements(text)
        except duckdb.Error:
            return   # DuckDB's parser refuses it: nothing will run, DuckDB reports why
        if len(parsed) != 1:
            raise denied("a statement string DuckDB reads as several statements",
                         hint="send one statement at a time")
        tokens = _tokens(text)   # DuckDB's tokenizer, once per statement
        self._sql_running(tokens)
        stype = parsed[0].type
        self.truncate = bool(tokens) and tokens[0][0].upper() == "TRUNCATE"
        match stype:
            case duckdb.StatementType.EXPLAIN:
                self.statement(_after_explain(text), depth + 1)
            case duckdb.StatementType.PREPARE:
                self.statement(_after_as(text), depth + 1)
            case duckdb.StatementType.EXECUTE:
                name, args = _execute_parts(text)
                inner = self.prepared.get(name.lower())
                if inner is None:
                    raise denied(f'prepared statement "{name}" was not prepared in this session')
                if args:
                    self.statement(f"SELECT {args}", depth + 1)
                self.statement(inner, depth + 1)
            case duckdb.StatementType.COPY:
                self._copy(text)
            case (duckdb.StatementType.SELECT | duckdb.StatementType.INSERT
                  | duckdb.StatementType.UPDATE | duckdb.StatementType.DELETE
                  | duckdb.StatementType.CREATE | duckdb.StatementType.DROP
                  | duckdb.StatementType.ALTER | duckdb.StatementType.MERGE_INTO
                  | duckdb.StatementType.CALL | duckdb.StatementType.SET
                  | duckdb.StatementType.TRANSACTION):
                self._plan(text)
            case _:
                raise denied(f"{stype.name} statements need a superuser")

    def _sql_running(self, tokens: list[tuple[str, str]]) -> None:
        """Calls of functions that run SQL given as data, by DuckDB's tokenizer (a quoted or
        qualified name is the same name): the plan shows what they bound to, not that
        they were called."""
        for i, (word, kind) in enumerate(tokens):
            if kind in ("keyword", "identifier") and _name(word) in SQL_RUNNING and \
                    i + 1 < len(tokens) and tokens[i + 1][0] == "(":
                raise denied(f"{_name(word)}() runs SQL given as data: it needs a superuser")

    def _copy(self, text: str) -> None:
        plan = self._serialize(text, allow_unserializable=True)
        if plan is None:
            # COPY ... FROM a file: DuckDB's CSV reader does not serialize
            raise denied("COPY from a server file needs a superuser",
                         hint="send the rows from the client: COPY ... FROM STDIN (\\copy)")
        self._walk_plans(plan)

    def _plan(self, text: str) -> None:
        plan = self._serialize(text, allow_unserializable=False)
        assert plan is not None
        self._walk_plans(plan)

    def _serialize(self, text: str, allow_unserializable: bool) -> dict[str, Any] | None:
        raw = self.cursor.execute(
            "SELECT json_serialize_plan(?, optimize := false)", [text]).fetchall()[0][0]
        plan: dict[str, Any] = json.loads(str(raw))
        if not plan.get("error"):
            return plan
        message = str(plan.get("error_message", ""))
        if "serializ" in message.lower() or "not implemented" in message.lower() \
                or "cannot plan" in message.lower():
            if allow_unserializable:
                return None
            raise denied("a statement whose plan cannot be checked needs a superuser",
                         hint=f"DuckDB: {message.splitlines()[0] if message else 'no plan'}")
        if str(plan.get("error_type", "")) in _OWN_ERRORS:
            # an error the statement itself would raise: let the binder raise it, typed
            _seam.bind(self.cursor, text)
        raise denied("a statement whose plan cannot be checked needs a superuser")

    # -- plans ----------------------------------------------------------------------
    def _walk_plans(self, plan: dict[str, Any]) -> None:
        for op in plan.get("plans", []):
            self._operator(op)

    def _operator(self, op: dict[str, Any]) -> None:
        kind = str(op.get("type", ""))
        if kind not in _OPERATORS:
            raise denied(f"{kind.removeprefix('LOGICAL_').replace('_', ' ')} needs a superuser")
        match kind:
            case "LOGICAL_GET":
                self._get(op)
            case "LOGICAL_SET" | "LOGICAL_RESET":
                self._set(op)
            case "LOGICAL_COPY_TO_FILE":
                self._file(str(op.get("file_path", "")))
            case "LOGICAL_INSERT" | "LOGICAL_UPDATE" | "LOGICAL_DELETE" | "LOGICAL_MERGE_INTO":
                path = _path(op.get("table_info", {}))
                self._target(path, "write into")
                privilege = {"LOGICAL_INSERT": "INSERT", "LOGICAL_UPDATE": "UPDATE",
                             "LOGICAL_DELETE": "TRUNCATE" if self.truncate else "DELETE",
                             "LOGICAL_MERGE_INTO": "UPDATE"}[kind]
                self._table(privilege, path)
            case "LOGICAL_CREATE_TABLE" | "LOGICAL_CREATE_VIEW" | "LOGICAL_CREATE_MACRO" \
                    | "LOGICAL_CREATE_SCHEMA" | "LOGICAL_CREATE_SEQUENCE" \
                    | "LOGICAL_CREATE_TYPE" | "LOGICAL_CREATE_INDEX" | "LOGICAL_DROP" \
                    | "LOGICAL_ALTER":
                self._ddl(kind, op.get("info", {}))
        if kind == "LOGICAL_CREATE_VIEW":
            # the plan holds no query for a view: its SELECT is checked as itself
            self.statement(_after_as(str((op.get("info") or {}).get("sql", ""))), 1)
        for expr in _expressions(op):
            self._expression(expr)
        if kind == "LOGICAL_DELETE" and self.truncate:
            return   # TRUNCATE's only child scans the table it empties: no SELECT needed
        for child in op.get("children", []):
            self._operator(child)

    def _get(self, op: dict[str, Any]) -> None:
        qname = [str(p) for p in (op.get("qname") or {}).get("path", [])]
        name = qname[-1].lower() if qname else ""
        hidden = _TABLE_FUNCTIONS.get(name)
        if hidden is None:
            raise denied(f"table function {name}() needs a superuser")
        if name == "seq_scan":
            self._table("SELECT", _path(op.get("function_data") or {}))
        if hidden:
            names = [str(n).lower() for n in op.get("names", [])]
            for col in op.get("column_indexes", []):
                index = col.get("index") if isinstance(col, dict) else None
                if isinstance(index, int) and 0 <= index < len(names) and names[index] in hidden:
                    raise denied(f"column {names[index]} of {name}() needs a superuser")

    def _set(self, op: dict[str, Any]) -> None:
        name = str(op.get("name", "")).lower()
        if op.get("scope") == "VARIABLE":
            if name.startswith(RESERVED_PREFIX):
                raise denied(f'variable "{name}" is reserved for the server')
            return
        if name not in _SETTABLE:
            raise denied(f'SET and RESET of DuckDB setting "{name}" need a superuser')

    def _file(self, path: str) -> None:
        if not self.subject.file_access:
            raise denied("writing files needs a superuser or the FILEACCESS attribute")
        folder = self.policy.file_dir
        if not folder:
            raise denied("no import/export directory is configured",
                         hint="the operator sets --file-dir")
        resolved = os.path.realpath(os.path.join(folder, path))
        if os.path.commonpath([resolved, os.path.realpath(folder)]) != \
                os.path.realpath(folder):
            raise denied("files outside the import/export directory are out of reach")

    def _table(self, privilege: str, path: list[str]) -> None:
        if len(path) == 3 and path[0].lower() not in ("temp", *RESERVED_CATALOGS):
            self.policy.table_check(privilege, (path[0], path[1], path[2]))

    def _target(self, path: list[str], what: str) -> None:
        if path and path[0].lower() in RESERVED_CATALOGS and what != "read":
            raise denied(f"cannot {what} {'.'.join(path)}: it belongs to the server")

    def _ddl(self, kind: str, info: dict[str, Any]) -> None:
        path = _path(info)
        name = (str(info.get("name") or (path[-1] if path else ""))).lower()
        catalog = path[0].lower() if path else str(info.get("catalog", "")).lower()
        if catalog in RESERVED_CATALOGS:
            raise denied(f"{'.'.join(path) or name} belongs to the server")
        temporary = catalog == "temp" or bool(info.get("temporary"))
        replace = info.get("on_conflict") == "REPLACE_ON_CONFLICT"
        if kind == "LOGICAL_CREATE_SCHEMA":
            # [database, schema, ''] normally; a schema named like a catalog comes as
            # [name, '']
            schema = path[1] if len(path) == 3 else next((p for p in path if p), name)
            if len(path) != 3:
                raise denied(f'schema name "{schema}" is reserved')
            if schema.lower() == "main" and path[0].lower() not in RESERVED_CATALOGS and \
                    info.get("on_conflict") == "IGNORE_ON_CONFLICT":
                return   # CREATE SCHEMA IF NOT EXISTS public: main always exists, a no-op
            # names of catalogs too: a schema "temp" would make others' temp.x ambiguous
            if schema.lower() in ("information_schema", "temp", "main", "system",
                                  path[0].lower()) or \
                    schema.lower().startswith((RESERVED_PREFIX, "pg_")):
                raise denied(f'schema name "{schema}" is reserved')
            if info.get("on_conflict") != "IGNORE_ON_CONFLICT":
                self.effects.append(Effect("create", "schema", (path[0], schema, "")))
            return
        if kind == "LOGICAL_DROP" and str(info.get("type")) == "SCHEMA_ENTRY":
            if len(path) >= 2:
                schema_path = (path[0], path[1], "")
                self.policy.owner_check(schema_path, "schema", False)
                self.effects.append(Effect("drop", "schema", schema_path))
            return
        if kind == "LOGICAL_CREATE_INDEX":
            if len(path) == 3 and not temporary:
                table = (path[0], path[1], str(info.get("table", "")))
                self.policy.owner_check(table, "table", False)
            return
        if name.startswith(RESERVED_PREFIX) or name in self.policy.reserved_names():
            raise denied(f'"{name}" is the name of a built-in or server object: '
                         "another user's statements would change meaning",
                         hint="choose another name")
        if temporary or len(path) != 3:
            return   # the session's own temporary objects; an IF EXISTS of nothing
        target: Path = (path[0], path[1], path[2])
        what = _KINDS.get(str(info.get("type", "")), "object")
        if kind == "LOGICAL_DROP":
            self.policy.owner_check(target, what, False)
            self.effects.append(Effect("drop", what, target))
        elif kind == "LOGICAL_ALTER":
            self.policy.owner_check(target, what, False)
            new_name = str(info.get("new_table_name") or info.get("new_view_name") or "")
            if new_name and info.get("alter_table_type") in (None, "RENAME_TABLE"):
                self.effects.append(Effect("rename", what, target, new_name))
        else:
            self.policy.create_check(target[0], target[1])
            if replace:   # replacing another user's object is dropping it
                self.policy.owner_check(target, what, True)
            if info.get("on_conflict") != "IGNORE_ON_CONFLICT":
                self.effects.append(Effect("create", what, target, replace=replace))

    def _expression(self, expr: Any) -> None:
        for node in _walk(expr):
            cls = node.get("expression_class")
            if cls not in ("BOUND_FUNCTION", "BOUND_AGGREGATE", "BOUND_WINDOW"):
                continue
            qname = [str(p) for p in (node.get("qname") or {}).get("path", [])]
            name = qname[-1].lower() if qname else ""
            if name in _SCALAR_REFUSED:
                raise denied(f"{name}() needs a superuser")
            if name == "explain_model":
                self._explain_model(node)
                continue
            if name == "evaluate_model":
                self._evaluate_model(node)
                continue
            if name in SEQUENCE_FUNCTIONS:
                self._sequence(name, node)
                continue
            if name == "current_setting":
                setting = _constant_string(node)
                if setting is None or any(w in setting.lower() for w in _PATH_SETTING_WORDS):
                    raise denied("current_setting() of this setting needs a superuser",
                                 hint="client parameters are answered by SHOW")
                continue
            self.policy.model_check(name)

    def _sequence(self, name: str, node: dict[str, Any]) -> None:
        """nextval/currval/setval: the sequence DuckDB bound the call to (a name given at
        run time, which the plan does not show, needs a superuser)."""
        info = (node.get("function_data") or {}).get("sequence_create_info") or {}
        path = [str(p) for p in (info.get("qualified_name") or {}).get("path", [])]
        if len(path) != 3:
            raise denied(f"{name}() of a sequence named at run time needs a superuser",
                         hint="name the sequence as a constant")
        if path[0].lower() in RESERVED_CATALOGS:
            raise denied(f"{'.'.join(path)} belongs to the server")
        if path[0].lower() != "temp":
            self.policy.sequence_check(name, (path[0], path[1], path[2]))

    def _explain_model(self, node: dict[str, Any]) -> None:
        model = _constant_string(node)
        if model is None:
            raise denied("EXPLAIN_MODEL takes a model name as a constant for non-superusers")
        self.policy.model_check("explain_model:" + model)


    def _evaluate_model(self, node: dict[str, Any]) -> None:
        """evaluate_model('m', 'query') runs the query itself: both must be constants, the
        user needs EXECUTE on the model, and the query is checked as their own (see
        server.models.evaluate.register_evaluate_model)."""
        model, query = _constant_string(node), _constant_string(node, 1)
        if model is None or query is None:
            raise denied("evaluate_model takes a model name and a query as constants for "
                         "non-superusers")
        self.policy.model_check("evaluate_model:" + model)
        # the function runs the query on a connection of its own (no temporary objects,
        # the default search path): it is checked as that connection binds it
        fresh = self.cursor.cursor()
        try:
            inner = _Check(fresh, self.subject, self.policy, {})
            inner.statement(query, depth=1)
        finally:
            fresh.close()
        self.effects += inner.effects


# -- helpers ------------------------------------------------------------------------------
def _constant_string(node: dict[str, Any], argument: int = 0) -> str | None:
    """An argument of a bound call when it is a constant string."""
    children = node.get("children") or []
    value = children[argument] if len(children) > argument else {}
    constant = value.get("value") if value.get("expression_class") == "BOUND_CONSTANT" \
        else None
    if not isinstance(constant, dict) or constant.get("is_null") or \
            not isinstance(constant.get("value"), str):
        return None
    return str(constant["value"])


def _expressions(op: dict[str, Any]) -> Iterator[Any]:
    for key, value in op.items():
        if key in ("children", "info", "table_info", "function_data"):
            continue
        if isinstance(value, (dict, list)):
            yield value


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expression_class" in item or "class" in item:
                yield item
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(item)


def _path(info: Any) -> list[str]:
    if not isinstance(info, dict):
        return []
    qualified = info.get("qualified_name") or {}
    path = [str(p) for p in qualified.get("path", [])] if isinstance(qualified, dict) else []
    if path:
        return path
    return [str(info[k]) for k in ("catalog", "schema", "name", "table") if info.get(k)]


def _tokens(text: str) -> list[tuple[str, str]]:
    """(text, kind) of DuckDB's tokens (kind: keyword, identifier, string_const, ...)."""
    raw = duckdb.tokenize(text)
    out: list[tuple[str, str]] = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(text)
        word = text[start:end].rstrip()
        label = str(kind).rsplit(".", 1)[-1]
        if label == "comment":
            continue   # a comment between a name and its parenthesis changes nothing
        if label == "operator" and len(word) > 1 and word[0] in "(),;":
            word = word[0]   # DuckDB reports '((' runs as one operator token
        out.append((word, label))
    return out


def _name(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] == '"':
        return word[1:-1].replace('""', '"').lower()
    return word.lower()


def _after_explain(text: str) -> str:
    """The statement an EXPLAIN [ANALYZE] [VERBOSE] [(options)] wraps."""
    raw = duckdb.tokenize(text)
    i = 1
    while i < len(raw) and text[raw[i][0]:].split(None, 1)[0].upper().rstrip("(") in (
            "ANALYZE", "ANALYSE", "VERBOSE"):
        i += 1
    if i < len(raw) and text[raw[i][0]] == "(":
        depth = 0
        while i < len(raw):
            ch = text[raw[i][0]]
            depth += ch == "("
            depth -= ch == ")"
            i += 1
            if depth == 0:
                break
    if i >= len(raw):
        raise denied("EXPLAIN of nothing")
    return text[raw[i][0]:]


def _after_as(text: str) -> str:
    """The statement a PREPARE name [(types)] AS wraps."""
    raw = duckdb.tokenize(text)
    depth = 0
    for i, (start, _kind) in enumerate(raw):
        word = text[start:raw[i + 1][0] if i + 1 < len(raw) else len(text)].strip()
        if word.startswith("("):
            depth += word.count("(")
        elif word.startswith(")"):
            depth -= word.count(")")
        elif depth == 0 and word.upper() == "AS" and i + 1 < len(raw):
            return text[raw[i + 1][0]:]
    raise denied("PREPARE without AS")


def _execute_parts(text: str) -> tuple[str, str]:
    """The name and the argument list text of EXECUTE name [(args)]."""
    raw = duckdb.tokenize(text)
    if len(raw) < 2:
        raise denied("EXECUTE of nothing")
    end = raw[2][0] if len(raw) > 2 else len(text)
    name = _name(text[raw[1][0]:end].strip())
    rest = text[end:].strip()
    if rest.startswith("(") and rest.endswith(")"):
        return name, rest[1:-1]
    if rest:
        raise denied("EXECUTE with arguments DuckDB would read differently")
    return name, ""


def prepared_name(text: str) -> tuple[str, str]:
    """(name, statement) of a PREPARE name [(types)] AS statement, as DuckDB tokenizes it."""
    raw = duckdb.tokenize(text)
    if len(raw) < 2:
        raise denied("PREPARE of nothing")
    end = raw[2][0] if len(raw) > 2 else len(text)
    return _name(text[raw[1][0]:end].strip()), _after_as(text)
