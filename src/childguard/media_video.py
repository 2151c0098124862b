"""Safe video decoding: byte-level checks (format, zero length, truncation), then probing and
decoding in a worker process under the video limits of `childguard.media.Limits` (seconds,
frame pixels, frames, memory, wall clock).

A hostile file can hang or crash a decoder, so no video is decoded in the calling process.
`run_video_job` hands the file to a long-lived worker (one per calling process, started on
first use) that probes it with OpenCV's FFmpeg backend, refuses it when the probe breaks a
limit, and only then runs the job: a function named by "module:function" inside childguard
(vPDQ's hasher lives with its signal type, `childguard.signals.vpdq`). A job that runs past
`Limits.video_timeout`, or kills the worker (out of memory, a decoder crash), is a MediaError;
the worker is then replaced on the next call.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from childguard.errors import MediaError
from childguard.media import (
    DEFAULT_LIMITS,
    Limits,
    gif_frame_count,
    is_animated_gif,
    sniff_video_format,
)

VIDEO_FORMATS = ("MP4", "MOV", "MKV", "WEBM", "AVI", "GIF")
# File names that promise a video: content so named that is not one is an error, not a skip.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi")


@dataclass(frozen=True)
class VideoInfo:
    """What a probe read from a video's headers (frames and seconds may be estimates)."""

    format: str
    width: int
    height: int
    fps: float
    frames: int  # 0 when the container does not say
    seconds: float  # 0.0 when the container does not say

    @property
    def frame_pixels(self) -> int:
        return self.width * self.height


# ------------------------------------------------------------------------------ bytes


def video_format(data: bytes) -> str | None:
    """The video container of `data` (see VIDEO_FORMATS), or None when it is not a video."""
    fmt = sniff_video_format(data[:64])
    if fmt is not None:
        return fmt
    return "GIF" if is_animated_gif(data) else None


def named_as_video(name: str | Path | None) -> bool:
    """Whether a file name or URL ends in a video suffix (query and fragment ignored)."""
    if not name:
        return False
    text = str(name).split("?", 1)[0].split("#", 1)[0].lower()
    return text.endswith(VIDEO_SUFFIXES)


def check_video_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """The container format of `data`, after the checks that need no decoder: empty, too
    large, not a video, truncated. Raises MediaError with one of those reasons."""
    if not data:
        raise MediaError("empty", "file is empty")
    if len(data) > limits.max_bytes:
        raise MediaError("too-large", f"{len(data)} bytes, over the limit of {limits.max_bytes}")
    fmt = video_format(data)
    if fmt is None:
        raise MediaError("not-a-video", "content is not a recognised video format")
    short = _truncation(fmt, data)
    if short:
        raise MediaError("truncated", f"{fmt} file ends early: {short}")
    return fmt


def _truncation(fmt: str, data: bytes) -> str | None:
    """Why the container structure says the file was cut short, or None."""
    n = len(data)
    if fmt in ("MP4", "MOV"):
        pos = 0
        while pos + 8 <= n:
            size, kind = struct.unpack_from(">I4s", data, pos)
            header = 8
            if size == 1:
                if pos + 16 > n:
                    return "a box header is cut off"
                size = struct.unpack_from(">Q", data, pos + 8)[0]
                header = 16
            elif size == 0:  # the last box runs to the end of the file
                return None
            if size < header:
                return None  # damaged, not short: the decoder says what it can
            if pos + size > n:
                name = kind.decode("latin-1")
                return f"box {name!r} wants {size} bytes, {n - pos} are left"
            pos += size
        return "a box header is cut off" if pos != n else None
    if fmt in ("MKV", "WEBM"):
        pos = 4
        head_size, pos = _ebml_vint(data, pos)
        if head_size is None:
            return "the EBML header is cut off"
        pos += head_size
        if pos + 4 > n:
            return "no segment after the EBML header"
        if data[pos : pos + 4] != b"\x18\x53\x80\x67":
            return None
        seg_size, body = _ebml_vint(data, pos + 4)
        if seg_size is None:
            return "the segment header is cut off"
        if seg_size >= 0 and body + seg_size > n:
            return f"the segment wants {seg_size} bytes, {n - body} are left"
        return None
    if fmt == "AVI":
        riff = struct.unpack_from("<I", data, 4)[0] if n >= 8 else 0
        if riff + 8 > n:
            return f"the RIFF chunk wants {riff} bytes, {n - 8} are left"
        return None
    if fmt == "GIF":
        frames = gif_frame_count(data, stop=1 << 30)
        end = data.rstrip(b"\x00")
        if frames and not end.endswith(b";"):
            return "no GIF trailer after the last frame"
    return None


