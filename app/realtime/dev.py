"""The stream at ``/api/v1/notifications/stream`` on the app's own server.

In production nginx sends that path to the ``realtime`` service, and gunicorn
never sees it. On Werkzeug's development server (``make dev``), the app
answers it too, so the whole contract is served on one port with no Redis:
the first upgrade starts a :class:`~app.realtime.server.StreamServer` in a
thread on a free loopback port (fed by the in-process fan-out), and each
upgrade request is spliced to it byte for byte, the request line and headers
first. Anywhere else (gunicorn without nginx in front), the path answers
426 in the envelope, saying where the stream is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import selectors
import socket
import threading
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, request

from app.core.error_codes import ErrorCode
from app.core.exceptions import APIException
from app.realtime.server import NOT_UPGRADED, PATH, run

if TYPE_CHECKING:
    from collections.abc import Iterable

    from websockets.asyncio.server import Server

    from app.core.application import APIFlask

log = logging.getLogger("app.realtime")

#: Bytes copied per read while splicing.
CHUNK = 65_536


class DevStream:
    """A stream server in a thread of this process, started on first use:
    ``make dev``'s, and the tests'."""

    def __init__(self, app: APIFlask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def address(self) -> tuple[str, int]:
        """Where it listens; starts it if need be."""
        with self._lock:
            if self._address is None:
                self._address = self._start()
            return self._address

    def _start(self) -> tuple[str, int]:
        started = threading.Event()
        bound: list[tuple[str, int]] = []

        def ready(server: Server) -> None:
            sockname = next(iter(server.sockets)).getsockname()
            bound.append((str(sockname[0]), int(sockname[1])))
            started.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await run(self.app, "127.0.0.1", 0, ready=ready, stop=self._stop)

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="realtime-dev", daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the in-process stream server did not start")
        log.info("realtime: the development stream is served in-process on %s:%d", *bound[0])
        return bound[0]

    def stop(self) -> None:
        """Close every stream with 1001 and stop the thread."""
        with self._lock:
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            if self._thread is not None:
                self._thread.join(15)
            self._address = self._thread = self._loop = self._stop = None


class _Spliced(Response):
    """What the view returns once the socket was handed over: Werkzeug must
    write nothing more on it, and drops the connection quietly."""

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        raise ConnectionError("the stream took the connection")


def stream_view() -> Response:
    environ = request.environ
    raw = environ.get("werkzeug.socket")
    if raw is None or request.headers.get("Upgrade", "").lower() != "websocket":
        raise APIException(
            NOT_UPGRADED,
            error_code=ErrorCode.UPGRADE_REQUIRED,
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )
    dev: DevStream = current_app.extensions["dev_stream"]
    upstream = socket.create_connection(dev.address(), timeout=5)
    upstream.settimeout(None)
    upstream.sendall(_request_head(environ))
    _splice(raw, upstream)
    return _Spliced()


def _request_head(environ: dict[str, Any]) -> bytes:
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
    if "?" not in target and environ.get("QUERY_STRING"):
        target = f"{target}?{environ['QUERY_STRING']}"
    lines = [f"GET {target} HTTP/1.1"]
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            lines.append(f"{key[5:].replace('_', '-').title()}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _splice(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    client.setblocking(True)
    peers = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ)
        selector.register(upstream, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)


def init_app(app: APIFlask) -> None:
    """Answer the stream's path: spliced to the in-process stream on the
    development server, 426 elsewhere."""
    app.extensions["dev_stream"] = DevStream(app)
    # Werkzeug routes an upgrade request only to a rule marked ``websocket``
    # (any other answers 400), and a plain one only to an unmarked rule.
    app.add_url_rule(PATH, "notification_stream", stream_view, methods=["GET"], websocket=True)
    app.add_url_rule(PATH, "notification_stream", stream_view, methods=["GET"])
