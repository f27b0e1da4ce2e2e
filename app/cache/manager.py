"""``Manager``: resolves nodes through their storages, loads on a miss, and keeps
every process's local tier honest.

Reading a node walks its storages in order. A hit in a later tier is written
back into the earlier ones. A miss everywhere loads the value *once*: one
thread per process leads (in-process single flight) and one process leads
across all of them (a Redis lock with a TTL and a token); the others wait for
its fill notice, bounded by ``lock_wait``, then read the value it stored.

See ``docs/cache.md`` for the design and how to choose TTLs.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic
from typing import Any, TypeVar, cast

import orjson
from pydantic import ValidationError

from app.cache.flight import Flight, Flights
from app.cache.local_storage import LocalStorage
from app.cache.node import Node
from app.cache.serializer import JSONSerializer, Serializer
from app.cache.stats import CacheStats, TierStats
from app.cache.storage import (
    CLEAR_ALL,
    MISS,
    NEGATIVE,
    CacheConfigurationError,
    FillWatch,
    Lock,
    LockHeld,
    SharedStorage,
    Storage,
    StorageUnavailable,
)

log = logging.getLogger("app.cache")

ModelT = TypeVar("ModelT")

#: Seconds between two reports of a process's counters to the shared storages.
STATS_INTERVAL = 10.0

#: How a negative entry is written to a shared storage. JSON never starts with a NUL byte.
NEGATIVE_BYTES = b"\x00"


@dataclass(frozen=True, slots=True, eq=False)
class _Tier:
    name: str
    storage: Storage
    ttl: float
    stats: TierStats


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """How one node class is read: its key's affixes and its tiers, in order."""

    key_prefix: str
    key_suffix: str
    tiers: tuple[_Tier, ...]
    first_local: LocalStorage | None
    first_local_stats: TierStats | None
    coordinator: SharedStorage | None
    negative_ttl: float
    node_class: type[Node[Any]]
    #: Exactly a local tier, then a shared one: served by a shorter path.
    local_then_shared: bool

    def ttl(self, tier: _Tier, value: object) -> float:
        return min(self.negative_ttl, tier.ttl) if value is NEGATIVE else tier.ttl


