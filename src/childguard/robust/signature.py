# Owns the protected-photo signature: the registered views, the PDQ hash of each, ORB
# features, their serialised form, and computing it from a photo.
"""The signature an owner computes locally for a protected photo.

A `ProtectedSignature` holds PDQ hashes of several views of the photo (whole, centre crops,
corner crops; searched), PDQ hashes of square views (compared by the aligned check only) and ORB
keypoints with their binary descriptors. Only hashes and descriptors leave the owner's machine,
never pixels.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from childguard.robust.orb import WORK_SIDE, orb_features, work_factor
from childguard.signals.pdq import pdq_from_pixels

# View crops registered per photo: label -> (x0, y0, x1, y1) as fractions.
VIEWS: dict[str, tuple[float, float, float, float]] = {
    "full": (0.0, 0.0, 1.0, 1.0),
    "c90": (0.05, 0.05, 0.95, 0.95),
    "c80": (0.1, 0.1, 0.9, 0.9),
    "c70": (0.15, 0.15, 0.85, 0.85),
    "tl85": (0.0, 0.0, 0.85, 0.85),
    "tr85": (0.15, 0.0, 1.0, 0.85),
    "bl85": (0.0, 0.15, 0.85, 1.0),
    "br85": (0.15, 0.15, 1.0, 1.0),
}


# Square views, hashed for the aligned check (`robust.verify.aligned_distance`) and never
# searched: a grid cell square-cropped from a landscape or portrait photo covers none of VIEWS
# once the photo is wider than about 10:7 (the centre square of a 16:10 photo spans 62% of its
# width, c70 needs 70%), and without them the aligned check has nothing to compare it with.
# Each is a square of SQUARE_SIDE of the short side, centred across it, at a place along the
# long side: 0 is where a square crop flush with the start covers it, 1 where one flush with the
# end does, 0.5 the centre. A crop up to (1 - SQUARE_SIDE) of the short side off either place
# still covers it.
SQUARE_SIDE = 0.8
SQUARE_VIEWS: dict[str, float] = {"sqa": 0.0, "sqc": 0.5, "sqb": 1.0}


def square_box(label: str, w: int, h: int) -> tuple[float, float, float, float]:
    """The square view `label` (see SQUARE_VIEWS) of a w x h frame as (x0, y0, x1, y1)
    fractions. `static/org/signature.js` computes the same floats in the same order."""
    short, long = min(w, h), max(w, h)
    side = SQUARE_SIDE * short
    first = short - side
    last = long - short
    start = first + SQUARE_VIEWS[label] * (last - first)
    along = (start / long, (start + side) / long)
    across = ((short - side) / 2 / short, (short + side) / 2 / short)
    if w >= h:
        return along[0], across[0], along[1], across[1]
    return across[0], along[0], across[1], along[1]


def view_slices(label: str, w: int, h: int) -> tuple[slice, slice]:
    """Rows and columns of the registered view `label` (see VIEWS and SQUARE_VIEWS) in a w x h
    frame."""
    x0, y0, x1, y1 = VIEWS[label] if label in VIEWS else square_box(label, w, h)
    return slice(round(y0 * h), round(y1 * h)), slice(round(x0 * w), round(x1 * w))


def known_view(label: str) -> bool:
    """Whether `label` names a registered view this version can place in a frame."""
    return label in VIEWS or label in SQUARE_VIEWS


@dataclass
class ProtectedSignature:
    """PDQ hashes per labelled view plus ORB keypoints (x, y as uint16) and descriptors."""

    pdq: list[tuple[str, str]]  # (label, hex hash) of VIEWS: searched
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint16))
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 32), np.uint8))
    # Width and height of the frame the keypoints are in (None in signatures made before it
    # was recorded: the aligned check is then skipped).
    size: tuple[int, int] | None = None
    # (label, hex hash) of SQUARE_VIEWS: compared by the aligned check only (empty in
    # signatures made before they were registered).
    squares: list[tuple[str, str]] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Stored size: 32 bytes per PDQ hash, 4 per keypoint, 32 per descriptor."""
        frame = 4 if self.size else 0
        hashes = 32 * (len(self.pdq) + len(self.squares))
        return hashes + int(self.keypoints.nbytes) + int(self.descriptors.nbytes) + frame

    def compared_views(self) -> list[tuple[str, str]]:
        """Every (label, hash) the aligned check may compare: the searched views and the
        squares."""
        return [*self.pdq, *self.squares]

    def features_blob(self) -> str:
        """Keypoints and descriptors as one base64 string (for bank entry metadata)."""
        raw = self.keypoints.astype(">u2").tobytes() + self.descriptors.tobytes()
        return base64.b64encode(raw).decode("ascii")

    @staticmethod
    def parse_features(blob: str) -> tuple[np.ndarray, np.ndarray]:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
        if len(raw) % 36:
            raise ValueError("feature blob length is not a multiple of 36 bytes")
        n = len(raw) // 36
        kps = np.frombuffer(raw[: 4 * n], dtype=">u2").reshape(n, 2).astype(np.uint16)
        desc = np.frombuffer(raw[4 * n :], dtype=np.uint8).reshape(n, 32).copy()
        return kps, desc

    def to_json(self) -> str:
        data: dict[str, object] = {
            "pdq": [[lbl, h] for lbl, h in self.pdq],
            "features": self.features_blob(),
        }
        if self.size:
            data["size"] = list(self.size)
        if self.squares:
            data["squares"] = [[lbl, h] for lbl, h in self.squares]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ProtectedSignature:
        data = json.loads(text)
        kps, desc = cls.parse_features(data["features"])
        size = data.get("size")
        return cls(
            pdq=[(str(lbl), str(h)) for lbl, h in data["pdq"]],
            keypoints=kps,
            descriptors=desc,
            size=(int(size[0]), int(size[1])) if size else None,
            squares=[(str(lbl), str(h)) for lbl, h in data.get("squares") or []],
        )


