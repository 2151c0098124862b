"""Protected photos verified by their features inside the matcher (real store, real photos):
off-centre crops, tilted copies and screenshots that no PDQ view matches are found through
ORB verification and reported against the organisation's bank; unrelated photos and
known-abuse banks are unaffected; features are only computed when a protected bank needs them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from childguard.banks import EntryRecord, create_bank, import_records, update_bank
from childguard.matcher import Matcher
from childguard.pipeline import hash_bytes, hash_file
from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.scan.job import ScanOptions, run_scan
from childguard.store.db import Store

# Photos with enough texture for ORB (a photo of a smooth wall can be verified by nothing).
REGISTERED = ("Bridge", "EveningGlow", "TwoWings", "friends")
UNRELATED = ("Dragonfly", "Dune", "LadyBird", "Wood")


def jpeg(im: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def off_centre_crop(im: Image.Image) -> Image.Image:
    """Keeps 70% x 75% of the photo, anchored at the bottom right."""
    w, h = im.size
    return im.crop((int(0.3 * w), int(0.25 * h), w, h))


def tilted(im: Image.Image) -> Image.Image:
    return im.rotate(10, expand=True, resample=Image.Resampling.BILINEAR)


def screenshot(im: Image.Image) -> Image.Image:
    """The photo, slightly reduced, on a page with a header bar and lines of text."""
    w, h = im.size
    page = Image.new("RGB", (int(w * 1.6), int(h * 1.9)), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, page.width, 60), fill=(40, 60, 120))
    for y in range(100, page.height - 20, 28):
        draw.text((20, y), "Lorem ipsum dolor sit amet, 123 comments, share", fill=(20, 20, 20))
    page.paste(im.resize((int(w * 0.9), int(h * 0.9))), (int(w * 0.35), int(h * 0.4)))
    return page


@pytest.fixture(scope="module")
def photo_sets(real_photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four registered photos and four unrelated ones, reduced to 1024 px (fast to hash)."""
    root = tmp_path_factory.mktemp("protected-photos")
    album, others = root / "album", root / "others"
    album.mkdir()
    others.mkdir()
    by_stem = {p.stem.split("_by_")[0]: p for p in real_photos}
    for folder, stems in ((album, REGISTERED), (others, UNRELATED)):
        chosen = [by_stem[stem] for stem in stems]
        for src in chosen:
            im = Image.open(src).convert("RGB")
            im.thumbnail((1024, 1024))
            im.save(folder / f"{src.stem}.jpg", quality=90)
    return {"album": album, "others": sorted(others.glob("*.jpg"))}


def register(store: Store, album: Path, count: int = 4) -> dict[str, int]:
    with store.session() as s:
        org = create_organisation(s, "Scouts Example")
        report = register_photos(s, album, org)
        assert not report.failed and len(report.registered) == count
        return {p.file_name: p.id for p in report.registered}


def test_verification_finds_what_pdq_views_miss(
    store: Store, tmp_path: Path, photo_sets: dict
) -> None:
    ids = register(store, photo_sets["album"])
    matcher = Matcher(store, index_base=tmp_path)
    assert matcher.needs_features
    verified_only = 0
    for name, photo_id in ids.items():
        original = Image.open(photo_sets["album"] / name)
        for transform in (off_centre_crop, tilted, screenshot):
            data = jpeg(transform(original))
            without = matcher.match(hash_bytes(data, robust=True))
            record = hash_bytes(data, robust=True, features=True)
            assert record.features is not None and len(record.features.descriptors) > 0
            outcome = matcher.match(record)
            assert outcome.matched, f"{name} {transform.__name__} not found"
            best = outcome.matches[0]
            assert best.bank_kind == "protected"
            assert best.bank_name == matcher._banks[best.bank_id].name
            assert best.organisation == "Scouts Example"
            assert (best.metadata or {}).get("photo_id") == photo_id
            if transform is off_centre_crop:
                # An off-centre 30% crop defeats every PDQ view...
                assert not without.matched, (name, without.matches[0].variant)
            elif transform is tilted and without.matched:
                # ... a 10 degree tilt every PDQ view but the one that undoes the tilt ...
                assert without.matches[0].variant == "deskewed", without.matches[0]
            if not without.matched:
                # ... and verification is what finds it.
                verified_only += 1
                assert best.variant.startswith("verified:")
                inliers = int(best.variant.split(":")[1].split()[0])
                assert inliers >= 24
                assert best.metadata is not None and best.metadata["verified_inliers"] >= 24
                assert best.distance > best.threshold  # no PDQ view was close enough
    assert verified_only >= len(ids)  # every crop at least


def test_unrelated_photos_do_not_match(store: Store, tmp_path: Path, photo_sets: dict) -> None:
    register(store, photo_sets["album"])
    matcher = Matcher(store, index_base=tmp_path)
    for path in photo_sets["others"]:
        for data in (path.read_bytes(), jpeg(off_centre_crop(Image.open(path)))):
            outcome = matcher.match(hash_bytes(data, robust=True, features=True))
            assert not outcome.matched, [m.variant for m in outcome.matches]


