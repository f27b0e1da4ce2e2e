"""Responses served again, without Flask, while the value they show is current.

A read whose answer is the same for every caller (a published article) offers
a *snapshot* of its response: the view calls :func:`offer` with a check,
``is_current()``, that says whether the value it served is still the one the
cache holds. Once Flask has finished the response, every ``after_request``
hook included, :meth:`Snapshots.record` keeps its status, headers and body
under its path and query string. The next plain ``GET`` of that very path
and query string is answered by
:meth:`Snapshots.serve` at the start of the WSGI call, before Flask builds a
request, for as long as ``is_current()`` holds. Once it does not, the snapshot
is dropped and Flask answers, and may record a new one.

*Plain* means ``GET`` with none of the request headers a response may depend on: ``Authorization``, ``Cookie``, ``Origin`` and the
conditional and range headers. Any other request goes through Flask. What a
snapshot's request gets from this module is what every request gets: its
request id (``X-Request-ID``, the sane one it sent or a new one) and its line
in the access log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import g, request

from app.core.logging import log_access
from app.core.request_id import HEADER, request_id_var, sane_or_new

if TYPE_CHECKING:
    from flask import Response

StartResponse = Callable[..., object]

#: Request headers a response may depend on: their presence sends the request to Flask.
VARYING = frozenset(
    {
        "HTTP_AUTHORIZATION",
        "HTTP_COOKIE",
        "HTTP_ORIGIN",
        "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MATCH",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_UNMODIFIED_SINCE",
        "HTTP_IF_RANGE",
        "HTTP_RANGE",
    }
)
_OFFERED = "snapshot_offered"
_REQUEST_ID = HEADER.lower()


def offer(is_current: Callable[[], bool] | None) -> None:
    """From a view: this request's response may be served again, to any plain
    ``GET`` of the same path and query string, while ``is_current()`` is true.
    ``None`` offers nothing. Only a ``200`` is kept."""
    if is_current is not None:
        setattr(g, _OFFERED, is_current)


def is_plain(environ: Mapping[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") == "GET" and VARYING.isdisjoint(environ)


def _key(environ: Mapping[str, Any]) -> str:
    return (
        environ.get("SCRIPT_NAME", "")
        + environ.get("PATH_INFO", "")
        + "?"
        + environ.get("QUERY_STRING", "")
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    is_current: Callable[[], bool]
    path: str
    status: str
    status_code: int
    #: Every header of the response but ``X-Request-ID``, which is each request's own.
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Snapshots:
    """At most ``max_size`` snapshots and ``max_bytes`` of their bodies, by
    path and query string; the oldest goes first."""

    def __init__(self, max_size: int = 10_000, max_bytes: int = 32 << 20) -> None:
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.served = 0
        self.recorded = 0
        self._entries: dict[str, Snapshot] = {}
        self._bytes = 0
        self._lock = threading.Lock()  # writers only: reads are single dict lookups

    def __len__(self) -> int:
        return len(self._entries)

    def serve(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The snapshot's answer to a plain ``GET`` of its path while it is
        current; ``None`` sends the request on to Flask."""
        if not self._entries:
            return None
        started = time.perf_counter()
        key = _key(environ)
        snapshot = self._entries.get(key)
        if snapshot is None or not is_plain(environ):
            return None
        if not snapshot.is_current():
            with self._lock:
                if self._entries.get(key) is snapshot:
                    self._drop(key)
            return None
        request_id = sane_or_new(environ.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        try:
            start_response(snapshot.status, [*snapshot.headers, (HEADER, request_id)])
            self.served += 1
            log_access(
                "GET",
                snapshot.path,
                snapshot.status_code,
                duration_ms=(time.perf_counter() - started) * 1000,
                size=len(snapshot.body),
                remote=environ.get("REMOTE_ADDR"),
            )
        finally:
            request_id_var.reset(token)
        return [snapshot.body]

    def record(self, response: Response) -> None:
        """In the request, once its response is final: keep it if the view
        offered it, it is a ``200`` with its body in hand, and the request was plain."""
        is_current: Callable[[], bool] | None = g.pop(_OFFERED, None)
        if (
            is_current is None
            or response.status_code != 200
            or response.is_streamed
            or response.direct_passthrough
        ):
            return
        environ = request.environ
        if not is_plain(environ):
            return
        headers = tuple(
            (name, value)
            for name, value in response.get_wsgi_headers(environ).to_wsgi_list()
            if name.lower() != _REQUEST_ID
        )
        snapshot = Snapshot(
            is_current, request.path, response.status, response.status_code, headers,
            response.get_data(),
        )  # fmt: skip
        if len(snapshot.body) > self.max_bytes:
            return
        key = _key(environ)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            while self._entries and (
                len(self._entries) >= self.max_size
                or self._bytes + len(snapshot.body) > self.max_bytes
            ):
                self._drop(next(iter(self._entries)))
            self._entries[key] = snapshot
            self._bytes += len(snapshot.body)
            self.recorded += 1

    def _drop(self, key: str) -> None:
        """Under the lock."""
        self._bytes -= len(self._entries.pop(key).body)
