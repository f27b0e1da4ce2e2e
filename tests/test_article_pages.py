"""List pages through the tiered cache (app/services/article_pages.py): a warm
page and a matching If-None-Match cost no query; every write that could
change a page makes the next read of every page miss, here at once and in
gunicorn's workers within the invalidation window; lists of drafts are never
cached. On SQLite and on MariaDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, Caller, count_queries
from cache_support import wait_local_copies_safe
from conftest import MYSQL_URL, AppFactory
from serving_support import answers_anew, exchange, free_port, gunicorn, raw_get, sharing_the_cache
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.application import APIFlask
from app.core.json import dumps_bytes
from app.extensions.database import get_database
from app.models import User
from app.schemas.articles import ArticleQuery
from app.services import articles as service

LIST = "/api/v1/articles?per_page=5"


@pytest.fixture
def api(api_app: APIFlask) -> Api:
    wait_local_copies_safe(api_app.extensions["cache"])
    return Api(api_app)


def _settle() -> None:
    """Wait for a write's own invalidation to come back through Redis."""
    time.sleep(0.1)


def _from_the_database(api: Api, **query: Any) -> Any:
    """The page as the database has it now, read past the cache."""
    with api.app.app_context():
        engine = get_database().engine
    with Session(engine) as session:
        page = service.list_page(session, ArticleQuery(**query), viewer=None)
    return page.model_dump(mode="json")


def test_a_warm_page_and_a_matching_if_none_match_cost_no_query(api: Api) -> None:
    author = api.register()
    for n in range(7):
        api.article(author, title=f"Article {n}")
    _settle()
    first = api.client.get(LIST)
    assert first.status_code == 200
    with count_queries(api) as statements:
        warm = api.client.get(LIST)
        same = api.client.get(LIST, headers={"If-None-Match": first.headers["ETag"]})
        other = api.client.get("/api/v1/articles?per_page=5&page=2")
    assert (warm.status_code, same.status_code, other.status_code) == (200, 304, 200)
    assert warm.get_data() == first.get_data()
    assert len(statements) == 1  # page 2, once: its rows, each carrying the count
    with count_queries(api) as again:
        api.client.get("/api/v1/articles?per_page=5&page=2")
    assert again == []
    assert api.app.snapshots.served >= 1  # the warm plain GET


def _create(api: Api, author: Caller, article: dict[str, Any]) -> None:
    api.article(author, title="A new one")


def _create_draft(api: Api, author: Caller, article: dict[str, Any]) -> None:
    api.article(author, title="A draft", status="draft")


def _retitle(api: Api, author: Caller, article: dict[str, Any]) -> None:
    _patch(api, author, article, {"title": "Retitled"})


def _retag(api: Api, author: Caller, article: dict[str, Any]) -> None:
    _patch(api, author, article, {"tags": ["fresh", "tags"]})


def _unpublish(api: Api, author: Caller, article: dict[str, Any]) -> None:
    _patch(api, author, article, {"status": "draft"})


def _delete(api: Api, author: Caller, article: dict[str, Any]) -> None:
    url = f"/api/v1/articles/{article['id']}"
    assert api.client.delete(url, headers=author.headers).status_code == 204


def _rename_author(api: Api, author: Caller, article: dict[str, Any]) -> None:
    response = api.client.patch(
        "/api/v1/users/me", json={"name": "Renamed"}, headers=author.headers
    )
    assert response.status_code == 200


def _delete_author(api: Api, author: Caller, article: dict[str, Any]) -> None:
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.scalars(select(User).where(User.id == author.id)).one())
        session.commit()


def _patch(api: Api, author: Caller, article: dict[str, Any], fields: dict[str, Any]) -> None:
    url = f"/api/v1/articles/{article['id']}"
    assert api.client.patch(url, json=fields, headers=author.headers).status_code == 200


WRITES: list[Callable[[Api, Caller, dict[str, Any]], None]] = [
    _create,
    _create_draft,
    _retitle,
    _retag,
    _unpublish,
    _delete,
    _rename_author,
    _delete_author,
]


@pytest.mark.parametrize("write", WRITES, ids=lambda write: write.__name__.strip("_"))
def test_every_write_that_could_change_a_page_makes_it_miss(
    api: Api, write: Callable[[Api, Caller, dict[str, Any]], None]
) -> None:
    author = api.register("Author")
    other = api.register("Other")
    article = api.article(author, title="Shown", tags=["old"])
    api.article(other, title="Stays")
    draft = api.article(author, title="To publish", status="draft")
    _settle()
    for _ in range(2):  # the second from the cache, or its snapshot
        assert api.client.get(LIST).json == _from_the_database(api, per_page=5)
    write(api, author, article)
    assert api.client.get(LIST).json == _from_the_database(api, per_page=5)  # at once
    if write is not _delete_author:
        _patch(api, author, draft, {"status": "published"})  # and one more write
        assert api.client.get(LIST).json == _from_the_database(api, per_page=5)


def test_a_list_of_drafts_is_read_from_the_database_each_time(api: Api) -> None:
    author = api.register()
    api.article(author, status="draft")
    url = "/api/v1/articles?status=draft"
    api.client.get(url, headers=author.headers)
    with count_queries(api) as statements:
        drafts = api.client.get(url, headers=author.headers).json
    assert drafts is not None
    assert len(drafts["items"]) == 1
    assert statements  # the account, the page and its tags: no cache
    assert api.client.get(url).status_code == 401


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)  # gunicorn shares it
def test_another_processs_write_reaches_the_pages_of_gunicorns_workers(
    make_api_app: AppFactory, tmp_path: Path
) -> None:
    """gunicorn (2 workers) on MariaDB and Redis; this process writes. Within
    the invalidation window (milliseconds; 2 s allowed) every worker answers
    the new page, and never the old one again."""
    app = make_api_app(database_url=MYSQL_URL)
    api = Api(app)
    author = api.register()
    article = api.article(author, title="Before")
    port = free_port()
    with gunicorn(tmp_path, port, env=sharing_the_cache(app.settings)):
        for _ in range(20):  # every worker caches the page and keeps its snapshot
            status, _, body = exchange(port, raw_get(LIST))
            assert status == 200
            assert b'"Before"' in body
        _patch(api, author, article, {"title": "After"})
        body = answers_anew(port, LIST, lambda _, body: b'"After"' in body, time.monotonic())
    assert dumps_bytes(_from_the_database(api, per_page=5)) == body
