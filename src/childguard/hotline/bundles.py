# Owns the police and hotline bundle: what goes in its zip, writing it, reading it back.
"""A bundle is one zip for one destination, built from confirmed routes:

- `manifest.json`: the referral's reference and destination, when and by whom it was built,
  and per item its signals and bank matches, every place it was seen (URL, page, first and
  last seen, the report URL's fetch time and host trace), its assessments with their labels per
  scheme and the analysts' ids, its routes, and its chain of custody (received, fetched,
  assessed, routed, confirmed, bundled, and every audited act on the item, with actor ids from
  the audit log). `files` lists every other file of the zip with its SHA-256 and size;
- `vics.json`: the VICS JSON 2.0 document in the destination's profile (`hotline.vics`);
- `items.csv`: one row per item and URL, for people;
- optionally `evidence/<sha256>.age`: the item's media, opened from the sealed evidence and
  encrypted to the destination's age X25519 recipient with `pyrage`. Media never goes into a
  zip in the clear: without a recipient key the bundle is refused (`MediaNeedsRecipient`).

The manifest cannot hold its own hash: `write_bundle` returns it and the referral records it
(`referral.manifest_sha256`), as it records the zip's. `verify_bundle` reads a zip back and
checks every listed file's hash and size, that nothing unlisted is in it, and the manifest's
hash against the recorded one.

`gather` reads what a bundle says from the store (items, places, reports' URLs, assessments,
routes, audit events); `write_bundle` and `verify_bundle` touch only files. Zips are written to
a temporary name beside the target and renamed, so a crash leaves no half bundle, with fixed
entry times so the same content gives the same bytes. Reporters are never named: a report's
custody event says only its channel.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyrage
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from childguard.csv_safe import safe_row
from childguard.errors import ChildguardError
from childguard.hotline import vics
from childguard.store.db import Store
from childguard.store.hotline_models import (
    Assessment,
    AssessmentLabel,
    Item,
    ItemPlace,
    Report,
    ReportUrl,
)
from childguard.store.models import AuditEvent
from childguard.store.referral_models import ItemRoute

FORMAT = "childguard-bundle/1"
MANIFEST = "manifest.json"
VICS_FILE = "vics.json"
CSV_FILE = "items.csv"
EVIDENCE_DIR = "evidence/"
ZIP_TIME = (2000, 1, 1, 0, 0, 0)
DECIDING_KINDS = ("final", "supervisor", "inherited")
CSV_COLUMNS = (
    "reference",
    "item_id",
    "sha256",
    "md5",
    "sha1",
    "pdq",
    "outcome",
    "uk",
    "industry",
    "vics",
    "url",
    "page_url",
    "first_seen",
    "last_seen",
    "fetched_at",
    "host_country",
)


class BundleError(ChildguardError):
    """A bundle cannot be built as asked."""


class UnknownItem(BundleError):
    """An item asked for does not exist."""


class BundleMismatch(BundleError):
    """A bundle on disk is missing or differs from the hashes its referral recorded."""


class MediaNeedsRecipient(BundleError):
    """Media was asked for, and the destination has no age recipient key to encrypt it to."""


class EvidenceUnavailable(BundleError):
    """Media was asked for, and an item's evidence is gone (purged, or never kept)."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class BundleItem:
    """Everything a bundle says of one item, as plain data (ISO times)."""

    item_id: int
    sha256: str
    md5: str | None
    sha1: str | None
    pdq: str | None
    content_type: str
    media_type: str | None
    width: int | None
    height: int | None
    byte_size: int
    outcome: str | None
    first_seen: str
    last_seen: str
    signals: dict[str, Any]
    matches: list[dict[str, Any]]
    places: list[dict[str, Any]]
    assessments: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    custody: list[dict[str, Any]]

    def labels(self) -> list[dict[str, str]]:
        """The labels of the assessment that decided the item (the latest deciding one)."""
        deciding = [a for a in self.assessments if a["kind"] in DECIDING_KINDS]
        return list(deciding[-1]["labels"]) if deciding else []

    def label(self, scheme: str, profile: str = "default") -> str | None:
        for found in self.labels():
            if found["scheme"] == scheme and found["profile"] == profile:
                return found["label"]
        return None

    def urls(self) -> list[str]:
        return list(dict.fromkeys(p["url"] for p in self.places))

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "sha256": self.sha256,
            "md5": self.md5,
            "sha1": self.sha1,
            "pdq": self.pdq,
            "content_type": self.content_type,
            "media_type": self.media_type,
            "width": self.width,
            "height": self.height,
            "byte_size": self.byte_size,
            "outcome": self.outcome,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "signals": self.signals,
            "matches": self.matches,
            "places": self.places,
            "assessments": self.assessments,
            "routes": self.routes,
            "custody": self.custody,
        }

    def vics_media(self) -> vics.VicsMedia:
        categories = {
            lb["profile"]: lb["label"] for lb in self.labels() if lb["scheme"] == vics.SCHEME
        }
        return vics.VicsMedia(
            media_id=self.item_id,
            md5=self.md5,
            sha1=self.sha1,
            sha256=self.sha256,
            pdq=self.pdq,
            byte_size=self.byte_size,
            media_type=self.media_type,
            categories=categories,
            urls=tuple(self.urls()),
            comment=f"childguard item {self.item_id}; outcome {self.outcome}",
        )


