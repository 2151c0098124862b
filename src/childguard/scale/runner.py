# Owns running a scan's hashing and index search on a Dask cluster, and finishing it on the client.
"""`ClusterRunner`: the `runner` of `childguard.scan.run_scan` that hashes on a Dask cluster.

The client walks the inputs (folders, zip members, list files), cuts them into tasks of
`task_size` sources, and keeps a bounded window of tasks on the cluster. Each task hashes its
sources and searches the index snapshot on a worker (`childguard.scale.tasks`); as tasks
complete (`distributed.as_completed`) the client finishes matching through its own
`Matcher` (the only process that opens the store) and hands the (record, outcome) pairs back
in input order, so that `run_scan` writes the same files as a local scan.

Failures: a worker that dies takes its tasks with it, and the scheduler runs them again on
another worker (at most `distributed.scheduler.allowed-failures` times). A task that keeps
killing workers is split into one task a source, and a source that still kills its worker
becomes an error record (`worker-crashed`), as on the local pool. A result is taken once per
task, and a path once per scan, so no file enters the report twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from childguard.log import get_logger
from childguard.matcher import BankIndex, MatchOutcome
from childguard.pipeline import HashOptions, Pipeline, Source
from childguard.scale.snapshot import IndexShipment, Snapshot, take_snapshot
from childguard.scale.tasks import AnsweredIndex, Answers, BatchResult, hash_and_search
from childguard.signals.content import ContentSignals
from childguard.signals.registry import get_signal_type

if TYPE_CHECKING:
    from distributed import Client, Future

    from childguard.matcher import Matcher

log = get_logger(__name__)
TASK_SIZE = 32
LOG_EVERY_SECONDS = 10.0
Pair = tuple[ContentSignals, MatchOutcome]


@dataclass
class Progress:
    """What the scan has done so far (read by the progress line and the final log)."""

    done: int = 0
    failed: int = 0
    tasks: int = 0
    retried_tasks: int = 0
    crashed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class _Task:
    """One task's sources and, once split after it kept killing workers, its parts."""

    seq: int
    sources: list[Source]
    parts: list[list[Pair] | None] | None = None


def finish_matching(
    matcher: Matcher, records: list[ContentSignals], answers: Answers, radii: dict[str, Any]
) -> list[MatchOutcome]:
    """Match `records` through `matcher`, with the workers' index answers standing in for its
    near indexes (everything else, from the store, as in a local scan)."""
    answered = {
        name: BankIndex(
            name,
            AnsweredIndex(len(index.index), radii.get(name), answers.get(name, {})),
            index.max_entry_id,
            None,
        )
        for name, index in matcher.indexes.items()
    }
    return matcher.match_many(records, near_indexes=answered)


def search_radii(matcher: Matcher) -> dict[str, Any]:
    """The radius each non-empty near index is searched at (the loosest enabled threshold)."""
    radii = {}
    for name, index in matcher.indexes.items():
        radius = matcher.loosest(get_signal_type(name))
        if radius is not None and len(index.index):
            radii[name] = radius
    return radii


