# pyright: strict
"""The API reference, rendered at build time from the app's own OpenAPI document.

The hook builds the app on its embedded defaults (no network, no servers), asks
it for ``/api/v1/openapi.json`` as a client would, and then

- adds that document to the site, byte for byte, as ``openapi.json``;
- replaces :data:`MARKER` on :data:`PAGE` with every operation (method, path,
  operationId, summary, parameters, request body, responses) and every
  component schema (fields, types, required).

So the page cannot drift from the code: it is the code's document, reread on
every build.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

PAGE = "reference/openapi.md"
MARKER = "<!-- openapi-reference -->"
DOCUMENT_URL = "/api/v1/openapi.json"
SITE_FILE = "openapi.json"
SCHEMA_PREFIX = "#/components/schemas/"

JSON = dict[str, Any]


# -- the mkdocs events --------------------------------------------------------------


def on_config(config: MkDocsConfig) -> None:
    # `mkdocs build` (the script) does not put the working folder on sys.path.
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, SITE_FILE, content=fetch_document()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str | None:
    if page.file.src_uri != PAGE:
        return None
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} must contain {MARKER}, where the operations and schemas go")
    served = files.get_file_from_path(SITE_FILE)
    if served is None:
        raise PluginError(f"{SITE_FILE} is missing from the site's files")
    document = cast("JSON", json.loads(served.content_bytes))
    return markdown.replace(MARKER, render(document))


def fetch_document() -> bytes:
    """The document exactly as the app serves it."""
    # Imported here: the repo root is on sys.path only once on_config has run.
    from app import create_app  # noqa: PLC0415
    from app.core.settings import Settings  # noqa: PLC0415

    root_logger = logging.getLogger()
    saved_level, saved_handlers = root_logger.level, list(root_logger.handlers)
    with tempfile.TemporaryDirectory(prefix="docs-openapi-") as instance:
        # The document depends on no setting. The empty URLs keep variables a
        # developer exported from making the build talk to their servers.
        settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            app_env="testing",
            instance_path=Path(instance),
            log_level="WARNING",
            database_url="",
            redis_url="",
            celery_broker_url="",
            celery_result_backend="",
            meili_url="",
            ratelimit_storage_url="",
        )
        try:
            response = create_app(settings).test_client().get(DOCUMENT_URL)
        finally:
            # The app configures the root logger for itself; the build keeps its own.
            root_logger.setLevel(saved_level)
            root_logger.handlers[:] = saved_handlers
    if response.status_code != 200:
        raise PluginError(f"GET {DOCUMENT_URL} answered {response.status}")
    return response.get_data()


# -- the page -----------------------------------------------------------------------


def render(document: JSON) -> str:
    """The Markdown of every operation, by tag, then every schema."""
    info: JSON = document["info"]
    lines = [
        f"**{info['title']}**, version `{info['version']}` (OpenAPI {document['openapi']}).",
        "",
        info.get("description", ""),
        "",
    ]
    for tag, operations in _operations_by_tag(document["paths"]).items():
        lines += [f"## {tag}", ""]
        for path, method, operation in operations:
            lines += _operation(path, method, operation)
    lines += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += _schema(name, schema)
    return "\n".join(lines)


def _operations_by_tag(paths: Mapping[str, JSON]) -> dict[str, list[tuple[str, str, JSON]]]:
    """Tags in the order the document first names them; operations in its order."""
    groups: dict[str, list[tuple[str, str, JSON]]] = {}
    for path, methods in paths.items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append((path, method, operation))
    return groups


def _operation(path: str, method: str, operation: JSON) -> list[str]:
    lines = [
        f"### `{method.upper()} {path}` {{ #{operation['operationId']} }}",
        "",
        f"`{operation['operationId']}`: {operation.get('summary', '')}",
        "",
    ]
    if operation.get("description"):
        lines += [operation["description"], ""]
    lines += [f"**Authentication:** {_security(operation.get('security', []))}.", ""]

    if parameters := operation.get("parameters"):
        lines += [
            "**Parameters**",
            "",
            "| parameter | in | type | required | description |",
            "|---|---|---|---|---|",
        ]
        for parameter in parameters:
            schema: JSON = parameter.get("schema", {})
            description = parameter.get("description", schema.get("description", ""))
            cells = [
                _code(parameter["name"]),
                parameter["in"],
                _type_with_constraints(schema),
                "yes" if parameter.get("required") else "no",
                _prose(description),
            ]
            lines.append(_row(cells))
        lines.append("")

    if body := operation.get("requestBody"):
        encodings = [
            f"{_type(media['schema'])} as {_code(media_type)}"
            for media_type, media in body.get("content", {}).items()
        ]
        needed = "required" if body.get("required") else "optional"
        lines += [f"**Request body** ({needed}): " + ", or ".join(encodings) + ".", ""]

    lines += ["**Responses**", "", "| status | description | body | headers |", "|---|---|---|---|"]
    for status, response in operation["responses"].items():
        bodies = [_type(media["schema"]) for media in response.get("content", {}).values()]
        headers = [
            f"{_code(name)}: {_prose(header.get('description', ''))}"
            for name, header in response.get("headers", {}).items()
            if name != "X-Request-ID"  # on every response; the page says so once
        ]
        cells = [
            _code(status),
            _prose(response.get("description", "")),
            ", ".join(bodies) or "none",
            "<br>".join(headers),
        ]
        lines.append(_row(cells))
    return [*lines, ""]


def _security(requirements: list[JSON]) -> str:
    schemes = [name for requirement in requirements for name in requirement]
    if not schemes:
        return "none"
    names = ", ".join(_code(name) for name in schemes)
    if {} in requirements:
        return f"optional ({names}); a token that is sent must be valid"
    return f"required ({names})"


def _schema(name: str, schema: JSON) -> list[str]:
    lines = [f"### {name} {{ #{_schema_anchor(name)} }}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    properties: Mapping[str, JSON] = schema.get("properties", {})
    if not properties:
        return [*lines, f"{_type_with_constraints(schema)}.", ""]

    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, field_schema in properties.items():
        cells = [
            _code(field),
            _type_with_constraints(field_schema),
            "yes" if field in required else "no",
            _prose(field_schema.get("description", "")),
        ]
        lines.append(_row(cells))
    lines.append("")
    for field, needs in schema.get("dependentRequired", {}).items():
        lines += [f"Sending {_code(field)} requires {', '.join(map(_code, needs))}.", ""]
    if schema.get("additionalProperties") is False:
        lines += ["Any other field is refused (`422`, `extra_forbidden`).", ""]
    return lines


# -- types and values -----------------------------------------------------------------


def _type_with_constraints(schema: JSON) -> str:
    """``string; 1 to 50 characters; default "x"``: a field's type and its bounds."""
    return "; ".join([_type(schema), *_constraints(schema)])


