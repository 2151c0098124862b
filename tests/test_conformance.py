"""PDQ agrees with Meta's reference, and the fast path agrees with the full decode.

Conformance data: shared/conformance/pdq/ beside the repository checkout (images and
the reference's expected hashes). Agreement: the real photos from `make photos`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from childguard.media import load_image
from childguard.pipeline import hash_file
from childguard.signals.pdq import PdqSignal, bits_to_hex, pdq_from_pixels, pdq_of_tiles

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pdq"


def _expected() -> list[tuple[Path, str]]:
    table = CONFORMANCE / "expected.csv"
    if not table.exists():
        pytest.fail(f"PDQ conformance data missing: {table} (shared/ must sit beside the repo)")
    with table.open(newline="") as fh:
        return [
            (CONFORMANCE / "images" / row["image"], row["expected_pdq"])
            for row in csv.DictReader(fh)
        ]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "full-decode"])
def test_pdq_matches_the_reference_hashes(fast: bool) -> None:
    expected = _expected()
    assert len(expected) >= 30
    distances = {}
    for image, want in expected:
        got, _ = pdq_from_pixels(load_image(image, fast=fast).pixels)
        distances[image.name] = PdqSignal.distance(got, want)
    worst = max(distances, key=lambda k: distances[k])
    mean = sum(distances.values()) / len(distances)
    assert distances[worst] <= 16, f"{worst} is {distances[worst]} bits from the reference"
    assert mean <= 6, f"mean distance {mean:.2f} over {len(distances)} images"


def test_hash_records_carry_the_conformant_hash() -> None:
    image, want = _expected()[0]
    record = hash_file(image)
    assert record.value("pdq") is not None and PdqSignal.distance(record.value("pdq"), want) <= 16


@pytest.mark.slow
def test_fast_path_agrees_with_full_decode_on_real_photos(real_photos: list[Path]) -> None:
    """Within Hamming 10 of the full-resolution hash on >= 99% of photos of quality >= 80."""
    checked, far = 0, []
    for photo in real_photos:
        full, quality = pdq_from_pixels(load_image(photo, fast=False).pixels)
        if quality < 80:
            continue
        fast = load_image(photo, fast=True)
        assert fast.reduced or min(fast.width, fast.height) <= 384
        reduced, _ = pdq_from_pixels(fast.pixels)
        checked += 1
        if PdqSignal.distance(full, reduced) > 10:
            far.append((photo.name, PdqSignal.distance(full, reduced)))
    assert checked >= 30
    assert len(far) <= 0.01 * checked, f"{len(far)}/{checked} photos beyond distance 10: {far}"


def test_tiles_hash_as_the_reference_hashes_each_tile() -> None:
    # The conformance images cut into 64 px tiles, plus flat and faint tiles (quality under 50).
    tiles = []
    for image, _ in _expected()[:12]:
        grey = np.asarray(Image.open(image).convert("L").resize((128, 128)))
        tiles += [grey[r : r + 64, c : c + 64] for r in (0, 64) for c in (0, 64)]
    rng = np.random.default_rng(3)
    tiles.append(np.full((64, 64), 90, np.uint8))
    tiles.append((rng.random((64, 64)) * 6 + 120).astype(np.uint8))
    stack = np.stack(tiles)
    packed, quality = pdq_of_tiles(stack)
    for k, tile in enumerate(stack):
        bits, ref_quality = pdqhash.compute(np.repeat(tile[:, :, None], 3, axis=2))
        assert int(quality[k]) == int(ref_quality), k
        if ref_quality > 0:  # a flat tile's bits are rounding noise, in the reference too
            assert packed[k].tobytes().hex() == bits_to_hex(bits), k
    assert quality.min() < 50 <= quality.max()


def test_tiles_refuse_other_shapes() -> None:
    with pytest.raises(ValueError, match="64, 64"):
        pdq_of_tiles(np.zeros((2, 32, 32), np.uint8))
