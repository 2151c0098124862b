# Owns the layout of pictures made of several photos: grids of 2x2 to 4x4 cells with or without
# gutters, uneven collages, and the recursive XY-cut that splits a picture along its gutters.
"""Grids and collages: where the cells of a picture made of several photos lie.

Harvesting sites post photos shrunk into the cells of a grid, each square-cropped to fit. Two
kinds of layout are found:

- **gutters**: rows and columns of one uniform colour (the page colour, or the colour of
  full-length uniform lines) split the picture, recursively (XY-cut), so uneven layouts (one
  big cell and small ones) come apart too;
- **seams**: cells pasted edge to edge leave straight steps running the full height (width)
  of the picture at regular positions (1/2, 1/3, 1/4 of the side).

Where two dark skies meet there is no step to see. `partition_evidence` then asks whether
the lines of an equal n x n partition separate unrelated pictures: neighbouring pixel columns
of one photo are correlated, columns on either side of a seam are not.

`detect_grid` returns the cells as boxes in the input's pixel coordinates, or None for a
picture that is one photo. The XY-cut (`xy_cut`) is shared with the screenshot regions of
`childguard.robust.query`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Analysis work size (longest side); the boxes are returned in the input's coordinates.
ANALYSIS_SIDE = 512
# A row or column whose grey values vary less than this (standard deviation) is uniform.
UNIFORM_STD = 2.0
# A separator (gutter) line's mean grey lies within this of the page colour.
PAGE_TOL = 12.0
# Grids have 2 to MAX_SPLIT cells along each side.
MAX_SPLIT = 4
# A cell is at least this share of the picture's area (a 4x4 cell is 1/16 less the gutters)
# and at most MAX_ASPECT times longer than wide.
MIN_CELL_AREA = 0.025
MAX_ASPECT = 3.0
# A seam: the change across a column boundary stands out (SEAM_RATIO times the change a few
# pixels to either side, plus SEAM_STEP grey levels) in at least SEAM_SHARE of the rows, and in
# SEAM_PEAK times the share of the boundaries 5-8 columns away. Measured on grids of the
# benchmark's photos: 0.12-0.96 at the seams, 0.00-0.12 elsewhere.
SEAM_RATIO = 2.0
SEAM_STEP = 6.0
SEAM_SHARE = 0.1
SEAM_PEAK = 3.0
# The seams' mean share over the largest share elsewhere (see _dominant): grids of the
# benchmark's photos 0.3-10, most above 1; the photos that looked like grids without it 0.35-1.05.
SEAM_DOMINANCE = 0.9
# Gutter lines of a regular grid: uniform (grey standard deviation under GUTTER_STD, which
# allows some recompression noise) across the whole picture; its bands' lengths agree within
# REGULAR_TOL (a ratio).
GUTTER_STD = 3.0
REGULAR_TOL = 1.15
# Expected seam positions are searched within this many analysis pixels.
SEAM_SLACK = 2
# `partition_evidence`: a seam line is looked for within PARTITION_SLACK pixels of k/n of the
# side; the neighbouring column pairs it is compared with are 2-3 pixels to either side.
PARTITION_SLACK = 2


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    def scaled(self, f: float) -> Box:
        return Box(round(self.x0 * f), round(self.y0 * f), round(self.x1 * f), round(self.y1 * f))

    def clipped(self, w: int, h: int) -> Box:
        return Box(max(0, self.x0), max(0, self.y0), min(w, self.x1), min(h, self.y1))


@dataclass(frozen=True)
class Grid:
    """The cells of a grid or collage, in reading order (top to bottom, left to right)."""

    cells: list[Box]
    rows: int  # distinct cell rows (an uneven layout counts its small cells' rows)
    cols: int
    kind: str  # "gutters", "seams" or "uneven"


def _segments(flat_line: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Runs of non-flat positions separated by flat gaps of at least `min_gap`."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    gap = 0
    end = 0
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


def _uniform(grey: np.ndarray, axis: int, page: float) -> np.ndarray:
    """Per row (axis=1) or column (axis=0): is the line a gutter of the page colour?

    A gutter's grey values barely vary along the line and lie near the `page`
    colour: page background and gutters qualify; a row through a photo's sky does
    not, because the sky and the page beside it differ; nor does a column through
    a dark photo alone (after the rows split it off), being far from a light page.
    """
    if grey.shape[axis] == 0:
        return np.ones(grey.shape[1 - axis], bool)
    flat = grey.std(axis=axis) < UNIFORM_STD
    return np.asarray(flat & (np.abs(grey.mean(axis=axis) - page) <= PAGE_TOL))


def page_colour(grey: np.ndarray) -> float:
    """The page (background) grey: the median of the picture's outermost rows and columns."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border))


