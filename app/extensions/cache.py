"""The tiered cache: one :class:`~app.cache.Manager` per app.

Two storages are always registered, so every node may name both:

* ``"local"``: the in-process tier (:class:`~app.cache.LocalStorage`);
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

import click
import orjson
from flask import current_app
from flask.cli import AppGroup

from app.cache import LocalStorage, Manager, Node, NullStorage, RedisStorage
from app.cache.decorator import FunctionNodeBase
from app.cache.storage import StorageUnavailable

if TYPE_CHECKING:
    from app.core.application import APIFlask

cache_cli = AppGroup("cache", help="Inspect and clear the cache.")


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
    app.cli.add_command(cache_cli)


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


@cache_cli.command("stats")
def stats_command() -> None:
    """Print the cache counters of every running process that reports them
    (through Redis, every 10 s), and of this one, as JSON."""
    by_process = get_cache().process_stats()
    click.echo(
        orjson.dumps(
            {"processes": by_process, "total": total_stats(by_process)},
            option=orjson.OPT_INDENT_2,
        )
    )


def total_stats(by_process: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counters summed over processes."""
    total: dict[str, Any] = {"tiers": {}}
    for stats in by_process.values():
        for name, value in stats.items():
            if name == "tiers":
                for tier, counts in value.items():
                    into = total["tiers"].setdefault(tier, {})
                    for counter, amount in counts.items():
                        into[counter] = into.get(counter, 0) + amount
            else:
                total[name] = total.get(name, 0) + value
    return total


@cache_cli.command("clear")
def clear_command() -> None:
    """Delete every cached value, in Redis and in every process's local tier."""
    manager = get_cache()
    try:
        manager.clear()
    except StorageUnavailable as exc:
        raise click.ClickException(
            f"Redis is unreachable ({exc}); only this process's local tier was cleared"
        ) from None
    click.echo(f"Cleared every cached value under the prefix {manager.prefix!r}, in every process.")
