"""Routing: the rules from outcome and hosting country, overrides with reasons, the analyst's
confirmation before anything leaves, and each step of a route's state, on SQLite and
PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import Parameters, Type
from sqlalchemy import select, update

from childguard.accounts.passwords import use_parameters
from childguard.hotline import destinations, routing
from childguard.hotline.assessments import record_vote
from childguard.hotline.destinations import InvalidDestination
from childguard.hotline.routing import InvalidRoute, RouteNotConfirmed, decide
from childguard.matcher import Match
from childguard.protect.organisations import create_organisation
from childguard.store.db import Store
from childguard.store.hotline_models import ItemPlace
from childguard.store.models import AuditEvent
from childguard.store.protect_models import Alert
from hotline.review_items import make_item
from hotline.routed_items import analysts

BASELINE = {"age_band": "prepubescent", "severity": "A"}
NOT_ILLEGAL = {"age_band": "adult", "severity": "none"}
HARVESTED = {"age_band": "prepubescent", "severity": "posed", "harvested": True}
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGE_RECIPIENT_CHARS = 62


@pytest.fixture(autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    yield
    use_parameters(None)


def _assessed(store: Store, seed: int, facts: dict[str, object], **kwargs: object) -> int:
    item_id = make_item(store, seed, **kwargs)  # type: ignore[arg-type]
    for analyst in analysts(store):
        record_vote(store, item_id, analyst, facts)
    return item_id


def _destinations(store: Store) -> dict[str, int]:
    police = destinations.create_destination(
        store,
        name="Federal police",
        kind="police",
        country="be",
        channel="download",
        actor="user:9",
    )
    nl = destinations.create_destination(
        store,
        name="Offlimits",
        kind="hotline",
        country="NL",
        channel="email",
        address="reports@hotline.example",
        actor="user:9",
    )
    platform = destinations.create_destination(
        store,
        name="Photo site ToS",
        kind="platform",
        channel="webhook",
        address="https://abuse.example/hook",
        hosts=[".site.test"],
        actor="user:9",
    )
    return {"police": police.id, "nl": nl.id, "platform": platform.id}


def _set_country(store: Store, item_id: int, country: str | None) -> None:
    """What the host trace said, put on the place's report URL, as processing records it."""
    from childguard.store.hotline_models import Report, ReportUrl

    with store.session() as s:
        report = Report(tracking_hash=secrets.token_hex(32), channel="web", received_at=T0)
        s.add(report)
        s.flush()
        url = ReportUrl(
            report_id=report.id,
            url=f"http://site.test/{item_id}.jpg",
            trace={"country": country} if country else None,
        )
        s.add(url)
        s.flush()
        s.execute(
            update(ItemPlace)
            .where(ItemPlace.item_id == item_id)
            .values(report_id=report.id, report_url_id=url.id)
        )


def test_the_rules_route_by_outcome_and_hosting_country(store: Store) -> None:
    ids = _destinations(store)
    known = destinations.list_destinations(store)
    kw = {"home_country": "BE", "destinations": known}
    at_home = decide("baseline", "BE", "a.test", **kw)  # type: ignore[arg-type]
    assert at_home is not None and (at_home.route, at_home.destination_id) == (
        "police",
        ids["police"],
    )
    abroad = decide("nationally-illegal", "NL", "a.test", **kw)  # type: ignore[arg-type]
    assert abroad is not None and (abroad.route, abroad.destination_id) == ("hotline", ids["nl"])
    no_hotline = decide("baseline", "BR", "a.test", **kw)  # type: ignore[arg-type]
    assert no_hotline is not None and no_hotline.route == "police"
    assert "BR" in no_hotline.reason and "no partner hotline" in no_hotline.reason
    unknown = decide("baseline", None, "a.test", **kw)  # type: ignore[arg-type]
    assert unknown is not None and unknown.route == "police" and "unknown" in unknown.reason
    tos = decide("harvested", "BE", "img.site.test", **kw)  # type: ignore[arg-type]
    assert tos is not None and (tos.route, tos.destination_id) == ("tos", ids["platform"])
    other = decide("harvested", "BE", "elsewhere.test", **kw)  # type: ignore[arg-type]
    assert other is not None and other.route == "tos" and other.destination_id is None
    closed = decide("not-illegal", "BE", "a.test", **kw)  # type: ignore[arg-type]
    assert closed is not None and closed.route == "closed" and "not illegal" in closed.reason
    assert decide("undetermined", "BE", "a.test", **kw) is None  # type: ignore[arg-type]
    # An inactive hotline is not routed to; the police are.
    destinations.update_destination(store, ids["nl"], actor="user:9", active=False)
    active = destinations.list_destinations(store, active_only=True)
    fallback = decide("baseline", "NL", "a.test", home_country="BE", destinations=active)
    assert fallback is not None and fallback.route == "police"
    # A hotline at home with no police configured still routes to police, and says so.
    bare = decide("baseline", "BE", "a.test", home_country="BE", destinations=[])
    assert bare is not None and bare.destination_id is None and "no police" in bare.reason


