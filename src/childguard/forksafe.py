# Owns what forked children need: OpenMP safety, and pool workers dying with their parent.
"""Keep forked children (crawl processes, hashing pool workers) from deadlocking in OpenMP,
and let pool workers die with their parent (`die_with_parent`, a pool initializer).

faiss runs its loops on an OpenMP thread pool. A child forked after the parent started that
pool inherits the pool's state but not its threads, and its first parallel loop waits forever
(GNU libgomp). After every fork the child therefore runs faiss single-threaded, which is also
what a pool worker should do: the pool already uses every core.
"""

from __future__ import annotations

import os
import sys


def _faiss_single_threaded() -> None:
    faiss = sys.modules.get("faiss")  # only if this process uses faiss at all
    if faiss is not None:
        faiss.omp_set_num_threads(1)


os.register_at_fork(after_in_child=_faiss_single_threaded)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process die with SIGKILL when its parent dies, even by kill -9.

    A pool initializer: on Linux through `prctl(PR_SET_PDEATHSIG)`; where that is missing, a
    daemon thread that polls the parent. A parent already gone before the call ends it now."""
    import ctypes
    import signal
    import threading
    import time

    armed = False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if armed:
        return

    def watch() -> None:  # pragma: no cover - systems without prctl
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
