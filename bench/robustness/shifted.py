# Owns the measurement of off-centre crops undone from the query side: extra known-abuse query
# views, their recall and their false matches against the views childguard ships.
"""Off-centre crops undone from the query side: what the numbers support.

`python -m bench.robustness.shifted [--step N] [--transforms ...]`

The known-abuse query views undo a *centred* crop (`uncropped<n>`: the query grown by a mirrored
border on every side). A crop off the centre takes more from one side than the other, and PDQ,
which sees where the low frequencies sit, misses it (crop5-off: 14-18% found against 71% for the
centred 5% crop). This measures candidate views that grow the query on one side more than the
other: for a one-sided share s of its side (2.6%, what a 5% crop takes off one axis, and 5.4%
for 10%), the query grown by (a*s, (1-a)*s) horizontally and (b*s, (1-b)*s) vertically, for a and
b in {0, 1/2, 1} but not both 1/2 (the centred guess the product has): 8 views a share.

On the full run's registered photos and distractors (the robustness corpus), under each
transform, it reports per candidate view set and cap: the registered photos found (by the
shipped views as the harness's `ka` method counts them, at its ranks and caps, or by a candidate
view within the cap of the right photo) and the distractor queries that match any registered
photo (the shipped views within their caps, or a candidate view within the cap). The baseline is
the shipped views, measured in the same run. Records section `shifted` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from bench._common import record_section
from bench.robustness.corpus import CACHE, build_corpus, load_pixels
from bench.robustness.metrics import recall_at_precision
from bench.robustness.run import _select
from bench.robustness.transforms import apply
from childguard.robust.query import query_regions
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    hamming_many,
    hexes_to_array,
    pdq_from_pixels,
    view_cap,
    view_rank,
)

SHARES = (0.026, 0.054)
SPLITS = (0.0, 0.5, 1.0)
CANDIDATES = [
    (s, a, b) for s in SHARES for a in SPLITS for b in SPLITS if not (a == 0.5 and b == 0.5)
]
DEFAULT_TRANSFORMS = ("crop5-off", "crop10-off", "crop5", "jpeg75", "pad10", "rot+2", "watermark")
CAPS = (20, 24, 27)


def grown(pixels: np.ndarray, share: float, a: float, b: float) -> np.ndarray:
    """`pixels` grown by a mirrored border: a*share of its width on the left, (1-a)*share on the
    right, b*share of its height on top, (1-b)*share below."""
    h, w = pixels.shape[:2]
    return cv2.copyMakeBorder(
        pixels,
        round(b * share * h),
        round((1 - b) * share * h),
        round(a * share * w),
        round((1 - a) * share * w),
        cv2.BORDER_REFLECT,
    )


@dataclass
class Query:
    registered: bool
    group: str
    transform: str
    shipped_found: bool  # registered: the shipped views name the right photo at the default
    shipped_match: bool  # the shipped views match some registered photo at the default
    right: list[int]  # per candidate: distance to the right photo (registered queries)
    nearest: list[int]  # per candidate: distance to the nearest registered photo
    shipped_rank: int  # the shipped views' best rank (257: none within its cap)
    shipped_right: bool  # and the photo it names is the right one
    pdq_distance: int  # the original hash's distance to its nearest registered photo
    pdq_right: bool  # and that photo is the right one


def measure(step: int, transforms: list[str]) -> tuple[list[Query], int, float]:
    photos = build_corpus(CACHE)
    reg, dis = _select(photos, None)
    ids = [p.id for p in reg]
    bank = hexes_to_array([pdq_from_pixels(load_pixels(p))[0] for p in reg])
    out: list[Query] = []
    t0 = time.perf_counter()
    for registered, chosen in ((True, reg[::step]), (False, dis[::step])):
        for p in chosen:
            img = Image.fromarray(load_pixels(p))
            for name in transforms:
                px = np.ascontiguousarray(np.asarray(apply(name, img, p.id, []).convert("RGB")))
                best_rank, best_i, pdq = 257, -1, (257, False)
                for v in query_regions(px, mode="known-abuse")[0]:
                    d = hamming_many(hexes_to_array([v.pdq])[0], bank)
                    i = int(np.argmin(d))
                    cap = view_cap(v.variant, v.quality)
                    rank = view_rank(v.variant, v.quality, int(d[i]))
                    if cap is None:
                        pdq = (int(d[i]), ids[i] == p.id)
                    if (cap is None or int(d[i]) <= cap) and rank < best_rank:
                        best_rank, best_i = rank, i
                right, nearest = [], []
                for share, a, b in CANDIDATES:
                    d = hamming_many(
                        hexes_to_array([pdq_from_pixels(grown(px, share, a, b))[0]])[0], bank
                    )
                    nearest.append(int(d.min()))
                    right.append(int(d[ids.index(p.id)]) if registered else 257)
                out.append(
                    Query(
                        registered,
                        p.group,
                        name,
                        registered and best_rank <= DEFAULT_THRESHOLD and ids[best_i] == p.id,
                        best_rank <= DEFAULT_THRESHOLD,
                        right,
                        nearest,
                        best_rank,
                        registered and best_i >= 0 and ids[best_i] == p.id,
                        *pdq,
                    )
                )
    return out, len(reg), time.perf_counter() - t0


VIEW_SETS = {
    "shipped views only (baseline)": [],
    "one side, 2.6%: 4 views": [
        c for c in CANDIDATES if c[0] == SHARES[0] and (c[1] == 0.5) != (c[2] == 0.5)
    ],
    "one side, 2.6% and 5.4%: 8 views": [c for c in CANDIDATES if (c[1] == 0.5) != (c[2] == 0.5)],
    "every split, 2.6% and 5.4%: 16 views": list(CANDIDATES),
}


def _answer(q: Query, picks: list[int], cap: int | None) -> tuple[int, bool]:
    """The query's best rank and whether it names the right photo, with the candidate views
    `picks` counted within `cap` at the rank of a derived view (distance plus 31 less the cap,
    `signals.pdq.view_rank`); a candidate as near the right photo as any names it."""
    best = (q.shipped_rank, q.shipped_right)
    for i in picks if cap is not None else ():
        if q.nearest[i] <= cap:
            rank = q.nearest[i] + DEFAULT_THRESHOLD - cap
            if rank < best[0] or (rank == best[0] and not best[1]):
                best = (rank, q.registered and q.right[i] == q.nearest[i])
    return best


def _cell(rows: list[Query], answers: list[tuple[int, bool]]) -> str:
    """`found/registered (recall at precision >= 99.99%)` over one transform and group."""
    n = sum(q.registered for q in rows)
    found = sum(
        q.registered and right and rank <= DEFAULT_THRESHOLD
        for q, (rank, right) in zip(rows, answers, strict=True)
    )
    strict = recall_at_precision(
        [
            (-float(rank), q.registered and right)
            for q, (rank, right) in zip(rows, answers, strict=True)
        ],
        n,
    )
    return f"{found}/{n} ({100 * strict:.0f}%)"


def report(queries: list[Query], step: int, seconds: float, transforms: list[str]) -> str:
    groups = sorted({q.group for q in queries})
    count = {
        (g, r): sum(q.registered is r and q.group == g for q in queries) // len(transforms)
        for g in groups
        for r in (True, False)
    }
    head = " | ".join(f"{t} `{g}`" for t in transforms for g in groups)
    lines = [
        ("Every photo" if step == 1 else f"One photo in {step}")
        + " of the full run: registered "
        + ", ".join(f"{g} {count[(g, True)]}" for g in groups)
        + ", distractors "
        + ", ".join(f"{g} {count[(g, False)]}" for g in groups)
        + f"; {len(queries)} queries in {seconds:.0f} s.",
        "",
        "Each cell: registered photos named right at the default threshold, and in brackets the "
        "recall at precision >= 99.99% over the transform's registered and distractor queries "
        "(as the harness computes it). The last columns: distractor queries matching any "
        "registered photo at the default, over all the transforms.",
        "",
        f"| views | cap | {head} | false `astro` | false `general` |",
        "|---|---|" + "---|" * (len(transforms) * len(groups) + 2),
    ]
    index = {c: i for i, c in enumerate(CANDIDATES)}
    methods: list[tuple[str, str, list[int], int | None]] = [("reference PDQ", "-", [], -1)]
    for label, views in VIEW_SETS.items():
        for cap in CAPS if views else (None,):
            methods.append((label, str(cap or "-"), [index[v] for v in views], cap))
    for label, cap_text, picks, cap in methods:
        cells = []
        for t in transforms:
            for g in groups:
                rows = [q for q in queries if q.group == g and q.transform == t]
                if cap == -1:
                    answers = [(q.pdq_distance, q.pdq_right) for q in rows]
                else:
                    answers = [_answer(q, picks, cap) for q in rows]
                cells.append(_cell(rows, answers))
        false = []
        for g in groups:
            rows = [q for q in queries if not q.registered and q.group == g]
            ranks = [q.pdq_distance if cap == -1 else _answer(q, picks, cap)[0] for q in rows]
            false.append(str(sum(r <= DEFAULT_THRESHOLD for r in ranks)))
        lines.append(f"| {label} | {cap_text} | {' | '.join(cells)} | {' | '.join(false)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=int, default=1, help="take every Nth photo")
    parser.add_argument("--transforms", nargs="*", default=list(DEFAULT_TRANSFORMS))
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)
    queries, _, seconds = measure(args.step, args.transforms)
    text = report(queries, args.step, seconds, args.transforms)
    print(text)
    if not args.no_docs:
        title = "## Off-centre crops undone from the query side (measured, not shipped)"
        record_section("shifted", f"{title}\n\n`python -m bench.robustness.shifted`. {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
