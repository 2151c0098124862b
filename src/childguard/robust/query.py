"""Query-side robustness: every PDQ hash worth searching for one query image.

Known-abuse banks hold only outside hash lists, so all the help has to come from
the query: the original hash, its dihedral variants (rotations by 90 degrees and
flips, free with pdqhash), the photo with borders/letterboxing/blurred padding
trimmed, and the photo-like regions found inside a screenshot or a collage.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from childguard.signals.pdq import (
    DIHEDRAL_NAMES,
    MIN_QUALITY,
    pdq_dihedral_from_pixels,
    pdq_from_pixels,
)

MODES = ("known-abuse", "protected")
# Regions smaller than this share of the (trimmed) image are not hashed.
MIN_REGION_AREA = 0.06
MAX_REGIONS = 6
# Queries are reduced to this longest side before hashing: every view keeps enough pixels for PDQ.
QUERY_SIDE = 640
# Work size for border and region analysis (the hashes use the full pixels).
_ANALYSIS_SIDE = 512
# Sobel |gx|+|gy| above this (on 0-255 grey) counts as fine detail.
_DETAIL = 24.0


@dataclass(frozen=True)
class QueryHash:
    """One hash to search for: `variant` says which view of the query produced it."""

    pdq: str
    quality: int
    variant: str


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    def scaled(self, f: float) -> Box:
        return Box(round(self.x0 * f), round(self.y0 * f), round(self.x1 * f), round(self.y1 * f))


def _grey_small(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = pixels.shape[:2]
    f = min(1.0, _ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(
        pixels, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
    )
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), f


def _detail_map(grey: np.ndarray) -> np.ndarray:
    """Local detail: gradient magnitude; flat borders and blurred padding score near zero."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.abs(gx) + np.abs(gy)


def content_box(pixels: np.ndarray) -> Box:
    """The box left after trimming flat or blurred bands at each edge (the whole image if none).

    A row or column belongs to a border when almost none of its pixels carry fine
    detail; solid borders, letterboxing and blurred padding all qualify.
    """
    h, w = pixels.shape[:2]
    grey, f = _grey_small(pixels)
    detailed = _detail_map(grey) > _DETAIL
    rows = detailed.mean(axis=1)
    cols = detailed.mean(axis=0)
    row_flat = rows < max(0.02, 0.1 * float(np.median(rows)))
    col_flat = cols < max(0.02, 0.1 * float(np.median(cols)))
    y0 = _run(row_flat)
    y1 = len(rows) - _run(row_flat[::-1])
    x0 = _run(col_flat)
    x1 = len(cols) - _run(col_flat[::-1])
    if y1 - y0 < 8 or x1 - x0 < 8:
        return Box(0, 0, w, h)
    box = Box(x0, y0, x1, y1).scaled(1 / f)
    return Box(max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1))


def framed_box(pixels: np.ndarray) -> Box:
    """The box inside a frame: the outermost straight edges running the full height or width.

    A pasted photo leaves a step all along its sides, whatever the frame holds
    (solid colour, a blurred copy, a pattern). Columns (rows) whose mean
    horizontal (vertical) gradient stands far above the typical one mark those
    sides; only the outer 30% on each side is searched.
    """
    h, w = pixels.shape[:2]
    grey, f = _grey_small(pixels)
    gx = np.abs(np.diff(grey, axis=1)).mean(axis=0)  # between column i and i+1
    gy = np.abs(np.diff(grey, axis=0)).mean(axis=1)
    x0, x1 = _step(gx)
    y0, y1 = _step(gy)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return Box(0, 0, w, h)
    box = Box(x0, y0, x1, y1).scaled(1 / f)
    return Box(max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1))


def _step(profile: np.ndarray) -> tuple[int, int]:
    """Start and end (exclusive) between the strongest steps in the two outer bands of a profile."""
    n = len(profile) + 1
    band = max(1, int(0.3 * n))
    level = max(float(np.median(profile)), 1e-3)
    start, end = 0, n
    lo = profile[:band]
    if len(lo) and float(lo.max()) > 4.0 * level:
        start = int(np.argmax(lo)) + 1
    hi = profile[-band:]
    if len(hi) and float(hi.max()) > 4.0 * level:
        end = len(profile) - band + int(np.argmax(hi)) + 1
    return start, end


