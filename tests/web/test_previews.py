"""The review's previews, made from media bytes: blurred and greyscale at the analyst's level
until asked clear, and a video as a strip of blurred frames."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from childguard.hotline.previews import STRIP_FRAMES, preview_png
from childguard.hotline.review import PreviewPreferences
from childguard.media_video import stop_worker

from .conftest import sharp_picture
from .test_review_pages import high_frequency_energy


def _picture(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_an_image_is_blurred_more_at_a_higher_level_and_greyscale_by_choice() -> None:
    data = sharp_picture(5)
    clear, strip = preview_png(data, PreviewPreferences(), clear=True)
    assert not strip
    assert np.array_equal(_picture(clear), _picture(data))
    energies = [
        high_frequency_energy(preview_png(data, PreviewPreferences(blur, True))[0])
        for blur in (0, 2, 8)
    ]
    assert energies[0] > 10 * energies[1] > 10 * energies[2] > 0
    coloured = _picture(preview_png(data, PreviewPreferences(4, False))[0])
    assert np.abs(coloured[..., 0] - coloured[..., 1]).max() > 10
    grey = _picture(preview_png(data, PreviewPreferences(4, True))[0])
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1


def test_a_video_is_a_strip_of_blurred_frames(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is not installed (make installs Debian's ffmpeg)", pytrace=False)
    clip = tmp_path / "pattern.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            "-an",
            str(clip),
        ],
        check=True,
    )
    try:
        blurred, strip = preview_png(clip.read_bytes(), PreviewPreferences())
        clear, _ = preview_png(clip.read_bytes(), PreviewPreferences(), clear=True)
    finally:
        stop_worker()
    assert strip
    shown = Image.open(io.BytesIO(clear))
    assert shown.width > STRIP_FRAMES * 150 and shown.height <= 200  # frames side by side
    assert high_frequency_energy(blurred) < 0.1 * high_frequency_energy(clear)


@pytest.mark.parametrize("size", [(2400, 1800), (1200, 2000), (4000, 1000)])
def test_a_large_images_preview_keeps_its_shape(size: tuple[int, int]) -> None:
    """A large photo's preview is at most PREVIEW_SIDE on its longest side with the photo's
    aspect ratio, clear or blurred (not the near-square pixels PDQ's fast path makes)."""
    from childguard.hotline.previews import PREVIEW_SIDE

    w, h = size
    small = Image.open(io.BytesIO(sharp_picture(6))).convert("RGB")
    buffer = io.BytesIO()
    small.resize(size).save(buffer, "JPEG", quality=90)
    for clear in (True, False):
        png, _ = preview_png(buffer.getvalue(), PreviewPreferences(), clear=clear)
        shown = Image.open(io.BytesIO(png))
        assert max(shown.size) == PREVIEW_SIDE
        assert abs(shown.width / shown.height - w / h) <= 0.01 * (w / h), shown.size
