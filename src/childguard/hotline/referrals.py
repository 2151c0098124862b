# Owns referrals: a bundle built for a police unit or partner hotline, its sending and answer.
"""Referrals, the only writer of the `referral` table.

**Nothing leaves childguard without an analyst's confirmation.** `build_referral` takes only
routes an analyst confirmed (`routing.confirm`), not closed and not referred already, all of
the destination's kind (`police` or `hotline`) and not routed to another destination; a match
alone never gets here. It gathers what the bundle says (`hotline.bundles`), writes one zip for
all of them under the bundles directory, and records the referral `built` with the zip's and
the manifest's SHA-256 and a reference `CG-R-<year>-<id:06d>`. With `with_media` the items'
evidence is opened from its sealed files and encrypted to the destination's age key; a
destination without one is refused before anything is written.

`send_referral` sends it by the destination's channel:

- `email`: one message with the zip attached, over the alerts' SMTP settings;
- `webhook`: a signed JSON POST (the alerts' signature headers) carrying the zip in base64; a
  JSON answer's `reference` becomes the external reference;
- `api`: a POST of the zip itself (`application/zip`, signed the same way); the answer's JSON
  `reference` or `id` becomes the external reference and the referral is acknowledged;
- `download`: an analyst downloaded the bundle (`open_bundle`, audited) and hands it over; the
  send records that, and is refused until the bundle has been downloaded.

The send is recorded `sending` (`send_started_at`) in its own commit before anything goes out,
then `sent` (or `acknowledged`) or `failed` after; a request that went out and got no answer
(a read timeout, a dropped connection) is `uncertain`, since the destination may have it. On
`sent` the routes move to `referred` or `forwarded` (`routing.mark_referred`) in the same
transaction. A `sending` row older than a minute (the process died mid-send) becomes
`uncertain` (`settle_stale`). An uncertain referral is never sent again by itself: an analyst
acknowledges it (the destination has it) or resends it explicitly. The zip is verified against
its recorded hashes before every send and download; nothing goes to an inactive destination.

A referral's routes are its `referral_route` rows, written when it is built
(`referrals_for_route` finds a route's referrals); `item_route.referral_id` is set only on
sending. A route deleted since the build (its item purged) leaves the bundle unsendable.

The webhook and api channels sign with a secret per destination derived from the service's
secret (`destinations.destination_secret`); a supervisor reveals it to the destination's
receiver (`destinations.reveal_secret`).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from childguard.alerts.email import AlertDeliveryError, SmtpSettings, build_message, send_message
from childguard.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_body,
    sign,
    validate_webhook_url,
)
from childguard.errors import ChildguardError, InputFormatError
from childguard.hotline import routing
from childguard.hotline.bundles import (
    BundleContent,
    BundleMismatch,
    EvidenceUnavailable,
    MediaNeedsRecipient,
    gather,
    route_ids_of,
    verify_bundle,
    write_bundle,
)
from childguard.hotline.destinations import DestinationInfo, destination_secret, get_destination
from childguard.hotline.evidence import EvidenceMissing, open_evidence
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.models import AuditEvent
from childguard.store.referral_models import HotlineDestination, Referral, ReferralRoute

STALE_AFTER = timedelta(minutes=1)
MAX_ROUTES = 500
SENDABLE = ("built", "failed")
DEFAULT_VICS_PROFILE = "us"
REFERENCE_HEADER = "X-Childguard-Reference"
MANIFEST_HEADER = "X-Childguard-Manifest-SHA256"


class ReferralNotFound(ChildguardError):
    """No referral has this id."""


class InvalidReferral(InputFormatError):
    """The routes or destination asked for cannot make a referral; the message says why."""


class ReferralStateError(ChildguardError):
    """What was asked is not possible in the referral's state (sent already, uncertain...)."""


class AmbiguousDelivery(ChildguardError):
    """The request went out and no answer came: the destination may have it."""


class ReferralSendFailed(ChildguardError):
    """The send was tried and failed; the referral is `failed` with the reason."""

    def __init__(self, message: str, referral: ReferralInfo) -> None:
        super().__init__(message)
        self.referral = referral


