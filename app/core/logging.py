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
from typing import TYPE_CHECKING, Any, cast

import orjson
from flask import g, request

from app.core import access_batch
from app.core.request_id import request_id_var

if TYPE_CHECKING:
    from flask import Flask, Request, Response

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

    def __init__(self) -> None:
        super().__init__()
        #: The last second formatted, and its text up to the milliseconds: one
        #: tuple, so threads sharing the formatter never pair one with another's.
        self._second: tuple[int, str] = (-1, "")

    def timestamp(self, created: float) -> str:
        """``2026-11-21T12:00:00.123+00:00``, formatting each second once: the
        text ``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``
        gives, rounded to the microsecond first as ``datetime`` does."""
        second = int(created)
        micro = round((created - second) * 1_000_000)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        cached, prefix = self._second
        if cached != second:
            prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, prefix)
        return f"{prefix}.{micro // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(
            {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}
        )
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


_ACCESS_FORMAT = "%s %s %s %.2fms %sB %s"


def _log_access(response: Response) -> Response:
    if access_log.isEnabledFor(logging.INFO):
        current: Request = cast("Any", request)._get_current_object()
        started: float | None = g.get("request_started")
        log_access(
            current.method,
            current.path,
            response.status_code,
            duration_ms=(time.perf_counter() - started) * 1000 if started is not None else 0.0,
            size=response.calculate_content_length(),
            remote=current.remote_addr,
        )
    return response


def log_access(
    method: str, path: str, status: int, *, duration_ms: float, size: int | None, remote: str | None
) -> None:
    """One ``app.access`` line, when the logger takes INFO.

    While the app's own config holds (one JSON console handler, nothing else
    on the way: :func:`_console_alone`), the line is written straight to that
    handler's stream, as its formatter would write the record. Otherwise the
    record is made and handled (``makeRecord``, then ``handle``): the record
    ``access_log.info(...)`` would make, without its walk up the stack to find
    the caller. Either way the request, read once by the caller, is not read here.
    """
    if not access_log.isEnabledFor(logging.INFO):
        return
    args = (method, path, status, duration_ms, "-" if size is None else size, remote or "-")
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "bytes": size,
        "remote_addr": remote,
    }
    console = _console_alone()
    if console is not None:
        _write_line(console, args, fields)
        return
    access_log.handle(_access_record(args, fields))


def _access_record(args: tuple[object, ...], fields: dict[str, Any]) -> logging.LogRecord:
    pathname, lineno, function = _ACCESS_SOURCE
    return access_log.makeRecord(
        access_log.name, logging.INFO, pathname, lineno, _ACCESS_FORMAT, args, None, function,
        fields,
    )  # fmt: skip


def _console_alone() -> logging.StreamHandler[Any] | None:
    """The app's JSON console handler (:func:`logging_config`), if an access
    record would reach it and nothing else: no other handler and no filter on
    the way, no other formatter. Else ``None``, and records go through logging."""
    logger: logging.Logger | None = access_log
    while logger is not None and logger is not logging.root:
        if logger.handlers or logger.filters or logger.disabled or not logger.propagate:
            return None
        logger = logger.parent
    root = logging.root
    if len(root.handlers) != 1 or root.filters:
        return None
    handler = root.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or type(handler.formatter) is not JSONFormatter
        or handler.level > logging.INFO
        or len(handler.filters) != 1
        or type(handler.filters[0]) is not RequestIdFilter
    ):
        return None
    return cast("logging.StreamHandler[Any]", handler)


def _write_line(
    console: logging.StreamHandler[Any], args: tuple[object, ...], fields: dict[str, Any]
) -> None:
    """The line ``console`` would write for the access record, made without
    making the record: the same keys in the same order. It is written with
    others, in one write under the console's lock (:mod:`app.core.access_batch`)."""
    formatter = cast("JSONFormatter", console.formatter)
    entry: dict[str, Any] = {
        "ts": formatter.timestamp(time.time()),
        "level": "INFO",
        "logger": access_log.name,
        "message": _ACCESS_FORMAT % args,
        "request_id": request_id_var.get(),
        **fields,
    }
    access_batch.batch.add(console, orjson.dumps(entry, default=repr).decode() + console.terminator)


#: Where access records say they come from, as a logger call would find it.
_ACCESS_SOURCE = (__file__, _log_access.__code__.co_firstlineno, "_log_access")


def init_app(app: Flask) -> None:
    """Register the access log. Call after the request id is wired up."""
    app.before_request(_start_timer)
    app.after_request(_log_access)
