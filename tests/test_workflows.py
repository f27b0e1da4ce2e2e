"""The GitHub workflows, checked where they cannot run: the workflow schema, actionlint
(with shellcheck on every ``run:``), least-privilege permissions, concurrency, and what
each workflow must do (services, the lock, coverage, pre-commit, docs, CodeQL, release)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())

# The single expression that cancels superseded pull request runs and nothing else.
ONLY_PULL_REQUESTS = "${{ github.event_name == 'pull_request' }}"

# Keys are strings, except ``on``, which YAML 1.1 reads as True.
Workflow = dict[Any, Any]
Job = dict[str, Any]
Step = dict[str, Any]


def _load(path: Path) -> Workflow:
    workflow: Workflow = yaml.safe_load(path.read_text())
    return workflow


def _workflow(name: str) -> Workflow:
    return _load(WORKFLOWS / f"{name}.yml")


def _triggers(workflow: Workflow) -> dict[str, Any]:
    """``on:`` as a mapping (YAML 1.1 reads the key ``on`` as True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), on
    return on


def _jobs(workflow: Workflow) -> dict[str, Job]:
    jobs: dict[str, Job] = workflow["jobs"]
    return jobs


def _steps(job: Job) -> list[Step]:
    steps: list[Step] = job.get("steps", [])
    return steps


def _action(step: Step) -> str:
    """``actions/checkout`` for ``uses: actions/checkout@v7``, "" for a ``run:`` step."""
    return str(step.get("uses", "")).split("@")[0]


def _commands(run: str) -> list[list[str]]:
    """The simple commands of a ``run:`` script, split into words."""
    script = run.replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in script.splitlines():
        for command in re.split(r"\s*(?:&&|\|\||;)\s*", line.strip()):
            words = shlex.split(command, comments=True)
            if words:
                commands.append(words)
    return commands


def _step_commands(step: Step) -> list[list[str]]:
    return _commands(step["run"]) if "run" in step else []


def _all_commands(workflow: Workflow) -> list[list[str]]:
    return [
        words
        for job in _jobs(workflow).values()
        for step in _steps(job)
        for words in _step_commands(step)
    ]


def _runs(step: Step, *words: str) -> bool:
    """Whether the step runs a command whose first words are ``words`` (path of the
    executable ignored: ``.venv/bin/cz`` is ``cz``)."""
    for command in _step_commands(step):
        named = [Path(command[0]).name, *command[1:]]
        if named[: len(words)] == list(words):
            return True
    return False


def _uses(job: Job, action: str) -> list[Step]:
    return [step for step in _steps(job) if _action(step) == action]


def _job_using(workflow: Workflow, action: str) -> tuple[str, Job]:
    [found] = [(name, job) for name, job in _jobs(workflow).items() if _uses(job, action)]
    return found


def _lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- the files and the linters -------------------------------------------------------


