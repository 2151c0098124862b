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
from datetime import datetime, timedelta

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
