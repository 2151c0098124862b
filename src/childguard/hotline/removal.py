# Owns removal checks: each re-fetch of a routed URL, what came back, and the route's step.
"""Removal checks: whether reported content is still where it was.

The writer of `removal_check`. `check_route` re-fetches a confirmed route's URL under the SSRF
guard (`childguard.netguard.fetch`; private addresses only with `allow_private`, for tests
and the demo), hashes what comes back through the one pipeline
(`childguard.pipeline.hash_bytes`), and compares it with the item:

- `removed`: HTTP 404, 410 or another 4xx but 408 and 429; a host name that no longer exists or
  a host that refuses connections; what is not an image or video, or does not decode; a
  different picture;
- `still-online`: the same bytes (SHA-256);
- `changed` (still online): other bytes of the same picture (PDQ within `pdq_threshold`;
  vPDQ for a video);
- `error` (the route does not move): 5xx, 408, 429, a timeout, a resolver that failed (not an
  answer that the name does not exist), a fetch the policy refuses.

The route then moves through `childguard.hotline.routing.record_check` in the same
transaction: a removal makes it `removed`, a second one at least `verify_after` later makes it
`verified`, and the content seen again puts it back. The next check is due `interval` later
(`verify_after` after a first removal, so that the second check can verify it). A route an
analyst has not confirmed is never fetched. `check_due` checks every route whose check is due
(`routing.due_checks`); a host's claim of removal only brings that time forward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from childguard.errors import ChildguardError
from childguard.hotline import routing
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Limits, sniff_content_type
from childguard.netguard.fetch import Fetched, FetchRefused, fetch
from childguard.pipeline import hash_bytes
from childguard.signals.registry import get_signal_type
from childguard.store import audit
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.referral_models import RemovalCheck

log = get_logger(__name__)

# A connection refused: nothing listens there any more.
_REFUSED = "Connection refused"
_TRANSIENT_STATUSES = (408, 429)


@dataclass(frozen=True)
class RemovalSettings:
    """How often routes are checked, how long a removal must hold before it is verified,
    how near a changed copy may be, and the fetch's limits."""

    interval: timedelta = timedelta(hours=6)
    verify_after: timedelta = timedelta(hours=24)
    pdq_threshold: int = 31
    allow_private: bool = False
    max_bytes: int = 50 * 1024 * 1024
    timeout: float = 30.0
    limits: Limits = DEFAULT_LIMITS


@dataclass(frozen=True)
class CheckResult:
    route_id: int
    result: str
    state: str
    checked_at: datetime
    http_status: int | None
    sha256: str | None
    pdq_distance: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id,
            "result": self.result,
            "state": self.state,
            "checked_at": self.checked_at.isoformat(),
            "http_status": self.http_status,
            "sha256": self.sha256,
            "pdq_distance": self.pdq_distance,
            "detail": self.detail,
        }


Fetch = Callable[[str, RemovalSettings], Fetched]


def guarded_fetch(url: str, settings: RemovalSettings) -> Fetched:
    """The URL fetched under the SSRF guard with the settings' limits."""
    return fetch(
        url,
        max_bytes=settings.max_bytes,
        timeout=settings.timeout,
        allow_private=settings.allow_private,
    )


@dataclass(frozen=True)
class _Found:
    result: str
    http_status: int | None = None
    sha256: str | None = None
    pdq_distance: int | None = None
    detail: str = ""


def _refused(exc: FetchRefused) -> _Found:
    """What a refused fetch says of the content: gone (a 4xx but 408 and 429, a host name that
    no longer exists, a refused connection) or not known yet (5xx, a resolver failure, a
    timeout, the policy)."""
    message = str(exc)
    if exc.reason == "status" and exc.status is not None:
        status = exc.status
        if status >= 500 or status in _TRANSIENT_STATUSES:
            return _Found("error", status, detail=f"HTTP {status}: try again later")
        return _Found("removed", status, detail=f"HTTP {status}: no longer served")
    if exc.reason == "unresolvable" or (exc.reason == "network" and _REFUSED in message):
        return _Found("removed", detail=f"the host is gone: {message[:300]}")
    return _Found("error", detail=message[:500])


