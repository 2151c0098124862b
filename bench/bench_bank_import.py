"""Bank import and streaming throughput on SQLite and PostgreSQL (section `bank-import`).

Imports a plain list of N PDQ-length hashes (random bits: the store does not care what they
are), re-imports it (every row already present), and streams it back with `iter_signals`.
The baseline, measured in the same run, is the naive way: one ORM object per row with
`session.add_all`, on a smaller sample; results are rows per second and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine_info, record_section
from childguard import banks
from childguard.store import BankEntry, Store, open_store
from childguard.store.throwaway_pg import ThrowawayPostgres


def write_list(path: Path, n: int) -> None:
    with path.open("w") as f:
        for start in range(0, n, 100_000):
            k = min(100_000, n - start)
            f.write("\n".join(os.urandom(32).hex() for _ in range(k)) + "\n")


def naive_rate(store: Store, n: int) -> float:
    bank = banks.create_bank(store, "naive", "known-abuse", actor="bench")
    values = [os.urandom(32).hex() for _ in range(n)]
    t0 = time.perf_counter()
    with store.session() as s:
        s.add_all(BankEntry(bank_id=bank.id, signal_type="pdq", value=v) for v in values)
    return n / (time.perf_counter() - t0)


def run(store: Store, path: Path, n: int, naive_n: int) -> dict[str, float]:
    banks.create_bank(store, "bench", "known-abuse", actor="bench")
    t0 = time.perf_counter()
    first = banks.import_file(store, "bench", path, actor="bench", signal_type="pdq")
    t_import = time.perf_counter() - t0
    assert first.added == n, first
    t0 = time.perf_counter()
    again = banks.import_file(store, "bench", path, actor="bench", signal_type="pdq")
    t_again = time.perf_counter() - t0
    assert again.added == 0 and again.already_present == n
    t0 = time.perf_counter()
    streamed = sum(1 for _ in banks.iter_signals(store, banks=["bench"]))
    t_stream = time.perf_counter() - t0
    assert streamed == n
    return {
        "import": n / t_import,
        "reimport": n / t_again,
        "stream": n / t_stream,
        "naive": naive_rate(store, naive_n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--naive-lines", type=int, default=50_000)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.txt"
        write_list(path, args.lines)
        store = open_store(f"sqlite:///{tmp}/bench.db")
        results["SQLite"] = run(store, path, args.lines, args.naive_lines)
        store.close()
        with ThrowawayPostgres() as pg:
            store = open_store(pg.create_database("bench"))
            results["PostgreSQL 15"] = run(store, path, args.lines, args.naive_lines)
            store.close()
    rows = [
        "| store | import rows/s | re-import rows/s | stream rows/s | naive ORM rows/s "
        "| import / naive |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['import']:,.0f} | {r['reimport']:,.0f} | {r['stream']:,.0f} "
            f"| {r['naive']:,.0f} | {r['import'] / r['naive']:.1f}x |"
        )
    md = (
        f"## Bank import (`bench/bench_bank_import.py`)\n\n{machine_info()}\n\n"
        f"{args.lines:,} PDQ hashes in a plain list, imported in one transaction; re-imported "
        f"(all already present); streamed back with `iter_signals`. Baseline: one ORM object per "
        f"row (`session.add_all`), {args.naive_lines:,} rows, same run.\n\n" + "\n".join(rows)
    )
    print(md)
    if not args.no_record:
        record_section("bank-import", md)


if __name__ == "__main__":
    main()
