"""The HTTP API under gunicorn, on MariaDB and Redis, against its rivals, in one run.

    PYTHONPATH=. .venv/bin/python -m bench.api            # the full run, about 7 minutes
    PYTHONPATH=. .venv/bin/python -m bench.api --quick    # a sanity run, about 2 minutes

(the defaults are ``--rounds 10 --seconds 1.5``: every rival runs for 1.5 s a
round, as wrk's ``-d`` would, after 0.15 s of warm-up; ``--quick`` is 2 rounds of
0.3 s).

Needs MariaDB on 127.0.0.1:3306 (user ``root``, no password) and Redis on
127.0.0.1:6379. It rebuilds the database ``bench_api`` on every run (dropped,
migrated with the app's own migrations, seeded by the app's ``flask seed``
command with 20 users and 1,000 articles, about two thirds of them published)
and flushes and uses Redis database 13 (``BENCH_API_DATABASE_URL`` and ``BENCH_API_REDIS_URL`` point
elsewhere; the database ``test``, the test suite's, is refused).

Ten servers run at once, each under gunicorn with ``gunicorn.conf.py`` (2
workers, its gthread worker (``app.core.gunicorn_worker.Worker``, which accepts
only while a thread is free) x 4 threads, unless told otherwise; ``APP_ENV=production``,
``LOG_LEVEL=WARNING`` unless said below, so the app writes no access log line, as
the rivals write none; ``--max-requests 0`` so no worker restarts in the middle of
a round), on their own loopback ports. stdout and stderr of each go to a log file:

* ``APIFlask, cached, production logging``: the template's app (``app.wsgi:app``)
  at its production defaults, ``LOG_LEVEL=INFO`` and ``LOG_FORMAT=json``: one JSON
  access line per request to stderr, here a file (in production, a pipe that the
  container runtime reads). The run counts those lines at the end;
* ``APIFlask, cached``: the same app at ``LOG_LEVEL=WARNING``;
* ``APIFlask, uncached``: the same app, the article read bypassing the cache
  (``bench.api_rivals:make_uncached()``: ``ArticleNode(id).load()`` per request);
* ``stock Flask``: ``flask.Flask``, ``jsonify``, SQLAlchemy ORM on the same rows
  with the same eager loading (``bench.api_rivals:make_stock()``);
* ``Flask + Flask-Caching (RedisCache)``: stock Flask whose article view is
  ``@cache.cached()`` in Redis (``bench.api_rivals:make_flask_caching()``);
* ``FastAPI + fastapi-cache2 (Redis)``: an ``async`` endpoint under
  ``@cache(expire=600)``, ``RedisBackend`` on ``redis.asyncio``
  (``bench.api_fastapi:make_cached()``);
* ``FastAPI, FSFT-style, no cache``: FastAPI as full-stack-fastapi-template writes
  it: sync endpoints, a ``Session`` from ``Depends`` per request, pydantic
  ``response_model`` (``bench.api_fastapi:make_fsft()``);
* ``PyMySQL + orjson (floor)``: the list page only: the app's three ``SELECT``s
  sent with the raw driver, written by orjson (``bench.api_rivals:make_floor()``);
* ``bare WSGI``: the bytes the app returned, served as they are (the ceiling);
* ``bare WSGI, the app's headers``: the same, for the article reads, with the
  headers the app sent for each (``make_bare(with_headers=True)``).

The two FastAPI servers run ``--worker-class uvicorn_worker.UvicornWorker`` (the
same config otherwise); uvicorn picks its event loop and HTTP parser (uvloop and
httptools when installed, else asyncio and h11), and the first lines say which.
Before any timing, every rival's answers are checked against the app's: the same
bytes, or the same JSON data.

This process is the load generator: keep-alive HTTP/1.1 connections (8 by
default) on raw sockets, driven from one thread by ``selectors``, each with one
request in flight (a closed loop). Requests rotate over the first 100 published
ids (each in every cache after the warm-up) or ask for
``/api/v1/articles?per_page=100``. After the warm-up, a cache check shows that
each cached rival's keys are in Redis and that 500 of its reads move MariaDB's
``Com_select`` counter by (next to) nothing; stock Flask's 500 move it by about
1,000 (the counter counts every client of MariaDB: others show as noise). Each round
runs every rival once for the same time, in an order rotated from round to round,
on fresh connections, after a warm-up of a tenth of that time; figures are medians over
rounds, with the lowest and highest round. Beside throughput and latency it
reports CPU per request, read from ``/proc`` over the timed part of each run: the
server's (gunicorn master and workers), MariaDB's (when its process is visible),
and this load generator's share of one core; and each server's resident memory
per worker (``VmRSS``, median and largest of its workers, after the rounds). The
machine has 2 cores, shared by all of them: keep ``--connections`` modest.

The output starts with the versions and the commit measured (and the files of
``app/``, ``bench/`` and ``gunicorn.conf.py`` that differ from it). After the two
tables (the article read; the list page):

3. per-round ratios for the targets: each round pairs two rivals' req/s from
   that round; the median, lowest and highest ratio, the target and whether the
   median meets it (and in how many rounds it did);
4. how the connections were split between each server's workers in each round
   (e.g. ``5/3``), beside that round's req/s: counted once per timed run, after
   its warm-up, as the ESTABLISHED sockets to the server's port among each
   worker's open files;
5. a breakdown (``--no-breakdown`` skips it) that times a request to each WSGI
   rival and the pieces of the app's read in this process: one thread, no HTTP.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import http.client
import importlib.util
import os
import platform
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import fastapi
import gunicorn
import orjson
import pymysql
import redis
import uvicorn
from flask import Flask
from sqlalchemy import func, make_url, select, text
from werkzeug.test import EnvironBuilder

from app import create_app
from app.api.v1 import articles as articles_view
from app.core.json import dumps_bytes
from app.core.settings import Settings
from app.extensions.cache import get_cache
from app.extensions.database import create_database_engine, get_database
from app.migrations import head_revision, upgrade
from app.models import Article, User
from app.schemas.articles import ArticleQuery
from app.services import articles as service
from app.services.articles import ArticleNode
from bench import api_fastapi, api_rivals

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "BENCH_API_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/bench_api"
)
REDIS_URL = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/13")
#: Pub/sub channels ignore Redis database numbers: a prefix of its own keeps the
#: benchmark's invalidations away from any other app (or test run) on this Redis.
CACHE_PREFIX = "bench-api"
USERS = 20
ARTICLES = 1_000
IDS = 100
ITEM = "GET /api/v1/articles/{id}"
LIST_PATH = "/api/v1/articles?per_page=100"
LIST = f"GET {LIST_PATH}"
SECRET_KEY = "bench-api-secret-key-not-for-production-0123456789"  # noqa: S105

CACHED = "APIFlask, cached"
CACHED_PROD = "APIFlask, cached, production logging"
UNCACHED = "APIFlask, uncached"
STOCK = "stock Flask"
FLASK_CACHING = "Flask + Flask-Caching (RedisCache)"
FASTAPI_CACHE = "FastAPI + fastapi-cache2 (Redis)"
FSFT = "FastAPI, FSFT-style, no cache"
FLOOR = "PyMySQL + orjson (floor)"
BARE = "bare WSGI (ceiling)"
BARE_HEADERS = "bare WSGI, the app's headers"
APIFLASK = "APIFlask, cached"
APIFLASK_PROD = "APIFlask, cached, production logging"
APIFLASK_UNCACHED = "APIFlask, uncached"
#: The app's production defaults (``app/core/settings.py``): ``log_level`` INFO,
#: and ``log_format`` unset, which means json when ``APP_ENV=production``.
PRODUCTION_LOGGING = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}


# -- the database ---------------------------------------------------------------------


def connect_server() -> pymysql.Connection[Any]:
    """A connection to the MariaDB server, no database selected."""
    url = make_url(DATABASE_URL)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )


def _settings(**overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        app_env="production",
        secret_key=SECRET_KEY,
        database_url=DATABASE_URL,
        redis_url=REDIS_URL,
        cache_prefix=CACHE_PREFIX,
        log_level="WARNING",
        **overrides,
    )


def prepare_database(instance: Path) -> list[int]:
    """Build ``bench_api`` afresh: drop it, migrate it with the app's migrations and
    seed it with ``flask seed`` (repeatable: a fixed random seed). Rebuilt on every
    run, so an edited migration or model never meets a stale schema. Returns the
    first :data:`IDS` published article ids."""
    url = make_url(DATABASE_URL)
    if url.database in (None, "", "test"):
        raise SystemExit("bench.api refuses the database 'test' (the test suite's) and no database")
    server = connect_server()
    with server.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
        cursor.execute(
            f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    server.close()

    settings = _settings(instance_path=instance)
    engine = create_database_engine(settings)
    upgrade(engine)
    app = create_app(settings)
    result = app.test_cli_runner().invoke(
        args=["seed", "--users", str(USERS), "--articles", str(ARTICLES)]
    )
    assert result.exit_code == 0, result.output
    app.extensions["cache"].close()  # its Redis listener thread
    app.extensions["database"].engine.dispose()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
        assert connection.scalar(select(func.count()).select_from(User)) == USERS
        ids = list(
            connection.scalars(
                select(Article.id).where(Article.status == "published").order_by(Article.id)
            )
        )
    engine.dispose()
    assert len(ids) >= IDS, f"only {len(ids)} published articles"
    return ids[:IDS]


# -- the servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if this benchmark dies, even by SIGKILL.
    libc was loaded beforehand, so the child runs one foreign call and nothing else."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


#: gunicorn's worker class for the ASGI (FastAPI) rivals.
UVICORN_WORKER = "uvicorn_worker.UvicornWorker"


class Server:
    """One gunicorn master (and its workers) serving ``target`` on a loopback port,
    with ``gunicorn.conf.py`` (its worker class replaced by ``worker_class`` if
    given) and the environment ``env`` (plus ``extra_env``). stdout and stderr go
    to one log file: the app's JSON access lines too, when it writes them."""

    def __init__(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        logs: Path,
        *,
        worker_class: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.target = target
        self.worker_class = worker_class
        self.port = free_port()
        self.env = {**env, **(extra_env or {}), "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        self.log_path = logs / f"{'-'.join(part for part in slug.split('-') if part)}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    def start(self) -> None:
        self._log = self.log_path.open("w")
        worker_class = ["--worker-class", self.worker_class] if self.worker_class else []
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--max-requests",
                "0",
                *worker_class,
                self.target,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, nothing to deadlock on
        )

    def wait_ready(self, path: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if fetch(self.port, path)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {seconds:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()  # gunicorn's graceful stop: workers finish, then exit
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        assert self.process is not None
        return [self.process.pid, *children_of(self.process.pid)]

    def workers(self) -> list[int]:
        """The gunicorn workers (the master's children), in pid order."""
        assert self.process is not None
        return sorted(children_of(self.process.pid))


@contextlib.contextmanager
def serving(servers: list[Server]) -> Iterator[None]:
    """Every server stopped on the way out, whatever happened."""
    try:
        yield
    finally:
        for server in servers:
            server.stop()


#: The answers each port has sent this process: for the production-logging
#: app, the access lines its log file must hold.
ANSWERS: collections.Counter[int] = collections.Counter()


def exchange(port: int, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """One ``GET``: the status, the headers and the body of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        ANSWERS[port] += 1
        body = response.read()
        return response.status, response.getheaders(), body
    finally:
        connection.close()


def fetch(port: int, path: str) -> tuple[int, bytes]:
    status, _, body = exchange(port, path)
    return status, body


def fetch_headers(port: int, path: str) -> list[tuple[str, str]]:
    """The headers the server answers ``path`` with, less the three gunicorn
    writes itself (``Server``, ``Date``, ``Connection``)."""
    own = {"server", "date", "connection"}
    return [(name, value) for name, value in exchange(port, path)[1] if name.lower() not in own]


# -- CPU accounting -------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (field 3 is index 0)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still alive)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return found


def database_pids() -> list[int]:
    """The MariaDB server's process, when it runs on this machine and is visible."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    found.append(int(entry.name))
    return found


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resident_mib(pid: int) -> float:
    """``VmRSS`` of the process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise ValueError(f"no VmRSS for pid {pid}")


TCP_ESTABLISHED = "01"


def established_inodes(port: int) -> set[int]:
    """The socket inodes of the ESTABLISHED TCP connections whose local port is
    ``port``: the server's side of each client connection (the client's side has
    ``port`` as its remote port, and the listening socket is not ESTABLISHED)."""
    inodes: set[int] = set()
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table_path).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rpartition(":")[2], 16)
                if local_port == port and fields[3] == TCP_ESTABLISHED:
                    inodes.add(int(fields[9]))
    return inodes


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """How many of the ESTABLISHED connections to ``port`` each worker holds: the
    sockets among its open files (``/proc/<pid>/fd`` -> ``socket:[inode]``)."""
    inodes = established_inodes(port)
    counts: list[int] = []
    for pid in workers:
        held = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                        held += 1
        counts.append(held)
    return counts


# -- the load generator ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    rps: float
    p50: float
    p99: float
    #: CPU seconds per request: the server (gunicorn master and workers), MariaDB,
    #: and the share of one core this load generator used.
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    client_share: float = 0.0


class _Connection:
    """One keep-alive connection with at most one request in flight."""

    __slots__ = ("buffer", "expect", "header_end", "length", "port", "sock", "started")

    def __init__(self, sock: socket.socket, port: int) -> None:
        self.sock = sock
        self.port = port
        self.buffer = bytearray()
        self.expect = 0
        self.header_end = -1
        self.length = -1
        self.started = 0.0

    def send(self, request: bytes, expect: int) -> None:
        self.buffer.clear()
        self.expect = expect
        self.header_end = -1
        self.length = -1
        self.started = time.perf_counter()
        self.sock.send(request)  # a few dozen bytes: the socket buffer takes them

    def feed(self) -> bool:
        """Read what arrived; true once the whole answer is in."""
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError(f"port {self.port} closed a keep-alive connection")
        self.buffer += chunk
        if self.header_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            self._read_head(end)
        return len(self.buffer) - self.header_end >= self.length

    def _read_head(self, end: int) -> None:
        self.header_end = end + 4
        head = bytes(self.buffer[:end]).lower()
        if not head.startswith(b"http/1.1 200 "):
            raise RuntimeError(f"port {self.port}: {bytes(self.buffer[:300])!r}")
        if b"\r\nconnection: close" in head:
            raise ConnectionError(f"port {self.port} asked to close the connection")
        at = head.index(b"\r\ncontent-length:") + 17
        line_end = head.find(b"\r\n", at)
        self.length = int(head[at : line_end if line_end >= 0 else None])
        if self.length != self.expect:
            raise RuntimeError(f"port {self.port}: {self.length} bytes, expected {self.expect}")


#: One request as sent (its bytes) and the Content-Length its answer must have.
Target = tuple[bytes, int]


def request_bytes(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n".encode()


def _open(port: int, selector: selectors.BaseSelector) -> _Connection:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    connection = _Connection(sock, port)
    selector.register(sock, selectors.EVENT_READ, connection)
    return connection


def _cpu_mark(watch: tuple[list[int], list[int]]) -> tuple[float, float, float, float]:
    """Now, and the CPU seconds so far of the server, of MariaDB and of this process."""
    server_pids, database = watch
    return time.perf_counter(), process_cpu(server_pids), process_cpu(database), own_cpu()


def drive(
    port: int,
    targets: list[Target],
    connections: int,
    *,
    requests: int = 0,
    seconds: float = 0.0,
    warmup: float = 0,
    watch: tuple[list[int], list[int]] = ([], []),
    probe: Callable[[], None] | None = None,
) -> Sample:
    """Keep one request in flight on each of ``connections`` keep-alive
    connections, rotating over ``targets``, for ``requests`` answers after the
    first ``warmup`` answers; or, with ``seconds``, for ``seconds`` after the
    first ``warmup`` seconds, as wrk's ``-d`` does (the requests still in flight
    when the time is up are awaited, and count). Throughput, latencies and CPU
    (of the ``watch`` pids: the server's, MariaDB's) are measured from the end of
    the warm-up to the last answer. ``probe`` is called once, when the warm-up
    ends (before the timed part starts: its own cost is not timed)."""
    if (requests > 0) == (seconds > 0):
        raise ValueError("drive() takes requests or seconds")
    selector = selectors.DefaultSelector()
    issued = completed = in_flight = 0
    latencies: list[float] = []
    began = time.perf_counter()
    mark = _cpu_mark(watch)
    warming = warmup > 0
    # When no request may be sent any more: a count of requests, or a time.
    last_request = int(warmup) + requests if requests else 0
    ends = began + warmup + seconds
    try:
        for _ in range(connections if seconds else min(connections, last_request)):
            _open(port, selector).send(*targets[issued % len(targets)])
            issued += 1
            in_flight += 1
        while in_flight:
            events = selector.select(timeout=30)
            if not events:
                raise TimeoutError(f"no answer on port {port} for 30 s")
            for key, _ in events:
                connection = key.data
                if not connection.feed():
                    continue
                completed += 1
                in_flight -= 1
                now = time.perf_counter()
                if not warming:
                    latencies.append(now - connection.started)
                elif completed >= warmup if requests else now >= began + warmup:
                    warming = False
                    if probe is not None:
                        probe()
                    mark = _cpu_mark(watch)
                    ends = mark[0] + seconds
                if issued < last_request if requests else warming or now < ends:
                    connection.send(*targets[issued % len(targets)])
                    issued += 1
                    in_flight += 1
        elapsed, server_cpu, database_cpu, client_cpu = (
            after - before for after, before in zip(_cpu_mark(watch), mark, strict=True)
        )
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
    ANSWERS[port] += completed
    latencies.sort()
    counted = len(latencies)
    return Sample(
        rps=counted / elapsed,
        p50=latencies[counted // 2],
        p99=latencies[min(counted - 1, int(counted * 0.99))],
        server_cpu=server_cpu / counted,
        database_cpu=database_cpu / counted,
        client_share=client_cpu / elapsed,
    )


# -- the run --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rival:
    endpoint: str
    name: str
    server: Server
    targets: list[Target]


def reference_bodies(app: Server, paths: list[str]) -> dict[str, bytes]:
    bodies: dict[str, bytes] = {}
    for path in paths:
        status, body = fetch(app.port, path)
        assert status == 200, (path, status, body[:200])
        bodies[path] = body
    return bodies


def check_same(
    server: Server, bodies: dict[str, bytes], *, same_bytes: bool, paths: list[str] | None = None
) -> dict[str, int]:
    """The rival answers each path (of ``paths``, or all) with the app's bytes (or
    data); the lengths it sends."""
    lengths: dict[str, int] = {}
    for path in bodies if paths is None else paths:
        expected = bodies[path]
        status, body = fetch(server.port, path)
        assert status == 200, (server.name, path, status, body[:200])
        if same_bytes:
            assert body == expected, (server.name, path)
        else:
            assert orjson.loads(body) == orjson.loads(expected), (server.name, path)
        lengths[path] = len(body)
    return lengths


Samples = dict[tuple[str, str], list[Sample]]
#: Per rival, per round: how many of the connections each worker held ("5/3").
Splits = dict[tuple[str, str], list[str]]


def run_rounds(
    rivals: list[Rival], rounds: int, seconds: float, connections: int
) -> tuple[Samples, Splits]:
    """Each round runs every rival for ``seconds``, after a tenth of that as
    warm-up, in an order rotated from round to round."""
    samples: Samples = {(r.endpoint, r.name): [] for r in rivals}
    splits: Splits = {(r.endpoint, r.name): [] for r in rivals}
    database = database_pids()
    for number in range(rounds):
        started = time.perf_counter()
        shift = number % len(rivals)
        for rival in rivals[shift:] + rivals[:shift]:
            key = (rival.endpoint, rival.name)

            def probe(server: Server = rival.server, key: tuple[str, str] = key) -> None:
                held = connections_per_worker(server.workers(), server.port)
                splits[key].append("/".join(str(n) for n in sorted(held, reverse=True)))

            sample = drive(
                rival.server.port,
                rival.targets,
                connections,
                seconds=seconds,
                warmup=seconds / 10,
                watch=(rival.server.pids(), database),
                probe=probe,
            )
            samples[key].append(sample)
        print(f"  round {number + 1}/{rounds}: {time.perf_counter() - started:.0f} s", flush=True)
    return samples, splits


def median_sample(values: list[Sample]) -> Sample:
    return Sample(
        *(statistics.median(getattr(s, name) for s in values) for name in Sample.__slots__)
    )


#: Per server: its workers' resident memory (MiB) after the run.
Memory = dict[str, list[float]]


def worker_memory(servers: list[Server]) -> Memory:
    memory: Memory = {}
    for server in servers:
        memory[server.name] = [resident_mib(pid) for pid in server.workers()]
    return memory


NAME_WIDTH = 36


def table(title: str, rivals: list[Rival], samples: Samples, memory: Memory) -> dict[str, Sample]:
    endpoint = rivals[0].endpoint
    medians = {r.name: median_sample(samples[(endpoint, r.name)]) for r in rivals}
    first = rivals[0].name
    print(f"\n{title}")
    print(
        f"  {'rival':<{NAME_WIDTH}} {'req/s':>7}  {'(lowest - highest)':<19} {'p50 ms':>7}"
        f" {'p99 ms':>7}  {'server CPU':>10}  {'MariaDB CPU':>11}  {'client':>6}"
        f"  {'RSS MiB':>9}"
    )
    for rival in rivals:
        m = medians[rival.name]
        rates = [s.rps for s in samples[(endpoint, rival.name)]]
        rss = memory[rival.server.name]
        print(
            f"  {rival.name:<{NAME_WIDTH}} {m.rps:7,.0f}  ({min(rates):7,.0f} - {max(rates):7,.0f})"
            f" {m.p50 * 1000:7.2f} {m.p99 * 1000:7.2f}"
            f"  {m.server_cpu * 1e6:7.0f} us  {m.database_cpu * 1e6:8.0f} us  {m.client_share:6.0%}"
            f"  {statistics.median(rss):4.0f}/{max(rss):<4.0f}"
            f"  {m.rps / medians[first].rps:5.2f}x"
        )
    return medians


@dataclass(frozen=True, slots=True)
class Comparison:
    label: str
    endpoint: str
    ours: str
    theirs: str
    #: The least the ratio (ours / theirs, in req/s) should be; None: no target.
    target: float | None


def compare(comparison: Comparison, samples: Samples) -> str:
    """One line: the per-round ratios' median, lowest and highest, and the target.

    A round's ratio pairs the two rivals' samples of that round. The target is
    met when the median of those ratios reaches it; how many rounds reached it
    is said too."""
    ours = samples[(comparison.endpoint, comparison.ours)]
    theirs = samples[(comparison.endpoint, comparison.theirs)]
    ratios = [a.rps / b.rps for a, b in zip(ours, theirs, strict=True)]
    median = statistics.median(ratios)
    line = f"  {comparison.label:<58} {median:5.2f}x  ({min(ratios):5.2f} - {max(ratios):5.2f})"
    if comparison.target is None:
        return f"{line}   no target"
    reached = sum(ratio >= comparison.target for ratio in ratios)
    verdict = "target met" if median >= comparison.target else "target NOT met"
    return (
        f"{line}   target >= {comparison.target:g}x: {verdict}"
        f" (reached in {reached} of {len(ratios)} rounds)"
    )


# -- the breakdown, in process --------------------------------------------------------


def per_call(function: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    """Median seconds per call over ``rounds`` batches of ``repeat`` calls."""
    for _ in range(max(10, repeat // 10)):
        function()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        timings.append((time.perf_counter() - started) / repeat)
    return statistics.median(timings)


def wsgi_call(app: Callable[..., Any], path: str) -> Callable[[], bytes]:
    """One full WSGI request to ``app``, as gunicorn would make it, minus the socket."""
    environ = EnvironBuilder(path=path, base_url="http://127.0.0.1:8000").get_environ()
    statuses: list[str] = []

    def start_response(status: str, _headers: list[tuple[str, str]], *_: Any) -> None:
        statuses.append(status)

    def call() -> bytes:
        statuses.clear()
        body = b"".join(app(dict(environ), start_response))
        assert statuses[0].startswith("200"), (path, statuses, body[:200])
        return body

    return call


def uncached_call(instance: Path, path: str) -> tuple[Callable[[], bytes], Flask]:
    """A request to the app whose article read bypasses the cache (as
    ``make_uncached()`` serves it), and that app: one of its own, so that
    nothing another app keeps for a request (in its cache or otherwise) answers
    for it."""
    app = create_app(_settings(instance_path=instance))
    call = wsgi_call(app, path)

    def uncached() -> bytes:
        saved = articles_view.get_cache
        articles_view.get_cache = api_rivals.no_cache  # type: ignore[assignment]
        try:
            return call()
        finally:
            articles_view.get_cache = saved

    return uncached, app


def breakdown(ids: list[int], instance: Path, bodies_file: Path) -> None:
    """Each rival as a WSGI call in this process, then the pieces of the app's read."""
    os.environ.update(app_env(instance))  # what make_stock() reads, as the servers did
    ours = create_app(_settings(instance_path=instance))
    stock = api_rivals.make_stock()
    flask_caching = api_rivals.make_flask_caching()
    floor = api_rivals.make_floor()
    bare = api_rivals.make_bare(str(bodies_file))
    constant = Flask("constant")
    constant.add_url_rule("/ok", "ok", lambda: {"status": "ok"})
    item_path = f"/api/v1/articles/{ids[0]}"

    ours_item = wsgi_call(ours, item_path)
    ours_item()  # in the cache from now on
    ours_uncached, uncached_app = uncached_call(instance, item_path)
    ours_uncached_list, uncached_list_app = uncached_call(instance, LIST_PATH)
    rows: list[tuple[str, Callable[[], object], int]] = [
        ("bare WSGI callable", wsgi_call(bare, item_path), 20_000),
        ("stock Flask, a constant dict", wsgi_call(constant, "/ok"), 5_000),
        ("APIFlask, /api/v1/health", wsgi_call(ours, "/api/v1/health"), 5_000),
        ("APIFlask, cached", ours_item, 5_000),
        ("APIFlask, uncached", ours_uncached, 500),
        ("stock Flask", wsgi_call(stock, item_path), 500),
        ("Flask + Flask-Caching (RedisCache), a hit", wsgi_call(flask_caching, item_path), 2_000),
    ]
    # Outside any app context: a request would otherwise reuse the outer one (and
    # its database session) instead of pushing and tearing down its own.
    timings = [(name, per_call(f, repeat)) for name, f, repeat in rows]
    with ours.app_context():
        manager = get_cache()
        database = get_database()
        article = manager.get(ArticleNode(ids[0]))

        def load() -> object:
            value = ArticleNode(ids[0]).load()
            database.session.remove()  # as a request's teardown does
            return value

        def checkout_and_select_1() -> object:
            with database.engine.connect() as connection:
                return connection.execute(text("SELECT 1")).scalar()

        pieces: list[tuple[str, Callable[[], object], int]] = [
            ("  Manager.get, local-tier hit", lambda: manager.get(ArticleNode(ids[0])), 20_000),
            ("  dumps_bytes(article)", lambda: dumps_bytes(article), 20_000),
            ("  ArticleNode.load(), session removed", load, 500),
            ("  pool checkout (pre-ping) + SELECT 1", checkout_and_select_1, 500),
        ]
        timings += [(name, per_call(f, repeat)) for name, f, repeat in pieces]

        query = ArticleQuery(per_page=100)

        def search() -> object:
            found = service.list_page(database.session(), query, viewer=None)
            database.session.remove()
            return found

        page = service.list_page(database.session(), query, viewer=None)
        database.session.remove()
        list_pieces: list[tuple[str, Callable[[], object], int]] = [
            ("  service.list_page() (1 SELECT, 100 models)", search, 100),
            ("  dumps_bytes(page)", lambda: dumps_bytes(page), 2_000),
        ]
        list_timings = [(name, per_call(f, repeat)) for name, f, repeat in list_pieces]
    list_rows: list[tuple[str, Callable[[], object], int]] = [
        ("bare WSGI callable", wsgi_call(bare, LIST_PATH), 20_000),
        ("APIFlask, cached", wsgi_call(ours, LIST_PATH), 5_000),
        ("APIFlask, uncached", ours_uncached_list, 100),
        ("stock Flask", wsgi_call(stock, LIST_PATH), 100),
        ("PyMySQL + orjson (floor)", wsgi_call(floor, LIST_PATH), 100),
    ]
    list_timings = [(name, per_call(f, repeat)) for name, f, repeat in list_rows] + list_timings
    manager.close()
    uncached_app.extensions["cache"].close()
    uncached_list_app.extensions["cache"].close()

    print("\n5. where the time goes: one request in this process, one thread, no HTTP")
    print(f"  {ITEM}")
    for name, seconds in timings:
        print(f"  {name:<44} {seconds * 1e6:8.1f} us")
    print(f"  {LIST}")
    for name, seconds in list_timings:
        print(f"  {name:<44} {seconds * 1e6:8.1f} us")


# -- main -----------------------------------------------------------------------------


def _versions() -> str:
    server = connect_server()
    with server.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        row = cursor.fetchone()
        mariadb = str(row[0]) if row else "?"
    server.close()
    client = redis.Redis.from_url(REDIS_URL)
    redis_version = client.info("server")["redis_version"]  # pyright: ignore[reportIndexIssue]
    client.close()
    return (
        f"Python {platform.python_version()}, gunicorn {gunicorn.__version__},"
        f" MariaDB {mariadb}, Redis {redis_version}, {os.cpu_count()} CPUs"
    )


def tree_state() -> str:
    """The commit measured, and whether the code the servers import (``app/``,
    ``bench/``, ``gunicorn.conf.py``) differs from it in the work tree."""
    git = shutil.which("git")
    if git is None:
        return "commit unknown (no git)"
    try:
        commit = subprocess.run(  # noqa: S603 - git, our arguments
            [git, "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(  # noqa: S603 - git, our arguments
            [
                git,
                "-C",
                str(ROOT),
                "status",
                "--porcelain",
                "--",
                "app",
                "bench",
                "gunicorn.conf.py",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown (git failed)"
    paths = sorted(line[3:] for line in changed if line.strip())
    return f"commit {commit}" + (f", changed in the work tree: {', '.join(paths)}" if paths else "")


def uvicorn_loop_and_http() -> str:
    """What uvicorn's ``loop="auto"`` and ``http="auto"`` (UvicornWorker's) pick here."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the HTTP API under gunicorn.")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--seconds", type=float, default=1.5, help="per rival and round, after a tenth more"
    )
    parser.add_argument("--connections", type=int, default=8, help="keep-alive, one in flight")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 0.3 s")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 0.3
    return args


def app_env(instance: Path) -> dict[str, str]:
    """The settings every rival reads from the environment."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CACHE_PREFIX": CACHE_PREFIX,
        "LOG_LEVEL": "WARNING",
        "INSTANCE_PATH": str(instance),
    }


def server_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        **app_env(work / "instance"),
        # The caller's PYTHONPATH after ours: packages it adds reach the servers too.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "BENCH_BARE_BODIES": str(work / "bodies.json"),
        "BENCH_BARE_HEADERS": str(work / "headers.json"),
        "BENCH_FASTAPI_CACHE_PREFIX": api_fastapi.FASTAPI_CACHE_PREFIX,
    }


def make_servers(env: dict[str, str], work: Path) -> dict[str, Server]:
    def server(name: str, target: str, **options: Any) -> Server:
        return Server(name, target, env, work, **options)

    servers = [
        server(CACHED_PROD, "app.wsgi:app", extra_env=PRODUCTION_LOGGING),
        server(CACHED, "app.wsgi:app"),
        server(UNCACHED, "bench.api_rivals:make_uncached()"),
        server(STOCK, "bench.api_rivals:make_stock()"),
        server(FLASK_CACHING, "bench.api_rivals:make_flask_caching()"),
        server(FASTAPI_CACHE, "bench.api_fastapi:make_cached()", worker_class=UVICORN_WORKER),
        server(FSFT, "bench.api_fastapi:make_fsft()", worker_class=UVICORN_WORKER),
        server(FLOOR, "bench.api_rivals:make_floor()"),
        server(BARE, "bench.api_rivals:make_bare()"),
        server(BARE_HEADERS, "bench.api_rivals:make_bare(with_headers=True)"),
    ]
    return {s.name: s for s in servers}


#: The item rivals, then the list rivals (as named in the list's table: the
#: server's name, or for the app's two servers the names below).
ITEM_RIVALS = [
    CACHED_PROD,
    CACHED,
    UNCACHED,
    STOCK,
    FLASK_CACHING,
    FASTAPI_CACHE,
    FSFT,
    BARE,
    BARE_HEADERS,
]
LIST_RIVALS = {
    APIFLASK: CACHED,
    APIFLASK_PROD: CACHED_PROD,
    APIFLASK_UNCACHED: UNCACHED,
    STOCK: STOCK,
    FSFT: FSFT,
    FLOOR: FLOOR,
    BARE: BARE,
}


def start(servers: dict[str, Server], ids: list[int], work: Path) -> list[Rival]:
    """Start the servers, check that every rival serves the same data, list the rivals."""
    item_paths = [f"/api/v1/articles/{article_id}" for article_id in ids]
    first = [s for name, s in servers.items() if name not in {BARE, BARE_HEADERS}]
    for server in first:
        server.start()
    for server in first:
        server.wait_ready(LIST_PATH if server.name == FLOOR else item_paths[0])
    bodies = reference_bodies(servers[CACHED], [*item_paths, LIST_PATH])
    (work / "bodies.json").write_bytes(
        orjson.dumps({path: body.decode() for path, body in bodies.items()})
    )
    (work / "headers.json").write_bytes(
        orjson.dumps({path: fetch_headers(servers[CACHED].port, path) for path in item_paths})
    )
    for bare in (servers[BARE], servers[BARE_HEADERS]):
        bare.start()
    for bare in (servers[BARE], servers[BARE_HEADERS]):
        bare.wait_ready(item_paths[0])
    sizes = sorted(len(bodies[path]) for path in item_paths)
    print(
        f"  bodies: an article {sizes[0]:,}-{sizes[-1]:,} bytes (median {sizes[len(sizes) // 2]:,}),"
        f" the page of 100 {len(bodies[LIST_PATH]):,} bytes"
    )

    def same(name: str, *, same_bytes: bool, paths: list[str] | None = None) -> dict[str, int]:
        return check_same(servers[name], bodies, same_bytes=same_bytes, paths=paths)

    lengths = {
        CACHED: {path: len(body) for path, body in bodies.items()},
        CACHED_PROD: same(CACHED_PROD, same_bytes=True),
        UNCACHED: same(UNCACHED, same_bytes=True),
        STOCK: same(STOCK, same_bytes=False),
        FLASK_CACHING: same(FLASK_CACHING, same_bytes=False, paths=item_paths),
        FASTAPI_CACHE: same(FASTAPI_CACHE, same_bytes=False, paths=item_paths),
        FSFT: same(FSFT, same_bytes=False),
        FLOOR: same(FLOOR, same_bytes=False, paths=[LIST_PATH]),
        BARE: same(BARE, same_bytes=True),
        BARE_HEADERS: same(BARE_HEADERS, same_bytes=True, paths=item_paths),
    }

    def targets(server: Server, paths: list[str]) -> list[Target]:
        return [(request_bytes(server.port, p), lengths[server.name][p]) for p in paths]

    return [
        *(
            Rival(ITEM, name, servers[name], targets(servers[name], item_paths))
            for name in ITEM_RIVALS
        ),
        *(
            Rival(LIST, name, servers[server], targets(servers[server], [LIST_PATH]))
            for name, server in LIST_RIVALS.items()
        ),
    ]


def mariadb_selects() -> int:
    """MariaDB's count of SELECT statements since it started, from every client."""
    server = connect_server()
    try:
        with server.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Com_select'")
            row = cursor.fetchone()
    finally:
        server.close()
    return int(row[1]) if row else 0


#: The cached rivals, each with the pattern of its keys in Redis; stock Flask
#: (uncached) for reference, to show the counter counts.
CACHE_KEYS = {
    CACHED_PROD: f"{CACHE_PREFIX}:*",
    CACHED: f"{CACHE_PREFIX}:*",
    FLASK_CACHING: f"{api_rivals.FLASK_CACHING_PREFIX}*",
    FASTAPI_CACHE: f"{api_fastapi.FASTAPI_CACHE_PREFIX}:*",
    STOCK: "",
}


def check_cache_hits(rivals: list[Rival], connections: int, reads: int = 500) -> None:
    """After the warm-up: each cached rival serves ``reads`` item requests without
    a query. Verified from outside: its keys are in Redis (one per id, the app's
    two servers sharing theirs), and MariaDB's global ``Com_select`` counter moves
    by (next to) nothing over those reads; the same reads from stock Flask move it
    by 2 a read. ``Com_select`` counts every client of this MariaDB, so another
    program's queries show as noise."""
    client = redis.Redis.from_url(REDIS_URL)
    by_name = {r.name: r for r in rivals if r.endpoint == ITEM}
    for name, pattern in CACHE_KEYS.items():
        rival = by_name[name]
        keys = sum(1 for _ in client.scan_iter(match=pattern, count=1000)) if pattern else 0
        before = mariadb_selects()
        drive(rival.server.port, rival.targets, connections, requests=reads)
        selects = mariadb_selects() - before
        where = f"{keys:4} keys in Redis ({pattern})" if pattern else "no cache"
        print(
            f"  cache check: {name:<{NAME_WIDTH}} {where:<46}"
            f" {selects:5} SELECTs on MariaDB over {reads} reads"
        )
        if pattern and (keys < IDS or selects >= reads):
            raise RuntimeError(f"{name} does not serve its reads from its cache")
    client.close()


def access_lines(server: Server) -> int:
    """The app's access-log lines in the server's log file."""
    with server.log_path.open("rb") as log:
        return sum(1 for line in log if b'"logger":"app.access"' in line)


COMPARISONS = [
    Comparison("cached, production logging / cached, WARNING", ITEM, CACHED_PROD, CACHED, 0.9),
    Comparison("cached, production logging / Flask-Caching", ITEM, CACHED_PROD, FLASK_CACHING, 1.5),
    Comparison("cached, production logging / fastapi-cache2", ITEM, CACHED_PROD, FASTAPI_CACHE, 2),
    Comparison("cached, production logging / bare WSGI", ITEM, CACHED_PROD, BARE, 0.7),
    Comparison(
        "cached, production logging / bare WSGI, the app's headers",
        ITEM,
        CACHED_PROD,
        BARE_HEADERS,
        None,
    ),
    Comparison("bare WSGI, the app's headers / bare WSGI", ITEM, BARE_HEADERS, BARE, None),
    Comparison("cached / uncached (both WARNING)", ITEM, CACHED, UNCACHED, 2),
    Comparison("cached / stock Flask (both WARNING)", ITEM, CACHED, STOCK, 1.5),
    Comparison("uncached / stock Flask", ITEM, UNCACHED, STOCK, 1.5),
    Comparison("uncached / FastAPI, FSFT-style", ITEM, UNCACHED, FSFT, 1.5),
    Comparison("list: uncached / stock Flask", LIST, APIFLASK_UNCACHED, STOCK, 2),
    Comparison("list: uncached / FastAPI, FSFT-style", LIST, APIFLASK_UNCACHED, FSFT, 2),
    Comparison(
        "list: uncached / PyMySQL + orjson (the floor)", LIST, APIFLASK_UNCACHED, FLOOR, None
    ),
    Comparison("list: cached (warm) / uncached", LIST, APIFLASK, APIFLASK_UNCACHED, 10),
    Comparison("list: cached, production logging / cached", LIST, APIFLASK_PROD, APIFLASK, None),
]


def report(
    args: argparse.Namespace,
    rivals: list[Rival],
    samples: Samples,
    splits: Splits,
    memory: Memory,
) -> None:
    print(
        f"\n{args.rounds} rounds; per round and rival {args.seconds:g} s of {ITEM}"
        f" (over {IDS} ids) or of {LIST}, after {args.seconds / 10:g} s of warm-up;"
        " medians over rounds. CPU: per request; client: this process, share of one core;"
        " RSS: per gunicorn worker after the run, median/max"
    )
    item = [r for r in rivals if r.endpoint == ITEM]
    listed = [r for r in rivals if r.endpoint == LIST]
    table(f"1. {ITEM} (the app's and two rivals' reads cached)", item, samples, memory)
    table(f"2. {LIST} (the app's, cached and not; the rivals' not cached)", listed, samples, memory)
    print("\n3. per-round ratios of req/s: median (lowest - highest) over the rounds")
    for comparison in COMPARISONS:
        print(compare(comparison, samples))
    print(
        f"\n4. the {args.connections} connections per worker in each round"
        " (ESTABLISHED sockets each worker held, from /proc, after the warm-up),"
        " and that round's req/s"
    )
    for rival in rivals:
        key = (rival.endpoint, rival.name)
        label = f"{'list: ' if rival.endpoint == LIST else ''}{rival.name}"
        rounds = "  ".join(
            f"{split} {sample.rps:6,.0f}"
            for split, sample in zip(splits[key], samples[key], strict=True)
        )
        print(f"  {label:<{NAME_WIDTH + 6}} {rounds}")


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        run(args, work)
    except BaseException:
        print(
            f"\nbench.api stopped before the end; the servers' logs are in {work}", file=sys.stderr
        )
        raise
    shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    ids = prepare_database(work / "instance")
    redis.Redis.from_url(REDIS_URL).flushdb()
    print(_versions())
    print(f"code: {tree_state()}")
    print(
        f"gunicorn, {args.workers} workers per server: gthread x {args.threads} threads"
        " (app.core.gunicorn_worker.Worker),"
        f" or {UVICORN_WORKER} (uvicorn {uvicorn.__version__}, its event loop and HTTP parser"
        f" '{uvicorn_loop_and_http()}') for FastAPI {fastapi.__version__};"
        f" {args.connections} keep-alive connections from this process"
    )
    env = server_env(args, work)
    servers = make_servers(env, work)
    with serving(list(servers.values())):
        rivals = start(servers, ids, work)
        print("  warm-up: every id through every worker of every server", flush=True)
        for rival in rivals:
            warm_up = max(40, 20 * len(rival.targets))
            drive(rival.server.port, rival.targets, args.connections, requests=warm_up)
        check_cache_hits(rivals, args.connections)
        samples, splits = run_rounds(rivals, args.rounds, args.seconds, args.connections)
        memory = worker_memory(list(servers.values()))
    # Counted once the servers have stopped: lines still in a batch are written at exit.
    logged = access_lines(servers[CACHED_PROD])
    report(args, rivals, samples, splits, memory)
    print(
        f"  ({CACHED_PROD} wrote {logged:,} JSON access lines to its log file for the"
        f" {ANSWERS[servers[CACHED_PROD].port]:,} answers it sent;"
        f" {CACHED} wrote {access_lines(servers[CACHED])})"
    )
    if args.breakdown:
        breakdown(ids, work / "instance", work / "bodies.json")


if __name__ == "__main__":
    main()
