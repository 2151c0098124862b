"""Query-side robustness: every PDQ hash worth searching for one query image.

Known-abuse banks hold only outside hash lists, so all the help has to come from
the query: the original hash, its dihedral variants (rotations by 90 degrees and
flips, free with pdqhash), the photo with borders/letterboxing/blurred padding
trimmed, the photo with solid padding removed exactly, and the photo-like regions
found inside a screenshot or a collage.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from childguard.robust.grid import Box, grid_cells, page_colour, xy_cut
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    MIN_QUALITY,
    pdq_dihedral_exact,
    pdq_from_pixels,
)

MODES = ("known-abuse", "protected")
# A derived view (any variant but `original`) is a guess at the photo: it counts within this
# PDQ distance at most, whatever looser threshold a bank or an operating point allows the
# original hash, and most kinds within less (`signals.pdq.view_cap`). Measured
# (docs/matching.md): uncapped, the views' near misses of distractors decided the strict
# operating point, and crop10/crop20 were found less often than by plain PDQ.
VIEW_THRESHOLD = DEFAULT_THRESHOLD
# Views that only take padding or borders off (`trimmed`, `unpadded`, `centred<i>`) are kept
# down to this PDQ quality, not MIN_QUALITY: they are the photo itself, so a photo whose own
# hash is weak (deep-sky images at 20-49) gives a weak view, as a plain PDQ query of the photo
# would. With MIN_QUALITY, every padded copy of such a photo was missed (held-out deep-sky
# photos: blurred 10% padding 89.8% -> 94.5%). Like every view of a weak query, they count
# within `signals.pdq.WEAK_VIEW_THRESHOLD` only: look-alike weak hashes, which PDQ cannot tell
# apart (two elongated galaxies, one turned 90 degrees, at 6 bits), matched within 31.
PAD_VIEW_QUALITY = 20
# Regions smaller than this share of the (trimmed) image are not hashed.
MIN_REGION_AREA = 0.06
MAX_REGIONS = 6
# Cells of a grid or collage (`childguard.robust.grid`) hashed, at most: a 4x4 grid's.
MAX_CELLS = 16
# Queries are reduced to this longest side before hashing: every view keeps enough pixels for PDQ.
QUERY_SIDE = 640
# Work size for border and region analysis (the hashes use the full pixels).
_ANALYSIS_SIDE = 512
# Sobel |gx|+|gy| above this (on 0-255 grey) counts as fine detail.
_DETAIL = 24.0
# A pasted photo's side: a grey step above this, at least 1.5x the change just outside it ...
_STEP = 3.0
_STEP_RATIO = 1.5
# ... where the mean change just outside stays under this (smooth surround) ...
_CALM = 2.0
# ... along at least this share of the image's height (width).
_EDGE_SHARE = 0.3
# ... or where the mean change jumps this many times over the one just outside;
_SPIKE = 6.0
_CLIP = 8.0
# the side opposite an accepted one, at the mirrored position, needs this much of either.
_PAIRED = 0.3
# A side with no partner at the mirrored position counts only from this strength.
_LONE = 1.5
# Solid padding: a line whose pixels (this share of them) all lie within this many levels
# (each channel) of the corner colour. Padding is one exact colour; a dark sky is not.
_SOLID_TOL = 3
_SOLID_SHARE = 0.995
# A pixel is sharp (a star, noise, a pasted photo's first line) when its 3x3 Laplacian
# exceeds this; blurred and solid pads have none.
_SHARP = 8.0
# Centred un-padding guesses trim at most this share of each side.
_MAX_GUESS = 0.25
# Guesses at a centred crop undone (see `uncropped`): the share of the side added on each side.
# Measured (docs/matching.md): 5% centre crops 63-67% -> 93-100%, 10% 7-20% -> 77-90%, 20% 0-3%
# -> 20-40%, with no false match more in the sample; replicated borders did no better.
UNCROP_SHARES = (0.013, 0.027, 0.056)
# Caption bars (see caption_boxes): colour tolerances tried, the share of a bar's first line
# and of each of its lines in the bar's colour, its height (share of the picture's), and what
# the photo keeps at least.
_BAR_TOLS = (3, 24)
_BAR_START = 0.95
_BAR_SHARE = 0.5
_BAR_MIN = 0.03
_BAR_MAX = 0.35
_BAR_REST = 0.4
# Text in a caption bar (see _text_bars): a pixel this far (largest channel difference) from the
# bar's colour is ink; a line with more than this share of ink is not blank; a line of text is
# at most this share of the picture's height and crosses at least this many pieces of ink.
_INK = 48
_INK_LINE = 0.002
_TEXT_LINE = 0.12
_TEXT_RUNS = 6
# The margins above and below a bar's text agree within this share of the first (the letters'
# own shapes, rounding), so the photo may begin that much earlier.
_TEXT_SLACK = 0.25
# Capitals sit low in the line a generator centres: the blank above them is larger than the
# blank below by about this share of their height.
_CAPS_LOW = 0.12


@dataclass(frozen=True)
class QueryHash:
    """One hash to search for: `variant` says which view of the query produced it."""

    pdq: str
    quality: int
    variant: str


def _grey_small(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = pixels.shape[:2]
    f = min(1.0, _ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(
        pixels, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
    )
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), f


@dataclass
class _Small:
    """The query reduced for border and region analysis (`_grey_small`), made once and shared by
    every view that looks at it; its detail mask is made when first asked for."""

    grey: np.ndarray
    f: float
    _detailed: np.ndarray | None = None

    @classmethod
    def of(cls, pixels: np.ndarray) -> _Small:
        return cls(*_grey_small(pixels))

    @property
    def detailed(self) -> np.ndarray:
        if self._detailed is None:
            self._detailed = _detail_map(self.grey) > _DETAIL
        return self._detailed


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
    return _content_box(pixels, _Small.of(pixels))


def _content_box(pixels: np.ndarray, small: _Small) -> Box:
    h, w = pixels.shape[:2]
    f, detailed = small.f, small.detailed
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


def padding_box(pixels: np.ndarray) -> Box:
    """The box left after removing solid padding: bands of the corner colour at each edge.

    Works at full resolution and needs one exact colour (within _SOLID_TOL, for JPEG), so
    it stops at the photo's first row even when the photo is as dark as a black pad,
    where the detail-based `content_box` cuts deep into a dark sky. The whole image when
    the corners do not share one colour.
    """
    h, w = pixels.shape[:2]
    return _inside_padding(_solid_bands(pixels), w, h)


def _inside_padding(bands: tuple[int, int, int, int] | None, w: int, h: int) -> Box:
    if bands is None:
        return Box(0, 0, w, h)
    left, right, top, bottom = bands
    box = Box(left, top, w - right, h - bottom)
    if box.y1 - box.y0 < 16 or box.x1 - box.x0 < 16:
        return Box(0, 0, w, h)
    return box


def _solid_bands(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """Widths (left, right, top, bottom) of the bands of the corner colour; None without one."""
    corners = np.stack([pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]])
    colour = np.median(corners.astype(np.int16), axis=0)
    if np.abs(corners - colour).max() > _SOLID_TOL:
        return None
    lo, hi = np.ceil(colour - _SOLID_TOL), np.floor(colour + _SOLID_TOL)
    near = cv2.inRange(np.ascontiguousarray(pixels), lo, hi) > 0
    solid_rows = near.mean(axis=1) >= _SOLID_SHARE
    solid_cols = near.mean(axis=0) >= _SOLID_SHARE
    return (
        _run(solid_cols),
        _run(solid_cols[::-1]),
        _run(solid_rows),
        _run(solid_rows[::-1]),
    )


def _channel_distance(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel difference from `colour` (rounded to whole levels)."""
    level = np.broadcast_to(np.rint(colour).astype(np.uint8), pixels.shape)
    diff = cv2.absdiff(np.ascontiguousarray(pixels), np.ascontiguousarray(level))
    return np.asarray(cv2.max(cv2.max(diff[..., 0], diff[..., 1]), diff[..., 2]))


