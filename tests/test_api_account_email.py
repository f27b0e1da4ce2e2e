"""Verifying an address and resetting a password, through the HTTP API, with
the emails sent over real SMTP to a server the tests start (aiosmtpd), their
links followed back through the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from api_support import PASSWORD, Api, error, paired_medians, snapshot, within_ten_percent
from conftest import BROKER_URL, AppFactory
from itsdangerous import TimestampSigner
from mail_support import Inbox
from sqlalchemy import delete, select, update

from app.auth import email_tokens
from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.models import RefreshToken, User
from app.models.sent_message import SentMessage
from app.services.account_email import duration
from app.tasks.messages import send_password_reset, send_verification_email

LINK_BASE = "https://app.example.com"
VERIFY = "/api/v1/auth/email/verification"
VERIFIED = "/api/v1/auth/email/verify"
FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def mail_api(make_api_app: AppFactory, inbox: tuple[Inbox, int]) -> Api:
    """The app, sending its email to the test's SMTP server; no broker, so
    each task runs inline and the message has arrived when the request ends."""
    _, port = inbox
    return Api(
        make_api_app(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_timeout=2.0,
            mail_from="Example <no-reply@example.com>",
            email_link_base_url=LINK_BASE,
        )
    )


def token_of(link: str, path: str) -> str:
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == LINK_BASE
    assert parts.path == path
    (token,) = parse_qs(parts.query)["token"]
    return token


def user_row(api: Api, user_id: int | None) -> User:
    with api.app.app_context():
        session = get_database().session()
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


# -- verification -----------------------------------------------------------------


def test_the_verification_link_arrives_and_verifies_the_address(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register("Zoë", email="zoe@example.com")
    me: dict[str, Any] = mail_api.client.get("/api/v1/users/me", headers=caller.headers).json  # type: ignore[assignment]
    assert me["email_verified"] is False

    response = mail_api.client.post(VERIFY, headers=caller.headers)
    assert response.status_code == 202
    assert response.get_data() == b""

    assert len(handler.messages) == 1
    message = handler.messages[0]
    assert handler.envelopes[0].rcpt_tos == [caller.email]
    assert message["To"] == caller.email
    assert message["From"] == "Example <no-reply@example.com>"
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"].startswith("<verify-")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    assert plain.get_content_charset() == rich.get_content_charset() == "utf-8"
    assert "Hello Zoë," in plain.get_content()
    assert "for 2 days" in plain.get_content()
    link = handler.link()
    token = token_of(link, "/verify-email")
    # The HTML carries the same link, escaped as an attribute.
    assert f'href="{link.replace("&", "&amp;")}"' in rich.get_content()

    response = mail_api.client.post(VERIFIED, json={"token": token})
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["id"] == caller.id
    assert body["email_verified"] is True
    assert "phone" not in body
    me = mail_api.client.get("/api/v1/users/me", headers=caller.headers).json  # type: ignore[assignment]
    assert me["email_verified"] is True
    assert me["phone"] is None


def test_a_verification_link_works_once(mail_api: Api, inbox: tuple[Inbox, int]) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    mail_api.client.post(VERIFY, headers=caller.headers)
    token = token_of(handler.link(), "/verify-email")
    assert mail_api.client.post(VERIFIED, json={"token": token}).status_code == 200
    before = snapshot(mail_api)
    error(mail_api.client.post(VERIFIED, json={"token": token}), 400, ErrorCode.LINK_INVALID)
    assert snapshot(mail_api) == before


def test_a_verified_address_is_not_sent_another_link(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    mail_api.client.post(VERIFY, headers=caller.headers)
    mail_api.client.post(VERIFIED, json={"token": token_of(handler.link(), "/verify-email")})
    body = error(mail_api.client.post(VERIFY, headers=caller.headers), 409, ErrorCode.CONFLICT)
    assert "verified already" in body["message"]
    assert len(handler.messages) == 1


def test_asking_again_within_a_minute_is_429_with_retry_after(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    assert mail_api.client.post(VERIFY, headers=caller.headers).status_code == 202
    response = mail_api.client.post(VERIFY, headers=caller.headers)
    error(response, 429, ErrorCode.RATE_LIMITED)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert len(handler.messages) == 1


def test_asking_for_a_link_needs_a_signed_in_caller(mail_api: Api) -> None:
    error(mail_api.client.post(VERIFY), 401, ErrorCode.UNAUTHORIZED)


def test_a_task_for_an_address_verified_meanwhile_sends_nothing(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    with mail_api.app.app_context():
        session = get_database().session()
        session.execute(update(User).where(User.id == caller.id).values(email_verified=True))
        session.commit()
        assert send_verification_email.apply(args=(caller.id,)).get() is False
    assert handler.messages == []


def test_a_redelivered_task_sends_its_email_once(mail_api: Api, inbox: tuple[Inbox, int]) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    with mail_api.app.app_context():
        first = send_password_reset.apply(args=(caller.email,), task_id="redelivered-1").get()
        second = send_password_reset.apply(args=(caller.email,), task_id="redelivered-1").get()
        other = send_password_reset.apply(args=(caller.email,), task_id="another-task").get()
        keys = get_database().session().scalars(select(SentMessage.key)).all()
    assert (first, second, other) == (True, False, True)
    assert len(handler.messages) == 2
    assert sorted(keys) == ["reset-another-task", "reset-redelivered-1"]


# -- password reset ---------------------------------------------------------------


def forgot_and_follow(api: Api, handler: Inbox, email: str) -> str:
    response = api.client.post(FORGOT, json={"email": email.upper()})
    assert response.status_code == 202
    assert response.get_data() == b""
    return token_of(handler.link(), "/reset-password")


def test_the_reset_link_sets_a_new_password_and_signs_out_everywhere(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register("Ada")
    other_session = mail_api.login(caller.email, caller.id)
    token = forgot_and_follow(mail_api, handler, caller.email)
    message = handler.messages[-1]
    assert message["To"] == caller.email
    assert message["Subject"] == "Reset your password"
    assert message["Message-ID"].startswith("<reset-")
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "for 1 hour," in plain.get_content()

    response = mail_api.client.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 204, response.json

    for session in (caller, other_session):
        refused = mail_api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": session.refresh_token}
        )
        error(refused, 401, ErrorCode.UNAUTHORIZED)
    error(
        mail_api.client.post(
            "/api/v1/auth/token", json={"email": caller.email, "password": PASSWORD}
        ),
        401,
        ErrorCode.UNAUTHORIZED,
    )
    assert mail_api.login(caller.email, caller.id, password=NEW_PASSWORD).token
    # The link reached the address: it counts as verified.
    assert user_row(mail_api, caller.id).email_verified is True
    with mail_api.app.app_context():
        live = (
            get_database()
            .session()
            .scalars(
                select(RefreshToken).where(
                    RefreshToken.user_id == caller.id, RefreshToken.revoked_at.is_(None)
                )
            )
            .all()
        )
    assert len(live) == 1  # the sign-in just made, with the new password


def test_a_reset_link_works_once(mail_api: Api, inbox: tuple[Inbox, int]) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    token = forgot_and_follow(mail_api, handler, caller.email)
    assert (
        mail_api.client.post(RESET, json={"token": token, "password": NEW_PASSWORD}).status_code
        == 204
    )
    before = snapshot(mail_api)
    again = mail_api.client.post(RESET, json={"token": token, "password": "yet another one!"})
    error(again, 400, ErrorCode.LINK_INVALID)
    assert snapshot(mail_api) == before


def test_a_reset_link_dies_when_the_password_changes_another_way(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    token = forgot_and_follow(mail_api, handler, caller.email)
    changed = mail_api.client.patch(
        "/api/v1/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=caller.headers,
    )
    assert changed.status_code == 200
    before = snapshot(mail_api)
    used = mail_api.client.post(RESET, json={"token": token, "password": "yet another one!"})
    error(used, 400, ErrorCode.LINK_INVALID)
    assert snapshot(mail_api) == before


def test_forgot_for_an_address_without_an_account_sends_nothing(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    mail_api.register()
    before = snapshot(mail_api)
    response = mail_api.client.post(FORGOT, json={"email": "nobody@example.com"})
    assert response.status_code == 202
    assert response.get_data() == b""
    assert handler.messages == []
    assert snapshot(mail_api) == before


def test_forgot_is_limited_per_address_asked_for_whether_or_not_it_has_an_account(
    mail_api: Api,
) -> None:
    caller = mail_api.register()
    for email in (caller.email, "nobody@example.com"):
        assert mail_api.client.post(FORGOT, json={"email": email}).status_code == 202
        response = mail_api.client.post(FORGOT, json={"email": email})
        error(response, 429, ErrorCode.RATE_LIMITED)
        assert int(response.headers["Retry-After"]) >= 1


def test_resets_asked_by_anyone_leave_the_owners_verification_emails_alone(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    assert mail_api.client.post(FORGOT, json={"email": caller.email}).status_code == 202
    error(mail_api.client.post(FORGOT, json={"email": caller.email}), 429, ErrorCode.RATE_LIMITED)
    assert mail_api.client.post(VERIFY, headers=caller.headers).status_code == 202
    assert [message["Subject"] for message in handler.messages] == [
        "Reset your password",
        "Confirm your email address",
    ]


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_requests_sent_at_once_get_one_email_between_them(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    """The limit counts atomically: eight requests at once, one passes."""
    handler, _ = inbox
    caller = mail_api.register()
    barrier = threading.Barrier(8)

    def ask() -> int:
        client = mail_api.app.test_client()
        barrier.wait()
        return client.post(FORGOT, json={"email": caller.email}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: ask(), range(8)))
    assert statuses == [202] + [429] * 7
    assert len(handler.messages) == 1


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_one_reset_token_used_twice_at_once_resets_once(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    token = forgot_and_follow(mail_api, handler, caller.email)
    barrier = threading.Barrier(2)

    def use(password: str) -> int:
        client = mail_api.app.test_client()
        barrier.wait()
        return client.post(RESET, json={"token": token, "password": password}).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(use, ["first new passphrase", "second new passphrase"]))
    assert statuses == [204, 400]
    signed_in = [
        mail_api.client.post(
            "/api/v1/auth/token", json={"email": caller.email, "password": password}
        ).status_code
        for password in ("first new passphrase", "second new passphrase")
    ]
    assert sorted(signed_in) == [200, 401]


def test_forgot_is_limited_per_client_address(make_api_app: AppFactory) -> None:
    api = Api(make_api_app(email_limit_per_address="2 per hour"))
    statuses = [
        api.client.post(FORGOT, json={"email": f"someone{n}@example.com"}).status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]


# -- expired, malformed, forged ---------------------------------------------------


def old_token(secret: str, purpose: email_tokens.Purpose, user: User, state: str, age: int) -> str:
    """A token made ``age`` seconds ago."""
    made_at = int(time.time()) - age
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: made_at  # type: ignore[method-assign]
    try:
        return email_tokens.make_token(secret, purpose, user_id=user.id, state=state)
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def test_an_expired_link_is_410_and_changes_nothing(mail_api: Api) -> None:
    caller = mail_api.register()
    user = user_row(mail_api, caller.id)
    settings = mail_api.app.settings
    secret = settings.secret_key.get_secret_value()
    reset = old_token(
        secret, "reset-password", user, user.password_hash, settings.password_reset_ttl + 5
    )
    verify = old_token(
        secret, "verify-email", user, f"{user.email}\0False", settings.email_verify_ttl + 5
    )
    before = snapshot(mail_api)
    error(
        mail_api.client.post(RESET, json={"token": reset, "password": NEW_PASSWORD}),
        410,
        ErrorCode.LINK_EXPIRED,
    )
    error(mail_api.client.post(VERIFIED, json={"token": verify}), 410, ErrorCode.LINK_EXPIRED)
    assert snapshot(mail_api) == before
    # 5 seconds short of its limit, the same token works.
    fresh = old_token(
        secret, "verify-email", user, f"{user.email}\0False", settings.email_verify_ttl - 5
    )
    assert mail_api.client.post(VERIFIED, json={"token": fresh}).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJ1IjoxfQ.Z1aQ8g.forged-signature-forged-signature",
        "x" * 512,
    ],
)
def test_a_malformed_or_forged_token_is_400_and_changes_nothing(mail_api: Api, token: str) -> None:
    mail_api.register()
    before = snapshot(mail_api)
    error(mail_api.client.post(VERIFIED, json={"token": token}), 400, ErrorCode.LINK_INVALID)
    error(
        mail_api.client.post(RESET, json={"token": token, "password": NEW_PASSWORD}),
        400,
        ErrorCode.LINK_INVALID,
    )
    assert snapshot(mail_api) == before


def test_a_token_for_one_purpose_does_not_serve_the_other(
    mail_api: Api, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    caller = mail_api.register()
    reset = forgot_and_follow(mail_api, handler, caller.email)
    before = snapshot(mail_api)
    error(mail_api.client.post(VERIFIED, json={"token": reset}), 400, ErrorCode.LINK_INVALID)
    assert snapshot(mail_api) == before


def test_a_token_signed_with_another_secret_is_400(mail_api: Api) -> None:
    caller = mail_api.register()
    user = user_row(mail_api, caller.id)
    forged = email_tokens.make_token(
        "another-secret-entirely-another-secret",
        "reset-password",
        user_id=user.id,
        state=user.password_hash,
    )
    error(
        mail_api.client.post(RESET, json={"token": forged, "password": NEW_PASSWORD}),
        400,
        ErrorCode.LINK_INVALID,
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (VERIFIED, {}, "token"),
        (VERIFIED, {"token": ""}, "token"),
        (VERIFIED, {"token": "x" * 513}, "token"),
        (VERIFIED, {"token": 12}, "token"),
        (VERIFIED, {"token": "abc", "extra": 1}, "extra"),
        (FORGOT, {"email": "not an email"}, "email"),
        (FORGOT, {"email": "ada@example.test"}, "email"),
        (FORGOT, {}, "email"),
        (RESET, {"token": "abc"}, "password"),
        (RESET, {"token": "abc", "password": "short"}, "password"),
        (RESET, {"token": "abc", "password": "x" * 129}, "password"),
    ],
)
def test_bad_bodies_are_422_and_change_nothing(
    mail_api: Api, inbox: tuple[Inbox, int], path: str, body: dict[str, Any], field: str
) -> None:
    handler, _ = inbox
    mail_api.register()
    before = snapshot(mail_api)
    envelope = error(mail_api.client.post(path, json=body), 422, ErrorCode.VALIDATION_FAILED)
    assert ["body", field] in [detail["loc"] for detail in envelope["details"]]
    assert snapshot(mail_api) == before
    assert handler.messages == []


def test_an_oversized_body_is_413(mail_api: Api) -> None:
    limit = mail_api.app.settings.max_content_length
    response = mail_api.client.post(
        FORGOT,
        data=b'{"email": "' + b"a" * limit + b'@example.com"}',
        content_type="application/json",
    )
    error(response, 413, ErrorCode.PAYLOAD_TOO_LARGE)


# -- when email cannot go ---------------------------------------------------------


def test_with_email_turned_off_the_flows_answer_503(make_api_app: AppFactory) -> None:
    api = Api(make_api_app(email_enabled=False))
    caller = api.register()
    before = snapshot(api)
    error(api.client.post(VERIFY, headers=caller.headers), 503, ErrorCode.SERVICE_UNAVAILABLE)
    for email in (caller.email, "nobody@example.com"):
        error(api.client.post(FORGOT, json={"email": email}), 503, ErrorCode.SERVICE_UNAVAILABLE)
    assert snapshot(api) == before


def test_a_broker_that_is_down_is_503_at_once_for_every_address(
    make_api_app: AppFactory,
) -> None:
    api = Api(make_api_app(celery_broker_url="redis://127.0.0.1:1/0"))
    caller = api.register()
    before = snapshot(api)
    for email in (caller.email, "nobody@example.com"):
        started = time.monotonic()
        body = error(
            api.client.post(FORGOT, json={"email": email}), 503, ErrorCode.SERVICE_UNAVAILABLE
        )
        assert time.monotonic() - started < 3  # one attempt, not kombu's retries
        assert "retry" in body["message"]
    error(api.client.post(VERIFY, headers=caller.headers), 503, ErrorCode.SERVICE_UNAVAILABLE)
    assert snapshot(api) == before


def test_with_smtp_down_the_request_still_answers_and_the_inline_send_is_logged(
    make_api_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from serving_support import free_port  # noqa: PLC0415

    api = Api(make_api_app(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none"))
    caller = api.register()
    with caplog.at_level("ERROR", logger="app.messaging"):
        assert api.client.post(FORGOT, json={"email": caller.email}).status_code == 202
    assert any("not sent" in record.getMessage() for record in caplog.records)
    with api.app.app_context():
        assert get_database().session().scalars(select(SentMessage)).all() == []


# -- enumeration ------------------------------------------------------------------


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_forgot_answers_the_same_in_the_same_time_with_or_without_an_account(
    make_api_app: AppFactory, broker: redis.Redis
) -> None:
    """With a broker, as in production: the request only queues the task, for
    either address. (Inline, without one, the existing account's email is
    built and sent in the request.)"""
    api = Api(
        make_api_app(
            celery_broker_url=BROKER_URL,
            email_limit_per_account="10000 per minute",
            email_limit_per_address="10000 per minute",
        )
    )
    caller = api.register()

    def existing() -> Any:
        return api.client.post(FORGOT, json={"email": caller.email})

    def missing() -> Any:
        return api.client.post(FORGOT, json={"email": "nobody-here@example.com"})

    with_account, without = paired_medians(existing, missing)
    assert with_account.statuses == without.statuses == {202}
    assert with_account.bodies == without.bodies == {b""}
    assert within_ten_percent(with_account.median_ms, without.median_ms), (with_account, without)
    assert broker.llen("default") == 2 * (10 + 100)


def used_and_orphan_tokens(api: Api, purpose: email_tokens.Purpose) -> tuple[str, str]:
    """A token of an existing account, used already; and a good one of an
    account deleted since."""
    secret = api.app.settings.secret_key.get_secret_value()
    kept, gone = api.register("Kept"), api.register("Gone")
    # Made for a state the accounts have left, or never had: both refused.
    tokens = [
        email_tokens.make_token(secret, purpose, user_id=caller.id or 0, state="an-old-state")
        for caller in (kept, gone)
    ]
    with api.app.app_context():
        session = get_database().session()
        session.execute(delete(RefreshToken).where(RefreshToken.user_id == gone.id))
        session.execute(delete(User).where(User.id == gone.id))
        session.commit()
    return tokens[0], tokens[1]


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
@pytest.mark.parametrize(
    ("path", "purpose"), [(VERIFIED, "verify-email"), (RESET, "reset-password")]
)
def test_a_link_answers_the_same_for_an_existing_and_a_missing_account(
    make_api_app: AppFactory, path: str, purpose: email_tokens.Purpose
) -> None:
    api = Api(make_api_app())
    existing_token, missing_token = used_and_orphan_tokens(api, purpose)

    def send(token: str) -> Callable[[], Any]:
        body = {"token": token, "password": NEW_PASSWORD} if path == RESET else {"token": token}
        return lambda: api.client.post(path, json=body)

    with_account, without = paired_medians(send(existing_token), send(missing_token))
    assert with_account.statuses == without.statuses == {400}
    answers = [json.loads(body) for body in with_account.bodies | without.bodies]
    # The same envelope but for its request id.
    assert len({json.dumps({**answer, "request_id": ""}) for answer in answers}) == 1
    assert within_ten_percent(with_account.median_ms, without.median_ms), (with_account, without)


def test_durations_read_as_people_write_them() -> None:
    assert [duration(s) for s in (172_800, 86_400, 3600, 7200, 600, 60, 90)] == [
        "2 days",
        "1 day",
        "1 hour",
        "2 hours",
        "10 minutes",
        "1 minute",
        "2 minutes",
    ]