def xy_cut(grey: np.ndarray, page: float, *, depth: int = 5) -> list[Box]:
    """Recursive XY-cut of a grey image along gutters of the `page` colour: the leaf boxes.

    Rows (then columns) of one uniform colour near `page` split a box into parts, each
    cut again, `depth` levels at most. A leaf is trimmed of its own gutter bands.
    """
    leaves: list[Box] = []
    _xy_cut(grey, Box(0, 0, grey.shape[1], grey.shape[0]), depth, leaves, page)
    return leaves


def _xy_cut(grey: np.ndarray, box: Box, depth: int, leaves: list[Box], page: float) -> None:
    sub = grey[box.y0 : box.y1, box.x0 : box.x1]
    if depth == 0 or sub.size == 0:
        leaves.append(box)
        return
    rows = _segments(_uniform(sub, 1, page), 2)
    cols = _segments(_uniform(sub, 0, page), 2)
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
        _xy_cut(grey, part, depth - 1, leaves, page)


def analysis_grey(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture in grey (float32), reduced to ANALYSIS_SIDE, and the factor applied.

    Bilinear, not area, reduction: 10x cheaper at these sizes, and gutters and seams stay
    as straight and sharp.
    """
    h, w = pixels.shape[:2]
    f = min(1.0, ANALYSIS_SIDE / max(h, w))
    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    return grey.astype(np.float32), f


def _count(starts: list[int], tol: int) -> int:
    """How many distinct positions `starts` holds, positions within `tol` counting as one."""
    n, last = 0, None
    for s in sorted(starts):
        if last is None or s - last > tol:
            n += 1
            last = s
    return n


def _cell_like(box: Box, total: int, grey: np.ndarray) -> bool:
    if box.area < MIN_CELL_AREA * total or box.area > 0.9 * total:
        return False
    if max(box.width, box.height) > MAX_ASPECT * min(box.width, box.height):
        return False
    return float(grey[box.y0 : box.y1, box.x0 : box.x1].std()) >= UNIFORM_STD


def _line_colours(grey: np.ndarray) -> list[float]:
    """Gutter colours to try: the page colour, and that of the full-length uniform lines."""
    colours = [page_colour(grey)]
    flat_rows = grey.std(axis=1) < GUTTER_STD
    flat_cols = grey.std(axis=0) < GUTTER_STD
    lines = np.concatenate([grey.mean(axis=1)[flat_rows], grey.mean(axis=0)[flat_cols]])
    if len(lines):
        inner = float(np.median(lines))
        if abs(inner - colours[0]) > PAGE_TOL:
            colours.append(inner)
    return colours


def _regular_bands(grey: np.ndarray, axis: int, colour: float) -> list[tuple[int, int]] | None:
    """The bands between full-length gutter lines along one axis, when they are 1 to MAX_SPLIT
    bands of one length (within REGULAR_TOL) covering most of the side; else None."""
    lines = grey.std(axis=axis) < GUTTER_STD
    lines &= np.abs(grey.mean(axis=axis) - colour) <= PAGE_TOL
    bands = [(a, b) for a, b in _segments(lines, 2) if b - a >= 8]
    if not 1 <= len(bands) <= MAX_SPLIT:
        return None
    lengths = [b - a for a, b in bands]
    if max(lengths) > REGULAR_TOL * min(lengths) or sum(lengths) < 0.75 * len(lines):
        return None
    return bands


def _gutter_grid(grey: np.ndarray, *, strips: bool = False) -> list[Box] | None:
    """A regular grid split by full-length gutter lines of one colour: at least 2x2 cells, or
    with `strips` a single row or column of 2 or more."""
    total = grey.shape[0] * grey.shape[1]
    for colour in _line_colours(grey):
        rows = _regular_bands(grey, 1, colour)
        cols = _regular_bands(grey, 0, colour)
        if rows is None or cols is None or len(rows) * len(cols) < 2:
            continue
        if min(len(rows), len(cols)) < (1 if strips else 2):
            continue
        cells = [Box(x0, y0, x1, y1) for y0, y1 in rows for x0, x1 in cols]
        if all(_cell_like(b, total, grey) for b in cells):
            return cells
    return None


def _has_margin(grey: np.ndarray) -> bool:
    """The picture's four outermost lines are uniform and of one colour (a collage's margin:
    its gutters run on around it)."""
    edges = (grey[0], grey[-1], grey[:, 0], grey[:, -1])
    if any(float(e.std()) >= GUTTER_STD for e in edges):
        return False
    means = [float(e.mean()) for e in edges]
    return max(means) - min(means) <= PAGE_TOL


def _uneven_grid(grey: np.ndarray) -> list[Box] | None:
    """An uneven collage: the XY-cut's leaves (3 levels) when they are cells covering most of
    the picture."""
    total = grey.shape[0] * grey.shape[1]
    for colour in _line_colours(grey):
        leaves = xy_cut(grey, colour, depth=3)
        cells = [b for b in leaves if _cell_like(b, total, grey)]
        if len(cells) >= 3 and sum(b.area for b in cells) >= 0.6 * total:
            return cells
    return None


def seam_shares(grey: np.ndarray) -> np.ndarray:
    """For each column boundary b (between columns b-1 and b): the share of rows where the
    change across it (or across the columns beside it, for a step that resampling spread)
    stands out against the change a few columns to either side. 0 within 6 columns of an
    edge."""
    d = np.abs(np.diff(grey, axis=1))  # d[:, i]: change across columns i and i+1
    n = d.shape[1]
    out = np.zeros(n + 1)
    if n < 12:
        return out
    b = slice(6, n - 2)  # boundaries 6 .. n-3
    step = np.maximum(np.maximum(d[:, 4 : n - 4], d[:, 5 : n - 3]), d[:, 6 : n - 2])
    beside = np.maximum(
        np.maximum(d[:, 0 : n - 8], d[:, 1 : n - 7]), np.maximum(d[:, 7 : n - 1], d[:, 8:n])
    )
    out[b] = (step > SEAM_RATIO * beside + SEAM_STEP).mean(axis=0)
    return out


def _seam_at(shares: np.ndarray, at: int) -> int | None:
    """The best boundary within SEAM_SLACK of `at`, when it holds a seam: SEAM_SHARE, and
    SEAM_PEAK times the share of the boundaries 5-8 columns away."""
    lo, hi = max(0, at - SEAM_SLACK), min(len(shares), at + SEAM_SLACK + 1)
    if lo >= hi:
        return None
    best = lo + int(np.argmax(shares[lo:hi]))
    share = float(shares[best])
    if share < SEAM_SHARE:
        return None
    around = [best + o for o in (-8, -7, -6, -5, 5, 6, 7, 8) if 0 <= best + o < len(shares)]
    return best if share >= SEAM_PEAK * (float(shares[around].mean()) + 0.01) else None


def _regular_split(shares: np.ndarray) -> list[int]:
    """Column boundaries of the number n (2..MAX_SPLIT) of equal parts that seams cut the
    picture into: [0, seams..., width]; [0, width] for none.

    The largest n with a seam at every k/n of the width wins. Failing that (neighbouring
    cells alike along their common side: two night skies leave no seam), the n with the most
    of its seams found, at least one and no fewer than half (the larger n on a tie); its
    missing seams are taken at k/n.
    """
    w = len(shares) - 1
    best: tuple[float, int, list[int]] | None = None
    for n in range(MAX_SPLIT, 1, -1):
        expected = [round(k * w / n) for k in range(1, n)]
        found = [_seam_at(shares, at) for at in expected]
        if all(b is not None for b in found):
            return [0, *[int(b) for b in found if b is not None], w]
        hits = sum(b is not None for b in found)
        if hits and 2 * hits >= len(found):
            score = (hits / len(found), n)
            if best is None or score > best[:2]:
                seams = [at if b is None else b for at, b in zip(expected, found, strict=True)]
                best = (score[0], n, seams)
    return [0, *best[2], w] if best is not None else [0, w]


def _dominant(shares: np.ndarray, bounds: list[int]) -> bool:
    """The seams at `bounds` (inner ones) are the picture's strongest straight lines: their
    mean share is at least SEAM_DOMINANCE times the largest share elsewhere (beyond 4 columns
    of a seam and 8 of the edges). A photo's own straight edges (a drawn box, a window) are
    seldom all at k/n of the side and stronger than every other line."""
    away = np.ones(len(shares), bool)
    away[:8] = away[-8:] = False
    for b in bounds:
        away[max(0, b - 4) : b + 5] = False
    if not away.any():
        return True
    found = float(np.mean([shares[b] for b in bounds]))
    return found >= SEAM_DOMINANCE * float(shares[away].max())


def _seam_grid(grey: np.ndarray) -> list[Box] | None:
    """A regular grid of cells pasted edge to edge: seams on both axes (see _regular_split),
    dominant on both (see _dominant)."""
    col_shares = seam_shares(grey)
    xs = _regular_split(col_shares)
    if len(xs) < 3 or not _dominant(col_shares, xs[1:-1]):
        return None
    row_shares = seam_shares(grey.T)
    ys = _regular_split(row_shares)
    if len(ys) < 3 or not _dominant(row_shares, ys[1:-1]):
        return None
    return [
        Box(xs[c], ys[r], xs[c + 1], ys[r + 1])
        for r in range(len(ys) - 1)
        for c in range(len(xs) - 1)
    ]


def _line_scores(grey: np.ndarray, ats: list[int], n: int, *, rows: bool) -> np.ndarray:
    """For each boundary `at` in `ats` (between columns at-1 and at, or rows with `rows`): how
    much less the two pixel lines either side of it are correlated than lines 2-3 pixels away,
    (1 - across) / (1 - within + 0.02), the median over the n bands of an n x n grid, the best
    within PARTITION_SLACK; 0 for a boundary too near the edge. All lines, bands and positions
    at once."""
    side = grey.shape[0] if rows else grey.shape[1]
    out = np.zeros(len(ats))
    length = grey.shape[1] if rows else grey.shape[0]
    # The columns lo..hi-1 around each boundary: lo = at - PARTITION_SLACK - 5.
    width = 2 * PARTITION_SLACK + 9
    inside = [k for k, at in enumerate(ats) if 0 <= at - PARTITION_SLACK - 5 <= side - width]
    if not inside or length < n:
        return out
    plane = grey.T if rows else grey
    lows = [ats[k] - PARTITION_SLACK - 5 for k in inside]
    strips = np.stack([plane[:, lo : lo + width] for lo in lows]).astype(np.float64)
    starts = np.array([band * length // n for band in range(n)])
    counts = np.diff(np.append(starts, length))
    means = np.add.reduceat(strips, starts, axis=1) / counts[None, :, None]
    centred = strips - np.repeat(means, counts, axis=1)
    norms = np.sqrt(np.add.reduceat(centred * centred, starts, axis=1))
    dots = np.add.reduceat(centred[:, :, 1:] * centred[:, :, :-1], starts, axis=1)
    den = norms[:, :, 1:] * norms[:, :, :-1]
    # c[line, band, i]: columns lo+i and lo+i+1 of that band, nan where either is flat; the
    # boundary b (between columns b-1 and b) is i = b - lo - 1.
    c = np.full(dots.shape, np.nan)
    np.divide(dots, den, out=c, where=den > 0)
    i = np.arange(2 * PARTITION_SLACK + 1) + 4
    across = np.nan_to_num(c[:, :, i], nan=1.0)
    near = c[:, :, np.stack([i - 3, i - 2, i + 1, i + 2], axis=1)]  # (lines, bands, positions, 4)
    finite = np.isfinite(near)
    total = np.where(finite, near, 0.0).sum(axis=3)
    within = np.divide(total, finite.sum(axis=3), out=np.ones_like(total), where=finite.any(axis=3))
    ratios = (1.0 - across) / (1.0 - within + 0.02)
    out[inside] = np.median(ratios, axis=1).max(axis=1)
    return out


def partition_evidence(grey: np.ndarray, n: int) -> float:
    """The mean, over the inner lines of an equal n x n partition of `grey` (both axes), of how
    decorrelated the pixels either side of each line are against those beside it (see
    `_line_scores`): about 1 or less within one photo, 2 or more where unrelated pictures
    touch. Cells of a grid resized into place are smooth at the pixel scale; seams are not."""
    h, w = grey.shape[:2]
    scores = [
        _line_scores(grey, [round(k * side / n) for k in range(1, n)], n, rows=rows)
        for rows, side in ((False, w), (True, h))
    ]
    return float(np.concatenate(scores).mean())


def detect_grid(pixels: np.ndarray) -> Grid | None:
    """The cells of a grid or collage (see the module docstring); None for a single photo."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("detect_grid wants an HxWx3 RGB array")
    h, w = pixels.shape[:2]
    if min(h, w) < 32:
        return None
    grey, f = analysis_grey(pixels)
    kind, cells = "gutters", _gutter_grid(grey)
    if cells is None and _has_margin(grey):
        kind, cells = "uneven", _uneven_grid(grey)
    if cells is None:
        kind, cells = "seams", _seam_grid(grey)
    if cells is None:
        kind, cells = "gutters", _gutter_grid(grey, strips=True)
    if cells is None:
        return None
    tol = max(2, round(0.02 * max(grey.shape)))
    rows = _count([b.y0 for b in cells], tol)
    cols = _count([b.x0 for b in cells], tol)
    if rows > 2 * MAX_SPLIT or cols > 2 * MAX_SPLIT:
        return None
    ordered = sorted(cells, key=lambda b: (b.y0 // tol, b.x0))
    out = [b.scaled(1 / f).clipped(w, h) for b in ordered]
    return Grid(out, rows, cols, kind)


def grid_cells(pixels: np.ndarray) -> list[Box]:
    """The cells of a grid or collage in reading order; empty for a single photo."""
    grid = detect_grid(pixels)
    return [] if grid is None else grid.cells
