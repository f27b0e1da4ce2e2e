"""APIFlask.make_response: every return value a view may give becomes JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
import pytest
from flask import Response, abort, session
from flask.testing import FlaskClient
from pydantic import BaseModel
from werkzeug.datastructures import Headers

from app.core.application import APIFlask


class Item(BaseModel):
    id: int
    name: str


@dataclasses.dataclass
class Pair:
    left: int
    right: int


ITEM = Item(id=1, name="one")


def serve(app: APIFlask, value: Any) -> FlaskClient:
    """Register a view returning ``value`` and hand back a client for it."""

    def view() -> Any:
        return value() if callable(value) else value

    app.add_url_rule("/api/v1/_value", "value", view)
    return app.test_client()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ([1, "two", None], [1, "two", None]),
        (ITEM, {"id": 1, "name": "one"}),
        ([ITEM, ITEM], [{"id": 1, "name": "one"}] * 2),
        (Pair(1, 2), {"left": 1, "right": 2}),
        ("plain text", "plain text"),
        (42, 42),
        (1.5, 1.5),
        (True, True),
        ([], []),
    ],
    ids=["dict", "list", "model", "models", "dataclass", "str", "int", "float", "bool", "empty"],
)
def test_body_becomes_json(app: APIFlask, value: Any, expected: Any) -> None:
    response = serve(app, value).get("/api/v1/_value")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert orjson.loads(response.data) == expected


def test_str_is_a_json_string_not_html(app: APIFlask) -> None:
    response = serve(app, "<b>hi</b>").get("/api/v1/_value")
    assert response.data == b'"<b>hi</b>"'
    assert response.mimetype == "application/json"


def test_bytes_are_sent_as_already_serialized_json(app: APIFlask) -> None:
    response = serve(app, b'{"cached":true}').get("/api/v1/_value")
    assert response.data == b'{"cached":true}'
    assert response.mimetype == "application/json"


def test_bytearray_is_sent_as_is(app: APIFlask) -> None:
    response = serve(app, (bytearray(b"[1]"), 201)).get("/api/v1/_value")
    assert (response.status_code, response.data) == (201, b"[1]")


def test_none_is_204_with_empty_body(app: APIFlask) -> None:
    response = serve(app, None).get("/api/v1/_value")
    assert response.status_code == 204
    assert response.data == b""


def test_none_with_status_and_headers(app: APIFlask) -> None:
    response = serve(app, (None, 202, {"X-Job": "7"})).get("/api/v1/_value")
    assert response.status_code == 202
    assert response.data == b""
    assert response.headers["X-Job"] == "7"


@pytest.mark.parametrize(
    "value",
    [
        (ITEM, 201),
        (ITEM, HTTPStatus.CREATED),
        (ITEM, "201 CREATED"),
    ],
    ids=["int", "HTTPStatus", "str"],
)
def test_body_with_status(app: APIFlask, value: Any) -> None:
    response = serve(app, value).get("/api/v1/_value")
    assert response.status_code == 201
    assert orjson.loads(response.data) == {"id": 1, "name": "one"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": "/api/v1/items/1"},
        [("Location", "/api/v1/items/1")],
        Headers({"Location": "/api/v1/items/1"}),
    ],
    ids=["dict", "list", "Headers"],
)
def test_body_with_headers(app: APIFlask, headers: Any) -> None:
    response = serve(app, ({"id": 1}, headers)).get("/api/v1/_value")
    assert response.status_code == 200
    assert response.headers["Location"] == "/api/v1/items/1"
    assert response.mimetype == "application/json"


def test_body_with_status_and_headers(app: APIFlask) -> None:
    response = serve(app, ([ITEM], 201, {"ETag": '"abc"'})).get("/api/v1/_value")
    assert response.status_code == 201
    assert response.headers["ETag"] == '"abc"'
    assert orjson.loads(response.data) == [{"id": 1, "name": "one"}]


def test_response_passes_through_untouched(app: APIFlask) -> None:
    original = Response("<p>html</p>", status=203, mimetype="text/html")
    response = serve(app, lambda: original).get("/api/v1/_value")
    assert response.status_code == 203
    assert response.mimetype == "text/html"
    assert response.data == b"<p>html</p>"


def test_response_in_a_tuple_takes_the_status_and_headers(app: APIFlask) -> None:
    make: Callable[[], Any] = lambda: (Response("x"), 202, {"X-A": "1"})  # noqa: E731
    response = serve(app, make).get("/api/v1/_value")
    assert response.status_code == 202
    assert response.headers["X-A"] == "1"
    assert response.data == b"x"


def test_response_in_a_tuple_with_status_only(app: APIFlask) -> None:
    response = serve(app, lambda: (Response("y"), 418)).get("/api/v1/_value")
    assert (response.status_code, response.data) == (418, b"y")


def test_tuple_of_wrong_length_is_a_500_envelope(app: APIFlask) -> None:
    response = serve(app, ({"a": 1}, 200, {}, "extra")).get("/api/v1/_value")
    assert response.status_code == 500
    assert orjson.loads(response.data)["error_code"] == 19000


def test_unserializable_return_is_a_500_envelope_and_logged(
    app: APIFlask, caplog: pytest.LogCaptureFixture
) -> None:
    response = serve(app, {"when": object()}).get("/api/v1/_value")
    assert response.status_code == 500
    assert orjson.loads(response.data)["message"] == "Internal server error"
    [record] = [r for r in caplog.records if r.name == "app.error"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TypeError)
    assert "object" in str(record.exc_info[1])


def test_there_are_no_cookie_sessions(app: APIFlask) -> None:
    @app.get("/api/v1/_session")
    def write_session() -> None:
        session["user"] = 1

    response = app.test_client().get("/api/v1/_session")
    assert response.status_code == 500
    assert "Set-Cookie" not in response.headers


def test_no_cookie_is_set_on_an_ordinary_response(client: FlaskClient) -> None:
    assert "Set-Cookie" not in client.get("/api/v1/health").headers


def test_a_missing_trailing_slash_redirects_with_an_empty_body(app: APIFlask) -> None:
    @app.get("/api/v1/_things/")
    def things() -> list[int]:
        return []

    response = app.test_client().get("/api/v1/_things")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/api/v1/_things/")
    assert response.data == b""


def test_a_doubled_slash_redirects(client: FlaskClient) -> None:
    response = client.get("/api//v1/health")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/api/v1/health")


def test_abort_with_a_response_sends_that_response(app: APIFlask) -> None:
    @app.get("/api/v1/_abort_response")
    def abort_response() -> None:
        abort(Response("raw", 400, mimetype="text/plain"))

    response = app.test_client().get("/api/v1/_abort_response")
    assert (response.status_code, response.data, response.mimetype) == (400, b"raw", "text/plain")


def test_a_content_type_header_from_the_view_wins(app: APIFlask) -> None:
    response = serve(app, (b"a,b\n1,2\n", {"Content-Type": "text/csv"})).get("/api/v1/_value")
    assert response.headers["Content-Type"] == "text/csv"
    assert response.data == b"a,b\n1,2\n"


def test_empty_responses_have_no_content_type(app: APIFlask, client: FlaskClient) -> None:
    assert "Content-Type" not in serve(app, None).get("/api/v1/_value").headers
    options = client.options("/api/v1/health")
    assert options.status_code == 200
    assert "Content-Type" not in options.headers
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_none_with_a_status_has_no_body_and_no_type(app: APIFlask) -> None:
    response = serve(app, (None, 200)).get("/api/v1/_value")
    assert (response.status_code, response.data) == (200, b"")
    assert "Content-Type" not in response.headers


def test_head_answers_like_get_without_a_body(client: FlaskClient) -> None:
    response = client.head("/api/v1/health")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(b'{"status":"ok"}'))
