"""gunicorn.conf.py serves the app and logs through the app's own config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).parents[1]


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


def get(url: str, request_id: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read(), response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["X-Request-ID"]


def test_gunicorn_serves_the_api_with_json_logs(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "production",
        "SECRET_KEY": "g" * 40,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "app.wsgi:app",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(port, process)
        status, body, request_id = get(f"http://127.0.0.1:{port}/api/v1/health", "gun-1")
        assert (status, orjson.loads(body), request_id) == (200, {"status": "ok"}, "gun-1")
        status, body, _ = get(f"http://127.0.0.1:{port}/api/v1/missing", "gun-2")
        assert status == 404
        assert orjson.loads(body)["request_id"] == "gun-2"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    entries = [orjson.loads(line) for line in stderr.splitlines() if line.strip()]
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
    # Exactly one access line per request: gunicorn's own access log is off.
    assert len([e for e in entries if "GET /api/v1/health" in e["message"]]) == 1


def test_gunicorn_config_reads_workers_and_threads_from_settings(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GUNICORN_WORKERS": "7", "GUNICORN_THREADS": "3"}
    code = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py');"
        "print(c['workers'], c['threads'], c['worker_class'], c['accesslog'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code.replace("gunicorn.conf.py", str(ROOT / "gunicorn.conf.py"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["7", "3", "gthread", "None"]