def _ebml_vint(data: bytes, pos: int) -> tuple[int | None, int]:
    """An EBML element size at `pos`: (value, position after it); value -1 means 'unknown',
    None that the data ends inside it."""
    if pos >= len(data):
        return None, pos
    first = data[pos]
    length = next((i + 1 for i in range(8) if first & (0x80 >> i)), 0)
    if not length or pos + length > len(data):
        return None, pos
    value = first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    if value == (1 << (7 * length)) - 1:
        value = -1
    return value, pos + length


# ------------------------------------------------------------------------------ probing


def probe_video(path: Path, fmt: str = "", limits: Limits = DEFAULT_LIMITS) -> VideoInfo:
    """Read a video's size, rate and length without decoding it, and refuse it when they break
    `limits`. Runs inside the worker (OpenCV's FFmpeg backend); raises MediaError."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise MediaError("corrupt", f"{fmt or 'video'} header but no readable video stream")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise MediaError("corrupt", f"video stream has no frame size ({width}x{height})")
    fps = fps if 0 < fps < 10_000 else 0.0
    seconds = frames / fps if fps and frames else 0.0
    info = VideoInfo(fmt, width, height, fps, frames, seconds)
    check_limits(info, limits)
    return info


def check_limits(info: VideoInfo, limits: Limits) -> None:
    """Raise MediaError when a probed video breaks one of the video limits."""
    if info.frame_pixels > limits.max_video_frame_pixels:
        raise MediaError(
            "too-many-pixels",
            f"frames are {info.width}x{info.height} = {info.frame_pixels} pixels, over the "
            f"limit of {limits.max_video_frame_pixels}",
        )
    if info.seconds > limits.max_video_seconds:
        raise MediaError(
            "too-long",
            f"video is {info.seconds:.0f} s long, over the limit of "
            f"{limits.max_video_seconds:.0f} s",
        )
    if info.frames > limits.max_video_frames:
        raise MediaError(
            "too-many-frames",
            f"video has {info.frames} frames, over the limit of {limits.max_video_frames}",
        )


# ------------------------------------------------------------------------------ frames

# Bars: edge bands whose every row (column) is one flat colour, the same in every sampled frame.
BAR_SAMPLES = 8  # frames sampled across the video to find bars
BAR_FLAT_STD = 3.0  # a bar row's luma spread (standard deviation) at most this
BAR_COLOUR_TOLERANCE = 10.0  # a bar row's mean luma within this of the bar's outer edge
BAR_MIN_SHARE = 0.03  # a bar is at least 3% of the frame's height (width), and 4 px
BAR_MIN_KEEP = 0.25  # what is left is at least a quarter of each side, and 16 px
SEEK_FRAMES = 250  # gaps between samples longer than this are seeked, not decoded


@dataclass(frozen=True)
class Box:
    """A rectangle of a frame, in pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


