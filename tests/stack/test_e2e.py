"""The stack end to end, through nginx's published port, as a frontend sees it,
and the README's full-stack commands, one by one."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import PASSWORD, Stack
from websockets.sync.client import connect

LONG_RUNNING = {
    "mysql",
    "redis",
    "meilisearch",
    "web",
    "realtime",
    "worker",
    "beat",
    "flower",
    "nginx",
}


def service_of(container: str) -> str:
    """``flask-api-template-stack-test-web-1`` -> ``web``."""
    return container.rsplit("-", 2)[-2]


def test_every_service_is_healthy_and_migrate_exited_0(stack: Stack) -> None:
    states = stack.health()
    assert {service_of(name) for name in states} == LONG_RUNNING, states
    assert all(state == "healthy" for state in states.values()), states
    migrate = stack.compose(
        "ps", "-a", "--format", "{{.Service}} {{.State}} {{.ExitCode}}", "migrate"
    )
    assert migrate.stdout.split() == ["migrate", "exited", "0"]


def test_health_and_readiness_through_nginx(stack: Stack) -> None:
    assert stack.request("GET", "/api/v1/health").json() == {"status": "ok"}
    ready = stack.request("GET", "/api/v1/health/ready")
    assert ready.status == 200, ready.body
    checks = ready.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "redis": "ok",
        "search": "ok",
        "broker": "ok",
    }


def logs_until(
    stack: Stack, arguments: list[str], check: Callable[[list[str]], bool], seconds: float = 10
) -> list[str]:
    """The lines of ``docker compose logs <arguments>``, read again until ``check``
    holds or ``seconds`` pass: the app writes its access lines in batches
    (app/core/access_batch.py), up to a fraction of a second after the answer."""
    deadline = time.monotonic() + seconds
    while True:
        lines = stack.compose("logs", "--no-color", *arguments).stdout.splitlines()
        if check(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_gunicorn_starts_without_errors(stack: Stack) -> None:
    """gunicorn 25.1+ opened a control socket under $HOME, which the image's user
    does not have: `Control server error: [Errno 13] Permission denied`."""
    logs = stack.compose("logs", "--no-color", "web").stdout
    assert "Booting worker" in logs
    assert "Control server" not in logs
    assert '"level":"ERROR"' not in logs.replace(" ", "")


def test_nginx_health_answers_only_nginx_itself(stack: Stack) -> None:
    """`allow 127.0.0.1; deny all;` never applied: `return` answers in the
    rewrite phase, before the access phase."""
    outside = stack.request("GET", "/nginx-health")
    assert outside.status == 403
    assert outside.json()["error_code"] == 12000
    inside = stack.compose(
        "exec", "-T", "nginx", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/nginx-health"
    )
    assert inside.stdout == "ok\n"


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/api/v1/nope", None, 404, 13001),
        ("DELETE", "/api/v1/health", None, 405, 10006),
        ("POST", "/api/v1/auth/token", b"x" * (1024 * 1024 + 1), 413, 10005),
        ("GET", "/api/v1/" + "a" * 9000, None, 414, 10008),
    ],
    ids=["404", "405", "413", "414"],
)
def test_errors_through_nginx_are_the_envelope(
    stack: Stack, case: tuple[str, str, bytes | None, int, int]
) -> None:
    method, path, raw, status, error_code = case
    answer = stack.request(
        method, path, raw=raw, headers={"Content-Type": "application/json"} if raw else None
    )
    assert answer.status == status
    assert answer.headers["content-type"].startswith("application/json")
    envelope = answer.json()
    assert (envelope["code"], envelope["error_code"]) == (status, error_code)
    assert envelope["request_id"] == answer.headers["x-request-id"]


def test_the_contract_through_nginx(stack: Stack) -> None:
    """Register, sign in, create, read through the cache, the ETag flow."""
    _, token = stack.sign_up("flow@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    me = stack.request("GET", "/api/v1/users/me", headers=auth)
    assert me.json()["email"] == "flow@example.com"

    created = stack.publish(auth, "Through nginx", body="Hello", tags=["stack"])
    article_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/api/v1/articles/{article_id}")
    etag = created.headers["etag"]

    read = stack.request("GET", f"/api/v1/articles/{article_id}")
    assert read.json()["title"] == "Through nginx"
    # The read went through the tiered cache: its Redis tier now holds the article.
    keys = stack.compose("exec", "-T", "redis", "redis-cli", "--scan", "--pattern", "*article*")
    assert str(article_id) in keys.stdout

    assert (
        stack.request(
            "GET", f"/api/v1/articles/{article_id}", headers={"If-None-Match": etag}
        ).status
        == 304
    )
    changed = stack.request(
        "PATCH",
        f"/api/v1/articles/{article_id}",
        headers={**auth, "If-Match": etag},
        body={"title": "Changed"},
    )
    assert changed.status == 200
    stale = stack.request(
        "PATCH",
        f"/api/v1/articles/{article_id}",
        headers={**auth, "If-Match": etag},
        body={"title": "Lost"},
    )
    assert stale.status == 412
    assert stale.headers["etag"] == changed.headers["etag"]
    assert stack.request("GET", f"/api/v1/articles/{article_id}").json()["title"] == "Changed"


def test_nginx_gzips_and_the_weak_etag_still_matches(stack: Stack) -> None:
    _, token = stack.sign_up("gzip@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    created = stack.publish(auth, "Big", body="x" * 5000)
    article_id = created.json()["id"]
    read = stack.request(
        "GET", f"/api/v1/articles/{article_id}", headers={"Accept-Encoding": "gzip"}
    )
    assert read.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in read.headers["vary"]
    assert json.loads(gzip.decompress(read.body))["body"] == "x" * 5000
    weak = read.headers["etag"]
    assert weak.startswith('W/"')
    # If-Match compares strongly; nginx hands the app back the strong tag.
    patched = stack.request(
        "PATCH",
        f"/api/v1/articles/{article_id}",
        headers={**auth, "If-Match": weak},
        body={"title": "Still matches"},
    )
    assert patched.status == 200, patched.body


def test_request_id_security_headers_and_cors_pass_through_nginx(stack: Stack) -> None:
    answer = stack.request("GET", "/api/v1/health", headers={"X-Request-ID": "stack-rid-1"})
    assert answer.headers["x-request-id"] == "stack-rid-1"
    for name, value in {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
    }.items():
        assert answer.headers[name] == value
    # An id the app would not accept is replaced, by one id in both logs.
    replaced = stack.request("GET", "/api/v1/health", headers={"X-Request-ID": "bad id!"})
    new_id = replaced.headers["x-request-id"]
    assert new_id != "bad id!"
    logs = logs_until(
        stack, ["nginx", "web"], lambda logs: sum(new_id in line for line in logs) >= 2
    )
    assert sum(new_id in line for line in logs) >= 2

    origin = stack.env["CORS_ORIGINS"]
    preflight = stack.request(
        "OPTIONS",
        "/api/v1/articles",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    other = stack.request("GET", "/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_the_app_sees_the_client_address_nginx_sees(stack: Stack) -> None:
    """The per-address sign-in throttle keys on the address the app sees: behind
    nginx (PROXY_FIX_HOPS=1) it is nginx's $remote_addr, not nginx's own."""
    stack.request("GET", "/api/v1/health", headers={"X-Request-ID": "stack-addr-1"})
    lines = logs_until(
        stack,
        ["--no-log-prefix", "nginx", "web"],
        lambda logs: sum("stack-addr-1" in line for line in logs) >= 2,
    )
    seen = {}
    for line in lines:
        if "stack-addr-1" in line and line.lstrip().startswith("{"):
            entry = json.loads(line)
            seen[entry["logger"]] = entry["remote_addr"]
    assert seen["nginx.access"] == seen["app.access"], seen
    nginx_ip = stack.compose("exec", "-T", "nginx", "sh", "-c", "hostname -i").stdout.split()
    assert seen["app.access"] not in nginx_ip


def test_flower_is_behind_its_basic_auth(stack: Stack) -> None:
    assert stack.request("GET", "/", port=stack.flower_port).status == 401
    wrong = base64.b64encode(b"flower:wrong").decode()
    assert (
        stack.request(
            "GET", "/", port=stack.flower_port, headers={"Authorization": f"Basic {wrong}"}
        ).status
        == 401
    )
    credentials = base64.b64encode(stack.env["FLOWER_BASIC_AUTH"].encode()).decode()
    workers = stack.request(
        "GET",
        "/api/workers?refresh=1",
        port=stack.flower_port,
        headers={"Authorization": f"Basic {credentials}"},
        timeout=30,
    )
    assert workers.status == 200
    assert any(name.startswith("celery@") for name in workers.json()), workers.body


def test_the_readmes_commands_create_admin_and_seed(stack: Stack) -> None:
    admin = stack.compose(
        "run",
        "--rm",
        "-T",
        "web",
        "flask",
        "users",
        "create-admin",
        "admin@example.com",
        "--password",
        PASSWORD,
    )
    assert "Created admin admin@example.com" in admin.stdout
    token = stack.request(
        "POST", "/api/v1/auth/token", body={"email": "admin@example.com", "password": PASSWORD}
    ).json()["access_token"]
    stack.compose("run", "--rm", "-T", "web", "flask", "seed", "--users", "3", "--articles", "12")
    users = stack.request("GET", "/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert users.status == 200
    assert users.json()["total"] >= 4
    assert stack.request("GET", "/api/v1/articles?per_page=1").json()["total"] >= 12


def test_search_init_and_the_outbox(stack: Stack) -> None:
    """`flask search init` against the stack's Meilisearch. Against a real one
    the article is found; against the local stand-in (a stub answering only
    /health and /version) the command fails loudly, and the worker's attempt
    is recorded in the outbox, which keeps the update: nothing is lost."""
    version = stack.compose(
        "exec",
        "-T",
        "web",
        "python",
        "-c",
        "import urllib.request;print(urllib.request.urlopen('http://meilisearch:7700/version').read().decode())",
    ).stdout
    real = "-stub" not in json.loads(version)["pkgVersion"]
    init = stack.compose("run", "--rm", "-T", "web", "flask", "search", "init", check=False)
    _, token = stack.sign_up("search@example.com")
    created = stack.publish({"Authorization": f"Bearer {token}"}, "Findable zebra")
    article_id = created.json()["id"]
    if real:
        assert init.returncode == 0, init.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = stack.request("GET", "/api/v1/articles/search?q=zebra").json()
            if any(hit["id"] == article_id for hit in found["items"]):
                return
            time.sleep(0.5)
        raise AssertionError("the article never reached Meilisearch")
    assert init.returncode != 0
    assert "Meilisearch" in init.stdout + init.stderr
    # web -> broker -> worker -> Meilisearch (refused) -> the worker writes to MySQL.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        query = "SELECT attempts, last_error IS NOT NULL FROM search_outbox WHERE article_id = %d"
        row = stack.mysql(query % article_id)
        if row and row.split()[0] != "0":
            assert row.split()[1] == "1", row
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker never tried the outbox row of article {article_id}")


def test_a_task_goes_from_web_through_the_broker_to_the_worker(stack: Stack) -> None:
    user_id, token = stack.sign_up("task@example.com", name="Before")
    stack.rename_slowly(user_id, "After", 0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        me = stack.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        if me.json()["name"] == "After":
            return
        time.sleep(0.5)
    raise AssertionError("the task never wrote to the database")


def _stream(stack: Stack, token: str, after: int = 0) -> Any:
    return connect(
        f"ws://127.0.0.1:{stack.http_port}/api/v1/notifications/stream?after={after}",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=15,
    )


def _until_ready(ws: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while (frame := json.loads(ws.recv(15)))["type"] != "ready":
        found.append(frame["notification"])
    return found


def _connections(stack: Stack) -> list[int]:
    """Each realtime replica's open connections, from its own ``/health``."""
    return [
        json.loads(
            stack.compose(
                "exec", "-T", "--index", str(index), "realtime", "python", "-c",
                "import urllib.request;"
                "print(urllib.request.urlopen('http://127.0.0.1:8001/health').read().decode())",
            ).stdout
        )["connections"]
        for index in (1, 2)
    ]  # fmt: skip


