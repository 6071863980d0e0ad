"""Constant string literals read with PostgreSQL's input rules where DuckDB's differ.

PostgreSQL reads ``'...'::type`` (and ``CAST('...' AS type)``, ``type '...'``) with
the type's input function when it parses the statement; DuckDB casts its own way:

- integers: ``'42.5'::integer`` is 22P02 in PostgreSQL; DuckDB rounds (43, a wrong
  answer without an error);
- dates, read as PostgreSQL's default ``DateStyle`` (ISO, MDY) does: ``'20240517'``,
  ``'May 17, 2024'``, ``'05/17/2024'`` (month first; ``'17/05/2024'`` is 22008) are
  dates in PostgreSQL and errors in DuckDB (python-dateutil reads the month names);
- intervals in ISO 8601's format with designators (``'P1DT2H'``);
- ``varchar(n)`` and ``char(n)``: an explicit cast cuts the string to n characters
  (``char(n)`` pads it with spaces to n); DuckDB keeps no length;
- ``jsonb``: the text as PostgreSQL's jsonb stores it (keys in jsonb's order, shorter
  first, the last of duplicate keys, ``", "`` and ``": "`` between items), so that
  ``'{"b":1,"a":2}'::jsonb::text`` is ``{"a": 2, "b": 1}`` as there;
- an untyped literal operand of arithmetic with a number takes the number's type, as
  PostgreSQL's parser gives an unknown literal the other operand's type: ``'5' + 1``
  is 6, ``'5.5' + 1`` and ``'a' + 1`` are 22P02 (DuckDB cannot choose a function).

``cast_literal`` and ``operand_literal`` give the DuckDB text of such a literal (None:
DuckDB reads it as PostgreSQL does) or raise PostgreSQL's error, as PostgreSQL
raises it: when the statement is parsed, whatever the rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re

from dateutil import parser as date_parser

from server.errors import ServerError

_INTEGERS = {"int": "integer", "integer": "integer", "int4": "integer", "int2": "smallint",
             "smallint": "smallint", "int8": "bigint", "bigint": "bigint"}
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_NUMERIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_ISO_DATE = re.compile(r"\s*[+-]?\d{1,7}-\d{1,2}-\d{1,2}(\s.*)?")
_COMPACT_DATE = re.compile(r"\s*(\d{4})(\d{2})(\d{2})\s*")
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*")
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_DAY = re.compile(r"(?<!\d)\d{1,2}(?!\d)")
_ISO_DURATION = re.compile(
    r"P(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?")


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _invalid(type_name: str, value: str) -> ServerError:
    return ServerError(f'invalid input syntax for type {type_name}: "{value}"',
                       sqlstate="22P02")


def _out_of_range(value: str) -> ServerError:
    return ServerError(f'date/time field value out of range: "{value}"', sqlstate="22008")


def cast_literal(value: str, type_name: str) -> str | None:
    """The DuckDB text for the string literal ``value`` (its content) cast to
    ``type_name`` (a one-word type name), or None: DuckDB reads it as PostgreSQL."""
    type_name = type_name.lower()
    if type_name in _INTEGERS:
        if not _INTEGER.fullmatch(value):
            raise _invalid(_INTEGERS[type_name], value)
        return None
    if type_name == "date":
        return _date(value)
    if type_name == "interval":
        return _interval(value)
    if type_name == "jsonb":
        return jsonb_literal(value)
    return None


def _date(value: str) -> str | None:
    if _ISO_DATE.fullmatch(value) or value.strip().lower() in (
            "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity"):
        return None
    if (m := _COMPACT_DATE.fullmatch(value)) is not None:
        year, month, day = (int(g) for g in m.groups())
    elif (m := _NUMERIC_DATE.fullmatch(value)) is not None:
        month, day, year = (int(g) for g in m.groups())   # DateStyle MDY
    elif any(c.isalpha() for c in value) and _YEAR.search(value) and _DAY.search(value):
        # a month or day name with a day and a year ('May 17, 2024'): dateutil alone
        # would fill what is missing ('May' is not a date in PostgreSQL)
        try:
            parsed = date_parser.parse(value, default=dt.datetime(1, 1, 1))
        except (ValueError, OverflowError):
            return None   # DuckDB's error says what it cannot read
        if parsed.time() != dt.time() or parsed.tzinfo is not None:
            return None
        year, month, day = parsed.year, parsed.month, parsed.day
    else:
        return None
    try:
        return _sql(dt.date(year, month, day).isoformat())
    except ValueError:
        raise _out_of_range(value) from None


def _interval(value: str) -> str | None:
    text = value.strip()
    if not text.startswith("P") or len(text) < 3 or text.endswith("T"):
        return None
    m = _ISO_DURATION.fullmatch(text)
    if m is None:
        return None
    units = {"years": "years", "months": "months", "weeks": "weeks", "days": "days",
             "hours": "hours", "minutes": "minutes", "seconds": "seconds"}
    parts = [f"{amount} {units[name]}" for name, amount in m.groupdict().items()
             if amount is not None]
    return _sql(" ".join(parts)) if parts else None


def sized_literal(value: str, type_name: str, length: int) -> str:
    """The literal ``value`` cast to ``varchar(length)`` (cut) or ``char(length)`` (cut,
    then padded with spaces), as PostgreSQL's explicit casts do."""
    cut = value[:length]
    return _sql(cut if type_name == "varchar" else cut.ljust(length))


def jsonb_literal(value: str) -> str | None:
    """The literal ``value`` as PostgreSQL's jsonb writes it back, or None when it is no
    JSON (DuckDB's cast reports that)."""
    try:
        document = json.loads(value, parse_float=decimal.Decimal, parse_int=decimal.Decimal)
    except (ValueError, RecursionError):
        return None
    return _sql(_jsonb_text(document))


def _jsonb_text(value: object) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_jsonb_text(k)}: {_jsonb_text(value[k])}"
                               for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_jsonb_text(v) for v in value) + "]"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)


def operand_literal(value: str, number: str) -> str:
    """The DuckDB text of an untyped string literal in arithmetic with the number
    literal ``number``: the string read as the number's type (integer, else numeric)."""
    if re.fullmatch(r"\d+", number):
        if not _INTEGER.fullmatch(value):
            raise _invalid("integer", value)
        return value.strip()
    if not _NUMERIC.fullmatch(value):
        raise _invalid("numeric", value)
    return value.strip()
