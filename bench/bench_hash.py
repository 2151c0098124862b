"""Hashing throughput: childguard's fast path against Meta's C++ PDQ, full and DCT-scaled.

Three ways to hash each photo, in the same process, interleaved per photo:

- naive: full-resolution decode (EXIF orientation applied) + `pdqhash.compute` (Meta's C++).
- scaled C++: libjpeg-turbo's DCT-scaled decode (Pillow's `draft`, which sets libjpeg's
  `scale_denom`) to the smallest scale whose image is still at least 64x64, the grid PDQ
  samples, + `pdqhash.compute`. This is the issue's "same C++ with libjpeg's DCT-scaled
  decode", reached from Python: the decode is libjpeg-turbo itself and the hash Meta's C++,
  so only the call overhead (and `pdqhash`'s NumPy luma step) is added to a C++ harness.
- childguard: `decode_image(fast=True)` + `PdqSignal` (the luma-only JPEG path, the DC-only
  kernel for progressive files, PDQ in the kernel).

Photos: the benign photos of `make photos`, plus progressive re-encodings of them at 1.6, 3
and 4.5 MP made in a temporary folder (never kept), for the 1.5-5 MP progressive bucket.
Single-core times are the best of 3 runs in thread CPU time (which a busy machine inflates
less than wall time; the naive path is timed once). Throughput on every core is measured
with a process pool for the naive baseline and with `childguard.pipeline.hash_many` (which
also computes md5/sha1/sha256).
Results go to the `hash` section of docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script

from bench._common import machine_info, record_section  # noqa: E402
from childguard.media import Content, load_image  # noqa: E402
from childguard.pipeline import default_workers, hash_many, iter_files  # noqa: E402
from childguard.signals.pdq import PdqSignal, bits_to_hex  # noqa: E402

PHOTOS = ROOT / ".cache" / "photos"


@dataclass
class Row:
    name: str
    megapixels: float
    progressive: bool
    generated: bool
    naive_s: float | None
    scaled_s: float
    fast_s: float
    distance: int  # childguard against the full-resolution hash
    scaled_distance: int  # scaled C++ against the full-resolution hash
    quality: int


def meta_pdq(pixels: np.ndarray) -> tuple[str, int]:
    """Meta's C++ PDQ through `pdqhash` (the reference the kernel is held to)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return bits_to_hex(bits), int(quality)


def naive(path: Path) -> str:
    return meta_pdq(load_image(path, fast=False).pixels)[0]


def scaled(data: bytes) -> str:
    """libjpeg's DCT-scaled decode to the smallest scale of at least 64x64, then Meta's PDQ."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (64, 64))
        img = ImageOps.exif_transpose(img) or img
        return meta_pdq(np.asarray(img.convert("RGB")))[0]


def fast(data: bytes) -> str:
    value = PdqSignal.hash_content(Content(data))
    assert value is not None
    return value.value


def cpu_best(fn: Callable[[], object], repeats: int = 3) -> float:
    """The least thread CPU time of `repeats` runs of `fn()`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best


def measure(path: Path, *, generated: bool = False, repeats: int = 3) -> Row:
    from PIL import Image

    data = path.read_bytes()
    with Image.open(path) as img:
        w, h = img.size
        progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    t0 = time.thread_time()
    full_hash, quality = meta_pdq(load_image(path, fast=False).pixels)
    naive_s = None if generated else time.thread_time() - t0  # one run: the slowest path
    scaled_s = fast_s = float("inf")
    for _ in range(repeats):  # interleaved, so that both see the same machine
        scaled_s = min(scaled_s, cpu_best(lambda: scaled(data), 1))
        fast_s = min(fast_s, cpu_best(lambda: fast(data), 1))
    return Row(
        name=f"re-encoded/{path.name}" if generated else f"{path.parent.name}/{path.name}",
        megapixels=w * h / 1e6,
        progressive=progressive,
        generated=generated,
        naive_s=naive_s,
        scaled_s=scaled_s,
        fast_s=fast_s,
        distance=PdqSignal.distance(full_hash, fast(data)),
        scaled_distance=PdqSignal.distance(full_hash, scaled(data)),
        quality=quality,
    )


