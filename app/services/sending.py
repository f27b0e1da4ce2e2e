"""Sending a message once.

Every message has a key, chosen by whoever asks for it to be sent. The key must
be new for each message meant to go out: a resend gets a key of its own.
:func:`send_once` claims the key in ``sent_messages`` before it sends (a
committed row, ``sending``), and marks it ``sent`` once the sender accepted the
message. So:

* a task delivered again after its message went out (its worker died before
  acknowledging it, ``acks_late``) finds ``sent``, and sends nothing;
* two deliveries of one message at once: the second finds the claim, and sends
  nothing;
* a claim whose delivery died before the sender answered is taken over once it
  is :data:`LEASE` old; a send that failed drops its claim, so its retry sends.

One window remains: a worker that dies after the sender accepted the message,
and before ``sent`` is committed, leaves a claim that is taken over after the
lease, and the message goes out again. The email's ``Message-ID`` is made from
the key, so the two copies carry the same id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.sent_message import SentMessage

log = logging.getLogger("app.messaging")

#: How long a sent message's key is kept: longer than any task is retried.
KEEP = timedelta(days=7)
#: How long a claim holds before another delivery may take it over: longer than
#: a send can take (a few replies, each within ``SMTP_TIMEOUT``).
LEASE = timedelta(minutes=5)
#: What a key may be: it becomes part of an email's ``Message-ID``.
KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


def send_once(session: Session, *, key: str, channel: str, deliver: Callable[[], None]) -> bool:
    """Claim the message ``key``, call ``deliver``, and mark it sent; true when
    this call sent it, false when it was sent, or is being sent, already. An
    error from ``deliver`` drops the claim and propagates."""
    if not KEY.fullmatch(key):
        raise ValueError(f"a message key is 1-64 of A-Z a-z 0-9 . _ -, not {key!r}")
    if not _claim(session, key, channel):
        log.info("%s %s is sent, or being sent, already: not sending it", channel, key)
        return False
    try:
        deliver()
    except BaseException:
        session.execute(
            delete(SentMessage).where(SentMessage.key == key, SentMessage.state == "sending")
        )
        session.commit()
        raise
    session.execute(
        update(SentMessage).where(SentMessage.key == key).values(state="sent", updated_at=utcnow())
    )
    session.commit()
    return True


def _claim(session: Session, key: str, channel: str) -> bool:
    """Take the key: a new row, or a claim past its lease (compare and set)."""
    session.add(SentMessage(key=key, channel=channel, state="sending", updated_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
    else:
        return True
    taken = cast(
        "CursorResult[Any]",
        session.execute(
            update(SentMessage)
            .where(
                SentMessage.key == key,
                SentMessage.state == "sending",
                SentMessage.updated_at < utcnow() - LEASE,
            )
            .values(updated_at=utcnow())
        ),
    )
    session.commit()
    return taken.rowcount == 1


def purge_sent(session: Session) -> int:
    """Forget the keys of messages sent more than :data:`KEEP` ago; return how many."""
    result = cast(
        "CursorResult[Any]",
        session.execute(delete(SentMessage).where(SentMessage.updated_at < utcnow() - KEEP)),
    )
    session.commit()
    return result.rowcount
