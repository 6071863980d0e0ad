"""Result column names as PostgreSQL gives them, from DuckDB's parse tree.

DuckDB names an unnamed result column after the expression's text
(``count_star()``, ``CAST(1 AS INTEGER)``, ``(x + 1)``); PostgreSQL picks a
name from the untransformed parse tree (``FigureColname`` in
src/backend/parser/parse_target.c), checked here against PostgreSQL 15:

- an explicit alias wins; an unquoted one is folded to lower case;
- a column reference gives its last name (``t.x`` -> ``x``); a subscript
  (``a[1]``) its array's name; a field selection (``(r).f``) the field;
- a function call its name as written, without schema (``count(*)`` ->
  ``count``, ``pg_catalog.lower(y)`` -> ``lower``); the SQL syntax that
  PostgreSQL turns into a call gives that call's name (``extract``,
  ``substring``, ``position``, ``overlay``, ``trim`` -> ``btrim``/``ltrim``/
  ``rtrim``, ``x AT TIME ZONE z`` -> ``timezone``);
- ``CASE``, ``ARRAY[...]``, ``ARRAY(SELECT ...)``, ``ROW(...)``,
  ``COALESCE``, ``GREATEST``, ``LEAST``, ``NULLIF``, ``GROUPING``,
  ``EXISTS`` their keyword; ``current_date`` and the other SQL value
  functions their name;
- a cast gives its operand's name when that is a good one (a column, a
  function: ``x::int`` -> ``x``), else its type's canonical name
  (``1::int`` -> ``int4``, ``'a'::varchar(3)`` -> ``varchar``,
  ``date '2024-01-01'`` -> ``date``); a ``CASE`` takes the name of its
  ``ELSE`` result when that is a good one (``ELSE x`` -> ``x``);
- a scalar subquery takes the name of its one column;
- anything else (constants, operators, comparisons, parameters) is ``?column?``;
- ``VALUES`` columns are ``column1``, ``column2``, ...; a set operation takes
  the names of its first query; ``*`` over a subquery, a CTE or a VALUES list
  gives their names, and over a table keeps the names the engine gives.

``naming`` works on the JSON of ``json_serialize_sql`` and the statement's
text (the tree's positions point into it: names as written, quoted or not,
and type names, which DuckDB's tree holds only in its own spelling).
``ResultNames`` decides once per statement, from the engine's own names,
whether the statement needs PostgreSQL's names at all: a statement whose
columns all have plain lower-case names (``SELECT id, name FROM t``, ``*``
over a table) is never parsed, and costs nothing when it runs again.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from server.sql.text import tokenize

#: PostgreSQL's name for an expression it cannot name
UNNAMED = "?column?"

Node = dict[str, Any]


class Slot(enum.Enum):
    KEEP = "keep"   # one column: keep the engine's name
    STAR = "star"   # the columns of a `*`, however many: keep the engine's names


Name = str | Slot

# a name the engine gives that PostgreSQL gives too (unless it is one of _RESERVED)
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
# plain names the engine gives where PostgreSQL's differ: true/false constants,
# the columns of VALUES (col0, col1, ...)
_RESERVED = re.compile(r"true|false|col[0-9]+")

_NO_LOCATION = 2 ** 63   # DuckDB's "no location" is 2**64 - 1

# Type names as PostgreSQL's grammar spells them, for the SQL-standard names
# (PostgreSQL's gram.y maps these keywords to its internal type names).
_SQL_TYPES = {
    "int": "int4", "integer": "int4", "smallint": "int2", "bigint": "int8",
    "real": "float4", "float": "float8", "double precision": "float8",
    "decimal": "numeric", "dec": "numeric", "numeric": "numeric", "boolean": "bool",
    "char": "bpchar", "character": "bpchar", "nchar": "bpchar",
    "national char": "bpchar", "national character": "bpchar",
    "varchar": "varchar", "char varying": "varchar", "character varying": "varchar",
    "nchar varying": "varchar", "national char varying": "varchar",
    "national character varying": "varchar",
    "bit": "bit", "bit varying": "varbit",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time": "time", "time without time zone": "time", "time with time zone": "timetz",
}
# DuckDB's spelling of a type it holds without a position (``interval '1 day'``)
_DUCKDB_TYPES = {
    "INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "FLOAT": "float4",
    "DOUBLE": "float8", "DECIMAL": "numeric", "BOOLEAN": "bool", "BLOB": "bytea",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIME WITH TIME ZONE": "timetz",
}
# functions DuckDB's parser makes from SQL syntax, by the name PostgreSQL gives that syntax
_SYNTAX_FUNCTIONS = {"timezone": "timezone", "substring": "substring", "position": "position",
                     "overlay": "overlay", "row": "row", "trim": "btrim", "ltrim": "ltrim",
                     "rtrim": "rtrim", "date_part": "extract"}
# calls server/postgres/syntax.py makes of PostgreSQL syntax (``a # b``, ``BETWEEN
# SYMMETRIC``, ``OVERLAPS``): PostgreSQL's name (None: unnamed, as operators are)
_OPERATOR_CALLS = {"xor": None, "between_symmetric": None, "pg_overlaps": "overlaps"}
# calls DuckDB's parser renames: (DuckDB's name, as written) -> PostgreSQL's name
_RENAMED = {("count_star", "count"): "count", ("date_part", "extract"): "extract",
            ("quantile_cont", "percentile_cont"): "percentile_cont",
            ("quantile_disc", "percentile_disc"): "percentile_disc",
            ("trim", "trim"): "btrim", ("ltrim", "trim"): "ltrim", ("rtrim", "trim"): "rtrim"}
_OPERATOR_NAMES = {"ARRAY_CONSTRUCTOR": "array", "OPERATOR_COALESCE": "coalesce",
                   "GROUPING_FUNCTION": "grouping"}


def needs_naming(names: Sequence[str]) -> bool:
    """Whether PostgreSQL may name any of these engine-named columns otherwise."""
    return any(_PLAIN.fullmatch(n) is None or _RESERVED.fullmatch(n) is not None
               for n in names)


@dataclass(frozen=True)
class Naming:
    """PostgreSQL's names of a statement's result columns, in order; ``Slot.STAR``
    stands for the columns of a ``*`` whose number only the engine knows."""
    slots: tuple[Name, ...]

    def apply(self, names: Sequence[str]) -> tuple[str, ...] | None:
        """The engine's column names with PostgreSQL's in their place; None when
        nothing changes or the columns do not line up with the select list."""
        stars = [i for i, s in enumerate(self.slots) if s is Slot.STAR]
        head = self.slots[:stars[0]] if stars else self.slots
        tail = self.slots[stars[-1] + 1:] if stars else ()
        if (len(head) + len(tail) > len(names)) if stars else len(head) != len(names):
            return None
        out = list(names)
        for i, slot in enumerate(head):
            if isinstance(slot, str):
                out[i] = slot
        for i, slot in enumerate(tail, start=len(names) - len(tail)):
            if isinstance(slot, str):
                out[i] = slot
        renamed = tuple(out)
        return None if renamed == tuple(names) else renamed


class _Source:
    """The statement's text, read at the positions of DuckDB's tree (byte offsets)."""

    def __init__(self, text: str):
        self.text = text
        self.raw = text.encode()
        try:
            self.tokens: list[Token] = tokenize(text)
        except TokenError:
            self.tokens = []
        self.starts = [t.start for t in self.tokens]
        self.quoted = {t.text for t in self.tokens if t.token_type is TokenType.IDENTIFIER}

    def fold(self, name: str) -> str:
        """An identifier as PostgreSQL keeps it: unquoted ones in lower case."""
        return name if name in self.quoted or name == name.lower() else name.lower()

    def fold_in(self, node: Node, name: str) -> str:
        """``fold`` of a name written in the node's span, by its own token there."""
        for tok in reversed(self.span(node)):
            if tok.text == name:
                return name if tok.token_type is TokenType.IDENTIFIER else name.lower()
        return self.fold(name)

    def alias(self, node: Node) -> str:
        """``fold`` of a node's alias, by the first token of its text after the node's
        position (the alias follows its expression)."""
        name = str(node["alias"])
        for tok in self.from_location(node):
            if tok.text == name:
                return name if tok.token_type is TokenType.IDENTIFIER else name.lower()
        return self.fold(name)

    def _char(self, location: int) -> int:
        return location if self.text.isascii() else \
            len(self.raw[:location].decode(errors="ignore"))

    def span(self, node: Node) -> list[Token]:
        """The tokens of a node (those starting in its span)."""
        location = node.get("query_location", _NO_LOCATION)
        if not isinstance(location, int) or location >= _NO_LOCATION:
            return []
        start = self._char(location)
        end = self._char(location + int(node.get("query_location_length", 0)))
        return [t for t in self.tokens if start <= t.start < max(end, start + 1)]

    def from_location(self, node: Node) -> list[Token]:
        location = node.get("query_location", _NO_LOCATION)
        if not isinstance(location, int) or location >= _NO_LOCATION:
            return []
        start = self._char(location)
        return [t for t in self.tokens if t.start >= start]

    def word(self, tok: Token) -> str | None:
        if tok.token_type is TokenType.IDENTIFIER:
            return tok.text
        return tok.text.lower() if tok.text.replace("_", "a").isalnum() else None

    def call_name(self, node: Node) -> str | None:
        """The name a function call is written with at the node's position
        (``pg_catalog.count(*)`` -> ``count``); None if no call starts there."""
        tokens = self.from_location(node)
        name = None
        for i, tok in enumerate(tokens):
            if i % 2 == 0:
                name = self.word(tok)
                if name is None:
                    return None
            elif tok.token_type is TokenType.L_PAREN:
                return name
            elif tok.token_type is not TokenType.DOT:
                return None
        return None

    def first_word(self, node: Node) -> str | None:
        tokens = self.from_location(node)
        return self.word(tokens[0]) if tokens else None

    def type_name(self, type_node: Node) -> str:
        """PostgreSQL's name of a type as written in a cast."""
        if type_node.get("type_name") == "list" and type_node.get("children"):
            return self.type_name(type_node["children"][0])   # int[] is named int4
        words: list[str] = []
        depth = 0
        quoted = False
        for tok in self.span(type_node):
            if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
                depth += 1
            elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
                depth -= 1
            elif tok.token_type is TokenType.DOT and depth == 0:
                words = []   # pg_catalog.int4 -> int4
            elif depth == 0:
                if tok.token_type is TokenType.IDENTIFIER:
                    words.append(tok.text)
                    quoted = True
                else:
                    words.extend(tok.text.lower().split())
        if not words:
            spelled = str(type_node.get("type_name", ""))
            return _DUCKDB_TYPES.get(spelled, spelled.lower())
        written = " ".join(words)
        if quoted:
            return words[-1]   # "char" is PostgreSQL's one-byte type, not char
        if written.startswith("interval"):
            return "interval"   # interval day to second
        return _SQL_TYPES.get(written, words[-1])


