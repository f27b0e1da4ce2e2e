"""Notifications: written with the change that causes them (a comment on your
article, your article becoming searchable), published only after the commit,
and read by the REST routes; bad input changes nothing. On SQLite and MariaDB,
with the real Redis for the fan-out."""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis
from api_support import Api, Caller, error, snapshot
from conftest import AppFactory
from meili_fake import FakeMeilisearch
from sqlalchemy import delete, func, select, update

from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.extensions.fanout import Fanout, channel_of, get_fanout
from app.extensions.search import require_index
from app.models import Article, User, utcnow
from app.models.comment import Comment
from app.models.notification import Notification, StreamTicket
from app.services import indexing, notifications
from app.tasks.maintenance import purge_expired_stream_tickets

URL = "/api/v1/notifications"


def comment(api: Api, caller: Caller, article_id: int, body: str = "Nice one") -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/articles/{article_id}/comments", json={"body": body}, headers=caller.headers
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def page(api: Api, caller: Caller, query: str = "") -> dict[str, Any]:
    response = api.client.get(f"{URL}{query}", headers=caller.headers)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def unread(api: Api, caller: Caller) -> int:
    response = api.client.get(f"{URL}/unread-count", headers=caller.headers)
    assert response.status_code == 200
    assert response.json is not None
    count: int = response.json["count"]
    return count


def of_type(api: Api, caller: Caller, type_: str) -> list[dict[str, Any]]:
    return [item for item in page(api, caller)["items"] if item["type"] == type_]


# -- comment.created -----------------------------------------------------------------


def test_a_comment_on_your_article_notifies_you(api: Api) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author, title="On engines")
    made = comment(api, reader, article["id"], "x" * 200)
    [note] = of_type(api, author, "comment.created")
    assert note["data"] == {
        "article_id": article["id"],
        "article_title": "On engines",
        "comment_id": made["id"],
        "actor": {"id": reader.id, "name": "Grace"},
        "excerpt": "x" * notifications.EXCERPT_LENGTH,
    }
    assert note["read_at"] is None
    assert note["created_at"].endswith("Z")
    assert set(note) == {"id", "type", "created_at", "read_at", "data"}
    assert of_type(api, reader, "comment.created") == []


def test_commenting_on_your_own_article_notifies_nobody(api: Api) -> None:
    author = api.register("Ada")
    comment(api, author, api.article(author)["id"])
    assert of_type(api, author, "comment.created") == []


def test_a_refused_comment_writes_no_notification(api: Api) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    draft = api.article(author, status="draft")
    response = api.client.post(
        f"/api/v1/articles/{draft['id']}/comments", json={"body": "hi"}, headers=author.headers
    )
    error(response, 409, ErrorCode.CONFLICT)
    bad = api.client.post(
        f"/api/v1/articles/{draft['id']}/comments", json={"body": " "}, headers=reader.headers
    )
    assert bad.status_code == 422
    with api.app.app_context():
        session = get_database().session()
        assert session.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_rolled_back_comment_writes_and_publishes_nothing(make_api_app: AppFactory) -> None:
    api = Api(make_api_app(redis_url=""))  # the in-process fan-out, heard below
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    heard: list[bytes] = []
    with api.app.app_context():
        stop = _hear_locally(api, heard)
        session = get_database().session()
        session.add(
            Comment(article_id=article["id"], author_id=reader.id, body="gone", **_now_fields())
        )
        session.flush()
        comment_notes = select(func.count()).where(Notification.type == "comment.created")
        assert session.scalar(comment_notes) == 1
        session.rollback()
        assert session.scalar(comment_notes) == 0
        stop()
    assert heard == []
    # The same comment, committed, is heard: the silence above was the rollback's.
    with api.app.app_context():
        stop = _hear_locally(api, heard)
    comment(api, reader, article["id"])
    stop()
    assert len(heard) == 1


def _now_fields() -> dict[str, Any]:
    now = utcnow()
    return {"created_at": now, "updated_at": now}


def _hear_locally(api: Api, heard: list[bytes]) -> Any:
    """Listen to the in-process fan-out as ``make dev``'s stream does (an app
    without Redis)."""
    return get_fanout().subscribe_local(heard.append)


# -- article.published ---------------------------------------------------------------


