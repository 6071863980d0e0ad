"""EVALUATE MODEL over the wire: its metrics equal scikit-learn's computed here from the
predictions the model's own SQL functions return on the same rows; without ON, the holdout
metric equals the validation metric SHOW MODEL reports; CONFUSION MATRIX and ROC CURVE;
the errors (unknown model, missing column, bad query, no EXECUTE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sklearn import metrics

from tests.conftest import RunningServer
from tests.test_security import ADMIN, ADMIN_PW, connect_as, start

FEATURES = "tenure, contract, monthly_charges"
TEST_ROWS = f"SELECT {FEATURES}, churn FROM customers WHERE split = 'test'"
MODELS = {
    "ev_bin": f"CREATE MODEL ev_bin FROM (SELECT {FEATURES}, churn FROM customers WHERE "
              "split = 'train') TARGET churn FUNCTION ev_bin_f SETTINGS (MAX_RUNTIME 8)",
    "ev_reg": "CREATE MODEL ev_reg FROM (SELECT tenure, contract, total_charges, monthly_charges "
              "FROM customers WHERE split = 'train') TARGET monthly_charges FUNCTION ev_reg_f "
              "SETTINGS (MAX_RUNTIME 8)",
    "ev_multi": "CREATE MODEL ev_multi FROM (SELECT tenure, monthly_charges, total_charges, "
                "contract FROM customers WHERE split = 'train') TARGET contract "
                "FUNCTION ev_multi_f AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'multi:softmax' "
                "HYPERPARAMETERS DEFAULT EXCEPT (NUM_CLASS '3', NUM_ROUND '20')",
}
CLASSIFICATION = ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"]
REGRESSION = ["mean_absolute_error", "mean_squared_error", "mean_squared_log_error",
              "median_absolute_error", "r2_score", "explained_variance"]


def wait_ready(conn: psycopg.Connection, model: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while (state := dict(conn.execute(f"SHOW MODEL {model}").fetchall())["Model State"]) \
            == "TRAINING":
        assert time.monotonic() < deadline, f"{model} still TRAINING"
        time.sleep(0.3)
    assert state == "READY", dict(conn.execute(f"SHOW MODEL {model}").fetchall())


@pytest.fixture(scope="module")
def trained(server: RunningServer) -> Iterator[RunningServer]:
    """The three models, trained once for the module (in parallel)."""
    with server.connect() as conn:
        for name, create in MODELS.items():
            conn.execute(f"DROP MODEL IF EXISTS {name}")
            conn.execute(create)
        for name in MODELS:
            wait_ready(conn, name)
    yield server
    with server.connect() as conn:
        for name in MODELS:
            conn.execute(f"DROP MODEL IF EXISTS {name}")


@pytest.fixture
def conn(trained: RunningServer) -> Iterator[psycopg.Connection]:
    with trained.connect() as c:
        yield c


def evaluate(conn: psycopg.Connection, sql: str) -> dict[str, object]:
    cur = conn.execute(sql)
    rows = cur.fetchall()
    assert cur.description is not None and len(rows) == 1
    return dict(zip([d.name for d in cur.description], rows[0], strict=True))


def probabilities(value: object) -> dict[object, float]:
    """A _probabilities function's STRUCT (sent as JSON text): label -> probability."""
    struct = json.loads(value) if isinstance(value, str) else value
    assert isinstance(struct, dict)
    return dict(zip(struct["labels"], struct["probabilities"], strict=True))


def binary_predictions(conn: psycopg.Connection, rows: str
                       ) -> tuple[list[bool], list[bool], np.ndarray]:
    """Truth, the model's labels, and P(churn) as ev_bin_f_probabilities serves it."""
    got = conn.execute(f"SELECT churn, ev_bin_f({FEATURES}), ev_bin_f_probabilities({FEATURES}) "
                       f"FROM ({rows})").fetchall()
    truth = [r[0] for r in got]
    labels = [r[1] for r in got]
    p_yes = np.asarray([probabilities(r[2])[True]
                        for r in got])
    return truth, labels, p_yes


