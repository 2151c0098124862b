# Owns the known-abuse view dump: every query view's nearest registered photo, for studying
# view caps and ranks without hashing again.
"""Dump, for every transformed query of a robustness run, each known-abuse view's nearest
registered photo.

`python -m bench.robustness.views [--per-group N] [--held-out] [--groups ...] [--transforms ...]
[--max-queries N] --out PATH`

For each query (registered photo or distractor, under each transform) it records the
reference PDQ hash's nearest registered photo and distance, and for every view
`query_hashes` returns: variant, PDQ quality, its nearest registered photo and distance (for a
derived view, among the photos it may match: `signals.pdq.view_may_match`),
the distance to the query's own photo (registered queries) and the distance to the query's
`original` hash. The known-abuse method's answer is a function of these rows alone
(`methods.KnownAbuse` takes the best-ranked view's nearest photo, `signals.pdq.view_rank`,
over the views within their caps), so a rule
that caps, ranks or drops views can be measured on a dump (`simulate`) exactly as the
harness would measure it, without hashing again. The bank and the photos are the harness's
(`run._select`), so a dump answers as the run with the same flags.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.robustness.corpus import CACHE, Photo, build_corpus
from bench.robustness.metrics import Outcome
from bench.robustness.run import FILLERS, _select
from bench.robustness.tiles import photo_pixels
from bench.robustness.transforms import TRANSFORMS, apply
from childguard.robust.query import query_hashes
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    hamming_many,
    hexes_to_array,
    pdq_from_pixels,
    repeating,
    view_cap,
    view_rank,
)

# A rule: (variant, quality, distance) -> the rank a view's nearest photo counts at, or None
# where the view does not count.
Rule = Callable[[str, int, int], "int | None"]

_STATE: dict[str, object] = {}


# A query's row: query, group, registered, transform; "pdq": [nearest photo, distance, quality,
# distance to its own photo]; "views": per view [variant, quality, nearest photo, distance,
# distance to its own photo (None for a distractor), distance to the query's `original` hash].


def _nearest(
    packed: np.ndarray, ids: list[str], value: str, refused: np.ndarray | None = None
) -> tuple[str, int, np.ndarray]:
    """The nearest photo to `value` among those not `refused`, its distance, and the distance
    to every photo."""
    d = hamming_many(hexes_to_array([value])[0], packed)
    allowed = d if refused is None else np.where(refused, 257, d)
    i = int(np.argmin(allowed))
    return ids[i], int(allowed[i]), d


def query_row(
    photo: Photo,
    registered: bool,
    transform: str,
    pixels: np.ndarray,
    ids: list[str],
    packed: np.ndarray,
    extra: Sequence[tuple[str, str, int]] = (),
    refused: np.ndarray | None = None,
) -> dict[str, object]:
    """One query's row (see above) for `pixels`, `photo` under `transform`, against the bank
    (`ids`, `packed`): the views `query_hashes` returns, then `extra` (variant, hash, quality),
    views a study adds to measure them as the shipped ones are measured. `refused`: the bank's
    `repeating(packed)`, which a derived view never matches (computed here when not given)."""
    own = ids.index(photo.id) if registered else -1
    ref, ref_q = pdq_from_pixels(pixels)
    ref_near, ref_d, ref_all = _nearest(packed, ids, ref)
    views = [(v.variant, v.pdq, v.quality) for v in query_hashes(pixels)] + list(extra)
    original = int(views[0][1], 16)
    if refused is None:
        refused = repeating(packed)  # a derived view never matches these (`view_may_match`)
    rows = []
    for variant, value, quality in views:
        near, d, all_d = _nearest(
            packed, ids, value, None if variant == DIHEDRAL_NAMES[0] else refused
        )
        rows.append(
            [
                variant,
                quality,
                near,
                d,
                int(all_d[own]) if own >= 0 else None,
                (int(value, 16) ^ original).bit_count(),
            ]
        )
    return {
        "query": photo.id,
        "group": photo.group,
        "registered": registered,
        "transform": transform,
        "pdq": [ref_near, ref_d, ref_q, int(ref_all[own]) if own >= 0 else None],
        "views": rows,
    }


def _work(task: tuple[Photo, bool]) -> list[dict[str, object]]:
    photo, registered = task
    ids: list[str] = _STATE["ids"]  # type: ignore[assignment]
    packed: np.ndarray = _STATE["packed"]  # type: ignore[assignment]
    refused: np.ndarray = _STATE["refused"]  # type: ignore[assignment]
    transforms: list[str] = _STATE["transforms"]  # type: ignore[assignment]
    fillers: dict[str, list[tuple[str, Image.Image]]] = _STATE["fillers"]  # type: ignore[assignment]
    img = Image.fromarray(photo_pixels(photo))
    others = [im for pid, im in fillers[photo.group] if pid != photo.id][:FILLERS]
    out: list[dict[str, object]] = []
    for name in transforms:
        pixels = np.ascontiguousarray(np.asarray(apply(name, img, photo.id, others).convert("RGB")))
        out.append(query_row(photo, registered, name, pixels, ids, packed, refused=refused))
    return out


def _first(photos: list[Photo], n: int) -> list[Photo]:
    """The first `n` photos of each group, in the order given."""
    out: list[Photo] = []
    for group in sorted({p.group for p in photos}):
        out += [p for p in photos if p.group == group][:n]
    return out


def run(args: argparse.Namespace) -> Path:
    photos = build_corpus(CACHE)
    reg, dis = _select(photos, args.per_group or None, held_out=args.held_out)
    bank = reg + (_select(photos, None)[0] if args.held_out else [])
    if args.groups:
        reg = [p for p in reg if p.group in args.groups]
        dis = [p for p in dis if p.group in args.groups]
    if args.max_queries:
        reg = _first(reg, args.max_queries)
        dis = _first(dis, args.max_queries)
    ids = [p.id for p in bank]
    packed = hexes_to_array([pdq_from_pixels(photo_pixels(p))[0] for p in bank])
    fillers: dict[str, list[tuple[str, Image.Image]]] = {}
    for group in {p.group for p in dis}:
        pool = [p for p in dis if p.group == group][: FILLERS + 1]
        fillers[group] = [(p.id, Image.fromarray(photo_pixels(p))) for p in pool]
    transforms = args.transforms or list(TRANSFORMS)
    _STATE.update(
        ids=ids, packed=packed, refused=repeating(packed), transforms=transforms, fillers=fillers
    )
    tasks = [(p, True) for p in reg] + [(p, False) for p in dis]
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    print(f"{len(reg)} registered, {len(dis)} distractors, bank {len(bank)}, {transforms}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write(
            json.dumps(
                {
                    "meta": {
                        "bank": len(bank),
                        "transforms": transforms,
                        "held_out": args.held_out,
                        "load_start": load0,
                    }
                }
            )
            + "\n"
        )
        with mp.get_context("fork").Pool(args.workers) as pool:
            for done, rows in enumerate(pool.imap_unordered(_work, tasks, chunksize=2), 1):
                for row in rows:
                    fh.write(json.dumps(row) + "\n")
                if done % 50 == 0:
                    print(f"  {done}/{len(tasks)} photos, {time.perf_counter() - t0:.0f}s")
    print(f"done in {time.perf_counter() - t0:.0f}s (load {load0:.1f} -> {os.getloadavg()[0]:.1f})")
    return path


def read_dump(path: Path) -> Iterator[dict[str, object]]:
    """The query rows of a dump (the first line, its meta, is skipped)."""
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            yield json.loads(line)


def product_rule(variant: str, quality: int, distance: int) -> int | None:
    """The matcher's rule (`signals.pdq.view_cap`, `view_rank`), as `methods.KnownAbuse`
    applies it."""
    cap = view_cap(variant, quality)
    if cap is not None and distance > cap:
        return None
    return view_rank(variant, quality, distance)


def simulate(rows: Iterator[dict[str, object]], rules: dict[str, Rule]) -> list[Outcome]:
    """The outcomes of reference PDQ (`pdq`) and of a known-abuse method per rule, as the
    harness would record them: each rule's answer is the best-ranked view's nearest photo
    (the first view on a tie, as `methods._PdqBank.best_ranked`), its score minus that rank,
    and it matches when the rank is within PDQ's default threshold."""
    out: list[Outcome] = []
    for row in rows:
        reg, query = bool(row["registered"]), str(row["query"])
        transform, group = str(row["transform"]), str(row["group"])
        near, d, _q, _own = row["pdq"]  # type: ignore[misc]
        out.append(
            Outcome(
                "pdq",
                transform,
                group,
                reg,
                reg and near == query,
                d <= DEFAULT_THRESHOLD,
                -float(d),
                0.0,
                0.0,
                query,
                near,
            )
        )
        views: list[list[object]] = row["views"]  # type: ignore[assignment]
        for name, rule in rules.items():
            best: tuple[int, str] | None = None
            for variant, quality, nearest, distance, *_ in views:
                rank = rule(str(variant), int(quality), int(distance))  # type: ignore[call-overload]
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, str(nearest))
            rank, answer = best if best is not None else (257, "")
            out.append(
                Outcome(
                    name,
                    transform,
                    group,
                    reg,
                    reg and answer == query,
                    rank <= DEFAULT_THRESHOLD,
                    -float(rank),
                    0.0,
                    0.0,
                    query,
                    answer or None,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-group", type=int, default=0)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--groups", nargs="*", default=None)
    parser.add_argument("--transforms", nargs="*", choices=list(TRANSFORMS), default=None)
    parser.add_argument(
        "--max-queries",
        type=int,
        default=0,
        help="query only the first N registered photos "
        "and N distractors of each group (the bank stays the run's)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", required=True)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
