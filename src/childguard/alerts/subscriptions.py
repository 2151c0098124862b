# Owns webhook subscriptions and their deliveries: who gets which events, and each send's state.
"""Webhook subscriptions to service events (`match`, `hotline.notice.escalated`), and their
deliveries.

`publish` writes one delivery row per live subscription that wants the event (for a `match`,
only the matches in the subscription's `banks`, when it names any); the row's `event_id` is
the event's id, so publishing an event twice delivers it once (`uq_webhook_delivery_event`).
`deliver_due` sends the deliveries that are due, each claimed first with a guarded UPDATE so
that two workers never send one delivery at the same moment, and signed as the alerts are
(`childguard.alerts.webhook`: `X-Childguard-Signature`, `X-Childguard-Timestamp`,
`X-Childguard-Delivery`, the event id). A failed send (connection error, timeout, 429 or 5xx)
is tried again after the alerts' backoff (`RetryPolicy.delay`) until `RetryPolicy.attempts`,
then the delivery is `failed` with its `last_error` and `last_status`; another 4xx fails it
at once.

A subscription's signing secret is never stored: `derive_secret(service key, id)` is
HMAC-SHA256 over `webhook:<id>`, shown to its creator once. Match events carry the matched
entries' provenance and the query's hashes, never content.

Hotline events (`HOTLINE_EVENTS`) are the hotline's own: only a subscription without an
organisation may ask for them, and only such a subscription is sent them; a subscription's
`banks` do not filter them.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from childguard.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    canonical_body,
    sign,
    validate_webhook_url,
)
from childguard.errors import ChildguardError
from childguard.log import get_logger
from childguard.matcher import Match, MatchOutcome
from childguard.signals.content import ContentSignals
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.webhook_models import WebhookDelivery, WebhookSubscription

log = get_logger(__name__)

HOTLINE_EVENTS = ("hotline.notice.escalated",)
EVENT_TYPES = ("match", *HOTLINE_EVENTS)
DEFAULT_EVENTS = ("match",)
RECENT_DELIVERIES = 20
CLAIM_LEASE = timedelta(minutes=2)
CACHE_SECONDS = 1.0
_DELIVERY_TABLE: Table = WebhookDelivery.__table__  # type: ignore[assignment]


class SubscriptionNotFound(ChildguardError):
    """No webhook subscription has this id (or it is another organisation's)."""


class InvalidSubscription(ChildguardError):
    """A subscription's URL, events or banks are not acceptable; the message says why."""


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    subscription_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status: int | None
    created_at: datetime
    sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error,
            "last_status": self.last_status,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


@dataclass(frozen=True)
class SubscriptionInfo:
    id: int
    url: str
    events: list[str]
    banks: list[str] | None
    description: str
    organisation_id: int | None
    created_by: str
    created_at: datetime
    disabled_at: datetime | None
    deliveries: list[DeliveryInfo] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def wants(self, event_type: str, banks: Iterable[str]) -> bool:
        if not self.enabled or event_type not in self.events:
            return False
        if event_type in HOTLINE_EVENTS:
            return self.organisation_id is None
        return self.banks is None or bool(set(self.banks) & set(banks))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "banks": list(self.banks) if self.banks is not None else None,
            "description": self.description,
            "enabled": self.enabled,
            "organisation_id": self.organisation_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


def _sub_info(
    row: WebhookSubscription, deliveries: list[DeliveryInfo] | None = None
) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=row.id,
        url=row.url,
        events=list(row.events or []),
        banks=list(row.banks) if row.banks is not None else None,
        description=row.description,
        organisation_id=row.organisation_id,
        created_by=row.created_by,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        deliveries=deliveries or [],
    )


