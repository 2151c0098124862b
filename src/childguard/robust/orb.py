# Owns ORB keypoint features of an image: the grey work image, detection at two FAST
# thresholds, strongest-first order, the per-cell top-up of query keypoints, and the mirrored
# query's descriptors at the same keypoints.
"""ORB keypoints and descriptors, as protected signatures and queries use them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

ORB_FEATURES = 300
WORK_SIDE = 512


def work_factor(h: int, w: int, max_side: int, min_side: int | None = None) -> float:
    """Scale of the work image: longest side at most `max_side`, at least `min_side`
    (_MIN_SIDE by default)."""
    least = _MIN_SIDE if min_side is None else min_side
    f = min(1.0, max_side / max(h, w))
    if max(h, w) * f < least:
        f = least / max(h, w)
    return f


def grey_of(pixels: np.ndarray) -> np.ndarray:
    """The grey copy of an RGB image; a grey (2-D) image as it is."""
    return pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)


def _work(pixels: np.ndarray, max_side: int, min_side: int | None = None) -> np.ndarray:
    """Grey image, longest side at most `max_side` and at least `min_side` (_MIN_SIDE by
    default; small ones upscaled). `pixels`: RGB, or grey already."""
    h, w = pixels.shape[:2]
    f = work_factor(h, w, max_side, min_side)
    grey = grey_of(pixels)
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
QUERY_SIDE = 768
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
# The light passes (a grid's cells, the focused cut, the equal partition's cells, a close PDQ
# hit's support): fewer features on a smaller work image. A copy verifies with far more inliers
# than the rule needs (mirrored copies 115-280 at the full settings). A screenshot's regions
# get the full query detection, without the top-up.
LIGHT_SIDE = 512
LIGHT_MIN_SIDE = 256  # a 4x4 cell of a 1080-px grid (270 px) is not upscaled
LIGHT_FEATURES = 500
_ORB_LIGHT = cv2.ORB.create(nfeatures=LIGHT_FEATURES, fastThreshold=_FAST)
_ORB_LIGHT_LOW = cv2.ORB.create(nfeatures=LIGHT_FEATURES, fastThreshold=_FAST_LOW)


@dataclass(frozen=True)
class OrbFeatures:
    """Detected features: `points` (n, 2) float32 in work-image pixels, `descriptors` (n, 32)
    uint8, strongest first, and what describing them again needs (`mirrored`): OpenCV's
    keypoints in the same order and the grey work image."""

    points: np.ndarray
    descriptors: np.ndarray
    keypoints: tuple[cv2.KeyPoint, ...]
    work: np.ndarray
    low: bool = False  # detected again at the low FAST threshold (then never topped up)


def orb_features(
    pixels: np.ndarray, *, query: bool = False, top_up: bool = True, light: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints (n, 2) float32 and descriptors (n, 32) uint8 (`detect`)."""
    found = detect(pixels, query=query, top_up=top_up, light=light)
    return found.points, found.descriptors


def detect(
    pixels: np.ndarray, *, query: bool = False, top_up: bool = True, light: bool = False
) -> OrbFeatures:
    """ORB features of the work-size grey image (`pixels`: RGB, or its grey copy, which gives
    the same features).

    Keypoint coordinates are in work-image pixels; RANSAC fits a similarity
    transform, so the two sides' scales need not agree. Images with fewer than
    _FEW_KEYPOINTS corners at the usual FAST threshold are detected again at the
    low one. Strongest first; a query's top-up keypoints (see `topped_up`) come last.
    The fallback queries (the regions of a screenshot, a grid's cells) go without the
    top-up: those passes already frame the photo. `light` (queries only, never with the
    top-up): LIGHT_FEATURES on a work image of LIGHT_MIN_SIDE to LIGHT_SIDE.
    """
    usual, low = (_ORB_QUERY, _ORB_QUERY_LOW) if query else (_ORB, _ORB_LOW)
    side, least = (QUERY_SIDE if query else WORK_SIDE), None
    if query and light:
        usual, low, side, least, top_up = (
            _ORB_LIGHT,
            _ORB_LIGHT_LOW,
            LIGHT_SIDE,
            LIGHT_MIN_SIDE,
            False,
        )
    grey = _work(pixels, side, least)
    kps, desc = usual.detectAndCompute(grey, None)
    few = len(kps) < _FEW_KEYPOINTS
    if few:
        kps, desc = low.detectAndCompute(grey, None)
    found = _strongest_first(kps, desc, grey, low=few)
    return topped_up(found) if query and top_up else found


