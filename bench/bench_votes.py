# Owns the benchmark of the protected search's vote kernel (`childguard.robust._votes`) by path.
"""The vote kernel on each of its paths: scalar popcounts (the baseline), AVX2, AVX-512.

The workload is the robustness benchmark's bank: 109,344 registered 256-bit descriptors in
546 inverted lists (`protected._VoteIndex`: a list every VOTE_LIST codes, VOTE_PROBES lists
searched, 4 neighbours). Queries are registered descriptors with 10% of their bits flipped:
a whole query's 1,000 voters and a mirrored query's 300 (`protected.VOTERS`, `ALT_VOTERS`).
`cross` is one verification's mutual-nearest pairs, 1,000 query against 500 registered
descriptors; `distances`, a query's 40 PDQ hashes against 3,660 registered views. Each round
times every path once, so the load of a shared machine weighs on all alike; the best of the
rounds is kept, and every path must give the scalar path's answers.

    python bench/bench_votes.py            # writes its section of docs/benchmarks.md
    python bench/bench_votes.py --quick    # fewer rounds; writes nothing
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from childguard.robust import _votes
from childguard.robust.protected import ALT_VOTERS, VOTE_LIST, VOTE_PROBES, VOTERS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script
from bench._common import machine_info, record_section  # noqa: E402

REGISTERED = 109_344
NEIGHBOURS = 4
# The benchmark bank's PDQ views (366 photos, 10 views each) and one query's hashes.
REGISTERED_VIEWS = 3_660
QUERY_HASHES = 40


def _lists(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`_VoteIndex`'s layout: centres at a regular stride, the codes list after list."""
    lists = max(1, len(codes) // VOTE_LIST)
    centres = np.ascontiguousarray(codes[:: len(codes) // lists][:lists])
    assigned = _votes.assign(codes, centres)
    order = np.argsort(assigned, kind="stable")
    offsets = np.zeros(lists + 1, np.int64)
    np.cumsum(np.bincount(assigned, minlength=lists), out=offsets[1:])
    return centres, np.ascontiguousarray(codes[order]), order.astype(np.int64), offsets


def _noisy(rng: np.random.Generator, codes: np.ndarray, n: int) -> np.ndarray:
    flips = np.packbits(rng.random((n, 256)) < 0.1, axis=1)
    return np.ascontiguousarray(codes[rng.integers(0, len(codes), n)] ^ flips)


def run(rounds: int) -> tuple[list[str], dict[str, dict[str, float]]]:
    rng = np.random.default_rng(7)
    codes = np.packbits(rng.random((REGISTERED, 256)) < 0.5, axis=1)
    centres, stored, ids, offsets = _lists(codes)
    whole, mirrored = _noisy(rng, codes, VOTERS), _noisy(rng, codes, ALT_VOTERS)
    train = np.ascontiguousarray(codes[:500])
    verify_query = _noisy(rng, train, 1000)
    # A query's PDQ hashes against every registered view (`ProtectedIndex.pdq_hits`).
    views = np.packbits(rng.random((REGISTERED_VIEWS, 256)) < 0.5, axis=1)
    views_query = _noisy(rng, views, QUERY_HASHES)
    work: dict[str, Callable[[str], tuple[np.ndarray, ...]]] = {
        f"search, {VOTERS} voters": lambda p: _votes.search(
            whole, centres, stored, ids, offsets, VOTE_PROBES, NEIGHBOURS, p
        ),
        f"search, {ALT_VOTERS} voters": lambda p: _votes.search(
            mirrored, centres, stored, ids, offsets, VOTE_PROBES, NEIGHBOURS, p
        ),
        "cross, 1000 x 500": lambda p: _votes.cross(verify_query, train, 64, p),
        f"distances, {len(views_query)} x {len(views)}": lambda p: (
            _votes.distances(views_query, views, p),
        ),
    }
    paths = _votes.paths()
    for name, job in work.items():
        want = job("scalar")
        for path in paths:
            got = job(path)
            same = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
            assert same, f"{name}: the {path} path disagrees with the scalar one"
    best = {name: dict.fromkeys(paths, float("inf")) for name in work}
    for _ in range(rounds):
        for name, job in work.items():
            for path in paths:
                t0 = time.perf_counter()
                job(path)
                best[name][path] = min(best[name][path], time.perf_counter() - t0)
    return paths, best


def markdown(paths: list[str], best: dict[str, dict[str, float]], rounds: int) -> str:
    head = "| work | " + " | ".join(paths) + " |"
    rule = "|---|" + "---|" * len(paths)
    rows = [
        f"| {name} | "
        + " | ".join(
            f"{1e3 * t[p]:.2f} ms ({t['scalar'] / t[p]:.2f}x)"
            if p != "scalar"
            else f"{1e3 * t[p]:.2f} ms (baseline)"
            for p in paths
        )
        + " |"
        for name, t in best.items()
    ]
    return "\n".join(
        [
            "## The vote kernel by path (`make bench-votes`)",
            "",
            f"{machine_info()}. {REGISTERED:,} registered descriptors in "
            f"{REGISTERED // VOTE_LIST} lists, {VOTE_PROBES} probed, {NEIGHBOURS} neighbours; "
            f"best of {rounds} rounds; each path's speed-up is against the scalar path "
            "measured in the same run, and every path gave the scalar path's answers.",
            "",
            head,
            rule,
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds; writes nothing")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15
    paths, best = run(rounds)
    text = markdown(paths, best, rounds)
    print(text)
    if not args.quick:
        record_section("votes", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
