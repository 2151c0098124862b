# Owns the robustness run's checkpoint: the outcomes of every photo a run has finished, so a
# run that stops (killed, crashed, the machine gone) resumes where it stopped.
"""A checkpoint is a JSON Lines file beside the run's outcomes file. Its first line is the
run's fingerprint: the run's settings, its photos and bank, and a digest of every source file
the answers depend on (the product under `src/` and this benchmark). Each further line is one
finished photo: its task key, the run's wall seconds so far, and its outcomes.

A run whose fingerprint matches the checkpoint's skips the photos recorded there and appends
the rest; any other checkpoint is set aside (a changed matcher or corpus must be measured
afresh). A last line cut short by a kill is ignored. The file is removed once the run's
outcomes are written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path
from typing import IO

from bench.robustness.metrics import Outcome

# What the answers depend on: the product and the benchmark itself.
SOURCE_ROOTS = ("src/childguard", "bench/robustness")
SOURCE_SUFFIXES = (".py", ".c", ".h", ".pyi")


def source_digest(roots: Iterable[str] = SOURCE_ROOTS, base: Path = Path(".")) -> str:
    """sha256 over the path and bytes of every source file under `roots`, in path order."""
    digest = hashlib.sha256()
    for root in roots:
        files = sorted(
            p
            for p in (base / root).rglob("*")
            if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts
        )
        for path in files:
            digest.update(str(path.relative_to(base)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(settings: dict[str, object], tasks: list[str], bank: list[str]) -> str:
    """One string naming what a run measures: equal only for runs whose answers are equal."""
    body = json.dumps(
        {"settings": settings, "tasks": tasks, "bank": bank, "source": source_digest()},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Checkpoint:
    """The finished photos of one run, read back from `path` and appended to as photos
    finish."""

    def __init__(self, path: Path, fingerprint: str, *, resume: bool = True) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.done: dict[str, list[Outcome]] = {}
        self.elapsed_before = 0.0
        self.set_aside: Path | None = None
        if resume and path.exists():
            self._read()
        elif path.exists():
            self._set_aside()
        self._out: IO[str] | None = None

    def _read(self) -> None:
        with self.path.open() as f:
            lines = f.read().splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("fingerprint") != self.fingerprint:
            self._set_aside()
            return
        kept = [lines[0]]
        for line in lines[1:]:
            try:
                key, elapsed, rows = json.loads(line)
            except (json.JSONDecodeError, ValueError):
                break  # a line cut short when the run was killed, and nothing after it
            self.done[key] = [Outcome(*row) for row in rows]
            self.elapsed_before = max(self.elapsed_before, float(elapsed))
            kept.append(line)
        if len(kept) < len(lines):  # rewrite without the broken tail
            self.path.write_text("\n".join(kept) + "\n")

    def _set_aside(self) -> None:
        self.set_aside = self.path.with_name(self.path.name + ".old")
        self.path.replace(self.set_aside)

    def add(self, key: str, rows: list[Outcome], elapsed: float) -> None:
        """Record one finished photo; `elapsed`: this run's wall seconds so far, earlier runs'
        included."""
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self._out = self.path.open("a")
            if fresh:
                self._out.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
        self._out.write(json.dumps([key, round(elapsed, 3), [astuple(r) for r in rows]]) + "\n")
        self._out.flush()
        self.done[key] = rows

    def finish(self) -> None:
        """The run's outcomes are written: the checkpoint is no longer needed."""
        if self._out is not None:
            self._out.close()
            self._out = None
        self.path.unlink(missing_ok=True)
