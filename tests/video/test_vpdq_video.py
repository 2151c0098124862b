"""VpdqSignal on real (synthetic) videos: formats, variants, animated GIFs, speed parity."""

from __future__ import annotations

from pathlib import Path

import pytest
import vpdq
from bench.video_corpus import Corpus

from childguard.media import BYTES, PHOTO, VIDEO, Content
from childguard.signals.vpdq import VpdqSignal, parse_frames


def hash_file(path: Path) -> str:
    value = VpdqSignal.hash_content(Content(path.read_bytes(), origin=str(path), path=path))
    assert value is not None
    return value.value


def test_value_is_canonical_and_keyed_by_digest(slideshow: Path) -> None:
    value = hash_file(slideshow)
    assert VpdqSignal.validate(value) == value
    frames = parse_frames(value)
    assert 5 <= len(frames) <= 7  # one a second of a 6 s clip
    assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)
    key = VpdqSignal.store_key(value)
    assert len(key) == 64 and int(key, 16) >= 0


def test_same_frames_as_vpdq_itself(slideshow: Path) -> None:
    ours = parse_frames(hash_file(slideshow))
    theirs = vpdq.computeHash(str(slideshow))
    assert [f.pdq_hex for f in ours] == [f.hex for f in theirs]
    assert [f.quality for f in ours] == [f.quality for f in theirs]


def test_bytes_without_a_path_hash_through_a_temporary_file(slideshow: Path) -> None:
    value = VpdqSignal.hash_content(Content(slideshow.read_bytes()))
    assert value is not None and value.value == hash_file(slideshow)


@pytest.mark.parametrize(
    "kind", ["reencoded", "resized", "trimmed", "mpeg4-avi", "mkv", "mov", "gif"]
)
def test_variants_match_the_original(corpus: Corpus, slideshow: Path, kind: str) -> None:
    original = hash_file(slideshow)
    copy = hash_file(corpus.variant(slideshow, kind))
    result = VpdqSignal.compare(copy, original)
    assert result.match, result
    assert result.detail is not None and result.detail["query_match_percent"] >= 80


def test_a_clip_of_other_photos_does_not_match(slideshow: Path, pan: Path) -> None:
    result = VpdqSignal.compare(hash_file(pan), hash_file(slideshow))
    assert not result.match
    assert result.detail == {"query_match_percent": 0.0, "bank_match_percent": 0.0}


def test_trimmed_copy_matches_part_of_the_bank_video(corpus: Corpus, pan: Path) -> None:
    result = VpdqSignal.compare(hash_file(corpus.variant(pan, "trimmed")), hash_file(pan))
    assert result.match
    assert result.detail is not None and result.detail["bank_match_percent"] < 100


def test_animated_gif_is_photo_and_video(corpus: Corpus, slideshow: Path) -> None:
    gif = corpus.variant(slideshow, "gif")
    content = Content(gif.read_bytes())
    assert content.content_types == {BYTES, PHOTO, VIDEO}
    assert content.content_type == PHOTO
    assert VpdqSignal.hash_content(content) is not None


def test_still_images_are_not_videos() -> None:
    from bench.video_corpus import ASSETS

    for name in ("aqua.jpg", "synthetic-disc.png"):
        content = Content((ASSETS / name).read_bytes(), origin=name)
        assert VIDEO not in content.content_types
        assert VpdqSignal.hash_content(content) is None


@pytest.mark.parametrize("kind", ["mkv", "mov", "mpeg4-avi", "reencoded"])
def test_containers_sniff_as_video(corpus: Corpus, slideshow: Path, kind: str) -> None:
    content = Content(corpus.variant(slideshow, kind).read_bytes())
    assert VIDEO in content.content_types
