"""Short-lived access tokens: JWTs signed with the app's secret.

Claims: ``sub`` (the user id, as a string, as RFC 7519 wants), ``exp``, ``iat``,
``jti`` (a random id) and ``typ`` = ``"access"``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=10)


class InvalidToken(Exception):  # noqa: N818 - reads as a state
    """The token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    token_id: str
    issued_at: datetime
    expires_at: datetime


def issue_access_token(
    user_id: int, secret: str, ttl: timedelta, *, now: datetime | None = None
) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": secrets.token_hex(16),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, secret: str) -> AccessClaims:
    """The token's claims, or :class:`InvalidToken` saying why not."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=LEEWAY,
            options={"require": ["sub", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("The access token is not valid") from None
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
        raise InvalidToken("The access token is not valid")
    return AccessClaims(
        user_id=int(claims["sub"]),
        token_id=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
