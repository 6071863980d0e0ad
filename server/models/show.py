"""SHOW MODEL: the list of models, and one model's record as Redshift ML shows it."""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING, Any

from automl.forecast import DEFAULT_PERCENTILES, META_FILE
from automl.hyperparams import TRAIN_METRICS, resolve_kmeans, resolve_xgboost
from automl.progress import read_progress
from catalog.files import function_names
from catalog.spec import ModelState, ProblemType
from catalog.store import ModelRecord
from server.errors import hide
from server.models.caller import Caller
from server.models.lifecycle import model_or_error
from server.protocol.types import Oid, pg_type_for_duckdb, pg_type_name
from server.results import Column as ResultColumn
from server.results import Rows
from server.sql.ml_grammar import QualifiedName

if TYPE_CHECKING:
    from server.engine import Engine


def show_all(engine: Engine) -> Rows:
    records = engine.store.all()
    columns = [ResultColumn("Schema Name", Oid.VARCHAR), ResultColumn("Model Name", Oid.VARCHAR)]
    return Rows(columns, [(r.schema_name, r.model_name) for r in records],
                f"SELECT {len(records)}")


def show_model(engine: Engine, name: QualifiedName, caller: Caller) -> Rows:
    record = model_or_error(engine, name)
    rows = caller.privileges.visible_rows(record, model_rows(record, engine))
    return Rows([ResultColumn("Key", Oid.VARCHAR), ResultColumn("Value", Oid.VARCHAR)],
                rows, f"SELECT {len(rows)}")


def _version_rows(record: ModelRecord, engine: Engine) -> list[tuple[str, str]]:
    """The active version, how many there are, and the latest replacement's fate when
    it is not the active one (training, failed, or kept out by the champion gate)."""
    versions = engine.store.versions(record.schema_name, record.model_name)
    rows = [("Model Version", f"{record.version}" + (" (active)" if record.active else "")),
            ("Versions", str(len(versions)))]
    latest = versions[-1] if versions else record
    if latest.version != record.version:
        state = latest.state.value
        if latest.state is ModelState.TRAINING:
            state += ": " + _status(latest, engine)
        elif latest.state is ModelState.FAILED:
            state += ": " + hide(latest.failure_reason or "unknown")
        rows.append(("Latest Version", f"{latest.version} {state}"
                     + (f" ({latest.decision})" if latest.decision else "")))
    return rows


def _redshift_type(duckdb_type: str) -> str:
    """A feature's type as Redshift's SHOW MODEL names it (strings are varchar there)."""
    oid = pg_type_for_duckdb(duckdb_type)
    return "varchar" if oid == Oid.TEXT else pg_type_name(oid)


