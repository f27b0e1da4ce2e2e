"""SMS through Tencent Cloud's official SDK, at the HTTP boundary: the SDK's
endpoint points at a stand-in (``tests/tencent_fake.py``) that checks the
TC3-HMAC-SHA256 signature, the action, version, region and payload, and
answers in Tencent's documented shapes."""

from __future__ import annotations

import logging
import pickle
import time
from typing import Any

import pytest
from conftest import SettingsFactory
from tencent_fake import (
    APP_ID,
    SECRET_ID,
    SIGN_NAME,
    TEMPLATE_ID,
    FakeTencentSms,
)

from app.core.settings import SettingsError, load_settings
from app.extensions.sms import (
    ConsoleSmsSender,
    Sms,
    SmsFailed,
    TencentSmsSender,
    classify,
    make_sms_sender,
)

ADA = "+8613800138000"
BOB = "+8613900139000"
CAROL = "+14155550123"


def sender(
    make_settings: SettingsFactory, fake: FakeTencentSms, **overrides: Any
) -> TencentSmsSender:
    made = make_sms_sender(make_settings(**{**fake.settings(), **overrides}))
    assert isinstance(made, TencentSmsSender)
    return made


def test_a_signed_request_with_every_field_is_sent(
    make_settings: SettingsFactory, tencent: FakeTencentSms
) -> None:
    sender(make_settings, tencent).send(Sms(to=[ADA], params=["123456", "5"]))
    assert tencent.refusals == []
    assert tencent.requests == [
        {
            "PhoneNumberSet": [ADA],
            "SmsSdkAppId": APP_ID,
            "SignName": SIGN_NAME,
            "TemplateId": TEMPLATE_ID,
            "TemplateParamSet": ["123456", "5"],
        }
    ]


def test_a_wrong_secret_fails_the_signature_and_is_not_retried(
    make_settings: SettingsFactory, tencent: FakeTencentSms
) -> None:
    wrong = sender(make_settings, tencent, tencent_sms_secret_key="not-the-secret-key-at-all")
    with pytest.raises(SmsFailed) as caught:
        wrong.send(Sms(to=[ADA], params=["123456"]))
    assert tencent.refusals == ["AuthFailure.SignatureFailure"]
    assert tencent.requests == []
    assert (caught.value.reason, caught.value.retryable) == ("misconfigured", False)
    assert caught.value.failed == {ADA: "AuthFailure.SignatureFailure"}


def test_an_unknown_secret_id_is_refused(
    make_settings: SettingsFactory, tencent: FakeTencentSms
) -> None:
    with pytest.raises(SmsFailed) as caught:
        sender(make_settings, tencent, tencent_sms_secret_id="AKIDsomeoneelse").send(
            Sms(to=[ADA], params=["1"])
        )
    assert tencent.refusals == ["AuthFailure.SecretIdNotFound"]
    assert caught.value.reason == "misconfigured"