def _sharp_bands(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Widths (left, right, top, bottom) of the edge bands holding no sharp pixel at all.

    Sharp: |3x3 Laplacian| of the grey image above _SHARP. A solid pad and a blurred
    pad hold none, while stars, noise and the step where a pasted photo begins do; the
    step also marks the pad's last line, hence the +1. Unlike `content_box` a single
    sharp pixel ends a band, so the sparse stars of a deep-sky photo count.
    """
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sharp = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)) > _SHARP
    cols = np.asarray(~sharp.any(axis=0))
    rows = np.asarray(~sharp.any(axis=1))
    left, right, top, bottom = (_run(cols), _run(cols[::-1]), _run(rows), _run(rows[::-1]))
    return (left and left + 1, right and right + 1, top and top + 1, bottom and bottom + 1)


def centred_guesses(pixels: np.ndarray) -> list[Box]:
    """Where a photo padded in its own edge colour may sit, assuming it was centred.

    A deep-sky photo's own edges are as black as a black pad, and a blurred pad of a
    dark photo is dark too: the pad's bands (solid colour, or no sharp pixel) run on
    into the photo, by different amounts on each side. A centred pad is the same on
    every side (in pixels or in share of the side), so it is at most the narrowest
    band; it is exactly that when the photo reaches its frame on that side. Guesses,
    for both kinds of band: trim every side by the narrowest band, in pixels and in
    share of the side, and by the second narrowest share (the narrowest may be a
    bright object's blur reaching into the pad). Trims beyond _MAX_GUESS of a side are
    left out; so are guesses that trim nothing.
    """
    return _centred(pixels, _solid_bands(pixels))


def _centred(pixels: np.ndarray, solid: tuple[int, int, int, int] | None) -> list[Box]:
    """`centred_guesses`, given the solid bands already measured (`_solid_bands`)."""
    h, w = pixels.shape[:2]
    out: list[Box] = []
    for bands in (solid, _sharp_bands(pixels)):
        if bands is None:
            continue
        left, right, top, bottom = bands
        shares = sorted((left / w, right / w, top / h, bottom / h))
        px = min(bands)
        for share_x, share_y in ((px / w, px / h), (shares[0], shares[0]), (shares[1], shares[1])):
            if share_x > _MAX_GUESS or share_y > _MAX_GUESS:
                continue
            dx, dy = round(share_x * w), round(share_y * h)
            box = Box(dx, dy, w - dx, h - dy)
            if (dx or dy) and box not in out:
                out.append(box)
    return out


def framed_box(pixels: np.ndarray) -> Box:
    """The box inside a frame: the straight edges a pasted photo leaves along its sides.

    A photo pasted on a smoother surround (a solid colour, a blurred copy of
    itself, a page) leaves, along each side, a line of pixels that step sharply
    while the pixels just outside barely change. For every column (row) in the
    outer 35% on each side, the share of rows (columns) showing such a step is
    measured; the strongest line on each side, if shared by enough of the image,
    is that side.
    """
    return _framed_box(pixels, _Small.of(pixels))


def _framed_box(pixels: np.ndarray, small: _Small) -> Box:
    h, w = pixels.shape[:2]
    grey, f = small.grey, small.f
    x0, x1 = _edges(grey)
    y0, y1 = _edges(grey.T)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return Box(0, 0, w, h)
    box = Box(x0, y0, x1, y1).scaled(1 / f)
    return Box(max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1))


def _edges(grey: np.ndarray) -> tuple[int, int]:
    """Left and right (exclusive) columns of a pasted rectangle's sides; (0, width) if none.

    Sides need strength 1 (see _side_strength). Pasted photos are usually centred:
    a pair of sides at mirrored positions (within 3 px) wins; otherwise the
    outermost side on each edge. When only one edge has a side, the other is looked
    for at the mirrored position with the lower bar _PAIRED (blurred padding fades
    into photos with smooth edges), and assumed there if the surround is calm and
    the side found is strong (_LONE).
    """
    n = grey.shape[1]
    left = _side_strength(grey)
    right = _side_strength(grey[:, ::-1])
    if not len(left):
        return 0, n
    ls = np.flatnonzero(left >= 1.0)
    rs = np.flatnonzero(right >= 1.0)
    if len(ls) and len(rs):
        gap = np.abs(ls[:, None] - rs[None, :])
        i, j = np.unravel_index(int(np.argmin(gap)), gap.shape)
        if gap[i, j] <= 3:
            return int(ls[i]), n - int(rs[j])
        return int(ls[0]), n - int(rs[0])
    if len(ls):
        lc = int(ls[0])
        rc = _paired(right, lc, lone=left[lc] >= _LONE)
        return (lc, n - rc) if rc else (0, n)
    if len(rs):
        rc = int(rs[0])
        lc = _paired(left, rc, lone=right[rc] >= _LONE)
        return (lc, n - rc) if lc else (0, n)
    return 0, n


def _paired(strength: np.ndarray, at: int, *, lone: bool) -> int:
    """The side opposite one found at `at` (0: none).

    The best candidate within 3 px of the mirrored position, at strength _PAIRED;
    failing that, when the found side is strong enough to stand alone (`lone`) and
    the mirrored position's surround is calm, the mirrored position itself.
    """
    lo, hi = max(0, at - 3), min(len(strength), at + 4)
    if lo >= hi:
        return 0
    best = lo + int(np.argmax(strength[lo:hi]))
    if strength[best] >= _PAIRED:
        return best
    return at if lone and at < len(strength) and strength[at] >= 0.0 else 0


def _side_strength(grey: np.ndarray) -> np.ndarray:
    """For each column c near the left edge (index = c): how strongly a pasted side sits there.

    A side at column c: the step between columns c-1 and c (or c-2 and c-1, for a
    step spread by resampling) stands out against the change 2-3 columns further
    out, in many rows (share of rows, 1 at _EDGE_SHARE) or on average (ratio of mean
    changes, 1 at _SPIKE); and the surround (columns c-8 .. c-4) is smooth on average.
    Columns under 8 and beyond the outer 35% score 0.
    """
    n = grey.shape[1]
    band = int(0.35 * n)
    if band <= 8:
        return np.zeros(0)
    d = np.abs(np.diff(grey[:, : band + 1], axis=1))  # d[:, i]: change between columns i, i+1

    def at(a: np.ndarray, k: int) -> np.ndarray:  # a[..., c - k] for every column c in 8..band-1
        return a[..., 8 - k : band - k]

    # Clipped, so that one short strong edge (an object's side) cannot make a spike alone.
    m = np.minimum(d, _CLIP).mean(axis=0)
    cum = np.concatenate([[0.0], np.cumsum(m)])
    calm = (at(cum, 3) - at(cum, 8)) / 5  # mean change over columns c-8 .. c-4
    strength = np.full(band, -1.0)
    # Only where the surround is smooth can a side sit; elsewhere the strength stays -1.
    cols = np.flatnonzero(calm <= _CALM)
    if not len(cols):
        return strength
    step = np.maximum(at(d, 1)[:, cols], at(d, 2)[:, cols])
    outside = np.maximum(at(d, 3)[:, cols], at(d, 4)[:, cols])
    share = (step > _STEP_RATIO * outside + _STEP).mean(axis=0)
    near = np.maximum(at(m, 1), at(m, 2))[cols]
    spike = near / (np.maximum(at(m, 3), at(m, 4))[cols] + 0.1)
    spike[near < 1.0] = 0.0
    strength[8 + cols] = np.maximum(share / _EDGE_SHARE, spike / _SPIKE)
    return strength


def _run(flat: np.ndarray) -> int:
    """Length of the leading run of True values."""
    n = 0
    for value in flat:
        if not value:
            break
        n += 1
    return n


def photo_regions(pixels: np.ndarray) -> list[Box]:
    """Photo-like rectangles inside a larger picture (screenshot, collage), largest first.

    Recursive XY-cut: rows and columns of one uniform colour close to the page
    colour (page background, gutters) split the picture; leaves that are large,
    not too elongated (text lines are) and carry some detail are regions.
    """
    return _photo_regions(pixels, _Small.of(pixels))


def _photo_regions(pixels: np.ndarray, small: _Small) -> list[Box]:
    h, w = pixels.shape[:2]
    grey, f, detailed = small.grey, small.f, small.detailed
    leaves = xy_cut(grey, page_colour(grey), depth=5)
    total = grey.shape[0] * grey.shape[1]
    boxes: list[Box] = []
    for leaf in leaves:
        if leaf.area < MIN_REGION_AREA * total or leaf.area > 0.95 * total:
            continue
        lw, lh = leaf.x1 - leaf.x0, leaf.y1 - leaf.y0
        if max(lw, lh) > 4 * min(lw, lh):
            continue  # a strip: text lines, a banner
        if float(detailed[leaf.y0 : leaf.y1, leaf.x0 : leaf.x1].mean()) < 0.02:
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
    return _deskew(pixels, _Small.of(pixels))


def _deskew(pixels: np.ndarray, small: _Small) -> np.ndarray | None:
    h, w = pixels.shape[:2]
    grey, f = small.grey, small.f
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


def uncropped(pixels: np.ndarray, share: float) -> np.ndarray:
    """The query grown by `share` of its width (height) on each side, the new border a mirror
    of the query's own edge: a guess at the photo a centred crop was cut from (a crop of 5% of
    the area takes 1.3% off each side, 10% 2.7%, 20% 5.6%). PDQ sees the low frequencies,
    which a thin mirrored border restores closely enough."""
    h, w = pixels.shape[:2]
    dx, dy = max(1, round(share * w)), max(1, round(share * h))
    return cv2.copyMakeBorder(pixels, dy, dy, dx, dx, cv2.BORDER_REFLECT)


def caption_boxes(pixels: np.ndarray) -> list[Box]:
    """Where the photo sits between caption bars (meme text above and below): one box per
    colour tolerance that finds bars (exact colour first, then JPEG-loose), then one from the
    text in the bars; empty if none.

    A bar starts at the top (bottom) edge with a line of one colour (the two corners', at least
    _BAR_START of the line). By colour, it runs on while at least _BAR_SHARE of each line keeps
    that colour: lines of text in the bar keep most of it, the photo's first line does not.
    By its text (`_text_bars`), it ends as far below its last line of text as its first line
    of text is below the edge: a meme generator centres the text in the bar, and this is the
    only way to find a bar's end when the photo's own edge is the bar's colour (a black bar on
    a black sky, a white bar on a white studio backdrop) or when large letters cover more
    than half of a line. A bar is _BAR_MIN to _BAR_MAX of the height; a side without one
    stays; the photo keeps at least _BAR_REST of the height.
    """
    h, w = pixels.shape[:2]
    band = max(1, int(_BAR_MAX * h) + 1)
    dists = [_edge_distance(pixels[:band]), _edge_distance(pixels[::-1][:band])]
    shares = [
        None if d is None else {tol: (d <= tol).mean(axis=1) for tol in _BAR_TOLS} for d in dists
    ]
    out: list[Box] = []

    def keep(top: int, bottom: int) -> None:
        box = Box(0, top, w, h - bottom)
        if (top or bottom) and box.y1 - box.y0 >= _BAR_REST * h and box not in out:
            out.append(box)

    for tol in _BAR_TOLS:
        keep(*(_bar(side, tol, h) for side in shares))
    loosest = max(_BAR_TOLS)
    texts = [_text_bars(d, h, top=i == 0) if d is not None else [] for i, d in enumerate(dists)]
    for k in range(max(len(t) for t in texts)):
        keep(
            *(
                t[min(k, len(t) - 1)] if t else _bar(side, loosest, h)
                for t, side in zip(texts, shares, strict=True)
            )
        )
    return out


def _edge_distance(band: np.ndarray) -> np.ndarray | None:
    """Per pixel of an edge band (its first line at the edge): the largest channel difference
    from the corners' colour; None when the corners differ or the edge line is not one colour."""
    first = band[0].astype(np.int16)
    left, right = first[0], first[-1]
    loosest = max(_BAR_TOLS)
    if np.abs(left - right).max() > 2 * loosest:
        return None
    colour = np.rint((left + right) / 2)
    if (np.abs(first - colour).max(axis=1) <= loosest).mean() < _BAR_START:
        return None
    return _channel_distance(band, colour)


