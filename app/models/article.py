"""Articles and their tags."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, BigID, UTCDateTime, utcnow
from app.models.user import User


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


article_tags = Table(
    "article_tags",
    Base.metadata,
    Column("article_id", BigID, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigID, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_article_tags_tag_id", "tag_id"),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    #: Binary collation on MySQL: "café" and "cafe" (or two emoji) are different tags.
    name: Mapped[str] = mapped_column(
        String(50).with_variant(mysql.VARCHAR(50, collation="utf8mb4_bin"), "mysql", "mariadb"),
        unique=True,
    )


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published')", name="status"),
        Index("ix_articles_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    author_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    #: MEDIUMTEXT on MySQL: TEXT holds only 64 KiB, under the API's 100,000 characters.
    body: Mapped[str] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))
    status: Mapped[str] = mapped_column(String(16), default=ArticleStatus.DRAFT.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: Bumped on every update; SQLAlchemy refuses an update whose version moved on.
    version: Mapped[int] = mapped_column(default=1)

    author: Mapped[User] = relationship(lazy="raise")
    #: Unordered here; the API sorts the names (``app.services.articles``).
    tags: Mapped[list[Tag]] = relationship(secondary=article_tags, lazy="raise")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads a dict
