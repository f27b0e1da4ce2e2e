"""Real servers for the tests that need them: gunicorn with gunicorn.conf.py,
and raw HTTP exchanges for what a well-behaved client would never send."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]


#: gunicorn serving the app with the committed gunicorn.conf.py.
GUNICORN = [
    sys.executable,
    "-m",
    "gunicorn",
    "--config",
    str(ROOT / "gunicorn.conf.py"),
    "app.wsgi:app",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(port: int, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port} within {seconds}s")


@contextmanager
def gunicorn(
    tmp_path: Path, port: int, *, env: dict[str, str] | None = None, app: str = "app.wsgi:app"
) -> Iterator[list[str]]:
    """gunicorn with gunicorn.conf.py serving ``app`` on ``port``, ``env`` over
    its settings; once stopped, the list holds its stderr (the JSON log lines)."""
    settings = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "SECRET_KEY": "g" * 40,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **(env or {}),
    }
    process = subprocess.Popen(
        [*GUNICORN[:-1], app],
        cwd=tmp_path,
        env=settings,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    try:
        wait_for(port, process)
        yield stderr
    finally:
        process.terminate()
        stderr.extend(process.communicate(timeout=30)[1].splitlines())


def exchange(
    port: int, request: bytes, *, source: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer to the end: status, headers, body.
    ``source``: the local address to send from (any of 127.0.0.0/8)."""
    address = (source, 0) if source else None
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=address) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


def raw_get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sharing_the_cache(settings: Any) -> dict[str, str]:
    """gunicorn's settings for the database, Redis and cache prefix of this
    process's app (``settings``), at WARNING: the two share every cache tier
    but the local ones, and hear each other's invalidations."""
    return {
        "DATABASE_URL": settings.resolved_database_url,
        "REDIS_URL": settings.redis_url,
        "CACHE_PREFIX": settings.cache_prefix,
        "LOG_LEVEL": "WARNING",
    }


def answers_anew(
    port: int, path: str, is_new: Callable[[dict[str, str], bytes], bool], since: float
) -> bytes:
    """GETs of ``path`` for 4 s after a write committed at ``since`` (monotonic):
    every answer a 200, the new one within 2 s, and never the old one again
    once the new one was seen. Returns the last body."""
    seen_new = False
    body = b""
    while time.monotonic() - since < 4:
        status, headers, body = exchange(port, raw_get(path))
        assert status == 200
        new = is_new(headers, body)
        assert new or not seen_new, "the old answer after the new one was seen"
        assert new or time.monotonic() - since < 2, "still the old answer after 2 s"
        seen_new = seen_new or new
    assert seen_new
    return body
