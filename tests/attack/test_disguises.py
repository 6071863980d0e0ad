"""Denied operations in random syntactic disguises (hypothesis): none may succeed.

The denials hold by construction (DuckDB's own parser, binder and sandbox), so the
generator should find nothing; if it does, the construction is wrong. Each
disguise is valid SQL, so the expected answer is exactly 42501, never a syntax
error that would hide a gap.
"""

from __future__ import annotations

import itertools

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attack.target import FUNCTION, MODEL, Target, sqlstate
from tests.attack.target import target as target  # the fixture

_counter = itertools.count()


def _case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


@st.composite
def function_name(draw: st.DrawFn, name: str) -> str:
    """A function name as DuckDB resolves it: any case, quoted (exact case), qualified."""
    form = draw(st.sampled_from(["plain", "quoted", "qualified", "qualified_quoted"]))
    if form == "plain":
        return _case(draw, name)
    if form == "quoted":
        return f'"{name}"'
    if form == "qualified":
        return f"{_case(draw, 'system')}.{_case(draw, 'main')}.{_case(draw, name)}"
    return f'"system"."main"."{name}"'


@st.composite
def gap(draw: st.DrawFn) -> str:
    return draw(st.sampled_from([" ", "  ", "\n", "\t", " /* ; */ ", " -- ;\n", "/**/"]))


@st.composite
def denied_value(draw: st.DrawFn, database: str) -> str:
    """An expression whose evaluation a non-superuser may not cause."""
    kind = draw(st.sampled_from(["model", "explain", "file", "sql"]))
    g = draw(gap())
    if kind == "model":
        return f"{draw(function_name(FUNCTION))}{g}(1.0,{g}2.0)"
    if kind == "explain":
        return f"{draw(function_name('explain_model'))}({g}'{MODEL}')"
    if kind == "file":
        return (f"(SELECT count(*) FROM {draw(function_name('read_blob'))}{g}"
                f"('{database}'))")
    return f"(SELECT count(*) FROM {draw(function_name('query'))}{g}('SELECT 1'))"


@st.composite
def wrapped(draw: st.DrawFn, value: str) -> str:
    """A SELECT that evaluates ``value`` somewhere inside."""
    shape = draw(st.sampled_from(["plain", "subquery", "cte", "where", "case", "lambda",
                                  "comprehension", "cast", "union", "join", "order",
                                  "window", "exists", "values"]))
    g = draw(gap())
    select = _case(draw, "select")
    match shape:
        case "plain":
            return f"{select}{g}{value}"
        case "subquery":
            return f"{select} * FROM ({select} {value} AS v){g}t"
        case "cte":
            return f"WITH c AS ({select} {value} AS v) {select} v FROM c"
        case "where":
            return f"{select} 1 WHERE {value} IS NOT NULL"
        case "case":
            return f"{select} CASE WHEN false THEN {value} END"
        case "lambda":
            return f"{select} list_transform([1], lambda x: {value})"
        case "comprehension":
            return f"{select} [{value} FOR x IN [1]]"
        case "cast":
            return f"{select} ({value})::VARCHAR"
        case "union":
            return f"{select} 1 UNION ALL {select} {value}"
        case "join":
            return f"{select} * FROM range(1) a JOIN ({select} {value} AS v) b ON true"
        case "order":
            return f"{select} range FROM range(2) ORDER BY {value}"
        case "window":
            return f"{select} max({value}) OVER () FROM range(2)"
        case "exists":
            return f"{select} EXISTS ({select} {value})"
    return f"{select} * FROM (VALUES ({value})) t(v)"


