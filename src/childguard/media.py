# Owns safe media loading: the per-file byte, pixel, frame, memory and time budgets.
"""Safe media loading: byte and pixel limits, format sniffing, EXIF orientation, the fast
reduced-scale decode that feeds perceptual hashers, and `Content`, one piece of content with
its decoded forms made once.

Every decode in childguard goes through `decode_image`, so the limits that stop
decompression bombs and oversize inputs live in exactly one place.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import signal
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from childguard.deadline import interrupt_after
from childguard.errors import MediaError

_decode_dc: Callable[..., np.ndarray | None] | None
try:  # the DC-only progressive JPEG kernel (src/childguard/_jpegdc.c), where it was built
    from childguard._jpegdc import decode_dc as _decode_dc
except ImportError:  # pragma: no cover - a checkout without compiled kernels
    _decode_dc = None

try:  # HEIC/AVIF through the well-kept pillow-heif plugin, where it is installed.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except Exception:  # pragma: no cover - optional plugin
    HEIF_SUPPORTED = False

# Truncated files are errors, never silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

SUPPORTED_FORMATS = frozenset(
    {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"}
    | ({"HEIF", "AVIF"} if HEIF_SUPPORTED else set())
)


@dataclass(frozen=True)
class Limits:
    """Bounds on what childguard will decode."""

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 120_000_000  # decoded pixel count (width * height) before any reduction
    # Fast path: each side is reduced so that PDQ's box ("Jarosz") filter on the reduced
    # image is `pdq_window` pixels wide and covers the same fraction of the image as on
    # the full-resolution original (see `fast_size`). An odd window keeps the filter
    # centred; 3 puts the short side of a large photo near 384 pixels.
    pdq_window: int = 3
    # Never hand the perceptual hasher more than this many pixels, whatever the above says.
    work_pixels: int = 1024 * 1024
    # Images whose short side is at most this are never reduced.
    draft_min_side: int = 384
    # The picture the robust views, features and protected signatures are made from
    # (`Content.picture`): the aspect ratio kept, the longest side at most this. The fast
    # path reduces each side apart (what PDQ's box filter asks), which bends the geometry
    # keypoints and grid cells depend on; 1280 px holds a 1,080-px feed post or grid whole.
    picture_side: int = 1280
    # A reduced JPEG decode (libjpeg DCT scaling for sequential files; the DC scans alone,
    # the 1/8-scale image of `childguard._jpegdc`, for progressive ones) may be as small as
    # this fraction of the fast-path target on each side; it is then resized up to the target.
    dc_min_fraction: float = 0.7
    # A progressive JPEG whose 1/8 image is below that floor still goes through the DC scans
    # where PDQ's box filter on the original is at least `dc_min_window` pixels wide on both
    # sides (as wide as a block); 0 turns this off (libjpeg then reads every scan).
    dc_min_window: int = 10
    # Video (`childguard.media_video`): a probe that breaks one of these refuses the file
    # before any frame is decoded; decoding runs in a worker process under the memory and
    # wall-clock bounds, which also catch headers that lie.
    max_video_seconds: float = 3600.0
    max_video_frame_pixels: int = 8192 * 4320  # one frame's width * height (8K UHD)
    max_video_frames: int = 250_000  # frames decoded (an hour at about 70 fps)
    video_timeout: float = 600.0  # wall-clock seconds to probe and hash one video
    max_video_memory: int = 4 * 1024**3  # address space decoding one video may add, in bytes
    # Wall-clock seconds hashing one file may take in a pool worker or a serial batch (see
    # `time_budget`); 0 turns the watchdog off.
    file_seconds: float = 120.0


DEFAULT_LIMITS = Limits()

# Pillow's own bomb check follows the documented limit (its default is 89.5 MP); decode_image
# applies `Limits.max_pixels` itself before any pixel is decoded, so Pillow's warning below
# twice this is ignored there, and its error above twice this stays a last resort.
Image.MAX_IMAGE_PIXELS = DEFAULT_LIMITS.max_pixels


@dataclass(frozen=True)
class LumaPlane:
    """A reduced luma plane (uint8 or float32, 0..255, upright) and the size PDQ hashes it at: the
    plane's region `box` (x0, y0, x1, y1, in its own pixels) resized to `size` (width,
    height). `childguard.signals.pdq.pdq_from_luma` hashes it without making that image."""

    plane: np.ndarray
    size: tuple[int, int]
    box: tuple[float, float, float, float]


class DecodedImage:
    """An RGB image ready for perceptual hashing.

    `width`/`height` are the display dimensions of the original (after EXIF
    orientation); `pixels` may be smaller when the fast path reduced it. `luma`, where the
    fast JPEG path made it, is what PDQ hashes: the picture's reduced luma straight from the
    JPEG's Y component, hashed as if resized to the original's size; no RGB is made for it,
    and the RGB `pixels` are then decoded only when first asked for.
    """

    __slots__ = ("_pixels", "format", "height", "luma", "reduced", "width")

    def __init__(
        self,
        pixels: np.ndarray | Callable[[], np.ndarray],
        width: int,
        height: int,
        format: str,
        reduced: bool,
        luma: LumaPlane | None = None,
    ) -> None:
        self._pixels = pixels
        self.width, self.height, self.format, self.reduced = width, height, format, reduced
        self.luma = luma

    @property
    def pixels(self) -> np.ndarray:
        """HxWx3 uint8 RGB, decoded on first use where the fast path deferred it."""
        if callable(self._pixels):
            self._pixels = self._pixels()
        return self._pixels


def sniff_format(head: bytes) -> str | None:
    """Guess the container format from magic bytes (None when not an image we know)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        return "HEIF"
    return None


