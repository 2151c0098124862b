# Owns what an organisation does from its pages: the state of each sighting of its photos
# (seen, false alarm, reported), its users' visits, its album monitors and its test alerts.
"""The organisation's actions, as plain functions the pages and the API both call.

Every function takes the organisation (always the caller's own) and refuses a sighting that is
not one of its photos' (`SightingNotFound`, as if there were no such id). A crawl records one
sighting per matched bank entry, so one image on one page (a *place*) can have several; the
lists show one per place (`organisation_places`) and an action applies to all of a place's.
This module is the only writer of `org_sighting_state` and `org_visit`
(`childguard.store.org_page_models`).

- `mark_seen`: the organisation has looked at the sighting.
- `mark_false_alarm(reason)`: the copy is not the organisation's photo. The sighting image's
  signals (its SHA-256 and PDQ) become entries of the organisation's `allow` bank
  (`allow:<name>`, made on first use, PDQ threshold `ALLOW_PDQ_THRESHOLD`) through
  `childguard.banks.ensure_entries`, so the matcher silences that content's matches of the
  organisation's own photos from then on and no crawl alerts it on them again (an
  organisation's allow bank never silences a known-abuse bank or another organisation's
  photos). Audited with the reason.
- `report_to_hotline`: files a hotline report (`childguard.hotline.reports.create_report`) of
  the page and image URLs, described as a copy of a protected photo and classed for review by
  its `suspected: harvested` hint (analysts see it on the queue item); the state keeps the
  report's id. (`protect` and `hotline` are siblings in
  the middle layer; this module imports `hotline`, which never imports `protect`.)
- `takedown_letter`: the letter to the host (`childguard.protect.takedown_letter`).
- `record_visit` and `dashboard_summary(org, since)`: what is new since the last visit.
- Album monitors (`add_album_monitor`, `album_monitors`, `remove_album_monitor`): crawl watches
  of the organisation's own album pages, named `album-<organisation id>-<key>`, with a site
  profile that reads each photo's view counter; the scheduler runs them (`monitor_album`).
- `send_test_alert`: one test message through the real email and webhook paths, per channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from childguard.alerts.dispatch import AlertTransport
from childguard.alerts.email import AlertDeliveryError, send_email
from childguard.alerts.webhook import send_webhook
from childguard.banks import BankExists, BankNotFound, create_bank, ensure_entries, get_bank
from childguard.banks.records import canonical_signal
from childguard.crawl.sightings import SightingView
from childguard.crawl.watch import SiteProfile, Watch
from childguard.crawl.watchstore import list_watches, remove_watch, save_watch
from childguard.errors import ChildguardError, InputFormatError
from childguard.hotline.reports import create_report
from childguard.protect.albums import album_series
from childguard.protect.organisations import OrganisationError, update_organisation
from childguard.protect.takedown_letter import TakedownLetter, render_letter
from childguard.protect.tenancy import (
    OrganisationSighting,
    PhotoRef,
    organisation_sighting,
    organisation_sightings,
    organisation_summary,
)
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.crawl_models import SIGHTING_STATUSES, Sighting
from childguard.store.db import Store
from childguard.store.org_page_models import SIGHTING_STATES, OrgSightingState, OrgVisit
from childguard.store.protect_models import Alert, Organisation, ProtectedPhoto
from childguard.store.url_keys import url_key

ALLOW_PDQ_THRESHOLD = 16
MAX_REASON = 1000
# A visit ends after this long without a page; the next page starts a new visit.
VISIT_GAP = timedelta(minutes=30)
ALBUM_PREFIX = "album-"
OPEN_ALERT_STATUSES = ("pending", "failed")


class SightingNotFound(ChildguardError):
    """No sighting of the organisation's photos has that id."""


class ActionRefused(InputFormatError):
    """The action cannot be done as asked; the message says what to fix."""


@dataclass(frozen=True)
class SightingState:
    """What the organisation made of one sighting (`new` when it did nothing yet)."""

    sighting_id: int
    state: str = "new"
    reason: str | None = None
    actor: str | None = None
    changed_at: datetime | None = None
    hotline_report_id: int | None = None
    allow: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sighting_id": self.sighting_id,
            "state": self.state,
            "reason": self.reason,
            "actor": self.actor,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "hotline_report_id": self.hotline_report_id,
            "allow": self.allow,
        }