def test_without_meilisearch_publishing_notifies_the_author_at_once(api: Api) -> None:
    author = api.register("Ada")
    published = api.article(author, title="Live")
    draft = api.article(author, status="draft", title="Later")
    assert [n["data"] for n in of_type(api, author, "article.published")] == [
        {"article_id": published["id"], "article_title": "Live"}
    ]
    response = api.client.patch(
        f"/api/v1/articles/{draft['id']}", json={"status": "published"}, headers=author.headers
    )
    assert response.status_code == 200
    renamed = api.client.patch(
        f"/api/v1/articles/{draft['id']}", json={"title": "Renamed"}, headers=author.headers
    )
    assert renamed.status_code == 200
    assert [n["data"]["article_id"] for n in of_type(api, author, "article.published")] == [
        draft["id"],
        published["id"],
    ]


def test_with_meilisearch_the_author_hears_once_the_index_confirmed(
    make_api_app: AppFactory, meili: FakeMeilisearch
) -> None:
    api = Api(make_api_app(meili_url=meili.url, celery_broker_url="redis://127.0.0.1:1/0"))
    author = api.register("Ada")
    article = api.article(author, title="Searchable")  # the broker is down: not indexed yet
    assert of_type(api, author, "article.published") == []
    with api.app.app_context():
        session = get_database().session()
        indexing_lease = timedelta(seconds=30)
        delivery = indexing.deliver(session, require_index(), [article["id"]], lease=indexing_lease)
    assert delivery.settled_rows == 1
    assert article["id"] in meili.docs
    [note] = of_type(api, author, "article.published")
    assert note["data"] == {"article_id": article["id"], "article_title": "Searchable"}
    # A second delivery of the same article (an edit) announces nothing more.
    edit = api.client.patch(
        f"/api/v1/articles/{article['id']}", json={"body": "edited"}, headers=author.headers
    )
    assert edit.status_code == 200
    with api.app.app_context():
        session = get_database().session()
        indexing.deliver(session, require_index(), [article["id"]], lease=indexing_lease)
    assert len(of_type(api, author, "article.published")) == 1


def test_with_meilisearch_down_the_announcement_waits_for_the_index(
    make_api_app: AppFactory, meili: FakeMeilisearch
) -> None:
    api = Api(make_api_app(meili_url=meili.url))
    meili.task_outcomes["documentAdditionOrUpdate"] = {"code": "internal", "message": "down"}
    author = api.register("Ada")
    article = api.article(author)
    assert of_type(api, author, "article.published") == []
    meili.task_outcomes.clear()
    with api.app.app_context():
        indexing.deliver(
            get_database().session(), require_index(), [article["id"]], lease=timedelta(30)
        )
    assert [n["data"]["article_id"] for n in of_type(api, author, "article.published")] == [
        article["id"]
    ]


# -- order and the published message -------------------------------------------------


def test_ids_increase_and_each_names_the_one_before(make_api_app: AppFactory) -> None:
    api = Api(make_api_app(redis_url=""))
    author = api.register("Ada")
    others = [api.register(f"R{n}") for n in range(3)]
    article = api.article(author)
    heard: list[bytes] = []
    with api.app.app_context():
        stop = _hear_locally(api, heard)
    try:
        for other in others:
            comment(api, other, article["id"])
    finally:
        stop()
    items = list(reversed(page(api, author)["items"]))  # oldest first
    ids = [item["id"] for item in items]
    assert ids == sorted(ids)
    messages = [notifications.Message.parse(raw) for raw in heard]
    assert [m.id for m in messages] == ids[1:]  # the first is article.published, before we listened
    assert [m.previous_id for m in messages] == ids[:-1]
    assert {m.user_id for m in messages} == {author.id}
    frame = orjson.loads(messages[-1].frame)
    assert frame == {"type": "notification", "notification": items[-1]}


def test_with_redis_the_message_goes_out_on_the_channel_after_commit(
    api: Api, redis_client: redis.Redis
) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(channel_of(api.app.settings.cache_prefix))
    assert pubsub.get_message(timeout=1) is not None  # the subscribe confirmation
    comment(api, reader, article["id"])
    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None
    parsed = notifications.Message.parse(message["data"])
    [note] = of_type(api, author, "comment.created")
    assert (parsed.user_id, parsed.id) == (author.id, note["id"])


