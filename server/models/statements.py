"""Dispatch of a classified model statement to its handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.models.caller import Caller
from server.models.create import CreateModelHandler
from server.models.lifecycle import drop_model
from server.models.show import show_all, show_model
from server.results import Result
from server.sql.ml_grammar import CreateModel, DropModel, MLStatement, QualifiedName, ShowModel

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
        raise AssertionError(statement)