def progressive_copies(photos: list[Path], out: Path) -> list[Path]:
    """Progressive re-encodings (quality 90) of every other photo at 1.6, 3 and 4.5 MP."""
    from PIL import Image, ImageOps

    made = []
    for photo in photos[::2]:
        with Image.open(photo) as img:
            picture = (ImageOps.exif_transpose(img) or img).convert("RGB")
        for mp in (1.6, 3.0, 4.5):
            scale = math.sqrt(mp * 1e6 / (picture.width * picture.height))
            if scale > 1:
                continue
            size = (round(picture.width * scale), round(picture.height * scale))
            target = out / f"{photo.stem}-{mp:g}MP.jpg"
            picture.resize(size, Image.Resampling.LANCZOS).save(
                target, "JPEG", quality=90, progressive=True
            )
            made.append(target)
    return made


def throughput(photos: list[Path], workers: int) -> tuple[float, float]:
    """Images per second on `workers` processes: (naive baseline, childguard hash_many)."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(naive, photos[:workers]))  # start the workers before timing
        t0 = time.perf_counter()
        list(pool.map(naive, photos, chunksize=1))
        naive_rate = len(photos) / (time.perf_counter() - t0)
    sources = list(iter_files(photos))
    t0 = time.perf_counter()
    records = list(hash_many(sources, workers=workers))
    fast_rate = len(photos) / (time.perf_counter() - t0)
    assert all(r.ok for r in records)
    return naive_rate, fast_rate


BUCKETS: list[tuple[str, Callable[[Row], bool]]] = [
    ("< 1.5 MP", lambda r: r.megapixels < 1.5),
    ("1.5-5 MP, sequential", lambda r: 1.5 <= r.megapixels < 5 and not r.progressive),
    ("1.5-5 MP, progressive", lambda r: 1.5 <= r.megapixels < 5 and r.progressive),
    ("5-8 MP", lambda r: 5 <= r.megapixels < 8),
    (">= 8 MP, sequential", lambda r: r.megapixels >= 8 and not r.progressive),
    (">= 8 MP, progressive", lambda r: r.megapixels >= 8 and r.progressive),
]


def table_head(*columns: str) -> str:
    return "| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns)


BUCKET_HEAD = table_head(
    "photos", "n", "scaled C++ median ms", "childguard median ms", "speed-up (medians)",
    "median per-photo speed-up", "childguard within 10", "mean", "max",
    "scaled C++ within 10", "mean", "max",
)  # fmt: skip
NAIVE_HEAD = table_head(
    "photos", "n", "naive img/s (1 core)", "childguard img/s (1 core)",
    "speed-up (total time)", "median per-photo speed-up", "within 10 bits (q>=80)",
    "mean distance", "max distance",
)  # fmt: skip
PHOTO_HEAD = table_head(
    "photo", "MP", "JPEG", "naive", "scaled C++", "childguard", "speed-up over scaled",
    "distance", "scaled distance",
)  # fmt: skip


def distances(rows: list[Row], attr: str) -> str:
    good = [getattr(r, attr) for r in rows if r.quality >= 80]
    if not good:
        return "- | - | -"
    within = sum(d <= 10 for d in good)
    return f"{within}/{len(good)} | {statistics.mean(good):.1f} | {max(good)}"


def bucket_line(label: str, rows: list[Row]) -> str:
    scaled_ms = statistics.median(r.scaled_s for r in rows) * 1000
    fast_ms = statistics.median(r.fast_s for r in rows) * 1000
    per_photo = statistics.median(r.scaled_s / r.fast_s for r in rows)
    return (
        f"| {label} | {len(rows)} | {scaled_ms:.1f} | {fast_ms:.1f} | "
        f"**{scaled_ms / fast_ms:.2f}x** | {per_photo:.2f}x | {distances(rows, 'distance')} | "
        f"{distances(rows, 'scaled_distance')} |"
    )


def summarise(rows: list[Row], label: str) -> str:
    naive_total = sum(r.naive_s or 0.0 for r in rows)
    fast_total = sum(r.fast_s for r in rows)
    return (
        f"| {label} | {len(rows)} | {len(rows) / naive_total:.1f} | {len(rows) / fast_total:.1f} | "
        f"**{naive_total / fast_total:.1f}x** | "
        f"{statistics.median((r.naive_s or 0.0) / r.fast_s for r in rows):.1f}x | "
        f"{distances(rows, 'distance')} |"
    )


def main() -> None:
    with (PHOTOS / "manifest.csv").open(newline="") as fh:
        photos = sorted(PHOTOS / row["file"] for row in csv.DictReader(fh))
    if not photos:
        sys.exit("no photos: run `make photos`")
    info = machine_info()
    load = os.getloadavg()[0]
    caveat = (
        f"\n**Caveat:** this run shared {os.cpu_count()} cores with other jobs (load average "
        f"{load:.1f} at start), so absolute times are higher than on an idle machine; the ratios "
        "are from the same run, interleaved per photo, and are the meaningful numbers.\n"
        if load >= (os.cpu_count() or 1)
        else ""
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="childguard-bench-hash-") as tmp:
        generated = progressive_copies(photos, Path(tmp))
        todo = [(p, False) for p in photos] + [(p, True) for p in generated]
        for i, (photo, made) in enumerate(todo, 1):
            rows.append(measure(photo, generated=made))
            r = rows[-1]
            print(
                f"[{i}/{len(todo)}] {r.name} {r.megapixels:.1f} MP "
                f"{'P' if r.progressive else 'S'} scaled {r.scaled_s * 1000:.1f} ms "
                f"childguard {r.fast_s * 1000:.1f} ms ({r.scaled_s / r.fast_s:.2f}x) "
                f"d={r.distance} scaled d={r.scaled_distance}",
                flush=True,
            )
    real = [r for r in rows if not r.generated]
    workers = default_workers()
    naive_rate, fast_rate = throughput(photos, workers)
    buckets = "\n".join(
        bucket_line(label, chosen)
        for label, test in BUCKETS
        if (chosen := [r for r in rows if test(r)])
    )
    big = [r for r in real if r.megapixels >= 8]
    per_photo = "\n".join(
        f"| {r.name} | {r.megapixels:.1f} | {'progressive' if r.progressive else 'sequential'} | "
        f"{'-' if r.naive_s is None else f'{r.naive_s * 1000:.0f}'} | {r.scaled_s * 1000:.1f} | "
        f"{r.fast_s * 1000:.1f} | {r.scaled_s / r.fast_s:.2f}x | {r.distance} | "
        f"{r.scaled_distance} |"
        for r in sorted(rows, key=lambda r: -r.megapixels)
    )
    markdown = f"""## Hashing throughput (`bench/bench_hash.py`)

