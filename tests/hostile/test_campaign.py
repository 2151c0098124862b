"""The standing hostile-input campaign: a seeded corpus (`hostile.corpus`) through the real CLI.

For every class of hostile input it asserts that every input has exactly one record, that no
run prints a traceback, that the exit code is the documented one (`hash`: 1 when some input
failed), that no record is an `internal-error` (a bug, not bad input), that the exact hashes
of every readable file are present, and that peak memory stays within the per-file budget
(docs/hashing.md). The quick tier runs in `make test`; `make test-hostile` sets
CHILDGUARD_HOSTILE=long for the long tier (several thousand inputs, more seeds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hostile.corpus import build

LONG = os.environ.get("CHILDGUARD_HOSTILE") == "long"
CHILDGUARD = str(Path(sys.executable).with_name("childguard"))
MEMORY_BUDGET_KIB = 1024 * 1024  # 1 GiB peak per process (docs/hashing.md)
# Errors that say why an input is bad; anything else (internal-error) is a defect.
KNOWN_ERRORS = (
    "empty",
    "corrupt",
    "truncated",
    "not-an-image",
    "unsupported",
    "too-many-pixels",
    "too-large",
    "not-a-file",
    "broken-link",
    "unreadable",
    "bad-archive",
    "archive-too-deep",
    "archive-budget",
    "timeout",
    "video",
)
_MEASURED = (
    "import resource, subprocess, sys\n"
    "run = subprocess.run(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print('peak-kib', peak, file=sys.stderr)\n"
    "sys.exit(run.returncode)\n"
)


def _hash(root: Path, out: Path) -> tuple[int, str, int]:
    """`childguard hash ROOT --out OUT` under a wrapper that reports the peak RSS of it and its
    workers: (exit code, stderr, peak KiB)."""
    run = subprocess.run(
        [sys.executable, "-c", _MEASURED, CHILDGUARD, "hash", str(root), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800 if LONG else 240,
        env={**os.environ, "COLUMNS": "200"},
    )
    peak = int(run.stderr.rsplit("peak-kib", 1)[1].split()[0])
    return run.returncode, run.stderr, peak


SEEDS = [21, 22, 23, 24] if LONG else [21]


@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_corpus_through_hash(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "corpus"
    expected = build(root, seed, scale=60 if LONG else 6)
    out = tmp_path / "records.jsonl"
    code, stderr, peak = _hash(root, out)
    assert "Traceback" not in stderr, stderr[-4000:]
    assert code == 1, stderr[-2000:]  # documented: 1 when some input failed
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got = Counter(r["path"] for r in rows)
    assert got == Counter(expected), {
        "missing": sorted(set(expected) - set(got))[:10],
        "unexpected": sorted(set(got) - set(expected))[:10],
        "repeated": [p for p, n in got.items() if n > 1][:10],
    }
    bugs = [r for r in rows if r.get("error") and not r["error"].startswith(KNOWN_ERRORS)]
    assert bugs == [], bugs[:5]
    for row in rows:
        readable = not (row.get("error") or "").startswith(
            ("not-a-file", "broken-link", "unreadable", "bad-archive", "archive-", "empty")
        )
        if readable:
            assert row.get("md5") and row.get("sha256"), row
    assert peak < MEMORY_BUDGET_KIB, f"peak RSS {peak // 1024} MiB over the 1 GiB budget"
