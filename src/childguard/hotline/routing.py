# Owns the route of each assessed item and URL, and every step of its state.
"""Routing: where an assessed item, at one URL, goes, and how far it got.

The rules (`decide`), from the outcome and the hosting country of the URL's host trace:

- `baseline` or `nationally-illegal`, hosted in the home country (or where the country is not
  known): a police referral to the home country's police;
- hosted abroad in a country with an active partner hotline: a forwarding to that hotline;
- hosted abroad with no hotline: a police referral (the home police);
- `harvested`: a terms-of-service notice to the platform that covers the host (or the host's
  abuse contact when no platform destination does), and an alert to each organisation whose
  protected bank the photo matched;
- `not-illegal`: closed, with the reason;
- `undetermined`: no route until an assessment decides.

`propose_routes` gives every decided item one route per place it was seen (`item_route`,
state `assessed`). An analyst may override a proposed route (the reason is kept) and must
confirm it (`confirm`): **nothing leaves the hotline before that**, and a match alone never
routes anything. After confirmation a route moves

    assessed -> referred (police) / forwarded (hotline) -> notified -> removed -> verified

(`closed` for a closed route), each step with its time. Referrals, notices and removal checks
move routes through `mark_referred`, `mark_notified` and `record_check`, in their own
transactions, and every change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.alerts.dispatch import queue_alert
from childguard.errors import ChildguardError, InputFormatError
from childguard.hotline.destinations import (
    DestinationInfo,
    DestinationNotFound,
    home_country,
    list_destinations,
)
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item, ItemPlace, Report, ReportUrl
from childguard.store.protect_models import Organisation
from childguard.store.referral_models import ROUTES, HotlineDestination, ItemRoute

ILLEGAL = ("baseline", "nationally-illegal")
DECIDED_STATES = ("assessed", "inherited")
# The state each route kind takes when its referral has been sent.
REFERRED_STATE = {"police": "referred", "hotline": "forwarded"}
# States from which a removal check may find the content gone.
LIVE_STATES = ("assessed", "referred", "forwarded", "notified")
ENDED_STATES = ("verified", "closed")
MAX_REASON = 2000


class RouteNotFound(ChildguardError):
    """No route has this id."""


class RouteNotConfirmed(ChildguardError):
    """An analyst has not confirmed this route, so nothing may leave for it."""


class InvalidRoute(InputFormatError):
    """An override or a step the route's state does not allow; the message says why."""


@dataclass(frozen=True)
class Decision:
    """What the rules say for one item at one URL."""

    route: str
    destination_id: int | None
    reason: str


@dataclass(frozen=True)
class RouteInfo:
    id: int
    item_id: int
    place_id: int
    url: str
    host: str
    country: str | None
    outcome: str
    proposed_route: str
    route: str
    destination_id: int | None
    destination_name: str | None
    reason: str
    override_reason: str | None
    overridden_by: str | None
    overridden_at: datetime | None
    state: str
    confirmed_by: str | None
    confirmed_at: datetime | None
    reported_at: datetime
    assessed_at: datetime
    referred_at: datetime | None
    forwarded_at: datetime | None
    notified_at: datetime | None
    removed_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    referral_id: int | None
    notice_id: int | None
    next_check_at: datetime | None
    last_check_at: datetime | None
    last_check_result: str | None
    organisation_alerted_at: datetime | None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        out["confirmed"] = self.confirmed
        return out


_COLUMNS = [f.name for f in fields(RouteInfo) if f.name != "destination_name"]


def _info(row: ItemRoute, destination_name: str | None) -> RouteInfo:
    return RouteInfo(
        destination_name=destination_name, **{name: getattr(row, name) for name in _COLUMNS}
    )


def _query() -> Any:
    return select(ItemRoute, HotlineDestination.name).outerjoin(
        HotlineDestination, HotlineDestination.id == ItemRoute.destination_id
    )


