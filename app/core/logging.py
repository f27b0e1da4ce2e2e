"""One logging set-up for the app, werkzeug, gunicorn and celery.

* Every line carries the request id (``-`` outside a request).
* ``app.access`` writes one line per request: method, path, status, duration
  in ms, response bytes, remote address. It replaces werkzeug's and gunicorn's
  own access logs, which are silenced.
* ``app.error`` writes errors with their tracebacks.
* ``text`` format for people, ``json`` (one object per line) for log shippers.

The same dict is handed to gunicorn (``logconfig_dict`` in ``gunicorn.conf.py``)
so the master and its workers log exactly as the app does.
"""

from __future__ import annotations

import logging
import logging.config
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from flask import g, request

from app.core.request_id import request_id_var

if TYPE_CHECKING:
    from flask import Flask, Response

    from app.core.settings import Settings

access_log = logging.getLogger("app.access")

#: Attributes every ``LogRecord`` has; anything else was passed in ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName"}
)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-21 12:00:00.123 INFO  app.access [<request id>] GET /api/v1/health 200 ...``"""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s [%(request_id)s] %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``,
    ``request_id``, any ``extra=`` fields, and ``exc_info`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=repr).decode()


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``dictConfig`` for ``settings``: used by the app and by gunicorn."""
    formatter = "json" if settings.resolved_log_format == "json" else "text"
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": formatter,
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JSONFormatter},
        },
        "handlers": {"console": handler},
        "root": {"level": settings.log_level, "handlers": ["console"]},
        "loggers": {
            # Our access log replaces theirs; their warnings and errors still show.
            "werkzeug": {"level": "WARNING"},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "gunicorn.error": {
                "level": settings.log_level,
                "handlers": ["console"],
                "propagate": False,
            },
            "celery": {"level": settings.log_level},
        },
    }


_configured_for: tuple[str, str] | None = None


def configure_logging(settings: Settings) -> None:
    """Apply :func:`logging_config` once per process and per level/format pair,
    so building many apps (as tests do) does not tear down handlers each time."""
    global _configured_for  # noqa: PLW0603 - logging is process-wide by nature
    key = (settings.log_level, settings.resolved_log_format)
    if _configured_for == key:
        return
    logging.config.dictConfig(logging_config(settings))
    _configured_for = key


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _log_access(response: Response) -> Response:
    if not access_log.isEnabledFor(logging.INFO):
        return response
    started: float | None = g.get("request_started")
    duration_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    size = response.calculate_content_length()
    access_log.info(
        "%s %s %s %.2fms %sB %s",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        "-" if size is None else size,
        request.remote_addr or "-",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration_ms, 2),
            "bytes": size,
            "remote_addr": request.remote_addr,
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Register the access log. Call after the request id is wired up."""
    app.before_request(_start_timer)
    app.after_request(_log_access)