@dataclass(frozen=True)
class ReferralInfo:
    id: int
    reference: str
    destination_id: int
    destination_name: str | None
    kind: str
    state: str
    bundle_path: str
    bundle_sha256: str
    manifest_sha256: str
    byte_size: int
    with_media: bool
    created_by: str
    created_at: datetime
    channel: str | None
    send_started_at: datetime | None
    sent_at: datetime | None
    sent_by: str | None
    last_error: str | None
    acknowledged_at: datetime | None
    external_ref: str | None
    route_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The referral as JSON (ISO times); the bundle's path on disk is left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "bundle_path":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        out["route_ids"] = list(self.route_ids)
        return out


@dataclass(frozen=True)
class ReferralTransport:
    """How referrals go out: SMTP for `email`, and for `webhook` and `api` the secret each
    destination's requests are signed with (a function of the destination id)."""

    smtp: SmtpSettings | None = None
    secret_for: Callable[[int], str] | None = None
    timeout_s: float = 30.0
    reply_to: str | None = None


_COLUMNS = [f.name for f in fields(ReferralInfo) if f.name not in ("destination_name", "route_ids")]


def _route_ids(session: Any, referral_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    if not referral_ids:
        return {}
    rows = session.execute(
        select(ReferralRoute.referral_id, ReferralRoute.route_id)
        .where(ReferralRoute.referral_id.in_(list(referral_ids)))
        .order_by(ReferralRoute.referral_id, ReferralRoute.route_id)
    ).all()
    found: dict[int, list[int]] = {}
    for referral_id, route_id in rows:
        found.setdefault(referral_id, []).append(route_id)
    return {referral_id: tuple(ids) for referral_id, ids in found.items()}


def _info(row: Referral, name: str | None, route_ids: tuple[int, ...]) -> ReferralInfo:
    return ReferralInfo(
        destination_name=name, route_ids=route_ids, **{c: getattr(row, c) for c in _COLUMNS}
    )


def _query() -> Any:
    return select(Referral, HotlineDestination.name).outerjoin(
        HotlineDestination, HotlineDestination.id == Referral.destination_id
    )


def get_referral(store: Store, referral_id: int) -> ReferralInfo:
    with store.session() as session:
        found = session.execute(_query().where(Referral.id == referral_id)).first()
        if found is None:
            raise ReferralNotFound(f"no referral {referral_id}")
        routes = _route_ids(session, [referral_id]).get(referral_id, ())
        return _info(found[0], found[1], routes)


def list_referrals(
    store: Store, *, state: str | None = None, after_id: int = 0, limit: int = 100
) -> list[ReferralInfo]:
    """Referrals in id order, optionally of one state; `after_id` pages."""
    query = _query().where(Referral.id > after_id)
    if state is not None:
        query = query.where(Referral.state == state)
    with store.session() as session:
        found = session.execute(query.order_by(Referral.id).limit(limit)).all()
        routes = _route_ids(session, [row.id for row, _ in found])
        return [_info(row, name, routes.get(row.id, ())) for row, name in found]


def referrals_for_route(store: Store, route_id: int) -> list[ReferralInfo]:
    """Every referral built for a route, newest first."""
    query = (
        _query()
        .join(ReferralRoute, ReferralRoute.referral_id == Referral.id)
        .where(ReferralRoute.route_id == route_id)
        .order_by(Referral.id.desc())
    )
    with store.session() as session:
        found = session.execute(query).all()
        routes = _route_ids(session, [row.id for row, _ in found])
        return [_info(row, name, routes.get(row.id, ())) for row, name in found]


# ---------------------------------------------------------------------------------- building


def _check_routes(
    routes: Sequence[routing.RouteInfo], wanted: Sequence[int], destination: DestinationInfo
) -> None:
    found = {r.id for r in routes}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise routing.RouteNotFound(f"no route {missing[0]}")
    for r in routes:
        if not r.confirmed:
            raise routing.RouteNotConfirmed(
                f"route {r.id} is not confirmed by an analyst: nothing leaves before that"
            )
        if r.state == "closed" or r.route == "closed":
            raise InvalidReferral(f"route {r.id} is closed")
        if r.route not in ("police", "hotline"):
            raise InvalidReferral(
                f"route {r.id} is a {r.route} route: only police and hotline routes are referred"
            )
        if r.route != destination.kind:
            raise InvalidReferral(
                f"route {r.id} is a {r.route} route and {destination.name!r} is a "
                f"{destination.kind}"
            )
        if r.destination_id is not None and r.destination_id != destination.id:
            raise InvalidReferral(
                f"route {r.id} is routed to {r.destination_name or r.destination_id}, not to "
                f"{destination.name!r}; override the route before confirming it to change that"
            )
        if r.referral_id is not None:
            raise InvalidReferral(f"route {r.id} was referred already (referral {r.referral_id})")


def build_referral(
    store: Store,
    route_ids: Sequence[int],
    *,
    destination_id: int,
    actor: str,
    bundles_dir: Path,
    evidence_key: bytes,
    with_media: bool = False,
    notifier_name: str,
    now: datetime | None = None,
) -> ReferralInfo:
    """One bundle for confirmed routes `route_ids` to the destination, recorded `built`."""
    now = now or utcnow()
    wanted = list(dict.fromkeys(int(i) for i in route_ids))
    if not wanted:
        raise InvalidReferral("a referral needs at least one route")
    if len(wanted) > MAX_ROUTES:
        raise InvalidReferral(f"at most {MAX_ROUTES} routes in one referral")
    destination = get_destination(store, destination_id)
    if destination.kind not in ("police", "hotline"):
        raise InvalidReferral(
            f"{destination.name!r} is a {destination.kind}: referrals go to police or hotlines"
        )
    if not destination.active:
        raise InvalidReferral(f"{destination.name!r} is not active")
    if with_media and not destination.public_key:
        raise MediaNeedsRecipient(
            f"{destination.name!r} has no age public key: evidence media is never put in a "
            "bundle unencrypted; give it a public key or build without media"
        )
    routes = routing.list_routes(store, ids=wanted, limit=len(wanted))
    _check_routes(routes, wanted, destination)
    item_ids = list(dict.fromkeys(r.item_id for r in routes))
    items = gather(store, item_ids, route_ids=wanted)
    media: dict[str, bytes] = {}
    if with_media:
        for item in items:
            try:
                media[item.sha256] = open_evidence(store, evidence_key, item.item_id)
            except EvidenceMissing as exc:
                raise EvidenceUnavailable(
                    f"item {item.item_id} has no evidence left to bundle: {exc}"
                ) from None
    destination_view = {
        k: v
        for k, v in destination.to_dict().items()
        if k in ("id", "name", "kind", "country", "channel", "vics_profile", "public_key")
    }
    with store.session() as session:
        row = Referral(
            reference=f"pending-{uuid.uuid4().hex[:24]}",
            destination_id=destination.id,
            kind=destination.kind,
            state="built",
            bundle_path="",
            bundle_sha256="",
            manifest_sha256="",
            byte_size=0,
            with_media=with_media,
            created_by=actor,
            created_at=now,
            channel=destination.channel,
        )
        session.add(row)
        session.flush()
        reference = f"CG-R-{now.year}-{row.id:06d}"
        content = BundleContent(
            reference=reference,
            destination=destination_view,
            built_by=actor,
            built_at=now,
            items=items,
            vics_profile=destination.vics_profile or DEFAULT_VICS_PROFILE,
            notifier=notifier_name,
        )
        built = write_bundle(
            bundles_dir / f"{reference}.zip",
            content,
            media=media or None,
            recipient=destination.public_key,
        )
        row.reference = reference
        row.bundle_path = str(built.path.resolve())
        row.bundle_sha256 = built.sha256
        row.manifest_sha256 = built.manifest_sha256
        row.byte_size = built.byte_size
        session.add_all(ReferralRoute(referral_id=row.id, route_id=r) for r in wanted)
        audit.record(
            session,
            actor=actor,
            action="referral.build",
            object_type="referral",
            object_id=row.id,
            details={
                "reference": reference,
                "destination": destination.id,
                "routes": wanted,
                "items": item_ids,
                "with_media": with_media,
                "manifest_sha256": built.manifest_sha256,
                "bundle_sha256": built.sha256,
            },
        )
        session.flush()
        return _info(row, destination.name, tuple(sorted(wanted)))


# ---------------------------------------------------------------------------------- reading


def _verified(info: ReferralInfo) -> dict[str, Any]:
    check = (
        verify_bundle(
            Path(info.bundle_path),
            manifest_sha256=info.manifest_sha256,
            bundle_sha256=info.bundle_sha256,
        )
        if Path(info.bundle_path).is_file()
        else None
    )
    if check is None:
        raise BundleMismatch(
            f"the bundle of {info.reference} is missing from the bundles directory"
        )
    if not check.ok or check.manifest is None:
        raise BundleMismatch(
            f"the bundle of {info.reference} does not match what was recorded: "
            + "; ".join(check.problems)
        )
    return check.manifest


def open_bundle(store: Store, referral_id: int, *, actor: str) -> tuple[ReferralInfo, Path]:
    """The referral and its zip, checked against the recorded hashes; the download is audited."""
    info = get_referral(store, referral_id)
    _verified(info)
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action="referral.download",
            object_type="referral",
            object_id=referral_id,
            details={"reference": info.reference, "bundle_sha256": info.bundle_sha256},
        )
    return info, Path(info.bundle_path)


