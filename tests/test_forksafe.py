"""A child forked after the parent used faiss's OpenMP pool can still use faiss."""

from __future__ import annotations

import multiprocessing

import faiss
import numpy as np

import childguard  # noqa: F401  (installs the fork hook)


def _hnsw_add(n: int) -> int:
    index = faiss.IndexBinaryHNSW(256, 16)
    index.add(np.random.default_rng(1).integers(0, 256, (n, 32), dtype=np.uint8))
    return int(index.ntotal)


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put((faiss.omp_get_max_threads(), _hnsw_add(3000)))


def test_forked_child_runs_faiss_without_deadlock() -> None:
    faiss.omp_set_num_threads(2)
    assert _hnsw_add(3000) == 3000  # the parent's OpenMP pool is now started
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "the forked child deadlocked in faiss/OpenMP"
    threads, added = queue.get(timeout=5)
    assert (threads, added) == (1, 3000)