@dataclass(frozen=True)
class BundleContent:
    """What one bundle holds: its reference, destination, builder and items."""

    reference: str
    destination: dict[str, Any]
    built_by: str
    built_at: datetime
    items: list[BundleItem]
    vics_profile: str = "us"
    notifier: str | None = None


@dataclass(frozen=True)
class BuiltBundle:
    path: Path
    sha256: str
    manifest_sha256: str
    byte_size: int
    files: list[dict[str, Any]]


@dataclass(frozen=True)
class BundleCheck:
    """What `verify_bundle` found: `ok` when every hash and size matches."""

    path: Path
    ok: bool
    manifest_sha256: str | None
    files: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "manifest_sha256": self.manifest_sha256,
            "files": self.files,
            "problems": self.problems,
        }


# ---------------------------------------------------------------------------------- gathering


def _route_dict(route: ItemRoute) -> dict[str, Any]:
    return {
        "id": route.id,
        "place_id": route.place_id,
        "url": route.url,
        "host": route.host,
        "country": route.country,
        "outcome": route.outcome,
        "proposed_route": route.proposed_route,
        "route": route.route,
        "destination_id": route.destination_id,
        "reason": route.reason,
        "override_reason": route.override_reason,
        "overridden_by": route.overridden_by,
        "state": route.state,
        "confirmed_by": route.confirmed_by,
        "confirmed_at": _iso(route.confirmed_at),
        "reported_at": _iso(route.reported_at),
        "assessed_at": _iso(route.assessed_at),
    }


def _places(
    session: Session, item_id: int
) -> tuple[list[dict[str, Any]], dict[int, ReportUrl], dict[int, Report]]:
    """Where an item was seen, with its report URLs' fetch and trace; the report URLs and
    reports themselves (for the chain of custody)."""
    places = session.scalars(
        select(ItemPlace).where(ItemPlace.item_id == item_id).order_by(ItemPlace.id)
    ).all()
    url_ids = [p.report_url_id for p in places if p.report_url_id is not None]
    report_urls: dict[int, ReportUrl] = {}
    if url_ids:
        report_urls = {
            u.id: u for u in session.scalars(select(ReportUrl).where(ReportUrl.id.in_(url_ids)))
        }
    report_ids = {u.report_id for u in report_urls.values()}
    reports: dict[int, Report] = {}
    if report_ids:
        reports = {
            r.id: r for r in session.scalars(select(Report).where(Report.id.in_(report_ids)))
        }
    out = []
    for place in places:
        ru = report_urls.get(place.report_url_id) if place.report_url_id else None
        out.append(
            {
                "id": place.id,
                "url": place.url,
                "page_url": place.page_url,
                "source": place.source,
                "report_id": place.report_id,
                "first_seen": _iso(place.first_seen),
                "last_seen": _iso(place.last_seen),
                "reported_url": ru.url if ru is not None else None,
                "final_url": ru.final_url if ru is not None else None,
                "fetched_at": _iso(ru.fetched_at) if ru is not None else None,
                "trace": ru.trace if ru is not None else None,
                "traced_at": _iso(ru.traced_at) if ru is not None else None,
            }
        )
    return out, report_urls, reports


