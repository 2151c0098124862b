# Owns takedown notices to hosts: drafts, each sending, re-notices, escalation and closing.
"""Notice-and-takedown: a notice to whoever can remove content (the host, a CDN, a registrar
or a platform), covering one or more confirmed routes (URLs) of that one recipient.

The writer of `notice` and `notice_send`. A notice is made as a `draft` (`create_notice`,
reference `CG-N-<year>-<id:06d>`) from routes an analyst has confirmed
(`childguard.hotline.routing.confirm`); nothing is sent until an analyst confirms the notice
itself (`send_notice`, which records `confirmed_by`/`confirmed_at`, issues the host link and
sends sequence 1). From then on it is `open`: `send_due` re-sends it every renotice interval
(the `hotline_renotice_hours` setting) while any of its URLs is still online, escalates it
once `escalate_after` notices have gone unanswered, and closes it when every URL is verified
removed (or its route closed).

The message (`render_notice`, plain text in English; the webhook's JSON carries the same
fields) has what Article 16 of the Digital Services Act asks of a notice: the exact URLs, the
reason (the assessment's outcome in words, never a description of the content), a statement
of good faith and the notifier's name and email, unless withheld because the notice concerns
a child sexual abuse offence (Art. 16(2)(c)). It also carries each URL's SHA-256 and PDQ, when
it was captured, a request to preserve the content and its records for law enforcement, the
reference, and the host link (`childguard.hotline.host_links`).

**Crash safety.** Each sending is a `notice_send` row, unique by (notice, sequence), committed
as `sending` before anything goes out. After the send it becomes `sent` in the same
transaction as the notice's count and the routes' `notified` state
(`routing.mark_notified`), or `failed` with the error when the transport refused it; only a
`failed` sending is tried again, with the same sequence (and so the same email Message-ID
and webhook Idempotency-Key): `RETRY_FAILED_AFTER` later when the failure may pass (a server
down, a 5xx), a renotice interval later when it may not (a refused recipient or address).
A `sending` row older than `UNCERTAIN_AFTER` that a later round finds was left by a process
that died between the send and the record: it becomes `uncertain`, counts as sent, and is
never sent again.

**The host link's token** is never stored: the notice keeps only its SHA-256 and expiry. It
is derived, HMAC-SHA256 under a key from the service's secret over the notice id and the
link's expiry, so each re-notice carries the same link without the token being kept
anywhere. A re-notice sent when the link would expire before the next one issues a new link
(the old one stops working), so the latest notice's link always works.

A notice's routes are its `notice_route` rows, written when it is made (`route_ids_of`,
`notices_for_route`); `item_route.notice_id` names only the latest notice of a route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.alerts.email import AlertDeliveryError, SmtpSettings, send_email
from childguard.alerts.subscriptions import publish
from childguard.alerts.webhook import RetryPolicy, send_webhook, validate_webhook_url
from childguard.errors import ChildguardError, InputFormatError
from childguard.hotline import destinations, routing
from childguard.hotline.notice_letters import (
    ILLEGAL_OUTCOMES,
    NoticeMessage,
    NoticeUrl,
    default_reason,
    render_notice,
)
from childguard.log import get_logger
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item, ItemPlace, ReportUrl
from childguard.store.referral_models import (
    NOTICE_CHANNELS,
    NOTICE_RECIPIENTS,
    HotlineDestination,
    ItemRoute,
    Notice,
    NoticeEvent,
    NoticeRoute,
    NoticeSend,
)

log = get_logger(__name__)

REFERENCE_PREFIX = "CG-N"
UNCERTAIN_AFTER = timedelta(minutes=1)
RETRY_FAILED_AFTER = timedelta(minutes=5)
LINK_KEY_PURPOSE = "host-link"
WEBHOOK_KEY_PURPOSE = "notice-webhook"
ESCALATED_EVENT = "hotline.notice.escalated"
CREATE_ACTION = "notice.create"
MAX_ROUTES = 100
MAX_REASON = 2000
MAX_NAME = 200
# Routes in these states need no more notices; a notice whose routes are all settled closes.
QUIET_STATES = ("removed", "verified", "closed")
SETTLED_STATES = ("verified", "closed")
_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$")


class NoticeNotFound(ChildguardError):
    """No notice has this id."""


class InvalidNotice(InputFormatError):
    """A notice cannot be made as asked; the message says why."""


class NoticeNotDraft(ChildguardError):
    """The notice was confirmed and sent already; re-notices go out by themselves."""


@dataclass(frozen=True)
class NoticeSettings:
    """What notices need from the deployment: who they are from, how often they are re-sent,
    when they escalate, and the host link (its base URL, its lifetime and the key that
    derives its token)."""

    link_key: bytes
    link_base: str = "http://127.0.0.1:8000"
    notifier_name: str = "childguard hotline"
    notifier_email: str | None = None
    renotice: timedelta = timedelta(hours=24)
    escalate_after: int = 3
    link_days: int = 30


@dataclass
class NoticeTransport:
    """How notices leave: SMTP for the `email` channel; for `webhook`, the secret each
    address signs with, the address policy and the HTTP client. `after_send(notice_id,
    sequence)` runs once a sending went out and before it is recorded."""

    smtp: SmtpSettings | None = None
    webhook_secret: Callable[[str], str] | None = None
    check_url: Callable[[str], None] | None = None
    timeout_s: float = 15.0
    after_send: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class SendInfo:
    sequence: int
    state: str
    started_at: datetime
    finished_at: datetime | None
    message_id: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "message_id": self.message_id,
            "error": self.error,
        }


@dataclass(frozen=True)
class EventInfo:
    kind: str
    at: datetime
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat(), "comment": self.comment}


@dataclass(frozen=True)
class NoticeInfo:
    id: int
    reference: str
    recipient_kind: str
    recipient_name: str | None
    channel: str
    address: str
    reason: str
    identity_withheld: bool
    preservation_request: bool
    state: str
    sends: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    next_send_at: datetime | None
    escalated_at: datetime | None
    link_expires_at: datetime | None
    created_by: str
    created_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    closed_at: datetime | None
    route_ids: list[int]
    sendings: list[SendInfo] = field(default_factory=list)
    events: list[EventInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (
            "id",
            "reference",
            "recipient_kind",
            "recipient_name",
            "channel",
            "address",
            "reason",
            "identity_withheld",
            "preservation_request",
            "state",
            "sends",
            "first_sent_at",
            "last_sent_at",
            "next_send_at",
            "escalated_at",
            "link_expires_at",
            "created_by",
            "created_at",
            "confirmed_by",
            "confirmed_at",
            "closed_at",
        ):
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["escalated"] = self.escalated_at is not None
        out["route_ids"] = list(self.route_ids)
        out["sendings"] = [s.to_dict() for s in self.sendings]
        out["events"] = [e.to_dict() for e in self.events]
        return out


@dataclass
class DueRound:
    """What one `send_due` round did, by notice id."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "uncertain": self.uncertain,
            "escalated": self.escalated,
            "closed": self.closed,
            "waiting": self.waiting,
        }


