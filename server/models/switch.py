"""The version switch: no query scores with two versions of one model.

A model's functions look their model up at every batch of rows they score
(``inference.cache.ModelCache.get``), so a query that runs while its model
switches versions could score its first batches with one version and the
rest with the other. :class:`VersionSwitch` prevents that with a
readers-writer lock: a statement that calls a model function (by name, or
through a view whose definition calls one) holds it shared while it runs
*and* while its rows are read, and the session materialises such a result
before it returns, so the lock is never held while a client is slow to read;
a switch (a READY replacement, ROLLBACK) takes it exclusively, waits for the
running statements to finish, swaps the model's cache entry and lets the
next statements in. Writers are preferred, so a steady stream of queries
cannot hold a switch off forever. The wait is bounded for DROP (55006 when
queries keep the model busy); a background switch waits as long as it takes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class VersionSwitch:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def switching(self, timeout: float | None = None) -> Iterator[bool]:
        """Exclusive; yields whether it was acquired within ``timeout`` (None: wait)."""
        with self._cond:
            self._writers_waiting += 1
            try:
                acquired = self._cond.wait_for(lambda: not self._readers and not self._writer,
                                               timeout)
                if acquired:
                    self._writer = True
            finally:
                self._writers_waiting -= 1
                if not acquired:
                    self._cond.notify_all()
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._writer = False
                    self._cond.notify_all()
