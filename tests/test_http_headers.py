"""Security headers on every response, and CORS when origins are configured."""

from __future__ import annotations

import pytest
from conftest import SettingsFactory
from flask.testing import FlaskClient

from app import create_app
from app.core.security_headers import HEADERS


@pytest.mark.parametrize(
    "path", ["/api/v1/health", "/api/v1/no-such-route", "/api/v1/users/me", "/elsewhere"]
)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    assert "Strict-Transport-Security" not in response.headers  # not production


def test_the_docs_page_keeps_its_own_policy(client: FlaskClient) -> None:
    policy = client.get("/api/v1/docs").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert policy != HEADERS["Content-Security-Policy"]


def test_hsts_is_on_in_production_and_configurable(make_settings: SettingsFactory) -> None:
    production = create_app(make_settings(app_env="production", secret_key="s" * 40))
    header = production.test_client().get("/api/v1/health").headers["Strict-Transport-Security"]
    assert header == "max-age=31536000; includeSubDomains"
    off = create_app(make_settings(app_env="production", secret_key="s" * 40, hsts_max_age=0))
    assert "Strict-Transport-Security" not in off.test_client().get("/api/v1/health").headers


def test_without_origins_there_are_no_cors_headers(client: FlaskClient) -> None:
    response = client.get("/api/v1/health", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_configured_origins_and_exposes_our_headers(
    make_settings: SettingsFactory,
) -> None:
    client = create_app(
        make_settings(cors_origins="https://app.example.com, https://admin.example.com")
    ).test_client()
    allowed = client.get("/api/v1/health", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    exposed = {h.strip() for h in allowed.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "ETag"} <= exposed
    assert "Access-Control-Allow-Credentials" not in allowed.headers

    refused = client.get("/api/v1/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_cors_preflight(make_settings: SettingsFactory) -> None:
    client = create_app(make_settings(cors_origins="https://app.example.com")).test_client()
    response = client.options(
        "/api/v1/articles/1",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "if-match", "content-type"} <= {h.strip() for h in allowed.split(",")}
    assert response.headers["Access-Control-Max-Age"] == "600"
