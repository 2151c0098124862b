"""Routed items with known times, made by the real path: a report (`create_report`) whose
URL was traced to a country (`mark_url`), the item of a synthetic photo seen there at a given
time (`record_content`), two analysts' agreeing votes (`record_vote`), then
`routing.propose_routes`, `routing.confirm` and each step through `routing` with injected
times. The referral and notice rows the steps point at stand in for those the referrals and
notices modules write."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy.orm import Session

from childguard.accounts import create_user
from childguard.hotline import destinations, routing
from childguard.hotline.assessments import record_vote
from childguard.hotline.items import Place, record_content
from childguard.hotline.reports import create_report, mark_url
from childguard.pipeline import hash_bytes
from childguard.store.db import Store
from childguard.store.referral_models import HotlineDestination, Notice, Referral
from sample_media import jpeg_bytes

BASELINE = {"age_band": "prepubescent", "severity": "A"}
NOT_ILLEGAL = {"age_band": "adult", "severity": "none"}
HOME = "BE"
# Monday of ISO week 2026-W45.
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def analysts(store: Store) -> list[int]:
    """Two new analysts' user ids."""
    return [
        create_user(
            store,
            f"analyst-{secrets.token_hex(4)}",
            "a long test password",
            actor="test",
            roles=["analyst"],
        ).id
        for _ in range(2)
    ]


def set_up_destinations(store: Store) -> dict[str, int]:
    """The home police (BE, download) and the Dutch partner hotline."""
    police = destinations.create_destination(
        store, name="Federal police", kind="police", country=HOME, channel="download", actor="t"
    )
    hotline = destinations.create_destination(
        store,
        name="Offlimits",
        kind="hotline",
        country="NL",
        channel="email",
        address="reports@hotline.example",
        actor="t",
    )
    return {"police": police.id, "hotline": hotline.id}


def near_copy(data: bytes) -> bytes:
    """The same picture re-encoded: other bytes, a near PDQ."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="JPEG", quality=60)
    return out.getvalue()


def reported_item(
    store: Store,
    seed: int,
    *,
    host: str,
    country: str | None,
    seen: datetime,
    site_type: str | None = None,
    data: bytes | None = None,
) -> int:
    """The item of synthetic photo `seed` (or `data`), reported at http://<host>/<seed>.jpg,
    its URL traced to `country`, seen there at `seen`."""
    url = f"http://{host}/{seed}.jpg"
    report = create_report(
        store,
        [url],
        channel="api",
        hints={"site_type": site_type} if site_type else None,
        enqueue=False,
    )
    (url_id,) = report.url_ids
    trace = {"host": host, "addresses": [], **({"country": country} if country else {})}
    mark_url(store, url_id, "traced", trace=trace)
    signals = hash_bytes(data or jpeg_bytes(seed), path=url)
    outcome = record_content(
        store,
        signals,
        [],
        Place(
            url=url,
            page_url=f"http://{host}/",
            report_id=report.id,
            report_url_id=url_id,
            seen_at=seen,
        ),
    )
    return outcome.item_id


def assess(store: Store, item_id: int, facts: dict[str, object], voters: list[int]) -> None:
    for analyst in voters:
        record_vote(store, item_id, analyst, facts)


def _referral(session: Session) -> int:
    destination = session.query(HotlineDestination.id).first()
    row = Referral(
        reference=f"T-{secrets.token_hex(4)}",
        destination_id=destination[0] if destination else None,
        kind="police",
        bundle_path="/nowhere.zip",
        bundle_sha256="0" * 64,
        manifest_sha256="0" * 64,
        byte_size=0,
        created_by="test",
    )
    session.add(row)
    session.flush()
    return int(row.id)


def _notice(session: Session) -> int:
    row = Notice(
        reference=f"N-{secrets.token_hex(4)}",
        recipient_kind="host",
        channel="email",
        address="abuse@site.test",
        reason="r",
        created_by="test",
    )
    session.add(row)
    session.flush()
    return int(row.id)


@dataclass(frozen=True)
class Steps:
    """Hours from the report to each step; None: not reached."""

    referred: float | None = None
    notified: float | None = None
    removed: float | None = None


def step_route(store: Store, route: routing.RouteInfo, steps: Steps) -> None:
    """Take a confirmed route through referral, notice and removal at the given hours."""
    start = route.reported_at
    with store.session() as s:
        if steps.referred is not None:
            at = start + timedelta(hours=steps.referred)
            routing.mark_referred(s, [route.id], _referral(s), at=at)
        if steps.notified is not None:
            routing.mark_notified(
                s, [route.id], _notice(s), at=start + timedelta(hours=steps.notified)
            )
        if steps.removed is not None:
            at = start + timedelta(hours=steps.removed)
            routing.record_check(
                s, route.id, "removed", at=at, next_check_at=at, verify_after=timedelta(hours=24)
            )


def route_of(store: Store, item_id: int) -> routing.RouteInfo:
    (route,) = routing.list_routes(store, item_id=item_id)
    return route


@dataclass(frozen=True)
class Planned:
    seed: int
    host: str
    country: str | None
    site_type: str | None
    reported: datetime
    steps: Steps


# Three removed at a.test (BE) in W45, two forwarded to NL and removed in W46, one at
# c.test (BE) notified but still online.
PLAN = (
    Planned(1, "a.test", "BE", "image-host", T0, Steps(2, 4, 10)),
    Planned(2, "a.test", "BE", "image-host", T0, Steps(2, 5, 20)),
    Planned(3, "a.test", "BE", "image-host", T0, Steps(2, 6, 30)),
    Planned(4, "b.test", "NL", "forum", T0 + WEEK, Steps(4, 8, 50)),
    Planned(5, "b.test", "NL", "forum", T0 + WEEK, Steps(6, 8, 100)),
    Planned(6, "c.test", "BE", None, T0, Steps(3, 10, None)),
)


def build_plan(store: Store) -> dict[int, int]:
    """The plan's items, a not-illegal one (closed) and an unconfirmed near copy of the
    first (inherited); the items by seed."""
    set_up_destinations(store)
    voters = analysts(store)
    items = {}
    for p in PLAN:
        items[p.seed] = reported_item(
            store, p.seed, host=p.host, country=p.country, seen=p.reported, site_type=p.site_type
        )
        assess(store, items[p.seed], BASELINE, voters)
    items[7] = reported_item(store, 7, host="a.test", country="BE", seen=T0, site_type="image-host")
    assess(store, items[7], NOT_ILLEGAL, voters)
    proposed = routing.propose_routes(store, default_home=HOME, now=T0 + timedelta(hours=1))
    assert len(proposed) == 7
    routing.confirm(
        store,
        [r.id for r in proposed],
        actor="user:1",
        check_after=timedelta(hours=6),
        now=T0 + timedelta(hours=1),
    )
    for p in PLAN:
        step_route(store, route_of(store, items[p.seed]), p.steps)
    items[8] = reported_item(
        store,
        8,
        host="a.test",
        country="BE",
        seen=T0 + WEEK,
        site_type="image-host",
        data=near_copy(jpeg_bytes(1)),
    )
    routing.propose_routes(store, default_home=HOME, now=T0 + WEEK)
    assert route_of(store, items[8]).confirmed_at is None
    return items
