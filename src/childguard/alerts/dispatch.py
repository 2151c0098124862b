# Owns the alert queue and its delivery: queueing alerts (sightings here, other kinds through
# `queue_alert`), sending them by email and webhook, digests and retries.
"""The alert dispatcher: turns NEW sightings of protected photos into alerts, one per sighting,
queues alerts of other kinds that callers build (`queue_alert`, e.g. the view spikes of
`childguard.protect.albums`), and delivers them by email and signed webhook, immediately or as
a daily digest, as each organisation chose.

Idempotent: an alert's `dedupe_key` (`sighting:<id>`) is unique per organisation, so
re-checks of a sighting never make a second alert, and each channel's send time is recorded so
a retry never sends an email twice. Alerts carry URLs, times and the match; never image bytes.

Retries follow a schedule: an alert whose delivery failed is tried again only once its next
try is due (`next_try_at`: the alert's `next_attempt_at`, `RETRY_DELAYS[n - 1]` after its
n-th failure), and after `MAX_ATTEMPTS` failed rounds, or at once when the receiver refused it
(a 4xx), it is `failed` for good with its `last_error`. Within one round, once an
organisation's delivery failed in a way a retry may cure, its other alerts wait for a later
round rather than paying the same timeouts again, and none of them is tried before the next
try of one that failed is due (a daily digest goes out again when a new alert joins it or a
retry is due). `DeliveryReport` tells what was sent, what
failed this round (and when it is tried next), what gave up, and what was held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.alerts.email import AlertDeliveryError, SmtpSettings, send_email
from childguard.alerts.webhook import RetryPolicy, send_webhook
from childguard.log import get_logger
from childguard.store.base import utcnow
from childguard.store.crawl_models import Sighting
from childguard.store.models import BankEntry
from childguard.store.protect_models import Alert, Organisation, ProtectedPhoto, ProtectedSignal
from childguard.store.url_keys import url_key

log = get_logger(__name__)
DIGEST_PERIOD = timedelta(days=1)
# The pause before the 2nd, 3rd, ... try of an alert; the last try is the 8th (`MAX_ATTEMPTS`).
RETRY_DELAYS = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
DEDUPE_KEY_MAX = 300  # the length of Alert.dedupe_key


@dataclass(frozen=True)
class AlertTransport:
    """How alerts leave: SMTP settings (None: no email channel) and the webhook retry policy."""

    smtp: SmtpSettings | None = None
    # Tries within one round; later rounds retry on the schedule (`RETRY_DELAYS`).
    webhook_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=2))


@dataclass
class DeliveryReport:
    """What one delivery round did. Alert ids; errors are each alert's `last_error`."""

    sent: list[int] = field(default_factory=list)
    digests: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # gave up: status `failed`
    retrying: list[tuple[int, str, datetime]] = field(default_factory=list)  # failed, next try
    held: int = 0  # not tried this round: digest not due, retry not due, no channel
    retry_later: list[tuple[int, str, datetime]] = field(default_factory=list)  # of `held`
    no_contact: list[tuple[str, int]] = field(default_factory=list)  # (organisation, held)

    @property
    def waiting(self) -> int:
        """Alerts still pending after this round."""
        return self.held + len(self.retrying)

    @property
    def ok(self) -> bool:
        """True when no alert failed this round and none waits on a retry."""
        return not (self.failed or self.retrying or self.retry_later)


def next_try_at(alert: Alert) -> datetime | None:
    """When a pending alert is due for its next try (None once sent or failed): at once when
    never tried, else as its last failure set it (`RETRY_DELAYS[attempts - 1]` after it)."""
    if alert.status != "pending":
        return None
    return alert.next_attempt_at or alert.created_at


def _not_before(alert: Alert, now: datetime) -> datetime | None:
    """When a pending alert that failed before may be tried again, if that is after `now`;
    None when it may be tried now (a new alert always may)."""
    due = next_try_at(alert) if alert.attempts else None
    return due if due is not None and due > now else None


def requeue_undelivered(session: Session, organisation_id: int) -> int:
    """Queue an organisation's undelivered alerts (pending or given up) again with a fresh
    retry schedule, e.g. after its contacts were corrected; returns how many."""
    alerts = list(
        session.scalars(
            select(Alert).where(
                Alert.organisation_id == organisation_id,
                Alert.status.in_(("pending", "failed")),
                Alert.attempts > 0,
            )
        )
    )
    for alert in alerts:
        alert.status, alert.attempts, alert.next_attempt_at = "pending", 0, None
    return len(alerts)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def sighting_payload(
    org: Organisation, s: Sighting, photo: ProtectedPhoto | None
) -> dict[str, Any]:
    """What an organisation needs to report a re-post: the URLs, first seen, and the match."""
    return {
        "type": "sighting",
        "organisation": org.name,
        "sighting_id": s.id,
        "site": s.site,
        "page_url": s.page_url,
        "page_title": s.page_title,
        "image_url": s.image_url,
        "first_seen": _iso(s.first_seen),
        "status": s.status,
        "match": {
            "bank": s.bank,
            "bank_entry_id": s.entry_id,
            "signal_type": s.signal_type,
            "distance": s.distance,
            "photo_id": photo.id if photo else None,
            "file_name": photo.file_name if photo else None,
            "title": photo.title if photo else None,
            "published_url": photo.published_url if photo else None,
        },
    }


