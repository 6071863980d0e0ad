"""EXPLAIN CREATE MODEL: what CREATE MODEL would do, as Key/Value rows (like SHOW MODEL).

The plan comes from CreateModelHandler.plan, the same checks CREATE MODEL makes (so an
EXPLAIN fails with the same error as the CREATE MODEL would); this module only words
it. Nothing is trained, written, recorded or queued. The FROM query does run, once, as
the caller (its rows are read, as CREATE MODEL reads them, for the row count and the
problem detection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.hyperparams import search_learners
from catalog.files import PROBABILITIES_SUFFIX
from catalog.spec import FeatureKind
from server.models.caller import Caller
from server.models.create import CreateModelHandler, TrainingPlan
from server.protocol.types import Oid
from server.results import Column as ResultColumn
from server.results import Rows
from server.sql.ml_grammar import CreateModel

if TYPE_CHECKING:
    from server.engine import Engine

# How AUTO ON prepares each kind of column when PREPROCESSORS leaves it out
# (catalog.frames.to_frame, then the learners as FLAML drives them).
_AUTOMATIC = {
    FeatureKind.NUMERIC: "as a number (NULL is missing)",
    FeatureKind.BOOLEAN: "as 0/1 (NULL is missing)",
    FeatureKind.CATEGORICAL: "as categories fixed at training (NULL and unseen values are "
                             "missing)",
    FeatureKind.TEMPORAL: "as seconds since the epoch (TIME: since midnight)",
}
_LEARNER_NAMES = {
    "lgbm": "LightGBM", "xgboost": "XGBoost", "xgb_limitdepth": "XGBoost (depth-limited)",
    "rf": "random forest", "extra_tree": "extra trees", "mlp": "MLP (scikit-learn)",
    "linear_learner": "linear (scikit-learn)",
}


def explain_create(handler: CreateModelHandler, stmt: CreateModel, caller: Caller) -> Rows:
    """EXPLAIN CREATE [OR REPLACE] MODEL ...: the plan as Key/Value rows."""
    plan = handler.plan(stmt, caller)
    rows = plan_rows(plan, handler.engine, caller)
    return Rows([ResultColumn("Key", Oid.VARCHAR), ResultColumn("Value", Oid.VARCHAR)],
                rows, f"SELECT {len(rows)}", notices=plan.checked.notices)


def plan_rows(plan: TrainingPlan, engine: Engine, caller: Caller) -> list[tuple[str, str]]:
    checked, stmt = plan.checked, plan.checked.stmt
    qualified = f"{checked.schema}.{checked.name}"
    rows: list[tuple[str, str]] = []
    if checked.replacing is None:
        rows.append(("Action", f"CREATE MODEL {qualified} (version 1)"))
    else:
        rows.append(("Action", f"CREATE OR REPLACE MODEL {qualified}: a new version; version "
                               f"{checked.replacing.version} serves until it is READY"))
    functions = checked.function_name
    if plan.problem.is_classification and checked.kind != "kmeans":
        functions += f", {checked.function_name}{PROBABILITIES_SUFFIX}"
    rows.append(("Functions", functions))
    rows.append(("Model Type", _model_type(plan)))
    if checked.kind == "kmeans":
        rows.append(("Problem Type", "clustering"))
    else:
        rows.append(("Problem Type", plan.problem.value))
    rows.append(("Problem Type Reason", plan.problem_reason))
    if plan.objective_sql is not None:
        rows.append(("Objective", plan.objective_sql
                     + ("" if stmt.objective is not None else " (the default)")))
    for column in plan.columns:
        if plan.target is not None and column.name == plan.target.name:
            rows.append((f"Column {column.name}", f"target, {column.type}"))
        else:
            rows.append((f"Column {column.name}", f"feature, {column.type} ({column.kind})"))
    rows.extend(_preprocessing(plan))
    rows.extend(_rows(plan))
    rows.append(("Learners", _learners(plan)))
    if plan.hyperparameters:
        rows.append(("Hyperparameters", ", ".join(f"{k} = {v}" for k, v in
                                                  sorted(plan.hyperparameters.items()))))
    limit = engine.settings.max_runtime_limit
    budget = f"MAX_RUNTIME {stmt.settings.max_runtime} s"
    if limit > 0:
        budget += f" (the server's max_runtime_limit is {limit} s)"
    rows.append(("Budget", budget))
    rows.append(("Queue", _queue(engine, caller)))
    rows.append(("Dry Run", f"the FROM query ran once ({plan.rows_read} rows read); "
                            "nothing was trained, written, recorded or queued"))
    return rows


def _model_type(plan: TrainingPlan) -> str:
    kind, stmt = plan.checked.kind, plan.checked.stmt
    if kind == "kmeans":
        return "KMEANS (AUTO OFF)"
    if kind == "xgboost":
        return "XGBOOST (AUTO OFF)"
    return f"{stmt.model_type or 'any'} (AUTO ON: a FLAML search)"


def _preprocessing(plan: TrainingPlan) -> list[tuple[str, str]]:
    kind = plan.checked.kind
    rows = [(f"Preprocessing Set {i + 1}",
             f"{', '.join(s.columns)}: {', '.join(s.transformers)}")
            for i, s in enumerate(plan.column_sets)]
    named = {c for s in plan.column_sets for c in s.columns}
    rest = [c for c in plan.features if c.name not in named]
    if kind == "auto":
        for feature_kind, how in _AUTOMATIC.items():
            names = [c.name for c in rest if c.kind is feature_kind]
            if names:
                rows.append((f"Preprocessing {feature_kind}",
                             f"{', '.join(names)}: automatic, {how}"))
    elif rest:
        rows.append(("Preprocessing", ", ".join(c.name for c in rest)
                     + ": none (numbers as given, NULL is missing)"))
    return rows


def _rows(plan: TrainingPlan) -> list[tuple[str, str]]:
    total = plan.table.num_rows
    dropped = plan.rows_read - total
    text = f"{total}"
    if dropped:
        text += f" ({dropped} more with a NULL target are left out)"
    max_cells = plan.checked.stmt.settings.max_cells
    limit = f"MAX_CELLS {max_cells} / {len(plan.columns)} columns = {plan.max_rows} rows"
    if total > plan.max_rows:
        sampling = f"sampled to {plan.max_rows} rows ({limit})"
    else:
        sampling = f"not sampled ({limit})"
    return [("Training Rows", text), ("Sampling", sampling)]


def _learners(plan: TrainingPlan) -> str:
    kind = plan.checked.kind
    if kind == "kmeans":
        return "k-means (scikit-learn)"
    if kind == "xgboost":
        return "XGBoost, with the HYPERPARAMETERS given (no search)"
    names = search_learners(plan.checked.stmt.model_type)
    return ", ".join(_LEARNER_NAMES.get(n, n) for n in names) + " (the search picks one)"


def _queue(engine: Engine, caller: Caller) -> str:
    settings = engine.settings
    status = engine.pool.status(caller.user)
    per_user = 0 if caller.privileges.superuser else settings.training_queue_per_user
    now = (f"{status.running} of {status.workers} training workers busy, "
           f"{status.waiting + status.reserved} jobs waiting")
    if per_user > 0 and status.held_by_user >= per_user:
        return (f"{now}; you already hold {status.held_by_user} jobs, the most one user may "
                f"(training_queue_per_user): CREATE MODEL would fail with 53000")
    if status.ahead < status.workers:
        return f"{now}: training would start at once"
    if status.ahead < status.workers + status.queue_size:
        return f"{now}: the job would be number {status.ahead - status.workers + 1} in the queue"
    if settings.training_queue_full == "wait":
        return f"{now}: the queue is full; CREATE MODEL would wait for a slot"
    return f"{now}: the queue is full; CREATE MODEL would fail with 53000"
