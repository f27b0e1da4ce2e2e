"""The tokens in email links: signed, expiring, single use by what their use changes."""

from __future__ import annotations

import hashlib
import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from app.auth.email_tokens import (
    TokenExpired,
    TokenInvalid,
    make_token,
    read_token,
    still_holds,
)

SECRET = "s" * 40
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def test_a_token_names_its_user_while_the_state_holds() -> None:
    token = make_token(SECRET, "reset-password", user_id=7, state=HASH)
    user_id, fingerprint = read_token(SECRET, "reset-password", token, max_age=3600)
    assert user_id == 7
    assert still_holds(SECRET, "reset-password", fingerprint, HASH)
    # Used: the password changed, so the same token no longer holds.
    assert not still_holds(SECRET, "reset-password", fingerprint, HASH + "x")
    # The fingerprint is keyed, and bound to its purpose: not a plain digest of
    # the hash that anyone could compute, not valid under another secret.
    assert fingerprint != hashlib.sha256(HASH.encode()).hexdigest()[:32]
    assert not still_holds("t" * 40, "reset-password", fingerprint, HASH)
    assert not still_holds(SECRET, "verify-email", fingerprint, HASH)


def test_a_token_is_for_one_purpose_and_one_secret() -> None:
    token = make_token(SECRET, "verify-email", user_id=7, state="a@example.org")
    with pytest.raises(TokenInvalid):
        read_token(SECRET, "reset-password", token, max_age=3600)
    with pytest.raises(TokenInvalid):
        read_token("t" * 40, "verify-email", token, max_age=3600)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "ImZvbyI.aaaa.bbbb", "[7]", "x" * 500, "é"])
def test_a_malformed_token_is_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid):
        read_token(SECRET, "verify-email", token, max_age=3600)


def test_a_tampered_token_is_invalid() -> None:
    token = make_token(SECRET, "verify-email", user_id=7, state="a@example.org")
    payload, _, rest = token.partition(".")
    forged = make_token("t" * 40, "verify-email", user_id=8, state="a@example.org")
    with pytest.raises(TokenInvalid):
        read_token(SECRET, "verify-email", forged.partition(".")[0] + "." + rest, max_age=3600)
    with pytest.raises(TokenInvalid):
        read_token(SECRET, "verify-email", payload + "." + rest[::-1], max_age=3600)


def test_a_signed_payload_of_another_shape_is_invalid() -> None:
    serializer = URLSafeTimedSerializer(
        SECRET,
        salt="email-token:verify-email",
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    with pytest.raises(TokenInvalid):
        read_token(SECRET, "verify-email", serializer.dumps({"user": 7}), max_age=3600)


def test_an_old_token_is_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    made_at = int(time.time()) - 3601
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: made_at)
    token = make_token(SECRET, "reset-password", user_id=7, state=HASH)
    monkeypatch.undo()
    with pytest.raises(TokenExpired):
        read_token(SECRET, "reset-password", token, max_age=3600)
    assert read_token(SECRET, "reset-password", token, max_age=3700)[0] == 7
