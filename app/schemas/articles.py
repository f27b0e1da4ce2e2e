"""Articles: what the API shows of one, the list's filters, and the writes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.models.article import ArticleStatus
from app.schemas.base import ID, Page, PageQuery, Patch, StrictModel

#: Stripped before they are measured; the pattern tells the document that a
#: value of spaces alone is refused.
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")
]
Body = Annotated[str, Field(min_length=1, max_length=100_000)]


def _normalized_tag(value: object) -> object:
    """Tags compare stripped and in lower case. Normalize before the length is
    checked: lower-casing can lengthen a string ("İ" becomes two characters)."""
    return value.strip().lower() if isinstance(value, str) else value


TagName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=r"\S"),
    BeforeValidator(_normalized_tag),
]
Tags = Annotated[list[TagName], Field(max_length=10)]


class Author(BaseModel):
    id: int
    name: str


# One article as the API shows it, and as the cache keeps it. (A comment, not a
# docstring: a docstring would become the schema's description in the document.)
class ArticleOut(BaseModel):
    model_config = ConfigDict(title="Article")

    id: int
    title: str
    body: str
    tags: list[str]
    status: ArticleStatus
    author: Author
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int


class ArticlePage(Page[ArticleOut]):
    pass


ArticleSort = Literal["created_at", "-created_at", "title", "-title"]


class ArticleQuery(PageQuery):
    tag: Annotated[TagName | None, Field(description="Only articles with this tag")] = None
    author_id: Annotated[ID | None, Field(description="Only articles by this author")] = None
    status: Annotated[
        ArticleStatus | None,
        Field(description="published (the default), or draft: your own drafts (an admin's: all)"),
    ] = None
    sort: Annotated[ArticleSort, Field(description="A field, '-' first for descending")] = (
        "-created_at"
    )


class ArticleCreate(StrictModel):
    title: Title
    body: Body
    tags: Tags = []  # noqa: RUF012 - pydantic copies a default for each model
    status: ArticleStatus = ArticleStatus.DRAFT


class ArticleUpdate(Patch):
    """The fields to change; the others keep their values."""

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    status: ArticleStatus | None = None
