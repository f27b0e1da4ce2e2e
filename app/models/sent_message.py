"""The messages already sent, by key: what keeps a redelivered task from sending twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class SentMessage(Base):
    """One email (or SMS) that a sender accepted. ``key`` names the message, not
    the task: the same key sent again is the same message."""

    __tablename__ = "sent_messages"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``email`` (``sms`` next).
    channel: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<SentMessage {self.channel} {self.key}>"