def _inner(schema: JSON) -> str:
    """A type inside another (an item, an alternative), its bounds in brackets."""
    constraints = list(_constraints(schema))
    return f"{_type(schema)} ({', '.join(constraints)})" if constraints else _type(schema)


def _type(schema: JSON) -> str:
    """A schema's type as a short phrase, with links to the schemas it names."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(SCHEMA_PREFIX)
        return f"[{name}](#{_schema_anchor(name)})"
    for combinator, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            return joiner.join(_inner(option) for option in schema[combinator])
    if "const" in schema:
        return _code(json.dumps(schema["const"]))
    if "enum" in schema:
        return "one of " + ", ".join(_code(json.dumps(value)) for value in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(cast("list[str]", kind))
    if kind == "array":
        return f"array of {_inner(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_inner(schema['additionalProperties'])}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _constraints(schema: JSON) -> Iterator[str]:
    yield from _bounds(schema, "minLength", "maxLength", "characters")
    yield from _bounds(schema, "minItems", "maxItems", "items")
    yield from _bounds(schema, "minimum", "maximum", "")
    if "exclusiveMinimum" in schema:
        yield f"above {schema['exclusiveMinimum']}"
    if "exclusiveMaximum" in schema:
        yield f"below {schema['exclusiveMaximum']}"
    if "pattern" in schema:
        yield f"matches {_code(schema['pattern'])}"
    if "default" in schema:
        yield f"default {_code(json.dumps(schema['default']))}"


def _bounds(schema: JSON, low_key: str, high_key: str, unit: str) -> Iterator[str]:
    low, high = schema.get(low_key), schema.get(high_key)
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        yield f"{low} to {high}{suffix}"
    elif low is not None:
        yield f"at least {low}{suffix}"
    elif high is not None:
        yield f"at most {high}{suffix}"


def _schema_anchor(name: str) -> str:
    return f"schema-{name}"


def _code(text: str) -> str:
    """``text`` as a Markdown code span, fenced by more backticks than it holds
    (a table's ``|`` inside a code span stays in its cell)."""
    longest = max(map(len, re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """Text from a docstring, kept as Markdown, fit for one table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
