"""The notification stream's rules, served in a thread of the test process
(:class:`app.realtime.dev.DevStream`, as ``make dev`` serves it) on the real
databases and Redis, with a real WebSocket client: tickets and tokens, the
replay, the close codes, the slow reader, bad input, and make dev's bridge.
``tests/test_realtime_processes.py`` runs it as separate processes."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from api_support import Api, Caller
from conftest import AppFactory
from realtime_support import frames_until_ready, next_notification, nothing_more, open_stream
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed, InvalidStatus
from werkzeug.serving import make_server

from app.extensions.database import get_database
from app.extensions.fanout import channel_of
from app.models import User, utcnow
from app.models.notification import StreamTicket
from app.realtime.dev import DevStream

Stream = tuple[Api, int]


@contextlib.contextmanager
def serving(api: Api) -> Iterator[int]:
    """The port of the app's stream server, started in a thread, stopped after."""
    server = DevStream(api.app)
    _host, port = server.address()
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def stream(api: Api) -> Iterator[Stream]:
    """The app, and the port of its stream server."""
    with serving(api) as port:
        yield api, port


def ticket(api: Api, caller: Caller) -> str:
    response = api.client.post("/api/v1/notifications/ticket", headers=caller.headers)
    assert response.status_code == 201
    assert response.json is not None
    value: str = response.json["ticket"]
    return value


def comment(api: Api, caller: Caller, article_id: int, body: str = "Nice") -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/articles/{article_id}/comments", json={"body": body}, headers=caller.headers
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def listed(api: Api, caller: Caller) -> list[dict[str, Any]]:
    """The REST list, oldest first."""
    response = api.client.get("/api/v1/notifications?per_page=100", headers=caller.headers)
    assert response.json is not None
    return list(reversed(response.json["items"]))


