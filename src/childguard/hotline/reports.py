# Owns every write of the report and report_url tables: intake, URL states and retries.
"""Reports of URLs, as the public form and `POST /v1/reports` file them.

`create_report` validates everything first (`ReportRejected`, an `InputFormatError` that says
which URL is wrong and why, with a `code` the form translates), then saves the report and its
URLs in one transaction before anything is fetched, and only then queues a `hotline-report`
job. A crash between the two loses nothing: the URLs stay `received`, and `due_urls` hands
them to the processing on its schedule. The reporter's tracking code is stored only as its
SHA-256 and a feedback email only sealed (`childguard.hotline.crypto`); no address or user
agent ever reaches this module. `report_status` tells a tracking code's holder how far each
URL got, never what was found. `mark_url` moves a URL through its states for the processing.
Hints (`HINT_NAMES`) are short texts kept with the report for the analysts; `suspected` is one
of `SUSPECTED_HINTS` (an organisation's report of a copy of its photo says `harvested`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from childguard.errors import InputFormatError
from childguard.hotline.crypto import seal
from childguard.jobs import enqueue as enqueue_job
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import REPORT_CHANNELS, URL_STATES, Report, ReportUrl

JOB_KIND = "hotline-report"
EMAIL_AAD = b"report-email"
EMAIL_KEY_PURPOSE = "report-email"
MAX_URLS = 20
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 5000
MAX_EMAIL = 254
MAX_HINT = 100
HINT_NAMES = ("site_type", "content_type", "suspected")
# What the reporter suspects the content is, a class for the review (not a finding):
# `harvested`, legal photos of children put in a sexualised context (an organisation reporting
# a copy of one of its protected photos).
SUSPECTED_HINTS = ("harvested",)
# Symbols of a tracking code: no 0/O, 1/I/L, so it can be read out and typed back.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_GROUPS = 5
_CODE_GROUP = 4
_EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")

# What a reporter is told of a URL's state: never what was found.
PUBLIC_STATES = {
    "received": "received",
    "fetched": "processing",
    "traced": "processing",
    "in-review": "processing",
    "assessed": "assessed",
    "fetch-failed": "fetch-failed",
}
DUE_STATES = ("received", "fetch-failed")


class ReportRejected(InputFormatError):
    """A report that cannot be taken as given. `code` names the reason (`no-urls`,
    `too-many-urls`, `url-too-long`, `url-scheme`, `url-host`, `url-credentials`,
    `url-invalid`, `description-too-long`, `email-invalid`, `email-without-key`,
    `hint-invalid`, `language-invalid`, `channel-invalid`); `position` is the 1-based place of
    the URL it is about, `url` that URL (cut to 200 characters)."""

    def __init__(
        self, code: str, message: str, *, position: int | None = None, url: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.position = position
        self.url = url[:200] if url is not None else None


@dataclass(frozen=True)
class NewReport:
    """A saved report: its id, the tracking code (shown to the reporter once, stored only
    hashed) and the ids of its URLs in the order given."""

    id: int
    tracking_code: str
    url_ids: tuple[int, ...]


@dataclass(frozen=True)
class UrlStatus:
    """How far one URL of a report got, as its reporter may see it."""

    position: int
    url: str
    state: str  # one of PUBLIC_STATES' values


@dataclass(frozen=True)
class ReportStatus:
    """A report as its tracking code's holder sees it."""

    received_at: datetime
    urls: tuple[UrlStatus, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at.isoformat(),
            "urls": [{"position": u.position, "url": u.url, "state": u.state} for u in self.urls],
        }


@dataclass(frozen=True)
class ReportUrlInfo:
    """One URL of a report as the processing needs it."""

    id: int
    report_id: int
    position: int
    url: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    final_url: str | None
    content_type: str | None


def _url_info(row: ReportUrl) -> ReportUrlInfo:
    return ReportUrlInfo(
        id=row.id,
        report_id=row.report_id,
        position=row.position,
        url=row.url,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        final_url=row.final_url,
        content_type=row.content_type,
    )


def new_tracking_code() -> str:
    """A random tracking code (about 99 bits), grouped: `ABCD-EFGH-JKMN-PQRS-TUVW`."""
    symbols = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_GROUPS * _CODE_GROUP))
    return "-".join(symbols[i : i + _CODE_GROUP] for i in range(0, len(symbols), _CODE_GROUP))


def normalise_tracking_code(code: str) -> str:
    """The code as it is hashed: upper case, without spaces or dashes."""
    return re.sub(r"[\s-]+", "", code).upper()


def tracking_hash(code: str) -> str:
    """The SHA-256 (hex) a tracking code is stored as."""
    return hashlib.sha256(normalise_tracking_code(code).encode("utf-8")).hexdigest()


