"""Filling the tiers: writing back what a later tier held, and loading, once,
what no tier held.

A miss everywhere loads the value *once*: one thread per process leads (the
in-process single flight, :mod:`app.cache.flight`) and one process leads across
all of them (the coordinator's lock, with a TTL and a token); the others wait
for its fill notice, bounded by ``lock_wait``, then read the value it stored.
The leader stores what it loaded in every tier: in the coordinator only if the
key was not invalidated since it took the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from time import monotonic
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from app.cache.flight import Flight, Flights
from app.cache.invalidation import Invalidations
from app.cache.local_storage import LocalStorage
from app.cache.node import Node
from app.cache.plan import Tier, TierPlan
from app.cache.serializer import Serializer
from app.cache.stats import CacheStats
from app.cache.storage import (
    MISS,
    NEGATIVE,
    FillWatch,
    Lock,
    LockHeld,
    SharedStorage,
    StorageUnavailable,
)

log = logging.getLogger("app.cache")

ModelT = TypeVar("ModelT")

#: How a negative entry is written to a shared storage. JSON never starts with a NUL byte.
NEGATIVE_BYTES = b"\x00"


def unwrap(value: object) -> Any:
    """A tier's value as callers get it: ``None`` for a negative entry."""
    return None if value is NEGATIVE else value


