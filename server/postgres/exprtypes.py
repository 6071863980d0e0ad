"""Result column types PostgreSQL gives where DuckDB's result type does not tell them,
from the select list of the statement.

DuckDB has one JSON type (``jsonb`` is ``JSON`` here, and a type alias does not
survive into result types), and some of PostgreSQL's integer functions are
DuckDB's ``BIGINT`` ones that no macro can stand in for (``ntile`` is a window
function; ``position(a IN b)`` is SQL syntax DuckDB's grammar turns into its
own built-in). So, as ``server.postgres.colnames`` names result columns from
DuckDB's parse tree, the type of a select-list item is read from the item's
top-level expression:

- ``jsonb`` (OID 3802) for a cast to ``jsonb``, a call of one of
  PostgreSQL's ``jsonb_*`` functions that return jsonb (``jsonb_build_object``,
  ``to_jsonb``, ``jsonb_agg``, ``jsonb_set`` ...), and ``->``, ``||`` and ``-``
  whose left operand is jsonb by the same rule (``#>``, which DuckDB's parser
  does not know, is read as ``->``);
- ``integer`` (OID 23) for ``position(...)``, ``ntile(...) OVER (...)``,
  ``date - date`` (a date literal, cast or ``current_date`` on one side: with
  a date there, DuckDB's BIGINT difference has dates on both), and the column
  of ``generate_series`` of int4 constants in FROM (whose column aliases are
  checked: one column, 42P10 for more aliases, as in PostgreSQL);
- ``double precision`` (OID 701) for ``real`` ``+``, ``-``, ``*`` an integer or
  numeric constant or cast (DuckDB's FLOAT: PostgreSQL computes it in float8);
- ``regtype`` (OID 2206) for ``pg_typeof(...)`` (its value is the type's name,
  ``server.postgres.catalog``'s ``pg_typeof`` macro);
- ``name`` (OID 19) for the columns of PostgreSQL's information_schema views of
  its ``sql_identifier`` domain (``table_name``, ``column_name`` ...: the names
  ending in ``_catalog``, ``_schema``, ``_name``), ``varchar`` for their other
  text columns (``character_data``, ``yes_or_no``), read by name (``*`` over a
  view keeps DuckDB's types);
- ``varchar`` (OID 1043) for a cast to ``varchar``/``character varying``
  (DuckDB's tree says VARCHAR for ``char(n)`` too: the type's text is read);
- a column of a subquery or CTE in FROM, by name or through ``*``, the type
  read for it there.

A type read here is only ever applied where DuckDB's own type of the column is
the one it stands for (``JSON``, ``BIGINT``, ``FLOAT``, ``VARCHAR``): the
statement never turns a column of another type into jsonb. Only the item
itself is typed: ``ntile(2) OVER () + 1`` stays DuckDB's BIGINT. Columns
declared ``jsonb`` in a table are ``JSON`` like those declared ``json``
(DuckDB's catalog keeps no trace of the difference): they are sent as ``json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from server.errors import ServerError
from server.postgres.catalog_views import INFORMATION_SCHEMA
from server.postgres.colnames import parse
from server.protocol.types import Oid
from server.sql.text import tokenize

Node = dict[str, Any]

#: the words a statement holds when this module may type one of its columns (others
#: are never parsed)
TRIGGERS = ("jsonb", "position", "ntile", "pg_typeof", "date", "generate_series",
            "information_schema", "varchar", "varying", "char", "bpchar")
#: DuckDB's result type that makes a statement worth a look whatever its words (compared
#: as a type: turning each column's type into its name costs more than the rest)
_TRIGGER_TYPE = duckdb.sqltype("FLOAT")

#: PostgreSQL's functions returning jsonb (the json ones return json, as DuckDB's JSON is)
JSONB_FUNCTIONS = frozenset({
    "jsonb_build_object", "jsonb_build_array", "to_jsonb", "jsonb_agg", "jsonb_object_agg",
    "jsonb_set", "jsonb_set_lax", "jsonb_insert", "jsonb_strip_nulls", "jsonb_array_elements",
    "jsonb_path_query", "jsonb_path_query_first", "jsonb_path_query_array", "jsonb_extract_path",
    "jsonb_object", "jsonb_concat", "jsonb_delete", "jsonb_delete_path"})
#: operators whose result is jsonb when their left operand is (-> is a LAMBDA node to DuckDB)
_JSONB_OPERATORS = frozenset({"||", "-", "->"})   # (#> is read as ->: _arrows)
#: functions (by name) -> PostgreSQL's type of their result
_FUNCTIONS: dict[str, Oid] = {"position": Oid.INT4, "ntile": Oid.INT4, "pg_typeof": Oid.REGTYPE}
#: DuckDB's result type that each type read here stands for
STANDS_FOR: dict[Oid, str] = {Oid.JSONB: "JSON", Oid.INT4: "BIGINT", Oid.REGTYPE: "VARCHAR",
                              Oid.FLOAT8: "FLOAT", Oid.NAME: "VARCHAR", Oid.VARCHAR: "VARCHAR",
                              Oid.BPCHAR: "VARCHAR"}
_INT4_MAX = 2 ** 31 - 1
#: constants of these kinds are integer or numeric to PostgreSQL
_NUMBER_LITERALS = frozenset({"INTEGER", "BIGINT", "HUGEINT", "DECIMAL", "NUMERIC"})
_NUMBER_TYPES = frozenset({"int", "integer", "int2", "int4", "int8", "smallint", "bigint",
                           "numeric", "decimal"})
#: PostgreSQL's information_schema columns of its sql_identifier domain (over name) have
#: these names; its other text columns (character_data, yes_or_no) are varchar
_IDENTIFIER_SUFFIXES = ("_catalog", "_schema", "_name")
_IDENTIFIERS = frozenset({"schema_owner", "dtd_identifier"})

#: one type per select-list item (None: DuckDB's); ``_STAR`` stands for the columns of
#: a ``*`` whose number only the engine knows (the items after it are then matched from
#: the end)
Slot = Oid | None
_STAR = "*"


def _jsonb(node: Node) -> bool:
    kind = node.get("class")
    if kind == "CAST":
        type_expr = node.get("type_expr") or {}
        return str(type_expr.get("type_name", "")).lower() == "jsonb" and \
            not type_expr.get("children")
    if kind == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        args = node.get("arguments") or []
        if node.get("is_operator"):
            return name in _JSONB_OPERATORS and bool(args) and \
                _jsonb(args[0].get("expression") or {})
        return name in JSONB_FUNCTIONS
    if kind == "LAMBDA" and node.get("syntax_type") == "SINGLE_ARROW":
        return _jsonb(node.get("lhs") or {})   # x -> 'k': DuckDB's parser reads a lambda
    return False


def _string_cast(node: Node, raw: bytes) -> Oid | None:
    """``varchar`` for a cast to varchar (``character varying``, with or without a
    length), ``bpchar`` for one to ``char(n)``/``character(n)``/``bpchar``: DuckDB's tree
    says VARCHAR for all of them and for text's synonyms, so the type's text is read
    (the tree's positions are byte offsets into the statement)."""
    if node.get("class") != "CAST":
        return None
    type_expr = node.get("type_expr") or {}
    start, length = type_expr.get("query_location"), type_expr.get("query_location_length")
    if type_expr.get("type_name") != "VARCHAR" or not isinstance(start, int) or \
            not isinstance(length, int) or start + length > len(raw):
        return None
    words = raw[start:start + length].decode(errors="replace").lower().split("(")[0].split()
    if words[:1] == ["varchar"] or words[-1:] == ["varying"]:
        return Oid.VARCHAR
    if words in (["char"], ["character"], ["bpchar"]):
        return Oid.BPCHAR
    return None


def _literal_kind(node: Node) -> str:
    return str((node.get("literal") or {}).get("kind", "")) \
        if node.get("class") == "CONSTANT" else ""


def _date(node: Node) -> bool:
    """A date to the eye: a cast to date (``DATE '...'``, ``x::date``), current_date."""
    match node.get("class"):
        case "CAST":
            type_expr = node.get("type_expr") or {}
            return str(type_expr.get("type_name", "")).lower() == "date"
        case "COLUMN_REF":
            return [str(n).lower() for n in node.get("column_names") or ()] == ["current_date"]
        case "FUNCTION":
            return str(node.get("function_name", "")).lower() == "current_date"
    return False


def _number(node: Node) -> bool:
    """An integer or numeric to the eye: a constant, a cast to one of these types."""
    if node.get("class") == "CAST":
        type_expr = node.get("type_expr") or {}
        return str(type_expr.get("type_name", "")).lower() in _NUMBER_TYPES
    return _literal_kind(node) in _NUMBER_LITERALS


def _operator(name: str, args: list[Node]) -> Slot:
    """``date - date`` is integer (DuckDB's is BIGINT: with a date on either side, a
    BIGINT difference has dates on both); ``real`` with an integer or numeric is
    ``double precision`` (DuckDB's is FLOAT: with a number on one side, a FLOAT result
    has a real on the other; ``/`` is not read here)."""
    if len(args) != 2:
        return None
    if name == "-" and any(_date(a) for a in args):
        return Oid.INT4
    if name in ("+", "-", "*") and any(_number(a) for a in args):
        return Oid.FLOAT8
    return None


def _slot(node: Node, inner: _Scope, raw: bytes) -> Slot:
    if _jsonb(node):
        return Oid.JSONB
    if (string_type := _string_cast(node, raw)) is not None:
        return string_type
    kind = node.get("class")
    if kind in ("FUNCTION", "WINDOW") and not node.get("is_operator"):
        return _FUNCTIONS.get(str(node.get("function_name", "")).lower())
    if kind == "FUNCTION":
        return _operator(str(node.get("function_name", "")),
                         [a.get("expression") or {} for a in node.get("arguments") or ()])
    if kind == "COLUMN_REF" and node.get("column_names"):
        return inner.get([str(n).lower() for n in node["column_names"]])
    return None


def _item_name(item: Node) -> str:
    if item.get("alias"):
        return str(item["alias"]).lower()
    if item.get("class") == "COLUMN_REF" and item.get("column_names"):
        return str(item["column_names"][-1]).lower()
    return str(item.get("function_name", "")).lower()


def _series(function: Node) -> bool:
    """generate_series of int4 constants: integer (DuckDB's is BIGINT)."""
    args = [a.get("expression") or {} for a in function.get("arguments") or ()]
    return str(function.get("function_name", "")).lower() == "generate_series" and \
        len(args) in (2, 3) and all(
            _literal_kind(a) == "INTEGER" and abs(int((a.get("literal") or {}).get("text", 0)))
            <= _INT4_MAX for a in args)


def _view_column(column: str) -> Oid:
    """PostgreSQL's type of a text column of one of its information_schema views:
    ``name`` (its sql_identifier domain), else ``varchar`` (character_data, yes_or_no)."""
    return Oid.NAME if column in _IDENTIFIERS or column.endswith(_IDENTIFIER_SUFFIXES) \
        else Oid.VARCHAR


@dataclass
class _Scope:
    """The columns of a FROM clause read here: by position (for a ``*``), by name (bare
    and qualified by their item's alias, ``g.a``), and the aliases of information_schema
    views (whose columns are typed by their names)."""
    positions: list[Slot | str] = field(default_factory=lambda: [_STAR])
    named: dict[str, Slot] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    items: int = 1

    def get(self, names: list[str]) -> Slot:
        if len(names) > 1 and names[-2] in self.views:
            return _view_column(names[-1])
        found = self.named.get(".".join(names[-2:]))
        if found is not None or len(names) > 1:
            return found
        if self.items == 1 and self.views:   # one view in FROM: its names are its columns'
            return _view_column(names[-1])
        return self.named.get(names[-1])


def _named(alias: str, by_name: dict[str, Slot]) -> dict[str, Slot]:
    return {**by_name, **{f"{alias}.{n}": s for n, s in by_name.items()}} if alias else by_name


def _from(table: Node, ctes: dict[str, Node], raw: bytes) -> _Scope:
    """The scope of a FROM item: a subquery's, a CTE's and an int4 generate_series's
    columns by their types read here, a table's as DuckDB types them (a ``*`` of unknown
    width), but those of PostgreSQL's information_schema views by their names."""
    alias = str(table.get("alias") or "").lower()
    aliases = [str(a).lower() for a in table.get("column_name_alias") or ()]
    match table.get("type"):
        case "JOIN":
            left = _from(table.get("left") or {}, ctes, raw)
            right = _from(table.get("right") or {}, ctes, raw)
            both = left.named.keys() & right.named.keys()
            return _Scope(left.positions + right.positions,
                          {n: s for side in (left.named, right.named)
                           for n, s in side.items() if n not in both},
                          {**left.views, **right.views}, left.items + right.items)
        case "TABLE_FUNCTION":
            function = table.get("function") or {}
            if len(aliases) > 1 and \
                    str(function.get("function_name", "")).lower() == "generate_series":
                # DuckDB names the one column and ignores the other aliases
                raise ServerError(f'table "{alias or "generate_series"}" has 1 columns '
                                  f"available but {len(aliases)} columns specified",
                                  sqlstate="42P10")
            if not _series(function):
                return _Scope()
            name = aliases[0] if aliases else alias or "generate_series"
            return _Scope([Oid.INT4], _named(alias or "generate_series", {name: Oid.INT4}))
        case "BASE_TABLE" if str(table.get("schema_name", "")).lower() == "information_schema":
            view = str(table.get("table_name", "")).lower()
            if view not in INFORMATION_SCHEMA or aliases:
                return _Scope()
            return _Scope(views={alias or view: view})
    query: Node | None = None
    if table.get("type") == "SUBQUERY":
        query = (table.get("subquery") or {}).get("node")
    elif table.get("type") == "BASE_TABLE" and not table.get("schema_name"):
        query = ctes.get(str(table.get("table_name", "")).lower())
        alias = alias or str(table.get("table_name", "")).lower()
    if not isinstance(query, dict) or query.get("type") != "SELECT_NODE" or aliases:
        return _Scope()
    slots = _query(query, ctes, raw) or [_STAR]
    names = [_item_name(item) for item in query.get("select_list", [])]
    by_name: dict[str, Slot] = {n: s for n, s in zip(names, slots, strict=False)
                                if isinstance(s, Oid) and n}
    return _Scope(slots, _named(alias, by_name))


def _query(node: Node, ctes: dict[str, Node], raw: bytes) -> list[Slot | str] | None:
    match node.get("type"):
        case "SELECT_NODE":
            scope = dict(ctes)
            for entry in (node.get("cte_map") or {}).get("map", []):
                value = entry.get("value") or {}
                if not value.get("aliases"):
                    scope[str(entry.get("key", "")).lower()] = value.get("query_node") or {}
            inner = _from(node.get("from_table") or {}, scope, raw)
            out: list[Slot | str] = []
            for item in node.get("select_list", []):
                if item.get("class") != "STAR":
                    out.append(_slot(item, inner, raw))
                elif item.get("relation_name") or item.get("exclude_list") or \
                        item.get("replace_list") or item.get("columns") or item.get("expr"):
                    out.append(_STAR)
                else:
                    out.extend(inner.positions)
            return out
        case "SET_OPERATION_NODE":
            first = node.get("left") or (node.get("children") or [None])[0]
            return _query(first, ctes, raw) if isinstance(first, dict) else None
    return None


def _arrows(text: str) -> str | None:
    """The text with jsonb's path operators ``#>``/``#>>`` (not DuckDB's syntax) as
    ``->``/``->>``, of the same length, for reading the select list's types only;
    None when it has none."""
    try:
        tokens = tokenize(text)
    except TokenError:
        return None
    hashes = [t for t in tokens if t.token_type in (TokenType.HASH_ARROW, TokenType.DHASH_ARROW)]
    if not hashes:
        return None
    chars = list(text)
    for tok in hashes:
        chars[tok.start] = "-"
    return "".join(chars)


@functools.lru_cache(maxsize=512)
def _slots(text: str, duckdb_text: str | None) -> tuple[Slot | str, ...] | None:
    for candidate in (text, _arrows(text) if "#>" in text else None, duckdb_text):
        if candidate is None:
            continue
        try:
            tree = json.loads(parse(candidate))
        except duckdb.Error:
            continue
        if not isinstance(tree, dict) or tree.get("error") or \
                len(tree.get("statements") or ()) != 1:
            continue
        found = _query(tree["statements"][0].get("node") or {}, {}, candidate.encode())
        if found is None:
            return None
        return tuple(found) if any(isinstance(s, Oid) for s in found) else None
    return None


@functools.lru_cache(maxsize=1024)
def _triggered(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in TRIGGERS)


def pg_types(text: str, duckdb_text: str | None, duckdb_types: Sequence[object]
             ) -> tuple[Oid | None, ...] | None:
    """PostgreSQL's type of each result column of the statement where DuckDB's type
    (``duckdb_types``) does not tell it, None for the others; None when there is none."""
    if not _triggered(text) and _TRIGGER_TYPE not in duckdb_types:
        return None
    slots = _slots(text, duckdb_text if duckdb_text != text else None)
    if slots is None:
        return None
    n = len(duckdb_types)
    stars = [i for i, s in enumerate(slots) if s == _STAR]
    head = slots[:stars[0]] if stars else slots
    tail = slots[stars[-1] + 1:] if stars else ()
    if (len(head) + len(tail) > n) if stars else len(head) != n:
        return None
    out: list[Oid | None] = [None] * n
    for i, slot in list(enumerate(head)) + list(enumerate(tail, start=n - len(tail))):
        if isinstance(slot, Oid) and str(duckdb_types[i]) == STANDS_FOR[slot]:
            out[i] = slot
    return tuple(out) if any(out) else None
