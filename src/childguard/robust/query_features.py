# Owns what a protected search knows about one query: its PDQ hashes, its ORB features (lazily),
# its mirror and photo-like regions, and the small grey copy for the aligned check.
"""The query side of protected matching: `query_features` computes the query's hashes (via
`query_hashes(mode="protected")`) once, and its ORB features when first needed."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from childguard.robust.grid import Box, detect_grid, partition_evidence
from childguard.robust.orb import (
    LIGHT_MIN_SIDE,
    LIGHT_SIDE,
    QUERY_SIDE,
    OrbFeatures,
    detect,
    grey_of,
    mirrored,
    topped_up,
    work_factor,
)
from childguard.robust.query import QueryHash, photo_regions, query_hashes
from childguard.signals.pdq import TILE_SIDE, pdq_of_tiles

# Screenshot/collage regions whose own ORB features are tried when the whole query found nothing.
MAX_REGION_QUERIES = 2
# A grid's cells (`childguard.robust.grid`) are its regions: all of them, up to 4x4.
MAX_CELL_QUERIES = 16
# The query's small grey copy for the aligned check (`childguard.robust.verify`).
CHECK_SIDE = 256
# A focused view (`QueryFeatures.focused`) is cut around a weak fit's inlier keypoints, with this
# margin on each side (a share of their box's side), when that box is at most FOCUS_MAX_AREA of
# the query: a photo pasted small into a grid without gutters, which grid detection cannot see.
FOCUS_MARGIN = 0.25
FOCUS_MAX_AREA = 0.5
# A square query (sides within PARTITION_ASPECT of each other) in which grid detection found no
# cells is cut into PARTITIONS equal cells a side when nothing else matched: a grid without
# gutters whose seams detection cannot see (star fields: two dark skies meet without a step).
# Every such query's cells are hashed with PDQ (`QueryFeatures.partition_hashes`, about 1.4 ms);
# every cell's ORB votes (`QueryFeatures.partition`, 35-55 ms a partition) only where the
# partition's lines separate unrelated pictures (`partition_evidence` at least
# PARTITION_EVIDENCE): on the full run's square queries that matched nothing, 64 of the 68 grids
# the partition found passed, and 53 of 775 single photos.
PARTITIONS = (3, 4)
PARTITION_ASPECT = 0.02
PARTITION_EVIDENCE = 2.2
# A query that travels without its pixels (`childguard.pipeline.compact_features`) keeps a grey
# copy for the focused cut, longest side at most FOCUS_SIDE: a 1080-px grid's cut is then made
# at 95% of its size, and the copy is at most 1 MB.
FOCUS_SIDE = 1024


@dataclass(frozen=True)
class CheckImage:
    """A query's small grey copy (longest side at most CHECK_SIDE) for the aligned check."""

    grey: np.ndarray  # (h, w) uint8
    scale: float  # query work-image coordinates times this are check-image coordinates


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
        focus: CheckImage | None = None,
        top_up: bool = True,
        light: bool = False,
        cells: list[Box] | None = None,
        boxes: list[Box] | None = None,
    ) -> None:
        """`mirror`, `regions` and `check` may be given precomputed (features of the flipped
        query and of its photo-like regions, the small grey copy for the aligned check) when
        the pixels do not travel with the query; `focus`: likewise the grey copy that the
        focused cut is made from (`focus_copy`). `top_up`, `light`: see `orb_features`.
        `cells`: the grid cells of `pixels` when the caller has detected them already
        (`detect_grid(pixels)`, [] for none), so that they are not detected again. `boxes`:
        likewise the photo-like regions of `pixels` (`photo_regions(pixels)`), when found
        already."""
        self._top_up = top_up
        self._light = light
        self.hashes = hashes
        self._pixels = pixels
        self._check = check
        self._focus = focus
        self._features = (
            None if keypoints is None or descriptors is None else (keypoints, descriptors)
        )
        self._mirror: QueryFeatures | None = mirror
        self._regions: list[QueryFeatures] | None = regions
        self._cells: list[Box] | None = None if cells is None else list(cells[:MAX_CELL_QUERIES])
        self._boxes: list[Box] | None = None if boxes is None else list(boxes)
        self._lighter: QueryFeatures | None = None
        self._grey: np.ndarray | None = None
        self._found: OrbFeatures | None = None
        self._untopped: QueryFeatures | None = None

    def _orb(self) -> tuple[np.ndarray, np.ndarray]:
        if self._features is None:
            if self._pixels is None:
                self._features = (np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
            else:
                found = self._detected()
                if self._tops_up():
                    found = topped_up(found)
                self._features = (found.points, found.descriptors)
        return self._features

    def _tops_up(self) -> bool:
        """Whether the features get the top-up: not for the light passes, nor for a grid, whose
        cells are verified on their own features first (on the benchmark's grids the top-up
        cost 40 ms where it ran and found no photo more: 120 grid queries, same recall)."""
        return self._top_up and not self._light and not self.is_grid()

    def _detected(self) -> OrbFeatures:
        """The detection without the top-up (which comes last in the features)."""
        if self._found is None:
            self._found = detect(self._grey_pixels(), query=True, top_up=False, light=self._light)
        return self._found

    def voters(self, n: int) -> np.ndarray:
        """The query's `n` strongest descriptors, the ones that vote. The top-up's (weaker, last)
        second detection runs only when the usual detection found fewer than `n`: a query
        whose candidates are never verified (nearly every photo that matches nothing) is spared
        it."""
        if self._features is None and self._pixels is not None:
            found = self._detected()
            if len(found.descriptors) >= n:
                return found.descriptors[:n]
        return self.descriptors[:n]

    def _grey_pixels(self) -> np.ndarray:
        """The query's grey copy at full size, shared by every pass: ORB, the check image, the
        mirror and the regions are all grey (the copy is exact: grey is per pixel)."""
        assert self._pixels is not None
        if self._grey is None:
            self._grey = grey_of(self._pixels)
        return self._grey

    def before_top_up(self) -> QueryFeatures:
        """The query with its usual detection's features only, while its top-up (a second,
        low-threshold detection) has not run: a first, cheaper look at a candidate. The query
        itself when the top-up ran already, does not apply, or its pixels are not at hand."""
        if self._features is not None or self._pixels is None or not self._tops_up():
            return self
        found = self._detected()
        if found.low:
            return self
        if self._untopped is None:
            self._untopped = QueryFeatures(
                self.hashes, keypoints=found.points, descriptors=found.descriptors, check=self.check
            )
        return self._untopped

    def lighter(self) -> QueryFeatures:
        """The query with the light passes' features (see `orb_features`), for a candidate
        whose match is already decided (only its support is measured): a third of the full
        detection's cost. The query itself when its pixels are not at hand, or when it is
        light already."""
        if self._pixels is None or self._light:
            return self
        if self._lighter is None:
            self._lighter = QueryFeatures(
                self.hashes, pixels=self._grey_pixels(), top_up=False, light=True
            )
        return self._lighter

    def mirrored(self) -> QueryFeatures | None:
        """The query flipped left-right, for ORB only (ORB descriptors are not mirror-invariant).

        With rotation handled by the similarity fit, this one mirror covers every
        flipped dihedral variant. Its keypoints are the query's own mirrored, described
        again on the flipped work image (`orb.mirrored`: no second detection), and its check
        image is the query's flipped. None when the query's pixels are not at hand.
        """
        if self._mirror is None and self._pixels is None:
            return None
        if self._mirror is None and self._pixels is not None:
            points, descriptors = mirrored(self._detected())
            check = self.check
            self._mirror = QueryFeatures(
                [],
                keypoints=points,
                descriptors=descriptors,
                check=None
                if check is None
                else CheckImage(np.ascontiguousarray(check.grey[:, ::-1]), check.scale),
            )
        return self._mirror

    def regions(self) -> list[QueryFeatures]:
        """The photo-like regions of a screenshot or collage, each its own query for ORB.

        In the whole picture, text and the other photos take most of the keypoints;
        in the region's crop, the photo gets them all. A grid's cells (`detect_grid`, at
        most MAX_CELL_QUERIES) in reading order, or else a screenshot's photo-like regions
        (`photo_regions`, at most MAX_REGION_QUERIES) largest first; boxes under 32 px on a
        side are left out; empty when the pixels are not at hand.
        """
        if self._regions is not None:
            return self._regions
        if self._pixels is None or self._pixels.ndim != 3:  # a pass's own grey query: none
            return []
        cells = self._grid_cells()
        if not cells and self._boxes is None:
            self._boxes = photo_regions(self._pixels)
        boxes = cells or (self._boxes or [])[:MAX_REGION_QUERIES]
        grey = self._grey_pixels()
        self._regions = [
            QueryFeatures(
                [],
                pixels=np.ascontiguousarray(grey[b.y0 : b.y1, b.x0 : b.x1]),
                top_up=False,
                light=bool(cells),
            )
            for b in boxes
            if min(b.x1 - b.x0, b.y1 - b.y0) >= 32
        ]
        return self._regions

    def focus_copy(self) -> CheckImage | None:
        """The grey copy the focused cut is made from, for a query that will travel without
        its pixels: the query's grey at most FOCUS_SIDE on its longest side, with the factor
        from work-image coordinates to its own. None without pixels or a copy given."""
        if self._pixels is None:
            return self._focus
        grey = self._grey_pixels()
        h, w = grey.shape[:2]
        shrink = min(1.0, FOCUS_SIDE / max(h, w))
        if shrink < 1.0:
            size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return CheckImage(np.ascontiguousarray(grey), shrink / self._work_factor(h, w))

    def _work_factor(self, h: int, w: int) -> float:
        """The factor from the query's pixels to its work image (light or full)."""
        if self._light:
            return work_factor(h, w, LIGHT_SIDE, LIGHT_MIN_SIDE)
        return work_factor(h, w, QUERY_SIDE)

    def focused(self, points: np.ndarray) -> QueryFeatures | None:
        """The query cut around `points` (work-image coordinates: the inliers of a fit too weak
        to match), as its own query for ORB. A photo shrunk into one cell of a grid whose cells
        touch (no gutter, no seam where two dark skies meet) gets a fraction of the whole
        picture's keypoints; in the cut it gets them all. The cut comes from the pixels, or
        from the focus copy of a query that travelled without them. None when the points
        already span most of the query, the cut is under 32 px on a side, or there is neither."""
        source = self._cut_source()
        if len(points) < 3 or source is None:
            return None
        grey, scale = source
        h, w = grey.shape[:2]
        (x0, y0), (x1, y1) = points.min(axis=0) * scale, points.max(axis=0) * scale
        half = (1 + 2 * FOCUS_MARGIN) * max(x1 - x0, y1 - y0) / 2  # a square, as grid cells are
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = Box(
            max(0, int(cx - half)),
            max(0, int(cy - half)),
            min(w, int(cx + half) + 1),
            min(h, int(cy + half) + 1),
        )
        if box.area > FOCUS_MAX_AREA * w * h or min(box.width, box.height) < 32:
            return None
        crop = np.ascontiguousarray(grey[box.y0 : box.y1, box.x0 : box.x1])
        return QueryFeatures([], pixels=crop, top_up=False, light=True)

    def _cut_source(self) -> tuple[np.ndarray, float] | None:
        """The grey image cuts are made from, and the factor from work-image coordinates to
        its own: the pixels' grey, or the focus copy of a query that travelled without them."""
        if self._pixels is not None:
            grey = self._grey_pixels()
            return grey, 1.0 / self._work_factor(*grey.shape[:2])
        if self._focus is not None:
            return self._focus.grey, self._focus.scale
        return None

    def partition(self, n: int, *, gated: bool = True) -> list[QueryFeatures]:
        """The query cut into n x n equal cells, each its own light query, in reading order:
        for a square query in which grid detection found no cells (a grid whose cells touch
        without a visible seam), and with `gated` only where the partition's lines separate
        unrelated pictures (`partition_evidence`). Empty for any other query, or when the
        cells would be under 32 px on a side. The cells' ORB features are made when used."""
        grey = self._partition_source(n)
        if grey is None or (gated and partition_evidence(grey, n) < PARTITION_EVIDENCE):
            return []
        h, w = grey.shape[:2]
        return [
            QueryFeatures(
                [],
                pixels=np.ascontiguousarray(
                    grey[r * h // n : (r + 1) * h // n, c * w // n : (c + 1) * w // n]
                ),
                top_up=False,
                light=True,
            )
            for r in range(n)
            for c in range(n)
        ]

    def partition_hashes(
        self, partitions: tuple[int, ...] = PARTITIONS
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(n, packed PDQ hashes (n*n, 32) uint8, qualities) of the `partition` cells for each n
        of `partitions` the query can be cut into, cells in the same order. The cells are cut
        from the small grey copy (`check`, at most 256 px), each at 64 px, and hashed in one
        pass (about 1.4 ms a query with the search for them), so they are made for every
        square query without cells, with no evidence asked. A square photo resized into a
        cell is that cell whole, near its registered `full` view's hash."""
        sides = [n for n in partitions if self._partition_source(n) is not None]
        check = self.check if sides else None
        if check is None:
            return []
        tiles = []
        for n in sides:
            side = n * TILE_SIDE
            small = check.grey
            if small.shape[:2] != (side, side):
                shrink = min(small.shape[:2]) > side
                interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
                small = cv2.resize(small, (side, side), interpolation=interp)
            tiles.append(small.reshape(n, TILE_SIDE, n, TILE_SIDE).transpose(0, 2, 1, 3))
        packed, quality = pdq_of_tiles(
            np.concatenate([t.reshape(-1, TILE_SIDE, TILE_SIDE) for t in tiles])
        )
        out, start = [], 0
        for n in sides:
            out.append((n, packed[start : start + n * n], quality[start : start + n * n]))
            start += n * n
        return out

    def _partition_source(self, n: int) -> np.ndarray | None:
        """The grey image a square query without grid cells is partitioned from (n a side)."""
        source = self._cut_source()
        if source is None or self.is_grid():
            return None
        grey = source[0]
        h, w = grey.shape[:2]
        if abs(h - w) > PARTITION_ASPECT * max(h, w) or min(h, w) < 32 * n:
            return None
        return grey

    def _grid_cells(self) -> list[Box]:
        if self._cells is None:
            rgb = self._pixels is not None and self._pixels.ndim == 3
            grid = detect_grid(self._pixels) if rgb and self._pixels is not None else None
            self._cells = [] if grid is None else grid.cells[:MAX_CELL_QUERIES]
        return self._cells

    def is_grid(self) -> bool:
        """The query is a grid or collage of 3 cells or more (its regions are its cells)."""
        if self._regions is not None and self._pixels is None:
            return len(self._regions) > MAX_REGION_QUERIES
        return len(self._grid_cells()) > MAX_REGION_QUERIES

    @property
    def check(self) -> CheckImage | None:
        """The query's small grey copy for the aligned check (None without pixels)."""
        if self._check is None and self._pixels is not None:
            self._check = check_image(self._grey_pixels(), light=self._light)
        return self._check

    @property
    def keypoints(self) -> np.ndarray:  # (n, 2) float32, work-image coordinates
        return self._orb()[0]

    @property
    def descriptors(self) -> np.ndarray:  # (n, 32) uint8
        return self._orb()[1]


def check_image(pixels: np.ndarray, *, light: bool = False) -> CheckImage:
    """The query's small grey copy, in step with its work image's coordinates (the light
    passes' work image with `light`, see `orb_features`). `pixels`: RGB, or grey already."""
    h, w = pixels.shape[:2]
    f = work_factor(h, w, LIGHT_SIDE, LIGHT_MIN_SIDE) if light else work_factor(h, w, QUERY_SIDE)
    c = min(1.0, CHECK_SIDE / (max(h, w) * f))
    size = (max(1, round(w * f * c)), max(1, round(h * f * c)))
    grey = grey_of(pixels)
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return CheckImage(cv2.resize(grey, size, interpolation=interp), c)


def query_features(
    pixels: np.ndarray,
    hashes: list[QueryHash] | None = None,
    *,
    cells: list[Box] | None = None,
    boxes: list[Box] | None = None,
) -> QueryFeatures:
    """Everything a protected search needs about one query (ORB features lazily).

    `cells`: the grid cells the caller found in these same `pixels` (`detect_grid(pixels)`;
    boxes in `pixels` coordinates; [] for no grid). Grid detection costs 5-15 ms a query, and
    query hashing already runs it; without `cells` the search detects them again. `boxes`:
    likewise the photo-like regions (`photo_regions(pixels)`, boxes in `pixels` coordinates)
    that query hashing found (5 ms a query)."""
    if hashes is None:
        hashes = query_hashes(pixels, mode="protected")
    return QueryFeatures(hashes, pixels=np.ascontiguousarray(pixels), cells=cells, boxes=boxes)
