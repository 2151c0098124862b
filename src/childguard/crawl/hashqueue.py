# Owns the crawl's hashing queue: the process pool, its bounded queue, and the backpressure it
# puts on the downloader.
"""A bounded queue in front of the crawl's hash workers, with backpressure on the downloader.

Hashing runs in worker processes (`ForkPool`, made by `make_pool`: forked before the reactor
starts, dying with the crawl process through `childguard.forksafe.die_with_parent`, and fed
from the event loop itself, with no helper threads), so the reactor's process only downloads,
parses and records. `HashQueue.run(fn, *args)` awaits a free slot: at most `depth` jobs
(default twice the workers) are in the pool at once, so every worker always has the next
image waiting and no more. When the queue is full it calls `on_full` (the crawl pauses
Scrapy's engine: no new request is scheduled, so the downloader stops fetching images it
could not hash yet) and, once it has drained to half, `on_free` (the engine resumes). Items
that arrive while it is full wait in order. The counters (`submitted`, `peak_waiting`,
`pauses`) go into the crawl's stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from childguard.forksafe import die_with_parent

T = TypeVar("T")


def _dumps(message: Any) -> bytes:
    """A message for a worker's pipe, pickled plainly (`Connection.send` builds a
    `ForkingPickler` for every message, copying its reducer tables: tens of microseconds an
    image on both sides; nothing sent here needs those reducers). `Connection.recv` reads it."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


