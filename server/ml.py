"""Handlers for the ML statements: CREATE MODEL, SHOW MODEL, DROP MODEL.

CREATE MODEL validates everything that can be checked before training
(names, columns, types, row counts, the problem type and objective), runs
the FROM query once, writes the Parquet snapshot (sampled to MAX_CELLS),
records the model as TRAINING, registers its functions and hands the job to
the training pool; the statement returns at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from automl.problem import detect_problem, resolve_objective
from automl.progress import read_progress
from catalog.errors import DuplicateFunction, DuplicateModel, ModelNotFound
from catalog.spec import Column, ModelState
from catalog.store import ModelRecord
from server.errors import (
    DataException,
    DatatypeMismatch,
    FeatureNotSupported,
    UndefinedColumn,
)
from server.grammar import CreateModel, DropModel, MLStatement, QualifiedName, ShowModel
from server.pgtypes import Oid, pg_type_for_duckdb, pg_type_name
from server.results import Column as ResultColumn
from server.results import Command, Result, Rows

if TYPE_CHECKING:
    from server.engine import Engine
    from server.session import Session

DEFAULT_SCHEMA = "public"
MIN_ROWS = 500
MAX_FEATURES = 256
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema(name: QualifiedName) -> str:
    return name.schema or DEFAULT_SCHEMA


class MLHandlers:
    def __init__(self, engine: Engine):
        self.engine = engine

    def handle(self, statement: MLStatement, session: Session) -> Result:
        match statement:
            case CreateModel():
                return self.create_model(statement, session)
            case ShowModel(name=None):
                return self.show_all()
            case ShowModel(name=QualifiedName() as name):
                return self.show_model(name)
            case DropModel():
                return self.drop_model(statement)
        raise AssertionError(statement)

    # -- CREATE MODEL ------------------------------------------------------
    def create_model(self, stmt: CreateModel, session: Session) -> Command:
        self._refuse_unsupported(stmt)
        schema, name = _schema(stmt.name), stmt.name.name
        function_name = stmt.function.name
        store = self.engine.store
        if store.get(schema, name) is not None:
            raise DuplicateModel(f'model "{schema}.{name}" already exists')
        self._check_function_free(function_name, session)

        if stmt.source_query is not None:
            query = stmt.source_query
        else:
            assert stmt.source_table is not None
            parts = [p for p in (stmt.source_table.schema, stmt.source_table.name) if p]
            query = "SELECT * FROM " + ".".join(quote_ident(p) for p in parts)
        relation = session.cursor.sql(query)
        columns = [Column(n, str(t)) for n, t in zip(relation.columns, relation.types,
                                                     strict=True)]
        target = self._find_target(stmt.target, columns)
        features = tuple(c for c in columns if c.name != target.name)
        self._check_features(features)

        table = relation.to_arrow_table()   # the FROM query runs here, once
        y = table.column(target.name)
        table = table.filter(pc.is_valid(y))
        rows_total = table.num_rows
        if rows_total < MIN_ROWS:
            raise DataException(
                f"CREATE MODEL needs at least {MIN_ROWS} training rows with a non-NULL target; "
                f"the query returned {rows_total}")
        problem = detect_problem(target, table.column(target.name).combine_chunks(),
                                 stmt.problem_type)
        objective = resolve_objective(stmt.objective, problem)
        max_rows = max(MIN_ROWS, stmt.settings.max_cells // max(1, len(columns)))
        if rows_total > max_rows:
            rng = np.random.default_rng(0)
            keep = np.sort(rng.choice(rows_total, size=max_rows, replace=False))
            table = table.take(pa.array(keep))

        now = datetime.now(UTC)
        record = ModelRecord(
            schema_name=schema, model_name=name, version=1, owner=session.user,
            created_at=now, state=ModelState.TRAINING, statement=stmt.text,
            function_name=function_name, features=features, settings=stmt.settings,
            model_dir=str(Path("models") / _SAFE_NAME.sub("_", schema) /
                          _SAFE_NAME.sub("_", name) / f"v1-{now.strftime('%Y%m%d%H%M%S%f')}"),
            source_query=stmt.source_query,
            source_table=str(stmt.source_table) if stmt.source_table else None,
            target=target.name, target_type=target.type, iam_role=stmt.iam_role,
            model_type=stmt.model_type, problem_type=problem,
            objective=objective.sql_name, rows_total=rows_total, rows_used=table.num_rows)
        folder = self.engine.model_dir(record)
        folder.mkdir(parents=True, exist_ok=True)
        snapshot = self.engine.snapshot_path(record)
        tmp = snapshot.with_suffix(".parquet.tmp")
        pq.write_table(table.select([c.name for c in (*features, target)]), tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, snapshot)

        with store.locked():
            if store.get(schema, name) is not None:
                raise DuplicateModel(f'model "{schema}.{name}" already exists')
            store.insert(record)
        try:
            self.engine.register_functions(record)
        except BaseException:
            store.delete(schema, name)
            self.engine.remove_files(record)
            raise
        self.engine.publish(record)
        self.engine.start_training(record)
        return Command("CREATE MODEL")

    def _refuse_unsupported(self, stmt: CreateModel) -> None:
        unsupported = [
            ("OR REPLACE", stmt.or_replace),
            ("FROM 'model file'", stmt.source_file is not None),
            ("SAGEMAKER", stmt.sagemaker is not None),
            ("FUNCTION argument types", stmt.function_arg_types is not None),
            ("RETURNS", stmt.returns is not None),
            ("AUTO OFF", stmt.auto is False),
            ("MODEL_TYPE", stmt.model_type is not None),
            ("PREPROCESSORS", stmt.preprocessors is not None),
            ("HYPERPARAMETERS", stmt.hyperparameters is not None),
        ]
        for what, given in unsupported:
            if given:
                raise FeatureNotSupported(f"CREATE MODEL with {what} is not supported yet",
                                          hint="see README: What is not supported yet")
        if stmt.target is None:
            raise FeatureNotSupported("CREATE MODEL without TARGET (KMEANS) is not supported yet")

    def _check_function_free(self, function_name: str, session: Session) -> None:
        if self.engine.store.by_function(function_name) is not None:
            raise DuplicateFunction(f'function "{function_name}" is already a model function')
        rows = session.cursor.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name IN (?, ?)",
            [function_name, function_name + "_probabilities"]).fetchall()
        if rows and rows[0][0]:
            raise DuplicateFunction(f'function "{function_name}" already exists')

    @staticmethod
    def _find_target(target: str | None, columns: list[Column]) -> Column:
        assert target is not None
        exact = [c for c in columns if c.name == target]
        loose = [c for c in columns if c.name.lower() == target.lower()]
        found = exact or loose
        if len(found) != 1:
            raise UndefinedColumn(
                f'target column "{target}" does not exist in the FROM query',
                detail="columns: " + ", ".join(c.name for c in columns))
        return found[0]

    @staticmethod
    def _check_features(features: tuple[Column, ...]) -> None:
        if not features:
            raise DataException("CREATE MODEL needs at least one feature column besides the target")
        if len(features) > MAX_FEATURES:
            raise DataException(f"CREATE MODEL supports at most {MAX_FEATURES} feature columns; "
                                f"the query has {len(features)}")
        for c in features:
            if c.kind is None:
                raise DatatypeMismatch(
                    f'feature column "{c.name}" has type {c.type}, which CREATE MODEL cannot use',
                    hint="cast it to a numeric, BOOLEAN, VARCHAR, DATE, TIME or TIMESTAMP type")

    # -- SHOW MODEL ----------------------------------------------------------
    def show_all(self) -> Rows:
        records = self.engine.store.all()
        columns = [ResultColumn("Schema Name", Oid.VARCHAR),
                   ResultColumn("Model Name", Oid.VARCHAR)]
        return Rows(columns,
                    [(r.schema_name, r.model_name) for r in records], f"SELECT {len(records)}")

    def show_model(self, name: QualifiedName) -> Rows:
        record = self.engine.store.get(_schema(name), name.name)
        if record is None:
            raise ModelNotFound(f'model "{_schema(name)}.{name.name}" does not exist')
        rows = model_rows(record, self.engine)
        return Rows([ResultColumn("Key", Oid.VARCHAR), ResultColumn("Value", Oid.VARCHAR)],
                    rows, f"SELECT {len(rows)}")

    # -- DROP MODEL ----------------------------------------------------------
    def drop_model(self, stmt: DropModel) -> Command:
        schema, name = _schema(stmt.name), stmt.name.name
        store = self.engine.store
        with store.locked():
            record = store.get(schema, name)
            if record is None:
                if stmt.if_exists:
                    return Command("DROP MODEL",
                                   (f'model "{schema}.{name}" does not exist, skipping',))
                raise ModelNotFound(f'model "{schema}.{name}" does not exist')
            self.engine.pool.cancel(record.qualified_name)
            store.delete(schema, name)
        self.engine.unregister_functions(record)
        self.engine.remove_files(record)
        return Command("DROP MODEL")


def _status(record: ModelRecord, engine: Engine) -> str:
    if record.state is ModelState.TRAINING:
        if engine.pool.queued(record.qualified_name):
            return "Queued: waiting for a free training worker"
        p = read_progress(str(engine.progress_path(record)))
        if p is None:
            return f"Starting: 0 s of {record.settings.max_runtime} s budget"
        best = (f", best validation {p.metric_name} {p.best_metric:.4f}"
                if p.best_metric is not None and p.metric_name else "")
        learner = f", current learner {p.current_learner}" if p.current_learner else ""
        return (f"{p.phase.capitalize()}: {p.elapsed_s:.0f} s of {p.budget_s:.0f} s budget, "
                f"{p.trials} trials{best}{learner}")
    if record.state is ModelState.READY:
        return (f"Completed in {record.train_seconds or 0:.1f} s: {record.trials or 0} trials, "
                f"best learner {record.best_learner}")
    return "Failed"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def model_rows(record: ModelRecord, engine: Engine) -> list[tuple[str, str]]:
    s = record.settings
    metric = f"validation:{(record.objective or record.metric_name or 'metric').lower()}"
    functions = record.function_name
    if record.problem_type is not None and record.problem_type.is_classification:
        functions += f", {record.function_name}_probabilities"
    rows: list[tuple[str, str]] = [
        ("Model Name", record.model_name),
        ("Schema Name", record.schema_name),
        ("Owner", record.owner),
        ("Creation Time", record.created_at.astimezone(UTC).strftime("%a, %d.%m.%Y %H:%M:%S")),
        ("Model State", record.state.value),
    ]
    if record.state is ModelState.FAILED:
        rows.append(("Failure Reason", record.failure_reason or "unknown"))
    rows += [
        ("Training Job Status", _status(record, engine)),
        (metric, _fmt(record.metric_value)),
        ("Estimated Cost", "0.000000"),
        ("", ""),
        ("TRAINING DATA:", ""),
    ]
    if record.source_query is not None:
        rows.append(("Query", record.source_query))
    else:
        rows.append(("Table", record.source_table or ""))
    used = f"{record.rows_used} of {record.rows_total}" + (
        " (sampled to MAX_CELLS)" if (record.rows_used or 0) < (record.rows_total or 0) else "")
    rows += [
        ("Target Column", record.target or ""),
        ("Training Rows", used),
        ("", ""),
        ("PARAMETERS:", ""),
        ("Model Type", (record.model_type or "auto").lower()
         + (f" ({record.best_learner})" if record.best_learner else "")),
        ("Problem Type", record.problem_type.value if record.problem_type else ""),
        ("Objective", record.objective or ""),
        ("AutoML Job Name", f"{record.schema_name}-{record.model_name}-"
                            f"{record.created_at.strftime('%Y-%m-%d-%H-%M-%S')}"),
        ("Function Name", functions),
        ("Function Parameters", " ".join(c.name for c in record.features)),
        ("Function Parameter Types",
         " ".join(pg_type_name(pg_type_for_duckdb(c.type)) for c in record.features)),
        ("IAM Role", record.iam_role or ""),
        ("S3 Bucket", s.s3_bucket or ""),
        ("KMS Key", s.kms_key_id or ""),
        ("Max Runtime", str(s.max_runtime)),
    ]
    return rows


def replace_record(record: ModelRecord, **changes: object) -> ModelRecord:
    return replace(record, **changes)  # type: ignore[arg-type]
