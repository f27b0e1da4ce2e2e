"""Who is calling: bearer access tokens, read once per request.

An operation names its guard (``guard=signed_in``); the guard runs before the
body is read, so an anonymous caller gets 401 and not a validation error.

========================  ==========================================================
guard                     lets through
========================  ==========================================================
``optional_auth``         anyone; a token, when sent, must be valid (else 401)
``signed_in``             a valid token of an account that still exists (else 401)
``admin``                 the same, and ``is_admin`` (else 403)
========================  ==========================================================

Views read the caller with :func:`current_user_id` (no query) or
:func:`current_user` (one query, made once per request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import g, request

from app.auth.access_tokens import InvalidToken, read_access_token
from app.core.application import current_settings
from app.core.exceptions import Forbidden, Unauthorized
from app.extensions.database import get_database
from app.models import User

_BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class _Guard:
    check: Callable[[], object]
    security: list[dict[str, list[str]]]
    responses: Mapping[int, str]

    def __call__(self) -> None:
        self.check()


def current_user_id() -> int | None:
    """The caller's user id from a valid access token; ``None`` for anonymous.
    A token that is sent and not valid answers 401."""
    if "user_id" in g:
        return g.user_id  # type: ignore[no-any-return]
    header = request.headers.get("Authorization")
    user_id: int | None = None
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != _BEARER or not token:
            raise Unauthorized("Send the access token as 'Authorization: Bearer <token>'")
        secret = current_settings().secret_key.get_secret_value()
        try:
            user_id = read_access_token(token, secret).user_id
        except InvalidToken as exc:
            raise Unauthorized(
                str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
    g.user_id = user_id
    return user_id


def current_user() -> User | None:
    """The calling account, loaded once per request; ``None`` for anonymous."""
    if "user" in g:
        return g.user  # type: ignore[no-any-return]
    user_id = current_user_id()
    user = None
    if user_id is not None:
        user = get_database().session.get(User, user_id)
        if user is None:
            raise Unauthorized(
                "The account of this access token no longer exists",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
    g.user = user
    return user


def require_user() -> User:
    """The calling account; 401 for anonymous callers."""
    user = current_user()
    if user is None:
        raise Unauthorized()
    return user


def _require_admin() -> None:
    if not require_user().is_admin:
        raise Forbidden("Only an admin may do this")


_TOKEN_PROBLEM = "The access token is missing, not valid, or expired"  # noqa: S105

#: Anyone. A token, when sent, must be valid.
optional_auth = _Guard(
    check=current_user_id,
    security=[{}, {"bearerAuth": []}],
    responses={401: "The access token sent is not valid, or expired"},
)
#: A signed-in account.
signed_in = _Guard(
    check=require_user,
    security=[{"bearerAuth": []}],
    responses={401: _TOKEN_PROBLEM},
)
#: A signed-in admin.
admin = _Guard(
    check=_require_admin,
    security=[{"bearerAuth": []}],
    responses={401: _TOKEN_PROBLEM, 403: "The account is not an admin"},
)
