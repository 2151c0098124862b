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
from dataclasses import dataclass, field

import cv2
import numpy as np

from childguard.robust.query import QueryHash, query_hashes
from childguard.signals.pdq import hamming_many, hexes_to_array, pdq_from_pixels

ORB_FEATURES = 300
_WORK_SIDE = 512
# A candidate is verified when at least this many keypoint matches agree on one similarity transform.
MIN_INLIERS = 15
# PDQ alone is enough only at this distance or closer (a stricter bar than the generic 31).
PDQ_ONLY_DISTANCE = 20
# Hamming distance under which two ORB descriptors (256 bits) are a candidate match.
DESCRIPTOR_MATCH = 64
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


@dataclass
class VerifyResult:
    score: float  # RANSAC inliers of the best similarity transform
    match: bool


@dataclass
class ProtectedSignature:
    """PDQ hashes per labelled view plus ORB keypoints (x, y as uint16) and descriptors."""

    pdq: list[tuple[str, str]]  # (label, hex hash)
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint16))
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 32), np.uint8))

    @property
    def nbytes(self) -> int:
        """Stored size: 32 bytes per PDQ hash, 4 per keypoint, 32 per descriptor."""
        return 32 * len(self.pdq) + int(self.keypoints.nbytes) + int(self.descriptors.nbytes)

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
        return json.dumps({"pdq": [[lbl, h] for lbl, h in self.pdq], "features": self.features_blob()})

    @classmethod
    def from_json(cls, text: str) -> ProtectedSignature:
        data = json.loads(text)
        kps, desc = cls.parse_features(data["features"])
        return cls(pdq=[(str(lbl), str(h)) for lbl, h in data["pdq"]], keypoints=kps, descriptors=desc)


@dataclass
class QueryFeatures:
    hashes: list[QueryHash]
    keypoints: np.ndarray  # (n, 2) float32, in the coordinates of the work-size image
    descriptors: np.ndarray  # (n, 32) uint8


def _work(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    f = min(1.0, _WORK_SIDE / max(h, w))
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    if f < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return grey


_ORB = cv2.ORB_create(nfeatures=ORB_FEATURES, fastThreshold=10)


def orb_features(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints (n, 2) float32 and descriptors (n, 32) uint8 of the work-size grey image."""
    kps, desc = _ORB.detectAndCompute(_work(pixels), None)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.array([k.pt for k in kps], np.float32), desc


def compute_signature(pixels: np.ndarray) -> ProtectedSignature:
    """The signature an owner registers for one RGB photo."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("compute_signature wants an HxWx3 uint8 RGB array")
    h, w = pixels.shape[:2]
    hashes: list[tuple[str, str]] = []
    for label, (x0, y0, x1, y1) in VIEWS.items():
        view = np.ascontiguousarray(pixels[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)])
        hashes.append((label, pdq_from_pixels(view)[0]))
    kps, desc = orb_features(pixels)
    return ProtectedSignature(pdq=hashes, keypoints=np.round(kps).astype(np.uint16), descriptors=desc)


def query_features(pixels: np.ndarray) -> QueryFeatures:
    kps, desc = orb_features(pixels)
    return QueryFeatures(query_hashes(pixels, mode="protected"), kps, desc)


def verify(query: QueryFeatures | np.ndarray, signature: ProtectedSignature) -> VerifyResult:
    """Geometric check: do the query's keypoints map onto the photo's by one similarity transform?"""
    q = query if isinstance(query, QueryFeatures) else query_features(query)
    if len(q.descriptors) < 4 or len(signature.descriptors) < 4:
        return VerifyResult(0.0, False)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = [m for m in matcher.match(q.descriptors, signature.descriptors) if m.distance <= DESCRIPTOR_MATCH]
    if len(matches) < 4:
        return VerifyResult(float(len(matches) if len(matches) < MIN_INLIERS else 0), False)
    src = np.float32([q.keypoints[m.queryIdx] for m in matches])
    dst = np.float32([signature.keypoints[m.trainIdx] for m in matches])
    _model, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0)
    count = int(inliers.sum()) if inliers is not None else 0
    return VerifyResult(float(count), count >= MIN_INLIERS)


@dataclass
class ProtectedHit:
    photo: str
    distance: int  # best PDQ distance between a query hash and one of the photo's views
    region: str  # which registered view gave that distance
    inliers: float  # verification score (0 when not verified)
    match: bool


def decide(distance: int, inliers: float) -> bool:
    """The rule for a protected match: a very close PDQ hit, or a verified geometric match."""
    return distance <= PDQ_ONLY_DISTANCE or inliers >= MIN_INLIERS


class ProtectedIndex:
    """In-memory index of protected signatures: PDQ views (brute force) and ORB descriptors (votes)."""

    def __init__(self) -> None:
        self.signatures: dict[str, ProtectedSignature] = {}
        self._hash_owner: list[tuple[str, str]] = []
        self._hashes = np.zeros((0, 32), np.uint8)
        self._desc_owner: list[str] = []
        self._desc = np.zeros((0, 32), np.uint8)
        self._matcher: cv2.BFMatcher | None = None

    def add(self, photo: str, signature: ProtectedSignature) -> None:
        self.signatures[photo] = signature
        self._hash_owner.extend((photo, label) for label, _ in signature.pdq)
        self._hashes = np.vstack([self._hashes, hexes_to_array([h for _, h in signature.pdq])])
        self._desc_owner.extend([photo] * len(signature.descriptors))
        self._desc = np.vstack([self._desc, signature.descriptors])
        self._matcher = None

    def candidates(self, q: QueryFeatures, *, pdq_radius: int = 80, votes: int = 3) -> dict[str, tuple[int, str]]:
        """Photos worth verifying: best PDQ view within `pdq_radius`, plus the `votes` most voted by descriptors."""
        out: dict[str, tuple[int, str]] = {}
        if len(self._hashes):
            for qh in q.hashes:
                dist = hamming_many(hexes_to_array([qh.pdq])[0], self._hashes)
                for i in np.flatnonzero(dist <= pdq_radius):
                    photo, label = self._hash_owner[int(i)]
                    if photo not in out or dist[i] < out[photo][0]:
                        out[photo] = (int(dist[i]), label)
        if len(self._desc) and len(q.descriptors):
            if self._matcher is None:
                self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
                self._matcher.add([self._desc])
            tally: Counter[str] = Counter()
            for m in self._matcher.match(q.descriptors):
                if m.distance <= DESCRIPTOR_MATCH:
                    tally[self._desc_owner[m.trainIdx]] += 1
            for photo, _n in tally.most_common(votes):
                out.setdefault(photo, (256, ""))
        return out

    def search(self, pixels_or_features: np.ndarray | QueryFeatures, *, limit: int = 6) -> list[ProtectedHit]:
        """Hits sorted best first; `match` applies `decide`."""
        q = pixels_or_features if isinstance(pixels_or_features, QueryFeatures) else query_features(pixels_or_features)
        cands = sorted(self.candidates(q).items(), key=lambda kv: kv[1][0])[:limit]
        hits: list[ProtectedHit] = []
        for photo, (dist, label) in cands:
            inliers = verify(q, self.signatures[photo]).score
            hits.append(ProtectedHit(photo, dist, label, inliers, decide(dist, inliers)))
        hits.sort(key=lambda h: (-h.match, -h.inliers, h.distance))
        return hits


def hit_score(hit: ProtectedHit) -> float:
    """One number ordering hits by confidence (for recall-at-precision curves)."""
    return hit.inliers + max(0.0, (PDQ_ONLY_DISTANCE + 12 - hit.distance)) * 2.0
