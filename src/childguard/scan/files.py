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


def trim_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so that the records a resumed
    scan appends start on a line of their own."""
    if not path.exists():
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # Walk back to the last newline (a record is small: read the tail in blocks).
        end = size
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            block = fh.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            end = start
        fh.truncate(0)


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except ValueError:
                continue
