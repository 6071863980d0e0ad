"""The differential corpus (issue 11, item 11): everyday SQL, PostgreSQL 15 as the oracle.

Every statement in ``tests/fixtures/corpus/*.sql`` runs against a throwaway
PostgreSQL 15 cluster and against QuackML, one connection per system and
per file, in file order, in autocommit mode. Each file starts from a clean
state: before its first statement both systems get a fresh, empty schema
``corpus_<file>`` first on the search path, and the session time zone is
UTC. For every statement the outcomes are compared:

- success or error, and on error the SQLSTATE;
- on success: the column names, the type OIDs of the columns
  (``cursor.description`` type codes), the number of rows (for statements
  without a result, the count of the command tag), and the rows as psycopg
  decodes them. Floats compare with a relative tolerance; NaN equals NaN;
  numerics compare by their text (``1.50`` is not ``1.5``). Rows compare in
  order when the statement says ORDER BY, as a multiset otherwise.

Fixture format: plain SQL. A statement ends at a line whose last
non-blank character is ``;`` (so a statement may span lines, and no line
inside a statement may end with ``;``). Lines starting with ``--`` between
statements are comments. Statements must be deterministic: no ``now()``,
``random()`` or anything naming the user, the server or the clock.

The test asserts that the share of identical statements does not fall below
``FLOOR`` and lists every differing statement when it does. Raise FLOOR
when the rate improves. ``bench/corpus.py`` prints the same comparison as
the report in docs/postgres-differences.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest

from tests.pgcluster import throwaway_postgres

CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"

# Identical statements, in percent, measured and rounded down. Raise it when QuackML improves.
FLOOR = 94

FLOAT_TOLERANCE = 1e-9
ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    topic: str
    line: int
    sql: str

    @property
    def where(self) -> str:
        return f"{self.topic}.sql:{self.line}"

    @property
    def ordered(self) -> bool:
        return ORDER_BY.search(self.sql) is not None


@dataclass(frozen=True)
class Outcome:
    """What one system did with one statement, as a psycopg client sees it."""

    sqlstate: str | None = None          # None: the statement succeeded
    message: str = ""
    columns: tuple[str, ...] | None = None
    oids: tuple[int, ...] | None = None
    rowcount: int = -1
    rows: tuple[tuple[object, ...], ...] | None = None

    @property
    def ok(self) -> bool:
        return self.sqlstate is None

    def describe(self, limit: int = 3) -> str:
        if not self.ok:
            return f"error {self.sqlstate}: {self.message}"
        if self.columns is None:
            return f"ok, {self.rowcount} rows affected" if self.rowcount >= 0 else "ok"
        assert self.rows is not None and self.oids is not None
        cols = ", ".join(f"{n}:{_type_name(o)}" for n, o in zip(self.columns, self.oids,
                                                               strict=True))
        shown = ", ".join(_show_row(r, self.oids) for r in self.rows[:limit])
        more = f", ... ({len(self.rows)} rows)" if len(self.rows) > limit else ""
        return f"({cols}) {shown}{more}" if self.rows else f"({cols}) no rows"


@dataclass
class Result:
    statement: Statement
    postgres: Outcome
    quackml: Outcome
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences


# Type names for the report (PostgreSQL's pg_type.typname for the OIDs the corpus meets).
TYPE_NAMES = {
    16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4",
    25: "text", 26: "oid", 114: "json", 700: "float4", 701: "float8", 705: "unknown",
    1000: "bool[]", 1005: "int2[]", 1007: "int4[]", 1009: "text[]", 1014: "bpchar[]",
    1015: "varchar[]", 1016: "int8[]", 1021: "float4[]", 1022: "float8[]", 1042: "bpchar",
    1043: "varchar", 1082: "date", 1083: "time", 1114: "timestamp", 1115: "timestamp[]",
    1182: "date[]", 1184: "timestamptz", 1186: "interval", 1231: "numeric[]", 1266: "timetz",
    1700: "numeric", 2950: "uuid", 2951: "uuid[]", 3802: "jsonb", 3807: "jsonb[]",
    199: "json[]", 2249: "record", 2287: "record[]", 2278: "void", 3904: "int4range",
    2206: "regtype", 1028: "oid[]", 790: "money",
}


JSON_OIDS = (114, 3802)


def _type_name(oid: int) -> str:
    return TYPE_NAMES.get(oid, str(oid))


def _show_row(row: tuple[object, ...], oids: tuple[int, ...]) -> str:
    text = "(" + ", ".join(json.dumps(v) if oid in JSON_OIDS and v is not None
                           else _show_value(v) for v, oid in zip(row, oids, strict=True)) + ")"
    return text if len(text) <= 120 else text[:117] + "..."


def _show_value(value: object) -> str:
    """A value roughly as psql would print it, for the report."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return f"'{value.isoformat(sep=' ') if isinstance(value, dt.datetime) else value}'"
    if isinstance(value, dt.timedelta):
        return f"'{value}'"
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ",".join(_show_value(v) for v in value) + "}"
    return repr(str(value))


