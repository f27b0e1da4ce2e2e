"""/auth: register, sign in (JSON and form), refresh rotation, reuse detection,
sign out, login throttling, and how bad access tokens are refused."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from api_support import PASSWORD, Api
from conftest import REDIS_URL, SettingsFactory
from sqlalchemy import Engine, select

from app import create_app
from app.auth.access_tokens import issue_access_token
from app.extensions.database import get_database
from app.models import RefreshToken, User


def test_register_answers_the_user_without_secrets(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.COM", "password": PASSWORD, "name": " Ada "},
    )
    assert response.status_code == 201
    body = response.json
    assert body is not None
    assert set(body) == {"id", "email", "email_verified", "name", "is_admin", "created_at"}
    assert body["email_verified"] is False
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    assert body["is_admin"] is False
    assert body["created_at"].endswith("Z")
    with api.app.app_context():
        stored = get_database().session().get(User, body["id"])
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash


def test_register_refuses_a_taken_email_in_any_case(api: Api) -> None:
    api.register(email="ada@example.com")
    response = api.client.post(
        "/api/v1/auth/register",
        json={"email": "ADA@example.com", "password": PASSWORD, "name": "Other"},
    )
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["error_code"] == 14000


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "  "}, "name"),
        ({"email": "a@example.com", "password": PASSWORD}, "name"),
    ],
)
def test_register_validates_each_field(api: Api, payload: dict[str, str], field: str) -> None:
    response = api.client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 422
    assert response.json is not None
    assert [detail["loc"] for detail in response.json["details"]] == [["body", field]]


def test_sign_in_with_json_and_with_the_oauth2_form(api: Api) -> None:
    caller = api.register()
    for request in (
        {"json": {"email": caller.email, "password": PASSWORD}},
        {"data": {"username": caller.email, "password": PASSWORD, "grant_type": "password"}},
        # Either shape in either encoding: a generated client sends the grant as JSON
        # unless told to form-encode it.
        {"json": {"username": caller.email, "password": PASSWORD, "grant_type": "password"}},
        {"data": {"email": caller.email, "password": PASSWORD}},
    ):
        response = api.client.post("/api/v1/auth/token", **request)  # type: ignore[arg-type]
        assert response.status_code == 200
        body = response.json
        assert body is not None
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert response.headers["Cache-Control"] == "no-store"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == str(caller.id)
        assert {"exp", "iat", "jti"} <= set(claims)
        me = api.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert me.status_code == 200


@pytest.mark.parametrize("encoding", ["json", "data"])
@pytest.mark.parametrize(
    ("payload", "problems"),
    [
        # Neither shape declares both names: the body is judged as the first shape.
        (
            {"email": "a@example.com", "username": "a@example.com", "password": PASSWORD},
            [(["body", "username"], "extra_forbidden")],
        ),
        ({"username": "a@example.com"}, [(["body", "password"], "missing")]),
        ({"password": PASSWORD}, [(["body", "email"], "missing")]),
        (
            {"username": "a@example.com", "password": PASSWORD, "grant_type": "client_credentials"},
            [(["body", "grant_type"], "literal_error")],
        ),
    ],
)
def test_a_token_body_of_neither_shape_is_a_422_located_in_the_body(
    api: Api, encoding: str, payload: dict[str, str], problems: list[tuple[list[str], str]]
) -> None:
    response = api.client.post("/api/v1/auth/token", **{encoding: payload})  # type: ignore[arg-type]
    assert response.status_code == 422
    assert response.json is not None
    found = [(detail["loc"], detail["type"]) for detail in response.json["details"]]
    assert found == problems


def test_wrong_password_and_unknown_email_get_the_same_401(api: Api) -> None:
    caller = api.register()
    wrong = api.client.post(
        "/api/v1/auth/token", json={"email": caller.email, "password": "wrong password"}
    )
    unknown = api.client.post(
        "/api/v1/auth/token", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json is not None
    assert unknown.json is not None
    assert wrong.json["message"] == unknown.json["message"]


def test_sign_in_rehashes_when_the_argon2_parameters_change(
    api: Api, make_settings: SettingsFactory, db_engine: Engine
) -> None:
    caller = api.register()
    with api.app.app_context():
        old_hash = get_database().session().get(User, caller.id).password_hash  # type: ignore[union-attr]
    stronger = create_app(
        make_settings(
            database_url=db_engine.url.render_as_string(hide_password=False),
            password_time_cost=2,
            password_memory_cost=8192,
        )
    )
    Api(stronger).login(caller.email)
    with stronger.app_context():
        new_hash = get_database().session().get(User, caller.id).password_hash  # type: ignore[union-attr]
    assert new_hash != old_hash
    assert "t=2" in new_hash
    assert "t=1" in old_hash
    Api(stronger).login(caller.email)  # the new hash verifies


def test_refresh_rotates_and_a_reused_token_revokes_the_whole_login(api: Api) -> None:
    caller = api.register()
    first = caller.refresh_token
    rotated = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    assert rotated.json is not None
    second = rotated.json["refresh_token"]
    assert second != first
    assert rotated.headers["Cache-Control"] == "no-store"

    reused = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    # The successor was issued before the leak was noticed; it dies with its family.
    assert (
        api.client.post("/api/v1/auth/refresh", json={"refresh_token": second}).status_code == 401
    )
    # Another login of the same user is a separate family and keeps working.
    other = api.login(caller.email)
    assert (
        api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": other.refresh_token}
        ).status_code
        == 200
    )


def test_logout_revokes_the_refresh_token(api: Api) -> None:
    caller = api.register()
    response = api.client.post("/api/v1/auth/logout", json={"refresh_token": caller.refresh_token})
    assert response.status_code == 204
    assert response.data == b""
    assert (
        api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": caller.refresh_token}
        ).status_code
        == 401
    )
    again = api.client.post("/api/v1/auth/logout", json={"refresh_token": caller.refresh_token})
    assert again.status_code == 401
    with api.app.app_context():
        rows = get_database().session().scalars(select(RefreshToken)).all()
        assert rows
        assert all(row.revoked_at is not None for row in rows)


def test_refresh_with_an_unknown_token_is_401(api: Api) -> None:
    response = api.client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error_code"] == 11000


@pytest.mark.parametrize(
    "header",
    ["Basic YWRhOnB3", "Bearer", "Bearer not.a.jwt", "Token abc"],
)
def test_malformed_authorization_is_401_with_www_authenticate(api: Api, header: str) -> None:
    response = api.client.get("/api/v1/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_forged_access_tokens_are_refused(api: Api) -> None:
    caller = api.register()
    secret = api.app.settings.secret_key.get_secret_value()
    expired = issue_access_token(
        caller.id or 0, secret, timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=1)
    )
    forged = issue_access_token(caller.id or 0, "x" * 40, timedelta(minutes=5))
    for token, message in ((expired, "expired"), (forged, "not valid")):
        response = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json is not None
        assert message in response.json["message"]
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_of_a_deleted_account_is_refused(api: Api) -> None:
    caller = api.register()
    with api.app.app_context():
        session = get_database().session()
        session.delete(session.get(User, caller.id))
        session.commit()
    response = api.client.get("/api/v1/users/me", headers=caller.headers)
    assert response.status_code == 401


# -- throttling ---------------------------------------------------------------------


def _throttled_app(make_settings: SettingsFactory, db_engine: Engine, **overrides: str) -> Api:
    settings = {
        "database_url": db_engine.url.render_as_string(hide_password=False),
        "redis_url": REDIS_URL,
        "password_time_cost": 1,
        "password_memory_cost": 8192,
        "login_limit_per_account": "3 per minute",
        "login_limit_per_address": "5 per minute",
        **overrides,
    }
    return Api(create_app(make_settings(**settings)))


def _sign_in(api: Api, email: str, password: str) -> int:
    return api.client.post(
        "/api/v1/auth/token", json={"email": email, "password": password}
    ).status_code


@pytest.mark.usefixtures("redis_client")
def test_failed_sign_ins_are_limited_per_account(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    api = _throttled_app(make_settings, db_engine)
    caller = api.register()
    assert [_sign_in(api, caller.email, "wrong") for _ in range(3)] == [401, 401, 401]
    blocked = api.client.post(
        "/api/v1/auth/token", json={"email": caller.email, "password": PASSWORD}
    )
    assert blocked.status_code == 429  # even with the right password now
    assert blocked.json is not None
    assert blocked.json["error_code"] == 15000
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # The form variant counts against the same account.
    form = api.client.post(
        "/api/v1/auth/token", data={"username": caller.email.upper(), "password": PASSWORD}
    )
    assert form.status_code == 429


@pytest.mark.usefixtures("redis_client")
def test_failed_sign_ins_are_limited_per_address(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    api = _throttled_app(make_settings, db_engine)
    caller = api.register()
    statuses = [_sign_in(api, f"guess{n}@example.com", "wrong") for n in range(5)]
    assert statuses == [401] * 5
    assert _sign_in(api, caller.email, PASSWORD) == 429


@pytest.mark.usefixtures("redis_client")
def test_successful_sign_ins_are_not_counted(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    api = _throttled_app(make_settings, db_engine)
    caller = api.register()
    assert [_sign_in(api, caller.email, PASSWORD) for _ in range(6)] == [200] * 6


@pytest.mark.usefixtures("redis_client")
def test_counts_are_shared_through_redis_by_every_process(
    make_settings: SettingsFactory, db_engine: Engine
) -> None:
    first = _throttled_app(make_settings, db_engine)
    second = _throttled_app(make_settings, db_engine)
    caller = first.register()
    assert [_sign_in(first, caller.email, "wrong") for _ in range(3)] == [401] * 3
    assert _sign_in(second, caller.email, PASSWORD) == 429


@pytest.mark.usefixtures("redis_client")
def test_without_its_redis_throttling_falls_back_to_memory_loudly(
    make_settings: SettingsFactory, db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    api = _throttled_app(make_settings, db_engine, ratelimit_storage_url="redis://127.0.0.1:1/0")
    caller = api.register()
    with caplog.at_level(logging.WARNING, logger="app.rate_limit"):
        assert _sign_in(api, caller.email, PASSWORD) == 200
        assert [_sign_in(api, caller.email, "wrong") for _ in range(3)] == [401] * 3
        assert _sign_in(api, caller.email, PASSWORD) == 429
    warnings = [r for r in caplog.records if "rate limit storage unavailable" in r.message]
    assert len(warnings) == 1


@pytest.mark.usefixtures("redis_client")
@pytest.mark.parametrize(
    "spelling",
    [
        "{email} ",  # MySQL's PAD SPACE collations ignore trailing spaces
        "{email}  ",
        "{accented}",  # and accent-insensitive ones ignore accents
    ],
)
def test_no_other_spelling_of_an_email_reaches_its_account(
    make_settings: SettingsFactory, db_engine: Engine, spelling: str
) -> None:
    """Each spelling once got a throttle counter of its own, and MySQL matched
    it to the account, so the per-account limit could be walked around."""
    api = _throttled_app(make_settings, db_engine)
    caller = api.register()
    variant = spelling.format(email=caller.email, accented=caller.email.replace("a", "\u00e1", 1))
    assert variant != caller.email
    # The right password under another spelling is not a sign-in.
    form = api.client.post("/api/v1/auth/token", data={"username": variant, "password": PASSWORD})
    assert form.status_code == 401
    # Three failures lock the account; no other spelling gets past the lock.
    assert [_sign_in(api, caller.email, "wrong") for _ in range(3)] == [401, 401, 401]
    retry = api.client.post("/api/v1/auth/token", data={"username": variant, "password": PASSWORD})
    assert retry.status_code in {401, 429}
    assert _sign_in(api, caller.email, PASSWORD) == 429
