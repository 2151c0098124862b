"""Bulk scans on Dask: images per second of `childguard scan --cluster local` with one and two
workers, each as a ratio to `childguard scan` without a cluster (every core) in the same run.

Input: `--files` (default 5,000) small synthetic variants of the benign photos in
`.cache/photos` (`make photos`): each photo is decoded once, reduced to 200 px, and every
variant is a seeded crop, brightness change and JPEG quality of one of them, generated once
into a temporary folder. The store is a temporary SQLite file with a known-abuse bank of
2,000 random PDQ hashes plus the PDQ of every 50th variant, so that matching has work to do
and the reports hold matches.

Each configuration is the whole command, timed end to end (start-up, the cluster's start,
the walk, hashing, matching, the report), run in turn and then (`--repeats 2`, the default)
again in the reverse order; each figure is the fastest of its runs. The reports of all runs
are checked to be the same (summary, matches). Results go to the `scale` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script

from bench._common import machine_info, record_section  # noqa: E402

PHOTOS = ROOT / ".cache" / "photos"
CHILDGUARD = [str(Path(sys.executable).parent / "childguard")]
RANDOM_ENTRIES = 2000
MATCH_EVERY = 50


def make_variants(out: Path, n: int, seed: int = 20) -> list[Path]:
    """`n` small JPEG variants of the benign photos (see the module docstring)."""
    import numpy as np
    from PIL import Image, ImageEnhance

    sources = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not sources:
        raise SystemExit(f"no photos in {PHOTOS}: run `make photos` first")
    bases = []
    for path in sources:
        with Image.open(path) as img:
            img.draft("RGB", (640, 640))
            small = img.convert("RGB")
            small.thumbnail((200, 200))
            bases.append(small.copy())
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        base = bases[i % len(bases)]
        w, h = base.size
        dx, dy = (int(v) for v in rng.integers(0, max(1, w // 8), size=2))
        crop = base.crop((dx, dy, w - int(rng.integers(0, max(1, w // 8))), h - dy // 2))
        crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.8, 1.2)))
        path = out / f"{i // 1000:02d}" / f"v{i:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        crop.save(path, format="JPEG", quality=int(rng.integers(70, 95)))
        written.append(path)
    return written


def make_store(db: Path, variants: list[Path]) -> str:
    import numpy as np

    from childguard.banks import EntryRecord, create_bank, import_records
    from childguard.pipeline import hash_file
    from childguard.store import open_store

    url = f"sqlite:///{db}"
    store = open_store(url)
    create_bank(store, "bench", "known-abuse", actor="bench")
    rng = np.random.default_rng(7)
    records = [
        EntryRecord("pdq", bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex())
        for _ in range(RANDOM_ENTRIES)
    ]
    for path in variants[::MATCH_EVERY]:
        value = hash_file(path).value("pdq")
        if value:
            records.append(EntryRecord("pdq", value, classification_label="bench"))
    import_records(store, "bench", records, actor="bench")
    store.close()
    return url


def run_scan(folder: Path, report: Path, db: str, extra: list[str]) -> float:
    """Wall-clock seconds of one `childguard scan` (exit 0 or 3: nothing or something found)."""
    cmd = [*CHILDGUARD, "scan", str(folder), "--report", str(report), "--db", db, "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run([*cmd, *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd + extra)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def report_key(report: Path) -> tuple[str, str]:
    summary = json.loads((report / "summary.json").read_text())
    for key in ("started_at", "finished_at"):
        summary.pop(key)
    return json.dumps(summary, sort_keys=True), (report / "matches.jsonl").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each command")
    parser.add_argument("--reverse", action="store_true", help="start with the last command")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    info = machine_info()
    cores = len(os.sched_getaffinity(0))
    configs = {
        f"scan, no cluster (-j {cores})": [],
        "scan --cluster local -j 1": ["--cluster", "local", "-j", "1"],
        "scan --cluster local -j 2": ["--cluster", "local", "-j", "2"],
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        variants = make_variants(base / "disk", args.files)
        made = time.perf_counter() - t0
        db = make_store(base / "store.db", variants)
        print(f"{len(variants)} variants in {made:.1f} s", flush=True)
        times: dict[str, list[float]] = {name: [] for name in configs}
        keys = set()
        order = [
            name
            for i in range(args.repeats)
            for name in (list(configs) if (i + args.reverse) % 2 == 0 else list(reversed(configs)))
        ]
        for i, name in enumerate(order):
            report = base / f"report-{i}"
            times[name].append(run_scan(base / "disk", report, db, configs[name]))
            keys.add(report_key(report))
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
        same = len(keys) == 1
        matched = json.loads(report_key(base / "report-0")[0])["matched_files"]
    best = {name: min(t) for name, t in times.items()}
    baseline = next(iter(configs))
    rate = {name: len(variants) / s for name, s in best.items()}
    rows = [
        f"| {name} | {best[name]:.1f} | {rate[name]:.0f} | {rate[name] / rate[baseline]:.2f} |"
        for name in configs
    ]
    load_end = os.getloadavg()[0]
    markdown = "\n".join(
        [
            "## Bulk scans on Dask (`bench/bench_scale.py`)",
            "",
            f"{info}; load average {load_end:.1f} at the end.",
            "",
            f"{len(variants):,} small JPEG variants (about 200 px) of the benign photos, against a "
            f"known-abuse bank of {RANDOM_ENTRIES:,} random PDQ hashes plus "
            f"{len(variants) // MATCH_EVERY} of the variants ({matched} files matched). Each "
            "figure is the whole command end to end (start-up and the cluster's start "
            f"included), the fastest of {args.repeats} run(s), run in this order: "
            f"{'; '.join(order)}.",
            "",
            "| command | seconds | images/s | ratio to no cluster |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"The reports of all {len(order)} runs are the same (summary and matches): "
            f"{'yes' if same else 'NO'}.",
        ]
    )
    print(markdown)
    if not same:
        raise SystemExit("the reports differ between runs")
    if not args.no_record:
        record_section("scale", markdown)


if __name__ == "__main__":
    main()
