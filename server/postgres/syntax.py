"""PostgreSQL syntax that DuckDB reads otherwise, as token-level edits.

``edits`` gives the changes of a statement's text, from its tokens (applied by
``server.postgres.catalog.rewrite`` with its own):

- the type ``jsonb`` is DuckDB's ``JSON`` (DuckDB has one JSON type; what
  the select list shows to be jsonb is sent as ``jsonb``, see
  ``server.postgres.exprtypes``, the rest as ``json``);
- ``numeric`` and ``decimal`` without a type modifier are ``DECIMAL(38,10)``
  (DuckDB's own default, ``DECIMAL(18,3)``, rounds to 3 decimals);
- ``LIKE``/``ILIKE`` with a string pattern holding a backslash gets
  ``ESCAPE '\\'`` (PostgreSQL's default escape character; DuckDB has none);
- ``SIMILAR TO`` with a string pattern gets the pattern as the regular
  expression PostgreSQL makes of it (``%`` is ``.*``, ``_`` is ``.``);
  DuckDB's ``SIMILAR TO`` takes a regular expression as it is;
- ``'{1,2}'::int[]``: a PostgreSQL array literal cast to an array type is
  the list literal DuckDB reads (``'[1,2]'``);
- a string literal cast to ``boolean`` takes PostgreSQL's words (``'on'``,
  ``'off'``, ``'yes'``, ``'no'`` and prefixes);
- ``'\\x4142'::bytea`` is PostgreSQL's hex input (``unhex('4142')``);
- ``generate_series(...)``, ``json(b)_object_keys(...)`` and
  ``json(b)_array_elements(...)`` as items of a SELECT list give rows, as
  set-returning functions do in PostgreSQL (``unnest(generate_series(...))``);
- ``extract(field FROM x)`` is numeric, as in PostgreSQL (DuckDB's is
  bigint or double): ``CAST(extract(...) AS DECIMAL(...))``, with
  PostgreSQL's 6 decimals for epoch and second, 3 for milliseconds;
- ``||`` and ``- 'key'`` with a JSON operand (see below) are jsonb's merge and
  key removal, not text concatenation and subtraction;
- jsonb's ``?``, ``?|``, ``?&`` are calls (``x ? 'k'`` is
  ``jsonb_exists(x, 'k')``), ``@>`` and ``<@`` are ``json_contains`` when an
  operand is JSON to the eye (cast to json/jsonb, an ``->`` chain, a string
  holding an object; otherwise they stay DuckDB's list containment), and
  ``#>``/``#>>`` with a literal path are ``->``/``->>`` with a JSON path; the
  operands must be plain (literals, names, calls, parentheses, casts, ``->``
  chains), else the statement reaches DuckDB as written;
- ``json_agg(x ORDER BY y)`` is ``to_json(list(x ORDER BY y))`` (a macro
  cannot take ``ORDER BY``);
- string literals cast to an integer type, ``date`` or ``interval``, and untyped
  ones in arithmetic with a number, read with PostgreSQL's input rules
  (``server.postgres.literal_input``: ``'42.5'::integer`` is 22P02,
  ``'May 17, 2024'::date`` a date, ``'5' + 1`` is 6);
- ``(a, b) OVERLAPS (c, d)`` is ``pg_overlaps(a, b, c, d)`` (a macro);
  ``INTERVAL '1 hour' / 2`` multiplies by ``1 / 2.0`` (DuckDB has no interval / number);
  ``ARRAY[1, 2] || 3`` and ``0 || ARRAY[1]`` are ``list_append``/``list_prepend``;
- a locking clause (``FOR UPDATE [OF t] [NOWAIT | SKIP LOCKED]``, ``FOR SHARE``
  ...) is dropped after its ``OF`` names are checked (42P01): DuckDB locks no rows
  (its transactions conflict on writing the same row instead), as ``LOCK TABLE``;
- ``ARRAY[...][i]`` is a syntax error (42601), as in PostgreSQL (``(ARRAY[...])[i]``);
- ``substring(s, i, n)`` checks ``n`` (22011 when negative; DuckDB gives '');
- ``|/ x`` is ``sqrt(x)``, ``a # b`` is ``xor(a, b)`` and ``x BETWEEN SYMMETRIC a
  AND b`` is ``between_symmetric(x, a, b)`` (a macro) for plain operands;
- a name ``at`` (a column: ``created at``, ``at timestamp``) is quoted: DuckDB
  reserves AT (time travel), PostgreSQL only reads ``AT TIME ZONE``/``AT LOCAL``.
- a number with an exponent (``1e3``, ``1.5e-3``) is numeric, as in PostgreSQL
  (DuckDB's is DOUBLE), when it fits ``numeric`` here (28 digits before the
  point, 10 after); otherwise it stays DOUBLE (``1e308``).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Sequence

from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from server.errors import ServerError
from server.postgres import literal_input
from server.postgres.functions import SCHEMA, UNCONSTRAINED_NUMERIC
from server.sql.text import back_at_depth, closing_paren, top_level_items

_BRACKETS = (TokenType.L_BRACKET, TokenType.R_BRACKET)

#: PostgreSQL aggregates as DuckDB's (a macro cannot take ORDER BY): json_agg(x ORDER BY y)
#: is to_json(list(x ORDER BY y))
WRAPPED = {"json_agg": ("to_json(list", ")"), "jsonb_agg": ("to_json(list", ")")}
#: set-returning functions as items of a SELECT list: unnest(<call>(args<path>)) gives
#: their rows (the FROM forms are table macros)
SET_RETURNING = {
    "generate_series": (f"{SCHEMA}.main.generate_series_list", ""),
    "json_object_keys": ("json_keys", ""), "jsonb_object_keys": ("json_keys", ""),
    "json_array_elements": ("json_extract", ", '$[*]'"),
    "jsonb_array_elements": ("json_extract", ", '$[*]'"),
}
#: type names DuckDB spells otherwise (when not followed by a type modifier)
TYPES = {"jsonb": "JSON", "numeric": UNCONSTRAINED_NUMERIC, "decimal": UNCONSTRAINED_NUMERIC}

#: the words that make a statement worth a look by ``edits``
TRIGGERS = frozenset(WRAPPED) | frozenset(TYPES) | frozenset(SET_RETURNING) | {
    "like", "ilike", "similar to", "bytea", "::", "cast", "extract", "bool", "boolean", "?",
    "?|", "?&", "@>", "<@", "#>", "#>>", "||", "-", "is", "at", "|/", "#",
    "symmetric", "+", "*", "/", "date", "interval", "substring",
    "overlaps", "for", "array", "varchar", "char", "character", "bpchar"}


# -- Python functions ---------------------------------------------------------------



_PATTERN_END = frozenset({TokenType.R_PAREN, TokenType.COMMA, TokenType.SEMICOLON,
                          TokenType.AND, TokenType.OR, TokenType.THEN, TokenType.WHEN,
                          TokenType.ELSE, TokenType.END, TokenType.ORDER_BY,
                          TokenType.GROUP_BY, TokenType.LIMIT, TokenType.HAVING,
                          TokenType.UNION, TokenType.EXCEPT, TokenType.INTERSECT})


# extract() fields whose numeric has decimals in PostgreSQL: (DuckDB's field, what follows
# the call); other fields are whole numbers
_EXTRACT = {
    "epoch": (None, " AS DECIMAL(38,6))"),
    "second": ("microsecond", " / 1000000.0 AS DECIMAL(38,6))"),
    "seconds": ("microsecond", " / 1000000.0 AS DECIMAL(38,6))"),
    "millisecond": ("millisecond", " AS DECIMAL(38,3))"),
    "milliseconds": ("millisecond", " AS DECIMAL(38,3))"),
}
# PostgreSQL's boolean input: any prefix of true/false/yes/no, on/off (of, not o), 1/0
_BOOLEAN = {**{w[:k]: "'true'" for w in ("true", "yes") for k in range(1, len(w) + 1)},
            **{w[:k]: "'false'" for w in ("false", "no") for k in range(1, len(w) + 1)},
            "on": "'true'", "of": "'false'", "off": "'false'", "1": "'true'", "0": "'false'"}
_BYTEA_HEX = re.compile(r"\\x[0-9a-fA-F]*")


_NUMERIC_UNIT = decimal.Decimal(1).scaleb(-10)   # the scale of UNCONSTRAINED_NUMERIC
_WIDE = decimal.Context(prec=50)


def exponent_numeric(text: str) -> str | None:
    """A number written with an exponent as the numeric PostgreSQL reads it
    (``1e3`` -> ``CAST('1000' AS DECIMAL(38,0))``: the scale it is written with, as
    PostgreSQL's numeric keeps it; ``1e10::text`` is ``10000000000``), or None when it
    does not fit ``numeric`` here (28 digits before the point, 10 after)."""
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() >= 28 or \
            value != value.quantize(_NUMERIC_UNIT, context=_WIDE):
        return None
    scale = max(0, -value.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"CAST('{value:f}' AS DECIMAL(38,{scale}))"


def _name(tok: Token) -> bool:
    return tok.token_type is not TokenType.STRING and tok.text.isidentifier()


def _string_operand(tokens: Sequence[Token], j: int) -> bool:
    """Whether token j is a string literal that is the whole right operand."""
    if j >= len(tokens) or tokens[j].token_type is not TokenType.STRING:
        return False
    return j + 1 == len(tokens) or tokens[j + 1].token_type in _PATTERN_END


def _string_operand_start(tokens: Sequence[Token], j: int) -> bool:
    return j < len(tokens) and tokens[j].token_type is TokenType.STRING


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def similar_to_regex(pattern: str) -> str:
    """PostgreSQL's SIMILAR TO pattern as the regular expression it means (whole string)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        elif c in ".^$":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _array_type_follows(tokens: Sequence[Token], j: int) -> bool:
    """Whether tokens j... are a type name followed by ``[]`` (``int[]``,
    ``double precision[]``, ``varchar(3)[]``, ``pg_catalog.oid[]``)."""
    n = len(tokens)
    while j < n and (_name(tokens[j]) or tokens[j].token_type is TokenType.DOT):
        j += 1
    if j < n and tokens[j].token_type is TokenType.L_PAREN:
        close = closing_paren(tuple(tokens), j)
        j = n if close is None else close + 1
    return j + 1 < n and tokens[j].token_type is TokenType.L_BRACKET and \
        tokens[j + 1].token_type is TokenType.R_BRACKET


def array_literal(text: str) -> str:
    """A PostgreSQL array literal (``{1,2}``, ``{"a b",c}``, ``{{1},{2}}``) as the list
    literal DuckDB's cast reads (``[1,2]``): the braces outside quotes become brackets."""
    out = []
    quoted = escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif not quoted and c in "{}":
            c = "[" if c == "{" else "]"
        out.append(c)
    return "".join(out)


_SELECT_LIST_END = frozenset({TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY,
                              TokenType.ORDER_BY, TokenType.HAVING, TokenType.LIMIT,
                              TokenType.UNION, TokenType.EXCEPT, TokenType.INTERSECT,
                              TokenType.WINDOW, TokenType.QUALIFY})


def _select_list_item(tokens: Sequence[Token], i: int) -> bool:
    """Whether token i starts an item of a SELECT list (right after SELECT, DISTINCT or a
    comma of that list)."""
    prev = tokens[i - 1] if i else None
    if prev is None or prev.token_type not in (TokenType.SELECT, TokenType.DISTINCT,
                                               TokenType.COMMA):
        return False
    for j in back_at_depth(tokens, i):
        kind = tokens[j].token_type
        if kind is TokenType.SELECT:
            return True
        if kind is TokenType.L_PAREN or kind in _SELECT_LIST_END:
            return False
    return False


_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})


