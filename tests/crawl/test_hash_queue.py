"""The crawl's hashing queue: never more than its depth in the pool, backpressure while full
(paused, then resumed once half drained), every job's result to its caller, and a slot handed
to a caller that gave up passed on rather than lost."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from childguard.crawl.hashqueue import ForkPool, HashQueue, make_pool


class _Probe:
    """Counts the jobs running at once. With `gather`, each job waits (up to 5 s) until that
    many run together, so the peak does not depend on how fast the machine starts threads."""

    def __init__(self, gather: int = 0) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self._gather = gather
        self._gathered = threading.Event()

    def job(self, value: int) -> int:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.peak >= self._gather:
                self._gathered.set()
        self._gathered.wait(5)
        time.sleep(0.02)
        with self.lock:
            self.now -= 1
        return value * 10


def test_at_most_depth_in_the_pool_and_the_downloader_paused_while_full() -> None:
    probe = _Probe()
    events: list[str] = []
    with ThreadPoolExecutor(8) as pool:
        queue = HashQueue(
            pool,
            workers=2,
            on_full=lambda: events.append("pause"),
            on_free=lambda: events.append("resume"),
        )

        async def main() -> list[int]:
            return list(await asyncio.gather(*(queue.run(probe.job, i) for i in range(12))))

        results = asyncio.run(main())
    assert results == [i * 10 for i in range(12)]
    assert queue.depth == 4 and probe.peak == 4  # the pool had 8 threads; the queue let 4 in
    assert events[0] == "pause" and events[-1] == "resume"
    assert events.count("pause") == events.count("resume") == queue.pauses >= 1
    assert queue.peak_waiting == 8 and queue.in_pool == 0 and queue.waiting == 0


def test_with_pause_waiting_the_engine_pauses_only_once_that_many_wait() -> None:
    """Images fetched by the workers: the engine (pages only) keeps going while the pool is
    merely full, and pauses once `pause_waiting` callers wait, resuming at half of them."""
    probe = _Probe(gather=4)
    events: list[tuple[str, int]] = []
    with ThreadPoolExecutor(8) as pool:
        queue = HashQueue(
            pool,
            workers=2,
            pause_waiting=6,
            on_full=lambda: events.append(("pause", queue.waiting)),
            on_free=lambda: events.append(("resume", queue.waiting)),
        )

        async def main(n: int) -> list[int]:
            return list(await asyncio.gather(*(queue.run(probe.job, i) for i in range(n))))

        assert asyncio.run(main(8)) == [i * 10 for i in range(8)]  # 4 in the pool, 4 waiting
        assert events == [] and probe.peak == 4
        assert asyncio.run(main(12)) == [i * 10 for i in range(12)]  # 8 waiting at the peak
    assert events[0] == ("pause", 6) and events[-1][0] == "resume" and events[-1][1] <= 3
    assert queue.pauses == 1 and queue.in_pool == 0 and queue.waiting == 0


def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    probe = _Probe()
    with ThreadPoolExecutor(4) as pool:
        queue = HashQueue(pool, workers=1, depth=1)

        async def main() -> list[int]:
            first = asyncio.ensure_future(queue.run(probe.job, 1))
            doomed = asyncio.ensure_future(queue.run(probe.job, 2))
            last = asyncio.ensure_future(queue.run(probe.job, 3))
            await asyncio.sleep(0)
            doomed.cancel()
            return [await first, await last]

        assert asyncio.run(main()) == [10, 30]
    assert queue.in_pool == 0 and probe.peak == 1


def _pid_and_size(data: bytes) -> tuple[int, int]:
    if data == b"boom":
        raise ValueError("boom")
    return os.getpid(), len(data)


def test_fork_pool_runs_jobs_on_its_workers_from_the_event_loop() -> None:
    pool, n = make_pool(2)
    assert isinstance(pool, ForkPool) and n == 2
    try:
        queue = HashQueue(pool, n)
        big = b"x" * 100_000  # goes through the spool folder, not the pipe

        async def main() -> list[tuple[int, int]]:
            jobs = [queue.run(_pid_and_size, big if i % 2 else b"small") for i in range(10)]
            return list(await asyncio.gather(*jobs))

        results = asyncio.run(main())
        assert [size for _, size in results] == [100_000 if i % 2 else 5 for i in range(10)]
        assert len({pid for pid, _ in results}) == 2 and os.getpid() not in {p for p, _ in results}
        assert os.listdir(pool.spool) == []  # every spooled body read and removed

        async def failing() -> None:
            await queue.run(_pid_and_size, b"boom")

        with pytest.raises(ValueError, match="boom"):
            asyncio.run(failing())
    finally:
        pool.shutdown()
    assert not os.path.exists(pool.spool)


def _nap(seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return os.getpid(), threading.get_ident()


def test_a_fork_pool_worker_with_threads_runs_that_many_jobs_at_once() -> None:
    """A worker that fetches its own images runs two at once (one waits on the network while
    the other hashes): two half-second jobs on one worker take half a second, not one."""
    pool, n = make_pool(1, threads=2)
    try:
        queue = HashQueue(pool, n, depth=3)

        async def main() -> list[tuple[int, int]]:
            return list(await asyncio.gather(*(queue.run(_nap, 0.5) for _ in range(2))))

        t0 = time.monotonic()
        results = asyncio.run(main())
        took = time.monotonic() - t0
    finally:
        pool.shutdown()
    assert len({pid for pid, _ in results}) == 1 and len({tid for _, tid in results}) == 2
    assert took < 0.9
