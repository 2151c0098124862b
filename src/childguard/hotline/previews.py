# Owns the review's previews of an item's media: blurred, greyscale pictures and their audit.
"""What an analyst sees of an item's media, made from its sealed evidence.

`preview_png` turns evidence bytes into one PNG: an image is reduced to at most
`PREVIEW_SIDE` pixels a side; a video becomes a strip of up to `STRIP_FRAMES` frames spread
over it (decoded in the media worker under the video limits, never in the calling process,
and never with sound). Unless `clear` is asked for, the picture is blurred at the analyst's
level (0 none - 10 most) and, by their preference, made greyscale, before it is encoded, so
the unblurred pixels never leave the server. A clear preview is only for an analyst who has
revealed the item (`revealed_in_lock`: a `hotline.reveal` since their latest `hotline.lock`
of it) and each one served is audited (`hotline.preview_clear`).
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from childguard.errors import MediaError
from childguard.hotline.review import PreviewPreferences
from childguard.media import DEFAULT_LIMITS, Limits, decode_image
from childguard.media_video import VideoInfo, run_video_job, sample_frames, video_format
from childguard.store import audit
from childguard.store.audit_log import list_events
from childguard.store.db import Store

PREVIEW_SIDE = 480
STRIP_FRAMES = 4
STRIP_SIDE = 200
FRAME_JOB = "childguard.hotline.previews:frame_strip_job"


def frame_strip_job(
    path: Path, info: VideoInfo, limits: Limits, params: Mapping[str, Any]
) -> list[str]:
    """A video job (run inside the media worker): up to `count` grey frames spread over the
    video, each reduced to `side` pixels a side, as base64 PNGs."""
    count = int(params.get("count", STRIP_FRAMES))
    side = int(params.get("side", STRIP_SIDE))
    out: list[str] = []
    for grey in sample_frames(path, info, count):
        frame = Image.fromarray(grey)
        frame.thumbnail((side, side))
        buffer = io.BytesIO()
        frame.save(buffer, format="PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out


def _video_frames(data: bytes, fmt: str, limits: Limits) -> list[Image.Image]:
    with tempfile.TemporaryDirectory(prefix="childguard-preview-") as folder:
        path = Path(folder) / f"evidence.{fmt.lower()}"
        path.write_bytes(data)
        encoded = run_video_job(
            path,
            FRAME_JOB,
            {"count": STRIP_FRAMES, "side": STRIP_SIDE},
            fmt=fmt,
            limits=limits,
        )
    frames = [Image.open(io.BytesIO(base64.b64decode(e))).convert("RGB") for e in encoded]
    if not frames:
        raise MediaError("corrupt", "no frame of the video could be read")
    return frames


def _strip(frames: list[Image.Image]) -> Image.Image:
    gap = 4
    width = sum(f.width for f in frames) + gap * (len(frames) - 1)
    height = max(f.height for f in frames)
    strip = Image.new("RGB", (width, height), (40, 40, 40))
    x = 0
    for frame in frames:
        strip.paste(frame, (x, (height - frame.height) // 2))
        x += frame.width + gap
    return strip


def _picture(data: bytes, limits: Limits) -> tuple[Image.Image, bool]:
    """The media as one picture, and whether it is a strip of a video's frames."""
    fmt = video_format(data)
    if fmt is not None and fmt != "GIF":
        return _strip(_video_frames(data, fmt, limits)), True
    # The aspect ratio kept (the hashing fast path's pixels have each side reduced apart).
    decoded = decode_image(data, limits, max_side=PREVIEW_SIDE)
    picture = Image.fromarray(decoded.pixels)
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return picture, False


def obscure(picture: Image.Image, preferences: PreviewPreferences) -> Image.Image:
    """The picture blurred at the preference's level (a Gaussian radius of `blur`% of its
    longer side) and, by the preference, greyscale."""
    shown = ImageOps.grayscale(picture).convert("RGB") if preferences.greyscale else picture
    if preferences.blur <= 0:
        return shown
    radius = max(picture.width, picture.height) * preferences.blur / 100.0
    # Reduce, blur and enlarge: the same look as a wide blur, at a fraction of the cost.
    small = shown.resize((max(1, shown.width // 4), max(1, shown.height // 4)))
    small = small.filter(ImageFilter.GaussianBlur(radius / 4))
    return small.resize(shown.size, Image.Resampling.BILINEAR)


def preview_png(
    data: bytes,
    preferences: PreviewPreferences,
    *,
    clear: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[bytes, bool]:
    """The preview of evidence `data` as PNG bytes, and whether it is a video's frame strip.
    MediaError when the media cannot be decoded."""
    picture, is_strip = _picture(data, limits)
    shown = picture if clear else obscure(picture, preferences)
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG")
    return buffer.getvalue(), is_strip


def revealed_in_lock(store: Store, user_id: int, item_id: int) -> bool:
    """Whether the analyst revealed the item since they last took its lock."""
    actor = f"user:{user_id}"
    locks = list_events(
        store,
        actor=actor,
        action="hotline.lock",
        object_type="item",
        object_id=item_id,
        newest_first=True,
        limit=1,
    )
    if not locks:
        return False
    reveals = list_events(
        store,
        actor=actor,
        action="hotline.reveal",
        object_type="item",
        object_id=item_id,
        after_id=locks[0].id,
        limit=1,
    )
    return bool(reveals)


def record_clear_view(store: Store, user_id: int, item_id: int) -> None:
    """Audit that the analyst was served the item's clear preview."""
    with store.session() as session:
        audit.record(
            session,
            actor=f"user:{user_id}",
            action="hotline.preview_clear",
            object_type="item",
            object_id=item_id,
        )


__all__ = [
    "PREVIEW_SIDE",
    "STRIP_FRAMES",
    "frame_strip_job",
    "obscure",
    "preview_png",
    "record_clear_view",
    "revealed_in_lock",
]
