"""The demo's share of re-posts found: runs `childguard demo`'s story (album of 12 photos from
.cache/photos, 8 re-posts each transformed differently, among 50 unrelated photos) and records
which re-posts the crawler found (full image, and the 240-pixel thumbnail) in the `demo` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import machine_info, record_section
from childguard import log
from childguard.demo.story import run_demo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-record", action="store_true", help="print only; leave the docs alone")
    args = ap.parse_args()
    log.configure("WARNING")
    with tempfile.TemporaryDirectory(prefix="childguard-bench-demo-") as tmp:
        result = run_demo(Path(tmp), out=Console(quiet=True))
    lines = [
        "## Demo: share of re-posts found",
        "",
        f"Run: {machine_info()}. `bench/bench_demo.py` runs the demo story "
        f"(`childguard demo`, photos from `.cache/photos`) in {result.elapsed_s:.0f} s.",
        "",
        f"**Re-posts found: {len(result.found)} of {result.reposts} "
        f"({100 * result.share_found:.0f}%)**; thumbnails (240 px) matched as well: "
        f"{len(result.thumbnails_found)} of {result.reposts}; sightings of photos that were "
        f"not re-posted: {len(result.false_sightings)}; removed re-posts shown `removed`: "
        f"{len({s.image_url for s in result.removed_sightings})} sighting(s) of "
        f"{len(result.removed_posts)} posts, none wrongly; view-spike alerts: "
        f"{len(result.spike_alerts)}.",
        "",
        "| album photo | re-posted as | full image found | thumbnail found |",
        "| --- | --- | --- | --- |",
    ]
    for photo, how in sorted(result.transforms.items()):
        lines.append(
            f"| {photo} | {how} | {'yes' if photo in result.found else 'no'} | "
            f"{'yes' if photo in result.thumbnails_found else 'no'} |"
        )
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_record:
        record_section("demo", markdown)


if __name__ == "__main__":
    main()
