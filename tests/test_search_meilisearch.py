"""Search against a real Meilisearch, on the real databases (SQLite and MariaDB).

The stand-in (``tests/meili_fake.py``) checks what our adapter sends; these
tests check that Meilisearch does what we rely on: typo tolerance, filters
(escaping included), highlights and crops, pagination, upserts and deletes,
and the rebuild. They run where ``MEILI_URL`` is set (``TEST_MEILI_URL`` wins):
GitHub Actions runs Meilisearch as a service container. Each test gets its own
index, made by ``flask search init`` and deleted afterwards.

Delivery waits for Meilisearch to confirm each task, so once a write has
returned, its document is already searchable: nothing here polls.

The 503 test needs no Meilisearch and always runs.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import meilisearch
import pytest
from api_support import Api, Caller
from conftest import AppFactory, SettingsFactory
from meilisearch.errors import MeilisearchApiError
from sqlalchemy import select

from app import create_app
from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.models import SearchOutbox, User, utcnow

# Read at import: the autouse fixture in conftest removes MEILI_URL from each test's environment.
MEILI_URL = os.environ.get("TEST_MEILI_URL") or os.environ.get("MEILI_URL", "")
MEILI_KEY = os.environ.get("TEST_MEILI_MASTER_KEY") or os.environ.get("MEILI_MASTER_KEY", "")

needs_meilisearch = pytest.mark.skipif(
    not MEILI_URL,
    reason="needs a real Meilisearch: set MEILI_URL (GitHub Actions runs one as a service container)",
)

#: Milliseconds to wait for one of our own Meilisearch tasks (index deletion, direct writes).
TASK_WAIT_MS = 30_000
#: An id no article will have in these tests.
ORPHAN_ID = 999_999_999


@pytest.fixture
def meili_client() -> meilisearch.Client:
    return meilisearch.Client(MEILI_URL, MEILI_KEY or None, timeout=10)


@pytest.fixture
def index_uid(meili_client: meilisearch.Client) -> Iterator[str]:
    """An index of this test's own, deleted afterwards (whether or not it was created)."""
    uid = f"test_{uuid4().hex[:12]}"
    yield uid
    task = meili_client.delete_index(uid)
    meili_client.wait_for_task(task.task_uid, timeout_in_ms=TASK_WAIT_MS)


@pytest.fixture
def api(make_api_app: AppFactory, index_uid: str) -> Api:
    """The whole app on the real Meilisearch, with no broker (tasks run inline),
    its index created and configured by ``flask search init``."""
    app = make_api_app(
        meili_url=MEILI_URL,
        meili_master_key=MEILI_KEY,
        meili_index=index_uid,
        meili_timeout=10,
        meili_task_timeout=30.0,
    )
    result = app.test_cli_runner().invoke(args=["search", "init"])
    assert result.exit_code == 0, result.output
    assert f"Applied the settings of index {index_uid!r}" in result.output
    return Api(app)


# -- helpers -------------------------------------------------------------------------


def search(api: Api, caller: Caller | None = None, **params: Any) -> dict[str, Any]:
    headers = caller.headers if caller is not None else {}
    response = api.client.get("/api/v1/articles/search", query_string=params, headers=headers)
    assert response.status_code == 200, response.json
    page: dict[str, Any] | None = response.json
    assert page is not None
    return page


def titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


def assert_settled(api: Api) -> None:
    """Every write so far was confirmed by Meilisearch: the outbox is empty."""
    with api.app.app_context():
        rows = get_database().session().scalars(select(SearchOutbox)).all()
        pending = [(row.article_id, row.attempts, row.last_error) for row in rows]
    assert pending == [], f"outbox rows left (article_id, attempts, last_error): {pending}"


def cli(api: Api, *args: str) -> str:
    result = api.app.test_cli_runner().invoke(args=["search", *args])
    assert result.exit_code == 0, result.output
    return result.output


def patch_article(api: Api, author: Caller, article_id: int, **fields: Any) -> dict[str, Any]:
    response = api.client.patch(
        f"/api/v1/articles/{article_id}", json=fields, headers=author.headers
    )
    assert response.status_code == 200, response.json
    body: dict[str, Any] | None = response.json
    assert body is not None
    return body


def document_exists(client: meilisearch.Client, uid: str, document_id: int) -> bool:
    try:
        client.index(uid).get_document(document_id)
    except MeilisearchApiError as exc:
        if exc.code == "document_not_found":
            return False
        raise
    return True


def wait(client: meilisearch.Client, task_uid: int) -> None:
    task = client.wait_for_task(task_uid, timeout_in_ms=TASK_WAIT_MS)
    assert task.status == "succeeded", task.error


# -- indexing and searching -----------------------------------------------------------