def queue_sighting_alerts(session: Session) -> list[Alert]:
    """Make one alert for every place (page and image URL) where a protected photo of an
    organisation was sighted, once: one image matched by several of the photo's entries
    (its PDQ and a region view whose hashes differ by a few bits) is several sightings at one
    place, and the organisation hears of it once."""
    rows = session.execute(
        select(Sighting, Organisation)
        .join(BankEntry, BankEntry.id == Sighting.entry_id)
        .join(Organisation, Organisation.bank_id == BankEntry.bank_id)
        .where(Sighting.bank_kind == "protected")
        .order_by(Sighting.id)
    ).all()
    if not rows:
        return []
    done = {
        (org_id, key)
        for org_id, key in session.execute(
            select(Alert.organisation_id, Alert.dedupe_key).where(Alert.kind == "sighting")
        )
    }
    places = {
        (org_id, page_key, image_key)
        for org_id, page_key, image_key in session.execute(
            select(Alert.organisation_id, Sighting.page_key, Sighting.image_key)
            .join(Sighting, Sighting.id == Alert.sighting_id)
            .where(Alert.kind == "sighting")
        )
    }
    created: list[Alert] = []
    for sighting, org in rows:
        key = f"sighting:{sighting.id}"
        place = (org.id, sighting.page_key, sighting.image_key)
        if (org.id, key) in done or place in places:
            continue
        photo = session.scalar(
            select(ProtectedPhoto)
            .join(ProtectedSignal, ProtectedSignal.photo_id == ProtectedPhoto.id)
            .where(ProtectedSignal.bank_entry_id == sighting.entry_id)
            .order_by(ProtectedPhoto.id)
            .limit(1)
        )
        alert = Alert(
            organisation_id=org.id,
            kind="sighting",
            dedupe_key=key,
            sighting_id=sighting.id,
            payload=sighting_payload(org, sighting, photo),
        )
        try:  # another writer (a second worker) may queue the same sighting at this moment
            with session.begin_nested():
                session.add(alert)
                session.flush()
        except IntegrityError:
            continue
        done.add((org.id, key))
        places.add(place)
        created.append(alert)
    session.flush()
    return created


def dedupe_key(kind: str, url: str, when: str) -> str:
    """`kind:url:when`, or `kind:sha256=<url_key(url)>:when` where that would not fit the
    column: cutting the text instead would drop `when` and merge every later alert of a long
    URL into its first."""
    key = f"{kind}:{url}:{when}"
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return f"{kind}:sha256={url_key(url)}:{when}"


def queue_alert(
    session: Session, org: Organisation, kind: str, key: str, payload: dict[str, Any]
) -> Alert | None:
    """Queue one alert of `kind` for `org`, unless one with this dedupe key exists already
    (then None). `payload` is what `describe` and the webhook carry."""
    exists = session.scalar(
        select(Alert.id).where(Alert.organisation_id == org.id, Alert.dedupe_key == key)
    )
    if exists is not None:
        return None
    alert = Alert(organisation_id=org.id, kind=kind, dedupe_key=key, payload=payload)
    session.add(alert)
    return alert


def describe(payload: dict[str, Any]) -> tuple[str, str]:
    """A subject line and a plain-text body for one alert payload."""
    kind = payload.get("type")
    if kind == "sighting":
        m = payload["match"]
        name = m.get("title") or m.get("file_name") or f"entry {m.get('bank_entry_id')}"
        host = urlsplit(payload["page_url"]).hostname or payload.get("site") or "?"
        subject = f"[childguard] Your photo {name} was found on {host}"
        body = "\n".join(
            [
                f"A copy of a photo {payload['organisation']} registered was found.",
                "",
                f"Photo:       {name} (id {m.get('photo_id')})",
                f"Published:   {m.get('published_url') or '-'}",
                f"Page:        {payload['page_url']}",
                f"Page title:  {payload.get('page_title') or '-'}",
                f"Image URL:   {payload['image_url']}",
                f"First seen:  {payload.get('first_seen')}",
                f"Match:       {m.get('signal_type')} distance {m.get('distance')} "
                f"in bank {m.get('bank')} (entry {m.get('bank_entry_id')})",
                f"Sighting id: {payload['sighting_id']}",
            ]
        )
        return subject, body
    if kind == "view-spike":
        subject = f"[childguard] Views of {payload['photo']} jumped"
        series = "\n".join(f"  {at}  {views}" for at, views in payload["series"])
        body = (
            f"On the album {payload['album']}, {payload['photo']} gained "
            f"{payload['latest_increase']} views ({payload['ratio']}x the album's norm, robust "
            f"z {payload['robust_z']}).\n\nView counts:\n{series}"
        )
        return subject, body
    if kind == "album-surge":
        return (
            f"[childguard] Views of the album {payload['album']} surged",
            f"The album gained {payload['total_increase']} views; its median rate went from "
            f"{payload['earlier_median_rate_per_hour']} to {payload['median_rate_per_hour']} "
            "views an hour.",
        )
    return "[childguard] alert", repr(payload)


