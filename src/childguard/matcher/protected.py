"""Protected-photo verification inside the matcher: ORB features of registered photos, checked
geometrically against a query's features.

A protected photo's PDQ views are ordinary bank entries and match through the PDQ index like
any other. What that misses (heavy or off-centre crops, rotations, a photo inside a screenshot)
is caught here, exactly as the benchmark's protected pipeline does it: the photos' stored
signatures (`protected_photo.signatures["robust"]`) are loaded once into a
`childguard.robust.protected.ProtectedIndex`; a query carrying features (`ContentSignals.features`)
is searched there (PDQ view candidates at a loose radius plus ORB descriptor votes, RANSAC
verification, `decide`), and each decided hit becomes a `Match` on the photo's PDQ entry with
variant `verified:<n> inliers`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from childguard.banks import EntryView
from childguard.log import get_logger
from childguard.matcher.results import Match
from childguard.signals.pdq import PdqSignal, hamming_many, hexes_to_array
from childguard.store.db import Store
from childguard.store.protect_models import Organisation, ProtectedPhoto, ProtectedSignal

if TYPE_CHECKING:
    from childguard.robust.protected import ProtectedHit, ProtectedIndex
    from childguard.robust.query_features import QueryFeatures

log = get_logger(__name__)

VERIFIED_PREFIX = "verified:"


@dataclass(frozen=True)
class PhotoRef:
    """What a verified hit needs to become a match: the photo, its bank and its PDQ entry."""

    photo_id: int
    bank_id: int
    entry_id: int
    view_hashes: np.ndarray  # (views, 32) uint8: the signature's PDQ views


@dataclass(frozen=True)
class VerifiedHit:
    photo: PhotoRef
    inliers: float
    distance: int  # best PDQ distance between any query view and any of the photo's views
    query_pdq: str  # the query view at that distance
    region: str


def add_signature(
    index: ProtectedIndex,
    photos: dict[str, PhotoRef],
    key: str,
    raw: Any,
    *,
    photo_id: int,
    bank_id: int,
    entry_id: int,
) -> bool:
    """Parse a stored signature (its JSON form) and add it under `key` to `index`, and its
    PhotoRef to `photos`; False, and logged, when it is unreadable or has no features."""
    from childguard.robust.signature import ProtectedSignature

    try:
        sig = ProtectedSignature.from_json(json.dumps(raw))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("protected signature unreadable", key=key, error=str(exc))
        return False
    if not len(sig.descriptors):
        return False
    index.add(key, sig)
    photos[key] = PhotoRef(
        photo_id=photo_id,
        bank_id=bank_id,
        entry_id=entry_id,
        view_hashes=hexes_to_array([h for _, h in sig.pdq]),
    )
    return True


class ProtectedVerifier:
    """The registered photos' features, loaded from the store on first use.

    `photo_count` and `search` load lazily; `invalidate()` (called by `Matcher.refresh`)
    drops what was loaded so the next use reads the store again. `bent_photos()`: the photos
    whose signature's frame does not fit them (signed from pixels whose sides were reduced
    apart), and `squareless_photos()`: those signed before the square views; the load logs
    both.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: ProtectedIndex | None = None
        self._photos: dict[str, PhotoRef] = {}
        self._bent: list[int] = []
        self._squareless: list[int] = []

    def invalidate(self) -> None:
        self._index = None
        self._photos = {}
        self._bent = []
        self._squareless = []

    def _load(self) -> ProtectedIndex:
        from childguard.robust.protected import ProtectedIndex
        from childguard.robust.signature import frame_fits, stored_frame, stored_has_squares

        index = ProtectedIndex()
        photos: dict[str, PhotoRef] = {}
        with self.store.session() as session:
            pdq_entry = {
                photo_id: entry_id
                for photo_id, entry_id in session.execute(
                    select(ProtectedSignal.photo_id, ProtectedSignal.bank_entry_id).where(
                        ProtectedSignal.role == PdqSignal.name
                    )
                )
            }
            rows = session.execute(
                select(
                    ProtectedPhoto.id,
                    Organisation.bank_id,
                    ProtectedPhoto.signatures,
                    ProtectedPhoto.width,
                    ProtectedPhoto.height,
                )
                .join(Organisation, Organisation.id == ProtectedPhoto.organisation_id)
                .order_by(ProtectedPhoto.id)
            )
            bent: list[int] = []
            squareless: list[int] = []
            for photo_id, bank_id, signatures, width, height in rows:
                robust = (signatures or {}).get("robust")
                entry_id = pdq_entry.get(photo_id)
                if not robust or entry_id is None:
                    continue
                if not frame_fits(stored_frame(robust), width, height):
                    bent.append(int(photo_id))
                if not stored_has_squares(robust):
                    squareless.append(int(photo_id))
                add_signature(
                    index,
                    photos,
                    str(photo_id),
                    robust,
                    photo_id=int(photo_id),
                    bank_id=int(bank_id),
                    entry_id=int(entry_id),
                )
        self._photos = photos
        self._index = index
        self._bent = bent
        self._squareless = squareless
        log.info("protected features loaded", photos=len(photos))
        for ids, why in (
            (bent, "signed from pixels whose sides were reduced apart: their copies in grids"),
            (squareless, "signed before the square views: their copies in the cells of grids"),
        ):
            if ids:
                log.warning(
                    f"protected photos {why} and crops may be missed; register these photos again",
                    photos=len(ids),
                    photo_ids=ids[:20],
                )
        return index

    def squareless_photos(self) -> list[int]:
        """Ids of the loaded photos whose signature has no square views."""
        self._ready()
        return list(self._squareless)

    def bent_photos(self) -> list[int]:
        """Ids of the loaded photos whose signature's frame does not fit the photo."""
        self._ready()
        return list(self._bent)

    def _ready(self) -> ProtectedIndex:
        return self._index if self._index is not None else self._load()

    def bank_ids(self) -> set[int]:
        """Banks that hold at least one photo with features."""
        self._ready()
        return {p.bank_id for p in self._photos.values()}

    def search(self, features: QueryFeatures) -> list[VerifiedHit]:
        """The photos the query is decided to show (ProtectedIndex.search + decide)."""
        index = self._ready()
        if not self._photos:
            return []
        hits: list[ProtectedHit] = index.search(features)
        out: list[VerifiedHit] = []
        for hit in hits:
            if not hit.match:
                continue
            ref = self._photos[hit.photo]
            distance, query_pdq = _best_distance(features, ref.view_hashes)
            out.append(VerifiedHit(ref, hit.inliers, distance, query_pdq, hit.region))
        return out


def _best_distance(features: QueryFeatures, views: np.ndarray) -> tuple[int, str]:
    best, value = 256, features.hashes[0].pdq if features.hashes else ""
    for qh in features.hashes:
        d = hamming_many(hexes_to_array([qh.pdq])[0], views)
        if len(d) and int(d.min()) < best:
            best, value = int(d.min()), qh.pdq
    return best, value


def verified_match(entry: EntryView, hit: VerifiedHit, *, threshold: int) -> Match:
    """A decided hit as a Match on the photo's PDQ entry: variant `verified:<n> inliers`,
    distance the best PDQ view distance, metadata with the photo id and the inlier count."""
    match = Match.of(
        entry,
        distance=hit.distance,
        query_value=hit.query_pdq,
        variant=f"{VERIFIED_PREFIX}{round(hit.inliers)} inliers",
        threshold=threshold,
    )
    metadata = dict(entry.metadata or {})
    metadata["photo_id"] = hit.photo.photo_id
    metadata["verified_inliers"] = round(float(hit.inliers), 1)
    if hit.region:
        metadata["verified_region"] = hit.region
    return replace(match, metadata=metadata)