def _run(flat: np.ndarray) -> int:
    """Length of the leading run of True values."""
    n = 0
    for value in flat:
        if not value:
            break
        n += 1
    return n


def _segments(flat_line: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Runs of non-flat positions separated by flat gaps of at least `min_gap`."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    gap = 0
    for i, is_flat in enumerate(flat_line):
        if not is_flat:
            if start is None:
                start = i
            gap = 0
            end = i + 1
        elif start is not None:
            gap += 1
            if gap >= min_gap:
                out.append((start, end))
                start = None
    if start is not None:
        out.append((start, end))
    return out


def _xy_cut(flat: np.ndarray, box: Box, depth: int, leaves: list[Box]) -> None:
    sub = flat[box.y0 : box.y1, box.x0 : box.x1]
    if depth == 0 or sub.size == 0:
        leaves.append(box)
        return
    rows = _segments(sub.mean(axis=1) > 0.97, 2)
    cols = _segments(sub.mean(axis=0) > 0.97, 2)
    if len(rows) <= 1 and len(cols) <= 1:
        r = rows[0] if rows else (0, sub.shape[0])
        c = cols[0] if cols else (0, sub.shape[1])
        leaves.append(Box(box.x0 + c[0], box.y0 + r[0], box.x0 + c[1], box.y0 + r[1]))
        return
    if len(rows) > 1:
        parts = [Box(box.x0, box.y0 + a, box.x1, box.y0 + b) for a, b in rows]
    else:
        parts = [Box(box.x0 + a, box.y0, box.x0 + b, box.y1) for a, b in cols]
    for part in parts:
        _xy_cut(flat, part, depth - 1, leaves)


def photo_regions(pixels: np.ndarray) -> list[Box]:
    """Photo-like rectangles inside a larger picture (screenshot, collage), largest first.

    Recursive XY-cut: rows and columns of uniform colour (page background,
    gutters) split the picture; leaves that are large and dense with detail
    (not blocks of text) are regions.
    """
    h, w = pixels.shape[:2]
    grey, f = _grey_small(pixels)
    local_var = cv2.blur(grey * grey, (3, 3)) - cv2.blur(grey, (3, 3)) ** 2
    flat = local_var < 2.0
    detailed = _detail_map(grey) > _DETAIL
    leaves: list[Box] = []
    _xy_cut(flat, Box(0, 0, grey.shape[1], grey.shape[0]), 4, leaves)
    total = grey.shape[0] * grey.shape[1]
    boxes: list[Box] = []
    for leaf in leaves:
        if leaf.area < MIN_REGION_AREA * total or leaf.area > 0.95 * total:
            continue
        if float(flat[leaf.y0 : leaf.y1, leaf.x0 : leaf.x1].mean()) > 0.5:
            continue  # mostly background: text lines, icons
        if float(detailed[leaf.y0 : leaf.y1, leaf.x0 : leaf.x1].mean()) < 0.05:
            continue
        box = leaf.scaled(1 / f)
        boxes.append(Box(max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1)))
    boxes.sort(key=lambda b: -b.area)
    return boxes[:MAX_REGIONS]


