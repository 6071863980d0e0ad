"""PostgreSQL functions that DuckDB lacks or gives another meaning (the syntax is
server.postgres.syntax's).

Functions live as macros in the emulation database ``quackml_pg`` (created at
engine start by ``install``); ``server.postgres.catalog.rewrite`` qualifies an
unqualified call of a name in ``NAMES`` (``format(...)`` runs
``quackml_pg.format(...)``), so a macro of the name of a DuckDB built-in
(``format``, ``to_hex``, ``length``, ``lpad`` ...) takes effect for every
unqualified call, while ``system.main.<name>`` still reaches DuckDB's own.

Some need more than SQL and call a Python function registered on the
engine's connection: ``format`` (PostgreSQL's ``%s``/``%I``/``%L`` with
positions, flags and widths) and ``to_char``/``to_date``/``to_timestamp``
with PostgreSQL's patterns. Regular expressions run in DuckDB (RE2: linear
time, a pattern cannot stall the server).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Sequence

import duckdb

from server.errors import UDF_ERROR_CLASSES

SCHEMA = "quackml_pg"
_MAX_ARGS = 16   # the variadic functions (format, json_build_object ...) take this many

_TO_TEXT = "CAST({} AS VARCHAR)"


def _variadic(first: Sequence[str], body: str, step: int = 1) -> str:
    """Overloads for 0..._MAX_ARGS extra arguments; ``body`` gets ``{args}`` (the
    extra arguments, comma separated), ``{texts}`` (each as text) and ``{pairs}`` (every
    other one, the keys, as text)."""
    overloads = []
    for n in range(0, _MAX_ARGS + 1, step):
        extra = [f"a{i}" for i in range(1, n + 1)]
        params = ", ".join([*first, *extra])
        pairs = ", ".join(_TO_TEXT.format(a) if k % 2 == 0 else a for k, a in enumerate(extra))
        overloads.append(f"({params}) AS " + body.format(
            args=", ".join(extra), texts=", ".join(_TO_TEXT.format(a) for a in extra),
            pairs=pairs))
    return ", ".join(overloads)


# the keys of a JSON object, the strings of a JSON array, a JSON string (jsonb's ? operators)
_JSON_KEYS = ("CASE WHEN j IS NULL THEN NULL WHEN json_type(j) = 'OBJECT' THEN json_keys(j) "
              "WHEN json_type(j) = 'ARRAY' THEN json_extract_string(j, '$[*]') "
              "WHEN json_type(j) = 'VARCHAR' THEN [json_extract_string(j, '$')] ELSE [] END")
_REGEXP_MATCH = ("CASE WHEN NOT regexp_matches(s, p, {flags}) THEN NULL "
                 "WHEN quackml_pg_group_refs(p) = '' THEN [regexp_extract(s, p, 0, {flags})] "
                 "ELSE string_split(regexp_replace(regexp_extract(s, p, 0, {flags}), p, "
                 "quackml_pg_group_refs(p), {flags}), chr(0)) END")


# the whole days in an interval's time part, toward zero (justify_hours)
_WHOLE_DAYS = ("CAST(trunc((datepart('hour', i) * 3600000000 + datepart('minute', i) * 60000000 "
               "+ datepart('microseconds', i)) / 86400000000) AS BIGINT)")


def _macros(keywords: frozenset[str]) -> dict[str, str]:
    quoted_keywords = ", ".join("'" + k.replace("'", "''") + "'" for k in sorted(keywords))
    text = "CAST(s AS VARCHAR)"
    return {
        # aggregates
        "every": "(x) AS bool_and(x)",
        # strings
        "btrim": "(s) AS trim(s), (s, c) AS trim(s, c)",
        "lpad": "(s, n) AS system.main.lpad(s, n, ' '), (s, n, f) AS system.main.lpad(s, n, f)",
        "rpad": "(s, n) AS system.main.rpad(s, n, ' '), (s, n, f) AS system.main.rpad(s, n, f)",
        "initcap": "(s) AS array_to_string(list_transform(regexp_extract_all(s, "
                   "'[[:alnum:]]+|[^[:alnum:]]+'), lambda w: upper(w[1]) || lower(w[2:])), '')",
        "quote_literal": f"(s) AS CASE WHEN contains({text}, '\\') THEN 'E''' || "
                         f"replace(replace({text}, '\\', '\\\\'), '''', '''''') || '''' "
                         f"ELSE '''' || replace({text}, '''', '''''') || '''' END",
        "quote_nullable": f"(s) AS coalesce({SCHEMA}.main.quote_literal(s), 'NULL')",
        "quote_ident": "(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') AND s NOT IN "
                       f"({quoted_keywords}) THEN s "
                       "ELSE '\"' || replace(s, '\"', '\"\"') || '\"' END",
        "to_hex": "(x) AS lower(system.main.to_hex(x))",
        "format": _variadic(["f"], "quackml_pg_format(f, [{texts}]::VARCHAR[])"),
        # DuckDB's (RE2, linear time) regular expressions; the groups of the first match
        # come from rewriting that match to \\1 NUL \\2 ... (at most 9 groups)
        "regexp_match": f"(s, p) AS {_REGEXP_MATCH.format(flags=repr(''))}, "
                        f"(s, p, flags) AS {_REGEXP_MATCH.format(flags='flags')}",
        # bytea
        "encode": "(s) AS system.main.encode(s), (b, f) AS CASE lower(f) "
                  "WHEN 'base64' THEN to_base64(b) WHEN 'hex' THEN lower(hex(b)) "
                  "ELSE error('unrecognized encoding: \"' || f || '\"') END",
        "decode": "(b) AS system.main.decode(b), (s, f) AS CASE lower(f) "
                  "WHEN 'base64' THEN from_base64(s) WHEN 'hex' THEN unhex(s) "
                  "ELSE error('unrecognized encoding: \"' || f || '\"') END",
        # type names as functions
        "int2": "(x) AS CAST(x AS SMALLINT)",
        "int4": "(x) AS CAST(x AS INTEGER)",
        "int8": "(x) AS CAST(x AS BIGINT)",
        "float4": "(x) AS CAST(x AS REAL)",
        "float8": "(x) AS CAST(x AS DOUBLE)",
        "text": "(x) AS CAST(x AS VARCHAR)",
        # arrays
        "array_remove": "(a, x) AS list_filter(a, lambda e: e IS DISTINCT FROM x)",
        # integer results are integer (int4), not DuckDB's BIGINT
        "length": "(s) AS CAST(system.main.length(s) AS INTEGER)",
        "char_length": "(s) AS CAST(system.main.length(s) AS INTEGER)",
        "character_length": "(s) AS CAST(system.main.length(s) AS INTEGER)",
        "octet_length": "(x) AS CAST(CASE WHEN typeof(x) = 'BLOB' "
                        "THEN system.main.octet_length(CAST(x AS BLOB)) "
                        "ELSE strlen(CAST(x AS VARCHAR)) END AS INTEGER)",
        "strpos": "(s, sub) AS CAST(system.main.strpos(s, sub) AS INTEGER)",
        "array_length": "(a, d) AS CAST(nullif(system.main.array_length(a, d), 0) AS INTEGER)",
        "cardinality": "(a) AS CAST(system.main.len(flatten([a])) AS INTEGER)",
        # numbers
        "div": "(a, b) AS CAST((a - (a % b)) / b AS DECIMAL(38, 0))",
        "width_bucket": "(x, lo, hi, n) AS CASE "
                        "WHEN lo = hi THEN error('lower bound cannot equal upper bound') "
                        "WHEN n <= 0 THEN error('count must be greater than zero') "
                        "WHEN lo < hi THEN CASE WHEN x < lo THEN 0 WHEN x >= hi THEN n + 1 "
                        "ELSE CAST(floor(CAST(x - lo AS DOUBLE) * n / CAST(hi - lo AS DOUBLE)) "
                        "AS INTEGER) + 1 END "
                        "ELSE CASE WHEN x > lo THEN 0 WHEN x <= hi THEN n + 1 "
                        "ELSE CAST(floor(CAST(lo - x AS DOUBLE) * n / CAST(lo - hi AS DOUBLE)) "
                        "AS INTEGER) + 1 END END",
        # round(double precision) rounds half to even (rint); round(numeric) half away
        # from zero (DuckDB's round, both)
        "round": "(x) AS system.main.round(x) - CASE WHEN typeof(x) IN ('DOUBLE', 'FLOAT') "
                 "AND abs(x) - floor(abs(x)) = 0.5 AND system.main.round(x) % 2 <> 0 "
                 "THEN system.main.sign(x) ELSE 0 END, (x, n) AS system.main.round(x, n)",
        "gcd": "(a INTEGER, b INTEGER) AS CAST(system.main.gcd(a, b) AS INTEGER), "
               "(a, b) AS system.main.gcd(a, b)",
        "lcm": "(a INTEGER, b INTEGER) AS CAST(system.main.lcm(a, b) AS INTEGER), "
               "(a, b) AS system.main.lcm(a, b)",
        "factorial": "(n) AS CAST(system.main.factorial(n) AS DECIMAL(38, 0))",
        # sign(numeric) is numeric, sign of anything else double precision (an integer
        # goes to the double precision one, as PostgreSQL picks its preferred type)
        "sign": f"(x {UNCONSTRAINED_NUMERIC}) AS "
                f"CAST(system.main.sign(x) AS {UNCONSTRAINED_NUMERIC}), "
                "(x DOUBLE) AS CAST(system.main.sign(x) AS DOUBLE)",
        "scale": "(x) AS CAST(length(split_part(CAST(x AS VARCHAR), '.', 2)) AS INTEGER)",
        # dates and times: date_part is double precision; to_char/to_date/to_timestamp
        # and to_number with PostgreSQL's patterns
        "date_part": "(f, x) AS CAST(system.main.date_part(f, x) AS DOUBLE)",
        # date_trunc of a date is a timestamp with time zone (typed macro overloads)
        "date_trunc": "(f, x DATE) AS CAST(system.main.date_trunc(f, x) AS TIMESTAMPTZ), "
                      "(f, x) AS system.main.date_trunc(f, x)",
        "to_char": "(x, f) AS quackml_pg_to_char(CAST(x AS VARCHAR), typeof(x), f)",
        "to_number": f"(s, f) AS CAST(quackml_pg_to_number(s, f) AS {UNCONSTRAINED_NUMERIC})",
        "to_date": "(s, f) AS CAST(quackml_pg_to_timestamp(s, f) AS DATE)",
        "to_timestamp": "(x) AS system.main.to_timestamp(x), "
                        "(s, f) AS CAST(quackml_pg_to_timestamp(s, f) AS TIMESTAMPTZ)",
        # json and jsonb (one JSON type)
        "json_build_object": _variadic([], "json_object({pairs})", step=2),
        "jsonb_build_object": _variadic([], "json_object({pairs})", step=2),
        "json_build_array": _variadic([], "json_array({args})"),
        "jsonb_build_array": _variadic([], "json_array({args})"),
        "to_jsonb": "(x) AS to_json(x)",
        "json_typeof": "(j) AS CASE json_type(j) WHEN 'VARCHAR' THEN 'string' "
                       "WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT' THEN 'object' "
                       "WHEN 'ARRAY' THEN 'array' WHEN 'NULL' THEN 'null' ELSE 'number' END",
        "jsonb_typeof": f"(j) AS {SCHEMA}.main.json_typeof(j)",
        # ROW(...) IS [NOT] NULL: every field NULL (not NULL); DuckDB asks the row itself
        "row_is_null": "(r) AS list_bool_and(list_transform(json_extract(to_json(r), '$[*]'), "
                       "lambda v: json_type(v) = 'NULL'))",
        "row_is_not_null": "(r) AS list_bool_and(list_transform(json_extract(to_json(r), "
                           "'$[*]'), lambda v: json_type(v) <> 'NULL'))",
        # generate_series's rows as a list, of PostgreSQL's type: integer for integers,
        # timestamptz for dates
        "generate_series_list": "(a INTEGER, b INTEGER) AS "
                                "CAST(generate_series(a, b) AS INTEGER[]), "
                                "(a INTEGER, b INTEGER, c INTEGER) AS "
                                "CAST(generate_series(a, b, c) AS INTEGER[]), "
                                "(a DATE, b DATE, c INTERVAL) AS "
                                "CAST(generate_series(a, b, c) AS TIMESTAMPTZ[]), "
                                "(a, b) AS generate_series(a, b), "
                                "(a, b, c) AS generate_series(a, b, c)",
        "jsonb_contained": "(a, b) AS json_contains(b, a)",
        "jsonb_concat": "(a, b) AS quackml_pg_jsonb_concat(CAST(a AS VARCHAR), CAST(b AS VARCHAR))",
        "jsonb_delete": "(j, k) AS quackml_pg_jsonb_delete(CAST(j AS VARCHAR), k)",
        "jsonb_exists": f"(j, k) AS list_contains({_JSON_KEYS}, k)",
        "jsonb_exists_any": f"(j, ks) AS list_has_any({_JSON_KEYS}, ks)",
        "jsonb_exists_all": f"(j, ks) AS list_has_all({_JSON_KEYS}, ks)",
        "jsonb_pretty": "(j) AS quackml_pg_jsonb_pretty(CAST(j AS VARCHAR))",
        "jsonb_strip_nulls": "(j) AS quackml_pg_json_strip_nulls(CAST(j AS VARCHAR))",
        "json_strip_nulls": "(j) AS quackml_pg_json_strip_nulls(CAST(j AS VARCHAR))",
        "jsonb_set": "(j, p, v) AS quackml_pg_jsonb_set(CAST(j AS VARCHAR), CAST(p AS VARCHAR), "
                     "CAST(v AS VARCHAR), true), "
                     "(j, p, v, c) AS quackml_pg_jsonb_set(CAST(j AS VARCHAR), "
                     "CAST(p AS VARCHAR), CAST(v AS VARCHAR), c)",
        "json_array_length": "(j) AS CAST(system.main.json_array_length(j) AS INTEGER)",
        # dates and arrays
        "justify_hours": f"(i) AS i - to_microseconds({_WHOLE_DAYS} * 86400000000) "
                         f"+ to_days(CAST({_WHOLE_DAYS} AS INTEGER))",
        "make_interval": "(years := 0, months := 0, weeks := 0, days := 0, hours := 0, "
                         "mins := 0, secs := 0.0) AS to_years(CAST(years AS INTEGER)) + "
                         "to_months(CAST(months AS INTEGER)) + "
                         "to_days(CAST(weeks * 7 + days AS INTEGER)) + to_microseconds("
                         "CAST(round((hours * 3600 + mins * 60 + secs) * 1000000) AS BIGINT))",
        "chr": "(n) AS CASE WHEN n = 0 THEN error('null character not permitted') "
               "ELSE system.main.chr(n) END",
        # substring(s, i, n) (server/postgres/syntax.py; substring(s FROM i FOR n) is
        # DuckDB's own syntax, which a qualified name cannot take)
        "substring_checked": "(s, i, n) AS CASE WHEN n < 0 THEN "
                             "error('negative substring length not allowed') "
                             "ELSE system.main.substring(s, i, n) END",
        # (a, b) OVERLAPS (c, d) (server/postgres/syntax.py), as PostgreSQL's overlaps():
        # each pair's ends in order; equal starts overlap
        "pg_overlaps": "(a, b, c, d) AS CASE WHEN least(a, b) > least(c, d) THEN "
                       "least(a, b) < greatest(c, d) WHEN least(a, b) < least(c, d) THEN "
                       "least(c, d) < greatest(a, b) ELSE least(a, b) = least(c, d) END",
        # x BETWEEN SYMMETRIC a AND b (server/postgres/syntax.py)
        "between_symmetric": "(x, a, b) AS x BETWEEN least(a, b) AND greatest(a, b)",
        "array_dims": "(a) AS CASE WHEN len(a) > 0 THEN '[1:' || len(a) || ']' END",   # 1-D
        "jsonb_array_length": "(j) AS CAST(system.main.json_array_length(j) AS INTEGER)",
    }


# table macros: FROM jsonb_each_text(...) and friends
_TABLE_MACROS = {
    "json_each_text": "(j) AS TABLE SELECT k AS key, j ->> k AS value "
                      "FROM (SELECT unnest(json_keys(j)) AS k)",
    "jsonb_each_text": "(j) AS TABLE SELECT k AS key, j ->> k AS value "
                       "FROM (SELECT unnest(json_keys(j)) AS k)",
    "json_array_elements_text": "(j) AS TABLE SELECT unnest(json_extract_string(j, '$[*]')) "
                                "AS value",
    "jsonb_array_elements_text": "(j) AS TABLE SELECT unnest(json_extract_string(j, '$[*]')) "
                                 "AS value",
}
_AGGREGATE_MACROS = {
    "json_object_agg": "(k, v) AS json_group_object(k, v)",
    "jsonb_object_agg": "(k, v) AS json_group_object(k, v)",
}

#: what PostgreSQL's numeric without precision and scale is here: DuckDB's bare NUMERIC
#: is DECIMAL(18,3), which rounds to 3 decimals. Columns of this type are sent as
#: numeric without a type modifier, their values without trailing zeros
#: (server/postgres/resulttypes.py).
UNCONSTRAINED_NUMERIC = "DECIMAL(38,10)"

#: PostgreSQL's avg/variance/stddev of integers and numeric are numeric (DuckDB's are
#: DOUBLE): the result is this type, the exact quotient rounded half away from zero to
#: 16 decimals, as PostgreSQL's numeric division gives it when the quotient lies in
#: [1, 10000) (its scale is 16 significant digits, so more decimals below 1 and fewer
#: from 10000 on: docs/postgres-differences.md).
NUMERIC_RESULT = "DECIMAL(38,16)"
_E16 = "10000000000000000"
#: helpers of the macros below (called qualified, never by users' names)
_HELPER_MACROS = {
    # a / n rounded half away from zero, for integers a and n > 0
    "quackml_pg_round_div": "(a, n) AS sign(a) * ((abs(a) * 2 + n) // (2 * n))",
    # s / n as NUMERIC_RESULT, s an integer or a decimal of at most 16 decimals, n a count
    "quackml_pg_div16": (
        "(s, n) AS CASE WHEN n = 0 THEN NULL ELSE "
        f"CAST(CAST(trunc(s) AS HUGEINT) // n AS {NUMERIC_RESULT}) + "
        f"CAST({SCHEMA}.main.quackml_pg_round_div(CAST(trunc(s) AS HUGEINT) % n * {_E16} + "
        f"CAST((s - trunc(s)) * {_E16} AS HUGEINT), n) AS DECIMAL(38,0)) "
        "* 0.0000000000000001 END"),
    # PostgreSQL's variance: (n * sum(x^2) - sum(x)^2) / d, 0 when rounding makes it negative
    "quackml_pg_variance": (
        "(x, d) AS CASE WHEN d = 0 THEN NULL "
        "WHEN count(x) * sum(CAST(x AS HUGEINT) * x) <= sum(x) * sum(x) "
        f"THEN CAST(0 AS {NUMERIC_RESULT}) "
        f"ELSE {SCHEMA}.main.quackml_pg_div16(count(x) * sum(CAST(x AS HUGEINT) * x) "
        "- sum(x) * sum(x), d) END"),
}


def _numeric_aggregate(exact: str, duckdb: str, numeric: bool) -> str:
    """Overloads: ``exact`` for integers (and, given ``numeric``, numeric), DuckDB's own
    ``duckdb`` for the rest (float4/float8: float8 as in PostgreSQL)."""
    overloads = [f"(x BIGINT) AS {exact}", f"(x HUGEINT) AS {exact}"]
    if numeric:
        overloads.append(f"(x {UNCONSTRAINED_NUMERIC}) AS {exact}")
    overloads += [f"(x DOUBLE) AS {duckdb}", f"(x) AS {duckdb}"]
    return ", ".join(overloads)


_SAMPLE = "count(x) * (count(x) - 1)"
_POPULATION = "count(x) * count(x)"
_VAR_SAMP = f"{SCHEMA}.main.quackml_pg_variance(x, {_SAMPLE})"
_VAR_POP = f"{SCHEMA}.main.quackml_pg_variance(x, {_POPULATION})"
_NUMERIC_AGGREGATES = {
    name: _numeric_aggregate(exact, f"system.main.{duckdb_name}(x)", name == "avg")
    for name, exact, duckdb_name in (
        ("avg", f"{SCHEMA}.main.quackml_pg_div16(sum(x), count(x))", "avg"),
        ("variance", _VAR_SAMP, "var_samp"),
        ("var_samp", _VAR_SAMP, "var_samp"),
        ("var_pop", _VAR_POP, "var_pop"),
        ("stddev", f"quackml_pg_sqrt16({_VAR_SAMP})", "stddev_samp"),
        ("stddev_samp", f"quackml_pg_sqrt16({_VAR_SAMP})", "stddev_samp"),
        ("stddev_pop", f"quackml_pg_sqrt16({_VAR_POP})", "stddev_pop"),
    )
}
#: avg(x) OVER w of a column x, which the rewrite calls as this of (x, sum(x) OVER w,
#: count(x) OVER w, avg(x) OVER w): x picks the overload (the windows' types are unknown
#: to that choice), and the arguments an overload does not use are not computed
AVG_WINDOW = "quackml_pg_avg_window"
_AVG_WINDOW_EXACT = f"{SCHEMA}.main.quackml_pg_div16(s, n)"
_HELPER_MACROS[AVG_WINDOW] = ", ".join(
    [f"(x BIGINT, s, n, a) AS {_AVG_WINDOW_EXACT}",
     f"(x HUGEINT, s, n, a) AS {_AVG_WINDOW_EXACT}",
     f"(x {UNCONSTRAINED_NUMERIC}, s, n, a) AS {_AVG_WINDOW_EXACT}",
     "(x DOUBLE, s, n, a) AS a", "(x, s, n, a) AS a"])
#: avg(DISTINCT x), which the rewrite calls this (a macro takes no DISTINCT)
AVG_DISTINCT = "quackml_pg_avg_distinct"
_HELPER_MACROS[AVG_DISTINCT] = _numeric_aggregate(
    f"{SCHEMA}.main.quackml_pg_div16(sum(DISTINCT x), count(DISTINCT x))",
    "system.main.avg(DISTINCT x)", True)
_AGGREGATE_MACROS.update(_NUMERIC_AGGREGATES)

#: the functions the rewrite qualifies into quackml_pg
NAMES = frozenset(_macros(frozenset())) | frozenset(_TABLE_MACROS) | frozenset(_AGGREGATE_MACROS)
#: aggregates among them: DuckDB's macros take no DISTINCT, ORDER BY, FILTER or OVER, so
#: a call with one of those stays DuckDB's own aggregate (server.postgres.catalog.rewrite;
#: but avg(DISTINCT x) is AVG_DISTINCT's)
AGGREGATES = frozenset(_AGGREGATE_MACROS)


class PgFunctionError(ValueError):
    """An error of one of these functions, with PostgreSQL's SQLSTATE (registered in
    ``server.errors.UDF_ERROR_CLASSES`` by ``install``: the class name travels through
    DuckDB's error text)."""
    sqlstate = "22023"   # invalid_parameter_value


