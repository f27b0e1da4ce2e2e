"""Sending a message once.

Every message has a key, chosen by whoever asks for it to be sent (e.g. a hash
of what it is for). :func:`send_once` records the key of each message its sender
accepted, so a task that is delivered again, because its worker died before
acknowledging it (``acks_late``), finds the key and sends nothing.

What remains is the moment between the sender accepting the message and the
key being committed: a worker that dies exactly there sends it again when the
task is redelivered. The email's ``Message-ID`` is made from the key, so the
two copies carry the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.sent_message import SentMessage

log = logging.getLogger("app.messaging")

#: How long a sent message's key is kept: longer than any task is retried.
KEEP = timedelta(days=7)


def send_once(session: Session, *, key: str, channel: str, deliver: Callable[[], None]) -> bool:
    """Call ``deliver`` unless the message ``key`` was sent already, then record
    it; true when this call sent it. An error from ``deliver`` records nothing."""
    if session.get(SentMessage, key) is not None:
        session.rollback()
        log.info("%s %s was sent already: not sending it again", channel, key)
        return False
    session.rollback()  # no transaction held open while the sender talks to its server
    deliver()
    session.add(SentMessage(key=key, channel=channel))
    try:
        session.commit()
    except IntegrityError:  # recorded by another delivery of the same message just now
        session.rollback()
    return True


def purge_sent(session: Session) -> int:
    """Forget the keys of messages sent more than :data:`KEEP` ago; return how many."""
    result = cast(
        "CursorResult[Any]",
        session.execute(delete(SentMessage).where(SentMessage.sent_at < utcnow() - KEEP)),
    )
    session.commit()
    return result.rowcount
