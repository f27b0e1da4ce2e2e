"""Search: the query and its highlighted hits."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.articles import ArticleOut, TagName
from app.schemas.base import PageQuery


class SearchQuery(PageQuery):
    q: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=200),
        Field(description="Words to find in the title or body; empty lists every article"),
    ] = ""
    tag: Annotated[TagName | None, Field(description="Only articles with this tag")] = None


class Highlighted(BaseModel):
    """The matches wrapped in ``<em>`` and ``</em>``; the body is cropped around
    its first match."""

    title: str
    body: str


class SearchHit(ArticleOut):
    model_config = ConfigDict(
        title="SearchHit",
        serialize_by_alias=True,
        # _formatted is always sent (null without a query): the document says so.
        json_schema_serialization_defaults_required=True,
    )

    formatted: Highlighted | None = Field(default=None, serialization_alias="_formatted")


class SearchPage(BaseModel):
    items: list[SearchHit]
    query: str
    page: int
    per_page: int
    total: int
    processing_time_ms: int
