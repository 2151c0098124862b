"""Hashing throughput: childguard's fast path against the naive baseline, on real photos.

Naive baseline: full-resolution decode (EXIF orientation applied) + `pdqhash`.
Fast path: `childguard.media.decode_image(fast=True)` (libjpeg DCT scaling, or the DC-only
kernel for progressive JPEGs, and the PDQ-window-matched reduction) + `pdqhash`. Both run in
the same process, on the same photos (`make photos`), interleaved; single-core timings are the
best of a few runs.
Throughput on every core is measured with a process pool for the baseline and with
`childguard.pipeline.hash_many` (which also computes md5/sha1/sha256) for childguard.
Results go to the `hash` section of docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script

from bench._common import best_of, machine_info, record_section  # noqa: E402
from childguard.media import load_image  # noqa: E402
from childguard.pipeline import default_workers, hash_many, iter_files  # noqa: E402
from childguard.signals.pdq import PdqSignal, pdq_from_pixels  # noqa: E402

PHOTOS = ROOT / ".cache" / "photos"


@dataclass
class Row:
    name: str
    megapixels: float
    progressive: bool
    naive_s: float
    fast_s: float
    fast_decode_s: float
    distance: int
    quality: int


def naive(path: Path) -> str:
    return pdq_from_pixels(load_image(path, fast=False).pixels)[0]


def fast(path: Path) -> str:
    return pdq_from_pixels(load_image(path, fast=True).pixels)[0]


def measure(path: Path, repeats: int) -> Row:
    from PIL import Image

    with Image.open(path) as img:
        w, h = img.size
        progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    full_hash, quality = pdq_from_pixels(load_image(path, fast=False).pixels)
    naive_s = best_of(lambda: naive(path), repeats)
    fast_s = best_of(lambda: fast(path), repeats)
    fast_decode_s = best_of(lambda: load_image(path, fast=True), repeats)
    return Row(
        name=f"{path.parent.name}/{path.name}",
        megapixels=w * h / 1e6,
        progressive=progressive,
        naive_s=naive_s,
        fast_s=fast_s,
        fast_decode_s=fast_decode_s,
        distance=PdqSignal.distance(full_hash, fast(path)),
        quality=quality,
    )


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


def summarise(rows: list[Row], label: str) -> str:
    naive_total = sum(r.naive_s for r in rows)
    fast_total = sum(r.fast_s for r in rows)
    good = [r for r in rows if r.quality >= 80]
    within = sum(r.distance <= 10 for r in good)
    return (
        f"| {label} | {len(rows)} | {len(rows) / naive_total:.1f} | {len(rows) / fast_total:.1f} | "
        f"**{naive_total / fast_total:.1f}x** | "
        f"{statistics.median(r.naive_s / r.fast_s for r in rows):.1f}x | "
        f"{within}/{len(good)} ({100 * within / max(1, len(good)):.0f}%) | "
        f"{statistics.mean(r.distance for r in good):.1f} | {max(r.distance for r in good)} |"
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
        f"{load:.1f} at start), so absolute rates are lower than on an idle machine; the ratios "
        "are from the same run, interleaved per photo, and are the meaningful numbers.\n"
        if load >= (os.cpu_count() or 1)
        else ""
    )
    rows = []
    for i, photo in enumerate(photos, 1):
        rows.append(measure(photo, repeats=2))
        r = rows[-1]
        print(
            f"[{i}/{len(photos)}] {r.name} {r.megapixels:.1f} MP naive {r.naive_s * 1000:.0f} ms "
            f"fast {r.fast_s * 1000:.0f} ms ({r.naive_s / r.fast_s:.1f}x) d={r.distance}",
            flush=True,
        )
    workers = default_workers()
    naive_rate, fast_rate = throughput(photos, workers)
    big = [r for r in rows if r.megapixels >= 8]
    big_prog = [r for r in big if r.progressive]
    big_seq = [r for r in big if not r.progressive]
    head = (
        "| photos | n | naive img/s (1 core) | fast img/s (1 core) | speed-up (total time) | "
        "median per-photo speed-up | within 10 bits (q>=80) | mean distance | max distance |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [summarise(rows, "all (1-16 MP)"), summarise(big, ">= 8 MP")]
    if big_seq:
        lines.append(summarise(big_seq, ">= 8 MP, sequential JPEG"))
    if big_prog:
        lines.append(summarise(big_prog, ">= 8 MP, progressive JPEG"))
    per_photo = "\n".join(
        f"| {r.name} | {r.megapixels:.1f} | {'progressive' if r.progressive else 'sequential'} | "
        f"{r.naive_s * 1000:.0f} | {r.fast_s * 1000:.0f} | {r.fast_decode_s * 1000:.0f} | "
        f"{r.naive_s / r.fast_s:.1f}x | {r.distance} |"
        for r in sorted(rows, key=lambda r: -r.megapixels)
    )
    markdown = f"""## Hashing throughput (`bench/bench_hash.py`)

Machine: {info}.
{caveat}
Naive baseline = full decode + `pdqhash`; fast path = childguard's reduced decode + `pdqhash`
(libjpeg DCT scaling, or the DC-only kernel `childguard._jpegdc` for big progressive JPEGs).
Single-core rates are from the best of 2 runs per photo; speed-up is total naive time over
total fast time. Distance is the Hamming distance between the fast and the full-decode hash.

{head}
{chr(10).join(lines)}

Throughput on all {workers} cores together (process pool, every photo once):
naive baseline **{naive_rate:.1f} images/s**, childguard `hash_many` (PDQ + md5/sha1/sha256)
**{fast_rate:.1f} images/s** ({fast_rate / naive_rate:.1f}x).

<details><summary>Per photo (ms, single core)</summary>

| photo | MP | JPEG | naive | fast | fast decode only | speed-up | distance |
| --- | --- | --- | --- | --- | --- | --- | --- |
{per_photo}

</details>
"""
    record_section("hash", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