class FormatError(PgFunctionError):
    sqlstate = "22023"


class DatetimeFormatError(PgFunctionError):
    sqlstate = "22007"   # invalid_datetime_format


class DatetimeOverflowError(PgFunctionError):
    sqlstate = "22008"   # datetime_field_overflow


class NumberFormatError(PgFunctionError):
    """Invalid input of a number or a JSON value."""
    sqlstate = "22P02"   # invalid_text_representation


class NullIdentifierError(PgFunctionError):
    sqlstate = "22004"   # null_value_not_allowed


_SPEC = re.compile(r"%(?:(\d+)\$)?(-)?(\*(?:\d+\$)?|\d+)?([a-zA-Z%])")


def pg_format(fmt: str | None, args: list[str | None] | None, keywords: frozenset[str]
              ) -> str | None:
    """PostgreSQL's format(): %s, %I, %L and %%, with n$ positions, the - flag and widths."""
    if fmt is None:
        return None
    values = list(args or [])
    out: list[str] = []
    pos = 0
    next_arg = 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:i])
        m = _SPEC.match(fmt, i)
        if m is None:
            raise FormatError("unterminated format() type specifier")
        position, minus, width, kind = m.groups()
        pos = m.end()
        if kind == "%":
            out.append("%")
            continue
        if kind not in "sIL":
            raise FormatError(f'unrecognized format() type specifier "{kind}"')
        size = 0
        if width is not None:
            if width.startswith("*"):
                ref = width[1:-1]
                index = int(ref) - 1 if ref else next_arg
                if not ref:
                    next_arg += 1
                if index >= len(values):
                    raise FormatError("too few arguments for format()")
                size = int(values[index] or 0)
            else:
                size = int(width)
        if position is not None:
            index = int(position) - 1
            if index < 0:
                raise FormatError("format specifies argument 0, but arguments are numbered "
                                  "from 1")
            next_arg = index + 1
        else:
            index = next_arg
            next_arg += 1
        if index >= len(values):
            raise FormatError("too few arguments for format()")
        value = values[index]
        if kind == "s":
            piece = "" if value is None else value
        elif kind == "I":
            if value is None:
                raise NullIdentifierError("null values cannot be formatted as an SQL "
                                          "identifier")
            piece = quote_ident(value, keywords)
        else:
            piece = "NULL" if value is None else quote_literal(value)
        left = minus is not None or size < 0
        size = abs(size)
        out.append(piece.ljust(size) if left else piece.rjust(size))
    return "".join(out)


