"""The documentation builds, and says what the code does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from mkdocs.utils.yaml import yaml_load

from app.core.settings import Settings

ROOT = Path(__file__).parents[1]
MERMAID = ROOT / "client" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
DOCS = ROOT / "docs"

#: Every page the issue asks for, by its title in the nav.
REQUIRED_PAGES = {
    "Getting started": "getting-started.md",
    "Architecture": "architecture.md",
    "Configuration": "configuration.md",
    "The /api/v1 contract": "api.md",
    "OpenAPI reference": "reference/openapi.md",
    "Error codes": "errors.md",
    "Cache design": "cache.md",
    "Background tasks": "tasks.md",
    "Search": "search.md",
    "Accounts: email and phone": "accounts.md",
    "Deployment and scaling": "deployment.md",
    "Performance": "performance.md",
    "Contributing": "contributing.md",
    "Changelog": "changelog.md",
}
#: The code reference: each page, and objects it must document (their anchors).
CODE_REFERENCE = {
    "reference/application.md": [
        "app.core.application.APIFlask",
        "app.core.application.APIBlueprint",
        "app.core.application.APIRequest",
    ],
    "reference/json.md": ["app.core.json.OrJSONProvider", "app.core.json.dumps_bytes"],
    "reference/exceptions.md": [
        "app.core.exceptions.APIException",
        "app.core.exceptions.NotFound",
        "app.core.domain_errors.DomainError",
    ],
    "reference/services.md": [
        "app.services.articles.get_visible",
        "app.services.articles.is_editor",
        "app.services.accounts.sign_in",
        "app.services.pagination.page_of",
    ],
    "reference/database.md": [
        "app.extensions.database.Database.on_commit",
        "app.extensions.database.CommitEffect",
    ],
    "reference/settings.md": ["app.core.settings.Settings", "app.core.settings.Settings.app_env"],
    "reference/cache.md": [
        "app.cache.Manager",
        "app.cache.Node",
        "app.cache.LocalStorage",
        "app.cache.RedisStorage",
        "app.cache.NullStorage",
    ],
    "reference/search.md": ["app.extensions.search.ArticleIndex"],
    "reference/indexing.md": ["app.services.indexing", "app.services.indexing.deliver"],
    "reference/background.md": ["app.extensions.background.FlaskTask"],
}
SERVICES = ("nginx", "web", "worker", "beat", "flower", "mysql", "redis", "meilisearch")
REQUEST_PATH = ("request id", "auth guard", "validation", "view", "JSON provider", "error envelope")
NETWORK_PLUGINS = {"social", "privacy", "material/social", "material/privacy"}
#: Root files the site includes rather than copies, and the page each goes into.
INCLUDED_ROOT_FILES = {"CONTRIBUTING.md": "contributing.md", "CHANGELOG.md": "changelog.md"}


# -- the built site, once per session ------------------------------------------------


@dataclass(frozen=True)
class Build:
    returncode: int
    stderr: str
    site: Path


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``mkdocs build --strict``, run once: it takes several seconds. The site
    serves the pinned Mermaid, so the npm packages of ``client/`` come first."""
    if not MERMAID.is_file():
        npm = shutil.which("npm")
        assert npm is not None, "building the docs needs npm: Mermaid comes from client/"
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=ROOT / "client",
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr
    site = tmp_path_factory.mktemp("site")
    # A developer's exported settings must not reach the app the API page is built from.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in Settings.model_fields and name != "DOCS_REPO_URL"
    }
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**environment, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Build(result.returncode, result.stderr, site)


@pytest.fixture
def site(build: Build) -> Path:
    if build.returncode != 0:
        pytest.fail(f"the docs did not build:\n{build.stderr}")
    return build.site


def built_page(site: Path, source: str) -> Page:
    """The built page of ``source`` (``reference/openapi.md``), parsed."""
    path = site / source.removesuffix(".md") / "index.html"
    assert path.is_file(), f"{source} was not built"
    page = Page()
    page.feed(path.read_text())
    return page


