"""A real SMTP server for the tests (aiosmtpd), and what it received."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class Inbox:
    """aiosmtpd's handler: keeps every message it accepts; answers the
    recipients named in ``refuse`` with their reply (a 550 by default)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refuse: dict[str, str] = {}
        #: The answer to QUIT, when not aiosmtpd's 221.
        self.quit_reply: str | None = None

    async def handle_QUIT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return self.quit_reply or "221 Bye"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or b""
        self.messages.append(
            email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 Message accepted"

    def link(self, index: int = -1) -> str:
        """The one link in the plain-text body of message ``index``."""
        plain = self.messages[index].get_body(preferencelist=("plain",))
        assert plain is not None
        links = re.findall(r"https?://\S+", plain.get_content())
        assert len(links) == 1, links
        return links[0]
