"""EXPLAIN_MODEL('schema.model'): a SQL function returning the model's explanation JSON.

Registered once on the shared DuckDB connection at start-up. While the model
trains it answers ``{"explanations": "waiting for training job to
complete"}``; once READY, the ``explanation.json`` the training worker wrote
next to the artifact (see automl.explain).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb

from catalog.errors import ModelNotFound
from catalog.spec import ModelState

if TYPE_CHECKING:
    from server.engine import Engine

WAITING = json.dumps({"explanations": "waiting for training job to complete"})


def register_explain_model(engine: Engine) -> None:
    def explain_model(name: str) -> str:
        schema, _, model = name.rpartition(".")
        schema = schema or "public"
        record = engine.store.get(schema, model)
        if record is None:
            raise ModelNotFound(f'model "{schema}.{model}" does not exist')
        if record.state is ModelState.TRAINING:
            return WAITING
        if record.state is ModelState.FAILED:
            return json.dumps({"explanations": f"training failed: {record.failure_reason}"})
        path = engine.files(record).explanation
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return json.dumps({"explanations": "not available for this model"})

    engine.con.create_function("explain_model", explain_model,
                               [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                               side_effects=True)
