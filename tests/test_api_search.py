"""GET /articles/search, served from the database (no search engine configured)."""

from __future__ import annotations

from api_support import Api


def _titles(api: Api, query: str) -> list[str]:
    response = api.client.get(f"/api/v1/articles/search?{query}")
    assert response.status_code == 200, response.json
    return [item["title"] for item in response.json["items"]]  # type: ignore[index]


def test_search_finds_words_in_title_or_body_case_insensitively(api: Api) -> None:
    author = api.register()
    api.article(author, title="Caching with Redis", body="plain")
    api.article(author, title="Plain", body="we use REDIS for the broker")
    api.article(author, title="Unrelated", body="nothing here")
    assert sorted(_titles(api, "q=redis")) == ["Caching with Redis", "Plain"]


def test_search_returns_published_articles_only(api: Api) -> None:
    author = api.register()
    api.article(author, title="public redis", status="published")
    api.article(author, title="draft redis", status="draft")
    assert _titles(api, "q=redis") == ["public redis"]
    # Not even to its author: search is for published articles.
    response = api.client.get("/api/v1/articles/search?q=redis", headers=author.headers)
    assert [item["title"] for item in response.json["items"]] == ["public redis"]  # type: ignore[index]


def test_search_page_shape_and_highlights(api: Api) -> None:
    author = api.register()
    body = "x" * 300 + " the Flask app " + "y" * 300
    api.article(author, title="Flask & <friends>", body=body, tags=["web"])
    page = api.client.get("/api/v1/articles/search?q=flask&per_page=5").json
    assert page is not None
    assert set(page) == {"items", "query", "page", "per_page", "total", "processing_time_ms"}
    assert page["query"] == "flask"
    assert page["total"] == 1
    assert page["per_page"] == 5
    assert isinstance(page["processing_time_ms"], int)
    [item] = page["items"]
    assert item["title"] == "Flask & <friends>"
    assert item["_formatted"]["title"] == "<em>Flask</em> &amp; &lt;friends&gt;"
    formatted_body = item["_formatted"]["body"]
    assert "the <em>Flask</em> app" in formatted_body
    assert formatted_body.startswith("…")
    assert formatted_body.endswith("…")
    assert len(formatted_body) < len(body)


def test_search_filters_by_tag_and_pages(api: Api) -> None:
    author = api.register()
    for n in range(5):
        api.article(author, title=f"note {n}", tags=["a"] if n % 2 else ["b"])
    assert _titles(api, "q=note&tag=a") == ["note 3", "note 1"]
    second = api.client.get("/api/v1/articles/search?q=note&per_page=2&page=2").json
    assert second is not None
    assert second["total"] == 5
    assert [item["title"] for item in second["items"]] == ["note 2", "note 1"]


def test_an_empty_query_lists_every_published_article_without_highlights(api: Api) -> None:
    author = api.register()
    api.article(author, title="one")
    page = api.client.get("/api/v1/articles/search").json
    assert page is not None
    assert page["total"] == 1
    assert page["items"][0]["_formatted"] is None


def test_like_wildcards_in_the_query_are_literal(api: Api) -> None:
    author = api.register()
    api.article(author, title="100% sure")
    api.article(author, title="1000 things")
    assert _titles(api, "q=100%25") == ["100% sure"]
    assert _titles(api, "q=_") == []


def test_bad_search_parameters_are_422(api: Api) -> None:
    for query in ("per_page=101", "page=0", "q=" + "x" * 201, "tag=" + "t" * 51, "nope=1"):
        response = api.client.get(f"/api/v1/articles/search?{query}")
        assert response.status_code == 422, query
        assert response.json is not None
        assert response.json["details"][0]["loc"][0] == "query"
