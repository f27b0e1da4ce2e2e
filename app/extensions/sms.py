"""Outgoing SMS: the second channel of the sending layer (email is
:mod:`app.extensions.messaging`'s), behind one small interface.

Two senders, which ``SMS_SENDER`` chooses:

* :class:`TencentSmsSender` calls Tencent Cloud SMS's ``SendSms`` (API version
  2021-01-11) through the official SDK, signed with TC3-HMAC-SHA256;
* :class:`ConsoleSmsSender` writes each message to the log, for development;
  production refuses it.

A send to several numbers is checked number by number (each
``SendStatusSet[].Code`` must be ``"Ok"``). A failure is a
:class:`SmsFailed`: what Tencent answered goes to the log, and callers get
only its :attr:`~SmsFailed.reason`, so no vendor message reaches a response.
Another vendor is one more class with ``send``.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from flask import current_app

from app.extensions.messaging import SendFailed

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.messaging")

#: What went wrong, in our words: ``rate_limited`` (the vendor's limits for a
#: number or the account), ``invalid_number``, ``refused`` (a number the
#: vendor will not send to), ``misconfigured`` (our credentials, app, sign or
#: template), ``unavailable`` (the vendor, or the way to it, is down).
Reason = Literal["rate_limited", "invalid_number", "refused", "misconfigured", "unavailable"]

#: Tencent's documented error codes (``SendStatusSet[].Code``, or the
#: response's ``Error.Code``) by prefix, longest first wins, and whether
#: trying again later may help.
TENCENT_ERRORS: dict[str, tuple[Reason, bool]] = {
    "LimitExceeded.": ("rate_limited", False),
    "RequestLimitExceeded": ("unavailable", True),
    "InvalidParameterValue.IncorrectPhoneNumber": ("invalid_number", False),
    "UnsupportedOperation.UnsupportedRegion": ("invalid_number", False),
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": ("invalid_number", False),
    "FailedOperation.PhoneNumberInBlacklist": ("refused", False),
    "FailedOperation.PhoneNumberOnBlacklist": ("refused", False),
    "FailedOperation.": ("misconfigured", False),
    "InvalidParameter": ("misconfigured", False),
    "InvalidParameterValue.": ("misconfigured", False),
    "MissingParameter": ("misconfigured", False),
    "AuthFailure.": ("misconfigured", False),
    "UnauthorizedOperation.": ("misconfigured", False),
    "InternalError.": ("unavailable", True),
    "ClientNetworkError": ("unavailable", True),
    "ServerNetworkError": ("unavailable", True),
}


def classify(code: str) -> tuple[Reason, bool]:
    """Our reason for a Tencent error code, and whether it may pass."""
    matches = [prefix for prefix in TENCENT_ERRORS if code.startswith(prefix)]
    if not matches:
        return "unavailable", True
    return TENCENT_ERRORS[max(matches, key=len)]


@dataclass(frozen=True, slots=True)
class Sms:
    """One message to one or more numbers (E.164): a template of the vendor,
    filled with ``params``."""

    to: Sequence[str]
    params: Sequence[str]


class SmsFailed(SendFailed):
    """The message did not reach every number: ``failed`` holds each number
    that it did not reach, with the vendor's code; ``sent`` the others."""

    def __init__(
        self,
        message: str,
        *,
        reason: Reason = "unavailable",
        retryable: bool = False,
        failed: dict[str, str] | None = None,
        sent: Sequence[str] = (),
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.reason: Reason = reason
        self.failed = dict(failed or {})
        self.sent = list(sent)

    def __reduce__(self) -> tuple[object, ...]:
        state = {
            "retryable": self.retryable,
            "reason": self.reason,
            "failed": self.failed,
            "sent": self.sent,
        }
        return type(self), (str(self),), state


class SmsSender(Protocol):
    def send(self, sms: Sms) -> None:
        """Deliver ``sms`` to every number, or raise :class:`SmsFailed`."""
        ...


@dataclass
class TencentSmsSender:
    """``SendSms`` of Tencent Cloud SMS, 2021-01-11, through the official SDK."""

    settings: Settings
    _client: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        settings = self.settings
        scheme, _, endpoint = settings.tencent_sms_endpoint.partition("://")
        http = _sdk("common.profile.http_profile").HttpProfile(
            protocol=scheme, endpoint=endpoint, reqTimeout=settings.tencent_sms_timeout
        )
        self._client = _sdk("sms.v20210111.sms_client").SmsClient(
            _sdk("common.credential").Credential(
                settings.tencent_sms_secret_id,
                settings.tencent_sms_secret_key.get_secret_value(),
            ),
            settings.tencent_sms_region,
            _sdk("common.profile.client_profile").ClientProfile(httpProfile=http),
        )

    def send(self, sms: Sms) -> None:
        sdk_error: type[Exception] = _sdk(
            "common.exception.tencent_cloud_sdk_exception"
        ).TencentCloudSDKException
        request = _sdk("sms.v20210111.models").SendSmsRequest()
        request.PhoneNumberSet = list(sms.to)
        request.SmsSdkAppId = self.settings.tencent_sms_app_id
        request.SignName = self.settings.tencent_sms_sign_name
        request.TemplateId = self.settings.tencent_sms_template_id
        request.TemplateParamSet = list(sms.params)
        try:
            response: Any = self._client.SendSms(request)
        except sdk_error as raised:
            exc: Any = raised  # the SDK is untyped
            code = str(exc.get_code())
            reason, retryable = classify(code)
            log.warning(
                "SMS to %d number(s) not sent: Tencent %s (%s), request %s",
                len(sms.to),
                code,
                str(exc.get_message()),
                str(exc.get_request_id()),
            )
            raise SmsFailed(
                f"Tencent answered {code}",
                reason=reason,
                retryable=retryable,
                failed=dict.fromkeys(sms.to, code),
            ) from None
        self._check(sms, json.loads(response.to_json_string()))

    def _check(self, sms: Sms, response: dict[str, Any]) -> None:
        statuses: dict[str, str] = {
            str(status["PhoneNumber"]): str(status["Code"])
            for status in cast("list[dict[str, Any]]", response.get("SendStatusSet") or [])
        }
        failed = {
            number: statuses.get(number, "Missing")
            for number in sms.to
            if statuses.get(number) != "Ok"
        }
        if not failed:
            return
        for number, code in failed.items():
            log.warning(
                "SMS to %s not sent: Tencent %s, request %s",
                _masked(number),
                code,
                response.get("RequestId"),
            )
        reasons = [classify(code) for code in failed.values()]
        sent = [number for number in sms.to if number not in failed]
        raise SmsFailed(
            f"{len(failed)} of {len(sms.to)} number(s) not reached",
            reason=reasons[0][0],
            # Retried only if every failure may pass and nothing went out,
            # so a retry sends no number twice.
            retryable=not sent and all(retryable for _, retryable in reasons),
            failed=failed,
            sent=sent,
        )


class ConsoleSmsSender:
    """Development: each message to the log (``app.messaging``, INFO)."""

    def send(self, sms: Sms) -> None:
        log.info("SMS (not sent: SMS_SENDER=console) to %s: %s", ", ".join(sms.to), sms.params)


def _sdk(module: str) -> Any:
    """A module of Tencent's SDK, imported when the sender is made (it ships
    no type information, so its objects are ``Any`` here)."""
    return importlib.import_module(f"tencentcloud.{module}")


def _masked(number: str) -> str:
    """``+8613800138000`` → ``+86138****8000``: enough to tell numbers apart in a log."""
    return number[:-8] + "****" + number[-4:] if len(number) > 8 else "****"


def make_sms_sender(settings: Settings) -> SmsSender | None:
    """The sender ``SMS_SENDER`` names; None when SMS is off."""
    match settings.resolved_sms_sender:
        case "tencent":
            return TencentSmsSender(settings)
        case "console":
            return ConsoleSmsSender()
        case _:
            return None


def init_app(app: APIFlask) -> None:
    app.extensions["sms_sender"] = make_sms_sender(app.settings)


def get_sms_sender() -> SmsSender | None:
    sender: SmsSender | None = current_app.extensions["sms_sender"]
    return sender
