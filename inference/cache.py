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
  :meth:`ModelCache.warm` starts that as soon as a model becomes READY.

Invariants: the cache's lock is held only to look entries up and update
them, never while an artifact loads, a model compiles or an evaluator runs;
an artifact is loaded at most once at a time per function; a model dropped
or replaced while it loaded or compiled never re-enters the cache.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from catalog.artifact import ModelArtifact, read_artifact
from catalog.errors import ModelNotFound, ModelNotReady
from catalog.spec import ModelState
from inference import compiled
from inference.errors import CompilationFailed
from inference.evaluators import Evaluator, LibraryEvaluator, tree_library

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


class ModelCache:
    def __init__(self, max_bytes: int, compile_trees: bool = True, compiler: str = "auto"):
        self._max_bytes = max_bytes
        self._compile_trees = compile_trees
        self.compiler = compiler
        self._entries: dict[str, CacheEntry] = {}
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    def set_entry(self, function_name: str, entry: CacheEntry) -> None:
        """Record (or replace) a model's state; drops any loaded artifact."""
        with self._lock:
            self._entries[function_name] = entry
            self._loaded.pop(function_name, None)

    def remove(self, function_name: str) -> None:
        with self._lock:
            self._entries.pop(function_name, None)
            self._loaded.pop(function_name, None)
            self._load_locks.pop(function_name, None)

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
            with self._lock:
                current = self._entries.get(function_name) is entry
                if current:
                    self._loaded[function_name] = loaded
                    self._evict()
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
                self.prepare(function_name)
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

    # -- internals ---------------------------------------------------------
    def _load(self, entry: CacheEntry) -> tuple[LoadedModel, bool]:
        """Read the artifact and pick its evaluator; True when it should be compiled."""
        assert entry.artifact_path is not None and entry.artifact_sha256 is not None
        path = entry.artifact_path
        artifact = read_artifact(path, entry.artifact_sha256)
        size = os.path.getsize(path)
        evaluator: Evaluator = LibraryEvaluator(artifact)
        if not self._compile_trees or tree_library(artifact) is None:
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
            return LoadedModel(artifact, evaluator, size), False
        if interpreted is not None:
            evaluator = interpreted
        return LoadedModel(artifact, evaluator, size), True

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
            with self._lock:
                if self._entries.get(function_name) is entry:
                    loaded.evaluator = evaluator
                    loaded.size += compiled.stored_bytes(entry.artifact_path)
                    self._evict()
            log.info("model %s compiled (%s)", entry.model_name, evaluator.kind)
        finally:
            loaded.compile_done.set()

    def _evict(self) -> None:
        total = sum(m.size for m in self._loaded.values())
        while total > self._max_bytes and len(self._loaded) > 1:
            _, evicted = self._loaded.popitem(last=False)
            total -= evicted.size