# How far a signature's frame may be from its photo's aspect ratio (a share of its shorter side),
# beyond the pixel that rounding that side to a whole number may move it.
FRAME_ASPECT_TOLERANCE = 0.02


def frame_fits(size: tuple[int, int] | None, width: int, height: int) -> bool:
    """Whether a signature's frame (`ProtectedSignature.size`) has the aspect ratio of its
    photo (`width` x `height`, as displayed): its shorter side is within a pixel and
    FRAME_ASPECT_TOLERANCE of what its longer side makes of the photo's (so a photo a few pixels
    thin fits the frame its rounded side gives). A frame that does not was signed from pixels
    whose sides were reduced apart, and its keypoints' geometry does not fit the photo's
    copies: registering the photo again signs it anew. True where either is unknown."""
    if not size or width <= 0 or height <= 0 or size[0] <= 0 or size[1] <= 0:
        return True
    (long_f, short_f), (long_p, short_p) = (
        (size, (width, height)) if size[0] >= size[1] else (size[::-1], (height, width))
    )
    expected = long_f * short_p / long_p
    return abs(short_f - expected) <= 1 + FRAME_ASPECT_TOLERANCE * expected


def stored_frame(data: object) -> tuple[int, int] | None:
    """The frame (width, height) a stored signature (`ProtectedSignature.to_json`'s object)
    records; None where it records none or nothing readable."""
    size = data.get("size") if isinstance(data, dict) else None
    try:
        return (int(size[0]), int(size[1])) if size else None
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def stored_current(data: object, width: int, height: int) -> bool:
    """Whether a stored signature (`ProtectedSignature.to_json`'s object) is what
    `compute_signature` makes today of a `width` x `height` photo: a frame that fits it
    (`frame_fits`) and the squares (SQUARE_VIEWS). Registering a photo whose stored signature
    is not current signs it anew."""
    return (
        isinstance(data, dict)
        and frame_fits(stored_frame(data), width, height)
        and stored_has_squares(data)
    )


def stored_has_squares(data: object) -> bool:
    """Whether a stored signature holds the square views, labelled as SQUARE_VIEWS."""
    squares = data.get("squares") if isinstance(data, dict) else None
    return isinstance(squares, list) and [
        pair[0] if isinstance(pair, list) and pair else None for pair in squares
    ] == list(SQUARE_VIEWS)


def stored_keypoints(data: object) -> int:
    """How many keypoints a stored signature (`ProtectedSignature.to_json`'s object) holds; 0
    where it holds none or nothing readable."""
    blob = data.get("features") if isinstance(data, dict) else None
    try:
        return len(base64.b64decode(str(blob).encode("ascii"), validate=True)) // 36 if blob else 0
    except (ValueError, UnicodeEncodeError):
        return 0


def compute_signature(pixels: np.ndarray) -> ProtectedSignature:
    """The signature an owner registers for one RGB photo.

    The photo is first reduced to at most 512 px on its longest side: PDQ works on
    64x64 anyway, and it keeps the cost near 20-30 ms whatever the input size.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("compute_signature wants an HxWx3 uint8 RGB array")
    if min(pixels.shape[:2]) < 16:
        raise ValueError("photo too small for a protected signature (under 16 px)")
    h, w = pixels.shape[:2]
    if max(h, w) > WORK_SIDE:
        f = WORK_SIDE / max(h, w)
        h, w = max(1, round(h * f)), max(1, round(w * f))
        pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)

    def hashed(labels: Iterable[str]) -> list[tuple[str, str]]:
        out = []
        for label in labels:
            rows, cols = view_slices(label, w, h)
            out.append((label, pdq_from_pixels(np.ascontiguousarray(pixels[rows, cols]))[0]))
        return out

    kps, desc = orb_features(pixels)
    f = work_factor(h, w, WORK_SIDE)
    return ProtectedSignature(
        pdq=hashed(VIEWS),
        keypoints=np.round(kps).astype(np.uint16),
        descriptors=desc,
        size=(max(1, round(w * f)), max(1, round(h * f))),
        squares=hashed(SQUARE_VIEWS),
    )
