"""The protected search on grids, combined edits and cheap passes (`ProtectedIndex.search`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from tests.robust.conftest import star_sky, synthetic_photo
from tests.robust.grids import make_grid

from childguard.pipeline import compact_features
from childguard.robust import orb, protected
from childguard.robust import query_features as query_features_module
from childguard.robust.grid import Box, detect_grid
from childguard.robust.orb import orb_features
from childguard.robust.protected import ProtectedIndex
from childguard.robust.query import photo_regions
from childguard.robust.query_features import QueryFeatures, check_image, query_features
from childguard.robust.signature import ProtectedSignature, compute_signature
from childguard.robust.verify import (
    DESCRIPTOR_MATCH,
    MIN_INLIERS,
    PDQ_CLOSE,
    VerifyResult,
    cross_matches,
    verify,
)
from childguard.signals.pdq import MIN_QUALITY, PdqSignal

# Registered photos: portrait and landscape, as organisations publish them.
SIZES = [(640, 480), (480, 640), (600, 400), (400, 600), (640, 480), (480, 640)]


@pytest.fixture(scope="module")
def registered() -> list[np.ndarray]:
    return [synthetic_photo(300 + i, size) for i, size in enumerate(SIZES)]


@pytest.fixture(scope="module")
def index(registered: list[np.ndarray]) -> ProtectedIndex:
    index = ProtectedIndex()
    for i, px in enumerate(registered):
        index.add(f"p{i}", compute_signature(px))
    return index


def _fillers(count: int, seed: int = 500) -> list[np.ndarray]:
    return [synthetic_photo(seed + i, SIZES[i % len(SIZES)]) for i in range(count)]


def _best(index: ProtectedIndex, pixels: np.ndarray | QueryFeatures) -> str | None:
    hits = index.search(pixels if isinstance(pixels, QueryFeatures) else query_features(pixels))
    return hits[0].photo if hits and hits[0].match else None


@pytest.mark.parametrize(
    "n,gutter,slot,photo,off",
    [
        (2, 0, 3, 1, 0.5),
        (3, 0, 4, 2, 0.0),
        (3, 9, 7, 3, 1.0),
        (4, 0, 9, 0, 0.5),
        (4, 9, 14, 5, 0.2),
    ],
)
def test_a_photo_square_cropped_into_a_grid_cell_is_found(
    index: ProtectedIndex,
    registered: list[np.ndarray],
    n: int,
    gutter: int,
    slot: int,
    photo: int,
    off: float,
) -> None:
    cells = _fillers(n * n)
    cells[slot] = registered[photo]
    offsets = [0.5] * (n * n)
    offsets[slot] = off
    pixels, _ = make_grid(n, gutter=gutter, photos=cells, offsets=offsets)
    q = query_features(pixels)
    assert q.is_grid() and len(q.regions()) == n * n
    assert _best(index, pixels) == f"p{photo}"


def test_a_grid_gets_no_top_up_and_its_cell_is_still_found(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    """A grid's whole-picture features are its usual detection alone (the top-up is for one
    dark photo's thin areas; a grid's cells are verified on their own features), and a
    photo in one of its cells is still found; a single photo's features keep their top-up."""
    cells = _fillers(9, seed=640)
    cells[5] = registered[4]
    pixels, _ = make_grid(3, gutter=6, photos=cells)
    q = query_features(pixels)
    assert q.is_grid() and q.before_top_up() is q
    usual = orb.detect(pixels, query=True, top_up=False)
    assert np.array_equal(q.descriptors, usual.descriptors)
    assert _best(index, pixels) == "p4"
    faint = registered[0].copy()
    faint[240:] = faint[240:] // 16 + 100  # a low-contrast half: its corners are the top-up's
    single = query_features(faint)
    assert not single.is_grid()
    assert len(single.descriptors) > len(orb.detect(faint, query=True, top_up=False).descriptors)


def test_a_grid_of_other_photos_matches_nothing(index: ProtectedIndex) -> None:
    for n, gutter in ((3, 0), (4, 9)):
        pixels, _ = make_grid(n, gutter=gutter, photos=_fillers(n * n, seed=700))
        assert _best(index, pixels) is None