def test_destination_checks_and_the_home_country_are_audited(store: Store) -> None:
    with pytest.raises(InvalidDestination, match="country"):
        destinations.create_destination(
            store, name="x", kind="police", channel="download", actor="u"
        )
    with pytest.raises(InvalidDestination, match="email"):
        destinations.create_destination(
            store,
            name="x",
            kind="hotline",
            country="FR",
            channel="email",
            address="nope",
            actor="u",
        )
    with pytest.raises(InvalidDestination, match="age"):
        destinations.create_destination(
            store,
            name="x",
            kind="police",
            country="FR",
            channel="download",
            public_key="ssh-rsa AAAA",
            actor="u",
        )
    from pyrage import x25519

    recipient = str(x25519.Identity.generate().to_public())
    assert len(recipient) == AGE_RECIPIENT_CHARS
    made = destinations.create_destination(
        store,
        name="Police FR",
        kind="police",
        country="fr",
        channel="download",
        public_key=recipient,
        actor="user:1",
    )
    assert made.country == "FR" and made.public_key == recipient
    with pytest.raises(InvalidDestination, match="exists"):
        destinations.create_destination(
            store, name="Police FR", kind="police", country="FR", channel="download", actor="u"
        )
    with pytest.raises(InvalidDestination, match="cannot change kind"):
        destinations.update_destination(store, made.id, actor="u", kind="hotline")
    assert destinations.home_country(store, "be") == "BE"
    assert destinations.set_home_country(store, "nl", actor="user:2") == "NL"
    assert destinations.home_country(store, "BE") == "NL"
    with store.session() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        create = s.scalar(select(AuditEvent).where(AuditEvent.action == "destination.create"))
    assert "routing.home-country" in actions
    assert create is not None and create.actor == "user:1"
    assert recipient not in str(create.details)  # keys are not copied into the log


def test_routes_are_proposed_overridden_and_confirmed_before_anything_leaves(
    store: Store,
) -> None:
    ids = _destinations(store)
    home = _assessed(store, 1, BASELINE)
    abroad = _assessed(store, 2, BASELINE)
    clean = _assessed(store, 3, NOT_ILLEGAL)
    waiting = make_item(store, 4)  # never assessed: no route
    _set_country(store, home, "BE")
    _set_country(store, abroad, "NL")
    proposed = routing.propose_routes(store, default_home="BE", now=T0)
    by_item = {r.item_id: r for r in proposed}
    assert set(by_item) == {home, abroad, clean} and waiting not in by_item
    assert by_item[home].route == "police" and by_item[home].destination_name == "Federal police"
    assert by_item[home].reported_at == T0  # the report's time, not the item's
    assert by_item[abroad].route == "hotline" and by_item[abroad].country == "NL"
    assert by_item[clean].route == "closed"
    assert all(r.state == "assessed" and not r.confirmed for r in proposed)
    assert routing.propose_routes(store, default_home="BE") == []  # one route per place

    # Nothing leaves before confirmation.
    with store.session() as s, pytest.raises(RouteNotConfirmed):
        routing.mark_referred(s, [by_item[home].id], 1, at=T0)

    # An override keeps its reason and who made it; the proposal stays on record.
    with pytest.raises(InvalidRoute, match="reason"):
        routing.override(store, by_item[abroad].id, route="police", reason=" ", actor="user:5")
    with pytest.raises(InvalidRoute, match="not a destination"):
        routing.override(
            store,
            by_item[abroad].id,
            route="police",
            reason="x",
            actor="user:5",
            destination_id=ids["nl"],
        )
    changed = routing.override(
        store,
        by_item[abroad].id,
        route="police",
        reason="the NL hotline asked us to",
        actor="user:5",
        destination_id=ids["police"],
    )
    assert (changed.proposed_route, changed.route) == ("hotline", "police")
    assert changed.override_reason == "the NL hotline asked us to"
    assert changed.overridden_by == "user:5"

    confirmed = routing.confirm(
        store,
        [by_item[home].id, by_item[abroad].id, by_item[clean].id],
        actor="user:5",
        check_after=timedelta(hours=6),
        now=T0 + timedelta(hours=1),
    )
    states = {r.item_id: r.state for r in confirmed}
    assert states == {home: "assessed", abroad: "assessed", clean: "closed"}
    assert all(r.confirmed_by == "user:5" for r in confirmed)
    assert routing.get_route(store, by_item[home].id).next_check_at == T0 + timedelta(hours=7)
    with pytest.raises(InvalidRoute, match="confirmed already"):
        routing.override(store, by_item[home].id, route="closed", reason="x", actor="user:5")
    with store.session() as s:
        kinds = set(
            s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "route")).all()
        )
    assert {"route.propose", "route.override", "route.confirm"} <= kinds


