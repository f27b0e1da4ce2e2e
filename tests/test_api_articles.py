"""/articles: CRUD, the cached read and its invalidation, ETags and conditional
requests, optimistic concurrency, filters, sorting, pagination and query counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from api_support import Api, Caller, count_queries, error, snapshot
from sqlalchemy import text
from sqlalchemy.exc import DataError

from app.api.v1 import articles as article_views
from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.models import Article
from app.services import articles as service


def test_create_answers_201_with_location_and_etag(api: Api) -> None:
    author = api.register("Ada")
    response = api.client.post(
        "/api/v1/articles",
        json={"title": " Hello ", "body": "World", "tags": ["Flask", "api", "flask"]},
        headers=author.headers,
    )
    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert response.headers["Location"] == f"/api/v1/articles/{body['id']}"
    assert response.headers["ETag"] == f'"{body["id"]}-1"'
    assert body["title"] == "Hello"
    assert body["tags"] == ["api", "flask"]  # lower-cased, de-duplicated, sorted
    assert body["status"] == "draft"
    assert body["author"] == {"id": author.id, "name": "Ada"}
    assert body["version"] == 1
    assert body["created_at"].endswith("Z")
    fetched = api.client.get(response.headers["Location"], headers=author.headers)
    assert fetched.json == body


def test_get_reads_through_the_cache(api: Api) -> None:
    article = api.article(api.register())
    url = f"/api/v1/articles/{article['id']}"
    first = api.client.get(url)
    with count_queries(api) as statements:
        second = api.client.get(url)
    assert first.status_code == second.status_code == 200
    assert second.json == first.json
    assert statements == []  # served from the in-process tier
    assert second.headers["ETag"] == f'"{article["id"]}-1"'
    assert second.headers["Last-Modified"].endswith("GMT")


def test_if_none_match_answers_304_without_a_body(api: Api) -> None:
    article = api.article(api.register())
    url = f"/api/v1/articles/{article['id']}"
    etag = api.client.get(url).headers["ETag"]
    response = api.client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    weak = api.client.get(url, headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304  # If-None-Match compares weakly
    stale = api.client.get(url, headers={"If-None-Match": '"1-999"'})
    assert stale.status_code == 200


def test_patch_moves_the_version_and_the_cache_follows(api: Api) -> None:
    author = api.register()
    article = api.article(author, tags=["a"])
    url = f"/api/v1/articles/{article['id']}"
    api.client.get(url)  # cached now
    response = api.client.patch(url, json={"title": "New title"}, headers=author.headers)
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["version"] == 2
    assert response.headers["ETag"] == f'"{article["id"]}-2"'
    fetched = api.client.get(url).json
    assert fetched is not None
    assert fetched["title"] == "New title"
    assert fetched["version"] == 2
    # Only the tags change: still an UPDATE, so the version (and ETag) moves too.
    tags_only = api.client.patch(url, json={"tags": ["b", "c"]}, headers=author.headers)
    assert tags_only.json is not None
    assert tags_only.json["version"] == 3
    assert api.client.get(url).json["tags"] == ["b", "c"]  # type: ignore[index]


def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(api: Api) -> None:
    author = api.register()
    article = api.article(author)
    url = f"/api/v1/articles/{article['id']}"
    old_etag = api.client.get(url).headers["ETag"]
    assert api.client.patch(url, json={"body": "v2"}, headers=author.headers).status_code == 200
    response = api.client.patch(
        url, json={"body": "v3"}, headers={**author.headers, "If-Match": old_etag}
    )
    assert response.status_code == 412
    assert response.json is not None
    assert response.json["error_code"] == 14001
    assert response.headers["ETag"] == f'"{article["id"]}-2"'
    assert api.client.get(url).json["body"] == "v2"  # type: ignore[index]
    fresh = api.client.patch(
        url, json={"body": "v3"}, headers={**author.headers, "If-Match": response.headers["ETag"]}
    )
    assert fresh.status_code == 200


def test_a_concurrent_write_between_read_and_commit_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers read version 1; the second to commit must not overwrite the first."""
    author = api.register()
    article = api.article(author)
    url = f"/api/v1/articles/{article['id']}"
    real_find = service.find

    def find_then_race(session: Any, article_id: int) -> Any:
        row = real_find(session, article_id)
        # Another writer commits between our read and our write, on its own connection.
        with get_database().engine.begin() as other:
            other.execute(
                text("UPDATE articles SET title = 'theirs', version = version + 1 WHERE id = :id"),
                {"id": article_id},
            )
        return row

    monkeypatch.setattr(article_views.service, "find", find_then_race)
    without_if_match = api.client.patch(url, json={"title": "ours"}, headers=author.headers)
    assert without_if_match.status_code == 409
    with_if_match = api.client.patch(
        url, json={"title": "ours"}, headers={**author.headers, "If-Match": f'"{article["id"]}-2"'}
    )
    assert with_if_match.status_code == 412
    monkeypatch.undo()
    current = api.client.get(url, headers=author.headers).json
    assert current is not None
    assert current["title"] == "theirs"
    assert current["version"] == 3


