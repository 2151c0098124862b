# Owns what a host does through its notice link: views, claims of removal and comments.
"""The host link: a tokenised, expiring link in every notice that lets the host (or CDN,
registrar, platform) see the notice without an account, say the content is removed, or
comment, as AbuseIO's ticket links do.

The writer of `notice_event`. The token is issued by `childguard.hotline.notices` when an
analyst confirms a notice; the store keeps only its SHA-256 and expiry. A token that is
unknown, altered or expired gets one answer, `LinkInvalid`, whichever it is.

- `open_link` answers the notice's public view: its reference, state, reason, the URLs and
  what the hotline's last check found for each, when it was sent; never an analyst's name,
  an image, a preview or the notifier's identity when it is withheld.
- `claim_removed` records the host's claim **once** (a second claim is refused with
  `AlreadyClaimed`) and brings each URL's next removal check forward to now
  (`childguard.hotline.routing.schedule_check`). It never marks anything removed: only a
  removal check (`childguard.hotline.removal`) does, so a claim is verified, never trusted.
- `comment` keeps the host's comment on the notice for the analysts.

Every use, viewing included, is a `notice_event` row and an audit event (actor
`host-link`), with no address or user agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from childguard.errors import ChildguardError
from childguard.hotline import notices, routing
from childguard.store import audit
from childguard.store.db import Store
from childguard.store.referral_models import ItemRoute, Notice, NoticeEvent

ACTOR = "host-link"
MAX_COMMENT = 2000
# What a host is told of each URL, from its route's state.
PUBLIC_STATES = {
    "assessed": "online",
    "referred": "online",
    "forwarded": "online",
    "notified": "online",
    "removed": "removed; the removal is being verified",
    "verified": "removed (verified)",
    "closed": "no action needed",
}


class LinkInvalid(ChildguardError):
    """The link is unknown, altered or expired (one answer for all three)."""

    def __init__(self) -> None:
        super().__init__("this notice link is not valid or has expired")


class AlreadyClaimed(ChildguardError):
    """The host already said the content is removed through this link."""


class InvalidComment(ChildguardError):
    """A comment that is empty or too long."""


@dataclass(frozen=True)
class PublicUrl:
    url: str
    status: str
    last_checked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "last_checked_at": self.last_checked_at.isoformat() if self.last_checked_at else None,
        }


@dataclass(frozen=True)
class PublicNotice:
    """A notice as its host sees it through the link."""

    reference: str
    state: str
    reason: str
    urls: list[PublicUrl]
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    sends: int
    link_expires_at: datetime
    claimed_at: datetime | None
    comments: list[tuple[datetime, str]]

    @property
    def claimed(self) -> bool:
        return self.claimed_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "state": self.state,
            "reason": self.reason,
            "urls": [u.to_dict() for u in self.urls],
            "first_sent_at": self.first_sent_at.isoformat() if self.first_sent_at else None,
            "last_sent_at": self.last_sent_at.isoformat() if self.last_sent_at else None,
            "sends": self.sends,
            "link_expires_at": self.link_expires_at.isoformat(),
            "claimed": self.claimed,
            "claimed_at": self.claimed_at.isoformat() if self.claimed_at else None,
            "comments": [{"at": at.isoformat(), "comment": text} for at, text in self.comments],
        }


def _valid(session: Session, token: str, now: datetime, *, lock: bool = False) -> Notice:
    """The notice the token opens; LinkInvalid when it is unknown, altered or expired."""
    if not token or len(token) > 200:
        raise LinkInvalid()
    row = notices.notice_by_token(session, token)
    if row is None or row.token_expires_at is None or row.token_expires_at <= now:
        raise LinkInvalid()
    if lock:
        session.refresh(row, with_for_update=True)
    return row


def _event(session: Session, row: Notice, kind: str, at: datetime, text: str | None) -> None:
    session.add(NoticeEvent(notice_id=row.id, kind=kind, comment=text, at=at))
    audit.record(
        session,
        actor=ACTOR,
        action=f"notice.link_{kind.replace('-', '_')}",
        object_type="notice",
        object_id=row.id,
        details={"reference": row.reference, "comment": bool(text)},
    )


def _claimed_at(session: Session, notice_id: int) -> datetime | None:
    return session.scalar(
        select(NoticeEvent.at)
        .where(NoticeEvent.notice_id == notice_id, NoticeEvent.kind == "claimed-removed")
        .order_by(NoticeEvent.id)
        .limit(1)
    )


def _public(session: Session, row: Notice) -> PublicNotice:
    ids = notices.route_ids_of(session, row.id)
    routes = list(session.scalars(select(ItemRoute).where(ItemRoute.id.in_(ids))))
    urls = [
        PublicUrl(r.url, PUBLIC_STATES.get(r.state, "online"), r.last_check_at)
        for r in sorted(routes, key=lambda r: r.id)
    ]
    comments = [
        (e.at, e.comment or "")
        for e in session.scalars(
            select(NoticeEvent)
            .where(NoticeEvent.notice_id == row.id, NoticeEvent.kind == "comment")
            .order_by(NoticeEvent.id)
        )
    ]
    assert row.token_expires_at is not None
    return PublicNotice(
        reference=row.reference,
        state=row.state,
        reason=row.reason,
        urls=urls,
        first_sent_at=row.first_sent_at,
        last_sent_at=row.last_sent_at,
        sends=row.sends,
        link_expires_at=row.token_expires_at,
        claimed_at=_claimed_at(session, row.id),
        comments=comments,
    )


def open_link(store: Store, token: str, *, now: datetime) -> PublicNotice:
    """The notice the link shows (the view is recorded); LinkInvalid for a bad link."""
    with store.session() as session:
        row = _valid(session, token, now)
        _event(session, row, "viewed", now, None)
        session.flush()
        return _public(session, row)


def claim_removed(
    store: Store, token: str, *, now: datetime, comment: str | None = None
) -> PublicNotice:
    """The host says the content is removed: recorded once, and each URL's removal check
    is brought forward to `now`. AlreadyClaimed for a second claim."""
    text = _checked_comment(comment, required=False)
    with store.session() as session:
        row = _valid(session, token, now, lock=True)
        earlier = _claimed_at(session, row.id)
        if earlier is not None:
            raise AlreadyClaimed(
                f"the removal of {row.reference} was reported already, at "
                f"{earlier:%Y-%m-%d %H:%M} UTC; our removal check will confirm it"
            )
        _event(session, row, "claimed-removed", now, text)
        ids = notices.route_ids_of(session, row.id)
        if ids:
            routing.schedule_check(session, ids, at=now)
        session.flush()
        return _public(session, row)


def _checked_comment(text: str | None, *, required: bool) -> str | None:
    value = (text or "").strip()
    if not value:
        if required:
            raise InvalidComment("write a comment first")
        return None
    if len(value) > MAX_COMMENT:
        raise InvalidComment(f"a comment is at most {MAX_COMMENT} characters")
    if "\x00" in value:
        raise InvalidComment("a comment may not hold a NUL character")
    return value


def comment(store: Store, token: str, text: str, *, now: datetime) -> PublicNotice:
    """The host's comment on the notice, kept for the analysts."""
    value = _checked_comment(text, required=True)
    with store.session() as session:
        row = _valid(session, token, now)
        _event(session, row, "comment", now, value)
        session.flush()
        return _public(session, row)
