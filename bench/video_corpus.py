"""Synthetic test videos made with FFmpeg from benign photos: slideshows of several photos and
slow pans/zooms over one photo, their variants (re-encoded, resized, trimmed, letterboxed,
watermarked), and hostile files (zero-length, not a video, truncated, corrupt, huge frame size
in the header, hours long). Used by tests/video and bench/bench_video.py.

Every clip is made once into a cache folder under a name that encodes its recipe, so a second
run (or a second test session) reuses it. Nothing is downloaded: the photos are the demo assets
and `make photos`'s Debian wallpapers.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "childguard" / "demo" / "assets"
PHOTOS = ROOT / ".cache" / "photos"
DEFAULT_CACHE = ROOT / ".cache" / "videos"

WIDTH, HEIGHT, FPS = 320, 240, 25
VARIANTS = ("reencoded", "resized", "trimmed", "letterboxed", "watermarked")


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def demo_photos() -> list[Path]:
    """The demo assets (always present); the synthetic disc is the watermark logo, not a clip."""
    return sorted(p for p in ASSETS.glob("*.jpg"))


def debian_photos() -> list[Path]:
    """`make photos`'s wallpapers, in a fixed order (empty when not fetched)."""
    return sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def ffmpeg(*args: str, timeout: float = 120) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace")[-800:]
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {' '.join(cmd)}\n{err}")


