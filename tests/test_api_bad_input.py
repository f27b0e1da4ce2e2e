"""Bad input to the write endpoints of /api/v1 is refused, and refused cleanly.

For POST /auth/register, POST /articles (signed in) and PATCH /articles/{id}
(as the author), every kind of bad request answers a 4xx error envelope with the
right ``code`` and ``error_code``, and nothing at all is written: every row of
every table reads back the same afterwards. Runs on SQLite and on MariaDB.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import redis
from api_support import PASSWORD, Api, Caller, error, snapshot
from conftest import REDIS_URL, SettingsFactory
from sqlalchemy import Engine

from app import create_app
from app.auth.access_tokens import issue_access_token
from app.core.error_codes import ErrorCode

ARTICLES = "/api/v1/articles"
TARGETS = ["register", "create", "update"]
ARTICLE_TARGETS = ["create", "update"]


# -- helpers -------------------------------------------------------------------------


@dataclass
class Target:
    """One write endpoint, ready to be sent a body, with a body it accepts."""

    api: Api
    method: str
    url: str
    valid: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict[str, str])
    article: dict[str, Any] | None = None

    def send(self, payload: Any = None, **kwargs: Any) -> Any:
        if payload is not None:
            kwargs["json"] = payload
        return self.api.client.open(self.url, method=self.method, headers=self.headers, **kwargs)

    def with_fields(self, **fields: Any) -> dict[str, Any]:
        return {**self.valid, **fields}


def prepare(api: Api, name: str) -> Target:
    if name == "register":
        api.register("Someone")  # so the tables are not all empty
        return Target(
            api,
            "POST",
            "/api/v1/auth/register",
            {"email": "new@example.com", "password": PASSWORD, "name": "New"},
        )
    author = api.register("Ada")
    if name == "create":
        valid = {"title": "A title", "body": "A body", "tags": ["news"], "status": "published"}
        return Target(api, "POST", ARTICLES, valid, author.headers)
    article = api.article(author, tags=["keep"])
    return Target(
        api,
        "PATCH",
        f"{ARTICLES}/{article['id']}",
        {"title": "A new title", "tags": ["changed"]},
        author.headers,
        article,
    )


def assert_nothing_written(target: Target, before: dict[str, list[tuple[Any, ...]]]) -> None:
    assert snapshot(target.api) == before
    if target.article is not None:  # and the API (through its cache) agrees
        response = target.api.client.get(target.url, headers=target.headers)
        assert response.status_code == 200
        assert response.json == target.article


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, api: Api) -> Target:
    return prepare(api, request.param)


@pytest.fixture
def small_api(make_settings: SettingsFactory, db_engine: Engine, redis_client: redis.Redis) -> Api:
    """The API with MAX_CONTENT_LENGTH = 1 KiB."""
    app = create_app(
        make_settings(
            database_url=db_engine.url.render_as_string(hide_password=False),
            redis_url=REDIS_URL,
            password_time_cost=1,
            password_memory_cost=8192,
            max_content_length=1024,
        )
    )
    return Api(app)


# -- the harness itself --------------------------------------------------------------


def test_the_valid_body_is_accepted_and_written(target: Target) -> None:
    """Without this, "nothing is written" below could pass for a broken harness."""
    before = snapshot(target.api)
    response = target.send(target.valid)
    assert response.status_code in {200, 201}, response.json
    assert snapshot(target.api) != before


# -- fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unknown"),
    [
        ("register", "is_admin"),
        ("register", "password_hash"),
        ("create", "author_id"),
        ("create", "version"),
        ("update", "version"),
        ("update", "id"),
        ("update", "author"),
    ],
)
def test_unknown_fields_are_422(api: Api, name: str, unknown: str) -> None:
    """Request models forbid unknown fields, so a client cannot set ``is_admin``,
    ``author_id`` or ``version`` by sending them."""
    target = prepare(api, name)
    before = snapshot(api)
    body = error(target.send(target.with_fields(**{unknown: 1})), 422, ErrorCode.VALIDATION_FAILED)
    assert [(d["loc"], d["type"]) for d in body["details"]] == [
        (["body", unknown], "extra_forbidden")
    ]
    assert_nothing_written(target, before)


class FieldCase(NamedTuple):
    """A body field set to ``value``, and the one problem it must be reported as."""

    field: str
    value: Any
    loc: list[str | int]
    kind: str


ARTICLE_FIELD_CASES = {
    "title-201-chars": FieldCase("title", "t" * 201, ["body", "title"], "string_too_long"),
    "body-100001-chars": FieldCase("body", "b" * 100_001, ["body", "body"], "string_too_long"),
    "tag-51-chars": FieldCase("tags", ["t" * 51], ["body", "tags", 0], "string_too_long"),
    "11-tags": FieldCase("tags", [f"tag{i}" for i in range(11)], ["body", "tags"], "too_long"),
    "blank-title": FieldCase("title", "   ", ["body", "title"], "string_too_short"),
    "blank-tag": FieldCase("tags", [" "], ["body", "tags", 0], "string_too_short"),
    "title-number": FieldCase("title", 123, ["body", "title"], "string_type"),
    "tags-string": FieldCase("tags", "x", ["body", "tags"], "list_type"),
    "tags-of-numbers": FieldCase("tags", [1], ["body", "tags", 0], "string_type"),
    "status-archived": FieldCase("status", "archived", ["body", "status"], "enum"),
    "body-object": FieldCase("body", {"text": "x"}, ["body", "body"], "string_type"),
}
REGISTER_FIELD_CASES = {
    "name-101-chars": FieldCase("name", "n" * 101, ["body", "name"], "string_too_long"),
    "password-129-chars": FieldCase("password", "p" * 129, ["body", "password"], "string_too_long"),
    "password-7-chars": FieldCase("password", "p" * 7, ["body", "password"], "string_too_short"),
    "email-number": FieldCase("email", 5, ["body", "email"], "string_type"),
    "email-not-an-email": FieldCase(
        "email", "not-an-email", ["body", "email"], "string_pattern_mismatch"
    ),
    "email-special-use-domain": FieldCase(
        "email", "ada@example.test", ["body", "email"], "value_error"
    ),
    "email-255-chars": FieldCase(
        "email",
        "a" * 64 + "@" + "b" * 62 + "." + "b" * 61 + "." + "b" * 61 + ".com",
        ["body", "email"],
        "string_too_long",
    ),
    "name-list": FieldCase("name", ["Ada"], ["body", "name"], "string_type"),
}
FIELD_CASES = [
    pytest.param(name, case, id=f"{name}-{label}")
    for name in ARTICLE_TARGETS
    for label, case in ARTICLE_FIELD_CASES.items()
] + [
    pytest.param("register", case, id=f"register-{label}")
    for label, case in REGISTER_FIELD_CASES.items()
]


@pytest.mark.parametrize(("name", "case"), FIELD_CASES)
def test_out_of_bounds_and_wrongly_typed_fields_are_422(
    api: Api, name: str, case: FieldCase
) -> None:
    target = prepare(api, name)
    before = snapshot(api)
    response = target.send(target.with_fields(**{case.field: case.value}))
    body = error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert [(d["loc"], d["type"]) for d in body["details"]] == [(case.loc, case.kind)]
    assert "input" not in body["details"][0]  # the value is never echoed back
    assert_nothing_written(target, before)


def test_every_problem_is_reported_at_once(api: Api) -> None:
    target = prepare(api, "create")
    before = snapshot(api)
    response = target.send({"title": "", "body": 5, "tags": "x", "status": "x", "extra": 1})
    body = error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert sorted(d["loc"][1] for d in body["details"]) == [
        "body",
        "extra",
        "status",
        "tags",
        "title",
    ]
    assert_nothing_written(target, before)


@pytest.mark.parametrize("tags", [["e", "é"], ["😀", "🎉"]], ids=["accents", "emoji"])
def test_tags_that_differ_only_in_accents_or_emoji_are_distinct(api: Api, tags: list[str]) -> None:
    """Distinct tag names stay distinct tags, and are never a 500.

    A regression test for MariaDB: with the database's default collation
    (utf8mb4_general_ci) on ``tags.name``, "e" = "é" and all emoji are equal, so
    ``tags_named`` inserted one row and then looked the other up by its exact
    name (KeyError, 500). ``tags.name`` is now utf8mb4_bin."""
    author = api.register("Ada")
    response = api.client.post(
        ARTICLES, json={"title": "T", "body": "B", "tags": tags}, headers=author.headers
    )
    assert response.status_code == 201, response.json
    assert sorted(response.json["tags"]) == sorted(tags)  # type: ignore[index]
    again = api.client.post(
        ARTICLES, json={"title": "T", "body": "B", "tags": tags[1:]}, headers=author.headers
    )
    assert again.status_code == 201, again.json
    assert again.json["tags"] == tags[1:]  # type: ignore[index]


# -- bodies that are not a JSON object ----------------------------------------------


NESTED_ARRAYS = b"[" * 10_000 + b"]" * 10_000
NESTED_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
RAW_BODIES = [
    pytest.param(
        "application/json",
        b'{"title": "\xff\xfe", "body": "x"}',
        400,
        ErrorCode.MALFORMED_JSON,
        id="invalid-utf8",
    ),
    pytest.param(
        "application/json",
        b'{"title": "\\ud800"}',
        400,
        ErrorCode.MALFORMED_JSON,
        id="lone-surrogate",
    ),
    pytest.param(
        "application/json", NESTED_ARRAYS, 400, ErrorCode.MALFORMED_JSON, id="nested-arrays"
    ),
    pytest.param(
        "application/json", NESTED_OBJECTS, 400, ErrorCode.MALFORMED_JSON, id="nested-objects"
    ),
    pytest.param("application/json", b"", 400, ErrorCode.MALFORMED_JSON, id="empty"),
    pytest.param("application/json", b'{"title": ', 400, ErrorCode.MALFORMED_JSON, id="truncated"),
    pytest.param("application/json", b"[]", 400, ErrorCode.BODY_NOT_OBJECT, id="array"),
    pytest.param(
        "application/json",
        b'[{"title": "x"}]',
        400,
        ErrorCode.BODY_NOT_OBJECT,
        id="array-of-object",
    ),
    pytest.param("application/json", b"null", 400, ErrorCode.BODY_NOT_OBJECT, id="null"),
    pytest.param("application/json", b'"text"', 400, ErrorCode.BODY_NOT_OBJECT, id="string"),
    pytest.param(
        None, b'{"title": "x"}', 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, id="no-content-type"
    ),
    pytest.param(
        "text/plain", b'{"title": "x"}', 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, id="text-plain"
    ),
    pytest.param(
        "multipart/form-data; boundary=x",
        b"--x--\r\n",
        415,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        id="multipart",
    ),
]


@pytest.mark.parametrize(("content_type", "data", "status", "error_code"), RAW_BODIES)
def test_bodies_that_are_not_a_json_object_are_refused(
    target: Target, content_type: str | None, data: bytes, status: int, error_code: ErrorCode
) -> None:
    before = snapshot(target.api)
    kwargs: dict[str, Any] = {"data": data}
    if content_type is not None:
        kwargs["content_type"] = content_type
    error(target.send(**kwargs), status, error_code)
    assert_nothing_written(target, before)


def test_a_valid_body_as_text_plain_is_415(target: Target) -> None:
    """The content type alone is the reason: the same bytes as JSON are accepted."""
    before = snapshot(target.api)
    response = target.send(data=json.dumps(target.valid), content_type="text/plain")
    error(response, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    assert_nothing_written(target, before)


def test_a_form_body_is_415_outside_the_token_endpoint(target: Target) -> None:
    before = snapshot(target.api)
    fields = {name: str(value) for name, value in target.valid.items()}
    error(target.send(data=fields), 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    assert_nothing_written(target, before)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("name", TARGETS)
def test_a_body_over_max_content_length_is_413(small_api: Api, name: str, chunked: bool) -> None:
    """A valid body padded with JSON whitespace past the 1 KiB limit: too large,
    whether its length is announced or it is streamed."""
    target = prepare(small_api, name)
    before = snapshot(small_api)
    data = json.dumps(target.valid).encode() + b" " * 2048
    kwargs: dict[str, Any] = {"data": data, "content_type": "application/json"}
    if chunked:  # what gunicorn passes on: no Content-Length, a terminated stream
        kwargs.update(
            data=io.BytesIO(data),
            headers={**target.headers, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        response = small_api.client.open(target.url, method=target.method, **kwargs)
    else:
        response = target.send(**kwargs)
    error(response, 413, ErrorCode.PAYLOAD_TOO_LARGE)
    assert_nothing_written(target, before)


# -- query strings --------------------------------------------------------------------


QUERY_CASES = [
    ("page", "0", "greater_than_equal"),
    ("page", "-1", "greater_than_equal"),
    ("page", str(10**30), "less_than_equal"),
    ("page", "abc", "int_parsing"),
    ("page", "1.5", "int_parsing"),
    ("per_page", "101", "less_than_equal"),
    ("per_page", "0", "greater_than_equal"),
    ("per_page", "-20", "greater_than_equal"),
    ("per_page", str(10**30), "less_than_equal"),
    ("author_id", "-5", "greater_than_equal"),
    ("author_id", "0", "greater_than_equal"),
    ("author_id", str(10**30), "less_than_equal"),
    ("author_id", str(2**63), "less_than_equal"),
    ("status", "archived", "enum"),
    ("sort", "password", "literal_error"),
    ("tag", "t" * 51, "string_too_long"),
    ("bogus", "1", "extra_forbidden"),
]


@pytest.mark.parametrize(("name", "value", "kind"), QUERY_CASES)
def test_out_of_range_article_list_queries_are_422(
    api: Api, name: str, value: str, kind: str
) -> None:
    response = api.client.get(ARTICLES, query_string={name: value})
    body = error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert [(d["loc"], d["type"]) for d in body["details"]] == [(["query", name], kind)]


@pytest.mark.parametrize(
    ("name", "value"),
    [("page", "0"), ("page", str(10**30)), ("per_page", "101"), ("per_page", "-1")],
)
def test_out_of_range_user_list_queries_are_422(api: Api, name: str, value: str) -> None:
    admin = api.register("Root", admin=True)
    response = api.client.get("/api/v1/users", query_string={name: value}, headers=admin.headers)
    body = error(response, 422, ErrorCode.VALIDATION_FAILED)
    assert [d["loc"] for d in body["details"]] == [["query", name]]


# -- ids in the path ------------------------------------------------------------------


NOT_FOUND = {ErrorCode.NOT_FOUND, ErrorCode.ROUTE_NOT_FOUND}
OUT_OF_RANGE_IDS = ["0", "-1", str(2**63), "99999999999999999999999", "abc"]


@pytest.mark.parametrize("article_id", OUT_OF_RANGE_IDS)
def test_reading_an_impossible_article_id_is_404(api: Api, article_id: str) -> None:
    error(api.client.get(f"{ARTICLES}/{article_id}"), 404, NOT_FOUND)


@pytest.mark.parametrize("article_id", OUT_OF_RANGE_IDS)
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_changing_an_impossible_article_id_is_404(api: Api, method: str, article_id: str) -> None:
    """As for GET: an id that cannot exist is not found. (Werkzeug used to
    answer 405 with ``Allow: GET, HEAD, OPTIONS`` here, because the GET rule's
    pattern matched before the id converter refused the value.)"""
    author = api.register("Ada")
    before = snapshot(api)
    response = api.client.open(
        f"{ARTICLES}/{article_id}",
        method=method,
        json={"title": "x"} if method == "PATCH" else None,
        headers=author.headers,
    )
    assert response.status_code == 404, (response.status_code, response.headers.get("Allow"))
    error(response, 404, NOT_FOUND)
    assert snapshot(api) == before


# -- credentials ----------------------------------------------------------------------


def _forged_token(api: Api, caller: Caller) -> str:
    assert caller.id is not None
    return issue_access_token(caller.id, "not the app's secret key " * 2, timedelta(minutes=5))


def _expired_token(api: Api, caller: Caller) -> str:
    assert caller.id is not None
    secret = api.app.settings.secret_key.get_secret_value()
    issued = datetime.now(UTC) - timedelta(hours=2)
    return issue_access_token(caller.id, secret, timedelta(minutes=5), now=issued)


AUTHORIZATIONS: list[Any] = [
    pytest.param(lambda api, caller: "Basic YWRhOnB3", id="basic"),
    pytest.param(lambda api, caller: "Bearer", id="bearer-without-token"),
    pytest.param(lambda api, caller: "Bearer ", id="bearer-blank"),
    pytest.param(lambda api, caller: "Bearer not.a.jwt", id="not-a-jwt"),
    pytest.param(lambda api, caller: "Bearer " + "a" * 4000, id="long-garbage"),
    pytest.param(lambda api, caller: caller.token, id="token-without-scheme"),
    pytest.param(lambda api, caller: f"Token {caller.token}", id="wrong-scheme"),
    pytest.param(lambda api, caller: f"Bearer {caller.refresh_token}", id="refresh-token"),
    pytest.param(lambda api, caller: f"Bearer {_forged_token(api, caller)}", id="forged"),
    pytest.param(lambda api, caller: f"Bearer {_expired_token(api, caller)}", id="expired"),
]


@pytest.mark.parametrize("authorization", AUTHORIZATIONS)
def test_a_bad_authorization_header_is_401(
    api: Api, authorization: Callable[[Api, Caller], str]
) -> None:
    """Whether the operation needs a token (GET /users/me, POST /articles) or only
    accepts one (GET /articles), a bad one is refused with 401 and
    ``WWW-Authenticate: Bearer ...``, and changes nothing."""
    caller = api.register("Ada")
    before = snapshot(api)
    header = {"Authorization": authorization(api, caller)}
    for method, url in [("GET", "/api/v1/users/me"), ("POST", ARTICLES), ("GET", ARTICLES)]:
        body = {"title": "T", "body": "B"} if method == "POST" else None
        response = api.client.open(url, method=method, json=body, headers=header)
        error(response, 401, ErrorCode.UNAUTHORIZED)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, url)
    assert snapshot(api) == before
