"""A model's life after CREATE MODEL: its versions, ROLLBACK, RETRAIN's champion gate,
DROP MODEL [VERSION n], and finding a model by name.

Versions (see catalog.store): CREATE OR REPLACE MODEL and ALTER MODEL RETRAIN
add a version that trains while the active one keeps serving.
:func:`settle_replacement` runs when it finishes: a FAILED replacement leaves
the active version as it was; a READY one becomes active (the switch is
atomic for queries: server.models.switch), unless RETRAIN ONLY IF BETTER
asked for the champion gate and the new version does not beat the active
one on the new version's own holdout rows, both scored on the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import f1_score, roc_auc_score

from automl.problem import resolve_objective
from catalog.artifact import ModelArtifact, read_artifact
from catalog.errors import ModelNotFound
from catalog.spec import ModelState
from catalog.store import ModelRecord
from server.errors import FeatureNotSupported, NotInPrerequisiteState, ObjectInUse
from server.models.caller import Caller, schema_of
from server.results import Command
from server.sql.ml_grammar import DropModel, QualifiedName, RollbackModel

if TYPE_CHECKING:
    import pyarrow as pa

    from server.engine import Engine

log = logging.getLogger("quackml.models")

# how a replacement version is to be settled (ModelRecord.decision while it trains)
PENDING_REPLACE = "pending: becomes active when READY"
PENDING_IF_BETTER = "pending: becomes active when READY if it beats the active version"
DROP_WAIT_S = 30.0


def model_or_error(engine: Engine, name: QualifiedName) -> ModelRecord:
    record = engine.store.get(schema_of(name), name.name)
    if record is None:
        raise ModelNotFound(f'model "{schema_of(name)}.{name.name}" does not exist')
    return record


def version_or_error(engine: Engine, record: ModelRecord, version: int) -> ModelRecord:
    found = engine.store.version(record.schema_name, record.model_name, version)
    if found is None:
        raise ModelNotFound(f'model "{record.qualified_name}" has no version {version}')
    return found


# -- DROP MODEL [VERSION n] ----------------------------------------------------
def drop_model(engine: Engine, stmt: DropModel, caller: Caller) -> Command:
    schema, name = schema_of(stmt.name), stmt.name.name
    store = engine.store
    if stmt.version is not None:
        return _drop_version(engine, stmt, caller)
    with store.locked():
        record = store.get(schema, name)
        if record is None:
            if stmt.if_exists:
                return Command("DROP MODEL",
                               (f'model "{schema}.{name}" does not exist, skipping',))
            raise ModelNotFound(f'model "{schema}.{name}" does not exist')
        caller.privileges.require_drop(record)
    # no statement may be scoring with the model when its functions go away
    with engine.switch.switching(DROP_WAIT_S) as free:
        if not free:
            raise ObjectInUse(f'model "{schema}.{name}" is in use by running queries',
                              hint="try again when they have finished")
        with store.locked():
            if store.get(schema, name) is None:
                raise ModelNotFound(f'model "{schema}.{name}" does not exist')
            engine.pool.cancel(record.qualified_name)
            store.delete(schema, name)
            engine.users.forget_model(schema, name)
        engine.unregister_functions(record)
    engine.remove_files(record)
    return Command("DROP MODEL")


def _drop_version(engine: Engine, stmt: DropModel, caller: Caller) -> Command:
    assert stmt.version is not None
    store = engine.store
    with store.locked():
        current = model_or_error(engine, stmt.name)
        caller.privileges.require_drop(current)
        record = version_or_error(engine, current, stmt.version)
        if record.active:
            raise NotInPrerequisiteState(
                f'version {record.version} is the active version of model '
                f'"{record.qualified_name}"',
                hint=f"switch to another version first (ALTER MODEL {record.model_name} "
                     f"ROLLBACK TO VERSION n), or DROP MODEL {record.model_name}")
        if record.state is ModelState.TRAINING:
            engine.pool.cancel(record.qualified_name)
        store.delete_version(record.schema_name, record.model_name, record.version)
    engine.remove_version_files(record)
    return Command("DROP MODEL")


# -- ALTER MODEL m ROLLBACK [TO VERSION n] -------------------------------------
def rollback_model(engine: Engine, stmt: RollbackModel, caller: Caller) -> Command:
    store = engine.store
    with store.locked():
        current = model_or_error(engine, stmt.name)
        caller.privileges.require_drop(current)
        if stmt.version is not None:
            target = version_or_error(engine, current, stmt.version)
        else:
            earlier = [v for v in store.versions(current.schema_name, current.model_name)
                       if v.version < current.version and v.state is ModelState.READY]
            if not earlier:
                raise NotInPrerequisiteState(
                    f'model "{current.qualified_name}" has no READY version before '
                    f'version {current.version} to roll back to')
            target = earlier[-1]
        if target.state is not ModelState.READY:
            raise NotInPrerequisiteState(
                f'version {target.version} of model "{target.qualified_name}" is '
                f'{target.state.value}, not READY')
        _check_same_signature(current, target)
    if not target.active:
        engine.switch_to(replace(target, decision=f"activated by ROLLBACK from version "
                                                  f"{current.version} ({caller.user})"))
    return Command("ALTER MODEL")


def _check_same_signature(current: ModelRecord, other: ModelRecord) -> None:
    if (other.function_name, other.features, other.target_type,
            other.problem_type and other.problem_type.is_classification) != \
            (current.function_name, current.features, current.target_type,
             current.problem_type and current.problem_type.is_classification):
        raise FeatureNotSupported(
            f'version {other.version} of model "{other.qualified_name}" has other function '
            f"arguments or another return type than the active version")


# -- a replacement that finished training ---------------------------------------
def settle_replacement(engine: Engine, record: ModelRecord) -> ModelRecord:
    """Decide about a replacement version that just became READY or FAILED (called
    from the training pool's thread); returns the version as recorded."""
    store = engine.store
    active = store.get(record.schema_name, record.model_name)
    if record.state is not ModelState.READY:
        decision = (f"failed: version {active.version} stays active"
                    if active is not None and active.active and active.version != record.version
                    else "failed")
        record = replace(record, decision=decision)
        store.update(record)
        return record
    if active is None or not active.active or active.version == record.version:
        return engine.switch_to(replace(record, decision="activated: first READY version"))
    if record.decision != PENDING_IF_BETTER:
        return engine.switch_to(replace(record, decision=f"activated: replaced version "
                                                         f"{active.version}"))
    try:
        challenger, champion, metric = champion_gate(engine, record, active)
    except Exception as exc:  # noqa: BLE001 - a gate that cannot decide keeps the champion
        log.warning("champion gate for %s failed: %s", record.qualified_name, exc)
        record = replace(record, decision=f"kept version {active.version}: the gate could "
                                          f"not score both versions ({exc})")
        store.update(record)
        return record
    objective = resolve_objective(record.objective, record.problem_type)  # type: ignore[arg-type]
    better = challenger > champion if objective.higher_is_better else challenger < champion
    scores = (f"{metric} {challenger:.6g} against {champion:.6g} on this version's "
              f"holdout rows")
    record = replace(record, champion_score=champion, challenger_score=challenger)
    if better:
        return engine.switch_to(replace(record, decision=f"activated: beat version "
                                                         f"{active.version}, {scores}"))
    record = replace(record, decision=f"kept version {active.version}: did not beat it, "
                                      f"{scores}")
    store.update(record)
    return record


def refuse_forecast(record: ModelRecord) -> None:
    """A FORECAST model keeps its forecast rows, not a model to score, export or
    compare (0A000)."""
    if record.model_type == "FORECAST":
        raise FeatureNotSupported(
            f'model "{record.qualified_name}" is a FORECAST model: it keeps the forecast '
            "made at training, read with SELECT FORECAST(model) and scored with EVALUATE "
            "MODEL, not a model to score or export")


def champion_gate(engine: Engine, challenger: ModelRecord, champion: ModelRecord
                  ) -> tuple[float, float, str]:
    """Both versions' objective on the challenger's holdout rows: (challenger's score,
    champion's score, the metric's name)."""
    holdout = engine.files(challenger).holdout
    if not holdout.exists():
        raise FileNotFoundError("the new version kept no holdout rows")
    table = pq.read_table(holdout)
    objective = resolve_objective(challenger.objective, challenger.problem_type)  # type: ignore[arg-type]
    new = artifact_of(engine, challenger)
    old = artifact_of(engine, champion)
    target = challenger.target or ""
    y = table.column(target).to_pylist()
    positive = new.labels[new.positive_index] if len(new.labels) == 2 else None
    return (objective_score(new, table, y, objective.metric_name, positive),
            objective_score(old, table, y, objective.metric_name, positive),
            objective.metric_name)


def artifact_of(engine: Engine, record: ModelRecord) -> ModelArtifact:
    refuse_forecast(record)
    assert record.artifact_file and record.artifact_sha256
    return read_artifact(str(engine.files(record).folder / record.artifact_file),
                         record.artifact_sha256)


def objective_score(artifact: ModelArtifact, table: pa.Table, y: list[object], metric: str,
                    positive: object) -> float:
    """The objective (FLAML's metric name) of ``artifact`` on the rows of ``table``
    whose true target values are ``y``."""
    frame = artifact.frame([table.column(c.name) for c in artifact.features])
    if metric == "mse":
        predicted = artifact.predict_frame(frame)
        truth = np.asarray(y, dtype=np.float64)
        return float(np.mean((predicted - truth) ** 2))
    labels = artifact.decode(artifact.predict_frame(frame))
    if metric == "accuracy":
        return float(np.mean([a == b for a, b in zip(labels, y, strict=True)]))
    if metric == "macro_f1":
        text_y, text_p = [str(v) for v in y], [str(v) for v in labels]
        return float(f1_score(text_y, text_p, average="macro"))
    truth_positive = np.asarray([v == positive for v in y])
    if metric == "f1":
        return float(f1_score(truth_positive, np.asarray([v == positive for v in labels])))
    if metric == "roc_auc":
        proba = artifact.predict_proba_frame(frame)
        column = list(artifact.labels).index(positive)
        return float(roc_auc_score(truth_positive, proba[:, column]))
    raise ValueError(f"no champion gate for metric {metric}")
