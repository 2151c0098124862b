"""The scan's files in its report folder: `hashes.jsonl` (one record per file, the checkpoint
that `--resume` reads), `matches.jsonl` (one line per matched file), and reading them back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HASHES = "hashes.jsonl"
MATCHES = "matches.jsonl"


def done_paths(path: Path) -> set[str]:
    """Paths already in a checkpoint file; a torn last line (a crash mid-write) is ignored."""
    done: set[str] = set()
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError):
                continue
    return done


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except ValueError:
                continue