def _assessments(
    session: Session, item_id: int
) -> tuple[list[dict[str, Any]], Sequence[Assessment]]:
    """An item's assessments, oldest first, each with its labels and analyst."""
    rows = session.scalars(
        select(Assessment)
        .where(Assessment.item_id == item_id)
        .order_by(Assessment.created_at, Assessment.id)
    ).all()
    labels: dict[int, list[dict[str, str]]] = {}
    if rows:
        for lb in session.scalars(
            select(AssessmentLabel)
            .where(AssessmentLabel.assessment_id.in_([a.id for a in rows]))
            .order_by(AssessmentLabel.scheme, AssessmentLabel.profile)
        ):
            labels.setdefault(lb.assessment_id, []).append(
                {
                    "scheme": lb.scheme,
                    "profile": lb.profile,
                    "version": lb.version,
                    "label": lb.label,
                }
            )
    out = [
        {
            "id": a.id,
            "kind": a.kind,
            "analyst": a.analyst,
            "outcome": a.outcome,
            "inherited_from": a.inherited_from,
            "created_at": _iso(a.created_at),
            "labels": labels.get(a.id, []),
        }
        for a in rows
    ]
    return out, rows


def gather(
    store: Store, item_ids: Sequence[int], *, route_ids: Sequence[int] = ()
) -> list[BundleItem]:
    """The bundle's view of `item_ids` (in that order), with the routes `route_ids` among
    their routes (all of an item's routes when `route_ids` is empty). UnknownItem for an item
    that does not exist."""
    out: list[BundleItem] = []
    with store.session() as session:
        for item_id in dict.fromkeys(item_ids):
            item = session.get(Item, item_id)
            if item is None:
                raise UnknownItem(f"no item {item_id}")
            places, report_urls, reports = _places(session, item_id)
            assessments, assessment_rows = _assessments(session, item_id)
            route_query = select(ItemRoute).where(ItemRoute.item_id == item_id)
            if route_ids:
                route_query = route_query.where(ItemRoute.id.in_(list(route_ids)))
            routes = session.scalars(route_query.order_by(ItemRoute.id)).all()
            custody = _custody(session, item, places, report_urls, reports, assessment_rows, routes)
            signals = dict(item.signals or {})
            out.append(
                BundleItem(
                    item_id=item.id,
                    sha256=item.sha256,
                    md5=item.md5 or signals.get("md5"),
                    sha1=signals.get("sha1"),
                    pdq=item.pdq or signals.get("pdq"),
                    content_type=item.content_type,
                    media_type=item.media_type,
                    width=item.width,
                    height=item.height,
                    byte_size=item.byte_size,
                    outcome=item.outcome,
                    first_seen=_iso(item.first_seen) or "",
                    last_seen=_iso(item.last_seen) or "",
                    signals=signals,
                    matches=list(item.matches or []),
                    places=places,
                    assessments=assessments,
                    routes=[_route_dict(r) for r in routes],
                    custody=custody,
                )
            )
    return out