def _by_country(destinations: Iterable[DestinationInfo], kind: str) -> dict[str, DestinationInfo]:
    out: dict[str, DestinationInfo] = {}
    for d in destinations:
        if d.kind == kind and d.active and d.country is not None:
            out.setdefault(d.country, d)
    return out


def decide(
    outcome: str,
    country: str | None,
    host: str,
    *,
    home_country: str,
    destinations: Sequence[DestinationInfo],
) -> Decision | None:
    """The route the rules give `outcome` hosted at `host` in `country` (see the module doc);
    None while the outcome is undetermined."""
    home = home_country.upper()
    if outcome in ILLEGAL:
        police = _by_country(destinations, "police").get(home)
        police_id = police.id if police is not None else None
        missing = "" if police is not None else f"; no police contact for {home} is configured"
        if country is None:
            return Decision(
                "police", police_id, f"hosting country unknown: police of {home}" + missing
            )
        if country == home:
            return Decision("police", police_id, f"hosted in {home}: police referral" + missing)
        hotline = _by_country(destinations, "hotline").get(country)
        if hotline is not None:
            return Decision(
                "hotline", hotline.id, f"hosted in {country}: forwarded to {hotline.name}"
            )
        return Decision(
            "police",
            police_id,
            f"hosted in {country}, which has no partner hotline: police of {home}" + missing,
        )
    if outcome == "harvested":
        for d in destinations:
            if d.kind == "platform" and d.active and d.covers_host(host):
                return Decision("tos", d.id, f"harvested photo on {host}: notice to {d.name}")
        return Decision(
            "tos", None, f"harvested photo on {host}: notice to the host's abuse contact"
        )
    if outcome == "not-illegal":
        return Decision("closed", None, "assessed not illegal: closed")
    return None


def _place_facts(session: Session, place: ItemPlace) -> tuple[str | None, datetime]:
    """The hosting country of a place (from its report URL's trace) and when it was first
    reported."""
    country = None
    reported_at = place.first_seen
    if place.report_url_id is not None:
        url = session.get(ReportUrl, place.report_url_id)
        if url is not None and url.trace:
            value = url.trace.get("country")
            country = str(value).upper() if value else None
    if place.report_id is not None:
        report = session.get(Report, place.report_id)
        if report is not None:
            reported_at = min(reported_at, report.received_at)
    return country, reported_at


def propose_routes(
    store: Store, *, default_home: str, now: datetime | None = None, limit: int = 500
) -> list[RouteInfo]:
    """A proposed route for each place of each decided item that has none yet (at most
    `limit`), by `decide` with the current destinations."""
    now = now or utcnow()
    home = home_country(store, default_home)
    destinations = list_destinations(store, active_only=True)
    names = {d.id: d.name for d in destinations}
    created: list[RouteInfo] = []
    with store.session() as session:
        rows = session.execute(
            select(ItemPlace, Item.outcome)
            .join(Item, Item.id == ItemPlace.item_id)
            .outerjoin(
                ItemRoute,
                and_(ItemRoute.item_id == ItemPlace.item_id, ItemRoute.place_id == ItemPlace.id),
            )
            .where(
                Item.state.in_(DECIDED_STATES),
                Item.outcome.is_not(None),
                Item.outcome != "undetermined",
                ItemRoute.id.is_(None),
            )
            .order_by(ItemPlace.id)
            .limit(limit)
        ).all()
        for place, outcome in rows:
            host = (urlsplit(place.url).hostname or "").lower()
            country, reported_at = _place_facts(session, place)
            decision = decide(
                str(outcome), country, host, home_country=home, destinations=destinations
            )
            if decision is None:
                continue
            try:
                with session.begin_nested():
                    row = ItemRoute(
                        item_id=place.item_id,
                        place_id=place.id,
                        url=place.url,
                        host=host[:255],
                        country=country,
                        outcome=outcome,
                        proposed_route=decision.route,
                        route=decision.route,
                        destination_id=decision.destination_id,
                        reason=decision.reason,
                        reported_at=reported_at,
                        assessed_at=now,
                    )
                    session.add(row)
                    session.flush()
            except IntegrityError:
                continue  # another worker proposed it first
            audit.record(
                session,
                actor="system",
                action="route.propose",
                object_type="route",
                object_id=row.id,
                details={
                    "item": place.item_id,
                    "route": decision.route,
                    "destination": decision.destination_id,
                    "reason": decision.reason,
                },
            )
            created.append(_info(row, names.get(row.destination_id or 0)))
    return created


