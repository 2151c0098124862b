"""Protected photos: the richer signature an owner computes locally, and how it is matched.

A `ProtectedSignature` holds PDQ hashes of several views of the photo (whole,
centre crops, corner crops) and ORB keypoints with their binary descriptors.
Only hashes and descriptors leave the owner's machine, never pixels.

Matching a query: `query_features` computes the query's hashes (via
`query_hashes(mode="protected")`) and ORB features once; `ProtectedIndex`
finds candidate photos by PDQ hits and by descriptor votes, and `verify`
confirms a candidate by fitting a similarity transform (rotation, scale,
translation) to matched keypoints with RANSAC. `decide` is the rule.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import faiss
import numpy as np

from childguard.robust.query import QueryHash, photo_regions, query_hashes
from childguard.signals.pdq import (
    MIN_QUALITY,
    PdqSignal,
    hamming_many,
    hexes_to_array,
    pdq_from_pixels,
)

ORB_FEATURES = 300
_WORK_SIDE = 512
# A candidate is verified when this many keypoint matches agree on one similarity transform.
MIN_INLIERS = 24
# ... and those keypoints span at least this share of the area the photo's keypoints cover.
MIN_SPREAD = 0.05
# Scale of the fitted transform (photo work frame over query work frame) a copy can have: the
# query shows the photo zoomed in at most 4x, or shrunk to an eighth. Copies measured 0.56-3.0;
# chance fits on dark deep-sky photos collapse to 0.01-0.25.
MIN_SCALE = 0.25
MAX_SCALE = 8.0
# PDQ alone is enough at this distance or closer ...
PDQ_CLOSE = 16
# ... and up to the generic PDQ threshold with this many agreeing keypoints (RANSAC inliers).
PDQ_ONLY_DISTANCE = 31
PDQ_SUPPORT = 6
# Query views too speculative to match on PDQ alone; they only nominate candidates for verification.
UNTRUSTED_VARIANTS = ("quad",)
# Dihedral query views that mirror the picture (see childguard.signals.pdq.DIHEDRAL_NAMES).
FLIP_VARIANTS = frozenset({"flipx", "flipy", "flip_plus1", "flip_minus1"})
# Screenshot/collage regions whose own ORB features are tried when the whole query found nothing.
MAX_REGION_QUERIES = 2
# A descriptor votes only when its nearest photo is this much nearer than the next photo's.
VOTE_RATIO = 0.8
_VOTE_NEIGHBOURS = 4
# The whole query's most voted photos that are verified.
_VOTES = 2
# Only the strongest query descriptors vote (the search is the costly step); all of them verify.
VOTERS = 1000
# The mirrored and region queries verify their own top vote and the closest PDQ candidate.
_ALT_PDQ_CANDIDATES = 1
# Hamming distance under which two ORB descriptors (256 bits) are a candidate match.
DESCRIPTOR_MATCH = 64
# The aligned check: the query warped onto the registered photo by the transform its inliers
# fit must give, for a view it covers, a PDQ near the registered one. Another photo of the same
# subject (a second shot of a tower, the other set of toy blocks) agrees on the subject's
# keypoints (19-25 inliers) but not on the rest of the view: 68-112 bits, where copies with
# fewer than STRONG_INLIERS inliers gave 0-58 (overlays such as stickers give more, but with
# many inliers).
CHECK_SIDE = 256  # the query's small grey copy used for it
ALIGN_COVER = 0.97  # share of a view the warped query must cover for the view to be compared
ALIGNED_REJECT = 64  # above this a match resting on fewer than STRONG_INLIERS inliers is refused
# A query that covers none of the photo's views cannot be compared: counted as this far (a chance
# fit onto a photo whose keypoints sit in one small blob maps the query onto a corner of it).
NOT_COVERED = 256
STRONG_INLIERS = 40
# View crops registered per photo: label -> (x0, y0, x1, y1) as fractions.
VIEWS: dict[str, tuple[float, float, float, float]] = {
    "full": (0.0, 0.0, 1.0, 1.0),
    "c90": (0.05, 0.05, 0.95, 0.95),
    "c80": (0.1, 0.1, 0.9, 0.9),
    "c70": (0.15, 0.15, 0.85, 0.85),
    "tl85": (0.0, 0.0, 0.85, 0.85),
    "tr85": (0.15, 0.0, 1.0, 0.85),
    "bl85": (0.0, 0.15, 0.85, 1.0),
    "br85": (0.15, 0.15, 1.0, 1.0),
}


def view_slices(label: str, w: int, h: int) -> tuple[slice, slice]:
    """Rows and columns of the registered view `label` (see VIEWS) in a w x h frame."""
    x0, y0, x1, y1 = VIEWS[label]
    return slice(round(y0 * h), round(y1 * h)), slice(round(x0 * w), round(x1 * w))


@dataclass
class VerifyResult:
    score: float  # RANSAC inliers of the best similarity transform
    match: bool
    # PDQ distance between a registered view and the query warped onto the photo by the fitted
    # transform (None: not measured, see aligned_distance).
    aligned: int | None = None


@dataclass(frozen=True)
class CheckImage:
    """A query's small grey copy (longest side at most CHECK_SIDE) for the aligned check."""

    grey: np.ndarray  # (h, w) uint8
    scale: float  # query work-image coordinates times this are check-image coordinates