def sample_frames(path: Path, info: VideoInfo, count: int = BAR_SAMPLES) -> Iterator[Any]:
    """Up to `count` grey (luma) frames spread over the video, the first frame first. Runs
    inside the worker; short gaps are decoded through, long ones seeked."""
    import cv2

    if info.frames > 0:
        targets = sorted({info.frames * k // count for k in range(count)})
    else:  # length unknown: one frame a second from the start
        step = max(1, round(info.fps or 25.0))
        targets = [k * step for k in range(count)]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return
        pos = 0
        for target in targets:
            if target - pos > SEEK_FRAMES and cap.set(cv2.CAP_PROP_POS_FRAMES, target):
                pos = target
            while pos < target:
                if not cap.grab():
                    return
                pos += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            pos += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    finally:
        cap.release()


def _flat_run(means: Any, spreads: Any) -> tuple[int, float]:
    """(how many lines from the start are one flat colour, that colour)."""
    import numpy as np

    colour = float(means[0])
    flat = (spreads <= BAR_FLAT_STD) & (np.abs(means - colour) <= BAR_COLOUR_TOLERANCE)
    run = int(np.argmin(flat)) if not flat.all() else len(flat)
    return run, colour


def frame_bars(grey: Any) -> list[tuple[int, float]] | None:
    """The flat bands at a grey frame's edges as (depth, colour) for top, bottom, left and
    right; None for a frame that is one flat colour throughout (it says nothing)."""
    g = grey.astype("float32")
    if float(g.std()) <= BAR_FLAT_STD:
        return None
    rows_mean, rows_std = g.mean(axis=1), g.std(axis=1)
    cols_mean, cols_std = g.mean(axis=0), g.std(axis=0)
    return [
        _flat_run(rows_mean, rows_std),
        _flat_run(rows_mean[::-1], rows_std[::-1]),
        _flat_run(cols_mean, cols_std),
        _flat_run(cols_mean[::-1], cols_std[::-1]),
    ]


def find_bars(frames: Iterable[Any]) -> Box | None:
    """The picture inside uniform bars (letterbox, pillarbox, windowbox) that every one of
    `frames` (grey) has, or None when there are none. Stops reading frames as soon as every
    edge has shown a frame with no bar (a video without bars costs one frame)."""
    depths: list[int] | None = None
    colours: list[float] = []
    height = width = 0
    for grey in frames:
        bars = frame_bars(grey)
        if bars is None:
            continue
        height, width = int(grey.shape[0]), int(grey.shape[1])
        least = [
            max(4, round(BAR_MIN_SHARE * height)),
            max(4, round(BAR_MIN_SHARE * height)),
            max(4, round(BAR_MIN_SHARE * width)),
            max(4, round(BAR_MIN_SHARE * width)),
        ]
        if depths is None:
            depths = [d for d, _ in bars]
            colours = [c for _, c in bars]
        else:
            depths = [
                min(d, depth) if abs(c - colour) <= BAR_COLOUR_TOLERANCE else 0
                for (d, c), depth, colour in zip(bars, depths, colours, strict=True)
            ]
        depths = [d if d >= m else 0 for d, m in zip(depths, least, strict=True)]
        if not any(depths):
            return None
    if depths is None or not any(depths):
        return None
    top, bottom, left, right = depths
    keep_h, keep_w = height - top - bottom, width - left - right
    if keep_h < max(16, BAR_MIN_KEEP * height) or keep_w < max(16, BAR_MIN_KEEP * width):
        return None
    return Box(left, top, keep_w, keep_h)


def read_frames(
    path: Path, info: VideoInfo, limits: Limits, every: int
) -> Iterator[tuple[int, float, Any]]:
    """Every `every`-th frame of the video from the first, as (frame number, seconds, RGB
    array), as vpdq picks them; runs inside the worker and raises MediaError when the frames
    run past the frame or length limits (a header that understated them)."""
    import cv2

    fps = info.fps or 25.0
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        n = 0
        while True:
            if n % every == 0:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None
            if not ok:
                return
            if n >= limits.max_video_frames:
                raise MediaError(
                    "too-many-frames",
                    f"video has over {limits.max_video_frames} frames, the limit",
                )
            if n / fps > limits.max_video_seconds:
                raise MediaError(
                    "too-long",
                    f"frames run past {limits.max_video_seconds:.0f} s, the limit",
                )
            if frame is not None:
                yield n, n / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        cap.release()


# ------------------------------------------------------------------------------ worker

# A job function: (path, probed info, limits, params) -> a JSON-serialisable result.
VideoJob = Callable[[Path, VideoInfo, Limits, Mapping[str, Any]], Any]

_WORKER_CODE = "from childguard.media_video import worker_main; worker_main()"


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        env.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self.buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait up to `timeout` seconds for its answer line."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerDied(f"the video worker is gone ({exc})") from exc
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerTimeout()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait(timeout=5)
                raise _WorkerDied(_exit_reason(self.proc.returncode))
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer


class _WorkerTimeout(Exception):
    pass


class _WorkerDied(Exception):
    pass


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the decoder was killed by {name}"
    return f"the decoder exited with status {code}"


_lock = threading.Lock()
_worker: _Worker | None = None


def _get_worker() -> _Worker:
    global _worker
    if _worker is not None and (_worker.owner != os.getpid() or not _worker.alive()):
        if _worker.owner == os.getpid():
            _worker.kill()
        _worker = None  # a forked child never talks to its parent's worker
    if _worker is None:
        _worker = _Worker()
    return _worker


def stop_worker() -> None:
    """Stop this process's video worker, if one is running (a later job starts another)."""
    global _worker
    with _lock:
        if _worker is not None and _worker.owner == os.getpid():
            _worker.kill()
        _worker = None


def run_video_job(
    path: Path,
    job: str,
    params: Mapping[str, Any] | None = None,
    *,
    fmt: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Probe the video at `path` in the worker and, within `limits`, run `job` there
    ("childguard.module:function", a `VideoJob`) on it; returns the job's result.

    Raises MediaError: the probe's or the job's own, "timeout" past `limits.video_timeout`
    (the worker is killed), "too-much-memory" or "decoder-crashed" when the worker dies."""
    if not job.startswith("childguard.") or ":" not in job:
        raise ValueError(f"a video job is 'childguard.module:function', got {job!r}")
    request = {
        "path": str(path),
        "job": job,
        "params": dict(params or {}),
        "fmt": fmt,
        "limits": asdict(limits),
    }
    global _worker
    with _lock:
        worker = _get_worker()
        try:
            answer = worker.call(request, limits.video_timeout)
        except _WorkerTimeout:
            worker.kill()
            _worker = None
            raise MediaError(
                "timeout", f"decoding took longer than {limits.video_timeout:g} s"
            ) from None
        except _WorkerDied as exc:
            worker.kill()
            _worker = None
            raise MediaError(
                "decoder-crashed",
                f"{exc} (over the memory limit of {limits.max_video_memory} bytes, or a "
                "damaged file)",
            ) from None
    if "error" in answer:
        reason, message = answer["error"]
        raise MediaError(str(reason), str(message))
    return answer["result"]


def worker_main() -> None:
    """The worker's loop: one JSON request per line on stdin, one answer per line on stdout.

    The protocol keeps the original stdout to itself; file descriptor 1 is pointed at stderr,
    so a decoder library that prints cannot corrupt an answer."""
    import resource

    import cv2  # noqa: F401  (loaded before any memory limit applies)

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request = json.loads(line)
        limits = Limits(**request["limits"])
        try:
            module_name, _, func_name = str(request["job"]).partition(":")
            module = importlib.import_module(module_name)
            func: VideoJob = getattr(module, func_name)
            for name in getattr(module, "VIDEO_JOB_IMPORTS", ()):
                importlib.import_module(name)  # the decoder's libraries load outside the limit
        except (ImportError, AttributeError) as exc:
            _send(out, {"error": ["bad-job", f"no video job {request['job']!r}: {exc}"]})
            continue
        memory = _address_space() + limits.max_video_memory
        if hard != resource.RLIM_INFINITY:
            memory = min(memory, hard)
        resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
        try:
            answer = _serve(func, request, limits)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        if answer.get("error", [""])[0] == "corrupt" and _opens(Path(request["path"])):
            # Readable without the limit: the limit, not the file, stopped the decoder.
            answer = {"error": ["too-much-memory", _over_memory(limits)]}
        _send(out, answer)


def _opens(path: Path) -> bool:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return bool(cap.isOpened())
    finally:
        cap.release()


def _over_memory(limits: Limits) -> str:
    return f"decoding needs more memory than the limit of {limits.max_video_memory} bytes"


def _address_space() -> int:
    """This process's virtual memory size in bytes (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _serve(func: VideoJob, request: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    try:
        path = Path(request["path"])
        info = probe_video(path, str(request.get("fmt") or ""), limits)
        return {"result": func(path, info, limits, request.get("params") or {})}
    except MediaError as exc:
        return {"error": [exc.reason, exc.message]}
    except MemoryError:
        return {"error": ["too-much-memory", _over_memory(limits)]}
    except Exception as exc:  # a decoder's own error on a damaged file
        return {"error": ["corrupt", f"cannot decode video: {type(exc).__name__}: {exc}"]}


def _send(out: IO[bytes], answer: Mapping[str, Any]) -> None:
    out.write(json.dumps(answer).encode() + b"\n")
    out.flush()


@contextlib.contextmanager
def video_worker() -> Iterator[None]:
    """Stop the worker when the block ends (tests and one-shot commands)."""
    try:
        yield
    finally:
        stop_worker()
