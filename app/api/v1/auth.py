"""``/auth``: register, sign in, refresh, sign out.

The rules (rotation, reuse detection, the login limiter) are
:mod:`app.services.accounts`'. Token responses carry ``Cache-Control:
no-store`` (RFC 6749).
"""

from __future__ import annotations

from flask import request

from app.core.application import APIBlueprint, current_settings
from app.extensions.database import get_database
from app.extensions.rate_limit import get_login_limiter
from app.schemas.users import RefreshRequest, Register, TokenForm, TokenPair, TokenRequest, UserOut
from app.services import accounts

bp = APIBlueprint("auth", __name__, url_prefix="/auth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BAD_REFRESH = "The refresh token is not valid, expired, or revoked"


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