def test_delete_answers_204_and_the_article_is_gone_everywhere(api: Api) -> None:
    author = api.register()
    article = api.article(author)
    url = f"/api/v1/articles/{article['id']}"
    api.client.get(url)  # cached
    response = api.client.delete(url, headers=author.headers)
    assert response.status_code == 204
    assert response.data == b""
    assert api.client.get(url).status_code == 404
    assert api.client.delete(url, headers=author.headers).status_code == 404


def test_delete_honours_if_match(api: Api) -> None:
    author = api.register()
    article = api.article(author)
    url = f"/api/v1/articles/{article['id']}"
    response = api.client.delete(url, headers={**author.headers, "If-Match": '"1-99"'})
    assert response.status_code == 412
    assert api.client.get(url).status_code == 200


def test_renaming_the_author_refreshes_cached_articles(api: Api) -> None:
    author = api.register("Ada")
    article = api.article(author)
    url = f"/api/v1/articles/{article['id']}"
    assert api.client.get(url).json["author"]["name"] == "Ada"  # type: ignore[index]
    api.client.patch("/api/v1/users/me", json={"name": "Ada L."}, headers=author.headers)
    assert api.client.get(url).json["author"]["name"] == "Ada L."  # type: ignore[index]


# -- drafts -------------------------------------------------------------------------


def test_drafts_are_visible_to_their_author_and_admins_only(api: Api) -> None:
    author, other, admin = (
        api.register("Author"),
        api.register("Other"),
        api.register("Admin", admin=True),
    )
    draft = api.article(author, status="draft")
    url = f"/api/v1/articles/{draft['id']}"
    assert api.client.get(url).status_code == 404
    assert api.client.get(url, headers=other.headers).status_code == 404
    assert api.client.get(url, headers=author.headers).status_code == 200
    assert api.client.get(url, headers=admin.headers).status_code == 200
    draft_response = api.client.get(url, headers=author.headers)
    assert draft_response.headers["Cache-Control"] == "private, no-cache"
    # Someone else's draft does not exist for writes either.
    assert api.client.patch(url, json={"title": "x"}, headers=other.headers).status_code == 404
    assert api.client.delete(url, headers=other.headers).status_code == 404


def test_publishing_a_draft_makes_it_public(api: Api) -> None:
    author = api.register()
    draft = api.article(author, status="draft")
    url = f"/api/v1/articles/{draft['id']}"
    assert api.client.get(url).status_code == 404  # the 404 is not cached as "missing"
    api.client.patch(url, json={"status": "published"}, headers=author.headers)
    assert api.client.get(url).status_code == 200


# -- lists --------------------------------------------------------------------------


def _make_articles(api: Api, author: Caller, count: int, **fields: Any) -> list[dict[str, Any]]:
    return [api.article(author, title=f"Article {n:03d}", **fields) for n in range(count)]


