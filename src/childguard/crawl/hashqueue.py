# Owns the crawl's hashing queue: the process pool, its bounded queue, and the backpressure it
# puts on the downloader.
"""A bounded queue in front of the crawl's hashing pool, with backpressure on the downloader.

Hashing runs in a process pool (`make_pool`: forked workers that die with the crawl process,
`childguard.forksafe.die_with_parent`), so the reactor's process only downloads, parses and
records. `HashQueue.run(fn, *args)` awaits a free slot: at most `depth` jobs (default twice the
workers) are in the pool at once, so every worker always has the next image waiting and no more.
When the queue is full it calls `on_full` (the crawl pauses Scrapy's engine: no new request is
scheduled, so the downloader stops fetching images it could not hash yet) and, once it has
drained to half, `on_free` (the engine resumes). Items that arrive while it is full wait in
order. The counters (`submitted`, `peak_waiting`, `pauses`) go into the crawl's stats.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

from childguard.forksafe import die_with_parent

T = TypeVar("T")


def make_pool(workers: int | None) -> tuple[Executor, int]:
    """The hashing pool and its size: `workers` forked processes (default the CPU count), each
    started before the reactor and dying with this process; 0 hashes in 4 threads instead."""
    n = (os.cpu_count() or 1) if workers is None else workers
    if n <= 0:
        return ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash"), 4
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("fork"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    for f in [pool.submit(os.getpid) for _ in range(n)]:  # start the workers before the reactor
        f.result()
    return pool, n


class HashQueue:
    """At most `depth` jobs in `pool` at once; callers beyond that wait their turn."""

    def __init__(
        self,
        pool: Executor,
        workers: int,
        *,
        depth: int | None = None,
        on_full: Callable[[], None] | None = None,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.depth = max(1, depth if depth is not None else 2 * workers)
        self.on_full = on_full
        self.on_free = on_free
        self.in_pool = 0
        self.submitted = 0
        self.pauses = 0
        self.peak_waiting = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._paused = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def full(self) -> bool:
        return self.in_pool >= self.depth

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the pool, once a slot is free."""
        if self.full or self._waiting:
            slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(slot)
            self.peak_waiting = max(self.peak_waiting, len(self._waiting))
            self._pause()
            try:
                await slot  # handed over by a finishing job, which kept in_pool counted for us
            except asyncio.CancelledError:
                if slot.done() and not slot.cancelled():
                    self._release()  # the slot was ours already: pass it on
                raise
        else:
            self.in_pool += 1
        if self.full:
            self._pause()
        self.submitted += 1
        try:
            return await asyncio.wrap_future(self.pool.submit(fn, *args))
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            slot = self._waiting.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot passes to the next waiter
                return
        self.in_pool -= 1
        if self._paused and self.in_pool <= self.depth // 2:
            self._paused = False
            if self.on_free is not None:
                self.on_free()

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.pauses += 1
            if self.on_full is not None:
                self.on_full()

    def stats(self) -> dict[str, int]:
        return {
            "hash_queue_depth": self.depth,
            "hash_queue_submitted": self.submitted,
            "hash_queue_pauses": self.pauses,
            "hash_queue_peak_waiting": self.peak_waiting,
        }
