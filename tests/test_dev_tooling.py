"""The developer tooling works as documented: pre-commit (every hook local, the
whole tree clean), commitizen (the commit-msg check and the changelog), and
the VS Code workspace files."""

from __future__ import annotations

import json
import re
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
HAS_GIT_HISTORY = (ROOT / ".git").exists() and shutil.which("git") is not None
needs_git = pytest.mark.skipif(
    not HAS_GIT_HISTORY, reason="needs the project's git history (this is not a git checkout)"
)


def _pre_commit_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return config


def _hooks() -> dict[str, dict[str, Any]]:
    return {hook["id"]: hook for repo in _pre_commit_config()["repos"] for hook in repo["hooks"]}


def _locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "pdm.lock").read_text())
    [version] = [p["version"] for p in lock["package"] if p["name"] == package]
    return str(version)


def _run(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=check
    )


# -- pre-commit ---------------------------------------------------------------------


def test_every_pre_commit_hook_is_local() -> None:
    config = _pre_commit_config()
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    assert config["default_install_hook_types"] == ["pre-commit", "commit-msg"]
    assert config["default_stages"] == ["pre-commit"]


def test_pre_commit_runs_the_projects_linters_and_the_standard_checks() -> None:
    hooks = _hooks()
    assert {
        "ruff",
        "black",
        "pyright",
        "import-linter",
        "trailing-whitespace",
        "end-of-file-fixer",
        "check-yaml",
        "check-toml",
        "detect-private-key",
        "check-added-large-files",
        "commitizen",
    } <= hooks.keys()
    assert hooks["commitizen"]["stages"] == ["commit-msg"]


def test_linters_run_from_the_locked_environment() -> None:
    """ruff, black, pyright, lint-imports and cz are the .venv's, so pdm.lock sets their versions."""
    for hook_id in ("ruff", "black", "pyright", "import-linter", "commitizen"):
        hook = _hooks()[hook_id]
        assert hook["language"] == "system"
        executable = hook["entry"].split()[0]
        assert executable.startswith(".venv/bin/"), hook
        assert (ROOT / executable).is_file() or (BIN / Path(executable).name).is_file()


def test_pre_commit_hooks_is_pinned_to_the_locked_version() -> None:
    pin = f"pre-commit-hooks=={_locked_version('pre-commit-hooks')}"
    python_hooks = [hook for hook in _hooks().values() if hook["language"] == "python"]
    assert len(python_hooks) == 6
    assert all(hook["additional_dependencies"] == [pin] for hook in python_hooks)


@needs_git
def test_pre_commit_passes_on_the_whole_tree() -> None:
    result = _run(
        BIN / "pre-commit", "run", "--all-files", "--show-diff-on-failure", "--color=never"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Passed" in result.stdout


@needs_git
@pytest.mark.parametrize(
    ("message", "accepted"),
    [
        ("feat(search): index articles through an outbox", True),
        ("fix: a 503 when Meilisearch is down", True),
        ("Update stuff", False),
        ("feature: not a conventional type", False),
    ],
)
def test_the_commit_msg_hook_checks_conventional_commits(
    tmp_path: Path, message: str, accepted: bool
) -> None:
    message_file = tmp_path / "COMMIT_EDITMSG"
    message_file.write_text(message + "\n")
    result = _run(
        BIN / "pre-commit",
        "run",
        "commitizen",
        "--hook-stage",
        "commit-msg",
        "--commit-msg-filename",
        message_file,
    )
    assert (result.returncode == 0) is accepted, result.stdout


# -- commitizen ---------------------------------------------------------------------


def test_commitizen_is_configured_for_pep621_versions_and_v_tags() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    config = pyproject["tool"]["commitizen"]
    assert config["name"] == "cz_conventional_commits"
    assert config["version_provider"] == "pep621"
    assert config["tag_format"] == "v$version"
    assert config["update_changelog_on_bump"] is True
    assert config["changelog_file"] == "CHANGELOG.md"


def _bullets(changelog: str) -> set[str]:
    return {line[2:].strip() for line in changelog.splitlines() if line.startswith("- ")}


def _as_bullet(subject: str) -> str:
    """How commitizen writes a commit subject in the changelog."""
    match = re.match(r"^\w+(?:\((?P<scope>[^)]*)\))?!?: (?P<text>.*)$", subject)
    assert match, subject
    return f"**{match['scope']}**: {match['text']}" if match["scope"] else match["text"]


@needs_git
def test_the_changelog_is_what_commitizen_generates_from_the_commits() -> None:
    """Every entry of CHANGELOG.md comes from a commit (none is written by hand),
    and every commit commitizen would list is in it, except those made after
    the changelog was last regenerated (they arrive with the next
    ``make changelog`` or release)."""
    generated = _run(BIN / "cz", "changelog", "--dry-run", check=True).stdout
    written = (ROOT / "CHANGELOG.md").read_text()
    assert _bullets(written) <= _bullets(generated)
    last_update = _run("git", "log", "-1", "--format=%H", "--", "CHANGELOG.md", check=True)
    since = _run(
        "git", "log", "--format=%s", f"{last_update.stdout.strip()}..HEAD", check=True
    ).stdout.splitlines()
    newer = {_as_bullet(s) for s in since if re.match(r"^\w+(\([^)]*\))?!?: ", s)}
    assert _bullets(generated) - _bullets(written) <= newer
    assert "## Unreleased" in written or re.search(r"^## v?\d+\.\d+\.\d+", written, re.M)


# -- VS Code ------------------------------------------------------------------------


def _vscode(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / ".vscode" / name).read_text())
    return data


def test_vscode_recommends_the_projects_tools_and_not_mypy() -> None:
    extensions = _vscode("extensions.json")
    assert {
        "charliermarsh.ruff",
        "ms-python.black-formatter",
        "ms-python.vscode-pylance",
        "ms-azuretools.vscode-docker",
        "tamasfe.even-better-toml",
    } <= set(extensions["recommendations"])
    assert extensions["unwantedRecommendations"] == ["ms-python.mypy-type-checker"]


def test_vscode_uses_the_venv_formats_on_save_and_finds_the_tests() -> None:
    settings = _vscode("settings.json")
    assert settings["python.defaultInterpreterPath"] == "${workspaceFolder}/.venv/bin/python"
    assert settings["editor.formatOnSave"] is True
    assert settings["python.testing.pytestEnabled"] is True
    assert settings["[python]"]["editor.defaultFormatter"] == "ms-python.black-formatter"


def test_vscode_launches_the_dev_server_a_worker_and_pytest() -> None:
    configurations = {c["name"]: c for c in _vscode("launch.json")["configurations"]}
    flask = configurations["Flask: dev server"]
    assert (flask["module"], flask["args"][:3]) == ("flask", ["--app", "app.wsgi", "run"])
    worker = configurations["Celery: worker"]
    assert (worker["module"], worker["args"][:3]) == ("celery", ["-A", "app.worker", "worker"])
    assert {c["module"] for c in configurations.values() if c["name"].startswith("pytest")} == {
        "pytest"
    }
    for module in ("app/wsgi.py", "app/worker.py"):
        assert (ROOT / module).is_file()


# -- the files every Python project has --------------------------------------------


def test_editorconfig_and_gitignore_cover_the_project() -> None:
    editorconfig = (ROOT / ".editorconfig").read_text()
    assert "root = true" in editorconfig
    assert "[Makefile]\nindent_style = tab" in editorconfig
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {".venv/", ".tools/", ".env", "instance/", "site/", "coverage.xml"} <= set(ignored)