def test_list_pages_with_total(api: Api) -> None:
    author = api.register()
    _make_articles(api, author, 5)
    page = api.client.get("/api/v1/articles?per_page=2&page=3").json
    assert page is not None
    assert page["total"] == 5
    assert page["pages"] == 3
    assert page["page"] == 3
    assert page["per_page"] == 2
    assert [item["title"] for item in page["items"]] == ["Article 000"]
    beyond = api.client.get("/api/v1/articles?per_page=2&page=4").json
    assert beyond is not None
    assert beyond["items"] == []
    assert beyond["total"] == 5


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", ["Article 000", "Article 001", "Article 002"]),
        ("-created_at", ["Article 002", "Article 001", "Article 000"]),
        ("title", ["Article 000", "Article 001", "Article 002"]),
        ("-title", ["Article 002", "Article 001", "Article 000"]),
    ],
)
def test_list_sorts(api: Api, sort: str, expected: list[str]) -> None:
    _make_articles(api, api.register(), 3)
    page = api.client.get(f"/api/v1/articles?sort={sort}").json
    assert [item["title"] for item in page["items"]] == expected  # type: ignore[index]


def test_list_filters_by_tag_and_author(api: Api) -> None:
    ada, bob = api.register("Ada"), api.register("Bob")
    api.article(ada, title="ada flask", tags=["flask"])
    api.article(ada, title="ada redis", tags=["redis"])
    api.article(bob, title="bob flask", tags=["flask", "redis"])
    by_tag = api.client.get("/api/v1/articles?tag=flask&sort=title").json
    assert [item["title"] for item in by_tag["items"]] == ["ada flask", "bob flask"]  # type: ignore[index]
    by_author = api.client.get(f"/api/v1/articles?author_id={bob.id}").json
    assert [item["title"] for item in by_author["items"]] == ["bob flask"]  # type: ignore[index]
    both = api.client.get(f"/api/v1/articles?author_id={ada.id}&tag=redis").json
    assert [item["title"] for item in both["items"]] == ["ada redis"]  # type: ignore[index]


def test_list_shows_drafts_only_to_who_may_see_them(api: Api) -> None:
    ada, bob, admin = api.register("Ada"), api.register("Bob"), api.register("Root", admin=True)
    api.article(ada, title="ada draft", status="draft")
    api.article(bob, title="bob draft", status="draft")
    api.article(ada, title="ada published")

    def titles(query: str, caller: Caller) -> list[str]:
        response = api.client.get(f"/api/v1/articles?{query}&sort=title", headers=caller.headers)
        assert response.status_code == 200, response.json
        return [item["title"] for item in response.json["items"]]  # type: ignore[index]

    assert titles("", api.anonymous) == ["ada published"]
    assert titles("", ada) == ["ada published"]
    assert titles("status=draft", ada) == ["ada draft"]
    assert titles(f"status=draft&author_id={bob.id}", ada) == []
    assert titles("status=draft", admin) == ["ada draft", "bob draft"]
    assert api.client.get("/api/v1/articles?status=draft").status_code == 401