def quote_ident(name: str, keywords: frozenset[str]) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in keywords:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    quoted = "'" + value.replace("'", "''") + "'"
    if "\\" in value:
        return "E" + quoted.replace("\\", "\\\\")
    return quoted


def group_refs(pattern: str | None) -> str | None:
    """``\\1 NUL \\2 ...`` for the capturing groups of a regular expression ('' for
    none): the pattern is only compiled, never run, in Python."""
    if pattern is None:
        return None
    try:
        groups = re.compile(pattern).groups
    except re.error:
        groups = len(re.findall(r"(?<!\\)\((?!\?)", pattern))
    return "\x00".join(f"\\{i}" for i in range(1, min(groups, 9) + 1))


# to_char / to_date fields, longest first; FM (fill mode) suppresses padding
_FIELDS = re.compile(r'"[^"]*"|FM|HH24|HH12|HH|YYYY|YY|MM|MI|MS|US|SS|DD|MONTH|Month|month|'
                     r"MON|Mon|mon|DAY|Day|day|DY|Dy|dy|AM|PM|am|pm|A\.M\.|P\.M\.|D|Q|.",
                     re.S)


_TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
             "TIMESTAMP_NS", "TIME")


def to_char(text: str | None, duckdb_type: str | None, pattern: str | None) -> str | None:
    """PostgreSQL's to_char of a date, time stamp or number (given as DuckDB's text of
    the value and its DuckDB type)."""
    if text is None or duckdb_type is None or pattern is None:
        return None
    if duckdb_type in _TEMPORAL:
        if duckdb_type == "TIME":
            text = "2000-01-01 " + text
        if re.search(r"[+-]\d\d$", text):
            text += ":00"
        return datetime_to_char(dt.datetime.fromisoformat(text).replace(tzinfo=None), pattern)
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise FormatError(f"to_char() of {duckdb_type.lower()} is not supported") from None
    return number_to_char(number, pattern)