def mirrored(found: OrbFeatures, limit: int = LIGHT_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """The features of the work image flipped left-right, at the `limit` strongest keypoints
    mirrored (x -> w - 1 - x, angle -> 180 - angle), in the same order: ORB describes each of
    them on the flipped image without detecting again. (points, descriptors); a keypoint ORB
    can no longer describe is left out."""
    if not found.keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    w = found.work.shape[1]
    flipped = [
        cv2.KeyPoint(
            w - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave, i
        )
        for i, k in enumerate(found.keypoints[:limit])
    ]
    kps, desc = _ORB_QUERY.compute(np.ascontiguousarray(found.work[:, ::-1]), flipped)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    order = np.argsort([k.class_id for k in kps], kind="stable")
    return np.asarray(cv2.KeyPoint.convert(kps), np.float32).reshape(-1, 2)[order], desc[order]


def _strongest_first(
    kps: Sequence[cv2.KeyPoint], desc: np.ndarray | None, work: np.ndarray, *, low: bool = False
) -> OrbFeatures:
    if desc is None or not kps:
        none = np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
        return OrbFeatures(*none, (), work, low)
    order = np.argsort([-k.response for k in kps], kind="stable")
    points = np.asarray(cv2.KeyPoint.convert(kps), np.float32).reshape(-1, 2)[order]
    return OrbFeatures(points, desc[order], tuple([kps[i] for i in order.tolist()]), work, low)


def _grid_cells(points: np.ndarray, w: int, h: int) -> np.ndarray:
    n = _TOPUP_CELLS
    gx = np.minimum((points[:, 0] * n / w).astype(np.int64), n - 1)
    gy = np.minimum((points[:, 1] * n / h).astype(np.int64), n - 1)
    return np.asarray(gy * n + gx)


def topped_up(found: OrbFeatures) -> OrbFeatures:
    """A query's features (`detect(..., top_up=False)`) plus low-threshold corners in the grid
    cells that hold fewer than their share; as they are when the usual detection found too
    few corners (the low one ran instead)."""
    if found.low:
        return found
    grey = found.work
    h, w = grey.shape[:2]
    quota = _QUERY_FEATURES // _TOPUP_CELLS**2
    have = np.bincount(_grid_cells(found.points, w, h), minlength=_TOPUP_CELLS**2)
    if (have >= quota).all():
        return found
    # The low-threshold corners, strongest first, described only once picked: ORB describes
    # them bit for bit as its detection would have, 2 ms a query less than describing all.
    kps = _ORB_TOPUP.detect(grey, None)
    if not kps:
        return found
    order = np.argsort([-k.response for k in kps], kind="stable")
    points = np.asarray(cv2.KeyPoint.convert(kps), np.float32).reshape(-1, 2)
    cells = _grid_cells(points[order], w, h)
    # In each thin cell, its strongest corners up to the share.
    by_cell = np.argsort(cells, kind="stable")
    rank = np.arange(len(cells)) - np.searchsorted(cells[by_cell], cells[by_cell])
    take = np.sort(by_cell[rank < (quota - have)[cells[by_cell]]])
    if not len(take):
        return found
    chosen = [kps[i] for i in order[take].tolist()]
    for i, k in enumerate(chosen):
        k.class_id = i
    described, desc = _ORB_TOPUP.compute(grey, chosen)
    if desc is None or not described:
        return found
    back = np.argsort([k.class_id for k in described], kind="stable")
    described = [described[i] for i in back.tolist()]
    return OrbFeatures(
        np.concatenate([found.points, np.asarray(cv2.KeyPoint.convert(described), np.float32)]),
        np.concatenate([found.descriptors, desc[back]]),
        found.keypoints + tuple(described),
        grey,
    )
