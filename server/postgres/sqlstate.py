"""PostgreSQL's SQLSTATE for an exception DuckDB raised.

DuckDB tells conditions apart by exception class (``CatalogException``,
``BinderException``, ...) and by message; PostgreSQL by SQLSTATE. ``RULES``
is the whole mapping, one row per condition: DuckDB's exception class, a
pattern its message matches (``None``: any message) and the SQLSTATE
PostgreSQL 15 reports for the same condition. The first matching row wins,
so each class lists its specific messages before its catch-all row.
tests/test_sqlstates_vs_postgres.py runs one statement per row on DuckDB
through QuackML and on PostgreSQL 15 and compares the SQLSTATEs.
"""

from __future__ import annotations

import re

import duckdb

# a number as text: '99999999999' is out of range (22003) where 'abc' is not a number (22P02)
_NUMBER = r"""['"]\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*['"]"""
# the messages of RE2, DuckDB's regular expression library, for a bad pattern
_RE2 = (r"^(missing \)|missing \]|unexpected \)|invalid escape sequence|invalid character class"
        r"|bad repetition operator|no argument for repetition operator|invalid repetition size"
        r"|invalid named capture group|invalid perl operator|trailing \\)")

Rule = tuple[type[duckdb.Error], str | None, str]

RULES: tuple[Rule, ...] = (
    # -- catalog: objects that exist or not ------------------------------------------
    (duckdb.CatalogException, r"^Column with name .* already exists", "42701"),   # duplicate_column
    (duckdb.CatalogException, r"^(Table|View|Index|Sequence) with name .* already exists",
     "42P07"),                                                  # duplicate_table (a relation)
    (duckdb.CatalogException, r"^Schema with name .* already exists", "42P06"),
    (duckdb.CatalogException, r"Function with name .* already exists", "42723"),  # dup. function
    (duckdb.CatalogException, r"already exists", "42710"),                  # duplicate_object
    (duckdb.CatalogException, r"^unrecognized configuration parameter", "42704"),
    (duckdb.CatalogException, r"Function with name .* does not exist", "42883"),
    (duckdb.CatalogException, r"^Schema with name", "3F000"),
    (duckdb.CatalogException, r"^(Type|Index|Collation) with name .* does not exist", "42704"),
    (duckdb.CatalogException, r"^Could not drop the table because", "2BP01"),  # dependent_objects
    (duckdb.CatalogException, None, "42P01"),                               # undefined_table
    # -- binder: names, types and clauses of a statement -------------------------------
    (duckdb.BinderException, r"^Cannot change the type of a column that has a UNIQUE or "
                             r"PRIMARY KEY", "0A000"),                     # feature_not_supported
    (duckdb.BinderException, r"^No function matches", "42883"),             # undefined_function
    (duckdb.BinderException, r"^Function with name", "42883"),
    # a PostgreSQL function emulated by a macro (server/postgres/functions.py), wrong arguments
    (duckdb.BinderException, r"^Macro .* does not support the supplied arguments", "42883"),
    (duckdb.BinderException, r"^Could not choose a best candidate", "42725"),  # ambiguous_function
    (duckdb.BinderException, r"^Ambiguous reference to column", "42702"),   # ambiguous_column
    (duckdb.BinderException, r"^Ambiguous reference to table", "42712"),    # duplicate_alias
    (duckdb.BinderException, r"GROUP BY clause|cannot contain aggregates"
                             r"|aggregate function calls cannot be nested", "42803"),  # grouping
    (duckdb.BinderException, r"cannot contain window functions", "42P20"),  # windowing_error
    (duckdb.BinderException, r"^(ORDER|GROUP BY) term out of range", "42P10"),  # invalid_column_ref
    (duckdb.BinderException, r"^Set operations can only apply to expressions with the same "
                             r"number", "42601"),
    (duckdb.BinderException, r"^Column name/value mismatch|has \d+ columns but \d+ values",
     "42601"),
    (duckdb.BinderException, r"^Duplicate column name", "42701"),           # duplicate_column
    (duckdb.BinderException, r"^Cannot mix values of type|^Cannot deduce template type"
                             r"|^Cannot concatenate types", "42804"),       # datatype_mismatch
    (duckdb.BinderException, r"^LIMIT/OFFSET cannot be negative", "2201W"),
    (duckdb.BinderException, r"^Referenced table .* not found", "42P01"),   # missing FROM entry
    (duckdb.BinderException, None, "42703"),                                # undefined_column
    # -- parser -------------------------------------------------------------------------
    (duckdb.ParserException, r"has more than one primary key", "42P16"),    # invalid_table_def
    (duckdb.ParserException, r"^Duplicate CTE name", "42712"),              # duplicate_alias
    (duckdb.ParserException, None, "42601"),                                # syntax_error
    (duckdb.SyntaxException, None, "42601"),
    # -- values that do not convert ------------------------------------------------------
    (duckdb.ConversionException, r"^Could not convert string " + _NUMBER
                                 + r" to (U?INT\d+|U?HUGEINT|DECIMAL)", "22003"),
    (duckdb.ConversionException, r"can't be cast because the value is out of range"
                                 r"|failed: value is out of range", "22003"),  # out of range
    (duckdb.ConversionException, r"^(date|time|timestamp) field value out of range"
                                 r"|^Date out of range", "22008"),   # datetime_field_overflow
    (duckdb.ConversionException, r"^invalid (date|timestamp) field format"
                                 r"|to INTERVAL|^extract specifier", "22007"),  # datetime format
    (duckdb.ConversionException, r"^Unimplemented type for cast", "42846"),  # cannot_coerce
    (duckdb.ConversionException, None, "22P02"),                 # invalid_text_representation
    # -- arithmetic ----------------------------------------------------------------------
    (duckdb.OutOfRangeException, r"square root of a negative|raised to a negative power",
     "2201F"),                                                  # invalid_argument_for_power
    (duckdb.OutOfRangeException, r"cannot take logarithm", "2201E"),  # ... for_logarithm
    (duckdb.OutOfRangeException, None, "22003"),                 # numeric_value_out_of_range
    # -- invalid input, by message -------------------------------------------------------
    (duckdb.InvalidInputException, r"^Division by zero", "22012"),
    (duckdb.InvalidInputException, r"^negative substring length not allowed", "22011"),
    (duckdb.InvalidInputException, r"^null character not permitted", "54000"),
    (duckdb.InvalidInputException, r"configuration has been locked", "55P02"),
    (duckdb.InvalidInputException, r"^More than one row returned by a subquery", "21000"),
    (duckdb.InvalidInputException, r"^Values were not provided for the following parameters",
     "42P02"),                                                  # undefined_parameter
    (duckdb.InvalidInputException, r"is undefined outside \[-1,1\]", "22003"),
    (duckdb.InvalidInputException, _RE2, "2201B"),              # invalid_regular_expression
    (duckdb.InvalidInputException, None, "22023"),              # invalid_parameter_value
    # -- constraints ---------------------------------------------------------------------
    (duckdb.ConstraintException, r"NOT NULL", "23502"),
    (duckdb.ConstraintException, r"(?i)foreign key", "23503"),
    (duckdb.ConstraintException, r"CHECK", "23514"),
    (duckdb.ConstraintException, None, "23505"),
    # -- transactions --------------------------------------------------------------------
    (duckdb.TransactionException, r"aborted", "25P02"),
    (duckdb.TransactionException, r"(?i)conflict", "40001"),    # serialization_failure
    (duckdb.TransactionException, r"within a transaction", "25001"),
    (duckdb.TransactionException, None, "25000"),
    # -- by class alone ------------------------------------------------------------------
    (duckdb.InterruptException, None, "57014"),
    (duckdb.NotImplementedException, None, "0A000"),
    (duckdb.OutOfMemoryException, None, "53200"),
    (duckdb.PermissionException, None, "42501"),
    (duckdb.IOException, None, "58030"),
    (duckdb.HTTPException, None, "58030"),
    (duckdb.SerializationException, None, "22000"),
    (duckdb.TypeMismatchException, None, "42804"),
    (duckdb.InvalidTypeException, None, "42804"),
    (duckdb.SequenceException, None, "22000"),
    (duckdb.DependencyException, None, "2BP01"),
    (duckdb.FatalException, None, "XX000"),
    (duckdb.InternalException, None, "XX000"),
)

_COMPILED = tuple((cls, re.compile(pattern) if pattern else None, code)
                  for cls, pattern, code in RULES)
_PREFIX = re.compile(r"^[A-Za-z ]+ Error: ")


def message_of(exc: duckdb.Error) -> str:
    """DuckDB's message without its ``Xxx Error: `` prefix."""
    return _PREFIX.sub("", str(exc), count=1)


def sqlstate_of(exc: duckdb.Error) -> str:
    """PostgreSQL's SQLSTATE for ``exc`` (XX000 when no row matches)."""
    text = message_of(exc)
    for cls, pattern, code in _COMPILED:
        if isinstance(exc, cls) and (pattern is None or pattern.search(text)):
            return code
    return "XX000"