class Loader:
    """Fills one manager's tiers. ``lock_timeout`` bounds how long a crashed
    loader can hold a key's lock; ``lock_wait`` how long a caller waits for
    another process's load before it loads for itself."""

    def __init__(
        self,
        serializer: Serializer,
        stats: CacheStats,
        flights: Flights,
        invalidations: Invalidations,
        *,
        lock_timeout: float,
        lock_wait: float,
    ) -> None:
        self.serializer = serializer
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self._stats = stats
        self._flights = flights
        self._invalidations = invalidations

    # -- what a shared tier holds -------------------------------------------

    def decode(self, plan: TierPlan, key: str, raw: bytes | None) -> object:
        """A shared tier's bytes as a value, :data:`NEGATIVE`, or :data:`MISS`."""
        if raw is None:
            return MISS
        if raw == NEGATIVE_BYTES:
            return NEGATIVE
        try:
            return self.serializer.loads(raw, plan.node_class.adapter)
        except ValidationError as exc:
            log.warning(
                "cache: %s holds a value that no longer validates (%d errors); treating it as a miss",
                key,
                exc.error_count(),
            )
            return MISS

    def write_back(
        self,
        plan: TierPlan,
        tiers: Sequence[Tier],
        found: list[tuple[str, object, bytes]],
        invalidations_before: int,
    ) -> None:
        """Write ``(key, value, raw)`` found in a later tier into ``tiers``, the
        earlier ones; ``invalidations_before`` is the invalidation count noted
        before the read."""
        if not found:
            return
        invalidations = self._invalidations
        for tier in tiers:
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                # Skipped if an invalidation arrived while we read: the value may be stale.
                storage.set_many(
                    [(key, value, plan.ttl(tier, value)) for key, value, _ in found],
                    unless=lambda: invalidations.count != invalidations_before,
                )
            else:
                items = [(key, raw, plan.ttl(tier, value)) for key, value, raw in found]
                try:
                    cast("SharedStorage", storage).set_many(items)
                except StorageUnavailable:
                    tier.stats.errors += 1

    # -- one key ------------------------------------------------------------

    def load(self, node: Node[ModelT], plan: TierPlan, key: str) -> ModelT | None:
        """Load ``node`` once in this process (the single flight) and once across
        processes (the coordinator's lock), and store it in every tier."""
        flight, leader = self._flights.join(key)
        if not leader:
            return flight.wait()
        try:
            value = self._load_coordinated(node, plan, key)
        except BaseException as exc:
            flight.fail(exc)
            raise
        else:
            flight.succeed(value)
            return value
        finally:
            self._flights.finish(key, flight)

    def _load_coordinated(self, node: Node[ModelT], plan: TierPlan, key: str) -> ModelT | None:
        """Load under the shared lock, or wait (bounded) for whoever holds it."""
        shared = plan.coordinator
        if shared is None:
            return self._load_and_store(node, plan, key, None)
        # Watch before the first try_lock, and keep one watch for the whole wait:
        # a fill notice that lands between a refused lock and the wait is kept,
        # and the polling interval (while the listener is down) keeps growing.
        watch = shared.watch(key)
        try:
            return self._lock_or_wait(node, plan, key, shared, watch)
        finally:
            watch.close()

    def _lock_or_wait(
        self, node: Node[ModelT], plan: TierPlan, key: str, shared: SharedStorage, watch: FillWatch
    ) -> ModelT | None:
        deadline = monotonic() + self.lock_wait
        waited = False
        while True:
            try:
                lock = shared.try_lock(key, self.lock_timeout)
            except StorageUnavailable:
                return self._load_and_store(node, plan, key, None)
            if isinstance(lock, Lock):
                try:
                    stored = self._read_coordinator(plan, key)  # filled while we queued?
                    if stored is not MISS:
                        return unwrap(stored)
                    return self._load_and_store(node, plan, key, lock)
                finally:
                    self._unlock(shared, key, lock)
            if not waited:
                self._stats.lock_waits += 1
                waited = True
            stored = self._read_coordinator(plan, key)
            if stored is not MISS:
                return unwrap(stored)
            remaining = deadline - monotonic()
            if remaining <= 0:
                self._stats.lock_wait_timeouts += 1
                log.warning(
                    "cache: waited %.1fs for %s to be loaded elsewhere; loading it here",
                    self.lock_wait,
                    key,
                )
                # No lock, but still the generation check: if the key is
                # invalidated during this load, its value is not stored.
                try:
                    generation: Lock | None = shared.read_generation(key)
                except StorageUnavailable:
                    generation = None
                return self._load_and_store(node, plan, key, generation)
            # A holder that died publishes nothing: wake when its lock expires.
            watch.wait(min(remaining, lock.expires_in + 0.005))
            stored = self._read_coordinator(plan, key)  # woken: filled, or the lock was freed
            if stored is not MISS:
                return unwrap(stored)

    def _read_coordinator(self, plan: TierPlan, key: str) -> object:
        shared = cast("SharedStorage", plan.coordinator)
        invalidations_before = self._invalidations.count
        try:
            raw = shared.get(key)
        except StorageUnavailable:
            return MISS
        value = self.decode(plan, key, raw)
        if value is not MISS:
            found = [(key, value, cast("bytes", raw))]
            self.write_back(plan, plan.before_coordinator, found, invalidations_before)
        return value

    def _load_and_store(
        self, node: Node[ModelT], plan: TierPlan, key: str, lock: Lock | None
    ) -> ModelT | None:
        invalidations_before = self._invalidations.count
        self._stats.loads += 1
        try:
            value = node.load()
        except Exception:
            self._stats.load_errors += 1
            raise
        self._store(plan, [(key, value, lock)], invalidations_before)
        return value

    def _store(
        self,
        plan: TierPlan,
        loaded: list[tuple[str, Any, Lock | None]],
        invalidations_before: int,
    ) -> None:
        # Not write_back(): a loaded value is encoded here, once, for every shared
        # tier; the coordinator stores it only through the lock's generation check;
        # and the invalidation count is checked before a local tier's lock is
        # taken, where write_back() checks it under that lock.
        entries = [(key, NEGATIVE if value is None else value, lock) for key, value, lock in loaded]
        encoded: list[bytes] | None = None
        for tier in plan.tiers:
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                if self._invalidations.count == invalidations_before:
                    storage.set_many(
                        [(key, value, plan.ttl(tier, value)) for key, value, _ in entries]
                    )
                continue
            if encoded is None:
                encoded = [
                    NEGATIVE_BYTES if value is NEGATIVE else self.serializer.dumps(value)
                    for _, value, _ in entries
                ]
            shared = cast("SharedStorage", storage)
            locked = [
                (key, data, plan.ttl(tier, value), lock)
                for (key, value, lock), data in zip(entries, encoded, strict=True)
                if lock is not None and shared is plan.coordinator
            ]
            unlocked = [
                (key, data, plan.ttl(tier, value))
                for (key, value, lock), data in zip(entries, encoded, strict=True)
                if lock is None or shared is not plan.coordinator
            ]
            try:
                if locked:
                    shared.store_loaded_many(locked)
                if unlocked:
                    shared.set_many(unlocked)
            except StorageUnavailable:
                tier.stats.errors += 1

    def _unlock(self, shared: SharedStorage, key: str, lock: Lock) -> None:
        with suppress(StorageUnavailable):  # if Redis is down, the lock's TTL frees it
            shared.unlock(key, lock)

    # -- many keys ----------------------------------------------------------

    def load_many(
        self,
        plan: TierPlan,
        nodes: Sequence[Node[Any]],
        keys: list[str],
        missing: list[int],
        results: list[object],
    ) -> None:
        """Load ``nodes[i]`` for each ``i`` in ``missing`` into ``results[i]``
        (:data:`NEGATIVE` for ``None``): with the node class's ``load_many`` when
        it has one, else one by one."""
        leading: list[int] = []
        following: list[int] = []
        flights: dict[int, Flight] = {}
        for index in missing:
            flight, leader = self._flights.join(keys[index])
            flights[index] = flight
            (leading if leader else following).append(index)
        try:
            if leading:
                loaded = self._load_leading(plan, nodes, keys, leading)
                for index in leading:
                    flights[index].succeed(loaded[index])
                    results[index] = NEGATIVE if loaded[index] is None else loaded[index]
        except BaseException as exc:
            for index in leading:
                flights[index].fail(exc)
            raise
        finally:
            for index in leading:
                self._flights.finish(keys[index], flights[index])
        for index in following:
            value = flights[index].wait()
            results[index] = NEGATIVE if value is None else value

    def _load_leading(  # noqa: PLR0912
        self, plan: TierPlan, nodes: Sequence[Node[Any]], keys: list[str], indexes: list[int]
    ) -> dict[int, Any]:
        load_many = cast(
            "Callable[[list[Node[Any]]], Sequence[Any]] | None",
            getattr(plan.node_class, "load_many", None),
        )
        if load_many is None:
            return {i: self._load_coordinated(nodes[i], plan, keys[i]) for i in indexes}
        invalidations_before = self._invalidations.count
        shared = plan.coordinator
        locks: Sequence[Lock | LockHeld | None] = [None] * len(indexes)
        contended: list[int] = []
        if shared is not None:
            try:
                locks = shared.try_lock_many([keys[i] for i in indexes], self.lock_timeout)
            except StorageUnavailable:
                locks = [None] * len(indexes)
            else:
                contended = [
                    i for i, lock in zip(indexes, locks, strict=True) if isinstance(lock, LockHeld)
                ]
        held = [
            (i, lock if isinstance(lock, Lock) else None)
            for i, lock in zip(indexes, locks, strict=True)
            if i not in contended
        ]
        values: dict[int, Any] = {}
        try:
            to_load: list[tuple[int, Lock | None]] = list(held)
            if shared is not None and any(lock is not None for _, lock in held):
                to_load = []
                for (i, lock), stored in zip(
                    held, self._read_many_coordinator(plan, [keys[i] for i, _ in held]), strict=True
                ):
                    if stored is MISS:
                        to_load.append((i, lock))
                    else:
                        values[i] = unwrap(stored)
            if to_load:
                self._stats.loads += len(to_load)
                try:
                    loaded = list(load_many([nodes[i] for i, _ in to_load]))
                except Exception:
                    self._stats.load_errors += len(to_load)
                    raise
                if len(loaded) != len(to_load):
                    raise ValueError(
                        f"{plan.node_class.__qualname__}.load_many returned {len(loaded)} values"
                        f" for {len(to_load)} nodes"
                    )
                self._store(
                    plan,
                    [
                        (keys[i], value, lock)
                        for (i, lock), value in zip(to_load, loaded, strict=True)
                    ],
                    invalidations_before,
                )
                values.update({i: value for (i, _), value in zip(to_load, loaded, strict=True)})
        finally:
            if shared is not None:
                held_locks = [(keys[i], lock) for i, lock in held if lock is not None]
                if held_locks:
                    with suppress(StorageUnavailable):
                        shared.unlock_many(held_locks)
        for index in contended:
            values[index] = self._load_coordinated(nodes[index], plan, keys[index])
        return values

    def _read_many_coordinator(self, plan: TierPlan, keys: list[str]) -> list[object]:
        shared = cast("SharedStorage", plan.coordinator)
        try:
            raws = shared.get_many(keys)
        except StorageUnavailable:
            return [MISS] * len(keys)
        return [self.decode(plan, key, raw) for key, raw in zip(keys, raws, strict=True)]
