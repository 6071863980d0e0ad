"""What the console shows, read by running SQL statements as the signed-in user.

Every number on a page comes from a statement run through ``Session.run`` in a
session of the signed-in user, exactly as a psql client of that user would run
it: SHOW MODEL, ``svv_ml_model_info``, ``svv_ml_model_versions``,
``EXPLAIN_MODEL``, ``EVALUATE MODEL`` and the model's own functions. So the
server's own checks (the firewall, EXECUTE on the model, SELECT on the tables)
decide what the console may show; there is no second privilege check here.

A model is shown only when the user may run its functions: the first statement
for each model is ``SELECT EXPLAIN_MODEL('schema.model')``, which the firewall
refuses (42501) without EXECUTE on the model (owners and superusers hold it).
A refused or unknown model is "not found", so a page tells nothing of models
the user may not see.

The one number no statement returns yet is the search history (the best
validation metric against time and trials): it is read from the training job's
progress file (``automl.progress``, what SHOW MODEL's Training Job Status
reads), and only for a model that passed the EXPLAIN_MODEL check.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from automl.progress import read_progress
from server.engine import Engine
from server.errors import ServerError, translate
from server.results import Command, Rows, Stream
from server.session import Session
from server.sql.text import split

DATABASE = "quackml"
# process ids of console sessions in pg_stat_activity: far above the listener's
_PIDS = itertools.count(1 << 30)
_PID_LOCK = threading.Lock()
SAMPLE_ROWS = 400   # rows of the predicted-against-actual and cluster charts


class NotVisible(Exception):
    """The model does not exist, or the signed-in user may not see it."""


@dataclass
class Table:
    statement: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    error: str | None = None   # "SQLSTATE: message" when the statement failed
    sqlstate: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"statement": self.statement, "columns": self.columns, "rows": self.rows,
                "error": self.error}

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    """A value as JSON carries it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Viewer:
    """One signed-in user's session, for one request."""

    def __init__(self, engine: Engine, user: str, client_addr: str | None):
        self.engine = engine
        self.user = user
        with _PID_LOCK:
            pid = next(_PIDS)
        self.session = Session(engine, user, DATABASE,
                               {"application_name": "quackml console"}, pid=pid,
                               client_addr=client_addr)

    def close(self) -> None:
        self.session.close()

    def run(self, sql: str) -> Table:
        """Run one statement as the user; a failure is kept in the table."""
        table = Table(sql)
        try:
            (stmt,) = split(sql)
            result = self.session.run(stmt)
            if isinstance(result, Rows):
                table.columns = [c.name for c in result.columns]
                table.rows = [list(r) for r in result.rows]
            elif isinstance(result, Stream):
                data = result.reader.read_all()
                table.columns = list(data.column_names)
                table.rows = [[_plain(v) for v in row.values()] for row in data.to_pylist()]
            elif not isinstance(result, Command):
                raise ServerError("the console runs queries only", sqlstate="0A000")
        except Exception as exc:   # noqa: BLE001 -- shown on the page as SQL shows it
            fields = translate(exc)
            table.error = f"{fields.sqlstate}: {fields.message}"
            table.sqlstate = fields.sqlstate
        finally:
            self.session.release()
        return table


@contextmanager
def viewer(engine: Engine, user: str, client_addr: str | None) -> Iterator[Viewer]:
    v = Viewer(engine, user, client_addr)
    try:
        yield v
    finally:
        v.close()


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def explain(v: Viewer, schema: str, name: str) -> Table:
    """The EXPLAIN_MODEL statement, which is also the visibility check: 42501 without
    EXECUTE, 42704 for an unknown model."""
    table = v.run(f"SELECT EXPLAIN_MODEL({literal(f'{schema}.{name}')}) AS explanation")
    # fail closed: only success, or "not in a state to explain" (a model that failed to
    # train), which the firewall lets through only to users with EXECUTE, shows the model
    if table.error is not None and table.sqlstate != "55000":
        raise NotVisible(table.error)
    return table


def show(v: Viewer, schema: str, name: str) -> tuple[Table, dict[str, str]]:
    table = v.run(f"SHOW MODEL {qualified(schema, name)}")
    if table.error is not None:
        raise NotVisible(table.error)
    values: dict[str, str] = {}
    for key, value in table.rows:
        if key and key not in values:
            values[key] = value
    return table, values


def _progress(v: Viewer, schema: str, name: str, version: int | None) -> dict[str, Any] | None:
    """The training job's progress file of a version (None when there is none)."""
    if version is None:
        record = v.engine.store.get(schema, name)
    else:
        record = v.engine.store.version(schema, name, version)
    if record is None:
        return None
    p = read_progress(str(v.engine.files(record).progress))
    if p is None:
        return None
    return {"phase": p.phase, "elapsed_s": p.elapsed_s, "budget_s": p.budget_s,
            "trials": p.trials, "metric_name": p.metric_name, "best_metric": p.best_metric,
            "current_learner": p.current_learner,
            "history": [list(point) for point in p.history]}


