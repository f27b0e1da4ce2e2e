"""The tiered cache against the libraries people use, in one run.

    python -m bench.cache            # or: make bench-cache

Needs Redis on 127.0.0.1:6379 (uses database 14, flushed first; ``BENCH_REDIS_URL``
overrides). Sections:

1. **Local hit**, the node built in the timed loop, against a bare dict with a
   TTL check (the floor), ``cachetools.TTLCache`` behind a lock, a dogpile.cache
   memory region and Flask-Caching's ``SimpleCache``.
2. **Redis-tier hit** (local miss) against raw redis-py ``GET`` + ``orjson.loads``
   (the Redis floor), dogpile's Redis backend and Flask-Caching's ``RedisCache``.
3. **get_many** of 100 keys from Redis against 100 single gets.
4. **Stampede**: 4 processes x 16 threads ask for one cold key whose load takes
   100 ms; loads counted in Redis, slowest caller timed.
5. **Invalidation**: the stale window after ``remove`` as seen by 3 other
   processes: p50, p99 and max.

Rivals run interleaved in rounds; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import cachetools
import orjson
import redis
from dogpile.cache import make_region
from flask import Flask
from flask_caching import Cache
from pydantic import BaseModel

from app.cache import LocalStorage, Manager, Node, RedisStorage

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEYS = 1_000
LOAD_SECONDS = 0.1
fork = multiprocessing.get_context("fork")


class Article(BaseModel):
    id: int
    title: str
    tags: list[str]
    views: int


def article(n: int) -> Article:
    return Article(id=n, title=f"Article {n}", tags=["a", "b"], views=n * 3)


class ArticleNode(Node[Article]):
    storages: ClassVar = ["local", "redis"]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article:{self.article_id}"

    def load(self) -> Article | None:
        return article(self.article_id)


def new_manager(local_size: int = 10_000) -> Manager:
    manager = Manager(prefix="bench")
    manager.register_storage("local", LocalStorage(max_size=local_size, ttl=timedelta(minutes=5)))
    manager.register_storage("redis", RedisStorage(redis.Redis.from_url(REDIS_URL)))
    deadline = time.monotonic() + 5
    while not manager._local_copies_safe and time.monotonic() < deadline:
        time.sleep(0.01)
    return manager


def measure(
    rivals: dict[str, Callable[[int], object]], rounds: int, per_round: int
) -> dict[str, float]:
    """Median seconds per call, rivals interleaved round after round."""
    samples: dict[str, list[float]] = {name: [] for name in rivals}
    for rival in rivals.values():
        for n in range(min(per_round, KEYS)):
            rival(n)
    for _ in range(rounds):
        for name, rival in rivals.items():
            started = time.perf_counter()
            for n in range(per_round):
                rival(n % KEYS)
            samples[name].append((time.perf_counter() - started) / per_round)
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, timings: dict[str, float], floor: str, unit: str = "us") -> None:
    scale = 1e6 if unit == "us" else 1e3
    print(f"\n{title}")
    for name, seconds in timings.items():
        print(
            f"  {name:<34} {seconds * scale:9.2f} {unit}   {seconds / timings[floor]:6.2f}x {floor}"
        )


# -- 1. local hit ---------------------------------------------------------------


def local_hit(rounds: int) -> None:
    manager = new_manager()
    for n in range(KEYS):
        manager.get(ArticleNode(n))
    values = {n: article(n) for n in range(KEYS)}

    bare: dict[str, tuple[float, Article]] = {
        f"article:{n}": (time.monotonic() + 300, values[n]) for n in range(KEYS)
    }

    def bare_dict(n: int) -> object:
        entry = bare.get(f"article:{n}")
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    ttl_cache: cachetools.TTLCache[str, Article] = cachetools.TTLCache(maxsize=10_000, ttl=300)
    ttl_lock = threading.Lock()
    for n in range(KEYS):
        ttl_cache[f"article:{n}"] = values[n]

    def cachetools_locked(n: int) -> object:
        with ttl_lock:
            return ttl_cache.get(f"article:{n}")

    region = make_region().configure("dogpile.cache.memory", expiration_time=300)
    for n in range(KEYS):
        region.set(f"article:{n}", values[n])

    def dogpile_memory(n: int) -> object:
        return region.get_or_create(f"article:{n}", lambda: values[n])

    flask_app = Flask("bench")
    simple = Cache(flask_app, config={"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 10_000})
    context = flask_app.app_context()
    context.push()
    for n in range(KEYS):
        simple.set(f"article:{n}", values[n], timeout=300)

    def flask_simple(n: int) -> object:
        return simple.get(f"article:{n}")

    def ours(n: int) -> object:
        return manager.get(ArticleNode(n))

    assert ours(5) == bare_dict(5) == cachetools_locked(5) == dogpile_memory(5) == flask_simple(5)
    timings = measure(
        {
            "bare dict + TTL check (floor)": bare_dict,
            "Manager.get, local tier": ours,
            "cachetools.TTLCache + lock": cachetools_locked,
            "dogpile.cache memory region": dogpile_memory,
            "Flask-Caching SimpleCache": flask_simple,
        },
        rounds,
        20_000,
    )
    context.pop()
    manager.close()
    table(
        "1. local hit (per get, node or key built in the loop)",
        timings,
        "bare dict + TTL check (floor)",
    )
    ours_time = timings["Manager.get, local tier"]
    libraries = [
        k for k in timings if k not in {"bare dict + TTL check (floor)", "Manager.get, local tier"}
    ]
    fastest = min(libraries, key=timings.__getitem__)
    print(
        f"  ours vs the fastest library ({fastest}): {timings[fastest] / ours_time:.2f}x faster (target > 1)"
    )
    print(
        f"  ours / floor: {ours_time / timings['bare dict + TTL check (floor)']:.2f}x (target <= 10)"
    )


# -- 2. Redis-tier hit ----------------------------------------------------------


def redis_hit(rounds: int) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    manager = new_manager(local_size=1)  # every read misses the local tier
    for n in range(KEYS):
        manager.get(ArticleNode(n))
    raw = redis.Redis.from_url(REDIS_URL)
    for n in range(KEYS):
        raw.set(f"raw:article:{n}", orjson.dumps(article(n).model_dump()))

    def raw_floor(n: int) -> object:
        return orjson.loads(raw.get(f"raw:article:{n}"))  # pyright: ignore[reportArgumentType]

    region = make_region().configure(
        "dogpile.cache.redis",
        arguments={"url": REDIS_URL, "redis_expiration_time": 300},
        expiration_time=300,
    )
    for n in range(KEYS):
        region.set(f"article:{n}", article(n))

    def dogpile_redis(n: int) -> object:
        return region.get(f"article:{n}")

    flask_app = Flask("bench")
    cache = Cache(flask_app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": REDIS_URL})
    context = flask_app.app_context()
    context.push()
    for n in range(KEYS):
        cache.set(f"article:{n}", article(n), timeout=300)

    def flask_redis(n: int) -> object:
        return cache.get(f"article:{n}")

    def ours(n: int) -> object:
        return manager.get(ArticleNode(n))

    assert ours(7) == article(7) == dogpile_redis(7) == flask_redis(7)
    before = manager.stats.tiers["redis"].hits
    timings = measure(
        {
            "redis-py GET + orjson.loads (floor)": raw_floor,
            "Manager.get, Redis tier": ours,
            "dogpile.cache Redis region": dogpile_redis,
            "Flask-Caching RedisCache": flask_redis,
        },
        rounds,
        500,
    )
    assert manager.stats.tiers["redis"].hits > before  # really read from Redis
    context.pop()
    manager.close()
    client.close()
    table("2. Redis-tier hit (local miss)", timings, "redis-py GET + orjson.loads (floor)")
    ratio = timings["Manager.get, Redis tier"] / timings["redis-py GET + orjson.loads (floor)"]
    print(f"  ours / Redis floor: {ratio:.2f}x (target <= 1.2)")


# -- 3. get_many ----------------------------------------------------------------


class RedisArticleNode(ArticleNode):
    """Kept in Redis only, so both sides of section 3 read Redis every time."""

    storages: ClassVar = ["redis"]


def get_many(rounds: int) -> None:
    manager = new_manager()
    nodes = [RedisArticleNode(n) for n in range(100)]
    manager.get_many(nodes)

    def batch(_: int) -> object:
        return manager.get_many(nodes)

    def singles(_: int) -> object:
        return [manager.get(node) for node in nodes]

    assert batch(0) == singles(0)
    timings = measure({"100 x Manager.get": singles, "Manager.get_many(100)": batch}, rounds, 20)
    manager.close()
    table(
        "3. 100 keys from Redis, a Redis-only node (per batch)",
        timings,
        "Manager.get_many(100)",
        unit="ms",
    )
    print(
        f"  get_many is {timings['100 x Manager.get'] / timings['Manager.get_many(100)']:.1f}x"
        " faster than 100 single gets (target >= 10)"
    )


# -- 4. stampede ----------------------------------------------------------------


def count_load() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.incr("bench:loads")
    client.close()
    time.sleep(LOAD_SECONDS)


def slow_article() -> Article:
    count_load()
    return article(1)


class SlowNode(ArticleNode):
    def load(self) -> Article | None:
        return slow_article()


def rival_getter(name: str, key: str) -> Callable[[], object]:
    """Built inside each child process, so nothing is shared but Redis."""
    if name == "ours":
        manager = new_manager()
        return lambda: manager.get(SlowNode(1))
    if name == "dogpile Redis, distributed_lock":
        region = make_region().configure(
            "dogpile.cache.redis",
            arguments={
                "url": REDIS_URL,
                "distributed_lock": True,
                "thread_local_lock": False,
                "lock_timeout": 10,
                "redis_expiration_time": 60,
            },
            expiration_time=60,
        )
        return lambda: region.get_or_create(key, slow_article)
    if name == "dogpile memory":
        region = make_region().configure("dogpile.cache.memory", expiration_time=60)
        return lambda: region.get_or_create(key, slow_article)
    if name == "cachetools, lock + condition":
        lock = threading.Lock()

        @cachetools.cached(
            cachetools.TTLCache(maxsize=100, ttl=60), lock=lock, condition=threading.Condition(lock)
        )
        def load() -> Article:
            return slow_article()

        return load
    if name == "Flask-Caching RedisCache, memoize":
        flask_app = Flask("bench")
        cache = Cache(flask_app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": REDIS_URL})

        @cache.memoize(timeout=60)
        def memoized() -> Article:
            return slow_article()

        def call() -> object:
            with flask_app.app_context():
                return memoized()

        return call
    raise ValueError(name)


def _stampede_child(name: str, key: str, start: Any, results: Any) -> None:
    get = rival_getter(name, key)
    durations: list[float] = []
    lock = threading.Lock()

    def ask() -> None:
        start.wait()
        started = time.perf_counter()
        get()
        with lock:
            durations.append(time.perf_counter() - started)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(durations)


def stampede() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    print(
        f"\n4. stampede: 4 processes x 16 threads, one cold key, load takes {LOAD_SECONDS * 1000:.0f} ms"
    )
    rivals = [
        "ours",
        "dogpile Redis, distributed_lock",
        "dogpile memory",
        "cachetools, lock + condition",
        "Flask-Caching RedisCache, memoize",
    ]
    for round_number, name in enumerate(rivals):
        client.flushdb()
        key = f"stampede:{round_number}"
        start = fork.Event()
        results = fork.Queue()
        children = [
            fork.Process(target=_stampede_child, args=(name, key, start, results)) for _ in range(4)
        ]
        for child in children:
            child.start()
        time.sleep(1.0)  # every child ready (and subscribed, for ours)
        start.set()
        durations = [d for _ in children for d in results.get(timeout=60)]
        for child in children:
            child.join(timeout=60)
        loads = int(client.get("bench:loads") or 0)  # pyright: ignore[reportArgumentType]
        slowest = max(durations)
        print(
            f"  {name:<36} loads: {loads:3d}   slowest caller: {slowest * 1000:7.1f} ms"
            f" = {slowest / LOAD_SECONDS:.2f}x the load time"
        )
    client.close()


# -- 5. invalidation --------------------------------------------------------------


class VersionNode(Node[Article]):
    storages: ClassVar = ["local", "redis"]

    def key(self) -> str:
        return "versioned"

    def load(self) -> Article | None:
        client = redis.Redis.from_url(REDIS_URL)
        version = int(client.get("bench:version") or 0)  # pyright: ignore[reportArgumentType]
        client.close()
        return Article(id=1, title="v", tags=[], views=version)


def invalidation(samples: int) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.set("bench:version", 0)
    manager = new_manager()
    watchers = 3
    windows: list[float] = []
    ready = fork.Queue()
    results = fork.Queue()
    gos = [fork.Event() for _ in range(samples)]
    children = [
        fork.Process(target=_invalidation_child, args=(ready, gos, results, samples))
        for _ in range(watchers)
    ]
    for child in children:
        child.start()
    for sample in range(1, samples + 1):
        for _ in range(watchers):
            ready.get(timeout=30)
        client.set("bench:version", sample)
        manager.remove(VersionNode())
        client.set("bench:removed_at", repr(time.time()))
        gos[sample - 1].set()
        windows.extend(results.get(timeout=30) for _ in range(watchers))
    for child in children:
        child.join(timeout=30)
    manager.close()
    client.close()
    windows.sort()
    p50 = windows[len(windows) // 2]
    p99 = windows[min(len(windows) - 1, int(len(windows) * 0.99))]
    print(
        f"\n5. invalidation: stale window after remove, {watchers} other processes, {len(windows)} samples"
    )
    print(f"  p50 {p50 * 1000:.2f} ms   p99 {p99 * 1000:.2f} ms   max {windows[-1] * 1000:.2f} ms")


def _invalidation_child(ready: Any, gos: list[Any], results: Any, samples: int) -> None:
    manager = new_manager()
    client = redis.Redis.from_url(REDIS_URL)
    for sample in range(1, samples + 1):
        manager.get(VersionNode())  # a stale copy sits in the local tier
        ready.put(True)
        gos[sample - 1].wait()
        while (value := manager.get(VersionNode())) is None or value.views < sample:
            pass
        seen = time.time()
        removed_at = float(
            client.get("bench:removed_at") or seen
        )  # pyright: ignore[reportArgumentType]
        results.put(max(0.0, seen - removed_at))
    manager.close()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the tiered cache against its rivals.")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--samples", type=int, default=100, help="invalidation samples")
    parser.add_argument("--only", type=int, choices=range(1, 6), help="run one section")
    args = parser.parse_args()
    redis.Redis.from_url(REDIS_URL).flushdb()
    sections: list[Callable[[], None]] = [
        lambda: local_hit(args.rounds),
        lambda: redis_hit(args.rounds),
        lambda: get_many(args.rounds),
        stampede,
        lambda: invalidation(args.samples),
    ]
    for number, section in enumerate(sections, start=1):
        if args.only in (None, number):
            section()


if __name__ == "__main__":
    main()