def _compare(item: Item, got: Fetched, settings: RemovalSettings) -> _Found:
    is_media = got.content_type.startswith(("image/", "video/")) or (
        sniff_content_type(got.data[:64]) is not None
    )
    if not is_media:
        return _Found("removed", detail=f"no longer media: {got.content_type or 'no type'}")
    signals = hash_bytes(got.data, path=got.url, limits=settings.limits)
    sha256 = signals.value("sha256")
    if sha256 == item.sha256:
        return _Found("still-online", sha256=sha256, pdq_distance=0, detail="the same bytes")
    if not signals.ok:
        return _Found("removed", sha256=sha256, detail=f"not readable media: {signals.error}")
    pdq = signals.value("pdq")
    if pdq and item.pdq:
        distance = get_signal_type("pdq").compare(pdq, item.pdq, settings.pdq_threshold)
        if distance.match:
            return _Found(
                "changed",
                sha256=sha256,
                pdq_distance=distance.distance,
                detail="other bytes of the same picture",
            )
        return _Found(
            "removed",
            sha256=sha256,
            pdq_distance=distance.distance,
            detail="a different picture",
        )
    video = signals.value("vpdq")
    known = (item.signals or {}).get("vpdq")
    if video and known:
        comparison = get_signal_type("vpdq").compare(video, str(known))
        if comparison.match:
            return _Found("changed", sha256=sha256, detail="other bytes of the same video")
        return _Found("removed", sha256=sha256, detail="a different video")
    return _Found("removed", sha256=sha256, detail="other media")


def check_route(
    store: Store,
    route_id: int,
    *,
    now: datetime,
    settings: RemovalSettings,
    fetch: Fetch = guarded_fetch,
    actor: str = "system",
) -> CheckResult:
    """Re-fetch one confirmed route's URL, record what came back and move the route."""
    route = routing.get_route(store, route_id)
    if not route.confirmed:
        raise routing.RouteNotConfirmed(f"route {route_id} is not confirmed by an analyst")
    if route.state in routing.ENDED_STATES:
        raise routing.InvalidRoute(f"route {route_id} is {route.state}; it is not checked")
    with store.session() as session:
        item = session.get(Item, route.item_id)
        if item is None:
            raise routing.RouteNotFound(f"route {route_id} has no item")
        session.expunge(item)
    try:
        got = fetch(route.url, settings)
    except FetchRefused as exc:
        found = _refused(exc)
    else:
        try:
            found = _compare(item, got, settings)
        except ChildguardError as exc:
            found = _Found("removed", detail=f"not readable media: {exc}"[:500])
    with store.session() as session:
        next_at = now + settings.interval
        if found.result == "removed" and route.state != "removed":
            next_at = now + max(settings.interval, settings.verify_after)
        state = routing.record_check(
            session,
            route_id,
            found.result,
            at=now,
            next_check_at=next_at,
            verify_after=settings.verify_after,
        )
        session.add(
            RemovalCheck(
                route_id=route_id,
                checked_at=now,
                result=found.result,
                http_status=found.http_status,
                sha256=found.sha256,
                pdq_distance=found.pdq_distance,
                detail=found.detail[:2000] or None,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="route.removal_check",
            object_type="route",
            object_id=route_id,
            details={
                "result": found.result,
                "state": state,
                "http_status": found.http_status,
            },
        )
    log.info("hotline.removal_check", route=route_id, result=found.result, state=state)
    return CheckResult(
        route_id=route_id,
        result=found.result,
        state=state,
        checked_at=now,
        http_status=found.http_status,
        sha256=found.sha256,
        pdq_distance=found.pdq_distance,
        detail=found.detail,
    )


def checks_of(store: Store, route_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """A route's removal checks, the latest first."""
    with store.session() as session:
        rows = session.scalars(
            select(RemovalCheck)
            .where(RemovalCheck.route_id == route_id)
            .order_by(RemovalCheck.id.desc())
            .limit(limit)
        )
        return [
            {
                "checked_at": r.checked_at.isoformat(),
                "result": r.result,
                "http_status": r.http_status,
                "pdq_distance": r.pdq_distance,
                "detail": r.detail,
            }
            for r in rows
        ]


def check_due(
    store: Store,
    *,
    now: datetime,
    settings: RemovalSettings,
    limit: int = 100,
    fetch: Fetch = guarded_fetch,
) -> list[CheckResult]:
    """Check every route whose removal check is due by `now`."""
    done: list[CheckResult] = []
    for route in routing.due_checks(store, now=now, limit=limit):
        try:
            done.append(check_route(store, route.id, now=now, settings=settings, fetch=fetch))
        except ChildguardError as exc:
            log.warning("hotline.removal_check_failed", route=route.id, error=str(exc))
    return done
