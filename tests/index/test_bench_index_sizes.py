"""The index-size benchmark's smoke run: every path exact, the report written where asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_index_sizes  # noqa: E402


def test_quick_run_has_full_recall_and_writes_its_section(tmp_path: Path) -> None:
    md, js = tmp_path / "bench.md", tmp_path / "rows.json"
    argv = ["--quick", "--kinds", "clustered", "--queries", "40"]  # the case with many pairs
    rows = bench_index_sizes.main([*argv, "--out", str(md), "--json", str(js)])
    assert [(r["n"], r["kind"]) for r in rows] == [(100_000, "clustered")]
    for r in rows:
        assert r["recall"] == 1.0 and r["exact"] is True
        assert r["faiss_multihash_recall"] == 1.0  # 11 x 23 bits with 2 flips is exact at 31
        assert r["pairs_in_subset"] > 0 and r["pairs"] >= r["pairs_in_subset"]
        assert r["bytes_per_hash"] <= 64
        for key in ("faiss_flat_qps", "batch_qps", "single_qps", "mih_qps", "flat_scan_qps"):
            assert r[key] > 0
    assert json.loads(js.read_text()) == rows
    text = md.read_text()
    assert "<!-- bench:index-sizes -->" in text and "## The index at every size" in text
    assert "| 100k clustered |" in text
    assert "(paths differ!)" not in text
