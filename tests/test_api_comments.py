"""Comments: the routes of the contract, bad input, who may do what, and the
list's query count, on SQLite and on MariaDB."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import Api, Caller, count_queries, error, snapshot

from app.core.error_codes import ErrorCode

ROLES = ("anonymous", "commenter", "author", "other", "admin")


def comments_url(article_id: int) -> str:
    return f"/api/v1/articles/{article_id}/comments"


def comment(api: Api, caller: Caller, article_id: int, body: str = "Nice one") -> dict[str, Any]:
    response = api.client.post(
        comments_url(article_id), json={"body": body}, headers=caller.headers
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


# -- the routes ----------------------------------------------------------------------


def test_create_answers_201_with_the_comment_and_its_location(api: Api) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    response = api.client.post(
        comments_url(article["id"]), json={"body": "  Line one\nline two  "}, headers=reader.headers
    )
    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert body["article_id"] == article["id"]
    assert body["author"] == {"id": reader.id, "name": "Grace"}
    assert body["body"] == "  Line one\nline two  "  # kept as written
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith("Z")
    assert response.headers["Location"] == f"/api/v1/comments/{body['id']}"
    assert set(body) == {"id", "article_id", "author", "body", "created_at", "updated_at"}


def test_list_is_oldest_first_and_paged(api: Api) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    made = [comment(api, reader, article["id"], f"comment {n}") for n in range(5)]
    first = api.client.get(comments_url(article["id"]) + "?per_page=2").json
    last = api.client.get(comments_url(article["id"]) + "?per_page=2&page=3").json
    assert first is not None
    assert last is not None
    assert [item["id"] for item in first["items"]] == [made[0]["id"], made[1]["id"]]
    assert [item["id"] for item in last["items"]] == [made[4]["id"]]
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (5, 3, 1, 2)


def test_list_holds_only_that_articles_comments(api: Api) -> None:
    author = api.register("Ada")
    one, two = api.article(author), api.article(author)
    comment(api, author, one["id"], "on one")
    comment(api, author, two["id"], "on two")
    page = api.client.get(comments_url(one["id"])).json
    assert page is not None
    assert [item["body"] for item in page["items"]] == ["on one"]


def test_update_changes_the_body_and_updated_at(api: Api) -> None:
    author = api.register("Ada")
    made = comment(api, author, api.article(author)["id"], "before")
    response = api.client.patch(
        f"/api/v1/comments/{made['id']}", json={"body": "after"}, headers=author.headers
    )
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["body"] == "after"
    assert response.json["updated_at"] > made["updated_at"]
    assert response.json["created_at"] == made["created_at"]


def test_an_empty_update_changes_nothing(api: Api) -> None:
    author = api.register("Ada")
    made = comment(api, author, api.article(author)["id"])
    response = api.client.patch(f"/api/v1/comments/{made['id']}", json={}, headers=author.headers)
    assert response.status_code == 200
    assert response.json == made


def test_delete_removes_the_comment(api: Api) -> None:
    author = api.register("Ada")
    article = api.article(author)
    made = comment(api, author, article["id"])
    assert (
        api.client.delete(f"/api/v1/comments/{made['id']}", headers=author.headers).status_code
        == 204
    )
    page = api.client.get(comments_url(article["id"])).json
    assert page is not None
    assert page["items"] == []
    error(
        api.client.delete(f"/api/v1/comments/{made['id']}", headers=author.headers),
        404,
        ErrorCode.NOT_FOUND,
    )


def test_deleting_the_article_deletes_its_comments(api: Api) -> None:
    author = api.register("Ada")
    article = api.article(author)
    made = comment(api, author, article["id"])
    assert (
        api.client.delete(f"/api/v1/articles/{article['id']}", headers=author.headers).status_code
        == 204
    )
    assert snapshot(api)["comments"] == []
    error(
        api.client.patch(
            f"/api/v1/comments/{made['id']}", json={"body": "x"}, headers=author.headers
        ),
        404,
        ErrorCode.NOT_FOUND,
    )


def test_a_renamed_author_shows_the_new_name(api: Api) -> None:
    author = api.register("Ada")
    article = api.article(author)
    comment(api, author, article["id"])
    api.client.patch("/api/v1/users/me", json={"name": "Ada L."}, headers=author.headers)
    page = api.client.get(comments_url(article["id"])).json
    assert page is not None
    assert page["items"][0]["author"]["name"] == "Ada L."


def test_commenting_on_a_draft_you_may_read_is_a_conflict(api: Api) -> None:
    author = api.register("Ada")
    draft = api.article(author, status="draft")
    before = snapshot(api)
    body = error(
        api.client.post(comments_url(draft["id"]), json={"body": "x"}, headers=author.headers),
        409,
        ErrorCode.CONFLICT,
    )
    assert "published" in body["message"]
    assert snapshot(api) == before


def test_a_draft_unpublished_later_keeps_its_comments_hidden(api: Api) -> None:
    author, reader = api.register("Ada"), api.register("Grace")
    article = api.article(author)
    made = comment(api, reader, article["id"])
    api.client.patch(
        f"/api/v1/articles/{article['id']}", json={"status": "draft"}, headers=author.headers
    )
    error(api.client.get(comments_url(article["id"])), 404, ErrorCode.NOT_FOUND)
    error(
        api.client.patch(
            f"/api/v1/comments/{made['id']}", json={"body": "x"}, headers=reader.headers
        ),
        404,
        ErrorCode.NOT_FOUND,
    )
    listed = api.client.get(comments_url(article["id"]), headers=author.headers).json
    assert listed is not None
    assert [item["id"] for item in listed["items"]] == [made["id"]]


def test_the_list_query_count_does_not_grow_with_the_page(api: Api) -> None:
    author = api.register("Ada")
    article = api.article(author)
    commenters = [api.register(f"C{n}") for n in range(6)]
    for caller in commenters[:2]:
        comment(api, caller, article["id"])
    with count_queries(api) as small:
        page = api.client.get(comments_url(article["id"]) + "?per_page=2").json
    assert page is not None
    assert len(page["items"]) == 2
    for caller in commenters:
        for _ in range(5):
            comment(api, caller, article["id"])
    with count_queries(api) as large:
        page = api.client.get(comments_url(article["id"]) + "?per_page=30").json
    assert page is not None
    assert len(page["items"]) == 30
    assert len({item["author"]["id"] for item in page["items"]}) == 6
    assert len(large) == len(small)


# -- bad input -----------------------------------------------------------------------

BAD_BODIES: list[tuple[str, Any, str]] = [
    ("missing body", {}, "missing"),
    ("empty body", {"body": ""}, "string_too_short"),
    ("only whitespace", {"body": " \n\t "}, "string_pattern_mismatch"),
    ("too long", {"body": "x" * 5_001}, "string_too_long"),
    ("not a string", {"body": 5}, "string_type"),
    ("null", {"body": None}, "string_type"),
    ("unknown field", {"body": "x", "article_id": 3}, "extra_forbidden"),
]


@pytest.mark.parametrize(
    ("payload", "kind"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_create_refuses_a_bad_body_and_writes_nothing(api: Api, payload: Any, kind: str) -> None:
    author = api.register("Ada")
    article = api.article(author)
    before = snapshot(api)
    body = error(
        api.client.post(comments_url(article["id"]), json=payload, headers=author.headers),
        422,
        ErrorCode.VALIDATION_FAILED,
    )
    assert kind in {detail["type"] for detail in body["details"]}
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        *[p[1:] for p in BAD_BODIES if p[0] not in {"missing body", "null"}],
        ({"body": None}, "value_error"),
    ],
    ids=[*[p[0] for p in BAD_BODIES if p[0] not in {"missing body", "null"}], "null"],
)
def test_update_refuses_a_bad_body_and_changes_nothing(api: Api, payload: Any, kind: str) -> None:
    author = api.register("Ada")
    made = comment(api, author, api.article(author)["id"])
    before = snapshot(api)
    body = error(
        api.client.patch(f"/api/v1/comments/{made['id']}", json=payload, headers=author.headers),
        422,
        ErrorCode.VALIDATION_FAILED,
    )
    assert kind in {detail["type"] for detail in body["details"]}
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, ErrorCode.MALFORMED_JSON),
        ({"json": ["a list"]}, 400, ErrorCode.BODY_NOT_OBJECT),
        ({"data": "body=x", "content_type": "text/plain"}, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    ],
    ids=["malformed JSON", "not an object", "not JSON"],
)
def test_create_refuses_a_body_that_is_not_a_json_object(
    api: Api, send: dict[str, Any], status: int, code: ErrorCode
) -> None:
    author = api.register("Ada")
    article = api.article(author)
    before = snapshot(api)
    error(
        api.client.post(comments_url(article["id"]), headers=author.headers, **send), status, code
    )
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "query",
    ["page=0", "per_page=0", "per_page=101", "page=x", "sort=title"],
)
def test_list_refuses_a_bad_query(api: Api, query: str) -> None:
    article = api.article(api.register("Ada"))
    error(
        api.client.get(comments_url(article["id"]) + "?" + query), 422, ErrorCode.VALIDATION_FAILED
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/articles/0/comments", "/api/v1/articles/99999999999999999999/comments"]
)
def test_an_id_that_cannot_exist_is_not_found(api: Api, path: str) -> None:
    error(api.client.get(path), 404, {ErrorCode.NOT_FOUND, ErrorCode.ROUTE_NOT_FOUND})


# -- who may do what -----------------------------------------------------------------

#: (method, path, body, {role: status}). "author" wrote ``{published}`` and
#: ``{draft}``; "commenter" wrote ``{comment}`` on ``{published}``.
MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/articles/{published}/comments", None, dict.fromkeys(ROLES, 200)),
    (
        "GET",
        "/articles/{draft}/comments",
        None,
        {"anonymous": 404, "commenter": 404, "author": 200, "other": 404, "admin": 200},
    ),
    ("GET", "/articles/9999999/comments", None, dict.fromkeys(ROLES, 404)),
    (
        "POST",
        "/articles/{published}/comments",
        {"body": "hi"},
        {"anonymous": 401, "commenter": 201, "author": 201, "other": 201, "admin": 201},
    ),
    (
        "POST",
        "/articles/{draft}/comments",
        {"body": "hi"},
        {"anonymous": 401, "commenter": 404, "author": 409, "other": 404, "admin": 409},
    ),
    (
        "POST",
        "/articles/9999999/comments",
        {"body": "hi"},
        {"anonymous": 401, "commenter": 404, "author": 404, "other": 404, "admin": 404},
    ),
    (
        "PATCH",
        "/comments/{comment}",
        {"body": "edited"},
        {"anonymous": 401, "commenter": 200, "author": 403, "other": 403, "admin": 403},
    ),
    (
        "PATCH",
        "/comments/9999999",
        {"body": "edited"},
        {"anonymous": 401, "commenter": 404, "author": 404, "other": 404, "admin": 404},
    ),
    (
        "DELETE",
        "/comments/{comment}",
        None,
        {"anonymous": 401, "commenter": 204, "author": 204, "other": 403, "admin": 204},
    ),
    (
        "DELETE",
        "/comments/9999999",
        None,
        {"anonymous": 401, "commenter": 404, "author": 404, "other": 404, "admin": 404},
    ),
]

CASES = [
    pytest.param(method, path, body, role, statuses[role], id=f"{method} {path} as {role}")
    for method, path, body, statuses in MATRIX
    for role in ROLES
]

TEMPLATES = {
    "/articles/{published}/comments": "/articles/{article_id}/comments",
    "/articles/{draft}/comments": "/articles/{article_id}/comments",
    "/articles/9999999/comments": "/articles/{article_id}/comments",
    "/comments/{comment}": "/comments/{comment_id}",
    "/comments/9999999": "/comments/{comment_id}",
}


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_access(  # noqa: PLR0917 - pytest passes the parameters
    api: Api, method: str, path: str, body: dict[str, Any] | None, role: str, expected: int
) -> None:
    callers: dict[str, Caller] = {
        "anonymous": api.anonymous,
        "commenter": api.register("Commenter"),
        "author": api.register("Author"),
        "other": api.register("Other"),
        "admin": api.register("Admin", admin=True),
    }
    published = api.article(callers["author"], status="published")
    draft = api.article(callers["author"], status="draft")
    made = comment(api, callers["commenter"], published["id"])
    url = "/api/v1" + path.format(published=published["id"], draft=draft["id"], comment=made["id"])
    before = snapshot(api)
    response = api.client.open(url, method=method, json=body, headers=callers[role].headers)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        error(
            response,
            expected,
            {ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.CONFLICT},
        )
        assert snapshot(api) == before
    document = api.client.get("/api/v1/openapi.json").json
    assert document is not None
    responses = document["paths"][TEMPLATES[path]][method.lower()]["responses"]
    assert str(expected) in responses