def test_the_workflows_of_the_project_are_there() -> None:
    assert {path.stem for path in WORKFLOW_FILES} >= {"ci", "test", "docs", "codeql", "release"}
    assert all(path.suffix == ".yml" for path in WORKFLOW_FILES), "one extension: .yml"


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    result = _lint(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOW_FILES
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_and_shellcheck_find_nothing() -> None:
    result = _lint(BIN / "actionlint", "-no-color", "-oneline", "-verbose", *WORKFLOW_FILES)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout
    # actionlint drops a rule silently when its tool is missing; shellcheck must have run.
    assert 'Rule "shellcheck" was disabled' not in result.stderr, result.stderr


def test_actionlint_reports_node20_actions_and_shellcheck_findings(tmp_path: Path) -> None:
    """The check above can fail: a deprecated major and an unquoted variable are reported."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo $HOME\n"
    )
    result = _lint(BIN / "actionlint", "-no-color", "-oneline", bad)
    assert result.returncode == 1
    assert 'runtime "node20" is deprecated' in result.stdout
    assert "SC2086" in result.stdout


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_major_version(path: Path) -> None:
    """``owner/repo@vN``: the major's latest release, with actionlint checking it is current."""
    for job in _jobs(_load(path)).values():
        for step in _steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+", step["uses"]), step


# -- permissions and concurrency -----------------------------------------------------


def _needed_writes(job: Job) -> set[str]:
    """The write scopes a job's steps cannot work without."""
    needed: set[str] = set()
    if _uses(job, "actions/deploy-pages"):
        needed |= {"pages", "id-token"}
    if any(_action(step).startswith("github/codeql-action/") for step in _steps(job)):
        needed |= {"security-events"}
    if any(_runs(step, "git", "push") for step in _steps(job)):
        needed |= {"contents"}
    return needed


def _granted_writes(permissions: object) -> set[str]:
    if permissions is None:
        return set()
    assert isinstance(permissions, dict), f"name each scope, not {permissions!r}"
    assert set(permissions.values()) <= {"read", "write", "none"}, permissions
    return {scope for scope, level in permissions.items() if level == "write"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_workflow_defaults_to_read_only_permissions(path: Path) -> None:
    workflow = _load(path)
    assert "permissions" in workflow, "without it the token gets the repository's default"
    assert _granted_writes(workflow["permissions"]) == set()


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_only_the_jobs_that_need_write_access_have_it(path: Path) -> None:
    for name, job in _jobs(_load(path)).items():
        granted = _granted_writes(job.get("permissions"))
        assert granted == _needed_writes(job), f"{path.name}: job {name}"


def test_deploying_scanning_and_releasing_jobs_exist() -> None:
    """The three jobs allowed to write, so the test above does not pass vacuously."""
    assert _needed_writes(_job_using(_workflow("docs"), "actions/deploy-pages")[1]) == {
        "pages",
        "id-token",
    }
    assert _needed_writes(_job_using(_workflow("codeql"), "github/codeql-action/analyze")[1]) == {
        "security-events"
    }
    [release] = _jobs(_workflow("release")).values()
    assert _needed_writes(release) == {"contents"}


def _writes_anything(workflow: Workflow) -> bool:
    return any(_needed_writes(job) - {"security-events"} for job in _jobs(workflow).values())


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_workflow_has_a_concurrency_group(path: Path) -> None:
    workflow = _load(path)
    concurrency = workflow.get("concurrency")
    assert isinstance(concurrency, dict), "concurrency: {group, cancel-in-progress}"
    assert concurrency.get("group"), concurrency
    cancel = concurrency.get("cancel-in-progress", False)
    if "pull_request" in _triggers(workflow):
        assert cancel in (True, ONLY_PULL_REQUESTS), "superseded pull request runs are cancelled"
    if _writes_anything(workflow):
        assert cancel in (False, ONLY_PULL_REQUESTS), "never cancel a deployment or a release"


def test_no_two_workflows_share_a_concurrency_group() -> None:
    """A shared group would make one workflow cancel or queue behind another."""
    groups: dict[str, str] = {}
    for path in WORKFLOW_FILES:
        workflow = _load(path)
        group = str(workflow["concurrency"]["group"])
        group = re.sub(r"\$\{\{\s*github\.workflow\s*\}\}", workflow.get("name", path.name), group)
        assert group not in groups, f"{path.name} and {groups.get(group)}: {group}"
        groups[group] = path.name


@pytest.mark.parametrize("name", ["ci", "test", "docs", "codeql"])
def test_checks_run_on_pull_requests_and_on_main(name: str) -> None:
    triggers = _triggers(_workflow(name))
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


# -- the lock, pdm and the commands the workflows run ---------------------------------


def _pdm_commands(workflow: Workflow) -> list[list[str]]:
    return [words[1:] for words in _all_commands(workflow) if Path(words[0]).name == "pdm"]


def _installs_from_the_lock(path: Path) -> bool:
    return any(args[:1] == ["sync"] for args in _pdm_commands(_load(path)))


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_pdm_only_installs_what_the_lock_pins(path: Path) -> None:
    """``pdm lock --check`` before ``pdm sync``: sync never re-locks, but on a stale lock it
    only warns. Nothing resolves or rewrites the lock (``pdm install``, ``pdm update``...)."""
    commands = _pdm_commands(_load(path))
    for args in commands:
        assert args[0] in {"sync", "run"} or args == ["lock", "--check"], args
    if any(args[0] == "sync" for args in commands):
        assert ["lock", "--check"] in commands
        assert commands.index(["lock", "--check"]) < next(
            i for i, args in enumerate(commands) if args[0] == "sync"
        )


def test_the_test_workflow_installs_every_locked_group() -> None:
    syncs = [args for args in _pdm_commands(_workflow("test")) if args[0] == "sync"]
    assert syncs == [["sync", "-G", ":all"]]


def test_ci_installs_the_same_pdm_as_the_makefile() -> None:
    [makefile_version] = re.findall(
        r"^PDM_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M
    )
    for path in WORKFLOW_FILES:
        text = path.read_text()
        pins = re.findall(r"pdm(\[[\w,]+\])?==([\w.]+)", text)
        if _pdm_commands(_load(path)):
            assert pins == [("[locked]", makefile_version)], f"{path.name}: {pins}"


def _pdm() -> Path:
    for candidate in (ROOT / ".tools" / "bin" / "pdm", shutil.which("pdm")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("pdm is not installed (`make install` puts it in .tools/)")


def test_the_pinned_pdm_accepts_every_pdm_command_of_the_workflows(tmp_path: Path) -> None:
    """Each ``pdm sync`` runs as a dry run on a copy of the project (a flag pdm does not
    have, such as ``pdm sync --frozen-lockfile``, is an error), and ``pdm lock --check``
    as it is."""
    pdm = _pdm()
    for name in ("pyproject.toml", "pdm.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {**os.environ, "PDM_CHECK_UPDATE": "false", "PDM_PYTHON": sys.executable}
    commands = {
        tuple(args)
        for path in WORKFLOW_FILES
        for args in _pdm_commands(_load(path))
        if args[0] in {"sync", "lock"}
    }
    assert commands
    for args in sorted(commands):
        dry = ["--dry-run"] if args[0] == "sync" else []
        result = subprocess.run(
            [str(pdm), *args, *dry],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"pdm {shlex.join(args)}: {result.stderr}"


def _makefile_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", makefile, re.M))


def _pdm_scripts() -> set[str]:
    return set(PYPROJECT["tool"]["pdm"]["scripts"]) - {"_"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_make_target_and_pdm_script_a_workflow_runs_exists(path: Path) -> None:
    for words in _all_commands(_load(path)):
        program, args = Path(words[0]).name, words[1:]
        if program == "make":
            targets = [a for a in args if not a.startswith("-") and "=" not in a]
            assert set(targets) <= _makefile_targets(), words
        if program == "pdm" and args[:1] == ["run"]:
            assert args[1] in _pdm_scripts(), words


# -- test.yml ------------------------------------------------------------------------


def _test_job() -> Job:
    [job] = [job for job in _jobs(_workflow("test")).values() if "services" in job]
    return job


def _test_step() -> Step:
    [step] = [s for s in _steps(_test_job()) if _runs(s, "pdm", "run", "test")]
    return step


def test_the_suite_runs_against_mysql_8_redis_7_and_meilisearch_1() -> None:
    services = _test_job()["services"]
    expected = {
        "mysql": ("mysql:8", "3306"),
        "redis": ("redis:7", "6379"),
        "meilisearch": ("getmeili/meilisearch:v1", "7700"),
    }
    assert services.keys() >= expected.keys()
    for name, (image, port) in expected.items():
        assert services[name]["image"].startswith(image), services[name]["image"]
        assert f"{port}:{port}" in services[name]["ports"]
        assert "--health-cmd" in services[name]["options"], f"{name}: wait until it is ready"
    mysql = services["mysql"]["env"]
    # tests/conftest.py's default: mysql+pymysql://root@127.0.0.1:3306/test
    assert (mysql["MYSQL_ALLOW_EMPTY_PASSWORD"], mysql["MYSQL_DATABASE"]) == ("yes", "test")


def test_the_real_meilisearch_tests_are_pointed_at_the_service() -> None:
    """Without MEILI_URL, tests/test_search_meilisearch.py skips itself."""
    job, step = _test_job(), _test_step()
    env = {**job.get("env", {}), **step.get("env", {})}
    assert env["MEILI_URL"] == "http://127.0.0.1:7700"
    assert env["MEILI_MASTER_KEY"] == job["services"]["meilisearch"]["env"]["MEILI_MASTER_KEY"]


def test_the_suite_and_the_lint_run_as_make_test_runs_them() -> None:
    steps = _steps(_test_job())
    order = [
        next(i for i, s in enumerate(steps) if _runs(s, *words))
        for words in (("pdm", "lock", "--check"), ("pdm", "sync"), ("pdm", "run", "lint"))
    ]
    assert order == sorted(order)
    assert order[-1] < steps.index(_test_step())


def test_coverage_xml_is_written_and_uploaded() -> None:
    [command] = [c for c in _step_commands(_test_step()) if c[:3] == ["pdm", "run", "test"]]
    assert "--cov-report=xml" in command
    # The --cov=app that the xml report covers comes from pyproject's pytest addopts.
    assert "--cov=app" in PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]
    steps = _steps(_test_job())
    [upload] = _uses(_test_job(), "actions/upload-artifact")
    assert upload["with"]["path"] == "coverage.xml"
    assert "${{ matrix.python }}" in upload["with"]["name"], "one artifact per Python version"
    assert steps.index(upload) > steps.index(_test_step())
    for codecov in _uses(_test_job(), "codecov/codecov-action"):
        assert codecov["with"]["fail_ci_if_error"] is False
        assert codecov["with"]["files"] == "coverage.xml"


def test_the_python_matrix_is_the_classifiers_of_pyproject() -> None:
    classifiers = PYPROJECT["project"]["classifiers"]
    supported = [
        match[1]
        for classifier in classifiers
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
    ]
    job = _test_job()
    assert job["strategy"]["matrix"]["python"] == supported
    [setup] = _uses(job, "actions/setup-python")
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    minimum = re.fullmatch(r">=\s*(3\.\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum
    assert supported[0] == minimum[1]


# -- ci.yml, docs.yml, codeql.yml, release.yml ----------------------------------------


def test_ci_runs_pre_commit_on_every_file_after_installing_the_venv() -> None:
    [job] = _jobs(_workflow("ci")).values()
    steps = _steps(job)
    [pre_commit] = [
        s for s in steps if _runs(s, "pre-commit", "run", "--all-files", "--show-diff-on-failure")
    ]
    assert pre_commit["run"].split()[0] == ".venv/bin/pre-commit", "the hooks use .venv/bin"
    [sync] = [s for s in steps if _runs(s, "pdm", "sync", "-G", ":all")]
    assert steps.index(sync) < steps.index(pre_commit)
    caches = [s for s in _uses(job, "actions/cache") if s["with"]["path"] == "~/.cache/pre-commit"]
    assert len(caches) == 1
    assert "hashFiles('.pre-commit-config.yaml')" in caches[0]["with"]["key"]


def _site_dir() -> str:
    found = re.findall(r"^site_dir:\s*[\"']?([^\"'\s]+)", (ROOT / "mkdocs.yml").read_text(), re.M)
    return found[0] if found else "site"


def test_docs_build_strict_on_pull_requests_and_deploy_from_main_only() -> None:
    workflow = _workflow("docs")
    deploy_name, deploy = _job_using(workflow, "actions/deploy-pages")
    build_name, build = _job_using(workflow, "actions/upload-pages-artifact")
    assert deploy_name != build_name
    assert deploy["needs"] in (build_name, [build_name])
    assert any(_runs(step, "mkdocs", "build", "--strict") for step in _steps(build))
    # The app's own packages too: a docs hook builds the app for the OpenAPI reference page.
    assert [args for args in _pdm_commands(workflow) if args[0] == "sync"] == [
        ["sync", "-G", "docs"]
    ]
    assert "if" not in next(s for s in _steps(build) if _runs(s, "mkdocs")), "build every time"
    [upload] = _uses(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"].rstrip("/") == _site_dir()
    main_only = "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"
    assert deploy["if"] == main_only
    assert upload["if"] == main_only
    assert _uses(build, "actions/configure-pages")[0]["if"] == main_only
    assert deploy["environment"]["name"] == "github-pages"


def test_codeql_analyses_python_on_pushes_pull_requests_and_weekly() -> None:
    workflow = _workflow("codeql")
    assert {"push", "pull_request", "schedule"} <= _triggers(workflow).keys()
    assert len(_triggers(workflow)["schedule"]) == 1
    _, job = _job_using(workflow, "github/codeql-action/init")
    [init] = _uses(job, "github/codeql-action/init")
    [analyze] = _uses(job, "github/codeql-action/analyze")
    assert init["uses"].split("@")[1] == analyze["uses"].split("@")[1]
    assert "python" in str(init["with"]["languages"]).split(",")
    assert job["permissions"]["security-events"] == "write"


def test_release_bumps_tags_and_pushes_unless_the_commit_is_a_bump() -> None:
    workflow = _workflow("release")
    assert {"workflow_dispatch", "push"} >= _triggers(workflow).keys()
    assert workflow["concurrency"].get("cancel-in-progress", False) is False
    [job] = _jobs(workflow).values()
    config = PYPROJECT["tool"]["commitizen"]
    # commitizen's default bump_message is "bump: version $current_version -> $new_version".
    prefix = str(config.get("bump_message", "bump: version")).split(":")[0] + ":"
    assert f"!startsWith(github.event.head_commit.message, '{prefix}')" in job["if"]
    [checkout] = _uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "cz bump reads the history since the last tag"
    steps = _steps(job)
    [bump] = [s for s in steps if any("bump" in c for c in _step_commands(s))]
    [command] = [c for c in _step_commands(bump) if "bump" in c]
    assert Path(command[0]).name == "cz"
    assert {"--yes", "--changelog"} <= set(command)
    [push] = [s for s in steps if _runs(s, "git", "push")]
    assert steps.index(bump) < steps.index(push)
    if "--follow-tags" in push["run"]:
        # --follow-tags pushes annotated tags only; cz bump makes lightweight ones by default.
        assert "--annotated-tag" in command or config.get("annotated_tag") is True
