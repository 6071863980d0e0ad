"""The catalog survives restarts of a real ``quackml serve`` process."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.conftest import start_server_process, wait_for_state

FEATURES = "seniority, home, time, age, marital, records, job, expenses, income, assets, " \
           "debt, amount, price"


def _scores(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute(f"SELECT predict_credit({FEATURES}) FROM credit WHERE split = 'test' "
                         "ORDER BY ALL").fetchall()


def test_models_survive_restart_and_training_resumes(tmp_path: Path) -> None:
    db, data = tmp_path / "quackml.duckdb", tmp_path / "data"  # the default file name
    first = start_server_process(db, data, "--training-workers", "2")
    try:
        with psycopg.connect(first.dsn(), autocommit=True) as c:
            c.execute(f"CREATE MODEL credit_model FROM (SELECT {FEATURES}, status FROM credit "
                      "WHERE split = 'train') TARGET status FUNCTION predict_credit "
                      "SETTINGS (MAX_RUNTIME 8)")
            assert wait_for_state(c, "credit_model") == "READY"
            c.execute("CREATE MODEL hpc_model FROM (SELECT * EXCLUDE (split) FROM hpc) "
                      "TARGET class FUNCTION predict_hpc SETTINGS (MAX_RUNTIME 8)")
            c.execute("CREATE TABLE kept AS SELECT 1 AS v")
        before = _scores(first.dsn())
        with psycopg.connect(first.dsn(), autocommit=True) as c:
            # a replacement version is training when the server stops
            c.execute(f"CREATE OR REPLACE MODEL credit_model FROM (SELECT {FEATURES}, status "
                      "FROM credit WHERE split = 'train' AND amount > 500) TARGET status "
                      "FUNCTION predict_credit SETTINGS (MAX_RUNTIME 8)")
    finally:
        first.stop()
    second = start_server_process(db, data)
    try:
        # version 1 still serves while version 2's training resumes from its snapshot
        assert _scores(second.dsn()) == before
        with psycopg.connect(second.dsn(), autocommit=True) as c:
            assert c.execute("SELECT v FROM kept").fetchall() == [(1,)]
            # hpc_model was TRAINING when the first server stopped: it is resumed.
            assert wait_for_state(c, "hpc_model") == "READY"
            labels = c.execute("SELECT DISTINCT predict_hpc(protocol, compounds, input_fields, "
                               "iterations, num_pending, hour, day) FROM hpc"
                               ).fetchall()
            assert {r[0] for r in labels} <= {"VF", "F", "M", "L"}
            deadline = time.monotonic() + 120
            while True:
                rows = c.execute("SELECT version, state, active, decision FROM "
                                 "svv_ml_model_versions WHERE model_name = 'credit_model' "
                                 "ORDER BY version").fetchall()
                if rows[1][1] != "TRAINING" and not str(rows[1][3]).startswith("pending"):
                    break
                assert time.monotonic() < deadline, rows
                time.sleep(0.3)
            assert [(r[0], r[1], r[2]) for r in rows] == [(1, "READY", False), (2, "READY", True)]
    finally:
        second.stop()
