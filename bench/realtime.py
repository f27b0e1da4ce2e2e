"""The notification stream against its rivals, on MariaDB and Redis, in one run.

    python -m bench.realtime            # 1,000 clients, 100 notifications/s, 30 s each
    python -m bench.realtime --quick    # 200 clients, 20 notifications/s, 10 s each

Each rival serves the same 1,000 users (one client each) while a publisher
process writes 100 notifications a second, round robin over the users, through
the app's own path: ``notifications.write`` in a transaction, then the
``notifications`` commit effect publishes it on Redis. Each notification's
``article_title`` carries the time it was committed, so a client knows its
publish-to-receive latency. The rivals run one after the other, each on a
fresh stream of notifications, and every figure is printed beside ours:

* **ours**: ``python -m app.realtime`` (asyncio, ``websockets``), one process;
* **gevent**: gunicorn's gevent worker, one process, with ``simple-websocket``
  (``bench/realtime_gevent.py``: the same work per connection and per frame);
* **polling**: the same clients ask ``GET /notifications?unread=true`` every
  5 s (each at its own offset) of gunicorn with ``gunicorn.conf.py`` (gthread,
  2 workers of 4 threads), and see a notification on the first poll after it.

Figures: latency p50/p99 (ms) over every notification received in the timed
window; RSS per idle connection (KB: the server's RSS with the clients
connected and idle, less its RSS before, over the clients); and the server's
CPU (user + system, from ``/proc``, master and workers) per notification
delivered in the window. The MariaDB database ``bench_realtime`` on
127.0.0.1:3306 is dropped and re-created (``BENCH_REALTIME_DATABASE_URL``);
Redis is 127.0.0.1:6379 database 9 (``BENCH_REALTIME_REDIS_URL``), flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymysql
from redis import Redis
from sqlalchemy import insert, make_url
from websockets.asyncio.client import ClientConnection, connect

from app.auth.access_tokens import issue_access_token
from bench.api import _die_with_parent, children_of, free_port, process_cpu

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "BENCH_REALTIME_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/bench_realtime"
)
REDIS_URL = os.environ.get("BENCH_REALTIME_REDIS_URL", "redis://127.0.0.1:6379/9")
SECRET = "b" * 40
PATH = "/api/v1/notifications/stream"
POLL_EVERY = 5.0


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list[float])
    delivered: int = 0
    cpu: float = 0.0
    rss_per_connection_kb: float | None = None
    #: Set once every stream client has had its ``ready``.
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def cpu_per_notification_us(self) -> float:
        return self.cpu / self.delivered * 1e6 if self.delivered else float("nan")


# -- set-up ---------------------------------------------------------------------------


def environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": "",
        "MEILI_URL": "",
        "INSTANCE_PATH": str(folder / "instance"),
        "LOG_LEVEL": "WARNING",
        "REALTIME_SEND_QUEUE": "1000",
        "DATABASE_POOL_SIZE": "10",
    }


def recreate_database(users: int) -> list[str]:
    """A migrated ``bench_realtime`` with ``users`` accounts; their access tokens."""
    url = make_url(DATABASE_URL)
    if url.database in (None, "", "test"):
        raise SystemExit("bench.realtime refuses the database 'test' (the test suite's) and none")
    server = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user="root")
    with server.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
        cursor.execute(f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4")
    server.close()
    from app.core.settings import Settings  # noqa: PLC0415 - after the database exists
    from app.extensions.database import create_database_engine  # noqa: PLC0415
    from app.migrations import upgrade  # noqa: PLC0415
    from app.models import User, utcnow  # noqa: PLC0415

    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        database_url=DATABASE_URL,
        instance_path=Path(tempfile.gettempdir()),
    )
    engine = create_database_engine(settings)
    upgrade(engine)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            insert(User),
            [
                {
                    "email": f"user{n}@bench.example",
                    "name": f"User {n}",
                    "password_hash": "-",
                    "is_admin": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(users)
            ],
        )
    engine.dispose()
    return [issue_access_token(n + 1, SECRET, timedelta(hours=2)) for n in range(users)]


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call
        )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def wait_listening(port: int, child: subprocess.Popen[bytes], log: Path) -> None:
    import socket  # noqa: PLC0415

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"a server exited at start-up; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.2)
    raise SystemExit(f"a server did not listen within 60 s; see {log}")


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def server_pids(child: subprocess.Popen[bytes]) -> list[int]:
    return [child.pid, *children_of(child.pid)]


# -- the clients ----------------------------------------------------------------------


def latency_of(notification: dict[str, Any]) -> float:
    return time.time() - int(notification["data"]["article_title"]) / 1e9


async def stream_clients(
    port: int, tokens: list[str], result: Result, window: asyncio.Event
) -> None:
    url = f"ws://127.0.0.1:{port}{PATH}"
    sockets: list[ClientConnection] = []
    for batch in range(0, len(tokens), 50):  # connect in batches, as a fleet of tabs would
        sockets += await asyncio.gather(
            *(
                connect(
                    url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60
                )
                for token in tokens[batch : batch + 50]
            )
        )
    for ws in sockets:
        assert json.loads(await ws.recv()) == {"type": "ready"}
    result.connected.set()

    async def read(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "notification" and window.is_set():
                    result.latencies.append(latency_of(frame["notification"]))
                    result.delivered += 1

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    try:
        await asyncio.Event().wait()
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def poll_clients(port: int, tokens: list[str], result: Result, window: asyncio.Event) -> None:
    async def poll(token: str) -> None:
        await asyncio.sleep(random.uniform(0, POLL_EVERY))
        seen = 0
        while True:
            started = time.monotonic()
            with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    b"GET /api/v1/notifications?unread=true&per_page=100 HTTP/1.1\r\n"
                    b"Host: bench\r\nConnection: close\r\nAuthorization: Bearer "
                    + token.encode()
                    + b"\r\n\r\n"
                )
                answer = await reader.read()
                writer.close()
                body = json.loads(answer.partition(b"\r\n\r\n")[2])
                for item in body["items"]:
                    if item["id"] > seen and window.is_set():
                        result.latencies.append(latency_of(item))
                        result.delivered += 1
                seen = max([seen, *(item["id"] for item in body["items"])])
            await asyncio.sleep(max(0.0, POLL_EVERY - (time.monotonic() - started)))

    tasks = [asyncio.create_task(poll(token)) for token in tokens]
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()


# -- one rival ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rival:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str]


async def run_rival(
    rival: Rival, tokens: list[str], args: argparse.Namespace, folder: Path
) -> Result:
    name, argv, port = rival.name, rival.argv, rival.port
    env = {**environment(folder), **rival.env}
    result = Result()
    log = folder / f"{name}.log"
    Redis.from_url(REDIS_URL).flushdb()
    with process(argv, env, log) as server:
        wait_listening(port, server, log)
        await asyncio.sleep(1.0)
        pids = server_pids(server)
        before = rss_kb(pids)
        window = asyncio.Event()
        polling = name == "polling"
        clients = asyncio.create_task(
            (poll_clients if polling else stream_clients)(port, tokens, result, window)
        )
        if not polling:
            while not result.connected.is_set():
                if clients.done():  # a client failed: raise its error
                    clients.result()
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # idle
            result.rss_per_connection_kb = (rss_kb(server_pids(server)) - before) / len(tokens)
        publisher_log = folder / f"{name}-publisher.log"
        publish = [sys.executable, "-m", "bench.realtime_publish", str(args.rate), str(len(tokens))]
        with process(publish, env, publisher_log):
            await asyncio.sleep(POLL_EVERY + 2 if polling else 2.0)  # warm up
            cpu_before = process_cpu(server_pids(server))
            window.set()
            await asyncio.sleep(args.seconds)
            window.clear()
            result.cpu = process_cpu(server_pids(server)) - cpu_before
        clients.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clients
    return result


async def main_async(args: argparse.Namespace) -> None:
    tokens = recreate_database(args.clients)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results: dict[str, Result] = {}
        ours_port, gevent_port, poll_port = free_port(), free_port(), free_port()
        rivals = {
            "ours": (
                [sys.executable, "-m", "app.realtime"],
                ours_port,
                {"REALTIME_BIND": f"127.0.0.1:{ours_port}"},
            ),
            "gevent": (
                [
                    sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1",
                    "--worker-connections", "4000", "-b", f"127.0.0.1:{gevent_port}",
                    "bench.realtime_gevent:app",
                ],
                gevent_port,
                {},
            ),
            "polling": (
                [
                    sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                    "app.wsgi:app",
                ],
                poll_port,
                {"GUNICORN_BIND": f"127.0.0.1:{poll_port}", "LOG_LEVEL": "WARNING"},
            ),
        }  # fmt: skip
        for name in args.only or rivals:
            argv, port, extra = rivals[name]
            results[name] = await run_rival(Rival(name, argv, port, extra), tokens, args, folder)
            print(f"  {name}: done ({results[name].delivered} delivered)", flush=True)
        report(results, args)


def report(results: dict[str, Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.clients} clients, {args.rate} notifications/s, {args.seconds:.0f} s measured each"
    )
    print(
        f"{'rival':<10}{'delivered':>10}{'p50 ms':>10}{'p99 ms':>10}{'KB/conn':>10}{'CPU µs/notif':>14}"
    )
    for name, result in results.items():
        rss = "-" if result.rss_per_connection_kb is None else f"{result.rss_per_connection_kb:.1f}"
        print(
            f"{name:<10}{result.delivered:>10}{result.percentile(50):>10.1f}"
            f"{result.percentile(99):>10.1f}{rss:>10}{result.cpu_per_notification_us:>14.0f}"
        )
    ours = results.get("ours")
    if ours is None:
        return
    for name, result in results.items():
        if name == "ours":
            continue
        print(
            f"{name} / ours: p99 latency x{result.percentile(99) / ours.percentile(99):.1f},"
            f" CPU per notification x{result.cpu_per_notification_us / ours.cpu_per_notification_us:.1f}"
        )
    print(f"median latency, ours: {statistics.median(ours.latencies) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100, help="notifications per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", nargs="*", choices=["ours", "gevent", "polling"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.rate, args.seconds = 200, 20, 10.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
