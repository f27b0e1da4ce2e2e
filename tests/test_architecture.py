"""The structure docs/architecture.md describes: the layers (import-linter's
contracts, which fail on any upward import, a deferred one included), modules
of one job each, and every commit side effect registered by ``create_app``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SettingsFactory

from app import create_app

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: No module in app/ grows past this many lines: split it by job first.
MAX_MODULE_LINES = 400


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)},
    )


@pytest.fixture
def copy_of_the_app(tmp_path: Path) -> Path:
    """The app package and the contracts, in a folder of their own, to break."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_deferred_upward_import_breaks_the_layers(copy_of_the_app: Path) -> None:
    module = copy_of_the_app / "app" / "core" / "json.py"
    module.write_text(
        module.read_text()
        + "\n\ndef _sneaky() -> object:\n"
        + "    from app.services import articles\n\n"
        + "    return articles\n"
    )
    result = lint_imports(copy_of_the_app)
    assert result.returncode == 1
    assert "Each layer imports only the layers below it BROKEN" in result.stdout
    assert "app.core.json -> app.services.articles" in result.stdout


def test_a_service_importing_the_http_layer_breaks_both_contracts(
    copy_of_the_app: Path,
) -> None:
    module = copy_of_the_app / "app" / "services" / "pagination.py"
    module.write_text(module.read_text() + "\nfrom app.api.v1 import articles as _views\n")
    result = lint_imports(copy_of_the_app)
    assert result.returncode == 1
    assert "Contracts: 0 kept, 2 broken." in result.stdout
    assert "app.services.pagination -> app.api.v1.articles" in result.stdout


def test_a_model_importing_a_service_breaks_the_layers(copy_of_the_app: Path) -> None:
    module = copy_of_the_app / "app" / "models" / "user.py"
    module.write_text(module.read_text() + "\nimport app.services.accounts\n")
    result = lint_imports(copy_of_the_app)
    assert result.returncode == 1
    assert "app.models.user -> app.services.accounts" in result.stdout


def test_no_module_does_several_jobs_by_length() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "app").rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_make_lint_runs_the_layer_contracts() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"lint-imports"]' in pyproject.split("[tool.pdm.scripts]")[1].split("\n[")[0]


def test_create_app_registers_every_commit_effect(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(meili_url="http://127.0.0.1:9", meili_master_key="k" * 16))
    effects = app.extensions["database"].commit_effects
    assert [effect.name for effect in effects] == ["cache", "search outbox", "notifications"]
    # Those that must see what a cascade deletes look before the flush too.
    assert [effect.collect_before_flush is not None for effect in effects] == [True, True, False]


def test_without_meilisearch_the_cache_and_notifications_follow_a_commit(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    assert [effect.name for effect in app.extensions["database"].commit_effects] == [
        "cache",
        "notifications",
    ]


def test_a_new_route_module_and_model_module_need_no_registration(
    copy_of_the_app: Path,
) -> None:
    """The recipe's claim: the routes module and the model module are all a new
    resource adds; /api/v1 serves the one, Base.metadata knows the other."""
    (copy_of_the_app / "app" / "models" / "bookmark.py").write_text(
        "from sqlalchemy.orm import Mapped, mapped_column\n"
        "from app.models.base import Base, BigID\n\n\n"
        "class Bookmark(Base):\n"
        '    __tablename__ = "bookmarks"\n'
        "    id: Mapped[int] = mapped_column(BigID, primary_key=True)\n"
    )
    (copy_of_the_app / "app" / "api" / "v1" / "bookmarks.py").write_text(
        "from app.core.application import APIBlueprint\n\n"
        'bp = APIBlueprint("bookmarks", __name__, url_prefix="/bookmarks")\n\n\n'
        '@bp.operation("GET", "", "listBookmarks", responses={200: "The bookmarks"})\n'
        "def list_bookmarks() -> list[int]:\n"
        '    """Your bookmarks."""\n'
        "    return []\n"
    )
    probe = (
        "import tempfile, pathlib\n"
        "from app import create_app\n"
        "from app.core.settings import Settings\n"
        "from app.models import Base\n"
        "settings = Settings(_env_file=None, app_env='testing',"
        " instance_path=pathlib.Path(tempfile.mkdtemp()))\n"
        "client = create_app(settings).test_client()\n"
        "print(client.get('/api/v1/bookmarks').status_code)\n"
        "print('bookmarks' in Base.metadata.tables)\n"
        "print('listBookmarks' in client.get('/api/v1/openapi.json').get_data(as_text=True))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=copy_of_the_app,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(copy_of_the_app), "PATH": str(LINT_IMPORTS.parent)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "True", "True"]
