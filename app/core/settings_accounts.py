"""The settings of the account flows that send messages (docs/accounts.md):
email verification and password reset. :class:`~app.core.settings.Settings`
inherits them; what production refuses is checked there, with the rest."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


def check_limit(value: str) -> str:
    """``value`` if it is a rate limit in ``limits``' notation, else a ValueError."""
    from limits import parse_many  # noqa: PLC0415 - only needed to validate

    try:
        parse_many(value)
    except ValueError:
        raise ValueError("not a rate limit (e.g. '5 per minute' or '5/minute;50/hour')") from None
    return value


class AccountSettings(BaseModel):
    # -- email (docs/accounts.md) -------------------------------------------
    #: The email flows (verification, password reset). Empty means on wherever
    #: mail can go out: with ``SMTP_HOST`` set, or outside production, where
    #: each message is written to the log. ``true`` in production without
    #: ``SMTP_HOST`` is refused at start-up.
    email_enabled: bool | None = None
    #: The SMTP server. Empty: no SMTP (development logs each message instead).
    smtp_host: str = ""
    smtp_port: Annotated[int, Field(ge=1, le=65_535)] = 587
    #: ``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none`` (a local relay).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    #: Empty: no ``AUTH``.
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    #: Seconds to connect, and for each reply: a server that hangs fails the send
    #: (the task retries it) instead of holding the worker.
    smtp_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    #: The ``From`` of every message: ``address`` or ``Name <address>``.
    mail_from: Annotated[str, Field(min_length=3, max_length=254)] = "no-reply@localhost"
    #: The frontend the links in emails open: ``<this>/verify-email?token=...``
    #: and ``<this>/reset-password?token=...``; those pages post the token to the API.
    email_link_base_url: str = "http://localhost:5173"
    #: Seconds a link to verify an address stays valid.
    email_verify_ttl: Annotated[int, Field(ge=300, le=30 * 86_400)] = 2 * 86_400
    #: Seconds a link to reset a password stays valid.
    password_reset_ttl: Annotated[int, Field(ge=300, le=86_400)] = 3600
    #: Emails one account (or one address asked for, by ``forgot``) may be sent.
    email_limit_per_account: Annotated[str, Field(min_length=1)] = "1 per minute;10 per day"
    #: ``forgot`` requests one client address may make.
    email_limit_per_address: Annotated[str, Field(min_length=1)] = "10 per hour;50 per day"

    # -- sms (docs/accounts.md) ---------------------------------------------
    #: ``tencent`` (Tencent Cloud SMS), or ``console`` (each message to the log,
    #: refused in production). Empty: ``console`` outside production, no SMS in it.
    sms_sender: Literal["tencent", "console"] | None = None
    #: A Tencent Cloud API key pair (CAM), allowed to call ``sms:SendSms``.
    tencent_sms_secret_id: str = ""
    tencent_sms_secret_key: SecretStr = SecretStr("")
    #: The region the calls name (``X-TC-Region``).
    tencent_sms_region: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+(-[0-9]+)?$")] = "ap-guangzhou"
    #: Where the SDK sends them; the tests point it at a stand-in.
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    #: ``SmsSdkAppId``, ``SignName`` and ``TemplateId`` of the SMS console; the
    #: template takes the code as its first parameter.
    tencent_sms_app_id: str = ""
    tencent_sms_sign_name: str = ""
    tencent_sms_template_id: str = ""
    #: Seconds one call may take (the SDK counts whole seconds).
    tencent_sms_timeout: Annotated[int, Field(ge=1, le=60)] = 5
    #: The region a phone number without ``+`` is read in (ISO 3166, e.g. ``CN``).
    phone_default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "CN"

    #: Codes sent to one number: the first limit is the resend wait (``resend_after``).
    sms_limit_per_number: Annotated[str, Field(min_length=1)] = "1 per minute;5 per hour;10 per day"
    #: Codes one client address may ask for.
    sms_limit_per_address: Annotated[str, Field(min_length=1)] = "20 per day"

    @field_validator("sms_limit_per_number", "sms_limit_per_address")
    @classmethod
    def _sms_limit_parses(cls, value: str) -> str:
        return check_limit(value)

    @field_validator("tencent_sms_endpoint")
    @classmethod
    def _tencent_endpoint_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local stand-in)")
        return value.rstrip("/")

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError("must be an address, or Name <address>")
        return value

    @field_validator("email_link_base_url")
    @classmethod
    def _link_base_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("email_limit_per_account", "email_limit_per_address")
    @classmethod
    def _email_limit_parses(cls, value: str) -> str:
        return check_limit(value)
