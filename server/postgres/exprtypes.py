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
  ``to_jsonb``, ``jsonb_agg``, ``jsonb_set`` ...), and ``->``, ``#>``, ``||``
  and ``-`` whose left operand is jsonb by the same rule;
- ``integer`` (OID 23) for ``position(...)`` and ``ntile(...) OVER (...)``;
- ``regtype`` (OID 2206) for ``pg_typeof(...)`` (its value is the type's name,
  ``server.postgres.catalog``'s ``pg_typeof`` macro).

A type read here is only ever applied where DuckDB's own type of the column is
the one it stands for (``JSON``, ``BIGINT``, ``VARCHAR``): the statement never
turns a column of another type into jsonb. Columns declared ``jsonb`` in a
table are ``JSON`` like those declared ``json`` (DuckDB's catalog keeps no
trace of the difference): they are sent as ``json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import duckdb

from server.postgres.colnames import parse
from server.protocol.types import Oid

Node = dict[str, Any]

#: the words a statement holds when this module may type one of its columns (others
#: are never parsed)
TRIGGERS = ("jsonb", "position", "ntile", "pg_typeof")

#: PostgreSQL's functions returning jsonb (the json ones return json, as DuckDB's JSON is)
JSONB_FUNCTIONS = frozenset({
    "jsonb_build_object", "jsonb_build_array", "to_jsonb", "jsonb_agg", "jsonb_object_agg",
    "jsonb_set", "jsonb_set_lax", "jsonb_insert", "jsonb_strip_nulls", "jsonb_array_elements",
    "jsonb_path_query", "jsonb_path_query_first", "jsonb_path_query_array", "jsonb_extract_path",
    "jsonb_object", "jsonb_concat", "jsonb_delete", "jsonb_delete_path"})
#: operators whose result is jsonb when their left operand is (-> is a LAMBDA node to DuckDB)
_JSONB_OPERATORS = frozenset({"||", "-", "->", "#>"})
#: functions (by name) -> (PostgreSQL's result type, DuckDB's result type it stands for)
_FUNCTIONS: dict[str, tuple[Oid, str]] = {
    "position": (Oid.INT4, "BIGINT"),
    "ntile": (Oid.INT4, "BIGINT"),
    "pg_typeof": (Oid.REGTYPE, "VARCHAR"),
}
#: DuckDB's result type that each type read here stands for
STANDS_FOR: dict[Oid, str] = {Oid.JSONB: "JSON", Oid.INT4: "BIGINT", Oid.REGTYPE: "VARCHAR"}

#: one type per select-list item (None: DuckDB's), or None for a ``*`` whose width only
#: the engine knows (the items after it are then matched from the end)
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


def _slot(node: Node, inner: dict[str, Slot]) -> Slot:
    if _jsonb(node):
        return Oid.JSONB
    kind = node.get("class")
    if kind in ("FUNCTION", "WINDOW") and not node.get("is_operator"):
        found = _FUNCTIONS.get(str(node.get("function_name", "")).lower())
        if found is not None:
            return found[0]
    if kind == "COLUMN_REF" and node.get("column_names"):
        return inner.get(str(node["column_names"][-1]).lower())
    return None


def _item_name(item: Node) -> str:
    if item.get("alias"):
        return str(item["alias"]).lower()
    if item.get("class") == "COLUMN_REF" and item.get("column_names"):
        return str(item["column_names"][-1]).lower()
    return str(item.get("function_name", "")).lower()


def _from(table: Node, ctes: dict[str, Node]) -> tuple[list[Slot | str], dict[str, Slot]]:
    """The types of the columns of one subquery or CTE in FROM (by position, for a
    ``*``, and by name); none for anything else (a table's columns are DuckDB's)."""
    query: Node | None = None
    if table.get("type") == "SUBQUERY":
        query = (table.get("subquery") or {}).get("node")
    elif table.get("type") == "BASE_TABLE" and not table.get("schema_name"):
        query = ctes.get(str(table.get("table_name", "")).lower())
    if not isinstance(query, dict) or query.get("type") != "SELECT_NODE" or \
            table.get("column_name_alias"):
        return [_STAR], {}
    slots = _query(query, ctes) or [_STAR]
    names = [_item_name(item) for item in query.get("select_list", [])]
    by_name: dict[str, Slot] = {n: s for n, s in zip(names, slots, strict=False)
               if isinstance(s, Oid) and n}
    return slots, by_name


def _query(node: Node, ctes: dict[str, Node]) -> list[Slot | str] | None:
    match node.get("type"):
        case "SELECT_NODE":
            scope = dict(ctes)
            for entry in (node.get("cte_map") or {}).get("map", []):
                value = entry.get("value") or {}
                if not value.get("aliases"):
                    scope[str(entry.get("key", "")).lower()] = value.get("query_node") or {}
            star, inner = _from(node.get("from_table") or {}, scope)
            out: list[Slot | str] = []
            for item in node.get("select_list", []):
                if item.get("class") != "STAR":
                    out.append(_slot(item, inner))
                elif item.get("relation_name") or item.get("exclude_list") or \
                        item.get("replace_list") or item.get("columns") or item.get("expr"):
                    out.append(_STAR)
                else:
                    out.extend(star)
            return out
        case "SET_OPERATION_NODE":
            first = node.get("left") or (node.get("children") or [None])[0]
            return _query(first, ctes) if isinstance(first, dict) else None
    return None


@functools.lru_cache(maxsize=512)
def _slots(text: str, duckdb_text: str | None) -> tuple[Slot | str, ...] | None:
    for candidate in (text, duckdb_text):
        if candidate is None:
            continue
        try:
            tree = json.loads(parse(candidate))
        except duckdb.Error:
            continue
        if not isinstance(tree, dict) or tree.get("error") or \
                len(tree.get("statements") or ()) != 1:
            continue
        found = _query(tree["statements"][0].get("node") or {}, {})
        if found is None:
            return None
        return tuple(found) if any(isinstance(s, Oid) for s in found) else None
    return None


def pg_types(text: str, duckdb_text: str | None, duckdb_types: Sequence[object]
             ) -> tuple[Oid | None, ...] | None:
    """PostgreSQL's type of each result column of the statement where DuckDB's type
    (``duckdb_types``) does not tell it, None for the others; None when there is none."""
    low = text.lower()
    if not any(word in low for word in TRIGGERS):
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
