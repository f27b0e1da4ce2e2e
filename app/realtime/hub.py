"""The connections of one stream process, by user, and what reaches them.

A :class:`Stream` is one open WebSocket; ``pending`` holds the live frames
that wait for it, at most ``REALTIME_SEND_QUEUE``. :meth:`Stream.offer` never
waits: one frame more means the client reads too slowly, and it is closed with
1013 rather than slowing the fan-out for everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection

from app.services.notifications import Message

log = logging.getLogger("app.realtime")

CLOSE_SLOW = 1013

#: A queue item that tells a connection to read the table: messages were lost.
RESYNC = object()


#: The closing handshakes under way (a task must be referenced until it ends).
_closing: set[asyncio.Task[None]] = set()

Drain = Callable[["Stream"], Coroutine[Any, Any, None]]


@dataclass(eq=False, slots=True)
class Stream:
    """One open connection of one user. An idle one holds no task and no
    queue object: a send task starts when a frame arrives and ends when
    ``pending`` is empty."""

    connection: ServerConnection
    user_id: int
    #: Frames (or resyncs) that may wait before the client counts as slow.
    limit: int
    #: Sends what is pending; the server's, so that the hub needs no database.
    drain: Drain
    pending: deque[Message | object] = field(default_factory=deque[Message | object])
    #: The id of the last notification sent (or, live-only, the user's last at connect).
    last_id: int = 0
    #: Set once the replay and ``ready`` are sent: live frames may go out.
    live: bool = False
    closing: bool = False
    sending: asyncio.Task[None] | None = None

    def offer(self, item: Message | object) -> None:
        """Queue a frame (or a resync) without waiting; too many waiting is a slow reader."""
        if self.closing:
            return
        if len(self.pending) >= self.limit:
            self.close(
                CLOSE_SLOW, "too slow: the server's send queue is full; reconnect with after"
            )
            return
        self.pending.append(item)
        self.go_live_if_ready()

    def go_live_if_ready(self) -> None:
        if self.live and self.pending and self.sending is None and not self.closing:
            self.sending = asyncio.get_running_loop().create_task(self.drain(self))

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        task = asyncio.get_running_loop().create_task(self.connection.close(code, reason))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


class Hub:
    """This process's connections, by user, and what reaches them."""

    def __init__(self) -> None:
        self.by_user: dict[int, set[Stream]] = {}

    def count(self, user_id: int) -> int:
        return len(self.by_user.get(user_id, ()))

    def add(self, stream: Stream) -> None:
        self.by_user.setdefault(stream.user_id, set()).add(stream)

    def remove(self, stream: Stream) -> None:
        streams = self.by_user.get(stream.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.by_user[stream.user_id]

    def deliver(self, raw: bytes) -> None:
        """One fan-out message, to the connections of its user."""
        try:
            message = Message.parse(raw)
        except ValueError:
            log.warning("realtime: dropped a message that is not a notification: %r", raw[:100])
            return
        for stream in tuple(self.by_user.get(message.user_id, ())):
            stream.offer(message)

    def resync_all(self) -> None:
        """Messages may have been lost: every connection reads the table."""
        for streams in tuple(self.by_user.values()):
            for stream in tuple(streams):
                stream.offer(RESYNC)

    def connections(self) -> int:
        return sum(len(streams) for streams in self.by_user.values())
