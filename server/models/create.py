"""CREATE MODEL: trained models (AUTO ON, AUTO OFF XGBoost, k-means) and bring-your-own
models (a model file, or a SAGEMAKER endpoint).

CREATE MODEL validates everything that can be checked before training
(names, columns, types, row counts, the problem type and objective), runs
the FROM query once, writes the Parquet snapshot (sampled to MAX_CELLS),
records the model as TRAINING, registers its functions and hands the job to
the training pool; the statement returns at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from automl import forecast
from automl.auto_off import CLUSTER_COLUMN
from automl.hyperparams import resolve_kmeans, resolve_xgboost, xgboost_problem
from automl.preprocessors import KMEANS_TRANSFORMERS, parse_preprocessors
from automl.problem import explain_problem, resolve_objective
from automl.ray_backend import check_reachable, runs_on_ray
from catalog.artifact import ModelArtifact, write_artifact
from catalog.errors import (
    DuplicateFunction,
    DuplicateModel,
    ModelFileMissing,
    UnknownSchema,
    UnknownType,
)
from catalog.files import ARTIFACT_FILE, all_function_names, publish, version_folder
from catalog.imported import ImportedBooster, OnnxModel, RemoteEndpoint, detect_library
from catalog.preprocessing import ColumnSet
from catalog.spec import Column, FeatureKind, ModelState, ProblemType, feature_kind
from catalog.spec import Settings as ModelSettings
from catalog.store import ModelRecord
from server.errors import (
    DataException,
    DatatypeMismatch,
    FeatureNotSupported,
    InsufficientPrivilege,
    InvalidFunctionDefinition,
    InvalidParameterValue,
    ObjectInUse,
    SyntaxError_,
    UndefinedColumn,
)
from server.models.caller import DEFAULT_SCHEMA, Caller, quote_ident, schema_of
from server.models.lifecycle import PENDING_REPLACE
from server.results import Command
from server.sql.ml_grammar import CreateModel
from server.sql.text import split

if TYPE_CHECKING:
    from server.engine import Engine

MIN_ROWS = 500
MAX_FEATURES = 256
_TYPE_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?")


def _endpoint(url: str) -> tuple[SplitResult, int] | None:
    """An http(s) URL taken apart with its effective port, or None when it is not one
    that can be compared safely (no host, a bad port, spaces, control characters,
    backslashes or non-ASCII, which parsers and HTTP clients read differently)."""
    if any(c.isspace() or not " " < c < "\x7f" or c == "\\" for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts, port or (443 if scheme == "https" else 80)


def endpoint_allowed(url: str, allowed: str) -> bool:
    """Whether a SAGEMAKER URL falls under one of the comma-separated URL prefixes of
    the sagemaker_allowed_urls setting: the same scheme, host, port and user info,
    and a path inside the prefix's path (at a ``/`` boundary, with no ``.`` or ``..``
    segments). Parsed, never compared as text, so ``http://allowed@evil/`` and
    ``http://allowed.evil/`` do not pass for ``http://allowed/``."""
    candidate = _endpoint(url)
    if candidate is None:
        return False
    parts, port = candidate
    path = parts.path or "/"
    if any(seg in (".", "..") for seg in unquote(path).split("/")):
        return False
    for prefix in (p.strip() for p in allowed.split(",")):
        entry = _endpoint(prefix) if prefix else None
        if entry is None:
            continue
        allow, allow_port = entry
        allow_path = allow.path or "/"
        if (parts.scheme.lower(), parts.hostname, port, parts.username, parts.password) != \
                (allow.scheme.lower(), allow.hostname, allow_port, allow.username,
                 allow.password):
            continue
        if path == allow_path or path.startswith(allow_path.rstrip("/") + "/"):
            return True
    return False


@dataclass(frozen=True)
class _Checked:
    """A CREATE MODEL statement after the checks that need no data."""
    stmt: CreateModel               # MAX_RUNTIME held to the server's max_runtime_limit
    notices: tuple[str, ...]
    kind: str                       # 'auto', 'xgboost' or 'kmeans' (see _variant)
    schema: str
    name: str
    function_name: str
    replacing: ModelRecord | None   # the active version a CREATE OR REPLACE replaces