class Manager:
    """Operates on nodes through the storages registered with it.

    ``lock_timeout`` bounds how long a crashed loader can hold a key's lock;
    ``lock_wait`` bounds how long a caller waits for another process's load
    before it loads for itself.
    """

    def __init__(
        self,
        serializer: Serializer | None = None,
        *,
        prefix: str = "cache",
        lock_timeout: timedelta = timedelta(seconds=10),
        lock_wait: timedelta = timedelta(seconds=5),
    ) -> None:
        self.serializer: Serializer = serializer or JSONSerializer()
        self.prefix = prefix
        self.lock_timeout = lock_timeout.total_seconds()
        self.lock_wait = lock_wait.total_seconds()
        self.stats = CacheStats()
        self._storages: dict[str, Storage] = {}
        self._plans: dict[type[Node[Any]], _Plan] = {}
        self._flights = Flights()
        self._local_trusted = True
        self._epoch = 0  # bumped by every invalidation seen in this process
        self._last_report = 0.0
        _live_managers.add(self)

    # -- set-up -------------------------------------------------------------

    def register_storage(self, name: str, storage: Storage) -> None:
        if not name or ":" in name or "|" in name:
            raise CacheConfigurationError(
                f"storage name {name!r} must be non-empty, without ':' or '|'"
            )
        if name in self._storages:
            raise CacheConfigurationError(f"a storage named {name!r} is already registered")
        if not isinstance(storage, LocalStorage | SharedStorage):
            raise CacheConfigurationError(
                f"{storage!r} is neither a LocalStorage nor a SharedStorage"
            )
        self._storages[name] = storage
        self.stats.tiers[name] = TierStats()
        if isinstance(storage, SharedStorage):
            storage.attach(self.prefix, self._on_invalidate, self._on_trust, self._on_tick)
        self._update_trust()

    @property
    def all_storage(self) -> dict[str, Storage]:
        """The registered storages by name (a copy)."""
        return dict(self._storages)

    def validate(self, *node_classes: type[Node[Any]]) -> None:
        """Raise :class:`CacheConfigurationError` now if a node names an unknown storage."""
        for node_class in node_classes:
            self._plan_for(node_class)

    def close(self) -> None:
        """Stop the listeners. The manager must not be used afterwards."""
        for storage in self._storages.values():
            if isinstance(storage, SharedStorage):
                storage.close()

    # -- reading ------------------------------------------------------------

    def get(self, node: Node[ModelT]) -> ModelT | None:
        """The node's value from the first tier that has it, loading it on a miss."""
        plan = self._plans.get(type(node)) or self._plan_for(type(node))
        key = plan.key_prefix + node.key() + plan.key_suffix
        local = plan.first_local
        if local is not None and self._local_trusted:
            value = local.get(key)
            if value is not MISS:
                plan.first_local_stats.hits += 1  # pyright: ignore[reportOptionalMemberAccess]
                if value is NEGATIVE:
                    self.stats.negative_hits += 1
                    return None
                return cast("ModelT", value)
            if plan.local_then_shared:
                plan.first_local_stats.misses += 1  # pyright: ignore[reportOptionalMemberAccess]
                return self._get_after_local_miss(node, plan, key, local)
        return self._get_slow(node, plan, key)

    def _get_after_local_miss(
        self, node: Node[ModelT], plan: _Plan, key: str, local: LocalStorage
    ) -> ModelT | None:
        """The usual shape, ``["local", "redis"]``, after a trusted local miss:
        the general walk in :meth:`_get_slow` without its bookkeeping."""
        shared = cast("SharedStorage", plan.coordinator)
        tier = plan.tiers[1]
        epoch = self._epoch
        try:
            raw = shared.get(key)
        except StorageUnavailable:
            tier.stats.errors += 1
            return self._load(node, plan, key)
        value = self._decode(plan, key, raw)
        if value is MISS:
            tier.stats.misses += 1
            return self._load(node, plan, key)
        tier.stats.hits += 1
        local.set_many(
            [(key, value, plan.ttl(plan.tiers[0], value))], unless=lambda: self._epoch != epoch
        )
        if value is NEGATIVE:
            self.stats.negative_hits += 1
            return None
        return cast("ModelT", value)

    def get_many(self, nodes: Sequence[Node[ModelT]]) -> list[ModelT | None]:
        """Values for ``nodes``, in order. Each shared tier is read in one round
        trip (``MGET``); misses are loaded with the node class's ``load_many`` when
        it has one, else one by one."""
        results: list[object] = [MISS] * len(nodes)
        keys: list[str] = []
        groups: dict[_Plan, list[int]] = {}
        for index, node in enumerate(nodes):
            plan = self._plans.get(type(node)) or self._plan_for(type(node))
            keys.append(plan.key_prefix + node.key() + plan.key_suffix)
            groups.setdefault(plan, []).append(index)
        self._ensure_listening()
        for plan, indexes in groups.items():
            missing = self._read_tiers_many(plan, keys, indexes, results)
            if missing:
                self._load_many(plan, nodes, keys, missing, results)
        return [self._unwrap(value) for value in results]  # pyright: ignore[reportReturnType]

    # -- invalidation -------------------------------------------------------

    def remove(self, node: Node[Any], storage_name: str | None = None) -> None:
        """Drop the node's value from every tier in every process, or from the one
        named tier (for a local tier: in every process)."""
        plan = self._plans.get(type(node)) or self._plan_for(type(node))
        self._invalidate(plan, [plan.key_prefix + node.key() + plan.key_suffix], storage_name)

    def remove_many(self, nodes: Sequence[Node[Any]], storage_name: str | None = None) -> None:
        groups: dict[_Plan, list[str]] = {}
        for node in nodes:
            plan = self._plans.get(type(node)) or self._plan_for(type(node))
            groups.setdefault(plan, []).append(plan.key_prefix + node.key() + plan.key_suffix)
        for plan, keys in groups.items():
            self._invalidate(plan, keys, storage_name)

    def clear(self) -> None:
        """Empty every tier: the shared storages, and the local tiers of every
        process. Raises :class:`StorageUnavailable` if a shared storage could not
        be reached; this process's local tiers are emptied all the same."""
        self._epoch += 1
        unreachable: list[str] = []
        for name, storage in self._storages.items():
            try:
                cast("LocalStorage | SharedStorage", storage).clear()
            except StorageUnavailable:
                unreachable.append(name)
        if unreachable:
            raise StorageUnavailable(f"could not clear {', '.join(unreachable)}")

    def process_stats(self) -> dict[str, dict[str, object]]:
        """Counters by process: this one's, and those every other process
        published through the shared storages (each reports every
        ``STATS_INTERVAL`` seconds while its listener runs)."""
        found: dict[str, dict[str, object]] = {}
        for storage in self._storages.values():
            if isinstance(storage, SharedStorage):
                try:
                    reports = storage.reports()
                except StorageUnavailable:
                    continue
                found.update({name: orjson.loads(data) for name, data in reports.items()})
        found[_process_name()] = self.stats.as_dict()
        return found

    # -- internals: reading -------------------------------------------------

    def _get_slow(self, node: Node[ModelT], plan: _Plan, key: str) -> ModelT | None:
        self._ensure_listening()
        epoch = self._epoch
        fallback: object = MISS
        shared_failed = False
        for index, tier in enumerate(plan.tiers):
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                value = storage.get(key)
                if value is MISS:
                    tier.stats.misses += 1
                elif self._local_trusted:
                    tier.stats.hits += 1
                    return self._unwrap(value)
                elif fallback is MISS:
                    fallback = value  # trusted only if no shared tier can answer
                continue
            try:
                raw = cast("SharedStorage", storage).get(key)
            except StorageUnavailable:
                tier.stats.errors += 1
                if fallback is not MISS:
                    return self._unwrap(fallback)
                shared_failed = True
                continue
            value = self._decode(plan, key, raw)
            if value is MISS:
                tier.stats.misses += 1
                continue
            tier.stats.hits += 1
            self._write_back(plan, plan.tiers[:index], [(key, value, cast("bytes", raw))], epoch)
            return self._unwrap(value)
        if shared_failed and fallback is not MISS:
            return self._unwrap(fallback)  # a local copy behind an unreachable shared tier
        return self._load(node, plan, key)

    def _read_tiers_many(  # noqa: PLR0912 - one loop over tiers of two kinds
        self, plan: _Plan, keys: list[str], indexes: list[int], results: list[object]
    ) -> list[int]:
        """Fill ``results`` from the tiers; return the indexes still missing."""
        epoch = self._epoch
        missing = indexes
        fallback: dict[int, object] = {}
        for position, tier in enumerate(plan.tiers):
            if not missing:
                break
            storage = tier.storage
            still: list[int] = []
            if isinstance(storage, LocalStorage):
                for index in missing:
                    value = storage.get(keys[index])
                    if value is MISS:
                        tier.stats.misses += 1
                        still.append(index)
                    elif self._local_trusted:
                        tier.stats.hits += 1
                        results[index] = value
                    else:
                        fallback.setdefault(index, value)
                        still.append(index)
                missing = still
                continue
            try:
                raws = cast("SharedStorage", storage).get_many([keys[i] for i in missing])
            except StorageUnavailable:
                tier.stats.errors += 1
                for index in missing:
                    if index in fallback:
                        results[index] = fallback[index]
                    else:
                        still.append(index)
                missing = still
                continue
            found: list[tuple[str, object, bytes]] = []
            for index, raw in zip(missing, raws, strict=True):
                value = self._decode(plan, keys[index], raw)
                if value is MISS:
                    tier.stats.misses += 1
                    still.append(index)
                else:
                    tier.stats.hits += 1
                    results[index] = value
                    found.append((keys[index], value, cast("bytes", raw)))
            self._write_back(plan, plan.tiers[:position], found, epoch)
            missing = still
        return missing

    def _decode(self, plan: _Plan, key: str, raw: bytes | None) -> object:
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

    def _write_back(
        self,
        plan: _Plan,
        tiers: Sequence[_Tier],
        found: list[tuple[str, object, bytes]],
        epoch: int,
    ) -> None:
        if not found:
            return
        for tier in tiers:
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                # Skipped if an invalidation arrived while we read: the value may be stale.
                storage.set_many(
                    [(key, value, plan.ttl(tier, value)) for key, value, _ in found],
                    unless=lambda: self._epoch != epoch,
                )
            else:
                items = [(key, raw, plan.ttl(tier, value)) for key, value, raw in found]
                try:
                    cast("SharedStorage", storage).set_many(items)
                except StorageUnavailable:
                    tier.stats.errors += 1

    @staticmethod
    def _unwrap(value: object) -> Any:
        return None if value is NEGATIVE else value

    # -- internals: loading -------------------------------------------------

    def _load(self, node: Node[ModelT], plan: _Plan, key: str) -> ModelT | None:
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

    def _load_coordinated(self, node: Node[ModelT], plan: _Plan, key: str) -> ModelT | None:
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
        self, node: Node[ModelT], plan: _Plan, key: str, shared: SharedStorage, watch: FillWatch
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
                        return self._unwrap(stored)
                    return self._load_and_store(node, plan, key, lock)
                finally:
                    self._unlock(shared, key, lock)
            if not waited:
                self.stats.lock_waits += 1
                waited = True
            stored = self._read_coordinator(plan, key)
            if stored is not MISS:
                return self._unwrap(stored)
            remaining = deadline - monotonic()
            if remaining <= 0:
                self.stats.lock_wait_timeouts += 1
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
                return self._unwrap(stored)

    def _read_coordinator(self, plan: _Plan, key: str) -> object:
        shared = cast("SharedStorage", plan.coordinator)
        epoch = self._epoch
        try:
            raw = shared.get(key)
        except StorageUnavailable:
            return MISS
        value = self._decode(plan, key, raw)
        if value is not MISS:
            position = next(i for i, tier in enumerate(plan.tiers) if tier.storage is shared)
            self._write_back(plan, plan.tiers[:position], [(key, value, cast("bytes", raw))], epoch)
        return value

    def _load_and_store(
        self, node: Node[ModelT], plan: _Plan, key: str, lock: Lock | None
    ) -> ModelT | None:
        epoch = self._epoch
        self.stats.loads += 1
        try:
            value = node.load()
        except Exception:
            self.stats.load_errors += 1
            raise
        self._store(plan, [(key, value, lock)], epoch)
        return value

    def _store(self, plan: _Plan, loaded: list[tuple[str, Any, Lock | None]], epoch: int) -> None:
        entries = [(key, NEGATIVE if value is None else value, lock) for key, value, lock in loaded]
        encoded: list[bytes] | None = None
        for tier in plan.tiers:
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                if self._epoch == epoch:
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

    def _load_many(
        self,
        plan: _Plan,
        nodes: Sequence[Node[Any]],
        keys: list[str],
        missing: list[int],
        results: list[object],
    ) -> None:
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
        self, plan: _Plan, nodes: Sequence[Node[Any]], keys: list[str], indexes: list[int]
    ) -> dict[int, Any]:
        load_many = cast(
            "Callable[[list[Node[Any]]], Sequence[Any]] | None",
            getattr(plan.node_class, "load_many", None),
        )
        if load_many is None:
            return {i: self._load_coordinated(nodes[i], plan, keys[i]) for i in indexes}
        epoch = self._epoch
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
                        values[i] = self._unwrap(stored)
            if to_load:
                self.stats.loads += len(to_load)
                try:
                    loaded = list(load_many([nodes[i] for i, _ in to_load]))
                except Exception:
                    self.stats.load_errors += len(to_load)
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
                    epoch,
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

    def _read_many_coordinator(self, plan: _Plan, keys: list[str]) -> list[object]:
        shared = cast("SharedStorage", plan.coordinator)
        try:
            raws = shared.get_many(keys)
        except StorageUnavailable:
            return [MISS] * len(keys)
        return [self._decode(plan, key, raw) for key, raw in zip(keys, raws, strict=True)]

    # -- internals: invalidation --------------------------------------------

    def _invalidate(self, plan: _Plan, keys: list[str], storage_name: str | None) -> None:
        if storage_name is not None and storage_name not in {tier.name for tier in plan.tiers}:
            raise CacheConfigurationError(
                f"{plan.node_class.__qualname__} is not kept in a storage named {storage_name!r}"
            )
        self._epoch += 1
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
                self.stats.tiers[name].errors += 1

    def _on_invalidate(self, key: str) -> None:
        self._epoch += 1
        self._flights.forget(key)
        for storage in self._storages.values():
            if isinstance(storage, LocalStorage):
                if key == CLEAR_ALL:
                    storage.clear()
                else:
                    storage.delete(key)

    def _on_tick(self) -> None:
        now = monotonic()
        if now - self._last_report < STATS_INTERVAL:
            return
        self._last_report = now
        snapshot = orjson.dumps(self.stats.as_dict())
        for storage in self._storages.values():
            if isinstance(storage, SharedStorage):
                with suppress(StorageUnavailable):
                    storage.report(_process_name(), snapshot, STATS_INTERVAL * 3)

    def _on_trust(self, safe: bool) -> None:
        if safe:
            # Invalidations may have been missed while unsubscribed: start afresh.
            self._epoch += 1
            for storage in self._storages.values():
                if isinstance(storage, LocalStorage):
                    storage.clear()
        self._update_trust()

    def _update_trust(self) -> None:
        self._local_trusted = all(
            storage.local_copies_safe
            for storage in self._storages.values()
            if isinstance(storage, SharedStorage)
        )

    def _ensure_listening(self) -> None:
        if self._local_trusted:
            return
        for storage in self._storages.values():
            ensure = getattr(storage, "ensure_listening", None)
            if ensure is not None:
                ensure()

    # -- internals: plans ---------------------------------------------------

    def _plan_for(self, node_class: type[Node[Any]]) -> _Plan:
        specs = getattr(node_class, "storage_specs", None)
        if specs is None:
            raise CacheConfigurationError(
                f"{node_class.__qualname__} is not a complete Node: declare Node[Model] and storages"
            )
        tiers: list[_Tier] = []
        for spec in specs:
            storage = self._storages.get(spec.name)
            if storage is None:
                raise CacheConfigurationError(
                    f"{node_class.__qualname__}.storages names {spec.name!r}, which is not"
                    f" registered with this Manager (registered: {sorted(self._storages) or 'none'})"
                )
            ttl = (spec.ttl or storage.ttl).total_seconds()
            tiers.append(_Tier(spec.name, storage, ttl, self.stats.tiers[spec.name]))
        first = tiers[0]
        coordinator = next(
            (t.storage for t in tiers if isinstance(t.storage, SharedStorage)),
            None,
        )
        plan = _Plan(
            key_prefix=f"{self.prefix}:",
            key_suffix=f"|v{node_class.version}.{node_class.schema_fingerprint}",
            tiers=tuple(tiers),
            first_local=first.storage if isinstance(first.storage, LocalStorage) else None,
            first_local_stats=first.stats if isinstance(first.storage, LocalStorage) else None,
            coordinator=coordinator,
            negative_ttl=node_class.negative_ttl.total_seconds(),
            node_class=node_class,
            local_then_shared=(
                len(tiers) == 2
                and isinstance(tiers[0].storage, LocalStorage)
                and isinstance(tiers[1].storage, SharedStorage)
            ),
        )
        self._plans[node_class] = plan
        return plan

    def reset_after_fork(self) -> None:
        self._flights.reset_after_fork()
        self.stats.reset()  # this process's own counts start at zero
        self._last_report = 0.0
        self._epoch += 1
        for storage in self._storages.values():
            if isinstance(storage, LocalStorage | SharedStorage):
                storage.reset_after_fork()
        self._update_trust()


_live_managers: weakref.WeakSet[Manager] = weakref.WeakSet()


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _after_fork_in_child() -> None:
    """gunicorn --preload, Celery prefork: each child starts clean. Its local
    tiers are empty, its locks new, and its listener restarts on first use."""
    for manager in list(_live_managers):
        manager.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
