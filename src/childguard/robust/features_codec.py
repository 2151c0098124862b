"""The JSON form of a query's compact features, for caches that outlive the pixels.

A `QueryFeatures` made by `childguard.pipeline.compact_features` carries, without the
pixels: ORB keypoints and descriptors, the small grey check image of the aligned check,
the same three for the mirrored query and for each photo-like region of a screenshot
or collage, and the grey focus copy that the focused cut and the equal partition of a
gutterless grid are made from. `features_to_json` keeps all of it, so features read back
from the crawl's content cache verify exactly as freshly computed ones (a re-crawl answered
`304` finds flipped copies, screenshots and photos in grids whose cells touch).

Layout (version 3): ``{"v": 3, "orb": b64, "check": {"png": b64, "scale": float},
"focus": {"png": b64, "scale": float}, "mirror": {...}, "regions": [{...}]}``, where `orb`
is n float32 (x, y) pairs then n 32-byte descriptors, and the check image and the focus copy
are lossless grey PNGs (so the aligned check's PDQ and the cut's ORB see the same pixels;
a focus copy's scale is the factor from work-image coordinates to its own, which may exceed
1). The mirror's check image is stored as ``"flip"`` when it is exactly the main one
mirrored. Older layouts (version 1: a bare ORB string; version 2: no focus copy) are
refused, so that content cached that way is fetched and hashed once more.
"""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from childguard.robust.orb import QUERY_SIDE
from childguard.robust.query import QueryHash
from childguard.robust.query_features import FOCUS_SIDE, CheckImage, QueryFeatures

VERSION = 3
_ORB_ROW = 8 + 32  # two float32 coordinates and a 32-byte descriptor per keypoint
# A focus copy's scale, from work-image coordinates to its own: at most FOCUS_SIDE / QUERY_SIDE
# (a query larger than FOCUS_SIDE, whose work image is QUERY_SIDE), under 1 for a small query
# whose work image was enlarged.
_FOCUS_SCALE_MAX = FOCUS_SIDE / QUERY_SIDE