def test_binary_metrics_equal_sklearn_on_the_functions_predictions(
        conn: psycopg.Connection) -> None:
    got = evaluate(conn, f"EVALUATE MODEL ev_bin ON ({TEST_ROWS})")
    assert list(got) == CLASSIFICATION
    truth, labels, p_yes = binary_predictions(conn, TEST_ROWS)
    y = np.asarray(truth, dtype=bool)        # the positive label of a BOOLEAN target: true
    predicted = np.asarray(labels, dtype=bool)
    expected = {
        "precision": metrics.precision_score(y, predicted),
        "recall": metrics.recall_score(y, predicted),
        "accuracy": metrics.accuracy_score(y, predicted),
        "f1_score": metrics.f1_score(y, predicted),
        "log_loss": metrics.log_loss(y, p_yes),
        "roc_auc": metrics.roc_auc_score(y, p_yes),
    }
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # WITH THRESHOLD applies to the served positive-class probability
    low = evaluate(conn, f"EVALUATE MODEL ev_bin ON ({TEST_ROWS}) WITH THRESHOLD 0.2")
    assert low["recall"] == pytest.approx(metrics.recall_score(y, p_yes >= 0.2), rel=1e-12)
    assert low["precision"] == pytest.approx(metrics.precision_score(y, p_yes >= 0.2),
                                             rel=1e-12)
    assert low["recall"] > got["recall"]   # type: ignore[operator]
    assert low["roc_auc"] == got["roc_auc"]


def test_holdout_metric_is_the_validation_metric(conn: psycopg.Connection) -> None:
    shown = dict(conn.execute("SHOW MODEL ev_bin").fetchall())
    got = evaluate(conn, "EVALUATE MODEL ev_bin")
    assert float(shown["validation:f1"]) == pytest.approx(got["f1_score"], rel=1e-5)
    shown = dict(conn.execute("SHOW MODEL ev_reg").fetchall())
    got = evaluate(conn, "EVALUATE MODEL ev_reg")
    assert list(got) == REGRESSION
    assert float(shown["validation:mse"]) == pytest.approx(got["mean_squared_error"], rel=1e-5)


def test_confusion_matrix(conn: psycopg.Connection) -> None:
    cur = conn.execute(f"EVALUATE MODEL ev_bin ON ({TEST_ROWS}) CONFUSION MATRIX")
    assert cur.description is not None
    names = [d.name for d in cur.description]
    assert names == ["expected_label", "false", "true"]
    matrix = {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in cur.fetchall()}
    truth, labels, _ = binary_predictions(conn, TEST_ROWS)
    assert sum(sum(row.values()) for row in matrix.values()) == len(truth)
    text = {False: "false", True: "true"}
    for expected in (False, True):
        for predicted in (False, True):
            assert matrix[text[expected]][text[predicted]] == sum(
                1 for t, p in zip(truth, labels, strict=True)
                if t == expected and p == predicted)


