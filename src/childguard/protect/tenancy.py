# Owns what an organisation's own users read: its summary, its protected photos, the sightings
# of them and its alerts; never another organisation's.
"""An organisation as a tenant: reads scoped to one organisation.

Every function takes the organisation and answers only what is its own: photos it registered,
sightings of entries of its `protected` bank (`childguard.crawl.sightings.bank_sightings`),
each with the registered photo the matched entry stands for, and alerts queued for it. An id
of another organisation's photo or sighting is answered as if there were no such id, so ids
never tell one tenant what another holds. Lists are pages in id order with a keyset (`after_id`
for photos, oldest first; `before_id` for sightings and alerts, newest first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from childguard.crawl.sightings import (
    SightingView,
    bank_sighting_counts,
    bank_sightings,
    get_bank_sighting,
)
from childguard.errors import InputFormatError
from childguard.protect.register import (
    WARNING_CODES,
    PhotoNotFound,
    get_photo,
    photo_signals,
    where_warning,
)
from childguard.store.crawl_models import SIGHTING_STATUSES
from childguard.store.db import Store
from childguard.store.models import BankEntry
from childguard.store.protect_models import (
    ALERT_STATUSES,
    Alert,
    Organisation,
    ProtectedPhoto,
    ProtectedSignal,
)


@dataclass(frozen=True)
class PhotoRef:
    """The registered photo a matched entry stands for."""

    id: int
    file_name: str
    title: str | None


@dataclass(frozen=True)
class OrganisationSighting:
    """A sighting of one of the organisation's photos, with the photo (None if it was
    removed since)."""

    sighting: SightingView
    photo: PhotoRef | None


@dataclass(frozen=True)
class PhotoDetail:
    """One protected photo and the signals registered for it: (role, signal type, value)."""

    photo: ProtectedPhoto
    signals: list[tuple[str, str, str]]


def _checked(value: str | None, allowed: Iterable[str], what: str) -> str | None:
    names = tuple(allowed)
    if value is not None and value not in names:
        raise InputFormatError(f"{what} must be one of {', '.join(names)}, not {value!r}")
    return value


def organisation_summary(store: Store, org: Organisation) -> dict[str, Any]:
    """Counts of what the organisation holds: photos (with `photo_warnings`, the photos by
    warning code), bank entries, sightings and alerts (by status, with `total`)."""
    with store.session() as s:
        photos = s.scalar(
            select(func.count())
            .select_from(ProtectedPhoto)
            .where(ProtectedPhoto.organisation_id == org.id)
        )
        warnings = dict.fromkeys(WARNING_CODES, 0)
        for code, n in s.execute(
            select(ProtectedPhoto.warning, func.count())
            .where(ProtectedPhoto.organisation_id == org.id, ProtectedPhoto.warning.is_not(None))
            .group_by(ProtectedPhoto.warning)
        ):
            warnings[str(code)] = int(n)
        entries = s.scalar(
            select(func.count()).select_from(BankEntry).where(BankEntry.bank_id == org.bank_id)
        )
        alerts = dict.fromkeys(ALERT_STATUSES, 0)
        for status, n in s.execute(
            select(Alert.status, func.count())
            .where(Alert.organisation_id == org.id)
            .group_by(Alert.status)
        ):
            alerts[status] = int(n)
    sightings = bank_sighting_counts(store, org.bank_id)
    return {
        "photos": int(photos or 0),
        "photo_warnings": warnings,
        "bank_entries": int(entries or 0),
        "sightings": {**sightings, "total": sum(sightings.values())},
        "alerts": {**alerts, "total": sum(alerts.values())},
    }


def photos_page(
    store: Store,
    org: Organisation,
    *,
    after_id: int | None = None,
    limit: int = 50,
    warning: str | None = None,
) -> list[ProtectedPhoto]:
    """The organisation's protected photos in registration order, after `after_id`; with
    `warning` (a code of `protect.register.WARNING_CODES`, or `ANY_WARNING`), only the photos
    with that warning (`protect.register.where_warning`)."""
    query = (
        select(ProtectedPhoto)
        .where(ProtectedPhoto.organisation_id == org.id)
        .order_by(ProtectedPhoto.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(ProtectedPhoto.id > after_id)
    query = where_warning(query, warning)
    with store.session() as s:
        return list(s.scalars(query))


def photo_detail(store: Store, org: Organisation, photo_id: int) -> PhotoDetail:
    """One of the organisation's photos with its signals; PhotoNotFound for an id that is not
    one of its photos (another organisation's included)."""
    with store.session() as s:
        photo = get_photo(s, photo_id, org)
        signals = [(role, e.signal_type, e.value) for role, e in photo_signals(s, photo)]
    return PhotoDetail(photo=photo, signals=signals)


def _photos_of_entries(store: Store, org: Organisation, entry_ids: set[int]) -> dict[int, PhotoRef]:
    """The first (lowest id) of the organisation's photos each entry stands for."""
    if not entry_ids:
        return {}
    found: dict[int, PhotoRef] = {}
    with store.session() as s:
        rows = s.execute(
            select(
                ProtectedSignal.bank_entry_id,
                ProtectedPhoto.id,
                ProtectedPhoto.file_name,
                ProtectedPhoto.title,
            )
            .join(ProtectedPhoto, ProtectedPhoto.id == ProtectedSignal.photo_id)
            .where(
                ProtectedSignal.bank_entry_id.in_(sorted(entry_ids)),
                ProtectedPhoto.organisation_id == org.id,
            )
            .order_by(ProtectedPhoto.id)
        )
        for entry_id, photo_id, file_name, title in rows:
            found.setdefault(entry_id, PhotoRef(photo_id, file_name, title))
    return found


def _with_photos(
    store: Store, org: Organisation, views: list[SightingView]
) -> list[OrganisationSighting]:
    photos = _photos_of_entries(store, org, {v.entry_id for v in views if v.entry_id is not None})
    return [
        OrganisationSighting(v, photos.get(v.entry_id) if v.entry_id is not None else None)
        for v in views
    ]


def organisation_sightings(
    store: Store,
    org: Organisation,
    *,
    status: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[OrganisationSighting]:
    """Sightings of the organisation's photos, newest first: with `status`, first seen at or
    after `since`, with ids below `before_id`. InputFormatError for an unknown status."""
    _checked(status, SIGHTING_STATUSES, "status")
    views = bank_sightings(
        store, org.bank_id, status=status, since=since, before_id=before_id, limit=limit
    )
    return _with_photos(store, org, views)


def organisation_sighting(
    store: Store, org: Organisation, sighting_id: int
) -> OrganisationSighting | None:
    """One sighting of the organisation's photos, with its counter series; None when there is
    no such sighting or it is another organisation's."""
    view = get_bank_sighting(store, org.bank_id, sighting_id)
    return _with_photos(store, org, [view])[0] if view is not None else None


def alerts_page(
    store: Store,
    org: Organisation,
    *,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Alert]:
    """The organisation's alerts, newest first: with `status`, with ids below `before_id`.
    InputFormatError for an unknown status."""
    _checked(status, ALERT_STATUSES, "status")
    query = select(Alert).where(Alert.organisation_id == org.id)
    if status is not None:
        query = query.where(Alert.status == status)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    with store.session() as s:
        return list(s.scalars(query.order_by(Alert.id.desc()).limit(limit)))


__all__ = [
    "OrganisationSighting",
    "PhotoDetail",
    "PhotoNotFound",
    "PhotoRef",
    "alerts_page",
    "organisation_sighting",
    "organisation_sightings",
    "organisation_summary",
    "photo_detail",
    "photos_page",
]
