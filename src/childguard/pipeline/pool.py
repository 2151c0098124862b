# Owns the hashing process pool: bounded work in flight, crashed workers, workers that die with us.
"""Hashing many sources on a process pool over every core, with bounded work in flight,
streaming records back in input order. A worker that dies (a decoder crash) costs only the
item it was hashing; an exception that escapes the signals stage costs only its item too,
with one worker or many. Workers die with the process that started them, even when it is
killed with SIGKILL (`childguard.forksafe.die_with_parent`). A progress bar can be drawn on
stderr.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from childguard.forksafe import die_with_parent
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Limits
from childguard.pipeline.hashing import HashOptions, hash_source
from childguard.pipeline.sources import Source
from childguard.signals.content import ContentSignals

log = get_logger(__name__)


def default_workers() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def hash_many(
    sources: Iterable[Source],
    *,
    workers: int | None = None,
    dihedral: bool = False,
    progress: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    total: int | None = None,
    robust: bool = False,
    features: bool = False,
    options: HashOptions | None = None,
) -> Iterator[ContentSignals]:
    """Hash `sources` on a process pool and stream records back in input order.

    `workers` defaults to every core; 1 hashes in this process. At most a few
    items per worker are in flight, so memory stays bounded for any input size.
    A worker that dies (a decoder crash) costs only the item it was hashing: that
    item gets an error record and the pool is restarted for the rest.
    With `progress`, a Rich progress bar is drawn on stderr (`total` sizes it;
    it defaults to `len(sources)` when sources is a sequence). `options`, when given,
    replaces `dihedral`, `limits`, `robust` and `features`.
    """
    opts = options or HashOptions(
        dihedral=dihedral, robust=robust, features=features, limits=limits
    )
    n_workers = workers or default_workers()
    if total is None and hasattr(sources, "__len__"):
        total = len(sources)  # type: ignore[arg-type]
    records = (
        _hash_serial(sources, opts) if n_workers == 1 else _hash_pool(sources, n_workers, opts)
    )
    if not progress:
        yield from records
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("hashing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
    )
    from rich.console import Console

    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hash", total=total, failed=0)
        failed = 0
        for record in records:
            failed += record.error is not None
            bar.update(task, advance=1, failed=failed)
            yield record


def _hash_serial(sources: Iterable[Source], options: HashOptions) -> Iterator[ContentSignals]:
    for source in sources:
        try:
            record = hash_source(source, options)
        except Exception as exc:  # a bug, not bad input: keep the batch going, say so
            log.error("hashing failed", path=source.path, error=repr(exc))
            record = ContentSignals(path=source.path, error=f"internal-error: {exc!r}")
        yield record


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (the one pool factory here)."""
    return ProcessPoolExecutor(
        max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)
    )


def _hash_pool(
    sources: Iterable[Source], workers: int, options: HashOptions
) -> Iterator[ContentSignals]:
    max_in_flight = workers * 4
    pending: deque[tuple[Source, Future[ContentSignals]]] = deque()
    it = iter(sources)
    pool = new_pool(workers)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < max_in_flight:
                source = next(it, None)
                if source is None:
                    exhausted = True
                    break
                if source.error is not None:  # nothing to compute: skip the round trip
                    done: Future[ContentSignals] = Future()
                    done.set_result(ContentSignals(path=source.path, error=source.error))
                    pending.append((source, done))
                else:
                    job = pool.submit(hash_source, source, options)
                    pending.append((source, job))
            if not pending:
                return
            source, future = pending.popleft()
            try:
                yield future.result()
            except BrokenProcessPool:
                # Some in-flight item killed its worker; retry the head alone to find out.
                yield _hash_isolated(source, options)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool(workers)
                retry = [s for s, _ in pending]
                pending.clear()
                for s in retry:
                    pending.append((s, pool.submit(hash_source, s, options)))
            except Exception as exc:  # a bug, not bad input: keep the batch going, say so
                log.error("hashing failed", path=source.path, error=repr(exc))
                yield ContentSignals(path=source.path, error=f"internal-error: {exc!r}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hash_isolated(source: Source, options: HashOptions) -> ContentSignals:
    """Hash one source in a fresh single-worker pool; a crash there is that item's fault."""
    with new_pool(1) as solo:
        try:
            job = solo.submit(hash_source, source, options)
            return job.result()
        except BrokenProcessPool:
            log.error("hashing worker died", path=source.path)
            return ContentSignals(
                path=source.path, error="worker-crashed: the decoder process died"
            )