def _bar(shares: dict[int, np.ndarray] | None, tol: int, h: int) -> int:
    """Height of the caption bar at one edge by its colour (0: none), see `caption_boxes`."""
    if shares is None:
        return 0
    share = shares[tol]
    if share[0] < _BAR_START:
        return 0
    below = np.flatnonzero(share < _BAR_SHARE)
    n = int(below[0]) if below.size else h  # no end within the band: longer than a bar
    return n if _BAR_MIN * h <= n <= _BAR_MAX * h else 0


def _text_bars(dist: np.ndarray, h: int, *, top: bool) -> list[int]:
    """Guesses at the height of the caption bar at one edge by its text (none: []), see
    `caption_boxes`.

    Ink: pixels over _INK from the bar's colour. Below a blank margin (lines with at most
    _INK_LINE of ink) come lines of text: runs of inked lines, each at most _TEXT_LINE of the
    height and crossing at least _TEXT_RUNS separate pieces of ink along one line (letters;
    a few stars do not), each after a gap narrower than the margin. The bar ends that margin
    below the last line of text (the text centred), or _CAPS_LOW of the letters' height less
    (more, for a bottom bar measured from the bottom): capitals sit on the baseline, low in
    the line a generator centres. It must be blank down to there, but for _TEXT_SLACK of the
    margin.
    """
    ink = dist > _INK
    inked = ink.mean(axis=1) > _INK_LINE
    edges = np.flatnonzero(np.diff(inked.astype(np.int8)))
    # Runs of inked lines, [start, stop); one the band's end cuts short is no line of text.
    bounds = np.concatenate([[0], edges + 1, [len(inked)]])
    runs = [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if inked[a]]
    if not runs or runs[0][0] == 0:
        return []
    margin = runs[0][0]
    slack = round(_TEXT_SLACK * margin)
    # The blank beyond the text, as capitals sitting low in a centred line leave it.
    low = round(_CAPS_LOW * (runs[0][1] - runs[0][0]))
    far = margin - low if top else margin + low
    end = 0
    for start, stop in runs:
        if end and start - end >= margin:
            break  # the bar's far margin, and the photo beyond it
        if stop == len(inked) or stop - start > _TEXT_LINE * h or not _text_like(ink[start:stop]):
            if end and start - end >= far - slack:
                break  # the photo, where the bar may end
            return []  # the photo starts before the bar would end
        end = stop
    guesses = dict.fromkeys((end + margin, end + far))
    if any(end <= start < min(guesses) - slack for start, _ in runs):
        return []  # ink in the margin the bar would need
    return [g for g in guesses if _BAR_MIN * h <= g <= _BAR_MAX * h]


