"""Protected signatures: storage, verification, and the index + decision rule on edited photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tests.robust.conftest import star_sky

from childguard.media import load_image
from childguard.robust import orb
from childguard.robust.orb import orb_features, work_factor
from childguard.robust.protected import ProtectedIndex
from childguard.robust.query_features import (
    CHECK_SIDE,
    QUERY_SIDE,
    QueryFeatures,
    check_image,
    query_features,
)
from childguard.robust.signature import (
    SQUARE_SIDE,
    SQUARE_VIEWS,
    ProtectedSignature,
    compute_signature,
    frame_fits,
    square_box,
    stored_frame,
    view_slices,
)
from childguard.robust.verify import (
    ALIGNED_REJECT,
    MIN_INLIERS,
    NOT_COVERED,
    PDQ_CLOSE,
    PDQ_ONLY_DISTANCE,
    PDQ_SUPPORT,
    STRONG_INLIERS,
    aligned_distance,
    decide,
    verify,
)


def _edit(pixels: np.ndarray, how: str) -> np.ndarray:
    img = Image.fromarray(pixels)
    w, h = img.size
    if how == "crop30-off":
        out = img.crop((0, int(h * 0.16), int(w * 0.84), h))
    elif how == "rot10":
        out = img.rotate(10, expand=True, resample=Image.Resampling.BILINEAR)
    elif how == "collage":
        out = Image.new("RGB", (2 * w + 12, 2 * h + 12), (255, 255, 255))
        out.paste(img, (w + 8, 4))
    elif how == "flip":
        out = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif how == "screenshot":
        out = Image.new("RGB", (int(w * 1.7), int(h * 2.0)), (250, 250, 250))
        out.paste(Image.new("RGB", (out.width, h // 6), (30, 40, 80)), (0, 0))
        out.paste(img, (w // 5, h // 4))
        draw = ImageDraw.Draw(out)
        for y in range(h // 4 + h + 16, out.height - 12, 18):
            draw.text((w // 5, y), "look at this photo shared from the weekend", fill=(20, 20, 20))
    elif how == "thumb":
        out = img.copy()
        out.thumbnail((150, 150))
    else:
        raise AssertionError(how)
    return np.asarray(out.convert("RGB"))


def test_signature_round_trip_and_size(photos: list[np.ndarray]) -> None:
    sig = compute_signature(photos[0])
    labels = [label for label, _ in sig.pdq]
    assert labels[0] == "full" and len(set(labels)) == len(labels)
    assert 50 <= len(sig.descriptors) == len(sig.keypoints)
    assert [label for label, _ in sig.squares] == list(SQUARE_VIEWS)
    hashes = len(sig.pdq) + len(sig.squares)
    assert sig.nbytes == 32 * hashes + 36 * len(sig.descriptors) + 4  # + the frame size
    assert sig.size is not None and max(sig.size) <= 512
    assert sig.keypoints[:, 0].max() < sig.size[0] and sig.keypoints[:, 1].max() < sig.size[1]
    back = ProtectedSignature.from_json(sig.to_json())
    assert back.pdq == sig.pdq and back.size == sig.size and back.squares == sig.squares
    assert np.array_equal(back.keypoints, sig.keypoints)
    assert np.array_equal(back.descriptors, sig.descriptors)


def test_feature_blob_rejects_damage(photos: list[np.ndarray]) -> None:
    blob = compute_signature(photos[0]).features_blob()
    with pytest.raises(ValueError):
        ProtectedSignature.parse_features(blob[:-8])


def test_verify_accepts_the_same_photo_and_rejects_another(photos: list[np.ndarray]) -> None:
    sig = compute_signature(photos[1])
    same = verify(_edit(photos[1], "rot10"), sig)
    other = verify(photos[2], sig)
    assert same.match and same.score >= MIN_INLIERS
    assert not other.match and other.score < same.score


def test_decide() -> None:
    assert decide(10, 0)
    assert decide(PDQ_CLOSE, 0)
    # Between PDQ_CLOSE and the PDQ threshold a hit needs a few agreeing keypoints.
    assert not decide(PDQ_CLOSE + 1, PDQ_SUPPORT - 1)
    assert decide(PDQ_CLOSE + 1, PDQ_SUPPORT)
    assert not decide(PDQ_ONLY_DISTANCE + 1, PDQ_SUPPORT)
    assert not decide(60, MIN_INLIERS - 1)
    assert decide(256, MIN_INLIERS)


@pytest.fixture(scope="module")
def real_pixels(real_photos: list[Path]) -> list[np.ndarray]:
    return [load_image(p).pixels for p in real_photos[:8]]


@pytest.mark.parametrize("how", ["crop30-off", "rot10", "collage", "thumb", "flip", "screenshot"])
def test_index_finds_edited_real_photos(real_pixels: list[np.ndarray], how: str) -> None:
    index = ProtectedIndex()
    for i, px in enumerate(real_pixels[:6]):
        index.add(f"photo{i}", compute_signature(px))
    for i in (0, 3):
        hits = index.search(_edit(real_pixels[i], how))
        assert hits and hits[0].match and hits[0].photo == f"photo{i}", (how, hits[:2])
    for stranger in real_pixels[6:8]:
        assert not any(h.match for h in index.search(query_features(stranger)))


def test_index_rejects_duplicate_ids(photos: list[np.ndarray]) -> None:
    index = ProtectedIndex()
    index.add("a", compute_signature(photos[0]))
    with pytest.raises(ValueError, match="already"):
        index.add("a", compute_signature(photos[1]))


def test_mirrored_query_verifies_a_flipped_photo(photos: list[np.ndarray]) -> None:
    sig = compute_signature(photos[3])
    flipped = query_features(np.ascontiguousarray(photos[3][:, ::-1]))
    assert not verify(flipped, sig).match  # ORB descriptors are not mirror-invariant
    mirror = flipped.mirrored()
    assert mirror is not None and verify(mirror, sig).match


def test_region_queries_focus_on_the_photo_in_a_screenshot(photos: list[np.ndarray]) -> None:
    sig = compute_signature(photos[4])
    page = np.asarray(_edit(photos[4], "screenshot"))
    regions = query_features(page).regions()
    assert regions, "the photo was not found as a region"
    best = max(verify(r, sig).score for r in regions)
    assert best >= MIN_INLIERS and best > verify(page, sig).score


def test_flipped_query_without_pixels_uses_precomputed_mirror_features(
    photos: list[np.ndarray],
) -> None:
    """Features only (no hashes, no pixels), as a query arrives from a hashing worker."""
    index = ProtectedIndex()
    for i, px in enumerate(photos[:4]):
        index.add(f"p{i}", compute_signature(px))
    full = query_features(np.ascontiguousarray(photos[2][:, ::-1]))
    mirror = full.mirrored()
    assert mirror is not None
    plain = QueryFeatures([], keypoints=full.keypoints, descriptors=full.descriptors)
    assert not any(h.match for h in index.search(plain))
    travelled = QueryFeatures(
        [],
        keypoints=full.keypoints,
        descriptors=full.descriptors,
        mirror=QueryFeatures([], keypoints=mirror.keypoints, descriptors=mirror.descriptors),
    )
    hits = index.search(travelled)
    assert hits and hits[0].match and hits[0].photo == "p2"
    assert hits[0].inliers >= MIN_INLIERS


def _grid(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    xs, ys = np.meshgrid(np.linspace(10, w - 10, 6), np.linspace(10, h - 10, 6))
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def test_aligned_check_tells_a_copy_from_another_photo_of_the_subject(
    real_pixels: list[np.ndarray],
) -> None:
    """The query warped onto the photo: a copy gives nearly the registered view hashes; another
    photo that merely contains the same subject (the photo's centre pasted in) does not."""
    photo = np.asarray(Image.fromarray(real_pixels[0]).resize((512, 341)))
    other = np.asarray(Image.fromarray(real_pixels[1]).resize((512, 341)))
    sig = compute_signature(photo)
    assert sig.size == (512, 341)
    points = _grid(sig.size)  # same frame on both sides: the identity transform
    copy = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(1)))
    copy_distance = aligned_distance(check_image(copy), sig, points, points)
    assert copy_distance is not None and copy_distance <= 24
    subject = other.copy()
    subject[120:220, 190:320] = photo[120:220, 190:320]
    subject_distance = aligned_distance(check_image(subject), sig, points, points)
    assert subject_distance is not None and subject_distance > ALIGNED_REJECT
    # The query mapped onto a corner of the photo covers none of its views.
    corner = points * 0.3
    assert aligned_distance(check_image(copy), sig, points, corner) == NOT_COVERED
    # Nothing to compare: a signature without its frame, or a query without its check image.
    assert aligned_distance(None, sig, points, points) is None
    old = ProtectedSignature(sig.pdq, sig.keypoints, sig.descriptors)
    assert aligned_distance(check_image(copy), old, points, points) is None
    assert ProtectedSignature.from_json(old.to_json()).size is None


