"""``Manager``: resolves nodes through their storages, loads on a miss, and keeps
every process's local tier honest.

Reading a node walks its storages in order. A hit in a later tier is written
back into the earlier ones. A miss everywhere loads the value *once*
(:mod:`app.cache.loading`). Invalidations reach every process's local tiers
through the shared storages (:mod:`app.cache.invalidation`). How a node class's
tiers are read is worked out once, as its plan (:mod:`app.cache.plan`).

See ``docs/cache.md`` for the design and how to choose TTLs.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast

from app.cache.flight import Flights
from app.cache.invalidation import Invalidations
from app.cache.loading import Loader, unwrap
from app.cache.local_storage import LocalStorage
from app.cache.node import Node
from app.cache.plan import TierPlan, build_plan
from app.cache.serializer import JSONSerializer, Serializer
from app.cache.stats import CacheStats, TierStats, by_process
from app.cache.storage import (
    MISS,
    NEGATIVE,
    CacheConfigurationError,
    SharedStorage,
    Storage,
    StorageUnavailable,
)

ModelT = TypeVar("ModelT")


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
        self.prefix = prefix
        self.stats = CacheStats()
        self._storages: dict[str, Storage] = {}
        self._plans: dict[type[Node[Any]], TierPlan] = {}
        self._flights = Flights()
        # Whether every shared storage's listener is subscribed, so local copies
        # are served. Kept here, not in Invalidations: the local-hit path reads it.
        self._local_copies_safe = True
        self._invalidations = Invalidations(
            self._storages, self._flights, self.stats, self._set_local_copies_safe
        )
        self._loader = Loader(
            serializer or JSONSerializer(),
            self.stats,
            self._flights,
            self._invalidations,
            lock_timeout=lock_timeout.total_seconds(),
            lock_wait=lock_wait.total_seconds(),
        )
        _live_managers.add(self)

    @property
    def serializer(self) -> Serializer:
        return self._loader.serializer

    @serializer.setter
    def serializer(self, serializer: Serializer) -> None:
        self._loader.serializer = serializer

    @property
    def lock_timeout(self) -> float:
        return self._loader.lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, seconds: float) -> None:
        self._loader.lock_timeout = seconds

    @property
    def lock_wait(self) -> float:
        return self._loader.lock_wait

    @lock_wait.setter
    def lock_wait(self, seconds: float) -> None:
        self._loader.lock_wait = seconds

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
        invalidations = self._invalidations
        if isinstance(storage, SharedStorage):
            storage.attach(
                self.prefix,
                invalidations.on_invalidate,
                invalidations.on_trust,
                invalidations.on_tick,
            )
        invalidations.update_trust()

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
        if local is not None and self._local_copies_safe:
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

    def holds(self, node: Node[Any], value: object) -> bool:
        """Whether :meth:`get` would return this very ``value`` now, from the first
        local tier. Never loads, never asks a shared tier, needs no app context."""
        plan = self._plans.get(type(node)) or self._plan_for(type(node))
        key = plan.key_prefix + node.key() + plan.key_suffix
        local = plan.first_local
        return local is not None and self._local_copies_safe and local.get(key) is value

    def _get_after_local_miss(
        self, node: Node[ModelT], plan: TierPlan, key: str, local: LocalStorage
    ) -> ModelT | None:
        """The usual shape, ``["local", "redis"]``, after a local miss while local copies are safe:
        the general walk in :meth:`_get_slow` without its bookkeeping."""
        shared = cast("SharedStorage", plan.coordinator)
        tier = plan.tiers[1]
        invalidations = self._invalidations
        invalidations_before = invalidations.count
        try:
            raw = shared.get(key)
        except StorageUnavailable:
            tier.stats.errors += 1
            return self._loader.load(node, plan, key)
        value = self._loader.decode(plan, key, raw)
        if value is MISS:
            tier.stats.misses += 1
            return self._loader.load(node, plan, key)
        tier.stats.hits += 1
        # Loader.write_back() unrolled for the one local tier: no list of tiers to
        # walk, no kind to test, no shared tier to write.
        local.set_many(
            [(key, value, plan.ttl(plan.tiers[0], value))],
            unless=lambda: invalidations.count != invalidations_before,
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
        groups: dict[TierPlan, list[int]] = {}
        for index, node in enumerate(nodes):
            plan = self._plans.get(type(node)) or self._plan_for(type(node))
            keys.append(plan.key_prefix + node.key() + plan.key_suffix)
            groups.setdefault(plan, []).append(index)
        self._ensure_listening()
        for plan, indexes in groups.items():
            missing = self._read_tiers_many(plan, keys, indexes, results)
            if missing:
                self._loader.load_many(plan, nodes, keys, missing, results)
        return [unwrap(value) for value in results]

    # -- invalidation -------------------------------------------------------

    def remove(self, node: Node[Any], storage_name: str | None = None) -> None:
        """Drop the node's value from every tier in every process, or from the one
        named tier (for a local tier: in every process)."""
        plan = self._plans.get(type(node)) or self._plan_for(type(node))
        self._invalidations.invalidate(
            plan, [plan.key_prefix + node.key() + plan.key_suffix], storage_name
        )

    def remove_many(self, nodes: Sequence[Node[Any]], storage_name: str | None = None) -> None:
        groups: dict[TierPlan, list[str]] = {}
        for node in nodes:
            plan = self._plans.get(type(node)) or self._plan_for(type(node))
            groups.setdefault(plan, []).append(plan.key_prefix + node.key() + plan.key_suffix)
        for plan, keys in groups.items():
            self._invalidations.invalidate(plan, keys, storage_name)

    def clear(self) -> None:
        """Empty every tier: the shared storages, and the local tiers of every
        process. Raises :class:`StorageUnavailable` if a shared storage could not
        be reached; this process's local tiers are emptied all the same."""
        self._invalidations.clear()

    def process_stats(self) -> dict[str, dict[str, object]]:
        """Counters by process: :func:`app.cache.stats.by_process`."""
        return by_process(self._storages.values(), self.stats)

    # -- internals: the walks through the tiers -----------------------------
    #
    # get (_get_slow) and get_many (_read_tiers_many) walk the tiers in two loops,
    # sharing Loader.decode() and Loader.write_back(). One many-key walk for both
    # would cost get a list per key on its general path (every read of a node not
    # shaped local-then-shared, a Redis-only node say), and the two differ on one
    # point: get serves a local copy found behind an unreachable shared tier,
    # get_many loads that key instead.

    def _get_slow(self, node: Node[ModelT], plan: TierPlan, key: str) -> ModelT | None:
        self._ensure_listening()
        loader = self._loader
        invalidations_before = self._invalidations.count
        fallback: object = MISS
        shared_failed = False
        for index, tier in enumerate(plan.tiers):
            storage = tier.storage
            if isinstance(storage, LocalStorage):
                value = storage.get(key)
                if value is MISS:
                    tier.stats.misses += 1
                elif self._local_copies_safe:
                    tier.stats.hits += 1
                    return unwrap(value)
                elif fallback is MISS:
                    fallback = value  # served only if no shared tier can answer
                continue
            try:
                raw = cast("SharedStorage", storage).get(key)
            except StorageUnavailable:
                tier.stats.errors += 1
                if fallback is not MISS:
                    return unwrap(fallback)
                shared_failed = True
                continue
            value = loader.decode(plan, key, raw)
            if value is MISS:
                tier.stats.misses += 1
                continue
            tier.stats.hits += 1
            found = [(key, value, cast("bytes", raw))]
            loader.write_back(plan, plan.tiers[:index], found, invalidations_before)
            return unwrap(value)
        if shared_failed and fallback is not MISS:
            return unwrap(fallback)  # a local copy behind an unreachable shared tier
        return loader.load(node, plan, key)

    def _read_tiers_many(  # noqa: PLR0912 - one loop over tiers of two kinds
        self, plan: TierPlan, keys: list[str], indexes: list[int], results: list[object]
    ) -> list[int]:
        """Fill ``results`` from the tiers; return the indexes still missing."""
        loader = self._loader
        invalidations_before = self._invalidations.count
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
                    elif self._local_copies_safe:
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
                value = loader.decode(plan, keys[index], raw)
                if value is MISS:
                    tier.stats.misses += 1
                    still.append(index)
                else:
                    tier.stats.hits += 1
                    results[index] = value
                    found.append((keys[index], value, cast("bytes", raw)))
            loader.write_back(plan, plan.tiers[:position], found, invalidations_before)
            missing = still
        return missing

    # -- internals ----------------------------------------------------------

    def _plan_for(self, node_class: type[Node[Any]]) -> TierPlan:
        plan = build_plan(node_class, self._storages, self.stats.tiers, self.prefix)
        self._plans[node_class] = plan
        return plan

    def _set_local_copies_safe(self, safe: bool) -> None:
        self._local_copies_safe = safe

    def _ensure_listening(self) -> None:
        if self._local_copies_safe:
            return
        for storage in self._storages.values():
            ensure = getattr(storage, "ensure_listening", None)
            if ensure is not None:
                ensure()

    def reset_after_fork(self) -> None:
        self._flights.reset_after_fork()
        self.stats.reset()  # this process's own counts start at zero
        self._invalidations.reset_after_fork()
        for storage in self._storages.values():
            if isinstance(storage, LocalStorage | SharedStorage):
                storage.reset_after_fork()
        self._invalidations.update_trust()


_live_managers: weakref.WeakSet[Manager] = weakref.WeakSet()


def close_all() -> list[Manager]:
    """Close every manager alive in this process (stopping their listeners), and
    return them. For tests and teardown: a closed manager must not be used again."""
    managers = list(_live_managers)
    for manager in managers:
        manager.close()
    return managers


def _after_fork_in_child() -> None:
    """gunicorn --preload, Celery prefork: each child starts clean. Its local
    tiers are empty, its locks new, and its listener restarts on first use."""
    for manager in list(_live_managers):
        manager.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