@needs_meilisearch
def test_a_published_article_is_searchable_once_written(
    api: Api, meili_client: meilisearch.Client, index_uid: str
) -> None:
    author = api.register("Ada")
    article = api.article(author, title="Hello search", body="Indexing with Meilisearch")
    assert_settled(api)
    page = search(api, q="hello")
    assert page["total"] == 1
    [item] = page["items"]
    assert {k: item[k] for k in ("id", "title", "body", "status", "version")} == {
        "id": article["id"],
        "title": "Hello search",
        "body": "Indexing with Meilisearch",
        "status": "published",
        "version": 1,
    }
    assert item["author"] == {"id": author.id, "name": "Ada"}
    assert item["created_at"] == article["created_at"]
    assert search(api, q="nowhere")["total"] == 0
    assert meili_client.index(index_uid).get_stats().number_of_documents == 1


@needs_meilisearch
def test_typos_still_find_the_article(api: Api) -> None:
    author = api.register()
    api.article(author, title="Full-text search", body="Caching strategies for busy sites")
    api.article(author, title="Redis notes", body="plain")
    assert_settled(api)
    # A word of 5+ letters may have one typo (INDEX_SETTINGS: minWordSizeForTypos.oneTypo = 5).
    assert titles(search(api, q="serch")) == ["Full-text search"]
    assert titles(search(api, q="stratgies")) == ["Full-text search"]
    # Shorter words must match exactly: "rdis" is one typo away from "redis", but 4 letters.
    assert search(api, q="rdis")["total"] == 0


@needs_meilisearch
def test_drafts_never_appear(api: Api, meili_client: meilisearch.Client, index_uid: str) -> None:
    author = api.register()
    published = api.article(author, title="Zephyr in public", status="published")
    draft = api.article(author, title="Zephyr in private", status="draft")
    assert_settled(api)
    assert titles(search(api, q="zephyr")) == ["Zephyr in public"]
    # Not even to its author: search is for published articles.
    assert titles(search(api, author, q="zephyr")) == ["Zephyr in public"]
    assert not document_exists(meili_client, index_uid, draft["id"])

    patch_article(api, author, published["id"], status="draft")  # unpublishing removes it
    assert_settled(api)
    assert search(api, q="zephyr")["total"] == 0
    assert not document_exists(meili_client, index_uid, published["id"])


@needs_meilisearch
def test_the_tag_filter_matches_whole_tags_quotes_and_backslashes_included(api: Api) -> None:
    author = api.register()
    api.article(author, title="Quoted note", tags=["python", 'say "hi"'])
    api.article(author, title="Windows note", tags=["c:\\dir\\"])
    api.article(author, title="Plain note", tags=["python"])
    assert_settled(api)
    assert sorted(titles(search(api, tag="python"))) == ["Plain note", "Quoted note"]
    assert titles(search(api, tag='say "hi"')) == ["Quoted note"]
    assert titles(search(api, tag="c:\\dir\\")) == ["Windows note"]
    assert search(api, tag="say")["total"] == 0  # a whole tag, not a word of one
    assert search(api, tag='" OR status = "draft')["total"] == 0  # the quote cannot escape
    assert sorted(titles(search(api, q="note", tag="python"))) == ["Plain note", "Quoted note"]


@needs_meilisearch
def test_formatted_has_highlights_in_escaped_text(api: Api) -> None:
    author = api.register()
    body = "lorem ipsum " * 40 + "the Flask & <app> rocks " + "dolor sit " * 40
    api.article(author, title="Flask & <friends>", body=body)
    assert_settled(api)
    [item] = search(api, q="flask")["items"]
    assert item["title"] == "Flask & <friends>"  # the article itself is not escaped
    assert item["_formatted"]["title"] == "<em>Flask</em> &amp; &lt;friends&gt;"
    formatted_body: str = item["_formatted"]["body"]
    assert "<em>Flask</em> &amp; &lt;app&gt;" in formatted_body
    assert formatted_body.startswith("…")
    assert formatted_body.endswith("…")
    assert len(formatted_body) < len(body)
    assert "<" not in formatted_body.replace("<em>", "").replace("</em>", "")


@needs_meilisearch
def test_text_holding_the_highlight_markers_cannot_forge_markup(api: Api) -> None:
    author = api.register()
    api.article(author, title="spoof \ue000<b>\ue001 flask", body="A body")
    assert_settled(api)
    [item] = search(api, q="flask")["items"]
    assert item["_formatted"]["title"] == "spoof &lt;b&gt; flask"


@needs_meilisearch
def test_pages_and_total(api: Api) -> None:
    author = api.register()
    for n in range(5):
        api.article(author, title=f"note {n}")
    api.article(author, title="other", status="draft")
    assert_settled(api)
    pages = [search(api, q="note", per_page=2, page=n) for n in (1, 2, 3)]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [(page["page"], page["per_page"]) for page in pages] == [(1, 2), (2, 2), (3, 2)]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    seen = [title for page in pages for title in titles(page)]
    assert sorted(seen) == [f"note {n}" for n in range(5)]  # each exactly once
    assert search(api, q="note", per_page=2, page=4)["items"] == []
    assert isinstance(pages[0]["processing_time_ms"], int)

    everything = search(api)  # no words: every published article, without highlights
    assert everything["total"] == 5
    assert {item["_formatted"] is None for item in everything["items"]} == {True}


