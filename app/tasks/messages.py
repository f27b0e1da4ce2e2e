"""Sending email: one task per message, sent once (:mod:`app.services.sending`)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from app.extensions.database import get_database
from app.extensions.messaging import Email, SendFailed, get_email_sender
from app.services.sending import send_once

log = logging.getLogger("app.messaging")


@shared_task(name="app.tasks.messages.send_email", bind=True)
def send_email(
    self: Any, key: str, *, to: str, subject: str, text: str, html: str | None = None
) -> bool:
    """Send one email, unless the message ``key`` was sent already; true when
    this run sent it. A failure that may pass (a timeout, a 4xx) is retried with
    backoff; one that will not (a 5xx) is logged as an error and not retried."""
    email = Email(to=to, subject=subject, text=text, html=html)

    def deliver() -> None:
        get_email_sender().send(email, key=key)

    try:
        return send_once(get_database().session(), key=key, channel="email", deliver=deliver)
    except SendFailed as exc:
        if exc.retryable:
            log.warning("email %s not sent, will retry: %s", key, exc)
            raise self.retry(exc=exc) from exc
        log.error("email %s not sent, and will not be retried: %s", key, exc)
        raise