def _custody(
    session: Session,
    item: Item,
    places: list[dict[str, Any]],
    report_urls: Mapping[int, ReportUrl],
    reports: Mapping[int, Report],
    assessments: Sequence[Assessment],
    routes: Sequence[ItemRoute],
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for report in reports.values():
        events.append(
            {
                "event": "received",
                "at": _iso(report.received_at),
                "actor": f"reporter ({report.channel})",
                "object": f"report:{report.id}",
            }
        )
    for ru in report_urls.values():
        if ru.fetched_at is not None:
            events.append(
                {
                    "event": "fetched",
                    "at": _iso(ru.fetched_at),
                    "actor": "hotline",
                    "object": f"report_url:{ru.id}",
                }
            )
    for place in places:
        if place["source"] != "report":
            events.append(
                {
                    "event": "fetched",
                    "at": place["first_seen"],
                    "actor": place["source"],
                    "object": f"item_place:{place['id']}",
                }
            )
    for a in assessments:
        events.append(
            {
                "event": "assessed",
                "at": _iso(a.created_at),
                "actor": a.analyst,
                "object": f"assessment:{a.id}",
                "kind": a.kind,
            }
        )
    for r in routes:
        events.append(
            {
                "event": "routed",
                "at": _iso(r.assessed_at),
                "actor": r.overridden_by or "hotline",
                "object": f"item_route:{r.id}",
                "route": r.route,
            }
        )
        if r.confirmed_at is not None:
            events.append(
                {
                    "event": "confirmed",
                    "at": _iso(r.confirmed_at),
                    "actor": r.confirmed_by,
                    "object": f"item_route:{r.id}",
                }
            )
    route_keys = [str(r.id) for r in routes]
    audited = session.scalars(
        select(AuditEvent)
        .where(
            or_(
                (AuditEvent.object_type == "item") & (AuditEvent.object_id == str(item.id)),
                (AuditEvent.object_type.in_(("item_route", "route")))
                & (AuditEvent.object_id.in_(route_keys or ["-"])),
            )
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    for ev in audited:
        events.append(
            {
                "event": "audit",
                "at": _iso(ev.at),
                "actor": ev.actor,
                "object": f"{ev.object_type}:{ev.object_id}",
                "action": ev.action,
            }
        )
    events.sort(key=lambda e: (e["at"] or "", e["event"]))
    return events


# ---------------------------------------------------------------------------------- writing


def items_csv(content: BundleContent) -> bytes:
    """One row per item and URL, for people."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    profile = vics.profile_name(content.vics_profile)
    for item in content.items:
        for place in item.places or [{}]:
            trace = place.get("trace") or {}
            row = (
                content.reference,
                item.item_id,
                item.sha256,
                item.md5,
                item.sha1,
                item.pdq,
                item.outcome,
                item.label("uk"),
                item.label("ncmec", "industry"),
                item.label(vics.SCHEME, profile),
                place.get("url"),
                place.get("page_url"),
                place.get("first_seen"),
                place.get("last_seen"),
                place.get("fetched_at"),
                trace.get("country") if isinstance(trace, dict) else None,
            )
            writer.writerow(safe_row(row))
    return out.getvalue().encode("utf-8")


def encrypt_to(recipient: str, data: bytes) -> bytes:
    """`data` encrypted to an age X25519 recipient ("age1...")."""
    try:
        key = pyrage.x25519.Recipient.from_str(recipient.strip())
    except Exception as exc:  # pyrage raises its own error types for a bad key
        raise BundleError(f"the destination's public key is not an age recipient: {exc}") from None
    return bytes(pyrage.encrypt(data, [key]))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(
    content: BundleContent, files: Sequence[dict[str, Any]], *, with_media: bool
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "reference": content.reference,
        "built_at": content.built_at.isoformat(),
        "built_by": content.built_by,
        "from": content.notifier,
        "destination": content.destination,
        "vics_profile": vics.profile_name(content.vics_profile),
        "with_media": with_media,
        "items": [
            {
                **item.to_dict(),
                "custody": [
                    *item.custody,
                    {
                        "event": "bundled",
                        "at": content.built_at.isoformat(),
                        "actor": content.built_by,
                        "object": f"referral:{content.reference}",
                    },
                ],
            }
            for item in content.items
        ],
        "files": list(files),
    }


def write_bundle(
    path: Path,
    content: BundleContent,
    *,
    media: Mapping[str, bytes] | None = None,
    recipient: str | None = None,
) -> BuiltBundle:
    """Write the bundle zip at `path` (atomically). `media` maps an item's SHA-256 to its plain
    bytes; each is encrypted to `recipient` (MediaNeedsRecipient without one)."""
    if media and not recipient:
        raise MediaNeedsRecipient(
            "the destination has no age public key: evidence media is never put in a bundle "
            "unencrypted; give the destination a public key or build without media"
        )
    members: list[tuple[str, bytes]] = []
    vics_doc = vics.document((item.vics_media() for item in content.items), content.vics_profile)
    members.append((VICS_FILE, json.dumps(vics_doc, indent=1, ensure_ascii=False).encode()))
    members.append((CSV_FILE, items_csv(content)))
    for sha256, data in sorted((media or {}).items()):
        if _sha256(data) != sha256:
            raise BundleError(f"the evidence given for {sha256} does not have that SHA-256")
        members.append((f"{EVIDENCE_DIR}{sha256}.age", encrypt_to(recipient or "", data)))
    files = [{"name": name, "sha256": _sha256(data), "bytes": len(data)} for name, data in members]
    manifest = json.dumps(
        manifest_of(content, files, with_media=bool(media)), indent=1, ensure_ascii=False
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in [(MANIFEST, manifest), *members]:
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                archive.writestr(info, data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    data = path.read_bytes()
    return BuiltBundle(path, _sha256(data), _sha256(manifest), len(data), files)


# ---------------------------------------------------------------------------------- reading


def read_manifest(path: Path) -> tuple[dict[str, Any], str]:
    """The manifest of a bundle zip and its SHA-256 (no other check)."""
    with zipfile.ZipFile(path) as archive:
        raw = archive.read(MANIFEST)
    return json.loads(raw), _sha256(raw)


def verify_bundle(
    path: Path, *, manifest_sha256: str | None = None, bundle_sha256: str | None = None
) -> BundleCheck:
    """Read a bundle back and check every file against the manifest, nothing unlisted, the
    VICS document's shape, and, when given, the recorded hashes of the manifest and the zip."""
    problems: list[str] = []
    checked: list[dict[str, Any]] = []
    if bundle_sha256 is not None and _sha256(path.read_bytes()) != bundle_sha256:
        problems.append("the zip's SHA-256 is not the one recorded")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return BundleCheck(path, False, None, [], [f"not a readable zip: {exc}"])
    with archive:
        names = archive.namelist()
        if len(names) != len(set(names)):
            problems.append("the zip holds a name twice")
        if MANIFEST not in names:
            return BundleCheck(path, False, None, [], [*problems, "no manifest.json"])
        raw = archive.read(MANIFEST)
        digest = _sha256(raw)
        if manifest_sha256 is not None and digest != manifest_sha256:
            problems.append("the manifest's SHA-256 is not the one recorded")
        try:
            manifest = json.loads(raw)
        except ValueError:
            return BundleCheck(path, False, digest, [], [*problems, "manifest.json is not JSON"])
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(listed, list):
            return BundleCheck(path, False, digest, [], [*problems, "the manifest lists no files"])
        seen = {MANIFEST}
        for entry in listed:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or name not in names:
                problems.append(f"listed file {name!r} is not in the zip")
                continue
            seen.add(name)
            data = archive.read(name)
            ok = _sha256(data) == entry.get("sha256") and len(data) == entry.get("bytes")
            if not ok:
                problems.append(f"{name}: SHA-256 or size differs from the manifest")
            checked.append({"name": name, "sha256": _sha256(data), "bytes": len(data), "ok": ok})
            if name == VICS_FILE and ok:
                try:
                    doc = json.loads(data)
                except ValueError:
                    problems.append("vics.json is not JSON")
                else:
                    problems.extend(f"vics.json: {p}" for p in vics.check_document(doc))
        problems.extend(
            f"{name} is in the zip but not in the manifest" for name in names if name not in seen
        )
    return BundleCheck(path, not problems, digest, checked, problems, manifest)


def route_ids_of(manifest: Mapping[str, Any]) -> list[int]:
    """The routes a bundle's manifest names, in order."""
    ids: list[int] = []
    for item in manifest.get("items", []):
        ids.extend(int(r["id"]) for r in item.get("routes", []))
    return list(dict.fromkeys(ids))