def test_a_route_steps_through_referral_notice_removal_and_verification(store: Store) -> None:
    _destinations(store)
    item = _assessed(store, 1, BASELINE)
    _set_country(store, item, "BE")
    (route,) = routing.propose_routes(store, default_home="BE", now=T0)
    routing.confirm(store, [route.id], actor="user:5", check_after=timedelta(hours=6), now=T0)
    at = T0 + timedelta(hours=2)
    with store.session() as s:
        routing.mark_referred(s, [route.id], referral_id_of(store, s), at=at)
    step = routing.get_route(store, route.id)
    assert step.state == "referred" and step.referred_at == at
    with store.session() as s:
        routing.mark_notified(s, [route.id], notice_id_of(s), at=at + timedelta(hours=1))
        routing.mark_notified(s, [route.id], notice_id_of(s), at=at + timedelta(hours=25))
    step = routing.get_route(store, route.id)
    assert step.state == "notified" and step.notified_at == at + timedelta(hours=1)

    verify = timedelta(hours=24)
    gone = at + timedelta(hours=30)
    with store.session() as s:
        assert (
            routing.record_check(
                s,
                route.id,
                "error",
                at=gone - timedelta(hours=1),
                next_check_at=gone,
                verify_after=verify,
            )
            == "notified"
        )
        assert (
            routing.record_check(
                s,
                route.id,
                "removed",
                at=gone,
                next_check_at=gone + timedelta(hours=6),
                verify_after=verify,
            )
            == "removed"
        )
        # Back online: back to notified, the removal forgotten.
        assert (
            routing.record_check(
                s,
                route.id,
                "changed",
                at=gone + timedelta(hours=6),
                next_check_at=None,
                verify_after=verify,
            )
            == "notified"
        )
    assert routing.get_route(store, route.id).removed_at is None
    again = gone + timedelta(hours=12)
    with store.session() as s:
        routing.record_check(
            s, route.id, "removed", at=again, next_check_at=again, verify_after=verify
        )
        assert (
            routing.record_check(
                s,
                route.id,
                "removed",
                at=again + timedelta(hours=1),
                next_check_at=again,
                verify_after=verify,
            )
            == "removed"
        )  # not yet held long enough
    assert [r.id for r in routing.due_checks(store, now=again + timedelta(hours=2))] == [route.id]
    with store.session() as s:
        assert (
            routing.record_check(
                s,
                route.id,
                "removed",
                at=again + verify,
                next_check_at=again + verify,
                verify_after=verify,
            )
            == "verified"
        )
    done = routing.get_route(store, route.id)
    assert done.removed_at == again and done.verified_at == again + verify
    assert done.next_check_at is None
    assert routing.due_checks(store, now=again + timedelta(days=30)) == []


def test_a_harvested_photo_of_a_protected_bank_alerts_its_organisation_on_confirmation(
    store: Store,
) -> None:
    with store.session() as s:
        org = create_organisation(s, "Scouts", emails=["parents@scouts.example"])
        bank_id, org_id, bank_name = org.bank_id, org.id, org.bank.name
    match = Match(
        signal_type="pdq",
        distance=4,
        query_value="0" * 64,
        variant=None,
        entry_id=1,
        bank_id=bank_id,
        bank_name=bank_name,
        bank_kind="protected",
        threshold=31,
        value="0" * 64,
        source="protect",
        organisation="Scouts",
        imported_at=None,
        original_id=None,
        classification_scheme=None,
        classification_label=None,
        metadata=None,
        detail=None,
    )
    item = _assessed(store, 1, HARVESTED, matches=[match])
    (route,) = routing.propose_routes(store, default_home="BE", now=T0)
    assert route.route == "tos" and route.destination_id is None
    with store.session() as s:
        assert s.scalars(select(Alert)).all() == []  # nothing before confirmation
    (done,) = routing.confirm(store, [route.id], actor="user:5", check_after=timedelta(hours=6))
    assert done.organisation_alerted_at is not None and done.item_id == item
    with store.session() as s:
        alerts = s.scalars(select(Alert)).all()
    assert [(a.organisation_id, a.payload["source"]) for a in alerts] == [(org_id, "hotline")]
    assert alerts[0].payload["image_url"] == route.url


def referral_id_of(store: Store, session: object) -> int:
    """A referral row to point at (the referrals module writes them for real)."""
    from childguard.store.referral_models import HotlineDestination, Referral

    s = session  # type: ignore[assignment]
    dest = s.scalar(select(HotlineDestination.id).limit(1))  # type: ignore[attr-defined]
    row = Referral(
        reference=f"T-{secrets.token_hex(4)}",
        destination_id=dest,
        kind="police",
        bundle_path="/nowhere.zip",
        bundle_sha256="0" * 64,
        manifest_sha256="0" * 64,
        byte_size=0,
        created_by="test",
    )
    s.add(row)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    return int(row.id)


def notice_id_of(session: object) -> int:
    """A notice row to point at (the notices module writes them for real)."""
    from childguard.store.referral_models import Notice

    row = Notice(
        reference=f"N-{secrets.token_hex(4)}",
        recipient_kind="host",
        channel="email",
        address="abuse@site.test",
        reason="r",
        created_by="test",
    )
    session.add(row)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return int(row.id)
