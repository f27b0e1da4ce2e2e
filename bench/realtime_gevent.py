"""The rival stream server of ``bench.realtime``: gunicorn's gevent worker and
``simple-websocket``, on the same app (``create_app``: settings, models, token
rules), doing the same work per connection as ``app/realtime``: the bearer
token read, the account looked up, the user's last id read, ``{"type":
"ready"}``, then each live frame of the user from one Redis subscription per
worker process, through a bounded queue (a full one closes with 1013).

    gunicorn -k gevent --worker-connections 4000 bench.realtime_gevent:app

A sketch for measuring, not a second implementation of the contract: no
ticket, no ``after`` replay, no gap check.
"""

from __future__ import annotations

from typing import Any, cast

import gevent
import simple_websocket  # pyright: ignore[reportMissingTypeStubs]
from flask import Response, request
from gevent.queue import Full, Queue
from redis import Redis

from app import create_app
from app.auth.access_tokens import InvalidToken, read_access_token
from app.extensions.database import get_database
from app.extensions.fanout import channel_of
from app.models import User
from app.services import notifications
from app.services.notifications import Message

app = create_app()
PATH = "/api/v1/notifications/stream"
READY = '{"type":"ready"}'
_queues: dict[int, set[Queue[bytes]]] = {}
_listening: list[gevent.Greenlet] = []


def _listen() -> None:
    client: Redis = Redis.from_url(
        app.settings.redis_url
    )  # pyright: ignore[reportUnknownMemberType]
    pubsub = client.pubsub(
        ignore_subscribe_messages=True
    )  # pyright: ignore[reportUnknownMemberType]
    pubsub.subscribe(
        channel_of(app.settings.cache_prefix)
    )  # pyright: ignore[reportUnknownMemberType]
    for (
        raw
    ) in pubsub.listen():  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if raw["type"] != "message":
            continue
        message = Message.parse(bytes(raw["data"]))  # pyright: ignore[reportUnknownArgumentType]
        for queue in tuple(_queues.get(message.user_id, ())):
            try:
                queue.put_nowait(message.frame)
            except Full:
                queue.put(b"")  # the slow-reader mark: the handler closes with 1013


def stream() -> Any:
    if not _listening:
        _listening.append(gevent.spawn(_listen))
    secret = app.settings.secret_key.get_secret_value()
    _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    ws = simple_websocket.Server(  # pyright: ignore[reportUnknownMemberType]
        request.environ, ping_interval=app.settings.realtime_ping_interval, max_message_size=4096
    )
    try:
        user_id = read_access_token(token.strip(), secret).user_id
    except InvalidToken:
        ws.close(cast("Any", 4401))  # pyright: ignore[reportUnknownMemberType]
        return Response()
    session = get_database().session()
    if session.get(User, user_id) is None:
        ws.close(cast("Any", 4403))  # pyright: ignore[reportUnknownMemberType]
        return Response()
    queue: Queue[bytes] = Queue(maxsize=app.settings.realtime_send_queue)
    _queues.setdefault(user_id, set()).add(queue)
    notifications.last_id(session, user_id)
    session.close()
    try:
        ws.send(READY)  # pyright: ignore[reportUnknownMemberType]
        while ws.connected:  # pyright: ignore[reportUnknownMemberType]
            frame = queue.get()
            if not frame:
                ws.close(cast("Any", 1013))  # pyright: ignore[reportUnknownMemberType]
                break
            ws.send(frame.decode())  # pyright: ignore[reportUnknownMemberType]
    except simple_websocket.ConnectionClosed:  # pyright: ignore[reportUnknownMemberType]
        pass
    finally:
        _queues[user_id].discard(queue)
    return Response()


# The app's own rule for the path (make dev's bridge) now leads here.
app.view_functions["notification_stream"] = stream
