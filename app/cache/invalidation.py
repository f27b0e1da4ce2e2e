"""Invalidation, as one :class:`~app.cache.manager.Manager` sees it.

It sends invalidations (``remove``, ``clear``) through every shared storage, and
receives them through the callbacks a shared storage's listener calls:
``on_invalidate`` (a key removed in some process), ``on_trust`` (the listener
subscribed or lost its subscription) and ``on_tick`` (now and then, while
subscribed: the time to report this process's counters).

It also keeps the *invalidation count*, which a read checks before it writes into
a local tier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from time import monotonic
from typing import cast

import orjson

from app.cache.flight import Flights
from app.cache.local_storage import LocalStorage
from app.cache.plan import TierPlan
from app.cache.stats import CacheStats, process_name
from app.cache.storage import (
    CLEAR_ALL,
    CacheConfigurationError,
    SharedStorage,
    Storage,
    StorageUnavailable,
)

#: Seconds between two reports of a process's counters to the shared storages.
STATS_INTERVAL = 10.0


class Invalidations:
    """One manager's invalidations, sent and received.

    ``count`` is the number of invalidations this process has sent, received or
    may have missed (a ``remove``, a message, a ``clear``, a resubscribe, a
    fork). A read notes it before it goes to a shared tier or calls ``load()``,
    and writes into a local tier only if it has not moved since, so a value read
    just before an invalidation cannot land in a local tier just after it.

    ``set_local_copies_safe`` receives whether every shared storage says
    ``local_copies_safe``: the manager keeps that flag itself, since its
    local-hit path reads it.
    """

    def __init__(
        self,
        storages: Mapping[str, Storage],
        flights: Flights,
        stats: CacheStats,
        set_local_copies_safe: Callable[[bool], None],
    ) -> None:
        self.count = 0
        self._storages = storages
        self._flights = flights
        self._stats = stats
        self._set_local_copies_safe = set_local_copies_safe
        self._last_report = 0.0

    # -- sending ------------------------------------------------------------

    def invalidate(self, plan: TierPlan, keys: list[str], storage_name: str | None) -> None:
        """Drop ``keys`` from every tier of ``plan`` in every process, or from the
        one named tier (for a local tier: in every process)."""
        if storage_name is not None and storage_name not in {tier.name for tier in plan.tiers}:
            raise CacheConfigurationError(
                f"{plan.node_class.__qualname__} is not kept in a storage named {storage_name!r}"
            )
        self.count += 1
        for key in keys:
            self._flights.forget(key)  # a load already under way may have read old data
        tiers = [t for t in plan.tiers if storage_name is None or t.name == storage_name]
        drop_locals = any(isinstance(t.storage, LocalStorage) for t in tiers)
        for tier in tiers:
            if isinstance(tier.storage, LocalStorage):
                for key in keys:
                    tier.storage.delete(key)
        # Tell every process: through each shared storage, dropping its copy
        # where the node keeps one and the call asked for it.
        for name, storage in self._storages.items():
            if not isinstance(storage, SharedStorage):
                continue
            drop_shared = any(t.storage is storage for t in tiers)
            if not (drop_shared or drop_locals):
                continue
            try:
                storage.invalidate(keys, shared_copy=drop_shared, local_copies=drop_locals)
            except StorageUnavailable:
                self._stats.tiers[name].errors += 1

    def clear(self) -> None:
        """Empty every tier; raise :class:`StorageUnavailable` naming the shared
        storages that could not be reached (the others are emptied all the same)."""
        self.count += 1
        unreachable: list[str] = []
        for name, storage in self._storages.items():
            try:
                cast("LocalStorage | SharedStorage", storage).clear()
            except StorageUnavailable:
                unreachable.append(name)
        if unreachable:
            raise StorageUnavailable(f"could not clear {', '.join(unreachable)}")

    # -- the listener's callbacks -------------------------------------------

    def on_invalidate(self, key: str) -> None:
        self.count += 1
        self._flights.forget(key)
        for storage in self._storages.values():
            if isinstance(storage, LocalStorage):
                if key == CLEAR_ALL:
                    storage.clear()
                else:
                    storage.delete(key)

    def on_tick(self) -> None:
        now = monotonic()
        if now - self._last_report < STATS_INTERVAL:
            return
        self._last_report = now
        snapshot = orjson.dumps(self._stats.as_dict())
        for storage in self._storages.values():
            if isinstance(storage, SharedStorage):
                with suppress(StorageUnavailable):
                    storage.report(process_name(), snapshot, STATS_INTERVAL * 3)

    def on_trust(self, safe: bool) -> None:
        if safe:
            # Invalidations may have been missed while unsubscribed: start afresh.
            self.count += 1
            for storage in self._storages.values():
                if isinstance(storage, LocalStorage):
                    storage.clear()
        self.update_trust()

    def update_trust(self) -> None:
        self._set_local_copies_safe(
            all(
                storage.local_copies_safe
                for storage in self._storages.values()
                if isinstance(storage, SharedStorage)
            )
        )

    def reset_after_fork(self) -> None:
        """In a forked child: report the counters afresh, and move the count, as
        for invalidations missed while the child's listener is not subscribed."""
        self._last_report = 0.0
        self.count += 1
