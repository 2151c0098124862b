"""Bad video never hangs or crashes the batch: each hostile file is a MediaError with a reason,
within the limits on seconds, frame size, frames, memory and wall-clock time."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from childguard.errors import MediaError
from childguard.media import DEFAULT_LIMITS, Content, Limits
from childguard.media_video import stop_worker
from childguard.signals.vpdq import VpdqSignal

EXPECTED = {
    "zero-length": "empty",
    "not-a-video": "not-a-video",
    "truncated": "truncated",
    "corrupt": "corrupt",
    "huge-resolution": "too-many-pixels",
    "hours-long": "too-long",
}


def hash_path(path: Path, limits: Limits = DEFAULT_LIMITS) -> object:
    return VpdqSignal.hash_content(
        Content(path.read_bytes(), origin=path.name, path=path, limits=limits)
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file_is_a_media_error(hostile: dict[str, Path], name: str) -> None:
    started = time.monotonic()
    with pytest.raises(MediaError) as err:
        hash_path(hostile[name])
    assert err.value.reason == EXPECTED[name], err.value
    assert err.value.message
    assert time.monotonic() - started < 30


def test_frame_limit(slideshow: Path) -> None:
    with pytest.raises(MediaError) as err:
        hash_path(slideshow, dataclasses.replace(DEFAULT_LIMITS, max_video_frames=50))
    assert err.value.reason == "too-many-frames"


def test_timeout_kills_the_decoder_and_the_next_video_still_hashes(slideshow: Path) -> None:
    with pytest.raises(MediaError) as err:
        hash_path(slideshow, dataclasses.replace(DEFAULT_LIMITS, video_timeout=0.001))
    assert err.value.reason == "timeout"
    assert hash_path(slideshow) is not None


def test_memory_limit(corpus: object, tmp_path: Path) -> None:
    from bench.video_corpus import ffmpeg

    big = tmp_path / "big.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=1280x720:r=10:d=2", "-c:v", "libx264",
           "-preset", "ultrafast", str(big))  # fmt: skip
    tight = dataclasses.replace(DEFAULT_LIMITS, max_video_memory=8 * 1024 * 1024)
    # The limit is the address space a decode may *add*: a worker that decoded other videos
    # keeps their freed memory mapped, and a decode may reuse it. Start from a fresh worker.
    stop_worker()
    with pytest.raises(MediaError) as err:
        hash_path(big, tight)
    assert err.value.reason in ("too-much-memory", "decoder-crashed"), err.value
    assert "memory" in err.value.message
    assert hash_path(big) is not None  # the default limits leave room


def test_a_bad_file_does_not_stop_the_batch(hostile: dict[str, Path], slideshow: Path) -> None:
    results = []
    for path in [*hostile.values(), slideshow]:
        try:
            results.append(hash_path(path))
        except MediaError as exc:
            results.append(exc.reason)
    assert results[-1] is not None and not isinstance(results[-1], str)
    assert sorted(r for r in results if isinstance(r, str)) == sorted(EXPECTED.values())