def test_a_photo_in_a_grid_that_detection_missed_is_found_on_the_cut_around_its_inliers(
    index: ProtectedIndex, registered: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4x4 grid without gutters whose cells grid detection did not find (cells=[]): the
    whole picture's keypoints give the right photo too few inliers, and the query cut around
    them gives it all of its own."""
    cells = _fillers(16, seed=900)
    cells[5] = registered[0]
    pixels, boxes = make_grid(4, gutter=0, photos=cells)
    q = query_features(pixels, cells=[])
    assert not q.is_grid()
    hits = index.search(q)
    assert hits[0].photo == "p0" and hits[0].match
    cut = q.focused(protected.inlier_points(q, index.signatures["p0"]))
    assert cut is not None
    cell = boxes[5]
    assert 0.5 * cell.area <= cut._grey_pixels().size <= 4 * cell.area
    # Without the cut (nor the equal partition) the same query is not matched: the whole
    # picture's fit is too weak.
    monkeypatch.setattr(protected, "FOCUS_INLIERS", 10**6)
    monkeypatch.setattr(protected, "PARTITIONS", ())
    weak = index.search(query_features(pixels, cells=[]))
    assert not any(h.match for h in weak)
    assert max(h.inliers for h in weak if h.photo == "p0") < hits[0].inliers / 2


def test_features_that_travelled_without_pixels_make_the_same_cut(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    """The gutterless 4x4 of the test above, with its features computed in a hashing worker
    and pickled to the matcher (`compact_features`): the focus copy travels with them, the cut
    is made from it, and the photo is found as with the pixels at hand. Without the copy it is
    not."""
    import pickle

    from childguard.robust.query import query_hashes

    cells = _fillers(16, seed=900)
    cells[5] = registered[0]
    pixels, _ = make_grid(4, gutter=0, photos=cells)
    travelled = pickle.loads(
        pickle.dumps(compact_features(pixels, query_hashes(pixels), cells=[], boxes=[]))
    )
    hits = index.search(travelled)
    assert hits[0].photo == "p0" and hits[0].match
    local = query_features(pixels, cells=[])
    points = protected.inlier_points(local, index.signatures["p0"])
    from_pixels, from_copy = local.focused(points), travelled.focused(points)
    assert from_pixels is not None and from_copy is not None
    shrink = travelled.focus_copy().grey.shape[0] / pixels.shape[0]  # a 1080-px grid: 0.95
    side = from_pixels._grey_pixels().shape[0]
    assert abs(from_copy._grey_pixels().shape[0] - side * shrink) <= 2
    bare = QueryFeatures(
        travelled.hashes,
        keypoints=travelled.keypoints,
        descriptors=travelled.descriptors,
        check=travelled.check,
        mirror=travelled.mirrored(),
        regions=travelled.regions(),
    )
    assert not any(h.match for h in index.search(bare))


def test_the_focus_copy_is_at_most_focus_side_and_cuts_the_same_place() -> None:
    """A large query's focus copy is shrunk to FOCUS_SIDE; a cut made from it covers the
    same part of the picture as the cut from the pixels."""
    big = np.ascontiguousarray(
        cv2.resize(synthetic_photo(77, (640, 480)), (2400, 1800), interpolation=cv2.INTER_LINEAR)
    )
    q = query_features(big, [])
    copy = q.focus_copy()
    assert copy is not None and max(copy.grey.shape) == query_features_module.FOCUS_SIDE
    f = orb.work_factor(1800, 2400, orb.QUERY_SIDE)
    points = np.array([[300, 200], [400, 200], [300, 300]], np.float32) * (2400 * f / 768)
    travelled = QueryFeatures([], focus=copy)
    a, b = q.focused(points), travelled.focused(points)
    assert a is not None and b is not None
    ratio = query_features_module.FOCUS_SIDE / 2400
    side_a, side_b = a._grey_pixels().shape[0], b._grey_pixels().shape[0]
    assert abs(side_b - side_a * ratio) <= 2
    small = cv2.resize(a._grey_pixels(), b._grey_pixels().shape[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - b._grey_pixels().astype(int)).mean() < 4


@pytest.mark.parametrize("n,slot,needed", [(3, 4, False), (4, 5, True), (4, 15, False)])
def test_a_square_query_is_cut_into_equal_cells_when_nothing_else_matched(
    index: ProtectedIndex,
    registered: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    n: int,
    slot: int,
    needed: bool,
) -> None:
    """A gutterless grid that detection missed (cells=[]), with the focused cut off: the
    photo is found in its cell of the equal partition, from the pixels and from the features
    that travelled without them. Without the partition a 4x4's inner cell is not (a 3x3's
    cell is large enough for the whole picture's keypoints to find it, and so is a 4x4's
    corner cell: nothing lies beyond it to spoil the square view the aligned check compares)."""
    import pickle

    from childguard.robust.query import query_hashes

    monkeypatch.setattr(protected, "FOCUS_INLIERS", 10**6)
    cells = _fillers(n * n, seed=910)
    cells[slot] = registered[slot % len(registered)]
    pixels, _ = make_grid(n, gutter=0, photos=cells)
    want = f"p{slot % len(registered)}"
    assert _best(index, query_features(pixels, cells=[])) == want
    travelled = pickle.loads(
        pickle.dumps(compact_features(pixels, query_hashes(pixels), cells=[], boxes=[]))
    )
    assert _best(index, travelled) == want
    monkeypatch.setattr(protected, "PARTITIONS", ())
    assert (_best(index, query_features(pixels, cells=[])) is None) == needed


def test_only_a_square_query_without_cells_whose_lines_are_seams_is_partitioned(
    registered: list[np.ndarray],
) -> None:
    touching, _ = make_grid(4, gutter=0, photos=_fillers(16, seed=930))
    side = touching.shape[0] // 4
    parts = query_features(touching, [], cells=[]).partition(4)
    assert [p._grey_pixels().shape for p in parts] == [(side, side)] * 16
    assert all(p._light for p in parts)
    grey = cv2.cvtColor(touching, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(parts[5]._grey_pixels(), grey[side : 2 * side, side : 2 * side])
    square = np.ascontiguousarray(registered[0][:480, :480])  # one photo: no seams at k/n
    assert query_features(square, [], cells=[]).partition(4) == []
    assert query_features(registered[0], [], cells=[]).partition(3) == []  # 640 x 480
    grid, _ = make_grid(3, gutter=9, photos=_fillers(9))
    assert query_features(grid).partition(3) == []  # detected cells are searched as cells
    assert query_features(touching[:90, :90], [], cells=[]).partition(3) == []  # cells < 32 px
    assert QueryFeatures([]).partition(3) == []  # neither pixels nor a focus copy


def test_partition_evidence_is_high_on_the_seams_of_touching_cells_only(
    registered: list[np.ndarray],
) -> None:
    """Neighbouring pixel lines of one resized photo are correlated; across a seam between two
    photos they are not. A star field's seams (dark sky against dark sky, each sky enlarged
    into its cell as a grid's photos are) show it too."""
    from childguard.robust.grid import partition_evidence
    from childguard.robust.query_features import PARTITION_EVIDENCE

    for n in (3, 4):
        grid, _ = make_grid(n, gutter=0, photos=_fillers(n * n, seed=940 + n))
        grey = cv2.cvtColor(grid, cv2.COLOR_RGB2GRAY)
        assert partition_evidence(grey, n) >= PARTITION_EVIDENCE
        single = cv2.cvtColor(
            cv2.resize(registered[n], (grid.shape[1], grid.shape[0])), cv2.COLOR_RGB2GRAY
        )
        assert partition_evidence(single, n) < PARTITION_EVIDENCE
    skies = [star_sky(960 + i, side=150) for i in range(16)]
    grid, _ = make_grid(4, gutter=0, photos=skies)
    sky_grey = cv2.cvtColor(grid, cv2.COLOR_RGB2GRAY)
    assert partition_evidence(sky_grey, 4) >= PARTITION_EVIDENCE
    one_sky = cv2.cvtColor(
        cv2.resize(star_sky(990, side=600), grid.shape[:2][::-1]), cv2.COLOR_RGB2GRAY
    )
    assert partition_evidence(one_sky, 4) < PARTITION_EVIDENCE


