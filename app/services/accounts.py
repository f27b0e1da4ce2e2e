"""Accounts: registration, sign-in, token rotation and sign-out, your own
account, and the list of accounts.

Sign-in answers a short-lived JWT access token and an opaque refresh token that
rotates on every use (:mod:`app.auth.refresh_tokens`). Failed sign-ins are
counted per account and per client address by the login limiter, which refuses
past its limit. A wrong password and an unknown email cost the same Argon2
verification, so timing tells no one which emails have accounts.

Each function is a unit of work: it commits, or leaves nothing changed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import refresh_tokens
from app.auth.access_tokens import InvalidToken, issue_access_token
from app.auth.passwords import hash_password, password_hash, verify_password
from app.core.domain_errors import AlreadyExistsError, NotAuthenticatedError, NotPermittedError
from app.core.exceptions import ValidationFailed
from app.core.settings import Settings
from app.extensions.rate_limit import LoginLimiter
from app.models import RefreshToken, User
from app.schemas.base import PageQuery
from app.schemas.users import (
    EMAIL_PATTERN,
    MeOut,
    Register,
    TokenPair,
    UserOut,
    UserPage,
    UserUpdate,
)
from app.services.pagination import page_of

EMAIL_TAKEN = "An account with this email already exists"
_ACCOUNT_EMAIL = re.compile(EMAIL_PATTERN)
BAD_CREDENTIALS = "The email or the password is wrong"


def to_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        name=user.name,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )


def me_out(user: User) -> MeOut:
    """``user`` as its owner sees it: with its phone."""
    return MeOut(**to_out(user).model_dump(), phone=user.phone)


def hasher(settings: Settings) -> PasswordHash:
    return password_hash(settings.password_time_cost, settings.password_memory_cost)


def register(session: Session, fields: Register, *, settings: Settings) -> UserOut:
    """Create an account. The email is stored in lower case and must be free."""
    email = fields.email.lower()
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise AlreadyExistsError(EMAIL_TAKEN)
    user = User(
        email=email,
        name=fields.name,
        password_hash=hash_password(fields.password, hasher(settings)),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:  # registered by a concurrent request just now
        session.rollback()
        raise AlreadyExistsError(EMAIL_TAKEN) from None
    return to_out(user)


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    address: str,
    limiter: LoginLimiter,
    settings: Settings,
) -> TokenPair:
    """Trade an email and password for a token pair; count a failure against
    the account and the client ``address``.

    An account's email is what :data:`~app.schemas.users.EMAIL_PATTERN`
    allows, lower-cased: ASCII with no spaces, which every database compares
    exactly. A sign-in name outside it (the form's ``username`` is free text)
    names no account and is never looked up, because MySQL's collations would
    match ``victim@example.com`` to it with a trailing space or an accent
    added, and each spelling would get a throttle counter of its own."""
    email = email.lower()
    limiter.check(email, address)
    user = (
        session.scalars(select(User).where(User.email == email)).one_or_none()
        if _ACCOUNT_EMAIL.fullmatch(email)
        else None
    )
    # An unknown email costs a full verification too, so timing reveals nothing.
    valid, new_hash = verify_password(
        password, user.password_hash if user else None, hasher(settings)
    )
    if user is None or not valid:
        limiter.failed(email, address)
        raise NotAuthenticatedError(BAD_CREDENTIALS)
    if new_hash is not None:  # the Argon2 parameters changed since this hash was made
        user.password_hash = new_hash
    return issue_pair(session, user.id, settings)


def issue_pair(session: Session, user_id: int, settings: Settings) -> TokenPair:
    """A new login of ``user_id``: a token pair, its refresh token stored."""
    refresh_token = refresh_tokens.issue(
        session, user_id, timedelta(seconds=settings.refresh_token_ttl)
    )
    return _pair(user_id, refresh_token, settings)


def rotate(session: Session, refresh_token: str, *, settings: Settings) -> TokenPair:
    """Trade a refresh token for a new pair; the one sent stops working, and
    sending it again revokes every token of that login."""
    try:
        rotation = refresh_tokens.rotate(
            session, refresh_token, timedelta(seconds=settings.refresh_token_ttl)
        )
    except InvalidToken as exc:
        raise NotAuthenticatedError(str(exc)) from None
    return _pair(rotation.user_id, rotation.refresh_token, settings)


def revoke(session: Session, refresh_token: str) -> None:
    """Sign out: revoke this refresh token and every token of its login."""
    try:
        refresh_tokens.revoke(session, refresh_token)
    except InvalidToken as exc:
        raise NotAuthenticatedError(str(exc)) from None


def update_account(
    session: Session, user: User, changes: UserUpdate, *, settings: Settings
) -> MeOut:
    """Change ``user``'s name, or password. A new password needs the current
    one, and signs out every session of the account (its refresh tokens are
    revoked)."""
    if changes.password is not None:  # None: not sent (an explicit null is refused)
        change_password(
            session, user, current=changes.current_password, new=changes.password, settings=settings
        )
    if changes.name is not None:
        user.name = changes.name
    session.commit()
    return me_out(user)


def change_password(
    session: Session, user: User, *, current: str | None, new: str, settings: Settings
) -> None:
    """Set a new password (in the session: the caller commits) and revoke every
    refresh token of the account."""
    if current is None:
        raise ValidationFailed(
            details=[
                {
                    "loc": ["body", "current_password"],
                    "msg": "Field required to change the password",
                    "type": "missing",
                }
            ]
        )
    hashing = hasher(settings)
    if not verify_password(current, user.password_hash, hashing)[0]:
        raise NotPermittedError("current_password is not your current password")
    user.password_hash = hash_password(new, hashing)
    revoke_all(session, user.id)


def revoke_all(session: Session, user_id: int) -> None:
    """Revoke every refresh token of the account (in the session: the caller commits)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def list_page(session: Session, query: PageQuery) -> UserPage:
    """Every account, oldest first."""
    rows, total = page_of(session, User, query, order_by=[User.id])
    return UserPage.of([to_out(row) for row in rows], query, total)


def _pair(user_id: int, refresh_token: str, settings: Settings) -> TokenPair:
    ttl = timedelta(seconds=settings.access_token_ttl)
    access_token = issue_access_token(user_id, settings.secret_key.get_secret_value(), ttl)
    return TokenPair(
        access_token=access_token,
        expires_in=settings.access_token_ttl,
        refresh_token=refresh_token,
    )