def deskew(pixels: np.ndarray) -> np.ndarray | None:
    """A tilted photo on a flat background, rotated upright and cropped to its own rectangle.

    The background is flood-filled from the four corners; the rest is the photo,
    whose minimum-area rectangle gives the tilt. None when there is no tilt of
    0.5-20 degrees to undo.
    """
    h, w = pixels.shape[:2]
    grey, f = _grey_small(pixels)
    g8 = grey.astype(np.uint8)
    gh, gw = g8.shape
    mask = np.zeros((gh + 2, gw + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    for seed in ((0, 0), (gw - 1, 0), (0, gh - 1), (gw - 1, gh - 1)):
        if mask[seed[1] + 1, seed[0] + 1] == 0:
            cv2.floodFill(g8, mask, seed, 0, 2, 2, flags)
    content = (mask[1:-1, 1:-1] == 0).astype(np.uint8)
    if content.mean() > 0.97 or content.mean() < 0.2:
        return None
    contours, _ = cv2.findContours(content, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    while angle > 45:
        angle -= 90
        rw, rh = rh, rw
    while angle <= -45:
        angle += 90
        rw, rh = rh, rw
    if not 0.5 <= abs(angle) <= 20 or rw * rh < 0.2 * gh * gw:
        return None
    rot = cv2.getRotationMatrix2D((cx / f, cy / f), angle, 1.0)
    upright = cv2.warpAffine(pixels, rot, (w, h), flags=cv2.INTER_LINEAR)
    half_w, half_h = rw / f / 2 * 0.995, rh / f / 2 * 0.995
    x0, y0 = max(0, round(cx / f - half_w)), max(0, round(cy / f - half_h))
    x1, y1 = min(w, round(cx / f + half_w)), min(h, round(cy / f + half_h))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return np.ascontiguousarray(upright[y0:y1, x0:x1])


def _bounded(pixels: np.ndarray) -> np.ndarray:
    """The query reduced to at most QUERY_SIDE on its longest side (PDQ works on 64x64 anyway)."""
    h, w = pixels.shape[:2]
    if max(h, w) <= QUERY_SIDE:
        return np.ascontiguousarray(pixels)
    f = QUERY_SIDE / max(h, w)
    return cv2.resize(
        pixels, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
    )


def _crop(pixels: np.ndarray, box: Box) -> np.ndarray:
    return np.ascontiguousarray(pixels[box.y0 : box.y1, box.x0 : box.x1])


def _changed(box: Box, w: int, h: int) -> bool:
    return box.x0 > 0.02 * w or box.y0 > 0.02 * h or box.x1 < 0.98 * w or box.y1 < 0.98 * h


def query_hashes(pixels: np.ndarray, *, mode: str = "known-abuse") -> list[QueryHash]:
    """All the PDQ hashes to search for one RGB query image; the original comes first.

    Variants: `original` and, when its quality is at least MIN_QUALITY, the 7 other
    dihedral views (`rot90`, ... as in DIHEDRAL_NAMES); `trimmed` (flat or blurred
    bands removed at the edges);
    `framed` (inside the straight steps a pasted photo leaves); `deskewed` (a
    tilted photo on a flat background turned upright); `region<i>` (photo-like
    rectangles in a screenshot or collage, by XY-cut); `quad<i>` (the 2x2 grid
    cells, for collages without gutters). Derived hashes with quality under
    MIN_QUALITY or equal to an earlier one are dropped. Both modes return the
    same list today; `protected` callers treat `quad` hits as candidates to
    verify, never as matches on their own.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("query_hashes wants an HxWx3 uint8 RGB array")
    if min(pixels.shape[:2]) < 2:
        raise ValueError("query image is too small to hash")
    pixels = _bounded(pixels)
    h, w = pixels.shape[:2]
    hashes, quality = pdq_dihedral_from_pixels(pixels)
    # Dihedral variants of a weak hash (quality under 50: dark, flat, symmetric images such
    # as deep-sky photos) matched other such images in the benchmark; only the original stays.
    keep = len(hashes) if quality >= MIN_QUALITY else 1
    out = [
        QueryHash(pdq, quality, name)
        for pdq, name in zip(hashes[:keep], DIHEDRAL_NAMES[:keep], strict=True)
    ]
    seen = set(hashes[:keep])

    def add(view: np.ndarray, variant: str) -> None:
        if min(view.shape[:2]) < 16:
            return
        pdq, q = pdq_from_pixels(np.ascontiguousarray(view))
        if q >= MIN_QUALITY and pdq not in seen:
            seen.add(pdq)
            out.append(QueryHash(pdq, q, variant))

    box = content_box(pixels)
    trimmed = _crop(pixels, box) if _changed(box, w, h) else pixels
    if trimmed is not pixels:
        add(trimmed, "trimmed")
    frame = framed_box(pixels)
    if _changed(frame, w, h) and frame != box:
        add(_crop(pixels, frame), "framed")
    upright = deskew(pixels)
    if upright is not None:
        add(upright, "deskewed")
    for i, region in enumerate(photo_regions(pixels)):
        add(_crop(pixels, region), f"region{i}")
    th, tw = trimmed.shape[:2]
    cells = [
        (slice(0, th // 2), slice(0, tw // 2)),
        (slice(0, th // 2), slice(tw // 2, tw)),
        (slice(th // 2, th), slice(0, tw // 2)),
        (slice(th // 2, th), slice(tw // 2, tw)),
    ]
    for i, (ys, xs) in enumerate(cells):
        add(trimmed[ys, xs], f"quad{i}")
    return out