_NUMBER_FIELDS = re.compile(r'"[^"]*"|FM|MI|PL|SG|[90.,DGS]|.', re.S | re.I)


def number_to_char(value: decimal.Decimal, pattern: str) -> str:
    """PostgreSQL's to_char of a number: 9 0 . D , G S MI FM and literal text."""
    fields = [m.group(0) for m in _NUMBER_FIELDS.finditer(pattern)]
    fill = any(f.upper() == "FM" for f in fields)
    fields = [f for f in fields if f.upper() != "FM"]
    point = next((k for k, f in enumerate(fields) if f in (".", "D", "d")), len(fields))
    int_slots = [k for k in range(point) if fields[k] in ("9", "0")]
    frac_slots = [k for k in range(point, len(fields)) if fields[k] in ("9", "0")]
    negative = value < 0
    rounded = abs(value).quantize(decimal.Decimal(1).scaleb(-len(frac_slots)),
                                  rounding=decimal.ROUND_HALF_UP)
    int_text, _, frac_text = f"{rounded:f}".partition(".")
    frac_text = frac_text.ljust(len(frac_slots), "0")
    if int_text == "0" and frac_slots:
        int_text = ""
    if len(int_text) > len(int_slots):
        return ("" if fill else " ") + "".join(
            "#" if f in ("9", "0") else "." if k == point else f for k, f in enumerate(fields))
    zero_from = next((n for n, k in enumerate(int_slots) if fields[k] == "0"), len(int_slots))
    first_digit = min(zero_from, len(int_slots) - len(int_text))
    if not int_text and not frac_slots:
        first_digit = len(int_slots) - 1
    digits = iter(int_text.rjust(len(int_slots) - first_digit, "0"))
    explicit_sign = any(f.upper() in ("S", "MI", "PL", "SG") for f in fields)
    # a leading S stands right before the first digit: "S999" of -5 is "  -5"
    leading_s = bool(int_slots) and any(fields[k].upper() == "S" for k in range(int_slots[0]))
    if leading_s:
        fields = [f for f in fields if f.upper() != "S"]
        return number_to_char_signed(fields, value, fill)
    out: list[str] = []
    started = False
    slot = 0
    for k, f in enumerate(fields):
        if k < point and f in ("9", "0"):
            if slot >= first_digit:
                if not started and not explicit_sign:
                    out.append("-" if negative else "" if fill else " ")
                started = True
                out.append(next(digits))
            else:
                out.append("" if fill else " ")
            slot += 1
        elif k < point and f in (",", "G", "g"):
            out.append("," if started else "" if fill else " ")
        elif k == point:
            if not started and not explicit_sign:
                out.append("-" if negative else "" if fill else " ")
                started = True
            out.append(".")
        elif f in ("9", "0"):
            out.append(frac_text[frac_slots.index(k)])
        elif f.upper() in ("S", "SG"):
            out.append("-" if negative else "+")
        elif f.upper() == "MI":
            out.append("-" if negative else "" if fill else " ")
        elif f.upper() == "PL":
            out.append("" if negative else "+")
        elif f.startswith('"'):
            out.append(f[1:-1])
        else:
            out.append(f)
    text = "".join(out)
    if fill and frac_slots:
        # FM: no trailing zeros where the pattern has 9s
        keep = max((n for n, k in enumerate(frac_slots) if fields[k] == "0"), default=-1)
        tail = frac_text[keep + 1:]
        stripped = tail.rstrip("0")
        if len(stripped) < len(tail):
            cut = len(tail) - len(stripped)
            head, dot, rest = text.rpartition(".")
            rest = rest[:len(frac_text) - cut] + rest[len(frac_text):]
            text = head + dot + rest
    return text


