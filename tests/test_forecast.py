"""MODEL_TYPE FORECAST over the wire: Redshift's statements verbatim (on a few of the
Tourism competition's monthly series), CTAS of SELECT FORECAST(m), ordered percentiles,
a single series without an id, and the checks CREATE MODEL makes before queueing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from utilsforecast import losses

from automl import forecast
from tests.conftest import RunningServer
from tests.test_security import ADMIN, ADMIN_PW, connect_as, start

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "tourism_monthly.csv"
SERIES = "series_id IN ('M1', 'M2', 'M3', 'M4', 'M5', 'M6', 'M7', 'M8')"
CREATE = f"""CREATE MODEL visitors_fc
FROM (SELECT series_id, month, value FROM tourism WHERE split = 'train' AND {SERIES})
TARGET value
IAM_ROLE default
AUTO ON MODEL_TYPE FORECAST
OBJECTIVE 'AverageWeightedQuantileLoss'
SETTINGS (S3_BUCKET 'unused', HORIZON 24, FREQUENCY 'M',
          PERCENTILES '0.1,0.5,0.9,mean', MAX_RUNTIME 20)"""
SINGLE = """CREATE MODEL single_fc
FROM (SELECT month, value FROM tourism WHERE split = 'train' AND series_id = 'M9')
TARGET value AUTO ON MODEL_TYPE FORECAST OBJECTIVE 'MASE'
SETTINGS (HORIZON 12, FREQUENCY 'M', MAX_RUNTIME 40)"""


def wait_ready(conn: psycopg.Connection, name: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT state FROM svv_ml_model_versions WHERE model_name = %s",
                           [name]).fetchone()
        assert row is not None
        if row[0] != "TRAINING":
            assert row[0] == "READY", dict(conn.execute(f"SHOW MODEL {name}").fetchall())
            return
        assert time.monotonic() < deadline, f"{name} still TRAINING"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def trained(server: RunningServer) -> RunningServer:
    with server.connect() as conn:
        conn.execute("DROP MODEL IF EXISTS visitors_fc")
        conn.execute("DROP MODEL IF EXISTS single_fc")
        conn.execute(CREATE)
        conn.execute(SINGLE)
        wait_ready(conn, "visitors_fc")
        wait_ready(conn, "single_fc")
    return server


def test_redshift_statements_verbatim(trained: RunningServer) -> None:
    with trained.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS visitors_forecast")
        conn.execute("CREATE TABLE visitors_forecast AS SELECT FORECAST(visitors_fc)")
        cur = conn.execute("SELECT * FROM visitors_forecast WHERE id = 'M1' ORDER BY time")
        assert [d.name for d in cur.description] == ["id", "time", "p10", "p50", "p90", "mean"]
        rows = cur.fetchall()
        assert len(rows) == 24
        # the 24 months after the last training month, in order
        last = conn.execute("SELECT max(month) FROM tourism WHERE split = 'train' AND "
                            "series_id = 'M1'").fetchone()[0]
        first = conn.execute("SELECT min(month) FROM tourism WHERE split = 'test' AND "
                             "series_id = 'M1'").fetchone()[0]
        assert rows[0][1] == first and rows[0][1] > last
        total = conn.execute("SELECT count(*), count(DISTINCT id) FROM visitors_forecast"
                             ).fetchone()
        assert total == (8 * 24, 8)
        # the same rows straight from the function
        direct = conn.execute("SELECT FORECAST(visitors_fc)").fetchall()
        assert len(direct) == 8 * 24
        # and as a FROM item: alone, aliased in a join, after a comma
        assert conn.execute("SELECT * FROM FORECAST(visitors_fc) WHERE id = 'M1' "
                            "ORDER BY time").fetchall() == rows
        joined = conn.execute(
            "SELECT count(*), count(f.p50) FROM tourism t JOIN FORECAST(public.visitors_fc) "
            "AS f ON t.series_id = f.id AND t.month = f.time WHERE t.split = 'test'"
        ).fetchone()
        assert joined == (8 * 24, 8 * 24)
        assert conn.execute("SELECT count(*) FROM (SELECT 1) AS one, FORECAST(visitors_fc) f "
                            "WHERE f.id = 'M2'").fetchone() == (24,)


def test_percentiles_in_order(trained: RunningServer) -> None:
    with trained.connect() as conn:
        bad = conn.execute("SELECT count(*) FROM (SELECT FORECAST(visitors_fc)) "
                           "WHERE NOT (p10 <= p50 AND p50 <= p90) OR p50 IS NULL").fetchone()
        assert bad == (0,)


def test_show_model(trained: RunningServer) -> None:
    with trained.connect() as conn:
        shown = dict(conn.execute("SHOW MODEL visitors_fc").fetchall())
    text = repr(shown)
    for word in ("HORIZON", "24", "FREQUENCY", "p10", "p90", "mean", "RMSE", "WAPE", "MAPE",
                 "MASE", "AverageWeightedQuantileLoss"):
        assert word in text, (word, shown)
    assert any(m in text for m in ("SeasonalNaive", "AutoETS", "AutoTheta"))


def test_global_model_and_windows() -> None:
    """The global LightGBM model (mlforecast) forecasts every series, percentiles in
    order; the backtest windows follow the shortest series."""
    frame = pd.read_csv(DATA, parse_dates=["month"])
    frame = frame[frame["series_id"].isin([f"M{i}" for i in range(1, 9)])]
    train = frame[frame["split"] == "train"].rename(
        columns={"series_id": "unique_id", "month": "ds", "value": "y"})
    opts = forecast.options(24, "M", "0.1,0.5,0.9", None)
    rows = forecast.forecast(train[["unique_id", "ds", "y"]], opts, forecast.GLOBAL)
    assert len(rows) == 8 * 24 and rows.groupby("id").size().eq(24).all()
    values = rows[["p10", "p50", "p90"]].to_numpy()
    assert np.isfinite(values).all() and (np.diff(values, axis=1) >= 0).all()
    lengths = train.groupby("unique_id").size()
    assert forecast._window_options(train, opts)[0] == (
        (3, 24) if lengths.min() >= 4 * 24 else (3, 8))
    short = train.groupby("unique_id").head(50)   # 50 months: one window of 24 only
    assert forecast._window_options(short, opts) == [(1, 24)]


def test_single_series(trained: RunningServer) -> None:
    with trained.connect() as conn:
        rows = conn.execute("SELECT * FROM (SELECT FORECAST(single_fc)) ORDER BY time"
                            ).fetchall()
    assert len(rows) == 12
    assert all(r[0] is None for r in rows)
    assert all(r[2] <= r[3] <= r[4] for r in rows)


BASE = ("CREATE MODEL bad_fc FROM ({query}) TARGET {target} AUTO ON MODEL_TYPE FORECAST "
        "SETTINGS ({settings})")
GOOD_QUERY = "SELECT series_id, month, value FROM tourism WHERE split = 'train' AND " + SERIES
M1 = "SELECT series_id, month, value FROM tourism WHERE series_id = 'M1'"


@pytest.mark.parametrize(("query", "target", "settings", "sqlstate", "words"), [
    (GOOD_QUERY, "value", "FREQUENCY 'M'", "22023", "HORIZON"),
    (GOOD_QUERY, "value", "HORIZON 24, FREQUENCY 'Q'", "22023", "FREQUENCY"),
    (GOOD_QUERY, "value", "HORIZON 24, FREQUENCY 'M', PERCENTILES '0.1,1.5'", "22023",
     "between 0.01 and 0.99"),
    (GOOD_QUERY, "value",
     "HORIZON 24, FREQUENCY 'M', PERCENTILES '0.1,0.2,0.3,0.4,0.5,0.6'", "22023", "five"),
    ("SELECT series_id, month, value::varchar AS value FROM tourism WHERE series_id = 'M1'",
     "value", "HORIZON 24, FREQUENCY 'M'", "42804", "numeric target"),
    ("SELECT CASE WHEN month = DATE '2000-03-01' THEN NULL ELSE series_id END AS series_id, "
     "month, value FROM tourism WHERE series_id = 'M1'", "value",
     "HORIZON 24, FREQUENCY 'M'", "22000", "NULL"),
    (M1 + " UNION ALL " + M1 + " AND month = DATE '2000-05-01'", "value",
     "HORIZON 24, FREQUENCY 'M'", "22000", "duplicate timestamps"),
    (M1, "value", "HORIZON 200, FREQUENCY 'M'", "22000", "too few observations"),
    ("SELECT series_id, month + INTERVAL 3 DAY AS month, value FROM tourism "
     "WHERE series_id = 'M1'", "value", "HORIZON 24, FREQUENCY 'M'", "22023",
     "do not follow FREQUENCY"),
    (M1, "value", "HORIZON 24, FREQUENCY 'D'", "22023", "do not follow FREQUENCY"),
    # related time series: refused rather than ignored
    ("SELECT series_id, month, value, value * 2 AS related FROM tourism", "value",
     "HORIZON 24, FREQUENCY 'M'", "0A000", '"related"'),
    ("SELECT month, value, 1.5 AS price FROM tourism WHERE series_id = 'M1'", "value",
     "HORIZON 24, FREQUENCY 'M'", "0A000", '"price"'),
])
def test_validation_errors(server: RunningServer, query: str, target: str, settings: str,
                           sqlstate: str, words: str) -> None:
    with server.connect() as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(BASE.format(query=query, target=target, settings=settings))
        assert info.value.sqlstate == sqlstate, str(info.value)
        assert words in str(info.value)
        assert conn.execute("SELECT count(*) FROM svv_ml_model_versions "
                            "WHERE model_name = 'bad_fc'").fetchone() == (0,)


def test_forecast_settings_need_forecast(server: RunningServer) -> None:
    with server.connect() as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("CREATE MODEL bad_h FROM customers TARGET churn FUNCTION bad_h_f "
                     "SETTINGS (HORIZON 3)")
    assert info.value.sqlstate == "0A000"


def test_execute_privilege(tmp_path: Path) -> None:
    """FORECAST(m) calls the model's function: a grantee needs EXECUTE on the model, and
    the firewall lets the call through once granted."""
    srv = start(tmp_path, auth="scram-sha-256")
    try:
        with connect_as(srv, ADMIN, ADMIN_PW) as admin:
            admin.execute("CREATE USER fc_user PASSWORD 'fc-pw'")
            admin.execute("CREATE TABLE fc_pts AS SELECT (DATE '2000-01-01' + "
                          "to_months(i::INTEGER))::DATE AS month, 100 + 10 * sin(i) AS value "
                          "FROM range(48) t(i)")
            admin.execute("CREATE MODEL priv_fc FROM fc_pts TARGET value MODEL_TYPE FORECAST "
                          "SETTINGS (HORIZON 12, FREQUENCY 'M', MAX_RUNTIME 40)")
            wait_ready(admin, "priv_fc")
            with connect_as(srv, "fc_user", "fc-pw") as user:
                for query in ("SELECT FORECAST(priv_fc)", "SELECT * FROM FORECAST(priv_fc)"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        user.execute(query)
                admin.execute("GRANT EXECUTE ON MODEL priv_fc TO fc_user")
                rows = user.execute("SELECT * FROM (SELECT FORECAST(priv_fc)) "
                                    "ORDER BY time").fetchall()
                assert len(rows) == 12
                assert user.execute("SELECT * FROM FORECAST(priv_fc) ORDER BY time"
                                    ).fetchall() == rows
    finally:
        srv.stop()


TEST_ROWS = f"SELECT series_id, month, value FROM tourism WHERE split = 'test' AND {SERIES}"
TRAIN_ROWS = TEST_ROWS.replace("'test'", "'train'")


def metric_row(conn: psycopg.Connection, statement: str) -> dict[str, float | None]:
    cur = conn.execute(statement)
    row = cur.fetchone()
    assert row is not None and cur.fetchone() is None
    assert cur.description is not None
    return dict(zip([d.name for d in cur.description], row, strict=True))


def test_evaluate_model(trained: RunningServer) -> None:
    """EVALUATE MODEL of a FORECAST model: the stored forecast against the test months,
    checked against the metrics computed here with numpy and utilsforecast."""
    with trained.connect() as conn:
        got = metric_row(conn, f"EVALUATE MODEL visitors_fc ON ({TEST_ROWS})")
        fc = pd.DataFrame(conn.execute("SELECT id, time, p10, p50, p90, mean FROM "
                                       "(SELECT FORECAST(visitors_fc))").fetchall(),
                          columns=["unique_id", "ds", "p10", "p50", "p90", "mean"])
        test = pd.DataFrame(conn.execute(TEST_ROWS).fetchall(), columns=["unique_id", "ds", "y"])
        train = pd.DataFrame(conn.execute(TRAIN_ROWS).fetchall(),
                             columns=["unique_id", "ds", "y"])
        # the function form gives the same numbers
        quoted = TEST_ROWS.replace("'", "''")
        function = metric_row(conn, "SELECT rmse, wape, mape, mase, "
                              "average_weighted_quantile_loss, interval_coverage FROM "
                              f"(SELECT unnest(evaluate_model('visitors_fc', '{quoted}')))")
        # without ON: the backtest measured at training, as SHOW MODEL shows it
        backtest = metric_row(conn, "EVALUATE MODEL visitors_fc")
        shown = dict(conn.execute("SHOW MODEL visitors_fc").fetchall())
    assert list(got) == ["rmse", "wape", "mape", "mase", "average_weighted_quantile_loss",
                         "interval_coverage"]
    df = test.merge(fc, on=["unique_id", "ds"])
    assert len(df) == 8 * 24
    y, err = df["y"].to_numpy(float), (df["y"] - df["mean"]).to_numpy(float)
    pinball = [2 * np.maximum(q * (y - df[c]), (q - 1) * (y - df[c])).sum() / np.abs(y).sum()
               for q, c in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90"))]
    mase = losses.mase(df, ["mean"], 12, train)
    expected = {"rmse": np.sqrt(np.mean(err ** 2)), "wape": np.abs(err).sum() / np.abs(y).sum(),
                "mape": np.mean(np.abs(err / y)), "mase": mase["mean"].mean(),
                "average_weighted_quantile_loss": np.mean(pinball),
                "interval_coverage": np.mean((df["p10"] <= y) & (y <= df["p90"]))}
    assert got == pytest.approx(expected, rel=1e-9)
    assert function == pytest.approx(got, rel=1e-12)
    assert backtest["mase"] == pytest.approx(float(shown["MASE"]), rel=1e-3)
    assert backtest["interval_coverage"] is not None


def test_evaluate_single_series(trained: RunningServer) -> None:
    """A model without an id: the actuals are (time, value); rows past the HORIZON are
    left out with a notice."""
    with trained.connect() as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        got = metric_row(conn, "EVALUATE MODEL single_fc ON (SELECT month, value FROM tourism "
                         "WHERE series_id = 'M9' AND split = 'test')")
        fc = conn.execute("SELECT f.p50, t.value FROM FORECAST(single_fc) f JOIN tourism t "
                          "ON t.month = f.time AND t.series_id = 'M9'").fetchall()
    assert len(fc) == 12
    y, p = np.array([r[1] for r in fc], float), np.array([r[0] for r in fc], float)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)), rel=1e-9)
    assert got["mase"] is not None and got["mase"] > 0
    assert any("12 of the 24 rows are outside the forecast" in n for n in notices), notices


@pytest.mark.parametrize(("statement", "error"), [
    # the training months: no (id, time) of the forecast
    (f"EVALUATE MODEL visitors_fc ON ({TRAIN_ROWS})",
     psycopg.errors.InvalidParameterValue),
    ("EVALUATE MODEL visitors_fc ON (SELECT series_id, month FROM tourism)",
     psycopg.errors.UndefinedColumn),
    ("EVALUATE MODEL visitors_fc ON (SELECT series_id, month, value::VARCHAR AS value "
     "FROM tourism)", psycopg.errors.DatatypeMismatch),
    (f"EVALUATE MODEL visitors_fc ON ({TEST_ROWS} UNION ALL {TEST_ROWS})",
     psycopg.errors.DataException),
    (f"EVALUATE MODEL visitors_fc ON ({TEST_ROWS}) ROC CURVE",
     psycopg.errors.FeatureNotSupported),
    (f"EVALUATE MODEL visitors_fc ON ({TEST_ROWS}) WITH THRESHOLD 0.5",
     psycopg.errors.InvalidParameterValue),
])
def test_evaluate_model_errors(trained: RunningServer, statement: str,
                               error: type[psycopg.Error]) -> None:
    with trained.connect() as conn, pytest.raises(error):
        conn.execute(statement)


def test_forecast_model_is_not_exported(trained: RunningServer) -> None:
    with trained.connect() as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("EXPORT MODEL visitors_fc FORMAT NATIVE").fetchall()
        with pytest.raises(psycopg.errors.InvalidFunctionDefinition):
            conn.execute("CREATE OR REPLACE " + CREATE.removeprefix("CREATE ").replace(
                "0.1,0.5,0.9,mean", "0.2,0.8"))


def test_restart_while_training(tmp_path: Path) -> None:
    """A FORECAST model TRAINING when the server stops resumes from its snapshot, and its
    FORECAST(m) works after the restart (the function is registered again)."""
    first = start(tmp_path)
    try:
        with connect_as(first, ADMIN, ADMIN_PW) as conn:
            conn.execute("CREATE TABLE rs AS SELECT 's' || (i // 60) AS id, "
                         "(DATE '2000-01-01' + to_months((i % 60)::INTEGER))::DATE AS month, "
                         "100 + (i // 60) + 10 * sin(i % 60) AS value FROM range(100 * 60) t(i)")
            conn.execute("CREATE MODEL rs_fc FROM rs TARGET value MODEL_TYPE FORECAST "
                         "SETTINGS (HORIZON 6, FREQUENCY 'M', MAX_RUNTIME 15)")
            state = conn.execute("SELECT state FROM svv_ml_model_versions "
                                 "WHERE model_name = 'rs_fc'").fetchone()
            assert state == ("TRAINING",)
    finally:
        first.stop()
    second = start(tmp_path)
    try:
        with connect_as(second, ADMIN, ADMIN_PW) as conn:
            wait_ready(conn, "rs_fc")
            assert conn.execute("SELECT count(*), count(DISTINCT id) FROM "
                                "(SELECT FORECAST(rs_fc))").fetchone() == (100 * 6, 100)
    finally:
        second.stop()


def test_explain_create_model(server: RunningServer) -> None:
    """EXPLAIN CREATE MODEL runs FORECAST's checks and plans without training."""
    with server.connect() as conn:
        rows = dict(conn.execute("EXPLAIN CREATE MODEL plan_fc FROM (" + GOOD_QUERY +
                                 ") TARGET value MODEL_TYPE FORECAST "
                                 "SETTINGS (HORIZON 24, FREQUENCY 'M')").fetchall())
        assert "MODEL_TYPE FORECAST" in repr(rows), rows
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("EXPLAIN CREATE MODEL plan_fc FROM (" + GOOD_QUERY +
                         ") TARGET value MODEL_TYPE FORECAST SETTINGS (FREQUENCY 'M')")
        assert conn.execute("SELECT count(*) FROM svv_ml_model_versions "
                            "WHERE model_name = 'plan_fc'").fetchone() == (0,)
