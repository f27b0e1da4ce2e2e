"""Real processes for the stream's tests: stream processes (``python -m
app.realtime``), a web process (gunicorn), a Celery worker, a private Redis
that a test may kill; an HTTP caller of the web process, and a real WebSocket
client (``websockets``' own)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving_support import GUNICORN, ROOT, free_port, wait_for
from websockets.sync.client import ClientConnection, connect

PASSWORD = "correct horse battery"
#: The private Redis' binary (Debian's redis-server, as CI installs it).
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class Process:
    name: str
    port: int
    popen: subprocess.Popen[str]
    log: Path

    def kill(self) -> None:
        """``kill -9``: no goodbye to anyone."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Stack:
    """The processes of one test, stopped at its end."""

    folder: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list[Process])

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        port: int,
        listens: bool = True,
        env: dict[str, str] | None = None,
    ) -> Process:
        log = self.folder / f"{name}.log"
        with log.open("w") as handle:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                argv,
                cwd=self.folder,
                env={**self.env, **(env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )
        process = Process(name, port, popen, log)
        self.processes.append(process)
        if listens:
            try:
                wait_for(port, popen)  # type: ignore[arg-type]
            except AssertionError as exc:
                raise AssertionError(f"{name} did not start: {process.output()}") from exc
        return process

    def stream(self, name: str = "stream", **env: str) -> Process:
        port = free_port()
        return self.start(
            name,
            [sys.executable, "-m", "app.realtime"],
            port=port,
            env={"REALTIME_BIND": f"127.0.0.1:{port}", **env},
        )

    def web(self, **env: str) -> Process:
        port = free_port()
        return self.start(
            "web",
            GUNICORN,
            port=port,
            env={
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "1",
                "GUNICORN_THREADS": "4",
                **env,
            },
        )

    def worker(self, **env: str) -> Process:
        return self.start(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "app.worker",
                "worker",
                "--pool=threads",
                "--concurrency=2",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            port=0,
            listens=False,
            env=env,
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def stack_env(folder: Path, *, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(folder / "instance"),
        "PASSWORD_TIME_COST": "1",
        "PASSWORD_MEMORY_COST": "8192",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "text",
        **extra,
    }


@contextmanager
def stack(folder: Path, **env: str) -> Iterator[Stack]:
    running = Stack(folder, stack_env(folder, **env))  # type: ignore[arg-type]
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class PrivateRedis:
    """A Redis of the test's own (its port, its folder), to kill and restart."""

    folder: Path
    port: int
    popen: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_for(self.port, self.popen)  # type: ignore[arg-type]

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.kill()


class Http:
    """JSON calls to the web process."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the test's own server
            self.base + path, data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def user(self, name: str) -> User:
        email = f"{name.lower()}-{time.monotonic_ns()}@example.com"
        status, body = self.call(
            "POST", "/auth/register", {"email": email, "password": PASSWORD, "name": name}
        )
        assert status == 201, body
        status, tokens = self.call("POST", "/auth/token", {"email": email, "password": PASSWORD})
        assert status == 200, tokens
        return User(body["id"], name, tokens["access_token"])

    def article(self, author: User, **fields: Any) -> dict[str, Any]:
        payload = {"title": "A title", "body": "A body", "status": "published", **fields}
        status, body = self.call("POST", "/articles", payload, author.token)
        assert status == 201, body
        return body  # type: ignore[no-any-return]

    def comment(self, who: User, article_id: int, text: str = "Nice") -> dict[str, Any]:
        status, body = self.call(
            "POST", f"/articles/{article_id}/comments", {"body": text}, who.token
        )
        assert status == 201, body
        return body  # type: ignore[no-any-return]

    def ticket(self, who: User) -> str:
        status, body = self.call("POST", "/notifications/ticket", None, who.token)
        assert status == 201, body
        return body["ticket"]  # type: ignore[no-any-return]


@dataclass
class User:
    id: int
    name: str
    token: str


def open_stream(
    port: int,
    *,
    ticket: str | None = None,
    token: str | None = None,
    after: int | str | None = None,
    **options: Any,
) -> ClientConnection:
    query = []
    if ticket is not None:
        query.append(f"ticket={ticket}")
    if after is not None:
        query.append(f"after={after}")
    url = f"ws://127.0.0.1:{port}/api/v1/notifications/stream"
    if query:
        url += "?" + "&".join(query)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(url, additional_headers=headers, open_timeout=10, **options)


def frames_until_ready(ws: ClientConnection, timeout: float = 10) -> list[dict[str, Any]]:
    """The replayed notifications, up to ``{"type": "ready"}``."""
    found: list[dict[str, Any]] = []
    while True:
        frame = json.loads(ws.recv(timeout))
        if frame["type"] == "ready":
            return found
        assert frame["type"] == "notification", frame
        found.append(frame["notification"])


def next_notification(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    frame = json.loads(ws.recv(timeout))
    assert frame["type"] == "notification", frame
    return frame["notification"]  # type: ignore[no-any-return]


def nothing_more(ws: ClientConnection, seconds: float = 1.0) -> bool:
    """True if no frame comes within ``seconds``."""
    try:
        frame = ws.recv(seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"an unexpected frame: {frame!r}")