@pytest.mark.parametrize(
    ("override", "refusal"),
    [
        ({"tencent_sms_region": "ap-beijing"}, "InvalidParameterValue"),
        ({"tencent_sms_app_id": "1400999999"}, "InvalidParameterValue.SdkAppIdNotExist"),
        ({"tencent_sms_sign_name": "Other"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
        ({"tencent_sms_template_id": "999"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
    ],
)
def test_wrong_settings_are_refused_by_the_stand_in_as_by_tencent(
    make_settings: SettingsFactory,
    tencent: FakeTencentSms,
    override: dict[str, str],
    refusal: str,
) -> None:
    with pytest.raises(SmsFailed) as caught:
        sender(make_settings, tencent, **override).send(Sms(to=[ADA], params=["1"]))
    assert tencent.refusals == [refusal]
    assert (caught.value.reason, caught.value.retryable) == ("misconfigured", False)


def test_each_number_is_checked_and_a_partial_failure_names_the_ones_missed(
    make_settings: SettingsFactory, tencent: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    tencent.codes = {BOB: "LimitExceeded.PhoneNumberDailyLimit"}
    with (
        caplog.at_level(logging.WARNING, logger="app.messaging"),
        pytest.raises(SmsFailed) as caught,
    ):
        sender(make_settings, tencent).send(Sms(to=[ADA, BOB, CAROL], params=["1"]))
    failure = caught.value
    assert failure.failed == {BOB: "LimitExceeded.PhoneNumberDailyLimit"}
    assert failure.sent == [ADA, CAROL]
    assert failure.reason == "rate_limited"
    # Two numbers got it: a retry would send them a second message.
    assert failure.retryable is False
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "LimitExceeded.PhoneNumberDailyLimit" in logged
    assert BOB not in logged  # numbers are masked in the log
    assert "+86139****9000" in logged


def test_a_failure_that_may_pass_on_every_number_is_retried(
    make_settings: SettingsFactory, tencent: FakeTencentSms
) -> None:
    tencent.codes = {ADA: "InternalError.Timeout", BOB: "InternalError.OtherError"}
    with pytest.raises(SmsFailed) as caught:
        sender(make_settings, tencent).send(Sms(to=[ADA, BOB], params=["1"]))
    assert (caught.value.reason, caught.value.retryable) == ("unavailable", True)
    assert caught.value.sent == []


def test_an_error_of_the_whole_request_does_not_leak_tencents_words(
    make_settings: SettingsFactory, tencent: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    tencent.error = (
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "套餐包余量不足 secret detail",
    )
    with (
        caplog.at_level(logging.WARNING, logger="app.messaging"),
        pytest.raises(SmsFailed) as caught,
    ):
        sender(make_settings, tencent).send(Sms(to=[ADA], params=["1"]))
    assert caught.value.reason == "misconfigured"
    assert "secret detail" not in str(caught.value)
    # The log, for the operator, has it all.
    assert any("secret detail" in record.getMessage() for record in caplog.records)


def test_a_stand_in_that_answers_late_fails_within_the_timeout(
    make_settings: SettingsFactory, tencent: FakeTencentSms
) -> None:
    tencent.delay = 3.0
    started = time.monotonic()
    with pytest.raises(SmsFailed) as caught:
        sender(make_settings, tencent).send(Sms(to=[ADA], params=["1"]))
    assert time.monotonic() - started < 2.5
    assert (caught.value.reason, caught.value.retryable) == ("unavailable", True)


def test_no_server_fails_at_once_and_may_pass(make_settings: SettingsFactory) -> None:
    from serving_support import free_port  # noqa: PLC0415

    gone = FakeTencentSms()  # never started: nothing listens on its port
    gone.endpoint = f"http://127.0.0.1:{free_port()}"
    gone.server.server_close()
    started = time.monotonic()
    with pytest.raises(SmsFailed) as caught:
        sender(make_settings, gone).send(Sms(to=[ADA], params=["1"]))
    assert time.monotonic() - started < 1.5
    assert (caught.value.reason, caught.value.retryable) == ("unavailable", True)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("Ok", ("unavailable", True)),  # never classified: only failures are
        ("LimitExceeded.PhoneNumberDailyLimit", ("rate_limited", False)),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", ("rate_limited", False)),
        ("LimitExceeded.DeliveryFrequencyLimit", ("rate_limited", False)),
        ("RequestLimitExceeded", ("unavailable", True)),
        ("InvalidParameterValue.IncorrectPhoneNumber", ("invalid_number", False)),
        ("InvalidParameterValue.TemplateParameterFormatError", ("misconfigured", False)),
        ("FailedOperation.PhoneNumberInBlacklist", ("refused", False)),
        ("FailedOperation.InsufficientBalanceInSmsPackage", ("misconfigured", False)),
        ("UnsupportedOperation.UnsupportedRegion", ("invalid_number", False)),
        ("AuthFailure.SignatureFailure", ("misconfigured", False)),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", ("misconfigured", False)),
        ("InternalError.Timeout", ("unavailable", True)),
        ("ClientNetworkError", ("unavailable", True)),
        ("SomethingNew.NeverSeen", ("unavailable", True)),
    ],
)
def test_tencents_documented_errors_map_to_our_reasons(
    code: str, expected: tuple[str, bool]
) -> None:
    assert classify(code) == expected


def test_a_failure_survives_celerys_pickling() -> None:
    failure = SmsFailed(
        "1 of 2", reason="rate_limited", retryable=False, failed={BOB: "x"}, sent=[ADA]
    )
    copy = pickle.loads(pickle.dumps(failure))  # noqa: S301 - our own object
    assert (copy.reason, copy.retryable, copy.failed, copy.sent, str(copy)) == (
        "rate_limited",
        False,
        {BOB: "x"},
        [ADA],
        "1 of 2",
    )


def test_the_console_sender_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.messaging"):
        ConsoleSmsSender().send(Sms(to=[ADA], params=["654321"]))
    assert any(
        "654321" in record.getMessage() and ADA in record.getMessage() for record in caplog.records
    )


def test_the_sender_is_console_outside_production_and_none_in_it(
    make_settings: SettingsFactory,
) -> None:
    assert isinstance(make_sms_sender(make_settings()), ConsoleSmsSender)
    production = make_settings(app_env="production", secret_key="s" * 40)
    assert make_sms_sender(production) is None


def test_production_refuses_the_console_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("SMS_SENDER", "console")
    with pytest.raises(SettingsError, match="SMS_SENDER=console"):
        load_settings(_env_file=None)


def test_tencent_needs_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_SENDER", "tencent")
    monkeypatch.setenv("TENCENT_SMS_SECRET_ID", SECRET_ID)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    for name in (
        "TENCENT_SMS_SECRET_KEY",
        "TENCENT_SMS_APP_ID",
        "TENCENT_SMS_SIGN_NAME",
        "TENCENT_SMS_TEMPLATE_ID",
    ):
        assert name in message
    assert "TENCENT_SMS_SECRET_ID" not in message
