"""The picture from the fast path's decode: photos that are no JPEG, decoded once or twice.

`python bench/bench_picture.py [--count N] [--side PX]`

The robust views, the features and protected signatures are made from the picture
(`Content.picture`: aspect kept, at most 1,280 px); PDQ from the fast path's pixels. A JPEG gets
each from a DCT-scaled decode of its own, which is cheap; any other photo used to be decoded
in full twice. With `picture_wanted` (set by the hashing road when it makes views or features,
by `protect register` and by the hotline's signatures) one full decode gives both. For the
photos of `make photos`, saved as PNG and lossless WebP at most `--side` px (a screenshot's
format and size), this times, in the same run and interleaved per photo, the fast path's
pixels plus the picture decoded twice (the baseline) and from one decode, and the whole
robust hashing (`hash_bytes(robust=True)`: decode, PDQ, views) for scale. Best of 3 in thread
CPU time. Records section `picture` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import publish
from childguard.media import Content
from childguard.pipeline import hash_bytes

PHOTOS = Path(".cache/photos")
FORMATS = {"PNG": {}, "WEBP": {"lossless": True}}


def _best(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return 1e3 * min(times)


def _decoded(data: bytes, wanted: bool) -> tuple[np.ndarray, np.ndarray]:
    content = Content(data, picture_wanted=wanted)
    return content.image().pixels, content.picture()


def run(count: int, side: int) -> str:
    files = sorted(PHOTOS.glob("**/*.jpg"))[:count]
    if not files:
        raise SystemExit(f"no photos under {PHOTOS}; run `make photos`")
    lines = [
        f"{len(files)} photos of `make photos`, saved at most {side} px; per photo, best of 3 in "
        "thread CPU time, ms (median over the photos).",
        "",
        "| format | fast pixels + picture, two decodes | one decode | ratio | robust hashing, "
        "one decode | same pixels |",
        "|---|---|---|---|---|---|",
    ]
    for fmt, options in FORMATS.items():
        two, one, robust, same = [], [], [], True
        for path in files:
            im = Image.open(path).convert("RGB")
            im.thumbnail((side, side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            im.save(out, fmt, **options)
            data = out.getvalue()
            a, b = _decoded(data, False), _decoded(data, True)
            same = same and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
            two.append(_best(lambda d=data: _decoded(d, False)))
            one.append(_best(lambda d=data: _decoded(d, True)))
            robust.append(_best(lambda d=data: hash_bytes(d, robust=True)))
        t, o = statistics.median(two), statistics.median(one)
        lines.append(
            f"| {fmt} | {t:.1f} | {o:.1f} | {t / o:.2f}x | {statistics.median(robust):.1f} | "
            f"{'yes' if same else 'NO'} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20, help="photos to take")
    parser.add_argument("--side", type=int, default=1920, help="longest side of the copies")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)
    publish(
        "picture",
        "## The picture from the fast path's decode (photos that are no JPEG)",
        "make bench-picture",
        run(args.count, args.side),
        record=not args.no_docs,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
