"""The deployment files, checked without a Docker engine.

``compose.yaml``, ``compose.test.yaml``, the Dockerfiles and the start scripts
under ``compose/`` go through the real linters (check-jsonschema with the
compose spec, hadolint, shellcheck), and what ``docs/deployment.md`` says of
them is read back from the files: every entry point exists in ``app/``, every
long-running service has a healthcheck, migrations run once, nothing secret is
committed, nginx agrees with the settings.
"""

from __future__ import annotations

import importlib
import re
import runpy
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
import yaml
from celery import Celery
from flask import Flask
from tornado.routing import URLSpec

from app.core.error_codes import ErrorCode
from app.core.request_id import _SANE  # pyright: ignore[reportPrivateUsage]
from app.core.settings import DEFAULT_SECRET_KEY, Settings
from app.extensions.background import QUEUES
from app.realtime.server import HEALTH_PATH

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "compose.yaml"
TEST_COMPOSE_FILE = ROOT / "compose.test.yaml"
APP_DOCKERFILE = ROOT / "compose" / "web" / "Dockerfile"
NGINX_CONF = ROOT / "compose" / "nginx" / "nginx.conf"
DOCKERFILES = sorted((ROOT / "compose").rglob("Dockerfile"))
SCRIPTS = sorted((ROOT / "compose").rglob("*.sh"))
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_ONLY_MARKER = "# === compose only"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

ONE_SHOT = {"migrate"}
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
    "mailpit",
}
#: Started only with ``docker compose --profile dev``.
DEV_ONLY = {"mailpit"}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEY|_AUTH)$")
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}$")


# -- reading the files ---------------------------------------------------------


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def services(path: Path = COMPOSE_FILE) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose(path)["services"]
    return found


def app_services() -> dict[str, dict[str, Any]]:
    """The services that run the app image."""
    return {
        name: service
        for name, service in services().items()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == "compose/web/Dockerfile"
    }


def as_list(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else list(command)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])


def dockerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, each with its (INSTRUCTION, arguments), ARG defaults
    substituted into FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        rest = rest.strip()
        if instruction == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif instruction == "FROM":
            base, _, alias = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest).partition(" AS ")
            stages.append(Stage(base=base.strip(), name=alias.strip() or None))
        elif stages:
            stages[-1].instructions.append((instruction, rest))
    return stages


def image_files() -> dict[str, Path]:
    """Where the app image puts each file it copies from the repository."""
    copied: dict[str, Path] = {}
    for stage in dockerfile_stages(APP_DOCKERFILE):
        for instruction, arguments in stage.instructions:
            parts = arguments.split()
            if instruction != "COPY" or any(part.startswith("--from") for part in parts):
                continue
            *sources, destination = [part for part in parts if not part.startswith("--")]
            for source in sources:
                copied[destination] = ROOT / source
    return copied


def executable_in_image(name: str) -> Path:
    """The repository file behind a command the app image runs (found on its PATH)."""
    path = name if name.startswith("/") else f"/usr/local/bin/{name}"
    files = image_files()
    assert path in files, f"{name} is not a script the app image ships ({sorted(files)})"
    return files[path]


def nginx_directives(name: str) -> list[str]:
    text = re.sub(r"#.*", "", NGINX_CONF.read_text())
    return [value.strip() for value in re.findall(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)]


def env_example_sections() -> tuple[dict[str, str], dict[str, str]]:
    """.env.example's variables: (the app's settings, the compose-only ones)."""
    app_part, marker, compose_part = ENV_EXAMPLE.read_text().partition(COMPOSE_ONLY_MARKER)
    assert marker, f".env.example has no section starting {COMPOSE_ONLY_MARKER!r}"

    def variables(text: str) -> dict[str, str]:
        return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.MULTILINE))

    return variables(app_part), variables(compose_part)


def interpolated_variables(path: Path = COMPOSE_FILE) -> set[str]:
    text = path.read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def flask_commands(group: str) -> set[str]:
    """The subcommands of ``flask GROUP`` in the app that ``app.wsgi`` builds."""
    flask_app = importlib.import_module("app.wsgi").app
    assert isinstance(flask_app, Flask)
    commands = flask_app.cli.commands.get(group)
    assert isinstance(commands, click.Group), f"flask has no command group {group!r}"
    return set(commands.commands)


def flower_paths() -> set[str]:
    """The URL patterns Flower serves."""
    handlers: list[Any] = importlib.import_module("flower.urls").handlers
    return {
        route.regex.pattern.removesuffix("$") if isinstance(route, URLSpec) else route[0]
        for route in handlers
    }


