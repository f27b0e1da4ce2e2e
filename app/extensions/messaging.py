"""Outgoing messages: every email the app sends leaves through here.

One *sender* per channel, chosen by the settings at start-up:

* email: :class:`SmtpSender` when ``SMTP_HOST`` is set (the standard library's
  ``smtplib``, with STARTTLS or implicit TLS, and ``AUTH`` when a user is set),
  else, outside production, :class:`LogEmailSender`, which writes the whole
  message to the log; production without SMTP has no email flows
  (``EMAIL_ENABLED``), and :class:`NoEmailSender` refuses every message.

A sender delivers one message and raises :class:`SendFailed` when it could not,
with ``retryable`` saying whether trying again may help: a timeout, a refused
connection or a 4xx reply may pass; a 5xx (a bad address, refused credentials),
a server without STARTTLS or a certificate that does not verify will not. Nothing here retries or remembers: :mod:`app.tasks.messages` does,
and a message's *key* (its ``Message-ID``) keeps a redelivered task from sending
it twice. The next channel (SMS) is one more sender here.

Bodies come from Jinja templates under ``app/templates/email/`` (:func:`render_email`):
a ``.txt`` and an ``.html`` per message.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Protocol, cast

from flask import current_app, render_template

if TYPE_CHECKING:
    from app.core.application import APIFlask
    from app.core.settings import Settings

log = logging.getLogger("app.messaging")


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    #: An HTML alternative to ``text``, or none.
    html: str | None = None


def render_email(template: str, *, to: str, subject: str, **context: object) -> Email:
    """An email from ``app/templates/email/<template>.txt`` and ``.html``, with
    ``context``: escaped in the HTML, as written in the text. Needs the app context."""
    return Email(
        to=to,
        subject=subject,
        text=render_template(f"email/{template}.txt", **context),
        html=render_template(f"email/{template}.html", **context),
    )


class SendFailed(Exception):  # noqa: N818 - reads as what happened
    """The message was not delivered to the next hop."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable

    def __reduce__(self) -> tuple[object, ...]:
        # Celery pickles a task's exception (a retry carries it): keep ``retryable``.
        return type(self), (str(self),), {"retryable": self.retryable}


class EmailSender(Protocol):
    def send(self, email: Email, *, key: str) -> None:
        """Deliver ``email``, whose ``Message-ID`` is made from ``key``; raise
        :class:`SendFailed` if it was not delivered."""
        ...


def compose(email: Email, *, key: str, sender: str) -> EmailMessage:
    """The MIME message: plain text, with the HTML as its alternative. Headers
    that are not ASCII are encoded (RFC 2047), bodies are UTF-8."""
    if "@" not in parseaddr(email.to)[1] or "," in email.to:
        raise ValueError(f"an email goes to one address, not {email.to!r}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{key}@{_domain(sender)}>"
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


class SmtpSender:
    """Email through an SMTP server (``SMTP_*``), one connection per message."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password.get_secret_value()
        self.timeout = settings.smtp_timeout
        self.sender = settings.mail_from
        self.helo_name = _domain(settings.mail_from)
        self.where = f"SMTP at {self.host}:{self.port}"

    def send(self, email: Email, *, key: str) -> None:
        message = compose(email, key=key, sender=self.sender)
        try:
            smtp = self._connect()
        except OSError as exc:  # smtplib's errors are OSErrors too
            raise _failure(exc, self.where) from exc
        try:
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)
        except OSError as exc:  # smtplib's errors are OSErrors too
            raise _failure(exc, self.where) from exc
        finally:
            _close(smtp)

    def _connect(self) -> smtplib.SMTP:
        # The name to greet with is given: smtplib would otherwise look up this
        # host's FQDN, which no timeout bounds.
        name = self.helo_name
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=name,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(self.host, self.port, local_hostname=name, timeout=self.timeout)


def _failure(exc: OSError, where: str) -> SendFailed:
    """What the error means for a retry: a 4xx, a dropped connection or a timeout
    may pass; a 5xx, a missing extension (STARTTLS, AUTH, SMTPUTF8) or a
    certificate that does not verify will not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return SendFailed(
            f"{where} refused the recipient ({', '.join(map(str, codes))})",
            retryable=all(code < 500 for code in codes),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendFailed(
            f"{where} answered {exc.smtp_code}: {_text(exc.smtp_error)}",
            retryable=exc.smtp_code < 500,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return SendFailed(f"{where}: {exc!r}", retryable=False)
    return SendFailed(f"{where}: {exc!r}", retryable=True)


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT, and close. The message is delivered once the server accepted
    its data: a QUIT that fails changes nothing."""
    try:
        smtp.quit()
    except OSError:
        smtp.close()


class LogEmailSender:
    """Development without SMTP: the message, links and all, goes to the log."""

    def send(self, email: Email, *, key: str) -> None:
        log.info(
            "email not sent (no SMTP_HOST), key %s, to %s: %s\n%s",
            key,
            email.to,
            email.subject,
            email.text,
        )


class NoEmailSender:
    """Production without SMTP: the email flows are off, and anything that still
    asks for an email to go out is refused rather than logged with its links."""

    def send(self, email: Email, *, key: str) -> None:
        raise SendFailed("no SMTP_HOST: email is off in production", retryable=False)


def init_app(app: APIFlask) -> None:
    settings = app.settings
    sender: EmailSender
    if settings.smtp_host:
        sender = SmtpSender(settings)
    elif settings.is_production:
        sender = NoEmailSender()
    else:
        sender = LogEmailSender()
    app.extensions["email_sender"] = sender


def get_email_sender() -> EmailSender:
    return cast("EmailSender", current_app.extensions["email_sender"])
