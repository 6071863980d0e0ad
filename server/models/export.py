"""EXPORT MODEL m [VERSION n] FORMAT { ONNX | MLFLOW | NATIVE }: the model, returned to
the client as one row with one bytea column, ``model`` (the server writes no file).

Only the model's owner or a superuser may export it: EXECUTE lets a user call the
model, an export gives the model itself away. The conversions are catalog.export's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from catalog import export
from catalog.errors import ModelNotReady
from catalog.spec import ModelState
from catalog.store import ModelRecord
from server.errors import InsufficientPrivilege
from server.models.caller import Caller
from server.models.lifecycle import artifact_of, model_or_error, version_or_error
from server.results import Stream
from server.sql.ml_grammar import ExportModel

if TYPE_CHECKING:
    from server.engine import Engine

COLUMN = "model"


def export_model(engine: Engine, stmt: ExportModel, caller: Caller) -> Stream:
    record = model_or_error(engine, stmt.name)
    if not caller.privileges.owns_or_super(record):
        raise InsufficientPrivilege(
            f"permission denied: only the owner or a superuser may export model "
            f"{record.qualified_name}", hint="EXECUTE on a model allows calling it, not "
                                             "exporting it")
    if stmt.version is not None:
        record = version_or_error(engine, record, stmt.version)
    if record.state is not ModelState.READY:
        raise ModelNotReady(f'version {record.version} of model "{record.qualified_name}" is '
                            f"{record.state.value}, not READY: there is nothing to export")
    if record.bring_your_own:
        raise export.NotExportable(
            f'model "{record.qualified_name}" is a bring-your-own model ({record.model_type}): '
            f"it cannot be exported", hint="ONNX, MLFLOW and NATIVE export LightGBM and "
                                           "XGBoost models trained by CREATE MODEL")
    artifact = artifact_of(engine, record)
    about = _about(record)
    match stmt.format:
        case "NATIVE":
            data = export.native(artifact, about)
        case "ONNX":
            data = export.onnx_bytes(artifact, about)
        case _:
            data = export.mlflow_tar(artifact, about,
                                     f"{record.model_name}_v{record.version}")
    table = pa.table({COLUMN: pa.array([data], pa.binary())})
    return Stream(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))


def _about(record: ModelRecord) -> dict[str, Any]:
    return {"exported_by": "QuackML", "model": record.qualified_name,
            "model_version": record.version, "function": record.function_name,
            "created": record.created_at.isoformat(), "learner": record.best_learner,
            "training_data_fingerprint": record.fingerprint}
