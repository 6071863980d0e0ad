"""EXPORT MODEL m [VERSION n] FORMAT { ONNX | MLFLOW | NATIVE }."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.errors import FeatureNotSupported
from server.models.caller import Caller
from server.results import Stream
from server.sql.ml_grammar import ExportModel

if TYPE_CHECKING:
    from server.engine import Engine


def export_model(engine: Engine, stmt: ExportModel, caller: Caller) -> Stream:
    raise FeatureNotSupported("EXPORT MODEL is not supported yet")
