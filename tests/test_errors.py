"""Every error leaves in the one envelope: code, error_code, message, details?, request_id."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SettingsFactory
from flask import abort, request
from flask.testing import FlaskClient
from pydantic import BaseModel, Field, ValidationError

from app import create_app
from app.core import exceptions
from app.core.application import APIFlask
from app.core.envelope import ErrorEnvelope
from app.core.error_codes import ERROR_CODE_FOR_STATUS, ErrorCode
from app.core.errors import MAX_DETAILS, validation_details
from app.core.validation import validated

ENVELOPE_KEYS = {"code", "error_code", "message", "request_id"}
PRODUCTION_KEY = "p" * 40


def envelope(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    body: dict[str, Any] = orjson.loads(response.data)
    assert ENVELOPE_KEYS <= body.keys() <= ENVELOPE_KEYS | {"details"}
    assert body["code"] == response.status_code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


class NewArticle(BaseModel):
    model_config = {"extra": "forbid"}
    title: str = Field(min_length=1, max_length=200)
    views: int = Field(ge=0)


def add_test_routes(app: APIFlask) -> None:
    @app.post("/api/v1/_echo")
    def echo() -> dict[str, Any]:
        return request.json_object()  # type: ignore[attr-defined]

    @app.post("/api/v1/_articles")
    def create() -> NewArticle:
        return NewArticle.model_validate(request.json_object())  # type: ignore[attr-defined]

    @app.post("/api/v1/_validated")
    def validated_body() -> NewArticle:
        body = request.json_object()  # type: ignore[attr-defined]
        return validated(NewArticle, body, location="body")

    @app.get("/api/v1/_boom")
    def boom() -> None:
        raise ZeroDivisionError("secret detail /etc/passwd")

    @app.get("/api/v1/_abort")
    def aborts() -> None:
        abort(404, description="That article is gone")

    @app.get("/api/v1/_teapot")
    def teapot() -> None:
        abort(418)

    @app.get("/api/v1/_raise/<name>")
    def raise_named(name: str) -> None:
        raise getattr(exceptions, name)()

    @app.get("/api/v1/_rate")
    def rate() -> None:
        raise exceptions.RateLimited(retry_after=30)


@pytest.fixture
def error_client(app: APIFlask) -> FlaskClient:
    add_test_routes(app)
    return app.test_client()


@pytest.mark.parametrize(
    ("name", "status", "error_code"),
    [
        ("BadRequest", 400, ErrorCode.BAD_REQUEST),
        ("ValidationFailed", 422, ErrorCode.VALIDATION_FAILED),
        ("Unauthorized", 401, ErrorCode.UNAUTHORIZED),
        ("Forbidden", 403, ErrorCode.FORBIDDEN),
        ("NotFound", 404, ErrorCode.NOT_FOUND),
        ("Conflict", 409, ErrorCode.CONFLICT),
        ("PreconditionFailed", 412, ErrorCode.PRECONDITION_FAILED),
        ("ServiceUnavailable", 503, ErrorCode.SERVICE_UNAVAILABLE),
    ],
)
def test_api_exception_subclasses(
    error_client: FlaskClient, name: str, status: int, error_code: ErrorCode
) -> None:
    response = error_client.get(f"/api/v1/_raise/{name}")
    body = envelope(response)
    assert response.status_code == status
    assert body["error_code"] == error_code
    assert body["message"] == error_code.default_message
    assert "details" not in body


def test_unauthorized_asks_for_a_bearer_token(error_client: FlaskClient) -> None:
    response = error_client.get("/api/v1/_raise/Unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_rate_limited_carries_retry_after(error_client: FlaskClient) -> None:
    response = error_client.get("/api/v1/_rate")
    assert envelope(response)["error_code"] == ErrorCode.RATE_LIMITED
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"


def test_api_exception_with_custom_message_code_and_details(app: APIFlask) -> None:
    @app.get("/api/v1/_custom")
    def custom() -> None:
        raise exceptions.Conflict(
            "Email already registered",
            details=[{"loc": ["body", "email"], "msg": "taken", "type": "unique"}],
        )

    response = app.test_client().get("/api/v1/_custom")
    body = envelope(response)
    assert response.status_code == 409
    assert body["message"] == "Email already registered"
    assert body["details"] == [{"loc": ["body", "email"], "msg": "taken", "type": "unique"}]


def test_api_exception_repr_names_everything() -> None:
    assert repr(exceptions.NotFound("Article 3 not found")) == (
        "NotFound(404, NOT_FOUND, 'Article 3 not found')"
    )


def test_unknown_route_under_the_api(client: FlaskClient) -> None:
    response = client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert envelope(response)["error_code"] == ErrorCode.ROUTE_NOT_FOUND


def test_unknown_route_outside_the_api_is_json_too(client: FlaskClient) -> None:
    assert envelope(client.get("/favicon.ico"))["error_code"] == ErrorCode.ROUTE_NOT_FOUND


def test_abort_404_in_a_view_is_not_found_with_its_description(error_client: FlaskClient) -> None:
    body = envelope(error_client.get("/api/v1/_abort"))
    assert body["error_code"] == ErrorCode.NOT_FOUND
    assert body["message"] == "That article is gone"


def test_http_status_without_a_catalogue_entry(error_client: FlaskClient) -> None:
    response = error_client.get("/api/v1/_teapot")
    body = envelope(response)
    assert response.status_code == 418
    assert body["error_code"] == ErrorCode.HTTP_ERROR


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/api/v1/health")
    assert envelope(response)["error_code"] == ErrorCode.METHOD_NOT_ALLOWED
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_body_over_max_content_length_is_413(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(max_content_length=100))
    add_test_routes(app)
    response = app.test_client().post("/api/v1/_echo", json={"x": "y" * 200})
    assert response.status_code == 413
    assert envelope(response)["error_code"] == ErrorCode.PAYLOAD_TOO_LARGE


def test_body_just_under_the_limit_is_accepted(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(max_content_length=100))
    add_test_routes(app)
    response = app.test_client().post("/api/v1/_echo", json={"x": "y" * 50})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"title": ', "The request body is not valid JSON"),
        (b"{'single': 'quotes'}", "The request body is not valid JSON"),
        (b'{"title": "\xff\xfe"}', "The request body is not valid JSON"),
        (b"", "The request body is empty; send a JSON object"),
    ],
    ids=["truncated", "single-quotes", "invalid-utf8", "empty"],
)
def test_malformed_json_is_400(error_client: FlaskClient, data: bytes, message: str) -> None:
    response = error_client.post("/api/v1/_echo", data=data, content_type="application/json")
    body = envelope(response)
    assert response.status_code == 400
    assert body["error_code"] == ErrorCode.MALFORMED_JSON
    assert body["message"] == message


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(error_client: FlaskClient, content_type: str | None) -> None:
    response = error_client.post("/api/v1/_echo", data=b'{"a":1}', content_type=content_type)
    assert response.status_code == 415
    assert envelope(response)["error_code"] == ErrorCode.UNSUPPORTED_MEDIA_TYPE


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None])
def test_non_object_body_is_400(error_client: FlaskClient, payload: Any) -> None:
    response = error_client.post(
        "/api/v1/_echo", data=orjson.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 400
    assert envelope(response)["error_code"] == ErrorCode.BODY_NOT_OBJECT


def test_object_body_round_trips(error_client: FlaskClient) -> None:
    response = error_client.post("/api/v1/_echo", json={"a": [1, {"b": None}]})
    assert response.status_code == 200
    assert orjson.loads(response.data) == {"a": [1, {"b": None}]}


def test_validation_error_is_422_with_one_detail_per_problem(error_client: FlaskClient) -> None:
    response = error_client.post(
        "/api/v1/_articles", json={"title": "", "views": -1, "bogus": True}
    )
    body = envelope(response)
    assert response.status_code == 422
    assert body["error_code"] == ErrorCode.VALIDATION_FAILED
    assert body["message"] == "Request validation failed"
    assert sorted((d["loc"], d["type"]) for d in body["details"]) == [
        (["bogus"], "extra_forbidden"),
        (["title"], "string_too_short"),
        (["views"], "greater_than_equal"),
    ]
    assert all(set(d) == {"loc", "msg", "type"} for d in body["details"])


def test_validation_details_never_echo_the_input(error_client: FlaskClient) -> None:
    response = error_client.post(
        "/api/v1/_articles", json={"title": "x" * 300, "views": "hunter2-password"}
    )
    assert b"hunter2-password" not in response.data
    assert b"x" * 300 not in response.data


def test_validation_details_with_a_location() -> None:
    with pytest.raises(ValidationError) as caught:
        NewArticle.model_validate({"views": 1})
    assert validation_details(caught.value, location="body") == [
        {"loc": ["body", "title"], "msg": "Field required", "type": "missing"}
    ]


def test_unhandled_exception_is_500_and_logged_with_traceback_and_request_id(
    error_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = error_client.get("/api/v1/_boom", headers={"X-Request-ID": "trace-me-1"})
    body = envelope(response)
    assert response.status_code == 500
    assert body["error_code"] == ErrorCode.INTERNAL_ERROR
    [record] = [r for r in caplog.records if r.name == "app.error"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ZeroDivisionError)
    assert record.__dict__["request_id"] == "trace-me-1"
    assert "GET /api/v1/_boom" in record.getMessage()


def test_production_500_shows_nothing_of_the_error(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(app_env="production", secret_key=PRODUCTION_KEY))
    add_test_routes(app)
    response = app.test_client().get("/api/v1/_boom")
    body = envelope(response)
    assert body == {
        "code": 500,
        "error_code": 19000,
        "message": "Internal server error",
        "request_id": response.headers["X-Request-ID"],
    }
    assert b"passwd" not in response.data
    assert b"ZeroDivision" not in response.data
    assert b"Traceback" not in response.data


def test_debug_500_names_the_exception_for_the_developer(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(app_env="development", debug=True))
    add_test_routes(app)
    response = app.test_client().get("/api/v1/_boom")
    body = envelope(response)
    assert body["details"] == [{"type": "ZeroDivisionError", "msg": "secret detail /etc/passwd"}]
    # Written as built: no "loc": null, and the keys in their order.
    assert b'"details":[{"type":"ZeroDivisionError","msg":"secret detail /etc/passwd"}]' in (
        response.data
    )


def test_the_envelope_is_written_by_its_model(error_client: FlaskClient) -> None:
    """The bytes, exactly: the fields in ErrorEnvelope's order, ``details`` only
    when there are some."""
    response = error_client.post(
        "/api/v1/_validated", json={"views": 1}, headers={"X-Request-ID": "req-1"}
    )
    assert response.data == (
        b'{"code":422,"error_code":10001,"message":"Request validation failed",'
        b'"details":[{"loc":["body","title"],"msg":"Field required","type":"missing"}],'
        b'"request_id":"req-1"}'
    )
    assert list(orjson.loads(response.data)) == list(ErrorEnvelope.model_fields)
    response = error_client.get("/api/v1/_raise/NotFound", headers={"X-Request-ID": "req-2"})
    assert response.data == (
        b'{"code":404,"error_code":13000,"message":"Not found","request_id":"req-2"}'
    )


def test_every_werkzeug_status_we_map_has_a_matching_catalogue_entry() -> None:
    for status, error_code in ERROR_CODE_FOR_STATUS.items():
        assert error_code.http_status == status


def test_error_codes_are_unique_and_grouped() -> None:
    # __members__ includes aliases: a reused number would hide as one and show here.
    assert len(ErrorCode.__members__) == len(list(ErrorCode))
    assert all(10000 <= int(code) < 20000 for code in ErrorCode)


def test_the_catalogue_is_never_renumbered() -> None:
    # Frontends branch on these numbers. Add new codes; never change these.
    assert {code.name: int(code) for code in ErrorCode} == {
        "BAD_REQUEST": 10000,
        "VALIDATION_FAILED": 10001,
        "MALFORMED_JSON": 10002,
        "BODY_NOT_OBJECT": 10003,
        "UNSUPPORTED_MEDIA_TYPE": 10004,
        "PAYLOAD_TOO_LARGE": 10005,
        "METHOD_NOT_ALLOWED": 10006,
        "NOT_ACCEPTABLE": 10007,
        "URI_TOO_LONG": 10008,
        "HEADERS_TOO_LARGE": 10009,
        "UPGRADE_REQUIRED": 10010,
        "UNAUTHORIZED": 11000,
        "LINK_INVALID": 11001,
        "LINK_EXPIRED": 11002,
        "FORBIDDEN": 12000,
        "NOT_FOUND": 13000,
        "ROUTE_NOT_FOUND": 13001,
        "CONFLICT": 14000,
        "PRECONDITION_FAILED": 14001,
        "RATE_LIMITED": 15000,
        "INTERNAL_ERROR": 19000,
        "SERVICE_UNAVAILABLE": 19001,
        "HTTP_ERROR": 19002,
        "SEARCH_UNAVAILABLE": 19003,
    }


def test_docs_list_exactly_the_error_code_catalogue() -> None:
    text = (Path(__file__).parents[1] / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| (\d{5}) \| `(\w+)` \| (\d{3}) \|", text, flags=re.MULTILINE)
    assert rows == [(str(int(c)), c.name, str(int(c.http_status))) for c in ErrorCode]


def _chunked_post(client: FlaskClient, body: bytes) -> Any:
    # What gunicorn passes for a chunked body: no Content-Length, a terminated stream.
    return client.post(
        "/api/v1/_echo",
        data=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413_not_cut_short(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(max_content_length=100))
    add_test_routes(app)
    body = b'{"a":1}' + b" " * 200
    response = _chunked_post(app.test_client(), body)
    assert response.status_code == 413
    assert envelope(response)["error_code"] == ErrorCode.PAYLOAD_TOO_LARGE


def test_a_chunked_body_of_exactly_the_limit_is_accepted(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(max_content_length=100))
    add_test_routes(app)
    body = b'{"a":"' + b"x" * 92 + b'"}'
    assert len(body) == 100
    assert _chunked_post(app.test_client(), body).status_code == 200
    assert (
        app.test_client()
        .post("/api/v1/_echo", data=body, content_type="application/json")
        .status_code
        == 200
    )


def test_validated_locates_problems_under_its_location(error_client: FlaskClient) -> None:
    response = error_client.post("/api/v1/_validated", json={"views": 1})
    assert response.status_code == 422
    assert envelope(response)["details"] == [
        {"loc": ["body", "title"], "msg": "Field required", "type": "missing"}
    ]


def test_validated_returns_the_model(error_client: FlaskClient) -> None:
    response = error_client.post("/api/v1/_validated", json={"title": "t", "views": 2})
    assert response.get_json() == {"title": "t", "views": 2}


def test_validated_raises_a_422_located_where_it_is_told() -> None:
    with pytest.raises(exceptions.ValidationFailed) as caught:
        validated(NewArticle, {"title": "t", "views": "many"}, location="query")
    assert caught.value.code == 422
    assert caught.value.details == [
        {
            "loc": ["query", "views"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]
    assert validated(NewArticle, {"title": "t", "views": "3"}, location="query") == NewArticle(
        title="t", views=3
    )


def test_a_validated_body_still_needs_an_object(error_client: FlaskClient) -> None:
    response = error_client.post("/api/v1/_validated", json=[1])
    assert envelope(response)["error_code"] == ErrorCode.BODY_NOT_OBJECT


@pytest.fixture
def unreachable_database_app(make_settings: SettingsFactory) -> APIFlask:
    # Built in a fixture: configuring logging during the test would detach caplog.
    return create_app(
        make_settings(database_url="mysql+pymysql://root@127.0.0.1:1/test", database_pool_timeout=1)
    )


def test_an_unreachable_database_is_a_503_logged_as_a_warning(
    unreachable_database_app: APIFlask, caplog: pytest.LogCaptureFixture
) -> None:
    response = unreachable_database_app.test_client().get("/api/v1/articles")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error_code"] == 19001
    assert "SELECT" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.name == "app.error"]
    assert record.levelname == "WARNING"
    assert record.getMessage() == "database unavailable on GET /api/v1/articles: OperationalError"


def test_a_422_lists_at_most_fifty_problems_and_counts_the_rest(
    make_settings: SettingsFactory,
) -> None:
    """A body of 96,000 unknown keys once answered a 422 of 8.66 MB."""
    client = create_app(make_settings()).test_client()
    body = orjson.dumps({f"k{i}": 1 for i in range(96_000)})
    response = client.post("/api/v1/auth/register", data=body, content_type="application/json")
    details = envelope(response)["details"]
    assert response.status_code == 422
    assert len(details) == MAX_DETAILS + 1 == 51
    assert all(detail["type"] in {"extra_forbidden", "missing"} for detail in details[:50])
    # 96,000 unknown keys and 3 missing fields: 96,003 problems, 50 listed.
    assert details[-1] == {
        "loc": ["body"],
        "msg": "95953 more problems, not listed",
        "type": "too_many_errors",
    }
    assert len(response.data) < 10_000


def test_fifty_problems_are_listed_without_a_count() -> None:
    class Fifty(BaseModel):
        model_config = {"extra": "forbid"}

    with pytest.raises(ValidationError) as raised:
        Fifty.model_validate({f"k{i}": 1 for i in range(MAX_DETAILS)})
    details = validation_details(raised.value, location="query")
    assert len(details) == 50
    assert {detail["type"] for detail in details} == {"extra_forbidden"}
    assert details[0]["loc"] == ["query", "k0"]


class Strict(BaseModel):
    model_config = {"extra": "forbid"}
    title: str = Field(min_length=3)
    views: int = Field(ge=0, alias="view_count")


@pytest.mark.parametrize("unknown", [MAX_DETAILS - 1, MAX_DETAILS + 1, 500])
@pytest.mark.parametrize(
    "known",
    [{}, {"title": "ok", "view_count": 3}, {"title": "x", "view_count": -1}],
    ids=["none", "valid", "invalid"],
)
def test_many_unknown_keys_give_the_details_pydantic_would(
    unknown: int, known: dict[str, Any]
) -> None:
    """Past 50 unknown keys, validated() counts them instead of asking pydantic
    for an error each: the details must be the ones pydantic's errors give,
    the known fields' problems first, then the unknown keys in their order."""
    half = unknown // 2
    data = {f"u{i}": i for i in range(half)} | known | {f"v{i}": i for i in range(unknown - half)}
    with pytest.raises(ValidationError) as raised:
        Strict.model_validate(data)
    expected = validation_details(raised.value, location="body")
    with pytest.raises(exceptions.ValidationFailed) as failed:
        validated(Strict, data, location="body")
    assert failed.value.details == expected