# ---------------------------------------------------------------------- the host link


def link_token(link_key: bytes, notice_id: int, expires_at: datetime) -> str:
    """The host link's token of a notice whose link expires at `expires_at`: 32 bytes of
    HMAC-SHA256, URL-safe base64."""
    stamp = int(expires_at.astimezone(UTC).timestamp())
    mac = hmac.new(link_key, f"host-link:{notice_id}:{stamp}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def token_hash(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def host_link(settings: NoticeSettings, notice_id: int, expires_at: datetime) -> str:
    """The URL a host opens to see a notice and answer it."""
    token = link_token(settings.link_key, notice_id, expires_at)
    return f"{settings.link_base.rstrip('/')}/host/notice/{token}"


def webhook_secret(service_key: bytes, address: str) -> str:
    """The secret of the webhook `address` that no platform destination owns (HMAC-SHA256
    of the address under the service's key, hex)."""
    message = f"{WEBHOOK_KEY_PURPOSE}:{address}".encode()
    return hmac.new(service_key, message, hashlib.sha256).hexdigest()


def signing_secret(store: Store, service_key: bytes, address: str) -> str:
    """The secret a webhook notice to `address` is signed with: the platform destination's
    own when one has exactly this address (`destinations.platform_at`), else the address's
    (`webhook_secret`)."""
    platform = destinations.platform_at(store, address)
    if platform is not None:
        return destinations.destination_secret(service_key, platform.id)
    return webhook_secret(service_key, address)


def reveal_webhook_secret(
    store: Store, service_key: bytes, address: str, *, actor: str
) -> tuple[str, destinations.DestinationInfo | None]:
    """The secret webhook notices to `address` are signed with, for its receiver, and the
    platform destination it belongs to (None when none does); every reveal is audited."""
    checked = _checked_address("webhook", address)
    platform = destinations.platform_at(store, checked)
    if platform is not None:
        return destinations.reveal_secret(store, service_key, platform.id, actor=actor)[1], platform
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action="notice.webhook_secret_reveal",
            object_type="notice-webhook",
            object_id=hashlib.sha256(checked.encode()).hexdigest(),
            details={"address": checked},
        )
    return webhook_secret(service_key, checked), None


