"""Notifications: what the API (and the stream) shows of one, the page, the
unread count, marking read, and the stream's ticket."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.schemas.articles import Author
from app.schemas.base import ID, Page, PageQuery, StrictModel

COMMENT_CREATED = "comment.created"
ARTICLE_PUBLISHED = "article.published"


class CommentCreatedData(BaseModel):
    article_id: int
    article_title: str
    comment_id: int
    actor: Author
    #: The comment's first characters.
    excerpt: str


class ArticlePublishedData(BaseModel):
    article_id: int
    article_title: str


# The fields every notification has. (Comments, not docstrings: a docstring
# would become the schema's description in the document.)
class _NotificationBase(BaseModel):
    id: int
    created_at: AwareDatetime
    read_at: AwareDatetime | None


class CommentCreatedNotification(_NotificationBase):
    model_config = ConfigDict(title="CommentCreatedNotification")

    type: Literal["comment.created"]
    data: CommentCreatedData


class ArticlePublishedNotification(_NotificationBase):
    model_config = ConfigDict(title="ArticlePublishedNotification")

    type: Literal["article.published"]
    data: ArticlePublishedData


#: One notification: its ``type`` says which ``data`` it carries.
NotificationOut = Annotated[
    CommentCreatedNotification | ArticlePublishedNotification, Field(discriminator="type")
]


class NotificationQuery(PageQuery):
    unread: Annotated[bool, Field(description="Only the notifications not read yet")] = False


class NotificationPage(Page[NotificationOut]):
    pass


class UnreadCount(BaseModel):
    count: int


class MarkReadIds(StrictModel):
    """These notifications of yours, at most 100."""

    ids: Annotated[list[ID], Field(min_length=1, max_length=100)]


class MarkReadAll(StrictModel):
    """Every notification of yours."""

    all: Literal[True]


#: The body of ``POST /notifications/read``: one shape or the other.
MarkRead = MarkReadIds | MarkReadAll


class StreamTicketOut(BaseModel):
    model_config = ConfigDict(title="StreamTicket")

    #: Connect with ``/notifications/stream?ticket=<ticket>``, once, within ``expires_in`` seconds.
    ticket: str
    expires_in: int