@dataclass(frozen=True)
class StatedSighting:
    """A sighting of the organisation's photos with the organisation's state of it."""

    found: OrganisationSighting
    state: SightingState

    @property
    def sighting(self) -> SightingView:
        return self.found.sighting

    @property
    def photo(self) -> PhotoRef | None:
        return self.found.photo


@dataclass(frozen=True)
class HotlineFiling:
    """The state after a report to the hotline, and the report's tracking code."""

    state: SightingState
    tracking_code: str


def _view(row: OrgSightingState) -> SightingState:
    return SightingState(
        sighting_id=row.sighting_id,
        state=row.state,
        reason=row.reason,
        actor=row.actor,
        changed_at=row.changed_at,
        hotline_report_id=row.hotline_report_id,
        allow=row.allow,
    )


def _own(store: Store, org: Organisation, sighting_id: int) -> OrganisationSighting:
    found = organisation_sighting(store, org, sighting_id)
    if found is None:
        raise SightingNotFound(f"no sighting with id {sighting_id}")
    return found


def states_of(
    store: Store, org: Organisation, sighting_ids: Iterable[int]
) -> dict[int, SightingState]:
    """The organisation's state of each sighting (`new` for those it never acted on)."""
    ids = sorted(set(sighting_ids))
    found = {i: SightingState(i) for i in ids}
    with store.session() as s:
        for start in range(0, len(ids), 500):
            rows = s.scalars(
                select(OrgSightingState).where(
                    OrgSightingState.organisation_id == org.id,
                    OrgSightingState.sighting_id.in_(ids[start : start + 500]),
                )
            )
            for row in rows:
                found[row.sighting_id] = _view(row)
    return found


def sighting_state(store: Store, org: Organisation, sighting_id: int) -> SightingState:
    """The organisation's state of one of its sightings; SightingNotFound for another id."""
    _own(store, org, sighting_id)
    return states_of(store, org, [sighting_id])[sighting_id]


def _place(found: OrganisationSighting) -> tuple[str, str]:
    return (found.sighting.page_url, found.sighting.image_url)


def _rank(found: OrganisationSighting) -> tuple[int, int, int]:
    """Which of one place's sightings stands for it: a PDQ match first, then the closest."""
    v = found.sighting
    return (0 if v.signal_type == "pdq" else 1, v.distance, -v.id)


def organisation_places(
    store: Store,
    org: Organisation,
    *,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 10_000,
) -> list[OrganisationSighting]:
    """The organisation's sightings, one per place (page and image URL; a crawl records one
    sighting per matched entry, so one image can have several), newest first."""
    found = organisation_sightings(store, org, status=status, since=since, limit=limit)
    best: dict[tuple[str, str], OrganisationSighting] = {}
    order: list[tuple[str, str]] = []
    for f in found:
        key = _place(f)
        if key not in best:
            order.append(key)
            best[key] = f
        elif _rank(f) < _rank(best[key]):
            best[key] = f
    return [best[k] for k in order]


def stated_sightings(
    store: Store,
    org: Organisation,
    *,
    status: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StatedSighting]:
    """The places the organisation's photos were found, newest first, each with its state:
    filtered by status (online, removed, changed), state (new, seen, false-alarm, reported)
    and first seen at or after `since`; at most `limit`."""
    if state is not None and state not in SIGHTING_STATES:
        raise InputFormatError(f"state must be one of {', '.join(SIGHTING_STATES)}, not {state!r}")
    places = organisation_places(store, org, status=status, since=since)
    states = states_of(store, org, [f.sighting.id for f in places])
    out = [
        StatedSighting(f, states[f.sighting.id])
        for f in places
        if state is None or states[f.sighting.id].state == state
    ]
    return out[:limit]


def _siblings(store: Store, org: Organisation, sighting_id: int) -> list[int]:
    """The ids of the organisation's sightings at the same place (page and image URL)."""
    with store.session() as s:
        row = s.get(Sighting, sighting_id)
        if row is None:
            return []
        ids = list(
            s.scalars(
                select(Sighting.id).where(
                    Sighting.page_key == row.page_key, Sighting.image_key == row.image_key
                )
            )
        )
    return [i for i in ids if i == sighting_id or organisation_sighting(store, org, i) is not None]


