"""The in-process tier: a bounded LRU dict with per-entry expiry.

Reads take no lock: under the GIL each ``OrderedDict`` operation is atomic, and
a read that races an eviction simply misses. Writes take a lock so that the
size bound holds exactly. After ``fork`` the tier starts empty with a new lock
(see :func:`app.cache.manager._after_fork_in_child`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from time import monotonic

from app.cache.storage import MISS, Storage


class LocalStorage(Storage):
    """At most ``max_size`` entries; the least recently used goes first."""

    def __init__(self, max_size: int = 10_000, ttl: timedelta = timedelta(seconds=30)) -> None:
        super().__init__(ttl)
        if max_size < 1:
            raise ValueError(f"LocalStorage max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._data: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> object:
        """The value, or :data:`MISS` when absent or expired."""
        entry = self._data.get(key)
        if entry is None:
            return MISS
        if entry[0] <= monotonic():
            self._drop_if_same(key, entry)
            return MISS
        try:  # noqa: SIM105 - contextlib.suppress costs ~0.3 us here, on the hot path
            self._data.move_to_end(key)
        except KeyError:  # evicted or removed by another thread just now
            pass
        return entry[1]

    def set(self, key: str, value: object, ttl_seconds: float) -> None:
        entry = (monotonic() + ttl_seconds, value)
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)

    def set_many(
        self, items: list[tuple[str, object, float]], *, unless: Callable[[], bool] | None = None
    ) -> None:
        """Store ``(key, value, ttl_seconds)`` triples under one lock acquisition,
        unless ``unless()``, checked under that lock, says the values went stale."""
        now = monotonic()
        data = self._data
        with self._lock:
            if unless is not None and unless():
                return
            for key, value, ttl_seconds in items:
                data[key] = (now + ttl_seconds, value)
                data.move_to_end(key)
            while len(data) > self.max_size:
                data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def reset_after_fork(self) -> None:
        """A fresh, empty tier with a lock no thread of the parent can hold."""
        self._data = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def _drop_if_same(self, key: str, entry: tuple[float, object]) -> None:
        with self._lock:
            if self._data.get(key) is entry:
                del self._data[key]
