"""The cache wired into the app, the @cached decorator, counters and the CLI."""

from __future__ import annotations

import gc
import multiprocessing
import os
import socket
import time
from datetime import timedelta
from typing import Any, ClassVar

import orjson
import pytest
import redis
from cache_support import Article, ArticleNode, Source, loads, make_manager
from conftest import REDIS_URL, SettingsFactory

import app.cache.invalidation as invalidation_module
from app import create_app
from app.cache import CacheConfigurationError, LocalStorage, Node, NullStorage, RedisStorage, cached
from app.commands.cache import total_stats
from app.extensions.cache import app_node_classes, get_cache

fork = multiprocessing.get_context("fork")


pytestmark = pytest.mark.usefixtures("cache_source")


def test_without_redis_the_app_cache_is_local_only(make_settings: SettingsFactory) -> None:
    app = create_app(
        make_settings(cache_local_max_size=123, cache_pages_max_size=12, cache_local_ttl=7)
    )
    with app.app_context():
        manager = get_cache()
    storages = manager.all_storage
    assert set(storages) == {"local", "pages", "redis"}
    assert isinstance(storages["local"], LocalStorage)
    assert storages["local"].max_size == 123
    assert storages["local"].ttl == timedelta(seconds=7)
    assert isinstance(storages["pages"], LocalStorage)
    assert storages["pages"].max_size == 12
    assert storages["pages"].ttl == timedelta(seconds=7)
    assert isinstance(storages["redis"], NullStorage)
    assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert loads() == 1


def test_with_redis_the_app_cache_has_both_tiers(make_settings: SettingsFactory) -> None:
    app = create_app(
        make_settings(
            redis_url=REDIS_URL, cache_redis_ttl=99, cache_prefix="myapp", cache_lock_wait=2
        )
    )
    manager = app.extensions["cache"]
    redis_storage = manager.all_storage["redis"]
    assert isinstance(redis_storage, RedisStorage)
    assert redis_storage.ttl == timedelta(seconds=99)
    assert manager.prefix == "myapp"
    assert manager.lock_wait == 2


def test_an_app_node_naming_an_unknown_storage_stops_start_up(
    make_settings: SettingsFactory,
) -> None:
    class Misnamed(Node[Article]):
        __module__ = "app.resources.fake"
        storages: ClassVar = ["local", "memcached"]

    try:
        with pytest.raises(CacheConfigurationError, match="'memcached', which is not registered"):
            create_app(make_settings())
    finally:
        del Misnamed
        gc.collect()


