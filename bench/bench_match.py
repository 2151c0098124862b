"""Matching benchmark: PdqIndex (multi-index hashing) against faiss brute force at radius 31.

Banks of 1M and 10M PDQ hashes, of two kinds:
- `photos`: hashes of the real photos in .cache/photos (`make photos`) and of cheap edits of
  them (crops, resizes, rotations/flips), each bank entry one of these with 1-40 random bits
  flipped. Clustered like real lists: many entries lie within 31 of a query.
- `uniform`: uniform random 256-bit hashes.

Every (size, kind) runs in its own subprocess so that peak RAM (ru_maxrss) is its own.
Both sides run single-threaded. Brute force at 10M is slow on this machine, so it is timed on a
subset of the queries and its QPS is extrapolated from that subset (the table says how many).
Recall is checked on that subset: MIH must return exactly the brute-force pairs.

    python bench/bench_match.py                # sizes 1000000,10000000, writes docs/benchmarks.md
    python bench/bench_match.py --quick        # 100k, a smoke test; writes nothing
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / ".cache" / "photos"
WORK = ROOT / ".cache" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
RADIUS = 31
CHUNK = 1_000_000
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script


# ---------------------------------------------------------------------------- data


def photo_bases() -> np.ndarray:
    """PDQ hashes of the real photos and of cheap edits of them (cached)."""
    cache = WORK / "photo_bases.npy"
    if cache.exists():
        return np.load(cache)
    from PIL import Image

    from childguard.media import load_image
    from childguard.signals.pdq import hexes_to_array, pdq_dihedral_from_pixels, pdq_from_pixels

    files = sorted(
        p for p in PHOTOS.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
    )
    if not files:
        sys.exit("no photos in .cache/photos: run `make photos` first")
    hexes: list[str] = []
    for path in files:
        pixels = load_image(path).pixels
        dihedral, _ = pdq_dihedral_from_pixels(pixels)
        hexes += dihedral
        img = Image.fromarray(pixels)
        w, h = img.size
        for box in ((0.1, 0.1, 1, 1), (0, 0, 0.9, 0.9), (0.05, 0, 0.95, 1), (0.2, 0.2, 0.8, 0.8)):
            crop = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
            hexes.append(pdq_from_pixels(np.asarray(crop))[0])
        for scale in (0.5, 0.25):
            small = img.resize((max(8, int(w * scale)), max(8, int(h * scale))))
            hexes.append(pdq_from_pixels(np.asarray(small))[0])
    bases = np.unique(hexes_to_array(hexes), axis=0)
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(cache, bases)
    return bases


def flip_bits(hashes: np.ndarray, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """Each row with k ~ U[lo, hi] random bit positions flipped (repeats flip once)."""
    n = hashes.shape[0]
    k = rng.integers(lo, hi + 1, n)
    pos = rng.integers(0, 256, (n, hi))
    active = np.arange(hi)[None, :] < k[:, None]
    bits = np.zeros((n, 256), dtype=bool)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, hi))
    bits[rows[active], pos[active]] = True
    return hashes ^ np.packbits(bits, axis=1)


def make_bank(kind: str, n: int, rng: np.random.Generator, bases: np.ndarray) -> np.ndarray:
    out = np.empty((n, 32), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        if kind == "uniform":
            out[start : start + m] = rng.integers(0, 256, (m, 32), dtype=np.uint8)
        else:
            out[start : start + m] = flip_bits(bases[rng.integers(0, len(bases), m)], 1, 40, rng)
    return out


def make_queries(
    kind: str, bank: np.ndarray, q: int, rng: np.random.Generator, bases: np.ndarray
) -> np.ndarray:
    """Near copies of content in the bank: what a match query looks like when it matters."""
    if kind == "uniform":
        return flip_bits(bank[rng.integers(0, bank.shape[0], q)], 0, 20, rng)
    return flip_bits(bases[rng.integers(0, len(bases), q)], 0, 16, rng)


# ---------------------------------------------------------------------------- one run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pairs(qi: np.ndarray, ids: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(qi.tolist(), ids.tolist(), strict=True))


def run_one(size: int, kind: str, n_queries: int, n_brute: int, n_single: int) -> dict[str, Any]:
    import faiss

    from childguard.index import PdqIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(size + (1 if kind == "photos" else 0))
    bases = photo_bases() if kind == "photos" else np.zeros((0, 32), np.uint8)
    r: dict[str, Any] = {"size": size, "kind": kind}

    t = time.perf_counter()
    bank = make_bank(kind, size, rng, bases)
    ids = np.arange(size, dtype=np.int64)
    queries = make_queries(kind, bank, n_queries, rng, bases)
    r["generate_s"] = time.perf_counter() - t
    r["rss_input_mb"] = peak_rss_mb()

    t = time.perf_counter()
    index = PdqIndex.build(ids, bank)
    r["build_s"] = time.perf_counter() - t
    r["bytes_per_hash"] = index.memory_bytes() / size
    r["prefix_bits"] = index.prefix_bits

    t = time.perf_counter()
    res = index.search(queries, RADIUS)
    r["mih_batch_qps"] = n_queries / (time.perf_counter() - t)
    r["results_per_query"] = len(res) / n_queries
    t = time.perf_counter()
    for i in range(n_single):
        index.search(queries[i : i + 1], RADIUS)
    r["mih_single_qps"] = n_single / (time.perf_counter() - t)
    r["peak_rss_mb"] = peak_rss_mb()

    # brute force on a subset (same queries), recall check against it
    flat = faiss.IndexBinaryFlat(256)
    flat.add(bank)
    sub = queries[:n_brute]
    t = time.perf_counter()
    lims, _dist, labels = flat.range_search(sub, RADIUS + 1)  # faiss keeps d < radius
    r["brute_batch_qps"] = n_brute / (time.perf_counter() - t)
    n_bs = max(1, n_brute // 2)
    t = time.perf_counter()
    for i in range(n_bs):
        flat.range_search(sub[i : i + 1], RADIUS + 1)
    r["brute_single_qps"] = n_bs / (time.perf_counter() - t)
    r["brute_queries"] = n_brute
    del flat
    bf_q = np.repeat(np.arange(n_brute), np.diff(lims.astype(np.int64)))
    want = pairs(bf_q, labels)
    mine = res.query_index < n_brute
    got = pairs(res.query_index[mine], res.ids[mine])
    r["recall"] = len(want & got) / max(1, len(want))
    r["extra_pairs"] = len(got - want)
    r["checked_pairs"] = len(want)

    # save / load
    path = WORK / f"index-{size}-{kind}"
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    index.save(path)
    r["save_s"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = PdqIndex.load(path)
    r["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    mapped = PdqIndex.load(path, mmap=True)
    r["load_mmap_s"] = time.perf_counter() - t
    assert len(loaded) == len(mapped) == size
    del loaded, mapped
    shutil.rmtree(path, ignore_errors=True)

    # incremental: 100k more hashes, no rebuild, then the merge that folds them in
    extra = make_bank(kind, 100_000, rng, bases)
    t = time.perf_counter()
    index.add(np.arange(size, size + 100_000, dtype=np.int64), extra)
    r["add_100k_s"] = time.perf_counter() - t
    r["delta_rows_after_add"] = index.stats()["delta_rows"]
    t = time.perf_counter()
    index.search(queries, RADIUS)
    r["mih_batch_qps_with_delta"] = n_queries / (time.perf_counter() - t)
    t = time.perf_counter()
    index.remove(np.arange(0, 1000, dtype=np.int64))
    r["remove_1k_s"] = time.perf_counter() - t
    t = time.perf_counter()
    index.compact()
    r["merge_s"] = time.perf_counter() - t
    return r


# ---------------------------------------------------------------------------- report


def fmt_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| bank | hashes | B/hash | build s | MIH batch q/s | MIH single q/s | brute batch q/s "
        "| brute single q/s | speed-up batch / single | results/query | recall | save s | load s "
        "(mmap) | add 100k s | merge s | peak RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['size']:,} | {r['bytes_per_hash']:.1f} | {r['build_s']:.1f} "
            f"| {r['mih_batch_qps']:,.0f} | {r['mih_single_qps']:,.0f} "
            f"| {r['brute_batch_qps']:,.1f} | {r['brute_single_qps']:,.1f} "
            f"| {r['mih_batch_qps'] / r['brute_batch_qps']:.1f}× / "
            f"{r['mih_single_qps'] / r['brute_single_qps']:.1f}× "
            f"| {r['results_per_query']:,.1f} | {100 * r['recall']:.2f}% "
            f"(+{r['extra_pairs']}, {r['checked_pairs']:,} pairs) "
            f"| {r['save_s']:.2f} | {r['load_s']:.2f} ({r['load_mmap_s']:.3f}) "
            f"| {r['add_100k_s']:.3f} | {r['merge_s']:.1f} | {r['peak_rss_mb']:,.0f} |"
        )
    return head + "\n".join(lines) + "\n"


def section(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    sizes = sorted({r["size"] for r in rows})
    return (
        f"Run: `make bench-match` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"Python {platform.python_version()}, single-threaded on both sides, radius {RADIUS}, "
        f"{args.queries} queries per batch, {args.single} one-at-a-time queries).\n\n"
        + fmt_table(rows)
        + "\nNotes:\n"
        f"- Brute force is faiss `IndexBinaryFlat.range_search`, timed on the first "
        f"{', '.join(str(r['brute_queries']) for r in rows)} queries (per row) and extrapolated to "
        "queries per second; recall is checked on exactly those queries (MIH pairs vs brute-force "
        "pairs; `+k` counts pairs MIH returned that brute force did not).\n"
        "- `photos` banks: hashes of the real photos in `.cache/photos` and of crops, resizes, "
        "rotations and flips of them, each entry with 1-40 random bits flipped; queries are "
        "those hashes with 0-16 bits flipped, so most queries match thousands of entries. "
        "`uniform` banks: random hashes; queries are entries with 0-20 bits flipped.\n"
        "- B/hash is `PdqIndex.memory_bytes() / n`: hash 32 + id 4 (uint32 ids) + 7 row "
        "tables × 3 + bucket offsets + tombstone bitmap. Peak RSS is the whole process: it "
        "includes the generated bank (40 B/hash) that the index was built from.\n"
        "- add 100k: `add()` of 100,000 new hashes to the built index (they go to the delta "
        "segment; no rebuild). merge: the later `compact()` that folds delta and tombstones "
        "into the main segment.\n"
        f"- sizes: {', '.join(f'{s:,}' for s in sizes)}.\n"
    )


def write_section(name: str, markdown: str) -> None:
    """Replace the text between <!-- bench:NAME --> and <!-- /bench:NAME --> in the doc."""
    try:
        from bench._common import record_section  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        record_section(name, markdown)
        return
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{start}\n{markdown}{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n## Matching (PDQ index)\n\n{block}\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--kinds", default="photos,uniform")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--quick", action="store_true", help="100k hashes, few queries, no doc")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.queries, args.single, args.no_write = "100000", 100, 50, True

    if args.one:
        size = int(args.one[0])
        n_brute = max(10, min(args.queries, int(2e8 // size)))
        r = run_one(size, args.one[1], args.queries, n_brute, args.single)
        print(json.dumps(r))
        return

    photo_bases()  # hash the photos once, before the runs
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(size),
                kind,
                "--queries",
                str(args.queries),
                "--single",
                str(args.single),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                sys.exit(f"bench run {size} {kind} failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(fmt_table([r]).splitlines()[-1], flush=True)
    text = section(rows, args)
    print(text)
    if not args.no_write:
        write_section("match", text)


if __name__ == "__main__":
    main()
