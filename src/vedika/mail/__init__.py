"""Mail through SMTP (aiosmtplib): password reset links and sign-in notices
(docs/accounts.md "Email").

Without `VEDIKA_SMTP_HOST` nothing is sent and password reset is off. A `Mailer` is
built from the settings when needed; each message is one SMTP connection (these are
rare: a reset, a sign-in). `send_later` sends in the background and only logs a
failure, for mail that must never fail or slow the request that caused it.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
import structlog

from vedika.settings import Settings

log = structlog.get_logger(__name__)

_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
_pending: set[asyncio.Task[None]] = set()  # background sends, kept until done


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


class Mailer:
    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise MailError("VEDIKA_SMTP_HOST is not set")
        self.settings = settings
        self.host = settings.smtp_host
        self.port = settings.smtp_port or _DEFAULT_PORTS[settings.smtp_tls]

    def message(self, *, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.smtp_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="vedika")
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        return msg

    async def send(self, *, to: str, subject: str, text: str) -> None:
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                self.message(to=to, subject=subject, text=text),
                hostname=self.host,
                port=self.port,
                username=s.smtp_user,
                password=password,
                use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                timeout=s.smtp_timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc


def mailer(settings: Settings) -> Mailer | None:
    """A Mailer, or None when mail is not configured."""
    return Mailer(settings) if settings.mail_enabled else None


def send_later(mail: Mailer, *, to: str, subject: str, text: str, kind: str) -> None:
    """Send in the background; a failure is logged (`mail.failed`), never raised."""

    async def run() -> None:
        try:
            await mail.send(to=to, subject=subject, text=text)
            log.info("mail.sent", kind=kind)
        except MailError as exc:
            log.warning("mail.failed", kind=kind, error=str(exc))

    task = asyncio.get_running_loop().create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