class FeaturesCodecError(ValueError):
    """Stored features that cannot be read back (the image is then hashed again)."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any) -> bytes:
    try:
        return base64.b64decode(str(text).encode("ascii"), validate=True)
    except ValueError as exc:
        raise FeaturesCodecError(f"bad base64: {exc}") from exc


def _orb_to_text(keypoints: np.ndarray, descriptors: np.ndarray) -> str:
    kps = np.ascontiguousarray(keypoints, dtype="<f4")
    desc = np.ascontiguousarray(descriptors, dtype=np.uint8)
    return _b64(kps.tobytes() + desc.tobytes())


def _orb_from_text(text: Any) -> tuple[np.ndarray, np.ndarray]:
    raw = _unb64(text)
    if len(raw) % _ORB_ROW:
        raise FeaturesCodecError(f"ORB blob of {len(raw)} bytes is not whole keypoints")
    n = len(raw) // _ORB_ROW
    kps = np.frombuffer(raw[: 8 * n], dtype="<f4").reshape(n, 2).astype(np.float32)
    desc = np.frombuffer(raw[8 * n :], dtype=np.uint8).reshape(n, 32).copy()
    return kps, desc


def _check_to_json(check: CheckImage) -> dict[str, Any]:
    ok, png = cv2.imencode(".png", check.grey)
    if not ok:  # pragma: no cover - OpenCV encodes any 2-D uint8 array
        raise FeaturesCodecError("could not encode a grey image")
    return {"png": _b64(png.tobytes()), "scale": float(check.scale)}


def _check_from_json(
    data: Any, what: str = "check image", max_scale: float = 1.0, max_side: int | None = None
) -> CheckImage:
    """A grey image and its scale, as `_check_to_json` wrote them; `what` names it in errors,
    whose scale must lie in (0, max_scale] and whose longest side within `max_side`."""
    if not isinstance(data, dict):
        raise FeaturesCodecError(f"{what} is not an object")
    buf = np.frombuffer(_unb64(data.get("png")), dtype=np.uint8)
    grey = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if grey is None:
        raise FeaturesCodecError(f"{what} is not a readable PNG")
    if max_side is not None and max(grey.shape) > max_side:
        raise FeaturesCodecError(f"{what} of {grey.shape[1]}x{grey.shape[0]} is over {max_side}")
    try:
        scale = float(data["scale"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FeaturesCodecError(f"{what} has no scale") from exc
    if not 0 < scale <= max_scale * (1 + 1e-9):  # the division that made it may round up
        raise FeaturesCodecError(f"{what} scale {scale} is outside (0, {max_scale:g}]")
    return CheckImage(grey, scale)


def _flipped(check: CheckImage) -> CheckImage:
    return CheckImage(np.ascontiguousarray(check.grey[:, ::-1]), check.scale)


def _same(a: CheckImage, b: CheckImage) -> bool:
    return a.scale == b.scale and np.array_equal(a.grey, b.grey)


def _part_to_json(features: QueryFeatures, flip_of: CheckImage | None = None) -> dict[str, Any]:
    """One part; a check image that is exactly `flip_of` mirrored is stored as "flip"."""
    out: dict[str, Any] = {"orb": _orb_to_text(features.keypoints, features.descriptors)}
    check = features.check
    if check is not None:
        flip = flip_of is not None and _same(check, _flipped(flip_of))
        out["check"] = "flip" if flip else _check_to_json(check)
    return out


def _part_from_json(
    data: Any, hashes: list[QueryHash], flip_of: CheckImage | None = None, **nested: Any
) -> QueryFeatures:
    if not isinstance(data, dict):
        raise FeaturesCodecError("features part is not an object")
    kps, desc = _orb_from_text(data.get("orb"))
    check = None
    if data.get("check") == "flip":
        if flip_of is None:
            raise FeaturesCodecError("a flipped check image with nothing to flip")
        check = _flipped(flip_of)
    elif "check" in data:
        check = _check_from_json(data["check"])
    return QueryFeatures(hashes, keypoints=kps, descriptors=desc, check=check, **nested)


def features_to_json(features: QueryFeatures) -> dict[str, Any]:
    """Everything `features` verifies with, as plain JSON (its hashes are stored apart).

    About 2.5 times the ORB features alone: 20-40 KB for the check image (the mirror's is
    nearly always the same image flipped, and is then not stored twice) and the mirror's
    own ORB features (ORB descriptors are not mirror-invariant); then the focus copy, a
    lossless grey PNG of at most FOCUS_SIDE px a side: about 75 KB for a 512-px photo, a few
    hundred KB for a large one."""
    out = {"v": VERSION, **_part_to_json(features)}
    focus = features.focus_copy()
    if focus is not None:
        out["focus"] = _check_to_json(focus)
    mirror = features.mirrored()
    if mirror is not None:
        out["mirror"] = _part_to_json(mirror, flip_of=features.check)
    out["regions"] = [_part_to_json(r) for r in features.regions()]
    return out


def features_from_json(data: Any, hashes: list[QueryHash]) -> QueryFeatures:
    """The inverse of `features_to_json`. Raises FeaturesCodecError for anything unreadable
    or in an older layout."""
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise FeaturesCodecError("unknown features layout")
    regions = data.get("regions", [])
    if not isinstance(regions, list):
        raise FeaturesCodecError("regions is not a list")
    main = _part_from_json(data, hashes)
    focus = None
    if "focus" in data:
        focus = _check_from_json(data["focus"], "focus copy", _FOCUS_SCALE_MAX, FOCUS_SIDE)
    mirror = _part_from_json(data["mirror"], [], flip_of=main.check) if "mirror" in data else None
    return QueryFeatures(
        hashes,
        keypoints=main.keypoints,
        descriptors=main.descriptors,
        check=main.check,
        mirror=mirror,
        regions=[_part_from_json(r, []) for r in regions],
        focus=focus,
    )