@pytest.mark.parametrize("w, h", [(512, 320), (288, 512), (512, 512), (512, 470)])
def test_square_views_sit_on_the_squares_a_cell_is_cropped_to(w: int, h: int) -> None:
    """Each square view is a square of SQUARE_SIDE of the short side, centred across it, inside
    the frame; the one at each end lies inside the square crop flush with that end, the centre
    one inside the centred square crop."""
    short, long = min(w, h), max(w, h)
    crops = {"sqa": 0, "sqc": (long - short) // 2, "sqb": long - short}
    for label, offset in crops.items():
        rows, cols = view_slices(label, w, h)
        along, across = (cols, rows) if w >= h else (rows, cols)
        assert abs((along.stop - along.start) - SQUARE_SIDE * short) <= 1
        assert abs((across.stop - across.start) - SQUARE_SIDE * short) <= 1
        assert abs(across.start - (short - across.stop)) <= 1  # centred across
        assert offset <= along.start and along.stop <= offset + short, label
        assert all(0.0 <= v <= 1.0 for v in square_box(label, w, h))
    # A portrait frame's squares are a landscape frame's, turned.
    x0, y0, x1, y1 = square_box("sqa", 320, 512)
    assert (y0, x0, y1, x1) == square_box("sqa", 512, 320)


def test_square_views_let_the_aligned_check_compare_a_square_cell_of_a_wide_photo(
    real_pixels: list[np.ndarray],
) -> None:
    """A grid cell square-cropped from a 16:10 photo covers none of its searched views, so
    without the squares the aligned check refuses it (NOT_COVERED) however good the copy;
    with them it measures the copy close, and another photo of the subject still far."""
    photo = np.asarray(Image.fromarray(real_pixels[0]).resize((512, 320)))
    other = np.asarray(Image.fromarray(real_pixels[1]).resize((512, 320)))
    sig = compute_signature(photo)
    without = ProtectedSignature(sig.pdq, sig.keypoints, sig.descriptors, sig.size)
    points = _grid(sig.size)
    f = work_factor(320, 320, QUERY_SIDE)
    for offset in (0, 40, 96, 150, 192):  # flush with the start, off-centre, centred, the end
        dst = points[(points[:, 0] >= offset + 5) & (points[:, 0] <= offset + 315)]
        src = (dst - np.float32([offset, 0])) * f
        cell = np.ascontiguousarray(photo[:, offset : offset + 320])
        copy_distance = aligned_distance(check_image(cell), sig, src, dst)
        assert copy_distance is not None and copy_distance <= 32, (offset, copy_distance)
        assert aligned_distance(check_image(cell), without, src, dst) == NOT_COVERED
        subject = np.ascontiguousarray(other[:, offset : offset + 320])
        subject[110:210, 100:220] = cell[110:210, 100:220]
        far = aligned_distance(check_image(subject), sig, src, dst)
        assert far is not None and far > ALIGNED_REJECT, (offset, far)
    # The squares travel with the signature; one stored before them has none.
    assert ProtectedSignature.from_json(sig.to_json()).squares == sig.squares
    assert ProtectedSignature.from_json(without.to_json()).squares == []


def test_decide_with_the_aligned_check() -> None:
    assert not decide(256, MIN_INLIERS, aligned=ALIGNED_REJECT + 1)
    assert decide(256, MIN_INLIERS, aligned=ALIGNED_REJECT)
    assert decide(256, STRONG_INLIERS, aligned=128)  # overlays (stickers) on a strong match
    assert decide(PDQ_CLOSE, 0, aligned=128)  # a close PDQ hit stands on its own
    assert not decide(PDQ_CLOSE + 1, PDQ_SUPPORT + 5, aligned=ALIGNED_REJECT + 1)


def test_compact_query_features_carry_the_check_image(real_pixels: list[np.ndarray]) -> None:
    from childguard.pipeline import compact_features
    from childguard.robust.query import query_hashes

    px = real_pixels[2]
    features = compact_features(px, query_hashes(px))
    assert features.check is not None and max(features.check.grey.shape) <= CHECK_SIDE
    mirror = features.mirrored()
    assert mirror is not None and mirror.check is not None
    assert np.array_equal(mirror.check.grey, features.check.grey[:, ::-1])


def _watermarked_repost(photo: np.ndarray) -> np.ndarray:
    """Cropped, shrunk, and a line of white outlined text across it (the repost chain's look)."""
    img = Image.fromarray(photo[30:, 20:]).resize((348, 342))
    ImageDraw.Draw(img).text(
        (5, 250),
        "@user1234 repost @user",
        font=ImageFont.load_default(size=30),
        fill=(255, 255, 255),
        stroke_width=1,
        stroke_fill=(0, 0, 0),
    )
    return np.asarray(img)


def test_query_keypoints_are_topped_up_where_a_watermark_took_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo = star_sky(1)
    signature = compute_signature(photo)
    query = _watermarked_repost(photo)
    assert verify(query_features(query), signature).match
    # Without the top-up (one cell: the text's corners fill its quota) the stars are lost.
    monkeypatch.setattr(orb, "_TOPUP_CELLS", 1)
    assert not verify(query_features(query), signature).match


def test_top_up_only_adds_low_threshold_corners_to_thin_cells() -> None:
    query = _watermarked_repost(star_sky(2))
    points, desc = orb_features(query, query=True)
    # The plain reference: the usual detection alone, strongest first.
    grey = orb._work(query, orb.QUERY_SIDE)
    kps, usual_desc = orb._ORB_QUERY.detectAndCompute(grey, None)
    n = len(kps)
    assert n >= orb._FEW_KEYPOINTS and len(points) > n
    order = np.argsort([-k.response for k in kps], kind="stable")
    assert np.array_equal(points[:n], np.array([k.pt for k in kps], np.float32)[order])
    assert np.array_equal(desc[:n], usual_desc[order])
    h, w = grey.shape
    cells = orb._TOPUP_CELLS**2
    quota = orb._QUERY_FEATURES // cells
    usual = np.bincount(orb._grid_cells(points[:n], w, h), minlength=cells)
    added = np.bincount(orb._grid_cells(points[n:], w, h), minlength=cells)
    assert (added[usual >= quota] == 0).all()
    assert (usual + added <= np.maximum(usual, quota)).all()


def test_hashing_a_grid_with_features_detects_the_grid_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pipeline hands the cells query hashing found on to the features (`query_views`), so
    the features' own grid detection never runs, and the features still hold every cell."""
    import io

    from tests.robust.conftest import synthetic_photo
    from tests.robust.grids import make_grid

    from childguard.pipeline import hash_bytes
    from childguard.robust import query_features as query_features_module

    pixels, _ = make_grid(3, gutter=12, photos=[synthetic_photo(700 + i) for i in range(9)])
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")

    def refuse(_pixels: np.ndarray) -> None:
        raise AssertionError("the grid was detected again")

    monkeypatch.setattr(query_features_module, "detect_grid", refuse)
    record = hash_bytes(out.getvalue(), robust=True, features=True)
    assert record.error is None and record.features is not None
    assert len(record.features.regions()) == 9


@pytest.mark.parametrize(
    "frame,photo,fits",
    [
        ((512, 384), (4000, 3000), True),
        ((512, 385), (4000, 3000), True),  # a side rounded
        ((375, 375), (4000, 3000), False),  # each side reduced apart
        ((384, 512), (4000, 3000), False),  # turned
        ((3000, 4000), (384, 512), True),  # portrait
        ((512, 3), (2000, 13), True),  # a thin photo, its short side rounded down
        ((512, 1), (5000, 2), True),  # thinner than a pixel once reduced: one pixel kept
        ((512, 8), (2000, 13), False),  # thin, and stretched
        (None, (4000, 3000), True),  # made before frames were recorded
        ((512, 384), (0, 0), True),  # photo size unknown
    ],
)
def test_a_frame_fits_its_photo_when_it_has_the_photos_aspect(
    frame: tuple[int, int] | None, photo: tuple[int, int], fits: bool
) -> None:
    assert frame_fits(frame, *photo) is fits
    stored = {"size": list(frame)} if frame else {}
    assert stored_frame(stored) == frame
    assert stored_frame({"size": ["x", 1]}) is None and stored_frame("junk") is None