# ---------------------------------------------------------------------- reading


def _reference(notice_id: int, at: datetime) -> str:
    return f"{REFERENCE_PREFIX}-{at.year}-{notice_id:06d}"


def route_ids_of(session: Session, notice_id: int) -> list[int]:
    """The routes a notice covers, in id order."""
    return list(
        session.scalars(
            select(NoticeRoute.route_id)
            .where(NoticeRoute.notice_id == notice_id)
            .order_by(NoticeRoute.route_id)
        )
    )


def _send_info(row: NoticeSend) -> SendInfo:
    return SendInfo(
        row.sequence, row.state, row.started_at, row.finished_at, row.message_id, row.error
    )


def _info(session: Session, row: Notice, *, detail: bool = False) -> NoticeInfo:
    sendings: list[SendInfo] = []
    events: list[EventInfo] = []
    if detail:
        sendings = [
            _send_info(s)
            for s in session.scalars(
                select(NoticeSend)
                .where(NoticeSend.notice_id == row.id)
                .order_by(NoticeSend.sequence)
            )
        ]
        events = [
            EventInfo(e.kind, e.at, e.comment)
            for e in session.scalars(
                select(NoticeEvent).where(NoticeEvent.notice_id == row.id).order_by(NoticeEvent.id)
            )
        ]
    return NoticeInfo(
        id=row.id,
        reference=row.reference,
        recipient_kind=row.recipient_kind,
        recipient_name=row.recipient_name,
        channel=row.channel,
        address=row.address,
        reason=row.reason,
        identity_withheld=row.identity_withheld,
        preservation_request=row.preservation_request,
        state=row.state,
        sends=row.sends,
        first_sent_at=row.first_sent_at,
        last_sent_at=row.last_sent_at,
        next_send_at=row.next_send_at,
        escalated_at=row.escalated_at,
        link_expires_at=row.token_expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        closed_at=row.closed_at,
        route_ids=route_ids_of(session, row.id),
        sendings=sendings,
        events=events,
    )


def _row(session: Session, notice_id: int, *, lock: bool = False) -> Notice:
    row = session.get(Notice, notice_id, with_for_update=lock)
    if row is None:
        raise NoticeNotFound(f"no notice {notice_id}")
    return row


def get_notice(store: Store, notice_id: int) -> NoticeInfo:
    """A notice with its sendings and the host's events."""
    with store.session() as session:
        return _info(session, _row(session, notice_id), detail=True)


def notices_for_route(store: Store, route_id: int) -> list[NoticeInfo]:
    """Every notice made for a route, newest first."""
    with store.session() as session:
        rows = session.scalars(
            select(Notice)
            .join(NoticeRoute, NoticeRoute.notice_id == Notice.id)
            .where(NoticeRoute.route_id == route_id)
            .order_by(Notice.id.desc())
        ).all()
        return [_info(session, row) for row in rows]


