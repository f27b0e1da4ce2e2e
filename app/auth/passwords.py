"""Password hashing with Argon2id.

Verification is constant-time, hashes are upgraded on login when the
parameters change, and checking a password for an unknown account costs the
same as checking a wrong one, so response times do not reveal which emails exist.
"""

from __future__ import annotations

from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


@cache
def password_hash(time_cost: int = 3, memory_cost: int = 65536) -> PasswordHash:
    """The hasher for these Argon2id parameters (settings choose them)."""
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost),))


def hash_password(password: str, hasher: PasswordHash | None = None) -> str:
    return (hasher or password_hash()).hash(password)


def verify_password(
    password: str, stored_hash: str | None, hasher: PasswordHash | None = None
) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a new hash to store when the stored one
    was made with other parameters. ``stored_hash=None`` (no such account) costs
    a full verification against a dummy hash and is never a match."""
    hasher = hasher or password_hash()
    if stored_hash is None:
        hasher.verify(password, _dummy_hash(hasher))
        return False, None
    return hasher.verify_and_update(password, stored_hash)


@cache
def _dummy_hash(hasher: PasswordHash) -> str:
    return hasher.hash("not a password anyone has")
