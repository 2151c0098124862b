# Owns the simulation of the PDQ index spread over several nodes (issue 20, beyond one machine).
"""The PDQ index beyond one machine, by simulation: id-range shards against one index.

One process builds, from one bank of N hashes, one `PdqIndex` over all of it and S id-range
shards (entry i goes to shard i mod S, the way a store's ids would be dealt out), plus indexes
over N/4 and N/2 of the bank, and answers the same queries on each, in rounds that time every
layout once (so the load of a shared machine weighs on all alike; the best round is kept).
It checks that the shards' answers, put together, are exactly the one index's answers.

Measured, as a ratio to the one index in the same run:
- fan-out work: the sum of the S shards' times (what a query costs the cluster);
- fan-out latency: the slowest shard's time (the shards answer in parallel, one core each),
  plus putting the S answers together, measured; the network is added on paper.

A cost model is fitted to the four sizes measured (N/S, N/4, N/2, N): multi-index hashing
splits a hash into 8 substrings of 32 bits; at radius 31 a match shares a substring within
3 bits with the query, so each query probes, in each of the 8 tables, the C(p, <=3) buckets
around its substring's p-bit key, and reads the rows in them (n / 2^p on average):
    time per query = c_query + c_probe * 8 * C(p,<=3) + c_row * 8 * C(p,<=3) * n / 2^p
where p is the key width the index chose for n rows. The constants that extrapolate are solved
from the 1M and 10M rates measured on a quiet machine (docs/benchmarks.md, `bench:match`):
on a loaded machine the caches are shared with other processes and bigger indexes lose more,
so this run's own fit is shown beside them, not used. They extrapolate to 100M and 1B hashes
for id-range shards, substring shards (one table per node), and one machine, with the
arithmetic written out. Results go to the `shards` block of docs/scale.md.

    .venv/bin/python bench/sim_shards.py                   # N = 4M, S = 8, both bank kinds
    .venv/bin/python bench/sim_shards.py --n 8000000       # the larger run
    .venv/bin/python bench/sim_shards.py --quick           # N = 400k, prints only
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench.*` when run as a script

from bench._common import machine_info, record_section  # noqa: E402
from bench.bench_index_sizes import RADIUS, flip_some, make_bank  # noqa: E402

SCALE_MD = ROOT / "docs" / "scale.md"
SUBSTRINGS = 8  # MIH tables: 256 bits as 8 substrings of 32 bits
SUB_RADIUS = RADIUS // SUBSTRINGS  # 3: a match within 31 shares a substring within 3 bits
RTT_MS = 0.2  # one request and answer between two machines in one data centre (assumed)
# Uniform banks' MIH batches on a quiet machine, one thread (docs/benchmarks.md, bench:match):
# (rows, key bits the index chose, queries per second). The extrapolation's constants.
QUIET = ((1_000_000, 18, 943.0), (10_000_000, 22, 626.0))
BUDGET = 64  # bytes per hash


def probes(p: int) -> int:
    """Buckets probed in one table: keys within SUB_RADIUS bits of a p-bit key."""
    return sum(math.comb(p, k) for k in range(SUB_RADIUS + 1))


def features(n: int, p: int) -> tuple[float, float]:
    """(buckets probed, rows read) by one query over n rows with p-bit keys, 8 tables."""
    b = SUBSTRINGS * probes(p)
    return float(b), b * n / 2**p


def best_rounds(calls: dict[str, Any], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Time every call once a round; the best time of each over `repeats` rounds."""
    best: dict[str, float] = {}
    out: dict[str, Any] = {}
    for _ in range(repeats):
        for key, call in calls.items():
            t0 = time.perf_counter()
            out[key] = call()
            t = time.perf_counter() - t0
            best[key] = min(best.get(key, math.inf), t)
    return best, out


def pairs_of(result: Any, ids_map: np.ndarray | None = None) -> set[tuple[int, int]]:
    ids = result.ids if ids_map is None else ids_map[result.ids]
    return set(zip(result.query_index.tolist(), ids.tolist(), strict=True))


