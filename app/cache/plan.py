"""The tier plan: how a :class:`~app.cache.manager.Manager` reads one node class.

A plan is built once per node class, on first use or by ``Manager.validate``,
from the names in the node's ``storages``: the storages they name, in order,
with the node's TTL in each, and what the read path needs at hand (the key's
affixes, the first local tier, the shared tier that holds the load locks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.cache.local_storage import LocalStorage
from app.cache.node import Node
from app.cache.stats import TierStats
from app.cache.storage import NEGATIVE, CacheConfigurationError, SharedStorage, Storage


@dataclass(frozen=True, slots=True, eq=False)
class Tier:
    """One entry of a node's ``storages``: the storage, this node's TTL there, its counters."""

    name: str
    storage: Storage
    ttl: float
    stats: TierStats


@dataclass(frozen=True, slots=True, eq=False)
class TierPlan:
    """How one node class is read: its key's affixes and its tiers, in order."""

    key_prefix: str
    key_suffix: str
    tiers: tuple[Tier, ...]
    first_local: LocalStorage | None
    first_local_stats: TierStats | None
    #: The first shared tier: it holds the load locks. ``None``: local tiers only.
    coordinator: SharedStorage | None
    #: The tiers read before the coordinator: a value read from it is written back into these.
    before_coordinator: tuple[Tier, ...]
    negative_ttl: float
    node_class: type[Node[Any]]
    #: Exactly a local tier, then a shared one: served by a shorter path.
    local_then_shared: bool

    def ttl(self, tier: Tier, value: object) -> float:
        return min(self.negative_ttl, tier.ttl) if value is NEGATIVE else tier.ttl


def build_plan(
    node_class: type[Node[Any]],
    storages: Mapping[str, Storage],
    tier_stats: Mapping[str, TierStats],
    prefix: str,
) -> TierPlan:
    """The plan of ``node_class`` over the registered ``storages``. Raises
    :class:`CacheConfigurationError` if the node names a storage that is not registered."""
    specs = getattr(node_class, "storage_specs", None)
    if specs is None:
        raise CacheConfigurationError(
            f"{node_class.__qualname__} is not a complete Node: declare Node[Model] and storages"
        )
    tiers: list[Tier] = []
    for spec in specs:
        storage = storages.get(spec.name)
        if storage is None:
            raise CacheConfigurationError(
                f"{node_class.__qualname__}.storages names {spec.name!r}, which is not"
                f" registered with this Manager (registered: {sorted(storages) or 'none'})"
            )
        ttl = (spec.ttl or storage.ttl).total_seconds()
        tiers.append(Tier(spec.name, storage, ttl, tier_stats[spec.name]))
    first = tiers[0]
    coordinator: SharedStorage | None = None
    before_coordinator: tuple[Tier, ...] = ()
    for position, tier in enumerate(tiers):
        if isinstance(tier.storage, SharedStorage):
            coordinator, before_coordinator = tier.storage, tuple(tiers[:position])
            break
    return TierPlan(
        key_prefix=f"{prefix}:",
        key_suffix=f"|v{node_class.version}.{node_class.schema_fingerprint}",
        tiers=tuple(tiers),
        first_local=first.storage if isinstance(first.storage, LocalStorage) else None,
        first_local_stats=first.stats if isinstance(first.storage, LocalStorage) else None,
        coordinator=coordinator,
        before_coordinator=before_coordinator,
        negative_ttl=node_class.negative_ttl.total_seconds(),
        node_class=node_class,
        local_then_shared=(
            len(tiers) == 2
            and isinstance(tiers[0].storage, LocalStorage)
            and isinstance(tiers[1].storage, SharedStorage)
        ),
    )
