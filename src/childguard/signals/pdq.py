"""PDQ: Meta's 256-bit perceptual hash, computed by the compiled kernel (`childguard._jpegdc`,
the same bits as Meta's C++ in the `pdqhash` package, which is the fallback).

Hashes are 64 lowercase hex characters; distance is Hamming distance; the
default match threshold is 31 and hashes with quality under 50 are weak.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pdqhash

from childguard.index.pdq import PdqIndex, pack_hex
from childguard.signals.base import PHOTO, SignalComparison, SignalType, SignalValue

if TYPE_CHECKING:
    from childguard.index.base import SignalIndex
    from childguard.media import Content, LumaPlane

PDQ_BITS = 256
DEFAULT_THRESHOLD = 31
MIN_QUALITY = 50
# Order of pdqhash.compute_dihedral's outputs.
DIHEDRAL_NAMES = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)
# Caps of the derived views (any variant but `original`), measured on the robustness corpus's
# deep-sky photos (docs/robustness.md, "Known-abuse on weak photos, round 3"). A derived view is
# a guess at the photo and one more chance at a look-alike, so each kind counts within what its
# true matches needed. The derived views of a weak query (quality under MIN_QUALITY), whatever
# their kind: turned copies of the 16 weak registered deep-sky photos saved again as JPEG 90, 75
# or 50 came within 10 bits in 141 of 144 (12 at most); at 16 bits a look-alike's mirrored view
# (two edge-on galaxies, 6-12 bits apart once one is flipped) outranked the query's own photo.
WEAK_VIEW_THRESHOLD = 10
# The rotations and flips of a query of full quality: turned copies saved again as JPEG 75 or
# 50 came within 14 bits, turned copies halved in size within 24 in 84-86%; look-alikes' turned
# views came within 20-30 bits (deep-sky photos of edge-on galaxies).
DIHEDRAL_VIEW_THRESHOLD = 24
# A centred crop undone (`uncropped<n>`) and solid padding removed (`unpadded`): distractors'
# nearest such views came within 28-30 bits of a registered look-alike.
UNCROP_VIEW_THRESHOLD = 27
UNPAD_VIEW_THRESHOLD = 27
_UNCROP_PREFIX = "uncropped"
_UNPAD = "unpadded"


def view_cap(variant: str, quality: int) -> int | None:
    """The PDQ distance within which a query view matches at PDQ's default threshold: None for
    the `original` hash (its bank's threshold alone); WEAK_VIEW_THRESHOLD for any other view
    whose quality is under MIN_QUALITY; DIHEDRAL_VIEW_THRESHOLD for a rotation or flip;
    UNCROP_VIEW_THRESHOLD for a crop undone; UNPAD_VIEW_THRESHOLD for solid padding removed;
    DEFAULT_THRESHOLD (the robust views' VIEW_THRESHOLD) for the others (borders trimmed,
    centred pads, frames, caption bars, regions, grid cells, quadrants, deskewed). A function
    of the variant and the quality only, so it holds for views stored and read back as (hash,
    quality, variant); the matcher and the robustness harness apply it alike (`view_limit`,
    `view_rank`)."""
    if variant == DIHEDRAL_NAMES[0]:
        return None
    if quality < MIN_QUALITY:
        return WEAK_VIEW_THRESHOLD
    if variant in DIHEDRAL_NAMES:
        return DIHEDRAL_VIEW_THRESHOLD
    if variant.startswith(_UNCROP_PREFIX):
        return UNCROP_VIEW_THRESHOLD
    if variant == _UNPAD:
        return UNPAD_VIEW_THRESHOLD
    return DEFAULT_THRESHOLD


def view_margin(variant: str, quality: int) -> int:
    """How many bits a view's distance counts for more than the original hash's: 0 for the
    original, DEFAULT_THRESHOLD less its cap for a derived view (a guess at the photo)."""
    cap = view_cap(variant, quality)
    return 0 if cap is None else DEFAULT_THRESHOLD - cap


def view_limit(variant: str, quality: int, threshold: int) -> int:
    """The PDQ distance within which a view matches an entry whose bank threshold is
    `threshold`: the threshold itself for the original hash; for a derived view, the stricter
    of the threshold and DEFAULT_THRESHOLD, less the view's margin. At the default threshold
    that is the view's cap; a bank loosened beyond it loosens only the original hash, and a
    stricter bank is stricter for a derived view by as many bits as for the original: a view
    matches exactly when its `view_rank` is within the threshold (within DEFAULT_THRESHOLD at
    most, for a derived view)."""
    if variant == DIHEDRAL_NAMES[0]:
        return threshold
    return min(threshold, DEFAULT_THRESHOLD) - view_margin(variant, quality)


def view_rank(variant: str, quality: int, distance: int) -> int:
    """What a view's match at `distance` counts as, to rank it against other views' matches:
    the distance plus the view's margin (`view_margin`), so the original hash's match ranks
    above a derived view's at the same distance. The matcher reports each entry's best-ranked
    view and orders matches by rank; the robustness harness scores by it."""
    return distance + view_margin(variant, quality)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# A repeating hash: its 16 x 16 bit grid, shifted by 1 to REPEAT_SHIFTS rows or columns, agrees
# with itself in all but REPEAT_DISAGREEMENT of the bits it overlaps. PDQ gives such a hash to a
# photo with next to no structure (stellarium's M102 nebula: quality 34, four rows repeated four
# times, 1% apart). A random hash overlaps itself at half its bits, and of the 993 photos of the
# robustness corpus only that nebula's and one of quality 6 repeat; the closest photo of full
# quality stays 9% apart. Each derived view of a query is one more chance to land near such a
# hash: on the 50,029 distractor queries of the robustness FPR run, all 19 known-abuse false
# positives (reference PDQ's: 10) were matches on that nebula. So only a query's `original` hash
# may match a repeating entry (`view_may_match`); a turned or cropped copy of a photo this bare
# cannot be told from chance.
REPEAT_SHIFTS = 8
REPEAT_DISAGREEMENT = 0.05


def repeating(packed: np.ndarray) -> np.ndarray:
    """For packed hashes (n x 32 bytes, `hexes_to_array`), which repeat themselves (see
    REPEAT_SHIFTS): a boolean array of n."""
    grids = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1).reshape(-1, 16, 16)
    closest = np.ones(len(grids))
    for s in range(1, REPEAT_SHIFTS + 1):
        rows = (grids[:, s:, :] != grids[:, :-s, :]).mean(axis=(1, 2))
        cols = (grids[:, :, s:] != grids[:, :, :-s]).mean(axis=(1, 2))
        closest = np.minimum(closest, np.minimum(rows, cols))
    return np.asarray(closest <= REPEAT_DISAGREEMENT)


@functools.lru_cache(maxsize=65536)
def repeats_itself(value: str) -> bool:
    """Whether one hash (64 hex digits) repeats itself (`repeating`)."""
    return bool(repeating(hexes_to_array([value]))[0])


def view_may_match(variant: str, entry_value: str) -> bool:
    """Whether a query view of `variant` may match an entry whose hash is `entry_value`: the
    `original` hash always; a derived view unless the entry repeats itself (`repeats_itself`).
    The matcher and the robustness harness apply it alike."""
    return variant == DIHEDRAL_NAMES[0] or not repeats_itself(entry_value)


class PdqSignal(SignalType):
    name = "pdq"
    content_types: ClassVar[frozenset[str]] = frozenset({PHOTO})
    exact: ClassVar[bool] = False
    default_threshold: ClassVar[int] = DEFAULT_THRESHOLD
    min_quality: ClassVar[int | None] = MIN_QUALITY

    @classmethod
    def index_class(cls) -> type[SignalIndex]:
        return PdqIndex

    @classmethod
    def validate(cls, value: str) -> str:
        v = value.strip().lower()
        if len(v) != 64:
            raise cls.invalid(f"want 64 hex digits, got {len(v)}", value)
        try:
            bytes.fromhex(v)
        except ValueError:
            raise cls.invalid("non-hex characters", value) from None
        return v

    @classmethod
    def compare(cls, a: str, b: str, threshold: Any = None) -> SignalComparison:
        d = (int(a, 16) ^ int(b, 16)).bit_count()
        limit = cls.default_threshold if threshold is None else int(threshold)
        return SignalComparison(match=d <= limit, distance=d)

    @classmethod
    def hash_content(cls, content: Content) -> SignalValue | None:
        image = content.image()
        if image.luma is not None:  # the fast JPEG path's luma plane: no RGB is made for PDQ
            value, quality = pdq_from_luma(image.luma)
        else:
            value, quality = pdq_from_pixels(image.pixels)
        return SignalValue(value, quality)


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 0/1 values to the reference's hex string."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value)


def hexes_to_array(values: list[str]) -> np.ndarray:
    """Pack hex PDQ hashes into an (n, 32) uint8 array, the layout the indexes use."""
    return pack_hex(values)


def hamming_many(query: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed (32,) hash to packed (n, 32) hashes."""
    return _POPCOUNT[np.bitwise_xor(hashes, query)].sum(axis=1, dtype=np.int32)


_PDQ_KERNEL: Callable[[np.ndarray], tuple[bytes, int]] | None
_RESIZED_KERNEL: Callable[..., tuple[bytes, int]] | None
try:  # the compiled PDQ (`childguard._jpegdc`), where it was built
    from childguard._jpegdc import pdq as _PDQ_KERNEL
    from childguard._jpegdc import pdq_resized as _RESIZED_KERNEL
except ImportError:  # pragma: no cover - a checkout without compiled kernels
    _PDQ_KERNEL = _RESIZED_KERNEL = None


def pdq_from_pixels(pixels: np.ndarray) -> tuple[str, int]:
    """PDQ hash (hex) and quality (0-100) of an HxWx3 uint8 RGB array.

    The compiled kernel gives the same bits and quality as `pdqhash.compute` (Meta's C++ on
    the luma `pdqhash` computes), without its per-call NumPy luma and bit-unpacking steps."""
    pixels = np.ascontiguousarray(pixels)
    if _PDQ_KERNEL is not None and pixels.ndim == 3 and pixels.dtype == np.uint8:
        raw, quality = _PDQ_KERNEL(pixels)
        return raw.hex(), quality
    bits, quality = pdqhash.compute(pixels)
    return bits_to_hex(bits), int(quality)


def pdq_from_luma(luma: LumaPlane) -> tuple[str, int]:
    """PDQ hash (hex) and quality of a reduced luma plane resized (Lanczos) to `luma.size`:
    the hash `pdq_from_pixels` gives that resized image in grey, computed without making it."""
    plane = np.ascontiguousarray(luma.plane)
    if _RESIZED_KERNEL is not None:
        raw, quality = _RESIZED_KERNEL(plane, luma.size, luma.box)
        return raw.hex(), quality
    from PIL import Image

    resized = Image.fromarray(plane.astype(np.float32), "F").resize(
        luma.size, Image.Resampling.LANCZOS, box=luma.box
    )
    grey = np.clip(np.rint(np.asarray(resized)), 0, 255).astype(np.uint8)
    bits, quality = pdqhash.compute(np.repeat(grey[:, :, None], 3, axis=2))
    return bits_to_hex(bits), int(quality)


# PDQ's 16 x 64 DCT matrix (Meta's reference: rows 1-16 of the 64-point DCT-II, the constant
# row left out), for `pdq_of_tiles`.
TILE_SIDE = 64
_TILE_DCT = (
    np.sqrt(2 / TILE_SIDE)
    * np.cos(
        np.pi
        / (2 * TILE_SIDE)
        * np.arange(1, 17)[:, None]
        * (2 * np.arange(TILE_SIDE)[None, :] + 1)
    )
).astype(np.float32)


def pdq_of_tiles(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PDQ of k 64 x 64 grey tiles at once: packed (k, 32) uint8 hashes and (k,) qualities, the
    bits and quality `pdqhash.compute` gives each tile (at 64 px PDQ's blur and decimation leave
    the tile as it is), without its per-call cost (about 0.2 ms a tile); a flat tile's bits
    (quality 0) are rounding noise in both and may differ. For the cells of a picture cut
    into equal parts, each resized to 64 px."""
    if tiles.ndim != 3 or tiles.shape[1:] != (TILE_SIDE, TILE_SIDE):
        raise ValueError("pdq_of_tiles wants a (k, 64, 64) array")
    t = tiles.astype(np.float32)
    coefficients = ((_TILE_DCT @ t) @ _TILE_DCT.T).reshape(len(t), 256)
    bits = coefficients > np.median(coefficients, axis=1, keepdims=True)
    # The reference's bit order: its 256th bit is the first coefficient's.
    packed = np.packbits(bits[:, ::-1].astype(np.uint8), axis=1)
    # Quality: the tile's summed steps between neighbours, in percent of full scale, over 90.
    down = (np.diff(t, axis=1) * 100 / 255).astype(np.int32)
    across = (np.diff(t, axis=2) * 100 / 255).astype(np.int32)
    steps = np.abs(down).sum(axis=(1, 2)) + np.abs(across).sum(axis=(1, 2))
    return packed, np.minimum(100, steps // 90)


def pdq_dihedral_from_pixels(pixels: np.ndarray) -> tuple[list[str], int]:
    """The 8 rotation/flip variants (order: DIHEDRAL_NAMES) and the quality."""
    all_bits, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
    return [bits_to_hex(b) for b in all_bits], int(quality)


def pdq_dihedral_exact(pixels: np.ndarray) -> tuple[list[str], int]:
    """The PDQ hashes of the 8 rotations and flips of an RGB image (order: DIHEDRAL_NAMES:
    `rot90` is the image turned a quarter anticlockwise, `flipx` upside down, `flipy` left to
    right, `flip_plus1` transposed, `flip_minus1` anti-transposed) and the original's quality.

    pdqhash derives all 8 from one image's DCT (`pdq_dihedral_from_pixels`), which is exact
    only for the transpose: its downsampling box filter is not centred, so the other 6 land
    28-50 bits away from the hash of the turned image itself, on smooth images too (deep-sky
    photos: a quarter of rotated copies missed). Here the image, its half turn and its two
    flips are hashed through the compiled kernel, and each of the other four is the transpose
    of one of them (`_transposed`: the transposed image's DCT is the transposed DCT, so its
    bits are the transposed bits). The transposes equal the hash of the transposed image but
    for float rounding in the box filter's order: 1 of 6,400 differed, by 2 bits (the
    robustness corpus's photos under 4 transforms, each turned 4 ways)."""
    import cv2  # only the dihedral views need OpenCV's fast copies

    pixels = np.ascontiguousarray(pixels)
    # OpenCV's copies: several times faster than NumPy's of strided views.
    original, half, upside, mirror = (
        pdq_from_pixels(view)
        for view in (
            pixels,
            cv2.rotate(pixels, cv2.ROTATE_180),
            cv2.flip(pixels, 0),
            cv2.flip(pixels, 1),
        )
    )
    hashes = [
        original[0],
        _transposed(mirror[0]),  # rot90: the mirror image, transposed
        half[0],
        _transposed(upside[0]),  # rot270: the image upside down, transposed
        upside[0],
        mirror[0],
        _transposed(original[0]),
        _transposed(half[0]),
    ]
    return hashes, original[1]


def _transposed(value: str) -> str:
    """The PDQ hash of the transposed image, from the image's hash: bit i * 16 + j (the DCT
    coefficient in row i, column j; bit 0 is the last) moves to j * 16 + i."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(value), np.uint8))[::-1].reshape(16, 16)
    return np.packbits(bits.T.reshape(256)[::-1]).tobytes().hex()
