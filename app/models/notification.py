"""Notifications, the per-user head that orders them, and stream tickets.

A :class:`Notification` is written in the same transaction as the change that
causes it (``app/services/notifications.py``). Its ``id`` orders a user's
notifications in commit order, which the stream's ``after=<id>`` replay relies
on: a writer first locks the user's :class:`NotificationHead`, so two
transactions writing to one user insert one after the other, and the later one
always gets the larger id. The head also remembers the user's last id, which
every live frame carries as ``previous_id``: a stream that sees a frame whose
``previous_id`` it never delivered knows it missed one, and reads the table.

A :class:`StreamTicket` lets a browser, which cannot set ``Authorization`` on a
WebSocket, open the stream: single use, valid for seconds, stored hashed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigID, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    #: A user's page, newest first, and the replay, oldest first: (user, id).
    #: The unread count and filter: (user, read_at).
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigID, ForeignKey("users.id", ondelete="CASCADE"))
    #: ``comment.created`` or ``article.published``.
    type: Mapped[str] = mapped_column(String(40))
    #: The type's fields, as the contract lists them (a snapshot: an article
    #: renamed later keeps its old title here).
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class NotificationHead(Base):
    """One row per user who was ever notified: the lock that orders their
    notifications, and the id of the last one."""

    __tablename__ = "notification_heads"

    user_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)


class StreamTicket(Base):
    __tablename__ = "stream_tickets"
    __table_args__ = (Index("ix_stream_tickets_expires_at", "expires_at"),)

    #: SHA-256 of the ticket, hex. The ticket itself is never stored.
    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigID, ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
