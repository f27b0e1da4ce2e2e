"""Reading through the tiers: hits, write-back, negative entries, validation, bounds."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import orjson
import pytest
import redis
from cache_support import (
    Article,
    ArticleNode,
    LocalOnlyNode,
    RedisOnlyNode,
    Source,
    loads,
    make_manager,
    run_threads,
)

from app.cache import LocalStorage, Manager, NullStorage
from app.cache.storage import MISS

pytestmark = pytest.mark.usefixtures("cache_source")


def redis_key(node: ArticleNode) -> str:
    return f"cache:{node.key()}|v{type(node).version}.{type(node).schema_fingerprint}"


def test_a_miss_loads_and_fills_every_tier(redis_client: redis.Redis) -> None:
    manager = make_manager()
    assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert loads() == 1
    stored: bytes = redis_client.get(
        redis_key(ArticleNode(1))
    )  # pyright: ignore[reportAssignmentType]
    assert orjson.loads(stored) == {
        "id": 1,
        "title": "title 1",
        "version": 1,
    }
    assert manager.get(ArticleNode(1)) == Article(id=1, title="title 1")
    assert loads() == 1
    assert manager.stats.tiers["local"].hits == 1


def test_the_redis_ttl_of_the_node_applies(redis_client: redis.Redis) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    assert 115_000 < redis_client.pttl(redis_key(ArticleNode(1))) <= 120_000


def test_a_value_found_in_redis_is_written_back_to_the_local_tier() -> None:
    writer, reader = make_manager(), make_manager()
    writer.get(ArticleNode(2))
    value = reader.get(ArticleNode(2))
    assert value == Article(id=2, title="title 2")
    assert loads() == 1
    assert reader.stats.tiers["redis"].hits == 1
    reader.get(ArticleNode(2))
    assert reader.stats.tiers["local"].hits == 1


def test_values_from_redis_come_back_as_the_model_type() -> None:
    make_manager().get(ArticleNode(3))
    value = make_manager().get(ArticleNode(3))
    assert type(value) is Article


def test_a_stored_value_that_no_longer_validates_is_a_miss(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis_client.set(redis_key(ArticleNode(4)), b'{"id": "not a number"}')
    manager = make_manager()
    assert manager.get(ArticleNode(4)) == Article(id=4, title="title 4")
    assert loads() == 1
    assert any("no longer validates" in r.getMessage() for r in caplog.records)


def test_none_is_cached_as_a_negative_entry(redis_client: redis.Redis) -> None:
    manager = make_manager()
    for _ in range(100):
        assert manager.get(ArticleNode(999)) is None
    assert loads() == 1
    assert manager.stats.negative_hits == 99
    assert redis_client.get(redis_key(ArticleNode(999))) == b"\x00"
    assert 0 < redis_client.pttl(redis_key(ArticleNode(999))) <= 5_000


def test_negative_entries_are_shared_through_redis() -> None:
    make_manager().get(ArticleNode(999))
    assert make_manager().get(ArticleNode(999)) is None
    assert loads() == 1


def test_a_negative_entry_expires_on_its_own_short_ttl() -> None:
    class QuickNegative(ArticleNode):
        negative_ttl = timedelta(milliseconds=100)

    manager = make_manager()
    assert manager.get(QuickNegative(999)) is None
    Source.articles[999] = Article(id=999, title="now it exists")
    assert manager.get(QuickNegative(999)) is None
    time.sleep(0.15)
    assert manager.get(QuickNegative(999)) == Article(id=999, title="now it exists")
    assert loads() == 2


def test_a_local_only_node_never_touches_redis(redis_client: redis.Redis) -> None:
    manager = make_manager()
    assert manager.get(LocalOnlyNode(5)) == Article(id=5, title="title 5")
    assert manager.get(LocalOnlyNode(5)) == Article(id=5, title="title 5")
    assert loads() == 1
    assert redis_client.keys("cache:article:5*") == []


def test_a_redis_only_node_reads_redis_every_time() -> None:
    manager = make_manager()
    manager.get(RedisOnlyNode(6))
    manager.get(RedisOnlyNode(6))
    assert loads() == 1
    assert manager.stats.tiers["redis"].hits == 1


def test_with_a_null_storage_the_local_tier_works_alone() -> None:
    manager = Manager()
    manager.register_storage("local", LocalStorage())
    manager.register_storage("redis", NullStorage())
    assert manager.get(ArticleNode(7)) == Article(id=7, title="title 7")
    assert manager.get(ArticleNode(7)) == Article(id=7, title="title 7")
    assert loads() == 1
    manager.remove(ArticleNode(7))
    manager.get(ArticleNode(7))
    assert loads() == 2


def test_version_bump_abandons_old_values() -> None:
    class ArticleNodeV2(ArticleNode):
        version = 2

    manager = make_manager()
    manager.get(ArticleNode(8))
    manager.get(ArticleNodeV2(8))
    assert loads() == 2


# -- the local tier --------------------------------------------------------------


def test_local_tier_never_exceeds_max_size_and_evicts_least_recently_used() -> None:
    storage = LocalStorage(max_size=3, ttl=timedelta(seconds=30))
    for key in "abc":
        storage.set(key, key.upper(), 30)
    assert storage.get("a") == "A"  # a is now the most recently used
    storage.set("d", "D", 30)
    assert len(storage) == 3
    assert storage.get("b") is MISS
    assert [storage.get(k) for k in "acd"] == ["A", "C", "D"]


def test_local_tier_bound_holds_through_the_manager() -> None:
    manager = make_manager(max_size=10)
    for n in range(1, 51):
        manager.get(ArticleNode(n))
    assert len(manager.all_storage["local"]) == 10  # type: ignore[arg-type]


def test_expired_entries_are_not_served() -> None:
    storage = LocalStorage(max_size=10, ttl=timedelta(seconds=30))
    storage.set("k", "v", 0.05)
    assert storage.get("k") == "v"
    time.sleep(0.06)
    assert storage.get("k") is MISS
    assert len(storage) == 0


def test_expired_local_entries_fall_through_to_redis() -> None:
    manager = make_manager(local_ttl=0.05)
    manager.get(ArticleNode(9))
    time.sleep(0.06)
    manager.get(ArticleNode(9))
    assert manager.stats.tiers["redis"].hits == 1
    assert loads() == 1


def test_concurrent_get_remove_and_expiry_never_mix_up_keys() -> None:
    manager = make_manager(max_size=20, local_ttl=0.01)
    errors: list[str] = []
    stop = time.monotonic() + 2.0

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            n = rng.randint(1, 40)
            if rng.random() < 0.2:
                manager.remove(ArticleNode(n))
            else:
                value = manager.get(ArticleNode(n))
                if value is None or value.id != n:
                    errors.append(f"asked {n}, got {value!r}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    local = manager.all_storage["local"]
    assert len(local) <= 20  # type: ignore[arg-type]


def test_local_storage_is_consistent_under_concurrent_writers() -> None:
    storage = LocalStorage(max_size=50, ttl=timedelta(seconds=30))

    def hammer(offset: int) -> None:
        for n in range(2_000):
            key = f"k{(n + offset) % 120}"
            storage.set(key, key, 30)
            value = storage.get(key)
            assert value is MISS or value == key
            if n % 7 == 0:
                storage.delete(key)

    run_threads(8, hammer, 3)
    assert len(storage) <= 50
    for key, (_, value) in list(storage._data.items()):
        assert key == value
