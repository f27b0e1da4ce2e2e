"""Passwords, access tokens and rotating refresh tokens, on both databases."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import refresh_tokens
from app.auth.access_tokens import InvalidToken, issue_access_token, read_access_token
from app.auth.passwords import hash_password, password_hash, verify_password
from app.models import RefreshToken, User

SECRET = "s" * 64
FAST = password_hash(time_cost=1, memory_cost=8192)
DAY = timedelta(days=1)


def test_a_password_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password("correct horse", FAST)
    assert stored.startswith("$argon2id$")
    assert verify_password("correct horse", stored, FAST) == (True, None)
    assert verify_password("wrong horse", stored, FAST) == (False, None)


def test_a_hash_made_with_old_parameters_is_upgraded_on_login() -> None:
    old = hash_password("pw", password_hash(time_cost=1, memory_cost=8192))
    current = password_hash(time_cost=2, memory_cost=8192)
    valid, upgraded = verify_password("pw", old, current)
    assert valid
    assert upgraded is not None
    assert "t=2" in upgraded
    assert verify_password("pw", upgraded, current) == (True, None)


def test_an_unknown_account_costs_a_full_verification() -> None:
    hasher = password_hash(time_cost=3, memory_cost=65536)
    stored = hash_password("pw", hasher)
    verify_password("warm-up", None, hasher)

    def timed(stored_hash: str | None) -> float:
        started = time.perf_counter()
        for _ in range(5):
            verify_password("guess", stored_hash, hasher)
        return time.perf_counter() - started

    unknown, wrong = timed(None), timed(stored)
    assert verify_password("pw", None, hasher) == (False, None)
    # Same Argon2 work either way: within a factor of 2, where skipping it would be ~1000x.
    assert 0.5 < unknown / wrong < 2.0


def test_access_token_carries_sub_exp_iat_and_jti() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token = issue_access_token(42, SECRET, timedelta(minutes=15), now=now)
    claims = read_access_token(token, SECRET)
    assert claims.user_id == 42
    assert claims.issued_at == now
    assert claims.expires_at == now + timedelta(minutes=15)
    assert len(claims.token_id) == 32
    raw = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(raw) == {"sub", "exp", "iat", "jti", "typ"}
    assert raw["sub"] == "42"


def test_each_access_token_has_its_own_jti() -> None:
    ids = {read_access_token(issue_access_token(1, SECRET, DAY), SECRET).token_id for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: issue_access_token(1, SECRET, timedelta(seconds=-60)), "expired"),
        (lambda: issue_access_token(1, "another-secret" * 3, DAY), "not valid"),
        (lambda: "not.a.jwt", "not valid"),
        (
            lambda: jwt.encode(
                {"sub": "1", "exp": 9e9, "iat": 0, "jti": "x", "typ": "refresh"}, SECRET
            ),
            "not valid",
        ),
        (lambda: jwt.encode({"sub": "1", "exp": 9e9, "iat": 0}, SECRET), "not valid"),
        (
            lambda: jwt.encode(
                {"sub": "1", "exp": 9e9, "iat": 0, "jti": "x", "typ": "access"},
                SECRET,
                algorithm="HS512",
            ),
            "not valid",
        ),
    ],
    ids=["expired", "other-secret", "garbage", "wrong-type", "missing-jti", "other-algorithm"],
)
def test_bad_access_tokens_are_refused(token: object, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        read_access_token(token(), SECRET)  # type: ignore[operator]


def make_user(session: Session) -> int:
    user = User(email="u@example.com", name="U", password_hash="x")
    session.add(user)
    session.commit()
    return user.id


def test_refresh_tokens_are_stored_hashed(db_session: Session) -> None:
    user_id = make_user(db_session)
    token = refresh_tokens.issue(db_session, user_id, DAY)
    stored = db_session.scalars(select(RefreshToken)).one()
    assert stored.token_hash == refresh_tokens.token_hash(token)
    assert token not in stored.token_hash


def test_rotation_returns_a_new_token_and_kills_the_old_one(db_session: Session) -> None:
    user_id = make_user(db_session)
    first = refresh_tokens.issue(db_session, user_id, DAY)
    rotation = refresh_tokens.rotate(db_session, first, DAY)
    assert rotation.user_id == user_id
    assert rotation.refresh_token != first
    second = refresh_tokens.rotate(db_session, rotation.refresh_token, DAY)
    assert second.user_id == user_id


def test_reusing_a_rotated_token_revokes_its_whole_family(db_session: Session) -> None:
    user_id = make_user(db_session)
    other_login = refresh_tokens.issue(db_session, user_id, DAY)
    first = refresh_tokens.issue(db_session, user_id, DAY)
    current = refresh_tokens.rotate(db_session, first, DAY).refresh_token
    with pytest.raises(refresh_tokens.TokenReused):
        refresh_tokens.rotate(db_session, first, DAY)
    with pytest.raises(InvalidToken):
        refresh_tokens.rotate(db_session, current, DAY)  # the thief's successor is dead too
    assert (
        refresh_tokens.rotate(db_session, other_login, DAY).user_id == user_id
    )  # other logins live


def test_unknown_and_expired_tokens_are_refused(db_session: Session) -> None:
    user_id = make_user(db_session)
    past = datetime.now(UTC) - timedelta(days=2)
    expired = refresh_tokens.issue(db_session, user_id, DAY, now=past)
    with pytest.raises(InvalidToken):
        refresh_tokens.rotate(db_session, expired, DAY)
    with pytest.raises(InvalidToken):
        refresh_tokens.rotate(db_session, "never-issued", DAY)


def test_logout_revokes_the_family(db_session: Session) -> None:
    user_id = make_user(db_session)
    token = refresh_tokens.issue(db_session, user_id, DAY)
    assert refresh_tokens.revoke(db_session, token) == user_id
    with pytest.raises(InvalidToken):
        refresh_tokens.rotate(db_session, token, DAY)
    with pytest.raises(InvalidToken):
        refresh_tokens.revoke(db_session, token)


def test_purge_deletes_expired_and_revoked_tokens_only(db_session: Session) -> None:
    user_id = make_user(db_session)
    past = datetime.now(UTC) - timedelta(days=2)
    refresh_tokens.issue(db_session, user_id, DAY, now=past)  # expired
    revoked = refresh_tokens.issue(db_session, user_id, DAY)
    refresh_tokens.revoke(db_session, revoked)
    live = refresh_tokens.issue(db_session, user_id, DAY)
    assert (
        refresh_tokens.purge_expired(db_session, now=datetime.now(UTC) + timedelta(seconds=1)) == 2
    )
    assert db_session.scalar(select(func.count()).select_from(RefreshToken)) == 1
    assert refresh_tokens.rotate(db_session, live, DAY).user_id == user_id