def test_known_abuse_banks_are_not_verified(store: Store, tmp_path: Path, photo_sets: dict) -> None:
    register(store, photo_sets["album"])
    first = sorted(photo_sets["album"].glob("*.jpg"))[0]
    pdq = hash_file(first).value("pdq")
    assert pdq is not None
    create_bank(store, "hotline-list", "known-abuse", actor="t")
    import_records(store, "hotline-list", [EntryRecord(signal_type="pdq", value=pdq)], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    # The untouched photo matches both banks; the crop only the protected one (verified).
    whole = matcher.match(hash_file(first, robust=True, features=True))
    assert {m.bank_kind for m in whole.matches} == {"known-abuse", "protected"}
    crop = jpeg(off_centre_crop(Image.open(first)))
    outcome = matcher.match(hash_bytes(crop, robust=True, features=True))
    assert [m.bank_kind for m in outcome.matches] == ["protected"]
    # A disabled protected bank is not verified against either.
    org_bank = outcome.matches[0].bank_name
    update_bank(store, org_bank, enabled=False, actor="t")
    matcher.refresh()
    assert not matcher.needs_features
    assert not matcher.match(hash_bytes(crop, robust=True, features=True)).matched


def test_features_only_when_protected_features_exist(
    store: Store, tmp_path: Path, photo_sets: dict
) -> None:
    album = photo_sets["album"]
    create_bank(store, "hotline-list", "known-abuse", actor="t")
    seen: list[object] = []
    matcher = Matcher(store, index_base=tmp_path / "idx")
    assert not matcher.needs_features
    options = ScanOptions(roots=[album], report_dir=tmp_path / "scan1", workers=1)
    run_scan(options, matcher, on_record=lambda r, o: seen.append(r.features))
    assert len(seen) == 4 and all(f is None for f in seen)

    register(store, album)
    matcher.refresh()
    assert matcher.needs_features
    seen.clear()
    crops = tmp_path / "reposts"
    crops.mkdir()
    for path in sorted(album.glob("*.jpg"))[:2]:
        (crops / path.name).write_bytes(jpeg(off_centre_crop(Image.open(path))))
    matched: list[str] = []
    options = ScanOptions(roots=[crops], report_dir=tmp_path / "scan2", workers=1)
    summary = run_scan(
        options,
        matcher,
        on_record=lambda r, o: (
            seen.append(r.features),
            matched.extend(m.variant for m in o.matches),
        ),
    )
    assert len(seen) == 2 and all(f is not None for f in seen)
    assert summary.matched_files == 2
    assert all(v.startswith("verified:") for v in matched)
    # --plain: no robust views, no features.
    seen.clear()
    plain = ScanOptions(roots=[crops], report_dir=tmp_path / "scan3", workers=1, robust=False)
    summary = run_scan(plain, matcher, on_record=lambda r, o: seen.append(r.features))
    assert summary.matched_files == 0
    assert seen == [None, None]


def _grid(photos: list[Image.Image], n: int, side: int = 1080) -> Image.Image:
    """An n x n grid of square crops of `photos` without gutters, `side` px a side, as a
    harvesting site posts them."""
    cell = side // n
    canvas = Image.new("RGB", (n * cell, n * cell))
    for k, im in enumerate(photos[: n * n]):
        s = min(im.size)
        left, top = (im.width - s) // 2, (im.height - s) // 2
        square = im.crop((left, top, left + s, top + s)).resize((cell, cell))
        canvas.paste(square, ((k % n) * cell, (k // n) * cell))
    return canvas


def test_photos_registered_from_large_originals_are_found_in_grids(
    store: Store, tmp_path: Path, real_photos: list[Path]
) -> None:
    """Registered from their originals (4 to 16 megapixels, 4:3 to 16:9) and re-posted
    square-cropped into one cell of a 1,080-px 3x3 grid among unrelated photos: each is found,
    the grid's bytes going the hashing workers' way. Both sides work on the photos' pictures
    with their aspect ratios kept (`Content.picture`); on the fast path's pixels, whose sides
    are reduced apart, the cells' geometry no longer fits the registered photos'."""
    by_stem = {p.stem.split("_by_")[0]: p for p in real_photos}
    album = tmp_path / "originals"
    album.mkdir()
    for stem in REGISTERED[:3]:
        (album / by_stem[stem].name).write_bytes(by_stem[stem].read_bytes())
    ids = register(store, album, count=3)
    matcher = Matcher(store, index_base=tmp_path / "idx")
    fillers = [Image.open(by_stem[stem]).convert("RGB") for stem in UNRELATED]
    fillers = (fillers * 3)[:8]
    for slot, (name, photo_id) in enumerate(sorted(ids.items())):
        photo = Image.open(album / name).convert("RGB")
        assert min(photo.size) >= 1500, name
        cells = [*fillers[: 2 + slot * 2], photo, *fillers[2 + slot * 2 :]]
        outcome = matcher.match(hash_bytes(jpeg(_grid(cells, 3)), robust=True, features=True))
        assert outcome.matched, f"{name} not found in the grid"
        assert (outcome.matches[0].metadata or {}).get("photo_id") == photo_id, outcome.matches
