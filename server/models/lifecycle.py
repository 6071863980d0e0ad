"""A model's life after CREATE MODEL: DROP MODEL, and finding a model by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.errors import ModelNotFound
from catalog.store import ModelRecord
from server.models.caller import Caller, schema_of
from server.results import Command
from server.sql.ml_grammar import DropModel, QualifiedName

if TYPE_CHECKING:
    from server.engine import Engine


def drop_model(engine: Engine, stmt: DropModel, caller: Caller) -> Command:
    schema, name = schema_of(stmt.name), stmt.name.name
    store = engine.store
    with store.locked():
        record = store.get(schema, name)
        if record is None:
            if stmt.if_exists:
                return Command("DROP MODEL",
                               (f'model "{schema}.{name}" does not exist, skipping',))
            raise ModelNotFound(f'model "{schema}.{name}" does not exist')
        caller.privileges.require_drop(record)
        engine.pool.cancel(record.qualified_name)
        store.delete(schema, name)
        engine.users.forget_model(schema, name)
    engine.unregister_functions(record)
    engine.remove_files(record)
    return Command("DROP MODEL")


def model_or_error(engine: Engine, name: QualifiedName) -> ModelRecord:
    record = engine.store.get(schema_of(name), name.name)
    if record is None:
        raise ModelNotFound(f'model "{schema_of(name)}.{name.name}" does not exist')
    return record