def _latest_version(versions: Table) -> tuple[int | None, str | None]:
    rows = versions.records()
    if not rows:
        return None, None
    last = rows[-1]
    return int(last["version"]), str(last["state"])


def versions_of(v: Viewer, schema: str, name: str) -> Table:
    return v.run("SELECT version, state, active, created, created_by, training_rows, "
                 "metric_name, validation_metric, learner, decision FROM svv_ml_model_versions "
                 f"WHERE schema_name = {literal(schema)} AND model_name = {literal(name)} "
                 "ORDER BY version")


def model_list(v: Viewer) -> dict[str, Any]:
    """The models page: every model the user may see, with its live progress."""
    info = v.run("SELECT schema_name, model_name, user_name, model_state FROM svv_ml_model_info "
                 "ORDER BY schema_name, model_name")
    models: list[dict[str, Any]] = []
    for schema, name, owner, _state in info.rows:
        try:
            explain(v, schema, name)
            _, values = show(v, schema, name)
        except NotVisible:
            continue
        versions = versions_of(v, schema, name)
        latest, latest_state = _latest_version(versions)
        progress = _progress(v, schema, name, latest) if latest_state == "TRAINING" else None
        metric_key = next((k for k in values if k.startswith(("validation:", "train:"))), None)
        models.append({
            "schema": schema, "name": name, "owner": owner,
            "state": values.get("Model State"),
            "problem_type": values.get("Problem Type") or values.get("Model Type"),
            "model_type": values.get("Model Type"),
            "metric_name": metric_key, "metric": values.get(metric_key) if metric_key else None,
            "versions": len(versions.rows),
            "active_version": next((r["version"] for r in versions.records() if r["active"]),
                                   None),
            "status": values.get("Failure Reason") or values.get("Training Job Status"),
            "latest_state": latest_state, "progress": progress,
        })
    return {"user": v.user, "statement": info.statement, "models": models,
            "error": info.error}


def _series_sql(values: dict[str, str]) -> str | None:
    """The FROM of the model's training data, as SHOW MODEL gives it."""
    if values.get("Query"):
        return f"({values['Query']}) AS training_rows"
    table = values.get("Table")
    return table or None


def model_page(v: Viewer, schema: str, name: str, series: str | None = None) -> dict[str, Any]:
    """Everything a model's page shows; NotVisible when the user may not see it."""
    explanation = explain(v, schema, name)
    show_table, values = show(v, schema, name)
    model = qualified(schema, name)
    versions = versions_of(v, schema, name)
    latest, latest_state = _latest_version(versions)
    active = next((r for r in versions.records() if r["active"]), None)
    state = values.get("Model State")
    problem = (values.get("Problem Type") or "").lower()
    model_type = (values.get("Model Type") or "").lower()
    functions = [f.strip() for f in (values.get("Function Name") or "").split(",") if f.strip()]
    features = (values.get("Function Parameters") or "").split()
    target = values.get("Target Column") or ""
    source = _series_sql(values)
    if values.get("Query") and values.get("Owner") != v.user:
        # the owner's query text would run in this user's session: a function with a side
        # effect written into it (nextval) would then run as this user; owners only
        source = None
    charts: dict[str, Any] = {}
    page: dict[str, Any] = {
        "schema": schema, "name": name, "state": state, "problem_type": problem,
        "model_type": model_type, "owner": values.get("Owner"),
        "learner": active.get("learner") if active else None,
        "status": values.get("Training Job Status"), "failure": values.get("Failure Reason"),
        "show": show_table.as_json(), "versions": versions.as_json(),
        "latest_state": latest_state, "charts": charts,
    }
    # the search: the latest version's while it trains, else the active one's
    progress_version = latest if latest_state == "TRAINING" else (
        int(active["version"]) if active else None)
    page["progress"] = _progress(v, schema, name, progress_version)
    importance = _importance(explanation)
    charts["importance"] = {**explanation.as_json(), "values": importance}
    page["sql"] = _usage_sql(schema, name, model_type, functions, features, source)
    if state != "READY":
        return page
    if source is None:
        page["source_note"] = ("The charts over the training rows (predicted against actual, "
                               "cluster sizes, a forecast's history) run the training query "
                               "the model's owner wrote; they are shown to the owner only.")
    if "forecast" in model_type:
        charts["forecast"] = _forecast(v, schema, name, values, source, series)
    elif model_type.startswith("kmeans"):
        if functions and source:
            args = ", ".join(ident(f) for f in features)
            charts["clusters"] = v.run(
                f"SELECT {functions[0]}({args}) AS cluster, count(*) AS size "
                f"FROM {source} GROUP BY 1 ORDER BY 1").as_json()
    elif "classification" in problem:
        charts["metrics"] = v.run(f"EVALUATE MODEL {model}").as_json()
        charts["confusion"] = v.run(f"EVALUATE MODEL {model} CONFUSION MATRIX").as_json()
        if problem.startswith("binary"):
            charts["roc"] = v.run(f"EVALUATE MODEL {model} ROC CURVE").as_json()
    elif problem == "regression":
        charts["metrics"] = v.run(f"EVALUATE MODEL {model}").as_json()
        if functions and source and target:
            args = ", ".join(ident(f) for f in features)
            charts["predicted"] = v.run(
                f"SELECT {ident(target)} AS actual, {functions[0]}({args}) AS predicted "
                f"FROM {source} WHERE {ident(target)} IS NOT NULL "
                f"USING SAMPLE {SAMPLE_ROWS} ROWS (reservoir, 42)").as_json()
    return page