def test_roc_curve(conn: psycopg.Connection) -> None:
    cur = conn.execute(f"EVALUATE MODEL ev_bin ON ({TEST_ROWS}) ROC CURVE")
    assert cur.description is not None
    assert [d.name for d in cur.description] == [
        "threshold", "recall", "false_positive_rate", "true_positives", "false_positives",
        "true_negatives", "false_negatives"]
    rows = cur.fetchall()
    truth, _, p_yes = binary_predictions(conn, TEST_ROWS)
    y = np.asarray(truth, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    assert len(rows) > 10
    for threshold, recall, fpr, tp, fp, tn, fn in rows:
        assert tp + fn == positives and fp + tn == negatives
        if np.isfinite(threshold):
            assert tp == int(np.sum(y & (p_yes >= threshold)))
            assert fp == int(np.sum(~y & (p_yes >= threshold)))
        assert recall == pytest.approx(tp / positives) and fpr == pytest.approx(fp / negatives)
    thresholds = [r[0] for r in rows]
    assert thresholds == sorted(thresholds, reverse=True)
    assert rows[-1][1:3] == (1.0, 1.0)
    area = np.trapezoid([r[1] for r in rows], [r[2] for r in rows])
    auc = evaluate(conn, f"EVALUATE MODEL ev_bin ON ({TEST_ROWS})")["roc_auc"]
    assert area == pytest.approx(auc, rel=1e-9)


def test_regression_metrics_equal_sklearn(conn: psycopg.Connection) -> None:
    rows = ("SELECT tenure, contract, total_charges, monthly_charges FROM customers "
            "WHERE split = 'test'")
    got = evaluate(conn, f"EVALUATE MODEL ev_reg ON ({rows})")
    pairs = conn.execute(f"SELECT monthly_charges, ev_reg_f(tenure, contract, total_charges) "
                         f"FROM ({rows})").fetchall()
    y = np.asarray([float(r[0]) for r in pairs])
    predicted = np.asarray([float(r[1]) for r in pairs])
    expected = {
        "mean_absolute_error": metrics.mean_absolute_error(y, predicted),
        "mean_squared_error": metrics.mean_squared_error(y, predicted),
        "mean_squared_log_error": metrics.mean_squared_log_error(y, predicted),
        "median_absolute_error": metrics.median_absolute_error(y, predicted),
        "r2_score": metrics.r2_score(y, predicted),
        "explained_variance": metrics.explained_variance_score(y, predicted),
    }
    assert got == pytest.approx(expected, rel=1e-6)
    # log(1 + y) is undefined for y <= -1: NULL, with a notice saying why
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    shifted = evaluate(conn, "EVALUATE MODEL ev_reg ON (SELECT tenure, contract, total_charges, "
                             "monthly_charges - 1000 AS monthly_charges FROM customers "
                             "WHERE split = 'test')")
    assert shifted["mean_squared_log_error"] is None
    assert shifted["mean_squared_error"] > got["mean_squared_error"]  # type: ignore[operator]
    assert any("mean_squared_log_error" in n for n in notices)
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute(f"EVALUATE MODEL ev_reg ON ({rows}) CONFUSION MATRIX")


def test_multiclass_macro_metrics(conn: psycopg.Connection) -> None:
    rows = ("SELECT tenure, monthly_charges, total_charges, contract FROM customers "
            "WHERE split = 'test'")
    got = evaluate(conn, f"EVALUATE MODEL ev_multi ON ({rows})")
    pairs = conn.execute(
        f"SELECT contract, ev_multi_f(tenure, monthly_charges, total_charges), "
        f"ev_multi_f_probabilities(tenure, monthly_charges, total_charges) FROM ({rows})"
    ).fetchall()
    labels = sorted({r[0] for r in pairs})
    y = [r[0] for r in pairs]
    predicted = [r[1] for r in pairs]
    proba = np.asarray([[probabilities(r[2])[k]
                         for k in labels] for r in pairs])
    expected = {
        "precision": metrics.precision_score(y, predicted, average="macro", zero_division=0),
        "recall": metrics.recall_score(y, predicted, average="macro", zero_division=0),
        "accuracy": metrics.accuracy_score(y, predicted),
        "f1_score": metrics.f1_score(y, predicted, average="macro", zero_division=0),
        "log_loss": metrics.log_loss(y, proba, labels=labels),
        "roc_auc": metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels),
    }
    assert got == pytest.approx(expected, rel=1e-6)
    cur = conn.execute(f"EVALUATE MODEL ev_multi ON ({rows}) CONFUSION MATRIX")
    matrix = cur.fetchall()
    assert len(matrix) == 3 and sum(sum(r[1:]) for r in matrix) == len(pairs)
    # an AUTO OFF model keeps no holdout: ON is needed
    with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
        conn.execute("EVALUATE MODEL ev_multi")
    assert "ON (SELECT" in (info.value.diag.message_hint or "")
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute(f"EVALUATE MODEL ev_multi ON ({rows}) ROC CURVE")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute(f"EVALUATE MODEL ev_multi ON ({rows}) WITH THRESHOLD 0.4")


def test_function_form_in_from_and_create_table_as(conn: psycopg.Connection) -> None:
    """evaluate_model('m', 'query'): a scalar function returning a STRUCT of every metric
    (DuckDB's Python API has no table functions), unnested in FROM."""
    statement = evaluate(conn, f"EVALUATE MODEL ev_bin ON ({TEST_ROWS})")
    quoted = TEST_ROWS.replace("'", "''")
    got = evaluate(conn, f"SELECT * FROM (SELECT unnest(evaluate_model('ev_bin', '{quoted}')))")
    assert {k: got[k] for k in CLASSIFICATION} == pytest.approx(statement, rel=1e-12)
    assert all(got[k] is None for k in REGRESSION)
    conn.execute("DROP TABLE IF EXISTS ev_scores")
    conn.execute(f"CREATE TABLE ev_scores AS SELECT now() AS evaluated, "
                 f"unnest(evaluate_model('public.ev_bin', '{quoted}'))")
    stored = evaluate(conn, "SELECT accuracy, f1_score FROM ev_scores")
    assert stored == pytest.approx({k: statement[k] for k in ("accuracy", "f1_score")})
    conn.execute("DROP TABLE ev_scores")
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT evaluate_model('ev_no_such_model', 'SELECT 1')")