def _text_like(ink: np.ndarray) -> bool:
    """A line of text: along its busiest line, at least _TEXT_RUNS separate pieces of ink."""
    starts = np.count_nonzero(ink[:, 1:] & ~ink[:, :-1], axis=1) + ink[:, 0]
    return int(starts.max()) >= _TEXT_RUNS


def _changed(box: Box, w: int, h: int) -> bool:
    return box.x0 > 0.02 * w or box.y0 > 0.02 * h or box.x1 < 0.98 * w or box.y1 < 0.98 * h


def query_hashes(pixels: np.ndarray, *, mode: str = "known-abuse") -> list[QueryHash]:
    """All the PDQ hashes to search for one RGB query image; the original comes first.
    `query_views` gives them with the grid cells found on the way.

    Variants: `original` and the 7 other dihedral views (`rot90`, ... as in DIHEDRAL_NAMES,
    hashed from the turned image, see `pdq_dihedral_exact`);
    `trimmed` (flat or blurred bands removed at the edges); `unpadded` (solid padding of one
    exact colour removed, see `padding_box`); `centred<i>` (guesses at a centred pad that runs on
    into the photo's own dark edges, see `centred_guesses`); `uncropped<n>` (the query
    grown by n/1000 of its side on each side, a guess at a centred crop undone, see
    `uncropped`); `uncaptioned<i>` (caption
    bars above and below removed, see `caption_boxes`);
    `framed` (inside the straight steps a pasted photo leaves); `deskewed` (a
    tilted photo on a flat background turned upright); `region<i>` (photo-like
    rectangles in a screenshot or collage, by XY-cut); `cell<i>` (the cells of a grid or
    collage of up to 4x4, `childguard.robust.grid.grid_cells`); `quad<i>` (the 2x2 grid
    cells, for collages without gutters, and for 2x2 grids whose cells `grid_cells` finds a
    few pixels off: on deep-sky grids the quadrants matched where the cells did not). A query
    where a grid is found gets no `uncropped<n>` views: it is no crop of one photo. The border
    and region analyses share one reduced copy. Derived hashes with quality under
    MIN_QUALITY (PAD_VIEW_QUALITY for the views that only take padding or borders
    off) or equal to an earlier one are dropped. Each derived view matches within its own cap
    and ranks at its distance plus a margin (`signals.pdq.view_cap`, `view_rank`: any view of
    a weak query within 10 bits, rotations and flips 24, crops undone and solid padding
    removed 27, the others 31). Both modes return the
    same list today; `protected` callers treat `quad` hits as candidates to
    verify, never as matches on their own.
    """
    return query_views(pixels, mode=mode)[0]