def test_list_etag_and_304(api: Api) -> None:
    author = api.register()
    api.article(author)
    first = api.client.get("/api/v1/articles")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert api.client.get("/api/v1/articles", headers={"If-None-Match": etag}).status_code == 304
    api.article(author, title="another")
    changed = api.client.get("/api/v1/articles", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_list_queries_do_not_grow_with_the_page(api: Api) -> None:
    """No N+1: authors and tags load in a fixed number of queries per page."""
    authors = [api.register(f"Author{n}") for n in range(3)]
    for n, author in enumerate(authors):
        _make_articles(api, author, 2, tags=[f"t{n}", "shared"])
    with count_queries(api) as small:
        assert len(api.client.get("/api/v1/articles?per_page=2").json["items"]) == 2  # type: ignore[index]
    for author in authors:
        _make_articles(api, author, 10, tags=["x", "y", "z"])
    with count_queries(api) as large:
        assert len(api.client.get("/api/v1/articles?per_page=30").json["items"]) == 30  # type: ignore[index]
    assert len(large) == len(small) == 1  # the page with authors, tags and the count


#: Text that JSON must escape, or that a database's JSON writer could get wrong.
TRICKY_TEXT = 'He said "hi", \\ back\tslash\nnew line, é 🎉 İ, \u2028 \u001f \u007f </script>'


@pytest.mark.parametrize(
    "tags",
    [["Zeta", "alpha", 'a "quoted", \\ tag', "émoji 🎉", "x\u001fy"], []],
    ids=["tags", "none"],
)
def test_the_read_path_and_the_write_path_show_an_article_alike(api: Api, tags: list[str]) -> None:
    """The cached read and the list read JSON the database writes
    (app/services/article_rows.py); a write shows the ORM row it wrote
    (articles.to_out): the same article, to the byte, tags sorted alike."""
    author = api.register(TRICKY_TEXT[:40], email="tricky@example.com")
    written = api.client.post(
        "/api/v1/articles",
        json={"title": TRICKY_TEXT, "body": TRICKY_TEXT * 3, "tags": tags, "status": "published"},
        headers=author.headers,
    )
    assert written.status_code == 201
    read = api.client.get(written.headers["Location"])
    listed = api.client.get(f"/api/v1/articles?author_id={author.id}").json
    assert listed is not None
    assert read.json == written.json == listed["items"][0]
    assert read.data == written.data
    assert written.json is not None
    assert written.json["title"] == TRICKY_TEXT
    assert written.json["tags"] == sorted(tag.lower() for tag in tags)  # tags are lower-cased


def test_the_read_path_writes_whole_seconds_and_microseconds_as_the_write_path(
    api: Api,
) -> None:
    """Timestamps go through the database's text (json_utc): a time on the
    second and one with microseconds read back as they were written."""
    author = api.register()
    first = api.article(author)
    second = api.article(author)
    on_the_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with_micros = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with api.app.app_context():
        session = get_database().session()
        for article, moment in ((first, on_the_second), (second, with_micros)):
            row = session.get(Article, article["id"])
            assert row is not None
            row.created_at = row.updated_at = moment
        session.commit()  # the "cache" commit effect evicts both, as for any write
    shown = {
        item["id"]: item["created_at"]
        for item in api.client.get(f"/api/v1/articles?author_id={author.id}").json["items"]  # type: ignore[index]
    }
    assert shown == {
        first["id"]: "2026-01-02T03:04:05Z",
        second["id"]: "2026-01-02T03:04:05.000006Z",
    }
    read = api.client.get(f"/api/v1/articles/{second['id']}").json
    assert read is not None
    assert read["updated_at"] == "2026-01-02T03:04:05.000006Z"


# -- tags that lower-casing lengthens ------------------------------------------------

#: "İ" (U+0130) lower-cases to two characters: "i" and a combining dot above.
DOTTED_I = "\u0130"


def test_a_tag_too_long_once_lower_cased_is_a_422_and_writes_nothing(api: Api) -> None:
    author = api.register()
    before = snapshot(api)
    response = api.client.post(
        "/api/v1/articles",
        json={"title": "t", "body": "b", "tags": [DOTTED_I * 26]},
        headers=author.headers,
    )
    body = error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert [detail["loc"] for detail in body["details"]] == [["body", "tags", 0]]
    assert body["details"][0]["type"] == "string_too_long"
    assert snapshot(api) == before


def test_patching_in_a_tag_too_long_once_lower_cased_is_a_422(api: Api) -> None:
    author = api.register()
    article = api.article(author)
    before = snapshot(api)
    response = api.client.patch(
        f"/api/v1/articles/{article['id']}",
        json={"tags": [DOTTED_I * 26]},
        headers=author.headers,
    )
    error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert snapshot(api) == before


def test_a_tag_of_fifty_characters_once_lower_cased_is_stored_whole(api: Api) -> None:
    author = api.register()
    tag = DOTTED_I * 25  # 50 characters once lower-cased
    created = api.article(author, tags=[tag])
    assert created["tags"] == [tag.lower()]
    assert len(created["tags"][0]) == 50
    listed = api.client.get("/api/v1/articles", query_string={"tag": tag}).json
    assert listed is not None
    assert [item["id"] for item in listed["items"]] == [created["id"]]


def test_mysql_refuses_a_tag_name_it_would_truncate(api: Api) -> None:
    """Strict mode rejects data too long for its column; the tags' upsert must not
    turn that into a warning, as INSERT IGNORE did."""
    with api.app.app_context():
        session = get_database().session()
        if session.get_bind().dialect.name != "mysql":
            pytest.skip("SQLite does not enforce VARCHAR lengths; this is MySQL's strict mode")
        with pytest.raises(DataError):
            service.tags_named(session, ["x" * 51])
        session.rollback()
        assert [tag.name for tag in service.tags_named(session, ["x" * 50])] == ["x" * 50]
