"""Response snapshots (app/core/snapshots.py): a published article's answer is
given again without Flask while the cache still holds the value it shows, and
is the same answer Flask gives; anything a response may depend on goes through
Flask; a write is never answered from an old snapshot, here or in another
process. On SQLite and on MariaDB."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, Caller
from cache_support import wait_local_copies_safe
from conftest import MYSQL_URL, AppFactory
from serving_support import answers_anew, exchange, free_port, gunicorn, raw_get, sharing_the_cache

from app.core.application import APIFlask

#: Asks Flask for the same 200: an If-None-Match that matches nothing.
FLASK_PATH = {"If-None-Match": '"no-such-tag"'}


@pytest.fixture
def api(api_app: APIFlask) -> Api:
    """The app once its cache serves local copies: until its Redis listener has
    subscribed, every read asks Redis, and no snapshot is current."""
    wait_local_copies_safe(api_app.extensions["cache"])
    return Api(api_app)


def _answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(name, value) for name, value in response.headers if name != "X-Request-ID"]
    return response.status_code, headers, response.get_data()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _settle() -> None:
    """A write evicts the value here at once, then its invalidation comes back
    through Redis within milliseconds and evicts it again: wait for that echo,
    or it drops the snapshot the next read keeps."""
    time.sleep(0.1)


def _published(api: Api, author: Caller | None = None) -> tuple[Caller, str]:
    author = author or api.register()
    url = f"/api/v1/articles/{api.article(author)['id']}"
    _settle()
    return author, url


def test_the_second_plain_get_is_the_snapshot_and_the_same_answer_flask_gives(
    api: Api,
) -> None:
    _, url = _published(api)
    snapshots = api.app.snapshots
    first = api.client.get(url)
    assert (snapshots.recorded, snapshots.served) == (1, 0)
    second = api.client.get(url)
    assert snapshots.served == 1
    through_flask = api.client.get(url, headers=FLASK_PATH)
    assert snapshots.served == 1
    assert _answer(second) == _answer(first) == _answer(through_flask)
    assert second.headers["ETag"] == first.headers["ETag"]
    assert [name for name, _ in second.headers][-1] == "X-Request-ID"


def test_each_snapshot_answer_has_its_own_request_id_and_access_line(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = _published(api)
    api.client.get(url)
    caplog.set_level(logging.INFO, logger="app.access")
    caplog.clear()
    sent = api.client.get(url, headers={"X-Request-ID": "snap-1"})
    made = api.client.get(url, headers={"X-Request-ID": "not sane\x7f"})
    assert api.app.snapshots.served == 2
    assert sent.headers["X-Request-ID"] == "snap-1"
    assert made.headers["X-Request-ID"] not in ("snap-1", "not sane\x7f")
    records = [r for r in caplog.records if r.name == "app.access"]
    assert [r.__dict__["request_id"] for r in records] == ["snap-1", made.headers["X-Request-ID"]]
    for record in records:
        fields = record.__dict__
        assert (fields["method"], fields["path"], fields["status"]) == ("GET", url, 200)
        assert fields["bytes"] == len(sent.get_data())
        assert fields["remote_addr"] == "127.0.0.1"
        assert fields["duration_ms"] >= 0
        assert record.getMessage().startswith(f"GET {url} 200 ")


def test_a_write_is_never_answered_from_the_old_snapshot(api: Api) -> None:
    author, url = _published(api)
    snapshots = api.app.snapshots
    api.client.get(url)
    api.client.get(url)
    assert snapshots.served == 1
    changed = api.client.patch(url, json={"title": "Changed"}, headers=author.headers)
    assert changed.status_code == 200
    fresh = api.client.get(url)  # at once: the write evicted the value it showed
    assert fresh.json is not None
    assert (fresh.json["title"], fresh.json["version"]) == ("Changed", 2)
    assert snapshots.served == 1  # Flask answered
    _settle()
    assert api.client.get(url).get_data() == fresh.get_data()  # and keeps this one
    served = snapshots.served
    again = api.client.get(url)
    assert snapshots.served == served + 1
    assert again.get_data() == fresh.get_data()

    unpublished = api.client.patch(url, json={"status": "draft"}, headers=author.headers)
    assert unpublished.status_code == 200
    assert api.client.get(url).status_code == 404  # a draft, to anyone but its editors
    assert api.client.delete(url, headers=author.headers).status_code == 204
    assert api.client.get(url).status_code == 404
    assert snapshots.served == served + 1


def test_what_a_response_may_depend_on_goes_through_flask(make_api_app: AppFactory) -> None:
    app = make_api_app(cors_origins="https://app.example.com")
    wait_local_copies_safe(app.extensions["cache"])
    api = Api(app)
    author, url = _published(api)
    api.client.get(url)
    etag = api.client.get(url).headers["ETag"]
    snapshots = app.snapshots
    assert snapshots.served == 1

    bad_token = api.client.get(url, headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    assert api.client.get(url, headers=author.headers).status_code == 200
    assert api.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    with_query = api.client.get(f"{url}?fields=all")  # a key of its own: Flask answers
    assert with_query.status_code == 200
    assert api.client.head(url).status_code == 200
    cors = api.client.get(url, headers={"Origin": "https://app.example.com"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert snapshots.served == 1
    assert api.client.get(url).status_code == 200
    assert api.client.get(f"{url}?fields=all").get_data() == with_query.get_data()
    assert snapshots.served == 3


def test_a_draft_is_never_kept_nor_a_non_200(api: Api) -> None:
    author = api.register()
    draft = api.article(author, status="draft")
    url = f"/api/v1/articles/{draft['id']}"
    for _ in range(3):
        assert api.client.get(url, headers=author.headers).status_code == 200
        assert api.client.get(url).status_code == 404
    assert api.client.get("/api/v1/articles/999999").status_code == 404
    assert (api.app.snapshots.recorded, len(api.app.snapshots)) == (0, 0)


def test_the_oldest_snapshot_goes_first_past_the_bound(api: Api) -> None:
    api.app.snapshots.max_size = 2
    author = api.register()
    urls = [_published(api, author)[1] for _ in range(3)]
    for url in urls:
        api.client.get(url)
    assert len(api.app.snapshots) == 2
    before = api.app.snapshots.served
    api.client.get(urls[0])  # dropped: Flask answers, and it is kept again
    api.client.get(urls[2])
    assert api.app.snapshots.served == before + 1


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)  # gunicorn shares it
def test_another_processs_write_reaches_the_snapshots_of_gunicorns_workers(
    make_api_app: AppFactory, tmp_path: Path
) -> None:
    """gunicorn (2 workers) on MariaDB and Redis; this process writes. Within
    the cache's invalidation window (milliseconds; 2 s allowed here) every
    worker answers the new version, and never the old one again."""
    app: APIFlask = make_api_app(database_url=MYSQL_URL)
    api = Api(app)
    author, url = _published(api)
    port = free_port()
    with gunicorn(tmp_path, port, env=sharing_the_cache(app.settings)):
        for _ in range(20):  # every worker records it, then answers from it
            status, headers, _ = exchange(port, raw_get(url))
            assert (status, headers["etag"]) == (200, f'"{url.rsplit("/", 1)[1]}-1"')
        changed = api.client.patch(url, json={"title": "Changed"}, headers=author.headers)
        assert changed.status_code == 200
        answers_anew(
            port, url, lambda headers, _: headers["etag"].endswith('-2"'), time.monotonic()
        )


def test_while_the_cache_cannot_trust_its_local_tier_no_snapshot_is_served(
    api: Api, redis_client: Any
) -> None:
    """With its invalidations' subscription down, the cache asks Redis on
    every read, and a snapshot, which would skip that, is not current."""
    _, url = _published(api)
    api.client.get(url)
    api.client.get(url)
    manager = api.app.extensions["cache"]
    served = api.app.snapshots.served
    assert served == 1
    redis_client.client_kill_filter(_type="pubsub")
    assert wait_until(lambda: not manager._local_copies_safe)
    assert api.client.get(url).status_code == 200
    assert api.app.snapshots.served == served
    wait_local_copies_safe(manager)  # it resubscribes by itself
    assert wait_until(
        lambda: api.client.get(url).status_code == 200 and api.app.snapshots.served > served
    )