def run_tool(tool: str, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    binary = BIN / tool
    assert binary.exists(), f"{tool} is not installed in {BIN} (pdm sync --group checks)"
    return subprocess.run(
        [str(binary), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


# -- the linters -----------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, TEST_COMPOSE_FILE], ids=lambda path: path.name)
def test_compose_files_follow_the_compose_spec(path: Path) -> None:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_spec_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  web:\n    image: [1]\n    restart: sometimes\n")
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode != 0


@pytest.mark.parametrize(
    "path", DOCKERFILES, ids=lambda path: str(path.relative_to(ROOT / "compose").parent)
)
def test_dockerfiles_pass_hadolint(path: Path) -> None:
    result = run_tool("hadolint", "--no-color", "--failure-threshold", "style", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_an_unpinned_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\n")
    result = run_tool("hadolint", "--no-color", "--failure-threshold", "style", bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_scripts_pass_shellcheck(path: Path) -> None:
    result = run_tool("shellcheck", "--severity=style", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_flags_an_unquoted_expansion(tmp_path: Path) -> None:
    bad = tmp_path / "start.sh"
    bad.write_text("#!/bin/sh\nexec celery $@\n")
    result = run_tool("shellcheck", "--severity=style", bad)
    assert result.returncode != 0
    assert "SC2068" in result.stdout


# -- scripts ------------------------------------------------------------------------


def test_the_expected_scripts_are_there() -> None:
    assert {str(path.relative_to(ROOT)) for path in SCRIPTS} >= {
        "compose/web/entrypoint.sh",
        "compose/web/wait-for.sh",
        "compose/web/celery/worker/start.sh",
        "compose/web/celery/beat/start.sh",
        "compose/web/celery/flower/start.sh",
    }


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_scripts_are_executable_posix_shell(path: Path) -> None:
    assert path.stat().st_mode & stat.S_IXUSR, f"chmod +x {path.relative_to(ROOT)}"
    assert path.read_text().startswith("#!/bin/sh\n")
    git = shutil.which("git")
    assert git is not None
    listed = subprocess.run(
        [git, "ls-files", "--stage", "--", str(path.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if listed:  # once committed, git must keep the bit too
        assert listed.startswith("100755 "), listed


def test_every_script_the_image_ships_is_one_of_ours_and_executable() -> None:
    shipped = {
        path: source for path, source in image_files().items() if path.startswith("/usr/local/bin/")
    }
    assert shipped
    for path, source in shipped.items():
        assert source in SCRIPTS, f"{path} comes from {source}, not a script under compose/"
        assert source.stat().st_mode & stat.S_IXUSR, f"{source} is not executable"


def test_every_command_compose_runs_is_a_script_the_image_ships() -> None:
    for name, service in app_services().items():
        command = as_list(service.get("command"))
        program = command[0] if command else "entrypoint"
        assert executable_in_image(program).exists(), name
    for instruction, arguments in dockerfile_stages(APP_DOCKERFILE)[-1].instructions:
        if instruction == "ENTRYPOINT":
            assert executable_in_image(yaml.safe_load(arguments)[0]).exists()


def test_scripts_call_only_scripts_the_image_ships() -> None:
    shipped = {Path(path).name for path in image_files() if path.startswith("/usr/local/bin/")}
    called = {
        (script, name)
        for script in SCRIPTS
        for name in re.findall(r"^\s*(?:exec\s+)?([a-z]+-[a-z-]+)\s", script.read_text(), re.M)
    }
    assert any(name == "wait-for" for _, name in called)
    for script, name in called:
        assert name in shipped, f"{script.relative_to(ROOT)} runs {name}, which the image lacks"


# -- entry points exist in app/ ----------------------------------------------------------


def script_text(service: str) -> str:
    command = as_list(services()[service].get("command"))
    return executable_in_image(command[0] if command else "entrypoint").read_text()


def test_web_serves_the_wsgi_app_with_the_gunicorn_config() -> None:
    assert "command" not in services()["web"], "web runs the image's default: gunicorn"
    match = re.search(
        r"exec gunicorn --config (\S+) .*?(\S+):(\w+)$", script_text("web"), re.MULTILINE
    )
    assert match, "entrypoint.sh does not start gunicorn"
    config, module, attribute = match.groups()
    assert (ROOT / config).is_file()
    assert (module, attribute) == ("app.wsgi", "app")
    assert isinstance(getattr(importlib.import_module(module), attribute), Flask)


@pytest.mark.parametrize("service", ["worker", "beat", "flower"])
def test_celery_services_load_the_celery_app(service: str) -> None:
    match = re.search(r"exec celery -A (\S+) (\w+)", script_text(service))
    assert match, f"the {service} script does not exec celery"
    module, subcommand = match.groups()
    assert subcommand == service
    assert isinstance(importlib.import_module(module).celery, Celery)


def test_the_worker_consumes_every_queue() -> None:
    match = re.search(r"--queues (\S+)", script_text("worker"))
    assert match
    assert tuple(match[1].split(",")) == QUEUES


def test_flower_loads_the_config_that_enforces_basic_auth() -> None:
    match = re.search(r"--conf=(\S+)", script_text("flower"))
    assert match
    config = ROOT / match[1]
    assert config.is_file()
    assert "basic_auth" in config.read_text()


def test_migrate_runs_flask_db_upgrade() -> None:
    command = as_list(services()["migrate"]["command"])
    assert command[:3] == ["wait-for", "database", "--"]
    assert command[3:] == ["flask", "--app", "app.wsgi", "db", "upgrade"]
    assert "upgrade" in flask_commands("db")


def test_wait_for_knows_every_dependency_it_is_asked_for() -> None:
    known = set(
        re.findall(r'"(\w+)": settings\.\w+', (ROOT / "compose/web/wait-for.sh").read_text())
    )
    assert known == {"database", "redis", "broker", "search"}
    asked = [
        line.split()
        for script in SCRIPTS
        for line in re.findall(r"^\s*(?:exec\s+)?wait-for ([^-\n]+)", script.read_text(), re.M)
    ]
    asked.append(as_list(services()["migrate"]["command"])[1:2])
    assert len(asked) == 5  # entrypoint.sh, three start scripts, migrate
    for names in asked:
        assert names, "wait-for with nothing to wait for"
        assert set(names) <= known, names


# -- start-up order, health ------------------------------------------------------------


def test_the_stack_has_the_expected_services() -> None:
    assert set(services()) == LONG_RUNNING | ONE_SHOT


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    service = services()[name]
    check = service.get("healthcheck", {})
    assert check.get("test"), f"{name} has no healthcheck"
    assert not check.get("disable")


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_are_restarted_when_they_exit(name: str) -> None:
    assert services()[name].get("restart") == "unless-stopped"


def test_health_checks_probe_what_each_service_serves() -> None:
    tests = {
        name: " ".join(as_list(service["healthcheck"]["test"]))
        for name, service in services().items()
        if "healthcheck" in service
    }
    assert "127.0.0.1:8000/api/v1/health" in tests["web"]
    assert "127.0.0.1:8001/health" in tests["realtime"]
    assert "inspect ping --destination celery@$$HOSTNAME" in tests["worker"]
    assert "inspect ping --destination celerybeat@$$HOSTNAME" in tests["beat"]
    assert "127.0.0.1:5555/healthcheck" in tests["flower"]
    assert "127.0.0.1:7700/health" in tests["meilisearch"]
    assert "mysqladmin ping" in tests["mysql"]
    assert "redis-cli ping" in tests["redis"]
    assert "127.0.0.1:8080/nginx-health" in tests["nginx"]
    assert tests["mailpit"] == "CMD /mailpit readyz"
    # The paths probed are routes that exist.
    flask_app = importlib.import_module("app.wsgi").app
    assert isinstance(flask_app, Flask)
    assert "/api/v1/health" in {rule.rule for rule in flask_app.url_map.iter_rules()}
    assert "/healthcheck" in flower_paths()
    assert "location = /nginx-health" in NGINX_CONF.read_text()
    assert HEALTH_PATH == "/health"
    assert services()["realtime"]["expose"] == [Settings().realtime_bind.rpartition(":")[2]]
    # The node names the checks ping are the ones the scripts start.
    assert '--hostname "celery@%h"' in script_text("worker")
    assert '--hostname "celerybeat@%h"' in script_text("beat")
    assert "--enable-remote-control" in script_text("beat")


def test_development_services_start_only_with_the_dev_profile() -> None:
    profiled = {name for name, service in services().items() if service.get("profiles")}
    assert profiled == DEV_ONLY
    for name in DEV_ONLY:
        assert services()[name]["profiles"] == ["dev"]
        # Nothing the stack runs without the profile waits for it.
        for other in services().values():
            assert name not in other.get("depends_on", {})
    # Mailpit's web UI is on the host's loopback only; its SMTP port is not published.
    assert services()["mailpit"]["ports"] == ["127.0.0.1:${MAILPIT_PORT:-8025}:8025"]


def test_dependencies_are_awaited_healthy_and_migrations_completed() -> None:
    for name, service in services().items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    for name in ("web", "realtime", "worker", "beat"):
        assert "migrate" in services()[name]["depends_on"], name
    assert set(services()["migrate"]["depends_on"]) == {"mysql"}


def test_migrations_are_applied_by_migrate_alone() -> None:
    migrate = services()["migrate"]
    assert migrate["restart"] == "no"
    assert "deploy" not in migrate
    assert "scale" not in migrate
    for script in SCRIPTS:
        assert "db upgrade" not in script.read_text(), script
    for name, service in services().items():
        if name != "migrate":
            assert "db upgrade" not in " ".join(as_list(service.get("command"))), name


# -- images -----------------------------------------------------------------------


def test_one_app_image_serves_every_app_service() -> None:
    runners = app_services()
    assert set(runners) == {"migrate", "web", "realtime", "worker", "beat", "flower"}
    assert len({service["image"] for service in runners.values()}) == 1


def test_the_app_image_builds_from_the_lock_in_a_builder_stage() -> None:
    builder, runtime = dockerfile_stages(APP_DOCKERFILE)
    builder_runs = " ".join(
        arguments for instruction, arguments in builder.instructions if instruction == "RUN"
    )
    assert '"pdm[locked]==2.29.3"' in builder_runs
    assert "pdm lock --check" in builder_runs
    assert "pdm export --prod" in builder_runs
    assert "--require-hashes" in builder_runs
    assert builder.base == runtime.base, "the venv must run on the Python it was built with"
    copied_from_builder = [
        arguments
        for instruction, arguments in runtime.instructions
        if instruction == "COPY" and "--from=" in arguments
    ]
    assert copied_from_builder == [f"--from={builder.name} /opt/venv /opt/venv"]


def test_the_runtime_stage_has_no_build_tools_and_runs_unprivileged() -> None:
    runtime = dockerfile_stages(APP_DOCKERFILE)[-1]
    runs = " ".join(
        arguments for instruction, arguments in runtime.instructions if instruction == "RUN"
    )
    for tool in ("pdm", "pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in runs, tool
    users = [arguments for instruction, arguments in runtime.instructions if instruction == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    instructions = [instruction for instruction, _ in runtime.instructions]
    assert instructions.index("USER") > max(
        i for i, name in enumerate(instructions) if name in ("RUN", "COPY")
    )


@pytest.mark.parametrize(
    "path", DOCKERFILES, ids=lambda path: str(path.relative_to(ROOT / "compose").parent)
)
def test_base_images_are_pinned(path: Path) -> None:
    for stage in dockerfile_stages(path):
        image, _, tag = stage.base.rpartition(":")
        assert image, stage.base
        assert tag not in ("", "latest"), stage.base


def test_service_images_are_pinned() -> None:
    for name, service in services().items():
        if "build" not in service:
            image, _, tag = service["image"].rpartition(":")
            assert image, name
            assert tag not in ("", "latest"), name
    assert re.fullmatch(r"getmeili/meilisearch:v1\.\d+(\.\d+)?", services()["meilisearch"]["image"])
    assert re.fullmatch(r"mysql:8\.\d+(\.\d+)?", services()["mysql"]["image"])


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context, by .dockerignore's rules:
    the last pattern matching the path or one of its parents wins; ``!`` lets it in."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = re.sub(r"\\\[(.*?)\\\]", r"[\1]", regex)
        parts = path.split("/")
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_dockerignore_lets_in_what_the_image_copies_and_nothing_secret() -> None:
    for source in image_files().values():
        relative = str(source.relative_to(ROOT))
        assert not dockerignored(relative), relative
        if source.is_dir():
            assert not dockerignored(f"{relative}/__init__.py"), relative
    for kept_out in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        "instance/app.db",
        "tests/conftest.py",
        "app/__pycache__/wsgi.cpython-311.pyc",
    ):
        assert dockerignored(kept_out), kept_out


# -- secrets and .env.example ------------------------------------------------------------


def environments(path: Path) -> dict[str, dict[str, str]]:
    return {name: service.get("environment", {}) for name, service in services(path).items()}


def test_compose_takes_every_secret_from_a_required_variable() -> None:
    for name, environment in environments(COMPOSE_FILE).items():
        for variable, value in environment.items():
            if SECRET_NAME.search(variable):
                match = REQUIRED_VARIABLE.fullmatch(str(value))
                assert match, f"{name}: {variable} must come from .env as ${{{variable}:?...}}"
    database_url = environments(COMPOSE_FILE)["web"]["DATABASE_URL"]
    assert re.search(r":\$\{MYSQL_PASSWORD:\?[^}]+\}@mysql:3306/", database_url)


def test_the_test_stack_has_no_secrets() -> None:
    for environment in environments(TEST_COMPOSE_FILE).values():
        secrets = {variable for variable in environment if SECRET_NAME.search(variable)}
        assert secrets <= {"MYSQL_ALLOW_EMPTY_PASSWORD"}


def test_env_example_holds_no_secret() -> None:
    settings_part, compose_part = env_example_sections()
    for variable, value in {**settings_part, **compose_part}.items():
        if SECRET_NAME.search(variable):
            assert value in ("", DEFAULT_SECRET_KEY), f"{variable} has a value in .env.example"


def test_env_example_documents_every_variable_compose_reads() -> None:
    settings_part, compose_part = env_example_sections()
    fields = {name.upper() for name in Settings.model_fields}
    assert set(settings_part) == fields
    assert not set(compose_part) & fields, "a setting belongs above the compose section"
    assert set(compose_part) == interpolated_variables() - fields


def test_env_file_is_kept_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert dockerignored(".env")
    for service in app_services().values():
        assert service["env_file"] == ".env"


# -- nginx -----------------------------------------------------------------------


def size_in_bytes(value: str) -> int:
    """An nginx size (``1m``, ``512k``, ``1048576``) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, f"not an nginx size: {value!r}"
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match[2].lower()]


def test_nginx_body_limit_is_the_apps_max_content_length() -> None:
    [limit] = nginx_directives("client_max_body_size")
    assert size_in_bytes(limit) == Settings().max_content_length


def test_nginx_answers_a_too_large_body_with_the_apps_envelope() -> None:
    assert "413 @payload_too_large" in nginx_directives("error_page")
    assert '"code":413,"error_code":10005' in NGINX_CONF.read_text()


def test_nginx_header_limits_agree_with_gunicorns() -> None:
    """A request line or a header nginx lets through, gunicorn takes: both 8k
    (tests/test_nginx.py and tests/test_gunicorn.py check it live)."""
    [large] = nginx_directives("large_client_header_buffers")
    count, size = large.split()
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert size_in_bytes(size) == 8192
    assert config["limit_request_line"] == config["limit_request_field_size"] == 8190
    assert int(count) * size_in_bytes(size) >= 8190 * 2, "room for a long line and a long header"


def test_every_envelope_nginx_writes_follows_the_catalogue() -> None:
    """The envelopes nginx returns itself, read off nginx.conf: valid JSON (once
    the request id is filled in), of the catalogue's codes."""
    bodies = re.findall(r"return (\d{3}) '([^']*)';", NGINX_CONF.read_text())
    assert len(bodies) == 7
    for status, body in bodies:
        envelope = orjson.loads(re.sub(r"\$\w+", "rid", body).removesuffix("\\n"))
        assert set(envelope) == {"code", "error_code", "message", "request_id"}
        assert envelope["code"] == int(status)
        error_code = ErrorCode(envelope["error_code"])
        if error_code is not ErrorCode.HTTP_ERROR:
            assert int(error_code.http_status) == int(status)
            assert envelope["message"] == error_code.default_message


def test_nginx_resolves_web_replicas_through_dockers_dns() -> None:
    assert any(value.startswith("127.0.0.11 ") for value in nginx_directives("resolver"))
    [upstream] = [value for value in nginx_directives("set") if value.startswith("$web_upstream ")]
    assert sorted(nginx_directives("proxy_pass")) == [
        "$realtime_upstream",
        "$web_upstream",
    ], "variables, resolved per request"
    host_port = upstream.split()[1].removeprefix("http://")
    bind = services()["web"]["environment"]["GUNICORN_BIND"]
    assert host_port == "web:" + bind.rpartition(":")[2]
    assert bind.rpartition(":")[2] in " ".join(as_list(services()["web"]["healthcheck"]["test"]))


def test_nginx_listens_where_compose_publishes_it() -> None:
    [listen] = nginx_directives("listen")
    [published] = services()["nginx"]["ports"]
    assert published.rpartition(":")[2] == listen.split()[0]


def test_nginx_gzips_json_and_waits_longer_than_gunicorn() -> None:
    assert nginx_directives("gzip") == ["on"]
    [types] = nginx_directives("gzip_types")
    assert "application/json" in types.split()
    stream_timeout, api_timeout = nginx_directives("proxy_read_timeout")  # in the file's order
    assert int(api_timeout.removesuffix("s")) > Settings().gunicorn_timeout
    # The stream's frames come at least every ping: a read may wait three of them.
    assert int(stream_timeout.removesuffix("s")) > 3 * Settings().realtime_ping_interval


def test_nginx_hands_back_the_etag_gzip_weakened() -> None:
    assert "If-Match $if_match_for_app" in nginx_directives("proxy_set_header")
    assert re.search(
        r"map \$http_if_match \$if_match_for_app \{\s*'~\^\\s\*W/", NGINX_CONF.read_text()
    )


def test_nginx_forwards_a_request_id_the_app_keeps() -> None:
    match = re.search(
        r'map \$http_x_request_id \$api_request_id \{\s*"~\^(.+?)\$"', NGINX_CONF.read_text()
    )
    assert match, "nginx.conf has no request id map"
    assert match[1] == _SANE.pattern.replace("\\-", "-")
    assert "X-Request-ID $api_request_id" in nginx_directives("proxy_set_header")


def test_only_nginx_and_flower_publish_ports_and_flower_on_loopback() -> None:
    published = {name for name, service in services().items() if service.get("ports")} - DEV_ONLY
    assert published == {"nginx", "flower"}
    for name in ("flower", *DEV_ONLY):
        assert all(port.startswith("127.0.0.1:") for port in services()[name]["ports"])
    assert REQUIRED_VARIABLE.fullmatch(services()["flower"]["environment"]["FLOWER_BASIC_AUTH"])


@pytest.mark.parametrize("name", ["web", "worker"])
def test_scalable_services_have_no_fixed_name_or_host_port(name: str) -> None:
    service = services()[name]
    assert "container_name" not in service
    assert "ports" not in service


# -- the test suite's servers -------------------------------------------------------------


def test_the_test_stack_is_what_the_suite_expects() -> None:
    test_services = services(TEST_COMPOSE_FILE)
    mysql, redis = test_services["mysql"], test_services["redis"]
    assert mysql["environment"] == {"MYSQL_ALLOW_EMPTY_PASSWORD": "yes", "MYSQL_DATABASE": "test"}
    assert mysql["ports"] == ["127.0.0.1:3306:3306"]
    assert redis["ports"] == ["127.0.0.1:6379:6379"]
    assert mysql["image"] == services()["mysql"]["image"]
    assert redis["build"] == services()["redis"]["build"]
    config_mount = "./compose/mysql/my.cnf:/etc/mysql/conf.d/app.cnf:ro"
    assert config_mount in mysql["volumes"]
    assert config_mount in services()["mysql"]["volumes"]
    assert compose(TEST_COMPOSE_FILE)["name"] != compose()["name"]


def test_the_suites_start_hint_starts_the_test_stack() -> None:
    from tests.conftest import START_HINT  # noqa: PLC0415 - the hint, not the fixtures

    match = re.search(r"`(docker compose [^`]+)`", START_HINT)
    assert match, START_HINT
    words = shlex.split(match[1])
    assert words[words.index("-f") + 1] == TEST_COMPOSE_FILE.name
    assert "up" in words


# -- docs/deployment.md ------------------------------------------------------------------


def test_the_deployment_doc_lists_every_service() -> None:
    doc = DEPLOYMENT_DOC.read_text()
    listed = set(re.findall(r"^\| `([a-z]+)` \|", doc, re.MULTILINE))
    assert listed == set(services())


def test_the_deployment_doc_runs_only_commands_that_exist() -> None:
    doc = DEPLOYMENT_DOC.read_text()
    runs = re.findall(r"docker compose run --rm web flask ([a-z-]+) ([a-z-]+)", doc)
    assert runs
    for group, command in runs:
        assert command in flask_commands(group), f"flask {group} {command}"
    for scaled in re.findall(r"--scale ([a-z]+)=\d+", doc):
        assert scaled in {"web", "worker", "realtime"}, f"{scaled} is not meant to be scaled"
    for path in re.findall(r"`((?:compose/|compose\.)[\w./-]+)`", doc):
        assert (ROOT / path).exists(), path
