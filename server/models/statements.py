"""Dispatch of a classified model statement to its handler."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from catalog.spec import ModelState
from server.errors import FeatureNotSupported
from server.models.caller import Caller
from server.models.create import CreateModelHandler
from server.models.dryrun import explain_create
from server.models.evaluate import evaluate_model
from server.models.export import export_model
from server.models.lifecycle import (
    PENDING_IF_BETTER,
    PENDING_REPLACE,
    drop_model,
    model_or_error,
    rollback_model,
)
from server.models.show import show_all, show_model
from server.results import Command, Result
from server.sql import ml_grammar
from server.sql.ml_grammar import (
    CreateModel,
    DropModel,
    EvaluateModel,
    ExplainCreateModel,
    ExportModel,
    MLStatement,
    QualifiedName,
    RetrainModel,
    RollbackModel,
    ShowModel,
)
from server.sql.text import split

if TYPE_CHECKING:
    from server.engine import Engine


class ModelStatements:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.create = CreateModelHandler(engine)

    def handle(self, statement: MLStatement, caller: Caller) -> Result:
        match statement:
            case CreateModel():
                return self.create.create_model(statement, caller)
            case ShowModel(name=None):
                return show_all(self.engine)
            case ShowModel(name=QualifiedName() as name):
                return show_model(self.engine, name, caller)
            case DropModel():
                return drop_model(self.engine, statement, caller)
            case RollbackModel():
                return rollback_model(self.engine, statement, caller)
            case RetrainModel():
                return self.retrain(statement, caller)
            case EvaluateModel():
                return evaluate_model(self.engine, statement, caller)
            case ExplainCreateModel(create=create):
                return explain_create(self.create, create, caller)
            case ExportModel():
                return export_model(self.engine, statement, caller)
        raise FeatureNotSupported(f"{type(statement).__name__} is not supported yet")

    def retrain(self, stmt: RetrainModel, caller: Caller) -> Command:
        """ALTER MODEL m RETRAIN [ONLY IF BETTER]: the model's CREATE MODEL statement again
        (its FROM query, run now, as the caller), as a new version."""
        record = model_or_error(self.engine, stmt.name)
        caller.privileges.require_drop(record)
        if record.bring_your_own:
            raise FeatureNotSupported(
                f'model "{record.qualified_name}" is a bring-your-own model: it has no FROM '
                "query to train on again", hint="CREATE OR REPLACE MODEL with a new file")
        if stmt.only_if_better and (not record.auto or record.model_type == "KMEANS"):
            raise FeatureNotSupported(
                "RETRAIN ONLY IF BETTER compares the versions on a validation holdout, which "
                "AUTO OFF and KMEANS models do not keep", hint="use RETRAIN")
        if stmt.only_if_better and record.state is not ModelState.READY:
            raise FeatureNotSupported(
                f'model "{record.qualified_name}" has no READY version to compare with',
                hint="use RETRAIN")
        parsed = ml_grammar.parse(split(record.statement)[0])
        assert isinstance(parsed, CreateModel)
        again = replace(parsed, or_replace=True, name=stmt.name)
        self.create.create_model(again, caller,
                                 PENDING_IF_BETTER if stmt.only_if_better else PENDING_REPLACE)
        return Command("ALTER MODEL")
