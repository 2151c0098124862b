"""Pool workers die with the process that started them, even when it is killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from hostile.media_gen import photo

_SCRIPT = """
import sys
from pathlib import Path
from childguard.pipeline import Source, hash_many
path = Path(sys.argv[1])
def endless():
    while True:
        yield Source(path=str(path), file=path)
for record in hash_many(endless(), workers=2):
    print("record", record.error, flush=True)
"""


def test_pool_workers_die_when_their_parent_is_killed(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(photo(21))
    parent = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(image)], stdout=subprocess.PIPE, text=True
    )
    workers: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().startswith("record None")
        workers = psutil.Process(parent.pid).children(recursive=True)
        assert len(workers) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"orphaned workers: {[p.pid for p in alive]}"
    finally:
        for proc in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        if parent.poll() is None:
            parent.kill()
