"""vPDQ: Meta's video hash (one PDQ hash a second of video), computed with the `vpdq` package,
matched as python-threatexchange's vpdq extension matches.

A value is the list of frame features, each `pdq_hex,quality,timestamp`, written as a JSON list
of those strings: python-threatexchange's own signal string, so lists move between the two
unchanged. Matching drops frames under quality 50, deduplicates the rest by hash, counts a frame
as matched when some frame of the other video is within PDQ distance 31, and reports two
percentages: of the query's frames matched and of the bank video's frames matched. A match
needs both at or over a `VpdqThreshold` (default 80% of the query, 0% of the bank video).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from childguard.index.vpdq import (
    DEFAULT_VPDQ_THRESHOLD,
    FRAME_DISTANCE,
    QUALITY_THRESHOLD,
    VpdqIndex,
    VpdqThreshold,
    vpdq_comparison,
)
from childguard.index.vpdq import good_frames as _good_pairs
from childguard.signals.base import VIDEO, SignalComparison, SignalType, SignalValue

if TYPE_CHECKING:
    from childguard.index.base import SignalIndex
    from childguard.media import Content, Limits
    from childguard.media_video import VideoInfo

SECONDS_PER_HASH = 1.0  # vpdq's default: one feature a second
TIMESTAMP_DECIMALS = 3
MAX_FRAMES = 200_000  # features in one value (about 55 hours at one a second)
# What the media worker loads before the memory limit applies to `hash_in_worker`.
VIDEO_JOB_IMPORTS = ("vpdq", "pdqhash")
# The query view of a video with bars (letterbox, pillarbox): its frames with the bars cut off.
UNLETTERBOXED = "unletterboxed"

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class VpdqFrame:
    """One feature of a vPDQ value: a frame's PDQ hash, its quality and its time in seconds."""

    pdq_hex: str
    quality: int
    timestamp: float

    def __str__(self) -> str:
        return f"{self.pdq_hex},{self.quality},{self.timestamp:.{TIMESTAMP_DECIMALS}f}"


# ------------------------------------------------------------------------------ values


def parse_frames(value: str) -> list[VpdqFrame]:
    """The frames of a vPDQ value; raises ValueError saying what is wrong.

    Reads python-threatexchange's signal string (a JSON list of `hex,quality,timestamp`
    strings) and its older form (a JSON object of frame number -> {quality, hash, timestamp},
    the hash as hex or as vpdq's 16 words)."""
    try:
        raw = json.loads(value)
    except ValueError:
        raise ValueError("not JSON: want a list of 'pdq_hex,quality,timestamp' strings") from None
    if isinstance(raw, dict):
        return _parse_old_frames(raw)
    if not isinstance(raw, list):
        raise ValueError(f"want a JSON list of frames, got a {type(raw).__name__}")
    if not raw:
        raise ValueError("the list has no frames")
    if len(raw) > MAX_FRAMES:
        raise ValueError(f"{len(raw)} frames, over the limit of {MAX_FRAMES}")
    frames = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise ValueError(f"frame {i}: want a 'pdq_hex,quality,timestamp' string")
        parts = item.split(",")
        if len(parts) != 3:
            raise ValueError(
                f"frame {i}: want 3 comma-separated fields (pdq_hex,quality,timestamp), "
                f"got {len(parts)}: {item[:80]!r}"
            )
        frames.append(_frame(i, parts[0], parts[1], parts[2]))
    return frames


def _parse_old_frames(raw: Mapping[str, Any]) -> list[VpdqFrame]:
    if not raw:
        raise ValueError("the list has no frames")
    if len(raw) > MAX_FRAMES:
        raise ValueError(f"{len(raw)} frames, over the limit of {MAX_FRAMES}")
    frames = []
    try:
        numbered = sorted(raw.items(), key=lambda kv: int(kv[0]))
    except ValueError:
        raise ValueError("an object of frames must be keyed by frame number") from None
    for key, feature in numbered:
        if not isinstance(feature, dict) or not {"quality", "hash", "timestamp"} <= set(feature):
            raise ValueError(f"frame {key}: want an object with quality, hash and timestamp")
        digest = feature["hash"]
        if isinstance(digest, dict) and isinstance(digest.get("w"), list):
            words = digest["w"]
            if len(words) != 16 or not all(isinstance(w, int) and 0 <= w < 65536 for w in words):
                raise ValueError(f"frame {key}: a hash of words wants 16 values in 0..65535")
            digest = "".join(f"{w:04x}" for w in reversed(words))
        frames.append(_frame(key, digest, feature["quality"], feature["timestamp"]))
    return frames