class _Namer:
    def __init__(self, source: _Source):
        self.source = source

    def query(self, node: Node, ctes: dict[str, tuple[Node, list[str]]]) -> list[Name] | None:
        """The names of a query's result columns; None when the query is not understood."""
        match node.get("type"):
            case "SELECT_NODE":
                scope = dict(ctes)
                for entry in (node.get("cte_map") or {}).get("map", []):
                    value = entry.get("value") or {}
                    scope[str(entry.get("key", "")).lower()] = (
                        value.get("query_node") or {}, list(value.get("aliases") or []))
                names: list[Name] = []
                for item in node.get("select_list", []):
                    if item.get("class") == "STAR":
                        names.extend(self.star(item, node.get("from_table") or {}, scope))
                    elif item.get("alias"):
                        names.append(self.source.alias(item))
                    else:
                        names.append(self.figure(item)[1] or UNNAMED)
                return names
            case "SET_OPERATION_NODE":
                first = node.get("left") or (node.get("children") or [None])[0]
                return self.query(first, ctes) if isinstance(first, dict) else None
            case "RECURSIVE_CTE_NODE":
                left = node.get("left")
                return self.query(left, ctes) if isinstance(left, dict) else None
        return None

    def star(self, item: Node, table: Node, ctes: dict[str, tuple[Node, list[str]]]
             ) -> list[Name]:
        """``*`` over one subquery, CTE or VALUES list: their names; else the engine's."""
        if item.get("columns") or item.get("expr") or item.get("exclude_list") or \
                item.get("replace_list") or item.get("rename_list") or \
                item.get("qualified_exclude_list"):
            return [Slot.STAR]
        relation = str(item.get("relation_name") or "")
        alias = str(table.get("alias") or table.get("table_name") or "")
        if relation and relation.lower() != alias.lower():
            return [Slot.STAR]
        inner: list[Name] | None = None
        match table.get("type"):
            case "SUBQUERY":
                inner = self.query((table.get("subquery") or {}).get("node") or {}, ctes)
            case "EXPRESSION_LIST":
                values = table.get("values") or [[]]
                inner = [f"column{i + 1}" for i in range(len(values[0]))]
            case "BASE_TABLE" if not table.get("schema_name") and not table.get("catalog_name"):
                cte = ctes.get(str(table.get("table_name", "")).lower())
                if cte is not None:
                    inner = self.query(cte[0], ctes)
                    inner = inner and self.aliased(inner, cte[1])
        if inner is None:
            return [Slot.STAR]
        return self.aliased(inner, list(table.get("column_name_alias") or []))

    def aliased(self, names: list[Name], aliases: list[str]) -> list[Name]:
        if Slot.STAR in names[:len(aliases)]:
            return [Slot.STAR]   # which columns the aliases name is the engine's to know
        return [self.source.fold(a) for a in aliases] + names[len(aliases):]

    def function(self, node: Node) -> tuple[int, Name | None]:
        if node.get("is_operator"):
            return 0, None
        name = str(node.get("function_name", "")).lower()
        if name in _OPERATOR_CALLS:
            pg_name = _OPERATOR_CALLS[name]
            return (0, None) if pg_name is None else (2, pg_name)
        written = self.source.call_name(node)
        if written is not None and (name, written.lower()) in _RENAMED:
            return 2, _RENAMED[name, written.lower()]
        if written is not None and written.lower() == name:
            return 2, written
        if name.startswith("to_") and self.source.first_word(node) == "interval":
            return 1, "interval"   # interval '1' day
        if written is None and name in _SYNTAX_FUNCTIONS:
            return 2, _SYNTAX_FUNCTIONS[name]
        if name == "timezone":   # now() AT TIME ZONE 'UTC'
            return 2, name
        if not self.source.tokens:   # no text to check against: DuckDB's name
            return 2, "count" if name == "count_star" else name
        return 0, None   # operator syntax DuckDB parses into a call (SIMILAR TO, ~)

    def figure(self, node: Node) -> tuple[int, Name | None]:
        """(strength, name) as PostgreSQL figures it: 2 a good name, 1 a fallback
        (a type's, ``case``), 0 none."""
        kind, typ = node.get("class"), node.get("type")
        match kind:
            case "COLUMN_REF":
                names = node.get("column_names") or []
                return (2, self.source.fold_in(node, str(names[-1]))) if names else (0, None)
            case "FUNCTION" | "WINDOW":
                return self.function(node)
            case "CAST":
                strength, name = self.figure(node.get("child") or {})
                if strength <= 1 and isinstance(node.get("type_expr"), dict):
                    return 1, self.source.type_name(node["type_expr"])
                return strength, name
            case "COLLATE":
                return self.figure(node.get("child") or {})
            case "CASE":
                strength, name = self.figure(node.get("else_expr") or {})
                return (strength, name) if strength > 1 else (1, "case")
            case "SUBQUERY":
                return self.subquery(node)
            case "OPERATOR":
                children = node.get("children") or []
                if typ in _OPERATOR_NAMES:
                    return 2, _OPERATOR_NAMES[typ]
                if typ in ("ARRAY_EXTRACT", "ARRAY_SLICE") and children:
                    return self.figure(children[0])
                if typ == "STRUCT_EXTRACT" and len(children) == 2:
                    field = (children[1].get("literal") or {}).get("text")
                    return (2, self.source.fold(field)) if field else (0, None)
        return 0, None

    def subquery(self, node: Node) -> tuple[int, Name | None]:
        match node.get("subquery_type"):
            case "EXISTS":
                return 2, "exists"
            case "SCALAR":
                if self.source.first_word(node) == "array":
                    return 2, "array"   # ARRAY(SELECT ...)
                names = self.query((node.get("subquery") or {}).get("node") or {}, {})
                if names:   # a `*`: the engine knows its column's name
                    return 2, Slot.KEEP if names[0] is Slot.STAR else names[0]
        return 0, None