def _delivery_info(row: WebhookDelivery) -> DeliveryInfo:
    return DeliveryInfo(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_status=row.last_status,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def derive_secret(service_key: bytes, subscription_id: int) -> str:
    """The signing secret of one subscription: HMAC-SHA256(service key, "webhook:<id>"), hex."""
    return hmac.new(service_key, f"webhook:{subscription_id}".encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- subscriptions


def _checked_events(events: Sequence[str], organisation_id: int | None) -> list[str]:
    wanted = list(dict.fromkeys(e.strip() for e in events))
    if not wanted:
        raise InvalidSubscription(f"name at least one event: {', '.join(EVENT_TYPES)}")
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown:
        raise InvalidSubscription(f"unknown events {unknown}; events: {', '.join(EVENT_TYPES)}")
    hotline = [e for e in wanted if e in HOTLINE_EVENTS]
    if hotline and organisation_id is not None:
        raise InvalidSubscription(
            f"{', '.join(hotline)}: hotline events go only to the service's own subscriptions, "
            "not to an organisation's"
        )
    return wanted


def _checked_banks(banks: Sequence[str] | None) -> list[str] | None:
    if banks is None:
        return None
    names = list(dict.fromkeys(b.strip() for b in banks if b.strip()))
    if not names:
        raise InvalidSubscription("banks: name at least one bank, or leave it out for all")
    return names


def checked_url(url: str, check_url: Callable[[str], None] | None = None) -> str:
    """An http(s) URL with a host (`validate_webhook_url`), and passing `check_url` (the
    service's address policy); InvalidSubscription saying why not."""
    try:
        validate_webhook_url(url)
        if check_url is not None:
            check_url(url)
    except (ValueError, ChildguardError) as exc:
        raise InvalidSubscription(str(exc)) from None
    return url


def create_subscription(
    store: Store,
    url: str,
    *,
    actor: str,
    events: Sequence[str] = DEFAULT_EVENTS,
    banks: Sequence[str] | None = None,
    description: str = "",
    organisation_id: int | None = None,
    check_url: Callable[[str], None] | None = None,
) -> SubscriptionInfo:
    """A new, enabled subscription; InvalidSubscription for a bad URL, events or banks."""
    row = WebhookSubscription(
        url=checked_url(url.strip(), check_url),
        events=_checked_events(events, organisation_id),
        banks=_checked_banks(banks),
        description=description[:500],
        organisation_id=organisation_id,
        created_by=actor,
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="webhook.subscribe",
            object_type="webhook_subscription",
            object_id=row.id,
            details={"url": row.url, "events": row.events, "banks": row.banks},
        )
        return _sub_info(row)


def _owned(session: Any, subscription_id: int, organisation_id: int | None) -> WebhookSubscription:
    row = session.get(WebhookSubscription, subscription_id)
    if row is None or (organisation_id is not None and row.organisation_id != organisation_id):
        raise SubscriptionNotFound(f"no webhook subscription {subscription_id}")
    assert isinstance(row, WebhookSubscription)
    return row


def list_subscriptions(
    store: Store, *, organisation_id: int | None = None
) -> list[SubscriptionInfo]:
    """Every subscription (of one organisation, when given), by id."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if organisation_id is not None:
        query = query.where(WebhookSubscription.organisation_id == organisation_id)
    with store.session() as session:
        return [_sub_info(r) for r in session.scalars(query)]


def get_subscription(
    store: Store,
    subscription_id: int,
    *,
    organisation_id: int | None = None,
    recent: int = RECENT_DELIVERIES,
) -> SubscriptionInfo:
    """One subscription with its `recent` latest deliveries."""
    with store.session() as session:
        row = _owned(session, subscription_id, organisation_id)
        deliveries = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(recent)
        )
        return _sub_info(row, [_delivery_info(d) for d in deliveries])


def update_subscription(
    store: Store,
    subscription_id: int,
    *,
    actor: str,
    enabled: bool | None = None,
    banks: Sequence[str] | None = None,
    all_banks: bool = False,
    description: str | None = None,
    organisation_id: int | None = None,
) -> SubscriptionInfo:
    """Enable or disable a subscription, change its banks (`all_banks`: every bank) or its
    description; the subscription as it is now."""
    with store.session() as session:
        row = _owned(session, subscription_id, organisation_id)
        changes: dict[str, Any] = {}
        if enabled is not None and enabled != (row.disabled_at is None):
            row.disabled_at = None if enabled else utcnow()
            changes["enabled"] = enabled
        if all_banks:
            row.banks = None
            changes["banks"] = None
        elif banks is not None:
            row.banks = _checked_banks(banks)
            changes["banks"] = row.banks
        if description is not None:
            row.description = description[:500]
            changes["description"] = row.description
        audit.record(
            session,
            actor=actor,
            action="webhook.update",
            object_type="webhook_subscription",
            object_id=row.id,
            details=changes,
        )
    return get_subscription(store, subscription_id)


def delete_subscription(
    store: Store, subscription_id: int, *, actor: str, organisation_id: int | None = None
) -> None:
    """Remove a subscription and its deliveries."""
    with store.session() as session:
        row = _owned(session, subscription_id, organisation_id)
        session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        )
        session.delete(row)
        audit.record(
            session,
            actor=actor,
            action="webhook.delete",
            object_type="webhook_subscription",
            object_id=subscription_id,
            details={"url": row.url},
        )


# ---------------------------------------------------------------------- events


def _insert_ignoring_duplicates(store: Store) -> Any:
    if store.dialect == "postgresql":
        return postgresql.insert(_DELIVERY_TABLE).on_conflict_do_nothing(
            constraint="uq_webhook_delivery_event"
        )
    return sqlite.insert(_DELIVERY_TABLE).on_conflict_do_nothing(
        index_elements=["subscription_id", "event_id"]
    )


def _for_subscription(
    sub: SubscriptionInfo, event_type: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """The event as one subscription sees it: a match event keeps only its banks' matches."""
    if event_type != "match" or sub.banks is None:
        return payload
    wanted = set(sub.banks)
    return {**payload, "matches": [m for m in payload["matches"] if m.get("bank") in wanted]}


def publish(
    store: Store,
    event_type: str,
    payload: dict[str, Any],
    banks: Iterable[str],
    *,
    subscriptions: Sequence[SubscriptionInfo] | None = None,
) -> int:
    """Queue the event (`payload["id"]` is its id) for every live subscription that wants
    `event_type` for any of `banks`; how many deliveries were queued. `subscriptions` are the
    live ones if the caller has them (e.g. `Publisher`'s cache)."""
    return publish_many(store, [(event_type, payload, list(banks))], subscriptions=subscriptions)


def publish_many(
    store: Store,
    events: Sequence[tuple[str, dict[str, Any], Sequence[str]]],
    *,
    subscriptions: Sequence[SubscriptionInfo] | None = None,
) -> int:
    """`publish` for several (event type, payload, banks) at once, in one insert."""
    live = list_subscriptions(store) if subscriptions is None else subscriptions
    now = utcnow()
    rows = [
        {
            "subscription_id": s.id,
            "event_id": str(payload["id"]),
            "event_type": event_type,
            "payload": _for_subscription(s, event_type, payload),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_type, payload, banks in events
        for s in live
        if s.wants(event_type, banks)
    ]
    if not rows:
        return 0
    with store.session() as session:
        session.execute(_insert_ignoring_duplicates(store), rows)
    return len(rows)


def query_signals(record: ContentSignals) -> list[tuple[str, str]]:
    """The (signal type, value) pairs a query was matched by."""
    return [(t, v.value) for t, v in record.signals.items()]


def match_event(
    matches: Sequence[Match], queries: Iterable[tuple[str, str]], *, at: datetime | None = None
) -> dict[str, Any]:
    """The `match` event of one answer: each match's bank, signal type, distance, entry id,
    provenance and classification, and the query's (signal type, value) pairs."""
    when = at or utcnow()
    return {
        "event": "match",
        "id": uuid.uuid4().hex,
        "at": when.isoformat(),
        "matches": [
            {
                "bank": m.bank_name,
                "signal_type": m.signal_type,
                "distance": m.distance,
                "entry_id": m.entry_id,
                "provenance": {
                    "source": m.source,
                    "organisation": m.organisation,
                    "original_id": m.original_id,
                    "imported_at": m.imported_at.isoformat() if m.imported_at else None,
                },
                "classification": m.classification,
            }
            for m in matches
        ],
        "query": [{"signal_type": t, "value": v} for t, v in dict.fromkeys(queries)],
    }


Answer = tuple[Iterable[tuple[str, str]], MatchOutcome]


class Publisher:
    """Publishes events from a hot path: the live subscriptions are cached for
    `cache_seconds`, so an answer with no subscriber costs no query at all."""

    def __init__(self, store: Store, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[SubscriptionInfo] = []
        self._loaded_at = float("-inf")

    def live(self) -> list[SubscriptionInfo]:
        """The enabled subscriptions, at most `cache_seconds` old."""
        with self._lock:
            if time.monotonic() - self._loaded_at > self.cache_seconds:
                self._cached = [s for s in list_subscriptions(self.store) if s.enabled]
                self._loaded_at = time.monotonic()
            return self._cached

    def forget(self) -> None:
        """Reload the subscriptions on the next event (this process changed them)."""
        with self._lock:
            self._loaded_at = float("-inf")

    def matched(self, answers: Iterable[Answer]) -> int:
        """Publish a `match` event for each answer (query signals, outcome) with matches;
        how many deliveries were queued. Nothing is read or written when no live
        subscription wants one."""
        found = [(q, o.matches) for q, o in answers if o.matches]
        if not found:
            return 0
        live = [s for s in self.live() if "match" in s.events]
        if not live:
            return 0
        events = []
        for queries, matches in found:
            banks = list(dict.fromkeys(m.bank_name for m in matches))
            if any(s.wants("match", banks) for s in live):
                events.append(("match", match_event(matches, queries), banks))
        return publish_many(self.store, events, subscriptions=live) if events else 0


# ---------------------------------------------------------------------- delivery


@dataclass
class DeliveryRound:
    """What one `deliver_due` did: delivery ids sent, retried later, and given up."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _due(store: Store, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    with store.session() as session:
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookSubscription.disabled_at.is_(None),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        return [(int(i), at) for i, at in rows]


def _claim(store: Store, delivery_id: int, now: datetime) -> bool:
    with store.session() as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + CLAIM_LEASE)
        )
        return bool(getattr(result, "rowcount", 0))


def _post_once(
    client: httpx.Client, url: str, secret: str, event_id: str, payload: dict[str, Any]
) -> tuple[int | None, str | None]:
    """One signed POST: (status, error); error None when the receiver took it."""
    body = canonical_body(payload)
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
        DELIVERY_HEADER: event_id,
        "User-Agent": "childguard-webhook/1",
    }
    try:
        resp = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if resp.status_code < 300:
        return resp.status_code, None
    return resp.status_code, f"HTTP {resp.status_code}"


def deliver_due(
    store: Store,
    secret_for: Callable[[int], str],
    now: datetime | None = None,
    *,
    policy: RetryPolicy | None = None,
    check_url: Callable[[str], None] | None = None,
    client: httpx.Client | None = None,
    limit: int = 100,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryRound:
    """Send up to `limit` due deliveries, each signed with `secret_for(subscription id)`;
    `check_url` refuses a URL the service's address policy forbids (checked at each send, so
    a name that now resolves to a private address is not posted to). `should_stop` is asked
    between deliveries."""
    policy = policy or RetryPolicy()
    moment = now or utcnow()
    report = DeliveryRound()
    due = _due(store, moment, limit)
    if not due:
        return report
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout_s, follow_redirects=False)
    try:
        for delivery_id, _ in due:
            if should_stop is not None and should_stop():
                break
            if not _claim(store, delivery_id, moment):
                continue  # another worker took it
            with store.session() as session:
                row = session.get(WebhookDelivery, delivery_id)
                sub = session.get(WebhookSubscription, row.subscription_id) if row else None
                if row is None or sub is None:
                    continue
                url, event_id, payload, sub_id = sub.url, row.event_id, row.payload, sub.id
            status: int | None
            error: str | None
            try:
                validate_webhook_url(url)
                if check_url is not None:
                    check_url(url)
            except (ValueError, ChildguardError) as exc:
                status, error, retryable = None, f"refused: {exc}", False
            else:
                status, error = _post_once(http, url, secret_for(sub_id), event_id, payload)
                retryable = status is None or status >= 500 or status == 429
            _settle(store, delivery_id, status, error, retryable, policy, report)
    finally:
        if own:
            http.close()
    return report


def _settle(
    store: Store,
    delivery_id: int,
    status: int | None,
    error: str | None,
    retryable: bool,
    policy: RetryPolicy,
    report: DeliveryRound,
) -> None:
    with store.session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            return
        row.attempts += 1
        row.last_status = status
        finished = utcnow()
        if error is None:
            row.status = "sent"
            row.sent_at = finished
            row.last_error = None
            report.sent.append(delivery_id)
            return
        row.last_error = error
        if retryable and row.attempts < policy.attempts:
            row.next_attempt_at = finished + timedelta(seconds=policy.delay(row.attempts))
            report.retrying.append(delivery_id)
        else:
            row.status = "failed"
            report.failed.append(delivery_id)
        log.warning(
            "webhook.delivery_failed",
            delivery=delivery_id,
            attempt=row.attempts,
            error=error,
            final=row.status == "failed",
        )