def load(path: Path) -> list[Statement]:
    """Split a fixture file into statements (see the module docstring for the format)."""
    statements: list[Statement] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("--")):
            continue
        if not pending:
            start = number
        pending.append(line)
        if stripped.endswith(";"):
            sql = "\n".join(pending).rstrip()[:-1].rstrip()
            statements.append(Statement(path.stem, start, sql))
            pending = []
    if pending:
        raise ValueError(f"{path.name}:{start}: statement without a closing ';' at line end")
    return statements


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.sql"))


def outcomes_of(dsns: tuple[str, str], setup: Sequence[str], statements: Sequence[str],
                tables: Sequence[str]) -> list[tuple[Outcome, Outcome]]:
    """(PostgreSQL's, QuackML's) outcome of each statement, each side after ``setup``
    (``tables`` dropped before and after). ``dsns``: PostgreSQL's, then QuackML's."""
    sides = []
    for dsn in dsns:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            for sql in setup:
                conn.execute(sql)
            try:
                sides.append([execute(conn, sql) for sql in statements])
            finally:
                for table in tables:
                    conn.execute(f"DROP TABLE {table}")
    return list(zip(sides[0], sides[1], strict=True))


def execute(conn: psycopg.Connection, sql: str) -> Outcome:
    try:
        cur = conn.execute(sql)  # type: ignore[call-overload]
        if cur.description is None:
            return Outcome(rowcount=cur.rowcount)
        rows = tuple(tuple(r) for r in cur.fetchall())
        return Outcome(columns=tuple(d.name for d in cur.description),
                       oids=tuple(int(d.type_code) for d in cur.description),
                       rowcount=len(rows), rows=rows)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Outcome(sqlstate=exc.sqlstate or "none (raised by the client)", message=first)