def run(n: int, shards: int, kind: str, n_queries: int, repeats: int) -> dict[str, Any]:
    from childguard.index import PdqIndex

    rng = np.random.default_rng(2020 + n + shards + (kind == "clustered"))
    bank = make_bank(n, kind, rng)
    queries = flip_some(bank[rng.integers(0, n, n_queries)], 0, 16, rng)
    ids = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    one = PdqIndex.build(ids, bank)
    build_one = time.perf_counter() - t0
    parts, build_parts = [], 0.0
    for s in range(shards):
        sel = ids[s::shards]
        t0 = time.perf_counter()
        parts.append(PdqIndex.build(sel, bank[sel]))
        build_parts += time.perf_counter() - t0
    # the same queries over N/4 and N/2 of the bank: two more points for the cost model
    sizes = {"quarter": n // 4, "half": n // 2}
    extra = {k: PdqIndex.build(ids[:m], bank[:m]) for k, m in sizes.items()}
    del bank

    calls: dict[str, Any] = {"one": lambda: one.search(queries, RADIUS)}
    for s, part in enumerate(parts):
        calls[f"shard{s}"] = lambda part=part: part.search(queries, RADIUS)
    for key, index in extra.items():
        calls[key] = lambda index=index: index.search(queries, RADIUS)
    singles = queries[: min(200, n_queries)]
    calls["one_single"] = lambda: [
        one.search(singles[i : i + 1], RADIUS) for i in range(len(singles))
    ]
    calls["shard0_single"] = lambda: [
        parts[0].search(singles[i : i + 1], RADIUS) for i in range(len(singles))
    ]
    best, out = best_rounds(calls, repeats)

    # put the S answers together as a coordinator would: concatenate, order by query
    t0 = time.perf_counter()
    qi = np.concatenate([out[f"shard{s}"].query_index for s in range(shards)])
    got = np.concatenate([out[f"shard{s}"].ids for s in range(shards)])
    dist = np.concatenate([out[f"shard{s}"].distances for s in range(shards)])
    order = np.argsort(qi, kind="stable")
    qi, got, dist = qi[order], got[order], dist[order]
    merge = time.perf_counter() - t0
    truth = pairs_of(out["one"])
    merged = set(zip(qi.tolist(), got.tolist(), strict=True))

    shard_times = [best[f"shard{s}"] for s in range(shards)]
    return {
        "n": n,
        "shards": shards,
        "kind": kind,
        "queries": n_queries,
        "singles": len(singles),
        "exact": merged == truth,
        "pairs": len(truth),
        "one_s": best["one"],
        "work_s": sum(shard_times),
        "latency_s": max(shard_times) + merge,
        "merge_s": merge,
        "one_single_s": best["one_single"],
        "shard_single_s": best["shard0_single"],
        "build_one_s": build_one,
        "build_parts_s": build_parts,
        "p_one": one.prefix_bits,
        "p_shard": parts[0].prefix_bits,
        "bytes_one": one.memory_bytes() / n,
        "bytes_shard": sum(p.memory_bytes() for p in parts) / n,
        # (rows, prefix bits, seconds per query) for the cost model
        "points": [
            (len(parts[0]), parts[0].prefix_bits, max(shard_times) / n_queries),
            (sizes["quarter"], extra["quarter"].prefix_bits, best["quarter"] / n_queries),
            (sizes["half"], extra["half"].prefix_bits, best["half"] / n_queries),
            (n, one.prefix_bits, best["one"] / n_queries),
        ],
    }


Cost = tuple[float, float, float]  # (c_query, c_probe, c_row) in seconds


def fit(points: list[tuple[int, int, float]]) -> tuple[Cost, float]:
    """The non-negative least-squares fit of the cost model through the points (relative
    errors: each point weighs by its own size), and its worst relative error."""
    x = np.array([(1.0, *features(n, p)) for n, p, _t in points])
    y = np.array([t for _n, _p, t in points])
    a = x / y[:, None]
    best: tuple[float, np.ndarray] | None = None
    # the constants must be >= 0: try every subset of them free, keep the best valid fit
    for mask in range(1, 8):
        cols = [j for j in range(3) if mask >> j & 1]
        sol, *_ = np.linalg.lstsq(a[:, cols], np.ones(len(y)), rcond=None)
        if (sol < 0).any():
            continue
        c = np.zeros(3)
        c[cols] = sol
        worst = float(np.max(np.abs(a @ c - 1)))
        if best is None or worst < best[0]:
            best = (worst, c)
    assert best is not None
    worst, c = best
    return (float(c[0]), float(c[1]), float(c[2])), worst


def quiet_cost() -> Cost:
    """(0, c_probe, c_row) solved exactly from the two quiet-machine rates in QUIET."""
    (n1, p1, q1), (n2, p2, q2) = QUIET
    a = np.array([features(n1, p1), features(n2, p2)])
    c_probe, c_row = np.linalg.solve(a, np.array([1 / q1, 1 / q2]))
    return 0.0, float(c_probe), float(c_row)


def per_query(c: Cost, _p: int, b_probe: float, b_rows: float) -> float:
    """Seconds for one query (in this run's units) that probes `b_probe` buckets and reads
    `b_rows` rows."""
    return c[0] + c[1] * b_probe + c[2] * b_rows


def id_range_row(total: int, c: Cost, shard_rows: int = 16_000_000) -> dict[str, Any]:
    """An id-range layout. By default the best one under the budget: shards of 16M rows (the
    most 3-byte row numbers address is 2^24), key width as the index chooses it; bigger shards
    take 4-byte row numbers and 24-bit keys, over the budget."""
    from childguard.index.pdq import default_prefix_bits, offsets_bytes

    shard_rows = min(total, shard_rows)
    s = math.ceil(total / shard_rows)
    rb = 3 if shard_rows <= 2**24 else 4
    p = default_prefix_bits(shard_rows, 4, 3, narrow=True) if rb == 3 else 24
    b_probe, b_rows = features(shard_rows, p)
    per_shard = per_query(c, p, b_probe, b_rows)
    per_hash = 32 + 4 + 7 * rb + (offsets_bytes(p, True) + shard_rows / 8) / shard_rows
    return {
        "shards": s,
        "rows": shard_rows,
        "p": p,
        "b_probe": b_probe,
        "b_rows": b_rows,
        "per_shard_s": per_shard,
        "work_s": s * per_shard,
        "bytes": per_hash,
        "shard_gb": per_hash * shard_rows / 1e9,
    }


def substring_row(total: int, c: Cost) -> dict[str, Any]:
    """One table per node (8 nodes), each with every hash for the final check: its key can be
    wider than one machine's 8 tables allow (the offsets of one table only)."""
    p = min(28, max(4, round(math.log2(total))))  # about one row a bucket, offsets <= 1 GiB
    b_probe = float(probes(p))
    b_rows = b_probe * total / 2**p
    per_node = per_query(c, p, b_probe, b_rows)
    row_bytes = 4 if total <= 2**32 else 5
    per_hash_node = 32 + 4 + row_bytes + 4 * 2**p / total
    return {
        "p": p,
        "b_probe": b_probe,
        "b_rows": b_rows,
        "per_node_s": per_node,
        "work_s": SUBSTRINGS * per_node,
        "node_gb": per_hash_node * total / 1e9,
        "bytes_node": per_hash_node,
    }


def one_machine_row(total: int, c: Cost) -> dict[str, Any]:
    """All of it in one index: keys capped at 24 bits, 4-byte row numbers past 2^24 rows."""
    from childguard.index.pdq import offsets_bytes

    p = 24
    b_probe, b_rows = features(total, p)
    per_hash = 32 + 4 + 7 * 4 + (offsets_bytes(p, True) + total / 8) / total
    return {
        "p": p,
        "b_probe": b_probe,
        "b_rows": b_rows,
        "work_s": per_query(c, p, b_probe, b_rows),
        "bytes": per_hash,
    }


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:,.2f}" if ms < 100 else f"{ms:,.0f}"


