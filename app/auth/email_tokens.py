"""The tokens in the links that email sends: verifying an address, resetting a password.

A token is itsdangerous' URL-safe, timed signature (HMAC-SHA256, keyed by
``SECRET_KEY``, a salt per purpose) over ``[user_id, fingerprint]``. The
fingerprint is an HMAC of the state that using the token changes: the password
hash for a reset, the address and whether it is verified for a verification.
Once the token is used that state has changed, so the same token no longer
matches: tokens are single use with nothing stored. A password changed any
other way kills a reset token too. The fingerprint is keyed, so a token's
readable payload tells nothing about the password hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

Purpose = Literal["verify-email", "reset-password"]


class TokenExpired(Exception):  # noqa: N818 - reads as a state
    """The token was good, and is older than its purpose allows (410)."""


class TokenInvalid(Exception):  # noqa: N818 - reads as a state
    """The token is malformed, forged, for another purpose, or used (400)."""


def _serializer(secret: str, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret, salt=f"email-token:{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
    )


def _fingerprint(secret: str, purpose: Purpose, state: str) -> str:
    """An HMAC of the purpose and the state, under a key of its own (derived
    from the secret), so it is never the signature's key."""
    key = hmac.new(secret.encode(), b"email-token-fingerprint", hashlib.sha256).digest()
    return hmac.new(key, f"{purpose}\0{state}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: str, purpose: Purpose, *, user_id: int, state: str) -> str:
    """A token for ``purpose`` that holds while the user's ``state`` is unchanged."""
    return _serializer(secret, purpose).dumps([user_id, _fingerprint(secret, purpose, state)])


def read_token(secret: str, purpose: Purpose, token: str, *, max_age: int) -> tuple[int, str]:
    """The user id and fingerprint in a good token no older than ``max_age``
    seconds; check the fingerprint with :func:`still_holds`."""
    try:
        payload: object = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenExpired from None
    except BadSignature:
        raise TokenInvalid from None
    match payload:
        case [int() as user_id, str() as fingerprint]:
            return user_id, fingerprint
        case _:
            raise TokenInvalid


def still_holds(secret: str, purpose: Purpose, fingerprint: str, state: str) -> bool:
    """Whether the state a token was made for is the user's state now.

    Single use needs the caller's write to be conditional too: two requests
    with one token both see it hold, so the one that changes the state must
    do so only where it is still the state the token was made for (e.g. an
    ``UPDATE ... WHERE password_hash = <the old one>``)."""
    return hmac.compare_digest(fingerprint, _fingerprint(secret, purpose, state))
