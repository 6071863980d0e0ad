"""Benchmark: MODEL_TYPE FORECAST on the Tourism competition's 366 monthly series.

In one run, one job at a time:

1. starts a QuackML server in this process (throwaway database, sample tables, one
   training worker with one thread), runs over psycopg
   ``CREATE MODEL ... FROM (SELECT series_id, month, value FROM tourism WHERE split =
   'train') TARGET value MODEL_TYPE FORECAST SETTINGS (HORIZON 24, FREQUENCY 'M',
   MAX_RUNTIME <budget>)``, times CREATE MODEL -> READY and ``SELECT FORECAST(m)``
   (first call, which reads the stored rows, and the next);
2. runs statsforecast's SeasonalNaive, AutoETS, AutoTheta and AutoARIMA, and QuackML's
   global model (LightGBM through mlforecast, conformal intervals), each alone, on the
   same train months (the CSV read with DuckDB), 24 months, 80% interval;
3. optionally (``--latency-series N``) trains a model on N synthetic monthly series and
   times ``SELECT FORECAST(m)`` for N x 24 rows after READY (goal: < 2 s for 1,000).

For each it prints MASE (scaled by each series' in-sample seasonal naive error, season
12, averaged over series, as the competition did), sMAPE, the share of test points
inside the 10-90% interval, and the wall time.

    .venv/bin/python bench/forecast.py [--budget 300] [--latency-series 1000]
        [--baselines SeasonalNaive,AutoETS,AutoTheta,AutoARIMA,LightGBM]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psycopg  # noqa: E402

from server.listener import Server  # noqa: E402
from server.settings import Settings  # noqa: E402

DATA = REPO / "examples" / "data" / "tourism_monthly.csv"
HORIZON = 24
SEASON = 12


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = duckdb.sql(f"SELECT series_id AS unique_id, month::TIMESTAMP AS ds, value AS y, "
                       f"split FROM read_csv('{DATA}') ORDER BY 1, 2").df()
    train = frame[frame["split"] == "train"][["unique_id", "ds", "y"]].reset_index(drop=True)
    test = frame[frame["split"] == "test"][["unique_id", "ds", "y"]].reset_index(drop=True)
    return train, test


def score(train: pd.DataFrame, test: pd.DataFrame, fc: pd.DataFrame) -> dict[str, float]:
    """MASE, sMAPE and 10-90 coverage of ``fc`` (unique_id, ds, point, lo, hi)."""
    merged = test.merge(fc, on=["unique_id", "ds"], how="left")
    assert merged["point"].notna().all(), "forecast misses test points"
    scale = {}
    for uid, y in train.groupby("unique_id")["y"]:
        v = y.to_numpy()
        scale[uid] = np.mean(np.abs(v[SEASON:] - v[:-SEASON]))
    err = (merged["y"] - merged["point"]).abs()
    mase = float(np.mean([e.mean() / scale[u] for u, e in err.groupby(merged["unique_id"])]))
    denom = merged["y"].abs() + merged["point"].abs()
    smape = float(np.mean(np.where(denom > 0, 200 * err / denom, 0.0)))
    inside = (merged["y"] >= merged["lo"]) & (merged["y"] <= merged["hi"])
    return {"MASE": mase, "sMAPE": smape, "coverage": float(inside.mean())}


def quackml(train: pd.DataFrame, test: pd.DataFrame, budget: int,
            latency_series: int) -> list[tuple[str, dict[str, float], float, str]]:
    folder = Path(tempfile.mkdtemp(prefix="quackml-bench-forecast-"))
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=True, training_workers=1,
                          training_threads=1))
    srv.start()
    out = []
    try:
        with psycopg.connect(f"host=127.0.0.1 port={srv.port} user=bench dbname=quackml",
                             autocommit=True) as conn:
            started = time.monotonic()
            conn.execute(
                "CREATE MODEL tourism_fc FROM (SELECT series_id, month, value FROM tourism "
                "WHERE split = 'train') TARGET value MODEL_TYPE FORECAST SETTINGS "
                f"(HORIZON {HORIZON}, FREQUENCY 'M', MAX_RUNTIME {budget})")
            wait_ready(conn, "tourism_fc")
            seconds = time.monotonic() - started
            shown = dict(conn.execute("SHOW MODEL tourism_fc").fetchall())
            t0 = time.monotonic()
            rows = conn.execute("SELECT id, time, p10, p50, p90 FROM "
                                "(SELECT FORECAST(tourism_fc))").fetchall()
            first = time.monotonic() - t0
            t0 = time.monotonic()
            conn.execute("SELECT FORECAST(tourism_fc)").fetchall()
            again = time.monotonic() - t0
            fc = pd.DataFrame(rows, columns=["unique_id", "ds", "lo", "point", "hi"])
            fc["ds"] = pd.to_datetime(fc["ds"])
            out.append((f"QuackML FORECAST ({shown.get('Chosen Method')})",
                        score(train, test, fc), seconds,
                        f"FORECAST(m): {first:.3f} s first call, {again:.3f} s next"))
            if latency_series:
                out.append(latency(conn, latency_series))
    finally:
        srv.stop()
    return out


def latency(conn: psycopg.Connection, n: int) -> tuple[str, dict[str, float], float, str]:
    conn.execute("CREATE TABLE synth AS SELECT 's' || (i // 60) AS id, "
                 "(DATE '2000-01-01' + to_months((i % 60)::INTEGER))::DATE AS month, "
                 "100 + (i // 60) + 10 * sin((i % 60) * pi() / 6) + random() AS value "
                 f"FROM range({n * 60}) t(i)")
    started = time.monotonic()
    conn.execute("CREATE MODEL synth_fc FROM synth TARGET value MODEL_TYPE FORECAST "
                 f"SETTINGS (HORIZON {HORIZON}, FREQUENCY 'M', MAX_RUNTIME 60)")
    wait_ready(conn, "synth_fc")
    seconds = time.monotonic() - started
    t0 = time.monotonic()
    rows = conn.execute("SELECT FORECAST(synth_fc)").fetchall()
    first = time.monotonic() - t0
    t0 = time.monotonic()
    conn.execute("CREATE TABLE synth_out AS SELECT FORECAST(synth_fc)")
    ctas = time.monotonic() - t0
    return (f"latency: {n} series", {}, seconds,
            f"{len(rows)} rows: SELECT FORECAST(m) {first:.3f} s after READY, "
            f"CTAS {ctas:.3f} s")


def wait_ready(conn: psycopg.Connection, name: str) -> None:
    while True:
        state = conn.execute("SELECT state FROM svv_ml_model_versions WHERE model_name = %s",
                             [name]).fetchone()
        assert state is not None
        if state[0] != "TRAINING":
            assert state[0] == "READY", dict(conn.execute(f"SHOW MODEL {name}").fetchall())
            return
        time.sleep(0.2)


def baseline(name: str, train: pd.DataFrame, test: pd.DataFrame
             ) -> tuple[str, dict[str, float], float, str]:
    from statsforecast import StatsForecast
    from statsforecast import models as sm

    from automl import forecast
    if name == forecast.GLOBAL:   # QuackML's global model alone (mlforecast + LightGBM)
        started = time.monotonic()
        rows = forecast.forecast(train, forecast.options(HORIZON, "M", "0.1,0.5,0.9", None),
                                 forecast.GLOBAL)
        seconds = time.monotonic() - started
        fc = pd.DataFrame({"unique_id": rows["id"], "ds": pd.to_datetime(rows["time"]),
                           "point": rows["p50"], "lo": rows["p10"], "hi": rows["p90"]})
        return ("mlforecast LightGBM (global) alone", score(train, test, fc), seconds,
                "conformal intervals")
    model = getattr(sm, name)(season_length=SEASON)
    started = time.monotonic()
    out = StatsForecast(models=[model], freq="MS", n_jobs=1).forecast(
        df=train, h=HORIZON, level=[80])
    seconds = time.monotonic() - started
    fc = pd.DataFrame({"unique_id": out["unique_id"], "ds": pd.to_datetime(out["ds"]),
                       "point": out[name], "lo": out[f"{name}-lo-80"],
                       "hi": out[f"{name}-hi-80"]})
    return (f"statsforecast {name} alone", score(train, test, fc), seconds, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--baselines",
                        default="SeasonalNaive,AutoETS,AutoTheta,AutoARIMA,LightGBM")
    parser.add_argument("--latency-series", type=int, default=0)
    parser.add_argument("--skip-quackml", action="store_true")
    args = parser.parse_args()
    train, test = load()
    results = []
    if not args.skip_quackml:
        results += quackml(train, test, args.budget, args.latency_series)
    for name in filter(None, args.baselines.split(",")):
        results.append(baseline(name, train, test))
    print(f"Tourism monthly: {train['unique_id'].nunique()} series, horizon {HORIZON}")
    print(f"{'method':44} {'MASE':>7} {'sMAPE':>7} {'10-90 cov':>9} {'seconds':>8}  note")
    for name, s, seconds, note in results:
        cells = (f"{s['MASE']:7.3f} {s['sMAPE']:7.2f} {s['coverage']:9.1%}" if s
                 else f"{'':7} {'':7} {'':9}")
        print(f"{name:44} {cells} {seconds:8.1f}  {note}")


if __name__ == "__main__":
    main()