def test_no_cut_is_made_around_points_that_span_the_query(registered: list[np.ndarray]) -> None:
    q = query_features(registered[0])
    h, w = registered[0].shape[:2]
    f = orb.work_factor(h, w, orb.QUERY_SIDE)
    spread = np.array([[0, 0], [w * f * 0.9, 0], [0, h * f * 0.9]], np.float32)
    assert q.focused(spread) is None
    small = np.array([[10, 10], [60, 10], [10, 60]], np.float32)
    cut = q.focused(small)
    # A square around the points' centre (35, 35), 1.5 times their box's side: from 0 (clipped)
    side = int((35 + 1.5 * 50 / 2) / f) + 1
    assert cut is not None and cut._grey_pixels().shape == (side, side)
    assert QueryFeatures(q.hashes).focused(small) is None  # no pixels at hand


def test_mirror_grey_and_an_off_centre_crop_together_are_found(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    for i in (0, 3):
        img = ImageOps.mirror(Image.fromarray(registered[i])).convert("L").convert("RGB")
        w, h = img.size
        s = 0.85**0.5  # 15% of the area off, aspect kept, in a corner
        out = img.crop((w - round(w * s), 0, w, round(h * s)))
        assert _best(index, np.asarray(out)) == f"p{i}"


def test_cells_travel_without_pixels(index: ProtectedIndex, registered: list[np.ndarray]) -> None:
    """Features computed where the pixels were (a hashing worker) keep the cells as regions."""
    cells = _fillers(9)
    cells[5] = registered[4]
    pixels, _ = make_grid(3, gutter=0, photos=cells)
    full = query_features(pixels)
    travelled = QueryFeatures(
        [],
        keypoints=full.keypoints,
        descriptors=full.descriptors,
        regions=[
            QueryFeatures([], keypoints=r.keypoints, descriptors=r.descriptors)
            for r in full.regions()
        ],
    )
    assert travelled.is_grid()
    hits = index.search(travelled)
    assert hits and hits[0].match and hits[0].photo == "p4"


def test_voted_many_counts_as_voted_does(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    queries = [query_features(px) for px in registered[:3]]
    many = index.voted_many(queries, votes=2)
    assert [[p for p, _ in v] for v in many] == [index.voted(q, votes=2) for q in queries]
    assert [v[0][0] for v in many] == ["p0", "p1", "p2"]
    assert all(v[0][1] > 0 for v in many)


def _edits(px: np.ndarray) -> list[np.ndarray]:
    """A 25% off-centre crop and a 10-degree rotation of a photo."""
    img = Image.fromarray(px)
    w, h = img.size
    crop = img.crop((w // 4, 0, w, h))
    turned = img.rotate(10, expand=True, resample=Image.Resampling.BILINEAR)
    return [np.asarray(crop), np.asarray(turned.convert("RGB"))]


def test_cross_matches_are_opencvs_cross_checked_matches(registered: list[np.ndarray]) -> None:
    """The kernel's cross-check gives OpenCV's BFMatcher(crossCheck=True) pairs, in its order
    (RANSAC samples by position, so the order is part of the result)."""
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    compared = 0
    for i, px in enumerate(registered[:4]):
        sig = compute_signature(px)
        for query in [*_edits(px), registered[(i + 1) % len(registered)]]:
            desc = QueryFeatures([], pixels=query).descriptors
            qi, ti = cross_matches(desc, sig.descriptors)
            want = [
                (m.queryIdx, m.trainIdx)
                for m in matcher.match(desc, sig.descriptors)
                if m.distance <= DESCRIPTOR_MATCH
            ]
            assert list(zip(qi.tolist(), ti.tolist(), strict=True)) == want
            compared += len(want)
    assert compared > 500
    empty = np.zeros((0, 32), np.uint8)
    assert [len(a) for a in cross_matches(empty, sig.descriptors)] == [0, 0]


def test_pdq_hits_are_the_plain_loops(index: ProtectedIndex, registered: list[np.ndarray]) -> None:
    """The one-matrix PDQ candidates equal a loop over the query's hashes: best distance, the
    first view at it, untrusted views at 256, photos in the order first seen."""

    def plain(q: QueryFeatures, radius: int = 80) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for qh in q.hashes:
            for photo, sig in index.signatures.items():
                for label, value in sig.pdq:
                    d = PdqSignal.distance(qh.pdq, value)
                    if d > radius:
                        continue
                    trusted = qh.quality >= MIN_QUALITY and not qh.variant.startswith("quad")
                    d = d if trusted else 256
                    if photo not in out or d < out[photo][0]:
                        out[photo] = (d, label)
        return out

    grid, _ = make_grid(2, gutter=0, photos=[registered[1], *_fillers(3)])
    for px in [*_edits(registered[2]), grid, _fillers(1, seed=900)[0]]:
        q = query_features(px)
        got = index.pdq_hits(q)
        assert list(got.items()) == list(plain(q).items())
    assert index.pdq_hits(QueryFeatures([])) == {}


def test_a_close_pdq_hit_is_matched_on_the_light_features(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    """Within PDQ_CLOSE the match is decided; its support is measured with the light features,
    and the full detection (the costly step) never runs."""
    q = query_features(registered[5])
    hits = index.search(q)
    assert hits[0].photo == "p5" and hits[0].match and hits[0].distance <= PDQ_CLOSE
    assert hits[0].inliers >= MIN_INLIERS
    assert q.lighter() is not q and q._features is None
    assert q.lighter().lighter() is q.lighter()
    travelled = QueryFeatures(q.hashes, keypoints=q.keypoints, descriptors=q.descriptors)
    assert travelled.lighter() is travelled


def test_votes_through_the_inverted_file(
    registered: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_VOTES descriptors the votes go through an inverted file; they name the same
    photo as the exact search, follow photos added later, and the file is built again once the
    descriptors have doubled."""
    exact = ProtectedIndex()
    for i, px in enumerate(registered):
        exact.add(f"p{i}", compute_signature(px))
    queries = [
        (i, query_features(e)) for i in range(len(registered)) for e in _edits(registered[i])
    ]
    want = [exact.voted(q, votes=1) for _, q in queries]
    assert [w[0] for w in want] == [f"p{i}" for i, _ in queries]

    monkeypatch.setattr(protected, "EXACT_VOTES", 1000)
    index = ProtectedIndex()
    for i in range(4):
        index.add(f"p{i}", exact.signatures[f"p{i}"])
    assert index.voted(queries[0][1], votes=1) == ["p0"]
    votes = index._votes
    assert votes._trained == 1200 and votes._lists is not None
    centres = votes._lists.centres
    assert len(centres) == 1200 // protected.VOTE_LIST and votes._lists.probes == 8
    index.add("p4", exact.signatures["p4"])  # added to the file, not built again
    assert [index.voted(q, votes=1) for i, q in queries if i == 4] == [["p4"], ["p4"]]
    assert votes._trained == 1200 and votes.total == 1500
    assert votes._lists.centres is centres
    for extra in range(3):
        index.add(f"x{extra}", compute_signature(_fillers(1, seed=950 + extra)[0]))
    index.add("p5", exact.signatures["p5"])  # 2,700 descriptors: built again
    got = [index.voted(q, votes=1) for _, q in queries]
    assert votes._trained == 2700 and votes.total == 2700
    assert len(votes._lists.centres) == 2700 // protected.VOTE_LIST
    assert got == want


def test_regions_found_by_the_caller_are_not_found_again(
    index: ProtectedIndex, registered: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`boxes`: the photo-like regions query hashing found. They are the regions' boxes, the
    screenshot is found through them, and the picture is not analysed again; [] means none."""
    page = np.full((700, 900, 3), 250, np.uint8)
    page[60:540, 100:740] = registered[0]
    page[600:640, 100:800] = 30  # a line of "text" under the photo
    boxes = photo_regions(page)
    assert boxes
    plain = query_features(page).regions()

    def refused(pixels: np.ndarray) -> list[Box]:
        raise AssertionError("the regions were found again")

    monkeypatch.setattr(query_features_module, "photo_regions", refused)
    given = query_features(page, boxes=boxes)
    regions = given.regions()
    assert regions and len(regions) == len(plain)
    for a, b in zip(regions, plain, strict=True):
        assert np.array_equal(a.descriptors, b.descriptors)
    assert _best(index, query_features(page, boxes=boxes)) == "p0"
    assert query_features(page, boxes=[]).regions() == []
    compact = compact_features(page, given.hashes, boxes=boxes)  # the crawl's and the API's
    assert [len(r.descriptors) for r in compact.regions()] == [len(r.descriptors) for r in plain]


def test_passes_share_one_grey_copy_and_get_the_features_their_pixels_give(
    registered: list[np.ndarray],
) -> None:
    """The mirror, the regions and the check image come from the query's one grey copy: the
    regions and the check image are exactly what their own RGB pixels give, the mirror is the
    query's own keypoints described on the flipped work image, with the check image flipped."""
    page = np.full((700, 900, 3), 250, np.uint8)
    page[60:540, 100:740] = registered[0]
    q = query_features(page)
    mirror = q.mirrored()
    assert mirror is not None
    points, desc = orb.mirrored(orb.detect(page, query=True))
    assert np.array_equal(points, mirror.keypoints) and np.array_equal(desc, mirror.descriptors)
    assert mirror.check is not None and q.check is not None
    assert np.array_equal(mirror.check.grey, q.check.grey[:, ::-1])
    assert mirror.check.scale == q.check.scale
    regions = q.regions()
    assert regions and regions[0].regions() == [] and not regions[0].is_grid()
    assert np.array_equal(q.check.grey, check_image(page).grey)
    assert np.array_equal(q.keypoints, orb_features(page, query=True)[0])


def test_the_mirror_is_described_as_orb_describes_the_flipped_image(
    registered: list[np.ndarray],
) -> None:
    """No second detection for the mirror: the strongest LIGHT_FEATURES keypoints mirrored
    (x -> w - 1 - x, angle -> 180 - angle), in the query's order. Where ORB's own detection on
    the flipped work image finds the same keypoint (the full-size level, where positions are
    whole pixels), its descriptor is the one computed here, bit for bit."""
    found = orb.detect(registered[1], query=True)
    points, desc = orb.mirrored(found)
    w = found.work.shape[1]
    assert len(found.points) > len(points) == orb.LIGHT_FEATURES
    assert np.allclose(points[:, 0], w - 1 - found.points[: len(points), 0])
    assert np.array_equal(points[:, 1], found.points[: len(points), 1])
    kps, own = orb._ORB_QUERY.detectAndCompute(np.ascontiguousarray(found.work[:, ::-1]), None)
    at = {(k.pt, k.octave): d for k, d in zip(kps, own, strict=True) if k.octave == 0}
    same = 0
    for k, (x, y), d in zip(found.keypoints[: len(points)], points, desc, strict=True):
        theirs = at.get(((float(x), float(y)), k.octave))
        if theirs is not None:
            assert np.array_equal(theirs, d)
            same += 1
    assert same >= 50


def test_far_candidates_are_verified_only_with_votes(
    index: ProtectedIndex,
    registered: list[np.ndarray],
    real_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond PDQ_ONLY_DISTANCE a candidate is verified only with votes: a PDQ look-alike
    (40 bits off) that no descriptor votes for is answered unverified; a mirrored, cropped
    copy, which only the mirror's votes find, is still verified and found."""
    verified: list[tuple[int, str]] = []
    real = protected.verify

    def recording(q: QueryFeatures, signature: ProtectedSignature) -> VerifyResult:
        names = {id(sig): name for name, sig in searched.signatures.items()}
        verified.append((id(q), names[id(signature)]))
        return real(q, signature)

    photo = Image.open(real_photos[0]).convert("RGB")
    photo.thumbnail((640, 640))
    stranger = np.asarray(photo)
    value = int(query_features(stranger).hashes[0].pdq, 16) ^ int("1" * 40, 2) << 100
    rng = np.random.default_rng(0)
    searched = ProtectedIndex()
    for name in ("p0", "p1", "p2"):
        searched.add(name, index.signatures[name])
    searched.add(  # the stranger's PDQ 40 bits off; descriptors that no query's are near
        "look-alike",
        ProtectedSignature(
            [("full", f"{value:064x}")],
            rng.integers(0, 512, (300, 2)).astype(np.uint16),
            rng.integers(0, 256, (300, 32), dtype=np.uint8),
        ),
    )
    monkeypatch.setattr(protected, "verify", recording)
    q = query_features(stranger)
    assert searched.pdq_hits(q)["look-alike"][0] == 40
    hits = searched.search(q)
    assert not any(h.match for h in hits)
    assert [(h.distance, h.inliers) for h in hits if h.photo == "look-alike"] == [(40, 0.0)]
    assert not [photo for _, photo in verified if photo == "look-alike"]
    # Without the gate the look-alike, the closest PDQ candidate, is verified.
    monkeypatch.setattr(protected, "MAIN_MIN_VOTES", 0)
    searched.search(query_features(stranger))
    assert [photo for _, photo in verified if photo == "look-alike"]

    img = ImageOps.mirror(Image.fromarray(registered[2]))
    w, h = img.size
    copy = query_features(np.asarray(img.crop((0, round(0.1 * h), round(0.85 * w), h))))
    verified.clear()
    assert _best(searched, copy) == "p2"
    assert (id(copy.mirrored()), "p2") in verified


def test_the_top_up_waits_until_the_features_are_needed_in_full(
    index: ProtectedIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query whose usual detection fills the voters votes without the top-up (its keypoints
    come last, after the voters); its second detection runs when the features are first needed
    in full (a verification), and the votes are those of the full features."""
    rng = np.random.default_rng(3)
    pixels = np.zeros((512, 768, 3), np.uint8)  # busy blocks, then a smooth strip of thin cells
    pixels[:, :576] = rng.integers(0, 256, (256, 288, 1), dtype=np.uint8).repeat(2, 0).repeat(2, 1)
    pixels[:, 576:] = np.linspace(40, 200, 192, dtype=np.uint8)[None, :, None]
    assert len(orb.detect(pixels, query=True, top_up=False).points) >= protected.VOTERS
    calls: list[int] = []
    real = orb._ORB_TOPUP

    class Counting:
        def detect(self, grey: np.ndarray, mask: None) -> object:
            calls.append(1)
            return real.detect(grey, mask)

        def compute(self, grey: np.ndarray, keypoints: object) -> object:
            return real.compute(grey, keypoints)

    monkeypatch.setattr(orb, "_ORB_TOPUP", Counting())
    q = query_features(pixels)
    votes = index.voted_many([q], votes=2)
    assert q.mirrored() is not None and calls == []
    full = QueryFeatures([], keypoints=q.keypoints, descriptors=q.descriptors)
    assert calls == [1] and len(full.descriptors) > protected.VOTERS
    assert index.voted_many([full], votes=2) == votes
    assert np.array_equal(q.keypoints, orb_features(pixels, query=True)[0])


def _top_up_reference(found: orb.OrbFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The top-up the plain way: ORB's own low-threshold detection, described in full, walked
    strongest first, a corner taken while its cell holds fewer than its share."""
    grey = found.work
    h, w = grey.shape
    quota = orb._QUERY_FEATURES // orb._TOPUP_CELLS**2
    have = np.bincount(orb._grid_cells(found.points, w, h), minlength=orb._TOPUP_CELLS**2)
    kps, desc = orb._ORB_TOPUP.detectAndCompute(grey, None)
    order = np.argsort([-k.response for k in kps], kind="stable")
    points = np.array([k.pt for k in kps], np.float32)[order]
    take = []
    for i, cell in enumerate(orb._grid_cells(points, w, h)):
        if have[cell] < quota:
            have[cell] += 1
            take.append(i)
    return (
        np.concatenate([found.points, points[take]]),
        np.concatenate([found.descriptors, desc[order][take]]),
    )


def test_the_top_up_is_the_plain_per_cell_pick(registered: list[np.ndarray]) -> None:
    rng = np.random.default_rng(4)
    page = np.full((600, 800, 3), 20, np.uint8)  # a dark page, one photo in a corner
    page[20:380, 30:510] = registered[1][:360]
    page += rng.integers(0, 3, page.shape, dtype=np.uint8)
    for pixels in (page, registered[0]):
        found = orb.detect(pixels, query=True, top_up=False)
        topped = orb.topped_up(found)
        points, desc = _top_up_reference(found)
        assert len(points) > len(found.points)
        assert np.array_equal(topped.points, points) and np.array_equal(topped.descriptors, desc)
        assert len(topped.keypoints) == len(points)


def test_a_far_candidate_meets_the_top_up_only_when_the_usual_keypoints_support_it(
    index: ProtectedIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond PDQ_ONLY_DISTANCE a candidate with few votes is verified with the usual keypoints
    first, and with the top-up's weaker corners only when those support it; a dark photo whose
    stars a watermark's letters crowded out, with the votes of its stars, gets the top-up and
    matches."""
    from tests.robust.test_protected import _watermarked_repost

    calls: list[int] = []
    real = query_features_module.topped_up

    def counting(found: orb.OrbFeatures) -> orb.OrbFeatures:
        calls.append(1)
        return real(found)

    monkeypatch.setattr(query_features_module, "topped_up", counting)
    rng = np.random.default_rng(1)
    searched = ProtectedIndex()
    searched.add(  # descriptors that no query's are near
        "other",
        ProtectedSignature(
            index.signatures["p0"].pdq,
            rng.integers(0, 512, (300, 2)).astype(np.uint16),
            rng.integers(0, 256, (300, 32), dtype=np.uint8),
        ),
    )
    sky = star_sky(1)
    searched.add("sky", compute_signature(sky))
    repost = _watermarked_repost(sky)
    q = query_features(repost)
    votes = dict(searched.voted_many([q.before_top_up()], votes=2)[0])
    assert votes.get("other", 0) < protected.MIN_VOTES <= votes["sky"] and calls == []
    other = searched._hit(q, "other", 256, "", votes.get("other", 0))
    assert not other.match and other.inliers < protected.RECHECK_INLIERS and calls == []
    unsupported = searched._hit(q, "sky", 256, "", 1)  # as if it had one vote: 3 inliers
    assert not unsupported.match and calls == []
    hit = searched._hit(q, "sky", 256, "", votes["sky"])
    assert hit.match and calls == [1]
    assert hit.inliers == verify(query_features(repost), searched.signatures["sky"]).score


def test_cells_found_by_the_caller_are_not_detected_again(
    index: ProtectedIndex, registered: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that detected the grid already passes its cells: the search uses them as they
    are (a grid detection refused here) and finds the photo in its cell."""
    cells = _fillers(9)
    cells[4] = registered[2]
    pixels, _ = make_grid(3, gutter=0, photos=cells)
    found = detect_grid(pixels)
    assert found is not None

    def refuse(_pixels: np.ndarray) -> None:
        raise AssertionError("the grid was detected again")

    monkeypatch.setattr(query_features_module, "detect_grid", refuse)
    q = query_features(pixels, cells=found.cells)
    assert q.is_grid() and len(q.regions()) == 9
    assert _best(index, q) == "p2"
    assert not query_features(registered[2], cells=[]).is_grid()


@pytest.fixture(scope="module")
def square_index() -> tuple[ProtectedIndex, list[np.ndarray]]:
    """Square photos, as deep-sky photos are: resized into a grid cell, each is the cell whole."""
    photos = [synthetic_photo(1200 + i, (600, 600)) for i in range(4)]
    index = ProtectedIndex()
    for i, px in enumerate(photos):
        index.add(f"s{i}", compute_signature(px))
    return index, photos


@pytest.mark.parametrize("n,slot", [(3, 7), (4, 2), (4, 13)])
def test_a_square_photo_in_a_cell_is_found_by_the_partitions_hashes(
    square_index: tuple[ProtectedIndex, list[np.ndarray]], n: int, slot: int
) -> None:
    """A gutterless grid's cell that holds a registered square photo is near its `full` view
    by PDQ and is verified with the cell's own features, from the pixels and from features
    that travelled without them; a grid of other photos only matches nothing."""
    import pickle

    from childguard.robust.query import query_hashes

    index, photos = square_index
    cells = [star_sky(1300 + i) for i in range(n * n)]  # corners everywhere, as star fields
    cells[slot] = photos[slot % len(photos)]
    pixels, _ = make_grid(n, gutter=0, photos=cells)
    want = f"s{slot % len(photos)}"
    travelled = pickle.loads(
        pickle.dumps(compact_features(pixels, query_hashes(pixels), cells=[], boxes=[]))
    )
    for q in (query_features(pixels, cells=[]), travelled):
        hits = [h for h in index._verify_partition_hashes(q, []) if h.match]
        assert [h.photo for h in hits] == [want]
        assert hits[0].distance <= protected.PDQ_ONLY_DISTANCE and hits[0].region == "full"
    others, _ = make_grid(n, gutter=0, photos=[star_sky(1300 + i) for i in range(n * n)])
    assert not index._verify_partition_hashes(query_features(others, cells=[]), [])


def test_partition_hashes_are_each_cells_pdq_and_only_for_square_queries_without_cells(
    square_index: tuple[ProtectedIndex, list[np.ndarray]],
) -> None:
    from childguard.signals.pdq import pdq_from_pixels

    _, photos = square_index
    cells = _fillers(16, seed=1400)
    cells[6] = photos[1]
    cells[9] = np.full((300, 300, 3), 128, np.uint8)  # a flat cell: quality 0
    pixels, _ = make_grid(4, gutter=0, photos=cells)
    q = query_features(pixels, [], cells=[])
    parts = q.partition_hashes()
    assert [(n, len(packed), len(quality)) for n, packed, quality in parts] == [
        (3, 9, 9),
        (4, 16, 16),
    ]
    _, packed, quality = parts[1]
    assert q.check is not None
    small = cv2.resize(q.check.grey, (256, 256), interpolation=cv2.INTER_AREA)
    cell = small[64:128, 128:192]  # row 1, column 2: the registered photo
    expected, expected_quality = pdq_from_pixels(np.repeat(cell[:, :, None], 3, axis=2))
    assert packed[6].tobytes().hex() == expected and quality[6] == expected_quality
    assert quality[9] == 0 and quality[6] >= MIN_QUALITY
    assert query_features(photos[0][:, :500], [], cells=[]).partition_hashes() == []  # 500 x 600
    grid, _ = make_grid(3, gutter=9, photos=_fillers(9))
    assert query_features(grid).partition_hashes() == []  # detected cells are searched as cells
    assert QueryFeatures([]).partition_hashes() == []  # neither pixels nor copies


def _reference_line_score(grey: np.ndarray, at: int, n: int, *, rows: bool) -> float:
    """`grid._line_scores` for one line, band by band and position by position, as plainly as
    it reads."""
    from childguard.robust.grid import PARTITION_SLACK

    def correlations(strip: np.ndarray) -> np.ndarray:
        centred = strip - strip.mean(axis=0)
        norms = np.sqrt((centred * centred).sum(axis=0))
        dots = (centred[:, 1:] * centred[:, :-1]).sum(axis=0)
        den = norms[1:] * norms[:-1]
        out = np.full(len(dots), np.nan)
        np.divide(dots, den, out=out, where=den > 0)
        return out

    side = grey.shape[0] if rows else grey.shape[1]
    lo, hi = at - PARTITION_SLACK - 5, at + PARTITION_SLACK + 4
    if lo < 0 or hi > side:
        return 0.0
    strip = (grey[lo:hi].T if rows else grey[:, lo:hi]).astype(np.float64)
    length = strip.shape[0]
    if length < n:
        return 0.0
    ratios = np.zeros((n, 2 * PARTITION_SLACK + 1))
    for band in range(n):
        c = correlations(strip[band * length // n : (band + 1) * length // n])
        for j, b in enumerate(range(at - PARTITION_SLACK, at + PARTITION_SLACK + 1)):
            i = b - lo - 1
            across = c[i] if np.isfinite(c[i]) else 1.0
            near = c[[i - 3, i - 2, i + 1, i + 2]]
            within = float(near[np.isfinite(near)].mean()) if np.isfinite(near).any() else 1.0
            ratios[band, j] = (1.0 - across) / (1.0 - within + 0.02)
    return float(np.median(ratios, axis=0).max())


def test_partition_evidence_scores_lines_as_the_plain_reference_does(
    registered: list[np.ndarray],
) -> None:
    from childguard.robust import grid as grid_module

    flat_band = cv2.cvtColor(registered[1], cv2.COLOR_RGB2GRAY).copy()
    flat_band[:, 200:260] = 77  # flat lines: no correlation, as a solid border gives
    images = [
        cv2.cvtColor(make_grid(4, gutter=0, photos=_fillers(16, seed=1500))[0], cv2.COLOR_RGB2GRAY),
        cv2.cvtColor(registered[0], cv2.COLOR_RGB2GRAY),
        cv2.cvtColor(star_sky(1501, side=437), cv2.COLOR_RGB2GRAY),
        flat_band,
    ]
    for grey in images:
        for n in (2, 3, 4):
            for rows, side in ((False, grey.shape[1]), (True, grey.shape[0])):
                ats = [round(k * side / n) for k in range(1, n)]
                got = grid_module._line_scores(grey, ats, n, rows=rows)
                want = [_reference_line_score(grey, at, n, rows=rows) for at in ats]
                assert got.tolist() == pytest.approx(want, rel=1e-9, abs=1e-12)
    edge = grid_module._line_scores(images[1], [3, 320], 3, rows=False)  # 3: too near the edge
    assert edge[0] == 0.0 and edge[1] == pytest.approx(
        _reference_line_score(images[1], 320, 3, rows=False)
    )
