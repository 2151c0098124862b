"""Crawl throughput and coverage against local sites, as ratios to `childguard hash` on the
same files in the same run.

Throughput: a site of N images (default 2,000: crops and resizes of the bundled benign photos
in .cache/photos, or synthetic pictures when those are absent) in gallery pages of 20
(lazy-loaded `<img data-src>` inside `<a href>` to the full image, with pagination links),
served on 127.0.0.1 from a process of its own (`bench/crawl_site.py`: an asyncio server that
holds the files in memory; its CPU time is reported apart), then in the same run:
  1. `childguard hash DIR -j CORES` (the baseline), wall time;
  2. a first crawl (empty cache: every image downloaded and hashed), wall time;
  3. a re-crawl (conditional requests: 304s, nothing re-hashed).
The goal: crawl images/s >= 80% of hash images/s.

Coverage: a generated site of about 7,000 pages (`LargeSite`: listing pages with pagination,
one image page per photo, tiny synthetic PNGs, and endless calendars and session-id traps
linked from every page), crawled with a page limit above its useful pages: pages/s, images/s
(as a ratio to `childguard hash` on the same PNGs), and whether every useful page came before
the first calendar or trap page. Results go to the `crawl` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import machine_info, record_section
from bench.crawl_site import LargeSite, StaticSite, gallery_site_from, serve_in_process
from childguard.crawl.runner import run_crawl, warm_up
from childguard.crawl.watch import Watch

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / ".cache" / "photos"
PER_PAGE = 20
SETTINGS = {"CONCURRENT_REQUESTS": 64, "AUTOTHROTTLE_ENABLED": False}


def source_images(limit_side: int = 1280) -> list[Image.Image]:
    files = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = []
    for p in files:
        with Image.open(p) as im:
            im.draft("RGB", (limit_side, limit_side))
            im = im.convert("RGB")
            im.thumbnail((limit_side, limit_side))
            out.append(im.copy())
    if not out:  # no photos fetched: synthetic pictures
        rng = np.random.default_rng(0)
        for _ in range(16):
            arr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            out.append(Image.fromarray(arr).resize((1024, 768), Image.Resampling.BICUBIC))
    return out


def build_site(root: Path, n: int, seed: int = 7) -> Callable[[], StaticSite]:
    """N JPEGs under root/img (for `childguard hash`), and what builds the gallery site of the
    same bytes in the server's own process (so that this one, which forks the crawls, does not
    hold them: a crawl from `childguard crawl run` forks from a process that does not either)."""
    rng = np.random.default_rng(seed)
    bases = source_images()
    (root / "img").mkdir(parents=True)
    for i in range(n):
        im = bases[i % len(bases)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.5, 0.95)), int(h * rng.uniform(0.5, 0.95))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = im.crop((x, y, x + cw, y + ch))
        crop.thumbnail((800, 800))
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=int(rng.integers(75, 92)))
        (root / "img" / f"{i:05d}.jpg").write_bytes(buf.getvalue())
    return partial(gallery_site_from, root / "img", PER_PAGE)


def _built_apart(root: Path, n: int) -> Callable[[], StaticSite]:
    """`build_site` run in a child process: the photos it decodes and the JPEGs it encodes
    never grow this process, which forks every crawl (a fork's cost grows with its parent's
    memory, and `childguard crawl run` forks from a lean one)."""
    proc = multiprocessing.get_context("fork").Process(target=build_site, args=(root, n))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"building the site failed (exit code {proc.exitcode})")
    return partial(gallery_site_from, root / "img", PER_PAGE)


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process of this one, so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _hash_cli(folder: Path, workers: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `childguard hash FOLDER -j WORKERS`."""
    cli = [
        str(Path(sys.executable).parent / "childguard"),
        "hash",
        str(folder),
        "-j",
        str(workers),
        "--no-progress",
        "-o",
        str(out),
    ]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _watch(name: str, base: str, max_pages: int, max_images: int, max_depth: int) -> Watch:
    return Watch(
        name=name,
        seeds=(base + "/",) if name == "large" else (base + "/index.html",),
        max_depth=max_depth,
        max_pages=max_pages,
        max_images=max_images,
        download_delay=0,
        concurrency_per_domain=64,
        obey_robots=False,
        robots_override_reason="benchmark site on loopback",
    )


