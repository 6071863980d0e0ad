"""Which functions a statement calls through the views and macros it names.

The EXECUTE check on a model's prediction functions reads the statement's
tokens; a view or macro hides the calls in its definition. ``Definitions``
lists DuckDB's views and macros (their definitions as DuckDB keeps them), reads
each definition's tokens with the same tokenizer as statements, and follows
the names it uses to other views and macros, however deep.

The lists are read again only when DuckDB's catalog version moved (it moves
with DDL, and with writes, on any connection). The view list is cheap (about
1 ms); the macro list (about 10 ms: DuckDB lists every built-in function with
it) is read again only for a statement that calls, directly or through a
view, a function that may be a macro: not a built-in function, not a model's
function. While the catalog stays the same a check costs a few set lookups.
A definition already read is not tokenized again.

Limits: names are compared lower-case and without their schema (two views
of one name in different schemas count as one: a check may refuse more, never
less); a definition the tokenizer cannot read is opaque; temporary views and
macros of other connections are not listed (a non-superuser's were checked
when created); a macro created with the name of a built-in function or a
keyword is seen from the next time the macro list is read.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
from duckdb import _seam
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from server.sqltext import tokenize

# explain_model('schema.name') in a definition: the call is recorded as
# EXPLAIN_PREFIX + the literal; EXPLAIN_ANY when the argument is not a literal.
EXPLAIN_PREFIX = "explain_model:"
EXPLAIN_ANY = EXPLAIN_PREFIX + "*"

# the server's PostgreSQL catalog emulation (quackml_pg) calls no model
_VIEWS = ("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
          "AND database_name <> 'quackml_pg'")
# names before a parenthesis that do not make the macro list be read again:
# built-in functions, the server's own, and keywords (VALUES (...), OVER (...))
_BUILTINS = ("SELECT DISTINCT function_name FROM duckdb_functions() WHERE internal "
             "OR database_name = 'quackml_pg' "
             "UNION ALL SELECT keyword_name FROM duckdb_keywords() "
             "WHERE keyword_category <> 'unreserved' "
             "UNION ALL SELECT unnest(['current_user', 'session_user', 'over', 'filter', "
             "'within'])")
_MACROS = ("SELECT function_name, macro_definition FROM duckdb_functions() "
           "WHERE function_type IN ('macro', 'table_macro') AND NOT internal "
           "AND database_name <> 'quackml_pg' AND macro_definition IS NOT NULL")


@dataclass
class _Uses:
    calls: set[str] = field(default_factory=set)    # names called as functions
    names: set[str] = field(default_factory=set)    # every other name


def uses_of(tokens: Iterable[object]) -> _Uses:
    """The function calls and names of a token list (lower-case)."""
    toks = list(tokens)
    uses = _Uses()
    for i, tok in enumerate(toks):
        kind = getattr(tok, "token_type", None)
        if kind in (TokenType.STRING, TokenType.HEREDOC_STRING, TokenType.NUMBER):
            continue
        text = str(getattr(tok, "text", "")).lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and getattr(nxt, "token_type", None) is TokenType.L_PAREN:
            if text == "explain_model":
                arg = toks[i + 2] if i + 2 < len(toks) else None
                literal = getattr(arg, "token_type", None) is TokenType.STRING
                uses.calls.add(EXPLAIN_PREFIX + str(getattr(arg, "text", ""))
                               if literal else EXPLAIN_ANY)
            else:
                uses.calls.add(text)
        else:
            uses.names.add(text)
    return uses


class Definitions:
    """The views and macros of the database and the calls their definitions
    make, read again when DuckDB's catalog version moved."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con.cursor()
        self._lock = threading.Lock()
        self._read: dict[str, _Uses | None] = {}   # definition text -> its uses
        self._views: dict[str, _Uses] = {}
        self._macros: dict[str, _Uses] = {}
        self._views_version = -1
        self._macros_version = -1
        self._builtin: frozenset[str] | None = None
        self._reach: dict[str, frozenset[str]] = {}   # for the current lists

    def calls(self, names: Iterable[str], calls: Iterable[str],
              known: Callable[[str], bool]) -> set[str]:
        """Every function called inside the views and macros among a statement's
        ``names`` and ``calls``, however deep. ``known(name)`` says a call is not a
        macro (a model's prediction function)."""
        starts = set(names) | set(calls)
        with self._lock:
            version = _seam.catalog_version(self._con)
            if self._builtin is None:   # first use: macros that shadow a built-in too
                self._builtin = frozenset(str(r[0]).lower() for r in
                                          self._con.execute(_BUILTINS).fetchall())
                self._macros = self._list(_MACROS)
                self._macros_version = version
            if self._views_version != version:
                self._views = self._list(_VIEWS)
                self._views_version = version
                self._reach = {}
            found = self._walk_all(starts)
            if self._macros_version != version and any(
                    c in self._macros or not (c in self._builtin or c.startswith(EXPLAIN_PREFIX)
                                              or known(c))
                    for c in set(calls) | found):
                # a call that may be a macro: the (slower) macro list is read again
                self._macros = self._list(_MACROS)
                self._macros_version = version
                self._reach = {}
                found = self._walk_all(starts)
            return found

    def _list(self, query: str) -> dict[str, _Uses]:
        listed: dict[str, _Uses] = {}
        for name, text in self._con.execute(query).fetchall():
            uses = listed.setdefault(str(name).lower(), _Uses())
            text = str(text)
            if text in self._read:   # definitions seldom change: read each text once
                found = self._read[text]
            else:
                try:
                    found = uses_of(tokenize(text))
                except TokenError:
                    found = None
                if len(self._read) > 10_000:
                    self._read.clear()
                self._read[text] = found
            if found is not None:
                uses.calls |= found.calls
                uses.names |= found.names
        return listed

    def _uses(self, name: str) -> _Uses | None:
        view, macro = self._views.get(name), self._macros.get(name)
        if view is None or macro is None:
            return view or macro
        return _Uses(view.calls | macro.calls, view.names | macro.names)

    def _walk_all(self, starts: set[str]) -> set[str]:
        found: set[str] = set()
        for name in starts:
            if name in self._views or name in self._macros:
                found |= self._walk(name)
        return found

    def _walk(self, start: str) -> frozenset[str]:
        done = self._reach.get(start)
        if done is not None:
            return done
        calls: set[str] = set()
        seen = {start}
        todo = [start]
        while todo:
            uses = self._uses(todo.pop())
            if uses is None:
                continue
            calls |= uses.calls
            for other in uses.calls | uses.names:
                if other not in seen and (other in self._views or other in self._macros):
                    seen.add(other)
                    todo.append(other)
        result = self._reach[start] = frozenset(calls)
        return result


_instances: weakref.WeakKeyDictionary[object, Definitions] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def definitions(owner: object, con: duckdb.DuckDBPyConnection) -> Definitions:
    """The one ``Definitions`` of a server engine (``owner``) over its connection."""
    with _instances_lock:
        found = _instances.get(owner)
        if found is None:
            found = _instances[owner] = Definitions(con)
        return found