# Content types: what a signal type says it hashes. Every piece of content is BYTES (exact
# hashes apply to anything); it is also PHOTO or VIDEO where it sniffs as one.
BYTES = "bytes"
PHOTO = "photo"
VIDEO = "video"
CONTENT_TYPES = (BYTES, PHOTO, VIDEO)

# ISO base media brands that are still images (HEIF/AVIF), not video.
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"})


def sniff_video_format(head: bytes) -> str | None:
    """Guess a video container from magic bytes: MP4, MOV, MKV, WEBM, AVI. (An animated GIF is
    a video too, but only its frames say so: see `is_animated_gif`.)"""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "MOV" if brand == b"qt  " else "MP4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "MOV"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "MKV" if b"matroska" in head[:64] else "WEBM"  # the EBML DocType
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def sniff_content_type(head: bytes) -> str | None:
    """ "photo", "video" or None (neither) from the first bytes of some content."""
    if sniff_video_format(head) is not None:
        return VIDEO
    if sniff_format(head) is not None:
        return PHOTO
    return None


def gif_frame_count(data: bytes, stop: int = 2) -> int:
    """How many frames a GIF holds, counting no further than `stop` (0: not a readable GIF).

    Walks the block structure (image descriptors, extensions, their sub-blocks) without
    decoding any pixels."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return 0
    n = len(data)

    def skip_sub_blocks(pos: int) -> int:
        while pos < n:
            size = data[pos]
            pos += 1 + size
            if size == 0:
                break
        return pos

    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    frames = 0
    while pos < n and frames < stop:
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif block == 0x2C:  # image descriptor, local colour table, LZW code size, data
            if pos + 10 > n:
                break
            local = data[pos + 9]
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0) + 1
            pos = skip_sub_blocks(pos)
            frames += 1
        else:  # the trailer (0x3B) or damage
            break
    return frames


def is_animated_gif(data: bytes) -> bool:
    """Whether `data` is a GIF of more than one frame (which is both a photo and a video)."""
    return gif_frame_count(data, stop=2) >= 2


@dataclass
class Content:
    """One piece of content on its way through the pipeline: its bytes, where it came from
    (`origin`: a path, an archive member or a URL) and its decoded forms, each made once.

    `path` is a file holding exactly `data` where there is one (decoders that need a file,
    such as video's, use it instead of writing a temporary copy). `digests` holds hex digests
    of `data` its caller has computed already, by hash name (`{"sha256": ...}`): the exact
    signal types take them as they are instead of hashing the bytes again (`digest`)."""

    data: bytes
    origin: str = ""
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    path: Path | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    # The picture will be asked for too (`picture`: robust views, features, signatures): a
    # photo whose one full decode can serve both (any format but JPEG, whose DCT scaling makes
    # a second decode cheap) gets its picture from the decode `image` makes.
    picture_wanted: bool = False
    _image: DecodedImage | MediaError | None = field(default=None, init=False, repr=False)
    _picture: np.ndarray | MediaError | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def digest(self, name: str) -> str | None:
        """The hex digest `name` of `data` the caller gave (`digests`), or None."""
        return self.digests.get(name)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def content_type(self) -> str | None:
        """PHOTO, VIDEO, or None for bytes that are neither."""
        return sniff_content_type(self.data[:16])

    @property
    def content_types(self) -> frozenset[str]:
        """The content types this content is: BYTES, plus PHOTO or VIDEO where it is one."""
        kind = self.content_type
        if kind == PHOTO and is_animated_gif(self.data):
            return frozenset({BYTES, PHOTO, VIDEO})
        return frozenset({BYTES} if kind is None else {BYTES, kind})

    def image(self) -> DecodedImage:
        """The decoded image (fast path), decoded once; raises MediaError every time it fails."""
        if self._image is None:
            side = self.limits.picture_side if self.picture_wanted else None
            try:
                self._image, picture = _decode(self.data, self.limits, fast=True, picture_side=side)
                if picture is not None and self._picture is None:
                    self._picture = picture
            except MediaError as exc:
                self._image = exc
        if isinstance(self._image, MediaError):
            raise self._image
        return self._image

    def picture(self) -> np.ndarray:
        """The photo as displayed (HxWx3 uint8 RGB), its aspect ratio kept and its longest side
        at most `limits.picture_side`, decoded once: what the robust views, the features and
        protected signatures are made from. The fast path's pixels (`image().pixels`) are it
        where that path reduced nothing and the photo is small enough; the decode `image` made
        gave it where `picture_wanted` was set before and the photo is no JPEG; otherwise the
        bytes are decoded again at this size. Raises MediaError every time decoding fails."""
        if self._picture is None:
            image = self.image()
            side = self.limits.picture_side
            try:
                if not image.reduced and max(image.width, image.height) <= side:
                    self._picture = image.pixels
                else:
                    self._picture = decode_image(self.data, self.limits, max_side=side).pixels
            except MediaError as exc:
                self._picture = exc
        if isinstance(self._picture, MediaError):
            raise self._picture
        return self._picture

    @contextlib.contextmanager
    def file(self) -> Iterator[Path]:
        """A path to the content's bytes: `path` itself, or a private temporary file."""
        if self.path is not None:
            yield self.path
            return
        fd, name = tempfile.mkstemp(prefix="childguard-", suffix=".media")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.data)
            yield Path(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)