def number_to_char_signed(fields: list[str], value: decimal.Decimal, fill: bool) -> str:
    """number_to_char with the sign (+ or -) right before the first digit."""
    text = number_to_char(abs(value), "".join(fields) if not fill else "FM" + "".join(fields))
    body = text.lstrip(" ")
    return text[:len(text) - len(body)][:-1] + ("-" if value < 0 else "+") + body \
        if not fill and len(text) > len(body) else ("-" if value < 0 else "+") + body


_SQRT_CONTEXT = decimal.Context(prec=60)
_UNIT16 = decimal.Decimal(1).scaleb(-16)


def sqrt16(value: decimal.Decimal) -> decimal.Decimal:
    """The square root rounded half up to 16 decimals (PostgreSQL's stddev of the
    variance rounded to its scale; the value is never negative)."""
    return value.sqrt(_SQRT_CONTEXT).quantize(_UNIT16, rounding=decimal.ROUND_HALF_UP)


def to_number(text: str | None, pattern: str | None) -> str | None:
    """PostgreSQL's to_number: the digits, sign and decimal point of ``text``."""
    if text is None or pattern is None:
        return None
    cleaned = re.sub(r"[^0-9.\-]", "", text.replace(",", ""))
    if cleaned in ("", "-", ".", "-."):
        raise NumberFormatError(f'invalid input syntax for type numeric: "{text}"')
    return cleaned