def _set_state(
    store: Store,
    org: Organisation,
    sighting_id: int,
    state: str,
    *,
    actor: str,
    reason: str | None = None,
    report_id: int | None = None,
    allow: dict[str, Any] | None = None,
) -> SightingState:
    """Set the state of the sighting and of the organisation's other sightings at the same
    place (audited once, naming them all)."""
    now = utcnow()
    ids = _siblings(store, org, sighting_id) or [sighting_id]
    with store.session() as s:
        before = "new"
        mine: OrgSightingState | None = None
        for sid in ids:
            row = s.scalar(
                select(OrgSightingState).where(
                    OrgSightingState.organisation_id == org.id,
                    OrgSightingState.sighting_id == sid,
                )
            )
            if row is None:
                row = OrgSightingState(organisation_id=org.id, sighting_id=sid)
                s.add(row)
            elif sid == sighting_id:
                before = row.state
            row.state, row.reason, row.actor, row.changed_at = state, reason, actor, now
            if report_id is not None:
                row.hotline_report_id = report_id
            if allow is not None:
                row.allow = allow
            if sid == sighting_id:
                mine = row
        s.flush()
        audit.record(
            s,
            actor=actor,
            action=f"org.sighting.{state}",
            object_type="sighting",
            object_id=sighting_id,
            details={
                "organisation": org.name,
                "from": before,
                "same_place": [i for i in ids if i != sighting_id],
                "reason": reason,
                "hotline_report_id": report_id,
                "allow": allow,
            },
        )
        assert mine is not None
        return _view(mine)


def mark_seen(store: Store, org: Organisation, sighting_id: int, *, actor: str) -> SightingState:
    """The organisation has seen this sighting (audited)."""
    _own(store, org, sighting_id)
    return _set_state(store, org, sighting_id, "seen", actor=actor)


def allow_bank_name(org: Organisation) -> str:
    return f"allow:{org.name}"


def _allow_bank_id(store: Store, org: Organisation, actor: str) -> int:
    name = allow_bank_name(org)
    try:
        return get_bank(store, name).id
    except BankNotFound:
        pass
    try:
        return create_bank(
            store,
            name,
            "allow",
            owner=org.name,
            description=f"Copies {org.name} marked as false alarms",
            pdq_threshold=ALLOW_PDQ_THRESHOLD,
            actor=actor,
        ).id
    except BankExists:
        return get_bank(store, name).id


def _image_signals(store: Store, sighting_id: int) -> list[tuple[str, str]]:
    with store.session() as s:
        row = s.get(Sighting, sighting_id)
        pairs = [("sha256", row.image_sha256), ("pdq", row.image_pdq)] if row else []
    return [canonical_signal(t, v) for t, v in pairs if v]


def mark_false_alarm(
    store: Store, org: Organisation, sighting_id: int, reason: str, *, actor: str
) -> SightingState:
    """The copy is not the organisation's photo: its signals go into the organisation's allow
    bank (so it never alerts again) and the state keeps the reason (audited). ActionRefused
    without a reason, or when the crawl kept no signals of the image."""
    text = (reason or "").strip()
    if not text:
        raise ActionRefused("say why this is a false alarm (the reason is kept with it)")
    if len(text) > MAX_REASON:
        raise ActionRefused(f"the reason takes at most {MAX_REASON} characters")
    _own(store, org, sighting_id)
    signals = _image_signals(store, sighting_id)
    if not signals:
        raise ActionRefused(
            "the crawl kept no signals of this image, so it cannot be allowed; it is left as is"
        )
    bank_id = _allow_bank_id(store, org, actor)
    with store.session() as s:
        entry_ids = ensure_entries(
            s,
            bank_id,
            signals,
            source=f"false-alarm:sighting:{sighting_id}",
            organisation=org.name,
            metadata={"reason": text, "sighting_id": sighting_id, "by": actor},
        )
        audit.record(
            s,
            actor=actor,
            action="bank.allow",
            object_type="bank",
            object_id=bank_id,
            details={"sighting_id": sighting_id, "entries": entry_ids, "reason": text},
        )
    allow = {"bank": allow_bank_name(org), "entries": entry_ids}
    return _set_state(store, org, sighting_id, "false-alarm", actor=actor, reason=text, allow=allow)


