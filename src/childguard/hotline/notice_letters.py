# Owns the letter a notice carries: its wording, its URLs as it gives them, and its JSON twin.
"""The text of a notice-and-takedown message, in English, from what `childguard.hotline.notices`
knows of a notice: `render_notice(...) -> NoticeMessage` (subject, plain-text body, the same as
a JSON payload, the email's Message-ID and the webhook's Idempotency-Key).

A notice of illegal content carries what Article 16 of the Digital Services Act asks for: the
exact URLs, the reason, the notifier's identity (withheld for child sexual abuse offences, Art.
16(2)(c)) and a statement of good faith; and also each URL's SHA-256 and PDQ, its capture time,
a preservation request, the reference and the host's link. A harvested photo is not illegal:
a notice whose URLs are all harvested photos asks for removal under the platform's terms of
service instead, with the same parts. The reason never describes the content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ILLEGAL_TITLE = "Notice of illegal content"
TERMS_TITLE = "Request to remove content under your terms of service"
OUTCOME_REASONS = {
    "baseline": (
        "child sexual abuse material: illegal in every country (INHOPE baseline), "
        "as assessed by trained hotline analysts"
    ),
    "nationally-illegal": (
        "child sexual abuse material: illegal under national law, "
        "as assessed by trained hotline analysts"
    ),
    "harvested": (
        "a photograph of a child collected and presented in a sexualised context, "
        "contrary to your terms of service"
    ),
}
ILLEGAL_OUTCOMES = ("baseline", "nationally-illegal")
GOOD_FAITH = (
    "The notifier has a bona fide belief that the information and allegations in this notice "
    "are accurate and complete."
)
IDENTITY_WITHHELD = (
    "Withheld: this notice concerns a child sexual abuse offence "
    "(Article 16(2)(c) of the Digital Services Act)."
)
PRESERVATION = (
    "Please preserve the content, its metadata and the records of the account that made it "
    "available for law enforcement before you remove it, and do not tell the uploader about "
    "this notice."
)


@dataclass(frozen=True)
class NoticeUrl:
    """One URL of a notice as the message gives it."""

    route_id: int
    url: str
    sha256: str | None
    pdq: str | None
    captured_at: datetime
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "captured_at": self.captured_at.isoformat(),
        }


@dataclass(frozen=True)
class NoticeMessage:
    """What one sending says: the subject and plain-text body, and the same as JSON."""

    subject: str
    body: str
    payload: dict[str, Any]
    message_id: str
    idempotency_key: str


def is_terms_of_service(urls: Sequence[NoticeUrl]) -> bool:
    """Whether a notice of these URLs asks under the terms of service (all harvested)."""
    return bool(urls) and all(u.outcome == "harvested" for u in urls)


def default_reason(outcomes: Sequence[str]) -> str:
    """The reason of a notice in words, from its routes' outcomes."""
    words = [OUTCOME_REASONS.get(o, o) for o in dict.fromkeys(outcomes)]
    return "; ".join(words)


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_notice(
    *,
    reference: str,
    sequence: int,
    recipient_kind: str,
    recipient_name: str | None,
    urls: Sequence[NoticeUrl],
    reason: str,
    identity_withheld: bool,
    notifier_name: str,
    notifier_email: str | None,
    link: str | None,
    link_expires_at: datetime | None,
    renotice: timedelta,
    first_sent_at: datetime | None,
    sent_at: datetime,
) -> NoticeMessage:
    """One sending of a notice: subject, plain-text body (English) and the JSON payload. A
    notice whose URLs are all harvested photos asks for removal under the platform's terms of
    service; the others are notices of illegal content under DSA Article 16."""
    hours = renotice.total_seconds() / 3600
    every = f"{hours:g} hours"
    terms = is_terms_of_service(urls)
    subject = f"[{reference}] " + (TERMS_TITLE if terms else ILLEGAL_TITLE)
    if sequence > 1:
        subject += f" (notice {sequence}: still online)"
    notifier = None if identity_withheld else {"name": notifier_name, "email": notifier_email}
    heading = (
        ["Request to remove content under your terms of service"]
        if terms
        else [
            "Notice of illegal content under Article 16 of the Digital Services Act",
            "(Regulation (EU) 2022/2065)",
        ]
    )
    lines = [
        *heading,
        "",
        f"Reference: {reference}",
        f"Notice number: {sequence}"
        + (" (a reminder: the content is still online)" if sequence > 1 else ""),
        f"Sent: {_when(sent_at)}"
        + (f"; first notice {_when(first_sent_at)}" if first_sent_at and sequence > 1 else ""),
        f"To: {recipient_name or recipient_kind} ({recipient_kind})",
        "",
        "1. Where the content is (exact URLs)",
    ]
    for number, url in enumerate(urls, start=1):
        lines.append(f"   [{number}] {url.url}")
        lines.append(f"       SHA-256: {url.sha256 or 'not known'}")
        lines.append(f"       PDQ: {url.pdq or 'not known'}")
        lines.append(f"       Captured: {_when(url.captured_at)}")
    lines += [
        "",
        "2. Why it must be removed" if terms else "2. Why it is illegal",
        f"   {reason}",
        "",
        "3. The notifier",
        f"   {IDENTITY_WITHHELD}"
        if identity_withheld
        else f"   {notifier_name}" + (f" <{notifier_email}>" if notifier_email else ""),
        "",
        "4. Statement of good faith",
        f"   {GOOD_FAITH}",
        "",
        "5. Preservation request",
        f"   {PRESERVATION}",
        "",
        "6. Your answer",
    ]
    if link:
        lines += [
            "   See this notice and tell us the content is removed, without an account:",
            f"   {link}",
            f"   (the link works until {_when(link_expires_at)})" if link_expires_at else "",
        ]
    lines += [
        "   We check every URL ourselves; a removal counts once our check confirms it.",
        f"   Until then this notice is sent again every {every}.",
        "",
        f"Please quote {reference} in any answer.",
    ]
    body = "\n".join(line for line in lines) + "\n"
    payload = {
        "type": "notice",
        "basis": "terms-of-service" if terms else "dsa-article-16",
        "reference": reference,
        "sequence": sequence,
        "recipient_kind": recipient_kind,
        "recipient_name": recipient_name,
        "urls": [u.to_dict() for u in urls],
        "reason": reason,
        "good_faith": GOOD_FAITH,
        "identity_withheld": identity_withheld,
        "notifier": notifier,
        "preservation_request": PRESERVATION,
        "host_link": link,
        "host_link_expires_at": link_expires_at.isoformat() if link_expires_at else None,
        "sent_at": sent_at.isoformat(),
        "renotice_hours": hours,
    }
    return NoticeMessage(
        subject=subject,
        body=body,
        payload=payload,
        message_id=f"<{reference}.{sequence}@childguard.notice>",
        idempotency_key=f"{reference}-{sequence}",
    )
