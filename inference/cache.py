"""One model cache per server, shared by every session.

Entries are keyed by the prediction function's name. Each entry knows the
model's state; an artifact is loaded (after its sha256 matched the catalog)
on first use and kept until the model is dropped or replaced, or evicted
least-recently-used when the cache's byte bound is exceeded.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

from catalog.artifact import ModelArtifact, read_artifact
from catalog.errors import ModelNotFound, ModelNotReady
from catalog.spec import ModelState


@dataclass(frozen=True)
class CacheEntry:
    model_name: str
    state: ModelState
    failure_reason: str | None
    artifact_path: str | None
    artifact_sha256: str | None


class ModelCache:
    def __init__(self, max_bytes: int):
        self._max_bytes = max_bytes
        self._entries: dict[str, CacheEntry] = {}
        self._loaded: OrderedDict[str, tuple[ModelArtifact, int]] = OrderedDict()
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

    def get(self, function_name: str) -> ModelArtifact:
        """The loaded artifact; raises ModelNotReady or ModelNotFound."""
        with self._lock:
            entry = self._entries.get(function_name)
            if entry is None:
                raise ModelNotFound(f'no model behind function "{function_name}"')
            hit = self._loaded.get(function_name)
            if hit is not None:
                self._loaded.move_to_end(function_name)
                return hit[0]
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
                    return hit[0]
            artifact = read_artifact(entry.artifact_path, entry.artifact_sha256)
            size = os.path.getsize(entry.artifact_path)
            with self._lock:
                if self._entries.get(function_name) is entry:
                    self._loaded[function_name] = (artifact, size)
                    self._evict()
            return artifact

    def _evict(self) -> None:
        total = sum(size for _, size in self._loaded.values())
        while total > self._max_bytes and len(self._loaded) > 1:
            _, (_, size) = self._loaded.popitem(last=False)
            total -= size
