"""The notification stream: an asyncio WebSocket server on ``websockets``.

One process holds many idle connections cheaply (a coroutine and a small
queue each), so the stream runs apart from gunicorn, whose threads it would
otherwise hold for good (``docs/architecture.md`` has the measurements).

**A connection's life.**

1. The handshake; a bad ``after`` is a 400 in the API's envelope, before any
   upgrade.
2. Who it is: ``?ticket=`` (spent on use) or ``Authorization: Bearer``. A
   missing, expired or spent one closes with 4401; an account that no longer
   exists, 4403; one stream too many for the account, 4429.
3. It joins the :class:`Hub` *before* reading the table, so nothing published
   meanwhile is missed; then the replay of every notification after ``after``,
   then ``{"type": "ready"}``, then live frames.
4. Each live frame whose id it has sent already is skipped; one whose
   ``previous_id`` it has not sent means a message was lost (Redis restarted,
   say), and it reads the table from its last id instead. So a client never
   misses or doubles one, whichever process or replica it reconnects to.

**Abuse.** Client frames are read and dropped; one larger than
``REALTIME_MAX_CLIENT_FRAME`` closes with 1009 (``websockets`` does it). A
client that reads too slowly fills its queue of ``REALTIME_SEND_QUEUE`` frames
and is closed with 1013; everyone else is served on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import orjson
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from app.auth.access_tokens import InvalidToken, read_access_token
from app.core.envelope import ErrorEnvelope
from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.extensions.fanout import channel_of
from app.models import User
from app.realtime.hub import RESYNC, Hub, Stream
from app.services import notifications
from app.services.notifications import Message, Sent

if TYPE_CHECKING:
    from app.core.application import APIFlask

log = logging.getLogger("app.realtime")

#: The path the stream answers on (nginx sends it here as it came).
PATH = "/api/v1/notifications/stream"
READY = b'{"type":"ready"}'
#: What a plain HTTP request to the stream's path is told (426), here and by make dev's bridge.
NOT_UPGRADED = "The stream is a WebSocket: connect with ws:// (or wss://) to this path"
#: The liveness check of the process (its container's healthcheck), never upgraded.
HEALTH_PATH = "/health"

#: Close codes of the contract.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
#: Seconds the subscriber waits before trying Redis again, at most.
RESUBSCRIBE_CAP = 5.0

T = TypeVar("T")


class StreamServer:
    """The stream of one app: its hub, its connections, and its subscription."""

    def __init__(self, app: APIFlask) -> None:
        self.app = app
        self.settings = app.settings
        self.hub = Hub()
        pool = max(2, self.settings.database_pool_size)
        self._executor = ThreadPoolExecutor(max_workers=pool, thread_name_prefix="realtime-db")
        self._secret = self.settings.secret_key.get_secret_value()

    # -- the database, off the event loop ------------------------------------------

    def _in_app(self, work: Callable[[Session], T]) -> T:
        with self.app.app_context():
            return work(get_database().session())

    async def db(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_app, work)

    # -- serving -------------------------------------------------------------------

    def serve(self, host: str, port: int, **options: Any) -> Any:
        """The ``websockets`` server (an async context manager) on ``host:port``."""
        return serve(
            self.handle,
            host,
            port,
            process_request=self.check_request,
            max_size=self.settings.realtime_max_client_frame,
            ping_interval=self.settings.realtime_ping_interval,
            ping_timeout=self.settings.realtime_ping_interval,
            # Client frames are dropped as they come; a few may wait.
            max_queue=4,
            server_header=None,
            **options,
        )

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the upgrade: the health check, the path, and a well-formed ``after``."""
        url = urlsplit(request.path)
        if url.path == HEALTH_PATH:
            return _json(
                HTTPStatus.OK,
                {"status": "ok", "connections": self.hub.connections()},
                connection.id.hex,
            )
        if url.path != PATH:
            return _envelope(connection, HTTPStatus.NOT_FOUND, ErrorCode.ROUTE_NOT_FOUND, None)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            response = _envelope(
                connection,
                HTTPStatus.UPGRADE_REQUIRED,
                ErrorCode.UPGRADE_REQUIRED,
                NOT_UPGRADED,
            )
            response.headers["Upgrade"] = "websocket"
            return response
        after = parse_qs(url.query).get("after", ["0"])
        if len(after) != 1 or not after[0].isdigit() or len(after[0]) > 18:
            return _envelope(
                connection,
                HTTPStatus.UNPROCESSABLE_ENTITY,
                ErrorCode.VALIDATION_FAILED,
                "after must be the id of a notification (a whole number, 0 or more)",
            )
        return None

    async def handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None  # the handshake is done  # noqa: S101
        query = parse_qs(urlsplit(request.path).query)
        after = int(query["after"][0]) if "after" in query else None
        user_id = await self._authenticate(connection, request.headers, query)
        if user_id is None:
            return
        if self.hub.count(user_id) >= self.settings.realtime_max_streams_per_account:
            await connection.close(CLOSE_TOO_MANY, "this account holds its allowed streams already")
            return
        stream = Stream(connection, user_id, self.settings.realtime_send_queue, self._drain)
        self.hub.add(stream)  # before the table is read: nothing published meanwhile is missed
        try:
            await self._run(stream, after)
        except ConnectionClosed:
            pass
        finally:
            self.hub.remove(stream)

    async def _authenticate(
        self, connection: ServerConnection, headers: Headers, query: dict[str, list[str]]
    ) -> int | None:
        user_id: int | None = None
        tickets = query.get("ticket")
        if tickets:
            ticket = tickets[0]
            user_id = await self.db(lambda session: notifications.redeem_ticket(session, ticket))
        else:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                try:
                    user_id = read_access_token(token.strip(), self._secret).user_id
                except InvalidToken:
                    user_id = None
        if user_id is None:
            await connection.close(
                CLOSE_UNAUTHORIZED, "send a valid ticket (?ticket=) or access token (Bearer)"
            )
            return None
        found = user_id
        exists = await self.db(lambda session: session.get(User, found) is not None)
        if not exists:
            await connection.close(CLOSE_FORBIDDEN, "this account no longer exists")
            return None
        return user_id

    async def _run(self, stream: Stream, after: int | None) -> None:
        user_id = stream.user_id
        if after is None:
            stream.last_id = await self.db(lambda session: notifications.last_id(session, user_id))
        else:
            stream.last_id = after
            await self._catch_up(stream)
        await stream.connection.send(READY, text=True)
        stream.live = True
        stream.go_live_if_ready()  # what arrived during the replay
        try:
            async for _ in stream.connection:  # client frames beyond pongs are dropped
                pass
        finally:
            if stream.sending is not None:
                stream.sending.cancel()

    async def _catch_up(self, stream: Stream) -> None:
        """Send every notification of the user after the last one sent, in order."""
        user_id = stream.user_id
        while True:
            batch: list[Sent] = await self.db(
                partial(_replay, user_id=user_id, after=stream.last_id)
            )
            for sent in batch:
                await stream.connection.send(sent.frame, text=True)
                stream.last_id = sent.id
            if len(batch) < notifications.REPLAY_BATCH:
                return

    async def _drain(self, stream: Stream) -> None:
        """Send what is pending, in order; ends when nothing is."""
        try:
            while stream.pending:
                item = stream.pending.popleft()
                if item is RESYNC:
                    await self._catch_up(stream)
                    continue
                assert isinstance(item, Message)  # noqa: S101
                if item.id <= stream.last_id:
                    continue  # sent already, by the replay
                if item.previous_id > stream.last_id:
                    await self._catch_up(stream)  # one went missing: the table has it
                    continue
                await stream.connection.send(item.frame, text=True)
                stream.last_id = item.id
        except ConnectionClosed:
            pass
        except Exception:  # one connection's fault must not reach the others
            log.exception("realtime: the stream of user %d failed", stream.user_id)
            stream.close(1011, "internal error")
        finally:
            stream.sending = None

    # -- the fan-out ---------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Hear the fan-out for good: Redis pub/sub, resubscribing after a
        failure (and then every connection reads the table), or, without
        Redis, the in-process fan-out of this app."""
        if not self.settings.redis_url:
            await self._subscribe_locally()
            return
        delay = 0.5
        while True:
            client = AsyncRedis.from_url(  # pyright: ignore[reportUnknownMemberType]
                self.settings.redis_url,
                socket_connect_timeout=self.settings.redis_socket_timeout,
                health_check_interval=5,
            )
            try:
                pubsub = client.pubsub(  # pyright: ignore[reportUnknownMemberType]
                    ignore_subscribe_messages=True
                )
                async with pubsub:
                    await pubsub.subscribe(channel)
                    log.info("realtime: subscribed to %s", channel)
                    self.hub.resync_all()
                    delay = 0.5
                    while True:
                        message = cast(
                            "dict[str, Any] | None", await pubsub.get_message(timeout=1.0)
                        )
                        if message is not None and message["type"] == "message":
                            self.hub.deliver(bytes(message["data"]))
            except (RedisError, OSError) as exc:
                log.warning(
                    "realtime: lost Redis (%s: %s); live delivery pauses, retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(RESUBSCRIBE_CAP, delay * 2)

    async def _subscribe_locally(self) -> None:
        loop = asyncio.get_running_loop()

        def hear(raw: bytes) -> None:  # called in the publishing thread
            loop.call_soon_threadsafe(self.hub.deliver, raw)

        stop = self.app.extensions["fanout"].subscribe_local(hear)
        try:
            await asyncio.Event().wait()
        finally:
            stop()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _replay(session: Session, *, user_id: int, after: int) -> list[Sent]:
    return notifications.replay(session, user_id, after)


def _envelope(
    connection: ServerConnection, status: HTTPStatus, code: ErrorCode, message: str | None
) -> Response:
    """An HTTP error in the API's envelope, for a request that is not upgraded."""
    request_id = connection.id.hex
    body = ErrorEnvelope(
        code=status.value,
        error_code=int(code),
        message=message or code.default_message,
        request_id=request_id,
    ).model_dump(exclude_none=True)
    return _json(status, body, request_id)


def _json(status: HTTPStatus, body: dict[str, Any], request_id: str) -> Response:
    payload = orjson.dumps(body)
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Request-ID", request_id),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, payload)


async def run(
    app: APIFlask,
    host: str,
    port: int,
    *,
    ready: Callable[[Server], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the stream until ``stop`` is set (by default: until SIGTERM or
    SIGINT), then close every connection with 1001, so clients reconnect with
    ``after``."""
    server = StreamServer(app)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    subscriber = asyncio.create_task(server.subscribe(channel_of(app.settings.cache_prefix)))
    try:
        async with server.serve(host, port) as ws_server:
            log.info("realtime: serving the stream on %s:%d%s", host, port, PATH)
            if ready is not None:
                ready(ws_server)
            await stop.wait()
            log.info("realtime: shutting down, closing %d stream(s)", server.hub.connections())
    finally:
        subscriber.cancel()
        server.close()