def test_cache_stats_command_prints_the_counters(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    manager = app.extensions["cache"]
    manager.get(ArticleNode(1))
    manager.get(ArticleNode(1))
    result = app.test_cli_runner().invoke(args=["cache", "stats"])
    assert result.exit_code == 0
    stats = orjson.loads(result.output)
    [own] = stats["processes"].values()
    assert own["tiers"]["local"] == {"hits": 1, "misses": 1, "errors": 0}
    assert own["loads"] == 1
    assert stats["total"]["loads"] == 1


def _worker(monkeypatch_interval: float, done: Any) -> None:
    invalidation_module.STATS_INTERVAL = monkeypatch_interval
    worker = make_manager()
    worker.get(ArticleNode(1))
    worker.get(ArticleNode(1))
    time.sleep(monkeypatch_interval * 2.5)  # its listener reports at least once
    done.put(f"{socket.gethostname()}:{os.getpid()}")
    worker.close()


def test_cache_stats_sums_what_every_process_reports(make_settings: SettingsFactory) -> None:
    done = fork.Queue()
    child = fork.Process(target=_worker, args=(0.5, done))
    child.start()
    worker_name = done.get(timeout=30)
    app = create_app(make_settings(redis_url=REDIS_URL))
    result = app.test_cli_runner().invoke(args=["cache", "stats"])
    child.join(timeout=30)
    stats = orjson.loads(result.output)
    worker = stats["processes"][worker_name]
    assert worker["loads"] == 1
    assert worker["tiers"]["local"]["hits"] == 1
    assert len(stats["processes"]) == 2  # the worker and this CLI process
    assert stats["total"]["loads"] == 1


def test_total_stats_adds_up_processes() -> None:
    one = {"tiers": {"local": {"hits": 2, "misses": 1, "errors": 0}}, "loads": 1}
    two = {"tiers": {"local": {"hits": 3, "misses": 0, "errors": 1}}, "loads": 4}
    assert total_stats({"a:1": one, "b:2": two}) == {
        "tiers": {"local": {"hits": 5, "misses": 1, "errors": 1}},
        "loads": 5,
    }


def test_cache_clear_with_redis_down_says_so(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0", redis_socket_timeout=0.2))
    result = app.test_cli_runner().invoke(args=["cache", "clear"])
    assert result.exit_code == 1
    assert "Redis is unreachable" in result.output
    assert "only this process's local tier was cleared" in result.output


def test_cache_clear_command_empties_the_cache(
    make_settings: SettingsFactory, redis_client: redis.Redis
) -> None:
    app = create_app(make_settings(redis_url=REDIS_URL))
    manager = app.extensions["cache"]
    manager.get(ArticleNode(1))
    assert redis_client.keys("cache:article:*") != []
    result = app.test_cli_runner().invoke(args=["cache", "clear"])
    assert result.exit_code == 0
    assert "Cleared every cached value under the prefix 'cache'" in result.output
    assert redis_client.keys("cache:article:*") == []


def test_stats_reset() -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    manager.stats.reset()
    assert manager.stats.as_dict()["loads"] == 0
    assert manager.stats.tiers["local"].misses == 0


# -- @cached ----------------------------------------------------------------------


def test_cached_function_runs_once_per_arguments() -> None:
    manager = make_manager()
    calls: list[int] = []

    @cached(manager, storages=["local", "redis"])
    def titles(limit: int, prefix: str = "t") -> list[str]:
        calls.append(limit)
        return [f"{prefix}{n}" for n in range(limit)]

    assert titles(3) == ["t0", "t1", "t2"]
    assert titles(3) == ["t0", "t1", "t2"]
    assert titles(limit=3, prefix="t") == ["t0", "t1", "t2"]
    assert titles(2) == ["t0", "t1"]
    assert calls == [3, 2]
    titles.remove(3)
    titles(3)
    assert calls == [3, 2, 3]


def test_cached_values_from_redis_are_validated_as_the_return_type() -> None:
    writer, reader = make_manager(), make_manager()

    def make(manager: object) -> object:
        @cached(manager, storages=["redis"])  # type: ignore[arg-type]
        def article(article_id: int) -> Article | None:
            return Source.articles.get(article_id)

        return article

    make(writer)(5)  # type: ignore[operator]
    value = make(reader)(5)  # type: ignore[operator]
    assert value == Article(id=5, title="title 5")
    assert type(value) is Article


def test_cached_none_is_a_negative_entry() -> None:
    manager = make_manager()
    calls: list[int] = []

    @cached(manager, negative_ttl=timedelta(seconds=30))
    def find(article_id: int) -> Article | None:
        calls.append(article_id)
        return None

    assert find(1) is None
    assert find(1) is None
    assert calls == [1]


def test_cached_needs_a_return_annotation() -> None:
    with pytest.raises(TypeError, match="return annotation"):

        @cached(make_manager())
        def untyped(x: int):  # type: ignore[no-untyped-def]
            return x


def test_cached_checks_its_storages_at_decoration() -> None:
    with pytest.raises(CacheConfigurationError, match="'nowhere'"):

        @cached(make_manager(), storages=["nowhere"])
        def f(x: int) -> int:
            return x


def test_cached_node_is_usable_with_get_many() -> None:
    manager = make_manager()

    @cached(manager)
    def square(x: int) -> int:
        return x * x

    assert manager.get_many([square.node(2), square.node(3)]) == [4, 9]


def test_the_app_does_not_check_cached_functions_of_other_managers(
    make_settings: SettingsFactory,
) -> None:
    other = make_manager()
    other.register_storage("second_local", LocalStorage(max_size=10, ttl=timedelta(seconds=5)))

    @cached(other, storages=["second_local"])
    def double(x: int) -> int:
        return 2 * x

    # The app's manager has no "second_local" tier, and must not refuse to start.
    app = create_app(make_settings())
    assert double.node_class not in app_node_classes()
    with app.app_context():
        assert get_cache().get(ArticleNode(2)) == Article(id=2, title="title 2")
    assert double(4) == 8