class ClusterRunner:
    """Hash and match a scan's sources on the cluster `client` is connected to.

    `ship_index`: send the index snapshot to every worker (a cluster without a shared disk);
    otherwise workers read it at the client's path. `window`: tasks in flight or waiting to
    be handed back in order (default: 3 per worker thread, at least 4)."""

    def __init__(
        self,
        client: Client,
        *,
        ship_index: bool = False,
        task_size: int = TASK_SIZE,
        window: int | None = None,
        progress: bool = False,
    ) -> None:
        self.client = client
        self.ship_index = ship_index
        self.task_size = max(1, task_size)
        self.window = window
        self.progress_bar = progress
        self.progress = Progress()
        self.snapshot: Snapshot | None = None

    # ------------------------------------------------------------------ the run_scan hook

    def __call__(self, sources: Iterable[Source], pipeline: Pipeline) -> Iterator[Pair]:
        if pipeline.matcher is None:
            raise ValueError("a cluster scan needs a matcher")
        matcher = pipeline.matcher
        radii = search_radii(matcher)
        snapshot = take_snapshot(matcher)
        self.snapshot = snapshot
        plugin: IndexShipment | None = None
        try:
            if self.ship_index:
                plugin = IndexShipment(snapshot.version, snapshot.files())
                self.client.register_plugin(plugin, name=plugin.name)
            ref = snapshot.ref(shared=not self.ship_index)
            log.info(
                "scale.start",
                workers=len(self.client.scheduler_info().get("workers", {})),
                index_bytes=snapshot.nbytes(),
                shipped=self.ship_index,
                hard_linked=all(snapshot.linked.values()),
            )
            yield from self._run(sources, pipeline.options, matcher, ref, radii)
        finally:
            if plugin is not None:
                try:
                    self.client.unregister_worker_plugin(plugin.name)
                except Exception as exc:  # the cluster is gone: its workers' files went too
                    log.warning("scale.unregister_failed", error=repr(exc))
            snapshot.close()
            log.info(
                "scale.done",
                files=self.progress.done,
                failed=self.progress.failed,
                retried_tasks=self.progress.retried_tasks,
                per_second=round(self.progress.rate, 1),
            )

    # ------------------------------------------------------------------ the window

    def _threads(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # pragma: no cover - a scheduler that does not answer
            return 1

    def _run(
        self,
        sources: Iterable[Source],
        options: HashOptions,
        matcher: Matcher,
        ref: Any,
        radii: dict[str, Any],
    ) -> Iterator[Pair]:
        from distributed import as_completed

        window = self.window or max(4, 3 * self._threads())
        it = iter(sources)
        chunks = iter(lambda: list(islice(it, self.task_size)), [])
        tasks: dict[Any, tuple[_Task, int | None]] = {}  # future key -> (task, part or None)
        ready: dict[int, list[Pair]] = {}
        waiting: dict[int, _Task] = {}
        next_out = 0
        seq = 0
        futures = as_completed()

        def submit(task: _Task, part: int | None = None) -> None:
            batch = task.sources if part is None else [task.sources[part]]
            future = self.client.submit(
                hash_and_search, batch, options, ref, radii, pure=False, priority=-task.seq
            )
            tasks[future.key] = (task, part)
            futures.add(future)

        def top_up() -> None:
            nonlocal seq
            while len(waiting) + len(ready) < window:
                batch = next(chunks, None)
                if batch is None:
                    return
                task = _Task(seq, batch)
                waiting[seq] = task
                seq += 1
                self.progress.tasks += 1
                submit(task)

        with self._bar() as tick:
            top_up()
            for future in futures:
                task, part = tasks.pop(future.key)
                pairs = self._collect(future, task, part, matcher, radii, submit)
                if pairs is None:
                    continue  # split, or a part of a split task: more to come
                ready[task.seq] = pairs
                waiting.pop(task.seq, None)
                self.progress.done += len(pairs)
                self.progress.failed += sum(r.error is not None for r, _ in pairs)
                tick(len(pairs))
                while next_out in ready:
                    yield from ready.pop(next_out)
                    next_out += 1
                top_up()
        if waiting or ready:  # pragma: no cover - every task ends in one of the branches above
            raise RuntimeError(f"cluster scan ended with {len(waiting) + len(ready)} tasks open")

    def _collect(
        self,
        future: Future,
        task: _Task,
        part: int | None,
        matcher: Matcher,
        radii: dict[str, Any],
        submit: Any,
    ) -> list[Pair] | None:
        """The task's pairs when it is whole, None while parts are outstanding."""
        try:
            result: BatchResult = future.result()
        except Exception as exc:
            future.release()
            return self._failed(task, part, exc, submit)
        future.release()
        outcomes = finish_matching(matcher, result.records, result.answers, radii)
        return _whole(task, part, list(zip(result.records, outcomes, strict=True)))

    def _failed(
        self, task: _Task, part: int | None, exc: BaseException, submit: Any
    ) -> list[Pair] | None:
        if part is None and len(task.sources) > 1:
            log.warning("scale.task_failed", sources=len(task.sources), error=repr(exc))
            self.progress.retried_tasks += 1
            task.parts = [None] * len(task.sources)
            for i in range(len(task.sources)):
                submit(task, i)
            return None
        index = 0 if part is None else part
        source = task.sources[index]
        record = ContentSignals(path=source.path, error=_crash_error(exc))
        self.progress.crashed += 1
        log.error("scale.source_failed", path=source.path, error=repr(exc))
        return _whole(task, part, [(record, MatchOutcome())])

    # ------------------------------------------------------------------ progress

    def _bar(self) -> Any:
        from contextlib import contextmanager

        progress = self.progress
        state = {"logged": time.monotonic()}

        def log_line() -> None:
            now = time.monotonic()
            if now - state["logged"] >= LOG_EVERY_SECONDS:
                state["logged"] = now
                log.info(
                    "scale.progress",
                    files=progress.done,
                    failed=progress.failed,
                    per_second=round(progress.rate, 1),
                )

        @contextmanager
        def plain() -> Iterator[Any]:
            yield lambda n: log_line()

        @contextmanager
        def rich() -> Iterator[Any]:
            from rich.console import Console
            from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

            threads = self._threads()
            columns = (
                SpinnerColumn(),
                TextColumn(f"hashing on {threads} worker thread(s)"),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed, {task.fields[rate]:.1f}/s"),
            )
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("scan", total=None, failed=0, rate=0.0)

                def tick(n: int) -> None:
                    bar.update(task, advance=n, failed=progress.failed, rate=progress.rate)
                    log_line()

                yield tick

        return rich() if self.progress_bar else plain()


def _whole(task: _Task, part: int | None, pairs: list[Pair]) -> list[Pair] | None:
    """The task's pairs once every part is in (a task that was not split is one part)."""
    if part is None:
        return pairs
    assert task.parts is not None
    task.parts[part] = pairs
    if any(p is None for p in task.parts):
        return None
    return [pair for p in task.parts if p is not None for pair in p]


def _crash_error(exc: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return "worker-crashed: the Dask workers hashing this file died"
    return f"internal-error: {exc!r}"