@dataclass(frozen=True)
class TrainingPlan:
    """What CREATE MODEL will do, after every check: CREATE MODEL carries it out,
    EXPLAIN CREATE MODEL (server.models.dryrun) shows it."""
    checked: _Checked
    columns: tuple[Column, ...]     # of the FROM query
    target: Column | None           # None for KMEANS
    features: tuple[Column, ...]
    column_sets: tuple[ColumnSet, ...]   # PREPROCESSORS, parsed
    hyperparameters: dict[str, str]      # AUTO OFF and KMEANS: resolved, with defaults
    problem: ProblemType
    problem_reason: str
    objective_sql: str | None
    table: pa.Table                 # the FROM query's rows with a non-NULL target
    rows_read: int                  # rows the FROM query returned
    max_rows: int                   # MAX_CELLS / columns: more rows are sampled to this


class CreateModelHandler:
    """CREATE MODEL, as the caller: checked, snapshotted and queued, or imported."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- CREATE MODEL ------------------------------------------------------
    def create_model(self, stmt: CreateModel, caller: Caller,
                     policy: str = PENDING_REPLACE) -> Command:
        """CREATE [OR REPLACE] MODEL; ``policy``: how a replacement version is settled when
        it is READY (server.models.lifecycle)."""
        caller.privileges.require_create_model()
        self._refuse_unsupported(stmt)
        if stmt.source_file is not None or stmt.sagemaker is not None:
            return self.create_imported(stmt, caller)
        checked = self._check_statement(stmt, caller)
        if ray_address := self._ray_address(stmt):
            # the cluster answers now, or 08001 before any work (automl.ray_backend)
            check_reachable(ray_address)
        # a slot in the bounded training queue first, within the user's share of it:
        # 53000 (or a cancellable wait) before any work, given back if anything fails
        pool, settings = self.engine.pool, self.engine.settings
        key = f"{checked.schema}.{checked.name}"   # the job's key: ModelRecord.qualified_name
        caller.cancel_requested.clear()
        # superusers are exempt, as from PostgreSQL's per-role CONNECTION LIMIT
        per_user = 0 if caller.privileges.superuser else settings.training_queue_per_user
        pool.reserve(wait=settings.training_queue_full == "wait",
                     cancelled=caller.cancel_requested, user=caller.user, key=key,
                     per_user=per_user)
        try:
            plan = self._check_data(checked, caller)
            result = self._create_trained(plan, caller, policy)
        except BaseException:
            pool.release(key, caller.user)
            raise
        return replace(result, notices=(*result.notices, *checked.notices))

    def _ray_address(self, stmt: CreateModel) -> str | None:
        """The Ray cluster this model's search will run on, if any."""
        settings = self.engine.settings
        if settings.training_backend == "ray" and \
                runs_on_ray(stmt.auto is not False, stmt.model_type):
            return settings.ray_address
        return None

    def plan(self, stmt: CreateModel, caller: Caller) -> TrainingPlan:
        """What CREATE MODEL would do, for EXPLAIN CREATE MODEL: the same checks in the
        same order (so the same errors), the FROM query run once as the caller, and the
        problem type detected; then it stops before the training queue slot, the
        snapshot, the catalog record and the functions."""
        caller.privileges.require_create_model()
        self._refuse_unsupported(stmt)
        if stmt.source_file is not None or stmt.sagemaker is not None:
            raise FeatureNotSupported(
                "EXPLAIN CREATE MODEL is for trained models; a bring-your-own model is "
                "imported as it is, with nothing to plan")
        return self._check_data(self._check_statement(stmt, caller), caller)

    def _check_statement(self, stmt: CreateModel, caller: Caller) -> _Checked:
        """The checks that need no data: the clauses, the schemas, the name (or the model
        it replaces) and the budget."""
        if stmt.function_arg_types is not None or stmt.returns is not None:
            raise FeatureNotSupported(
                "FUNCTION argument types and RETURNS are for bring-your-own models "
                "(FROM 'model file' or SAGEMAKER)")
        kind = _variant(stmt)
        schema, name = schema_of(stmt.name), stmt.name.name
        function_name = stmt.function.name
        self._check_schemas(stmt, caller)
        replacing = self._replaced(stmt, caller, schema, name, function_name)
        limited, notices = self._limit_runtime(stmt)
        return _Checked(limited, notices, kind, schema, name, function_name, replacing)

    def _limit_runtime(self, stmt: CreateModel) -> tuple[CreateModel, tuple[str, ...]]:
        """Hold MAX_RUNTIME to the server's max_runtime_limit: a larger one given is an
        error (22023); the default one is lowered to the limit, with a NOTICE. The
        grammar fills in the default, so a MAX_RUNTIME written as the default value
        counts as not given."""
        limit = self.engine.settings.max_runtime_limit
        asked = stmt.settings.max_runtime
        if limit <= 0 or asked <= limit:
            return stmt, ()
        default = ModelSettings().max_runtime
        if asked != default:
            raise InvalidParameterValue(
                f"MAX_RUNTIME {asked} exceeds the server's limit of {limit} seconds "
                f"(max_runtime_limit)", hint=f"lower MAX_RUNTIME to {limit} or less")
        return (replace(stmt, settings=replace(stmt.settings, max_runtime=limit)),
                (f"MAX_RUNTIME defaults to {default} seconds, more than the server's "
                 f"max_runtime_limit: training for at most {limit} seconds",))

    def _replaced(self, stmt: CreateModel, caller: Caller, schema: str, name: str,
                  function_name: str) -> ModelRecord | None:
        """The model a CREATE OR REPLACE replaces (None: a new model), after the checks:
        its owner or a superuser, no version of it in training, the same function."""
        store = self.engine.store
        existing = store.get(schema, name)
        if existing is None:
            self._check_function_free(function_name, caller)
            return None
        if not stmt.or_replace:
            raise DuplicateModel(f'model "{schema}.{name}" already exists',
                                 hint="CREATE OR REPLACE MODEL trains a new version")
        caller.privileges.require_drop(existing)
        training = store.training(schema, name)
        if training is not None:
            raise ObjectInUse(f'version {training.version} of model "{schema}.{name}" is '
                              f"still training", hint="wait for it, or DROP MODEL "
                              f"{name} VERSION {training.version}")
        if function_name.lower() != existing.function_name.lower():
            raise FeatureNotSupported(
                f'a new version of model "{schema}.{name}" keeps its function '
                f'{existing.function_name}', hint="to rename the function, DROP MODEL and "
                                                  "CREATE MODEL")
        return existing

    @staticmethod
    def _check_signature(existing: ModelRecord | None, features: tuple[Column, ...],
                         target_type: str | None, classification: bool) -> None:
        """A new version's functions take the same arguments and return the same type
        as the active version's, so that switching never changes a function's signature
        under a query (PostgreSQL's CREATE OR REPLACE FUNCTION refuses the same: 42P13)."""
        if existing is None:
            return
        old_classification = bool(existing.problem_type and
                                   existing.problem_type.is_classification)
        if tuple((c.name, c.type) for c in features) != \
                tuple((c.name, c.type) for c in existing.features):
            raise InvalidFunctionDefinition(
                f'cannot change the arguments of {existing.function_name}: the new version '
                f'of model "{existing.qualified_name}" has other feature columns or types',
                detail="now: " + ", ".join(f"{c.name} {c.type}" for c in existing.features),
                hint="DROP MODEL first to change them")
        if target_type != existing.target_type or classification != old_classification:
            raise InvalidFunctionDefinition(
                f"cannot change the return type of {existing.function_name}",
                hint="DROP MODEL first to change it")

    def _check_data(self, checked: _Checked, caller: Caller) -> TrainingPlan:
        """The checks that need the FROM query: it runs here, once, as the caller."""
        stmt, kind = checked.stmt, checked.kind
        if stmt.source_query is not None:
            query = stmt.source_query
        else:
            assert stmt.source_table is not None
            parts = [p for p in (stmt.source_table.schema, stmt.source_table.name) if p]
            query = "SELECT * FROM " + ".".join(quote_ident(p) for p in parts)
        # PostgreSQL's names (public, the client's database name) made DuckDB's
        query = caller.duckdb_text(split(query)[0])
        # the FROM query runs as the user: checked as any statement of theirs
        caller.privileges.check_sql(caller.cursor, query)
        relation = caller.cursor.sql(query)
        columns = tuple(Column(n, str(t)) for n, t in zip(relation.columns, relation.types,
                                                          strict=True))
        target = self._find_target(stmt.target, list(columns)) if kind != "kmeans" else None
        if kind == "forecast":
            assert target is not None
            return self._check_forecast(checked, relation, columns, target)
        features = tuple(c for c in columns if target is None or c.name != target.name)
        self._check_features(features, numeric_only=kind != "auto")
        hyperparameters = stmt.hyperparameters or ()
        objective_sql: str | None
        if kind == "xgboost":
            xgb_objective, requested = xgboost_problem(stmt.objective)
            resolved = resolve_xgboost(hyperparameters, xgb_objective)
            column_sets = parse_preprocessors(None, features, None)
        elif kind == "kmeans":
            resolved = resolve_kmeans(hyperparameters, len(features))
            column_sets = parse_preprocessors(stmt.preprocessors, features, None,
                                              KMEANS_TRANSFORMERS)
        else:
            resolved = {}
            column_sets = parse_preprocessors(stmt.preprocessors, features,
                                              target.name if target is not None else None)

        table = relation.to_arrow_table()   # the FROM query runs here, once
        rows_read = table.num_rows
        if target is not None:
            table = table.filter(pc.is_valid(table.column(target.name)))
        rows_total = table.num_rows
        if rows_total < MIN_ROWS:
            raise DataException(
                f"CREATE MODEL needs at least {MIN_ROWS} training rows"
                + (" with a non-NULL target" if target is not None else "")
                + f"; the query returned {rows_total}")
        problem: ProblemType
        if kind == "kmeans":
            problem, objective_sql = ProblemType.REGRESSION, None
            reason = "MODEL_TYPE KMEANS: clustering, no target"
        elif kind == "xgboost":
            assert target is not None
            problem, reason = explain_problem(
                target, table.column(target.name).combine_chunks(), requested)
            reason = f"from OBJECTIVE '{xgb_objective}'; " + reason.removeprefix("given; ")
            objective_sql = xgb_objective
            if xgb_objective == "multi:softmax":
                num_class = int(resolved["num_class"])
                distinct = len(pc.unique(table.column(target.name)))
                if distinct > num_class:
                    raise InvalidParameterValue(
                        f"NUM_CLASS {num_class} is less than the {distinct} distinct values of "
                        f'target column "{target.name}"')
        else:
            assert target is not None
            problem, reason = explain_problem(
                target, table.column(target.name).combine_chunks(), stmt.problem_type)
            if stmt.problem_type is not None:
                reason = "PROBLEM_TYPE " + reason
            else:
                reason = "detected: " + reason
            objective_sql = resolve_objective(stmt.objective, problem).sql_name
        self._check_signature(checked.replacing, features,
                              target.type if target is not None else CLUSTER_COLUMN.type,
                              problem.is_classification and kind != "kmeans")
        max_rows = max(MIN_ROWS, stmt.settings.max_cells // max(1, len(columns)))
        return TrainingPlan(checked, columns, target, features, column_sets, resolved,
                            problem, reason, objective_sql, table, rows_read, max_rows)

    def _check_forecast(self, checked: _Checked, relation: duckdb.DuckDBPyRelation,
                        columns: tuple[Column, ...], target: Column) -> TrainingPlan:
        """MODEL_TYPE FORECAST: the settings and the series checked here, before queueing
        (automl.forecast.prepare, which the worker runs again); the snapshot keeps the id,
        the timestamp and the target, unsampled."""
        stmt = checked.stmt
        opts = forecast.options(stmt.settings.horizon, stmt.settings.frequency,
                                stmt.settings.percentiles, stmt.objective)
        id_col, time_col = forecast.input_columns(columns, target.name)
        features = (id_col, time_col) if id_col is not None else (time_col,)
        table = relation.select(*[quote_ident(c.name) for c in (*features, target)]) \
            .to_arrow_table()
        forecast.prepare(table.to_pandas(), id_col.name if id_col else None, time_col.name,
                         target, opts)
        self._check_signature(checked.replacing, features, target.type, False)
        old = checked.replacing
        if old is not None and (old.model_type != "FORECAST" or forecast.output_type(
                old.settings.horizon, old.settings.frequency, old.settings.percentiles,
                old.objective, old.features[-1].type) != forecast.output_type(
                stmt.settings.horizon, stmt.settings.frequency, stmt.settings.percentiles,
                opts.objective, time_col.type)):
            raise InvalidFunctionDefinition(
                f'cannot change the columns FORECAST({checked.name}) returns',
                hint="keep the model type and PERCENTILES, or DROP MODEL first")
        return TrainingPlan(checked, columns, target, features, (), {}, ProblemType.REGRESSION,
                            "MODEL_TYPE FORECAST", opts.objective, table, table.num_rows,
                            table.num_rows)

    def _create_trained(self, plan: TrainingPlan, caller: Caller, policy: str) -> Command:
        """Carry out a plan: the snapshot (sampled to MAX_CELLS), the record, the functions
        and the training job."""
        stmt, schema, name = plan.checked.stmt, plan.checked.schema, plan.checked.name
        replacing, target, features = plan.checked.replacing, plan.target, plan.features
        kind, problem, table = plan.checked.kind, plan.problem, plan.table
        rows_total = table.num_rows
        if rows_total > plan.max_rows:
            rng = np.random.default_rng(0)
            keep = np.sort(rng.choice(rows_total, size=plan.max_rows, replace=False))
            table = table.take(pa.array(keep))

        now = datetime.now(UTC)
        record = ModelRecord(
            schema_name=schema, model_name=name,
            version=self.engine.store.next_version(schema, name) if replacing else 1,
            owner=replacing.owner if replacing else caller.user, created_by=caller.user,
            active=replacing is None, decision=policy if replacing else None,
            created_at=now, state=ModelState.TRAINING, statement=stmt.text,
            function_name=plan.checked.function_name, features=features,
            settings=stmt.settings, model_dir="",
            source_query=stmt.source_query,
            source_table=str(stmt.source_table) if stmt.source_table else None,
            target=target.name if target is not None else None,
            target_type=target.type if target is not None else CLUSTER_COLUMN.type,
            iam_role=stmt.iam_role,
            model_type=stmt.model_type, problem_type=problem,
            objective=plan.objective_sql, rows_total=rows_total, rows_used=table.num_rows,
            auto=kind in ("auto", "forecast"), hyperparameters=stmt.hyperparameters or (),
            preprocessors=stmt.preprocessors)
        record = replace(record, model_dir=version_folder(schema, name, record.version, now))
        folder = self.engine.files(record).folder
        folder.mkdir(parents=True, exist_ok=True)
        snapshot = self.engine.files(record).snapshot
        tmp = snapshot.with_suffix(".parquet.tmp")
        keep_columns = [c.name for c in features] + ([target.name] if target is not None else [])
        pq.write_table(table.select(keep_columns), tmp)
        publish(tmp, snapshot)
        record = replace(record, fingerprint=_sha256(snapshot))

        self._insert_and_register(record)
        self.engine.start_training(record, reserved=True)
        return Command("CREATE MODEL")

    def _insert_and_register(self, record: ModelRecord) -> None:
        """Record the version; for a new model, register its functions too (undoing both
        on failure). When the name turns out to be taken (a concurrent CREATE MODEL won),
        or a concurrent replacement got there first, only this version's folder is
        removed: the other version's files share the parent."""
        store = self.engine.store
        schema, name = record.schema_name, record.model_name
        with store.locked():
            taken = store.get(schema, name) is not None if record.active else \
                store.version(schema, name, record.version) is not None or \
                store.training(schema, name) is not None
            if taken:
                shutil.rmtree(self.engine.files(record).folder, ignore_errors=True)
                raise DuplicateModel(f'model "{schema}.{name}" already exists' if record.active
                                     else f'model "{schema}.{name}" changed meanwhile')
            store.insert(record)
        if not record.active:
            return   # a replacement: the active version's functions serve meanwhile
        try:
            self.engine.register_functions(record)
        except BaseException:
            store.delete(schema, name)
            self.engine.remove_files(record)
            raise
        self.engine.publish(record)

    def _refuse_unsupported(self, stmt: CreateModel) -> None:
        unsupported: list[tuple[str, bool]] = [
            ("HORIZON, FREQUENCY or PERCENTILES without MODEL_TYPE FORECAST",
             stmt.model_type != "FORECAST" and any(
                 v is not None for v in (stmt.settings.horizon, stmt.settings.frequency,
                                         stmt.settings.percentiles))),
        ]
        for what, given in unsupported:
            if given:
                raise FeatureNotSupported(f"CREATE MODEL with {what} is not supported yet",
                                          hint="see README: What is not supported yet")

    def create_imported(self, stmt: CreateModel, caller: Caller) -> Command:
        """Bring your own model: FROM 'model file' (imported into the artifact store and
        READY at once) or SAGEMAKER 'http endpoint' (scored remotely in CSV batches)."""
        schema, name = schema_of(stmt.name), stmt.name.name
        function_name = stmt.function.name
        if stmt.function_arg_types is None or stmt.returns is None:
            raise SyntaxError_("syntax error: a bring-your-own model needs FUNCTION "
                               "f(type, ...) and RETURNS type")
        for clause, given in (("TARGET", stmt.target), ("MODEL_TYPE", stmt.model_type),
                              ("PROBLEM_TYPE", stmt.problem_type),
                              ("OBJECTIVE", stmt.objective),
                              ("PREPROCESSORS", stmt.preprocessors),
                              ("HYPERPARAMETERS", stmt.hyperparameters),
                              ("AUTO", stmt.auto)):
            if given is not None:
                raise FeatureNotSupported(f"a bring-your-own model takes no {clause}")
        self._check_schemas(stmt, caller)
        replacing = self._replaced(stmt, caller, schema, name, function_name)
        features = tuple(Column(f"arg{i + 1}", self._duckdb_type(t, caller))
                         for i, t in enumerate(stmt.function_arg_types))
        if not features:
            raise DataException("a bring-your-own model needs at least one argument type")
        for c in features:
            if c.kind not in (FeatureKind.NUMERIC, FeatureKind.BOOLEAN):
                raise FeatureNotSupported(
                    f"argument type {c.type} is not supported for bring-your-own models yet",
                    hint="use numeric or boolean argument types")
        returns = self._duckdb_type(stmt.returns, caller)
        if feature_kind(returns) not in (FeatureKind.NUMERIC, FeatureKind.BOOLEAN):
            raise FeatureNotSupported(
                f"RETURNS {stmt.returns} is not supported for bring-your-own models yet",
                hint="return a numeric type")
        estimator: ImportedBooster | OnnxModel | RemoteEndpoint
        if stmt.source_file is not None:
            data = self._read_model_file(stmt.source_file, caller)
            library = detect_library(data)
            if library == "onnx":
                estimator = OnnxModel(data, len(features))
                estimator.check([c.type for c in features], returns)
            else:
                estimator = ImportedBooster(library, data, len(features))
            model_type = f"IMPORTED {library.upper()}"
        else:
            assert stmt.sagemaker is not None
            url = stmt.sagemaker.split(":'", 1)[0]
            if not caller.privileges.superuser:
                raise InsufficientPrivilege(
                    "permission denied: a SAGEMAKER endpoint makes the server call an "
                    "address; only superusers may create one")
            if not url.lower().startswith(("http://", "https://")):
                raise InvalidParameterValue(
                    f"SAGEMAKER endpoint {url!r} is not an http:// or https:// URL",
                    hint="QuackML calls the endpoint over HTTP with CSV rows")
            if not endpoint_allowed(url, self.engine.settings.sagemaker_allowed_urls):
                raise InsufficientPrivilege(
                    f"permission denied: SAGEMAKER endpoint {url!r} is not on the server's "
                    f"list of allowed endpoints",
                    hint="the operator lists URL prefixes in --sagemaker-allowed-urls "
                         "(QUACKML_SAGEMAKER_ALLOWED_URLS); empty allows none")
            estimator = RemoteEndpoint(url, stmt.settings.max_batch_rows)
            model_type = "SAGEMAKER"
        target = Column("prediction", returns)
        self._check_signature(replacing, features, returns, False)
        now = datetime.now(UTC)
        record = ModelRecord(
            schema_name=schema, model_name=name,
            version=self.engine.store.next_version(schema, name) if replacing else 1,
            owner=replacing.owner if replacing else caller.user, created_by=caller.user,
            active=replacing is None,
            created_at=now, state=ModelState.READY, statement=stmt.text,
            function_name=function_name, features=features, settings=stmt.settings,
            model_dir="",
            source_table=stmt.source_file or stmt.sagemaker, target_type=returns,
            iam_role=stmt.iam_role, model_type=model_type,
            problem_type=ProblemType.REGRESSION, auto=False, finished_at=now,
            best_learner=model_type.split()[-1].lower(), trials=0, train_seconds=0.0)
        record = replace(record, model_dir=version_folder(schema, name, record.version, now))
        folder = self.engine.files(record).folder
        folder.mkdir(parents=True, exist_ok=True)
        artifact = ModelArtifact(
            features=features, target=target, problem_type=ProblemType.REGRESSION, labels=(),
            categories=tuple(None for _ in features), estimator=estimator,
            metric_name="", metric_value=float("nan"),
            learner=model_type.split()[-1].lower())
        sha256 = write_artifact(artifact, str(folder / ARTIFACT_FILE))
        record = replace(record, artifact_file=ARTIFACT_FILE, artifact_sha256=sha256,
                         fingerprint=sha256)
        self._insert_and_register(record)
        if replacing is not None:   # READY at once: it becomes the active version now
            self.engine.switch_to(replace(record, decision=f"activated: replaced version "
                                                           f"{replacing.version}"))
        return Command("CREATE MODEL")

    def _read_model_file(self, name: str, caller: Caller) -> bytes:
        """The bytes of a bring-your-own model file, read only from inside the
        operator's file_dir and only for superusers and FILEACCESS users. ``name`` is
        taken relative to file_dir (an absolute one must lie inside it); symlinks are
        followed before the check, so none leads out. Errors name the file as the user
        wrote it, never its server path."""
        if not caller.privileges.file_access:
            raise InsufficientPrivilege(
                f"permission denied: reading model file {name!r} needs a superuser or the "
                f"FILEACCESS attribute")
        file_dir = self.engine.settings.file_dir
        if not file_dir:
            raise InsufficientPrivilege(
                "permission denied: model files are read only from the server's file "
                "directory, and none is configured",
                hint="the operator sets --file-dir (QUACKML_FILE_DIR) and copies model "
                     "files into it")
        outside = InsufficientPrivilege(
            f"permission denied: model file {name!r} is not inside the server's file "
            f"directory", hint="name a file inside --file-dir by its path relative to it")
        try:
            root = Path(file_dir).resolve()
            path = (root / name).resolve()     # an absolute name replaces root
        except (OSError, RuntimeError, ValueError):
            raise outside from None
        if not path.is_relative_to(root) or path == root:
            raise outside
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise ModelFileMissing(f"cannot read model file {name!r}: "
                                   f"{exc.strerror or type(exc).__name__}") from None

    @staticmethod
    def _duckdb_type(sql_type: str, caller: Caller) -> str:
        """The DuckDB type for a type written in FUNCTION (...) or RETURNS (``float8``,
        ``int4``, ``double precision``, ``varchar(10)``)."""
        if not _TYPE_TEXT.fullmatch(sql_type):
            raise SyntaxError_(f"syntax error: invalid type {sql_type!r}")
        try:
            types = caller.cursor.sql(f"SELECT NULL::{sql_type}").types
        except duckdb.Error:
            raise UnknownType(f'type "{sql_type}" does not exist') from None
        return str(types[0])

    @staticmethod
    def _check_schemas(stmt: CreateModel, caller: Caller) -> None:
        """The model's schema and its function's must exist (3F000); the function's is
        the model's (or public): prediction functions are called with either."""
        schema, function_schema = schema_of(stmt.name), stmt.function.schema
        for name in {schema, function_schema or schema}:
            if name.lower() == DEFAULT_SCHEMA:
                continue
            rows = caller.cursor.execute(
                "SELECT count(*) FROM duckdb_schemas() WHERE database_name = "
                "current_database() AND lower(schema_name) = lower(?)", [name]).fetchall()
            if not rows or not rows[0][0]:
                raise UnknownSchema(f'schema "{name}" does not exist')
        if function_schema is not None and \
                function_schema.lower() not in (schema.lower(), DEFAULT_SCHEMA):
            raise FeatureNotSupported(
                f'a model\'s prediction function is in the model\'s schema: FUNCTION '
                f'{function_schema}.{stmt.function.name} needs CREATE MODEL '
                f'{function_schema}.{stmt.name.name}')

    def _check_function_free(self, function_name: str, caller: Caller) -> None:
        if self.engine.store.by_function(function_name) is not None:
            raise DuplicateFunction(f'function "{function_name}" is already a model function')
        # DuckDB resolves function names case-insensitively: compare lower-case, against
        # every function the session could see and the names the server reserves
        names = all_function_names(function_name.lower())
        rows = caller.cursor.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE lower(function_name) IN "
            f"({', '.join('?' for _ in names)})", list(names)).fetchall()
        if (rows and rows[0][0]) or any(n in self.engine.reserved_names() for n in names):
            raise DuplicateFunction(f'function "{function_name}" already exists')

    @staticmethod
    def _find_target(target: str | None, columns: list[Column]) -> Column:
        if target is None:
            raise SyntaxError_("syntax error: CREATE MODEL needs a TARGET clause "
                               "(only MODEL_TYPE KMEANS has none)")
        exact = [c for c in columns if c.name == target]
        loose = [c for c in columns if c.name.lower() == target.lower()]
        found = exact or loose
        if len(found) != 1:
            raise UndefinedColumn(
                f'target column "{target}" does not exist in the FROM query',
                detail="columns: " + ", ".join(c.name for c in columns))
        return found[0]

    @staticmethod
    def _check_features(features: tuple[Column, ...], numeric_only: bool = False) -> None:
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
            if numeric_only and c.kind not in (FeatureKind.NUMERIC, FeatureKind.BOOLEAN):
                raise DatatypeMismatch(
                    f'feature column "{c.name}" has type {c.type}; AUTO OFF and KMEANS models '
                    "take numeric or boolean features only",
                    hint="cast it to a number, or leave AUTO ON")


