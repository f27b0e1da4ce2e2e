"""Mermaid served from the site itself, so the diagrams render offline.

Material loads Mermaid from a CDN unless the page already has it. This hook
adds the browser build of the ``mermaid`` package that ``client/package-lock.json``
pins (installed by ``npm ci`` in ``client/``, never committed) to the site as
``assets/javascripts/mermaid.min.js``, and loads it on every page, so Material
finds it and fetches nothing.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "client" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
SITE_PATH = "assets/javascripts/mermaid.min.js"


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    if not BUNDLE.is_file():
        raise PluginError(
            f"{BUNDLE.relative_to(ROOT)} is missing: run `npm ci` in client/"
            " (or `make client`) to install the pinned Mermaid"
        )
    config.extra_javascript.append(SITE_PATH)
    return config


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(BUNDLE)))
    return files