def _send(
    org: Organisation,
    transport: AlertTransport,
    subject: str,
    body: str,
    payload: dict[str, Any],
    delivery_id: str,
    state: Alert | _ChannelState | None,
    now: datetime,
) -> None:
    """Send on each channel the organisation has and that has not already gone out."""
    errors: list[AlertDeliveryError] = []
    if org.emails and (state is None or state.email_sent_at is None):
        if transport.smtp is None:
            errors.append(
                AlertDeliveryError(
                    "email: no SMTP server configured (set CHILDGUARD_SMTP_HOST)", retryable=True
                )
            )
        else:
            try:
                send_email(transport.smtp, org.emails, subject, body)
                if state is not None:
                    state.email_sent_at = now
            except AlertDeliveryError as exc:
                errors.append(exc)
    if org.webhook_url and org.webhook_secret and (state is None or state.webhook_sent_at is None):
        try:
            send_webhook(
                org.webhook_url,
                org.webhook_secret,
                payload,
                policy=transport.webhook_policy,
                delivery_id=delivery_id,
            )
            if state is not None:
                state.webhook_sent_at = now
        except AlertDeliveryError as exc:
            errors.append(exc)
    if errors:
        raise AlertDeliveryError(
            "; ".join(str(e) for e in errors), retryable=all(e.retryable for e in errors)
        )


def deliver(
    session: Session,
    transport: AlertTransport,
    *,
    now: datetime | None = None,
    force_digest: bool = False,
    organisations: Sequence[Organisation] | None = None,
) -> DeliveryReport:
    """Send pending alerts: each at once for `immediate` organisations, and one digest a day
    (or now, with `force_digest`) for `daily` ones."""
    now = now or utcnow()
    report = DeliveryReport()
    query = select(Alert).where(Alert.status == "pending").order_by(Alert.id)
    if organisations is not None:
        query = query.where(Alert.organisation_id.in_([o.id for o in organisations]))
    pending = list(session.scalars(query))
    by_org: dict[int, list[Alert]] = {}
    for alert in pending:
        by_org.setdefault(alert.organisation_id, []).append(alert)
    for alerts in by_org.values():
        org = alerts[0].organisation
        if not org.emails and not org.webhook_url:
            report.held += len(alerts)
            report.no_contact.append((org.name, len(alerts)))
            continue
        if org.alert_mode == "daily":
            _deliver_digest(org, alerts, transport, now, force_digest, report)
            continue
        blocked = _blocked_until(alerts, now)
        if blocked is not None:  # its channel failed last time: nothing goes before the retry
            for alert in alerts:
                _hold(alert, _not_before(alert, now) or blocked, report)
            continue
        for n, alert in enumerate(alerts):
            later = _not_before(alert, now)
            if later is not None:
                _hold(alert, later, report)
                continue
            if not _deliver_one(org, alert, transport, now, report):
                for rest in alerts[n + 1 :]:  # the same failure would follow
                    _hold(rest, _not_before(rest, now) or now, report)
                break
    session.flush()
    return report


def _blocked_until(alerts: Sequence[Alert], now: datetime) -> datetime | None:
    """The first due retry among these alerts that failed before, if every one of them is
    still to wait (then none of the organisation's alerts is tried this round), else None."""
    waits = [_not_before(a, now) for a in alerts if a.attempts]
    if not waits or None in waits:
        return None
    return min(w for w in waits if w is not None)


def _hold(alert: Alert, due: datetime, report: DeliveryReport) -> None:
    report.held += 1
    if alert.attempts:
        report.retry_later.append((alert.id, alert.last_error or "", due))


@dataclass
class AlertRound:
    """What one round did: the alerts it queued, and the delivery (None when only queued)."""

    queued: list[Alert]
    delivery: DeliveryReport | None = None