def _variant(stmt: CreateModel) -> str:
    """'auto' (AUTO ON, possibly guided), 'xgboost' (AUTO OFF) or 'kmeans'; refuse the
    combinations Redshift ML does not have."""
    model_type = stmt.model_type
    if model_type == "FORECAST":
        if stmt.auto is False:
            raise FeatureNotSupported("MODEL_TYPE FORECAST needs AUTO ON")
        for clause, given in (("PROBLEM_TYPE", stmt.problem_type),
                              ("PREPROCESSORS", stmt.preprocessors),
                              ("HYPERPARAMETERS", stmt.hyperparameters)):
            if given is not None:
                raise FeatureNotSupported(f"MODEL_TYPE FORECAST takes no {clause}")
        return "forecast"
    if model_type == "KMEANS":
        if stmt.auto is True:
            raise FeatureNotSupported("MODEL_TYPE KMEANS needs AUTO OFF")
        if stmt.target is not None:
            raise FeatureNotSupported("MODEL_TYPE KMEANS takes no TARGET")
        if stmt.problem_type is not None or stmt.objective is not None:
            raise FeatureNotSupported("MODEL_TYPE KMEANS takes no PROBLEM_TYPE or OBJECTIVE")
        return "kmeans"
    if stmt.auto is False:
        if model_type != "XGBOOST":
            raise FeatureNotSupported(
                "AUTO OFF needs MODEL_TYPE XGBOOST or KMEANS"
                + (f"; {model_type} is trained with AUTO ON" if model_type else ""))
        if stmt.problem_type is not None:
            raise FeatureNotSupported(
                "AUTO OFF does not take PROBLEM_TYPE: the XGBoost OBJECTIVE decides it")
        if stmt.preprocessors is not None and stmt.preprocessors.strip().lower() != "none":
            raise FeatureNotSupported("AUTO OFF with MODEL_TYPE XGBOOST takes PREPROCESSORS "
                                      "'none' only")
        return "xgboost"
    if stmt.hyperparameters is not None:
        raise FeatureNotSupported("HYPERPARAMETERS need AUTO OFF",
                                  hint="AUTO ON searches the hyperparameters itself")
    return "auto"


def _sha256(path: Path) -> str:
    """The training data's fingerprint: the sha256 of the snapshot file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
