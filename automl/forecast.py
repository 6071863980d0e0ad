"""MODEL_TYPE FORECAST: time-series models chosen by a rolling-origin backtest.

The input (the FROM query) is: the item id, the timestamp, the TARGET value (a single
series may leave the id out); further columns (related time series) are refused (0A000)
for now. :func:`prepare`
checks it (the server calls it at CREATE MODEL, before queueing, so that bad input is
an error at once; the worker calls it again on the snapshot) and fills gaps with
zero, as Amazon Forecast (behind Redshift ML's FORECAST) fills the target by default
(rows with a NULL target are gaps too). More missing periods than rows means the
FREQUENCY is not the data's: an error.

Candidates are statsforecast's SeasonalNaive, AutoTheta and AutoETS (fast, vectorised
statistical models, C++ inside; a well-kept Nixtla library) and a global LightGBM model
trained across all series (Nixtla's mlforecast: lags, calendar features). Each is
backtested on rolling origins: up to three windows of HORIZON steps at the end of
every series, as many as the shortest series and MAX_RUNTIME allow (a candidate other
than SeasonalNaive runs only when a fit on a few series says it fits in what is left
of MAX_RUNTIME), and so is every ensemble of two or more of them (the mean of their
forecasts and percentiles, from the same backtest forecasts). The one with the best
OBJECTIVE over all series and windows is refitted on the whole history and forecasts
HORIZON steps. Percentiles come from the chosen model's (or members') own prediction
intervals (statsforecast ``level``; mlforecast's conformal intervals): percentile
q < 0.5 is the lower bound of the 100(1 - 2q)% interval, q > 0.5 the upper bound of the
100(2q - 1)% one, 0.5 the point forecast. The forecast rows (id, time, p.., mean) are
stored in ``forecast.parquet`` and the backtest metrics (and each series' MASE scale,
for EVALUATE MODEL) in ``forecast.json`` in the version
folder; ``SELECT FORECAST(model)`` returns the stored rows.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from automl.errors import (
    InsufficientData,
    InvalidOption,
    TargetTypeMismatch,
    UnsupportedFeature,
)
from catalog.files import write_atomic
from catalog.spec import Column, FeatureKind, ProblemType, TrainingJob, TrainingResult

log = logging.getLogger("quackml.forecast")

FORECAST_FILE = "forecast.parquet"
META_FILE = "forecast.json"
# FREQUENCY as Redshift writes it -> (pandas offset, season length)
FREQUENCIES = {"Y": ("YS", 1), "M": ("MS", 12), "W": ("W", 52), "D": ("D", 7),
               "H": ("h", 24), "30MIN": ("30min", 48), "15MIN": ("15min", 96),
               "10MIN": ("10min", 144), "5MIN": ("5min", 288), "1MIN": ("1min", 60)}
OBJECTIVES = {"AVERAGEWEIGHTEDQUANTILELOSS": "AverageWeightedQuantileLoss", "RMSE": "RMSE",
              "WAPE": "WAPE", "MAPE": "MAPE", "MASE": "MASE"}
DEFAULT_PERCENTILES = "0.1,0.5,0.9"
MAX_HORIZON = 10_000
ENSEMBLE = "Ensemble"
PROBE_SERIES = 8   # series a candidate is timed on before it runs on all of them
#: the share of actual values inside the lowest..highest percentile interval
COVERAGE = "IntervalCoverage"
SCALES_KEY = "scales"


@dataclass(frozen=True)
class ForecastOptions:
    horizon: int
    frequency: str            # a key of FREQUENCIES
    quantiles: tuple[float, ...]
    mean: bool
    objective: str            # a value of OBJECTIVES

    @property
    def offset(self) -> str:
        return FREQUENCIES[self.frequency][0]

    @property
    def season(self) -> int:
        return FREQUENCIES[self.frequency][1]

    @property
    def columns(self) -> list[str]:
        return [percentile_name(q) for q in self.quantiles] + (["mean"] if self.mean else [])


def percentile_name(q: float) -> str:
    text = f"{q * 100:.6g}".replace(".", "_")
    return f"p{text}"


def options(horizon: int | None, frequency: str | None, percentiles: str | None,
            objective: str | None) -> ForecastOptions:
    """The FORECAST settings, checked (22023 for a bad value)."""
    if horizon is None:
        raise InvalidOption("MODEL_TYPE FORECAST needs SETTINGS (HORIZON n)",
                            hint="HORIZON is the number of steps to forecast")
    if horizon > MAX_HORIZON:
        raise InvalidOption(f"HORIZON must be at most {MAX_HORIZON}")
    if frequency is None:
        raise InvalidOption("MODEL_TYPE FORECAST needs SETTINGS (FREQUENCY '...')",
                            hint="one of " + ", ".join(_freq_names()))
    freq = frequency.strip().upper()
    if freq not in FREQUENCIES:
        raise InvalidOption(f"FREQUENCY {frequency!r} is not supported",
                            hint="one of " + ", ".join(_freq_names()))
    quantiles: list[float] = []
    mean = False
    for part in (percentiles or DEFAULT_PERCENTILES).split(","):
        word = part.strip()
        if word.lower() == "mean":
            if mean:
                raise InvalidOption("PERCENTILES lists mean twice")
            mean = True
            continue
        try:
            q = float(word)
        except ValueError:
            raise InvalidOption(f"PERCENTILES: {word!r} is not a number in 0.01-0.99 or "
                                "mean") from None
        if not 0.01 <= q <= 0.99 or round(q, 2) != q:
            raise InvalidOption(f"PERCENTILES: {word} is not between 0.01 and 0.99 "
                                "(two decimals at most)")
        if q in quantiles:
            raise InvalidOption(f"PERCENTILES lists {word} twice")
        quantiles.append(q)
    if len(quantiles) > 5:
        raise InvalidOption("PERCENTILES takes at most five values (plus mean)")
    if not quantiles and not mean:
        raise InvalidOption("PERCENTILES is empty")
    name = OBJECTIVES.get((objective or "AverageWeightedQuantileLoss").upper())
    if name is None:
        raise InvalidOption(f"OBJECTIVE {objective!r} is not a FORECAST objective",
                            hint="one of " + ", ".join(OBJECTIVES.values()))
    if name == "AverageWeightedQuantileLoss" and not quantiles:
        raise InvalidOption("OBJECTIVE AverageWeightedQuantileLoss needs PERCENTILES")
    return ForecastOptions(horizon, freq, tuple(sorted(quantiles)), mean, name)


def _freq_names() -> list[str]:
    return [k if not k.endswith("MIN") else k[:-3] + "min" for k in FREQUENCIES]


def input_columns(columns: tuple[Column, ...], target: str) -> tuple[Column | None, Column]:
    """The id column (None: a single series) and the timestamp column: the first columns
    other than the target. 42804 for unusable types."""
    others = [c for c in columns if c.name != target]
    if not others:
        raise InsufficientData("MODEL_TYPE FORECAST needs a timestamp column besides the "
                               "target")
    if len(others) == 1 or others[0].kind is FeatureKind.TEMPORAL:
        id_col, time_col = None, others[0]
    else:
        id_col, time_col = others[0], others[1]
    related = others[1 if id_col is None else 2:]
    if related:
        # Redshift's related time series need their values over the HORIZON too (or to
        # be used lagged by HORIZON steps): not built yet, and better refused than ignored
        raise UnsupportedFeature(
            "MODEL_TYPE FORECAST does not use related time series yet: column "
            f'"{related[0].name}"', detail="the input is the id (none for a single series), "
            "the timestamp and the TARGET column",
            hint="select only the id, the timestamp and the target")
    if time_col.kind not in (FeatureKind.TEMPORAL, FeatureKind.CATEGORICAL) or \
            (time_col.type.upper().startswith("TIME") and "STAMP" not in time_col.type.upper()):
        raise TargetTypeMismatch(
            f'timestamp column "{time_col.name}" has type {time_col.type}',
            hint="the second column (the first without an id) must be a DATE or TIMESTAMP")
    return id_col, time_col


def prepare(frame: pd.DataFrame, id_name: str | None, time_name: str, target: Column,
            opts: ForecastOptions) -> tuple[pd.DataFrame, int]:
    """The series as statsforecast reads them (unique_id, ds, y), gaps filled with zero,
    checked; and how many gaps were filled."""
    if target.kind is not FeatureKind.NUMERIC:
        raise TargetTypeMismatch(f'target column "{target.name}" has type {target.type}; '
                                 "MODEL_TYPE FORECAST needs a numeric target")
    if id_name is not None:
        if frame[id_name].isna().any():
            raise InsufficientData(f'id column "{id_name}" has NULL values',
                                   hint="filter them out: WHERE ... IS NOT NULL")
        ids = frame[id_name].astype(str)
    else:
        ids = pd.Series("", index=frame.index)
    try:
        ds = pd.to_datetime(frame[time_name])
    except (ValueError, TypeError):
        raise TargetTypeMismatch(f'timestamp column "{time_name}" has values that are not '
                                 "dates or timestamps") from None
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    if ds.isna().any():
        raise InsufficientData(f'timestamp column "{time_name}" has NULL values')
    y = pd.to_numeric(frame[target.name], errors="coerce").astype("float64")
    df = pd.DataFrame({"unique_id": ids.to_numpy(), "ds": ds.to_numpy(), "y": y.to_numpy()})
    df = df[df["y"].notna()]
    dup = df.duplicated(["unique_id", "ds"])
    if dup.any():
        row = df[dup].iloc[0]
        raise InsufficientData(
            "duplicate timestamps in a series", detail=f"id {row['unique_id']!r}, time "
            f"{row['ds']}", hint="aggregate to one row per id and time")
    df = df.sort_values(["unique_id", "ds"], kind="stable")
    # every timestamp must lie on the FREQUENCY grid that starts at the series' first one
    first = df.groupby("unique_id", sort=False)["ds"].transform("min")
    offset = pd.tseries.frequencies.to_offset(opts.offset)
    grid_start = first.map(offset.rollforward) if len(df) else first
    off_grid = (grid_start != first)
    if not off_grid.any():
        steps = _steps(df["ds"], first, opts)
        off_grid = pd.Series(steps < 0, index=df.index)
        if not off_grid.any():
            df["step"] = steps
    if off_grid.any():
        row = df[off_grid.to_numpy()].iloc[0]
        raise InvalidOption(
            f"timestamps do not follow FREQUENCY '{opts.frequency}'",
            detail=f"id {row['unique_id']!r}, time {row['ds']}",
            hint="give one row per period, each at the start of its period")
    counts = df.groupby("unique_id", sort=False)["step"].max() + 1
    need = 2 * opts.horizon
    short = counts[counts < need]
    if len(short):
        raise InsufficientData(
            f"too few observations for HORIZON {opts.horizon}: each series needs at least "
            f"{need} periods", detail=f"series {short.index[0]!r} has {int(short.iloc[0])}",
            hint="lower HORIZON or leave the short series out")
    filled = int(counts.sum()) - len(df)
    if filled > len(df):
        raise InvalidOption(
            f"timestamps do not follow FREQUENCY '{opts.frequency}': {filled} of "
            f"{int(counts.sum())} periods have no row",
            hint="give the FREQUENCY of the data (missing periods are filled with zero)")
    if filled:
        full = []
        for uid, n in counts.items():
            start = df.loc[df["unique_id"] == uid, "ds"].iloc[0]
            full.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(
                start, periods=int(n), freq=opts.offset)}))
        df = pd.concat(full).merge(df[["unique_id", "ds", "y"]], on=["unique_id", "ds"],
                                   how="left").fillna({"y": 0.0})
    return df[["unique_id", "ds", "y"]].reset_index(drop=True), filled


def _steps(ds: pd.Series, first: pd.Series, opts: ForecastOptions) -> np.ndarray:
    """The period number of each timestamp from its series' first one; -1 off the grid."""
    if opts.frequency in ("Y", "M"):
        months = (ds.dt.year - first.dt.year) * 12 + (ds.dt.month - first.dt.month)
        per = 12 if opts.frequency == "Y" else 1
        on_grid = (months % per == 0) & (ds.dt.day == first.dt.day) & \
            (ds.dt.normalize() == ds) & (ds.dt.day == 1)
        return np.where(on_grid, months // per, -1).astype(np.int64)
    width = pd.Timedelta(pd.tseries.frequencies.to_offset(
        "7D" if opts.frequency == "W" else opts.offset)).value
    delta = (ds - first).to_numpy().astype("timedelta64[ns]").astype(np.int64)
    return np.where(delta % width == 0, delta // width, -1).astype(np.int64)


# -- models ----------------------------------------------------------------------
#: calendar features of the global model per FREQUENCY (mlforecast date_features)
DATE_FEATURES = {"Y": [], "M": ["month"], "W": ["dayofyear"], "D": ["dayofweek", "day"],
                 "H": ["hour", "dayofweek"], "30MIN": ["hour", "minute", "dayofweek"],
                 "15MIN": ["hour", "minute", "dayofweek"], "10MIN": ["hour", "minute"],
                 "5MIN": ["hour", "minute"], "1MIN": ["hour", "minute"]}
GLOBAL = "LightGBM"
MAX_WINDOWS = 3


class _Stats:
    """A statsforecast model, fitted on each series on its own."""

    def __init__(self, model: Any):
        self.model = model
        self.name = repr(model)

    def cross_validation(self, df: pd.DataFrame, opts: ForecastOptions, windows: int,
                         step: int, n_jobs: int) -> pd.DataFrame:
        from statsforecast import StatsForecast
        levels = _levels(opts.quantiles)
        return StatsForecast(models=[self.model], freq=opts.offset, n_jobs=n_jobs) \
            .cross_validation(df=df, h=opts.horizon, n_windows=windows, step_size=step,
                              level=levels or None)

    def forecast(self, df: pd.DataFrame, opts: ForecastOptions, n_jobs: int) -> pd.DataFrame:
        from statsforecast import StatsForecast
        levels = _levels(opts.quantiles)
        return StatsForecast(models=[self.model], freq=opts.offset, n_jobs=n_jobs) \
            .forecast(df=df, h=opts.horizon, level=levels or None)


class _Global:
    """LightGBM trained across all series (mlforecast): lags 1..2 seasons (at most 48),
    calendar features, the target log1p-transformed (when it has no negative value) and
    seasonally differenced, HORIZON steps forecast recursively; percentiles from
    conformal intervals (see _intervals)."""

    name = GLOBAL

    def _mlf(self, df: pd.DataFrame, opts: ForecastOptions, n_jobs: int) -> Any:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.target_transforms import Differences, GlobalSklearnTransformer
        from sklearn.preprocessing import FunctionTransformer
        season = opts.season
        transforms: list[Any] = []
        if float(df["y"].min()) >= 0:
            transforms.append(GlobalSklearnTransformer(
                FunctionTransformer(func=np.log1p, inverse_func=np.expm1)))
        if season > 1:
            transforms.append(Differences([season]))
        lags = list(range(1, min(2 * season, 48) + 1)) if season > 1 else [1, 2, 3]
        model = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=31,
                                  min_child_samples=20, n_jobs=n_jobs, verbose=-1,
                                  random_state=0)
        return MLForecast(models={GLOBAL: model}, freq=opts.offset, lags=lags,
                          date_features=DATE_FEATURES[opts.frequency],
                          target_transforms=transforms, num_threads=n_jobs)

    def cross_validation(self, df: pd.DataFrame, opts: ForecastOptions, windows: int,
                         step: int, n_jobs: int) -> pd.DataFrame:
        out = _keyed(self._mlf(df, opts, n_jobs).cross_validation(
            df=df, n_windows=windows, h=opts.horizon, step_size=step, static_features=[]))
        # calibrated before the first window: no window's own errors set its intervals
        size = df.groupby("unique_id")["y"].transform("size")
        before = df[df.groupby("unique_id").cumcount() < size - opts.horizon - (windows - 1)
                    * step]
        return self._intervals(before, out, opts, n_jobs)

    def forecast(self, df: pd.DataFrame, opts: ForecastOptions, n_jobs: int) -> pd.DataFrame:
        mlf = self._mlf(df, opts, n_jobs)
        mlf.fit(df, static_features=[])
        return self._intervals(df, _keyed(mlf.predict(opts.horizon)), opts, n_jobs)

    def _intervals(self, df: pd.DataFrame, out: pd.DataFrame, opts: ForecastOptions,
                   n_jobs: int) -> pd.DataFrame:
        """``out`` (the model's forecasts after the end of ``df``) with conformal intervals
        calibrated on a backtest of ``df``'s last HORIZON steps: at each step ahead, the
        quantiles of the errors over all series, each error divided by its series' scale
        (the in-sample seasonal naive error), so that one window of many series
        calibrates every step; a series' interval is its forecast plus its scale times
        those quantiles. (mlforecast's own PredictionIntervals needs two windows in
        every series, more than the shortest Tourism series hold in a backtest.)"""
        levels = _levels(opts.quantiles)
        if not levels:
            return out
        cal = _keyed(self._mlf(df, opts, n_jobs).cross_validation(
            df=df, n_windows=1, h=opts.horizon, static_features=[]))
        scales = _scales(df, opts.season)
        positive = [v for v in scales.values() if v > 0]
        fallback = float(np.median(positive)) if positive else 1.0

        def scale_of(ids: pd.Series) -> np.ndarray:
            values = ids.map(scales).fillna(0.0).to_numpy(dtype=float)
            return np.where(values > 0, values, fallback)

        errors = (cal["y"] - cal[GLOBAL]).to_numpy(dtype=float) / scale_of(cal["unique_id"])
        cal_step = cal.groupby("unique_id").cumcount().to_numpy()
        groups = ["unique_id", "cutoff"] if "cutoff" in out else ["unique_id"]
        step = out.groupby(groups).cumcount().to_numpy()
        point = out[GLOBAL].to_numpy(dtype=float)
        scale = scale_of(out["unique_id"])
        out = out.copy()
        for level in levels:
            low, high = (100 - level) / 200, (100 + level) / 200
            by_step = pd.DataFrame({"step": cal_step, "e": errors}).groupby("step")["e"]
            lo = by_step.quantile(low).reindex(range(opts.horizon)).ffill().to_numpy()
            hi = by_step.quantile(high).reindex(range(opts.horizon)).ffill().to_numpy()
            out[f"{GLOBAL}-lo-{level}"] = point + scale * np.minimum(lo[step], 0.0)
            out[f"{GLOBAL}-hi-{level}"] = point + scale * np.maximum(hi[step], 0.0)
        return out


def _shortest(df: pd.DataFrame) -> int:
    return int(df.groupby("unique_id", sort=False).size().min())


def _candidates(opts: ForecastOptions) -> list[Any]:
    """In the order they are tried: the most accurate for their time first (on Tourism:
    the global model, then AutoTheta, then AutoETS, three times slower). AutoARIMA is
    not one: timing it on 8 Tourism series alone took 235 s on the 2 loaded cores (about
    30 s a series), so it fits no MAX_RUNTIME here, and even its timing would overrun a
    small one."""
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive
    season = opts.season
    return [_Stats(SeasonalNaive(season_length=season)), _Global(),
            _Stats(AutoTheta(season_length=season)), _Stats(AutoETS(season_length=season))]


def _levels(quantiles: tuple[float, ...]) -> list[int]:
    return sorted({round(abs(2 * q - 1) * 100) for q in quantiles if q != 0.5})


def _quantile_frame(out: pd.DataFrame, model: str, opts: ForecastOptions) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for q in opts.quantiles:
        level = round(abs(2 * q - 1) * 100)
        if level == 0:
            cols[percentile_name(q)] = out[model]
        else:
            side = "lo" if q < 0.5 else "hi"
            cols[percentile_name(q)] = out[f"{model}-{side}-{level}"]
    if opts.mean:
        cols["mean"] = out[model]
    return pd.DataFrame(cols)


def metrics(y: np.ndarray, point: np.ndarray, quantiles: dict[float, np.ndarray],
            ids: np.ndarray, scale: dict[str, float]) -> dict[str, float]:
    """RMSE, WAPE, MAPE, MASE and the average weighted quantile loss of a backtest."""
    err = y - point
    absy = float(np.abs(y).sum()) or 1.0
    nonzero = y != 0
    frame = pd.DataFrame({"id": ids, "ae": np.abs(err)})
    per_series = frame.groupby("id")["ae"].mean()
    scaled = [v / scale[k] for k, v in per_series.items() if scale.get(k, 0) > 0]
    mase = float(np.mean(scaled)) if scaled else math.nan
    wql = [2 * float(np.maximum(q * (y - p), (q - 1) * (y - p)).sum()) / absy
           for q, p in quantiles.items()]
    return {"RMSE": float(np.sqrt(np.mean(err ** 2))),
            "WAPE": float(np.abs(err).sum()) / absy,
            "MAPE": float(np.mean(np.abs(err[nonzero] / y[nonzero]))) if nonzero.any()
            else math.nan,
            "MASE": mase,
            "AverageWeightedQuantileLoss": float(np.mean(wql)) if wql else math.nan,
            COVERAGE: coverage(y, quantiles)}


def coverage(y: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """The share of ``y`` between the lowest and the highest percentile (10-90 by
    default); NaN without percentiles on both sides of 0.5."""
    low, high = min(quantiles, default=0.5), max(quantiles, default=0.5)
    if not low < 0.5 < high or not len(y):
        return math.nan
    return float(np.mean((y >= quantiles[low]) & (y <= quantiles[high])))


def _scales(df: pd.DataFrame, season: int) -> dict[str, float]:
    """Each series' in-sample seasonal naive mean absolute error (MASE's scale)."""
    out: dict[str, float] = {}
    for uid, y in df.groupby("unique_id", sort=False)["y"]:
        values = y.to_numpy()
        lag = season if len(values) > season else 1
        diffs = np.abs(values[lag:] - values[:-lag])
        out[str(uid)] = float(diffs.mean()) if diffs.size else 0.0
    return out


def _window_options(df: pd.DataFrame, opts: ForecastOptions) -> list[tuple[int, int]]:
    """(windows, step) of the rolling-origin backtests the series' length allows, most
    windows first: each window's history keeps at least HORIZON periods of the shortest
    series; windows HORIZON apart when it is long enough, else overlapping."""
    h = opts.horizon
    shortest = _shortest(df)
    out = []
    for windows in range(MAX_WINDOWS, 1, -1):
        for step in (h, max(1, h // windows)):
            if shortest - h - (windows - 1) * step >= h:
                out.append((windows, step))
                break
    out.append((1, h))
    return out


def _timed(candidate: Any, df: pd.DataFrame, opts: ForecastOptions, n_jobs: int) -> float:
    """Seconds of one backtest window of ``candidate`` on ``df``."""
    t0 = time.monotonic()
    candidate.cross_validation(df, opts, 1, opts.horizon, n_jobs)
    return time.monotonic() - t0


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """A backtest's or forecast's rows with comparable keys, in key order."""
    out = frame.assign(unique_id=frame["unique_id"].astype(str),
                       ds=pd.to_datetime(frame["ds"]).astype("datetime64[ns]"))
    if "cutoff" in out:
        out["cutoff"] = pd.to_datetime(out["cutoff"]).astype("datetime64[ns]")
    keys = [k for k in ("unique_id", "cutoff", "ds") if k in out]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def backtest(df: pd.DataFrame, opts: ForecastOptions, deadline: float, progress: Any = None,
             n_jobs: int = 1) -> tuple[str, dict[str, dict[str, float]], int, int]:
    """Each candidate's metrics on rolling-origin backtests of every series' last
    windows, and those of every ensemble of two or more candidates that ran (the mean
    of their forecasts and of their percentiles); the best by the objective.

    SeasonalNaive always runs. Each other candidate is first timed on a few series (one
    window) and planned only when its backtest and refit on every series, so estimated,
    fit in what is left of MAX_RUNTIME with the candidates planned before it. The number
    of windows (up to three) is the most the shortest series allows whose backtests of
    every planned candidate still fit; an ensemble is a choice only when refitting all
    its members does. Returns the best, every result, the windows and their step."""
    ids = df["unique_id"].unique()
    probe_ids = ids[:: max(1, len(ids) // PROBE_SERIES)][:PROBE_SERIES]
    probe = df[df["unique_id"].isin(probe_ids)]
    planned: list[Any] = []
    estimate: dict[str, float] = {}   # seconds of one backtest window (or one refit)
    for candidate in _candidates(opts):
        if planned:
            if time.monotonic() + 2.5 * sum(estimate.values()) > deadline:
                break
            try:
                seconds = _timed(candidate, probe, opts, n_jobs) * len(ids) / len(probe_ids)
                if candidate.name == GLOBAL and len(ids) > len(probe_ids):
                    # one model over all series: a fixed cost (its trees) and a cost per
                    # series, from a second timing on four times as many series
                    more = ids[:: max(1, len(ids) // (4 * PROBE_SERIES))][:4 * PROBE_SERIES]
                    small = seconds * len(probe_ids) / len(ids)
                    large = _timed(candidate, df[df["unique_id"].isin(more)], opts, n_jobs)
                    per_series = max(0.0, large - small) / max(1, len(more) - len(probe_ids))
                    seconds = min(max(small, large) + per_series * (len(ids) - len(more)),
                                  large * len(ids) / len(more))
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit them
                log.info("forecast candidate %s left out: %s", candidate.name, exc)
                continue
            log.info("forecast candidate %s: %.1f s a window, estimated", candidate.name,
                     seconds)
            if time.monotonic() + 2.5 * (sum(estimate.values()) + seconds) > deadline:
                continue
        else:
            seconds = 0.0
        planned.append(candidate)
        estimate[candidate.name] = seconds
    left = deadline - time.monotonic()
    choices = _window_options(df, opts)
    windows, step = next(((w, s) for w, s in choices
                          if 1.25 * (w + 1) * sum(estimate.values()) <= left), choices[-1])
    size = df.groupby("unique_id")["y"].transform("size")
    position = df.groupby("unique_id").cumcount()
    first_cutoff = opts.horizon + (windows - 1) * step
    scale = _scales(df[position < size - first_cutoff], opts.season)
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, pd.DataFrame] = {}   # backtest forecasts: point, then percentiles
    refit: dict[str, float] = {}
    truth = pd.DataFrame()
    for candidate in planned:
        name = candidate.name
        if results and time.monotonic() + 1.25 * (windows + 1) * estimate[name] > deadline:
            continue
        t0 = time.monotonic()
        try:
            cv = _keyed(candidate.cross_validation(df, opts, windows, step, n_jobs))
        except Exception as exc:   # the others still run
            if not results:
                raise
            log.info("forecast candidate %s failed: %s", name, exc)
            continue
        refit[name] = (time.monotonic() - t0) / windows
        if truth.empty:
            truth = cv[["unique_id", "cutoff", "ds", "y"]]
        else:
            cv = truth[["unique_id", "cutoff", "ds"]].merge(
                cv, on=["unique_id", "cutoff", "ds"], how="left")
        out = pd.concat([cv[[name]].rename(columns={name: "point"}),
                         _quantile_frame(cv, name, opts)], axis=1)
        if out.isna().to_numpy().any():
            log.info("forecast candidate %s left out: it forecast no value for some "
                     "series", name)
            continue
        outputs[name] = out
        results[name] = _scored(truth, out, opts, scale)
        if progress is not None:
            best = min(v[opts.objective] for v in results.values())
            progress.update(phase="searching", trials=len(results),
                            metric_name=opts.objective, best_metric=best,
                            current_learner=name)
    left = deadline - time.monotonic()
    for count in range(2, len(outputs) + 1):
        for members in itertools.combinations(outputs, count):
            if 1.25 * sum(refit[m] for m in members) > left:
                continue
            mean = sum(outputs[m] for m in members) / count
            results[ENSEMBLE + "(" + "+".join(members) + ")"] = _scored(truth, mean, opts,
                                                                        scale)
    best_name = min(results, key=lambda k: _key(results[k][opts.objective]))
    return best_name, results, windows, step


def _scored(truth: pd.DataFrame, out: pd.DataFrame, opts: ForecastOptions,
            scale: dict[str, float]) -> dict[str, float]:
    quantiles = {q: out[percentile_name(q)].to_numpy(dtype=float) for q in opts.quantiles}
    return metrics(truth["y"].to_numpy(dtype=float), out["point"].to_numpy(dtype=float),
                   quantiles, truth["unique_id"].astype(str).to_numpy(), scale)


def _key(value: float) -> float:
    return math.inf if value is None or math.isnan(value) else value


def forecast(df: pd.DataFrame, opts: ForecastOptions, method: str,
             n_jobs: int = 1) -> pd.DataFrame:
    """HORIZON steps of every series with the chosen method (a model, or the ensemble of
    several: the mean of their forecasts and percentiles), refitted on all the history:
    id, time, one column per percentile (ordered), mean if asked."""
    members = method.removeprefix(ENSEMBLE + "(").removesuffix(")").split("+")
    keys = pd.DataFrame()
    frames = []
    for candidate in _candidates(opts):
        if candidate.name not in members:
            continue
        out = _keyed(candidate.forecast(df, opts, n_jobs))
        if keys.empty:
            keys = out[["unique_id", "ds"]]
        else:
            out = keys.merge(out, on=["unique_id", "ds"], how="left")
        frames.append(_quantile_frame(out, candidate.name, opts))
    values = sum(frames) / len(frames)
    assert isinstance(values, pd.DataFrame)
    if opts.quantiles:   # intervals are nested: keep the percentiles in order on every row
        names = [percentile_name(q) for q in opts.quantiles]
        values[names] = np.sort(values[names].to_numpy(dtype=float), axis=1)
    result = pd.DataFrame({"id": keys["unique_id"].to_numpy(),
                           "time": keys["ds"].to_numpy()})
    return pd.concat([result, values.reset_index(drop=True)], axis=1)


def train_forecast(job: TrainingJob, progress: Any) -> TrainingResult:
    """Train a FORECAST model from its snapshot; store the forecast and the metrics."""
    started = time.monotonic()
    deadline = started + job.time_budget_s
    progress.update(phase="loading")
    assert job.target is not None
    opts = options(job.horizon, job.frequency, job.percentiles, job.objective)
    frame = pq.read_table(job.snapshot_path).to_pandas()
    id_col, time_col = input_columns((*job.features, job.target), job.target.name)
    df, filled = prepare(frame, id_col.name if id_col else None, time_col.name, job.target,
                         opts)
    progress.update(phase="searching", metric_name=opts.objective)
    method, results, windows, step = backtest(df, opts, deadline, progress, job.n_jobs)
    progress.update(phase="refitting", current_learner=method)
    rows = forecast(df, opts, method, job.n_jobs)
    if id_col is None:
        rows["id"] = None
    progress.update(phase="saving")
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.set_column(0, "id", table.column("id").cast(pa.string()))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    write_atomic(os.path.join(job.output_dir, FORECAST_FILE), data)
    meta = {"horizon": opts.horizon, "frequency": opts.frequency,
            "percentiles": [percentile_name(q) for q in opts.quantiles]
            + (["mean"] if opts.mean else []),
            "objective": opts.objective, "method": method, "gaps_filled_with_zero": filled,
            "backtest_windows": windows, "window_step": step,
            "series": int(df["unique_id"].nunique()), "backtest": results[method],
            "candidates": results,
            # MASE's scale for EVALUATE MODEL: each series' in-sample seasonal naive error
            SCALES_KEY: _scales(df, opts.season)}
    write_atomic(os.path.join(job.output_dir, META_FILE),
                 json.dumps(meta, allow_nan=True).encode())
    return TrainingResult(
        problem_type=ProblemType.REGRESSION, metric_name=opts.objective,
        metric_value=results[method][opts.objective], labels=(), best_learner=method,
        trials=len(results), artifact_file=FORECAST_FILE,
        artifact_sha256=hashlib.sha256(data).hexdigest(),
        rows_train=len(df), rows_validation=int(df["unique_id"].nunique()) * opts.horizon,
        seconds=time.monotonic() - started)


def evaluate(rows: pd.DataFrame, actuals: pd.DataFrame, opts: ForecastOptions,
             scales: dict[str, float] | None) -> tuple[dict[str, float], list[str]]:
    """The stored forecast ``rows`` (id, time, p.., mean) scored against ``actuals``
    (id, time, y: id None for a single series), joined on (id, time): the backtest's
    metrics, and notices. The point forecast is ``mean``, else ``p50``; MASE is scaled by
    each series' training error (``scales``, from forecast.json)."""
    notices: list[str] = []
    actuals = actuals[actuals["y"].notna()]
    ids = actuals["id"].map(lambda v: "" if v is None else str(v), na_action="ignore")
    if ids.isna().any():
        raise InsufficientData("the actuals have NULL ids",
                               hint="filter them out: WHERE ... IS NOT NULL")
    try:
        ds = pd.to_datetime(actuals["time"])
    except (ValueError, TypeError):
        raise TargetTypeMismatch("the actuals' timestamp column has values that are not dates "
                                 "or timestamps") from None
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    truth = pd.DataFrame({"id": ids.to_numpy(dtype=object), "time": ds.to_numpy(),
                          "y": actuals["y"].to_numpy(dtype=float)})
    truth = truth[truth["time"].notna()]
    dup = truth.duplicated(["id", "time"])
    if dup.any():
        row = truth[dup].iloc[0]
        raise InsufficientData("duplicate timestamps in the actuals",
                               detail=f"id {row['id']!r}, time {row['time']}",
                               hint="give one row per id and time")
    stored = rows.assign(id=rows["id"].map(lambda v: "" if v is None else str(v)),
                         time=pd.to_datetime(rows["time"]).astype("datetime64[ns]"))
    truth["time"] = truth["time"].astype("datetime64[ns]")
    merged = truth.merge(stored, on=["id", "time"], how="inner")
    if merged.empty:
        raise InvalidOption(
            "no actual value falls on the forecast: the rows match no (id, time) of "
            "FORECAST(model)", detail=f"{len(truth)} rows with a value",
            hint="give the rows of the HORIZON periods after the training data: id, time, "
            "value, in the training query's column order")
    if len(merged) < len(truth):
        notices.append(f"{len(truth) - len(merged)} of the {len(truth)} rows are outside the "
                       "forecast (id or time not in FORECAST(model)) and were left out")
    point_name = "mean" if opts.mean else "p50" if 0.5 in opts.quantiles else None
    quantiles = {q: merged[percentile_name(q)].to_numpy(dtype=float) for q in opts.quantiles}
    y = merged["y"].to_numpy(dtype=float)
    point = merged[point_name].to_numpy(dtype=float) if point_name else np.full(len(y), np.nan)
    values = metrics(y, point, quantiles, merged["id"].to_numpy(), scales or {})
    if point_name is None:
        notices.append("RMSE, WAPE, MAPE and MASE are NULL: the model keeps no point forecast "
                       "(its PERCENTILES have neither 0.5 nor mean)")
        for key in ("RMSE", "WAPE", "MAPE", "MASE"):
            values[key] = math.nan
    elif not scales:
        notices.append("MASE is NULL: the model was trained before QuackML kept each "
                       "series' scale")
        values["MASE"] = math.nan
    return values, notices


def output_type(horizon: int | None, frequency: str | None, percentiles: str | None,
                objective: str | None, time_type: str) -> str:
    """The DuckDB type of a FORECAST model's function: its rows as a list of structs."""
    opts = options(horizon, frequency, percentiles, objective)
    time_out = "DATE" if time_type.upper() == "DATE" else "TIMESTAMP"
    fields = ["id VARCHAR", f'"time" {time_out}',
              *(f"{name} DOUBLE" for name in opts.columns)]
    return f"STRUCT({', '.join(fields)})[]"
