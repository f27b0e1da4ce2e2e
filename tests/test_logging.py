"""Logging: one config for app, werkzeug, gunicorn and celery; access and error logs."""

from __future__ import annotations

import io
import logging
import logging.config
import sys

import orjson
import pytest
from conftest import SettingsFactory
from flask.testing import FlaskClient

from app.core import access_batch
from app.core import logging as app_logging
from app.core.logging import (
    JSONFormatter,
    RequestIdFilter,
    TextFormatter,
    _console_alone,  # pyright: ignore[reportPrivateUsage]
    log_access,
    logging_config,
)
from app.core.request_id import request_id_var


def make_record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "app.test", logging.INFO, __file__, 1, message, args or ("world",), None
    )
    record.__dict__.update(extra)
    RequestIdFilter().filter(record)
    return record


def test_access_log_has_one_line_per_request_with_every_field(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    response = client.get("/api/v1/health", headers={"X-Request-ID": "acc-1"})
    [record] = [r for r in caplog.records if r.name == "app.access"]
    fields = record.__dict__
    assert fields["method"] == "GET"
    assert fields["path"] == "/api/v1/health"
    assert fields["status"] == 200
    assert fields["bytes"] == len(response.data)
    assert fields["remote_addr"] == "127.0.0.1"
    assert isinstance(fields["duration_ms"], float)
    assert fields["duration_ms"] >= 0
    assert fields["request_id"] == "acc-1"
    assert record.getMessage().startswith("GET /api/v1/health 200 ")


def test_access_log_records_errors_too(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    client.post("/api/v1/health")
    [record] = [r for r in caplog.records if r.name == "app.access"]
    assert record.__dict__["status"] == 405


def test_text_format_shows_time_level_logger_and_request_id() -> None:
    token = request_id_var.set("txt-1")
    try:
        line = TextFormatter().format(make_record())
    finally:
        request_id_var.reset(token)
    assert line.endswith(" INFO    app.test [txt-1] hello world")
    assert line[:4].isdigit()


def test_json_format_is_one_object_per_line_with_extras() -> None:
    token = request_id_var.set("json-1")
    try:
        line = JSONFormatter().format(make_record(status=201, path="/x"))
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "app.test"
    assert entry["request_id"] == "json-1"
    assert (entry["status"], entry["path"]) == (201, "/x")
    assert entry["ts"].endswith("+00:00")


def test_json_format_carries_the_traceback() -> None:
    try:
        raise RuntimeError("kaboom")
    except RuntimeError:
        record = logging.LogRecord(
            "app.error", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = orjson.loads(JSONFormatter().format(record))
    assert "Traceback" in entry["exc_info"]
    assert "RuntimeError: kaboom" in entry["exc_info"]
    assert "\n" not in JSONFormatter().format(record)


def test_json_format_with_stack_info() -> None:
    record = make_record()
    record.stack_info = "Stack (most recent call last):\n  here"
    assert "here" in orjson.loads(JSONFormatter().format(record))["stack_info"]


def test_outside_a_request_the_id_is_a_dash() -> None:
    assert make_record().__dict__["request_id"] == "-"


def test_config_unifies_werkzeug_gunicorn_and_celery(make_settings: SettingsFactory) -> None:
    config = logging_config(make_settings(app_env="production", secret_key="s" * 40))
    assert config["root"]["handlers"] == ["console"]
    assert config["handlers"]["console"]["formatter"] == "json"
    loggers = config["loggers"]
    assert loggers["werkzeug"]["level"] == "WARNING"
    assert loggers["gunicorn.access"] == {"level": "WARNING", "handlers": [], "propagate": False}
    assert loggers["gunicorn.error"]["handlers"] == ["console"]
    assert "celery" in loggers


def test_development_config_is_text(make_settings: SettingsFactory) -> None:
    config = logging_config(make_settings(app_env="development"))
    assert config["handlers"]["console"]["formatter"] == "text"


def test_json_timestamps_are_the_records_own_to_the_millisecond_across_seconds() -> None:
    """Each second is formatted once and reused: records in the same second,
    the next one, and an earlier one again all get their own time."""
    from datetime import UTC, datetime  # noqa: PLC0415 - this test's alone

    formatter = JSONFormatter()
    for created in (
        1764750000.0004,
        1764750000.9996,
        1764750000.9999996,  # rounds up into the next second
        1764750001.5,
        1764749999.25,
        1764750000.1,  # 0.0999999... in binary
    ):
        record = make_record()
        record.created = created
        expected = datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")
        assert orjson.loads(formatter.format(record))["ts"] == expected, created


def test_an_access_record_says_where_it_comes_from(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Built without a walk up the stack, it names the same source a logger call would."""
    caplog.set_level(logging.INFO, logger="app.access")
    client.get("/api/v1/health")
    [record] = [r for r in caplog.records if r.name == "app.access"]
    assert (record.module, record.funcName) == ("logging", "_log_access")
    assert record.pathname.endswith("app/core/logging.py")
    assert record.lineno > 0


def reset_logging() -> None:
    """Undo a test's changes: the next ``configure_logging`` sets up afresh."""
    for name in ("app.access", "app"):
        logger = logging.getLogger(name)
        logger.filters.clear()
        logger.handlers.clear()
    app_logging._configured_for = None  # the module's own memo


def _app_console(stream: io.StringIO, make_settings: SettingsFactory) -> logging.Handler:
    """The app's production logging config, its console writing to ``stream``."""
    logging.config.dictConfig(
        logging_config(make_settings(app_env="production", secret_key="s" * 40))
    )
    [console] = logging.root.handlers
    assert isinstance(console, logging.StreamHandler)
    console.setStream(stream)
    return console


def test_the_access_line_written_directly_is_the_line_logging_writes(
    make_settings: SettingsFactory,
) -> None:
    """Under the app's own config the line skips the record; with another
    handler on the way it goes through logging: the same line either way."""
    stream = io.StringIO()
    _app_console(stream, make_settings)
    other = logging.StreamHandler(io.StringIO())
    token = request_id_var.set("direct-1")
    try:
        assert _console_alone() is not None
        log_access("GET", "/x", 200, duration_ms=1.234, size=12, remote="10.0.0.1")
        access_batch.batch.flush()  # the direct line waits for its batch
        logging.root.addHandler(other)
        assert _console_alone() is None
        log_access("GET", "/x", 200, duration_ms=1.234, size=12, remote="10.0.0.1")
    finally:
        request_id_var.reset(token)
        logging.root.removeHandler(other)
        reset_logging()
    direct, through_logging = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert direct.pop("ts")[:19] == through_logging.pop("ts")[:19]
    assert list(direct.items()) == list(through_logging.items())
    assert direct == {
        "level": "INFO",
        "logger": "app.access",
        "message": "GET /x 200 1.23ms 12B 10.0.0.1",
        "request_id": "direct-1",
        "method": "GET",
        "path": "/x",
        "status": 200,
        "duration_ms": 1.23,
        "bytes": 12,
        "remote_addr": "10.0.0.1",
    }
    assert other.stream.getvalue().startswith("GET /x 200 1.23ms")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "change",
    ["a filter on app.access", "a handler on app", "the text format", "a level above INFO"],
)
def test_any_other_logging_config_sends_access_lines_through_logging(
    make_settings: SettingsFactory, change: str
) -> None:
    console = _app_console(io.StringIO(), make_settings)
    try:
        if change == "a filter on app.access":
            logging.getLogger("app.access").addFilter(lambda record: True)
        elif change == "a handler on app":
            logging.getLogger("app").addHandler(logging.NullHandler())
        elif change == "the text format":
            console.setFormatter(TextFormatter())
        else:
            console.setLevel(logging.WARNING)
        assert _console_alone() is None
    finally:
        reset_logging()