class Page(HTMLParser):
    """A built page's element ids, link targets and text."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: set[str] = set()
        self._chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            elif name == "href" and value:
                self.hrefs.add(value)

    def handle_data(self, data: str) -> None:
        self._chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self._chunks).split())


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def mkdocs_config() -> dict[str, Any]:
    with (ROOT / "mkdocs.yml").open() as file:
        return yaml_load(file)


def nav_pages(nav: list[Any]) -> dict[str, str]:
    """Every page of the nav, title → file, however deep its section."""
    pages: dict[str, str] = {}
    for entry in nav:
        for title, target in entry.items():
            if isinstance(target, list):
                pages.update(nav_pages(target))  # pyright: ignore[reportUnknownArgumentType]
            else:
                pages[title] = target
    return pages


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


# -- the build and its configuration ---------------------------------------------------


def test_docs_site_builds_strictly(build: Build) -> None:
    assert build.returncode == 0, build.stderr
    assert (build.site / "errors" / "index.html").is_file()


def test_nav_has_every_page_the_issue_asks_for() -> None:
    pages = nav_pages(mkdocs_config()["nav"])
    assert {title: pages.get(title) for title in REQUIRED_PAGES} == REQUIRED_PAGES
    assert set(CODE_REFERENCE) <= set(pages.values())
    for source in pages.values():
        assert (DOCS / source).is_file(), f"the nav lists {source}, which does not exist"


def test_no_plugin_needs_the_network() -> None:
    plugins = mkdocs_config().get("plugins", [])
    names = {
        name for plugin in plugins for name in ([plugin] if isinstance(plugin, str) else plugin)
    }
    assert not names & NETWORK_PLUGINS


def test_included_root_files_have_one_source() -> None:
    """The site includes CONTRIBUTING.md and CHANGELOG.md; it holds no copy of either."""
    for root_file, page in INCLUDED_ROOT_FILES.items():
        assert (DOCS / page).read_text().strip() == f'--8<-- "{root_file}"'


def test_included_root_files_are_built_with_their_links(site: Path) -> None:
    for root_file, page in INCLUDED_ROOT_FILES.items():
        built = built_page(site, page)
        first_heading = (ROOT / root_file).read_text().splitlines()[0].lstrip("# ")
        assert first_heading in built.text
        assert not any(href.startswith("docs/") for href in built.hrefs), built.hrefs


# -- the pages say what the code does --------------------------------------------------


def test_configuration_page_lists_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_readme_quick_start_is_the_two_make_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    first_block = quick_start.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make dev", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_getting_started_names_every_make_target_and_no_other() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([a-z-]+)", (DOCS / "getting-started.md").read_text()))
    assert named == targets


def test_architecture_diagram_names_every_service() -> None:
    blocks = mermaid_blocks((DOCS / "architecture.md").read_text())
    assert any(
        all(re.search(rf"\b{service}\b", block) for service in SERVICES) for block in blocks
    ), f"no mermaid block in architecture.md names all of {SERVICES}"


def test_architecture_diagram_shows_the_request_path() -> None:
    blocks = mermaid_blocks((DOCS / "architecture.md").read_text())
    assert any(all(step in block for step in REQUEST_PATH) for block in blocks)


def test_api_reference_lists_every_operation(site: Path, document: dict[str, Any]) -> None:
    page = built_page(site, "reference/openapi.md")
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation["operationId"] in page.ids, operation["operationId"]
            assert f"{method.upper()} {path}" in page.text


def test_api_reference_lists_every_schema_and_field(site: Path, document: dict[str, Any]) -> None:
    page = built_page(site, "reference/openapi.md")
    for name, schema in document["components"]["schemas"].items():
        assert f"schema-{name}" in page.ids, name
        for field_name in schema.get("properties", {}):
            assert field_name in page.text, f"{name}.{field_name}"


def test_api_reference_links_the_document_and_the_error_catalogue(site: Path) -> None:
    page = built_page(site, "reference/openapi.md")
    assert "../../openapi.json" in page.hrefs
    assert "../../errors/" in page.hrefs


def test_built_openapi_json_is_the_apps_document(site: Path, document: dict[str, Any]) -> None:
    assert json.loads((site / "openapi.json").read_bytes()) == document


@pytest.mark.parametrize("source", CODE_REFERENCE)
def test_code_reference_documents_the_module(site: Path, source: str) -> None:
    page = built_page(site, source)
    missing = [identifier for identifier in CODE_REFERENCE[source] if identifier not in page.ids]
    assert not missing


@pytest.mark.parametrize("source", CODE_REFERENCE)
def test_code_reference_shows_no_raw_rest(site: Path, source: str) -> None:
    """Sphinx roles and simple tables in docstrings are rendered, not shown as typed."""
    text = built_page(site, source).text
    assert not re.search(r":(class|func|meth|mod|data|attr|exc):`", text)
    assert "=====" not in text


def test_the_site_names_no_repository_until_a_clone_sets_one(site: Path) -> None:
    """A placeholder repository made every page call a code host's API for a
    repository that does not exist."""
    index = (site / "index.html").read_text()
    assert 'class="md-source"' not in index
    assert "example/flask-api-template" not in index


def test_docs_repo_url_names_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCS_REPO_URL", raising=False)
    assert mkdocs_config()["repo_url"] is None
    monkeypatch.setenv("DOCS_REPO_URL", "https://github.com/acme/api")
    assert mkdocs_config()["repo_url"] == "https://github.com/acme/api"


def test_the_docs_workflow_names_the_repository_it_runs_in() -> None:
    workflow = (ROOT / ".github" / "workflows" / "docs.yml").read_text()
    assert "DOCS_REPO_URL: ${{ github.server_url }}/${{ github.repository }}" in workflow


def test_the_site_serves_mermaid_itself(site: Path) -> None:
    """Material fetches Mermaid from a CDN only when the page has none, so
    offline the diagrams would show as source; the site ships the pinned build."""
    assert (site / "assets" / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    page = (site / "architecture" / "index.html").read_text()
    assert 'src="../assets/javascripts/mermaid.min.js"' in page
    assert 'class="mermaid"' in page
    assert "unpkg.com" not in page
    pinned = json.loads((ROOT / "client" / "package.json").read_text())
    assert pinned["devDependencies"]["mermaid"] == "11.17.2"  # Material's loader expects 11
