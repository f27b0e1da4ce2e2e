"""The compose stack, for real: ``make stack-test`` (``pytest --stack``).

The session fixture does what a new user does (README, "The full stack"), in a
copy of the working tree so a developer's own ``.env`` and stack are left alone:

1. copy the project's files (``git ls-files``) into a temporary folder;
2. ``cp .env.example .env`` and fill in the compose section's secrets, with
   free host ports for nginx and Flower;
3. build the app image (``docker build -f compose/web/Dockerfile``, with
   ``--network=$STACK_BUILD_NETWORK`` when that is set: ``host`` for an engine
   without NAT), the worker's test image on top of it, and compose's own builds;
4. ``docker compose up -d --wait``;
5. after the tests, ``docker compose down -v --remove-orphans``: nothing is left
   running, and no volume is left behind.

The project name is ``flask-api-template-stack-test``, so the stack's containers,
networks and volumes never meet those of a stack the developer runs.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
DOCKER = shutil.which("docker") or "/usr/bin/docker"
GIT = shutil.which("git") or "/usr/bin/git"
HERE = Path(__file__).parent
PROJECT = "flask-api-template-stack-test"
APP_IMAGE = "flask-api-template-app"
WORKER_IMAGE = "flask-api-template-app-stack-test"
PASSWORD = "correct horse battery"
#: What the worker's redelivery test relies on: a task that runs longer than a
#: kill takes, and a visibility timeout above it (docs/tasks.md gives the bound).
VISIBILITY_TIMEOUT = 20


#: What the run measured, printed at its end (docs/deployment.md quotes it).
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        measured = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in TIMINGS.items())
        terminalreporter.write_line(f"stack timings: {measured}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        data = (
            gzip.decompress(self.body)
            if self.headers.get("content-encoding") == "gzip"
            else self.body
        )
        return json.loads(data)


@dataclass
class Stack:
    folder: Path
    http_port: int
    flower_port: int
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=lambda: TIMINGS)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def compose(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose`` in the stack's folder, under the stack's project name."""
        command = [DOCKER, "compose", "-p", PROJECT, *_compose_files(self.folder), *args]
        result = subprocess.run(
            command, cwd=self.folder, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        port: int | None = None,
        timeout: float = 10,
    ) -> Response:
        """One HTTP request to nginx (or to ``port``), whatever the status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Content-Type": "application/json"} if body is not None else {}
        sent.update(headers or {})
        url = f"http://127.0.0.1:{port or self.http_port}{path}"
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                return Response(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, _lower(error.headers), error.read())

    def sign_up(self, email: str, *, name: str = "Stack") -> tuple[int, str]:
        """Register ``email`` and sign in: (user id, access token)."""
        registered = self.request(
            "POST",
            "/api/v1/auth/register",
            body={"email": email, "password": PASSWORD, "name": name},
        )
        assert registered.status == 201, registered.body
        token = self.request(
            "POST", "/api/v1/auth/token", body={"email": email, "password": PASSWORD}
        )
        assert token.status == 200, token.body
        return registered.json()["id"], token.json()["access_token"]

    def publish(
        self, auth: Mapping[str, str], title: str, *, body: str = "b", tags: list[str] | None = None
    ) -> Response:
        """POST a published article; the 201."""
        created = self.request(
            "POST",
            "/api/v1/articles",
            headers=auth,
            body={"title": title, "body": body, "tags": tags or [], "status": "published"},
        )
        assert created.status == 201, created.body
        return created

    def rename_slowly(self, user_id: int, name: str, seconds: float) -> None:
        """Send the worker's test task from the web container, through the broker."""
        self.compose(
            "exec", "-T", "web", "python", "-c",
            "from app.worker import celery;"
            f"celery.send_task('stack.rename_slowly', args=[{user_id}, {name!r}, {seconds}],"
            " queue='default')",
        )  # fmt: skip

    def inspect(self, service: str, template: str) -> str:
        """``docker inspect -f template`` of the service's (first) container."""
        container = self.compose("ps", "-q", service).stdout.split()[0]
        return subprocess.run(
            [DOCKER, "inspect", "-f", template, container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def wait_healthy(self, *services: str, seconds: float = 120) -> None:
        """Until every container of ``services`` reports healthy."""
        deadline = time.monotonic() + seconds
        while True:
            states = self.health(*services)
            if states and all(state == "healthy" for state in states.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy within {seconds}s: {states}")
            time.sleep(1)

    def health(self, *services: str) -> dict[str, str]:
        """Each running container of ``services``: its health (or its state)."""
        listed = self.compose("ps", "--format", "json", *services).stdout
        rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
        return {row["Name"]: row.get("Health") or row["State"] for row in rows}

    def mysql(self, query: str) -> str:
        """``query`` run by the MySQL client in the mysql container, as the app's user."""
        return self.compose(
            "exec",
            "-T",
            "mysql",
            "mysql",
            "-N",
            "-B",
            f"-u{self.env['MYSQL_USER']}",
            f"-p{self.env['MYSQL_PASSWORD']}",
            self.env["MYSQL_DATABASE"],
            "-e",
            query,
        ).stdout.strip()


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _compose_files(folder: Path) -> list[str]:
    return ["-f", str(folder / "compose.yaml"), "-f", str(folder / "compose.stack-test.yaml")]


def _docker_works() -> str | None:
    if not Path(DOCKER).exists():
        return "docker is not on PATH"
    info = subprocess.run([DOCKER, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"docker cannot reach an engine: {info.stderr.strip()[:300]}"
    return None


def _copy_project(target: Path) -> None:
    """The working tree's files as git sees them (tracked, and new ones not ignored)."""
    listed = subprocess.run(
        [GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    shutil.copy2(HERE / "compose.stack-test.yaml", target / "compose.stack-test.yaml")


def _env_file(folder: Path, http_port: int, flower_port: int) -> dict[str, str]:
    """.env as docs/deployment.md says to write it: .env.example, secrets filled in."""
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MEILI_MASTER_KEY": secrets.token_urlsafe(24),
        "FLOWER_BASIC_AUTH": f"flower:{secrets.token_urlsafe(12)}",
        "MYSQL_ROOT_PASSWORD": secrets.token_urlsafe(16),
        "MYSQL_PASSWORD": secrets.token_urlsafe(16),
        "MYSQL_USER": "app",
        "MYSQL_DATABASE": "app",
        "HTTP_PORT": str(http_port),
        "FLOWER_PORT": str(flower_port),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CORS_ORIGINS": "https://app.example.com",
    }
    lines = []
    for line in (folder / ".env.example").read_text().splitlines():
        name, sep, _ = line.partition("=")
        lines.append(f"{name}={values[name]}" if sep and name in values else line)
    missing = set(values) - {line.partition("=")[0] for line in lines}
    lines.extend(f"{name}={values[name]}" for name in sorted(missing))
    (folder / ".env").write_text("\n".join(lines) + "\n")
    return values


def _build(folder: Path, stack: Stack) -> None:
    network = os.environ.get("STACK_BUILD_NETWORK", "")
    network_option = [f"--network={network}"] if network else []
    started = time.monotonic()
    for command in (
        [
            "docker",
            "build",
            "-q",
            *network_option,
            "-f",
            "compose/web/Dockerfile",
            "-t",
            APP_IMAGE,
            ".",
        ],
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"APP_IMAGE={APP_IMAGE}",
            "-t",
            WORKER_IMAGE,
            "tests/stack",
        ],
    ):
        built = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        assert built.returncode == 0, f"{' '.join(command)}:\n{built.stdout}\n{built.stderr}"
    stack.compose("build", "redis", "nginx", timeout=600)
    stack.timings["build"] = time.monotonic() - started


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    problem = _docker_works()
    if problem:
        pytest.fail(f"the stack test needs a Docker engine: {problem}", pytrace=False)
    folder = tmp_path_factory.mktemp("stack")
    _copy_project(folder)
    http_port, flower_port = free_port(), free_port()
    stack = Stack(folder, http_port, flower_port, _env_file(folder, http_port, flower_port))
    stack.compose("down", "-v", "--remove-orphans", check=False)  # what a killed run left
    _build(folder, stack)
    started = time.monotonic()
    try:
        up = stack.compose("up", "-d", "--wait", "--no-build", timeout=600, check=False)
        if up.returncode != 0:
            logs = stack.compose("logs", "--no-color", "--tail", "40", check=False).stdout
            raise AssertionError(f"the stack did not come up:\n{up.stderr}\n{logs}")
        stack.timings["up"] = time.monotonic() - started
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False, timeout=300)
        left = subprocess.run(
            [DOCKER, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert not left, f"containers left behind: {left}"