def datetime_to_char(value: dt.datetime, pattern: str) -> str:
    """PostgreSQL's to_char of a date or time stamp for the common fields."""
    out: list[str] = []
    fill = False
    for m in _FIELDS.finditer(pattern):
        f = m.group(0)
        if f == "FM":
            fill = True
            continue
        hour12 = value.hour % 12 or 12
        numbers = {"YYYY": (value.year, 4), "YY": (value.year % 100, 2),
                   "MM": (value.month, 2), "DD": (value.day, 2), "HH24": (value.hour, 2),
                   "HH12": (hour12, 2), "HH": (hour12, 2), "MI": (value.minute, 2),
                   "SS": (value.second, 2), "MS": (value.microsecond // 1000, 3),
                   "US": (value.microsecond, 6), "D": (value.isoweekday() % 7 + 1, 1),
                   "Q": ((value.month - 1) // 3 + 1, 1)}
        if f in numbers:
            number, width = numbers[f]
            out.append(str(number) if fill else str(number).zfill(width))
        elif f.lower() in ("month", "day"):
            name = value.strftime("%B" if f.lower() == "month" else "%A")
            name = name.upper() if f.isupper() else name.lower() if f.islower() else name
            out.append(name if fill else name.ljust(9))
        elif f.lower() in ("mon", "dy"):
            name = value.strftime("%b" if f.lower() == "mon" else "%a")
            out.append(name.upper() if f.isupper() else name.lower() if f.islower() else name)
        elif f.upper() in ("AM", "PM", "A.M.", "P.M."):
            mark = ("AM" if value.hour < 12 else "PM") if len(f) == 2 else \
                ("A.M." if value.hour < 12 else "P.M.")
            out.append(mark if f.isupper() else mark.lower())
        elif f.startswith('"'):
            out.append(f[1:-1])
        else:
            out.append(f)
        fill = False
    return "".join(out)


_PARSE = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d", "HH24": "%H", "HH12": "%I",
          "HH": "%I", "MI": "%M", "SS": "%S", "US": "%f", "MONTH": "%B", "MON": "%b",
          "DAY": "%A", "DY": "%a", "AM": "%p", "PM": "%p"}


def to_timestamp(text: str | None, pattern: str | None) -> dt.datetime | None:
    """PostgreSQL's to_timestamp/to_date(text, pattern) for the common fields."""
    if text is None or pattern is None:
        return None
    parts: list[str] = []
    for m in _FIELDS.finditer(pattern):
        f = m.group(0)
        if f == "FM":
            continue
        parts.append(_PARSE.get(f.upper(), f[1:-1] if f.startswith('"') else
                                f.replace("%", "%%")))
    written, form = " ".join(text.split()), " ".join("".join(parts).split())
    try:
        return dt.datetime.strptime(written, form)
    except ValueError:
        # the text has the pattern's shape with numbers out of range: 2024-99-99
        shape = re.sub(r"%[YymdHIMSf]", lambda m: r"\d+", re.escape(form).replace("%%", "%"))
        shape = re.sub(r"%[BbAap]", lambda m: r"\w+", shape)
        if re.fullmatch(shape, written):
            raise DatetimeOverflowError(
                f'date/time field value out of range: "{text}"') from None
        raise DatetimeFormatError(f'invalid value "{text}" for the pattern "{pattern}"') \
            from None


def jsonb_concat(a: str | None, b: str | None) -> str | None:
    """jsonb || jsonb: objects merged (the right one's keys win), arrays concatenated,
    anything else made an array first."""
    if a is None or b is None:
        return None
    try:   # a text column || a JSON-looking literal is taken for jsonb: say so
        left, right = json.loads(a), json.loads(b)
    except ValueError:
        raise NumberFormatError("invalid input syntax for type json (|| of a JSON "
                                "literal: cast the other operand to text to concatenate)"
                                ) from None
    if isinstance(left, dict) and isinstance(right, dict):
        return json.dumps({**left, **right})
    return json.dumps((left if isinstance(left, list) else [left]) +
                      (right if isinstance(right, list) else [right]))


def jsonb_delete(j: str | None, key: str | None) -> str | None:
    """jsonb - text: the object without the key, the array without the string."""
    if j is None or key is None:
        return None
    value = json.loads(j)
    if isinstance(value, dict):
        value.pop(key, None)
    elif isinstance(value, list):
        value = [v for v in value if v != key]
    else:
        raise PgFunctionError("cannot delete from scalar")
    return json.dumps(value)


def jsonb_pretty(j: str | None) -> str | None:
    return None if j is None else json.dumps(json.loads(j), indent=4)


def json_strip_nulls(j: str | None) -> str | None:
    """Object fields that are null removed, at every depth (array elements stay)."""
    def strip(v: object) -> object:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return None if j is None else json.dumps(strip(json.loads(j)))


def jsonb_set(j: str | None, path: str | None, value: str | None, create: bool | None
              ) -> str | None:
    """jsonb_set(target, '{a,b}', new_value[, create_missing])."""
    if j is None or path is None or value is None:
        return None
    doc = json.loads(j)
    keys = [p.strip().strip('"') for p in path.strip().strip("{}").split(",") if p.strip()]
    if not keys:
        return j
    parent = doc
    for key in keys[:-1]:
        if isinstance(parent, dict) and key in parent:
            parent = parent[key]
        elif isinstance(parent, list) and key.lstrip("-").isdigit() and \
                -len(parent) <= int(key) < len(parent):
            parent = parent[int(key)]
        else:
            return json.dumps(doc)
    last, new = keys[-1], json.loads(value)
    if isinstance(parent, dict):
        if last in parent or create:
            parent[last] = new
    elif isinstance(parent, list) and last.lstrip("-").isdigit():
        index = int(last)
        if -len(parent) <= index < len(parent):
            parent[index] = new
        elif create:
            if index < 0:
                parent.insert(0, new)
            else:
                parent.append(new)
    return json.dumps(doc)


def _keywords(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The words quote_ident quotes: PostgreSQL's keywords but the unreserved ones
    (DuckDB's grammar is PostgreSQL's, and so are its keyword categories)."""
    rows = con.execute("SELECT keyword_name FROM duckdb_keywords() "
                       "WHERE keyword_category <> 'unreserved'").fetchall()
    return frozenset(str(r[0]).lower() for r in rows)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the functions in quackml_pg (attached by ``server.postgres.catalog.install``)."""
    for error in (PgFunctionError, FormatError, DatetimeFormatError, DatetimeOverflowError,
                  NumberFormatError, NullIdentifierError):
        UDF_ERROR_CLASSES[error.__name__] = error.sqlstate
    keywords = _keywords(con)
    present = con.execute("SELECT count(*) FROM duckdb_functions() "
                          "WHERE function_name = 'quackml_pg_format'").fetchall()[0][0]
    if not present:
        def format_(f: str | None, a: list[str | None] | None) -> str | None:
            return pg_format(f, a, keywords)

        con.create_function("quackml_pg_format", format_,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR[]"], "VARCHAR", null_handling="special")
        con.create_function("quackml_pg_to_char", to_char,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR", "VARCHAR"], "VARCHAR",
                            null_handling="special")
        con.create_function("quackml_pg_to_number", to_number,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR"], "VARCHAR", null_handling="special")
        con.create_function("quackml_pg_to_timestamp", to_timestamp,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR"], "TIMESTAMP", null_handling="special")
        con.create_function("quackml_pg_jsonb_concat", jsonb_concat,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR"], "JSON", null_handling="special")
        con.create_function("quackml_pg_jsonb_delete", jsonb_delete,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR"], "JSON", null_handling="special")
        con.create_function("quackml_pg_jsonb_pretty", jsonb_pretty,  # type: ignore[call-overload]
                            ["VARCHAR"], "VARCHAR", null_handling="special")
        con.create_function("quackml_pg_json_strip_nulls",  # type: ignore[call-overload]
                            json_strip_nulls, ["VARCHAR"], "JSON", null_handling="special")
        con.create_function("quackml_pg_jsonb_set", jsonb_set,  # type: ignore[call-overload]
                            ["VARCHAR", "VARCHAR", "VARCHAR", "BOOLEAN"], "JSON",
                            null_handling="special")
        con.create_function("quackml_pg_group_refs", group_refs,  # type: ignore[call-overload]
                            ["VARCHAR"], "VARCHAR", null_handling="special")
        con.create_function("quackml_pg_sqrt16", sqrt16,  # type: ignore[call-overload]
                            [NUMERIC_RESULT], NUMERIC_RESULT)
    for name, body in _macros(keywords).items():
        con.execute(f"CREATE OR REPLACE MACRO {SCHEMA}.main.{name}{body}")
    for name, body in (_HELPER_MACROS | _TABLE_MACROS | _AGGREGATE_MACROS).items():
        con.execute(f"CREATE OR REPLACE MACRO {SCHEMA}.main.{name}{body}")