@dataclass
class ProtectedSignature:
    """PDQ hashes per labelled view plus ORB keypoints (x, y as uint16) and descriptors."""

    pdq: list[tuple[str, str]]  # (label, hex hash)
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint16))
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 32), np.uint8))
    # Width and height of the frame the keypoints are in (None in signatures made before it
    # was recorded: the aligned check is then skipped).
    size: tuple[int, int] | None = None

    @property
    def nbytes(self) -> int:
        """Stored size: 32 bytes per PDQ hash, 4 per keypoint, 32 per descriptor."""
        frame = 4 if self.size else 0
        return (
            32 * len(self.pdq) + int(self.keypoints.nbytes) + int(self.descriptors.nbytes) + frame
        )

    def features_blob(self) -> str:
        """Keypoints and descriptors as one base64 string (for bank entry metadata)."""
        raw = self.keypoints.astype(">u2").tobytes() + self.descriptors.tobytes()
        return base64.b64encode(raw).decode("ascii")

    @staticmethod
    def parse_features(blob: str) -> tuple[np.ndarray, np.ndarray]:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
        if len(raw) % 36:
            raise ValueError("feature blob length is not a multiple of 36 bytes")
        n = len(raw) // 36
        kps = np.frombuffer(raw[: 4 * n], dtype=">u2").reshape(n, 2).astype(np.uint16)
        desc = np.frombuffer(raw[4 * n :], dtype=np.uint8).reshape(n, 32).copy()
        return kps, desc

    def to_json(self) -> str:
        data: dict[str, object] = {
            "pdq": [[lbl, h] for lbl, h in self.pdq],
            "features": self.features_blob(),
        }
        if self.size:
            data["size"] = list(self.size)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ProtectedSignature:
        data = json.loads(text)
        kps, desc = cls.parse_features(data["features"])
        size = data.get("size")
        return cls(
            pdq=[(str(lbl), str(h)) for lbl, h in data["pdq"]],
            keypoints=kps,
            descriptors=desc,
            size=(int(size[0]), int(size[1])) if size else None,
        )