def naming(tree: str, text: str) -> Naming | None:
    """PostgreSQL's names for the result of the one statement whose
    ``json_serialize_sql`` is ``tree``; None when the statement is not a query
    this module understands."""
    parsed = json.loads(tree)
    if not isinstance(parsed, dict) or parsed.get("error") or \
            len(parsed.get("statements") or ()) != 1:
        return None
    names = _Namer(_Source(text)).query(parsed["statements"][0].get("node") or {}, {})
    return Naming(tuple(names)) if names else None


# -- DuckDB's parser ------------------------------------------------------------
_local = threading.local()


def parse(text: str) -> str:
    """``json_serialize_sql`` of ``text``: DuckDB's parse tree, as JSON. Runs on a
    per-thread in-memory connection that reads no catalog and no file (the text is
    a parameter, parsed and never run)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:", config={
            "enable_external_access": False, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False})
    row = con.execute("SELECT json_serialize_sql($1::VARCHAR)", [text]).fetchone()
    return str(row[0]) if row else "{}"


@functools.lru_cache(maxsize=512)
def naming_for(text: str, duckdb_text: str | None = None) -> Naming | None:
    """``naming`` of a statement's text, else of the text DuckDB runs (when the
    client's uses syntax only the catalog rewrite makes DuckDB's)."""
    for candidate in (text, duckdb_text):
        if candidate is not None:
            try:
                found = naming(parse(candidate), candidate)
            except duckdb.Error:
                continue
            if found is not None:
                return found
    return None


def pg_names(names: Sequence[str], text: str, duckdb_text: str | None = None
             ) -> tuple[str, ...] | None:
    """The result column names PostgreSQL gives a statement whose engine names are
    ``names``; None when they are the same."""
    if not needs_naming(names):
        return None
    found = naming_for(text, duckdb_text)
    return None if found is None else found.apply(names)


class ResultNames:
    """One statement's PostgreSQL names, decided at its first result: a statement
    whose engine names need none is never looked at again."""
    __slots__ = ("_decided", "_naming", "_texts")

    def __init__(self, text: str, duckdb_text: str | None = None):
        self._texts = (text, duckdb_text if duckdb_text != text else None)
        self._decided = False
        self._naming: Naming | None = None

    @property
    def settled(self) -> bool:
        """True when the statement keeps the engine's names."""
        return self._decided and self._naming is None

    def rename(self, names: Sequence[str]) -> tuple[str, ...] | None:
        if not self._decided:
            self._decided = True
            if needs_naming(names):
                self._naming = naming_for(*self._texts)
        return None if self._naming is None else self._naming.apply(names)
