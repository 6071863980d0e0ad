"""One model cache per server, shared by every session.

Entries are keyed by the prediction function's name. Each entry knows the
model's state; an artifact is loaded (after its sha256 matched the catalog)
on first use and kept until the model is dropped or replaced, or evicted
least-recently-used when the cache's byte bound is exceeded.

A loaded model carries its evaluator (see :mod:`inference.evaluators`):

- the compiled trees stored beside the artifact when they are there (a
  model is compiled once, never again after a restart);
- otherwise pylignum's interpreter (or the library's predict for models
  pylignum cannot take) at once, while the trees are compiled in a
  background thread; the compiled evaluator replaces it when ready.
  :meth:`ModelCache.warm` starts that as soon as a model becomes READY;
- for models only the library can score, with a scoring pool configured and
  the model kind's default (or ``--scoring-pool``) asking for it, the
  library's predict in the worker processes of :mod:`inference.procpool`
  (started at the first such model; warming loads the model in every
  worker). Dropping, replacing or evicting the model releases the workers'
  copies too.

Invariants: the cache's lock is held only to look entries up and update
them, never while an artifact loads, a model compiles or an evaluator runs;
an artifact is loaded at most once at a time per function; a model dropped
or replaced while it loaded or compiled never re-enters the cache.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from catalog.artifact import ModelArtifact, read_artifact
from catalog.errors import ModelNotFound, ModelNotReady
from catalog.spec import ModelState
from inference import compiled
from inference.errors import CompilationFailed
from inference.evaluators import Evaluator, LibraryEvaluator, tree_library
from inference.explain import Explainer
from inference.procpool import PoolEvaluator, ScoringPool, wants_pool

log = logging.getLogger("quackml.inference")


@dataclass(frozen=True)
class CacheEntry:
    model_name: str
    state: ModelState
    failure_reason: str | None
    artifact_path: str | None
    artifact_sha256: str | None


@dataclass
class LoadedModel:
    """An artifact and the evaluator that scores it (swapped once, to the compiled one)."""

    artifact: ModelArtifact
    evaluator: Evaluator
    size: int
    compile_done: threading.Event = field(default_factory=threading.Event)
    compile_error: str | None = None
    # The artifact's labels as an Arrow array, per return type (built at the first call).
    labels_arrow: dict[pa.DataType, pa.Array] = field(default_factory=dict)
    _explainer: Explainer | None = None

    def explainer(self) -> Explainer:
        """The model's per-row explainer (``f_explain``), built at the first call."""
        if self._explainer is None:
            self._explainer = Explainer(self.artifact)
        return self._explainer