@needs_meilisearch
def test_an_update_changes_the_result_and_a_delete_removes_it(
    api: Api, meili_client: meilisearch.Client, index_uid: str
) -> None:
    author = api.register()
    article = api.article(author, title="Aardvark facts")
    assert titles(search(api, q="aardvark")) == ["Aardvark facts"]

    patch_article(api, author, article["id"], title="Zeppelin facts")
    assert_settled(api)
    assert search(api, q="aardvark")["total"] == 0
    [item] = search(api, q="zeppelin")["items"]
    assert (item["title"], item["version"]) == ("Zeppelin facts", 2)

    response = api.client.delete(f"/api/v1/articles/{article['id']}", headers=author.headers)
    assert response.status_code == 204
    assert_settled(api)
    assert search(api, q="zeppelin")["total"] == 0
    assert not document_exists(meili_client, index_uid, article["id"])


@needs_meilisearch
def test_renaming_an_author_updates_their_documents(api: Api) -> None:
    author = api.register("Adalbert")
    api.article(author, title="First essay")
    api.article(author, title="Second essay")
    assert search(api, q="adalbert")["total"] == 2  # author.name is searchable

    response = api.client.patch(
        "/api/v1/users/me", json={"name": "Gwendolyn"}, headers=author.headers
    )
    assert response.status_code == 200, response.json
    assert_settled(api)
    page = search(api, q="gwendolyn")
    assert sorted(titles(page)) == ["First essay", "Second essay"]
    assert {item["author"]["name"] for item in page["items"]} == {"Gwendolyn"}
    assert search(api, q="adalbert")["total"] == 0


@needs_meilisearch
def test_deleting_an_author_removes_their_articles(
    api: Api, meili_client: meilisearch.Client, index_uid: str
) -> None:
    author = api.register()
    article = api.article(author, title="Soon gone")
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.get(User, author.id))
        session.commit()
    assert_settled(api)
    assert search(api, q="gone")["total"] == 0
    assert not document_exists(meili_client, index_uid, article["id"])


# -- the commands ---------------------------------------------------------------------


@needs_meilisearch
def test_reindex_rebuilds_the_index_and_removes_orphans(
    api: Api, meili_client: meilisearch.Client, index_uid: str
) -> None:
    author = api.register()
    for n in range(3):
        api.article(author, title=f"kept {n}")
    api.article(author, title="kept draft", status="draft")
    assert_settled(api)
    index = meili_client.index(index_uid)
    wait(meili_client, index.delete_all_documents().task_uid)  # the index loses everything
    assert search(api)["total"] == 0
    orphan = {"id": ORPHAN_ID, "title": "orphan", "body": "no article", "status": "published"}
    wait(meili_client, index.add_documents([orphan], primary_key="id").task_uid)

    output = cli(api, "reindex", "--batch-size", "2")
    assert (
        "Reindexed 4 article(s): 3 indexed, 1 removed (not published), 1 orphan(s) removed"
        in output
    )
    assert sorted(titles(search(api))) == ["kept 0", "kept 1", "kept 2"]
    assert not document_exists(meili_client, index_uid, ORPHAN_ID)
    assert index.get_stats().number_of_documents == 3
    assert_settled(api)

    again = cli(api, "reindex")  # a finished run is not resumed: it starts over
    assert "Reindexed 4 article(s): 3 indexed, 1 removed (not published), 0 orphan(s)" in again


@needs_meilisearch
def test_status_prints_the_document_count_and_the_backlog(api: Api, index_uid: str) -> None:
    author = api.register()
    first = api.article(author, title="one")
    api.article(author, title="two")
    assert_settled(api)
    lines = cli(api, "status").splitlines()
    assert re.fullmatch(rf"Index '{index_uid}': 2 documents, (idle|indexing)\.", lines[0]), lines
    assert lines[1] == "Outbox: empty, the index has heard of every change."

    with api.app.app_context():  # a change the index has not heard of yet
        session = get_database().session()
        session.add(SearchOutbox(article_id=first["id"], next_attempt_at=utcnow()))
        session.commit()
    lines = cli(api, "status").splitlines()
    assert lines[1].startswith("Outbox: 1 row(s) pending, the oldest from "), lines


# -- Meilisearch down -----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def test_search_answers_503_within_the_timeout_when_meilisearch_is_down(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(meili_url=f"http://127.0.0.1:{_closed_port()}", meili_timeout=1))
    started = time.monotonic()
    response = app.test_client().get("/api/v1/articles/search?q=anything")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.json
    assert body is not None
    assert body["code"] == 503
    assert body["error_code"] == ErrorCode.SEARCH_UNAVAILABLE.value == 19003
    assert body["message"] == "Search is unavailable; try again shortly"
    assert body["request_id"]