def list_notices(
    store: Store,
    *,
    state: str | None = None,
    escalated: bool | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[NoticeInfo]:
    """Notices in id order, filtered; `after_id` pages."""
    query = select(Notice).where(Notice.id > after_id)
    if state is not None:
        query = query.where(Notice.state == state)
    if escalated is not None:
        column = Notice.escalated_at
        query = query.where(column.is_not(None) if escalated else column.is_(None))
    with store.session() as session:
        rows = session.scalars(query.order_by(Notice.id).limit(limit)).all()
        return [_info(session, row) for row in rows]


# ---------------------------------------------------------------------- making a notice


def _trace_of(session: Session, route: ItemRoute) -> dict[str, Any]:
    place = session.get(ItemPlace, route.place_id)
    if place is None or place.report_url_id is None:
        return {}
    url = session.get(ReportUrl, place.report_url_id)
    return dict(url.trace or {}) if url is not None else {}


def _default_recipient(
    session: Session, routes: Sequence[ItemRoute], channel: str
) -> tuple[str | None, str | None]:
    """The address and name a notice goes to when the analyst gives none: the platform
    destination's (for its channel), else the RDAP abuse contact of the host trace."""
    for route in routes:
        if route.destination_id is None:
            continue
        destination = session.get(HotlineDestination, route.destination_id)
        if destination is None or destination.kind != "platform" or not destination.address:
            continue
        fits = (
            destination.channel == "email"
            if channel == "email"
            else destination.channel
            in (
                "webhook",
                "api",
            )
        )
        if fits:
            return destination.address, destination.name
    if channel == "email":
        for route in routes:
            abuse = _trace_of(session, route).get("abuse")
            if isinstance(abuse, dict) and abuse.get("email"):
                name = abuse.get("name") or abuse.get("handle")
                return str(abuse["email"]), str(name) if name else None
    return None, None


def _checked_address(channel: str, address: str) -> str:
    value = address.strip()
    if channel == "email":
        if not _EMAIL.match(value):
            raise InvalidNotice(f"address {value[:200]!r} is not an email address")
        return value
    try:
        return validate_webhook_url(value)
    except ValueError as exc:
        raise InvalidNotice(str(exc)) from None


def _notice_routes(session: Session, route_ids: Sequence[int]) -> list[ItemRoute]:
    if not route_ids:
        raise InvalidNotice("a notice needs at least one route")
    unique = list(dict.fromkeys(int(r) for r in route_ids))
    if len(unique) > MAX_ROUTES:
        raise InvalidNotice(f"a notice covers at most {MAX_ROUTES} routes")
    rows: list[ItemRoute] = []
    for route_id in unique:
        row = session.get(ItemRoute, route_id)
        if row is None:
            raise routing.RouteNotFound(f"no route {route_id}")
        if row.confirmed_at is None:
            raise routing.RouteNotConfirmed(f"route {route_id} is not confirmed by an analyst")
        if row.route == "closed" or row.state == "closed":
            raise InvalidNotice(f"route {route_id} is closed; nothing is to be taken down")
        if row.state == "verified":
            raise InvalidNotice(f"route {route_id} is verified removed already")
        rows.append(row)
    return rows


def _one_recipient(recipient_kind: str, routes: Sequence[ItemRoute]) -> None:
    """All the URLs of one notice belong to one recipient: one host (one platform)."""
    if recipient_kind == "platform":
        destinations = {r.destination_id for r in routes}
        if len(destinations) == 1 and None not in destinations:
            return
    hosts = sorted({r.host for r in routes})
    if len(hosts) > 1:
        raise InvalidNotice(
            f"a notice goes to one recipient; these routes are on several hosts: {hosts[:5]}"
        )


def create_notice(
    store: Store,
    route_ids: Sequence[int],
    *,
    recipient_kind: str,
    channel: str,
    actor: str,
    address: str | None = None,
    recipient_name: str | None = None,
    reason: str | None = None,
    identity_withheld: bool | None = None,
    now: datetime | None = None,
) -> NoticeInfo:
    """A draft notice for confirmed routes of one recipient. Without `address` the
    platform destination's or the host trace's abuse contact is used; without `reason`, the
    outcome in words; `identity_withheld` defaults to whether any URL is child sexual abuse
    material. Nothing is sent (see `send_notice`)."""
    now = now or utcnow()
    if recipient_kind not in NOTICE_RECIPIENTS:
        raise InvalidNotice(
            f"recipient_kind {recipient_kind!r} is not one of {', '.join(NOTICE_RECIPIENTS)}"
        )
    if channel not in NOTICE_CHANNELS:
        raise InvalidNotice(f"channel {channel!r} is not one of {', '.join(NOTICE_CHANNELS)}")
    for field_name, value in (
        ("address", address),
        ("recipient_name", recipient_name),
        ("reason", reason),
    ):
        if value is not None and "\x00" in value:
            raise InvalidNotice(f"{field_name}: a NUL character is not allowed")
    if reason is not None and len(reason.strip()) > MAX_REASON:
        raise InvalidNotice(f"the reason is over {MAX_REASON} characters")
    if recipient_name is not None and len(recipient_name.strip()) > MAX_NAME:
        raise InvalidNotice(f"the recipient's name is over {MAX_NAME} characters")
    with store.session() as session:
        routes = _notice_routes(session, route_ids)
        _one_recipient(recipient_kind, routes)
        name = recipient_name.strip() if recipient_name and recipient_name.strip() else None
        if address is None or not address.strip():
            address, known_name = _default_recipient(session, routes, channel)
            if address is None:
                raise InvalidNotice(f"no {channel} address is known for {routes[0].host}: give one")
            name = name or known_name
        checked = _checked_address(channel, address)
        outcomes = [r.outcome for r in routes]
        withheld = (
            any(o in ILLEGAL_OUTCOMES for o in outcomes)
            if identity_withheld is None
            else identity_withheld
        )
        text = reason.strip() if reason and reason.strip() else default_reason(outcomes)
        row = Notice(
            reference=f"pending-{uuid.uuid4().hex}",
            recipient_kind=recipient_kind,
            recipient_name=name[:MAX_NAME] if name else None,
            channel=channel,
            address=checked,
            reason=text,
            identity_withheld=withheld,
            preservation_request=True,
            state="draft",
            created_by=actor,
            created_at=now,
        )
        session.add(row)
        session.flush()
        row.reference = _reference(row.id, now)
        session.add_all(NoticeRoute(notice_id=row.id, route_id=r.id) for r in routes)
        audit.record(
            session,
            actor=actor,
            action=CREATE_ACTION,
            object_type="notice",
            object_id=row.id,
            details={
                "routes": [r.id for r in routes],
                "recipient_kind": recipient_kind,
                "channel": channel,
                "reference": row.reference,
            },
        )
        session.flush()
        return _info(session, row)


# ---------------------------------------------------------------------- the message


def _urls(session: Session, route_ids: Sequence[int]) -> list[NoticeUrl]:
    out: list[NoticeUrl] = []
    for route_id in route_ids:
        route = session.get(ItemRoute, route_id)
        if route is None:
            continue
        item = session.get(Item, route.item_id)
        place = session.get(ItemPlace, route.place_id)
        captured = place.first_seen if place is not None else route.reported_at
        out.append(
            NoticeUrl(
                route_id=route.id,
                url=route.url,
                sha256=item.sha256 if item is not None else None,
                pdq=item.pdq if item is not None else None,
                captured_at=captured,
                outcome=route.outcome,
            )
        )
    return out


def _message(
    session: Session, row: Notice, sequence: int, settings: NoticeSettings, at: datetime
) -> NoticeMessage:
    link = (
        host_link(settings, row.id, row.token_expires_at)
        if row.token_expires_at is not None
        else None
    )
    return render_notice(
        reference=row.reference,
        sequence=sequence,
        recipient_kind=row.recipient_kind,
        recipient_name=row.recipient_name,
        urls=_urls(session, route_ids_of(session, row.id)),
        reason=row.reason,
        identity_withheld=row.identity_withheld,
        notifier_name=settings.notifier_name,
        notifier_email=settings.notifier_email,
        link=link,
        link_expires_at=row.token_expires_at,
        renotice=settings.renotice,
        first_sent_at=row.first_sent_at,
        sent_at=at,
    )


def message_of(store: Store, notice_id: int, settings: NoticeSettings) -> NoticeMessage:
    """The message the next sending of a notice would carry (a preview for the analyst)."""
    with store.session() as session:
        row = _row(session, notice_id)
        return _message(session, row, row.sends + 1, settings, utcnow())


# ---------------------------------------------------------------------- sending


def _deliver(
    channel: str,
    address: str,
    message: NoticeMessage,
    transport: NoticeTransport,
    settings: NoticeSettings,
) -> str:
    """Send one message; its Message-ID (email) or `HTTP <status>` (webhook)."""
    if channel == "email":
        if transport.smtp is None:
            raise AlertDeliveryError("no SMTP server is configured for notices", retryable=True)
        smtp = transport.smtp
        if settings.notifier_email:
            smtp = replace(smtp, sender=settings.notifier_email)
        return send_email(
            smtp,
            [address],
            message.subject,
            message.body,
            message_id=message.message_id,
            reply_to=settings.notifier_email,
        )
    if transport.webhook_secret is None:
        raise AlertDeliveryError("no webhook secret is configured for notices", retryable=True)
    if transport.check_url is not None:
        try:
            transport.check_url(address)
        except ChildguardError as exc:
            raise AlertDeliveryError(f"webhook address refused: {exc}", retryable=False) from None
    headers = {"Idempotency-Key": message.idempotency_key}
    with httpx.Client(
        timeout=transport.timeout_s, follow_redirects=False, headers=headers
    ) as client:
        result = send_webhook(
            address,
            transport.webhook_secret(address),
            message.payload,
            policy=RetryPolicy(attempts=1, timeout_s=transport.timeout_s),
            delivery_id=message.idempotency_key,
            client=client,
        )
    return f"HTTP {result.status_code}"


def _record_sent(
    session: Session,
    row: Notice,
    sequence: int,
    *,
    at: datetime,
    settings: NoticeSettings,
    action: str,
    message_id: str | None,
) -> None:
    """The notice's count and times after sending `sequence`, and its routes `notified`."""
    row.sends = max(row.sends, sequence)
    row.first_sent_at = row.first_sent_at or at
    row.last_sent_at = at
    row.next_send_at = at + settings.renotice
    live = [
        r.id
        for r in session.scalars(
            select(ItemRoute).where(ItemRoute.id.in_(route_ids_of(session, row.id)))
        )
        if r.state != "closed" and r.confirmed_at is not None
    ]
    if live:
        routing.mark_notified(session, live, row.id, at=at)
    audit.record(
        session,
        actor="system",
        action=action,
        object_type="notice",
        object_id=row.id,
        details={"sequence": sequence, "channel": row.channel, "message_id": message_id},
    )


def _claim_sending(
    store: Store, notice_id: int, *, now: datetime, settings: NoticeSettings
) -> tuple[str, int, NoticeMessage | None, str, str]:
    """Commit the `sending` row of the notice's next sequence before anything goes out.
    (`go`, sequence, message, channel, address) when this caller is to send it; (`uncertain`,
    ...) when a stale `sending` row was resolved instead; (`busy`, ...) when another worker
    holds it."""
    with store.session() as session:
        row = _row(session, notice_id, lock=True)
        sequence = row.sends + 1
        found = session.scalar(
            select(NoticeSend).where(
                NoticeSend.notice_id == notice_id, NoticeSend.sequence == sequence
            )
        )
        if found is None:
            try:
                with session.begin_nested():
                    session.add(
                        NoticeSend(
                            notice_id=notice_id, sequence=sequence, state="sending", started_at=now
                        )
                    )
                    session.flush()
            except IntegrityError:
                return "busy", sequence, None, row.channel, row.address
        elif found.state == "failed":
            claimed = session.execute(
                update(NoticeSend)
                .where(NoticeSend.id == found.id, NoticeSend.state == "failed")
                .values(state="sending", started_at=now, finished_at=None, error=None)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return "busy", sequence, None, row.channel, row.address
        elif found.state == "sending" and found.started_at <= now - UNCERTAIN_AFTER:
            found.state = "uncertain"
            found.finished_at = now
            found.error = "the process died between the send and its record; counted as sent"
            _record_sent(
                session,
                row,
                sequence,
                at=found.started_at,
                settings=settings,
                action="notice.send_uncertain",
                message_id=found.message_id,
            )
            return "uncertain", sequence, None, row.channel, row.address
        else:
            return "busy", sequence, None, row.channel, row.address
        if row.token_expires_at is None or row.token_expires_at <= now + settings.renotice:
            _issue_link(session, row, now=now, settings=settings, actor="system")
        message = _message(session, row, sequence, settings, now)
        return "go", sequence, message, row.channel, row.address


def _send_next(
    store: Store,
    notice_id: int,
    *,
    now: datetime,
    transport: NoticeTransport,
    settings: NoticeSettings,
) -> str:
    """Send the notice's next sequence, crash-safe; `sent`, `failed`, `uncertain` or `busy`."""
    outcome, sequence, message, channel, address = _claim_sending(
        store, notice_id, now=now, settings=settings
    )
    if outcome != "go" or message is None:
        return outcome
    try:
        sent_id = _deliver(channel, address, message, transport, settings)
    except (AlertDeliveryError, ValueError) as exc:
        error = str(exc)[:2000]
        retryable = isinstance(exc, AlertDeliveryError) and exc.retryable
        retry_at = now + (RETRY_FAILED_AFTER if retryable else settings.renotice)
        with store.session() as session:
            session.execute(
                update(NoticeSend)
                .where(
                    NoticeSend.notice_id == notice_id,
                    NoticeSend.sequence == sequence,
                    NoticeSend.state == "sending",
                )
                .values(state="failed", finished_at=utcnow(), error=error)
            )
            session.execute(
                update(Notice).where(Notice.id == notice_id).values(next_send_at=retry_at)
            )
            audit.record(
                session,
                actor="system",
                action="notice.send_failed",
                object_type="notice",
                object_id=notice_id,
                details={"sequence": sequence, "error": error, "retryable": retryable},
            )
        log.warning("notice.send_failed", notice=notice_id, sequence=sequence, error=error)
        return "failed"
    if transport.after_send is not None:
        transport.after_send(notice_id, sequence)
    with store.session() as session:
        row = _row(session, notice_id, lock=True)
        done = session.execute(
            update(NoticeSend)
            .where(
                NoticeSend.notice_id == notice_id,
                NoticeSend.sequence == sequence,
                NoticeSend.state == "sending",
            )
            .values(state="sent", finished_at=utcnow(), message_id=sent_id[:200])
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            _record_sent(
                session,
                row,
                sequence,
                at=now,
                settings=settings,
                action="notice.send",
                message_id=sent_id,
            )
    return "sent"


def _issue_link(
    session: Session, row: Notice, *, now: datetime, settings: NoticeSettings, actor: str
) -> None:
    """A new host link for the notice, working `settings.link_days` from `now`; the one it
    replaces stops working."""
    expires = (now + timedelta(days=settings.link_days)).replace(microsecond=0)
    row.token_expires_at = expires
    row.token_hash = token_hash(link_token(settings.link_key, row.id, expires))
    audit.record(
        session,
        actor=actor,
        action="notice.link_issue",
        object_type="notice",
        object_id=row.id,
        details={"expires_at": expires.isoformat()},
    )


def send_notice(
    store: Store,
    notice_id: int,
    *,
    actor: str,
    transport: NoticeTransport,
    settings: NoticeSettings,
    now: datetime | None = None,
) -> NoticeInfo:
    """The analyst's confirmation of a draft notice: it becomes `open`, its host link is
    issued (working `settings.link_days`), and its first sending goes out. A sending that
    failed is tried again by the next `send_due` round."""
    now = now or utcnow()
    with store.session() as session:
        row = _row(session, notice_id, lock=True)
        if row.state != "draft":
            raise NoticeNotDraft(
                f"notice {row.reference} was confirmed already "
                f"by {row.confirmed_by}; re-notices go out by themselves"
            )
        route_ids = route_ids_of(session, row.id)
        _notice_routes(session, route_ids)
        row.state = "open"
        row.confirmed_by = actor
        row.confirmed_at = now
        row.next_send_at = now
        audit.record(
            session,
            actor=actor,
            action="notice.confirm",
            object_type="notice",
            object_id=row.id,
            details={"routes": route_ids},
        )
        _issue_link(session, row, now=now, settings=settings, actor=actor)
    _send_next(store, notice_id, now=now, transport=transport, settings=settings)
    return get_notice(store, notice_id)


def _route_states(session: Session, notice_id: int) -> list[str]:
    ids = route_ids_of(session, notice_id)
    return list(session.scalars(select(ItemRoute.state).where(ItemRoute.id.in_(ids))))


def close_settled(store: Store, *, now: datetime, limit: int = 500) -> list[int]:
    """Close every open notice whose URLs are all verified removed (or closed)."""
    closed: list[int] = []
    with store.session() as session:
        rows = session.scalars(
            select(Notice).where(Notice.state == "open").order_by(Notice.id).limit(limit)
        ).all()
        for row in rows:
            states = _route_states(session, row.id)
            if states and all(s in SETTLED_STATES for s in states):
                row.state = "closed"
                row.closed_at = now
                row.next_send_at = None
                audit.record(
                    session,
                    actor="system",
                    action="notice.close",
                    object_type="notice",
                    object_id=row.id,
                    details={"sends": row.sends},
                )
                closed.append(row.id)
    return closed


def _escalate(store: Store, notice_id: int, *, now: datetime, settings: NoticeSettings) -> bool:
    """Mark the notice escalated (once), audit it, and publish `hotline.notice.escalated`."""
    with store.session() as session:
        row = _row(session, notice_id, lock=True)
        if row.escalated_at is not None or row.sends < settings.escalate_after:
            return False
        row.escalated_at = now
        payload = {
            "event": ESCALATED_EVENT,
            "id": f"notice-escalated:{row.id}",
            "at": now.isoformat(),
            "notice": {
                "id": row.id,
                "reference": row.reference,
                "recipient_kind": row.recipient_kind,
                "recipient_name": row.recipient_name,
                "sends": row.sends,
                "first_sent_at": row.first_sent_at.isoformat() if row.first_sent_at else None,
                "escalated_at": now.isoformat(),
            },
        }
        audit.record(
            session,
            actor="system",
            action="notice.escalate",
            object_type="notice",
            object_id=row.id,
            details={"sends": row.sends, "escalate_after": settings.escalate_after},
        )
    publish(store, ESCALATED_EVENT, payload, [])
    return True


def send_due(
    store: Store,
    *,
    transport: NoticeTransport,
    settings: NoticeSettings,
    now: datetime,
    limit: int = 100,
) -> DueRound:
    """One round: close the notices that are settled, then re-send each open notice whose
    next sending is due and whose URLs are not all removed, escalating the ones that have
    gone `escalate_after` notices without removal. A sending left `sending` by a process
    that died is resolved `uncertain` here and never sent again."""
    result = DueRound(closed=close_settled(store, now=now))
    with store.session() as session:
        due = list(
            session.scalars(
                select(Notice.id)
                .where(
                    Notice.state == "open",
                    Notice.next_send_at.is_not(None),
                    Notice.next_send_at <= now,
                )
                .order_by(Notice.next_send_at, Notice.id)
                .limit(limit)
            )
        )
        quiet = {n for n in due if all(s in QUIET_STATES for s in _route_states(session, n))}
    for notice_id in due:
        if notice_id in quiet:
            result.waiting.append(notice_id)
            continue
        if _escalate(store, notice_id, now=now, settings=settings):
            result.escalated.append(notice_id)
        outcome = _send_next(store, notice_id, now=now, transport=transport, settings=settings)
        if outcome == "sent":
            result.sent.append(notice_id)
        elif outcome == "failed":
            result.failed.append(notice_id)
        elif outcome == "uncertain":
            result.uncertain.append(notice_id)
    return result


# ---------------------------------------------------------------------- the host link's row


def notice_by_token(session: Session, token: str) -> Notice | None:
    """The notice whose host link carries `token`, if any (expired or not)."""
    return session.scalar(select(Notice).where(Notice.token_hash == token_hash(token)))