def _timed_crawl(crawl: Any, db: Path) -> tuple[Any, float, float]:
    """(stats, wall s, CPU s of the crawl process and its workers) of one crawl into `db`."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    stats = crawl(store_url=f"sqlite:///{db}")
    return stats, time.perf_counter() - t0, _children_cpu() - cpu0


def throughput(
    tmp: Path, n: int, workers: int, repeat: int, hash_workers: int | None = None
) -> dict[str, Any]:
    """`repeat` rounds of: `childguard hash`, a first crawl into a new store, a re-crawl.
    Each round's ratios compare runs made seconds apart, so a load that comes and goes on a
    shared machine weighs on both sides alike; the medians are reported."""
    site_dir = tmp / "site"
    t0 = time.perf_counter()
    site = _built_apart(site_dir, n)
    print(f"built a site of {n} images in {time.perf_counter() - t0:.1f}s", flush=True)
    t0 = time.perf_counter()
    warm_up()  # Scrapy's imports, once per process (the service and `crawl run --due` keep it)
    warm_s = time.perf_counter() - t0
    rounds: list[dict[str, Any]] = []
    with serve_in_process(site) as server:
        crawl = partial(
            run_crawl,
            _watch("bench", server.base, 10_000, n * 2, 2),
            allow_private=True,
            hash_workers=hash_workers or workers,
            settings_overrides=SETTINGS,
            robust=False,  # plain PDQ + exact hashes, the same work as `childguard hash`
        )
        for i in range(repeat):
            db = tmp / f"crawl-{i}.db"
            warm_up(store_url=f"sqlite:///{db}")  # a store made and migrated before the clock
            hash_s, hash_cpu = _hash_cli(site_dir / "img", workers, tmp / "hashes.jsonl")
            cpu0 = server.cpu_seconds()
            first, crawl_s, crawl_cpu = _timed_crawl(crawl, db)
            cpu1 = server.cpu_seconds()
            again, recrawl_s, recrawl_cpu = _timed_crawl(crawl, db)  # conditional requests
            cpu2 = server.cpu_seconds()
            r = {
                "hash_s": hash_s,
                "hash_cpu": hash_cpu,
                "crawl_s": crawl_s,
                "crawl_cpu": crawl_cpu,
                "recrawl_s": recrawl_s,
                "recrawl_cpu": recrawl_cpu,
                "first": first,
                "again": again,
                "server_cpu_first": cpu1 - cpu0,
                "server_cpu_again": cpu2 - cpu1,
                "load": os.getloadavg()[0],
            }
            r["ratio"] = (first.images / crawl_s) / (n / hash_s)
            r["recrawl_ratio"] = (again.images / recrawl_s) / (n / hash_s)
            print(
                f"round {i + 1}: hash {hash_s:.1f}s ({hash_cpu:.1f} CPU s), crawl {crawl_s:.1f}s "
                f"({crawl_cpu:.1f} CPU s, ratio {r['ratio']:.2f}), re-crawl {recrawl_s:.1f}s "
                f"(ratio {r['recrawl_ratio']:.2f}); load {r['load']:.1f}",
                flush=True,
            )
            rounds.append(r)
    mid = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    return {**mid, "rounds": rounds, "warm_s": warm_s}


def coverage(
    tmp: Path, listings: int, per_listing: int, extra: int, workers: int
) -> dict[str, Any]:
    site = LargeSite(listings=listings, per_listing=per_listing)
    useful = site.useful_pages()
    limit = len(useful) + extra
    png_dir = tmp / "png"
    png_dir.mkdir()
    for i in range(site.photos):
        (png_dir / f"{i:05d}.png").write_bytes(site.get(f"/img/{i}.png")[2])
    log = tmp / "large.log"
    with serve_in_process(site, log_path=log) as server:
        hash_s, _ = _hash_cli(png_dir, workers, tmp / "png.jsonl")
        t0 = time.perf_counter()
        stats = run_crawl(
            _watch("large", server.base, limit, site.photos * 2, listings + 10),
            store_url=f"sqlite:///{tmp / 'large.db'}",
            allow_private=True,
            hash_workers=workers,
            settings_overrides=SETTINGS,
            robust=False,
        )
        crawl_s = time.perf_counter() - t0
    pages = [
        p for p in log.read_text().splitlines() if not p.startswith("/img/") and p != "/robots.txt"
    ]
    held = [i for i, p in enumerate(pages) if p.startswith(("/calendar/", "/browse"))]
    first_held = held[0] if held else len(pages)
    return {
        "site": site,
        "useful": len(useful),
        "limit": limit,
        "stats": stats,
        "crawl_s": crawl_s,
        "hash_s": hash_s,
        "pages_fetched": len(pages),
        "useful_fetched": len(useful & set(pages)),
        "useful_first": set(pages[:first_held]) == useful,
        "calendar": sum(p.startswith("/calendar/") for p in pages),
        "trap": sum(p.startswith("/browse") for p in pages),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--hash-workers",
        type=int,
        default=None,
        help="The crawl's hash workers (default --workers).",
    )
    ap.add_argument("--repeat", type=int, default=3, help="Rounds of hash, crawl, re-crawl.")
    ap.add_argument("--no-coverage", action="store_true", help="Skip the large-site crawl.")
    ap.add_argument("--listings", type=int, default=333, help="Listing pages of the large site.")
    ap.add_argument("--per-listing", type=int, default=20, help="Image pages per listing.")
    ap.add_argument(
        "--extra", type=int, default=500, help="Page limit above the large site's useful pages."
    )
    ap.add_argument(
        "--no-record", action="store_true", help="Print only; do not touch docs/benchmarks.md."
    )
    args = ap.parse_args()
    started = machine_info()
    with tempfile.TemporaryDirectory(prefix="cg-bench-crawl-") as tmp:
        t = throughput(Path(tmp), args.images, args.workers, args.repeat, args.hash_workers)
        if args.no_coverage:
            return
        c = coverage(Path(tmp), args.listings, args.per_listing, args.extra, args.workers)
    load_end = os.getloadavg()[0]

    n = args.images
    first, again = t["first"], t["again"]
    hash_rate, crawl_rate = n / t["hash_s"], first.images / t["crawl_s"]
    ratio = crawl_rate / hash_rate
    rows = [
        ("`childguard hash` (baseline)", f"{t['hash_s']:.1f}", "-", f"{hash_rate:.0f}", "1.00"),
        (
            "crawl, empty cache",
            f"{t['crawl_s']:.1f}",
            f"{first.pages / t['crawl_s']:.1f}",
            f"{crawl_rate:.0f}",
            f"{ratio:.2f}",
        ),
        (
            "re-crawl (conditional requests)",
            f"{t['recrawl_s']:.1f}",
            f"{again.pages / t['recrawl_s']:.1f}",
            f"{again.images / t['recrawl_s']:.0f}",
            f"{(again.images / t['recrawl_s']) / hash_rate:.2f}",
        ),
    ]
    table = "\n".join(
        [
            "| run | wall s | pages/s | images/s | ratio to hash |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        + [f"| {' | '.join(r)} |" for r in rows]
    )
    round_rows = "\n".join(
        f"| {i + 1} | {r['load']:.1f} | {r['hash_s']:.1f} | {r['crawl_s']:.1f} | "
        f"{r['ratio']:.2f} | {r['recrawl_ratio']:.2f} | {r['crawl_cpu'] / r['hash_cpu']:.2f} |"
        for i, r in enumerate(t["rounds"])
    )
    ratios = [r["ratio"] for r in t["rounds"]]
    verdict = "meets" if ratio >= 0.8 else "falls short of"
    scrapy = first.scrapy
    s = c["stats"]
    png_rate = c["site"].photos / c["hash_s"]
    large_rate = s.images / c["crawl_s"]
    hash_workers = args.hash_workers or args.workers
    md = f"""## Crawl throughput