def _primary_start(tokens: tuple[Token, ...], j: int) -> int | None:
    """Start of the operand ending at token j: a literal, a (dotted) name, a call, a
    parenthesised expression, an ARRAY[...], each with casts and subscripts, and a chain
    of -> / ->> on such operands."""
    if j < 0:
        return None
    kind = tokens[j].token_type
    start: int | None
    t = j
    while t >= 2 and tokens[t].token_type is TokenType.R_BRACKET and \
            tokens[t - 1].token_type is TokenType.L_BRACKET:
        t -= 2   # int[]
    if t >= 2 and _name(tokens[t]) and tokens[t - 1].token_type is TokenType.DCOLON:
        start = _primary_start(tokens, t - 2)   # x::jsonb: the cast's operand
    elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET):
        opening = TokenType.L_PAREN if kind is TokenType.R_PAREN else TokenType.L_BRACKET
        start = _opening(tokens, j, (opening, kind))
        if start is None:
            return None
        before = tokens[start - 1] if start > 0 else None
        if before is not None and (before.token_type in _NAMES or   # a call, ARRAY[...]
                                   before.token_type is TokenType.ARRAY or
                                   kind is TokenType.R_BRACKET):    # or a subscript
            start = _primary_start(tokens, start - 1)
    elif kind in (TokenType.STRING, TokenType.NUMBER) or kind in _NAMES:
        start = j
        while start >= 2 and tokens[start - 1].token_type is TokenType.DOT:
            start -= 2
    else:
        return None
    if start is not None and start >= 2 and \
            tokens[start - 1].token_type in (TokenType.ARROW, TokenType.DARROW):
        return _primary_start(tokens, start - 2)
    return start


