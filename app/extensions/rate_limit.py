"""Login throttling: failed sign-ins counted per account and per client address.

Counts live in Redis when it is configured (``RATELIMIT_STORAGE_URL``, else
``REDIS_URL``), so every worker process shares them, and in process memory
otherwise. It uses ``limits``, the rate-limit engine Flask-Limiter runs on,
directly: a login limit counts *failures* keyed by the email inside the body,
and only one route needs it, so no hook runs on every other request.

If Redis fails, counting falls back to process memory, with one warning per
outage: logins keep working, and throttling degrades to per-process.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.exceptions import RateLimited
from app.core.settings import SettingsError

if TYPE_CHECKING:
    from app.core.application import APIFlask

log = logging.getLogger("app.rate_limit")

T = TypeVar("T")


class Counter:
    """``limits``' moving window over shared storage, which falls back to process
    memory while the storage fails (one warning when it goes, one when it is back)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._shared = MovingWindowRateLimiter(storage)
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._degraded = False

    def retry_after(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        """Seconds until ``item``'s window for ``identifiers`` has room again (at least 1)."""
        reset_at = self.call(lambda s: s.get_window_stats(item, *identifiers))
        return max(1, math.ceil(reset_at.reset_time - time.time()))

    def call(self, action: Callable[[MovingWindowRateLimiter], T]) -> T:
        try:
            result = action(self._shared)
        except Exception as exc:  # noqa: BLE001 - any storage failure degrades the same way
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "rate limit storage unavailable (%s: %s); counting in process memory",
                    type(exc).__name__,
                    exc,
                )
            return action(self._fallback)
        if self._degraded:
            self._degraded = False
            log.warning("rate limit storage is back; counting in shared storage again")
        return result


class LoginLimiter:
    """``check`` before verifying a password; ``failed`` after a wrong one."""

    def __init__(self, counter: Counter, per_account: str, per_address: str) -> None:
        self.counter = counter
        self._limits: list[tuple[str, RateLimitItem]] = [
            *(("account", item) for item in parse_many(per_account)),
            *(("address", item) for item in parse_many(per_address)),
        ]

    def check(self, email: str, address: str) -> None:
        """Raise :class:`RateLimited` (429, with ``Retry-After``) if either is over its limit."""
        keys = {"account": email.lower(), "address": address}
        for kind, item in self._limits:
            identifiers = ("login", kind, keys[kind])
            if not self.counter.call(lambda s, i=item, k=identifiers: s.test(i, *k)):
                raise RateLimited(
                    "Too many failed sign-ins; try again later",
                    retry_after=self.counter.retry_after(item, identifiers),
                )

    def failed(self, email: str, address: str) -> None:
        """Count one failed sign-in against the account and the address."""
        keys = {"account": email.lower(), "address": address}
        for kind, item in self._limits:
            identifiers = ("login", kind, keys[kind])
            self.counter.call(lambda s, i=item, k=identifiers: s.hit(i, *k))


class Throttle:
    """What one flow may send (emails, SMS codes), counted per kind of key: an
    account, a client address, a phone number. :meth:`take` counts one send
    against every key it is given, and refuses if any was at its limit."""

    def __init__(self, counter: Counter, flow: str, limits: dict[str, str], message: str) -> None:
        self.counter = counter
        self.flow = flow
        self.message = message
        self._limits = {kind: parse_many(value) for kind, value in limits.items()}

    def take(self, **keys: str) -> None:
        """Count one send against each ``kind=key``, or raise
        :class:`RateLimited` (429, with ``Retry-After``: the longest wait among
        the full limits) if any is full. Each count is ``limits``' atomic
        ``hit``, so requests sent at once cannot all pass a test before any
        counts."""
        full: list[tuple[RateLimitItem, tuple[str, ...]]] = []
        for kind, key in keys.items():
            ids = (self.flow, kind, key)
            for item in self._limits[kind]:
                if not self.counter.call(lambda s, i=item, k=ids: s.hit(i, *k)):
                    full.append((item, ids))
        if full:
            wait = max(self.counter.retry_after(item, ids) for item, ids in full)
            raise RateLimited(self.message, retry_after=wait)


def init_app(app: APIFlask) -> None:
    settings = app.settings
    url = settings.ratelimit_storage_url or settings.redis_url
    if url:
        storage = storage_from_string(
            url,
            socket_timeout=settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_socket_timeout,
        )
        if not isinstance(storage, Storage):
            raise SettingsError("invalid setting RATELIMIT_STORAGE_URL: not a sync storage")
    else:
        storage = MemoryStorage()
    counter = Counter(storage)
    app.extensions["login_limiter"] = LoginLimiter(
        counter, settings.login_limit_per_account, settings.login_limit_per_address
    )
    # One count per flow, so resets asked for by a stranger never use up the
    # verification emails of the address's owner.
    app.extensions["throttles"] = {
        "verify-email": Throttle(
            counter,
            "verify-email",
            {"account": settings.email_limit_per_account},
            "Too many verification emails asked for; try again later",
        ),
        "reset-password": Throttle(
            counter,
            "reset-password",
            {
                "account": settings.email_limit_per_account,
                "address": settings.email_limit_per_address,
            },
            "Too many password resets asked for; try again later",
        ),
        "sms-code": Throttle(
            counter,
            "sms-code",
            {"number": settings.sms_limit_per_number, "address": settings.sms_limit_per_address},
            "Too many codes asked for; try again later",
        ),
    }


def get_login_limiter() -> LoginLimiter:
    limiter: LoginLimiter = current_app.extensions["login_limiter"]
    return limiter


def get_throttle(flow: str) -> Throttle:
    """The throttle of ``flow``: ``"verify-email"``, ``"reset-password"`` or ``"sms-code"``."""
    throttle: Throttle = current_app.extensions["throttles"][flow]
    return throttle
