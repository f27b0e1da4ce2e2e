"""``/auth``: register, sign in, refresh, sign out; verify an email address,
reset a forgotten password.

The rules (rotation, reuse detection, the login limiter) are
:mod:`app.services.accounts`', and the email flows'
:mod:`app.services.account_email`'. Token responses carry ``Cache-Control:
no-store`` (RFC 6749).
"""

from __future__ import annotations

from flask import request

from app.auth.guards import require_user, signed_in
from app.core.application import APIBlueprint, current_settings
from app.extensions.database import get_database
from app.extensions.rate_limit import get_login_limiter, get_throttle
from app.extensions.sms_codes import get_sms_codes
from app.schemas.users import (
    EmailToken,
    ForgotPassword,
    RefreshRequest,
    Register,
    ResetPassword,
    SmsCodeRequest,
    SmsCodeSent,
    SmsSignIn,
    TokenForm,
    TokenPair,
    TokenRequest,
    UserOut,
)
from app.services import account_email, accounts, phone_auth

bp = APIBlueprint("auth", __name__, url_prefix="/auth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BAD_REFRESH = "The refresh token is not valid, expired, or revoked"
_EMAIL_LIMITED = "Too many emails asked for this address, or from this client; see Retry-After"
_NO_EMAIL = "Email is turned off on this server, or cannot be queued now (retry shortly)"
_RETRY_AFTER = {429: {"Retry-After": "Seconds to wait"}}


@bp.operation(
    "POST",
    "/register",
    "register",
    body=Register,
    responses={201: UserOut, 409: "An account with this email already exists"},
)
def register(body: Register) -> tuple[UserOut, int]:
    """Create an account.

    The email is stored in lower case; it must not belong to another account.
    """
    return accounts.register(get_database().session(), body, settings=current_settings()), 201


@bp.operation(
    "POST",
    "/token",
    "createToken",
    body=(TokenRequest, TokenForm),
    form=True,
    responses={
        200: TokenPair,
        401: "The email or the password is wrong",
        429: "Too many failed sign-ins for this account or address; see Retry-After",
    },
    headers={200: {"Cache-Control": "no-store"}, 429: {"Retry-After": "Seconds to wait"}},
)
def create_token(body: TokenRequest | TokenForm) -> tuple[TokenPair, dict[str, str]]:
    """Sign in: trade an email and password for a token pair.

    Send `{email, password}`, or the OAuth 2 password grant `{username,
    password}` (`username` is the email), as JSON or as
    `application/x-www-form-urlencoded`. The body is whichever shape declares
    every field sent.
    """
    pair = accounts.sign_in(
        get_database().session(),
        email=body.email if isinstance(body, TokenRequest) else body.username,
        password=body.password,
        address=request.remote_addr or "unknown",
        limiter=get_login_limiter(),
        settings=current_settings(),
    )
    return pair, NO_STORE


@bp.operation(
    "POST",
    "/refresh",
    "refreshToken",
    body=RefreshRequest,
    responses={200: TokenPair, 401: _BAD_REFRESH + ", or already used (its login is revoked)"},
    headers={200: {"Cache-Control": "no-store"}},
)
def refresh(body: RefreshRequest) -> tuple[TokenPair, dict[str, str]]:
    """Trade a refresh token for a new pair; the one sent stops working.

    Sending a refresh token a second time revokes every token of that login.
    """
    pair = accounts.rotate(
        get_database().session(), body.refresh_token, settings=current_settings()
    )
    return pair, NO_STORE


@bp.operation(
    "POST",
    "/logout",
    "logout",
    body=RefreshRequest,
    responses={204: "Signed out: the refresh token and its login are revoked", 401: _BAD_REFRESH},
)
def logout(body: RefreshRequest) -> None:
    """Sign out: revoke this refresh token and every token of its login."""
    accounts.revoke(get_database().session(), body.refresh_token)


@bp.operation(
    "POST",
    "/email/verification",
    "requestEmailVerification",
    guard=signed_in,
    responses={
        202: "An email with a verification link is on its way to your address",
        409: account_email.ALREADY_VERIFIED,
        429: _EMAIL_LIMITED,
        503: _NO_EMAIL,
    },
    headers=_RETRY_AFTER,
)
def request_email_verification() -> tuple[None, int]:
    """Send a link that verifies your address to your address.

    The link opens `EMAIL_LINK_BASE_URL/verify-email?token=...`; that page
    posts the token to `/auth/email/verify`.
    """
    account_email.request_verification(
        require_user(), settings=current_settings(), throttle=get_throttle("verify-email")
    )
    return None, 202


@bp.operation(
    "POST",
    "/email/verify",
    "verifyEmail",
    body=EmailToken,
    responses={
        200: UserOut,
        400: "The token is not valid, or was used already",
        410: "The token has expired: ask for a new link",
    },
)
def verify_email(body: EmailToken) -> UserOut:
    """Verify an address with the token from its link; the token then stops working."""
    return account_email.verify_email(
        get_database().session(), body.token, settings=current_settings()
    )


@bp.operation(
    "POST",
    "/password/forgot",
    "forgotPassword",
    body=ForgotPassword,
    responses={
        202: "If an account has this address, a reset link is on its way to it",
        429: _EMAIL_LIMITED,
        503: _NO_EMAIL,
    },
    headers=_RETRY_AFTER,
)
def forgot_password(body: ForgotPassword) -> tuple[None, int]:
    """Ask for a link that resets the password of the account with this email.

    The answer is the same, in the same time, whether or not an account has
    the address. The link opens `EMAIL_LINK_BASE_URL/reset-password?token=...`;
    that page posts the token and a new password to `/auth/password/reset`.
    """
    account_email.forgot_password(
        body.email,
        address=request.remote_addr or "unknown",
        settings=current_settings(),
        throttle=get_throttle("reset-password"),
    )
    return None, 202


@bp.operation(
    "POST",
    "/password/reset",
    "resetPassword",
    body=ResetPassword,
    responses={
        204: "The password is changed, and every refresh token of the account revoked",
        400: "The token is not valid, or was used already (the password changed since)",
        410: "The token has expired: ask for a new link",
    },
)
def reset_password(body: ResetPassword) -> None:
    """Choose a new password with the token from a reset link.

    Every refresh token of the account is revoked, and the address counts as
    verified: the link reached it.
    """
    account_email.reset_password(
        get_database().session(), body.token, body.password, settings=current_settings()
    )


@bp.operation(
    "POST",
    "/sms/code",
    "requestSmsCode",
    body=SmsCodeRequest,
    responses={
        202: SmsCodeSent,
        429: "Too many codes for this number, or from this client; see Retry-After",
        503: "SMS is turned off on this server, or cannot be queued now (retry shortly)",
    },
    headers=_RETRY_AFTER,
)
def request_sms_code(body: SmsCodeRequest) -> tuple[SmsCodeSent, int]:
    """Send a 6-digit code, valid 5 minutes, to a phone number.

    `purpose` is `login` (to sign in with `/auth/sms/token`) or `bind` (to
    bind the number with `PUT /users/me/phone`). The answer is the same
    whether or not an account has bound the number; for `login` to a number
    none has, nothing is sent.
    """
    sent = phone_auth.request_code(
        body.phone,
        body.purpose,
        address=request.remote_addr or "unknown",
        settings=current_settings(),
        throttle=get_throttle("sms-code"),
    )
    return sent, 202


@bp.operation(
    "POST",
    "/sms/token",
    "createSmsToken",
    body=SmsSignIn,
    responses={
        200: TokenPair,
        401: phone_auth.BAD_CODE,
        429: "Too many wrong codes for this number: ask for a new one; see Retry-After",
    },
    headers={200: {"Cache-Control": "no-store"}, 429: {"Retry-After": "Seconds to wait"}},
)
def create_sms_token(body: SmsSignIn) -> tuple[TokenPair, dict[str, str]]:
    """Sign in with a code sent to a number bound to an account: the same token pair as `/auth/token`.

    A code works once; the fifth wrong one kills it.
    """
    pair = phone_auth.sign_in(
        get_database().session(),
        body.phone,
        body.code,
        settings=current_settings(),
        codes=get_sms_codes(),
    )
    return pair, NO_STORE
