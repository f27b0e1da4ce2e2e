"""Comments: what the API shows of one, the list's page, and the writes."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.schemas.articles import Author
from app.schemas.base import Page, PageQuery, Patch, StrictModel

#: Kept as sent (no stripping: line breaks and indentation are the author's),
#: and refused when it is only whitespace.
CommentBody = Annotated[str, Field(min_length=1, max_length=5_000, pattern=r"\S")]


# One comment as the API shows it. (A comment, not a docstring: a docstring
# would become the schema's description in the document.)
class CommentOut(BaseModel):
    model_config = ConfigDict(title="Comment")

    id: int
    article_id: int
    author: Author
    body: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CommentPage(Page[CommentOut]):
    pass


class CommentQuery(PageQuery):
    """An article's comments, oldest first."""


class CommentCreate(StrictModel):
    body: CommentBody


class CommentUpdate(Patch):
    """The fields to change; the others keep their values."""

    body: CommentBody | None = None
