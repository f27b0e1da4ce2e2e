"""Sending email: one task per message, sent once (:mod:`app.services.sending`)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from app.extensions.database import get_database
from app.extensions.messaging import Email, SendFailed, get_email_sender
from app.services.sending import send_once

log = logging.getLogger("app.messaging")

#: Seconds before the first retry; each next one waits twice as long (with full
#: jitter), up to the task's ``retry_backoff_max``.
RETRY_FACTOR = 30


@shared_task(name="app.tasks.messages.send_email", bind=True)
def send_email(
    self: Any, key: str, *, to: str, subject: str, text: str, html: str | None = None
) -> bool:
    """Send one email, unless the message ``key`` was sent already; true when
    this run sent it.

    A failure that may pass (no server, a timeout, a 4xx) is retried, 30 s
    later, then twice as long each time, up to 10 minutes, 5 times. One that
    will not (a 5xx, no STARTTLS, an untrusted certificate) is logged as an
    error and not retried. Without a broker the task runs inline, in the
    request that sent it: a failure there is logged and the request goes on."""
    email = Email(to=to, subject=subject, text=text, html=html)

    def deliver() -> None:
        get_email_sender().send(email, key=key)

    try:
        return send_once(get_database().session(), key=key, channel="email", deliver=deliver)
    except SendFailed as exc:
        if self.request.is_eager:
            log.error("email %s not sent (tasks run inline, so it is not retried): %s", key, exc)
            return False
        if exc.retryable:
            countdown = get_exponential_backoff_interval(
                factor=RETRY_FACTOR,
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=True,
            )
            log.warning("email %s not sent, retrying in %d s: %s", key, countdown, exc)
            raise self.retry(exc=exc, countdown=countdown) from exc
        log.error("email %s not sent, and will not be retried: %s", key, exc)
        raise
