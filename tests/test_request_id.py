"""The request id: taken from a sane X-Request-ID or made up, returned, and logged."""

from __future__ import annotations

import logging
import re
import threading

import pytest
from conftest import SettingsFactory
from flask.testing import FlaskClient

from app import create_app
from app.core.application import APIFlask
from app.core.request_id import current_request_id, request_id_var, sane_or_new

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_new_id_is_generated_when_none_is_sent(client: FlaskClient) -> None:
    assert GENERATED.fullmatch(client.get("/api/v1/health").headers["X-Request-ID"])


def test_each_request_gets_its_own_id(client: FlaskClient) -> None:
    ids = {client.get("/api/v1/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("incoming", ["abc-123", "a" * 128, "req.1:2_3", "0f8fad5b-d9cb-469f"])
def test_a_sane_incoming_id_is_echoed(client: FlaskClient, incoming: str) -> None:
    response = client.get("/api/v1/health", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "a" * 129, "has space", "new\\nline", "<script>", "-leading-dash", "ünïcode"],
)
def test_an_insane_incoming_id_is_replaced(client: FlaskClient, incoming: str) -> None:
    response = client.get("/api/v1/health", headers={"X-Request-ID": incoming})
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_error_responses_carry_the_id_too(client: FlaskClient) -> None:
    response = client.get("/api/v1/nope", headers={"X-Request-ID": "err-1"})
    assert response.headers["X-Request-ID"] == "err-1"
    assert response.get_json()["request_id"] == "err-1"


def test_the_id_is_bound_to_log_lines_of_the_request(
    app: APIFlask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/api/v1/_log")
    def log_something() -> dict[str, str]:
        app.logger.warning("inside the view")
        return {"id": current_request_id()}

    response = client.get("/api/v1/_log", headers={"X-Request-ID": "bound-7"})
    assert response.get_json() == {"id": "bound-7"}
    [record] = [r for r in caplog.records if r.getMessage() == "inside the view"]
    assert record.__dict__["request_id"] == "bound-7"


def test_the_id_is_cleared_after_the_request(client: FlaskClient) -> None:
    client.get("/api/v1/health", headers={"X-Request-ID": "gone-after"})
    assert request_id_var.get() == "-"
    assert current_request_id() == "-"


def test_concurrent_requests_keep_their_own_ids(app: APIFlask) -> None:
    seen: dict[str, str] = {}
    barrier = threading.Barrier(8)

    @app.get("/api/v1/_slow")
    def slow() -> dict[str, str]:
        barrier.wait(timeout=5)
        return {"id": current_request_id()}

    def call(n: int) -> None:
        response = app.test_client().get("/api/v1/_slow", headers={"X-Request-ID": f"t{n}"})
        seen[f"t{n}"] = response.get_json()["id"]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {f"t{n}": f"t{n}" for n in range(8)}


def test_sane_or_new() -> None:
    assert sane_or_new("ok-id") == "ok-id"
    assert GENERATED.fullmatch(sane_or_new(None))


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    app = create_app(make_settings(proxy_fix_hops=1))
    app.test_client().get("/api/v1/health", headers={"X-Forwarded-For": "203.0.113.9"})
    [record] = [r for r in caplog.records if r.name == "app.access"]
    assert record.__dict__["remote_addr"] == "203.0.113.9"


def test_without_proxy_hops_x_forwarded_for_is_ignored(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    client.get("/api/v1/health", headers={"X-Forwarded-For": "203.0.113.9"})
    [record] = [r for r in caplog.records if r.name == "app.access"]
    assert record.__dict__["remote_addr"] == "127.0.0.1"