def _primary_end(tokens: tuple[Token, ...], j: int) -> int | None:
    """End of the operand starting at token j (see _primary_start), casts included."""
    n = len(tokens)
    if j >= n:
        return None
    kind = tokens[j].token_type
    end: int | None
    if kind is TokenType.L_PAREN:
        end = closing_paren(tokens, j)
    elif kind is TokenType.ARRAY and j + 1 < n and \
            tokens[j + 1].token_type is TokenType.L_BRACKET:
        end = closing_paren(tokens, j + 1, _BRACKETS)
    elif kind in (TokenType.STRING, TokenType.NUMBER) or kind in _NAMES:
        end = j
        while end + 2 < n and tokens[end + 1].token_type is TokenType.DOT:
            end += 2
        if end + 1 < n and tokens[end + 1].token_type is TokenType.L_PAREN:
            end = closing_paren(tokens, end + 1)
    else:
        return None
    while end is not None and end + 2 < n and tokens[end + 1].token_type is TokenType.DCOLON:
        end += 2
        while end + 2 < n and tokens[end + 1].token_type is TokenType.L_BRACKET and \
                tokens[end + 2].token_type is TokenType.R_BRACKET:
            end += 2
    return end




def _json_kind(tokens: Sequence[Token]) -> bool | None:
    """Whether an operand is JSON to the eye (True: cast to json/jsonb, ends in ``->``,
    a string literal holding a JSON object), text to the eye (False: ends in ``->>``, a
    string literal, a cast to anything else) or unknown (None: a name, a call)."""
    if not tokens:
        return None
    kind: bool | None = None
    depth = 0
    for k, tok in enumerate(tokens):
        t = tok.token_type
        if t in (TokenType.L_PAREN, TokenType.L_BRACKET):
            if depth == 0 and k == 0:   # a parenthesised operand: what is inside
                close = closing_paren(tuple(tokens), 0) if t is TokenType.L_PAREN else None
                if close is not None:
                    kind = _json_kind(tokens[1:close])
            depth += 1
        elif t in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif depth:
            continue
        elif t is TokenType.ARROW:
            kind = True
        elif t is TokenType.DARROW:
            kind = False
        elif t is TokenType.DCOLON and k + 1 < len(tokens):
            kind = tokens[k + 1].text.lower() in ("json", "jsonb")
        elif t is TokenType.STRING and k == 0:
            kind = re.match(r'\s*\{\s*"[^"]*"\s*:', tok.text) is not None
    return kind


