# Owns the decision on one candidate photo: the geometric verification (a similarity fitted to
# matched keypoints with RANSAC), the aligned check, and the rule that combines them with PDQ.
"""Verifying a candidate protected photo against a query, and `decide`, the match rule."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from childguard.robust import _votes
from childguard.robust.query_features import CheckImage, QueryFeatures, query_features
from childguard.robust.signature import ProtectedSignature, known_view, view_slices
from childguard.signals.pdq import PdqSignal, pdq_from_pixels

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
# Hamming distance under which two ORB descriptors (256 bits) are a candidate match.
DESCRIPTOR_MATCH = 64
# The aligned check: the query warped onto the registered photo by the transform its inliers
# fit must give, for a view it covers, a PDQ near the registered one. Another photo of the same
# subject (a second shot of a tower, the other set of toy blocks) agrees on the subject's
# keypoints (19-25 inliers) but not on the rest of the view: 68-112 bits, where copies with
# fewer than STRONG_INLIERS inliers gave 0-58 (overlays such as stickers give more, but with
# many inliers).
ALIGN_COVER = 0.97  # share of a view the warped query must cover for the view to be compared
ALIGNED_REJECT = 64  # above this a match resting on fewer than STRONG_INLIERS inliers is refused
# A query that covers none of the photo's views cannot be compared: counted as this far (a chance
# fit onto a photo whose keypoints sit in one small blob maps the query onto a corner of it).
NOT_COVERED = 256
STRONG_INLIERS = 40


@dataclass
class VerifyResult:
    score: float  # RANSAC inliers of the best similarity transform
    match: bool
    # PDQ distance between a registered view and the query warped onto the photo by the fitted
    # transform (None: not measured, see aligned_distance).
    aligned: int | None = None


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
    for label, value in signature.compared_views():
        if not known_view(label):
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


@dataclass
class _Fit:
    src: np.ndarray  # matched query keypoints (work image)
    dst: np.ndarray  # their photo keypoints
    inliers: np.ndarray  # bool per match: agrees with the fitted similarity


def _fit(q: QueryFeatures, signature: ProtectedSignature) -> _Fit | None:
    """The similarity that the most matched keypoints agree on (RANSAC), or None: too few
    matches, or a collapsed fit (scale outside MIN_SCALE..MAX_SCALE)."""
    if len(q.descriptors) < 4 or len(signature.descriptors) < 4:
        return None
    qi, ti = cross_matches(q.descriptors, signature.descriptors)
    if len(qi) < 4:
        return None
    src = q.keypoints[qi].astype(np.float32)
    dst = signature.keypoints[ti].astype(np.float32)
    model, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0
    )
    if model is None or inliers is None:
        return None
    if not MIN_SCALE <= float(np.hypot(model[0, 0], model[1, 0])) <= MAX_SCALE:
        # A collapsed fit: the matched points all land in one small patch of the photo (a
        # central blob, a star), so many agree within the tolerance by accident.
        return None
    return _Fit(src, dst, inliers.ravel() == 1)


def verify(query: QueryFeatures | np.ndarray, signature: ProtectedSignature) -> VerifyResult:
    """Geometric check: do the query's keypoints map onto the photo's by one similarity?"""
    q = query if isinstance(query, QueryFeatures) else query_features(query)
    fit = _fit(q, signature)
    if fit is None:
        return VerifyResult(0.0, False)
    agreeing = fit.dst[fit.inliers]
    count = len(agreeing)
    spread = _spread(agreeing, signature.keypoints)
    # Agreement packed into a small patch (repeated texture, a logo) is discounted.
    score = float(count) * min(1.0, spread / MIN_SPREAD)
    aligned = None
    if PDQ_SUPPORT <= score < STRONG_INLIERS:  # only there can the aligned check change the rule
        aligned = aligned_distance(q.check, signature, fit.src, fit.dst)
    return VerifyResult(score, decide(256, score, aligned), aligned)


def inlier_points(q: QueryFeatures, signature: ProtectedSignature) -> np.ndarray:
    """The query keypoints (work image) that agree with the photo's under `verify`'s fit: where
    in the query the photo lies. Empty without a fit."""
    fit = _fit(q, signature)
    return np.zeros((0, 2), np.float32) if fit is None else fit.src[fit.inliers]


def cross_matches(query: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-checked nearest descriptors within DESCRIPTOR_MATCH: (query rows, train rows) of
    the pairs that are each other's nearest (Hamming) among the other side's descriptors.

    The same pairs as OpenCV's `BFMatcher(NORM_HAMMING, crossCheck=True)`, from one pass of the
    compiled kernel over the distance matrix (`childguard.robust._votes.cross`; 2.5 times
    faster than two exact faiss searches at 1000 x 300 descriptors).
    """
    q = np.ascontiguousarray(query, dtype=np.uint8)
    t = np.ascontiguousarray(train, dtype=np.uint8)
    if not len(q) or not len(t):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _votes.cross(q, t, DESCRIPTOR_MATCH)


def _spread(points: np.ndarray, reference: np.ndarray) -> float:
    """Area of the points' convex hull over the area spanned by all the photo's keypoints."""
    if len(points) < 3 or len(reference) < 3:
        return 0.0
    ref = reference.astype(np.float32)
    ref_area = float(np.ptp(ref[:, 0])) * float(np.ptp(ref[:, 1]))
    hull = float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))
    return hull / max(ref_area, 1.0)


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
