"""Opaque refresh tokens that rotate on every use.

A login starts a *family*. Each refresh marks the presented token used and
issues a new one in the same family. A token presented after it was used has
leaked (or been replayed), so its whole family is revoked. Only a SHA-256 of
each token is stored.

Each function is a unit of work: it commits (or rolls back) the session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session

from app.auth.access_tokens import InvalidToken
from app.models import RefreshToken


class TokenReused(InvalidToken):
    """A rotated refresh token was presented again; its family is now revoked."""


@dataclass(frozen=True, slots=True)
class Rotation:
    user_id: int
    refresh_token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session,
    user_id: int,
    ttl: timedelta,
    *,
    family_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """A new refresh token for ``user_id``: in a new family, or in ``family_id``."""
    token = secrets.token_urlsafe(32)
    moment = now or datetime.now(UTC)
    session.add(
        RefreshToken(
            user_id=user_id,
            token_hash=token_hash(token),
            family_id=family_id or secrets.token_hex(16),
            created_at=moment,
            expires_at=moment + ttl,
        )
    )
    session.commit()
    return token


def rotate(
    session: Session, token: str, ttl: timedelta, *, now: datetime | None = None
) -> Rotation:
    """Spend ``token`` and return its successor. Raises :class:`InvalidToken` for
    an unknown, expired or revoked token, and :class:`TokenReused` (after
    revoking the family) for one that was already spent."""
    moment = now or datetime.now(UTC)
    record = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)).with_for_update()
    ).one_or_none()
    if record is None or record.revoked_at is not None or record.expires_at <= moment:
        session.rollback()
        raise InvalidToken("The refresh token is not valid")
    if record.used_at is not None:
        _revoke_family(session, record.family_id, moment)
        session.commit()
        raise TokenReused("The refresh token was already used; every token of its login is revoked")
    record.used_at = moment
    user_id, family_id = record.user_id, record.family_id
    session.flush()
    return Rotation(user_id, issue(session, user_id, ttl, family_id=family_id, now=moment))


def revoke(session: Session, token: str, *, now: datetime | None = None) -> int:
    """Log out: revoke ``token``'s family. Returns the user id; raises
    :class:`InvalidToken` for a token that is unknown, expired or revoked."""
    moment = now or datetime.now(UTC)
    record = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash(token))
    ).one_or_none()
    if record is None or record.revoked_at is not None or record.expires_at <= moment:
        session.rollback()
        raise InvalidToken("The refresh token is not valid")
    _revoke_family(session, record.family_id, moment)
    session.commit()
    return record.user_id


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete tokens that expired, or were revoked, before ``now``; return how many."""
    moment = now or datetime.now(UTC)
    result = cast(
        "CursorResult[Any]",
        session.execute(
            delete(RefreshToken).where(
                or_(RefreshToken.expires_at <= moment, RefreshToken.revoked_at <= moment)
            )
        ),
    )
    session.commit()
    return result.rowcount


def _revoke_family(session: Session, family_id: str, moment: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=moment)
    )
