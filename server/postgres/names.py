"""PostgreSQL's names for DuckDB's: the schema ``public``, the client's database name
and schema-qualified model functions.

Design (docs/postgres-differences.md, "Schemas and database names"): DuckDB's
default schema ``main`` *is* PostgreSQL's ``public``. The data stays where DuckDB
keeps it (databases made by earlier versions need no migration, DuckDB's own
catalog functions keep working); what clients read says ``public``
(``current_schema()``, ``pg_namespace``, ``information_schema``, ``pg_tables``,
psql's ``\\dn``), and what clients write with ``public`` reaches ``main``.

The database is the one the client connected with: ``current_database()``,
``information_schema``'s catalog columns and ``pg_database`` say that name, and a
three-part name starting with it (dbt's ``"db"."public"."t"``) reaches DuckDB's
database.

In statements, ``edits`` finds the tokens to change: ``public`` as a qualifier (or
after ``SCHEMA``) becomes ``main``; the client's database name as the first part of
a three-part name becomes DuckDB's; ``analytics.f(`` where ``f`` is the prediction
function of a model in schema ``analytics`` loses its qualifier (prediction functions
are DuckDB functions, which have no schema). Strings are never touched.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot.tokens import Token, TokenType

from server.sql.text import in_from_list

PUBLIC = "public"
DUCKDB_SCHEMA = "main"
#: the session variable holding the client's database name
DATABASE_VARIABLE = "quackml_database"
#: the session variable holding the backend process id (BackendKeyData)
PID_VARIABLE = "quackml_backend_pid"
#: DuckDB catalogs a client may not connect to by name: they are not databases of
#: the user's (``memory`` would be an empty one)
RESERVED_DATABASES = frozenset({"system", "temp", "quackml_pg", "memory"})

#: SQL: the client's database name (DuckDB's when no session set it)
DATABASE_SQL = f"coalesce(getvariable('{DATABASE_VARIABLE}'), system.main.current_database())"


def schema_sql(expr: str) -> str:
    """SQL: PostgreSQL's name of the DuckDB schema named by ``expr``."""
    return f"CASE WHEN {expr} = '{DUCKDB_SCHEMA}' THEN '{PUBLIC}' ELSE {expr} END"


def duckdb_schema(name: str) -> str:
    """DuckDB's name of the schema a client calls ``name``."""
    return DUCKDB_SCHEMA if name.lower() == PUBLIC else name


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Names:
    """What a session's statements are read against."""
    database: str                  # the client's database name
    duckdb_database: str           # DuckDB's name of the database
    #: prediction function (lower-case) -> schemas (lower-case) it may be qualified with
    functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: FORECAST models' functions (lower-case): ``FORECAST(m)`` reads their stored rows
    forecasts: frozenset[str] = frozenset()

    @functools.cached_property
    def triggers(self) -> frozenset[str]:
        """Lower-case token texts that may need an edit."""
        found = {PUBLIC, self.database.lower(), self.duckdb_database.lower(),
                 *(s for schemas in self.functions.values() for s in schemas)}
        if self.forecasts:
            found.add("forecast")
        return frozenset(found)


def _forecast_call(tokens: tuple[Token, ...], i: int,
                   forecasts: frozenset[str]) -> tuple[int, int, str] | None:
    """Redshift's ``FORECAST(model)`` (or ``FORECAST(schema.model)``) for a FORECAST
    model: its rows, one column each (``unnest(model(), recursive := true)``; the
    function returns the stored forecast as a list of structs). As a FROM item
    (``FROM FORECAST(m) [AS] f``, ``JOIN FORECAST(m)``, ``FROM t, FORECAST(m)``) the same
    in a subquery: DuckDB's ``unnest`` table function takes no ``recursive``."""
    n = len(tokens)
    if _dot(tokens, i - 1) or i + 3 >= n or tokens[i + 1].token_type is not TokenType.L_PAREN:
        return None
    j = i + 2
    if j + 2 < n and _dot(tokens, j + 1):
        j += 2
    name = tokens[j]
    if not _name(name) or name.text.lower() not in forecasts or j + 1 >= n or \
            tokens[j + 1].token_type is not TokenType.R_PAREN:
        return None
    rows = f"unnest({quote(name.text)}(), recursive := true)"
    if _from_item(tokens, i):
        rows = f"(SELECT {rows})"
    return tokens[i].start, tokens[j + 1].end, rows


def _from_item(tokens: tuple[Token, ...], i: int) -> bool:
    """Token i starts an item of a FROM clause: after FROM or JOIN, or after a comma of
    a FROM list."""
    if i == 0:
        return False
    if tokens[i - 1].text.upper() in ("FROM", "JOIN"):
        return True
    return tokens[i - 1].token_type is TokenType.COMMA and in_from_list(tokens, i - 1)


_CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})


def _name(tok: Token) -> bool:
    return tok.token_type is not TokenType.STRING and tok.text.isidentifier()


def _dot(tokens: tuple[Token, ...], i: int) -> bool:
    return 0 <= i < len(tokens) and tokens[i].token_type is TokenType.DOT


def _after_schema_keyword(tokens: tuple[Token, ...], i: int) -> bool:
    """Token i names a schema: ``SCHEMA [IF [NOT] EXISTS] name``."""
    j = i - 1
    while j >= 0 and tokens[j].text.upper() in ("IF", "NOT", "EXISTS"):
        j -= 1
    return j >= 0 and tokens[j].text.upper() == "SCHEMA"


def edits(tokens: tuple[Token, ...], names: Names) -> list[tuple[int, int, str]]:
    """(start, end inclusive, replacement) for each token to change (absolute positions)."""
    out: list[tuple[int, int, str]] = []
    n = len(tokens)
    database = names.database.lower()
    databases = (database, names.duckdb_database.lower())
    renamed = database != databases[1]
    for i, tok in enumerate(tokens):
        low = tok.text.lower()
        if low not in names.triggers or not _name(tok):
            continue
        if low == "forecast" and names.forecasts:
            call = _forecast_call(tokens, i, names.forecasts)
            if call is not None:
                out.append(call)
            continue
        qualifier = _dot(tokens, i + 1) and i + 2 < n and _name(tokens[i + 2])
        if _dot(tokens, i - 1):
            # only a schema after a database name is ours to rename: db.public.t,
            # SCHEMA db.public
            if low == PUBLIC and i >= 2 and tokens[i - 2].text.lower() in databases and \
                    (qualifier or _after_schema_keyword(tokens, i - 2)):
                out.append((tok.start, tok.end, DUCKDB_SCHEMA))
            continue
        if low in databases and qualifier and _dot(tokens, i + 3) and \
                tokens[i + 2].text.lower() in _CATALOG_SCHEMAS:
            # dbt's "db".information_schema."columns": the emulated catalog's
            out.append((tok.start, tokens[i + 1].end, ""))
        elif qualifier and i + 3 < n and tokens[i + 3].token_type is TokenType.L_PAREN and \
                low in names.functions.get(tokens[i + 2].text.lower(), ()):
            out.append((tok.start, tokens[i + 1].end, ""))   # analytics.f( -> f(
        elif low == PUBLIC and (qualifier or _after_schema_keyword(tokens, i)):
            out.append((tok.start, tok.end, DUCKDB_SCHEMA))
        elif renamed and low == database and qualifier and (
                (_dot(tokens, i + 3) and i + 4 < n) or _after_schema_keyword(tokens, i)):
            out.append((tok.start, tok.end, quote(names.duckdb_database)))
    return out