def _downloaded(store: Store, referral_id: int) -> bool:
    with store.session() as session:
        return (
            session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.object_type == "referral",
                    AuditEvent.object_id == str(referral_id),
                    AuditEvent.action == "referral.download",
                )
            ).first()
            is not None
        )


# ---------------------------------------------------------------------------------- sending


def settle_stale(store: Store, *, now: datetime | None = None) -> list[int]:
    """Mark every referral left `sending` for over a minute `uncertain`; their ids."""
    now = now or utcnow()
    cutoff = now - STALE_AFTER
    with store.session() as session:
        stale = list(
            session.scalars(
                select(Referral.id).where(
                    Referral.state == "sending", Referral.send_started_at < cutoff
                )
            )
        )
        for referral_id in stale:
            session.execute(
                update(Referral)
                .where(Referral.id == referral_id, Referral.state == "sending")
                .values(
                    state="uncertain",
                    last_error="the send was interrupted: it may or may not have gone out",
                )
            )
            audit.record(
                session,
                actor="system",
                action="referral.uncertain",
                object_type="referral",
                object_id=referral_id,
            )
    return stale


def _summary(info: ReferralInfo, items: int) -> str:
    return (
        f"Referral {info.reference} from the childguard hotline: {items} item(s), "
        f"{len(info.route_ids)} URL(s).\n\n"
        f"The attached zip holds manifest.json (SHA-256 {info.manifest_sha256}), vics.json and "
        "items.csv"
        + (", and the evidence encrypted to your age key" if info.with_media else "")
        + f".\nThe zip's SHA-256 is {info.bundle_sha256}.\n"
    )


