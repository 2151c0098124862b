"""vPDQ query views: a letterboxed or pillarboxed copy is searched with its bars cut off
(`unletterboxed`) and matches its bank clip through robust hashing and the matcher; a clip of
other photos still does not; a video without bars, and a photo, get no view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench.video_corpus import ASSETS, Corpus, ffmpeg

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.errors import MediaError
from childguard.matcher import Matcher
from childguard.media import Content
from childguard.media_video import Box, find_bars
from childguard.pipeline import hash_bytes
from childguard.signals.base import SignalValue
from childguard.signals.vpdq import UNLETTERBOXED, VpdqSignal
from childguard.store.db import Store


def vpdq_views(path: Path) -> list[tuple[str, str]]:
    record = hash_bytes(path.read_bytes(), path=str(path), robust=True)
    assert record.error is None, record.error
    return [(v.variant, v.value) for v in record.views or [] if v.signal_type == "vpdq"]


def bank_of(store: Store, clip: Path) -> None:
    value = hash_bytes(clip.read_bytes(), path=str(clip)).value("vpdq")
    assert value is not None
    create_bank(store, "known", "known-abuse", actor="t")
    import_records(
        store,
        "known",
        [EntryRecord(signal_type="vpdq", value=value, original_id="clip-1")],
        actor="t",
    )


@pytest.fixture(scope="module")
def pillarboxed(corpus: Corpus, slideshow: Path) -> Path:
    """The slideshow scaled to 2/3 width with grey bars left and right."""
    out = corpus.cache / "slides.pillarboxed.mp4"
    if not out.exists():
        ffmpeg(
            "-i", str(slideshow), "-vf", "scale=212:240,pad=320:240:54:0:color=0x404040",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(out),
        )  # fmt: skip
    return out


def test_letterboxed_copy_matches_its_bank_clip(
    store: Store, tmp_path: Path, corpus: Corpus, slideshow: Path
) -> None:
    bank_of(store, slideshow)
    matcher = Matcher(store, index_base=tmp_path)
    copy = corpus.variant(slideshow, "letterboxed")
    # Without the view the bars hide it...
    plain = matcher.match(hash_bytes(copy.read_bytes(), path=str(copy)))
    assert plain.matches == []
    # ...with robust hashing the bars-removed view finds it.
    outcome = matcher.match(hash_bytes(copy.read_bytes(), path=str(copy), robust=True))
    assert len(outcome.matches) == 1
    match = outcome.matches[0]
    assert match.signal_type == "vpdq" and match.variant == UNLETTERBOXED
    assert match.original_id == "clip-1"
    assert match.detail is not None and match.detail["query_match_percent"] >= 80


def test_pillarboxed_copy_matches_too(
    store: Store, tmp_path: Path, slideshow: Path, pillarboxed: Path
) -> None:
    bank_of(store, slideshow)
    outcome = Matcher(store, index_base=tmp_path).match(
        hash_bytes(pillarboxed.read_bytes(), path=str(pillarboxed), robust=True)
    )
    assert [m.variant for m in outcome.matches] == [UNLETTERBOXED]


def test_clip_of_other_photos_does_not_match(
    store: Store, tmp_path: Path, corpus: Corpus, slideshow: Path, pan: Path
) -> None:
    bank_of(store, slideshow)
    matcher = Matcher(store, index_base=tmp_path)
    for clip in (pan, corpus.variant(pan, "letterboxed")):
        outcome = matcher.match(hash_bytes(clip.read_bytes(), path=str(clip), robust=True))
        assert outcome.matches == [], clip.name
    # The other clip's letterboxed copy did get its view; it just matches nothing.
    assert [v for v, _ in vpdq_views(corpus.variant(pan, "letterboxed"))] == [UNLETTERBOXED]


@pytest.mark.parametrize("kind", ["original", "reencoded", "resized", "trimmed", "watermarked"])
def test_video_without_bars_gets_no_view(corpus: Corpus, slideshow: Path, kind: str) -> None:
    clip = slideshow if kind == "original" else corpus.variant(slideshow, kind)
    assert vpdq_views(clip) == []


def test_view_is_the_picture_hashed_as_vpdq_hashes(corpus: Corpus, slideshow: Path) -> None:
    copy = corpus.variant(slideshow, "letterboxed")
    content = Content(copy.read_bytes(), path=copy)
    signal = VpdqSignal.hash_content(content)
    assert signal is not None
    [(variant, view)] = VpdqSignal.query_views(content, signal)
    assert variant == UNLETTERBOXED
    assert VpdqSignal.validate(view.value) == view.value
    frames, original = VpdqSignal.frames(view.value), VpdqSignal.frames(signal.value)
    assert [f.timestamp for f in frames] == [f.timestamp for f in original]


def test_a_photo_gets_no_vpdq_view() -> None:
    data = (ASSETS / "aqua.jpg").read_bytes()
    assert VpdqSignal.query_views(Content(data), SignalValue("[]")) == []
    record = hash_bytes(data, robust=True)
    assert all(v.signal_type != "vpdq" for v in record.views or [])


def test_hostile_bytes_are_a_media_error_not_a_view(hostile: dict[str, Path]) -> None:
    content = Content(hostile["truncated"].read_bytes(), path=hostile["truncated"])
    with pytest.raises(MediaError) as err:
        VpdqSignal.query_views(content, SignalValue("[]"))
    assert err.value.reason == "truncated"


# ------------------------------------------------------------------------------ find_bars


def picture(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w), dtype=np.uint8)


def framed(seed: int, top: int, bottom: int, left: int, right: int, colour: int = 0) -> np.ndarray:
    frame = np.full((120, 160), colour, dtype=np.uint8)
    frame[top : 120 - bottom, left : 160 - right] = picture(
        seed, 120 - top - bottom, 160 - left - right
    )
    return frame


def test_find_bars_letterbox_pillarbox_and_windowbox() -> None:
    assert find_bars([framed(i, 15, 15, 0, 0) for i in range(4)]) == Box(0, 15, 160, 90)
    assert find_bars([framed(i, 0, 0, 20, 20, 200) for i in range(4)]) == Box(20, 0, 120, 120)
    assert find_bars([framed(i, 10, 12, 8, 6) for i in range(4)]) == Box(8, 10, 146, 98)


def test_find_bars_needs_them_in_every_frame() -> None:
    frames = [framed(0, 15, 15, 0, 0), framed(1, 15, 15, 0, 0), picture(2)]
    assert find_bars(frames) is None
    # A dark scene's edges are deeper in one frame: the shallowest bar is the bar.
    assert find_bars([framed(0, 15, 15, 0, 0), framed(1, 30, 15, 0, 0)]) == Box(0, 15, 160, 90)
    # The bar's colour must hold from frame to frame.
    assert find_bars([framed(0, 15, 15, 0, 0, 0), framed(1, 15, 15, 0, 0, 120)]) is None


def test_find_bars_stops_at_the_first_frame_without_bars() -> None:
    read = []

    def frames():  # type: ignore[no-untyped-def]
        for i in range(8):
            read.append(i)
            yield picture(i)

    assert find_bars(frames()) is None
    assert read == [0]


def test_find_bars_ignores_flat_frames_and_thin_or_overwhelming_bars() -> None:
    black = np.zeros((120, 160), dtype=np.uint8)
    assert find_bars([black, black]) is None
    assert find_bars([black, framed(1, 15, 15, 0, 0)]) == Box(0, 15, 160, 90)
    assert find_bars([framed(i, 2, 2, 0, 0) for i in range(3)]) is None  # under 4 px
    assert find_bars([framed(i, 50, 50, 0, 0) for i in range(3)]) is None  # 20 px left