def _status(record: ModelRecord, engine: Engine) -> str:
    if record.bring_your_own:
        return ("Remote: scored by the SAGEMAKER endpoint" if record.model_type == "SAGEMAKER"
                else "Imported: model file copied into the artifact store")
    if record.state is ModelState.TRAINING:
        if engine.pool.queued(record.qualified_name):
            return "Queued: waiting for a free training worker"
        p = read_progress(str(engine.files(record).progress))
        if p is None:
            return f"Starting: 0 s of {record.settings.max_runtime} s budget"
        best = (f", best validation {p.metric_name} {p.best_metric:.4f}"
                if p.best_metric is not None and p.metric_name else "")
        learner = f", current learner {p.current_learner}" if p.current_learner else ""
        return (f"{p.phase.capitalize()}: {p.elapsed_s:.0f} s of {p.budget_s:.0f} s budget, "
                f"{p.trials} trials{best}{learner}")
    if record.state is ModelState.READY:
        return (f"Completed in {record.train_seconds or 0:.1f} s: {record.trials or 0} trials, "
                f"best learner {record.best_learner}")
    return "Failed"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def model_rows(record: ModelRecord, engine: Engine) -> list[tuple[str, str]]:
    s = record.settings
    kmeans = record.model_type == "KMEANS"
    byom = record.bring_your_own
    if kmeans:
        metric = "train:msd"
    elif not record.auto:
        metric = TRAIN_METRICS[record.problem_type or ProblemType.REGRESSION]
    else:
        metric = f"validation:{(record.objective or record.metric_name or 'metric').lower()}"
    functions = ", ".join(function_names(
        record.function_name,
        record.problem_type is not None and record.problem_type.is_classification)) \
        if record.model_type != "FORECAST" else f"FORECAST({record.model_name})"
    rows: list[tuple[str, str]] = [
        ("Model Name", record.model_name),
        ("Schema Name", record.schema_name),
        ("Owner", record.owner),
        ("Creation Time", record.created_at.astimezone(UTC).strftime("%a, %d.%m.%Y %H:%M:%S")),
        ("Model State", record.state.value),
    ]
    if record.state is ModelState.FAILED:
        rows.append(("Failure Reason", hide(record.failure_reason or "unknown")))
    rows.append(("Training Job Status", _status(record, engine)))
    if not byom:
        rows.append((metric, _fmt(record.metric_value)))
    rows += _version_rows(record, engine)
    rows += [
        ("Estimated Cost", "0.000000"),
        ("", ""),
        ("TRAINING DATA:", ""),
    ]
    if byom:
        rows.append(("Endpoint" if record.model_type == "SAGEMAKER" else "Model File",
                     record.source_table or ""))
    elif record.source_query is not None:
        rows.append(("Query", record.source_query))
    else:
        rows.append(("Table", record.source_table or ""))
    used = "" if record.rows_total is None else f"{record.rows_used} of {record.rows_total}" + (
        " (sampled to MAX_CELLS)" if (record.rows_used or 0) < (record.rows_total or 0) else "")
    rows += [
        ("Target Column", record.target or ""),
        ("Training Rows", used),
        ("", ""),
        ("PARAMETERS:", ""),
        ("Model Type", (record.model_type or "auto").lower()
         + (f" ({record.best_learner})" if record.best_learner and record.auto else "")),
        ("Problem Type", record.problem_type.value
         if record.problem_type and not kmeans and not byom else ""),
        ("Objective", record.objective or ""),
        ("AutoML Job Name" if record.auto else "Training Job Name",
         f"{record.schema_name}-{record.model_name}-"
         f"{record.created_at.strftime('%Y-%m-%d-%H-%M-%S')}"),
        ("Function Name", functions),
        ("Function Parameters", " ".join(c.name for c in record.features)),
        ("Function Parameter Types",
         " ".join(_redshift_type(c.type) for c in record.features)),
        ("IAM Role", record.iam_role or ""),
        ("S3 Bucket", s.s3_bucket or ""),
        ("KMS Key", s.kms_key_id or ""),
        ("Max Runtime", str(s.max_runtime)),
    ]
    if record.model_type == "FORECAST":
        rows += _forecast_rows(record, engine)
    if not record.auto and not record.bring_your_own:
        rows += [("", ""), ("HYPERPARAMETERS:", "")]
        rows += sorted(_hyperparameters(record).items())
    return rows


def _forecast_rows(record: ModelRecord, engine: Engine) -> list[tuple[str, str]]:
    """A FORECAST model's settings and, once READY, its backtest (automl.forecast's
    forecast.json): every metric of the chosen method and of each candidate."""
    s = record.settings
    rows = [("", ""), ("FORECAST:", ""), ("HORIZON", str(s.horizon or "")),
            ("FREQUENCY", s.frequency or "")]
    meta: dict[str, Any] = {}
    if record.state is ModelState.READY:
        try:
            with open(engine.files(record).folder / META_FILE, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
    rows.append(("PERCENTILES", ",".join(meta.get("percentiles", ()))
                 or s.percentiles or DEFAULT_PERCENTILES))
    if not meta:
        return rows
    rows += [("Chosen Method", str(meta.get("method", ""))),
             ("Series", str(meta.get("series", ""))),
             ("Gaps Filled With Zero", str(meta.get("gaps_filled_with_zero", 0))),
             ("Backtest Windows", f"{meta.get('backtest_windows', 1)} of HORIZON steps, "
              f"{meta.get('window_step', s.horizon)} steps apart"),
             ("", ""), ("BACKTEST (the last windows of each series):", "")]
    rows += [(name, _fmt(value)) for name, value in meta.get("backtest", {}).items()]
    for method, values in meta.get("candidates", {}).items():
        rows.append((f"candidate {method}",
                     ", ".join(f"{k} {_fmt(v)}" for k, v in values.items())))
    return rows


def _hyperparameters(record: ModelRecord) -> dict[str, str]:
    if record.model_type == "KMEANS":
        return resolve_kmeans(record.hyperparameters, len(record.features))
    values = resolve_xgboost(record.hyperparameters, record.objective or "")
    values["objective"] = record.objective or ""
    return values