def _frame(where: object, pdq_hex: object, quality: object, timestamp: object) -> VpdqFrame:
    hexed = str(pdq_hex).strip().lower()
    if not _HEX64.fullmatch(hexed):
        raise ValueError(f"frame {where}: the PDQ hash is not 64 hex digits: {str(pdq_hex)[:80]!r}")
    try:
        q = int(str(quality).strip())
    except ValueError:
        raise ValueError(f"frame {where}: quality {quality!r} is not a whole number") from None
    if not 0 <= q <= 100:
        raise ValueError(f"frame {where}: quality {q} is outside 0..100")
    try:
        t = float(str(timestamp).strip())
    except ValueError:
        raise ValueError(f"frame {where}: timestamp {timestamp!r} is not a number") from None
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"frame {where}: timestamp {timestamp!r} is not a time in seconds")
    return VpdqFrame(hexed, q, round(t, TIMESTAMP_DECIMALS))


def frames_to_value(frames: Iterable[VpdqFrame]) -> str:
    """The canonical value of some frames (compact JSON; python-threatexchange reads it)."""
    return json.dumps([str(f) for f in frames], separators=(",", ":"))


def good_frames(frames: Iterable[VpdqFrame]) -> list[str]:
    """The hashes matching compares: frames of quality 50 or more, deduplicated, in order."""
    return _good_pairs([(f.pdq_hex, f.quality) for f in frames])


def match_percents(query: Sequence[str], bank: Sequence[str]) -> tuple[float, float]:
    """(percent of `query` hashes within FRAME_DISTANCE of some `bank` hash, and the same of
    `bank` in `query`); 0.0 for an empty side. Brute force: the index is the fast path."""
    if not query or not bank:
        return 0.0, 0.0
    from childguard.signals.pdq import hexes_to_array

    q = np.unpackbits(hexes_to_array(list(query)), axis=1).astype(np.float32)
    b = np.unpackbits(hexes_to_array(list(bank)), axis=1).astype(np.float32)
    # Hamming distance of every pair: bits differ where q + b == 1.
    dist = q.shape[1] - (q @ b.T + (1 - q) @ (1 - b).T)  # exact: sums of 0/1 under 2^24
    close = dist <= FRAME_DISTANCE
    return (
        100.0 * int(close.any(axis=1).sum()) / len(query),
        100.0 * int(close.any(axis=0).sum()) / len(bank),
    )


# ------------------------------------------------------------------------------ the type


