"""Corpus preparation rules: what counts as a photo, deduplication, the split."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from bench.robustness.corpus import WHEELS, Photo, _dedupe_and_split, iter_sources, prepare_photo
from PIL import Image


def _encoded(mode: str, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def test_prepare_keeps_photos_and_drops_drawings_and_icons() -> None:
    img = prepare_photo(_encoded("RGB", (1200, 800)), "general")
    assert img is not None and max(img.size) == 512
    assert prepare_photo(_encoded("RGBA", (800, 600)), "general") is None
    assert prepare_photo(_encoded("RGB", (150, 150)), "general") is None
    assert prepare_photo(_encoded("RGB", (150, 150)), "astro") is not None


def _p(
    i: int, pdq: str, sha: str, size: tuple[int, int] = (400, 300), group: str = "general"
) -> Photo:
    return Photo(
        id=f"p{i}",
        group=group,
        package="pkg",
        version="1",
        path=f"f{i}",
        licence="x",
        source_sha256=sha,
        prepared_sha256="y",
        width=size[0],
        height=size[1],
        pdq=pdq,
        quality=90,
    )


def test_dedupe_and_split() -> None:
    rng = np.random.default_rng(1)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(10)]
    photos = [_p(i, h, f"sha{i}") for i, h in enumerate(hashes)]
    near = bytearray(bytes.fromhex(hashes[0]))
    near[0] ^= 0b111  # 3 bits away, same aspect ratio, smaller: a resized copy
    photos.append(_p(10, bytes(near).hex(), "sha10", (200, 150)))
    photos.append(_p(11, hashes[1], "sha1", (100, 75)))  # exact copy of p1's bytes
    photos.append(_p(12, bytes(near).hex(), "sha12", (300, 400)))  # close hash, other shape: kept
    _dedupe_and_split(photos, seed=5)
    by_id = {p.id: p.split for p in photos}
    assert by_id["p10"] == "duplicate" and by_id["p11"] == "duplicate"
    assert by_id["p0"] != "duplicate" and by_id["p12"] != "duplicate"
    kept = [p for p in photos if p.split != "duplicate"]
    assert sum(p.split == "registered" for p in kept) == len(kept) // 2
    # Deterministic for a seed.
    again = [_p(int(p.id[1:]), p.pdq, p.source_sha256, (p.width, p.height)) for p in photos]
    _dedupe_and_split(again, seed=5)
    assert {p.id: p.split for p in again} == by_id


def test_wheel_samples_are_read_from_the_zip_with_their_own_licence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "sample-1.0-py3-none-any.whl"
    photo = _encoded("RGB", (300, 200))
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/data/cat.png", photo)
        archive.writestr("pkg/data/drawing.png", b"not wanted")
    wanted = {"pkg/data/cat.png": ("general", "CC0-1.0 (docstring)")}
    monkeypatch.setitem(WHEELS, "sample", ("1.0", wanted))
    (tmp_path / "pkgs").mkdir()
    found = [(pkg, s) for pkg, s in iter_sources(tmp_path, {"sample": wheel}) if pkg == "sample"]
    assert [(s.group, s.path, s.licence) for _, s in found] == [
        ("general", "pkg/data/cat.png", "CC0-1.0 (docstring)")
    ]
    assert found[0][1].load() == photo

    monkeypatch.setitem(WHEELS, "sample", ("1.0", {"pkg/data/gone.png": ("general", "x")}))
    with pytest.raises(RuntimeError, match=r"lacks pkg/data/gone\.png"):
        list(iter_sources(tmp_path, {"sample": wheel}))
