"""What the search index still has to hear about, and how far a reindex got.

:class:`SearchOutbox` is the transactional outbox of the search index: every
write that changes how an article reads adds a row in the same transaction
(``app/services/indexing.py``), and a row is deleted only once Meilisearch has
confirmed the task that carried the article's state. A row names the article,
not its content: delivery always sends the article as it is at that moment.

:class:`SearchReindex` is the checkpoint of ``flask search reindex``: the last
article id whose batch Meilisearch confirmed, so a stopped run resumes there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigID, UTCDateTime, utcnow


class SearchOutbox(Base):
    __tablename__ = "search_outbox"
    __table_args__ = (
        Index("ix_search_outbox_article_id", "article_id"),
        Index("ix_search_outbox_next_attempt_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    #: No foreign key: the row must outlive the article, to carry its deletion.
    article_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The sweep leaves the row alone until then: the task sent after commit
    #: delivers it first, and each failed attempt pushes it further out.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    #: Written by the flush that published the article: once this row's
    #: delivery is confirmed, the author is told it is searchable.
    announce: Mapped[bool] = mapped_column(default=False, server_default=false())


class SearchReindex(Base):
    __tablename__ = "search_reindex"

    index_uid: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: Every article with an id up to this one has been sent and confirmed.
    last_article_id: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: ``None`` while a run is under way (or was stopped): the next run resumes it.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
