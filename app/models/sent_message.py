"""The messages sent, or being sent, by key: what keeps a message from going out twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class SentMessage(Base):
    """One email (or SMS), claimed by the delivery sending it, then sent.
    ``key`` names the message, not the task: the same key sent again is the
    same message (:mod:`app.services.sending`)."""

    __tablename__ = "sent_messages"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``email`` (``sms`` next).
    channel: Mapped[str] = mapped_column(String(16))
    #: ``sending`` while a delivery holds it, ``sent`` once the sender accepted it.
    state: Mapped[str] = mapped_column(String(8))
    #: When the claim was taken, or the message sent.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<SentMessage {self.channel} {self.key} {self.state}>"