def _number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _same_value(a: object, b: object) -> bool:
    """Equal as the client sees them. Where the column types differ (reported on their
    own), numbers compare by value and timestamps by their UTC wall-clock time, so that
    "values" means the value itself differs."""
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12)
    if _number(a) and _number(b) and type(a) is not type(b):
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(float(a), float(b), rel_tol=FLOAT_TOLERANCE,  # type: ignore[arg-type]
                                abs_tol=1e-12)
        return Decimal(a) == Decimal(b)  # type: ignore[arg-type]
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return str(a) == str(b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _utc(a) == _utc(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def _same_rows(a: tuple[tuple[object, ...], ...], b: tuple[tuple[object, ...], ...],
               ordered: bool) -> bool:
    if len(a) != len(b):
        return False
    if not ordered:
        a, b = tuple(sorted(a, key=repr)), tuple(sorted(b, key=repr))
    return all(len(x) == len(y) and all(_same_value(u, v) for u, v in zip(x, y, strict=True))
               for x, y in zip(a, b, strict=True))


def compare(statement: Statement, pg: Outcome, qm: Outcome) -> list[str]:
    """The kinds in which QuackML's outcome differs from PostgreSQL's (empty: identical)."""
    if pg.ok != qm.ok:
        return ["error in QuackML only" if pg.ok else "error in PostgreSQL only"]
    if not pg.ok:
        return [] if pg.sqlstate == qm.sqlstate else ["SQLSTATE"]
    kinds: list[str] = []
    if (pg.columns is None) != (qm.columns is None):
        return ["result set"]
    if pg.columns is None:
        return [] if pg.rowcount == qm.rowcount else ["row count"]
    assert pg.rows is not None and qm.rows is not None
    if pg.columns != qm.columns:
        kinds.append("column names")
    if pg.oids != qm.oids:
        kinds.append("column types")
    if len(pg.rows) != len(qm.rows):
        kinds.append("row count")
    elif not _same_rows(pg.rows, qm.rows, statement.ordered):
        kinds.append("values")
    return kinds


# Schemas the corpus itself creates, dropped after each file with the file's own schema.
EXTRA_SCHEMAS = ("corpus_reporting",)


def reset(conn: psycopg.Connection, topic: str) -> None:
    """A fresh, empty schema first on the search path; UTC. Not part of the corpus."""
    schema = f"corpus_{topic}"
    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.execute(f"CREATE SCHEMA {schema}")
    use(conn, topic)


def use(conn: psycopg.Connection, topic: str) -> None:
    conn.execute(f"SET search_path TO corpus_{topic}")
    conn.execute("SET TimeZone = 'UTC'")


def clean_up(conn: psycopg.Connection, topic: str) -> None:
    """Leave nothing behind: the server fixture is shared with the other tests."""
    for schema in (f"corpus_{topic}", *EXTRA_SCHEMAS):
        try:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except psycopg.Error as exc:
            raise AssertionError(f"could not drop schema {schema}: {exc}") from exc


def corpus_database(admin_dsn: str) -> str:
    """PostgreSQL's side: a database that sorts text by bytes, as DuckDB does.

    The cluster's default collation follows the machine's locale (en_US sorts
    'alan' before 'Grace'); with C the comparison measures QuackML, not the
    machine the test runs on.
    """
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'corpus'").fetchone() is None:
            conn.execute("CREATE DATABASE corpus TEMPLATE template0 ENCODING 'UTF8' "
                         "LC_COLLATE 'C' LC_CTYPE 'C'")
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname="corpus")


def run_corpus(postgres_dsn: str, quackml_connect: Callable[[], psycopg.Connection],
               files: list[Path] | None = None) -> list[Result]:
    results: list[Result] = []
    postgres_dsn = corpus_database(postgres_dsn)
    for path in files if files is not None else corpus_files():
        statements = load(path)
        with psycopg.connect(postgres_dsn, autocommit=True) as pg:
            pg.execute("SET statement_timeout = '10s'")
            reset(pg, path.stem)
            qm = quackml_connect()
            try:
                reset(qm, path.stem)
                for statement in statements:
                    p = execute(pg, statement.sql)
                    q = execute(qm, statement.sql)
                    if qm.closed or qm.broken:   # QuackML dropped the connection: go on afresh
                        qm.close()
                        qm = quackml_connect()
                        use(qm, path.stem)
                    results.append(Result(statement, p, q, compare(statement, p, q)))
                clean_up(pg, path.stem)
                clean_up(qm, path.stem)
            finally:
                qm.close()
    return results


def rate(results: list[Result]) -> float:
    return 100.0 * sum(r.identical for r in results) / len(results)


def difference_lines(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        if r.identical:
            continue
        sql = " ".join(r.statement.sql.split())
        lines.append(f"{r.statement.where} [{', '.join(r.differences)}] {sql}\n"
                     f"    PostgreSQL: {r.postgres.describe()}\n"
                     f"    QuackML:    {r.quackml.describe()}")
    return lines


# -- the tests -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    yield from throwaway_postgres()


def test_corpus_is_well_formed() -> None:
    """At least 400 statements; every file loads and none is empty.

    A statement may repeat within a file: the corpus is stateful (a second
    nextval(), a DROP of what the first DROP removed).
    """
    statements = [s for path in corpus_files() for s in load(path)]
    assert len(statements) >= 400, len(statements)
    assert all(s.sql.strip() for s in statements)


def test_corpus_matches_postgres(server, pg: str) -> None:  # type: ignore[no-untyped-def]
    results = run_corpus(pg, server.connect)
    measured = rate(results)
    identical = sum(r.identical for r in results)
    print(f"\ncorpus: {identical}/{len(results)} statements identical ({measured:.1f}%)")
    assert measured >= FLOOR, (
        f"corpus: {identical}/{len(results)} identical ({measured:.1f}%), below the floor of "
        f"{FLOOR}%. Differing statements:\n" + "\n".join(difference_lines(results)))