def _importance(explanation: Table) -> list[list[Any]]:
    """(feature, mean |SHAP|) pairs from EXPLAIN_MODEL's JSON, largest first."""
    if not explanation.rows:
        return []
    try:
        doc = json.loads(str(explanation.rows[0][0]))
        labels = doc["explanations"]["kernel_shap"]
        values = next(iter(labels.values()))["global_shap_values"]
    except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
        return []
    pairs = [[str(k), float(v)] for k, v in values.items() if isinstance(v, int | float)]
    return sorted(pairs, key=lambda p: -p[1])


def _forecast(v: Viewer, schema: str, name: str, values: dict[str, str], source: str | None,
              series: str | None) -> dict[str, Any]:
    model = qualified(schema, name)
    ids = v.run(f"SELECT DISTINCT id FROM (SELECT FORECAST({model})) ORDER BY id NULLS FIRST "
                "LIMIT 200")
    chosen = series if series is not None else (ids.rows[0][0] if ids.rows else None)
    where = "id IS NULL" if chosen is None else f"id = {literal(str(chosen))}"
    forecast = v.run(f"SELECT * FROM (SELECT FORECAST({model})) WHERE {where} ORDER BY time")
    out: dict[str, Any] = {"series": [r[0] for r in ids.rows], "chosen": chosen,
                           "forecast": forecast.as_json(), "history": None}
    if source is None:
        return out
    head = v.run(f"SELECT * FROM {source} LIMIT 0")
    if head.error is not None or len(head.columns) < 2:
        out["history"] = head.as_json()
        return out
    target = values.get("Target Column") or ""
    if len(head.columns) >= 3 or head.columns[1] == target:
        id_col, time_col = (head.columns[0], head.columns[1]) if head.columns[1] != target \
            else (None, head.columns[0])
    else:
        id_col, time_col = None, head.columns[0]
    cond = "" if id_col is None or chosen is None else \
        f" WHERE {ident(id_col)}::VARCHAR = {literal(str(chosen))}"
    out["history"] = v.run(f"SELECT {ident(time_col)} AS time, {ident(target)} AS value "
                           f"FROM {source}{cond} ORDER BY 1").as_json()
    return out


def _usage_sql(schema: str, name: str, model_type: str, functions: list[str],
               features: list[str], source: str | None) -> list[dict[str, str]]:
    """Statements that use the model, ready to copy."""
    model = name if schema == "public" else f"{schema}.{name}"
    rows = source or "your_table"
    out = [{"title": "Describe it", "sql": f"SHOW MODEL {model};"}]
    if "forecast" in model_type:
        out.append({"title": "The forecast",
                    "sql": f"SELECT * FROM (SELECT FORECAST({model})) ORDER BY id, time;"})
    elif functions:
        args = ", ".join(features)
        out.append({"title": "Predict",
                    "sql": f"SELECT {functions[0]}({args}) AS prediction\nFROM {rows};"})
        probabilities = next((f for f in functions if f.endswith("_probabilities")), None)
        if probabilities:
            out.append({"title": "Class probabilities",
                        "sql": f"SELECT {probabilities}({args}) AS probabilities\n"
                               f"FROM {rows};"})
        explain_fn = next((f for f in functions if f.endswith("_explain")), None)
        if explain_fn:
            out.append({"title": "Explain each prediction",
                        "sql": f"SELECT {explain_fn}({args}) AS attributions\nFROM {rows} "
                               "LIMIT 10;"})
        if not model_type.startswith("kmeans"):
            out.append({"title": "Evaluate on the holdout", "sql": f"EVALUATE MODEL {model};"})
    out.append({"title": "Feature importance",
                "sql": f"SELECT EXPLAIN_MODEL('{schema}.{name}');"})
    out.append({"title": "Versions",
                "sql": f"SELECT * FROM svv_ml_model_versions WHERE model_name = '{name}';"})
    return out
