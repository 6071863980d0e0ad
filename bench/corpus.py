"""Run the differential corpus (tests/fixtures/corpus/*.sql) against PostgreSQL 15 and
QuackML and print the report that docs/postgres-differences.md holds.

    .venv/bin/python bench/corpus.py                 # the summary and every difference
    .venv/bin/python bench/corpus.py --markdown      # the same as Markdown, for the doc
    .venv/bin/python bench/corpus.py --json out.json # every statement's outcome, both sides

Starts a throwaway PostgreSQL cluster (tests/pgcluster.py) and an in-process
QuackML server on a fresh database, as the test does; the comparison itself
is tests/test_corpus_vs_postgres.py's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.listener import Server  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.pgcluster import postgres  # noqa: E402
from tests.test_corpus_vs_postgres import (  # noqa: E402
    Outcome,
    Result,
    corpus_files,
    difference_lines,
    rate,
    run_corpus,
)

TOPIC_TITLES = {
    "aggregates": "Aggregates, GROUP BY and window functions",
    "casts": "Casts",
    "datetime": "Dates, times, intervals and time zones",
    "ddl": "DDL: tables, columns, indexes, views, sequences",
    "dml": "INSERT, UPDATE, DELETE, RETURNING, ON CONFLICT",
    "errors": "Errors and their SQLSTATEs",
    "json_arrays": "json, jsonb and arrays",
    "math": "Arithmetic and math functions",
    "nulls": "NULL and three-valued logic",
    "operators": "Operators: LIKE, SIMILAR TO, regular expressions, IS DISTINCT FROM, ANY/ALL",
    "queries": "Joins, subqueries, CTEs, set operations, LIMIT",
    "strings": "String functions",
    "types": "Types: literals, columns, OIDs and text",
}


# The kinds of difference that tests/test_corpus_vs_postgres.py's compare() reports, in words.
PLAIN_KINDS = {
    "column names": "column name",
    "column types": "column type (OID)",
    "values": "values",
    "row count": "number of rows",
    "error in QuackML only": "QuackML fails, PostgreSQL succeeds",
    "error in PostgreSQL only": "PostgreSQL rejects it, QuackML accepts it",
    "SQLSTATE": "both fail, different SQLSTATE",
    "result set": "one returns rows, the other does not",
}


def measure(files: list[Path] | None = None) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="quackml-corpus-") as tmp:
        folder = Path(tmp)
        settings = Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                            data_dir=str(folder / "data"), samples=True, training_workers=1,
                            training_threads=1)
        srv = Server(settings)
        srv.start()
        pg_folder = Path(tempfile.mkdtemp(prefix="quackml-pg-"))
        try:
            with postgres(pg_folder) as dsn:
                dsn_q = f"host=127.0.0.1 port={srv.port} user=tester dbname=quackml"
                return run_corpus(dsn, lambda: psycopg.connect(dsn_q, autocommit=True), files)
        finally:
            srv.stop()
            shutil.rmtree(pg_folder, ignore_errors=True)


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "server",
                            "catalog"], capture_output=True, text=True, check=False)
    return out.stdout.strip() + (" (with uncommitted server changes)" if dirty.stdout.strip()
                                 else "")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _plain(o: Outcome) -> str:
    return o.describe(limit=3)


def summary(results: list[Result]) -> list[str]:
    identical = sum(r.identical for r in results)
    lines = [f"{identical} of {len(results)} statements identical ({rate(results):.1f}%)", ""]
    by_topic: dict[str, list[Result]] = {}
    for r in results:
        by_topic.setdefault(r.statement.topic, []).append(r)
    lines.append("| topic | statements | identical | rate |")
    lines.append("|---|---:|---:|---:|")
    for topic, rs in sorted(by_topic.items()):
        same = sum(r.identical for r in rs)
        lines.append(f"| {topic} | {len(rs)} | {same} | {100.0 * same / len(rs):.0f}% |")
    kinds: Counter[str] = Counter()
    only: Counter[str] = Counter()
    for r in results:
        kinds.update(r.differences)
        if len(r.differences) == 1:
            only[r.differences[0]] += 1
    lines += ["", "| kind of difference | statements with it | statements with only it |",
              "|---|---:|---:|"]
    for kind, n in kinds.most_common():
        lines.append(f"| {PLAIN_KINDS.get(kind, kind)} | {n} | {only[kind]} |")
    names_types = sum(1 for r in results
                      if r.differences and set(r.differences) <= {"column names", "column types"})
    lines += ["", f"Statements that differ only in column names and/or column types: "
              f"{names_types} (with those fixed: "
              f"{100.0 * (identical + names_types) / len(results):.1f}% identical)."]
    return lines


def markdown(results: list[Result]) -> str:
    out = [f"Measured at commit {_commit()}.", "", *summary(results)]
    by_topic: dict[str, list[Result]] = {}
    for r in results:
        if not r.identical:
            by_topic.setdefault(r.statement.topic, []).append(r)
    for topic, rs in sorted(by_topic.items()):
        out += ["", f"### {TOPIC_TITLES.get(topic, topic)} ({len(rs)})", "",
                "| statement | differs in | PostgreSQL | QuackML |", "|---|---|---|---|"]
        for r in rs:
            sql = " ".join(r.statement.sql.split())
            kinds = ", ".join(PLAIN_KINDS.get(k, k) for k in r.differences)
            out.append(f"| `{_md(sql)}` | {kinds} | "
                       f"{_md(_plain(r.postgres))} | {_md(_plain(r.quackml))} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the doc's report")
    parser.add_argument("--json", metavar="PATH", help="write every outcome to PATH")
    parser.add_argument("--topic", action="append", help="run only these fixture files")
    args = parser.parse_args()
    files = [f for f in corpus_files() if f.stem in args.topic] if args.topic else None
    results = measure(files)
    if args.markdown:
        print(markdown(results))
    else:
        print(f"measured at commit {_commit()}\n")
        print("\n".join(summary(results)))
        print()
        print("\n".join(difference_lines(results)))
    if args.json:
        Path(args.json).write_text(json.dumps([
            {"where": r.statement.where, "sql": r.statement.sql, "differences": r.differences,
             "postgres": _plain(r.postgres), "quackml": _plain(r.quackml)}
            for r in results], indent=1))


if __name__ == "__main__":
    main()
