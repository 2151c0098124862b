# Owns the measurement of off-centre crops undone from the query side: extra known-abuse query
# views, their recall and their false matches against the views childguard ships.
"""Off-centre crops undone from the query side: what the numbers support.

`python -m bench.robustness.shifted [--step N] [--transforms ...]`

The known-abuse query views undo a *centred* crop (`uncropped<n>`: the query grown by a mirrored
border on every side). A crop off the centre takes more from one side than the other, and PDQ,
which sees where the low frequencies sit, misses it. This measures candidate views that grow
the query on one side more than the other: for a one-sided share s of its side (2.6%, what a 5%
crop takes off one axis, and 5.4% for 10%), the query grown by (a*s, (1-a)*s) horizontally and
(b*s, (1-b)*s) vertically, for a and b in {0, 1/2, 1} but not both 1/2 (the centred guess the
product has): 8 views a share.

The queries are the full run's registered photos and distractors under each transform, each
with the views `query_hashes` ships plus the candidates (`views.query_row`); each candidate set
is counted as the matcher counts a derived view, within a cap at its distance plus 31 less the
cap (`views.simulate`), and scored as the harness scores (`metrics.summarise`). The baselines,
reference PDQ and the shipped views, come from the same rows. Records section `shifted` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from PIL import Image

from bench._common import publish
from bench.robustness.corpus import CACHE, build_corpus, load_pixels
from bench.robustness.metrics import overall_fpr, summarise
from bench.robustness.run import _select
from bench.robustness.transforms import apply
from bench.robustness.views import Rule, product_rule, query_row, simulate
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    hexes_to_array,
    pdq_from_pixels,
    repeating,
)

SHARES = (0.026, 0.054)
SPLITS = (0.0, 0.5, 1.0)
CANDIDATES = [
    (s, a, b) for s in SHARES for a in SPLITS for b in SPLITS if not (a == 0.5 and b == 0.5)
]
DEFAULT_TRANSFORMS = ("crop5-off", "crop10-off", "crop5", "jpeg75", "pad10", "rot+2", "watermark")
CAPS = (20, 24, 27)
PREFIX = "shifted"


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


def variant(share: float, a: float, b: float) -> str:
    """A candidate view's variant name, e.g. `shifted26:0,0.5`."""
    return f"{PREFIX}{round(1000 * share)}:{a:g},{b:g}"


def candidates(pixels: np.ndarray) -> list[tuple[str, str, int]]:
    """The candidate views of one query: (variant, PDQ hash, quality)."""
    return [(variant(*c), *pdq_from_pixels(grown(pixels, *c))) for c in CANDIDATES]


def rule(views: list[tuple[float, float, float]], cap: int | None) -> Rule:
    """The shipped views at the product's caps and ranks, plus the candidate `views` counted
    within `cap` at the rank of a derived view (distance plus 31 less the cap)."""
    chosen = {variant(*c) for c in views}

    def ranked(name: str, quality: int, distance: int) -> int | None:
        if not name.startswith(PREFIX):
            return product_rule(name, quality, distance)
        if cap is None or name not in chosen or distance > cap:
            return None
        return distance + DEFAULT_THRESHOLD - cap

    return ranked


VIEW_SETS = {
    "one side, 2.6%: 4 views": [
        c for c in CANDIDATES if c[0] == SHARES[0] and (c[1] == 0.5) != (c[2] == 0.5)
    ],
    "one side, 2.6% and 5.4%: 8 views": [c for c in CANDIDATES if (c[1] == 0.5) != (c[2] == 0.5)],
    "every split, 2.6% and 5.4%: 16 views": list(CANDIDATES),
}
SHIPPED = "shipped views only (baseline)"


def rules() -> dict[str, Rule]:
    """The methods compared, by label: the shipped views, then each candidate set at each cap."""
    out = {SHIPPED: rule([], None)}
    for label, views in VIEW_SETS.items():
        for cap in CAPS:
            out[f"{label} | {cap}"] = rule(views, cap)
    return out


def measure(step: int, transforms: list[str]) -> tuple[list[dict[str, object]], float]:
    """The query rows (`views.query_row`, candidates added) of one photo in `step` of the full
    run under `transforms`, and the seconds they took."""
    photos = build_corpus(CACHE)
    reg, dis = _select(photos, None)
    ids = [p.id for p in reg]
    packed = hexes_to_array([pdq_from_pixels(load_pixels(p))[0] for p in reg])
    refused = repeating(packed)
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    for registered, chosen in ((True, reg[::step]), (False, dis[::step])):
        for p in chosen:
            img = Image.fromarray(load_pixels(p))
            for name in transforms:
                px = np.ascontiguousarray(np.asarray(apply(name, img, p.id, []).convert("RGB")))
                rows.append(
                    query_row(p, registered, name, px, ids, packed, candidates(px), refused)
                )
    return rows, time.perf_counter() - t0


def report(rows: list[dict[str, object]], step: int, seconds: float, transforms: list[str]) -> str:
    methods = rules()
    outcomes = simulate(iter(rows), methods)
    cells = summarise(outcomes)
    false = overall_fpr(outcomes)
    groups = sorted({str(r["group"]) for r in rows})
    count = {
        (g, reg): sum(r["group"] == g and r["registered"] is reg for r in rows) // len(transforms)
        for g in groups
        for reg in (True, False)
    }
    head = " | ".join(f"{t} `{g}`" for t in transforms for g in groups)
    lines = [
        ("Every photo" if step == 1 else f"One photo in {step}")
        + " of the full run: registered "
        + ", ".join(f"{g} {count[(g, True)]}" for g in groups)
        + ", distractors "
        + ", ".join(f"{g} {count[(g, False)]}" for g in groups)
        + f"; {len(rows)} queries in {seconds:.0f} s.",
        "",
        "Each cell: recall at the default threshold / recall at precision >= 99.99%, in %, as "
        "the harness computes them. The last columns: false positives at the default (distractor "
        "matches plus wrong-photo matches) over all the transforms.",
        "",
        f"| views | cap | {head} | false `{'` | false `'.join(groups)}` |",
        "|---|---|" + "---|" * (len(transforms) * len(groups) + len(groups)),
    ]
    for label in ["pdq", *methods]:
        name, cap = [*label.split(" | "), "-"][:2]
        shown = "reference PDQ" if label == "pdq" else name
        row = [
            f"{100 * c.recall:.1f} / {100 * c.recall_at_precision:.1f}"
            for t in transforms
            for g in groups
            for c in [cells[(label, t, g)]]
        ]
        row += [str(false[(label, g)][0]) for g in groups]
        lines.append(f"| {shown} | {cap} | {' | '.join(row)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=int, default=1, help="take one photo in N")
    parser.add_argument("--transforms", nargs="*", default=list(DEFAULT_TRANSFORMS))
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)
    rows, seconds = measure(args.step, args.transforms)
    text = report(rows, args.step, seconds, args.transforms)
    publish(
        "shifted",
        "## Off-centre crops undone from the query side (measured, not shipped)",
        "make bench-shifted",
        text,
        record=not args.no_docs,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
