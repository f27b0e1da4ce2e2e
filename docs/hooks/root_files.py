# pyright: strict
"""Links in the repo-root files the site includes, read from the repo root.

``docs/contributing.md`` and ``docs/changelog.md`` include ``CONTRIBUTING.md`` and
``CHANGELOG.md`` (pymdownx.snippets), so each has one source. Those files link
the way GitHub reads them, from the repo root: ``docs/cache.md``,
``CHANGELOG.md``. Included into a page at the top of ``docs/``, such a link
would point at ``docs/docs/cache.md``. This hook rewrites it before mkdocs
checks it:

- ``docs/<page>`` becomes ``<page>``;
- a root file the site includes becomes its page (``CHANGELOG.md`` → ``changelog.md``).

Anything else is left as written, so a link to a file the site lacks
(``LICENSE``, ``app/...``) still fails the strict build.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit
from xml.etree.ElementTree import Element

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor
from mkdocs.config.defaults import MkDocsConfig

#: The repo-root files the site includes, and the page each is included into.
INCLUDED_ROOT_FILES = {"CONTRIBUTING.md": "contributing.md", "CHANGELOG.md": "changelog.md"}
DOCS_PREFIX = "docs/"
#: After the inline patterns made the links (20), before mkdocs resolves them (0).
PRIORITY = 5
_URL_ATTRIBUTES = {"a": "href", "img": "src"}


def on_config(config: MkDocsConfig) -> None:
    # Typed as names, but Markdown takes extension instances too (mkdocstrings does this).
    config.markdown_extensions.append(RootLinksExtension())  # pyright: ignore[reportArgumentType]


class RootLinksExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's name
        md.treeprocessors.register(RootLinks(md), "root_links", PRIORITY)


class RootLinks(Treeprocessor):
    def run(self, root: Element) -> None:
        for element in root.iter():
            attribute = _URL_ATTRIBUTES.get(element.tag)
            if attribute and (url := element.get(attribute)):
                element.set(attribute, from_docs(url))


def from_docs(url: str) -> str:
    """``url``, written from the repo root, as a page at the top of ``docs/`` needs it."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return url
    path = INCLUDED_ROOT_FILES.get(parts.path) or parts.path.removeprefix(DOCS_PREFIX)
    return urlunsplit(parts._replace(path=path))
