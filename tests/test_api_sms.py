"""Signing in with an SMS code and binding a phone number, through the HTTP
API, the codes sent through Tencent's SDK to the stand-in
(``tests/tencent_fake.py``) and read back from what it received."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from api_support import Api, Caller, error, paired_medians, snapshot, within_ten_percent
from conftest import BROKER_URL, AppFactory
from tencent_fake import (
    FakeTencentSms,
)

from app.core.error_codes import ErrorCode
from app.extensions.database import get_database
from app.models.sent_message import SentMessage
from app.tasks.messages import send_sms_code

CODE = "/api/v1/auth/sms/code"
TOKEN = "/api/v1/auth/sms/token"
PHONE = "/api/v1/users/me/phone"
ADA = "+8613800138000"
LOCAL = "138 0013 8000"  # the same number, as written in China


@pytest.fixture
def sms_api(make_api_app: AppFactory, tencent: FakeTencentSms) -> Api:
    """The app sending SMS to the stand-in; no broker, so each code has been
    sent when the request ends. A number may get 10 codes a minute here, so a
    test can bind a number and sign in with it at once."""
    return Api(make_api_app(**tencent.settings(), sms_limit_per_number="10 per minute"))


def last_code(fake: FakeTencentSms, phone: str = ADA) -> str:
    request = fake.requests[-1]
    assert request["PhoneNumberSet"] == [phone]
    code, minutes = request["TemplateParamSet"]
    assert minutes == "5"
    return str(code)


def bind(api: Api, fake: FakeTencentSms, caller: Caller, phone: str = ADA) -> dict[str, Any]:
    assert api.client.post(CODE, json={"phone": phone, "purpose": "bind"}).status_code == 202
    response = api.client.put(
        PHONE, json={"phone": phone, "code": last_code(fake, phone)}, headers=caller.headers
    )
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def test_bind_a_number_then_sign_in_with_a_code(sms_api: Api, tencent: FakeTencentSms) -> None:
    caller = sms_api.register()
    me = bind(sms_api, tencent, caller, ADA)
    assert me["phone"] == ADA
    assert sms_api.client.get("/api/v1/users/me", headers=caller.headers).json["phone"] == ADA  # type: ignore[index]

    response = sms_api.client.post(CODE, json={"phone": LOCAL, "purpose": "login"})
    assert response.status_code == 202
    assert response.json == {"resend_after": 60}
    code = last_code(tencent)
    assert len(code) == 6
    assert code.isdigit()

    signed_in = sms_api.client.post(TOKEN, json={"phone": ADA, "code": code})
    assert signed_in.status_code == 200, signed_in.json
    assert signed_in.headers["Cache-Control"] == "no-store"
    pair: dict[str, Any] = signed_in.json  # type: ignore[assignment]
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    me_again = sms_api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me_again.json["id"] == caller.id  # type: ignore[index]
    refreshed = sms_api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200


def test_a_code_works_once(sms_api: Api, tencent: FakeTencentSms) -> None:
    bind(sms_api, tencent, sms_api.register())
    sms_api.client.post(CODE, json={"phone": ADA, "purpose": "login"})
    code = last_code(tencent)
    assert sms_api.client.post(TOKEN, json={"phone": ADA, "code": code}).status_code == 200
    error(
        sms_api.client.post(TOKEN, json={"phone": ADA, "code": code}), 401, ErrorCode.UNAUTHORIZED
    )


def test_a_code_for_one_purpose_does_not_serve_the_other(
    sms_api: Api, tencent: FakeTencentSms
) -> None:
    caller = sms_api.register()
    bind(sms_api, tencent, caller)
    sms_api.client.post(CODE, json={"phone": ADA, "purpose": "bind"})
    error(
        sms_api.client.post(TOKEN, json={"phone": ADA, "code": last_code(tencent)}),
        401,
        ErrorCode.UNAUTHORIZED,
    )


def test_five_wrong_codes_kill_the_code_and_lock_the_number(
    sms_api: Api, tencent: FakeTencentSms
) -> None:
    bind(sms_api, tencent, sms_api.register())
    sms_api.client.post(CODE, json={"phone": ADA, "purpose": "login"})
    right = last_code(tencent)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        error(
            sms_api.client.post(TOKEN, json={"phone": ADA, "code": wrong}),
            401,
            ErrorCode.UNAUTHORIZED,
        )
    locked = sms_api.client.post(TOKEN, json={"phone": ADA, "code": right})
    error(locked, 429, ErrorCode.RATE_LIMITED)
    assert 1 <= int(locked.headers["Retry-After"]) <= 300


def test_a_second_code_within_a_minute_is_429_with_retry_after(
    make_api_app: AppFactory, tencent: FakeTencentSms
) -> None:
    sms_api = Api(make_api_app(**tencent.settings()))  # the default limits
    assert sms_api.client.post(CODE, json={"phone": ADA, "purpose": "bind"}).status_code == 202
    # Another purpose, the number written another way: the same number.
    response = sms_api.client.post(CODE, json={"phone": LOCAL, "purpose": "login"})
    error(response, 429, ErrorCode.RATE_LIMITED)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert len(tencent.requests) == 1


def test_codes_are_capped_per_client_address(
    make_api_app: AppFactory, tencent: FakeTencentSms
) -> None:
    api = Api(make_api_app(**tencent.settings(), sms_limit_per_address="2 per day"))
    statuses = [
        api.client.post(CODE, json={"phone": f"+861380013800{n}", "purpose": "bind"}).status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_a_sign_in_code_for_a_number_no_account_has_answers_alike_and_sends_nothing(
    sms_api: Api, tencent: FakeTencentSms
) -> None:
    bind(sms_api, tencent, sms_api.register(), "+8613900139000")
    before = len(tencent.requests)
    bound = sms_api.client.post(CODE, json={"phone": "+8613900139000", "purpose": "login"})
    unbound = sms_api.client.post(CODE, json={"phone": ADA, "purpose": "login"})
    assert bound.status_code == unbound.status_code == 202
    assert bound.get_data() == unbound.get_data()
    assert len(tencent.requests) == before + 1


def test_codes_are_kept_only_as_hmacs_in_redis(
    sms_api: Api, tencent: FakeTencentSms, redis_client: redis.Redis
) -> None:
    sms_api.client.post(CODE, json={"phone": ADA, "purpose": "bind"})
    code = last_code(tencent).encode()
    keys = redis_client.keys("sms-code:*")
    assert keys == [f"sms-code:bind:{ADA}".encode()]
    stored: dict[bytes, bytes] = redis_client.hgetall(keys[0])  # type: ignore[assignment]
    assert set(stored) == {b"digest", b"tries"}
    assert code not in stored[b"digest"]
    assert len(stored[b"digest"]) == 64
    assert 290 <= redis_client.ttl(keys[0]) <= 300


def test_a_number_bound_to_another_account_is_409(sms_api: Api, tencent: FakeTencentSms) -> None:
    bind(sms_api, tencent, sms_api.register("Ada"))
    other = sms_api.register("Bob")
    before = snapshot(sms_api)
    with sms_api.app.app_context():
        from app.extensions.sms_codes import get_sms_codes  # noqa: PLC0415

        get_sms_codes().put("bind", ADA, "424242")
    taken = sms_api.client.put(PHONE, json={"phone": ADA, "code": "424242"}, headers=other.headers)
    error(taken, 409, ErrorCode.CONFLICT)
    assert snapshot(sms_api) == before


def test_unbinding_ends_sign_in_by_that_number(sms_api: Api, tencent: FakeTencentSms) -> None:
    caller = sms_api.register()
    bind(sms_api, tencent, caller)
    assert sms_api.client.delete(PHONE, headers=caller.headers).status_code == 204
    assert sms_api.client.get("/api/v1/users/me", headers=caller.headers).json["phone"] is None  # type: ignore[index]
    before = len(tencent.requests)
    assert sms_api.client.post(CODE, json={"phone": ADA, "purpose": "login"}).status_code == 202
    assert len(tencent.requests) == before


def test_binding_needs_a_signed_in_caller(sms_api: Api) -> None:
    error(
        sms_api.client.put(PHONE, json={"phone": ADA, "code": "123456"}),
        401,
        ErrorCode.UNAUTHORIZED,
    )
    error(sms_api.client.delete(PHONE), 401, ErrorCode.UNAUTHORIZED)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (CODE, {"phone": "12345", "purpose": "login"}, "phone"),
        (CODE, {"phone": "not a number", "purpose": "login"}, "phone"),
        (CODE, {"phone": "+86 138 0013 800", "purpose": "login"}, "phone"),
        (CODE, {"phone": ADA, "purpose": "signup"}, "purpose"),
        (CODE, {"phone": ADA}, "purpose"),
        (CODE, {"phone": "1" * 33, "purpose": "login"}, "phone"),
        (TOKEN, {"phone": ADA, "code": "12a456"}, "code"),
        (TOKEN, {"phone": ADA, "code": "12345"}, "code"),
        (TOKEN, {"phone": ADA, "code": 123456}, "code"),
        (TOKEN, {"phone": "12345", "code": "123456"}, "phone"),
        (TOKEN, {"phone": ADA, "code": "123456", "extra": True}, "extra"),
    ],
)
def test_bad_bodies_are_422_and_change_nothing(
    sms_api: Api, tencent: FakeTencentSms, path: str, body: dict[str, Any], field: str
) -> None:
    sms_api.register()
    before = snapshot(sms_api)
    envelope = error(sms_api.client.post(path, json=body), 422, ErrorCode.VALIDATION_FAILED)
    assert ["body", field] in [detail["loc"] for detail in envelope["details"]]
    if field == "phone" and path == CODE and len(body["phone"]) <= 32:
        assert "Not a valid phone number" in {detail["msg"] for detail in envelope["details"]}
    assert snapshot(sms_api) == before
    assert tencent.requests == []


def test_an_oversized_body_is_413(sms_api: Api) -> None:
    limit = sms_api.app.settings.max_content_length
    body = b'{"phone": "' + b"1" * limit + b'", "purpose": "login"}'
    error(
        sms_api.client.post(CODE, data=body, content_type="application/json"),
        413,
        ErrorCode.PAYLOAD_TOO_LARGE,
    )


def test_a_tencent_error_stays_out_of_the_response(
    sms_api: Api, tencent: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    tencent.error = ("FailedOperation.InsufficientBalanceInSmsPackage", "secret vendor detail")
    with caplog.at_level(logging.WARNING, logger="app.messaging"):
        response = sms_api.client.post(CODE, json={"phone": ADA, "purpose": "bind"})
    assert response.status_code == 202
    assert b"secret vendor detail" not in response.get_data()
    assert b"FailedOperation" not in response.get_data()
    assert any("secret vendor detail" in record.getMessage() for record in caplog.records)
    with sms_api.app.app_context():  # the failed send dropped its claim
        assert get_database().session().query(SentMessage).count() == 0


def test_a_redelivered_task_sends_once_and_keeps_the_code_sent(
    sms_api: Api, tencent: FakeTencentSms
) -> None:
    caller = sms_api.register()
    with sms_api.app.app_context():
        assert send_sms_code.apply(args=(ADA, "bind"), task_id="sms-redelivered").get() is True
        code = last_code(tencent)
        assert send_sms_code.apply(args=(ADA, "bind"), task_id="sms-redelivered").get() is False
    assert len(tencent.requests) == 1
    bound = sms_api.client.put(PHONE, json={"phone": ADA, "code": code}, headers=caller.headers)
    assert bound.status_code == 200


def test_with_sms_off_asking_for_a_code_is_503(make_api_app: AppFactory) -> None:
    api = Api(make_api_app(app_env="production", secret_key="s" * 40))
    error(
        api.client.post(CODE, json={"phone": ADA, "purpose": "login"}),
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
    )


def test_redis_down_is_503_at_once(make_api_app: AppFactory, tencent: FakeTencentSms) -> None:
    api = Api(
        make_api_app(
            **tencent.settings(), redis_url="redis://127.0.0.1:1/0", redis_socket_timeout=0.5
        )
    )
    error(
        api.client.post(TOKEN, json={"phone": ADA, "code": "123456"}),
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
    )


# -- enumeration ------------------------------------------------------------------


@pytest.mark.parametrize("db_engine", ["mysql"], indirect=True)
def test_sign_in_routes_answer_alike_for_a_bound_and_an_unbound_number(
    make_api_app: AppFactory, tencent: FakeTencentSms, broker: redis.Redis
) -> None:
    """With a broker, as in production: asking for a login code queues the
    same task for either number; a wrong code costs the same for either."""
    api = Api(
        make_api_app(
            **tencent.settings(),
            celery_broker_url=BROKER_URL,
            sms_limit_per_number="10000 per minute",
            sms_limit_per_address="10000 per minute",
        )
    )
    caller = api.register()
    with api.app.app_context():
        session = get_database().session()
        from app.models import User  # noqa: PLC0415

        user = session.get(User, caller.id)
        assert user is not None
        user.phone = ADA
        session.commit()
    unbound = "+8613900139000"

    def ask(phone: str) -> Callable[[], Any]:
        return lambda: api.client.post(CODE, json={"phone": phone, "purpose": "login"})

    def guess(phone: str) -> Callable[[], Any]:
        # A new wrong code each time would lock the number: spend no tries on a code there is none of.
        return lambda: api.client.post(TOKEN, json={"phone": phone, "code": "000000"})

    for route in (ask, guess):
        with_account, without = paired_medians(route(ADA), route(unbound))
        assert with_account.statuses == without.statuses
        if route is ask:
            assert with_account.bodies == without.bodies == {b'{"resend_after":60}'}
        else:
            answers = [json.loads(body) for body in with_account.bodies | without.bodies]
            assert len({json.dumps({**answer, "request_id": ""}) for answer in answers}) == 1
        assert within_ten_percent(with_account.median_ms, without.median_ms), (
            route.__name__,
            with_account.median_ms,
            without.median_ms,
        )
