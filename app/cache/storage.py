"""What every cache storage is: a named tier with a default TTL.

Two kinds exist. A *local* storage keeps Python objects in this process and is
read without serializing anything. A *shared* storage (Redis) keeps bytes that
every process can read; the :class:`~app.cache.manager.Manager` serializes for
it and validates what it reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Returned by a local storage that does not hold the key.
MISS: Final = _Sentinel("MISS")
#: Sent as an invalidated key to empty every process's local tiers.
CLEAR_ALL: Final = "*"
#: Stored in place of a value whose ``load()`` returned ``None``.
NEGATIVE: Final = _Sentinel("NEGATIVE")


class StorageUnavailable(Exception):  # noqa: N818 - reads as a state, like TimeoutError
    """A shared storage cannot be reached right now; the caller degrades."""


class CacheConfigurationError(LookupError):
    """A storage name is unknown, taken twice, or a node names one that is not registered."""


class Storage:
    """Base class of the storages. ``ttl`` is the default for nodes that do not set one."""

    def __init__(self, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"{type(self).__name__} ttl must be positive, got {ttl}")
        self.ttl = ttl


@dataclass(frozen=True, slots=True)
class Lock:
    """A held load lock: its token, and the key's generation when it was taken."""

    token: str
    generation: bytes | None


class FillWatch:
    """Waits for a key's fill notice. The base class never waits: with no shared
    storage there is no other process to wait for."""

    def wait(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class LockHeld:
    """Another caller holds the load lock; it expires in ``expires_in`` seconds at the latest."""

    expires_in: float


InvalidationCallback = Callable[[str], None]
TickCallback = Callable[[], None]
#: Called with a shared storage's ``local_copies_safe`` whenever it changes.
TrustCallback = Callable[[bool], None]


class SharedStorage(Storage):
    """A storage every process reads. Besides values it provides what keeps the
    processes in step: a lock per key for loading, a notice when a key is filled,
    and invalidation messages for the local tiers.

    Every method may raise :class:`StorageUnavailable`.
    """

    @property
    def local_copies_safe(self) -> bool:
        """Whether this storage's invalidation listener is subscribed, so local
        copies may be kept: every invalidation will reach them."""
        raise NotImplementedError

    def attach(
        self,
        prefix: str,
        on_invalidate: InvalidationCallback,
        on_trust: TrustCallback,
        on_tick: TickCallback | None = None,
    ) -> None:
        """Start delivering invalidations published under ``prefix``; call
        ``on_trust`` with :attr:`local_copies_safe` whenever it changes, and
        ``on_tick`` now and then from the listener while subscribed."""
        raise NotImplementedError

    def read_generation(self, key: str) -> Lock:
        """The key's generation now, as a :class:`Lock` with no token, for a load
        that runs without the lock to store through :meth:`store_loaded`."""
        raise NotImplementedError

    def report(self, name: str, snapshot: bytes, ttl_seconds: float) -> None:
        """Publish one process's counters for :meth:`reports`."""
        return

    def reports(self) -> dict[str, bytes]:
        """The counters every live process published, by process name."""
        return {}

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        raise NotImplementedError

    def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        """Store ``(key, data, ttl_seconds)`` triples."""
        raise NotImplementedError

    def try_lock(self, key: str, ttl_seconds: float) -> Lock | LockHeld:
        """Take the load lock of ``key``, or say how long another caller may still hold it."""
        raise NotImplementedError

    def try_lock_many(self, keys: Sequence[str], ttl_seconds: float) -> list[Lock | LockHeld]:
        """:meth:`try_lock` for many keys in one round trip."""
        raise NotImplementedError

    def store_loaded(self, key: str, data: bytes, ttl_seconds: float, lock: Lock) -> bool:
        """Store a freshly loaded value unless ``key`` was invalidated since ``lock``
        was taken (the load may have read data that is already stale)."""
        raise NotImplementedError

    def store_loaded_many(self, items: Sequence[tuple[str, bytes, float, Lock]]) -> None:
        """:meth:`store_loaded` for many keys in one round trip."""
        raise NotImplementedError

    def unlock(self, key: str, lock: Lock) -> None:
        """Release the lock and wake the callers waiting for ``key`` in every process."""
        raise NotImplementedError

    def unlock_many(self, items: Sequence[tuple[str, Lock]]) -> None:
        """:meth:`unlock` for many keys in one round trip."""
        raise NotImplementedError

    def watch(self, key: str) -> FillWatch:
        """Start watching for ``key`` to be filled. Watch *before* checking the
        value, so a fill between the check and the wait is not missed."""
        raise NotImplementedError

    def invalidate(
        self, keys: Sequence[str], *, shared_copy: bool = True, local_copies: bool = True
    ) -> None:
        """Drop ``keys`` from this storage (``shared_copy``) and from every
        process's local tiers (``local_copies``)."""
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None

    def reset_after_fork(self) -> None:
        return None


class NullStorage(SharedStorage):
    """Stands in for Redis when none is configured: holds nothing, never fails.

    Nodes can then name ``"redis"`` in every deployment; with no ``REDIS_URL``
    the cache runs on its local tier alone, in one process.
    """

    def __init__(self) -> None:
        super().__init__(timedelta(seconds=1))

    @property
    def local_copies_safe(self) -> bool:
        return True

    def attach(
        self,
        prefix: str,
        on_invalidate: InvalidationCallback,
        on_trust: TrustCallback,
        on_tick: TickCallback | None = None,
    ) -> None:
        return None

    def read_generation(self, key: str) -> Lock:
        return Lock("", None)

    def get(self, key: str) -> bytes | None:
        return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        return None

    def try_lock(self, key: str, ttl_seconds: float) -> Lock | LockHeld:
        return Lock("", None)

    def try_lock_many(self, keys: Sequence[str], ttl_seconds: float) -> list[Lock | LockHeld]:
        return [Lock("", None)] * len(keys)

    def store_loaded(self, key: str, data: bytes, ttl_seconds: float, lock: Lock) -> bool:
        return False

    def store_loaded_many(self, items: Sequence[tuple[str, bytes, float, Lock]]) -> None:
        return None

    def unlock(self, key: str, lock: Lock) -> None:
        return None

    def unlock_many(self, items: Sequence[tuple[str, Lock]]) -> None:
        return None

    def watch(self, key: str) -> FillWatch:
        return FillWatch()

    def invalidate(
        self, keys: Sequence[str], *, shared_copy: bool = True, local_copies: bool = True
    ) -> None:
        return None

    def clear(self) -> None:
        return None