def _send_email(
    transport: ReferralTransport, destination: DestinationInfo, info: ReferralInfo, items: int
) -> str | None:
    if transport.smtp is None:
        raise AlertDeliveryError("no SMTP server is configured for email", retryable=False)
    if not destination.address:
        raise AlertDeliveryError(f"{destination.name!r} has no email address", retryable=False)
    msg = build_message(
        transport.smtp.sender,
        [destination.address],
        f"childguard referral {info.reference}",
        _summary(info, items),
    )
    if transport.reply_to:
        msg["Reply-To"] = transport.reply_to
    msg.add_attachment(
        Path(info.bundle_path).read_bytes(),
        maintype="application",
        subtype="zip",
        filename=f"{info.reference}.zip",
    )
    send_message(transport.smtp, msg)
    return None


def _signed_headers(secret: str, body: bytes, info: ReferralInfo) -> dict[str, str]:
    stamp = int(time.time())
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(secret, stamp, body),
        DELIVERY_HEADER: info.reference,
        REFERENCE_HEADER: info.reference,
        MANIFEST_HEADER: info.manifest_sha256,
        "User-Agent": "childguard-referral/1",
    }


def _answer_reference(response: httpx.Response, keys: Sequence[str]) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for key in keys:
        value = answer.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:200]
    return None


