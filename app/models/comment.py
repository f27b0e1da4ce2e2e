"""Comments on articles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.article import Article
from app.models.base import Base, BigID, UTCDateTime, utcnow
from app.models.user import User


class Comment(Base):
    __tablename__ = "comments"
    #: An article's comments are listed oldest first: (article, created_at, id).
    __table_args__ = (Index("ix_comments_article_id_created_at", "article_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(BigID, ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    article: Mapped[Article] = relationship(lazy="raise")
    author: Mapped[User] = relationship(lazy="raise")
