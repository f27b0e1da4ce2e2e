"""The request and response models of ``/api/v1``.

They validate every request, shape every response, and are the OpenAPI
document's schemas: one definition for all three. Request models reject unknown
fields (``extra="forbid"``); every string and number has bounds.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from app.core.openapi import without_null
from app.core.routing import MAX_ID
from app.models.article import ArticleStatus

ItemT = TypeVar("ItemT", bound=BaseModel)


class Request(BaseModel):
    """Base of every request model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


#: The syntax browsers check for ``<input type="email">`` (the HTML standard's
#: rule), with at least one dot after the @. Addresses at special-use domains
#: (.arpa, .invalid, .local, .localhost, .onion, .test), which no mail reaches,
#: are refused too.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _deliverable_domain(email: str) -> str:
    top_level = email.rpartition(".")[2].lower()
    if top_level in SPECIAL_USE_DOMAINS:
        raise ValueError(f"addresses at .{top_level} domains cannot receive mail")
    return email


Email = Annotated[
    str,
    StringConstraints(pattern=EMAIL_PATTERN, max_length=254),
    AfterValidator(_deliverable_domain),
    Field(
        examples=["ada@example.com"],
        description="An email address; special-use domains such as .test or .local are refused",
    ),
]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, Field(min_length=1, max_length=100_000)]
TagName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50),
]
Tags = Annotated[list[TagName], Field(max_length=10)]
ID = Annotated[int, Field(ge=1, le=MAX_ID)]

# -- users and auth ----------------------------------------------------------------


class User(BaseModel):
    """An account as others see it. Passwords and hashes never leave the server."""

    id: int
    email: str
    name: str
    is_admin: bool
    created_at: AwareDatetime


class Register(Request):
    email: Email
    password: Password
    name: Name


class TokenRequest(Request):
    """Sign in with an email and a password."""

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenForm(Request):
    """The OAuth 2 password grant, as a form: ``username`` is the email. The
    other OAuth 2 fields are accepted, and ignored."""

    username: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=128)]
    grant_type: Literal["password"] = "password"
    scope: Annotated[str, Field(max_length=200)] = ""
    client_id: Annotated[str, Field(max_length=200)] = ""
    client_secret: Annotated[str, Field(max_length=200)] = ""


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth 2 token type
    #: Seconds until the access token expires.
    expires_in: int
    refresh_token: str


class RefreshRequest(Request):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


def _omit_null_defaults(schema: dict[str, Any]) -> None:
    """In the document, a field left out keeps its value: it is not nullable
    and has no ``null`` default."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for name, field in properties.items():
        properties[name] = without_null(field)


class Patch(Request):
    """Base of partial updates: send only the fields to change. ``null`` is
    refused rather than read as "no change", so the two cannot be confused.
    In code, ``None`` means "not sent"; the document shows no ``null`` at all."""

    model_config = ConfigDict(json_schema_extra=_omit_null_defaults)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("null is not a value here; leave the field out to keep it")
        return value


def _user_update_schema(schema: dict[str, Any]) -> None:
    _omit_null_defaults(schema)
    schema["dependentRequired"] = {"password": ["current_password"]}


class UserUpdate(Patch):
    """Change your name, or your password (which needs the current one)."""

    model_config = ConfigDict(json_schema_extra=_user_update_schema)

    name: Name | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=128)] | None = None


# -- pages --------------------------------------------------------------------------


class PageQuery(Request):
    page: Annotated[int, Field(ge=1, le=1_000_000, description="1-based page number")] = 1
    per_page: Annotated[int, Field(ge=1, le=100, description="Items per page (1-100)")] = 20


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    page: int
    per_page: int
    total: int
    pages: int

    @classmethod
    def of(cls, items: list[ItemT], query: PageQuery, total: int) -> Self:
        """The page ``query`` asked for, holding ``items`` of ``total`` in all."""
        return cls(
            items=items,
            page=query.page,
            per_page=query.per_page,
            total=total,
            pages=math.ceil(total / query.per_page),
        )


class UserPage(Page[User]):
    pass


# -- articles -----------------------------------------------------------------------


class Author(BaseModel):
    id: int
    name: str


class Article(BaseModel):
    id: int
    title: str
    body: str
    tags: list[str]
    status: ArticleStatus
    author: Author
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int


class ArticlePage(Page[Article]):
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


class ArticleCreate(Request):
    title: Title
    body: Body
    tags: Tags = []
    status: ArticleStatus = ArticleStatus.DRAFT


class ArticleUpdate(Patch):
    """The fields to change; the others keep their values."""

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    status: ArticleStatus | None = None


class Status(BaseModel):
    status: Literal["ok"]


# -- search -------------------------------------------------------------------------


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


class SearchHit(Article):
    model_config = ConfigDict(serialize_by_alias=True)

    formatted: Highlighted | None = Field(default=None, serialization_alias="_formatted")


class SearchPage(BaseModel):
    items: list[SearchHit]
    query: str
    page: int
    per_page: int
    total: int
    processing_time_ms: int
