"""``/auth``: register, sign in, refresh, sign out.

Sign-in answers a short-lived JWT access token and an opaque refresh token that
rotates on every use (``app.auth.refresh_tokens``). Failed sign-ins are counted
per account and per client address; past the limit they answer 429 with
``Retry-After``. Token responses carry ``Cache-Control: no-store`` (RFC 6749).
"""

from __future__ import annotations

from datetime import timedelta

from flask import request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.api.v1.schemas import RefreshRequest, Register, TokenForm, TokenPair, TokenRequest, User
from app.auth import refresh_tokens
from app.auth.access_tokens import InvalidToken, issue_access_token
from app.auth.passwords import hash_password, password_hash, verify_password
from app.core.application import APIBlueprint, current_settings
from app.core.exceptions import Conflict, Unauthorized
from app.extensions.database import get_database
from app.extensions.rate_limit import get_login_limiter
from app.models import User as UserRow

bp = APIBlueprint("auth", __name__, url_prefix="/auth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BAD_REFRESH = "The refresh token is not valid, expired, or revoked"


@bp.operation(
    "POST",
    "/register",
    "register",
    body=Register,
    responses={201: User, 409: "An account with this email already exists"},
)
def register(body: Register) -> tuple[User, int]:
    """Create an account.

    The email is stored in lower case; it must not belong to another account.
    """
    settings = current_settings()
    session = get_database().session()
    email = body.email.lower()
    if session.scalars(select(UserRow.id).where(UserRow.email == email)).first() is not None:
        raise Conflict("An account with this email already exists")
    user = UserRow(
        email=email,
        name=body.name,
        password_hash=hash_password(
            body.password,
            password_hash(settings.password_time_cost, settings.password_memory_cost),
        ),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:  # registered by a concurrent request just now
        session.rollback()
        raise Conflict("An account with this email already exists") from None
    return user_out(user), 201


@bp.operation(
    "POST",
    "/token",
    "createToken",
    body=TokenRequest,
    form=TokenForm,
    responses={
        200: TokenPair,
        401: "The email or the password is wrong",
        429: "Too many failed sign-ins for this account or address; see Retry-After",
    },
    headers={200: {"Cache-Control": "no-store"}, 429: {"Retry-After": "Seconds to wait"}},
)
def create_token(body: TokenRequest | TokenForm) -> tuple[TokenPair, dict[str, str]]:
    """Sign in: trade an email and password for a token pair.

    Send JSON ``{email, password}``, or the OAuth 2 password-grant form
    (``username``, ``password``) as ``application/x-www-form-urlencoded``.
    """
    email = (body.email if isinstance(body, TokenRequest) else body.username).lower()
    address = request.remote_addr or "unknown"
    limiter = get_login_limiter()
    limiter.check(email, address)

    settings = current_settings()
    session = get_database().session()
    user = session.scalars(select(UserRow).where(UserRow.email == email)).one_or_none()
    hasher = password_hash(settings.password_time_cost, settings.password_memory_cost)
    # An unknown email costs a full verification too, so timing reveals nothing.
    valid, new_hash = verify_password(body.password, user.password_hash if user else None, hasher)
    if user is None or not valid:
        limiter.failed(email, address)
        raise Unauthorized("The email or the password is wrong")
    if new_hash is not None:  # the Argon2 parameters changed since this hash was made
        user.password_hash = new_hash
    refresh_token = refresh_tokens.issue(
        session, user.id, timedelta(seconds=settings.refresh_token_ttl)
    )
    return _pair(user.id, refresh_token), NO_STORE


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
    settings = current_settings()
    try:
        rotation = refresh_tokens.rotate(
            get_database().session(),
            body.refresh_token,
            timedelta(seconds=settings.refresh_token_ttl),
        )
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None
    return _pair(rotation.user_id, rotation.refresh_token), NO_STORE


@bp.operation(
    "POST",
    "/logout",
    "logout",
    body=RefreshRequest,
    responses={204: "Signed out: the refresh token and its login are revoked", 401: _BAD_REFRESH},
)
def logout(body: RefreshRequest) -> None:
    """Sign out: revoke this refresh token and every token of its login."""
    try:
        refresh_tokens.revoke(get_database().session(), body.refresh_token)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


def _pair(user_id: int, refresh_token: str) -> TokenPair:
    settings = current_settings()
    ttl = timedelta(seconds=settings.access_token_ttl)
    access_token = issue_access_token(user_id, settings.secret_key.get_secret_value(), ttl)
    return TokenPair(
        access_token=access_token,
        expires_in=settings.access_token_ttl,
        refresh_token=refresh_token,
    )


def user_out(user: UserRow) -> User:
    return User(
        id=user.id,
        email=user.email,
        name=user.name,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )
