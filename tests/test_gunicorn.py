"""gunicorn.conf.py serves the app and logs through the app's own config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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
    assert result.stdout.split() == ["7", "3", "app.core.gunicorn_worker.Worker", "None", "True"]


#: A WSGI app that answers with the pid of the worker that served it, after
#: sleeping for the seconds in its query string.
PID_APP = """
import os, time

def app(environ, start_response):
    time.sleep(float(environ["QUERY_STRING"] or 0))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def answered(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response (head, and the body its
    Content-Length announces)."""
    head, done, body = answer.partition(b"\r\n\r\n")
    length = head.partition(b"Content-Length: ")[2].partition(b"\r\n")[0]
    return bool(done) and len(body) == int(length)


def pids_of(connections: list[socket.socket], pause: float) -> list[str]:
    """Send one request on each connection, then read each answer's pid."""
    for conn in connections:
        conn.sendall(f"GET /?{pause} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    pids: list[str] = []
    for conn in connections:
        answer = b""
        while not answered(answer):
            chunk = conn.recv(4096)
            assert chunk, "the server closed the connection"
            answer += chunk
        pids.append(answer.partition(b"\r\n\r\n")[2].decode())
    return pids


@contextmanager
def pid_server(tmp_path: Path, workers: int, threads: int) -> Iterator[int]:
    (tmp_path / "pid_app.py").write_text(PID_APP)
    port = free_port()
    env = {
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    with gunicorn(tmp_path, port, env=env, app="pid_app:app"):
        yield port


def test_connections_that_arrive_together_spread_over_the_workers(tmp_path: Path) -> None:
    """8 connections opened at once on 2 workers of 4 threads: each worker takes
    4, because it stops accepting while every thread has a request. gunicorn's
    stock gthread worker split them 5/3 or 6/2 in most tries on this machine."""
    with pid_server(tmp_path, workers=2, threads=4) as port:
        for _ in range(3):
            connections = [
                socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)
            ]
            try:
                pids = pids_of(connections, pause=1.0)
            finally:
                for conn in connections:
                    conn.close()
            assert sorted(Counter(pids).values()) == [4, 4], pids


def test_a_kept_alive_connection_leaves_its_thread_to_a_new_one(tmp_path: Path) -> None:
    """One worker, 2 threads: 2 connections kept alive between requests take no
    thread, so a third connection is still answered at once, not after the
    keep-alive timeout (5 s) frees a slot."""
    with pid_server(tmp_path, workers=1, threads=2) as port:
        kept = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            first = pids_of(kept, pause=0)
            third = socket.create_connection(("127.0.0.1", port), timeout=2)
            try:
                assert pids_of([third], pause=0) == first[:1]
            finally:
                third.close()
            # The kept connections still serve.
            assert pids_of(kept, pause=0) == first
        finally:
            for conn in kept:
                conn.close()


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