class ModelCache:
    def __init__(self, max_bytes: int, compile_trees: bool = True, compiler: str = "auto",
                 scoring_workers: int = 0, scoring_pool: str = "auto"):
        """``scoring_workers`` 0: no scoring pool (every library model in process);
        ``scoring_pool``: "auto" (the per-kind defaults of inference.procpool), "on", "off"."""
        self._max_bytes = max_bytes
        self._compile_trees = compile_trees
        self.compiler = compiler
        self._scoring_workers = scoring_workers
        self._scoring_mode = scoring_pool
        self._pool: ScoringPool | None = None
        self._entries: dict[str, CacheEntry] = {}
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    def set_entry(self, function_name: str, entry: CacheEntry) -> None:
        """Record (or replace) a model's state; drops any loaded artifact."""
        with self._lock:
            self._entries[function_name] = entry
            dropped = self._loaded.pop(function_name, None)
        _release([dropped])

    def remove(self, function_name: str) -> None:
        with self._lock:
            self._entries.pop(function_name, None)
            dropped = self._loaded.pop(function_name, None)
            self._load_locks.pop(function_name, None)
        _release([dropped])

    def ready_entry(self, function_name: str) -> CacheEntry:
        """The entry of a READY model (FORECAST models keep their rows, not a model, in
        the artifact file); raises ModelNotReady or ModelNotFound."""
        with self._lock:
            entry = self._entries.get(function_name)
        if entry is None:
            raise ModelNotFound(f'no model behind function "{function_name}"')
        if entry.state is not ModelState.READY or entry.artifact_path is None:
            reason = f": {entry.failure_reason}" if entry.failure_reason else ""
            raise ModelNotReady(
                f'model "{entry.model_name}" is not ready (state {entry.state.value}{reason})')
        return entry

    def get(self, function_name: str) -> LoadedModel:
        """The loaded model; raises ModelNotReady or ModelNotFound."""
        with self._lock:
            entry = self._entries.get(function_name)
            if entry is None:
                raise ModelNotFound(f'no model behind function "{function_name}"')
            hit = self._loaded.get(function_name)
            if hit is not None:
                self._loaded.move_to_end(function_name)
                return hit
            load_lock = self._load_locks.setdefault(function_name, threading.Lock())
        if entry.state is not ModelState.READY:
            reason = f": {entry.failure_reason}" if entry.failure_reason else ""
            raise ModelNotReady(
                f'model "{entry.model_name}" is not ready (state {entry.state.value}{reason})')
        assert entry.artifact_path is not None and entry.artifact_sha256 is not None
        with load_lock:
            with self._lock:
                hit = self._loaded.get(function_name)
                if hit is not None:
                    return hit
            loaded, needs_compile = self._load(entry)
            evicted: list[LoadedModel] = []
            with self._lock:
                current = self._entries.get(function_name) is entry
                if current:
                    self._loaded[function_name] = loaded
                    evicted = self._evict()
            _release(evicted if current else [loaded])  # a dropped load: its pool copies
        if needs_compile and current:
            threading.Thread(target=self._compile, args=(function_name, entry, loaded),
                             name=f"compile-{function_name}", daemon=True).start()
        else:
            loaded.compile_done.set()
        return loaded

    def prepare(self, function_name: str, timeout: float | None = None) -> LoadedModel:
        """Load the model and wait until its compilation (if any) has finished."""
        loaded = self.get(function_name)
        loaded.compile_done.wait(timeout)
        return loaded

    def warm(self, function_name: str) -> None:
        """Load and compile the model in the background (e.g. as soon as it is READY)."""
        def run() -> None:
            try:
                loaded = self.prepare(function_name)
                if isinstance(loaded.evaluator, PoolEvaluator):
                    loaded.evaluator.preload()
            except (ModelNotFound, ModelNotReady):
                pass  # dropped or replaced meanwhile: nothing to warm
            except Exception:  # a thread must not die silently
                log.exception("warming the model behind %s failed", function_name)

        threading.Thread(target=run, name=f"warm-{function_name}", daemon=True).start()

    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(m.size for m in self._loaded.values())

    def loaded_functions(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    @property
    def pool(self) -> ScoringPool | None:
        """The scoring pool, once a model needed it."""
        return self._pool

    def close(self) -> None:
        """Stop the scoring pool's workers (the server is stopping)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._scoring_workers = 0
        if pool is not None:
            pool.close()

    # -- internals ---------------------------------------------------------
    def _load(self, entry: CacheEntry) -> tuple[LoadedModel, bool]:
        """Read the artifact and pick its evaluator; True when it should be compiled."""
        assert entry.artifact_path is not None and entry.artifact_sha256 is not None
        path = entry.artifact_path
        artifact = read_artifact(path, entry.artifact_sha256)
        size = artifact.stored_bytes
        evaluator: Evaluator = LibraryEvaluator(artifact)
        if not self._compile_trees or tree_library(artifact) is None:
            if tree_library(artifact) is None:
                evaluator = self._library_evaluator(artifact, entry)
            return LoadedModel(artifact, evaluator, size), False
        try:
            cached = compiled.load_cached(artifact, path, entry.artifact_sha256)
        except (CompilationFailed, RuntimeError, ValueError) as exc:
            # E.g. files compiled by another pylignum build or machine: compile again.
            log.warning("compiled form of %s unusable, compiling again: %s",
                        entry.model_name, exc)
            cached = None
        if cached is not None:
            return LoadedModel(artifact, cached, size + compiled.stored_bytes(path)), False
        try:
            interpreted = compiled.interpreter(artifact)
        except (CompilationFailed, RuntimeError, ValueError) as exc:
            log.warning("pylignum cannot serve %s, using the library: %s",
                        entry.model_name, exc)
            return LoadedModel(artifact, self._library_evaluator(artifact, entry), size), False
        if interpreted is not None:
            evaluator = interpreted
        return LoadedModel(artifact, evaluator, size), True

    def _library_evaluator(self, artifact: ModelArtifact, entry: CacheEntry) -> Evaluator:
        """The library's predict: in the scoring pool when configured and wanted."""
        assert entry.artifact_path is not None and entry.artifact_sha256 is not None
        if self._scoring_workers <= 0 or not wants_pool(artifact, self._scoring_mode):
            return LibraryEvaluator(artifact)
        with self._lock:
            if self._pool is None:
                self._pool = ScoringPool(self._scoring_workers)
            pool = self._pool
        return PoolEvaluator(artifact, entry.artifact_path, entry.artifact_sha256, pool,
                             entry.model_name)

    def _compile(self, function_name: str, entry: CacheEntry, loaded: LoadedModel) -> None:
        assert entry.artifact_path is not None and entry.artifact_sha256 is not None
        try:
            evaluator = compiled.compile_and_store(loaded.artifact, entry.artifact_path,
                                                   entry.artifact_sha256, self.compiler)
        except (CompilationFailed, RuntimeError, ValueError, OSError) as exc:
            loaded.compile_error = str(exc)
            with self._lock:
                current = self._entries.get(function_name) is entry
            if current:
                log.warning("model %s is served by %s: %s", entry.model_name,
                            loaded.evaluator.kind, exc)
            else:  # dropped or replaced while compiling: its folder may be gone
                log.debug("compilation of dropped model %s abandoned: %s",
                          entry.model_name, exc)
        else:
            evicted: list[LoadedModel] = []
            with self._lock:
                if self._entries.get(function_name) is entry:
                    loaded.evaluator = evaluator
                    loaded.size += compiled.stored_bytes(entry.artifact_path)
                    evicted = self._evict()
            _release(evicted)
            log.info("model %s compiled (%s)", entry.model_name, evaluator.kind)
        finally:
            loaded.compile_done.set()

    def _evict(self) -> list[LoadedModel]:
        """Drop least-recently-used models beyond the bound (under the lock); the caller
        releases the returned models' pool copies after the lock."""
        total = sum(m.size for m in self._loaded.values())
        out = []
        while total > self._max_bytes and len(self._loaded) > 1:
            _, evicted = self._loaded.popitem(last=False)
            total -= evicted.size
            out.append(evicted)
        return out


def _release(models: Sequence[LoadedModel | None]) -> None:
    """Make the scoring pool's workers forget these models (never under the cache's lock)."""
    for model in models:
        if model is not None and isinstance(model.evaluator, PoolEvaluator):
            model.evaluator.release()