class VpdqSignal(SignalType):
    name = "vpdq"
    content_types: ClassVar[frozenset[str]] = frozenset({VIDEO})
    exact: ClassVar[bool] = False
    default_threshold: ClassVar[VpdqThreshold] = DEFAULT_VPDQ_THRESHOLD
    min_quality: ClassVar[int | None] = None  # weak frames are dropped inside a value

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return VpdqIndex

    @classmethod
    def validate(cls, value: str) -> str:
        try:
            return frames_to_value(parse_frames(value.strip()))
        except ValueError as exc:
            raise cls.invalid(str(exc), value) from None

    @classmethod
    def claims(cls, value: str) -> bool:
        v = value.strip()
        if not v.startswith(("[", "{")):
            return False
        try:
            parse_frames(v)
        except ValueError:
            return False
        return True

    @classmethod
    def frames(cls, value: str) -> list[VpdqFrame]:
        try:
            return parse_frames(value)
        except ValueError as exc:
            raise cls.invalid(str(exc), value) from None

    @classmethod
    def compare(cls, a: str, b: str, threshold: Any = None) -> SignalComparison:
        """Compare query video `a` with bank video `b`."""
        limit = cls.parse_threshold(threshold)
        q, p = match_percents(good_frames(cls.frames(a)), good_frames(cls.frames(b)))
        return vpdq_comparison(q, p, limit)

    @classmethod
    def within(cls, comparison: SignalComparison, threshold: Any) -> bool:
        detail = comparison.detail or {}
        return cls.parse_threshold(threshold).admits(
            float(detail.get("query_match_percent", 100.0 - comparison.distance)),
            float(detail.get("bank_match_percent", 0.0)),
        )

    @classmethod
    def parse_threshold(cls, raw: Any) -> VpdqThreshold:
        """A VpdqThreshold from None (the default), itself, "80,50" or "80" (query percent;
        bank 0), a number, a pair, or a dict with `query`/`bank` (or pytx's
        `query_match_percent`/`compared_match_percent`) keys; raises ValueError."""
        if raw is None:
            return DEFAULT_VPDQ_THRESHOLD
        if isinstance(raw, VpdqThreshold):
            return raw
        if isinstance(raw, bool):
            raise ValueError(f"not a vpdq threshold: {raw!r}")
        if isinstance(raw, int | float):
            return VpdqThreshold(float(raw), 0.0)
        if isinstance(raw, str):
            text = raw.strip()
            if text.startswith("{"):
                return cls.parse_threshold(json.loads(text))
            parts = [p.strip() for p in re.split(r"[,/ ]+", text) if p.strip()]
            if not 1 <= len(parts) <= 2:
                raise ValueError(f"a vpdq threshold is 'query%,bank%' such as '80,0', got {raw!r}")
            try:
                numbers = [float(p.rstrip("%")) for p in parts]
            except ValueError:
                raise ValueError(f"a vpdq threshold is 'query%,bank%', got {raw!r}") from None
            return VpdqThreshold(numbers[0], numbers[1] if len(numbers) == 2 else 0.0)
        if isinstance(raw, Mapping):
            query = raw.get("query", raw.get("query_percent", raw.get("query_match_percent")))
            bank = raw.get(
                "bank",
                raw.get(
                    "bank_percent", raw.get("bank_match_percent", raw.get("compared_match_percent"))
                ),
            )
            if query is None and bank is None:
                raise ValueError(f"a vpdq threshold wants 'query' and/or 'bank' keys: {raw!r}")
            return VpdqThreshold(
                float(DEFAULT_VPDQ_THRESHOLD.query_percent if query is None else query),
                float(DEFAULT_VPDQ_THRESHOLD.bank_percent if bank is None else bank),
            )
        if isinstance(raw, list | tuple) and len(raw) == 2:
            return VpdqThreshold(float(raw[0]), float(raw[1]))
        raise ValueError(f"not a vpdq threshold: {raw!r}")

    @classmethod
    def loosest(cls, thresholds: list[Any]) -> VpdqThreshold:
        if not thresholds:
            return DEFAULT_VPDQ_THRESHOLD
        parsed = [cls.parse_threshold(t) for t in thresholds]
        return VpdqThreshold(
            min(t.query_percent for t in parsed), min(t.bank_percent for t in parsed)
        )

    @classmethod
    def store_key(cls, value: str) -> str:
        """The sha256 (hex) of the canonical value: a value holds a line a second of video."""
        return hashlib.sha256(value.encode()).hexdigest()

    @classmethod
    def hash_content(cls, content: Content) -> SignalValue | None:
        """The vPDQ value of a video (animated GIFs included); None for other content.
        Raises MediaError for a video that cannot be decoded within `content.limits`."""
        from childguard.media_video import check_video_bytes, named_as_video

        if VIDEO not in content.content_types:
            if named_as_video(content.path or content.origin):
                check_video_bytes(content.data, content.limits)  # raises: empty, not-a-video
            return None
        return _signal_of(_in_worker(content, "hash_in_worker"))

    @classmethod
    def query_views(cls, content: Content, signal: SignalValue) -> list[tuple[str, SignalValue]]:
        """`unletterboxed` for a video with uniform bars at its edges (letterbox, pillarbox,
        both): the vPDQ of its frames with the bars cut off, which the black bars otherwise
        push far from the bank video's. Bars are looked for in up to 8 frames spread over the
        video; a video without them costs one decoded frame and gets no view. Runs in the media
        worker under `content.limits`; nothing for content that is not a video."""
        if VIDEO not in content.content_types:
            return []
        views = _in_worker(content, "views_in_worker")
        out = []
        for variant, rows in views.items():
            if rows:
                value = _signal_of(rows)
                if value.value != signal.value:
                    out.append((str(variant), value))
        return out


