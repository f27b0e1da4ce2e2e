"""GET /articles/search served from Meilisearch, at the HTTP boundary: the
search request our adapter sends, how it reads Meilisearch's documented answer
(highlights escaped, the page shape), and a 503 envelope, in bounded time, when
Meilisearch is down."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from api_support import Api
from conftest import AppFactory
from meili_fake import FakeMeilisearch

from app.extensions.search import require_index
from app.schemas.search import SearchQuery
from app.services.search import filter_string, meilisearch_params


@pytest.fixture
def api(make_api_app: AppFactory, meili: FakeMeilisearch) -> Api:
    return Api(make_api_app(meili_url=meili.url))


def _search(api: Api, query: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/articles/search?{query}")
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def test_the_search_request_asks_for_published_articles_with_highlights(
    api: Api, meili: FakeMeilisearch
) -> None:
    _search(api, "q=flask&tag=web&page=2&per_page=5")
    [request] = [r for r in meili.requests if r.path.endswith("/search")]
    assert (request.method, request.path) == ("POST", "/indexes/articles/search")
    assert request.body == {
        "q": "flask",
        "filter": ['status = "published"', 'tags = "web"'],
        "page": 2,
        "hitsPerPage": 5,
        "attributesToHighlight": ["title", "body"],
        "attributesToCrop": ["body"],
        "cropLength": 32,
        "cropMarker": "…",
        "highlightPreTag": "\ue000",
        "highlightPostTag": "\ue001",
    }


def test_without_words_the_newest_come_first_and_nothing_is_highlighted() -> None:
    params = meilisearch_params(SearchQuery(q=""))
    assert params == {
        "filter": ['status = "published"'],
        "page": 1,
        "hitsPerPage": 20,
        "sort": ["created_at_ts:desc", "id:desc"],
    }


def test_filter_values_are_quoted_and_escaped() -> None:
    assert filter_string("web") == '"web"'
    assert filter_string('say "hi"') == '"say \\"hi\\""'
    assert filter_string("back\\slash") == '"back\\\\slash"'
    params = meilisearch_params(SearchQuery(tag='a" OR status = "draft'))
    assert params["filter"][1] == 'tags = "a\\" or status = \\"draft"'


def test_hits_come_back_as_the_contract_says_with_escaped_highlights(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    api.article(author, title="Flask & <friends>", body="we <3 flask", tags=["web"])
    api.article(author, title="Other", body="nothing", tags=["web"])
    api.article(author, title="flask draft", status="draft")
    page = _search(api, "q=flask")
    assert set(page) == {"items", "query", "page", "per_page", "total", "processing_time_ms"}
    assert (page["query"], page["page"], page["per_page"], page["total"]) == ("flask", 1, 20, 1)
    [item] = page["items"]
    assert item["title"] == "Flask & <friends>"
    assert item["author"] == {"id": author.id, "name": "Ada"}
    assert item["tags"] == ["web"]
    assert item["created_at"].endswith("Z")
    assert item["_formatted"] == {
        "title": "<em>Flask</em> &amp; &lt;friends&gt;",
        "body": "we &lt;3 <em>flask</em>",
    }


def test_a_marker_character_in_an_article_cannot_forge_a_highlight(
    api: Api, meili: FakeMeilisearch
) -> None:
    author = api.register()
    api.article(author, title="x\ue000y\ue001 flask")
    [item] = _search(api, "q=flask")["items"]
    assert item["_formatted"]["title"] == "xy flask"


def test_the_tag_filter_and_pages(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    for n in range(3):
        api.article(author, title=f"tagged {n}", tags=["db"])
    api.article(author, title="untagged")
    page = _search(api, "tag=db&per_page=2&page=2")
    assert (page["total"], len(page["items"])) == (3, 1)
    assert all(item["_formatted"] is None for item in page["items"])


def test_bad_query_parameters_are_refused_before_meilisearch_is_asked(
    api: Api, meili: FakeMeilisearch
) -> None:
    response = api.client.get("/api/v1/articles/search?per_page=0")
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["details"][0]["loc"] == ["query", "per_page"]
    assert not [r for r in meili.requests if r.path.endswith("/search")]


def test_meilisearch_down_is_a_503_envelope_in_bounded_time(
    api: Api, meili: FakeMeilisearch
) -> None:
    meili.go_down()
    started = time.monotonic()
    response = api.client.get("/api/v1/articles/search?q=flask")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.json
    assert body is not None
    assert (body["code"], body["error_code"]) == (503, 19003)
    assert body["message"] == "Search is unavailable; try again shortly"
    assert meili.url not in response.get_data(as_text=True)  # no internals in the envelope


def test_writes_still_succeed_while_search_is_down(api: Api, meili: FakeMeilisearch) -> None:
    author = api.register()
    meili.go_down()
    article = api.article(author, title="written during the outage")
    assert api.client.get(f"/api/v1/articles/{article['id']}").status_code == 200


def test_an_error_answer_is_a_503_logged_as_an_error(
    api: Api, meili: FakeMeilisearch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(
        logging.WARNING, logger="app.search"
    )  # a worker test may have raised the root's
    meili.search_error = {"code": "index_not_found", "message": "Index `articles` not found."}
    response = api.client.get("/api/v1/articles/search?q=flask")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error_code"] == 19003
    [record] = [r for r in caplog.records if r.name == "app.search"]
    assert record.levelname == "ERROR"
    assert "index_not_found" in record.getMessage()
    assert "flask search init" in record.getMessage()


def test_an_outage_is_logged_as_a_warning(
    api: Api, meili: FakeMeilisearch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.search")
    meili.go_down()
    assert api.client.get("/api/v1/articles/search?q=flask").status_code == 503
    [record] = [r for r in caplog.records if r.name == "app.search"]
    assert record.levelname == "WARNING"


def test_each_thread_gets_its_own_client(api: Api) -> None:
    with api.app.app_context():
        index = require_index()
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(index.client))
    thread.start()
    thread.join()
    assert index.client is index.client
    assert seen[0] is not index.client
