"""Keep forked children (crawl processes, hashing pool workers) from deadlocking in OpenMP.

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