def _post(
    transport: ReferralTransport,
    destination: DestinationInfo,
    info: ReferralInfo,
    body: bytes,
    content_type: str,
    keys: Sequence[str],
) -> str | None:
    if not destination.address:
        raise AlertDeliveryError(f"{destination.name!r} has no URL", retryable=False)
    try:
        validate_webhook_url(destination.address)
    except ValueError as exc:
        raise AlertDeliveryError(str(exc), retryable=False) from None
    if transport.secret_for is None:
        raise AlertDeliveryError("no signing secret is configured", retryable=False)
    headers = {
        "Content-Type": content_type,
        **_signed_headers(transport.secret_for(destination.id), body, info),
    }
    try:
        with httpx.Client(timeout=transport.timeout_s, follow_redirects=False) as client:
            response = client.post(destination.address, content=body, headers=headers)
    except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        raise AmbiguousDelivery(
            f"{destination.address} took the request and gave no answer "
            f"({type(exc).__name__}): it may have arrived"
        ) from exc
    except httpx.HTTPError as exc:
        raise AlertDeliveryError(
            f"{destination.address} could not be reached: {type(exc).__name__}: {exc}",
            retryable=True,
        ) from exc
    if response.status_code >= 300:
        raise AlertDeliveryError(
            f"{destination.address} answered HTTP {response.status_code}",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    return _answer_reference(response, keys)


def _send_webhook(
    transport: ReferralTransport, destination: DestinationInfo, info: ReferralInfo, items: int
) -> str | None:
    data = Path(info.bundle_path).read_bytes()
    body = canonical_body(
        {
            "type": "referral",
            "reference": info.reference,
            "kind": info.kind,
            "items": items,
            "routes": len(info.route_ids),
            "manifest_sha256": info.manifest_sha256,
            "bundle_sha256": info.bundle_sha256,
            "bundle_name": f"{info.reference}.zip",
            "bundle_base64": base64.b64encode(data).decode("ascii"),
        }
    )
    return _post(transport, destination, info, body, "application/json", ("reference",))


def _send_api(
    transport: ReferralTransport, destination: DestinationInfo, info: ReferralInfo, items: int
) -> str | None:
    data = Path(info.bundle_path).read_bytes()
    return _post(transport, destination, info, data, "application/zip", ("reference", "id"))


_CHANNELS: dict[str, Callable[[ReferralTransport, DestinationInfo, ReferralInfo, int], str | None]]
_CHANNELS = {"email": _send_email, "webhook": _send_webhook, "api": _send_api}


def _record_sent(
    store: Store,
    info: ReferralInfo,
    route_ids: Sequence[int],
    *,
    actor: str,
    at: datetime,
    external_ref: str | None,
    acknowledged: bool,
) -> None:
    values: dict[str, Any] = {"state": "sent", "sent_at": at, "sent_by": actor, "last_error": None}
    if external_ref is not None:
        values["external_ref"] = external_ref
    if acknowledged:
        values["state"] = "acknowledged"
        values["acknowledged_at"] = at
    details = {"reference": info.reference, "channel": info.channel, "external_ref": external_ref}
    try:
        with store.session() as session:
            session.execute(
                update(Referral)
                .where(Referral.id == info.id, Referral.state.in_(("sending", "uncertain")))
                .values(**values)
            )
            routing.mark_referred(session, route_ids, info.id, at=at)
            audit.record(
                session,
                actor=actor,
                action="referral.sent",
                object_type="referral",
                object_id=info.id,
                details={**details, "routes": list(route_ids)},
            )
        return
    except ChildguardError as exc:
        problem = f"sent, but its routes could not be marked referred: {exc}"
    with store.session() as session:
        session.execute(
            update(Referral).where(Referral.id == info.id).values(**values, last_error=problem)
        )
        audit.record(
            session,
            actor=actor,
            action="referral.sent",
            object_type="referral",
            object_id=info.id,
            details={**details, "routes": [], "error": problem},
        )


def _mark_uncertain(store: Store, referral_id: int, actor: str, channel: str, error: str) -> None:
    with store.session() as session:
        session.execute(
            update(Referral)
            .where(Referral.id == referral_id)
            .values(state="uncertain", last_error=error[:2000])
        )
        audit.record(
            session,
            actor=actor,
            action="referral.uncertain",
            object_type="referral",
            object_id=referral_id,
            details={"channel": channel, "error": error},
        )


def send_referral(
    store: Store,
    referral_id: int,
    *,
    actor: str,
    transport: ReferralTransport,
    now: datetime | None = None,
    resend_uncertain: bool = False,
) -> ReferralInfo:
    """Send a built (or failed) referral by its destination's channel (see the module doc).
    ReferralStateError when it was sent or is being sent, or is `uncertain` without
    `resend_uncertain`; ReferralSendFailed (recorded `failed`) when the channel fails."""
    now = now or utcnow()
    settle_stale(store, now=now)
    info = get_referral(store, referral_id)
    allowed = (*SENDABLE, "uncertain") if resend_uncertain else SENDABLE
    if info.state not in allowed:
        if info.state == "uncertain":
            raise ReferralStateError(
                f"{info.reference} is uncertain: an earlier send was interrupted and may have "
                "gone out. Ask the destination; acknowledge it if they have it, or resend it "
                "explicitly"
            )
        raise ReferralStateError(f"{info.reference} is {info.state}: it is not sent again")
    destination = get_destination(store, info.destination_id)
    if not destination.active:
        raise ReferralStateError(f"{destination.name!r} is not active: nothing is sent to it")
    manifest = _verified(info)
    route_ids = list(info.route_ids)
    gone = sorted(set(route_ids_of(manifest)) - set(route_ids))
    if gone:
        raise InvalidReferral(f"route {gone[0]} of the bundle no longer exists")
    routes = routing.list_routes(store, ids=route_ids, limit=max(1, len(route_ids)))
    _check_sendable(routes, route_ids, referral_id)
    items = len(manifest.get("items", []))
    channel = destination.channel
    if channel == "download" and not _downloaded(store, referral_id):
        raise ReferralStateError(
            f"{info.reference} goes by download: download the bundle, hand it over, then mark "
            "it handed over"
        )
    with store.session() as session:
        claimed = session.execute(
            update(Referral)
            .where(Referral.id == referral_id, Referral.state.in_(allowed))
            .values(state="sending", send_started_at=now, channel=channel)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            raise ReferralStateError(f"{info.reference} is being sent by another request")
        audit.record(
            session,
            actor=actor,
            action="referral.sending",
            object_type="referral",
            object_id=referral_id,
            details={"reference": info.reference, "channel": channel},
        )
    sending = get_referral(store, referral_id)
    external_ref: str | None = None
    try:
        if channel != "download":
            external_ref = _CHANNELS[channel](transport, destination, sending, items)
    except AmbiguousDelivery as exc:
        _mark_uncertain(store, referral_id, actor, channel, str(exc))
        raise ReferralSendFailed(
            f"{info.reference} may not have been sent: {exc}; ask the destination, then "
            "acknowledge it or resend it explicitly",
            get_referral(store, referral_id),
        ) from exc
    except AlertDeliveryError as exc:
        with store.session() as session:
            session.execute(
                update(Referral)
                .where(Referral.id == referral_id)
                .values(state="failed", last_error=str(exc)[:2000])
            )
            audit.record(
                session,
                actor=actor,
                action="referral.failed",
                object_type="referral",
                object_id=referral_id,
                details={"reference": info.reference, "channel": channel, "error": str(exc)},
            )
        raise ReferralSendFailed(
            f"{info.reference} was not sent: {exc}", get_referral(store, referral_id)
        ) from exc
    except Exception as exc:  # an error nobody foresaw, mid-send: it may have gone out
        _mark_uncertain(store, referral_id, actor, channel, f"{type(exc).__name__}: {exc}")
        raise
    _record_sent(
        store,
        sending,
        route_ids,
        actor=actor,
        at=now,
        external_ref=external_ref,
        acknowledged=channel == "api" and external_ref is not None,
    )
    return get_referral(store, referral_id)


def _check_sendable(
    routes: Sequence[routing.RouteInfo], route_ids: Sequence[int], referral_id: int
) -> None:
    found = {r.id: r for r in routes}
    for route_id in route_ids:
        r = found.get(route_id)
        if r is None:
            raise InvalidReferral(f"route {route_id} of the bundle no longer exists")
        if not r.confirmed:
            raise routing.RouteNotConfirmed(f"route {route_id} is not confirmed by an analyst")
        if r.state == "closed":
            raise InvalidReferral(f"route {route_id} was closed since the bundle was built")
        if r.referral_id is not None and r.referral_id != referral_id:
            raise InvalidReferral(
                f"route {route_id} was referred since, in referral {r.referral_id}"
            )


def acknowledge(
    store: Store,
    referral_id: int,
    *,
    external_ref: str,
    actor: str,
    now: datetime | None = None,
) -> ReferralInfo:
    """The destination has the referral, under its reference `external_ref`. From `sent`, or
    from `uncertain` (the interrupted send did arrive: its routes are marked referred now).
    Acknowledging again with the same reference changes nothing."""
    now = now or utcnow()
    ref = (external_ref or "").strip()
    if not ref:
        raise InvalidReferral("an acknowledgement needs the destination's reference")
    if len(ref) > 200:
        raise InvalidReferral("the external reference is over 200 characters")
    info = get_referral(store, referral_id)
    if info.state == "acknowledged":
        if info.external_ref == ref:
            return info
        raise ReferralStateError(
            f"{info.reference} was acknowledged already, as {info.external_ref!r}"
        )
    if info.state not in ("sent", "uncertain"):
        raise ReferralStateError(
            f"{info.reference} is {info.state}: only a sent referral is acknowledged"
        )
    route_ids: list[int] = []
    if info.state == "uncertain":
        _verified(info)
        route_ids = list(info.route_ids)
    with store.session() as session:
        changed = session.execute(
            update(Referral)
            .where(Referral.id == referral_id, Referral.state == info.state)
            .values(
                state="acknowledged",
                acknowledged_at=now,
                external_ref=ref,
                sent_at=info.sent_at or info.send_started_at or now,
                last_error=None,
            )
        )
        if getattr(changed, "rowcount", 0) != 1:
            raise ReferralStateError(f"{info.reference} changed meanwhile; try again")
        if route_ids:
            routing.mark_referred(session, route_ids, referral_id, at=info.send_started_at or now)
        audit.record(
            session,
            actor=actor,
            action="referral.acknowledge",
            object_type="referral",
            object_id=referral_id,
            details={"reference": info.reference, "external_ref": ref, "was": info.state},
        )
    return get_referral(store, referral_id)


def bundle_manifest(store: Store, referral_id: int) -> dict[str, Any]:
    """The manifest of a referral's bundle, checked against the recorded hashes."""
    return _verified(get_referral(store, referral_id))


__all__ = [
    "InvalidReferral",
    "ReferralInfo",
    "ReferralNotFound",
    "ReferralSendFailed",
    "ReferralStateError",
    "ReferralTransport",
    "acknowledge",
    "build_referral",
    "bundle_manifest",
    "destination_secret",
    "get_referral",
    "list_referrals",
    "open_bundle",
    "referrals_for_route",
    "send_referral",
    "settle_stale",
]
