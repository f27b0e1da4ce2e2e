"""The search outbox, on the real databases (SQLite and MariaDB), delivering to
the Meilisearch stand-in over HTTP: no write is lost when the broker or
Meilisearch is down, rows go only once Meilisearch confirms, delivery sends
the current state under a lock, and deletes propagate."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from api_support import Api
from conftest import AppFactory
from meili_fake import FakeMeilisearch
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import OperationalError

from app.extensions.database import get_database
from app.extensions.search import SearchUnavailable, require_index
from app.models import Article, SearchOutbox, User, utcnow
from app.services import indexing

LEASE = timedelta(seconds=30)


@pytest.fixture
def api(make_api_app: AppFactory, meili: FakeMeilisearch) -> Api:
    """The app with Meilisearch (the stand-in) and no broker: tasks run inline."""
    return Api(make_api_app(meili_url=meili.url))


def outbox(api: Api) -> list[SearchOutbox]:
    with api.app.app_context():
        session = get_database().session()
        return list(session.scalars(select(SearchOutbox).order_by(SearchOutbox.id)))


def sweep(api: Api, *, due_now: bool = True) -> indexing.Sweep:
    with api.app.app_context():
        session = get_database().session()
        if due_now:  # as if the grace and the backoff had passed
            session.execute(update(SearchOutbox).values(next_attempt_at=utcnow()))
            session.commit()
        return indexing.sweep(session, require_index(), batch_size=2, lease=LEASE)


# -- the happy path --------------------------------------------------------------


def test_a_published_article_is_indexed_after_commit_and_its_row_settled(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    article = api.article(author, title="Hello search", tags=["Web", "api"])
    document = meili.docs[article["id"]]
    assert {k: document[k] for k in ("title", "body", "status", "tags", "version")} == {
        "title": "Hello search",
        "body": "A body",
        "status": "published",
        "tags": ["api", "web"],
        "version": 1,
    }
    assert document["author"] == {"id": author.id, "name": "Ada"}
    assert isinstance(document["created_at_ts"], float)
    assert outbox(api) == []
    [add] = meili.additions()
    assert add.path == "/indexes/articles/documents?primaryKey=id"


def test_a_draft_is_never_indexed(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    draft = api.article(author, status="draft")
    assert draft["id"] not in meili.docs
    [deletion] = meili.deletions()
    assert deletion.path == "/indexes/articles/documents/delete-batch"
    assert deletion.body == [str(draft["id"])]  # by primary key: needs no index settings
    assert outbox(api) == []


def test_an_update_replaces_the_document_and_unpublishing_removes_it(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    article = api.article(author, title="First")
    url = f"/api/v1/articles/{article['id']}"
    assert (
        api.client.patch(url, json={"title": "Second"}, headers=author.headers).status_code == 200
    )
    assert (meili.docs[article["id"]]["title"], meili.docs[article["id"]]["version"]) == (
        "Second",
        2,
    )
    response = api.client.patch(url, json={"status": "draft"}, headers=author.headers)
    assert response.status_code == 200
    assert article["id"] not in meili.docs
    assert outbox(api) == []


def test_a_delete_propagates(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    article = api.article(author)
    assert article["id"] in meili.docs
    url = f"/api/v1/articles/{article['id']}"
    assert api.client.delete(url, headers=author.headers).status_code == 204
    assert article["id"] not in meili.docs
    assert outbox(api) == []


def test_renaming_an_author_reindexes_their_articles(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register("Ada")
    first, second = api.article(author), api.article(author)
    response = api.client.patch("/api/v1/users/me", json={"name": "Grace"}, headers=author.headers)
    assert response.status_code == 200
    assert meili.docs[first["id"]]["author"]["name"] == "Grace"
    assert meili.docs[second["id"]]["author"]["name"] == "Grace"


def test_deleting_an_author_removes_their_articles_from_the_index(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    article = api.article(author)
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.get(User, author.id))
        session.commit()
    assert article["id"] not in meili.docs
    assert outbox(api) == []


def test_a_rolled_back_write_leaves_no_row_and_sends_nothing(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    sent = len(meili.requests)
    with api.app.app_context():
        session = get_database().session()
        assert author.id is not None
        session.add(Article(author_id=author.id, title="t", body="b", status="published"))
        session.flush()
        assert session.scalar(select(SearchOutbox.article_id)) is not None  # same transaction
        session.rollback()
    assert outbox(api) == []
    assert len(meili.requests) == sent


# -- faults: nothing is lost ------------------------------------------------------


def test_meilisearch_down_at_write_time_loses_nothing(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    meili.go_down()
    started = time.monotonic()
    article = api.article(author, title="Written while search was down")
    assert time.monotonic() - started < 5  # bounded by MEILI_TIMEOUT, not hung
    [row] = outbox(api)
    assert (row.article_id, row.attempts) == (article["id"], 1)
    assert row.last_error is not None
    assert "MeilisearchCommunicationError" in row.last_error
    assert row.next_attempt_at > utcnow()  # backed off

    result = sweep(api, due_now=False)
    assert result.batches == 0  # not due yet: the backoff holds

    meili.come_back()
    result = sweep(api)
    assert (result.delivered.indexed, result.delivered.settled_rows) == (1, 1)
    assert meili.docs[article["id"]]["title"] == "Written while search was down"
    assert outbox(api) == []


def test_a_down_broker_loses_nothing(
    make_api_app: AppFactory, meili: FakeMeilisearch, caplog: pytest.LogCaptureFixture
) -> None:
    api = Api(make_api_app(meili_url=meili.url, celery_broker_url="redis://127.0.0.1:1/0"))
    author = api.register()
    caplog.set_level(
        logging.WARNING, logger="app.search"
    )  # a worker test may have raised the root's
    started = time.monotonic()
    article = api.article(author)
    assert time.monotonic() - started < 5
    assert any("the outbox sweep will" in r.getMessage() for r in caplog.records)
    assert article["id"] not in meili.docs
    [row] = outbox(api)
    assert (row.article_id, row.attempts) == (article["id"], 0)

    sweep(api)
    assert article["id"] in meili.docs
    assert outbox(api) == []


def test_a_failed_meilisearch_task_keeps_the_rows(api: Api, meili: FakeMeilisearch) -> None:
    meili.task_outcomes["documentAdditionOrUpdate"] = {
        "code": "invalid_document_fields",
        "message": "bad document",
    }
    author = api.register()
    article = api.article(author)
    [row] = outbox(api)
    assert row.article_id == article["id"]
    assert row.last_error is not None
    assert "invalid_document_fields: bad document" in row.last_error

    del meili.task_outcomes["documentAdditionOrUpdate"]
    sweep(api)
    assert outbox(api) == []
    assert article["id"] in meili.docs


def test_an_unconfirmed_task_keeps_the_rows(api: Api, meili: FakeMeilisearch) -> None:
    meili.task_outcomes["documentAdditionOrUpdate"] = "processing"
    author = api.register()
    api.article(author)
    [row] = outbox(api)
    assert row.attempts == 1
    assert row.last_error is not None
    assert "Timeout" in row.last_error


def test_the_sweep_stops_at_the_first_failure(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    meili.go_down()
    for n in range(5):
        api.article(author, title=f"a{n}")
    result = sweep(api)
    assert (result.batches, result.failed_batches) == (1, 1)
    assert result.error is not None
    assert "SearchUnavailable" in result.error
    assert len(outbox(api)) == 5
    meili.come_back()
    result = sweep(api)
    assert (result.batches, result.delivered.indexed, result.delivered.settled_rows) == (3, 5, 5)
    assert outbox(api) == []


# -- ordering: the current state, under a lock -------------------------------------


def test_an_old_row_delivers_the_current_state(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    meili.go_down()
    article = api.article(author, title="v1")
    url = f"/api/v1/articles/{article['id']}"
    api.client.patch(url, json={"title": "v2"}, headers=author.headers)
    api.client.patch(url, json={"title": "v3"}, headers=author.headers)
    assert len(outbox(api)) == 3
    meili.come_back()
    sweep(api)
    [add] = meili.additions()
    assert [(d["title"], d["version"]) for d in add.body] == [("v3", 3)]  # one send, the newest
    assert outbox(api) == []


def test_writers_wait_while_a_delivery_holds_the_lock(
    make_api_app: AppFactory, meili: FakeMeilisearch
) -> None:
    """Between reading an article and enqueueing its task, a delivery holds the
    article's lock: a writer cannot slip a newer version in between, so
    Meilisearch receives the versions in the order they were written."""
    api = Api(make_api_app(meili_url=meili.url, meili_timeout=10))
    author = api.register()
    article = api.article(author, title="v1")
    meili.hold.clear()  # the next document request waits inside the delivery
    delivering = threading.Thread(target=sweep, args=(api,))
    api.queue_outbox(article["id"])
    delivering.start()
    deadline = time.monotonic() + 5
    while len(meili.additions()) < 2:
        assert time.monotonic() < deadline, "the delivery never reached Meilisearch"
        time.sleep(0.01)

    engine = get_engine(api)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA busy_timeout = 200")
        else:
            connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
        with pytest.raises(OperationalError):
            connection.execute(
                text("UPDATE articles SET title = 'v2', version = version + 1 WHERE id = :id"),
                {"id": article["id"]},
            )
        connection.rollback()
    meili.hold.set()
    delivering.join(10)
    assert not delivering.is_alive()
    assert meili.docs[article["id"]]["title"] == "v1"


def get_engine(api: Api) -> Engine:
    with api.app.app_context():
        return get_database().engine


def test_deliver_raises_and_keeps_rows_when_meilisearch_is_down(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    article = api.article(author)
    with api.app.app_context():  # whatever the create's own delivery left (a slow machine
        session = get_database().session()  # can time it out), only the row queued below
        session.execute(delete(SearchOutbox))
        session.commit()
    api.queue_outbox(article["id"])
    meili.go_down()
    with api.app.app_context(), pytest.raises(SearchUnavailable):
        indexing.deliver(get_database().session(), require_index(), [article["id"]], lease=LEASE)
    [row] = outbox(api)
    assert row.attempts == 1  # the send failed: counted, and backed off
    assert row.next_attempt_at > utcnow()


# -- the backlog ---------------------------------------------------------------------


def test_status_reports_the_backlog(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    meili.go_down()
    api.article(author)
    api.article(author)
    meili.come_back()
    result = api.app.test_cli_runner().invoke(args=["search", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Index 'articles': 0 documents, idle."
    assert lines[1].startswith("Outbox: 2 row(s) pending, the oldest from ")
    assert "2 failed at least once (up to 1 attempts), last error: " in lines[1]


def test_backoff_grows_and_is_capped() -> None:
    assert timedelta(seconds=1) <= indexing.backoff(1) <= timedelta(seconds=2)
    assert timedelta(seconds=16) <= indexing.backoff(5) <= timedelta(seconds=32)
    assert indexing.backoff(40) <= indexing.BACKOFF_CAP