{started}; load average {load_end:.1f} at the end; `childguard hash -j {args.workers}`; the
crawl's hash workers: {hash_workers}. Local site on 127.0.0.1, served from a process of its own
(`bench/crawl_site.py`): {n} JPEG images (crops of the bundled photos, <= 800 px), {first.pages}
pages (galleries of {PER_PAGE}, lazy `data-src` inside links to the full image, pagination).
Images are fetched by the hash workers themselves (`childguard.crawl.imagefetch`). The site is
built in a child process and read from disk by its server, so the crawls fork from a process
as small as `childguard crawl run`.
{len(t["rounds"])} rounds, each `childguard hash`, then a first crawl into a new store, then a
re-crawl, seconds apart; the table is the round with the median crawl ratio. Wall times include
process start-up on both sides (the hash CLI; the crawl process with its workers, its store and
Scrapy's engine). The crawl's store is created and migrated before the clock starts, and Scrapy
is imported once beforehand, as in the service or `crawl run --due` (importing it took
{t["warm_s"]:.1f} s in this process, once).

{table}

Every round (ratios to the same round's `childguard hash`; CPU: the crawl process and its
workers against the hash command's processes, in CPU seconds):

| round | load at end | hash s | crawl s | crawl ratio | re-crawl ratio | CPU crawl / hash |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{round_rows}

Crawl ratios: median {statistics.median(ratios):.2f}, min {min(ratios):.2f}, max {max(ratios):.2f}.
First crawl (median round): {first.images} images ({first.images_hashed} hashed,
{first.images_failed} failed), crawl-internal time {first.elapsed_s:.1f}s; the hashing queue (depth
{scrapy.get("childguard/hash_queue_depth", "-")}) paused the page downloads
{scrapy.get("childguard/hash_queue_pauses", 0)} times. The site's server used
{t["server_cpu_first"]:.1f} CPU s during that crawl ({t["server_cpu_first"] / t["crawl_s"]:.0%}
of one core over its wall time) and {t["server_cpu_again"]:.1f} s during the re-crawl: on this
machine that CPU still comes out of the same cores. Re-crawl: {again.images_not_modified}
answered `304 Not Modified`, {again.images_hashed} re-hashed.

The crawl {verdict} the goal of >= 0.80 x `childguard hash` images/s (ratio {ratio:.2f}).
In that round the crawl used {t["crawl_cpu"]:.1f} CPU s and `childguard hash` {t["hash_cpu"]:.1f}
(ratio {t["crawl_cpu"] / t["hash_cpu"]:.2f}). On a loaded machine the side with more runnable
processes and threads gets more of the cores; with the cores to themselves, and both sides
keeping them busy, the wall ratio would tend to 1 / {t["crawl_cpu"] / t["hash_cpu"]:.2f} =
{t["hash_cpu"] / t["crawl_cpu"]:.2f}.

### Coverage of a large site

`LargeSite` ({args.listings} listing pages with `?page=N` pagination, {c["site"].photos} image
pages of one 24 px PNG each, an endless calendar and an endless session-id trap linked from
every page): {c["useful"]} useful pages, page limit {c["limit"]}.

| measure | value |
| --- | ---: |
| pages fetched (limit {c["limit"]}) | {c["pages_fetched"]} |
| useful pages fetched | {c["useful_fetched"]} of {c["useful"]} |
| all useful pages before any calendar or trap page | {"yes" if c["useful_first"] else "no"} |
| calendar / trap pages fetched | {c["calendar"]} / {c["trap"]} |
| crawl wall s | {c["crawl_s"]:.1f} |
| pages/s | {s.pages / c["crawl_s"]:.0f} |
| images/s | {large_rate:.0f} |
| `childguard hash` of the same PNGs, images/s | {png_rate:.0f} |
| crawl images/s / hash images/s | {large_rate / png_rate:.2f} |
"""
    print(md)
    if not args.no_record:
        record_section("crawl", md)


if __name__ == "__main__":
    main()