class QueryFeatures:
    """A query's PDQ hashes, and its ORB features computed only when first needed."""

    def __init__(
        self,
        hashes: list[QueryHash],
        pixels: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        descriptors: np.ndarray | None = None,
        *,
        mirror: QueryFeatures | None = None,
        regions: list[QueryFeatures] | None = None,
        check: CheckImage | None = None,
        top_up: bool = True,
    ) -> None:
        """`mirror`, `regions` and `check` may be given precomputed (features of the flipped
        query and of its photo-like regions, the small grey copy for the aligned check) when
        the pixels do not travel with the query. `top_up`: see `orb_features`."""
        self._top_up = top_up
        self.hashes = hashes
        self._pixels = pixels
        self._check = check
        self._features = (
            None if keypoints is None or descriptors is None else (keypoints, descriptors)
        )
        self._mirror: QueryFeatures | None = mirror
        self._regions: list[QueryFeatures] | None = regions

    def _orb(self) -> tuple[np.ndarray, np.ndarray]:
        if self._features is None:
            if self._pixels is None:
                self._features = (np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
            else:
                self._features = orb_features(self._pixels, query=True, top_up=self._top_up)
        return self._features

    def mirrored(self) -> QueryFeatures | None:
        """The query flipped left-right, for ORB only (ORB descriptors are not mirror-invariant).

        With rotation handled by the similarity fit, this one mirror covers every
        flipped dihedral variant. None when the query's pixels are not at hand.
        """
        if self._mirror is None and self._pixels is None:
            return None
        if self._mirror is None and self._pixels is not None:
            self._mirror = QueryFeatures(
                [], pixels=np.ascontiguousarray(self._pixels[:, ::-1]), top_up=False
            )
        return self._mirror

    def regions(self) -> list[QueryFeatures]:
        """The photo-like regions of a screenshot or collage, each its own query for ORB.

        In the whole picture, text and the other photos take most of the keypoints;
        in the region's crop, the photo gets them all. Largest first, at most
        MAX_REGION_QUERIES; empty when the pixels are not at hand.
        """
        if self._regions is not None:
            return self._regions
        if self._pixels is None:
            return []
        px = self._pixels
        self._regions = [
            QueryFeatures(
                [], pixels=np.ascontiguousarray(px[b.y0 : b.y1, b.x0 : b.x1]), top_up=False
            )
            for b in photo_regions(px)[:MAX_REGION_QUERIES]
            if min(b.x1 - b.x0, b.y1 - b.y0) >= 32
        ]
        return self._regions

    @property
    def check(self) -> CheckImage | None:
        """The query's small grey copy for the aligned check (None without pixels)."""
        if self._check is None and self._pixels is not None:
            self._check = check_image(self._pixels)
        return self._check

    @property
    def keypoints(self) -> np.ndarray:  # (n, 2) float32, work-image coordinates
        return self._orb()[0]

    @property
    def descriptors(self) -> np.ndarray:  # (n, 32) uint8
        return self._orb()[1]


def _work_factor(h: int, w: int, max_side: int) -> float:
    """Scale of the work image: longest side at most `max_side`, at least _MIN_SIDE."""
    f = min(1.0, max_side / max(h, w))
    if max(h, w) * f < _MIN_SIDE:
        f = _MIN_SIDE / max(h, w)
    return f


def _work(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Grey image, longest side at most `max_side` and at least _MIN_SIDE (small ones upscaled)."""
    h, w = pixels.shape[:2]
    f = _work_factor(h, w, max_side)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    if f != 1.0:
        interp = cv2.INTER_AREA if f < 1.0 else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))), interpolation=interp)
    return grey


_MIN_SIDE = 384
# FAST corner thresholds: the usual one, and the low one for images that give too few corners
# at it (dark deep-sky photos, small thumbnails upscaled to _MIN_SIDE: 6-60 keypoints instead
# of hundreds, too few to verify).
_FAST = 10
_FAST_LOW = 2
_ORB = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=_FAST)
_ORB_LOW = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=_FAST_LOW)
# Queries may hold the photo in a part of a larger picture: more features, larger work size.
_QUERY_SIDE = 768
# Query features: a watermark or text in the query takes many of them; 1000 leave the photo enough.
_QUERY_FEATURES = 1000
_ORB_QUERY = cv2.ORB.create(nfeatures=_QUERY_FEATURES, fastThreshold=_FAST)
_ORB_QUERY_LOW = cv2.ORB.create(nfeatures=_QUERY_FEATURES, fastThreshold=_FAST_LOW)
# Fewer keypoints than this at the usual threshold: detect again at the low one.
_FEW_KEYPOINTS = 300
# Query keypoints are topped up cell by cell: a watermark's letters hold most of the strongest
# corners of a dark photo, leaving few on its stars (astro repost chains verified the right photo
# at 0-18 inliers). On a _TOPUP_CELLS x _TOPUP_CELLS grid, a cell holding fewer than its share
# of _QUERY_FEATURES gets the strongest low-threshold corners in it, up to that share.
_TOPUP_CELLS = 8
_ORB_TOPUP = cv2.ORB.create(nfeatures=2 * _QUERY_FEATURES, fastThreshold=_FAST_LOW)


def orb_features(
    pixels: np.ndarray, *, query: bool = False, top_up: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints (n, 2) float32 and descriptors (n, 32) uint8 of the work-size grey image.

    Keypoint coordinates are in work-image pixels; RANSAC fits a similarity
    transform, so the two sides' scales need not agree. Images with fewer than
    _FEW_KEYPOINTS corners at the usual FAST threshold are detected again at the
    low one. Strongest first; a query's top-up keypoints (see `_top_up`) come last.
    The fallback queries (the mirror, the regions of a screenshot) go without the top-up:
    its second detection costs 6-9 ms each, and those passes already frame the photo.
    """
    usual, low = (_ORB_QUERY, _ORB_QUERY_LOW) if query else (_ORB, _ORB_LOW)
    grey = _work(pixels, _QUERY_SIDE if query else _WORK_SIDE)
    kps, desc = usual.detectAndCompute(grey, None)
    topped = query and top_up and len(kps) >= _FEW_KEYPOINTS
    if len(kps) < _FEW_KEYPOINTS:
        kps, desc = low.detectAndCompute(grey, None)
    points, desc = _strongest_first(kps, desc)
    if topped:
        points, desc = _top_up(grey, points, desc)
    return points, desc


def _strongest_first(
    kps: Sequence[cv2.KeyPoint], desc: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    order = np.argsort([-k.response for k in kps], kind="stable")
    return np.array([k.pt for k in kps], np.float32)[order], desc[order]


def _grid_cells(points: np.ndarray, w: int, h: int) -> np.ndarray:
    n = _TOPUP_CELLS
    gx = np.minimum((points[:, 0] * n / w).astype(np.int64), n - 1)
    gy = np.minimum((points[:, 1] * n / h).astype(np.int64), n - 1)
    return np.asarray(gy * n + gx)


def _top_up(
    grey: np.ndarray, points: np.ndarray, desc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`points` plus low-threshold corners in the grid cells that hold fewer than their share."""
    h, w = grey.shape[:2]
    quota = _QUERY_FEATURES // _TOPUP_CELLS**2
    have = np.bincount(_grid_cells(points, w, h), minlength=_TOPUP_CELLS**2)
    if (have >= quota).all():
        return points, desc
    more_pts, more_desc = _strongest_first(*_ORB_TOPUP.detectAndCompute(grey, None))
    take: list[int] = []
    for i, cell in enumerate(_grid_cells(more_pts, w, h)):
        if have[cell] < quota:
            have[cell] += 1
            take.append(i)
    if not take:
        return points, desc
    return np.concatenate([points, more_pts[take]]), np.concatenate([desc, more_desc[take]])


def check_image(pixels: np.ndarray) -> CheckImage:
    """The query's small grey copy, in step with its work image's coordinates."""
    h, w = pixels.shape[:2]
    f = _work_factor(h, w, _QUERY_SIDE)
    c = min(1.0, CHECK_SIDE / (max(h, w) * f))
    size = (max(1, round(w * f * c)), max(1, round(h * f * c)))
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return CheckImage(cv2.resize(grey, size, interpolation=interp), c)


def aligned_distance(
    check: CheckImage | None, signature: ProtectedSignature, src: np.ndarray, dst: np.ndarray
) -> int | None:
    """Smallest PDQ distance between a registered view and the query warped onto the photo.

    `src`/`dst`: matched keypoints (query work image, photo). An affine transform
    (stretches too) is fitted to them and the check image warped into the photo's
    keypoint frame; each registered view the warped query covers (ALIGN_COVER) is
    hashed. NOT_COVERED when the warped query covers no view; None when there is
    nothing to compare with: no check image (features that travelled without it, such
    as the crawl cache's), a signature without its frame size, or no fit.
    """
    if check is None or signature.size is None or len(src) < 3:
        return None
    model, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0)
    if model is None:
        return None
    model = np.asarray(model, np.float64).copy()
    model[:, :2] = model[:, :2] / check.scale
    w, h = signature.size
    warped = cv2.warpAffine(check.grey, model, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(
        np.full(check.grey.shape, 255, np.uint8), model, (w, h), flags=cv2.INTER_NEAREST
    )
    best: int | None = None
    for label, value in signature.pdq:
        if label not in VIEWS:
            continue
        rows, cols = view_slices(label, w, h)
        if min(rows.stop - rows.start, cols.stop - cols.start) < 16:
            continue
        if float((cover[rows, cols] > 0).mean()) < ALIGN_COVER:
            continue
        view = np.ascontiguousarray(np.repeat(warped[rows, cols][:, :, None], 3, axis=2))
        d = PdqSignal.distance(pdq_from_pixels(view)[0], value)
        best = d if best is None else min(best, d)
    return NOT_COVERED if best is None else best


def compute_signature(pixels: np.ndarray) -> ProtectedSignature:
    """The signature an owner registers for one RGB photo.

    The photo is first reduced to at most 512 px on its longest side: PDQ works on
    64x64 anyway, and it keeps the cost near 20-30 ms whatever the input size.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("compute_signature wants an HxWx3 uint8 RGB array")
    if min(pixels.shape[:2]) < 16:
        raise ValueError("photo too small for a protected signature (under 16 px)")
    h, w = pixels.shape[:2]
    if max(h, w) > _WORK_SIDE:
        f = _WORK_SIDE / max(h, w)
        h, w = max(1, round(h * f)), max(1, round(w * f))
        pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
    hashes: list[tuple[str, str]] = []
    for label in VIEWS:
        rows, cols = view_slices(label, w, h)
        view = np.ascontiguousarray(pixels[rows, cols])
        hashes.append((label, pdq_from_pixels(view)[0]))
    kps, desc = orb_features(pixels)
    f = _work_factor(h, w, _WORK_SIDE)
    return ProtectedSignature(
        pdq=hashes,
        keypoints=np.round(kps).astype(np.uint16),
        descriptors=desc,
        size=(max(1, round(w * f)), max(1, round(h * f))),
    )


def query_features(pixels: np.ndarray, hashes: list[QueryHash] | None = None) -> QueryFeatures:
    """Everything a protected search needs about one query (ORB features lazily)."""
    if hashes is None:
        hashes = query_hashes(pixels, mode="protected")
    return QueryFeatures(hashes, pixels=np.ascontiguousarray(pixels))


def verify(query: QueryFeatures | np.ndarray, signature: ProtectedSignature) -> VerifyResult:
    """Geometric check: do the query's keypoints map onto the photo's by one similarity?"""
    q = query if isinstance(query, QueryFeatures) else query_features(query)
    if len(q.descriptors) < 4 or len(signature.descriptors) < 4:
        return VerifyResult(0.0, False)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = [
        m
        for m in matcher.match(q.descriptors, signature.descriptors)
        if m.distance <= DESCRIPTOR_MATCH
    ]
    if len(matches) < 4:
        return VerifyResult(0.0, False)
    src = q.keypoints[[m.queryIdx for m in matches]].astype(np.float32)
    dst = signature.keypoints[[m.trainIdx for m in matches]].astype(np.float32)
    model, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0
    )
    if model is None or inliers is None:
        return VerifyResult(0.0, False)
    if not MIN_SCALE <= float(np.hypot(model[0, 0], model[1, 0])) <= MAX_SCALE:
        # A collapsed fit: the matched points all land in one small patch of the photo (a
        # central blob, a star), so many agree within the tolerance by accident.
        return VerifyResult(0.0, False)
    agreeing = dst[inliers.ravel() == 1]
    count = len(agreeing)
    spread = _spread(agreeing, signature.keypoints)
    # Agreement packed into a small patch (repeated texture, a logo) is discounted.
    score = float(count) * min(1.0, spread / MIN_SPREAD)
    aligned = None
    if PDQ_SUPPORT <= score < STRONG_INLIERS:  # only there can the aligned check change the rule
        aligned = aligned_distance(q.check, signature, src, dst)
    return VerifyResult(score, decide(256, score, aligned), aligned)


def _spread(points: np.ndarray, reference: np.ndarray) -> float:
    """Area of the points' convex hull over the area spanned by all the photo's keypoints."""
    if len(points) < 3 or len(reference) < 3:
        return 0.0
    ref = reference.astype(np.float32)
    ref_area = float(np.ptp(ref[:, 0])) * float(np.ptp(ref[:, 1]))
    hull = float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))
    return hull / max(ref_area, 1.0)


@dataclass
class ProtectedHit:
    photo: str
    distance: int  # best PDQ distance between a query hash and one of the photo's views
    region: str  # which registered view gave that distance
    inliers: float  # verification score (0 when not verified)
    match: bool
    aligned: int | None = None  # the aligned check's PDQ distance, when measured


def decide(distance: int, inliers: float, aligned: int | None = None) -> bool:
    """The rule for a protected match.

    A PDQ hit within PDQ_CLOSE; a PDQ hit within PDQ_ONLY_DISTANCE that at least
    PDQ_SUPPORT keypoints confirm, one more per 3 bits of distance (look-alike
    low-texture photos, deep-sky images above all, meet at PDQ distances of 18-30
    with next to no keypoint in common); or a verified geometric match (MIN_INLIERS).
    Keypoint support under STRONG_INLIERS is refused when the aligned check
    (`aligned`, see aligned_distance) measured more than ALIGNED_REJECT bits.
    """
    if distance <= PDQ_CLOSE:
        return True
    if aligned is not None and aligned > ALIGNED_REJECT and inliers < STRONG_INLIERS:
        return False
    if inliers >= MIN_INLIERS:
        return True
    # The further the PDQ hit, the more keypoints must confirm it (6 at 17, 11 at 31).
    needed = PDQ_SUPPORT + (distance - PDQ_CLOSE - 1) // 3
    return distance <= PDQ_ONLY_DISTANCE and inliers >= needed


class ProtectedIndex:
    """In-memory index of protected signatures.

    PDQ views are searched by brute force; ORB descriptors through faiss (votes).
    """

    def __init__(self) -> None:
        self.signatures: dict[str, ProtectedSignature] = {}
        self._hash_owner: list[tuple[str, str]] = []
        self._hash_parts: list[np.ndarray] = []
        self._hashes = np.zeros((0, 32), np.uint8)
        self._desc_owner: list[str] = []
        self._photo_no: dict[str, int] = {}
        self._owner_ids: np.ndarray | None = None
        # HNSW over binary descriptors: no training, incremental adds, ~10x faster than flat here.
        self._faiss = faiss.IndexBinaryHNSW(256, 16)
        self._dirty = True

    def add(self, photo: str, signature: ProtectedSignature) -> None:
        if photo in self.signatures:
            raise ValueError(f"photo {photo!r} is already in the index")
        self._photo_no[photo] = len(self.signatures)
        self.signatures[photo] = signature
        self._hash_owner.extend((photo, label) for label, _ in signature.pdq)
        self._hash_parts.append(hexes_to_array([h for _, h in signature.pdq]))
        if len(signature.descriptors):
            self._desc_owner.extend([photo] * len(signature.descriptors))
            self._faiss.add(np.ascontiguousarray(signature.descriptors))
        self._dirty = True

    def _ready(self) -> None:
        if self._dirty:
            self._hashes = (
                np.vstack(self._hash_parts) if self._hash_parts else np.zeros((0, 32), np.uint8)
            )
            self._dirty = False

    def pdq_hits(self, q: QueryFeatures, *, radius: int = 80) -> dict[str, tuple[int, str]]:
        """photo -> (best distance, registered view) over the query's hashes within `radius`.

        Quadrant query hashes and weak ones (quality under 50) only nominate
        candidates: their distance is reported as 256.
        """
        self._ready()
        out: dict[str, tuple[int, str]] = {}
        if not len(self._hashes):
            return out
        for qh in q.hashes:
            dist = hamming_many(hexes_to_array([qh.pdq])[0], self._hashes)
            for i in np.flatnonzero(dist <= radius):
                photo, label = self._hash_owner[int(i)]
                trusted = qh.quality >= MIN_QUALITY and not qh.variant.startswith(
                    UNTRUSTED_VARIANTS
                )
                d = int(dist[i]) if trusted else 256
                if photo not in out or d < out[photo][0]:
                    out[photo] = (d, label)
        return out

    def _maybe_flipped(self, q: QueryFeatures, *, radius: int = 80) -> bool:
        """Worth verifying the mirrored query: a mirrored PDQ view of it comes near a registered
        view, or its hash is too weak to have dihedral views at all."""
        if not q.hashes or q.hashes[0].quality < MIN_QUALITY:
            return True
        self._ready()
        for qh in q.hashes:
            if (
                qh.variant in FLIP_VARIANTS
                and len(self._hashes)
                and int(hamming_many(hexes_to_array([qh.pdq])[0], self._hashes).min()) <= radius
            ):
                return True
        return False

    def voted(self, q: QueryFeatures, *, votes: int = 2) -> list[str]:
        """The photos most voted for by the query's ORB descriptors.

        A query descriptor votes for the photo of its nearest registered descriptor
        only when that one is distinctive: within DESCRIPTOR_MATCH and clearly
        nearer than the second nearest of another photo (Lowe's ratio test). Photos
        full of generic corners (star fields, text) otherwise collect votes from
        every query.
        """
        if self._faiss.ntotal == 0 or not len(q.descriptors):
            return []
        k = min(_VOTE_NEIGHBOURS, self._faiss.ntotal)
        dist, idx = self._faiss.search(np.ascontiguousarray(q.descriptors[:VOTERS]), k)
        if self._owner_ids is None or len(self._owner_ids) != len(self._desc_owner):
            self._owner_ids = np.array([self._photo_no[p] for p in self._desc_owner], np.int64)
        owner = np.where(idx >= 0, self._owner_ids[np.maximum(idx, 0)], -1)
        other = (owner != owner[:, :1]) & (owner >= 0)
        other[:, 0] = False
        # Distance to the nearest descriptor of another photo (none among the k: the bar itself).
        second = np.where(
            other.any(axis=1),
            dist[np.arange(len(dist)), np.argmax(other, axis=1)],
            DESCRIPTOR_MATCH / VOTE_RATIO,
        )
        good = (owner[:, 0] >= 0) & (dist[:, 0] <= DESCRIPTOR_MATCH)
        good &= dist[:, 0] < VOTE_RATIO * second
        photos = list(self.signatures)
        tally: Counter[str] = Counter(photos[int(o)] for o in owner[good, 0])
        return [photo for photo, _n in tally.most_common(votes)]

    def search(self, query: np.ndarray | QueryFeatures, *, limit: int = 4) -> list[ProtectedHit]:
        """Hits sorted best first; `match` applies `decide`.

        The closest trusted PDQ hit within PDQ_ONLY_DISTANCE is verified first and
        answers at once if `decide` accepts it; otherwise PDQ candidates and
        descriptor votes are verified geometrically, then the mirrored query (flips)
        and the query's photo-like regions (screenshots, collages).
        """
        q = query if isinstance(query, QueryFeatures) else query_features(query)
        cands = self.pdq_hits(q)
        ranked = sorted(cands.items(), key=lambda kv: kv[1][0])
        hits: list[ProtectedHit] = []
        if ranked and ranked[0][1][0] <= PDQ_ONLY_DISTANCE:
            photo, (dist, label) = ranked[0]
            hits.append(self._hit(q, photo, dist, label))
            if hits[0].match:
                return hits
        # The most voted photos are always verified, then the PDQ-closest up to `limit`:
        # look-alike photos (deep-sky images) crowd the PDQ candidates within 80 bits.
        voted = self.voted(q, votes=_VOTES)
        for photo in voted:
            cands.setdefault(photo, (256, ""))
        ranked = sorted(cands.items(), key=lambda kv: kv[1][0])
        order = list(dict.fromkeys(voted + [photo for photo, _ in ranked]))
        order = order[: max(limit, len(voted))]
        done = {h.photo for h in hits}
        for photo in order:
            dist, label = cands[photo]
            if photo in done:
                continue
            hits.append(self._hit(q, photo, dist, label))
        # A flipped re-post, or a photo inside a larger picture: the alternative query's
        # own votes and the candidates so far are verified with its features.
        mirror = q.mirrored()
        if mirror is not None and not any(h.match for h in hits) and self._maybe_flipped(q):
            hits = self._verify_more(mirror, hits, cands)
        if not any(h.match for h in hits):
            for region in q.regions():
                hits = self._verify_more(region, hits, cands)
                if any(h.match for h in hits):
                    break
        if hits and not any(h.match for h in hits) and hits[0].distance <= PDQ_ONLY_DISTANCE:
            hits[0] = self._unverifiable(q, hits[0])
        hits.sort(key=lambda h: (-h.match, -hit_score(h)))
        return hits

    def _hit(self, q: QueryFeatures, photo: str, dist: int, label: str) -> ProtectedHit:
        v = verify(q, self.signatures[photo])
        match = decide(dist, v.score, v.aligned)
        return ProtectedHit(photo, dist, label, v.score, match, v.aligned)

    def _unverifiable(self, q: QueryFeatures, hit: ProtectedHit) -> ProtectedHit:
        """A PDQ hit from a mirrored or region view, when that view's features are not at hand
        (a query that travelled without its pixels), keeps the plain PDQ rule."""
        photo_hashes = hexes_to_array([h for _, h in self.signatures[hit.photo].pdq])
        best = min(
            (int(hamming_many(hexes_to_array([qh.pdq])[0], photo_hashes).min()), qh.variant)
            for qh in q.hashes
            if qh.quality >= MIN_QUALITY and not qh.variant.startswith(UNTRUSTED_VARIANTS)
        )
        variant = best[1]
        if variant in FLIP_VARIANTS and q.mirrored() is None:
            return ProtectedHit(hit.photo, hit.distance, hit.region, hit.inliers, True)
        if variant.startswith("region") and not q.regions():
            return ProtectedHit(hit.photo, hit.distance, hit.region, hit.inliers, True)
        return hit

    def _verify_more(
        self, alt: QueryFeatures, hits: list[ProtectedHit], cands: dict[str, tuple[int, str]]
    ) -> list[ProtectedHit]:
        scored = {h.photo: h for h in hits}
        closest = [h.photo for h in sorted(hits, key=lambda h: h.distance)[:_ALT_PDQ_CANDIDATES]]
        for photo in dict.fromkeys(self.voted(alt, votes=1) + closest):
            old = scored.get(photo)
            if old is None:
                dist, label = cands.get(photo, (256, ""))
                scored[photo] = self._hit(alt, photo, dist, label)
                continue
            hit = self._hit(alt, photo, old.distance, old.region)
            if hit.inliers > old.inliers:
                scored[photo] = hit
        return list(scored.values())


def hit_score(hit: ProtectedHit) -> float:
    """One number ordering hits by confidence (for recall-at-precision curves)."""
    return hit.inliers + max(0.0, (PDQ_ONLY_DISTANCE + 12 - hit.distance)) * 2.0
