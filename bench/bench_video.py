"""vPDQ video matching: recall of each variant and false matches, through the path content
takes (`childguard.pipeline.hash_bytes(data, robust=True)`, query views included, and a real
`childguard.matcher.Matcher` on a SQLite store) at three thresholds; hashing speed against vpdq's
own Python call, and the cost of the query views.

Clips are made with FFmpeg from `make photos`'s wallpapers (bench/video_corpus.py, cached in
.cache/videos): the bank holds slow pans over one photo and slideshows of three, no photo in two
bank clips; every bank clip is re-encoded, resized, trimmed, letterboxed and watermarked and
each copy is searched. Clips of photos in no bank clip (and their variants) are searched too:
any hit of a query on a bank clip other than its own is a false match. The bank clips' vPDQ
values are imported into three known-abuse banks, one per threshold, so one match of a query
says which thresholds it passes. Speed: every original clip hashed by `VpdqSignal.hash_content`
(sniffing, truncation check, probe and limits, the worker process) and by `vpdq.computeHash` on
the same file, interleaved, best of two; the views' cost is `VpdqSignal.query_views` on every
query file. Results go to the `video` section of docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench` when run as a script

import tempfile  # noqa: E402

import vpdq  # noqa: E402

from bench._common import machine_info, record_section  # noqa: E402
from bench.video_corpus import VARIANTS, Corpus, debian_photos  # noqa: E402
from childguard.banks import EntryRecord, create_bank, import_records  # noqa: E402
from childguard.index.vpdq import VpdqThreshold  # noqa: E402
from childguard.matcher import Matcher  # noqa: E402
from childguard.media import Content  # noqa: E402
from childguard.media_video import stop_worker  # noqa: E402
from childguard.pipeline import hash_bytes  # noqa: E402
from childguard.signals.vpdq import VpdqSignal, parse_frames  # noqa: E402
from childguard.store import open_store  # noqa: E402

N_PANS, N_SLIDESHOWS, N_OTHER_PANS, N_OTHER_SLIDESHOWS = 16, 4, 6, 2
THRESHOLDS = [VpdqThreshold(80, 0), VpdqThreshold(50, 0), VpdqThreshold(80, 50)]


@dataclass
class Clip:
    name: str
    path: Path
    photos: list[str]
    variants: dict[str, Path] = field(default_factory=dict)


def hash_value(path: Path) -> str:
    value = VpdqSignal.hash_content(Content(path.read_bytes(), origin=path.name, path=path))
    assert value is not None
    return value.value


def main() -> None:
    photos = debian_photos()
    need = 3 * (N_SLIDESHOWS + N_OTHER_SLIDESHOWS) + N_PANS + N_OTHER_PANS
    if len(photos) < need:
        sys.exit(f"bench_video needs {need} photos from `make photos`, found {len(photos)}")
    corpus = Corpus()
    started = time.perf_counter()
    it = iter(photos)
    specs: list[tuple[str, list[Path], bool]] = []  # (name, photos, in the bank)
    for i in range(N_PANS + N_OTHER_PANS):
        specs.append((f"pan{i:02d}", [next(it)], i < N_PANS))
    for i in range(N_SLIDESHOWS + N_OTHER_SLIDESHOWS):
        specs.append((f"slides{i:02d}", [next(it) for _ in range(3)], i < N_SLIDESHOWS))

    def make(spec: tuple[str, list[Path], bool]) -> Clip:
        name, ph, _ = spec
        path = corpus.pan(ph[0]) if name.startswith("pan") else corpus.slideshow(ph)
        clip = Clip(name, path, [p.name for p in ph])
        for kind in VARIANTS:
            clip.variants[kind] = corpus.variant(path, kind)
        return clip

    with ThreadPoolExecutor(2) as pool:
        clips = list(pool.map(make, specs))
    made_s = time.perf_counter() - started
    bank = [c for c, s in zip(clips, specs, strict=True) if s[2]]
    others = [c for c, s in zip(clips, specs, strict=True) if not s[2]]

    # Speed: every original clip, ours and vpdq's own call, interleaved, best of two.
    ours_s = theirs_s = 0.0
    seconds = 0.0
    values: dict[str, str] = {}
    for c in clips:
        best_ours = best_theirs = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            values[c.name] = hash_value(c.path)
            best_ours = min(best_ours, time.perf_counter() - t0)
            t0 = time.perf_counter()
            vpdq.computeHash(str(c.path))
            best_theirs = min(best_theirs, time.perf_counter() - t0)
        ours_s += best_ours
        theirs_s += best_theirs
        seconds += max(f.timestamp for f in parse_frames(values[c.name])) + 1.0

    # Every query through robust hashing (views included) and the matcher; one bank per
    # threshold, each holding every bank clip under its name.
    queries: list[tuple[str, Path, str | None]] = []  # (variant, file, expected bank clip)
    for c in clips:
        own = c.name if c in bank else None
        for kind, path in c.variants.items():
            queries.append((kind, path, own))
        if own is None:
            queries.append(("original", c.path, None))
    banks = {f"t{i}": t for i, t in enumerate(THRESHOLDS)}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'store.db'}")
        for bank_name, t in banks.items():
            create_bank(store, bank_name, "known-abuse", thresholds={"vpdq": str(t)}, actor="b")
            records = [
                EntryRecord(signal_type="vpdq", value=values[c.name], original_id=c.name)
                for c in bank
            ]
            import_records(store, bank_name, records, actor="bench")
        matcher = Matcher(store, index_base=Path(tmp) / "index")
        hashed = [
            hash_bytes(path.read_bytes(), path=str(path), robust=True) for _, path, _ in queries
        ]
        outcomes = matcher.match_many(hashed)
        store.close()
    errors = [f"{q[1].name}: {r.error}" for q, r in zip(queries, hashed, strict=True) if r.error]
    if errors:
        sys.exit("hashing failed: " + "; ".join(errors))

    rows = []
    for bank_name, t in banks.items():
        found: dict[str, list[bool]] = {k: [] for k in VARIANTS}
        false: list[str] = []
        for (kind, _, own), outcome in zip(queries, outcomes, strict=True):
            kept = [m for m in outcome.matches if m.bank_name == bank_name]
            if own is not None:
                found[kind].append(any(m.original_id == own for m in kept))
            false += [
                f"{kind} of {own or 'other'} -> {m.original_id} ({m.variant})"
                for m in kept
                if m.original_id != own
            ]
        rows.append((t, found, false))

    # The share of a copy's frames matched to its own clip (best view; 0 when not matched at
    # the loosest threshold), and which view found it at the default threshold.
    query_pct: dict[str, list[float]] = {k: [] for k in VARIANTS}
    by_view: dict[str, dict[str, int]] = {k: {} for k in VARIANTS}
    for (kind, _, own), outcome in zip(queries, outcomes, strict=True):
        if own is None:
            continue
        mine = [m for m in outcome.matches if m.original_id == own]
        query_pct[kind].append(
            max((float((m.detail or {})["query_match_percent"]) for m in mine), default=0.0)
        )
        for m in mine:
            if m.bank_name == "t0":
                by_view[kind][m.variant] = by_view[kind].get(m.variant, 0) + 1

    # The views' cost: `query_views` on every query file (a video with bars: detection, a
    # second decode with the bars cut off, PDQ; without: the first sampled frame).
    view_s = {True: 0.0, False: 0.0}
    view_video_s = {True: 0.0, False: 0.0}
    view_n = {True: 0, False: 0}
    for (_, path, _), record in zip(queries, hashed, strict=True):
        signal = record.signals["vpdq"]
        content = Content(path.read_bytes(), origin=path.name, path=path)
        t0 = time.perf_counter()
        got = VpdqSignal.query_views(content, signal)
        took = time.perf_counter() - t0
        with_bars = bool(got)
        view_s[with_bars] += took
        view_n[with_bars] += 1
        view_video_s[with_bars] += max(f.timestamp for f in parse_frames(signal.value)) + 1.0
    views_made = sum(1 for r in hashed for v in r.views or [] if v.signal_type == "vpdq")
    letterboxed_with_view = sum(
        1
        for (kind, _, _), r in zip(queries, hashed, strict=True)
        if kind == "letterboxed" and any(v.signal_type == "vpdq" for v in r.views or [])
    )

    total_s = time.perf_counter() - started
    stop_worker()
    lines = [
        "## Video (vPDQ)",
        "",
        f"`make bench-video` ({machine_info()}). {len(bank)} bank clips ({N_PANS} pans over "
        f"one photo, {N_SLIDESHOWS} slideshows of three; 320x240, 25 fps, 6 s) from "
        f"{N_PANS + 3 * N_SLIDESHOWS} of `make photos`'s wallpapers; {len(others)} clips of "
        f"{N_OTHER_PANS + 3 * N_OTHER_SLIDESHOWS} other wallpapers. Each clip's copies: "
        "re-encoded (VP8 WebM at 150 kbit/s), resized (160x120), trimmed (first and last second "
        "cut), letterboxed (scaled to 3/4 height, black bars above and below), watermarked (a "
        "64x18 white box at 60% and a 40 px logo at 70%). Every query goes the way content "
        "goes: `hash_bytes(data, robust=True)` (the vPDQ signal and its query views: "
        "`unletterboxed` where bars are found) and `Matcher.match_many` on a SQLite store "
        "whose known-abuse banks hold the bank clips' vPDQ (one bank per threshold; "
        "`VpdqIndex`, MIH over every bank frame at PDQ distance 31; the closest view kept).",
        "",
        "| threshold (query %, bank %) | " + " | ".join(VARIANTS) + " | false matches |",
        "| --- | " + " | ".join("---:" for _ in VARIANTS) + " | ---: |",
    ]
    for t, found, false in rows:
        cells = [f"{100 * sum(found[k]) / len(found[k]):.0f}% ({sum(found[k])}/{len(found[k])})"
                 for k in VARIANTS]  # fmt: skip
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {len(false)} |")
    lines += [
        "",
        f"False matches are counted over all {len(queries)} queries ({len(others)} other-photo "
        f"clips and their copies, and every bank clip's copies against the {len(bank) - 1} "
        "bank clips that are not its own).",
        "",
        "Median share of a copy's frames matched to its own bank clip (best view): "
        + ", ".join(f"{k} {statistics.median(v):.0f}%" for k, v in query_pct.items())
        + ". Views that found the copies at 80,0: "
        + "; ".join(
            f"{k} " + ", ".join(f"{v} {n}" for v, n in sorted(by_view[k].items()))
            for k in VARIANTS
            if by_view[k]
        )
        + f". Views made: {views_made} over {len(queries)} queries "
        f"({letterboxed_with_view} of the {sum(1 for q in queries if q[0] == 'letterboxed')} "
        "letterboxed copies; no other query got one).",
        "",
        f"Hashing speed: {seconds:.0f} s of video in {len(clips)} clips. "
        f"`VpdqSignal.hash_content` {seconds / ours_s:.0f} s of video per second; "
        f"`vpdq.computeHash` on the same files {seconds / theirs_s:.0f} s/s; ratio "
        f"{theirs_s / ours_s:.2f} (ours includes the byte checks, the probe against the "
        "limits and the hand-off to the worker process).",
        "",
        f"Query views (`VpdqSignal.query_views`, robust hashing only): on the {view_n[True]} "
        f"videos with bars {view_video_s[True] / view_s[True]:.0f} s of video per second "
        f"({1000 * view_s[True] / view_n[True]:.0f} ms a {view_video_s[True] / view_n[True]:.0f} s "
        "clip: finding the bars in 8 sampled frames, a second decode with them cut off, PDQ "
        f"of one frame a second); on the {view_n[False]} without, "
        f"{1000 * view_s[False] / max(1, view_n[False]):.0f} ms a clip "
        f"({view_video_s[False] / max(view_s[False], 1e-9):.0f} s of video per second: the "
        "probe and the first frame, which already shows no bars) and no view.",
        "",
        f"Wall time {total_s:.0f} s ({made_s:.0f} s making or loading the clips).",
    ]
    falses = rows[0][2]
    if falses:
        lines += ["", "False matches at the default threshold: " + "; ".join(falses[:20]) + "."]
    text = "\n".join(lines)
    print(text)
    record_section("video", text)


if __name__ == "__main__":
    main()