def queue_and_deliver(
    session: Session,
    transport: AlertTransport | None,
    *,
    now: datetime | None = None,
    force_digest: bool = False,
    organisations: Sequence[Organisation] | None = None,
) -> AlertRound:
    """One alert round: queue an alert for every new sighting of a protected photo, then, unless
    `transport` is None, deliver the pending alerts (see `deliver`)."""
    queued = queue_sighting_alerts(session)
    if transport is None:
        return AlertRound(queued)
    report = deliver(
        session, transport, now=now, force_digest=force_digest, organisations=organisations
    )
    return AlertRound(queued, report)


def _fail(
    alerts: Sequence[Alert], exc: AlertDeliveryError, report: DeliveryReport, now: datetime
) -> None:
    for alert in alerts:
        alert.attempts += 1
        alert.last_error = str(exc)[:2000]
        if not exc.retryable or alert.attempts >= MAX_ATTEMPTS:
            alert.status = "failed"
            alert.next_attempt_at = None
            report.failed.append((alert.id, alert.last_error))
        else:
            alert.next_attempt_at = now + RETRY_DELAYS[alert.attempts - 1]
            report.retrying.append((alert.id, alert.last_error, alert.next_attempt_at))
    log.warning("alert_delivery_failed", alerts=[a.id for a in alerts], error=str(exc))


def _deliver_one(
    org: Organisation,
    alert: Alert,
    transport: AlertTransport,
    now: datetime,
    report: DeliveryReport,
) -> bool:
    """Send one alert; False when it failed in a way a later round may cure."""
    subject, body = describe(alert.payload)
    try:
        _send(org, transport, subject, body, alert.payload, f"alert-{alert.id}", alert, now)
    except AlertDeliveryError as exc:
        _fail([alert], exc, report, now)
        return not exc.retryable
    alert.attempts += 1
    alert.status, alert.sent_at, alert.last_error = "sent", now, None
    report.sent.append(alert.id)
    return True


def _deliver_digest(
    org: Organisation,
    alerts: list[Alert],
    transport: AlertTransport,
    now: datetime,
    force: bool,
    report: DeliveryReport,
) -> None:
    """One digest per channel, of the alerts that channel has not carried yet: when one
    channel failed last time, a retry sends only on that one, so nobody gets a digest twice."""
    due = org.last_digest_at is None or now - org.last_digest_at >= DIGEST_PERIOD
    later = [_not_before(a, now) for a in alerts]
    if not (due or force) or None not in later:
        for alert, at in zip(alerts, later, strict=True):
            _hold(alert, at or now, report)
        return
    channels = {
        "email": [a for a in alerts if a.email_sent_at is None] if org.emails else [],
        "webhook": (
            [a for a in alerts if a.webhook_sent_at is None]
            if org.webhook_url and org.webhook_secret
            else []
        ),
    }
    failed: dict[int, AlertDeliveryError] = {}
    for channel, group in channels.items():
        if not group:
            continue
        # The other channel counts as done, so `_send` sends on this one only.
        state = _ChannelState(
            email_sent_at=None if channel == "email" else now,
            webhook_sent_at=None if channel == "webhook" else now,
        )
        try:
            _send(org, transport, *_digest(org, group, now), state, now)
        except AlertDeliveryError as exc:
            for alert in group:
                before = failed.get(alert.id)
                failed[alert.id] = (
                    exc
                    if before is None
                    else AlertDeliveryError(
                        f"{before}; {exc}", retryable=before.retryable and exc.retryable
                    )
                )
            continue
        for alert in group:
            if channel == "email":
                alert.email_sent_at = now
            else:
                alert.webhook_sent_at = now
    errors: dict[str, tuple[AlertDeliveryError, list[Alert]]] = {}
    for alert in alerts:
        if alert.id in failed:
            error = failed[alert.id]
            errors.setdefault(str(error), (error, []))[1].append(alert)
            continue
        alert.attempts += 1
        alert.status, alert.sent_at, alert.last_error = "sent", now, None
        report.sent.append(alert.id)
    for error, group in errors.values():
        _fail(group, error, report, now)
    if not failed:
        org.last_digest_at = now
        report.digests += 1


@dataclass
class _ChannelState:
    """Which channels a delivery has already gone out on (as `Alert` records it)."""

    email_sent_at: datetime | None
    webhook_sent_at: datetime | None


def _digest(
    org: Organisation, alerts: list[Alert], now: datetime
) -> tuple[str, str, dict[str, Any], str]:
    """Subject, plain-text body, webhook payload and delivery id of a digest of `alerts`."""
    parts = [describe(a.payload) for a in alerts]
    subject = f"[childguard] Daily digest for {org.name}: {len(alerts)} new alert(s)"
    body = "\n\n----\n\n".join(f"{s}\n\n{b}" for s, b in parts)
    payload = {
        "type": "digest",
        "organisation": org.name,
        "period_end": now.isoformat(),
        "alerts": [a.payload for a in alerts],
    }
    return subject, body, payload, f"digest-{org.id}-{alerts[0].id}-{alerts[-1].id}"
