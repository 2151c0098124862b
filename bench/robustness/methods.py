"""The matching methods compared by the robustness benchmark, behind one small interface.

Each method registers the untouched photos (`register`), then answers one query image
with its best guess (`query` -> `Answer`): which photo, a score (higher = surer, used
for recall at fixed precision) and whether it matches at the method's shipped default.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass
from typing import Protocol

import imagehash
import numpy as np
from PIL import Image

from childguard.media import Content
from childguard.pipeline import compact_features, hash_bytes
from childguard.protect.register import protected_signature
from childguard.robust.grid import Box
from childguard.robust.protected import ProtectedIndex, hit_score
from childguard.robust.query import QueryHash, query_regions
from childguard.robust.query_features import query_features
from childguard.robust.signature import compute_signature
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    hamming_many,
    hexes_to_array,
    pdq_from_pixels,
    repeating,
    view_cap,
    view_rank,
)

PHASH_THRESHOLD = 10  # of 64 bits; imagehash ships no default, 10 is the common choice


@dataclass
class Answer:
    photo: str | None
    score: float
    match: bool
    hash_ms: float
    match_ms: float


class Method(Protocol):
    name: str

    def register(self, photos: dict[str, np.ndarray]) -> None: ...

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer: ...


class _PdqBank:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.packed = np.zeros((0, 32), np.uint8)
        self.repeating = np.zeros(0, bool)

    def build(self, photos: dict[str, np.ndarray]) -> None:
        self.ids = list(photos)
        self.packed = hexes_to_array([pdq_from_pixels(px)[0] for px in photos.values()])
        self.repeating = repeating(self.packed)

    def best(self, hashes: list[str]) -> tuple[str | None, int]:
        """The nearest photo to any of `hashes`, and its distance."""
        best_d, best_i = 257, -1
        for h in hashes:
            d = hamming_many(hexes_to_array([h])[0], self.packed)
            i = int(np.argmin(d))
            if int(d[i]) < best_d:
                best_d, best_i = int(d[i]), i
        return (self.ids[best_i] if best_i >= 0 else None), best_d

    def best_ranked(self, views: list[QueryHash]) -> tuple[str | None, int]:
        """The best-ranked photo over query views, as the matcher ranks them: each view's
        nearest photo counts at `view_rank` (its distance plus its margin), within its cap
        (`view_cap`; none for the original), among the photos it may match (`view_may_match`:
        a derived view never a repeating hash). Returns the photo and that rank."""
        best_r, best_i = 257, -1
        for v in views:
            d = hamming_many(hexes_to_array([v.pdq])[0], self.packed)
            if v.variant != DIHEDRAL_NAMES[0]:
                d = np.where(self.repeating, 257, d)
            i = int(np.argmin(d))
            cap = view_cap(v.variant, v.quality)
            if cap is not None and int(d[i]) > cap:
                continue
            rank = view_rank(v.variant, v.quality, int(d[i]))
            if rank < best_r:
                best_r, best_i = rank, i
        return (self.ids[best_i] if best_i >= 0 else None), best_r


class ReferencePdq:
    """Full decode plus pdqhash, one hash per image, threshold 31."""

    name = "pdq"

    def __init__(self) -> None:
        self.bank = _PdqBank()

    def register(self, photos: dict[str, np.ndarray]) -> None:
        self.bank.build(photos)

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        t0 = time.perf_counter()
        h, _ = pdq_from_pixels(pixels)
        t1 = time.perf_counter()
        photo, d = self.bank.best([h])
        t2 = time.perf_counter()
        return Answer(photo, -float(d), d <= DEFAULT_THRESHOLD, 1e3 * (t1 - t0), 1e3 * (t2 - t1))


class PHash:
    """imagehash's pHash (64 bits), threshold PHASH_THRESHOLD."""

    name = "phash"

    def register(self, photos: dict[str, np.ndarray]) -> None:
        self.ids = list(photos)
        self.bits = np.array([self._hash(px) for px in photos.values()], dtype=bool)

    @staticmethod
    def _hash(pixels: np.ndarray) -> np.ndarray:
        return np.asarray(imagehash.phash(Image.fromarray(pixels)).hash, dtype=bool).ravel()

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        t0 = time.perf_counter()
        h = self._hash(pixels)
        t1 = time.perf_counter()
        d = (self.bits != h).sum(axis=1)
        i = int(np.argmin(d))
        t2 = time.perf_counter()
        return Answer(
            self.ids[i],
            -float(d[i]),
            int(d[i]) <= PHASH_THRESHOLD,
            1e3 * (t1 - t0),
            1e3 * (t2 - t1),
        )


def _protected_hashes(
    pixels: np.ndarray, shared: dict[str, object]
) -> tuple[list[QueryHash], float]:
    """query_hashes() once per query, shared by the two childguard methods; the grid cells it
    found go in `shared["cells"]` for the protected search (one grid detection a query)."""
    if "hashes" not in shared:
        t0 = time.perf_counter()
        shared["hashes"], shared["cells"], shared["boxes"] = query_regions(pixels, mode="protected")
        shared["hashes_ms"] = 1e3 * (time.perf_counter() - t0)
    hashes: list[QueryHash] = shared["hashes"]  # type: ignore[assignment]
    ms: float = shared["hashes_ms"]  # type: ignore[assignment]
    return hashes, ms


