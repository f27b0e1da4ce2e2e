"""An account's email flows: verifying its address, and resetting a forgotten
password, each through a link sent to the address (``docs/accounts.md``).

A request asks for the email and returns: a task builds and sends it
(:mod:`app.tasks.messages`), once. ``forgot`` sends that task whether or not
the address has an account, and the task looks the account up; so the answer,
its time included, is the same either way. The links' tokens are
:mod:`app.auth.email_tokens`': signed, timed, and single use because they
hold a fingerprint of the state their use changes.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Update, select, update
from sqlalchemy.orm import Session

from app.auth import email_tokens
from app.auth.passwords import hash_password
from app.core.domain_errors import LinkExpiredError, LinkInvalidError, StateConflictError
from app.core.exceptions import ServiceUnavailable
from app.core.settings import Settings
from app.extensions.background import dispatch
from app.extensions.messaging import Email, render_email
from app.extensions.rate_limit import Throttle
from app.models import User
from app.schemas.users import UserOut
from app.services.accounts import hasher, revoke_all, to_out

VERIFY: email_tokens.Purpose = "verify-email"
RESET: email_tokens.Purpose = "reset-password"
#: The tasks that build and send each email, by name (tasks sit above services).
VERIFY_TASK = "app.tasks.messages.send_verification_email"
RESET_TASK = "app.tasks.messages.send_password_reset"

ALREADY_VERIFIED = "Your email address is verified already"
USED = "The link is not valid, or was used already"
EXPIRED = "The link has expired; ask for a new one"
DISABLED = "Email is turned off on this server"


# -- asking ---------------------------------------------------------------------


def request_verification(user: User, *, settings: Settings, throttle: Throttle) -> None:
    """Send ``user`` a link that verifies their address; refused once it is
    verified, and past the address' limit of emails."""
    _require_email(settings)
    if user.email_verified:
        raise StateConflictError(ALREADY_VERIFIED)
    throttle.take(account=user.email)
    dispatch(VERIFY_TASK, user_id=user.id)


def forgot_password(email: str, *, address: str, settings: Settings, throttle: Throttle) -> None:
    """Send a reset link to ``email`` if an account has it; the same work, and
    the same answer, if none has. Counted against the address asked for
    (whether or not it has an account) and the client's ``address``."""
    _require_email(settings)
    email = email.lower()
    throttle.take(account=email, address=address)
    dispatch(RESET_TASK, email=email)


def _require_email(settings: Settings) -> None:
    if not settings.resolved_email_enabled:
        raise ServiceUnavailable(DISABLED)


# -- the emails (built by the tasks) ---------------------------------------------


def verification_email(session: Session, user_id: int, *, settings: Settings) -> Email | None:
    """The email with ``user_id``'s verification link; None if the account is
    gone or verified meanwhile."""
    user = session.get(User, user_id)
    if user is None or user.email_verified:
        return None
    token = email_tokens.make_token(_secret(settings), VERIFY, user_id=user.id, state=_verify(user))
    return render_email(
        "verify_email",
        to=user.email,
        subject="Confirm your email address",
        name=user.name,
        email=user.email,
        link=f"{settings.email_link_base_url}/verify-email?token={token}",
        valid_for=duration(settings.email_verify_ttl),
    )


def reset_email(session: Session, email: str, *, settings: Settings) -> Email | None:
    """The email with a reset link for the account of ``email``; None if no
    account has it."""
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is None:
        return None
    token = email_tokens.make_token(
        _secret(settings), RESET, user_id=user.id, state=user.password_hash
    )
    return render_email(
        "reset_password",
        to=user.email,
        subject="Reset your password",
        name=user.name,
        email=user.email,
        link=f"{settings.email_link_base_url}/reset-password?token={token}",
        valid_for=duration(settings.password_reset_ttl),
    )


def duration(seconds: int) -> str:
    """``172800`` → ``"2 days"``, ``3600`` → ``"1 hour"``, ``600`` → ``"10 minutes"``."""
    for unit, size in (("day", 86_400), ("hour", 3600)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# -- using a link ----------------------------------------------------------------


def verify_email(session: Session, token: str, *, settings: Settings) -> UserOut:
    """Mark the address of the token's account verified; the token then stops
    working."""
    user_id, fingerprint = _read(settings, VERIFY, token, max_age=settings.email_verify_ttl)
    user = session.get(User, user_id)
    if user is None or not email_tokens.still_holds(
        _secret(settings), VERIFY, fingerprint, _verify(user)
    ):
        raise LinkInvalidError(USED)
    # Conditional, so of two requests with one token only one verifies.
    done = _execute(
        session,
        update(User)
        .where(User.id == user.id, User.email == user.email, User.email_verified.is_(False))
        .values(email_verified=True),
    )
    if done != 1:
        session.rollback()
        raise LinkInvalidError(USED)
    session.commit()
    return to_out(user)


def reset_password(session: Session, token: str, password: str, *, settings: Settings) -> None:
    """Set the token's account's password and revoke every refresh token of
    it (its access tokens live out their short TTL). The link came to the address, so the address is
    verified too. The token dies with the old password hash."""
    user_id, fingerprint = _read(settings, RESET, token, max_age=settings.password_reset_ttl)
    user = session.get(User, user_id)
    # Hashed before the check, so a used token costs what a good one does.
    new_hash = hash_password(password, hasher(settings))
    if user is None or not email_tokens.still_holds(
        _secret(settings), RESET, fingerprint, user.password_hash
    ):
        raise LinkInvalidError(USED)
    done = _execute(
        session,
        update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        .values(password_hash=new_hash, email_verified=True),
    )
    if done != 1:
        session.rollback()
        raise LinkInvalidError(USED)
    revoke_all(session, user.id)
    session.commit()


def _read(
    settings: Settings, purpose: email_tokens.Purpose, token: str, *, max_age: int
) -> tuple[int, str]:
    try:
        return email_tokens.read_token(_secret(settings), purpose, token, max_age=max_age)
    except email_tokens.TokenExpired:
        raise LinkExpiredError(EXPIRED) from None
    except email_tokens.TokenInvalid:
        raise LinkInvalidError(USED) from None


def _execute(session: Session, statement: Update) -> int:
    """Run an UPDATE; the rows it matched."""
    result = cast("CursorResult[Any]", session.execute(statement))
    return result.rowcount


def _verify(user: User) -> str:
    """The state a verification link holds for: the address, unverified."""
    return f"{user.email}\0{user.email_verified}"


def _secret(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()
