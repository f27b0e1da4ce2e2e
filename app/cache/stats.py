"""Counters the app can expose: per tier hits and misses, and loads.

Increments are plain attribute additions, not locked: under heavy concurrency a
count may lose an increment now and then, which is fine for metrics and keeps
the hit path free of locks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import orjson

from app.cache.storage import SharedStorage, Storage, StorageUnavailable


def process_name() -> str:
    """The name this process's counters are reported under: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class TierStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


@dataclass(slots=True)
class CacheStats:
    tiers: dict[str, TierStats] = field(default_factory=dict[str, TierStats])
    loads: int = 0
    load_errors: int = 0
    negative_hits: int = 0
    lock_waits: int = 0
    lock_wait_timeouts: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def reset(self) -> None:
        for tier in self.tiers.values():
            tier.hits = tier.misses = tier.errors = 0
        self.loads = self.load_errors = self.negative_hits = 0
        self.lock_waits = self.lock_wait_timeouts = 0


def by_process(storages: Iterable[Storage], own: CacheStats) -> dict[str, dict[str, object]]:
    """Counters by process: this one's (``own``), and those every other process
    published through the shared storages (each reports every
    ``STATS_INTERVAL`` seconds while its listener runs)."""
    found: dict[str, dict[str, object]] = {}
    for storage in storages:
        if isinstance(storage, SharedStorage):
            try:
                reports = storage.reports()
            except StorageUnavailable:
                continue
            found.update({name: orjson.loads(data) for name, data in reports.items()})
    found[process_name()] = own.as_dict()
    return found
