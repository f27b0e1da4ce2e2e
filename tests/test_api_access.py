"""Who may call what: every route against an anonymous caller, the author
("user"), another signed-in account ("other") and an admin. Each status must
be one the OpenAPI document (and so the contract) lists for that operation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_support import Api, Caller

ROLES = ("anonymous", "user", "other", "admin")

#: (method, path, body, {role: status}). ``{published}`` and ``{draft}`` are
#: articles written by "user".
MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/health", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/health/ready", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/openapi.json", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/docs", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/users/me", None, {"anonymous": 401, "user": 200, "other": 200, "admin": 200}),
    (
        "PATCH",
        "/users/me",
        {"name": "Renamed"},
        {"anonymous": 401, "user": 200, "other": 200, "admin": 200},
    ),
    ("GET", "/users", None, {"anonymous": 401, "user": 403, "other": 403, "admin": 200}),
    ("GET", "/articles", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/articles/search?q=a", None, dict.fromkeys(ROLES, 200)),
    (
        "GET",
        "/articles?status=draft",
        None,
        {"anonymous": 401, "user": 200, "other": 200, "admin": 200},
    ),
    (
        "POST",
        "/articles",
        {"title": "t", "body": "b"},
        {"anonymous": 401, "user": 201, "other": 201, "admin": 201},
    ),
    ("GET", "/articles/{published}", None, dict.fromkeys(ROLES, 200)),
    ("GET", "/articles/{draft}", None, {"anonymous": 404, "user": 200, "other": 404, "admin": 200}),
    ("GET", "/articles/9999", None, dict.fromkeys(ROLES, 404)),
    (
        "PATCH",
        "/articles/{published}",
        {"title": "changed"},
        {"anonymous": 401, "user": 200, "other": 403, "admin": 200},
    ),
    (
        "PATCH",
        "/articles/{draft}",
        {"title": "changed"},
        {"anonymous": 401, "user": 200, "other": 404, "admin": 200},
    ),
    (
        "DELETE",
        "/articles/{published}",
        None,
        {"anonymous": 401, "user": 204, "other": 403, "admin": 204},
    ),
    (
        "DELETE",
        "/articles/{draft}",
        None,
        {"anonymous": 401, "user": 204, "other": 404, "admin": 204},
    ),
]

CASES = [
    pytest.param(method, path, body, role, statuses[role], id=f"{method} {path} as {role}")
    for method, path, body, statuses in MATRIX
    for role in ROLES
]


def _documented_statuses(document: dict[str, Any], method: str, path: str) -> set[int]:
    template = re.sub(r"/\d+$|/\{(published|draft)\}", "/{article_id}", path.partition("?")[0])
    responses = document["paths"][template][method.lower()]["responses"]
    return {int(status) for status in responses}


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_access(  # noqa: PLR0917 - pytest passes the parameters
    api: Api, method: str, path: str, body: dict[str, Any] | None, role: str, expected: int
) -> None:
    callers: dict[str, Caller] = {
        "anonymous": api.anonymous,
        "user": api.register("User"),
        "other": api.register("Other"),
        "admin": api.register("Admin", admin=True),
    }
    published = api.article(callers["user"], status="published")
    draft = api.article(callers["user"], status="draft")
    url = "/api/v1" + path.format(published=published["id"], draft=draft["id"])
    response = api.client.open(url, method=method, json=body, headers=callers[role].headers)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.json is not None
        assert response.json["code"] == expected
    document = api.client.get("/api/v1/openapi.json").json
    assert document is not None
    assert expected in _documented_statuses(document, method, path)