def _one_stream_on_each_replica(
    stack: Stack, token: str, opened: contextlib.ExitStack
) -> list[Any]:
    """Streams through nginx until each of the two replicas holds one.

    nginx starts each request at a random address of the name's answer, so a
    stream that lands on a replica already held is closed and opened again."""
    held: list[Any] = []
    for _ in range(20):
        before = _connections(stack)
        ws = opened.enter_context(_stream(stack, token))
        _until_ready(ws)
        after = _connections(stack)
        assert sum(after) == sum(before) + 1, (before, after)
        if min(after) > 0:
            return [*held, ws]
        if held:  # on the replica the first one holds: close it, wait for the count
            ws.close()
            _until_connections(stack, before)
        else:
            held.append(ws)
    raise AssertionError(f"20 streams, all on one replica: {_connections(stack)}")


def _until_connections(stack: Stack, expected: list[int], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while (found := _connections(stack)) != expected:
        assert time.monotonic() < deadline, f"{found}, not {expected}, after {seconds}s"
        time.sleep(0.2)


def test_the_stream_through_nginx_on_every_realtime_replica(stack: Stack) -> None:
    """A ticket opens the stream through nginx; with `--scale realtime=2`, a
    comment reaches the author's sockets on both replicas."""
    _, author = stack.sign_up("streamer@example.com", name="Streamer")
    _, reader = stack.sign_up("commenter@example.com", name="Commenter")
    article = stack.publish({"Authorization": f"Bearer {author}"}, "Streamed").json()
    ticket = stack.request(
        "POST", "/api/v1/notifications/ticket", headers={"Authorization": f"Bearer {author}"}
    )
    assert ticket.status == 201, ticket.body
    with connect(
        f"ws://127.0.0.1:{stack.http_port}/api/v1/notifications/stream"
        f"?ticket={ticket.json()['ticket']}",
        open_timeout=15,
    ) as ws:
        assert json.loads(ws.recv(15)) == {"type": "ready"}
    assert ticket.json()["ticket"] not in stack.compose("logs", "--no-color", "nginx").stdout

    stack.compose("up", "-d", "--no-recreate", "--scale", "realtime=2", "realtime", timeout=300)
    stack.wait_healthy("realtime")
    time.sleep(11)  # nginx looks "realtime" up again once its answer is 10 s old
    with contextlib.ExitStack() as opened:
        opened.callback(  # back to one replica, whatever happens below
            stack.compose, "up", "-d", "--no-recreate", "--scale", "realtime=1", "realtime"
        )
        sockets = _one_stream_on_each_replica(stack, author, opened)
        made = stack.request(
            "POST",
            f"/api/v1/articles/{article['id']}/comments",
            headers={"Authorization": f"Bearer {reader}"},
            body={"body": "to every replica"},
        )
        assert made.status == 201, made.body
        for ws in sockets:
            note = json.loads(ws.recv(15))["notification"]
            assert note["data"]["comment_id"] == made.json()["id"]
