"""Redis: one client per app, or none when ``REDIS_URL`` is empty.

Timeouts are short so a Redis outage costs a request milliseconds, not seconds;
whatever depends on Redis (the cache, the rate limiter) decides how to degrade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from redis import Redis

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings


def is_enabled(settings: Settings) -> bool:
    return bool(settings.redis_url)


def create_client(settings: Settings) -> Redis:
    return Redis.from_url(  # pyright: ignore[reportUnknownMemberType] - redis-py's **kwargs
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        health_check_interval=30,
    )


def ping(client: Redis) -> None:
    """Raise unless Redis answers ``PING``."""
    client.ping()  # pyright: ignore[reportUnknownMemberType] - typed for sync and async


def init_app(app: APIFlask) -> None:
    app.extensions["redis"] = create_client(app.settings)


def get_redis() -> Redis | None:
    """The current app's Redis client, or ``None`` when Redis is not configured."""
    client: Redis | None = current_app.extensions.get("redis")
    return client