def report_to_hotline(
    store: Store,
    org: Organisation,
    sighting_id: int,
    *,
    actor: str,
    note: str | None = None,
    language: str | None = None,
    channel: str = "web",
    enqueue: bool = True,
) -> HotlineFiling:
    """File a hotline report of the sighting's page and image URLs, classed for review as a
    possibly harvested copy of a protected photo (the `suspected: harvested` hint); the state
    keeps the report's id."""
    found = _own(store, org, sighting_id)
    v = found.sighting
    photo = found.photo
    named = (photo.title or photo.file_name) if photo is not None else "a registered photo"
    lines = [
        f"Possibly harvested: a copy of {named}, which {org.name} published and protects "
        "with childguard, was found on this page.",
        f"Match: {v.signal_type} distance {v.distance}; first seen {v.first_seen:%Y-%m-%d}, "
        f"last seen {v.last_seen:%Y-%m-%d}, status {v.status}.",
    ]
    if note and note.strip():
        lines.append(f"Note from {org.name}: {note.strip()[:MAX_REASON]}")
    filed = create_report(
        store,
        [v.page_url, v.image_url],
        channel=channel,
        reporter=f"organisation:{org.id}",
        description="\n".join(lines),
        hints={"content_type": "images", "suspected": "harvested"},
        language=language,
        enqueue=enqueue,
    )
    state = _set_state(
        store,
        org,
        sighting_id,
        "reported",
        actor=actor,
        reason=(note or "").strip()[:MAX_REASON] or None,
        report_id=filed.id,
    )
    return HotlineFiling(state, filed.tracking_code)


def takedown_letter(
    store: Store, org: Organisation, sighting_id: int, *, language: str = "en"
) -> TakedownLetter:
    """The takedown request for the host of the sighting's page, in `language`."""
    found = _own(store, org, sighting_id)
    published_url = published_at = None
    if found.photo is not None:
        with store.session() as s:
            photo = s.get(ProtectedPhoto, found.photo.id)
            if photo is not None:
                published_url, published_at = photo.published_url, photo.published_at
    return render_letter(
        found.sighting,
        org_name=org.name,
        contact=org.emails[0] if org.emails else None,
        photo_file=found.photo.file_name if found.photo else None,
        photo_title=found.photo.title if found.photo else None,
        published_url=published_url,
        published_at=published_at,
        language=language,
    )


# ---------------------------------------------------------------------- visits and summary


def record_visit(
    store: Store, org: Organisation, user_id: int, *, now: datetime | None = None
) -> datetime | None:
    """Note that the user is looking at the organisation's pages now; returns when their last
    visit ended (None for a first visit). A visit ends `VISIT_GAP` after its last page."""
    now = now or utcnow()
    with store.session() as s:
        row = s.get(OrgVisit, user_id)
        if row is None or row.organisation_id != org.id:
            if row is not None:
                s.delete(row)
                s.flush()
            s.add(
                OrgVisit(
                    user_id=user_id,
                    organisation_id=org.id,
                    visit_started_at=now,
                    last_seen_at=now,
                    previous_visit_at=None,
                )
            )
            return None
        if now - row.last_seen_at > VISIT_GAP:
            row.previous_visit_at = row.last_seen_at
            row.visit_started_at = now
        row.last_seen_at = max(row.last_seen_at, now)
        return row.previous_visit_at


@dataclass(frozen=True)
class DashboardSummary:
    """The dashboard's figures."""

    photos: int
    since: datetime | None
    new_sightings: int
    sightings: dict[str, int]
    awaiting_action: int
    open_alerts: int
    failed_alerts: list[Alert] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    # Photos by warning code (`protect.register.WARNING_CODES`).
    photo_warnings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "since": self.since.isoformat() if self.since else None,
            "new_sightings": self.new_sightings,
            "sightings": self.sightings,
            "awaiting_action": self.awaiting_action,
            "open_alerts": self.open_alerts,
            "alerts": self.alerts,
            "photo_warnings": self.photo_warnings,
            "failed_alerts": [
                {"id": a.id, "kind": a.kind, "last_error": a.last_error, "attempts": a.attempts}
                for a in self.failed_alerts
            ],
        }


def dashboard_summary(store: Store, org: Organisation, since: datetime | None) -> DashboardSummary:
    """Photos protected (and those with a warning, by code), places (page and image) first
    seen since `since` (all of them when None), those the organisation has not acted on,
    sightings by status, and its open alerts (pending and failed)."""
    counts = organisation_summary(store, org)
    new = organisation_places(store, org, since=since)
    everything = organisation_places(store, org)
    states = states_of(store, org, [f.sighting.id for f in everything])
    with store.session() as s:
        failed = list(
            s.scalars(
                select(Alert)
                .where(Alert.organisation_id == org.id, Alert.status == "failed")
                .order_by(Alert.id.desc())
                .limit(20)
            )
        )
        open_alerts = s.scalar(
            select(func.count())
            .select_from(Alert)
            .where(Alert.organisation_id == org.id, Alert.status.in_(OPEN_ALERT_STATUSES))
        )
    return DashboardSummary(
        photos=counts["photos"],
        since=since,
        new_sightings=len(new),
        sightings={
            status: sum(1 for f in everything if f.sighting.status == status)
            for status in SIGHTING_STATUSES
        },
        awaiting_action=sum(1 for st in states.values() if st.state == "new"),
        open_alerts=int(open_alerts or 0),
        failed_alerts=failed,
        alerts=counts["alerts"],
        photo_warnings=counts["photo_warnings"],
    )