def json_path(pg_path: str) -> str:
    """A PostgreSQL text-array path (``{a,b,1}``) as a JSON path (``$."a"."b"[1]``)."""
    parts = [p.strip().strip('"') for p in pg_path.strip().strip("{}").split(",") if p.strip()]
    return "$" + "".join(f"[{p}]" if p.lstrip("-").isdigit() else
                         '."' + p.replace('"', '\\"') + '"' for p in parts)


_JSON_OPERATORS = {TokenType.PLACEHOLDER: "jsonb_exists", TokenType.QMARK_PIPE: "jsonb_exists_any",
                   TokenType.QMARK_AMP: "jsonb_exists_all", TokenType.AT_GT: "json_contains",
                   TokenType.LT_AT: "jsonb_contained", TokenType.DPIPE: "jsonb_concat",
                   TokenType.DASH: "jsonb_delete"}
# operators that mean something else on other types: rewritten only for JSON operands
_JSON_ONLY = frozenset({TokenType.AT_GT, TokenType.LT_AT, TokenType.DPIPE, TokenType.DASH})


def _json_operator(tokens: tuple[Token, ...], i: int) -> list[tuple[int, int, str]]:
    """jsonb's ?, ?|, ?&, @>, <@ as calls (x ? 'k' -> jsonb_exists(x, 'k')); none when the
    operands are not plain enough to tell, or @>/<@ do not look like JSON (arrays)."""
    kind = tokens[i].token_type
    if kind is TokenType.PLACEHOLDER and (i + 1 >= len(tokens) or
                                          tokens[i + 1].token_type is not TokenType.STRING):
        return []   # a parameter placeholder
    start = _primary_start(tokens, i - 1)
    end = _primary_end(tokens, i + 1)
    if start is None or end is None:
        return []
    left, right = tokens[start:i], tokens[i + 1:end + 1]
    if kind in _JSON_ONLY:
        # jsonb's when the left operand is JSON to the eye, or (for || @> <@) when it
        # might be and the right one is
        left_kind = _json_kind(left)
        if not (left_kind or (left_kind is None and kind is not TokenType.DASH and
                              _json_kind(right))):
            return []
    if kind is TokenType.DASH and right[-1].token_type is not TokenType.STRING:
        return []   # jsonb - 'key' only
    before = tokens[start - 1] if start else None
    if (before is not None and before.token_type is kind) or \
            (end + 1 < len(tokens) and tokens[end + 1].token_type is kind):
        return []   # a chain (a || b || c): left to DuckDB
    name = _JSON_OPERATORS[kind]
    call = f"{SCHEMA}.main.{name}(" if name.startswith("jsonb") else f"{name}("
    after = tokens[end + 1] if end + 1 < len(tokens) else None
    # an operator's column is ?column? in PostgreSQL, not the call's name
    named = _select_list_item(tokens, start) and \
        (after is None or after.token_type in (TokenType.COMMA, TokenType.FROM))
    return [(tokens[start].start, tokens[start].start - 1, call),
            (tokens[i].start, tokens[i].end, ","),
            (tokens[end].end + 1, tokens[end].end, ') AS "?column?"' if named else ")")]


# tokens after which a parenthesis can open a row constructor (not a call, not IN (...))
_ROW_CONTEXT = frozenset({TokenType.SELECT, TokenType.COMMA, TokenType.WHERE, TokenType.AND,
                          TokenType.OR, TokenType.NOT, TokenType.WHEN, TokenType.THEN,
                          TokenType.ELSE, TokenType.HAVING, TokenType.ON, TokenType.L_PAREN,
                          TokenType.DISTINCT})


def _row_is_null(tokens: tuple[Token, ...], i: int) -> list[tuple[int, int, str]]:
    """ROW(a, b) IS [NOT] NULL and (a, b) IS [NOT] NULL as PostgreSQL's test of every
    field; none for anything else."""
    open_ = i + 1 if tokens[i].token_type is TokenType.ROW else i
    if open_ >= len(tokens) or tokens[open_].token_type is not TokenType.L_PAREN:
        return []
    close = closing_paren(tokens, open_)
    if close is None or close + 2 >= len(tokens) or \
            tokens[close + 1].token_type is not TokenType.IS:
        return []
    negated = tokens[close + 2].token_type is TokenType.NOT
    null = close + 3 if negated else close + 2
    if null >= len(tokens) or tokens[null].token_type is not TokenType.NULL:
        return []
    commas = len(top_level_items(tokens, open_ + 1, close)) - 1
    if tokens[i].token_type is TokenType.L_PAREN and \
            (commas == 0 or tokens[open_ + 1].token_type in (TokenType.SELECT, TokenType.WITH)):
        return []   # (x) IS NULL, (SELECT ...) IS NULL: a value, not a row
    fn = "row_is_not_null" if negated else "row_is_null"
    named = _select_list_item(tokens, i) and (null + 1 >= len(tokens) or tokens[
        null + 1].token_type in (TokenType.COMMA, TokenType.FROM))
    start = tokens[i].start
    return [(start, start - 1, f"{SCHEMA}.main.{fn}("),
            (tokens[close].end + 1, tokens[null].end, ') AS "?column?"' if named else ")")]