def close_code(ws: Any, seconds: float = 10) -> int | None:
    """Read until the server closes; the code it closed with."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    raise AssertionError("the server did not close the connection")


# -- connecting and receiving ---------------------------------------------------------


def test_a_ticket_opens_the_stream_and_a_comment_arrives_live(stream: Stream) -> None:
    api, port = stream
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    with open_stream(port, ticket=ticket(api, author)) as ws:
        assert frames_until_ready(ws) == []  # no after: live only
        comment(api, reader, article["id"], "hello")
        live = next_notification(ws)
        assert live == listed(api, author)[-1]
        assert live["type"] == "comment.created"
        assert live["data"]["excerpt"] == "hello"
        assert nothing_more(ws, 0.5)


def test_a_bearer_token_opens_the_stream(stream: Stream) -> None:
    api, port = stream
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    with open_stream(port, token=author.token) as ws:
        assert frames_until_ready(ws) == []
        comment(api, reader, article["id"])
        assert next_notification(ws)["data"]["actor"]["id"] == reader.id


def test_after_replays_in_order_then_ready_then_live(stream: Stream) -> None:
    api, port = stream
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    for n in range(3):
        comment(api, reader, article["id"], f"c{n}")
    notes = listed(api, author)  # article.published, then the three comments
    with open_stream(port, ticket=ticket(api, author), after=notes[1]["id"]) as ws:
        assert frames_until_ready(ws) == notes[2:]
        comment(api, reader, article["id"], "live")
        assert next_notification(ws)["data"]["excerpt"] == "live"
    with open_stream(port, token=author.token, after=0) as ws:
        assert [n["id"] for n in frames_until_ready(ws)] == [n["id"] for n in listed(api, author)]


def test_only_the_users_own_notifications_reach_them(stream: Stream) -> None:
    api, port = stream
    author, reader, other = api.register("Ada"), api.register("Grace"), api.register("Eve")
    article = api.article(author)
    with open_stream(port, token=other.token, after=0) as ws:
        assert frames_until_ready(ws) == []
        comment(api, reader, article["id"])
        assert nothing_more(ws, 1.0)


# -- credentials ---------------------------------------------------------------------


def test_a_reused_ticket_closes_with_4401_before_any_frame(stream: Stream) -> None:
    api, port = stream
    author = api.register("Ada")
    spent = ticket(api, author)
    with open_stream(port, ticket=spent) as ws:
        frames_until_ready(ws)
    with open_stream(port, ticket=spent) as ws:
        assert close_code(ws) == 4401


@pytest.mark.parametrize(
    "credentials",
    [{}, {"ticket": "not-a-ticket"}, {"ticket": ""}, {"token": "not.a.token"}],
    ids=["none", "unknown-ticket", "empty-ticket", "bad-token"],
)
def test_missing_or_bad_credentials_close_with_4401(
    stream: Stream, credentials: dict[str, str]
) -> None:
    _api, port = stream
    with open_stream(port, **credentials) as ws:
        assert close_code(ws) == 4401


def test_an_expired_ticket_closes_with_4401(stream: Stream) -> None:
    api, port = stream
    author = api.register("Ada")
    old = ticket(api, author)
    with api.app.app_context():
        session = get_database().session()
        session.execute(update(StreamTicket).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    with open_stream(port, ticket=old) as ws:
        assert close_code(ws) == 4401


def test_an_account_that_is_gone_closes_with_4403(stream: Stream) -> None:
    api, port = stream
    author = api.register("Ada")
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.get(User, author.id))
        session.commit()
    with open_stream(port, token=author.token) as ws:
        assert close_code(ws) == 4403


def test_one_stream_too_many_closes_with_4429_and_the_others_go_on(
    make_api_app: AppFactory,
) -> None:
    api = Api(make_api_app(realtime_max_streams_per_account=2))
    with serving(api) as port:
        author, reader = api.register("Ada"), api.register("Grace")
        article = api.article(author)
        with (
            open_stream(port, token=author.token) as one,
            open_stream(port, token=author.token) as two,
        ):
            frames_until_ready(one)
            frames_until_ready(two)
            with open_stream(port, token=author.token) as three:
                assert close_code(three) == 4429
            comment(api, reader, article["id"])
            assert next_notification(one)["id"] == next_notification(two)["id"]
        with open_stream(port, token=author.token) as again:  # a closed one frees its place
            assert frames_until_ready(again) == []


# -- bad input and abuse -------------------------------------------------------------


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "9" * 30])
def test_a_bad_after_is_a_422_envelope_before_the_upgrade(stream: Stream, after: str) -> None:
    api, port = stream
    author = api.register("Ada")
    with (
        pytest.raises(InvalidStatus) as refused,
        open_stream(port, token=author.token, after=after),
    ):
        pass
    response = refused.value.response
    assert response.status_code == 422
    body = json.loads(response.body)
    assert body["code"] == 422
    assert body["error_code"] == 10001
    assert "after" in body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_another_path_is_a_404_envelope(stream: Stream) -> None:
    _api, port = stream
    from websockets.sync.client import connect  # noqa: PLC0415

    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"ws://127.0.0.1:{port}/api/v1/elsewhere", open_timeout=5),
    ):
        pass
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["error_code"] == 13001


def test_client_frames_are_ignored_and_an_oversized_one_closes_with_1009(stream: Stream) -> None:
    api, port = stream
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    limit = api.app.settings.realtime_max_client_frame
    with open_stream(port, token=author.token) as ws:
        frames_until_ready(ws)
        ws.send("hello")
        ws.send(b"\x00" * 100)
        comment(api, reader, article["id"])
        assert next_notification(ws)["type"] == "comment.created"
        ws.send("x" * (limit + 1))
        assert close_code(ws) == 1009


def test_a_slow_reader_is_closed_with_1013_and_the_others_are_served(
    make_api_app: AppFactory, redis_client: redis.Redis
) -> None:
    api = Api(make_api_app(realtime_send_queue=4))
    with serving(api) as port:
        slow_user, fast_user = api.register("Slow"), api.register("Fast")
        # The slow client's receive buffer is tiny and it stops reading after one
        # message; the server's buffers fill, then its queue of four.
        with (
            open_stream(port, token=slow_user.token, max_queue=1) as slow,
            open_stream(port, token=fast_user.token) as fast,
        ):
            frames_until_ready(slow)
            frames_until_ready(fast)
            _shrink_receive_buffer(slow)
            channel = channel_of(api.app.settings.cache_prefix)
            frame = b'{"type":"notification","notification":{"pad":"' + b"x" * 60_000 + b'"}}'
            for n in range(1, 401):
                redis_client.publish(channel, b"%d %d %d %s" % (slow_user.id, n - 1, n, frame))
            redis_client.publish(channel, b"%d 0 1 %s" % (fast_user.id, b'{"type":"notification"}'))
            assert json.loads(fast.recv(10)) == {"type": "notification"}
            assert close_code(slow, 30) == 1013


def _shrink_receive_buffer(ws: Any) -> None:
    sock: socket.socket = ws.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


def test_shutting_down_closes_every_stream_with_1001(api: Api) -> None:
    server = DevStream(api.app)
    _host, port = server.address()
    author = api.register("Ada")
    with open_stream(port, token=author.token) as ws:
        frames_until_ready(ws)
        threading.Thread(target=server.stop).start()
        assert close_code(ws) == 1001


# -- make dev: the stream on the app's own port ---------------------------------------


def test_make_dev_serves_the_stream_on_the_apps_port_without_redis(
    make_api_app: AppFactory,
) -> None:
    api = Api(make_api_app(redis_url=""))
    http = make_server("127.0.0.1", 0, api.app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        author, reader = api.register("Ada"), api.register("Grace")
        article = api.article(author)
        comment(api, reader, article["id"], "before")
        first = listed(api, author)[0]
        with open_stream(http.server_port, ticket=ticket(api, author), after=first["id"]) as ws:
            assert [n["data"]["excerpt"] for n in frames_until_ready(ws)] == ["before"]
            comment(api, reader, article["id"], "live")
            assert next_notification(ws)["data"]["excerpt"] == "live"
        with open_stream(http.server_port, ticket="spent-or-not") as ws:
            assert close_code(ws) == 4401
    finally:
        http.shutdown()
        api.app.extensions["dev_stream"].stop()


def test_without_an_upgrade_the_path_answers_426(api: Api) -> None:
    response = api.client.get("/api/v1/notifications/stream")
    assert response.status_code == 426
    assert response.json is not None
    assert response.json["error_code"] == 10010
    assert response.headers["Upgrade"] == "websocket"


def test_the_process_answers_its_health_check_without_an_upgrade(stream: Stream) -> None:
    api, port = stream
    author = api.register("Ada")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok", "connections": 0}
    with open_stream(port, token=author.token) as ws:
        frames_until_ready(ws)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert json.loads(response.read())["connections"] == 1


def test_a_plain_request_to_the_stream_process_is_a_426_envelope(stream: Stream) -> None:
    _api, port = stream
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/notifications/stream", timeout=5)
    assert refused.value.code == 426
    assert refused.value.headers["Upgrade"] == "websocket"
    assert json.loads(refused.value.read())["error_code"] == 10010


def _raw_frames(sock: socket.socket, seconds: float) -> Iterator[tuple[int, bytes]]:
    """Server frames read off a raw socket: (opcode, payload), unmasked, small."""
    sock.settimeout(seconds)
    buffer = b""
    while True:
        while len(buffer) < 2 or len(buffer) < 2 + (buffer[1] & 0x7F):
            chunk = sock.recv(4096)
            if not chunk:
                return
            buffer += chunk
        length = buffer[1] & 0x7F
        assert length < 126, "the test reads small frames only"
        yield buffer[0] & 0x0F, buffer[2 : 2 + length]
        buffer = buffer[2 + length :]


def test_the_server_pings_and_drops_a_client_that_never_answers(
    make_api_app: AppFactory,
) -> None:
    api = Api(make_api_app(realtime_ping_interval=0.3))
    with serving(api) as port:
        author = api.register("Ada")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                (
                    "GET /api/v1/notifications/stream HTTP/1.1\r\nHost: localhost\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    f"Authorization: Bearer {author.token}\r\n\r\n"
                ).encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 101")
            frames = list(_raw_frames(sock, 5))  # this client never answers a ping
        opcodes = [opcode for opcode, _ in frames]
        assert frames[0] == (0x1, b'{"type":"ready"}')
        assert 0x9 in opcodes  # a ping
        assert opcodes[-1] == 0x8  # then the server closed: no pong came in time
        assert int.from_bytes(frames[-1][1][:2], "big") == 1011