def _signal_of(rows: Sequence[Sequence[Any]]) -> SignalValue:
    """A value and its mean quality from a worker's [pdq_hex, quality, timestamp] rows."""
    frames = [_frame(i, h, q, t) for i, (h, q, t) in enumerate(rows)]
    mean = round(sum(f.quality for f in frames) / len(frames))
    return SignalValue(frames_to_value(frames), mean)


def hash_in_worker(
    path: Path, info: VideoInfo, limits: Limits, params: Mapping[str, Any]
) -> list[list[Any]]:
    """The video job `VpdqSignal.hash_content` runs in the media worker: vpdq's frames of
    `path` as [pdq_hex, quality, timestamp] rows. Raises MediaError when no frame decodes or
    the frames run past the length limit (a header that understated the length)."""
    import vpdq

    from childguard.errors import MediaError

    features = vpdq.computeHash(
        str(path), seconds_per_hash=float(params.get("seconds_per_hash", SECONDS_PER_HASH))
    )
    if not features:
        raise MediaError("corrupt", f"no frame of the {info.format or 'video'} could be decoded")
    last = max(f.timestamp for f in features)
    if last > limits.max_video_seconds:
        raise MediaError(
            "too-long",
            f"frames run to {last:.0f} s, over the limit of {limits.max_video_seconds:.0f} s",
        )
    return [[f.hex, int(f.quality), float(f.timestamp)] for f in features]


def views_in_worker(
    path: Path, info: VideoInfo, limits: Limits, params: Mapping[str, Any]
) -> dict[str, list[list[Any]]]:
    """The video job `VpdqSignal.query_views` runs in the media worker: {variant: rows} for
    the views the video needs ({} for most). `unletterboxed`: when `find_bars` finds bars in
    the sampled frames, the frames vpdq would hash (one a second), cropped to the picture and
    hashed with the same PDQ (the uncropped frames give vpdq's own hashes exactly)."""
    from childguard.media_video import find_bars, read_frames, sample_frames
    from childguard.signals.pdq import pdq_from_pixels

    box = find_bars(sample_frames(path, info))
    if box is None:
        return {}
    seconds = float(params.get("seconds_per_hash", SECONDS_PER_HASH))
    every = max(1, round((info.fps or 25.0) * seconds))
    rows: list[list[Any]] = []
    for _, timestamp, rgb in read_frames(path, info, limits, every):
        picture = rgb[box.y : box.y + box.height, box.x : box.x + box.width]
        pdq_hex, quality = pdq_from_pixels(picture)
        rows.append([pdq_hex, quality, round(timestamp, TIMESTAMP_DECIMALS)])
    return {UNLETTERBOXED: rows} if rows else {}


__all__ = [
    "DEFAULT_VPDQ_THRESHOLD",
    "FRAME_DISTANCE",
    "QUALITY_THRESHOLD",
    "UNLETTERBOXED",
    "VpdqFrame",
    "VpdqSignal",
    "VpdqThreshold",
    "frames_to_value",
    "good_frames",
    "hash_in_worker",
    "match_percents",
    "parse_frames",
    "views_in_worker",
]


def _in_worker(content: Content, job: str) -> Any:
    """Run one of this module's worker jobs on a video's bytes, checked first, in the media
    worker under `content.limits`."""
    from childguard.media_video import check_video_bytes, run_video_job

    fmt = check_video_bytes(content.data, content.limits)
    with content.file() as path:
        return run_video_job(
            path,
            f"childguard.signals.vpdq:{job}",
            {"seconds_per_hash": SECONDS_PER_HASH},
            fmt=fmt,
            limits=content.limits,
        )