_TYPE_TOKENS = Parser.TYPE_TOKENS
_CAST_TYPES = frozenset({"int", "integer", "int2", "int4", "int8", "smallint", "bigint", "date",
                         "interval", "jsonb"})
# the string types with a length PostgreSQL applies in a cast -> literal_input's name
_SIZED_TYPES = {"varchar": "varchar", "character varying": "varchar", "char": "char",
                "character": "char", "bpchar": "char"}
_ARITHMETIC = frozenset({TokenType.PLUS, TokenType.DASH, TokenType.STAR, TokenType.SLASH})
# where an operand starts: what comes before '5' in '5' + 1
_OPERAND_START = frozenset({TokenType.SELECT, TokenType.COMMA, TokenType.L_PAREN,
                            TokenType.WHERE, TokenType.AND, TokenType.OR, TokenType.THEN,
                            TokenType.ELSE, TokenType.WHEN, TokenType.EQ, TokenType.NEQ,
                            TokenType.LT, TokenType.GT, TokenType.LTE, TokenType.GTE})
# where an operand ends: what comes after 1 in '5' + 1
_OPERAND_END = frozenset({TokenType.COMMA, TokenType.R_PAREN, TokenType.FROM, TokenType.WHERE,
                          TokenType.AND, TokenType.OR, TokenType.THEN, TokenType.ELSE,
                          TokenType.END, TokenType.EQ, TokenType.NEQ, TokenType.LT,
                          TokenType.GT, TokenType.LTE, TokenType.GTE, TokenType.ALIAS,
                          TokenType.ORDER_BY, TokenType.GROUP_BY, TokenType.SEMICOLON})


def _cast_target(tokens: tuple[Token, ...], i: int) -> str | None:
    """The type a string literal at tokens[i] is cast to, when one of ``_CAST_TYPES``:
    ``'x'::t``, ``CAST('x' AS t)``, ``t 'x'``."""
    n = len(tokens)
    if i + 2 < n and tokens[i + 1].token_type is TokenType.DCOLON:
        if i >= 1 and tokens[i - 1].token_type in _TYPE_TOKENS:
            return None   # DATE '2024-01-01'::integer: the cast of a typed literal
        target = tokens[i + 2]
        after = tokens[i + 3] if i + 3 < n else None
        if after is not None and after.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            return None
    elif i >= 2 and i + 3 < n and tokens[i - 1].token_type is TokenType.L_PAREN and \
            tokens[i - 2].text.upper() == "CAST" and tokens[i + 1].text.upper() == "AS" and \
            tokens[i + 3].token_type is TokenType.R_PAREN:
        target = tokens[i + 2]
    elif i >= 1 and (i < 2 or tokens[i - 2].token_type not in (TokenType.DCOLON,
                                                                TokenType.ALIAS)) and \
            tokens[i - 1].text.lower() in ("date", "interval") and \
            (i + 1 >= n or tokens[i + 1].token_type is not TokenType.DCOLON):
        target = tokens[i - 1]
    else:
        return None
    low = target.text.lower()
    return low if low in _CAST_TYPES else None


def _sized_cast(tokens: tuple[Token, ...], i: int) -> tuple[str, int] | None:
    """The string type and length a string literal at tokens[i] is cast to:
    ``'x'::varchar(3)``, ``CAST('x' AS char(4))``."""
    n = len(tokens)
    if i + 1 < n and tokens[i + 1].token_type is TokenType.DCOLON:
        if i >= 1 and tokens[i - 1].token_type in _TYPE_TOKENS:
            return None
        at = i + 2
    elif i >= 2 and tokens[i - 1].token_type is TokenType.L_PAREN and \
            tokens[i - 2].text.upper() == "CAST" and i + 1 < n and \
            tokens[i + 1].text.upper() == "AS" and i + 6 < n and \
            tokens[i + 6].token_type is TokenType.R_PAREN:
        at = i + 2
    else:
        return None
    if at + 3 >= n or tokens[at + 1].token_type is not TokenType.L_PAREN or \
            tokens[at + 2].token_type is not TokenType.NUMBER or \
            not tokens[at + 2].text.isdigit() or tokens[at + 3].token_type is not TokenType.R_PAREN:
        return None
    kind = _SIZED_TYPES.get(" ".join(tokens[at].text.lower().split()))
    length = int(tokens[at + 2].text)
    return (kind, length) if kind is not None and length > 0 else None


def _arithmetic_number(tokens: tuple[Token, ...], i: int) -> Token | None:
    """The number literal a string literal at tokens[i] is an operand of arithmetic
    with (``'5' + 1``, ``2 * '3'``), both operands plain."""
    n = len(tokens)

    def ends(j: int) -> bool:
        return j >= n or tokens[j].token_type in _OPERAND_END

    def starts(j: int) -> bool:
        return j < 0 or tokens[j].token_type in _OPERAND_START

    if starts(i - 1) and i + 2 < n and tokens[i + 1].token_type in _ARITHMETIC and \
            tokens[i + 2].token_type is TokenType.NUMBER and ends(i + 3):
        return tokens[i + 2]
    if ends(i + 1) and i >= 2 and tokens[i - 1].token_type in _ARITHMETIC and \
            tokens[i - 2].token_type is TokenType.NUMBER and starts(i - 3):
        return tokens[i - 2]
    return None