class _Spooled:
    """Bytes handed to a worker as a file in the spool folder (tmpfs where there is one), so
    the crawl process never blocks on a pipe the size of an image."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> bytes:
        with open(self.path, "rb") as f:
            data = f.read()
        os.unlink(self.path)
        return data


def _run(job: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[int, bool, Any]:
    try:
        loaded = tuple(a.load() if isinstance(a, _Spooled) else a for a in args)
        return (job, True, fn(*loaded))
    except Exception as exc:  # the caller gets the exception
        return (job, False, exc)


def _worker(conn: Connection, parent_pid: int, threads: int = 1) -> None:
    """A worker's loop: run each job of every batch received, send the replies. With `threads`
    > 1 that many jobs run at once in threads of this process (one can wait on the network
    while another hashes). Replies that finish while one is being sent go together in the
    next message, so a parent slow to read gets fewer, larger messages, and no thread waits
    long on the pipe."""
    die_with_parent(parent_pid)
    gc.freeze()  # the crawl process's objects: never garbage here, never walked by the collector
    lock = threading.Lock()
    outbox: list[tuple[int, bool, Any]] = []
    sending = False

    def reply(message: tuple[int, Callable[..., Any], tuple[Any, ...]]) -> None:
        nonlocal sending
        result = _run(*message)
        with lock:
            outbox.append(result)
            if sending:  # the thread sending now takes this reply with the next message
                return
            sending = True
        while True:
            with lock:
                batch = outbox[:]
                outbox.clear()
                if not batch:
                    sending = False
                    return
            conn.send_bytes(_dumps(batch))

    with ThreadPoolExecutor(max_workers=threads) if threads > 1 else contextlib.nullcontext() as ex:
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):
                return
            if batch is None:
                return
            for message in batch:
                if ex is None:
                    reply(message)
                else:
                    ex.submit(reply, message)


@dataclass
class _Slot:
    proc: multiprocessing.process.BaseProcess
    conn: Connection
    in_flight: int = 0
    alive: bool = True
    outbox: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = field(default_factory=list)


class ForkPool:
    """Hash worker processes forked from the crawl process, driven from its event loop.

    Unlike `concurrent.futures.ProcessPoolExecutor` it runs no helper threads in the crawl
    process: the reactor hands each job itself (a small message; bytes over `SPOOL_MIN` go as a
    file in a spool folder, tmpfs where there is one) to the least busy worker, and reads the
    replies when the event loop says a worker's pipe is readable. The jobs submitted in one turn
    of the loop go to each worker as one message (a page's images: one write per worker, one
    wake-up), and a worker sends the replies that are ready as one message, so the pipe costs
    per batch, not per image. Helper threads that pickle and write megabytes of images fight
    the reactor for the GIL, and every hand-over costs it milliseconds. Workers die with the
    crawl process (`die_with_parent`)."""

    SPOOL_MIN = 4096

    def __init__(self, workers: int, threads: int = 1) -> None:
        ctx = multiprocessing.get_context("fork")
        self.threads = max(1, threads)
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.spool = tempfile.mkdtemp(prefix="cg-hash-", dir=shm)
        self.workers = workers
        self._slots: list[_Slot] = []
        for _ in range(workers):
            mine, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=_worker, args=(theirs, os.getpid(), self.threads), daemon=True
            )
            proc.start()
            theirs.close()
            self._slots.append(_Slot(proc, mine))
        self._futures: dict[int, tuple[_Slot, asyncio.Future[Any]]] = {}
        self._next = 0
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_due = False

    def _spooled(self, value: Any) -> Any:
        if isinstance(value, bytes | bytearray | memoryview) and len(value) >= self.SPOOL_MIN:
            fd, path = tempfile.mkstemp(dir=self.spool)
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            return _Spooled(path)
        return value

    def submit_async(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the least busy worker; the future resolves on the running loop. The
        job is sent at the end of this turn of the loop, with the others submitted in it."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            for slot in self._slots:
                if slot.alive:
                    loop.add_reader(slot.conn.fileno(), self._reply, slot)
        live = [s for s in self._slots if s.alive]
        if not live:
            raise RuntimeError("every hash worker has died")
        slot = min(live, key=lambda s: s.in_flight)
        job, self._next = self._next, self._next + 1
        future: asyncio.Future[T] = loop.create_future()
        self._futures[job] = (slot, future)
        slot.in_flight += 1
        slot.outbox.append((job, fn, tuple(self._spooled(a) for a in args)))
        if not self._flush_due:
            self._flush_due = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """Send each worker the jobs submitted to it since the last flush, as one message."""
        self._flush_due = False
        for slot in self._slots:
            if not slot.outbox:
                continue
            batch, slot.outbox = slot.outbox, []
            if not slot.alive:
                continue  # its futures failed with it
            try:
                slot.conn.send_bytes(_dumps(batch))
            except OSError:
                self._lost(slot)

    def _reply(self, slot: _Slot) -> None:
        try:
            batch = slot.conn.recv()
        except (EOFError, OSError):
            self._lost(slot)
            return
        for job, ok, value in batch:
            slot.in_flight -= 1
            _, future = self._futures.pop(job)
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _lost(self, slot: _Slot) -> None:
        slot.alive = False
        if self._loop is not None:
            self._loop.remove_reader(slot.conn.fileno())
        for job, (owner, future) in list(self._futures.items()):
            if owner is slot:
                del self._futures[job]
                if not future.done():
                    future.set_exception(RuntimeError("a hash worker died"))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """`fn(*args)` run at once on a worker, outside any event loop (start-up checks)."""
        slot = next(s for s in self._slots if s.alive)
        slot.conn.send_bytes(_dumps([(-1, fn, tuple(self._spooled(a) for a in args))]))
        [(_, ok, value)] = slot.conn.recv()
        done: Future[T] = Future()
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)
        return done

    def stop(self) -> None:
        """Tell every worker to exit once it has sent what it was doing (no new job is taken);
        `shutdown` then waits for them. Workers exit while the caller does its last writes."""
        if self._stopped:
            return
        self._stopped = True
        for slot in self._slots:
            if slot.alive and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(slot.conn.fileno())
            with contextlib.suppress(OSError):
                slot.conn.send(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.stop()
        for slot in self._slots:
            slot.proc.join(5 if wait else 0)
            if slot.proc.is_alive():
                slot.proc.kill()
            slot.conn.close()
        shutil.rmtree(self.spool, ignore_errors=True)


def make_pool(workers: int | None, threads: int = 1) -> tuple[ForkPool | Executor, int]:
    """The hashing pool and its size: `workers` forked processes (default the CPU count), each
    started before the reactor and dying with this process, each running `threads` jobs at
    once; 0 hashes in 4 threads instead."""
    n = (os.cpu_count() or 1) if workers is None else workers
    if n <= 0:
        return ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash"), 4
    return ForkPool(n, threads), n


class HashQueue:
    """At most `depth` jobs in `pool` at once; callers beyond that wait their turn."""

    def __init__(
        self,
        pool: ForkPool | Executor,
        workers: int,
        *,
        depth: int | None = None,
        on_full: Callable[[], None] | None = None,
        on_free: Callable[[], None] | None = None,
        pause_waiting: int | None = None,
    ) -> None:
        self.pool = pool
        self.depth = max(1, depth if depth is not None else 2 * workers)
        # None: pause while the pool is full; N: only once N callers wait for a slot (resume
        # when half of them have had theirs).
        self.pause_waiting = pause_waiting
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
            if self._over():
                self._pause()
            try:
                await slot  # handed over by a finishing job, which kept in_pool counted for us
            except asyncio.CancelledError:
                if slot.done() and not slot.cancelled():
                    self._release()  # the slot was ours already: pass it on
                raise
        else:
            self.in_pool += 1
        if self._over():
            self._pause()
        self.submitted += 1
        try:
            if isinstance(self.pool, ForkPool):
                return await self.pool.submit_async(fn, *args)
            return await asyncio.wrap_future(self.pool.submit(fn, *args))
        finally:
            self._release()

    def _over(self) -> bool:
        """Whether the engine should wait: the pool is full, or enough callers wait."""
        if self.pause_waiting is None:
            return self.full
        return len(self._waiting) >= self.pause_waiting

    def _drained(self) -> bool:
        if self.pause_waiting is None:
            return not self._waiting and self.in_pool <= self.depth // 2
        return len(self._waiting) <= self.pause_waiting // 2

    def _release(self) -> None:
        handed = False
        while self._waiting:
            slot = self._waiting.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot passes to the next waiter
                handed = True
                break
        if not handed:
            self.in_pool -= 1
        if self._paused and self._drained():
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
