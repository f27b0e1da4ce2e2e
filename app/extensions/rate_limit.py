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


class LoginLimiter:
    """``check`` before verifying a password; ``failed`` after a wrong one."""

    def __init__(self, storage: Storage, per_account: str, per_address: str) -> None:
        self.storage = storage
        self._shared = MovingWindowRateLimiter(storage)
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._limits: list[tuple[str, RateLimitItem]] = [
            *(("account", item) for item in parse_many(per_account)),
            *(("address", item) for item in parse_many(per_address)),
        ]
        self._degraded = False

    def check(self, email: str, address: str) -> None:
        """Raise :class:`RateLimited` (429, with ``Retry-After``) if either is over its limit."""
        keys = {"account": email.lower(), "address": address}
        for kind, item in self._limits:
            identifiers = ("login", kind, keys[kind])
            if not self._call(lambda s, i=item, k=identifiers: s.test(i, *k)):
                reset_at = self._call(lambda s, i=item, k=identifiers: s.get_window_stats(i, *k))
                retry_after = max(1, math.ceil(reset_at.reset_time - time.time()))
                raise RateLimited(
                    "Too many failed sign-ins; try again later", retry_after=retry_after
                )

    def failed(self, email: str, address: str) -> None:
        """Count one failed sign-in against the account and the address."""
        keys = {"account": email.lower(), "address": address}
        for kind, item in self._limits:
            identifiers = ("login", kind, keys[kind])
            self._call(lambda s, i=item, k=identifiers: s.hit(i, *k))

    def _call(self, action: Callable[[MovingWindowRateLimiter], T]) -> T:
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
    app.extensions["login_limiter"] = LoginLimiter(
        storage, settings.login_limit_per_account, settings.login_limit_per_address
    )


def get_login_limiter() -> LoginLimiter:
    limiter: LoginLimiter = current_app.extensions["login_limiter"]
    return limiter