def report(rows: list[dict[str, Any]], args: argparse.Namespace, machine: str) -> str:
    lines = [
        "### Id-range shards against one index (`bench/sim_shards.py`, simulated in one process)",
        "",
        f"Run: {machine}; load average {os.getloadavg()[0]:.1f} at the end. One thread, "
        f"radius {RADIUS}; {rows[0]['queries']:,} queries a batch (entries with 0-16 bits "
        f"flipped), best of {args.repeats} rounds; each shard's time is its own batch over the "
        "same queries. Work = sum of the shards' times; latency = the slowest shard + putting "
        "the answers together (measured), without the network.",
        "",
        "| bank | one index q/s | shards | fan-out work × one index | fan-out latency × one "
        "index | one query a call: shard ms / one index ms | B/hash one / shards | key bits "
        "one / shard | same answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        q = r["queries"]
        lines.append(
            f"| {r['n'] / 1e6:g}M {r['kind']} | {q / r['one_s']:,.0f} | {r['shards']} × "
            f"{r['n'] / r['shards'] / 1e6:g}M | {r['work_s'] / r['one_s']:.2f}× | "
            f"{r['latency_s'] / r['one_s']:.2f}× | "
            f"{fmt_ms(r['shard_single_s'] / r['singles'])} / "
            f"{fmt_ms(r['one_single_s'] / r['singles'])} | "
            f"{r['bytes_one']:.1f} / {r['bytes_shard']:.1f} | {r['p_one']} / {r['p_shard']} | "
            f"{'yes' if r['exact'] else 'NO'} ({r['pairs']:,} pairs) |"
        )
    uniform = [r for r in rows if r["kind"] == "uniform"] or rows
    points = [pt for r in uniform for pt in r["points"]]
    in_run, err = fit(points)
    c = quiet_cost()
    (n1, p1, q1), (n2, p2, q2) = QUIET
    f1, f2 = features(n1, p1), features(n2, p2)
    anchor = per_query(c, p2, *f2)
    r = rows[0]
    s_n = r["n"] // r["shards"]
    shard_model = per_query(c, r["p_shard"], *features(s_n, r["p_shard"]))
    one_model = per_query(c, r["p_one"], *features(r["n"], r["p_one"]))
    lines += [
        "",
        "Cost model: a query probes 8 × C(p,≤3) buckets and reads 8 × C(p,≤3) × n / 2^p rows. "
        f"Solved from the quiet machine's rates (`bench:match`, uniform): 1M at p = {p1}, "
        f"{f1[0]:,.0f} buckets + {f1[1]:,.0f} rows in {1e3 / q1:.3f} ms ({q1:.0f} q/s); 10M at "
        f"p = {p2}, {f2[0]:,.0f} buckets + {f2[1]:,.0f} rows in {1e3 / q2:.3f} ms ({q2:.0f} "
        f"q/s); so **c_probe = {c[1] * 1e9:.1f} ns** a bucket and **c_row = {c[2] * 1e9:.1f} "
        f"ns** a row. For comparison, this run's own least-squares fit through its four uniform "
        f"sizes ({', '.join(f'{n / 1e6:g}M: {t * 1e3:.2f} ms' for n, _p, t in points)}) is "
        f"c_probe {in_run[1] * 1e9:.1f} ns, c_row {in_run[2] * 1e9:.1f} ns (worst error "
        f"{err:.0%}): under this load the bigger indexes lose more to shared caches. For the "
        f"configuration simulated above, the quiet model gives fan-out work "
        f"{r['shards'] * shard_model / one_model:.2f}× and latency {shard_model / one_model:.2f}× "
        f"one index (measured here: {r['work_s'] / r['one_s']:.2f}× and "
        f"{r['latency_s'] / r['one_s']:.2f}×).",
        "",
        "Extrapolated with the quiet constants. Network: "
        f"{RTT_MS} ms a round trip inside one data centre (assumed); latency = one node's time + "
        "one round trip (the fan-out goes out in parallel); work = every node's time added up, so "
        "q/s per core = 1 / work.",
        "",
        "| hashes | layout | nodes × rows | key bits | buckets + rows read per node | "
        "memory per node | memory, all nodes | per node × a 10M query | ms per node | work per "
        "query (core-ms) | latency ms | q/s per core of the cluster |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def timing(per_node: float, nodes: int) -> str:
        ms = per_node * 1e3
        return (
            f"{per_node / anchor:.2f}× | {ms:,.2f} | {nodes * ms:,.1f} | {ms + RTT_MS:,.2f} | "
            f"{1e3 / (nodes * ms):,.0f} |"
        )

    for total in (100_000_000, 1_000_000_000):
        big = id_range_row(total, c, 125_000_000) if total > 125_000_000 else None
        ir = id_range_row(total, c)
        sub = substring_row(total, c)
        om = one_machine_row(total, c)
        name = f"{total / 1e6:,.0f}M" if total < 1e9 else "1B"
        lines.append(
            f"| {name} | id range | {ir['shards']} × {ir['rows'] / 1e6:g}M | {ir['p']} | "
            f"{ir['b_probe']:,.0f} + {ir['b_rows']:,.0f} | {ir['shard_gb']:.2f} GB "
            f"({ir['bytes']:.1f} B/hash) | {ir['bytes'] * total / 1e9:.1f} GB | "
            + timing(ir["per_shard_s"], ir["shards"])
        )
        if big is not None:
            lines.append(
                f"| {name} | id range, big shards | {big['shards']} × {big['rows'] / 1e6:g}M | "
                f"{big['p']} | {big['b_probe']:,.0f} + {big['b_rows']:,.0f} | "
                f"{big['shard_gb']:.1f} GB ({big['bytes']:.1f} B/hash: over {BUDGET}) | "
                f"{big['bytes'] * total / 1e9:.1f} GB | "
                + timing(big["per_shard_s"], big["shards"])
            )
        lines.append(
            f"| {name} | substring (table per node) | 8 × {total / 1e6:,.0f}M | {sub['p']} | "
            f"{sub['b_probe']:,.0f} + {sub['b_rows']:,.0f} | {sub['node_gb']:.1f} GB "
            f"({sub['bytes_node']:.1f} B/hash a node) | {8 * sub['node_gb']:.0f} GB | "
            + timing(sub["per_node_s"], SUBSTRINGS)
        )
        lines.append(
            f"| {name} | one machine | 1 × {total / 1e6:,.0f}M | {om['p']} | "
            f"{om['b_probe']:,.0f} + {om['b_rows']:,.0f} | "
            f"{om['bytes'] * total / 1e9:.1f} GB ({om['bytes']:.1f} B/hash: over {BUDGET}) | "
            f"{om['bytes'] * total / 1e9:.1f} GB | " + timing(om["work_s"], 1)
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000, help="Hashes in the bank.")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=["uniform", "clustered"])
    parser.add_argument("--quick", action="store_true", help="N = 400k; prints only.")
    parser.add_argument("--no-record", action="store_true", help="Print only.")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats, args.no_record = 400_000, 1, True
    machine = machine_info()
    rows = [run(args.n, args.shards, kind, args.queries, args.repeats) for kind in args.kinds]
    text = report(rows, args, machine)
    print(text)
    if not all(r["exact"] for r in rows):
        raise SystemExit("the shards' answers differ from the one index's")
    if not args.no_record:
        record_section("shards", text, SCALE_MD)


if __name__ == "__main__":
    main()