def test_errors(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("EVALUATE MODEL ev_no_such_model")
    with pytest.raises(psycopg.errors.UndefinedColumn) as info:
        conn.execute("EVALUATE MODEL ev_bin ON (SELECT tenure, monthly_charges, churn "
                     "FROM customers)")
    assert '"contract"' in str(info.value)
    with pytest.raises(psycopg.errors.UndefinedColumn) as info:
        conn.execute(f"EVALUATE MODEL ev_bin ON (SELECT {FEATURES} FROM customers)")
    assert 'target column "churn"' in str(info.value)
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("EVALUATE MODEL ev_bin ON (SELECT * FROM ev_no_such_table)")
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("EVALUATE MODEL ev_bin ON (DELETE FROM customers)")
    assert conn.execute("SELECT count(*) FROM customers").fetchone() != (0,)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("EVALUATE MODEL ev_bin WITH THRESHOLD 1.5")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("EVALUATE MODEL ev_reg WITH THRESHOLD 0.5")


# -- as a user without privileges (a server with passwords: trust makes superusers) --------
KMEANS = ("CREATE MODEL ev_km FROM ev_pts FUNCTION ev_km_f AUTO OFF MODEL_TYPE KMEANS "
          "HYPERPARAMETERS DEFAULT EXCEPT (K '3')")


def test_privileges_and_kmeans(tmp_path: Path) -> None:
    srv = start(tmp_path, auth="scram-sha-256")
    try:
        with connect_as(srv, ADMIN, ADMIN_PW) as admin:
            admin.execute("CREATE USER ev_user PASSWORD 'ev-pw'")
            admin.execute("CREATE TABLE ev_pts AS SELECT (i % 7)::DOUBLE AS a, "
                          "(i % 13)::DOUBLE AS b FROM range(600) t(i)")
            admin.execute("CREATE TABLE ev_secret AS SELECT * FROM ev_pts")
            admin.execute("GRANT SELECT ON ev_pts TO ev_user")
            admin.execute(KMEANS)
            wait_ready(admin, "ev_km")
            with connect_as(srv, "ev_user", "ev-pw") as user:
                for refused in ("EVALUATE MODEL ev_km ON (SELECT * FROM ev_pts)",
                                "SELECT evaluate_model('ev_km', 'SELECT * FROM ev_pts')"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        user.execute(refused)
                admin.execute("GRANT EXECUTE ON MODEL ev_km TO ev_user")
                got = evaluate(user, "EVALUATE MODEL ev_km ON (SELECT * FROM ev_pts)")
                # the ON query runs as the user: no SELECT on ev_secret
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    user.execute("EVALUATE MODEL ev_km ON (SELECT * FROM ev_secret)")
                with pytest.raises(psycopg.errors.FeatureNotSupported):
                    user.execute("EVALUATE MODEL ev_km")   # no holdout: ON is needed
                # the function form: the firewall checks the model and the query
                cur = user.execute("SELECT unnest(evaluate_model('ev_km', "
                                   "'SELECT * FROM ev_pts'))")
                assert cur.description is not None
                function = cur.fetchone()
                assert function is not None
                by_name = dict(zip([d.name for d in cur.description], function, strict=True))
                assert {k: by_name[k] for k in got} == got
                for refused in ("SELECT evaluate_model('ev_km', 'SELECT * FROM ev_secret')",
                                "SELECT evaluate_model('ev_km', q) "
                                "FROM (VALUES ('SELECT * FROM ev_pts')) t(q)",
                                "SELECT evaluate_model(m, 'SELECT * FROM ev_pts') "
                                "FROM (VALUES ('ev_km')) t(m)"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        user.execute(refused)
                # the function runs the query on a connection of its own, and the firewall
                # binds it as that connection does: a temporary table of the user's cannot
                # stand in for the table the function would read
                user.execute("CREATE TEMP TABLE ev_secret AS SELECT * FROM ev_pts")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    user.execute("SELECT evaluate_model('ev_km', 'SELECT * FROM ev_secret')")
                rows = user.execute("SELECT a, b, ev_km_f(a, b) FROM ev_pts").fetchall()
                shown = dict(user.execute("SHOW MODEL ev_km").fetchall())
        x = np.asarray([r[:2] for r in rows], dtype=np.float64)
        clusters = np.asarray([r[2] for r in rows])
        assert list(got) == ["davies_bouldin_index", "mean_squared_distance"]
        assert got["davies_bouldin_index"] == pytest.approx(
            metrics.davies_bouldin_score(x, clusters), rel=1e-9)
        # on the training rows, the mean squared distance is the model's train:msd
        assert got["mean_squared_distance"] == pytest.approx(float(shown["train:msd"]),
                                                             rel=1e-5)
    finally:
        srv.stop()
