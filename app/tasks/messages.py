"""Sending email: one task per message, sent once (:mod:`app.services.sending`).

The account flows' tasks build their message in the worker, from the account
as it is then (:mod:`app.services.account_email`), and send it as
:func:`send_email` does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from app.core.application import current_settings
from app.extensions.database import get_database
from app.extensions.messaging import Email, SendFailed, get_email_sender
from app.extensions.sms import get_sms_sender
from app.extensions.sms_codes import get_sms_codes
from app.schemas.users import SmsPurpose
from app.services import account_email, phone_auth
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
    return _send_email(self, key, Email(to=to, subject=subject, text=text, html=html))


@shared_task(name=account_email.VERIFY_TASK, bind=True)
def send_verification_email(self: Any, user_id: int) -> bool:
    """Send the account its verification link, as :func:`send_email` sends,
    unless it was verified (or deleted) since it asked."""
    session = get_database().session()
    email = account_email.verification_email(session, user_id, settings=current_settings())
    if email is None:
        log.info("verification email for account %d not sent: verified or gone", user_id)
        return False
    return _send_email(self, f"verify-{self.request.id}", email)


@shared_task(name=account_email.RESET_TASK, bind=True)
def send_password_reset(self: Any, email: str) -> bool:
    """Send a reset link to ``email`` if an account has it, as
    :func:`send_email` sends. Nothing is sent, and nothing logged at INFO,
    for an address without an account."""
    session = get_database().session()
    message = account_email.reset_email(session, email, settings=current_settings())
    if message is None:
        log.debug("password reset for an address without an account: nothing sent")
        return False
    return _send_email(self, f"reset-{self.request.id}", message)


@shared_task(name=phone_auth.CODE_TASK, bind=True)
def send_sms_code(self: Any, phone: str, purpose: SmsPurpose) -> bool:
    """Make a code for ``phone`` and send it by SMS, once, retried as
    :func:`send_email` is; for a sign-in to a number no account has bound,
    nothing."""
    session = get_database().session()
    sender = get_sms_sender()
    if sender is None:
        log.error("SMS code for a number not sent: SMS is off (SMS_SENDER)")
        return False
    if not phone_auth.wants_code(session, phone, purpose):
        log.debug("sign-in code for a number no account has bound: nothing sent")
        return False

    def deliver() -> None:
        # Made once the key is claimed: a redelivered task that finds its
        # message sent makes no new code, so the one sent stays good.
        sender.send(phone_auth.new_code(phone, purpose, codes=get_sms_codes()))

    return _send(self, f"sms-{self.request.id}", "sms", deliver)


def _send_email(task: Any, key: str, email: Email) -> bool:
    return _send(task, key, "email", lambda: get_email_sender().send(email, key=key))


def _send(task: Any, key: str, channel: str, deliver: Callable[[], None]) -> bool:
    """Deliver once under ``key``, retrying as :func:`send_email` says. A
    redelivered task keeps its id, so its key: it sends nothing twice."""
    try:
        return send_once(get_database().session(), key=key, channel=channel, deliver=deliver)
    except SendFailed as exc:
        if task.request.is_eager:
            log.error(
                "%s %s not sent (tasks run inline, so it is not retried): %s", channel, key, exc
            )
            return False
        if exc.retryable:
            countdown = get_exponential_backoff_interval(
                factor=RETRY_FACTOR,
                retries=task.request.retries,
                maximum=task.retry_backoff_max,
                full_jitter=True,
            )
            log.warning("%s %s not sent, retrying in %d s: %s", channel, key, countdown, exc)
            raise task.retry(exc=exc, countdown=countdown) from exc
        log.error("%s %s not sent, and will not be retried: %s", channel, key, exc)
        raise