def check_url(url: str, position: int) -> str:
    """`url` stripped, if a reporter may send it; ReportRejected saying why not."""
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise ReportRejected(
            "url-too-long",
            f"URL {position} is {len(text)} characters long; at most {MAX_URL_LENGTH} are taken",
            position=position,
            url=text,
        )
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ReportRejected(
            "url-invalid",
            f"URL {position} ({text[:200]!r}) is not a URL: it is empty or has spaces or "
            "control characters",
            position=position,
            url=text,
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise ReportRejected(
            "url-invalid",
            f"URL {position} ({text[:200]!r}) is not a valid URL: {exc}",
            position=position,
            url=text,
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ReportRejected(
            "url-scheme",
            f"URL {position} ({text[:200]!r}) must start with http:// or https://",
            position=position,
            url=text,
        )
    if parts.username is not None or parts.password is not None:
        raise ReportRejected(
            "url-credentials",
            f"URL {position} ({text[:200]!r}) holds a user name or password; "
            "leave them out of the URL",
            position=position,
            url=text,
        )
    host = parts.hostname or ""
    if not host or host.startswith(".") or ".." in host:
        raise ReportRejected(
            "url-host",
            f"URL {position} ({text[:200]!r}) has no host name",
            position=position,
            url=text,
        )
    return text


def _folded(url: str) -> str:
    """The form duplicates are recognised in: scheme and host in lower case."""
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    return parts._replace(scheme=parts.scheme.lower(), netloc=netloc).geturl()


def check_urls(urls: Iterable[str]) -> list[str]:
    """The URLs of a report, each checked, in order, duplicates folded (first kept)."""
    given = [u for u in (str(v) for v in urls) if u.strip()]
    if not given:
        raise ReportRejected("no-urls", "a report needs at least one URL")
    if len(given) > MAX_URLS:
        raise ReportRejected(
            "too-many-urls", f"a report takes at most {MAX_URLS} URLs; {len(given)} were given"
        )
    kept: list[str] = []
    seen: set[str] = set()
    for position, url in enumerate(given, start=1):
        text = check_url(url, position)
        key = _folded(text)
        if key not in seen:
            seen.add(key)
            kept.append(text)
    return kept


def _check_hints(hints: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not hints:
        return None
    kept: dict[str, str] = {}
    for name, value in hints.items():
        if name not in HINT_NAMES:
            raise ReportRejected(
                "hint-invalid",
                f"unknown hint {name!r}; the hints are {', '.join(HINT_NAMES)}",
            )
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_HINT:
            raise ReportRejected(
                "hint-invalid", f"hint {name!r} must be text of at most {MAX_HINT} characters"
            )
        if name == "suspected" and value.strip() not in SUSPECTED_HINTS:
            raise ReportRejected(
                "hint-invalid",
                f"hint 'suspected' must be one of {', '.join(SUSPECTED_HINTS)}, not {value[:40]!r}",
            )
        kept[name] = value.strip()
    return kept or None


def check_email(email: str) -> str:
    """`email` stripped, if it looks like an address; ReportRejected otherwise."""
    text = email.strip()
    if len(text) > MAX_EMAIL or not _EMAIL.match(text):
        raise ReportRejected("email-invalid", "the feedback email is not a valid address")
    return text


def create_report(
    store: Store,
    urls: Sequence[str],
    *,
    channel: str,
    reporter: str | None = None,
    description: str | None = None,
    hints: Mapping[str, Any] | None = None,
    email: str | None = None,
    language: str | None = None,
    email_key: bytes | None = None,
    enqueue: bool = True,
) -> NewReport:
    """Check and save a report with its URLs (one transaction, before any fetch), audit it
    without the reporter's data, and queue its processing when `enqueue`."""
    if channel not in REPORT_CHANNELS:
        raise ReportRejected("channel-invalid", f"unknown channel {channel!r}")
    kept = check_urls(urls)
    text = (description or "").strip() or None
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise ReportRejected(
            "description-too-long",
            f"the description is {len(text)} characters long; at most {MAX_DESCRIPTION} are taken",
        )
    clean_hints = _check_hints(hints)
    address = (email or "").strip() or None
    sealed: bytes | None = None
    if address is not None:
        address = check_email(address)
        if email_key is None:
            raise ReportRejected(
                "email-without-key", "a feedback email cannot be stored without the hotline key"
            )
        sealed = seal(email_key, address.encode("utf-8"), aad=EMAIL_AAD)
    lang = (language or "").strip() or None
    if lang is not None and not _LANGUAGE.match(lang):
        raise ReportRejected("language-invalid", f"{lang[:20]!r} is not a language tag")
    code = new_tracking_code()
    with store.session() as session:
        report = Report(
            tracking_hash=tracking_hash(code),
            channel=channel,
            reporter=reporter,
            language=lang.lower() if lang else None,
            description=text,
            hints=clean_hints,
            email_encrypted=sealed,
        )
        session.add(report)
        session.flush()
        rows = [
            ReportUrl(report_id=report.id, position=position, url=url)
            for position, url in enumerate(kept)
        ]
        session.add_all(rows)
        session.flush()
        audit.record(
            session,
            actor=reporter or "anonymous",
            action="report.create",
            object_type="report",
            object_id=report.id,
            details={"channel": channel, "urls": len(rows)},
        )
        new = NewReport(id=report.id, tracking_code=code, url_ids=tuple(r.id for r in rows))
    if enqueue:
        queue_report(store, new.id)
    return new


def queue_report(store: Store, report_id: int) -> None:
    """Queue the processing of a saved report (a `hotline-report` job)."""

    enqueue_job(store, JOB_KIND, {"report_id": report_id}, actor="hotline")


def report_status(store: Store, tracking_code: str) -> ReportStatus | None:
    """How far each URL of the report with this tracking code got; None if no report has it."""
    if not normalise_tracking_code(tracking_code):
        return None
    with store.session() as session:
        report = session.scalars(
            select(Report).where(Report.tracking_hash == tracking_hash(tracking_code))
        ).first()
        if report is None:
            return None
        rows = session.scalars(
            select(ReportUrl)
            .where(ReportUrl.report_id == report.id)
            .order_by(ReportUrl.position, ReportUrl.id)
        ).all()
        return ReportStatus(
            received_at=report.received_at,
            urls=tuple(
                UrlStatus(position=r.position + 1, url=r.url, state=PUBLIC_STATES[r.state])
                for r in rows
            ),
        )


def report_urls(store: Store, report_id: int) -> list[ReportUrlInfo]:
    """The URLs of one report, in the order given."""
    with store.session() as session:
        rows = session.scalars(
            select(ReportUrl)
            .where(ReportUrl.report_id == report_id)
            .order_by(ReportUrl.position, ReportUrl.id)
        ).all()
        return [_url_info(r) for r in rows]


def get_report_url(store: Store, url_id: int) -> ReportUrlInfo | None:
    """One report URL, or None."""
    with store.session() as session:
        row = session.get(ReportUrl, url_id)
        return _url_info(row) if row is not None else None


def _session_of(session_or_store: Session | Store) -> AbstractContextManager[Session]:
    if isinstance(session_or_store, Session):
        return nullcontext(session_or_store)
    return session_or_store.session()


def mark_url(
    session_or_store: Session | Store,
    url_id: int,
    state: str,
    *,
    error: str | None = None,
    final_url: str | None = None,
    content_type: str | None = None,
    trace: dict[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Move one report URL to `state`, in the caller's session (or a transaction of its own
    on a store). `fetched` and `fetch-failed` count an attempt; `fetch-failed` keeps `error`
    and, with `next_attempt_at`, when it is tried again; `traced` keeps `trace`. False if no
    URL has this id."""
    if state not in URL_STATES:
        raise ValueError(f"unknown report URL state {state!r}; the states are {URL_STATES}")
    now = utcnow()
    values: dict[str, Any] = {"state": state, "state_changed_at": now}
    if state in ("fetched", "fetch-failed"):
        values["attempts"] = ReportUrl.attempts + 1
    if state == "fetched":
        values["fetched_at"] = now
        values["last_error"] = None
    if error is not None:
        values["last_error"] = error[:2000]
    if final_url is not None:
        values["final_url"] = final_url
    if content_type is not None:
        values["content_type"] = content_type[:200]
    if trace is not None:
        values["trace"] = trace
        values["traced_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with _session_of(session_or_store) as session:
        result = session.execute(update(ReportUrl).where(ReportUrl.id == url_id).values(**values))
        return bool(getattr(result, "rowcount", 0))


def due_urls(store: Store, now: datetime, limit: int) -> list[ReportUrlInfo]:
    """URLs waiting for a fetch (`received`, or `fetch-failed` and due again by `now`),
    the longest waiting first."""
    with store.session() as session:
        rows = session.scalars(
            select(ReportUrl)
            .where(ReportUrl.state.in_(DUE_STATES), ReportUrl.next_attempt_at <= now)
            .order_by(ReportUrl.next_attempt_at, ReportUrl.id)
            .limit(limit)
        ).all()
        return [_url_info(r) for r in rows]


def failed_urls(
    store: Store, *, limit: int = 100, after_id: int | None = None
) -> list[ReportUrlInfo]:
    """URLs whose fetch failed (`fetch-failed`: waiting for a retry, or given up), with the
    reason, the attempts made and when the next one is due; by id, after `after_id`."""
    query = select(ReportUrl).where(ReportUrl.state == "fetch-failed").order_by(ReportUrl.id)
    if after_id is not None:
        query = query.where(ReportUrl.id > after_id)
    with store.session() as session:
        return [_url_info(r) for r in session.scalars(query.limit(limit))]
