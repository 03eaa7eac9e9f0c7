"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives, for
the mail tests: `with SmtpServer() as smtp: ... smtp.wait_for(to=...)`."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.server import free_port


class _Keep:
    def __init__(self, box: SmtpServer) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def env(self) -> dict[str, str]:
        """The server settings that send mail here."""
        return {
            "VEDIKA_SMTP_HOST": "127.0.0.1",
            "VEDIKA_SMTP_PORT": str(self.port),
            "VEDIKA_SMTP_TLS": "none",
            "VEDIKA_SMTP_FROM": "Vedika <vedika@test.invalid>",
        }

    def to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        with self.lock:
            return [
                m
                for rcpt, m in self.messages
                if address in rcpt and (subject is None or subject in str(m["Subject"]))
            ]

    def wait_for(self, address: str, subject: str | None = None, n: int = 1) -> EmailMessage:
        """The `n`-th message to `address` (with `subject` in its subject), waiting
        up to 10 s for it (mail is sent in the background)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = self.to(address, subject)
            if len(found) >= n:
                return found[n - 1]
            time.sleep(0.05)
        raise AssertionError(f"no mail #{n} to {address} ({subject}); got {self.messages}")


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
