"""The request id: one string that ties a response to every log line it caused.

It is the client's ``X-Request-ID`` when that is sane (1-128 characters of
letters, digits and ``._:-``), otherwise a new random one. It is returned on every
response and lives in a :class:`~contextvars.ContextVar`, so the logging filter
(and, later, Celery tasks) can read it without a request context.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING

from flask import g, has_request_context, request

if TYPE_CHECKING:
    from flask import Flask, Response

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")

#: ``-`` outside a request, so log lines always have the field.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id() -> str:
    """128 random bits as 32 hex characters (what ``uuid4().hex`` gives, faster)."""
    return os.urandom(16).hex()


def sane_or_new(incoming: str | None) -> str:
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str:
    """This request's id, assigning one if the request has none yet."""
    if not has_request_context():
        return request_id_var.get()
    request_id: str | None = g.get("request_id")
    if request_id is None:
        request_id = g.request_id = sane_or_new(request.headers.get(HEADER))
        g.request_id_token = request_id_var.set(request_id)
    return request_id


def _assign() -> None:
    current_request_id()


def _set_header(response: Response) -> Response:
    response.headers[HEADER] = current_request_id()
    return response


def _reset(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id_var.reset(token)


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_set_header)
    app.teardown_request(_reset)