def _overlaps(tokens: tuple[Token, ...], i: int) -> tuple[int, int, int] | None:
    """(first pair's "(", its ")", second pair's "(") around an OVERLAPS at tokens[i],
    each pair of two items."""
    if i < 1 or i + 1 >= len(tokens) or tokens[i - 1].token_type is not TokenType.R_PAREN or \
            tokens[i + 1].token_type is not TokenType.L_PAREN:
        return None
    first_open = _opening(tokens, i - 1)
    second_close = closing_paren(tokens, i + 1)
    if first_open is None or second_close is None or \
            len(top_level_items(tokens, first_open + 1, i - 1)) != 2 or \
            len(top_level_items(tokens, i + 2, second_close)) != 2:
        return None
    return first_open, i - 1, i + 1


def _opening(tokens: tuple[Token, ...], close: int,
             pair: tuple[TokenType, TokenType] = (TokenType.L_PAREN, TokenType.R_PAREN)
             ) -> int | None:
    """The index of the bracket that the one at tokens[close] closes."""
    depth = 0
    for k in range(close, -1, -1):
        kind = tokens[k].token_type
        if kind is pair[1]:
            depth += 1
        elif kind is pair[0]:
            depth -= 1
            if depth == 0:
                return k
    return None


def _array_element_concat(tokens: tuple[Token, ...], i: int) -> tuple[int, int, str] | None:
    """``ARRAY[...] || n`` or ``n || ARRAY[...]`` (n a number literal) around the ``||``
    at tokens[i]: (first token, last token, the list function)."""
    n = len(tokens)
    if i < 1 or i + 1 >= n:
        return None
    found: tuple[int, int, str] | None = None
    if tokens[i - 1].token_type is TokenType.R_BRACKET and \
            tokens[i + 1].token_type is TokenType.NUMBER:
        opening = _opening(tokens, i - 1, _BRACKETS)
        if opening is not None and opening >= 1 and \
                tokens[opening - 1].token_type is TokenType.ARRAY:
            found = (opening - 1, i + 1, "list_append")
    elif tokens[i - 1].token_type is TokenType.NUMBER and i + 2 < n and \
            tokens[i + 1].token_type is TokenType.ARRAY and \
            tokens[i + 2].token_type is TokenType.L_BRACKET:
        close = closing_paren(tokens, i + 2, _BRACKETS)
        if close is not None:
            found = (i - 1, close, "list_prepend")
    if found is None:
        return None
    first, last, _ = found
    if (first > 0 and tokens[first - 1].token_type not in _OPERAND_START) or \
            (last + 1 < n and tokens[last + 1].token_type not in _OPERAND_END):
        return None
    return found


_LOCKING = (("UPDATE",), ("SHARE",), ("NO", "KEY", "UPDATE"), ("KEY", "SHARE"))


def _locking_clause(tokens: tuple[Token, ...], i: int) -> int | None:
    """The last token of a locking clause starting at the FOR at tokens[i] (``FOR
    UPDATE [OF t, ...] [NOWAIT | SKIP LOCKED]`` and FOR SHARE, FOR NO KEY UPDATE, FOR KEY
    SHARE), or None. Its OF names must be in the statement before it (42P01)."""
    n = len(tokens)
    words = [t.text.upper() for t in tokens[i + 1:i + 4]]
    strength = next((w for w in _LOCKING if tuple(words[:len(w)]) == w), None)
    if strength is None:
        return None
    end = i + len(strength)
    if end + 2 < n and tokens[end + 1].text.upper() == "OF":
        seen = {t.text.lower() for t in tokens[:i] if t.token_type in _NAMES}
        j = end + 1
        while j + 1 < n and (j == end + 1 or tokens[j].token_type is TokenType.COMMA):
            name_end = j + 1
            while name_end + 2 < n and tokens[name_end + 1].token_type is TokenType.DOT:
                name_end += 2
            name = tokens[name_end].text.lower()
            if name not in seen:
                raise ServerError(
                    f'relation "{tokens[name_end].text}" in FOR {" ".join(strength)} clause '
                    "not found in FROM clause", sqlstate="42P01")
            j = name_end + 1
        end = j - 1
    after = [t.text.upper() for t in tokens[end + 1:end + 3]]
    if after[:1] == ["NOWAIT"]:
        end += 1
    elif after == ["SKIP", "LOCKED"]:
        end += 2
    return end