Machine: {info}.
{caveat}
Three paths on the same photos, interleaved per photo: **naive** = full decode + Meta's C++
PDQ (`pdqhash`); **scaled C++** = libjpeg-turbo's DCT-scaled decode to the smallest scale of
at least 64x64 (Pillow `draft`) + Meta's C++ PDQ, the issue's scaled path; **childguard** =
`decode_image(fast=True)` + `PdqSignal`: JPEG luma alone (libjpeg's greyscale output, or the
DC-only kernel `childguard._jpegdc` for progressive files), hashed by the kernel's PDQ (the
same bits as Meta's C++ on the same luma). Times are the least thread CPU time of 3 runs
(naive: one run).
Distance is the Hamming distance to the full-decode hash, over photos of quality >= 80:
within 10 bits | mean | max. {len(rows) - len(real)} of the photos are progressive
re-encodings (quality 90) of the benign photos at 1.6, 3 and 4.5 MP, made for the run.

{BUCKET_HEAD}
{buckets}

Against the naive full decode (the {len(real)} photos of `make photos`):

{NAIVE_HEAD}
{summarise(real, "all (1-16 MP)")}
{summarise(big, ">= 8 MP")}

Throughput on all {workers} cores together (process pool, every photo once):
naive baseline **{naive_rate:.1f} images/s**, childguard `hash_many` (PDQ + md5/sha1/sha256)
**{fast_rate:.1f} images/s** ({fast_rate / naive_rate:.1f}x).

<details><summary>Per photo (ms of CPU, single core)</summary>

{PHOTO_HEAD}
{per_photo}

</details>
"""
    record_section("hash", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