@dataclass
class Corpus:
    """Clips made in `cache`, each once."""

    cache: Path = DEFAULT_CACHE

    def _out(self, stem: str, recipe: Sequence[object], suffix: str) -> tuple[Path, bool]:
        key = hashlib.sha256(repr(list(recipe)).encode()).hexdigest()[:12]
        out = self.cache / f"{stem}-{key}{suffix}"
        return out, out.exists() and out.stat().st_size > 0

    def _make(self, out: Path, *args: str) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(".tmp-" + out.name)
        ffmpeg(*args, str(tmp))
        tmp.replace(out)
        return out

    # -------------------------------------------------------------- originals

    def slideshow(
        self, photos: Sequence[Path], seconds_each: float = 2.0, stem: str = "slides"
    ) -> Path:
        """The photos one after another, each `seconds_each` s, cropped to fill the frame."""
        recipe = ["slideshow", [str(p) for p in photos], seconds_each, WIDTH, HEIGHT, FPS]
        out, done = self._out(stem, recipe, ".mp4")
        if done:
            return out
        inputs: list[str] = []
        chains = []
        for i, photo in enumerate(photos):
            inputs += [
                "-loop",
                "1",
                "-framerate",
                str(FPS),
                "-t",
                str(seconds_each),
                "-i",
                str(photo),
            ]
            chains.append(
                f"[{i}:v]scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=increase,"
                f"crop={WIDTH}:{HEIGHT},setsar=1,fps={FPS}[v{i}]"
            )
        joined = "".join(f"[v{i}]" for i in range(len(photos)))
        graph = ";".join(chains) + f";{joined}concat=n={len(photos)}:v=1:a=0,format=yuv420p[out]"
        return self._make(
            out, *inputs, "-filter_complex", graph, "-map", "[out]",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        )  # fmt: skip

    def pan(self, photo: Path, seconds: float = 6.0, stem: str = "pan") -> Path:
        """A slow zoom (1.0 to 1.25) and pan across one photo."""
        recipe = ["pan", str(photo), seconds, WIDTH, HEIGHT, FPS]
        out, done = self._out(stem, recipe, ".mp4")
        if done:
            return out
        n = int(seconds * FPS)
        big_w, big_h = WIDTH * 4, HEIGHT * 4
        graph = (
            f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase,crop={big_w}:{big_h},"
            f"zoompan=z='1+0.25*on/{n}':x='(iw-iw/zoom)*on/{n}':y='(ih-ih/zoom)/2':"
            f"d={n}:s={WIDTH}x{HEIGHT}:fps={FPS},format=yuv420p"
        )
        return self._make(
            out, "-i", str(photo), "-vf", graph, "-frames:v", str(n),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        )  # fmt: skip

    # -------------------------------------------------------------- variants

    def variant(self, src: Path, kind: str, logo: Path | None = None) -> Path:
        """One of VARIANTS of clip `src`."""
        logo = logo or ASSETS / "synthetic-disc.png"
        recipes: dict[str, tuple[str, list[str]]] = {
            # Another codec and container at a low bitrate.
            "reencoded": (".webm", ["-c:v", "libvpx", "-b:v", "150k", "-deadline", "realtime"]),
            "resized": (
                ".mp4",
                ["-vf", "scale=160:120", "-c:v", "libx264", "-preset", "veryfast", "-crf", "28"],
            ),
            # The middle of the clip: the first and last second cut (see below).
            "trimmed": (".mp4", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
            "letterboxed": (
                ".mp4",
                [
                    "-vf",
                    f"scale={WIDTH}:{HEIGHT * 3 // 4},pad={WIDTH}:{HEIGHT}:0:{HEIGHT // 8}",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-crf",
                    "23",
                ],
            ),
            "watermarked": (
                ".mp4",
                [
                    "-i",
                    str(logo),
                    "-filter_complex",
                    "[0:v]drawbox=x=8:y=8:w=64:h=18:color=white@0.6:t=fill[b];"
                    "[1:v]scale=40:40,format=rgba,colorchannelmixer=aa=0.7[l];"
                    "[b][l]overlay=W-w-8:H-h-8,format=yuv420p",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-crf",
                    "23",
                ],
            ),
            "mpeg4-avi": (".avi", ["-c:v", "mpeg4", "-q:v", "6"]),
            "mkv": (".mkv", ["-c:v", "copy"]),
            "mov": (".mov", ["-c:v", "copy"]),
            "gif": (".gif", ["-vf", "fps=4,scale=160:-1:flags=bilinear"]),
        }
        if kind not in recipes:
            raise ValueError(f"unknown variant {kind!r}")
        suffix, args = recipes[kind]
        out, done = self._out(f"{src.stem}.{kind}", [src.name, kind, args], suffix)
        if done:
            return out
        if kind == "trimmed":
            keep = f"{max(0.5, _duration(src) - 2):.2f}"
            return self._make(out, "-ss", "1", "-i", str(src), "-t", keep, *args)
        return self._make(out, "-i", str(src), *args)

    # -------------------------------------------------------------- hostile files

    def hostile(self) -> dict[str, Path]:
        """Files that must each fail with a clear MediaError (name -> path)."""
        d = self.cache / "hostile"
        d.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        out["zero-length"] = d / "empty.mp4"
        out["zero-length"].write_bytes(b"")
        out["not-a-video"] = d / "notes.mp4"
        out["not-a-video"].write_text("These are meeting notes, not a video.\n" * 20)
        clip = self.slideshow(demo_photos()[:2], 1.0, stem="hostile-src")
        data = clip.read_bytes()
        out["truncated"] = d / "truncated.mp4"
        out["truncated"].write_bytes(data[: len(data) // 2])
        rng = random.Random(13)
        junk = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
        out["corrupt"] = d / "corrupt.mp4"
        # A plausible ftyp box, then a box of the right size full of noise (no moov).
        body = struct.pack(">I4s", 8 + len(junk), b"mdat") + junk
        out["corrupt"].write_bytes(data[:32] + body if data[4:8] == b"ftyp" else body)
        out["huge-resolution"] = self._huge_resolution(d / "huge.mkv")
        out["hours-long"] = self._hours_long(d / "long.mp4")
        return out

    def _huge_resolution(self, out: Path) -> Path:
        """A tiny raw-video Matroska file whose header claims 12000x12000 frames."""
        if out.exists():
            return out
        tmp = out.with_name("huge-src.mkv")
        ffmpeg(
            "-f", "lavfi", "-i", "color=c=gray:s=256x256:r=1:d=2",
            "-c:v", "rawvideo", "-pix_fmt", "gray", str(tmp),
        )  # fmt: skip
        data = bytearray(tmp.read_bytes())
        for element in (b"\xb0", b"\xba"):  # PixelWidth, PixelHeight: 2-byte values of 256
            at = data.find(element + b"\x82\x01\x00")
            if at < 0:
                raise RuntimeError("no PixelWidth/PixelHeight of 256 to patch")
            data[at + 2 : at + 4] = (12000).to_bytes(2, "big")
        out.write_bytes(bytes(data))
        tmp.unlink()
        return out

    def _hours_long(self, out: Path) -> Path:
        """Two hours of a 16x16 frame at 1 frame a second (a small file)."""
        if out.exists():
            return out
        self._make(
            out, "-f", "lavfi", "-i", "color=c=blue:s=16x16:r=1:d=7200",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage",
        )  # fmt: skip
        return out


def _duration(path: Path) -> float:
    done = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries", "format=duration",
            "-of", "default=nw=1:nk=1", str(path),
        ],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return float(done.stdout.decode().strip())