def query_views(
    pixels: np.ndarray, *, mode: str = "known-abuse"
) -> tuple[list[QueryHash], list[Box]]:
    """`query_hashes`, and the cells of the grid or collage it found (see `query_regions`)."""
    hashes, cells, _ = query_regions(pixels, mode=mode)
    return hashes, cells


def query_regions(
    pixels: np.ndarray, *, mode: str = "known-abuse"
) -> tuple[list[QueryHash], list[Box], list[Box]]:
    """`query_hashes`, and the cells of the grid or collage it found (`grid_cells`, empty for a
    single photo) in `pixels`' own coordinates, so that a caller who also runs the protected
    search can pass them on (`query_features(pixels, hashes, cells=cells)`) instead of detecting
    the grid again. The cells are found on the query reduced to QUERY_SIDE and scaled back, so
    they may differ by a pixel or two from `grid_cells(pixels)` on a larger query. Third, the
    photo-like regions it hashed (`photo_regions`, largest first), found and scaled back
    likewise, for `query_features(pixels, hashes, cells=cells, boxes=regions)`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("query_hashes wants an HxWx3 uint8 RGB array")
    if min(pixels.shape[:2]) < 2:
        raise ValueError("query image is too small to hash")
    full_h, full_w = pixels.shape[:2]
    pixels = _bounded(pixels)
    h, w = pixels.shape[:2]
    # Every query gets its dihedral views; each counts within its cap (`signals.pdq.view_cap`).
    hashes, quality = pdq_dihedral_exact(pixels)
    out = [QueryHash(pdq, quality, name) for pdq, name in zip(hashes, DIHEDRAL_NAMES, strict=True)]
    seen = set(hashes)

    def add(view: np.ndarray, variant: str, floor: int = MIN_QUALITY) -> None:
        if min(view.shape[:2]) < 16:
            return
        pdq, q = pdq_from_pixels(np.ascontiguousarray(view))
        if q >= floor and pdq not in seen:
            seen.add(pdq)
            out.append(QueryHash(pdq, q, variant))

    small = _Small.of(pixels)
    box = _content_box(pixels, small)
    trimmed = _crop(pixels, box) if _changed(box, w, h) else pixels
    if trimmed is not pixels:
        add(trimmed, "trimmed", PAD_VIEW_QUALITY)
    solid = _solid_bands(pixels)
    unpadded = _inside_padding(solid, w, h)
    if unpadded != Box(0, 0, w, h) and unpadded != box:
        add(_crop(pixels, unpadded), "unpadded", PAD_VIEW_QUALITY)
    for i, guess in enumerate(_centred(pixels, solid)):
        if guess not in (box, unpadded):
            add(_crop(pixels, guess), f"centred{i}", PAD_VIEW_QUALITY)
    # A grid's cells, found first: a grid is no crop of one photo, so it gets no crop guesses.
    found = grid_cells(pixels)[:MAX_CELLS]
    for share in UNCROP_SHARES if not found else ():
        add(uncropped(pixels, share), f"uncropped{round(1000 * share)}")
    for i, bars in enumerate(caption_boxes(pixels)):
        if bars not in (box, unpadded):
            add(_crop(pixels, bars), f"uncaptioned{i}", PAD_VIEW_QUALITY)
    frame = _framed_box(pixels, small)
    if _changed(frame, w, h) and frame != box:
        add(_crop(pixels, frame), "framed")
    upright = _deskew(pixels, small)
    if upright is not None:
        add(upright, "deskewed")
    regions = _photo_regions(pixels, small)
    for i, region in enumerate(regions):
        add(_crop(pixels, region), f"region{i}")
    for i, cell in enumerate(found):
        add(_crop(pixels, Box(cell.x0, cell.y0, cell.x1, cell.y1)), f"cell{i}")
    th, tw = trimmed.shape[:2]
    cells = [
        (slice(0, th // 2), slice(0, tw // 2)),
        (slice(0, th // 2), slice(tw // 2, tw)),
        (slice(th // 2, th), slice(0, tw // 2)),
        (slice(th // 2, th), slice(tw // 2, tw)),
    ]
    for i, (ys, xs) in enumerate(cells):
        add(trimmed[ys, xs], f"quad{i}")
    if (h, w) != (full_h, full_w):
        found = [b.scaled(full_w / w).clipped(full_w, full_h) for b in found]
        regions = [b.scaled(full_w / w).clipped(full_w, full_h) for b in regions]
    return out, found, regions
