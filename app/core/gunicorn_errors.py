"""The errors gunicorn answers itself, in the error envelope.

gunicorn refuses some requests before the app sees them: a request line
longer than ``limit_request_line`` (414), a header longer than
``limit_request_field_size`` or more than ``limit_request_fields`` of them
(431), a request it cannot parse (400). It writes those answers with one
function, ``gunicorn.util.write_error``, as HTML. ``gunicorn.conf.py`` puts
:func:`write_error` in its place, so they leave as the envelope like every
other error, with a request id of their own that the log line carries too.
"""

from __future__ import annotations

import logging
import socket
from http import HTTPStatus

from app.core.envelope import ErrorEnvelope
from app.core.error_codes import ERROR_CODE_FOR_STATUS, ErrorCode
from app.core.request_id import new_request_id, request_id_var

log = logging.getLogger("app.error")


def error_bytes(status: int, request_id: str) -> bytes:
    """The whole HTTP response for ``status``: status line, headers, envelope."""
    error_code = ERROR_CODE_FOR_STATUS.get(status, ErrorCode.HTTP_ERROR)
    message = error_code.default_message
    if error_code is ErrorCode.HTTP_ERROR:
        message = HTTPStatus(status).phrase
    body = ErrorEnvelope(
        code=status, error_code=int(error_code), message=message, request_id=request_id
    ).model_dump_json(exclude_none=True)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body.encode()


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error``, answering the envelope instead of HTML.

    ``mesg`` is gunicorn's account of what was wrong, which may quote the
    request: it goes to the log, not to the client."""
    request_id = new_request_id()
    token = request_id_var.set(request_id)
    try:
        log.warning("gunicorn refused the request: %s %s (%s)", status_int, reason, mesg)
    finally:
        request_id_var.reset(token)
    # As gunicorn's own writer does: without blocking, so a client that does not
    # read is not waited for (gunicorn catches the error that raises).
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.sendall(error_bytes(status_int, request_id))
    finally:
        sock.settimeout(timeout)
