"""The tiered cache: one :class:`~app.cache.Manager` per app.

Three storages are always registered, so every node may name them:

* ``"local"``: the in-process tier (:class:`~app.cache.LocalStorage`);
* ``"pages"``: an in-process tier of its own, smaller, for list pages;
* ``"redis"``: :class:`~app.cache.RedisStorage` on the app's Redis client, or,
  with no ``REDIS_URL`` (the embedded default), a :class:`~app.cache.NullStorage`
  that holds nothing, so the cache runs on its local tier alone.

At start-up every node class defined under ``app.`` is checked against these
storages, so a typo in a node's ``storages`` stops the app instead of failing
its first request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from flask import current_app

from app.cache import LocalStorage, Manager, Node, NullStorage, RedisStorage
from app.cache.decorator import FunctionNodeBase

if TYPE_CHECKING:
    from app.core.application import APIFlask


def init_app(app: APIFlask) -> None:
    settings = app.settings
    manager = Manager(
        prefix=settings.cache_prefix,
        lock_timeout=timedelta(seconds=settings.cache_lock_timeout),
        lock_wait=timedelta(seconds=settings.cache_lock_wait),
    )
    manager.register_storage(
        "local",
        LocalStorage(
            max_size=settings.cache_local_max_size,
            ttl=timedelta(seconds=settings.cache_local_ttl),
        ),
    )
    # Its own bound: a list page is a hundred of the local tier's entries at once.
    manager.register_storage(
        "pages",
        LocalStorage(
            max_size=settings.cache_pages_max_size,
            ttl=timedelta(seconds=settings.cache_local_ttl),
        ),
    )
    redis = app.extensions.get("redis")
    manager.register_storage(
        "redis",
        (
            RedisStorage(redis, ttl=timedelta(seconds=settings.cache_redis_ttl))
            if redis is not None
            else NullStorage()
        ),
    )
    manager.validate(*app_node_classes())
    app.extensions["cache"] = manager


def app_node_classes() -> list[type[Node[Any]]]:
    """Every concrete node class defined in the app's own modules. ``@cached``
    nodes are left out: each is validated against its own manager when made."""
    found: list[type[Node[Any]]] = []
    pending = cast("list[type[Node[Any]]]", Node.__subclasses__())
    while pending:
        node_class = pending.pop()
        pending.extend(node_class.__subclasses__())
        if issubclass(node_class, FunctionNodeBase):
            continue
        if node_class.__module__.startswith("app.") and "storage_specs" in vars(node_class):
            found.append(node_class)
    return found


def get_cache() -> Manager:
    """The current app's cache manager."""
    manager: Manager = current_app.extensions["cache"]
    return manager
