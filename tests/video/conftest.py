"""Video fixtures: clips made once per test session with FFmpeg from the demo photos
(bench/video_corpus.py), their variants, and the hostile files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is importable from the repository root
    sys.path.insert(0, str(ROOT))

from bench.video_corpus import Corpus, demo_photos, ffmpeg_available  # noqa: E402


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    if not ffmpeg_available():
        pytest.fail("ffmpeg is not installed (make installs Debian's ffmpeg)", pytrace=False)
    from childguard.media_video import stop_worker

    yield Corpus(tmp_path_factory.mktemp("videos"))
    stop_worker()


@pytest.fixture(scope="session")
def slideshow(corpus: Corpus) -> Path:
    """6 s: three demo photos, 2 s each, 320x240."""
    return corpus.slideshow(demo_photos()[:3])


@pytest.fixture(scope="session")
def pan(corpus: Corpus) -> Path:
    """6 s: a slow zoom and pan over the fourth demo photo (in no slideshow)."""
    return corpus.pan(demo_photos()[3])


@pytest.fixture(scope="session")
def hostile(corpus: Corpus) -> dict[str, Path]:
    return corpus.hostile()
