"""Registering an organisation's published photos: signatures are computed here, on the
owner's machine, and only signatures and metadata reach the store (file name, optional title,
where and when it was published). Image bytes are never stored.

Each photo gets bank entries in its organisation's `protected` bank: its PDQ hash, its md5,
sha1 and sha256, and, where the robust signature (`childguard.robust.protected`) is available,
one PDQ entry per region hash so that crops of the photo match too.
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

from childguard.errors import ChildguardError, MediaError
from childguard.media import DEFAULT_LIMITS, Limits, decode_image, read_bytes
from childguard.signals.exact import exact_hashes
from childguard.signals.pdq import pdq_from_pixels
from childguard.store import audit
from childguard.store.models import BankEntry
from childguard.store.protect_models import Organisation, ProtectedPhoto, ProtectedSignal

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)


class PhotoNotFound(ChildguardError):
    """No protected photo has that id (in that organisation)."""


@dataclass(frozen=True)
class PhotoSignature:
    """Everything registration keeps about one photo: hashes and metadata, no pixels."""

    file_name: str
    width: int
    height: int
    byte_size: int
    md5: str
    sha1: str
    sha256: str
    pdq: str
    pdq_quality: int
    region_pdq: tuple[tuple[str, str], ...] = ()  # (view label, PDQ hex)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RegisterReport:
    registered: list[ProtectedPhoto] = field(default_factory=list)
    already: list[ProtectedPhoto] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under `root` (or `root` itself), sorted, skipping hidden files and folders."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def _robust_signature(pixels: Any) -> tuple[tuple[tuple[str, str], ...], dict[str, Any]]:
    """Labelled region PDQ hashes and the keypoint features of the robust signature (E's
    `childguard.robust.protected`), or nothing where that module is not installed."""
    try:
        from childguard.robust.signature import compute_signature
    except ImportError:  # pragma: no cover - the robust work is part of the package
        return (), {}
    sig = compute_signature(pixels)
    regions = tuple((str(label), str(value)) for label, value in sig.pdq)
    return regions, {"robust": json.loads(sig.to_json())}


def compute_photo_signature(path: Path, limits: Limits = DEFAULT_LIMITS) -> PhotoSignature:
    """Hash one photo on this machine. Raises MediaError for anything that is not a safe image."""
    data = read_bytes(path, limits)
    decoded = decode_image(data, limits)
    pdq, quality = pdq_from_pixels(decoded.pixels)
    exact = exact_hashes(data)
    regions, extra = _robust_signature(decoded.pixels)
    return PhotoSignature(
        file_name=path.name,
        width=decoded.width,
        height=decoded.height,
        byte_size=len(data),
        md5=exact["md5"],
        sha1=exact["sha1"],
        sha256=exact["sha256"],
        pdq=pdq,
        pdq_quality=quality,
        region_pdq=tuple((label, h) for label, h in regions if h != pdq),
        extra=extra,
    )


def _entry(session: Session, org: Organisation, signal_type: str, value: str) -> BankEntry:
    found = session.scalar(
        select(BankEntry).where(
            BankEntry.bank_id == org.bank_id,
            BankEntry.signal_type == signal_type,
            BankEntry.value == value,
        )
    )
    if found is not None:
        return found
    entry = BankEntry(
        bank_id=org.bank_id,
        signal_type=signal_type,
        value=value,
        source="protect-register",
        organisation=org.name,
    )
    session.add(entry)
    session.flush()
    return entry


def store_signature(
    session: Session,
    org: Organisation,
    sig: PhotoSignature,
    *,
    title: str | None = None,
    published_url: str | None = None,
    published_at: datetime | None = None,
    actor: str = "cli",
) -> tuple[ProtectedPhoto, bool]:
    """Store one computed signature. Returns (photo, created); the same bytes twice is a no-op."""
    existing = session.scalar(
        select(ProtectedPhoto).where(
            ProtectedPhoto.organisation_id == org.id, ProtectedPhoto.sha256 == sig.sha256
        )
    )
    if existing is not None:
        return existing, False
    photo = ProtectedPhoto(
        organisation_id=org.id,
        file_name=sig.file_name,
        title=title,
        published_url=published_url,
        published_at=published_at,
        width=sig.width,
        height=sig.height,
        byte_size=sig.byte_size,
        md5=sig.md5,
        sha1=sig.sha1,
        sha256=sig.sha256,
        pdq=sig.pdq,
        pdq_quality=sig.pdq_quality,
        signatures={"region_pdq": list(sig.region_pdq), **sig.extra}
        if sig.region_pdq or sig.extra
        else None,
    )
    session.add(photo)
    session.flush()
    roles = [("pdq", "pdq", sig.pdq), ("md5", "md5", sig.md5), ("sha1", "sha1", sig.sha1)]
    roles += [("sha256", "sha256", sig.sha256)]
    roles += [(f"region:{label}"[:32], "pdq", h) for label, h in sig.region_pdq]
    linked: set[int] = set()
    for role, signal_type, value in roles:
        entry = _entry(session, org, signal_type, value)
        if entry.id in linked:
            continue
        linked.add(entry.id)
        if entry.meta is None:
            entry.meta = {"photo_id": photo.id, "file_name": sig.file_name, "title": title}
        session.add(ProtectedSignal(photo_id=photo.id, bank_entry_id=entry.id, role=role))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="protect.register",
        object_type="protected_photo",
        object_id=photo.id,
        details={"organisation": org.name, "file_name": sig.file_name, "sha256": sig.sha256},
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
    """Register every image under `source` (a folder, a file, or a list of files) for `org`.

    All signatures are computed before anything is written; files that cannot be decoded
    safely are reported in `failed` with the reason, and the rest are still registered.
    `titles` maps a file name to its title.
    """
    paths: Iterable[Path] = iter_image_files(source) if isinstance(source, Path) else source
    computed: list[PhotoSignature] = []
    report = RegisterReport()
    for path in paths:
        try:
            computed.append(compute_photo_signature(path, limits))
        except MediaError as exc:
            report.failed.append((str(path), f"{exc.reason}: {exc.message}"))
    for sig in computed:
        title = (titles or {}).get(sig.file_name)
        photo, created = store_signature(
            session,
            org,
            sig,
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
        session.execute(delete(BankEntry).where(BankEntry.id.in_(orphans)))
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
