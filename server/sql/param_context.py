"""Types for untyped parameters from their context, on DuckDB's parsed statement.

PostgreSQL types a parameter the client left untyped (OID 0 or ``unknown``)
from where it stands: the other operand of an operator (``$1 + 1`` is
``integer``), the element type of the other side of ``= ANY($1)``, a target
column, a function argument; a bare parameter is ``text``. DuckDB's binder
infers most of these itself; where it gives up (an operator with several
candidate overloads, ``= ANY``), :func:`probe` rewrites the *parsed*
statement (``json_serialize_sql``), never its text, so that the binder can:
the untyped parameter ``P`` next to an operand ``X`` becomes
``COALESCE(P, X)`` (or ``COALESCE(P, [X])`` inside ``= ANY``), whose type
DuckDB infers as ``X``'s; parameters the client typed become
``CAST(P AS T)``. The probe is only ever bound to read parameter types, never
run. Statements DuckDB cannot serialise (all but SELECT) give no probe.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

_local = threading.local()

Node = dict[str, Any]


def _parser() -> duckdb.DuckDBPyConnection:
    """A per-thread in-memory connection for DuckDB's parser functions (they read
    no catalog; a connection is never shared between threads)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:")
    return con


def _serialize(text: str) -> Node | None:
    row = _parser().execute("SELECT json_serialize_sql($1::VARCHAR)", [text]).fetchone()
    tree = json.loads(row[0]) if row else None
    if not isinstance(tree, dict) or tree.get("error") or len(tree.get("statements", ())) != 1:
        return None
    return tree


def _template(text: str) -> Node:
    """The first select-list expression of ``text``."""
    tree = _serialize(text)
    assert tree is not None, text
    node: Node = tree["statements"][0]["node"]["select_list"][0]
    return node


def _is_param(node: object) -> bool:
    return isinstance(node, dict) and node.get("class") == "PARAMETER"


def _coalesce(param: Node, other: Node, as_list: bool) -> Node:
    node = _template("SELECT coalesce($1, [$2])" if as_list else "SELECT coalesce($1, $2)")
    node["children"][0] = param
    if as_list:
        node["children"][1]["arguments"][0]["expression"] = copy.deepcopy(other)
    else:
        node["children"][1] = copy.deepcopy(other)
    return node


def _cast(param: Node, duckdb_type: str) -> Node:
    node = _template(f"SELECT CAST($1 AS {duckdb_type})")
    node["child"] = param
    return node


class _Rewriter:
    def __init__(self, untyped: Collection[str], given: Mapping[str, str]):
        self.untyped = untyped
        self.given = given
        self.changed = False
        self.arguments: set[str] = set()   # untyped parameters that are function arguments

    def untyped_param(self, node: object) -> bool:
        return _is_param(node) and node["identifier"] in self.untyped  # type: ignore[index]

    def visit(self, node: object) -> object:
        """The node with its children rewritten (bottom-up), then itself."""
        if isinstance(node, list):
            return [self.visit(n) for n in node]
        if not isinstance(node, dict):
            return node
        if _is_param(node):
            duckdb_type = self.given.get(node["identifier"])
            if duckdb_type is None:
                return node
            self.changed = True
            return _cast(node, duckdb_type)
        for key, value in node.items():
            if isinstance(value, dict | list):
                node[key] = self.visit(value)
        self.operands(node)
        return node

    def operands(self, node: Node) -> None:
        kind = node.get("class")
        if kind == "FUNCTION" and not node.get("is_operator"):
            self.arguments.update(a["expression"]["identifier"] for a in node["arguments"]
                                  if self.untyped_param(a["expression"]))
        if kind == "FUNCTION" and node.get("is_operator") and len(node["arguments"]) == 2:
            args = node["arguments"]
            self.pair(args[0], "expression", args[1]["expression"])
            self.pair(args[1], "expression", args[0]["expression"])
        elif kind == "COMPARISON":
            left, right = node["left"], node["right"]
            self.pair(node, "left", right)
            self.pair(node, "right", left)
        elif kind == "SUBQUERY" and node.get("subquery_type") in ("ANY", "ALL") \
                and isinstance(node.get("child"), dict):
            select = node["subquery"]["node"]
            items = select.get("select_list") or []
            if len(items) == 1 and items[0].get("function_name") == "unnest" \
                    and len(items[0]["arguments"]) == 1:
                self.pair(items[0]["arguments"][0], "expression", node["child"], as_list=True)

    def pair(self, holder: Node, key: str, other: Node, as_list: bool = False) -> None:
        param = holder[key]
        if self.untyped_param(param) and not self.untyped_param(other):
            holder[key] = _coalesce(param, other, as_list)
            self.changed = True


@dataclass(frozen=True)
class Context:
    """What the parsed statement says about its untyped parameters."""

    probe: str | None   # the statement to bind for their types; None: nothing gives one
    # those that are arguments of a (non-operator) function: PostgreSQL tries the
    # string category for them, then the numeric one's preferred type (float8)
    arguments: frozenset[str] = frozenset()


def analyse(text: str, untyped: Collection[str], given: Mapping[str, str]) -> Context:
    """The probe for the types of the ``untyped`` parameters (identifiers ``"1"``,
    ``"2"`` ...) from their operands, with the ``given`` ones (identifier -> DuckDB
    type) cast to their types; no probe when the statement cannot be serialised."""
    try:
        tree = _serialize(text)
    except duckdb.Error:
        return Context(None)
    if tree is None:
        return Context(None)
    rewriter = _Rewriter(untyped, given)
    tree["statements"][0]["node"] = rewriter.visit(tree["statements"][0]["node"])
    arguments = frozenset(rewriter.arguments)
    if not rewriter.changed:
        return Context(None, arguments)
    try:
        row = _parser().execute("SELECT json_deserialize_sql($1::JSON)",
                                [json.dumps(tree)]).fetchone()
    except duckdb.Error:
        return Context(None, arguments)
    return Context(str(row[0]) if row else None, arguments)
