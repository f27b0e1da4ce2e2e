"""Live delivery's fan-out: every process may publish, every stream process hears.

With Redis, a message is one ``PUBLISH`` on the channel
``<CACHE_PREFIX>:notifications``; each stream process (``app/realtime``)
subscribes to it and hands each message to its own connections. Without Redis
(the embedded default), the fan-out stays inside the process: the stream that
``make dev`` serves in-process subscribes with :meth:`Fanout.subscribe_local`.

Pub/sub keeps nothing: a message sent while a stream process is not
subscribed is gone. That is by design. The notification is a committed row
first, and a stream process that (re)subscribes, or sees a gap in a user's
``previous_id`` chain, reads the table (``docs/architecture.md``).

:meth:`Fanout.publish` never raises and never waits longer than Redis'
socket timeout: the write that caused the message has committed. A Redis
that refuses connections fails at once, and the next write tries again; one
that hangs costs the timeout, so after such a slow failure publishing rests
for :data:`PAUSE_AFTER_FAILURE` seconds: one timeout per process every few
seconds, not one per write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from app.core.application import APIFlask

log = logging.getLogger("app.realtime")

#: Seconds publishing rests after Redis failed slowly (a timeout).
PAUSE_AFTER_FAILURE = 5.0
#: A failure that took longer than this many seconds was a slow one.
SLOW_FAILURE = 0.05

Subscriber = Callable[[bytes], None]


def channel_of(cache_prefix: str) -> str:
    """The pub/sub channel of live notifications."""
    return f"{cache_prefix}:notifications"


class Fanout:
    """Publishes notification messages to every stream process."""

    def __init__(self, redis: Redis | None, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._local: list[Subscriber] = []
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def publish(self, messages: Iterable[bytes]) -> int:
        """Send each message; how many left. Never raises."""
        batch = list(messages)
        if not batch:
            return 0
        if self.redis is None:
            return self._publish_locally(batch)
        if time.monotonic() < self._paused_until:
            log.warning(
                "realtime: %d notification(s) not published live (Redis failed recently);"
                " streams will read them from the database",
                len(batch),
            )
            return 0
        started = time.monotonic()
        try:
            pipe = self.redis.pipeline(  # pyright: ignore[reportUnknownMemberType]
                transaction=False
            )
            with pipe:
                for message in batch:
                    pipe.publish(self.channel, message)  # pyright: ignore[reportUnknownMemberType]
                pipe.execute()
        except RedisError as exc:
            slow = time.monotonic() - started > SLOW_FAILURE
            if slow:
                self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            log.warning(
                "realtime: could not publish %d notification(s) (%s: %s)%s; streams"
                " will read them from the database",
                len(batch),
                type(exc).__name__,
                exc,
                f", and will not try for {PAUSE_AFTER_FAILURE:.0f}s" if slow else "",
            )
            return 0
        return len(batch)

    def subscribe_local(self, subscriber: Subscriber) -> Callable[[], None]:
        """Hear every message published in this process (no Redis); returns
        the function that stops it."""
        with self._lock:
            self._local.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._local:
                    self._local.remove(subscriber)

        return unsubscribe

    def _publish_locally(self, batch: list[bytes]) -> int:
        with self._lock:
            subscribers = list(self._local)
        for subscriber in subscribers:
            for message in batch:
                try:
                    subscriber(message)
                except Exception:  # one subscriber's fault must not stop the others
                    log.exception("realtime: a local subscriber failed")
        return len(batch)


def init_app(app: APIFlask) -> None:
    redis: Redis | None = app.extensions.get("redis")
    app.extensions["fanout"] = Fanout(redis, channel_of(app.settings.cache_prefix))


def get_fanout() -> Fanout:
    """The current app's :class:`Fanout`."""
    fanout: Fanout = current_app.extensions["fanout"]
    return fanout
