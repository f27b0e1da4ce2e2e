"""The shared tier on Redis: values, load locks, fill notices and invalidation.

* **Values** are bytes with a TTL (``SET ... PX``); ``get_many`` is one ``MGET``.
* **Load lock** per key: ``SET key:lock <token> NX PX <ttl>``. The TTL means a
  crashed holder cannot wedge the key; the token means only the holder releases it.
* **Generations**: ``invalidate`` bumps ``key:gen``; a loader stores its value only
  if the generation it saw when it took the lock is still current, so a value
  loaded from data that changed meanwhile is never cached.
* **Pub/sub**: ``<prefix>:invalidate`` carries keys to drop from every process's
  local tier; ``<prefix>:filled`` wakes the callers waiting for a key.
  The listener (:mod:`app.cache.redis_listener`) runs on RESP2, pinned (redis-py 8
  defaults to RESP3, whose pub/sub replies differ). While it is not subscribed
  the storage is not ``local_copies_safe``, and the manager reads through the
  local tiers to Redis.
* **Outages**: the first failure marks Redis down for ``retry_interval``;
  meanwhile calls fail fast with :class:`StorageUnavailable` and cost nothing.
  One warning when it goes down, one line when it is back. Invalidations that
  could not be sent are kept and sent on recovery.

The Lua scripts are in :mod:`app.cache.redis_scripts`.
"""

# redis-py's annotations leave many return types unknown; strict mode would
# flag every call. The values this module returns are typed at its boundary.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from time import monotonic
from typing import Any, ParamSpec, TypeVar

from redis import Redis, RedisError

from app.cache.redis_listener import Listener, PollingWatch
from app.cache.redis_scripts import (
    INVALIDATE_SCRIPT,
    LOCK_SCRIPT,
    STORE_SCRIPT,
    UNLOCK_SCRIPT,
    lock_result,
)
from app.cache.storage import (
    CLEAR_ALL,
    FillWatch,
    InvalidationCallback,
    Lock,
    LockHeld,
    SharedStorage,
    StorageUnavailable,
    TickCallback,
    TrustCallback,
)

log = logging.getLogger("app.cache")

P = ParamSpec("P")
R = TypeVar("R")

#: Invalidations kept for replay while Redis is down; past this the oldest are dropped (logged).
MAX_PENDING_INVALIDATIONS = 10_000


