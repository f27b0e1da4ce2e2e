"""Where SMS codes wait to be used: Redis (``REDIS_URL``), or process memory on
the embedded default.

A code is never stored, only an HMAC of it (keyed by ``SECRET_KEY``, over the
purpose, the number and the code), under a key per purpose and number that
lives :data:`CODE_TTL` seconds. A new code for the same number replaces the
old one. Each try counts; the :data:`MAX_TRIES`-th wrong one kills the code,
and the number stays locked until the key expires.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import redis
from flask import current_app

from app.core.exceptions import ServiceUnavailable

if TYPE_CHECKING:
    from app.core.application import APIFlask

log = logging.getLogger("app.messaging")

#: Seconds a code is valid, as the contract has it.
CODE_TTL = 300
#: Wrong tries that kill a code.
MAX_TRIES = 5

Outcome = Literal["ok", "wrong", "locked"]

#: Count the try; past the limit, kill the code. Returns the stored digest
#: (``false`` if there is none, ``"locked"`` once the tries are spent).
_TRY = """
local digest = redis.call('HGET', KEYS[1], 'digest')
if not digest then
  if redis.call('HGET', KEYS[1], 'tries') then return 'locked' end
  return false
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries > tonumber(ARGV[1]) then
  redis.call('HDEL', KEYS[1], 'digest')
  return 'locked'
end
return digest
"""
#: Spend the code, if it is still this one: of two requests with it, one wins.
_SPEND = """
if redis.call('HGET', KEYS[1], 'digest') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def digest(secret: str, purpose: str, phone: str, code: str) -> str:
    key = hmac.new(secret.encode(), b"sms-code", hashlib.sha256).digest()
    return hmac.new(key, f"{purpose}\0{phone}\0{code}".encode(), hashlib.sha256).hexdigest()


class _Storage(Protocol):
    def put(self, key: str, digest: str) -> None: ...
    def take_try(self, key: str) -> str | None: ...
    def spend(self, key: str, digest: str) -> bool: ...
    def ttl(self, key: str) -> int: ...


class RedisCodes:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._try = client.register_script(_TRY)
        self._spend = client.register_script(_SPEND)

    def put(self, key: str, digest: str) -> None:
        pipe: Any = self.client.pipeline()  # pyright: ignore[reportUnknownMemberType]
        pipe.delete(key)
        pipe.hset(key, mapping={"digest": digest, "tries": 0})
        pipe.expire(key, CODE_TTL)
        pipe.execute()

    def take_try(self, key: str) -> str | None:
        found = cast("bytes | None", self._try(keys=[key], args=[MAX_TRIES]))
        return None if found is None else found.decode()

    def spend(self, key: str, digest: str) -> bool:
        return bool(self._spend(keys=[key], args=[digest]))

    def ttl(self, key: str) -> int:
        return max(1, self.client.ttl(key))


class MemoryCodes:
    """The same, in this process (one process's codes; the embedded default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, Any]] = {}

    def _live(self, key: str) -> dict[str, Any] | None:
        entry = self._codes.get(key)
        if entry is not None and entry["expires"] <= time.monotonic():
            del self._codes[key]
            return None
        return entry

    def put(self, key: str, digest: str) -> None:
        with self._lock:
            self._codes[key] = {
                "digest": digest,
                "tries": 0,
                "expires": time.monotonic() + CODE_TTL,
            }

    def take_try(self, key: str) -> str | None:
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            if entry["digest"] is None:
                return "locked"
            entry["tries"] += 1
            if entry["tries"] > MAX_TRIES:
                entry["digest"] = None
                return "locked"
            return cast("str", entry["digest"])

    def spend(self, key: str, digest: str) -> bool:
        with self._lock:
            entry = self._live(key)
            if entry is None or entry["digest"] != digest:
                return False
            del self._codes[key]
            return True

    def ttl(self, key: str) -> int:
        with self._lock:
            entry = self._live(key)
            return max(1, int(entry["expires"] - time.monotonic())) if entry else 1


class SmsCodes:
    """Codes by purpose and number, kept as HMACs."""

    def __init__(self, storage: _Storage, secret: str, prefix: str = "sms-code") -> None:
        self.storage = storage
        self.secret = secret
        self.prefix = prefix

    def _key(self, purpose: str, phone: str) -> str:
        return f"{self.prefix}:{purpose}:{phone}"

    def put(self, purpose: str, phone: str, code: str) -> None:
        """Keep ``code`` for ``phone`` for :data:`CODE_TTL` seconds, instead of any earlier one."""
        with _unavailable_as_503():
            self.storage.put(self._key(purpose, phone), digest(self.secret, purpose, phone, code))

    def use(self, purpose: str, phone: str, code: str) -> Outcome:
        """``ok`` once for the right code, in time; ``wrong`` for a wrong,
        used or expired one; ``locked`` once the tries are spent. Redis down
        is a 503, within ``REDIS_SOCKET_TIMEOUT``."""
        with _unavailable_as_503():
            return self._use(purpose, phone, code)

    def _use(self, purpose: str, phone: str, code: str) -> Outcome:
        key = self._key(purpose, phone)
        stored = self.storage.take_try(key)
        if stored == "locked":
            return "locked"
        given = digest(self.secret, purpose, phone, code)
        if stored is None or not hmac.compare_digest(stored, given):
            return "wrong"
        return "ok" if self.storage.spend(key, given) else "wrong"

    def locked_for(self, purpose: str, phone: str) -> int:
        """Seconds until a locked number may try a new code."""
        with _unavailable_as_503():
            return self.storage.ttl(self._key(purpose, phone))


@contextmanager
def _unavailable_as_503() -> Generator[None]:
    try:
        yield
    except redis.RedisError as exc:
        log.warning("SMS codes unavailable (%s: %s)", type(exc).__name__, exc)
        raise ServiceUnavailable("Codes cannot be checked now; retry shortly") from None


def init_app(app: APIFlask) -> None:
    settings = app.settings
    storage: _Storage
    if settings.redis_url:
        client = redis.Redis.from_url(  # pyright: ignore[reportUnknownMemberType] - **kwargs
            settings.redis_url,
            socket_timeout=settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_socket_timeout,
        )
        storage = RedisCodes(client)
    else:
        storage = MemoryCodes()
    app.extensions["sms_codes"] = SmsCodes(storage, settings.secret_key.get_secret_value())


def get_sms_codes() -> SmsCodes:
    codes: SmsCodes = current_app.extensions["sms_codes"]
    return codes