# ---------------------------------------------------------------------- album monitors


@dataclass(frozen=True)
class AlbumMonitor:
    """One of the organisation's album pages: its watch, profile, last check and each photo's
    view series (oldest first)."""

    name: str
    url: str
    profile: SiteProfile
    recheck_every: int
    last_run_at: datetime | None
    series: dict[str, list[tuple[datetime, int]]]
    spike_alerts: list[Alert]


def _album_prefix(org: Organisation) -> str:
    return f"{ALBUM_PREFIX}{org.id}-"


def add_album_monitor(
    store: Store,
    org: Organisation,
    url: str,
    *,
    item: str,
    item_views: str,
    item_image: str = "img",
    recheck_every: int = 6 * 3600,
    actor: str,
) -> Watch:
    """Watch one of the organisation's own album pages: each `item` block's `item_image` and
    its `item_views` counter are read on every check. ActionRefused for a bad URL or profile;
    adding the same page twice changes its profile."""
    page = (url or "").strip()
    if not (item or "").strip() or not (item_views or "").strip():
        raise ActionRefused(
            "an album needs a site profile: the CSS selector of each photo block (item) and of "
            "its view counter (item_views)"
        )
    from urllib.parse import urlsplit

    host = (urlsplit(page).hostname or "").lower()
    profile = SiteProfile(
        item=item.strip(), item_image=(item_image or "img").strip(), item_views=item_views.strip()
    )
    try:
        watch = Watch(
            name=f"{_album_prefix(org)}{url_key(page)[:12]}",
            seeds=(page,),
            allowed_domains=(host,) if host else (),
            max_depth=0,
            max_pages=1,
            recheck_every=recheck_every,
            profiles={host: profile},
            organisation=org.name,
        )
    except InputFormatError as exc:
        raise ActionRefused(str(exc)) from None
    save_watch(store, watch, replace=True)
    with store.session() as s:
        audit.record(
            s,
            actor=actor,
            action="org.album.add",
            object_type="crawl_watch",
            object_id=watch.name,
            details={"organisation": org.name, "album": page, "profile": profile.__dict__},
        )
    return watch


def _spike_alerts(store: Store, org: Organisation, album: str) -> list[Alert]:
    with store.session() as s:
        rows = s.scalars(
            select(Alert)
            .where(Alert.organisation_id == org.id, Alert.kind == "view-spike")
            .order_by(Alert.id.desc())
            .limit(500)
        )
        return [a for a in rows if a.payload.get("album") == album]


def album_monitors(store: Store, org: Organisation) -> list[AlbumMonitor]:
    """The organisation's album monitors with each photo's view series and spike alerts."""
    out: list[AlbumMonitor] = []
    for watch, last in list_watches(store):
        if not watch.name.startswith(_album_prefix(org)) or watch.organisation != org.name:
            continue
        url = watch.seeds[0]
        with store.session() as s:
            series = album_series(s, org, url)
        profile = next(iter(watch.profiles.values()), SiteProfile())
        out.append(
            AlbumMonitor(
                name=watch.name,
                url=url,
                profile=profile,
                recheck_every=watch.recheck_every,
                last_run_at=last,
                series=series,
                spike_alerts=_spike_alerts(store, org, url),
            )
        )
    return out


def remove_album_monitor(store: Store, org: Organisation, name: str, *, actor: str) -> None:
    """Stop watching one of the organisation's album pages (its view readings stay);
    SightingNotFound-like refusal (ActionRefused) for a name that is not its own."""
    mine = {m.name: m for m in album_monitors(store, org)}
    if name not in mine:
        raise ActionRefused(f"no album monitor {name[:80]!r}")
    remove_watch(store, name)
    with store.session() as s:
        audit.record(
            s,
            actor=actor,
            action="org.album.remove",
            object_type="crawl_watch",
            object_id=name,
            details={"organisation": org.name, "album": mine[name].url},
        )


# ---------------------------------------------------------------------- test alerts


@dataclass(frozen=True)
class ChannelResult:
    """How one channel took the test alert."""

    channel: str  # "email" or "webhook"
    target: str
    ok: bool
    detail: str


