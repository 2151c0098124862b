"""The time budget outside the main thread (a Dask worker's task threads, a thread pool): a
block that runs too long is stopped with BudgetExceeded, a block that ends in time is never
hit afterwards, and a slow file hashed in a thread keeps its exact hashes with a timeout
error, as it does in the main thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from childguard.deadline import interrupt_after
from childguard.media import DEFAULT_LIMITS, BudgetExceeded, time_budget
from childguard.pipeline import HashOptions, Source, hash_source
from hostile.media_gen import photo


class _Late(BaseException):
    """Raised by the watchdog in the tests below."""


def _in_thread(work: Callable[[], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # reported to the test
            out["raised"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return out


def _spin(seconds: float) -> int:
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


def test_a_block_past_its_budget_in_a_thread_is_stopped() -> None:
    def work() -> float:
        started = time.monotonic()
        try:
            with time_budget(0.2):
                _spin(10)
        except BudgetExceeded as exc:
            assert exc.error.startswith("timeout") and "0.2 s budget" in exc.error
            return time.monotonic() - started
        raise AssertionError("the budget never fired")

    out = _in_thread(work)
    assert "raised" not in out, out
    assert 0.15 < out["value"] < 5


def _blocks_around_their_budget(count: int) -> dict[str, int]:
    """`count` blocks with budgets just around their own length: each either ends or is
    stopped inside its `with`; nothing may reach the code after it."""
    ended = stopped = 0
    for i in range(count):
        try:
            with interrupt_after(0.0005 + (i % 5) * 0.0005, _Late):
                _spin(0.0002 * (i % 7))
            ended += 1
        except _Late:
            stopped += 1
    _spin(0.3)  # any exception still pending would be delivered here
    return {"ended": ended, "stopped": stopped}


def test_blocks_that_end_in_time_are_never_hit_afterwards() -> None:
    out = _in_thread(lambda: _blocks_around_their_budget(300))
    assert "raised" not in out, out
    assert out["value"]["ended"] + out["value"]["stopped"] == 300


def test_the_watchdog_survives_threads_racing_their_deadlines() -> None:
    """Many threads whose deadlines fall as their blocks end: an exception arriving while a
    thread disarms must neither escape after the block nor leave the watchdog's lock held
    (after which no deadline would ever fire again)."""
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(_in_thread(lambda: _blocks_around_their_budget(1500)))
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and all("raised" not in r for r in results), results
    assert sum(r["value"]["stopped"] for r in results) > 0  # the race was really run
    assert _in_thread(lambda: _stopped_after(0.1)) == {"value": True}


def test_a_block_whose_exit_was_cut_short_ends_with_its_enclosing_block() -> None:
    """An inner block left without its exit (an enclosing deadline's exception arrived first)
    is ended by the enclosing block's exit: it never fires into later code."""

    def work() -> str:
        try:
            with interrupt_after(0.05, _Late):
                interrupt_after(0.2, _Late).__enter__()  # its __exit__ never runs
                _spin(5)
        except _Late:
            pass
        _spin(0.5)  # the inner deadline (0.2 s) falls here
        return "clean"

    assert _in_thread(work) == {"value": "clean"}


def test_many_threads_each_stopped_by_its_own_budget() -> None:
    results: dict[int, str] = {}

    def worker(n: int) -> None:
        try:
            # A budgeted thread would spin 10 s: stopped after 0.1 s, it costs that, and a
            # watchdog kept from the GIL by a loaded machine still stops it in time.
            with time_budget(0.1 if n % 2 else 30):
                _spin(10.0 if n % 2 else 0.05)
            results[n] = "finished"
        except BudgetExceeded:
            results[n] = "stopped"

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {n: "stopped" if n % 2 else "finished" for n in range(6)}


def test_a_slow_file_hashed_in_a_thread_keeps_its_exact_hashes(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(photo(1, (2000, 1500)))
    options = HashOptions(robust=True, limits=replace(DEFAULT_LIMITS, file_seconds=0.001))
    out = _in_thread(lambda: hash_source(Source(path=str(path), file=path), options))
    record = out["value"]
    assert record.error is not None and record.error.startswith("timeout"), record.error
    assert all(record.value(t) for t in ("md5", "sha1", "sha256"))
    in_time = _in_thread(lambda: hash_source(Source(path=str(path), file=path), HashOptions()))
    assert in_time["value"].error is None and in_time["value"].value("pdq")


def test_a_forked_child_gets_a_watchdog_of_its_own() -> None:
    """A child forked while the parent's watchdog waits (holding its lock between deadlines)
    still stops its own slow block."""
    import multiprocessing

    with interrupt_after(30, _Late):  # the parent's watchdog is running and armed
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_child_stops_a_slow_block_in_a_thread)
        child.start()
        child.join(30)
    assert child.exitcode == 0


def _child_stops_a_slow_block_in_a_thread() -> None:
    out = _in_thread(lambda: _stopped_after(0.2))
    raise SystemExit(0 if out.get("value") else 1)


def _stopped_after(seconds: float) -> bool:
    try:
        with time_budget(seconds):
            _spin(10)
    except BudgetExceeded:
        return True
    return False
