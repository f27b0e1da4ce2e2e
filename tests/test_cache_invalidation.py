"""Invalidation across processes, the listener's health, and Redis outages."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any, ClassVar

import pytest
import redis
from cache_support import (
    Article,
    ArticleNode,
    Source,
    TCPProxy,
    counting_client,
    loads,
    make_manager,
    redis_client,
    wait_local_copies_safe,
)

from app.cache import Manager
from app.cache.redis_listener import PUBSUB_PROTOCOL
from app.cache.redis_storage import RedisStorage
from app.cache.storage import MISS

fork = multiprocessing.get_context("fork")


pytestmark = pytest.mark.usefixtures("cache_source")


def full_key(node: ArticleNode) -> str:
    return f"cache:{node.key()}|v{type(node).version}.{type(node).schema_fingerprint}"


def in_local(manager: Manager, node: ArticleNode) -> bool:
    return manager.all_storage["local"].get(full_key(node)) is not MISS  # type: ignore[attr-defined]


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return False


def _holder(ready: ProcessEvent, results: Any) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    assert in_local(manager, ArticleNode(1))
    ready.set()
    gone = wait_until(lambda: not in_local(manager, ArticleNode(1)))
    results.put((gone, time.time()))
    manager.close()


def test_remove_reaches_another_processs_local_tier_within_50ms() -> None:
    ready = fork.Event()
    results = fork.Queue()
    child = fork.Process(target=_holder, args=(ready, results))
    child.start()
    assert ready.wait(10)
    manager = make_manager()
    manager.remove(ArticleNode(1))
    removed_at = time.time()
    gone, seen_at = results.get(timeout=10)
    child.join(timeout=10)
    assert gone
    assert seen_at - removed_at < 0.05


def test_remove_drops_every_tier_in_this_process(redis_client: redis.Redis) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    manager.remove(ArticleNode(1))
    assert not in_local(manager, ArticleNode(1))
    assert redis_client.exists(full_key(ArticleNode(1))) == 0
    manager.get(ArticleNode(1))
    assert loads() == 2


def test_remove_from_the_local_tier_only_keeps_redis(redis_client: redis.Redis) -> None:
    first, second = make_manager(), make_manager()
    first.get(ArticleNode(1))
    second.get(ArticleNode(1))
    first.remove(ArticleNode(1), "local")
    assert wait_until(lambda: not in_local(second, ArticleNode(1)))
    assert not in_local(first, ArticleNode(1))
    assert redis_client.exists(full_key(ArticleNode(1))) == 1
    assert second.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert loads() == 1


def test_remove_from_redis_only_keeps_local_copies(redis_client: redis.Redis) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    manager.remove(ArticleNode(1), "redis")
    assert redis_client.exists(full_key(ArticleNode(1))) == 0
    assert in_local(manager, ArticleNode(1))


def test_remove_many() -> None:
    manager = make_manager()
    manager.get_many([ArticleNode(1), ArticleNode(2)])
    manager.remove_many([ArticleNode(1), ArticleNode(2)])
    assert not in_local(manager, ArticleNode(1))
    assert not in_local(manager, ArticleNode(2))


def test_clear_empties_redis_and_every_local_tier(redis_client: redis.Redis) -> None:
    first, second = make_manager(), make_manager()
    first.get(ArticleNode(1))
    second.get(ArticleNode(2))
    first.clear()
    assert wait_until(lambda: not in_local(second, ArticleNode(2)))
    assert redis_client.keys("cache:article:*") == []


def test_a_value_loaded_from_data_that_changed_meanwhile_is_not_cached(
    redis_client: redis.Redis,
) -> None:
    Source.delay = 0.3
    loader, writer = make_manager(), make_manager()

    result: list[Article | None] = []
    thread = threading.Thread(target=lambda: result.append(loader.get(ArticleNode(1))))
    thread.start()
    time.sleep(0.1)  # the loader has read the "old" row and is still working
    Source.articles[1] = Article(id=1, title="new title")
    writer.remove(ArticleNode(1))  # the write commits and invalidates
    thread.join()
    assert result == [Article(id=1, title="title 1")]  # what it read, returned
    assert redis_client.exists(full_key(ArticleNode(1))) == 0  # but not cached
    assert loader.get(ArticleNode(1)) == Article(id=1, title="new title")


# -- the listener ---------------------------------------------------------------


def test_while_the_subscription_is_down_the_local_tier_is_not_trusted(
    redis_client: redis.Redis,
) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    storage = manager.all_storage["redis"]
    assert isinstance(storage, RedisStorage)
    listener = storage._listener
    assert listener is not None
    redis_client.client_kill_filter(_type="pubsub")  # the subscription drops
    assert wait_until(lambda: not manager._local_copies_safe)
    # Meanwhile another process changes the value; the stale local copy must not win.
    redis_client.set(full_key(ArticleNode(1)), b'{"id":1,"title":"changed","version":2}')
    value = manager.get(ArticleNode(1))
    assert value is not None
    assert value.title == "changed" or manager._local_copies_safe
    # It resubscribes by itself, clearing the local tier it could not keep honest.
    assert wait_until(lambda: manager._local_copies_safe)
    assert manager.get(ArticleNode(1)) == Article(id=1, title="changed", version=2)


def test_the_listener_speaks_resp2_whatever_the_apps_client_uses() -> None:
    manager = make_manager(redis_client(protocol=3))
    storage = manager.all_storage["redis"]
    assert isinstance(storage, RedisStorage)
    listener = storage._listener
    assert listener is not None
    assert PUBSUB_PROTOCOL == 2
    assert listener.client.connection_pool.connection_kwargs["protocol"] == 2
    other = make_manager(redis_client(protocol=3))
    manager.get(ArticleNode(1))
    other.remove(ArticleNode(1))
    assert wait_until(lambda: not in_local(manager, ArticleNode(1)))


# -- Redis down -----------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[TCPProxy]:
    proxy = TCPProxy()
    proxy.start()
    yield proxy
    proxy.stop()


def test_with_redis_down_get_works_from_load_and_the_local_tier(
    proxy: TCPProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.cache")
    manager = make_manager(
        redis.Redis.from_url(proxy.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    )
    manager.get(ArticleNode(1))
    proxy.stop()
    for _ in range(50):
        assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
        assert manager.get(ArticleNode(2)) == Article(id=2, title="title 2")
    down = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(down) == 1  # one line for the outage, not one per request
    assert all(r.exc_info is None for r in caplog.records)
    assert loads() == 2


def test_when_redis_returns_the_cache_recovers_by_itself(
    proxy: TCPProxy, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.cache")
    client = redis.Redis.from_url(proxy.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    manager = make_manager(client)
    manager.get(ArticleNode(1))
    proxy.stop()
    manager.remove(ArticleNode(1))  # cannot reach Redis: kept for replay
    manager.get(ArticleNode(3))
    proxy.start()
    storage = manager.all_storage["redis"]
    assert isinstance(storage, RedisStorage)
    time.sleep(storage.retry_interval)
    # Within a few calls after the retry interval it finds Redis back by itself.
    assert wait_until(
        lambda: manager.get(ArticleNode(4)) is not None
        and redis_client.exists(full_key(ArticleNode(4))) == 1,
        timeout=5,
    )
    assert redis_client.exists(full_key(ArticleNode(1))) == 0  # the missed invalidation, replayed
    wait_local_copies_safe(manager)
    assert any("Redis is back" in r.getMessage() for r in caplog.records)
    manager.close()
    client.close()


def test_a_load_after_a_timed_out_wait_still_skips_a_stale_store(
    redis_client: redis.Redis,
) -> None:
    # A dead holder keeps the lock; the waiter gives up waiting and loads itself.
    redis_client.set(full_key(ArticleNode(1)) + ":lock", "dead", px=10_000)
    Source.delay = 0.3
    loader, writer = make_manager(lock_wait=0.1), make_manager()
    result: list[Article | None] = []
    thread = threading.Thread(target=lambda: result.append(loader.get(ArticleNode(1))))
    thread.start()
    time.sleep(0.25)  # the waiter timed out and is loading the old row
    Source.articles[1] = Article(id=1, title="new title")
    writer.remove(ArticleNode(1))
    thread.join()
    assert result == [Article(id=1, title="title 1")]
    assert redis_client.exists(full_key(ArticleNode(1))) == 0


def test_queued_invalidations_are_replayed_when_the_listener_reconnects(
    proxy: TCPProxy, redis_client: redis.Redis
) -> None:
    client = redis.Redis.from_url(proxy.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    manager = make_manager(client)
    manager.get(ArticleNode(1))
    proxy.stop()
    manager.remove(ArticleNode(1))  # queued: Redis is unreachable
    assert redis_client.exists(full_key(ArticleNode(1))) == 1
    proxy.start()
    # No further reads: the listener's reconnection alone replays the queue.
    assert wait_until(lambda: redis_client.exists(full_key(ArticleNode(1))) == 0, timeout=10)
    manager.close()
    client.close()


def test_remove_reaches_redis_even_just_after_another_call_failed(
    redis_client: redis.Redis,
) -> None:
    writer, reader = make_manager(), make_manager()
    writer.get(ArticleNode(1))
    reader.get(ArticleNode(1))
    storage = writer.all_storage["redis"]
    assert isinstance(storage, RedisStorage)
    storage._mark_down(redis.ConnectionError("one timeout"))
    writer.remove(ArticleNode(1))  # Redis is fine: the invalidation must not wait out the breaker
    assert redis_client.exists(full_key(ArticleNode(1))) == 0
    assert wait_until(lambda: not in_local(reader, ArticleNode(1)))


def test_a_get_after_remove_does_not_join_a_load_that_read_old_data() -> None:
    Source.delay = 0.4
    manager = make_manager()
    early: list[Article | None] = []
    thread = threading.Thread(target=lambda: early.append(manager.get(ArticleNode(1))))
    thread.start()
    time.sleep(0.1)  # that load has read the old row
    Source.articles[1] = Article(id=1, title="new title")
    manager.remove(ArticleNode(1))
    late = manager.get(ArticleNode(1))
    thread.join()
    assert early == [Article(id=1, title="title 1")]
    assert late == Article(id=1, title="new title")


def test_a_redis_first_node_serves_its_local_copy_while_redis_is_down(proxy: TCPProxy) -> None:
    class RedisFirst(ArticleNode):
        storages: ClassVar = ["redis", "local"]

    client = redis.Redis.from_url(proxy.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    manager = make_manager(client)
    manager.get(RedisFirst(1))
    proxy.stop()
    for _ in range(20):
        assert manager.get(RedisFirst(1)) == Article(id=1, title="title 1")
    assert loads() == 1
    manager.close()
    client.close()


def _first_gets_after_fork(manager: Manager, results: Any) -> None:
    threads = [threading.Thread(target=manager.get, args=(ArticleNode(n),)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.2)
    results.put(sum(t.name == "cache-listener" for t in threading.enumerate()))
    manager.close()


def test_concurrent_first_gets_in_a_child_start_one_listener() -> None:
    manager = make_manager()
    results = fork.Queue()
    child = fork.Process(target=_first_gets_after_fork, args=(manager, results))
    child.start()
    assert results.get(timeout=30) == 1
    child.join(timeout=30)


def test_while_the_listener_is_down_waiters_back_off(redis_client: redis.Redis) -> None:
    counting = counting_client()
    manager = make_manager(counting)
    storage = manager.all_storage["redis"]
    assert isinstance(storage, RedisStorage)
    listener = storage._listener
    assert listener is not None
    listener.stop()  # no fill notices: the waiter has to poll
    redis_client.set(full_key(ArticleNode(1)) + ":lock", "held-elsewhere", px=1500)
    counting.sent.clear()
    started = time.monotonic()
    assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert time.monotonic() - started >= 1.4
    # Polls at 20, 40, 80 ... 500 ms: a dozen rounds, not one every 20 ms (~75).
    assert counting.sent.count("EVALSHA") <= 15, counting.sent