def sample_alert_payload(org: Organisation) -> dict[str, Any]:
    return {
        "type": "test",
        "organisation": org.name,
        "sent_at": utcnow().isoformat(),
        "message": "A test alert from childguard: this channel works.",
    }


def send_test_alert(
    org: Organisation,
    transport: AlertTransport,
    *,
    actor: str,
    store: Store | None = None,
    check_url: Callable[[str], None] | None = None,
) -> list[ChannelResult]:
    """Send one test alert on each of the organisation's channels, through the same email and
    webhook code the real alerts use; each channel's result (audited when `store` is given).
    `check_url` may refuse the webhook's address (it raises). ActionRefused when the
    organisation has no channel."""
    if not org.emails and not org.webhook_url:
        raise ActionRefused("add an email address or a webhook first")
    payload = sample_alert_payload(org)
    subject = f"[childguard] Test alert for {org.name}"
    body = (
        f"This is a test alert for {org.name}. Alerts about copies of your photos will arrive "
        "here like this one."
    )
    results: list[ChannelResult] = []
    if org.emails:
        target = ", ".join(org.emails)
        if transport.smtp is None:
            results.append(ChannelResult("email", target, False, "no SMTP server is configured"))
        else:
            try:
                msg_id = send_email(transport.smtp, org.emails, subject, body)
                results.append(ChannelResult("email", target, True, f"sent ({msg_id})"))
            except (AlertDeliveryError, ValueError) as exc:
                results.append(ChannelResult("email", target, False, str(exc)))
    if org.webhook_url:
        refused = _refusal(check_url, org.webhook_url)
        if refused is not None:
            results.append(ChannelResult("webhook", org.webhook_url, False, refused))
        elif not org.webhook_secret:
            results.append(ChannelResult("webhook", org.webhook_url, False, "no webhook secret"))
        else:
            try:
                sent = send_webhook(
                    org.webhook_url,
                    org.webhook_secret,
                    payload,
                    policy=transport.webhook_policy,
                )
                results.append(
                    ChannelResult("webhook", org.webhook_url, True, f"HTTP {sent.status_code}")
                )
            except (AlertDeliveryError, ValueError) as exc:
                results.append(ChannelResult("webhook", org.webhook_url, False, str(exc)))
    if store is not None:
        with store.session() as s:
            audit.record(
                s,
                actor=actor,
                action="org.test_alert",
                object_type="organisation",
                object_id=org.id,
                details={"results": [r.__dict__ for r in results]},
            )
    return results


def _refusal(check_url: Callable[[str], None] | None, url: str) -> str | None:
    if check_url is None:
        return None
    try:
        check_url(url)
    except Exception as exc:  # the policy's own refusal type, whatever it is
        return str(exc) or type(exc).__name__
    return None


def update_contacts(
    store: Store,
    org: Organisation,
    *,
    emails: Sequence[str] | None = None,
    webhook_url: str | None = None,
    remove_webhook: bool = False,
    actor: str,
    check_url: Callable[[str], None] | None = None,
) -> tuple[Organisation, dict[str, Any]]:
    """Change the organisation's alert emails (replaced as a whole) and webhook
    (`childguard.protect.organisations.update_organisation`, audited); ActionRefused for an
    address that is not valid or that `check_url` refuses. Returns the organisation as it is
    now and what changed."""
    url = (webhook_url or "").strip() or None
    if url is not None:
        refused = _refusal(check_url, url)
        if refused is not None:
            raise ActionRefused(f"the webhook address is refused: {refused}")
    with store.session() as s:
        row = s.get(Organisation, org.id)
        if row is None:
            raise ActionRefused("the organisation is gone")
        try:
            changes = update_organisation(
                s,
                row,
                emails=list(emails) if emails is not None else None,
                webhook_url=url,
                remove_webhook=remove_webhook and url is None,
                actor=actor,
            )
        except OrganisationError as exc:
            raise ActionRefused(str(exc)) from None
        s.flush()
        s.expunge(row)
        return row, changes


def organisation_alerts(
    store: Store, org: Organisation, statuses: Sequence[str] | None = None, limit: int = 200
) -> list[Alert]:
    """The organisation's alerts, newest first, optionally of some statuses."""
    query = select(Alert).where(Alert.organisation_id == org.id)
    if statuses:
        query = query.where(Alert.status.in_(list(statuses)))
    with store.session() as s:
        return list(s.scalars(query.order_by(Alert.id.desc()).limit(limit)))