def test_redis_down_loses_no_notification_and_does_not_fail_the_write(
    make_api_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    api = Api(make_api_app(redis_url="redis://127.0.0.1:1/0"))  # refuses at once
    caplog.set_level(logging.WARNING, logger="app.realtime")
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    started = time.monotonic()
    comment(api, reader, article["id"])
    comment(api, reader, article["id"])
    assert time.monotonic() - started < 5
    assert len(of_type(api, author, "comment.created")) == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "app.realtime"]
    # A refusal is cheap: each write tries again, so a Redis back up is used at once.
    assert sum("could not publish 1 notification(s)" in line for line in logged) >= 2


def test_a_hanging_redis_costs_one_timeout_then_publishing_rests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        fanout = Fanout(redis.Redis(port=port, socket_timeout=0.3), "test:notifications")
        caplog.set_level(logging.WARNING, logger="app.realtime")
        started = time.monotonic()
        assert fanout.publish([b"1 0 1 {}"]) == 0
        first = time.monotonic() - started
        assert fanout.publish([b"1 1 2 {}"]) == 0
        second = time.monotonic() - started - first
    assert first >= 0.3  # the timeout, once
    assert second < 0.05  # resting: not tried
    logged = [r.getMessage() for r in caplog.records if r.name == "app.realtime"]
    assert any("will not try for 5s" in line for line in logged)
    assert any("Redis failed recently" in line for line in logged)


def test_the_replay_reads_what_the_stream_missed(api: Api) -> None:
    author = api.register("Ada")
    readers = [api.register(f"R{n}") for n in range(3)]
    article = api.article(author)
    for reader in readers:
        comment(api, reader, article["id"])
    ids = sorted(item["id"] for item in page(api, author)["items"])
    with api.app.app_context():
        session = get_database().session()
        assert notifications.last_id(session, author.id or 0) == ids[-1]
        replayed = notifications.replay(session, author.id or 0, ids[0])
        assert [s.id for s in replayed] == ids[1:]
        assert [s.previous_id for s in replayed] == ids[:-1]
        assert [s.id for s in notifications.replay(session, author.id or 0, 0, limit=2)] == ids[:2]
        assert notifications.replay(session, author.id or 0, ids[-1]) == []


# -- the REST routes -----------------------------------------------------------------


def _notified(api: Api, count: int) -> tuple[Caller, list[int]]:
    """An author with ``count`` comment notifications; their ids, newest first."""
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author, status="draft")
    api.client.patch(
        f"/api/v1/articles/{article['id']}", json={"status": "published"}, headers=author.headers
    )
    with api.app.app_context():  # the article.published one is not wanted here
        session = get_database().session()
        session.execute(delete(Notification))
        session.commit()
    for n in range(count):
        comment(api, reader, article["id"], f"comment {n}")
    return author, [item["id"] for item in page(api, author, "?per_page=100")["items"]]


def test_the_list_is_newest_first_and_paged(api: Api) -> None:
    author, ids = _notified(api, 5)
    assert ids == sorted(ids, reverse=True)
    first = page(api, author, "?per_page=2")
    last = page(api, author, "?per_page=2&page=3")
    assert [item["id"] for item in first["items"]] == ids[:2]
    assert [item["id"] for item in last["items"]] == ids[4:]
    assert (first["total"], first["pages"]) == (5, 3)


def test_mark_read_by_ids_and_the_unread_filter_and_count(api: Api) -> None:
    author, ids = _notified(api, 4)
    assert unread(api, author) == 4
    response = api.client.post(f"{URL}/read", json={"ids": ids[:2]}, headers=author.headers)
    assert response.status_code == 204
    assert response.data == b""
    assert unread(api, author) == 2
    unread_page = page(api, author, "?unread=true")
    assert [item["id"] for item in unread_page["items"]] == ids[2:]
    assert unread_page["total"] == 2
    read = {item["id"]: item["read_at"] for item in page(api, author)["items"]}
    assert all(read[i] is not None for i in ids[:2])
    # Marking again is harmless and keeps the first read_at.
    again = api.client.post(f"{URL}/read", json={"ids": ids[:1]}, headers=author.headers)
    assert again.status_code == 204
    assert page(api, author)["items"][0]["read_at"] == read[ids[0]]


def test_mark_all_read(api: Api) -> None:
    author, _ids = _notified(api, 3)
    response = api.client.post(f"{URL}/read", json={"all": True}, headers=author.headers)
    assert response.status_code == 204
    assert unread(api, author) == 0
    assert page(api, author, "?unread=true")["items"] == []


