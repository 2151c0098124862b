"""Registering an organisation's published photos (and videos): signatures are computed here,
on the owner's machine, through the one pipeline's signals stage, and only signatures and
metadata reach the store (file name, optional title, where and when it was published). Image
bytes are never stored.

Each photo gets bank entries in its organisation's `protected` bank, written by
`childguard.banks.ensure_entries`: every signal of the content (md5, sha1, sha256, PDQ of a
photo, vPDQ of a video) and, for photos, one PDQ entry per region of the robust signature
(`childguard.robust.protected`) so that crops of the photo match too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from childguard.banks import ensure_entries, remove_entries_by_id
from childguard.errors import ChildguardError, MediaError
from childguard.media import DEFAULT_LIMITS, Content, Limits, read_bytes
from childguard.pipeline.hashing import HashOptions, signals_of
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import PdqSignal
from childguard.store import audit
from childguard.store.models import BankEntry
from childguard.store.protect_models import Organisation, ProtectedPhoto, ProtectedSignal

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
REGION_PREFIX = "region:"
SOURCE = "protect-register"


class PhotoNotFound(ChildguardError):
    """No protected photo has that id (in that organisation)."""


@dataclass
class RegisterReport:
    registered: list[ProtectedPhoto] = field(default_factory=list)
    already: list[ProtectedPhoto] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def iter_image_files(root: Path) -> Iterator[Path]:
    """Photo and video files under `root` (or `root` itself), sorted, skipping hidden files and
    folders."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES:
            yield path


def _robust_signature(content: Content) -> tuple[list[QueryView], dict[str, Any]]:
    """The region PDQ views and the keypoint features of a photo's robust signature."""
    from childguard.robust.signature import compute_signature

    sig = compute_signature(content.image().pixels)
    views = [QueryView(PdqSignal.name, str(value), None, str(label)) for label, value in sig.pdq]
    return views, {"robust": json.loads(sig.to_json())}


def compute_photo_signature(path: Path, limits: Limits = DEFAULT_LIMITS) -> ContentSignals:
    """Hash one photo or video on this machine: its signals, and for photos the region views
    (`views`) and robust signature (`features`). Raises MediaError for anything that is not a
    safe photo or video."""
    content = Content(read_bytes(path, limits), origin=path.name, limits=limits, path=path)
    record = signals_of(content, HashOptions(limits=limits))
    if record.error is not None or not record.query_views():
        raise MediaError.parse(record.error or "not-an-image: no perceptual signal")
    if PdqSignal.name in record.signals:
        original = record.value(PdqSignal.name)
        views, extra = _robust_signature(content)
        record.views = [v for v in views if v.value != original]
        record.features = extra
    return record


def _signals_to_store(record: ContentSignals) -> list[tuple[str, str, str]]:
    """(role, signal type, value) of every bank entry a registration links to its photo."""
    roles = [(name, name, value.value) for name, value in record.signals.items()]
    roles += [
        (f"{REGION_PREFIX}{v.variant}"[:32], v.signal_type, v.value) for v in record.views or []
    ]
    return roles


def store_signature(
    session: Session,
    org: Organisation,
    record: ContentSignals,
    *,
    title: str | None = None,
    published_url: str | None = None,
    published_at: datetime | None = None,
    actor: str = "cli",
) -> tuple[ProtectedPhoto, bool]:
    """Store one computed signature. Returns (photo, created); the same bytes twice is a no-op."""
    sha256 = record.value("sha256") or ""
    existing = session.scalar(
        select(ProtectedPhoto).where(
            ProtectedPhoto.organisation_id == org.id, ProtectedPhoto.sha256 == sha256
        )
    )
    if existing is not None:
        return existing, False
    regions = [[v.variant, v.value] for v in record.views or []]
    extra = dict(record.features or {})
    photo = ProtectedPhoto(
        organisation_id=org.id,
        file_name=record.path,
        title=title,
        published_url=published_url,
        published_at=published_at,
        width=record.width or 0,
        height=record.height or 0,
        byte_size=record.size or 0,
        md5=record.value("md5") or "",
        sha1=record.value("sha1") or "",
        sha256=sha256,
        pdq=record.value(PdqSignal.name),
        pdq_quality=record.quality(PdqSignal.name),
        signatures={"region_pdq": regions, **extra} if regions or extra else None,
    )
    session.add(photo)
    session.flush()
    roles = _signals_to_store(record)
    entry_ids = ensure_entries(
        session,
        org.bank_id,
        [(t, v) for _, t, v in roles],
        source=SOURCE,
        organisation=org.name,
        metadata={"photo_id": photo.id, "file_name": record.path, "title": title},
    )
    linked: set[int] = set()
    for (role, _, _), entry_id in zip(roles, entry_ids, strict=True):
        if entry_id in linked:
            continue
        linked.add(entry_id)
        session.add(ProtectedSignal(photo_id=photo.id, bank_entry_id=entry_id, role=role))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="protect.register",
        object_type="protected_photo",
        object_id=photo.id,
        details={"organisation": org.name, "file_name": record.path, "sha256": sha256},
    )
    return photo, True


