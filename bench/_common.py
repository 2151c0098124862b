"""Shared helpers for benchmarks: machine description and writing results into docs/benchmarks.md.

Each benchmark owns one section of docs/benchmarks.md, delimited by
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; `record_section` replaces only
that section (appending it when absent), so benchmarks never overwrite each other.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nResults written by the scripts in `bench/` (`make bench`). "
    "Each section is replaced\nwhen its benchmark runs again.\n"
)


def record_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the `name` section of `path` with `markdown`."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"bad section name {name!r}")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def publish(name: str, title: str, command: str, text: str, *, record: bool = True) -> None:
    """Print a check's report and, with `record`, write it as section `name` of
    docs/benchmarks.md under `title` (a markdown heading), naming the `command` that makes it."""
    print(text)
    if record:
        record_section(name, f"{title}\n\n`{command}`. {text}")


def machine_info() -> str:
    """One line describing where a benchmark ran, and when."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {cpu}; {cores} cores usable; load average {load:.1f} at start; "
        f"Python {platform.python_version()}"
    )


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock timings of `fn()`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
