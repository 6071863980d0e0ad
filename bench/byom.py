"""Bench- and test-only: install a model trained outside QuackML into an engine.

Not the SQL bring-your-own-model (``CREATE MODEL ... FROM 'file'``), which
imports a bare XGBoost or LightGBM booster with one numeric result (no class
labels) from the operator's ``--file-dir``: benchmarks and tests that need a
model of a known shape served the way a trained model is (for example a
LightGBM classifier with 200 trees and 31 leaves, its labels and categorical
encoding) train it with the library, pack it as ``automl`` packs its results
(:class:`catalog.artifact.ModelArtifact`
written with :func:`catalog.artifact.write_artifact`), insert a READY catalog
row with :class:`catalog.store.ModelStore` and register its prediction
functions through the engine, exactly as a finished training does. After a
restart ``Engine.recover`` brings the functions back like any other model's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from catalog.artifact import ModelArtifact, write_artifact
from catalog.files import ARTIFACT_FILE
from catalog.spec import ModelState, Settings
from catalog.store import ModelRecord
from server.engine import Engine


def install_model(engine: Engine, name: str, function_name: str, artifact: ModelArtifact,
                  schema: str = "public") -> ModelRecord:
    """Write the artifact, insert a READY catalog row, register the functions."""
    now = datetime.now(UTC)
    record = ModelRecord(
        schema_name=schema, model_name=name, version=1, owner="bench", created_at=now,
        state=ModelState.READY, statement=f"-- {name}: installed by bench/byom.py",
        function_name=function_name, features=artifact.features, settings=Settings(),
        model_dir=str(Path("models") / schema / name / f"v1-{now:%Y%m%d%H%M%S%f}"),
        target=artifact.target.name, target_type=artifact.target.type,
        model_type=artifact.learner or None, problem_type=artifact.problem_type,
        metric_name=artifact.metric_name, metric_value=artifact.metric_value,
        labels=artifact.labels, artifact_file=ARTIFACT_FILE, best_learner=artifact.learner,
        trials=1, train_seconds=0.0, finished_at=now)
    folder = engine.files(record).folder
    folder.mkdir(parents=True, exist_ok=True)
    sha = write_artifact(artifact, str(folder / ARTIFACT_FILE))
    record = replace(record, artifact_sha256=sha)
    with engine.store.locked():
        engine.store.insert(record)
    engine.register_functions(record)
    engine.publish(record)
    return record
