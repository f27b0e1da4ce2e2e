"""Real responses against the document: every body the API sends validates
against the schema the document gives its status, required fields included, so
a generated client that trusts ``required`` is never let down."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_support import PASSWORD, Api
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

BASE = "/api/v1"


def check(document: dict[str, Any], method: str, path: str, response: TestResponse) -> None:
    """``response`` is what the document promises for ``method path`` and its status."""
    operation = document["paths"][path][method.lower()]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{method} {path} answered an undeclared {response.status_code}"
    content = declared.get("content", {}).get("application/json")
    if content is None:
        assert response.get_data() == b""
        return
    schema = {**content["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(response.json), key=str)
    assert errors == [], f"{method} {path} {response.status_code}: {errors[0].message}"


def template(url: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{article_id}", url.removeprefix(BASE))


def test_every_response_of_the_contract_tour_matches_its_schema(api: Api) -> None:
    document: dict[str, Any] = api.client.get(f"{BASE}/openapi.json").json  # type: ignore[assignment]
    admin = api.register("Root", admin=True)
    author = api.register("Ada")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (
            "POST",
            "/auth/register",
            {"json": {"email": "new@example.com", "password": PASSWORD, "name": "N"}},
        ),
        (
            "POST",
            "/auth/register",
            {"json": {"email": "new@example.com", "password": PASSWORD, "name": "N"}},
        ),
        ("POST", "/auth/register", {"json": {"email": "x", "password": "short", "name": "  "}}),
        ("POST", "/auth/token", {"json": {"email": author.email, "password": PASSWORD}}),
        ("POST", "/auth/token", {"data": {"username": author.email, "password": PASSWORD}}),
        ("POST", "/auth/token", {"json": {"email": author.email, "password": "wrong"}}),
        ("GET", "/users/me", {"headers": author.headers}),
        ("GET", "/users/me", {}),
        ("GET", "/users", {"headers": admin.headers}),
        ("GET", "/users", {"headers": author.headers}),
        (
            "POST",
            "/articles",
            {
                "json": {"title": "T", "body": "B", "tags": ["a"], "status": "published"},
                "headers": author.headers,
            },
        ),
        ("GET", "/articles", {}),
        ("GET", "/articles", {"query_string": {"status": "draft"}, "headers": author.headers}),
        ("GET", "/articles/search", {"query_string": {"q": "B"}}),
        ("GET", "/articles/search", {}),
        ("GET", "/health", {}),
        ("GET", "/health/ready", {}),
    ]
    for method, path, options in calls:
        check(document, method, path, api.client.open(BASE + path, method=method, **options))

    article = api.article(author, tags=["x"])
    url = f"{BASE}/articles/{article['id']}"
    etag = api.client.get(url).headers["ETag"]
    for method, options in [
        ("GET", {}),
        ("GET", {"headers": {"If-None-Match": etag}}),
        ("PATCH", {"json": {"title": "New"}, "headers": {**author.headers, "If-Match": etag}}),
        ("PATCH", {"json": {"title": "Again"}, "headers": {**author.headers, "If-Match": etag}}),
        ("PATCH", {"json": {"title": None}, "headers": author.headers}),
        ("DELETE", {"headers": admin.headers}),
        ("GET", {}),
    ]:
        check(document, method, template(url), api.client.open(url, method=method, **options))


def test_required_fields_include_the_ones_always_sent(api: Api) -> None:
    document: dict[str, Any] = api.client.get(f"{BASE}/openapi.json").json  # type: ignore[assignment]
    schemas = document["components"]["schemas"]
    assert "token_type" in schemas["TokenPair"]["required"]
    assert "_formatted" in schemas["SearchHit"]["required"]
    assert "details" not in schemas["ErrorEnvelope"].get("required", [])  # left out when empty


def test_the_check_fails_a_body_missing_a_required_field(api: Api) -> None:
    document: dict[str, Any] = api.client.get(f"{BASE}/openapi.json").json  # type: ignore[assignment]
    body = b'{"access_token": "a", "expires_in": 1, "refresh_token": "r"}'
    response = TestResponse(body, 200, {"Content-Type": "application/json"}, request=None)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="'token_type' is a required property"):
        check(document, "POST", "/auth/token", response)
