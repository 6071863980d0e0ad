"""The DuckDB engine handle: one database per server, shared by all sessions.

Holds the database connection (sessions get their own cursors), the model
catalog, the model cache, the prediction functions and the training pool,
and reconciles them at start-up: READY models get their functions back,
models left TRAINING by a stopped server are resumed from their snapshot
(or marked FAILED when the snapshot is gone).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from sqlglot.tokens import Token

from automl.pool import Outcome, TrainingPool
from catalog import legacy, views
from catalog.acl import Acl
from catalog.db import FILE_NAME as CATALOG_FILE
from catalog.db import CatalogDB
from catalog.files import VersionFiles
from catalog.spec import Column, ModelState, TrainingFailure, TrainingJob, TrainingResult
from catalog.store import ModelRecord, ModelStore
from catalog.users import UserStore
from inference.cache import CacheEntry, ModelCache
from inference.functions import PredictionFunctions
from server.errors import hide_paths
from server.models.switch import VersionSwitch
from server.postgres import catalog as pgcatalog
from server.postgres import catalog_views, functions, names
from server.postgres.activity import Activity
from server.security.privileges import reserved_names
from server.security.tls import server_context
from server.settings import Settings

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
log = logging.getLogger("quackml.engine")


class StartupRefused(Exception):
    """A start the operator must fix, refused before the server admits anyone (the
    message is the one line ``quackml serve`` prints)."""


@dataclass(frozen=True)
class Sandbox:
    """How DuckDB was closed at start-up (reported by docs/security.md's checks)."""
    allowed_directories: tuple[str, ...]
    locked: bool


def sandbox(con: duckdb.DuckDBPyConnection, settings: Settings) -> Sandbox:
    """Close DuckDB's doors for every connection, now and later: no file, network or
    extension access but the operator's import/export directory (``--file-dir``),
    and, unless a per-session memory limit must still be applied to each new
    session's connection, a locked configuration. Irreversible while the database
    is open (DuckDB refuses to turn external access back on)."""
    # DuckDB's terminal progress bar would print into the server's output
    con.execute("SET enable_progress_bar = false")
    # PostgreSQL's arithmetic for every connection: 7/2 is 3 and a division by zero
    # is an error (22012)
    con.execute("SET GLOBAL integer_division = true")
    con.execute("SET GLOBAL ieee_floating_point_ops = false")
    # PostgreSQL's NULL order: NULLs sort as if larger than every value (last on ASC,
    # first on DESC)
    con.execute("SET GLOBAL default_null_order = 'nulls_last_on_asc_first_on_desc'")
    allowed: tuple[str, ...] = ()
    if settings.file_dir:
        folder = Path(settings.file_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        allowed = (str(folder).rstrip("/") + "/",)
        con.execute("SET allowed_directories = ?", [list(allowed)])
    con.execute("SET enable_external_access = false")
    # operator_memory_limit is set per connection, which a locked configuration refuses
    locked = settings.lock_configuration and not settings.session_memory_limit
    if locked:
        con.execute("SET lock_configuration = true")
    return Sandbox(allowed, locked)


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        database = settings.database
        if database != ":memory:":
            Path(database).resolve().parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            # extensions are never installed or loaded behind the operator's back
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if settings.duckdb_threads > 0:
            config["threads"] = str(settings.duckdb_threads)
        if settings.memory_limit:
            config["memory_limit"] = settings.memory_limit
        self.con = duckdb.connect(database, config=config)
        # DuckDB always admits its own temporary directory: the server stages the rows
        # of COPY FROM STDIN there (the only files it asks DuckDB to read)
        self.staging_dir = Path(
            str(self.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
            or (self.data_dir / "duckdb.tmp")).resolve()
        self.con.execute("SET temp_directory = ?", [str(self.staging_dir)])
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.chmod(0o700)
        hide_paths({str(self.staging_dir): "<temporary directory>",
                    str(self.data_dir): "<data directory>",
                    "" if database == ":memory:" else str(Path(database).resolve()):
                        "<database file>"})
        self.cursor().close()   # a bad --session-memory-limit stops the start
        # the security catalog: a file DuckDB cannot open (see docs/security.md)
        self.catalog_db = CatalogDB(self.data_dir / CATALOG_FILE)
        self.store = ModelStore(self.catalog_db)
        server_context(settings)   # a bad --tls-cert/--tls-key stops the start, not a client
        self.users = UserStore(self.catalog_db)
        legacy.migrate(self.con, self.catalog_db)
        self.database_name = str(self.con.execute("SELECT current_database()").fetchall()[0][0])
        if self.con.execute("SELECT count(*) FROM duckdb_schemas() WHERE database_name = "
                            "current_database() AND lower(schema_name) = ?",
                            [names.PUBLIC]).fetchall()[0][0]:
            log.warning("the database has a DuckDB schema named %s (made by an earlier "
                        "version): clients' %s is DuckDB's %s now, and that schema's tables "
                        "are out of reach; copy them into %s with DuckDB while the server "
                        "is stopped", names.PUBLIC, names.PUBLIC, names.DUCKDB_SCHEMA,
                        names.DUCKDB_SCHEMA)
        self.acl = Acl(self.catalog_db, self.database_name, settings.superuser)
        if self.users.get(settings.superuser) is None:   # first start: the bootstrap superuser
            if settings.auth != "trust" and not settings.superuser_password:
                self.catalog_db.close()
                self.con.close()
                raise StartupRefused(
                    f"--auth {settings.auth} needs a password for the new superuser "
                    f"{settings.superuser} (without one nobody could log in): set "
                    f"QUACKML_SUPERUSER_PASSWORD or --superuser-password for the first start")
            self.users.create(settings.superuser, settings.superuser_password or None,
                              superuser=True, can_login=True)
        views.register_functions(self.con, views.CatalogRows(self.store, self.users, self.acl))
        views.create_views(self.con, names.DATABASE_SQL)
        self.activity = Activity()
        self.activity.register(self.con)
        catalog_views.register_functions(self.con, self.store)
        pgcatalog.install(self.con, settings.superuser)
        functions.install(self.con)
        if settings.samples and self.store.meta("samples_loaded") is None:
            from server.samples import load_samples
            self.store.set_meta("samples_loaded", ",".join(load_samples(self.con)))
        self.sandbox = sandbox(self.con, settings)
        # moves with every statement that may change what a name binds to (DDL, ATTACH,
        # SET, transaction ends) and with function (un)registration: firewall caches
        self._ddl_generation = 0
        self._ddl_lock = threading.Lock()
        self._reserved: tuple[int, frozenset[str]] | None = None
        self.cache = ModelCache(settings.model_cache_mb * 1024 * 1024,
                                scoring_workers=settings.scoring_workers,
                                scoring_pool=settings.scoring_pool)
        self.functions = PredictionFunctions(self.con, self.cache)
        self._functions_lock = threading.Lock()
        self.switch = VersionSwitch()
        self._model_views: tuple[tuple[int, int], frozenset[str]] | None = None
        self.pool = TrainingPool(settings.training_workers, self._on_training_finished,
                                 settings.training_queue_size,
                                 ray_address=settings.ray_address
                                 if settings.training_backend == "ray" else None)
        from server.models.evaluate import register_evaluate_model
        from server.models.explain import register_explain_model
        register_explain_model(self)
        register_evaluate_model(self)

    # -- paths -----------------------------------------------------------
    def files(self, record: ModelRecord) -> VersionFiles:
        """The files of a model version (catalog.files owns their layout)."""
        return VersionFiles.of(self.data_dir, record.model_dir)

    def catalog_changed(self) -> None:
        """Something may bind differently now: cached privilege decisions are stale."""
        with self._ddl_lock:
            self._ddl_generation += 1

    def decision_generation(self) -> tuple[int, int]:
        return self._ddl_generation, self.catalog_db.generation

    def reserved_names(self) -> frozenset[str]:
        """Names no user object may take (built-ins, models' functions, server objects),
        read again after DDL or a function (un)registration (the DDL generation: DuckDB's
        own catalog version moves with every write too)."""
        version = self._ddl_generation
        if self._reserved is None or self._reserved[0] != version:
            # a cursor of its own: sessions call this from their threads, and a DuckDB
            # connection runs one call at a time
            with self.con.cursor() as cursor:
                names = reserved_names(cursor, pgcatalog.FUNCTIONS | pgcatalog.RELATIONS)
            self._reserved = (version, names)
        return self._reserved[1]

    # -- sessions ----------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A session's own DuckDB connection, with the per-session memory limit
        (DuckDB's connection-local operator_memory_limit) applied."""
        cursor = self.con.cursor()
        if self.settings.session_memory_limit:
            cursor.execute("SET operator_memory_limit = ?", [self.settings.session_memory_limit])
        return cursor

    # -- models --------------------------------------------------------------
    def publish(self, record: ModelRecord) -> None:
        """Make the model's functions and cache entry match the record."""
        artifact = None
        if record.state is ModelState.READY and record.artifact_file:
            artifact = str(self.files(record).folder / record.artifact_file)
        self.cache.set_entry(record.function_name, CacheEntry(
            record.qualified_name, record.state, record.failure_reason, artifact,
            record.artifact_sha256))

    def register_functions(self, record: ModelRecord) -> None:
        assert record.target_type is not None and record.problem_type is not None
        if record.model_type == "FORECAST":
            from automl.forecast import output_type
            settings = record.settings
            returns = output_type(settings.horizon, settings.frequency, settings.percentiles,
                                  record.objective, record.features[-1].type)
            with self._functions_lock:
                self.functions.register_forecast(record.function_name, returns)
            self.catalog_changed()
            return
        with self._functions_lock:
            self.functions.register(record.function_name, record.features, record.target_type,
                                    record.problem_type.is_classification)
        self.catalog_changed()

    def unregister_functions(self, record: ModelRecord) -> None:
        with self._functions_lock:
            self.functions.unregister(record.function_name)
        self.catalog_changed()
        self.cache.remove(record.function_name)

    def job_for(self, record: ModelRecord) -> TrainingJob:
        target = (Column(record.target, record.target_type)
                  if record.target is not None and record.target_type is not None else None)
        return TrainingJob(
            model_name=record.qualified_name,
            snapshot_path=str(self.files(record).snapshot),
            features=record.features,
            target=target,
            problem_type=record.problem_type,
            objective=record.objective,
            time_budget_s=float(record.settings.max_runtime),
            output_dir=str(self.files(record).folder),
            progress_path=str(self.files(record).progress),
            n_jobs=self.settings.training_threads,
            auto=record.auto,
            model_type=record.model_type,
            hyperparameters=record.hyperparameters,
            preprocessors=record.preprocessors,
            horizon=record.settings.horizon,
            frequency=record.settings.frequency,
            percentiles=record.settings.percentiles,
        )

    def start_training(self, record: ModelRecord, reserved: bool = False) -> None:
        self.pool.submit(record.qualified_name, self.job_for(record),
                         str(self.files(record).result), reserved)

    def _on_training_finished(self, key: str, outcome: Outcome) -> None:
        schema, name = key.split(".", 1)
        now = datetime.now(UTC)
        record = self.store.training(schema, name)
        if record is None:
            return
        updated: ModelRecord | None
        if isinstance(outcome, TrainingResult):
            updated = self.store.mark_ready(schema, name, record.version, outcome, now)
            log.info("model %s version %d READY: validation %s = %.4f (%s, %d trials, %.1f s)",
                     key, record.version, outcome.metric_name, outcome.metric_value,
                     outcome.best_learner, outcome.trials, outcome.seconds)
        else:
            assert isinstance(outcome, TrainingFailure)
            updated = self.store.mark_failed(schema, name, record.version, outcome.message, now)
            log.warning("model %s version %d FAILED: %s", key, record.version, outcome.message)
        if updated is None:
            return
        if updated.active:
            self.publish(updated)
        else:
            from server.models.lifecycle import settle_replacement
            updated = settle_replacement(self, updated)
        if updated.active and updated.state is ModelState.READY and \
                updated.model_type != "FORECAST":
            # Load and compile now, in the background, not at the first query.
            self.cache.warm(updated.function_name)
        if updated.state is ModelState.READY and not updated.settings.s3_garbage_collect:
            return
        snapshot = self.files(updated).snapshot
        if updated.state is ModelState.READY and snapshot.exists():
            snapshot.unlink()

    def switch_to(self, record: ModelRecord) -> ModelRecord:
        """Make ``record`` (READY) the model's active version, atomically for queries: no
        statement scores with two versions (see server.models.switch)."""
        with self.switch.switching():
            record = self.store.activate(record)
            self.publish(record)
        if record.model_type != "FORECAST":
            self.cache.warm(record.function_name)
        return record

    def calls_models(self, tokens: Sequence[Token]) -> bool:
        """Whether a statement may call a model function: by name, or through a view
        whose definition names one."""
        if not self.functions.any_registered():
            return False
        views = self._views_calling_models()
        return any(t.text.lower() in views or self.functions.is_model_function(t.text)
                   for t in tokens)

    def _views_calling_models(self) -> frozenset[str]:
        generation = self.decision_generation()
        if self._model_views is None or self._model_views[0] != generation:
            found = set()
            # a cursor of its own: sessions call this from their threads, and a DuckDB
            # connection runs one statement at a time
            with self.con.cursor() as cursor:
                views = cursor.execute(
                    "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
            for view, sql in views:
                if any(self.functions.is_model_function(word)
                       for word in _WORD.findall(str(sql or ""))):
                    found.add(str(view).lower())
            self._model_views = (generation, frozenset(found))
        return self._model_views[1]

    def remove_version_files(self, record: ModelRecord) -> None:
        """Remove one version's folder."""
        shutil.rmtree(self.files(record).folder, ignore_errors=True)

    def remove_files(self, record: ModelRecord) -> None:
        """Remove the model's folder with every version in it."""
        shutil.rmtree(self.files(record).model_folder, ignore_errors=True)

    def recover(self) -> None:
        """Bring functions and training back after a (re)start."""
        for record in self.store.all_versions():
            if record.state is not ModelState.TRAINING:
                continue
            files = self.files(record)
            if files.snapshot.exists():
                for stale in (files.result, files.progress):
                    stale.unlink(missing_ok=True)
                log.info("resuming training of %s version %d from its snapshot",
                         record.qualified_name, record.version)
                self.start_training(record)
            else:
                self.store.mark_failed(
                    record.schema_name, record.model_name, record.version,
                    "the server stopped during training and the training snapshot is gone",
                    datetime.now(UTC))
        for record in self.store.all():   # each model's active (or only) version
            try:
                self.register_functions(record)
            except duckdb.Error as exc:
                log.error("cannot register functions of %s: %s", record.qualified_name, exc)
            self.publish(record)

    def close(self, report: Callable[[str], None] = lambda _: None) -> None:
        """Kill training workers (their models stay TRAINING and are resumed at the
        next start), checkpoint the WAL into the database file and close it;
        ``report`` gets one line per phase."""
        killed = self.pool.shutdown()
        report(f"training workers stopped ({killed} running "
               f"job{'' if killed == 1 else 's'} will resume at the next start)")
        self.cache.close()
        report("scoring workers stopped")
        self.catalog_db.close()
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            log.warning("CHECKPOINT at shutdown failed: %s", exc)
        self.con.close()
        report("database checkpointed and closed")