@st.composite
def statement(draw: st.DrawFn, database: str) -> str:
    """A statement around a denied value, possibly nested in another statement."""
    inner = draw(wrapped(draw(denied_value(database))))
    outer = draw(st.sampled_from(["none", "explain", "explain_analyze", "prepare", "ctas",
                                  "temp_view", "insert", "multi_before", "multi_after"]))
    n = next(_counter)
    match outer:
        case "none":
            return inner
        case "explain":
            return f"EXPLAIN {inner}"
        case "explain_analyze":
            return f"EXPLAIN ANALYZE {inner}"
        case "prepare":
            return f"PREPARE disguise_{n} AS {inner}"
        case "ctas":
            return f"CREATE TEMP TABLE disguise_{n} AS {inner}"
        case "temp_view":
            return f"CREATE TEMP VIEW disguise_{n} AS {inner}"
        case "insert":
            return f"INSERT INTO sink SELECT count(*) FROM ({inner}) t"
        case "multi_before":
            return f"SELECT 1; {inner}"
    return f"{inner}; SELECT 1"


DENIED_STATEMENTS = st.sampled_from([
    "SET threads = 1", "SET GLOBAL memory_limit = '1TB'", "RESET temp_directory",
    "PRAGMA threads = 1", "ATTACH ':memory:' AS x", "LOAD parquet", "INSTALL httpfs",
    "CREATE MACRO sum(x) AS 0", "CREATE MACRO current_user() AS 'admin'",
    f"CREATE MACRO {FUNCTION}(a, b) AS 0", "DROP VIEW svv_ml_model_info",
    "CREATE VIEW quackml_pg.main.pg_roles AS SELECT 1", "SET VARIABLE quackml_params = 1",
])


@st.composite
def statement_disguise(draw: st.DrawFn) -> str:
    base = draw(DENIED_STATEMENTS)
    words = base.split(" ")
    g = draw(gap())
    cased = g.join(_case(draw, w) if w.isalpha() else w for w in words)
    outer = draw(st.sampled_from(["none", "explain_analyze", "prepare", "multi"]))
    if outer == "explain_analyze":
        return f"EXPLAIN ANALYZE {cased}"
    if outer == "prepare":
        return f"PREPARE s_{next(_counter)} AS {cased}"
    if outer == "multi":
        return f"SELECT 1;{g}{cased}"
    return cased


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_disguised_values_are_denied(target: Target, data: st.DataObject) -> None:
    sql = data.draw(statement(str(target.database)))
    protocol = data.draw(st.sampled_from(["simple", "extended"]))
    if protocol == "extended" and ";" in sql.replace("/* ; */", "").replace("-- ;", ""):
        protocol = "simple"   # the extended protocol takes one statement
    prepare = True if protocol == "extended" else None
    # the oracle: a superuser runs the same text; where DuckDB itself refuses it (a
    # subquery inside a lambda, say) nothing ran for anyone and that error is the answer
    with target.admin() as a:
        a.execute("CREATE TABLE IF NOT EXISTS sink (n BIGINT)")
        expected = sqlstate(a, sql, prepare=prepare) or "42501"
    with target.mallory() as m:
        code = sqlstate(m, sql, prepare=prepare)
        assert code in ("42501", expected), (sql, protocol, code)
        assert m.execute("SELECT 1").fetchone() == (1,)   # the connection stays up


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sql=statement_disguise())
def test_disguised_statements_are_denied(target: Target, sql: str) -> None:
    try:   # some wrappers make text DuckDB's parser refuses (EXPLAIN ANALYZE ATTACH)
        duckdb.extract_statements(sql)
        expected = "42501"
    except duckdb.ParserException:
        expected = "42601"
    with target.mallory() as m:
        assert sqlstate(m, sql) == expected, sql


def test_generator_covers_every_shape(target: Target) -> None:
    """The generator is not vacuous: undisguised, the same values run for a superuser."""
    with target.admin() as c:
        for value in (f"{FUNCTION}(1.0, 2.0)", f"explain_model('{MODEL}')",
                      "(SELECT count(*) FROM query('SELECT 1'))"):
            assert c.execute(f"SELECT {value}").fetchone() is not None


@pytest.fixture(autouse=True)
def _no_leftovers(target: Target) -> None:
    with target.admin() as c:
        assert c.execute("SELECT count(*) FROM duckdb_functions() "
                         "WHERE function_name = 'sum' AND NOT internal").fetchone() == (0,)