def test_each_user_sees_only_their_own(api: Api) -> None:
    author, ids = _notified(api, 2)
    stranger = api.register("Eve")
    assert page(api, stranger)["items"] == []
    assert unread(api, stranger) == 0
    before = snapshot(api)
    response = api.client.post(f"{URL}/read", json={"ids": ids}, headers=stranger.headers)
    error(response, 404, ErrorCode.NOT_FOUND)
    mixed = api.client.post(f"{URL}/read", json={"ids": [ids[0], 10**9]}, headers=author.headers)
    error(mixed, 404, ErrorCode.NOT_FOUND)
    all_theirs = api.client.post(f"{URL}/read", json={"all": True}, headers=stranger.headers)
    assert all_theirs.status_code == 204
    assert snapshot(api) == before
    assert unread(api, author) == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": list(range(1, 102))},
        {"ids": [0]},
        {"ids": [1.5]},
        {"ids": [1], "all": True},
        {"all": False},
        {"all": "yes"},
        {"ids": [1], "extra": 1},
        [1, 2],
    ],
    ids=[
        "nothing",
        "no-ids",
        "101-ids",
        "zero-id",
        "fractional-id",
        "both",
        "all-false",
        "all-string",
        "unknown-field",
        "not-an-object",
    ],
)
def test_bad_mark_read_bodies_change_nothing(api: Api, body: Any) -> None:
    author, _ids = _notified(api, 1)
    before = snapshot(api)
    response = api.client.post(f"{URL}/read", json=body, headers=author.headers)
    assert response.status_code in {400, 422}
    error(
        response,
        response.status_code,
        {ErrorCode.VALIDATION_FAILED, ErrorCode.BODY_NOT_OBJECT},
    )
    assert snapshot(api) == before


@pytest.mark.parametrize("query", ["?unread=maybe", "?per_page=0", "?per_page=101", "?page=0"])
def test_bad_list_queries_are_422(api: Api, query: str) -> None:
    author = api.register("Ada")
    response = api.client.get(f"{URL}{query}", headers=author.headers)
    error(response, 422, ErrorCode.VALIDATION_FAILED)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", URL),
        ("GET", f"{URL}/unread-count"),
        ("POST", f"{URL}/read"),
        ("POST", f"{URL}/ticket"),
    ],
)
def test_every_route_needs_a_signed_in_caller(api: Api, method: str, path: str) -> None:
    response = api.client.open(path, method=method, json={"all": True})
    error(response, 401, ErrorCode.UNAUTHORIZED)
    bad = api.client.open(
        path, method=method, json={"all": True}, headers={"Authorization": "Bearer nope"}
    )
    error(bad, 401, ErrorCode.UNAUTHORIZED)


# -- stream tickets ------------------------------------------------------------------


def test_a_ticket_is_201_no_store_and_spent_on_first_use(api: Api) -> None:
    author = api.register("Ada")
    response = api.client.post(f"{URL}/ticket", headers=author.headers)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert body["expires_in"] == notifications.TICKET_TTL == 30
    assert len(body["ticket"]) >= 40
    with api.app.app_context():
        session = get_database().session()
        stored = session.scalars(select(StreamTicket)).one()
        assert stored.ticket_hash != body["ticket"]  # only its hash is kept
        assert notifications.redeem_ticket(session, body["ticket"]) == author.id
        assert notifications.redeem_ticket(session, body["ticket"]) is None
        assert notifications.redeem_ticket(session, "") is None
        assert notifications.redeem_ticket(session, "x" * 500) is None
        assert notifications.redeem_ticket(session, "not-a-ticket") is None


def test_an_expired_ticket_is_refused_and_purged(api: Api) -> None:
    author = api.register("Ada")
    tickets = [api.client.post(f"{URL}/ticket", headers=author.headers).json for _ in range(2)]
    with api.app.app_context():
        session = get_database().session()
        session.execute(update(StreamTicket).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
        assert tickets[0] is not None
        assert notifications.redeem_ticket(session, tickets[0]["ticket"]) is None
    # Beat's hourly task purges them (inline here: this app has no broker).
    with api.app.app_context():
        assert purge_expired_stream_tickets.delay().get() == 2
        session = get_database().session()
        assert session.scalar(select(func.count()).select_from(StreamTicket)) == 0


def test_deleting_an_account_deletes_its_notifications(api: Api) -> None:
    author, _ids = _notified(api, 2)
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.get(User, author.id))
        session.commit()
        assert session.scalar(select(func.count()).select_from(Notification)) == 0
        assert session.scalar(select(func.count()).select_from(Article)) == 0
