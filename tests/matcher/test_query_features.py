"""The features a hashing worker computes travel without pixels but keep the mirror and
region passes the protected verification uses (flipped copies, screenshots, collages)."""

from __future__ import annotations

import pickle
from pathlib import Path

from PIL import Image, ImageDraw

from childguard.pipeline import hash_file

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"


def test_worker_features_carry_mirror_and_regions(tmp_path: Path) -> None:
    photo = Image.open(CONF / "dih_bridge-1-original.jpg").convert("RGB").resize((640, 402))
    page = Image.new("RGB", (1280, 1000), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    for y in range(40, 300, 24):
        draw.text((60, y), "a page with some text around a posted photo", fill=(20, 20, 20))
    page.paste(photo, (320, 420))
    shot = tmp_path / "screenshot.png"
    page.save(shot)

    record = hash_file(shot, robust=True, features=True)
    features = record.features
    assert features is not None
    restored = pickle.loads(pickle.dumps(features))  # what crosses the process pool
    mirror = restored.mirrored()
    assert mirror is not None and len(mirror.descriptors) > 0
    regions = restored.regions()
    assert regions, "the pasted photo should be found as a region of the screenshot"
    assert all(len(r.descriptors) > 0 for r in regions)
    plain = hash_file(shot, robust=True)
    assert plain.features is None
