"""Model versions end to end, over the wire: CREATE OR REPLACE MODEL while the active
version serves, the atomic switch, ROLLBACK, DROP MODEL ... VERSION, RETRAIN [ONLY IF
BETTER] with its champion gate, and a failed replacement that leaves the active one."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.conftest import RunningServer

QUERY = "SELECT tenure, contract, monthly_charges, churn FROM customers WHERE split = 'train'"
CREATE = ("CREATE {verb} MODEL vmodel FROM ({query}) TARGET churn FUNCTION vmodel_f "
          "SETTINGS (MAX_RUNTIME {runtime})")
PREDICT = ("SELECT vmodel_f(tenure, contract, monthly_charges) FROM customers "
           "WHERE split = 'test' ORDER BY tenure, contract, monthly_charges, total_charges")


def versions(conn: psycopg.Connection) -> dict[int, tuple[object, ...]]:
    rows = conn.execute(
        "SELECT version, state, active, decision, champion_score, challenger_score, "
        "training_data_fingerprint, created_by, validation_metric, learner "
        "FROM svv_ml_model_versions WHERE model_name = 'vmodel' ORDER BY version").fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def wait_version(conn: psycopg.Connection, version: int, timeout: float = 240.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state, _, decision = versions(conn)[version][:3]
        # a replacement's decision is recorded just after it is READY
        if state != "TRAINING" and not str(decision).startswith("pending"):
            return str(state)
        assert time.monotonic() < deadline, f"version {version} still TRAINING"
        time.sleep(0.3)


def predictions(conn: psycopg.Connection) -> list[object]:
    return [r[0] for r in conn.execute(PREDICT).fetchall()]


def show(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SHOW MODEL vmodel").fetchall())


@pytest.fixture
def vconn(server: RunningServer) -> psycopg.Connection:
    with server.connect() as conn:
        conn.execute("DROP MODEL IF EXISTS vmodel")
        yield conn
        conn.execute("DROP MODEL IF EXISTS vmodel")


def test_replace_switch_rollback_and_drop_version(vconn: psycopg.Connection,
                                                  server: RunningServer) -> None:
    conn = vconn
    conn.execute(CREATE.format(verb="", query=QUERY, runtime=8))
    assert wait_version(conn, 1) == "READY"
    first = predictions(conn)
    # the replacement trains on other rows, so its predictions differ somewhere
    conn.execute(CREATE.format(verb="OR REPLACE", runtime=8,
                               query=QUERY + " AND monthly_charges > 40"))
    during = versions(conn)
    assert during[1][:2] == ("READY", True) and during[2][:2] == ("TRAINING", False)
    rows = show(conn)
    assert rows["Model Version"] == "1 (active)" and rows["Versions"] == "2"
    assert rows["Latest Version"].startswith("2 TRAINING")
    # the active version keeps serving while the new one trains, and no statement
    # scores with two versions: every result is one version's predictions whole
    seen: list[list[object]] = []
    stop = threading.Event()

    def keep_predicting() -> None:
        with server.connect() as other:
            while not stop.is_set():
                seen.append(predictions(other))

    worker = threading.Thread(target=keep_predicting)
    worker.start()
    try:
        assert wait_version(conn, 2) == "READY"
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join()
    now = versions(conn)
    assert now[1][1] is False and now[2][1] is True
    assert str(now[2][2]).startswith("activated: replaced version 1")
    second = predictions(conn)
    assert second != first
    assert seen and all(result in (first, second) for result in seen)
    assert show(conn)["Model Version"] == "2 (active)"

    # ROLLBACK: back to version 1, atomically, the same predictions as before
    conn.execute("ALTER MODEL vmodel ROLLBACK")
    assert versions(conn)[1][1] is True and predictions(conn) == first
    conn.execute("ALTER MODEL vmodel ROLLBACK TO VERSION 2")
    assert predictions(conn) == second
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("DROP MODEL vmodel VERSION 2")   # the active one
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("ALTER MODEL vmodel ROLLBACK TO VERSION 7")
    conn.execute("DROP MODEL vmodel VERSION 1")
    assert list(versions(conn)) == [2]
    assert predictions(conn) == second

    # a replacement must keep the function's signature (PostgreSQL: 42P13)
    with pytest.raises(psycopg.errors.InvalidFunctionDefinition):
        conn.execute("CREATE OR REPLACE MODEL vmodel FROM (SELECT tenure, churn FROM customers) "
                     "TARGET churn FUNCTION vmodel_f SETTINGS (MAX_RUNTIME 8)")
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute(CREATE.format(verb="OR REPLACE", query=QUERY, runtime=8)
                     .replace("FUNCTION vmodel_f", "FUNCTION other_f"))
    with pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute(CREATE.format(verb="", query=QUERY, runtime=8))


def test_failed_replacement_keeps_the_active_version(vconn: psycopg.Connection) -> None:
    conn = vconn
    # reg:logistic needs targets in [0, 1]: the replacement's targets are not, so it FAILS
    xgb = ("CREATE {verb} MODEL vmodel FROM (SELECT tenure, monthly_charges, CASE WHEN "
           "churn = 'Yes' THEN {yes} ELSE 0.0 END AS y FROM customers WHERE split = 'train') "
           "TARGET y FUNCTION vmodel_x AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'reg:logistic' "
           "HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '5')")
    conn.execute(xgb.format(verb="", yes="1.0"))
    assert wait_version(conn, 1) == "READY"
    predict = ("SELECT vmodel_x(tenure, monthly_charges) FROM customers WHERE split = 'test' "
               "ORDER BY tenure, monthly_charges, total_charges")
    before = conn.execute(predict).fetchall()
    conn.execute(xgb.format(verb="OR REPLACE", yes="2.0"))
    assert wait_version(conn, 2) == "FAILED"
    rows = show(conn)
    assert rows["Model State"] == "READY" and rows["Model Version"] == "1 (active)"
    assert "2 FAILED" in rows["Latest Version"] and "version 1 stays active" in \
        rows["Latest Version"], rows["Latest Version"]
    assert conn.execute(predict).fetchall() == before
    # RETRAIN ONLY IF BETTER needs a validation holdout, which AUTO OFF does not keep
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute("ALTER MODEL vmodel RETRAIN ONLY IF BETTER")


def test_retrain_only_if_better_records_the_gate(vconn: psycopg.Connection) -> None:
    conn = vconn
    conn.execute(CREATE.format(verb="", query=QUERY, runtime=8))
    assert wait_version(conn, 1) == "READY"
    conn.execute("ALTER MODEL vmodel RETRAIN ONLY IF BETTER")
    assert wait_version(conn, 2) == "READY"
    v = versions(conn)
    decision, champion, challenger = v[2][2], v[2][3], v[2][4]
    assert champion is not None and challenger is not None, decision
    # F1 on the same holdout rows: higher is better, and the decision follows the scores
    if challenger > champion:
        assert str(decision).startswith("activated: beat version 1") and v[2][1] is True
    else:
        assert str(decision).startswith("kept version 1") and v[1][1] is True
    assert v[2][5] and len(str(v[2][5])) == 64   # the snapshot's sha256
    assert v[1][5] == v[2][5]                   # the same rows, the same fingerprint
    # RETRAIN (no gate) always activates the new version
    conn.execute("ALTER MODEL vmodel RETRAIN")
    assert wait_version(conn, 3) == "READY"
    assert versions(conn)[3][1] is True
