"""compose/nginx/nginx.conf, run by a real nginx in front of a real gunicorn.

The config is the committed one, with only what ties it to compose replaced:
where it listens, the upstream's address (``web:8000``) and the folders it
writes to. Everything nginx answers itself must be the error envelope too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from serving_support import ROOT, exchange, free_port, gunicorn, raw_get, wait_for

# Debian puts it in /usr/sbin, which a non-root PATH may lack.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed here (.ci/run installs Debian's nginx-light)"
)


def local_conf(tmp_path: Path, port: int, upstream: int) -> Path:
    """nginx.conf with compose's names swapped for this machine's."""
    text = (ROOT / "compose" / "nginx" / "nginx.conf").read_text()
    replaced = {
        "listen 8080 default_server;": f"listen 127.0.0.1:{port} default_server;",
        "set $web_upstream http://web:8000;": f"set $web_upstream http://127.0.0.1:{upstream};",
        "/tmp/": f"{tmp_path}/",  # noqa: S108 - the pid and temporary files, moved out of /tmp
    }
    for old, new in replaced.items():
        assert old in text, f"nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(nginx's port, a port nothing listens on); nginx proxies to gunicorn."""
    tmp_path = tmp_path_factory.mktemp("nginx")
    app_port, port = free_port(), free_port()
    with gunicorn(tmp_path, app_port):
        conf = local_conf(tmp_path, port, app_port)
        assert NGINX is not None
        process = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off; user root;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(port, process)
            yield port, app_port
        finally:
            process.terminate()
            process.communicate(timeout=30)


def envelope_of(answer: tuple[int, dict[str, str], bytes]) -> dict[str, object]:
    status, headers, body = answer
    assert headers["content-type"] == "application/json", body[:200]
    envelope = orjson.loads(body)
    assert envelope["code"] == status
    assert envelope["request_id"] == headers["x-request-id"]
    return envelope


def test_nginx_proxies_to_the_app(stack: tuple[int, int]) -> None:
    port, _ = stack
    status, headers, body = exchange(port, raw_get("/api/v1/health", "X-Request-ID: via-nginx"))
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})
    assert headers["x-request-id"] == "via-nginx"


@pytest.mark.parametrize(
    ("request_bytes", "status", "error_code"),
    [
        pytest.param(raw_get("/api/v1/" + "a" * 8200), 414, 10008, id="request-line-over-8k"),
        pytest.param(
            raw_get("/api/v1/health", "X-Big: " + "b" * 8200), 431, 10009, id="header-over-8k"
        ),
        pytest.param(
            raw_get("/api/v1/health", *(f"X-H{i}: {'c' * 7900}" for i in range(5))),
            431,
            10009,
            id="headers-over-32k",
        ),
        pytest.param(
            # Each small, but with those nginx adds, over gunicorn's 100: gunicorn refuses.
            raw_get("/api/v1/health", *(f"X-H{i}: {i}" for i in range(100))),
            431,
            10009,
            id="over-100-headers",
        ),
        pytest.param(b"GET /api/v1/health HTTP/1.1\r\n\r\n", 400, 10000, id="no-host-header"),
        pytest.param(b"NOT A REQUEST\r\n\r\n", 400, 10000, id="malformed-request-line"),
        pytest.param(
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
            b"Connection: close\r\n\r\n",
            413,
            10005,
            id="body-over-1m",
        ),
    ],
)
def test_what_nginx_refuses_is_the_envelope(
    stack: tuple[int, int], request_bytes: bytes, status: int, error_code: int
) -> None:
    port, _ = stack
    answer = exchange(port, request_bytes)
    assert answer[0] == status
    assert envelope_of(answer)["error_code"] == error_code


def test_under_nginx_s_limits_the_request_reaches_the_app(stack: tuple[int, int]) -> None:
    port, _ = stack
    line = exchange(port, raw_get("/api/v1/" + "a" * 8000))
    assert line[0] == 404
    assert envelope_of(line)["error_code"] == 13001  # the app's "no such route"
    header = exchange(port, raw_get("/api/v1/health", "X-Big: " + "b" * 8000))
    assert header[0] == 200
    # gunicorn counts what nginx sends: the client's headers but Host and
    # Connection, and nginx's four (Host, X-Forwarded-For, X-Forwarded-Proto,
    # X-Request-ID; its empty Connection is not sent). 96 + 4 = 100.
    headers = [f"X-H{i}: {i}" for i in range(97)]
    assert exchange(port, raw_get("/api/v1/health", *headers[:96]))[0] == 200
    assert exchange(port, raw_get("/api/v1/health", *headers))[0] == 431
    # nginx drops a header line it cannot parse (ignore_invalid_headers, its
    # default) rather than refuse the request; gunicorn alone would answer 400.
    invalid = exchange(port, raw_get("/api/v1/health", "NoColonHere"))
    assert invalid[0] == 200


def test_nginx_health_answers_loopback_only(stack: tuple[int, int]) -> None:
    """`allow`/`deny` never applied to it (they run after `return`): the check is
    a rewrite-phase `if`, and anyone else gets the envelope's 403."""
    port, _ = stack
    local = exchange(port, raw_get("/nginx-health"))
    assert (local[0], local[2]) == (200, b"ok\n")
    other = exchange(port, raw_get("/nginx-health"), source="127.0.0.2")
    assert other[0] == 403
    assert envelope_of(other)["error_code"] == 12000