def special_file_kind(mode: int) -> str | None:
    """What a non-regular file is ("fifo", "character device", ...), None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def read_bytes(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Read a regular file within the byte limit, turning OS errors into MediaError.

    The file is opened without blocking and checked on the open descriptor, so a FIFO, a
    device (a link to `/dev/zero`) or a socket is refused before a byte is read, and never
    more than `limits.max_bytes + 1` bytes are read whatever the file claims."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise MediaError("unreadable", f"cannot open file: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        kind = special_file_kind(st.st_mode)
        if kind is not None:
            raise MediaError("not-a-file", f"{kind}, not a regular file: never read")
        if st.st_size > limits.max_bytes:
            raise MediaError(
                "too-large", f"file is {st.st_size} bytes, over the limit of {limits.max_bytes}"
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise MediaError("unreadable", f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limits.max_bytes:
        raise MediaError("too-large", f"file grew past the limit of {limits.max_bytes} bytes")
    return data


class BudgetExceeded(BaseException):
    """A file ran past its time budget. A BaseException, so that no decoder's or stage's
    `except Exception` swallows it half-way; `hash_source` turns it into the file's record."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error = str(MediaError("timeout", message))


def _budget_message(seconds: float) -> str:
    return f"hashing took longer than the {seconds:g} s budget per file"