class RedisStorage(SharedStorage):
    """Redis as the shared tier. Pass the app's client; the listener opens its own connection."""

    def __init__(
        self,
        client: Redis,
        ttl: timedelta = timedelta(minutes=10),
        *,
        retry_interval: timedelta = timedelta(seconds=1),
        generation_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(ttl)
        self.client = client
        self.retry_interval = retry_interval.total_seconds()
        self.generation_ttl_ms = int(generation_ttl.total_seconds() * 1000)
        self._lock_script = client.register_script(LOCK_SCRIPT)
        self._store_script = client.register_script(STORE_SCRIPT)
        self._unlock_script = client.register_script(UNLOCK_SCRIPT)
        self._invalidate_script = client.register_script(INVALIDATE_SCRIPT)
        self._down_until = 0.0
        self._is_down = False
        self._state_lock = threading.Lock()
        # key -> (drop the shared copy, drop the local copies) once Redis is back
        self._pending: dict[str, tuple[bool, bool]] = {}
        self._overflowed = False
        self._prefix = ""
        self._listener: Listener | None = None

    # -- health -------------------------------------------------------------

    @property
    def local_copies_safe(self) -> bool:
        listener = self._listener
        return listener is not None and listener.subscribed

    def _call(self, operation: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._is_down and monotonic() < self._down_until:
            raise StorageUnavailable("Redis is down")
        try:
            result = operation(*args, **kwargs)
        except RedisError as exc:
            self._mark_down(exc)
            raise StorageUnavailable(str(exc)) from exc
        if self._is_down:
            self._mark_up()
        return result

    def _mark_down(self, exc: Exception) -> None:
        with self._state_lock:
            self._down_until = monotonic() + self.retry_interval
            if self._is_down:
                return
            self._is_down = True
        log.warning(
            "cache: Redis unavailable (%s: %s); serving from the local tier and the loader,"
            " retrying every %.1fs",
            type(exc).__name__,
            exc,
            self.retry_interval,
        )

    def _mark_up(self) -> None:
        with self._state_lock:
            if not self._is_down:
                return
            self._is_down = False
            self._overflowed = False
            pending, self._pending = self._pending, {}
        log.warning("cache: Redis is back; replaying %d invalidation(s)", len(pending))
        groups = [
            ([key for key, flags in pending.items() if flags == group], group)
            for group in set(pending.values())
        ]
        for position, (keys, (shared_copy, local_copies)) in enumerate(groups):
            try:
                self.invalidate(keys, shared_copy=shared_copy, local_copies=local_copies)
            except StorageUnavailable:
                # Down again: invalidate() re-queued this group; keep the rest too.
                for later_keys, (later_shared, later_local) in groups[position + 1 :]:
                    self._queue(later_keys, shared_copy=later_shared, local_copies=later_local)
                return

    def _on_subscribed(self) -> None:
        """The listener reached Redis: replay queued invalidations now rather
        than waiting for this process's next read, which may never come."""
        if self._pending or self._is_down:
            with self._state_lock:
                self._is_down = True  # let _mark_up() take the replay path
            self._mark_up()

    # -- values -------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        # _call() inlined: this is the Redis-tier hit path.
        if self._is_down and monotonic() < self._down_until:
            raise StorageUnavailable("Redis is down")
        try:
            value: bytes | None = self.client.get(key)  # pyright: ignore[reportAssignmentType]
        except RedisError as exc:
            self._mark_down(exc)
            raise StorageUnavailable(str(exc)) from exc
        if self._is_down:
            self._mark_up()
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self._call(self._mget, keys)

    def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = self.client.mget(keys)  # pyright: ignore[reportAssignmentType]
        return values

    def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        self._call(self._set_many, items)

    def _set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for key, data, ttl in items:
                pipe.set(key, data, px=max(1, int(ttl * 1000)))
            pipe.execute()

    def clear(self) -> None:
        """Delete every key under this storage's prefix (``SCAN``, not ``KEYS``)."""
        self._call(self._clear)

    def _clear(self) -> None:
        batch: list[Any] = []
        for key in self.client.scan_iter(match=f"{self._prefix}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)
        self.client.publish(f"{self._prefix}:invalidate", CLEAR_ALL)

    # -- loading ------------------------------------------------------------

    def read_generation(self, key: str) -> Lock:
        """The key's generation now, without a lock: a caller that loads without
        the lock stores through :meth:`store_loaded` with it, so its value is
        dropped too if the key is invalidated meanwhile."""
        return Lock("", self._call(self._get_raw, f"{key}:gen"))

    def _get_raw(self, key: str) -> bytes | None:
        value: bytes | None = self.client.get(key)  # pyright: ignore[reportAssignmentType]
        return value

    def try_lock(self, key: str, ttl_seconds: float) -> Lock | LockHeld:
        token = secrets.token_hex(8)
        reply = self._call(
            self._lock_script,
            keys=[f"{key}:lock", f"{key}:gen"],
            args=[token, max(1, int(ttl_seconds * 1000))],
        )
        return lock_result(token, reply)

    def try_lock_many(self, keys: Sequence[str], ttl_seconds: float) -> list[Lock | LockHeld]:
        return self._call(self._try_lock_many, keys, ttl_seconds)

    def _try_lock_many(self, keys: Sequence[str], ttl_seconds: float) -> list[Lock | LockHeld]:
        tokens = [secrets.token_hex(8) for _ in keys]
        with self.client.pipeline(transaction=False) as pipe:
            for key, token in zip(keys, tokens, strict=True):
                self._lock_script(
                    keys=[f"{key}:lock", f"{key}:gen"],
                    args=[token, max(1, int(ttl_seconds * 1000))],
                    client=pipe,
                )
            replies: list[list[Any]] = pipe.execute()
        return [lock_result(token, reply) for token, reply in zip(tokens, replies, strict=True)]

    def store_loaded_many(self, items: Sequence[tuple[str, bytes, float, Lock]]) -> None:
        self._call(self._store_loaded_many, items)

    def _store_loaded_many(self, items: Sequence[tuple[str, bytes, float, Lock]]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for key, data, ttl_seconds, lock in items:
                self._store_script(
                    keys=[key, f"{key}:gen"],
                    args=[data, max(1, int(ttl_seconds * 1000)), lock.generation or b""],
                    client=pipe,
                )
            pipe.execute()

    def unlock_many(self, items: Sequence[tuple[str, Lock]]) -> None:
        self._call(self._unlock_many, items)

    def _unlock_many(self, items: Sequence[tuple[str, Lock]]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for key, lock in items:
                self._unlock_script(
                    keys=[f"{key}:lock"],
                    args=[lock.token, f"{self._prefix}:filled", key],
                    client=pipe,
                )
            pipe.execute()

    def store_loaded(self, key: str, data: bytes, ttl_seconds: float, lock: Lock) -> bool:
        stored = self._call(
            self._store_script,
            keys=[key, f"{key}:gen"],
            args=[data, max(1, int(ttl_seconds * 1000)), lock.generation or b""],
        )
        return bool(stored)

    def unlock(self, key: str, lock: Lock) -> None:
        self._call(
            self._unlock_script,
            keys=[f"{key}:lock"],
            args=[lock.token, f"{self._prefix}:filled", key],
        )

    def watch(self, key: str) -> FillWatch:
        listener = self._listener
        if listener is None:
            return PollingWatch()
        return listener.watch(key)

    # -- invalidation -------------------------------------------------------

    def invalidate(
        self, keys: Sequence[str], *, shared_copy: bool = True, local_copies: bool = True
    ) -> None:
        # Not through _call(): an invalidation always tries Redis, even inside the
        # fail-fast window after some other call failed, because Redis may well be
        # fine and a skipped invalidation leaves stale copies everywhere.
        try:
            self._invalidate_script(
                keys=list(keys),
                args=[
                    f"{self._prefix}:invalidate",
                    "1" if shared_copy else "0",
                    self.generation_ttl_ms,
                    "1" if local_copies else "0",
                ],
            )
        except RedisError as exc:
            self._mark_down(exc)
            self._queue(keys, shared_copy=shared_copy, local_copies=local_copies)
            raise StorageUnavailable(str(exc)) from exc
        if self._is_down:
            self._mark_up()

    def _queue(self, keys: Sequence[str], *, shared_copy: bool, local_copies: bool) -> None:
        with self._state_lock:
            for key in keys:
                shared, local = self._pending.get(key, (False, False))
                self._pending[key] = (shared or shared_copy, local or local_copies)
            overflow = len(self._pending) - MAX_PENDING_INVALIDATIONS
            if overflow > 0:
                for key in list(self._pending)[:overflow]:
                    del self._pending[key]
            first_overflow = overflow > 0 and not self._overflowed
            self._overflowed = self._overflowed or overflow > 0
        if first_overflow:  # once per outage, not once per remove()
            log.error(
                "cache: more than %d invalidations pending while Redis is down; the oldest"
                " are being dropped: run `flask cache clear` when it is back",
                MAX_PENDING_INVALIDATIONS,
            )

    # -- the listener -------------------------------------------------------

    def attach(
        self,
        prefix: str,
        on_invalidate: InvalidationCallback,
        on_trust: TrustCallback,
        on_tick: TickCallback | None = None,
    ) -> None:
        self._prefix = prefix

        def trust(safe: bool) -> None:
            if safe:
                self._on_subscribed()
            on_trust(safe)

        def tick() -> None:
            if self._pending:  # Redis answers the listener: send what is queued
                self._on_subscribed()
            if on_tick is not None:
                on_tick()

        self._listener = Listener(self.client, prefix, on_invalidate, trust, tick)
        self._listener.start()

    def report(self, name: str, snapshot: bytes, ttl_seconds: float) -> None:
        """Publish this process's counters under ``<prefix>:stats:<name>``."""
        self._call(self._report, name, snapshot, ttl_seconds)

    def _report(self, name: str, snapshot: bytes, ttl_seconds: float) -> None:
        self.client.set(
            f"{self._prefix}:stats:{name}", snapshot, px=max(1, int(ttl_seconds * 1000))
        )

    def reports(self) -> dict[str, bytes]:
        """Every live process's last counters, by name."""
        return self._call(self._reports)

    def _reports(self) -> dict[str, bytes]:
        keys: list[bytes] = list(self.client.scan_iter(match=f"{self._prefix}:stats:*", count=500))
        values: list[bytes | None] = (
            self.client.mget(keys) if keys else []
        )  # pyright: ignore[reportAssignmentType]
        start = len(f"{self._prefix}:stats:")
        return {
            key.decode()[start:]: value
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def ensure_listening(self) -> None:
        """Restart the listener if it is not running (in a forked child, say).
        Many threads may ask at once; one thread starts it."""
        listener = self._listener
        if listener is None or listener.running:
            return
        with self._state_lock:
            if not listener.running:
                listener.start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()

    def reset_after_fork(self) -> None:
        self._state_lock = threading.Lock()
        if self._listener is not None:
            self._listener.reset_after_fork()
