"""Accounts and sign-in: registration, token pairs, your own account."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.base import Page, Patch, StrictModel, omit_null_defaults

#: The syntax browsers check for ``<input type="email">`` (the HTML standard's
#: rule), with at least one dot after the @. Addresses at special-use domains
#: (.arpa, .invalid, .local, .localhost, .onion, .test), which no mail reaches,
#: are refused too.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _deliverable_domain(email: str) -> str:
    top_level = email.rpartition(".")[2].lower()
    if top_level in SPECIAL_USE_DOMAINS:
        raise ValueError(f"addresses at .{top_level} domains cannot receive mail")
    return email


Email = Annotated[
    str,
    StringConstraints(pattern=EMAIL_PATTERN, max_length=254),
    AfterValidator(_deliverable_domain),
    Field(
        examples=["ada@example.com"],
        description="An email address; special-use domains such as .test or .local are refused",
    ),
]
Password = Annotated[str, Field(min_length=8, max_length=128)]
#: Stripped before it is measured; the pattern tells the document that a name
#: of spaces alone is refused.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S")
]


class UserOut(BaseModel):
    """An account as others see it. Passwords and hashes never leave the server."""

    model_config = ConfigDict(title="User")

    id: int
    email: str
    #: Whether the owner of the account showed they read this address (a link sent to it was used).
    email_verified: bool
    name: str
    is_admin: bool
    created_at: AwareDatetime


class MeOut(UserOut):
    """Your own account: a user, and the phone number bound to it."""

    model_config = ConfigDict(title="Me", json_schema_serialization_defaults_required=True)

    #: E.164 (``+8613800138000``); ``null`` until one is bound with a code sent to it.
    phone: str | None = None


class UserPage(Page[UserOut]):
    pass


class Register(StrictModel):
    email: Email
    password: Password
    name: Name


class TokenRequest(StrictModel):
    """Sign in with an email and a password."""

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenForm(StrictModel):
    """The OAuth 2 password grant, as a form: ``username`` is the email. The
    other OAuth 2 fields are accepted, and ignored."""

    username: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=128)]
    grant_type: Literal["password"] = "password"
    scope: Annotated[str, Field(max_length=200)] = ""
    client_id: Annotated[str, Field(max_length=200)] = ""
    client_secret: Annotated[str, Field(max_length=200)] = ""


class TokenPair(BaseModel):
    #: Every field is always sent, token_type included: the document says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth 2 token type
    #: Seconds until the access token expires.
    expires_in: int
    refresh_token: str


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


def _user_update_schema(schema: dict[str, Any]) -> None:
    omit_null_defaults(schema)
    schema["dependentRequired"] = {"password": ["current_password"]}


class UserUpdate(Patch):
    """Change your name, or your password (which needs the current one)."""

    model_config = ConfigDict(json_schema_extra=_user_update_schema)

    name: Name | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=128)] | None = None


#: What itsdangerous makes of ``[user_id, fingerprint]``: about 100 characters.
LinkToken = Annotated[str, Field(min_length=1, max_length=512)]


class EmailToken(StrictModel):
    """The token from a verification link."""

    token: LinkToken


class ForgotPassword(StrictModel):
    email: Email


class ResetPassword(StrictModel):
    """The token from a reset link, and the new password."""

    token: LinkToken
    password: Password


#: Why a code is sent: to sign in, or to bind the number to your account.
SmsPurpose = Literal["login", "bind"]
#: A phone number as people write it; the server reads it with ``phonenumbers``
#: (``PHONE_DEFAULT_REGION`` when it has no ``+``) and answers it in E.164.
PhoneNumber = Annotated[
    str, Field(min_length=3, max_length=32, examples=["+8613800138000", "13800138000"])
]
SmsCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["123456"])]


class SmsCodeRequest(StrictModel):
    phone: PhoneNumber
    purpose: SmsPurpose


class SmsCodeSent(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    #: Seconds before another code may be sent to this number.
    resend_after: int


class SmsSignIn(StrictModel):
    """Sign in with a code sent to a number bound to an account."""

    phone: PhoneNumber
    code: SmsCode


class PhoneBind(StrictModel):
    """Bind a number to your account with a code sent to it (``purpose: "bind"``)."""

    phone: PhoneNumber
    code: SmsCode