def register_photos(
    session: Session,
    source: Path | Sequence[Path],
    org: Organisation,
    *,
    titles: Mapping[str, str] | None = None,
    published_url: str | None = None,
    published_at: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
    actor: str = "cli",
) -> RegisterReport:
    """Register every photo and video under `source` (a folder, a file, or a list of files)
    for `org`.

    All signatures are computed before anything is written; files that cannot be decoded
    safely are reported in `failed` with the reason, and the rest are still registered.
    `titles` maps a file name to its title.
    """
    paths: Iterable[Path] = iter_image_files(source) if isinstance(source, Path) else source
    computed: list[ContentSignals] = []
    report = RegisterReport()
    for path in paths:
        try:
            computed.append(compute_photo_signature(path, limits))
        except MediaError as exc:
            report.failed.append((str(path), f"{exc.reason}: {exc.message}"))
    for record in computed:
        title = (titles or {}).get(record.path)
        photo, created = store_signature(
            session,
            org,
            record,
            title=title,
            published_url=published_url,
            published_at=published_at,
            actor=actor,
        )
        (report.registered if created else report.already).append(photo)
    return report


def list_photos(session: Session, org: Organisation | None = None) -> list[ProtectedPhoto]:
    query = select(ProtectedPhoto).order_by(ProtectedPhoto.organisation_id, ProtectedPhoto.id)
    if org is not None:
        query = query.where(ProtectedPhoto.organisation_id == org.id)
    return list(session.scalars(query))


def get_photo(session: Session, photo_id: int, org: Organisation | None = None) -> ProtectedPhoto:
    photo = session.get(ProtectedPhoto, photo_id)
    if photo is None or (org is not None and photo.organisation_id != org.id):
        raise PhotoNotFound(f"no protected photo with id {photo_id}")
    return photo


def photo_signals(session: Session, photo: ProtectedPhoto) -> list[tuple[str, BankEntry]]:
    """(role, bank entry) for each signal registered for the photo."""
    rows = session.execute(
        select(ProtectedSignal.role, BankEntry)
        .join(BankEntry, BankEntry.id == ProtectedSignal.bank_entry_id)
        .where(ProtectedSignal.photo_id == photo.id)
        .order_by(BankEntry.id)
    )
    return [(role, entry) for role, entry in rows]


def photos_for_entry(session: Session, bank_entry_id: int) -> list[ProtectedPhoto]:
    """The protected photos a matched bank entry stands for (usually one)."""
    return list(
        session.scalars(
            select(ProtectedPhoto)
            .join(ProtectedSignal, ProtectedSignal.photo_id == ProtectedPhoto.id)
            .where(ProtectedSignal.bank_entry_id == bank_entry_id)
            .order_by(ProtectedPhoto.id)
        )
    )


def remove_photo(session: Session, photo: ProtectedPhoto, *, actor: str = "cli") -> int:
    """Remove a photo and the bank entries no other photo shares. Returns entries removed."""
    entry_ids = [e.id for _, e in photo_signals(session, photo)]
    session.execute(delete(ProtectedSignal).where(ProtectedSignal.photo_id == photo.id))
    shared = set(
        session.scalars(
            select(ProtectedSignal.bank_entry_id)
            .where(ProtectedSignal.bank_entry_id.in_(entry_ids))
            .group_by(ProtectedSignal.bank_entry_id)
            .having(func.count() > 0)
        )
    )
    orphans = [i for i in entry_ids if i not in shared]
    if orphans:
        remove_entries_by_id(session, orphans)
    audit.record(
        session,
        actor=actor,
        action="protect.remove",
        object_type="protected_photo",
        object_id=photo.id,
        details={
            "file_name": photo.file_name,
            "sha256": photo.sha256,
            "entries_removed": len(orphans),
        },
    )
    session.delete(photo)
    session.flush()
    return len(orphans)
