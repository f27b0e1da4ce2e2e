"""Nodes, models and helpers shared by the cache tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar, cast

import redis
from conftest import REDIS_URL
from pydantic import BaseModel

from app.cache import LocalStorage, Manager, Node, RedisStorage

#: Counts loads across processes: every test node's load() INCRs it.
LOADS_KEY = "test:loads"


class Article(BaseModel):
    id: int
    title: str
    version: int = 1


class Source:
    """A stand-in database shared by the loaders of this process."""

    articles: ClassVar[dict[int, Article]] = {}
    delay: ClassVar[float] = 0.0
    failing: ClassVar[Exception | None] = None

    @classmethod
    def reset(cls) -> None:
        cls.articles = {n: Article(id=n, title=f"title {n}") for n in range(1, 201)}
        cls.delay = 0.0
        cls.failing = None


def count_load(amount: int = 1) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.incrby(LOADS_KEY, amount)
    client.close()


def loads() -> int:
    client = redis.Redis.from_url(REDIS_URL)
    value = int(client.get(LOADS_KEY) or 0)  # pyright: ignore[reportArgumentType]
    client.close()
    return value


class ArticleNode(Node[Article]):
    storages: ClassVar = ["local", {"storage": "redis", "ttl": timedelta(seconds=120)}]

    def __init__(self, article_id: int) -> None:
        self.article_id = article_id

    def key(self) -> str:
        return f"article:{self.article_id}"

    def load(self) -> Article | None:
        count_load()
        row = Source.articles.get(self.article_id)  # read first, then be slow
        if Source.delay:
            time.sleep(Source.delay)
        if Source.failing is not None:
            raise Source.failing
        return row


class BatchArticleNode(ArticleNode):
    batches: ClassVar[list[list[int]]] = []

    @classmethod
    def load_many(cls, nodes: list[BatchArticleNode]) -> list[Article | None]:
        count_load(len(nodes))
        cls.batches.append([node.article_id for node in nodes])
        if Source.failing is not None:
            raise Source.failing
        return [Source.articles.get(node.article_id) for node in nodes]


class LocalOnlyNode(ArticleNode):
    storages: ClassVar = ["local"]


class RedisOnlyNode(ArticleNode):
    storages: ClassVar = ["redis"]


def redis_client(**kwargs: object) -> redis.Redis:
    return redis.Redis.from_url(
        REDIS_URL, socket_timeout=1, socket_connect_timeout=1, **kwargs
    )  # pyright: ignore[reportArgumentType]


def make_manager(
    client: redis.Redis | None = None,
    *,
    max_size: int = 1_000,
    local_ttl: float = 30,
    lock_wait: float = 5,
    lock_timeout: float = 10,
) -> Manager:
    manager = Manager(
        lock_wait=timedelta(seconds=lock_wait), lock_timeout=timedelta(seconds=lock_timeout)
    )
    manager.register_storage(
        "local", LocalStorage(max_size=max_size, ttl=timedelta(seconds=local_ttl))
    )
    manager.register_storage(
        "redis", RedisStorage(client or redis_client(), ttl=timedelta(minutes=10))
    )
    wait_local_copies_safe(manager)
    return manager


def wait_local_copies_safe(manager: Manager, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not manager._local_copies_safe:
        if time.monotonic() > deadline:
            raise AssertionError("cache listener did not subscribe in time")
        time.sleep(0.005)


def run_threads(count: int, target: Callable[..., object], *args: object) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a thread hung"
    return threads


class CountingRedis(redis.Redis):
    """A client that records the commands it sends (a script counts once, as EVALSHA)."""

    sent: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def counting_client() -> CountingRedis:
    client = cast("CountingRedis", CountingRedis.from_url(REDIS_URL, socket_timeout=1))
    client.sent = []
    return client


class TCPProxy:
    """A TCP proxy in front of the test Redis (or any local port) that can be
    stopped and started, or frozen: an outage, or a server that stops
    answering, without touching the real server."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target_port = target_port
        self._flowing = threading.Event()
        self._flowing.set()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def freeze(self) -> None:
        """Keep every connection open and accept new ones, but pass nothing on:
        a network black hole, or a server stopped with SIGSTOP."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def stop(self) -> None:
        self._flowing.set()
        if self._server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, destination):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
