"""Email goes out through a real SMTP server (aiosmtpd, started here), once."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from celery.exceptions import Retry
from conftest import AppFactory, SettingsFactory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mail_support import Inbox
from pydantic import ValidationError
from serving_support import free_port
from sqlalchemy import select
from sqlalchemy.orm import Session as DBSession

from app.extensions.messaging import (
    Email,
    LogEmailSender,
    NoEmailSender,
    SendFailed,
    SmtpSender,
    render_email,
)
from app.models.base import utcnow
from app.models.sent_message import SentMessage
from app.services.sending import KEEP, LEASE, purge_sent, send_once
from app.tasks.messages import send_email

HOUR = dt.timedelta(hours=1)
SUBJECT = "Vérifiez votre adresse ✓"
TEXT = "Bonjour Zoë,\n\nhttps://app.example.com/verify?token=abc\n"
HTML = "<p>Bonjour Zoë, <a href='https://app.example.com/verify?token=abc'>vérifier</a></p>"


def sender(make_settings: SettingsFactory, port: int, **overrides: Any) -> SmtpSender:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout": 2.0,
        "mail_from": "Example <no-reply@example.com>",
    }
    return SmtpSender(make_settings(**{**values, **overrides}))


def test_an_email_arrives_with_its_headers_both_bodies_and_utf8(
    make_settings: SettingsFactory, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    sender(make_settings, port).send(
        Email(to="zoe@example.org", subject=SUBJECT, text=TEXT, html=HTML), key="verify-1"
    )
    assert len(handler.messages) == 1
    message = handler.messages[0]
    assert handler.envelopes[0].mail_from == "no-reply@example.com"
    assert handler.envelopes[0].rcpt_tos == ["zoe@example.org"]
    assert message["From"] == "Example <no-reply@example.com>"
    assert message["To"] == "zoe@example.org"
    assert message["Subject"] == SUBJECT
    # Not ASCII, so the header went out encoded (RFC 2047), and came back the same.
    assert "=?utf-8?" in (handler.envelopes[0].original_content or b"").decode().lower()
    assert message["Message-ID"] == "<verify-1@example.com>"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    assert plain.get_content_charset() == rich.get_content_charset() == "utf-8"
    # On the wire, lines end in CRLF (RFC 5321).
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert rich.get_content().strip() == HTML


def test_a_failed_quit_after_the_data_was_accepted_is_a_delivery(
    make_settings: SettingsFactory, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    handler.quit_reply = "451 4.3.0 something went wrong on the way out"
    sender(make_settings, port).send(Email(to="a@example.org", subject="Hi", text="x"), key="q")
    assert len(handler.messages) == 1


def test_a_text_only_email_is_one_plain_part(
    make_settings: SettingsFactory, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    sender(make_settings, port).send(Email(to="a@example.org", subject="Hi", text="x"), key="k")
    assert handler.messages[0].get_content_type() == "text/plain"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_then_auth(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server requires STARTTLS before AUTH; the sender verifies its certificate
    (trusted here through ``SSL_CERT_FILE``) and signs in."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"mailer",
            b"s3cret",
        )
        return AuthResult(success=good)

    handler = Inbox()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        tls = {"smtp_security": "starttls", "smtp_username": "mailer"}
        sender(make_settings, port, smtp_password="s3cret", **tls).send(
            Email(to="a@example.org", subject="Hi", text="x"), key="tls-1"
        )
        assert [m["Message-ID"] for m in handler.messages] == ["<tls-1@example.com>"]
        # Without the certificate trusted, the sender does not talk to the server.
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
        with pytest.raises(SendFailed) as untrusted:
            sender(make_settings, port, smtp_password="s3cret", **tls).send(
                Email(to="a@example.org", subject="Hi", text="x"), key="tls-3"
            )
        assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
        assert untrusted.value.retryable is False
    finally:
        controller.stop()
    assert len(handler.messages) == 1


@pytest.mark.filterwarnings(
    # aiosmtpd warns that AUTH without TLS is unsafe: this server takes no password.
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)
def test_refused_credentials_are_not_retried(make_settings: SettingsFactory) -> None:
    def refuse(*_: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    port = free_port()
    controller = Controller(
        Inbox(),
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        auth_require_tls=False,
        authenticator=refuse,
    )
    controller.start()
    try:
        with pytest.raises(SendFailed) as refused:
            sender(make_settings, port, smtp_username="mailer", smtp_password="wrong").send(
                Email(to="a@example.org", subject="Hi", text="x"), key="k"
            )
    finally:
        controller.stop()
    assert "535" in str(refused.value)
    assert refused.value.retryable is False


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("550 5.1.1 no such mailbox", False),  # refused: will not pass
        ("450 4.2.0 greylisted, try again later", True),  # busy: may pass
    ],
)
def test_a_recipient_refused_is_retried_only_for_a_4xx(
    make_settings: SettingsFactory, inbox: tuple[Inbox, int], reply: str, retryable: bool
) -> None:
    handler, port = inbox
    handler.refuse["rcpt@example.org"] = reply
    with pytest.raises(SendFailed) as refused:
        sender(make_settings, port).send(
            Email(to="rcpt@example.org", subject="Hi", text="x"), key="k"
        )
    assert refused.value.retryable is retryable
    assert reply[:3] in str(refused.value)
    assert handler.messages == []


def test_no_server_fails_at_once_and_a_silent_one_within_the_timeout(
    make_settings: SettingsFactory,
) -> None:
    message = Email(to="a@example.org", subject="Hi", text="x")
    started = time.monotonic()
    with pytest.raises(SendFailed) as refused:
        sender(make_settings, free_port()).send(message, key="k")
    assert refused.value.retryable is True
    assert time.monotonic() - started < 1.0
    # A server that takes the connection and never greets.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(SendFailed) as hung:
            sender(make_settings, silent.getsockname()[1], smtp_timeout=0.5).send(message, key="k")
        waited = time.monotonic() - started
    assert hung.value.retryable is True
    assert 0.4 < waited < 2.0


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_without_smtp_the_message_goes_to_the_log(make_settings: SettingsFactory) -> None:
    from app import create_app  # noqa: PLC0415

    app = create_app(make_settings())
    assert isinstance(app.extensions["email_sender"], LogEmailSender)
    logger = logging.getLogger("app.messaging")
    collect = Collect()
    logger.addHandler(collect)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        LogEmailSender().send(Email(to="a@example.org", subject=SUBJECT, text=TEXT), key="k1")
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    assert len(collect.messages) == 1
    assert SUBJECT in collect.messages[0]
    assert "https://app.example.com/verify?token=abc" in collect.messages[0]


# -- the task: once, and retried --------------------------------------------------------


@contextmanager
def as_a_worker(**request: Any) -> Iterator[None]:
    """Run ``send_email`` as a worker would (not inline), with this request."""
    task = cast("Any", send_email)
    task.push_request(is_eager=False, called_directly=False, **request)
    try:
        yield
    finally:
        task.pop_request()


def _send(key: str) -> Any:
    return send_email.delay(key, to="zoe@example.org", subject=SUBJECT, text=TEXT, html=HTML)


def test_the_task_sends_a_message_once_however_often_it_runs(
    make_api_app: AppFactory, inbox: tuple[Inbox, int], db_session: DBSession
) -> None:
    handler, port = inbox
    app = make_api_app(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    with app.app_context():
        assert _send("reset-7").get() is True
        # Delivered again (its worker died before acknowledging): nothing is sent.
        assert _send("reset-7").get() is False
        assert _send("reset-8").get() is True
    assert [m["Message-ID"] for m in handler.messages] == [
        "<reset-7@localhost>",
        "<reset-8@localhost>",
    ]
    keys = db_session.scalars(select(SentMessage.key).order_by(SentMessage.key)).all()
    assert keys == ["reset-7", "reset-8"]


def test_inline_a_send_that_fails_is_logged_and_records_nothing(
    make_api_app: AppFactory, inbox: tuple[Inbox, int], db_session: DBSession
) -> None:
    """Without a broker the task runs in the request that sent it: a failure is
    logged, the request goes on, and the key stays free for the next try."""
    handler, port = inbox
    down = make_api_app(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    with down.app_context():
        assert _send("verify-9").get() is False
    assert db_session.scalars(select(SentMessage)).all() == []
    up = make_api_app(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    with up.app_context():
        assert _send("verify-9").get() is True
    assert len(handler.messages) == 1


def test_on_a_worker_a_send_that_may_pass_is_retried_with_backoff(
    make_api_app: AppFactory, db_session: DBSession
) -> None:
    """As a worker runs it (not inline), the third try of a send to no server
    asks Celery to retry it within 30 s x 2**2, the failure attached."""
    app = make_api_app(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    with app.app_context():
        fields = {"to": "zoe@example.org", "subject": "Hi", "text": "x"}
        with (
            as_a_worker(retries=2, args=["verify-11"], kwargs=fields),
            pytest.raises(Retry) as retry,
        ):
            send_email.run("verify-11", **fields)
    assert isinstance(retry.value.exc, SendFailed)
    assert retry.value.exc.retryable is True
    when = cast("object", retry.value.when)
    assert isinstance(when, int | float)
    assert 0 <= when <= 120
    assert db_session.scalars(select(SentMessage)).all() == []


def test_a_message_that_cannot_go_is_not_retried(
    make_api_app: AppFactory, inbox: tuple[Inbox, int], db_session: DBSession
) -> None:
    handler, port = inbox
    handler.refuse["zoe@example.org"] = "550 5.1.1 no such mailbox"
    app = make_api_app(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    with app.app_context(), as_a_worker(retries=0), pytest.raises(SendFailed) as refused:
        send_email.run("verify-10", to="zoe@example.org", subject="Hi", text="x")
    assert refused.value.retryable is False
    assert db_session.scalars(select(SentMessage)).all() == []


def test_a_message_being_sent_is_not_sent_again_until_its_claim_is_stale(
    db_session: DBSession,
) -> None:
    sent: list[str] = []
    db_session.add(SentMessage(key="busy", channel="email", state="sending", updated_at=utcnow()))
    db_session.add(
        SentMessage(
            key="stale", channel="email", state="sending", updated_at=utcnow() - LEASE - HOUR
        )
    )
    db_session.commit()
    assert not send_once(
        db_session, key="busy", channel="email", deliver=lambda: sent.append("busy")
    )
    # Its delivery died before the sender answered: taken over, and sent.
    assert send_once(db_session, key="stale", channel="email", deliver=lambda: sent.append("stale"))
    assert sent == ["stale"]
    states = {row.key: row.state for row in db_session.scalars(select(SentMessage))}
    assert states == {"busy": "sending", "stale": "sent"}


def test_a_delivery_that_fails_drops_its_claim(db_session: DBSession) -> None:
    def fail() -> None:
        raise SendFailed("down", retryable=True)

    with pytest.raises(SendFailed):
        send_once(db_session, key="k-1", channel="email", deliver=fail)
    assert db_session.scalars(select(SentMessage)).all() == []
    assert send_once(db_session, key="k-1", channel="email", deliver=lambda: None)


@pytest.mark.parametrize("key", ["", "a b", "<x>", "x" * 65, "clé"])
def test_a_key_must_fit_a_message_id(db_session: DBSession, key: str) -> None:
    sent: list[str] = []
    with pytest.raises(ValueError, match="message key"):
        send_once(db_session, key=key, channel="email", deliver=lambda: sent.append(key))
    assert sent == []


@pytest.mark.parametrize("to", ["nobody", "a@example.org, b@example.org", ""])
def test_an_email_goes_to_one_address(make_settings: SettingsFactory, to: str) -> None:
    with pytest.raises(ValueError, match="one address"):
        sender(make_settings, free_port()).send(Email(to=to, subject="Hi", text="x"), key="k")


def test_production_without_smtp_sends_nothing_and_logs_no_link(
    make_settings: SettingsFactory,
) -> None:
    from app import create_app  # noqa: PLC0415

    app = create_app(make_settings(app_env="production", secret_key="p" * 40))
    assert isinstance(app.extensions["email_sender"], NoEmailSender)
    with pytest.raises(SendFailed) as refused:
        NoEmailSender().send(Email(to="a@example.org", subject="Hi", text="x"), key="k")
    assert refused.value.retryable is False


def test_keys_are_forgotten_after_a_week(db_session: DBSession) -> None:
    db_session.add_all(
        [
            SentMessage(
                key="old", channel="email", state="sent", updated_at=utcnow() - KEEP - HOUR
            ),
            SentMessage(
                key="new", channel="email", state="sent", updated_at=utcnow() - KEEP + HOUR
            ),
        ]
    )
    db_session.commit()
    assert purge_sent(db_session) == 1
    assert db_session.scalars(select(SentMessage.key)).all() == ["new"]


# -- settings ---------------------------------------------------------------------------


def test_email_flows_are_on_where_mail_can_go_out(make_settings: SettingsFactory) -> None:
    assert make_settings().resolved_email_enabled is True  # the log takes it
    production = {"app_env": "production", "secret_key": "p" * 40}
    assert make_settings(**production).resolved_email_enabled is False
    assert make_settings(**production, smtp_host="smtp.example.com").resolved_email_enabled
    assert make_settings(email_enabled=False).resolved_email_enabled is False


def test_production_refuses_email_flows_without_smtp(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValidationError, match="EMAIL_ENABLED needs SMTP_HOST in production"):
        make_settings(app_env="production", secret_key="p" * 40, email_enabled=True)


def test_production_refuses_a_password_sent_in_clear(make_settings: SettingsFactory) -> None:
    production = {"app_env": "production", "secret_key": "p" * 40, "smtp_host": "mail"}
    with pytest.raises(ValidationError, match="SMTP_SECURITY=none would send SMTP_PASSWORD"):
        make_settings(**production, smtp_username="mailer", smtp_security="none")
    assert make_settings(**production, smtp_username="mailer").smtp_security == "starttls"
    assert make_settings(**production, smtp_security="none").smtp_username == ""


@pytest.mark.parametrize("value", ["", "nobody", "Name <>"])
def test_mail_from_must_be_an_address(make_settings: SettingsFactory, value: str) -> None:
    with pytest.raises(ValidationError, match="mail_from"):
        make_settings(mail_from=value)


# -- templates --------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["verify_email", "reset_password"])
def test_templates_write_both_bodies_and_escape_only_the_html(
    make_settings: SettingsFactory, template: str
) -> None:
    from app import create_app  # noqa: PLC0415

    app = create_app(make_settings())
    link = "https://app.example.com/x?token=a.b&c=1"
    with app.app_context():
        message = render_email(
            template,
            to="zoe@example.org",
            subject=SUBJECT,
            name="Zoë <script>",
            email="zoe@example.org",
            link=link,
            valid_for="1 hour",
        )
    assert (message.to, message.subject) == ("zoe@example.org", SUBJECT)
    assert "Hello Zoë <script>," in message.text
    assert link in message.text
    assert "The link works once, for 1 hour" in message.text
    assert message.html is not None
    assert "The link works once, for 1 hour" in message.html
    assert "Zoë &lt;script&gt;" in message.html
    assert "<script>" not in message.html
    assert 'href="https://app.example.com/x?token=a.b&amp;c=1"' in message.html