def edits(tokens: tuple[Token, ...]) -> list[tuple[int, int, str]]:
    """(start, end inclusive, replacement) edits, absolute offsets, for the syntax above."""
    found: list[tuple[int, int, str]] = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        low = tok.text.lower()
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < n else None
        after_dot = prev is not None and prev.token_type is TokenType.DOT
        before_dot = nxt is not None and nxt.token_type is TokenType.DOT
        if low in TYPES and _name(tok) and not after_dot and not before_dot and \
                (nxt is None or nxt.token_type is not TokenType.L_PAREN):
            found.append((tok.start, tok.end, TYPES[low]))
        elif low in WRAPPED and _name(tok) and not after_dot and \
                nxt is not None and nxt.token_type is TokenType.L_PAREN:
            close = closing_paren(tokens, i + 1)
            if close is not None:
                before, after = WRAPPED[low]
                found.append((tok.start, tok.end, before))
                found.append((tokens[close].end + 1, tokens[close].end, after))
        elif tok.token_type in (TokenType.LIKE, TokenType.ILIKE) and _string_operand(tokens, i + 1):
            pattern = tokens[i + 1]
            if "\\" in pattern.text:
                found.append((pattern.end + 1, pattern.end, " ESCAPE '\\'"))
        elif tok.token_type is TokenType.STRING and nxt is not None and \
                (nxt.token_type is TokenType.DCOLON or nxt.text.upper() == "AS") and \
                tok.text.lstrip().startswith("{") and _array_type_follows(tokens, i + 2):
            # '{1,2}'::int[] -> '[1,2]'::int[]
            found.append((tok.start, tok.end, _sql_string(array_literal(tok.text))))
        elif tok.token_type is TokenType.STRING and nxt is not None and \
                (nxt.token_type is TokenType.DCOLON or nxt.text.upper() == "AS") and \
                i + 2 < n and tokens[i + 2].text.lower() in ("bool", "boolean") and \
                tok.text.strip().lower() in _BOOLEAN:
            # 'on'::boolean, 'off', 'yes', 'no' ... (PostgreSQL's boolean input)
            found.append((tok.start, tok.end, _BOOLEAN[tok.text.strip().lower()]))
        elif tok.token_type is TokenType.STRING and nxt is not None and \
                nxt.token_type is TokenType.DCOLON and i + 2 < n and \
                tokens[i + 2].text.lower() == "bytea" and _BYTEA_HEX.fullmatch(tok.text):
            # '\\x4142'::bytea: PostgreSQL's hex input (DuckDB reads \\x41 as one byte)
            found.append((tok.start, tok.end, f"unhex('{tok.text[2:]}')"))
        elif low in SET_RETURNING and nxt is not None and \
                nxt.token_type is TokenType.L_PAREN and _select_list_item(tokens, i):
            # a set-returning function in the SELECT list gives rows, not a list
            close = closing_paren(tokens, i + 1)
            if close is not None:
                call, tail = SET_RETURNING[low]
                found.append((tok.start, tok.end, f"unnest({call}"))
                found.append((tokens[close].start, tokens[close].end, f"{tail}))"))
        elif low == "extract" and nxt is not None and nxt.token_type is TokenType.L_PAREN and \
                i + 3 < n and tokens[i + 3].token_type is TokenType.FROM:
            # extract() is numeric: CAST(extract(f FROM x) AS DECIMAL(...))
            close = closing_paren(tokens, i + 1)
            if close is not None:
                field_tok = tokens[i + 2]
                field, suffix = _EXTRACT.get(field_tok.text.lower(),
                                             (None, f" AS {UNCONSTRAINED_NUMERIC})"))
                found.append((tok.start, tok.start - 1, "CAST("))
                if field is not None:
                    found.append((field_tok.start, field_tok.end, field))
                found.append((tokens[close].end + 1, tokens[close].end, suffix))
        elif tok.token_type in (TokenType.ROW, TokenType.L_PAREN) and \
                prev is not None and prev.token_type in _ROW_CONTEXT:
            found.extend(_row_is_null(tokens, i))
        elif tok.token_type is TokenType.DPIPE and \
                (concat := _array_element_concat(tokens, i)) is not None:
            # ARRAY[1, 2] || 3 -> list_append(...), 0 || ARRAY[1] -> list_prepend(...)
            found.append((tokens[concat[0]].start, tokens[concat[0]].start - 1,
                          f"{concat[2]}("))
            found.append((tok.start, tok.end, ","))
            found.append((tokens[concat[1]].end + 1, tokens[concat[1]].end, ")"))
        elif tok.token_type in _JSON_OPERATORS:
            found.extend(_json_operator(tokens, i))
        elif tok.token_type in (TokenType.HASH_ARROW, TokenType.DHASH_ARROW) and \
                _string_operand_start(tokens, i + 1):
            # j #> '{a,b}' -> j -> '$."a"."b"'
            arrow = "->" if tok.token_type is TokenType.HASH_ARROW else "->>"
            found.append((tok.start, tok.end, arrow))
            path = tokens[i + 1]
            found.append((path.start, path.end, _sql_string(json_path(path.text))))
        elif tok.token_type is TokenType.STRING and (sized := _sized_cast(tokens, i)):
            # 'abc'::varchar(2) is 'ab', 'ab'::char(4) 'ab  ' (DuckDB keeps no length)
            found.append((tok.start, tok.end, literal_input.sized_literal(tok.text, *sized)))
        elif tok.token_type is TokenType.STRING and (target := _cast_target(tokens, i)):
            # '42.5'::integer, 'May 17, 2024'::date, INTERVAL 'P1D': PostgreSQL's input
            replacement = literal_input.cast_literal(tok.text, target)
            if replacement is not None:
                found.append((tok.start, tok.end, replacement))
        elif tok.token_type is TokenType.STRING and \
                (number := _arithmetic_number(tokens, i)) is not None:
            # '5' + 1: the untyped literal takes the number's type
            found.append((tok.start, tok.end,
                          literal_input.operand_literal(tok.text, number.text)))
        elif low == "substring" and not after_dot and nxt is not None and \
                nxt.token_type is TokenType.L_PAREN and \
                (close := closing_paren(tokens, i + 1)) is not None and \
                len(top_level_items(tokens, i + 2, close)) == 3:
            # substring(s, i, n): a negative n is 22011 (DuckDB gives '')
            found.append((tok.start, tok.end, f"{SCHEMA}.main.substring_checked"))
        elif tok.token_type is TokenType.OVERLAPS and (pairs := _overlaps(tokens, i)):
            # (a, b) OVERLAPS (c, d) -> pg_overlaps(a, b, c, d)
            first_open, first_close, second_open = pairs
            found.append((tokens[first_open].start, tokens[first_open].end,
                          f"{SCHEMA}.main.pg_overlaps("))
            found.append((tokens[first_close].start, tokens[first_close].end, ""))
            found.append((tok.start, tok.end, ","))
            found.append((tokens[second_open].start, tokens[second_open].end, ""))
        elif tok.token_type is TokenType.SLASH and nxt is not None and \
                nxt.token_type is TokenType.NUMBER and nxt.text.isdigit() and i >= 2 and \
                ((tokens[i - 1].token_type is TokenType.STRING and
                  tokens[i - 2].text.upper() == "INTERVAL") or
                 (tokens[i - 1].text.lower() == "interval" and
                  tokens[i - 2].token_type is TokenType.DCOLON)):
            # INTERVAL '1 hour' / 2: DuckDB has no interval / number (integer_division
            # makes its / the // of numbers), but interval * double
            found.append((tok.start, tok.end, "*"))
            found.append((nxt.start, nxt.end, f"(1 / CAST({nxt.text} AS DOUBLE))"))
        elif tok.token_type is TokenType.ARRAY and nxt is not None and \
                nxt.token_type is TokenType.L_BRACKET and \
                (array_end := closing_paren(tokens, i + 1, _BRACKETS)) is not None and \
                array_end + 1 < n and tokens[array_end + 1].token_type is TokenType.L_BRACKET:
            # ARRAY[1, 2][1]: PostgreSQL's grammar takes a subscript of a parenthesised
            # array constructor only
            raise ServerError('syntax error at or near "["', sqlstate="42601")
        elif tok.token_type is TokenType.FOR and \
                (clause_end := _locking_clause(tokens, i)) is not None:
            # SELECT ... FOR UPDATE: DuckDB locks no rows (a transaction that writes a row
            # another one changed meanwhile fails); the clause is checked and dropped
            found.append((tok.start, tokens[clause_end].end, ""))
        elif tok.token_type is TokenType.PIPE_SLASH and \
                (root_end := _primary_end(tokens, i + 1)) is not None:
            # |/ x -> sqrt(x)
            found.append((tok.start, tok.end, "sqrt("))
            found.append((tokens[root_end].end + 1, tokens[root_end].end, ")"))
        elif tok.token_type is TokenType.HASH and i > 0 and \
                (xor_first := _primary_start(tokens, i - 1)) is not None and \
                (xor_end := _primary_end(tokens, i + 1)) is not None:
            # a # b -> xor(a, b) (PostgreSQL's integer exclusive or)
            found.append((tokens[xor_first].start, tokens[xor_first].start - 1, "xor("))
            found.append((tok.start, tok.end, ","))
            found.append((tokens[xor_end].end + 1, tokens[xor_end].end, ")"))
        elif tok.token_type is TokenType.BETWEEN and nxt is not None and \
                nxt.text.upper() == "SYMMETRIC" and i > 0 and \
                (sym_first := _primary_start(tokens, i - 1)) is not None and \
                (low_end := _primary_end(tokens, i + 2)) is not None and \
                low_end + 1 < n and tokens[low_end + 1].token_type is TokenType.AND and \
                (sym_end := _primary_end(tokens, low_end + 2)) is not None:
            # x BETWEEN SYMMETRIC a AND b -> between_symmetric(x, a, b)
            found.append((tokens[sym_first].start, tokens[sym_first].start - 1,
                          f"{SCHEMA}.main.between_symmetric("))
            found.append((tok.start, nxt.end, ","))
            found.append((tokens[low_end + 1].start, tokens[low_end + 1].end, ","))
            found.append((tokens[sym_end].end + 1, tokens[sym_end].end, ")"))
        elif low == "at" and tok.token_type is TokenType.VAR and \
                (nxt is None or nxt.text.upper() not in ("TIME", "LOCAL")):
            found.append((tok.start, tok.end, '"at"'))
        elif tok.token_type is TokenType.NUMBER and "e" in low and \
                (prev is None or prev.end + 1 < tok.start or prev.token_type is not TokenType.DOT):
            # 1e3 is numeric (.5e1, read as a dot and 5e1, is left alone)
            numeric = exponent_numeric(tok.text)
            if numeric is not None:
                found.append((tok.start, tok.end, numeric))
        elif tok.token_type is TokenType.SIMILAR_TO and _string_operand(tokens, i + 1):
            pattern = tokens[i + 1]
            found.append((pattern.start, pattern.end,
                          _sql_string(similar_to_regex(pattern.text))))
    return found
