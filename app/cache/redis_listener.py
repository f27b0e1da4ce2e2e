"""The pub/sub listener of :class:`~app.cache.redis_storage.RedisStorage`.

One daemon thread per storage, ``cache-listener``, subscribed to two channels:
``<prefix>:invalidate`` carries keys to drop from every process's local tier,
``<prefix>:filled`` wakes the callers waiting for a key. It speaks RESP2,
pinned (redis-py 8 defaults to RESP3, whose pub/sub replies differ), on a
connection pool of its own. While it is not subscribed the storage is not
``local_copies_safe``, and waiters poll instead of waiting for a notice.
"""

# redis-py's annotations leave many return types unknown; strict mode would
# flag every call. The values this module returns are typed at its boundary.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
# pyright: reportUnknownArgumentType=false

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from redis import ConnectionPool, Redis, RedisError

from app.cache.storage import FillWatch, InvalidationCallback, TickCallback, TrustCallback

log = logging.getLogger("app.cache")

#: The RESP version the listener speaks; see the module docstring.
PUBSUB_PROTOCOL = 2

#: What the listener copies from the app's client: where and how to connect, nothing
#: protocol-specific (redis-py 8 adds RESP3-only options to its pools).
_LISTENER_CONNECTION_KWARGS = frozenset(
    {
        "host",
        "port",
        "db",
        "path",
        "username",
        "password",
        "credential_provider",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
    }
)


class PollingWatch(FillWatch):
    """Used when no listener runs: wait a growing interval, then let the caller re-check."""

    def __init__(self) -> None:
        self._interval = 0.02

    def wait(self, timeout: float) -> None:
        threading.Event().wait(min(timeout, self._interval))
        self._interval = min(self._interval * 2, 0.5)


class ListenerWatch(FillWatch):
    """Woken by the listener when the key's fill notice (or invalidation) arrives;
    polls instead while the listener is not subscribed."""

    def __init__(self, listener: Listener, key: str) -> None:
        self._listener = listener
        self._key = key
        self.event = threading.Event()
        self._polling = PollingWatch()

    def wait(self, timeout: float) -> None:
        if self._listener.subscribed:
            self.event.wait(timeout)
            self.event.clear()
        else:  # notices may be missed: poll instead
            self._polling.wait(timeout)

    def close(self) -> None:
        self._listener.unwatch(self._key, self.event)


class Listener:
    """One daemon thread per storage: receives invalidations and fill notices."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        on_invalidate: InvalidationCallback,
        on_trust: TrustCallback,
        on_tick: TickCallback | None = None,
    ) -> None:
        pool = client.connection_pool
        kwargs: dict[str, Any] = {
            name: value
            for name, value in pool.connection_kwargs.items()
            if name in _LISTENER_CONNECTION_KWARGS or name.startswith("ssl_")
        }
        kwargs.update(
            protocol=PUBSUB_PROTOCOL,
            health_check_interval=5,
            connection_class=pool.connection_class,
        )
        self.client = Redis(connection_pool=ConnectionPool(**kwargs))
        self.invalidate_channel = f"{prefix}:invalidate".encode()
        self.filled_channel = f"{prefix}:filled".encode()
        self._on_invalidate = on_invalidate
        self._on_trust = on_trust
        self._on_tick = on_tick
        self.subscribed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchers: dict[str, set[threading.Event]] = {}
        self._watch_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cache-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # Wake the thread from its wait for a message rather than let the wait run out.
            # Other processes get an empty fill notice, which no one waits on.
            with contextlib.suppress(RedisError):
                self.client.publish(self.filled_channel, "")
            self._thread.join(timeout=5)
        self._set_subscribed(value=False)
        self.client.close()

    def reset_after_fork(self) -> None:
        self._thread = None
        self.subscribed = False
        self._stop = threading.Event()
        self._watchers = {}
        self._watch_lock = threading.Lock()

    def watch(self, key: str) -> FillWatch:
        watch = ListenerWatch(self, key)
        with self._watch_lock:
            self._watchers.setdefault(key, set()).add(watch.event)
        return watch

    def unwatch(self, key: str, event: threading.Event) -> None:
        with self._watch_lock:
            events = self._watchers.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._watchers[key]

    def _set_subscribed(self, *, value: bool) -> None:
        # The manager clears its local tiers before it trusts them again.
        self.subscribed = value
        self._on_trust(value)

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            pubsub = self.client.pubsub()
            try:
                pubsub.subscribe(self.invalidate_channel, self.filled_channel)
                confirmed = 0
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if self._on_tick is not None and self.subscribed:
                        self._on_tick()
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        confirmed += 1
                        if confirmed == 2:
                            self._set_subscribed(value=True)
                            backoff = 0.05
                    elif message["type"] == "message":
                        self._dispatch(message["channel"], message["data"].decode())
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any fault
                if self.subscribed:
                    log.warning(
                        "cache: invalidation listener lost Redis (%s); local tier bypassed", exc
                    )
                self._set_subscribed(value=False)
            finally:
                pubsub.close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)

    def _dispatch(self, channel: bytes, key: str) -> None:
        if channel == self.invalidate_channel:
            self._on_invalidate(key)
        with self._watch_lock:
            events = list(self._watchers.get(key, ()))
        for event in events:
            event.set()
