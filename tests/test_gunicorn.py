"""gunicorn.conf.py serves the app and logs through the app's own config."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from serving_support import ROOT, exchange, free_port, gunicorn, raw_get

from app.core.gunicorn_errors import error_bytes


def get(url: str, request_id: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read(), response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["X-Request-ID"]


def test_gunicorn_serves_the_api_with_json_logs(tmp_path: Path) -> None:
    port = free_port()
    with gunicorn(tmp_path, port) as stderr:
        status, body, request_id = get(f"http://127.0.0.1:{port}/api/v1/health", "gun-1")
        assert (status, orjson.loads(body), request_id) == (200, {"status": "ok"}, "gun-1")
        status, body, _ = get(f"http://127.0.0.1:{port}/api/v1/missing", "gun-2")
        assert status == 404
        assert orjson.loads(body)["request_id"] == "gun-2"

    entries = [orjson.loads(line) for line in stderr if line.strip()]
    # gunicorn's own lines go through the same JSON formatter.
    assert any(
        e["logger"] == "gunicorn.error" and "Booting worker" in e["message"] for e in entries
    )
    access = {e["request_id"]: e for e in entries if e["logger"] == "app.access"}
    assert access["gun-1"]["status"] == 200
    assert access["gun-1"]["method"] == "GET"
    assert access["gun-1"]["path"] == "/api/v1/health"
    assert access["gun-1"]["bytes"] == len(b'{"status":"ok"}')
    assert access["gun-1"]["remote_addr"] == "127.0.0.1"
    assert access["gun-2"]["status"] == 404
    assert [e["message"] for e in entries if e["level"] == "ERROR"] == []
    # Exactly one access line per request: gunicorn's own access log is off.
    assert len([e for e in entries if "GET /api/v1/health" in e["message"]]) == 1


def test_gunicorn_config_reads_workers_and_threads_from_settings(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GUNICORN_WORKERS": "7", "GUNICORN_THREADS": "3"}
    code = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py');"
        "print(c['workers'], c['threads'], c['worker_class'], c['accesslog'],"
        " c['control_socket_disable'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code.replace("gunicorn.conf.py", str(ROOT / "gunicorn.conf.py"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # No control socket: gunicorn 25.1+ puts it under $HOME, which the image's user
    # lacks (tests/stack/test_stack.py checks the container's log for the error).
    assert result.stdout.split() == ["7", "3", "gthread", "None", "True"]


ACCESS_LOGGING = """
import copy, runpy
from gunicorn import glogging
from gunicorn.config import Config
conf = runpy.run_path("gunicorn.conf.py")
logger_class = conf["logger_class"]
module, _, name = logger_class.rpartition(".")
Ours = getattr(__import__(module, fromlist=[name]), name)

def enabled(kind, access_level):
    cfg = Config()
    config = copy.deepcopy(conf["logconfig_dict"])
    config["loggers"]["gunicorn.access"]["level"] = access_level
    cfg.set("logconfig_dict", config)
    return kind(cfg).access_log_enabled

print(logger_class, enabled(glogging.Logger, "WARNING"), enabled(Ours, "WARNING"),
      enabled(Ours, "INFO"))
"""


def test_gunicorn_builds_no_access_record_that_nothing_reads(tmp_path: Path) -> None:
    """With the app's logging config, stock gunicorn builds an access record per
    request for gunicorn.access (WARNING) to drop; the configured logger does not,
    unless gunicorn.access is raised to INFO."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            ACCESS_LOGGING.replace("gunicorn.conf.py", str(ROOT / "gunicorn.conf.py")),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["app.core.gunicorn_logger.Logger", "True", "False", "True"]


#: What gunicorn refuses before the app sees it, at the limits gunicorn.conf.py sets.
REFUSED = {
    "a request line over 8190 bytes": (raw_get("/api/v1/" + "a" * 8200), 414, 10008),
    "a header line over 8190 bytes": (
        raw_get("/api/v1/health", "X-Big: " + "b" * 8200),
        431,
        10009,
    ),
    "more than 100 headers": (
        raw_get("/api/v1/health", *(f"X-H{i}: {i}" for i in range(101))),
        431,
        10009,
    ),
    "a header without a colon": (raw_get("/api/v1/health", "NoColonHere"), 400, 10000),
    "a malformed request line": (b"GET\r\n\r\n", 400, 10000),
}


def test_what_gunicorn_refuses_is_answered_in_the_envelope(tmp_path: Path) -> None:
    port = free_port()
    answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
    with gunicorn(tmp_path, port) as stderr:
        for name, (request, _, _) in REFUSED.items():
            answers[name] = exchange(port, request)
        # Just under the limits, the app answers: the limits are the ones documented.
        line = exchange(port, raw_get("/api/v1/" + "a" * 8000))
        header = exchange(port, raw_get("/api/v1/health", "X-Big: " + "b" * 8000))
        many = exchange(port, raw_get("/api/v1/health", *(f"X-H{i}: {i}" for i in range(95))))
    assert line[0] == 404
    assert orjson.loads(line[2])["error_code"] == 13001
    assert header[0] == many[0] == 200

    logged = [orjson.loads(entry) for entry in stderr if entry.strip()]
    for name, (_, status, error_code) in REFUSED.items():
        got_status, headers, body = answers[name]
        assert got_status == status, name
        assert headers["content-type"] == "application/json", name
        assert int(headers["content-length"]) == len(body), name
        envelope = orjson.loads(body)
        assert envelope == {
            "code": status,
            "error_code": error_code,
            "message": envelope["message"],
            "request_id": headers["x-request-id"],
        }, name
        # The log line says why, under the id the client got.
        assert any(
            entry["request_id"] == envelope["request_id"]
            and entry["logger"] == "app.error"
            and entry["level"] == "WARNING"
            and str(status) in entry["message"]
            for entry in logged
        ), name


@pytest.mark.parametrize("status", [400, 403, 414, 417, 431, 500, 501])
def test_every_status_gunicorn_writes_is_an_envelope(status: int) -> None:
    head, _, body = error_bytes(status, "rid-1").partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Content-Type: application/json" in head
    envelope = orjson.loads(body)
    assert envelope["code"] == status
    assert envelope["request_id"] == "rid-1"
    assert envelope["message"]
