"""The engine's shared DuckDB connection runs one call at a time: what sessions do
at once (DDL, CREATE MODEL's name checks, model functions appearing and going) must
never meet there ("connection is busy with another call")."""

from __future__ import annotations

import threading

import psycopg

from tests.conftest import RunningServer

ROUNDS = 15


def test_sessions_at_once_never_share_the_engine_connection(server: RunningServer) -> None:
    errors: list[str] = []
    start = threading.Barrier(4)

    def ddl(i: int) -> None:
        with server.connect() as c:
            c.autocommit = True
            start.wait()
            for n in range(ROUNDS):
                try:
                    # each DDL moves the generation the reserved names are cached under
                    c.execute(f"CREATE TABLE shared_conn_{i}_{n} AS SELECT 1 AS x")
                    c.execute(f"DROP TABLE shared_conn_{i}_{n}")
                except psycopg.Error as exc:
                    errors.append(f"ddl: {exc}")

    def plan(i: int) -> None:
        with server.connect() as c:
            c.autocommit = True
            start.wait()
            for _ in range(ROUNDS):
                try:
                    # the dry run checks the function name against the reserved names
                    c.execute(f"EXPLAIN CREATE MODEL shared_m{i} FROM (SELECT tenure, churn "
                              f"FROM customers) TARGET churn FUNCTION shared_f{i} "
                              "IAM_ROLE default SETTINGS (S3_BUCKET 'unused')").fetchall()
                except psycopg.Error as exc:
                    errors.append(f"plan: {exc}")

    threads = [threading.Thread(target=ddl, args=(0,)), threading.Thread(target=ddl, args=(1,)),
               threading.Thread(target=plan, args=(0,)), threading.Thread(target=plan, args=(1,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
