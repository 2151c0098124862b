"""Email alerts over SMTP (standard library `smtplib`), configured by `SmtpSettings`.

Settings come from arguments or the environment: CHILDGUARD_SMTP_HOST, CHILDGUARD_SMTP_PORT,
CHILDGUARD_SMTP_USER, CHILDGUARD_SMTP_PASSWORD, CHILDGUARD_SMTP_FROM, CHILDGUARD_SMTP_STARTTLS
("1" to upgrade the connection with STARTTLS), CHILDGUARD_SMTP_SSL ("1" for implicit TLS).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from childguard.errors import ChildguardError


class AlertDeliveryError(ChildguardError):
    """An alert could not be delivered; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    sender: str = "childguard@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    timeout_s: float = 15.0

    @classmethod
    def from_env(cls) -> SmtpSettings:
        env = os.environ
        return cls(
            host=env.get("CHILDGUARD_SMTP_HOST", "localhost"),
            port=int(env.get("CHILDGUARD_SMTP_PORT", "25")),
            sender=env.get("CHILDGUARD_SMTP_FROM", "childguard@localhost"),
            username=env.get("CHILDGUARD_SMTP_USER") or None,
            password=env.get("CHILDGUARD_SMTP_PASSWORD") or None,
            starttls=env.get("CHILDGUARD_SMTP_STARTTLS") == "1",
            use_ssl=env.get("CHILDGUARD_SMTP_SSL") == "1",
        )


def build_message(
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """A plain-text message; header values are checked so that no header can be injected.
    `message_id` replaces the random Message-ID (a sender that resends one message keeps it)."""
    for value in (sender, subject, *recipients, message_id or "", reply_to or ""):
        if "\r" in value or "\n" in value:
            raise ValueError(f"newline in an email header value: {value[:60]!r}")
    if not recipients:
        raise ValueError("no recipients")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id or make_msgid(domain="childguard.local")
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content(body)
    return msg


def send_email(
    settings: SmtpSettings,
    recipients: Sequence[str],
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    reply_to: str | None = None,
) -> str:
    """Send one plain-text email; returns its Message-ID. Raises AlertDeliveryError."""
    msg = build_message(
        settings.sender, recipients, subject, body, message_id=message_id, reply_to=reply_to
    )
    return send_message(settings, msg)


def send_message(settings: SmtpSettings, msg: EmailMessage) -> str:
    """Send a message built already (say, with an attachment); returns its Message-ID.
    Raises AlertDeliveryError: retryable when the server may take it later."""
    try:
        smtp: smtplib.SMTP
        if settings.use_ssl:
            ctx = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_s, context=ctx
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with smtp:
            if settings.starttls and not settings.use_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise AlertDeliveryError(
            f"all recipients refused: {sorted(exc.recipients)}", retryable=False
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise AlertDeliveryError(
            f"SMTP server said {exc.smtp_code}: {exc.smtp_error!r}",
            retryable=400 <= exc.smtp_code < 500,
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise AlertDeliveryError(
            f"cannot send email via {settings.host}:{settings.port}: {exc}", retryable=True
        ) from exc
    if refused:
        raise AlertDeliveryError(f"some recipients refused: {sorted(refused)}", retryable=False)
    return str(msg["Message-ID"])