class KnownAbuse:
    """childguard's known-abuse pipeline: query_hashes() against a plain PDQ bank."""

    name = "childguard-known-abuse"
    # Views whose variant is in here are not searched (KnownAbuseNoDihedral).
    dropped: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.bank = _PdqBank()

    def register(self, photos: dict[str, np.ndarray]) -> None:
        self.bank.build(photos)

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        hashes, ms = _protected_hashes(pixels, shared)
        # query_hashes returns the same list in both modes (checked in tests).
        wanted = [h for h in hashes if h.variant not in self.dropped]
        # As the matcher: a derived view counts within its cap only, at its rank (distance plus
        # margin, `signals.pdq.view_rank`); the rank is the score, and a view matches at the
        # default threshold exactly when its rank is within it (`view_limit`).
        t1 = time.perf_counter()
        photo, rank = self.bank.best_ranked(wanted)
        t2 = time.perf_counter()
        return Answer(photo, -float(rank), rank <= DEFAULT_THRESHOLD, ms, 1e3 * (t2 - t1))


class KnownAbuseNoDihedral(KnownAbuse):
    """KnownAbuse without the 7 rotation/flip views (the matcher before dihedral variants
    became the default against known-abuse banks): the original and the derived views only.
    A derived view whose hash equals a dihedral variant's was deduplicated away by
    query_hashes and is not searched here either."""

    name = "childguard-known-abuse-no-dihedral"
    dropped = frozenset(DIHEDRAL_NAMES[1:])


class Protected:
    """childguard's protected-photo pipeline: view hashes + ORB votes + RANSAC verification."""

    name = "childguard-protected"

    def __init__(self) -> None:
        self.index = ProtectedIndex()
        self.signature_ms: list[float] = []
        self.signature_bytes: list[int] = []

    def register(self, photos: dict[str, np.ndarray]) -> None:
        for photo, px in photos.items():
            t0 = time.perf_counter()
            sig = compute_signature(px)
            self.signature_ms.append(1e3 * (time.perf_counter() - t0))
            self.signature_bytes.append(sig.nbytes)
            self.index.add(photo, sig)

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        hashes, ms = _protected_hashes(pixels, shared)
        t0 = time.perf_counter()
        cells: list[Box] = shared["cells"]  # type: ignore[assignment]
        # ORB features are computed lazily
        boxes: list[Box] = shared["boxes"]  # type: ignore[assignment]
        hits = self.index.search(query_features(pixels, hashes, cells=cells, boxes=boxes))
        t1 = time.perf_counter()
        if not hits:
            return Answer(None, 0.0, False, ms, 1e3 * (t1 - t0))
        best = hits[0]
        return Answer(best.photo, hit_score(best), best.match, ms, 1e3 * (t1 - t0))


class ProtectedAsProduct(Protected):
    """The protected pipeline as the product runs it: the query's features computed in full up
    front and travelling without the pixels (`childguard.pipeline.compact_features`, what the
    hashing workers of a scan, the crawl and the API send the matcher). Not in the default runs
    (`--methods` names it): its recall should be the protected method's, its cost is higher
    (the mirror's and the regions' features are computed for every query)."""

    name = "childguard-protected-product"

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        hashes, ms = _protected_hashes(pixels, shared)
        t0 = time.perf_counter()
        cells: list[Box] = shared["cells"]  # type: ignore[assignment]
        boxes: list[Box] = shared["boxes"]  # type: ignore[assignment]
        features = compact_features(pixels, hashes, cells=cells, boxes=boxes)
        hits = self.index.search(pickle.loads(pickle.dumps(features)))
        t1 = time.perf_counter()
        if not hits:
            return Answer(None, 0.0, False, ms, 1e3 * (t1 - t0))
        best = hits[0]
        return Answer(best.photo, hit_score(best), best.match, ms, 1e3 * (t1 - t0))


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


class ProtectedThroughBytes(Protected):
    """The protected search as the product runs it end to end: each photo registered from its
    bytes as `protect register` signs it (`childguard.protect.register.protected_signature`),
    each query hashed from its bytes by the hashing workers' road (`hash_bytes(robust=True,
    features=True)`: the media decode, query hashing and the compact features, pickled as the
    workers send them). The bytes are lossless PNGs of the harness's pixels, so what differs
    from `childguard-protected` is the product's decoding and nothing else. Not in the default
    runs (`--methods` names it)."""

    name = "childguard-protected-bytes"

    def register(self, photos: dict[str, np.ndarray]) -> None:
        for photo, px in photos.items():
            t0 = time.perf_counter()
            sig = protected_signature(Content(_png(px), origin=photo))
            self.signature_ms.append(1e3 * (time.perf_counter() - t0))
            self.signature_bytes.append(sig.nbytes)
            self.index.add(photo, sig)

    def query(self, pixels: np.ndarray, shared: dict[str, object]) -> Answer:
        data = _png(pixels)
        t0 = time.perf_counter()
        record = hash_bytes(data, robust=True, features=True)
        t1 = time.perf_counter()
        if record.features is None:
            return Answer(None, 0.0, False, 1e3 * (t1 - t0), 0.0)
        hits = self.index.search(pickle.loads(pickle.dumps(record.features)))
        t2 = time.perf_counter()
        if not hits:
            return Answer(None, 0.0, False, 1e3 * (t1 - t0), 1e3 * (t2 - t1))
        best = hits[0]
        return Answer(best.photo, hit_score(best), best.match, 1e3 * (t1 - t0), 1e3 * (t2 - t1))


METHODS: dict[str, type] = {
    m.name: m
    for m in (
        ReferencePdq,
        PHash,
        KnownAbuse,
        KnownAbuseNoDihedral,
        Protected,
        ProtectedAsProduct,
        ProtectedThroughBytes,
    )
}
# The methods of a run that does not name its own.
DEFAULT_METHODS = [
    name for name in METHODS if name not in (ProtectedAsProduct.name, ProtectedThroughBytes.name)
]