@functools.cache
def _expired(seconds: float) -> type[BudgetExceeded]:
    """The BudgetExceeded of a `seconds` budget, as a class the deadline watchdog can raise."""
    message = _budget_message(seconds)

    class Expired(BudgetExceeded):
        def __init__(self) -> None:
            super().__init__(message)

    return Expired


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise BudgetExceeded in this block after `seconds` of wall-clock time (with `seconds` <=
    0 the block runs unbounded).

    In a process's main thread (pool workers, a serial batch) a SIGALRM timer, which also
    interrupts a blocking read; in any other thread (a Dask worker's tasks, a thread pool) the
    deadline watchdog (`childguard.deadline`). Either way decoders are interrupted between the
    chunks they decode."""
    if seconds <= 0:
        yield
        return
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        with interrupt_after(seconds, _expired(seconds)):
            yield
        return

    def expired(signum: int, frame: object) -> None:
        raise BudgetExceeded(_budget_message(seconds))

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def decode_image(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, fast: bool = True, max_side: int | None = None
) -> DecodedImage:
    """Decode image bytes to RGB pixels safely.

    With `fast=True` JPEGs are decoded at reduced scale in the DCT domain
    (libjpeg scaling via Pillow's `draft`) and every image is reduced to at most
    `limits.work_pixels` pixels; this is what perceptual hashing uses. With
    `fast=False` the full-resolution pixels are returned (the reference path).
    With `max_side` (`fast` is then ignored) the aspect ratio is kept and the longest side
    reduced to at most `max_side` (`fitted_size`), the picture of `Content.picture`; a JPEG
    that DCT scaling brought to between `dc_min_fraction` of that and that is kept at the
    scaled size.
    EXIF orientation is always applied, so a photo hashes as it is displayed.
    """
    return _decode(data, limits, fast=fast, max_side=max_side)[0]


def _decode(
    data: bytes,
    limits: Limits,
    *,
    fast: bool = True,
    max_side: int | None = None,
    picture_side: int | None = None,
) -> tuple[DecodedImage, np.ndarray | None]:
    """`decode_image`, and with `picture_side` the picture of at most that side
    (`Content.picture`) from the same full decode, for a photo that is no JPEG and that the
    decode reduces (else None: the picture is the pixels, or a JPEG's own DCT-scaled decode)."""
    if not data:
        raise MediaError("empty", "file is empty")
    if len(data) > limits.max_bytes:
        raise MediaError("too-large", f"{len(data)} bytes, over the limit of {limits.max_bytes}")
    sniffed = sniff_format(data[:16])
    if sniffed is None:
        raise MediaError("not-an-image", "content is not a recognised image format")
    if sniffed not in SUPPORTED_FORMATS:
        raise MediaError("unsupported", f"{sniffed} images are not supported here")
    if sniffed == "JPEG":
        short = jpeg_stream_shortfall(data)
        if short is not None:
            raise MediaError("truncated", short)
    try:
        with warnings.catch_warnings():
            # The pixel limit is applied just below, from the header, before any decode.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            fmt = img.format or sniffed
            if width * height > limits.max_pixels:
                raise MediaError(
                    "too-many-pixels",
                    f"{width}x{height} = {width * height} pixels, over the limit of "
                    f"{limits.max_pixels} (possible decompression bomb)",
                )
            reduced = False
            if max_side is not None:
                target = fitted_size(width, height, max_side)
            else:
                target = fast_size(width, height, limits) if fast else (width, height)
            if target != (width, height) and max_side is None:
                small = _fast_jpeg(data, img, fmt, target, limits)
                if small is not None:
                    return small, None
            if target != (width, height) and fmt in ("JPEG", "MPO"):
                # libjpeg DCT scaling: decode at 1/2, 1/4 or 1/8, never below
                # `dc_min_fraction` of the target (the resize below brings it to the target).
                floor = limits.dc_min_fraction
                img.draft("RGB", (math.ceil(target[0] * floor), math.ceil(target[1] * floor)))
            # The first frame (or page) is the current one after open; the others are never
            # counted or decoded here (a TIFF of 50,000 pages costs one page).
            img.load()
            if max_side is not None and max(img.size) <= max_side:
                target = img.size  # a fitted picture as the DCT scaling left it: no resize
                reduced = target != (width, height)
            picture = None
            if picture_side is not None and fmt not in ("JPEG", "MPO") and img.size != target:
                fitted = fitted_size(width, height, picture_side)
                picture = _finished(img, fitted, width * height >= _LARGE_PIXELS)[0]
            pixels, resized, swaps = _finished(img, target, width * height >= _LARGE_PIXELS)
            reduced = reduced or resized
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("too-many-pixels", f"decompression bomb refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        # The magic bytes said image, the decoder disagrees: a damaged file.
        raise MediaError("corrupt", f"{sniffed} header but no readable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        reason = "truncated" if "truncated" in msg or "broken data stream" in msg else "corrupt"
        raise MediaError(reason, f"cannot decode {sniffed}: {msg}") from exc
    except MemoryError as exc:
        raise MediaError("too-many-pixels", "image needs more memory than available") from exc
    except Exception as exc:  # a decoder plugin's own exception type: still this file's fault
        raise MediaError("corrupt", f"cannot decode {sniffed}: {exc!r}") from exc
    disp_w, disp_h = (height, width) if swaps else (width, height)
    decoded = DecodedImage(pixels=pixels, width=disp_w, height=disp_h, format=fmt, reduced=reduced)
    return decoded, picture


def _finished(
    img: Image.Image, target: tuple[int, int], large: bool
) -> tuple[np.ndarray, bool, bool]:
    """A loaded frame as RGB pixels of `target` (the stored, pre-orientation frame is reduced,
    then oriented as displayed; `large`: the original has _LARGE_PIXELS or more), whether it
    was resized, and whether the orientation swapped its sides. `img` itself is left as it is,
    so one decode can be finished at two sizes. The orientation is read from `img` before any
    conversion: compositing transparency on white (`_to_rgb`) makes a new image without the
    EXIF block."""
    orientation = _orientation(img)
    if large and img.size != target:
        img = _reduce_large(img, target)
    if img.mode != "RGB":
        img = _to_rgb(img)
    resized = img.size != target
    if resized:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    img = _oriented(img, orientation)
    return np.asarray(img, dtype=np.uint8), resized, orientation in (5, 6, 7, 8)


# From this many pixels on, the decoded image is reduced before any mode conversion, so that
# a conversion never copies the full-size frame (16-bit and alpha images at up to the limit).
_LARGE_PIXELS = 32_000_000
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _reduce_large(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Reduce a large decoded frame towards `target` in its own mode, without a full-size copy
    in a wider type: 16/32-bit grey by block means in float32, palettes after conversion."""
    if img.mode in _WIDE_GREY:
        arr = np.asarray(img)
        k = max(1, min(arr.shape[1] // target[0], arr.shape[0] // target[1]))
        h, w = (arr.shape[0] // k) * k, (arr.shape[1] // k) * k
        small = arr[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3), dtype=np.float32)
        del arr
        top = float(small.max()) or 1.0
        img = Image.fromarray((small / top * 255.0).astype(np.uint8), "L")
    elif img.mode in ("P", "1", "PA"):
        img = _to_rgb(img)
    if img.size != target:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def jpeg_stream_shortfall(data: bytes) -> str | None:
    """Why a JPEG's entropy-coded data cannot hold the image its frame header claims, or None.

    Every 8x8 block costs at least two bits in a sequential scan (a DC code and an end of
    block) and at least one in a progressive file's DC scan. A header that claims more
    blocks than the file has bits (10000x8900 over a 640x480 stream) would decode as grey
    padding; it is refused as truncated instead."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None  # not a marker where one must be: the decoder gives the error
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3) and pos + 10 <= n:  # Huffman-coded frames
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            comps = data[pos + 9]
            specs = data[pos + 10 : pos + 10 + 3 * comps]
            if not height or not width or len(specs) < 3 * comps or comps == 0:
                return None
            hmax = max(specs[i + 1] >> 4 for i in range(0, len(specs), 3)) or 1
            vmax = max(specs[i + 1] & 15 for i in range(0, len(specs), 3)) or 1
            blocks = 0
            for i in range(0, len(specs), 3):
                hs, vs = specs[i + 1] >> 4, specs[i + 1] & 15
                blocks += math.ceil(math.ceil(width * hs / hmax) / 8) * math.ceil(
                    math.ceil(height * vs / vmax) / 8
                )
            bits = 1 if marker == 0xC2 else 2
            if blocks * bits > 8 * n:
                return (
                    f"frame header claims {width}x{height} ({blocks} blocks) but the file "
                    f"holds {n} bytes, too few for that many blocks"
                )
            return None
        if marker == 0xDA:
            return None
        pos += 2 + length
    return None


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """`width` x `height` scaled so that the longest side is at most `max_side`, the aspect
    ratio kept (each side rounded, at least 1); never enlarged."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    f = max_side / longest
    return max(1, round(width * f)), max(1, round(height * f))


def fast_size(width: int, height: int, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int]:
    """The reduced size the fast path hands to PDQ for a `width` x `height` original.

    PDQ blurs each axis with a box filter `ceil(side / 128)` pixels wide, twice, then
    samples a 64x64 grid. Reducing a side from `d` to `d * k / ceil(d / 128)` (with
    `k = limits.pdq_window`) keeps that blur the same fraction of the picture, which is
    why the reduced hash stays close to the full-resolution one. Sides that are already
    small are left alone, and the result never exceeds `limits.work_pixels`.
    """
    if min(width, height) <= limits.draft_min_side:
        return width, height

    def side(d: int) -> int:
        window = math.ceil(d / 128)
        return d if window <= limits.pdq_window else max(1, round(d * limits.pdq_window / window))

    w, h = side(width), side(height)
    if w * h > limits.work_pixels:
        scale = math.sqrt(limits.work_pixels / (w * h))
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
    return w, h


# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _jpeg_scale(width: int, height: int, target: tuple[int, int], limits: Limits) -> int:
    """The largest libjpeg reduction (8, 4, 2 or 1) whose image is at least
    `limits.dc_min_fraction` of `target` on both sides."""
    for scale in (8, 4, 2):
        if (
            math.ceil(width / scale) >= limits.dc_min_fraction * target[0]
            and math.ceil(height / scale) >= limits.dc_min_fraction * target[1]
        ):
            return scale
    return 1


def _fast_jpeg(
    data: bytes, img: Image.Image, fmt: str, target: tuple[int, int], limits: Limits
) -> DecodedImage | None:
    """The fast-path image of a JPEG from a reduced decode of its luma alone (None: not a
    JPEG this path takes, and the general decode below runs).

    Progressive files whose 1/8 image is big enough go through the DC-only kernel; other
    YCbCr or grey JPEGs through libjpeg's DCT scaling with greyscale output (libjpeg then
    skips the chroma's IDCT and colour conversion). The reduced luma is EXIF-oriented and
    hashed at the original's size (see `LumaPlane`); the RGB `pixels`, at `target`, come from
    the same reduced decode in colour, made only when asked for.
    """
    if fmt not in ("JPEG", "MPO") or img.mode not in ("RGB", "L"):
        return None
    width, height = img.size
    scale = _jpeg_scale(width, height, target, limits)
    orientation = _orientation(img)
    eighth = None
    if _decode_dc is not None and fmt == "JPEG" and img.info.get("progressive"):
        wide = limits.dc_min_window and min(width, height) > 128 * (limits.dc_min_window - 1)
        if scale == 8 or wide:
            eighth = _decode_dc(data, limits.max_pixels, True)
    use_dc = eighth is not None
    if eighth is not None:
        scale = 8
    else:
        # Pillow's draft picks the largest reduction whose image is at least the size asked.
        img.draft("L", (max(1, width // scale), max(1, height // scale)))
        img.load()
        scale = _scale_of(width, img.size[0])
    box = (0.0, 0.0, width / scale, height / scale)
    plane = (
        eighth if eighth is not None else np.asarray(img if img.mode == "L" else img.convert("L"))
    )
    # PDQ hashes the reduced luma as if resized back to the original's size: its box filter
    # and sampling then run exactly as on the full decode (`pdq_from_luma` never makes that
    # image, so it costs what the small plane costs).
    luma = _oriented_plane(plane, box, (width, height), orientation)

    def colour() -> np.ndarray:
        try:
            if use_dc:
                assert _decode_dc is not None
                rgb = _decode_dc(data, limits.max_pixels)
                if rgb is None:  # pragma: no cover - the same bytes decoded just above
                    raise MediaError("corrupt", "the DC scans decoded once but not twice")
                small = Image.fromarray(rgb)
            else:
                with Image.open(io.BytesIO(data)) as again:
                    again.draft("RGB", (max(1, width // scale), max(1, height // scale)))
                    again.load()
                    small = again.convert("RGB")
            return np.asarray(_oriented(_resize_to(small, target, box), orientation))
        except MediaError:
            raise
        except Exception as exc:  # pragma: no cover - the luma of these bytes decoded
            raise MediaError("corrupt", f"cannot decode {fmt} in colour: {exc!r}") from exc

    swaps = orientation in (5, 6, 7, 8)
    disp_w, disp_h = (height, width) if swaps else (width, height)
    return DecodedImage(colour, disp_w, disp_h, fmt, reduced=True, luma=luma)


def _scale_of(width: int, reduced_width: int) -> int:
    """The libjpeg reduction (1, 2, 4 or 8) that made a `reduced_width` image of `width`."""
    for scale in (8, 4, 2):
        if math.ceil(width / scale) == reduced_width:
            return scale
    return 1


def _resize_to(
    img: Image.Image, target: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    """`img` (a reduced decode covering `box` of it) resized to `target` with Lanczos."""
    if img.size == target and box == (0.0, 0.0, float(img.size[0]), float(img.size[1])):
        return img
    return img.resize(target, Image.Resampling.LANCZOS, box=box)


def _oriented_plane(
    plane: np.ndarray,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    orientation: int,
) -> LumaPlane:
    """A reduced luma plane (its region `box` mapping onto `size`) shown upright for an EXIF
    `orientation`: the plane is flipped and transposed, and its box and size with it."""
    x0, y0, x1, y1 = box
    w, h = size
    transpose, flip_x, flip_y = _ORIENTATION_PARTS.get(orientation, (False, False, False))
    if transpose:
        plane, (x0, y0, x1, y1), (w, h) = plane.T, (y0, x0, y1, x1), (h, w)
    if flip_x:
        cols = plane.shape[1]
        plane, x0, x1 = plane[:, ::-1], cols - x1, cols - x0
    if flip_y:
        rows = plane.shape[0]
        plane, y0, y1 = plane[::-1, :], rows - y1, rows - y0
    return LumaPlane(np.ascontiguousarray(plane), (w, h), (x0, y0, x1, y1))


# EXIF orientation -> (transpose, then flip left-right, then flip top-bottom): the same
# picture as `_ORIENTATION_TRANSPOSE`, on a NumPy plane.
_ORIENTATION_PARTS = {
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}


def _oriented(img: Image.Image, orientation: int) -> Image.Image:
    """`img` shown upright for an EXIF `orientation`."""
    transpose = _ORIENTATION_TRANSPOSE.get(orientation)
    return img if transpose is None else img.transpose(transpose)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent or unreadable)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not stop the hash
        return 1
    return value if isinstance(value, int) else 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparency is composited on white, as a viewer shows it."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr / max(arr.max(), 1.0) * 255.0).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return img.convert("RGB")


def load_image(
    source: Path | bytes, limits: Limits = DEFAULT_LIMITS, *, fast: bool = True
) -> DecodedImage:
    """Load from a path or bytes (see `decode_image`)."""
    data = read_bytes(source, limits) if isinstance(source, Path) else source
    return decode_image(data, limits, fast=fast)