def get_route(store: Store, route_id: int) -> RouteInfo:
    with store.session() as session:
        found = session.execute(_query().where(ItemRoute.id == route_id)).first()
        if found is None:
            raise RouteNotFound(f"no route {route_id}")
        return _info(found[0], found[1])


def list_routes(
    store: Store,
    *,
    state: str | None = None,
    route: str | None = None,
    item_id: int | None = None,
    ids: Sequence[int] | None = None,
    confirmed: bool | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[RouteInfo]:
    """Routes in id order, filtered; `after_id` pages."""
    query = _query().where(ItemRoute.id > after_id)
    if state is not None:
        query = query.where(ItemRoute.state == state)
    if route is not None:
        query = query.where(ItemRoute.route == route)
    if item_id is not None:
        query = query.where(ItemRoute.item_id == item_id)
    if ids is not None:
        query = query.where(ItemRoute.id.in_(list(ids)))
    if confirmed is not None:
        column = ItemRoute.confirmed_at
        query = query.where(column.is_not(None) if confirmed else column.is_(None))
    with store.session() as session:
        found = session.execute(query.order_by(ItemRoute.id).limit(limit)).all()
        return [_info(row, name) for row, name in found]


def _route_row(session: Session, route_id: int) -> ItemRoute:
    row = session.get(ItemRoute, route_id)
    if row is None:
        raise RouteNotFound(f"no route {route_id}")
    return row


def _name_of(session: Session, destination_id: int | None) -> str | None:
    if destination_id is None:
        return None
    row = session.get(HotlineDestination, destination_id)
    return row.name if row is not None else None


def override(
    store: Store,
    route_id: int,
    *,
    route: str,
    reason: str,
    actor: str,
    destination_id: int | None = None,
) -> RouteInfo:
    """An analyst's change of a route before it is confirmed, kept with its reason."""
    if route not in ROUTES:
        raise InvalidRoute(f"route {route!r} is not one of {', '.join(ROUTES)}")
    text = (reason or "").strip()
    if not text:
        raise InvalidRoute("an override needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidRoute(f"the reason is over {MAX_REASON} characters")
    with store.session() as session:
        row = _route_row(session, route_id)
        if row.confirmed_at is not None:
            raise InvalidRoute(f"route {route_id} is confirmed already; it cannot be changed")
        if destination_id is not None:
            destination = session.get(HotlineDestination, destination_id)
            if destination is None:
                raise DestinationNotFound(f"no destination {destination_id}")
            wanted = {"police": "police", "hotline": "hotline", "tos": "platform"}.get(route)
            if destination.kind != wanted:
                raise InvalidRoute(
                    f"destination {destination.name!r} is a {destination.kind}, not a "
                    f"destination for the {route} route"
                )
        before = {"route": row.route, "destination": row.destination_id}
        row.route = route
        row.destination_id = None if route == "closed" else destination_id
        row.override_reason = text
        row.overridden_by = actor
        row.overridden_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="route.override",
            object_type="route",
            object_id=row.id,
            details={
                "before": before,
                "after": {"route": route, "destination": row.destination_id},
                "reason": text,
            },
        )
        session.flush()
        return _info(row, _name_of(session, row.destination_id))


def _protected_organisations(session: Session, item: Item) -> list[Organisation]:
    bank_ids = {
        int(m["bank_id"])
        for m in item.matches or ()
        if m.get("bank_kind") == "protected" and m.get("bank_id") is not None
    }
    if not bank_ids:
        return []
    return list(
        session.scalars(select(Organisation).where(Organisation.bank_id.in_(sorted(bank_ids))))
    )


def _alert_organisations(session: Session, row: ItemRoute, now: datetime) -> int:
    """Alert each organisation whose protected bank the harvested photo matched."""
    item = session.get(Item, row.item_id)
    if item is None:
        return 0
    queued = 0
    place = session.get(ItemPlace, row.place_id)
    for org in _protected_organisations(session, item):
        matched = [
            m
            for m in item.matches or ()
            if m.get("bank_kind") == "protected" and m.get("bank_id") == org.bank_id
        ]
        best = min(matched, key=lambda m: m.get("distance") or 0) if matched else {}
        payload = {
            "type": "sighting",
            "source": "hotline",
            "organisation": org.name,
            "sighting_id": None,
            "route_id": row.id,
            "site": row.host,
            "page_url": (place.page_url if place is not None else None) or row.url,
            "page_title": None,
            "image_url": row.url,
            "first_seen": row.reported_at.isoformat(),
            "status": "reported to the hotline",
            "match": {
                "bank": best.get("bank_name"),
                "bank_entry_id": best.get("entry_id"),
                "signal_type": best.get("signal_type"),
                "distance": best.get("distance"),
                "photo_id": None,
                "file_name": None,
                "title": None,
                "published_url": None,
            },
        }
        if queue_alert(session, org, "sighting", f"hotline-route:{row.id}", payload) is not None:
            queued += 1
    if queued:
        row.organisation_alerted_at = now
    return queued


def confirm(
    store: Store,
    route_ids: Sequence[int],
    *,
    actor: str,
    check_after: timedelta,
    now: datetime | None = None,
) -> list[RouteInfo]:
    """An analyst's confirmation of routes: from here on referrals and notices may go out
    for them. A closed route is closed now; the others get their first removal check due
    `check_after` from now; harvested ones alert the organisations whose photos they are."""
    now = now or utcnow()
    if not route_ids:
        raise InvalidRoute("no routes to confirm")
    out: list[RouteInfo] = []
    with store.session() as session:
        for route_id in dict.fromkeys(route_ids):
            row = _route_row(session, route_id)
            if row.confirmed_at is not None:
                out.append(_info(row, _name_of(session, row.destination_id)))
                continue
            row.confirmed_by = actor
            row.confirmed_at = now
            alerted = 0
            if row.route == "closed":
                row.state = "closed"
                row.closed_at = now
            else:
                row.next_check_at = now + check_after
                if row.route == "tos":
                    alerted = _alert_organisations(session, row, now)
            audit.record(
                session,
                actor=actor,
                action="route.confirm",
                object_type="route",
                object_id=row.id,
                details={
                    "route": row.route,
                    "destination": row.destination_id,
                    "organisations_alerted": alerted,
                },
            )
            session.flush()
            out.append(_info(row, _name_of(session, row.destination_id)))
    return out


def _confirmed_rows(session: Session, route_ids: Sequence[int]) -> list[ItemRoute]:
    rows = []
    for route_id in dict.fromkeys(route_ids):
        row = _route_row(session, route_id)
        if row.confirmed_at is None:
            raise RouteNotConfirmed(f"route {route_id} is not confirmed by an analyst")
        if row.state == "closed":
            raise InvalidRoute(f"route {route_id} is closed")
        rows.append(row)
    return rows


def mark_referred(
    session: Session, route_ids: Sequence[int], referral_id: int, *, at: datetime
) -> None:
    """In the caller's transaction: the referral carrying these routes was sent. Police
    routes become `referred`, hotline routes `forwarded`; later states are kept."""
    for row in _confirmed_rows(session, route_ids):
        state = REFERRED_STATE.get(row.route)
        if state is None:
            raise InvalidRoute(f"route {row.id} is a {row.route} route; it is not referred")
        row.referral_id = referral_id
        if row.route == "police" and row.referred_at is None:
            row.referred_at = at
        if row.route == "hotline" and row.forwarded_at is None:
            row.forwarded_at = at
        if row.state == "assessed":
            row.state = state
        audit.record(
            session,
            actor="system",
            action=f"route.{state}",
            object_type="route",
            object_id=row.id,
            details={"referral": referral_id},
        )


def mark_notified(
    session: Session, route_ids: Sequence[int], notice_id: int, *, at: datetime
) -> None:
    """In the caller's transaction: a notice for these routes went out. The first one makes
    a live route `notified` and sets `notified_at`; re-notices keep it."""
    for row in _confirmed_rows(session, route_ids):
        row.notice_id = notice_id
        first = row.notified_at is None
        if first:
            row.notified_at = at
        if row.state in ("assessed", "referred", "forwarded"):
            row.state = "notified"
        audit.record(
            session,
            actor="system",
            action="route.notified",
            object_type="route",
            object_id=row.id,
            details={"notice": notice_id, "first": first},
        )


def _state_before_removal(row: ItemRoute) -> str:
    if row.notified_at is not None:
        return "notified"
    if row.forwarded_at is not None:
        return "forwarded"
    if row.referred_at is not None:
        return "referred"
    return "assessed"


def record_check(
    session: Session,
    route_id: int,
    result: str,
    *,
    at: datetime,
    next_check_at: datetime | None,
    verify_after: timedelta,
) -> str:
    """In the caller's transaction: apply a removal check's result; the route's new state.

    `removed` makes a live route `removed` (at the check's time); a later `removed` at least
    `verify_after` after that makes it `verified` (no more checks). `still-online` or
    `changed` after a removal puts it back where it was. `error` changes nothing but the
    next check's time."""
    row = _route_row(session, route_id)
    if row.confirmed_at is None:
        raise RouteNotConfirmed(f"route {route_id} is not confirmed by an analyst")
    before = row.state
    row.last_check_at = at
    row.last_check_result = result
    row.next_check_at = next_check_at
    if result == "removed":
        if row.state in LIVE_STATES:
            row.state = "removed"
            row.removed_at = at
        elif (
            row.state == "removed"
            and row.removed_at is not None
            and at - row.removed_at >= verify_after
        ):
            row.state = "verified"
            row.verified_at = at
            row.next_check_at = None
    elif result in ("still-online", "changed") and row.state == "removed":
        row.removed_at = None
        row.state = _state_before_removal(row)
    if row.state != before:
        audit.record(
            session,
            actor="system",
            action=f"route.{row.state}",
            object_type="route",
            object_id=row.id,
            details={"check": result, "before": before},
        )
    return row.state


def schedule_check(session: Session, route_ids: Sequence[int], *, at: datetime) -> None:
    """In the caller's transaction: bring the next removal check of these routes forward to
    `at` (a host said the content is gone; only a check can say so)."""
    session.execute(
        update(ItemRoute)
        .where(
            ItemRoute.id.in_(list(route_ids)),
            ItemRoute.confirmed_at.is_not(None),
            ItemRoute.state.not_in(ENDED_STATES),
        )
        .values(next_check_at=at)
    )


def due_checks(store: Store, *, now: datetime, limit: int = 100) -> list[RouteInfo]:
    """Confirmed routes, not verified or closed, whose removal check is due."""
    query = (
        _query()
        .where(
            ItemRoute.confirmed_at.is_not(None),
            ItemRoute.state.not_in(ENDED_STATES),
            ItemRoute.next_check_at.is_not(None),
            ItemRoute.next_check_at <= now,
        )
        .order_by(ItemRoute.next_check_at, ItemRoute.id)
        .limit(limit)
    )
    with store.session() as session:
        return [_info(row, name) for row, name in session.execute(query).all()]
