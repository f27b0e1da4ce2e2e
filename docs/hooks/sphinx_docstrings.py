# pyright: strict
"""A griffe extension that reads our docstrings the way Sphinx would, for mkdocstrings.

The code is written in the reST habits Flask's own code has: ``literals`` (which
Markdown reads the same way), ``#:`` comments documenting an attribute, roles such
as :class:`Settings`, and the odd simple table. Markdown knows only the first, so
this extension translates the rest before mkdocstrings renders anything:

- a ``#:`` comment block above an attribute becomes that attribute's docstring;
- a role becomes a cross-reference when its target is on the site, else code
  (mkdocs-autorefs' ``optional`` references never fail the strict build);
- a reST simple table (``===  ===`` borders) becomes a Markdown table.

Loaded through the python handler's ``extensions`` option in ``mkdocs.yml``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|exc|func|meth|mod|data|attr|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`"
)
_CALLABLE_ROLES = frozenset({"func", "meth"})
_TABLE_BORDER = re.compile(r"^ *=+(?: +=+)+ *$")


class SphinxDocstrings(griffe.Extension):
    """Translate ``#:`` comments, roles and simple tables once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is None and isinstance(obj, griffe.Attribute):
                comment = _comment_docstring(obj)
                if comment:
                    obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
            if obj.docstring is not None:
                text = _roles_to_references(obj, obj.docstring.value)
                obj.docstring.value = _simple_tables_to_markdown(text)


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and everything defined in it (not what it imports)."""
    yield obj
    for member in obj.members.values():
        if isinstance(member, griffe.Object):
            yield from _walk(member)


def _comment_docstring(attr: griffe.Attribute) -> str:
    """The ``#:`` lines right above ``attr``, as Sphinx's autodoc reads them."""
    filepath = attr.filepath
    if attr.lineno is None or not isinstance(filepath, Path):
        return ""
    lines = attr.lines_collection[filepath]
    found: list[str] = []
    number = attr.lineno - 2  # the line above, 0-based
    while number >= 0 and lines[number].lstrip().startswith("#:"):
        found.append(lines[number].lstrip()[2:].strip())
        number -= 1
    return "\n".join(reversed(found))


def _roles_to_references(obj: griffe.Object, text: str) -> str:
    def reference(match: re.Match[str]) -> str:
        target = match["target"].strip()
        shown = target.rpartition(".")[2] if match["tilde"] else target
        if match["role"] in _CALLABLE_ROLES:
            shown += "()"
        identifier = _resolve(obj, target)
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(shown)}</code></autoref>"
        )

    return _ROLE.sub(reference, text)


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as named in ``obj``'s scope, else ``target`` itself
    (already a full path, or something outside the package such as ``TypeError``)."""
    head, dot, rest = target.partition(".")
    try:
        return obj.resolve(head) + dot + rest
    except griffe.NameResolutionError:
        return target


def _simple_tables_to_markdown(text: str) -> str:
    lines = text.splitlines()
    result: list[str] = []
    index = 0
    while index < len(lines):
        table = _simple_table_at(lines, index)
        if table is None:
            result.append(lines[index])
            index += 1
            continue
        rows, index = table
        result.extend(_markdown_table(rows))
    return "\n".join(result)


def _simple_table_at(lines: list[str], start: int) -> tuple[list[list[str]], int] | None:
    """The rows of a one-line-per-row simple table starting at ``start``, and the
    index after it; ``None`` if there is no such table there."""
    if not _TABLE_BORDER.match(lines[start]):
        return None
    borders = [start]
    index = start + 1
    while index < len(lines) and len(borders) < 3:
        if _TABLE_BORDER.match(lines[index]):
            borders.append(index)
        elif not lines[index].strip():
            return None
        index += 1
    if len(borders) != 3:
        return None
    starts = [match.start() for match in re.finditer(r"=+", lines[start])]
    ends = [*starts[1:], None]
    rows = [
        [line[begin:end].strip() for begin, end in zip(starts, ends, strict=True)]
        for number, line in enumerate(lines[start : borders[2]], start=start)
        if number not in borders
    ]
    return rows, borders[2] + 1


def _markdown_table(rows: list[list[str]]) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    header, *body = rows
    return ["", row(header), row(["---"] * len(header)), *map(row, body), ""]
