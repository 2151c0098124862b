"""The job queue and runner on SQLite and PostgreSQL: one claim wins, a stalled job is taken
again and gives up after its attempts, handler failures, cancellation and stopping."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from childguard import jobs
from childguard.jobs import JobContext, JobFailed, JobRunner
from childguard.store import Store

KIND = "test-record"
_RAN: list[int] = []
_RAN_LOCK = threading.Lock()


def _record(ctx: JobContext) -> dict[str, Any]:
    with _RAN_LOCK:
        _RAN.append(ctx.job.id)
    time.sleep(0.005)
    ctx.progress(1, 1)
    return {"seen": ctx.job.id}


def _fails_for_good(ctx: JobContext) -> dict[str, Any]:
    raise JobFailed("the list names no bank")


def _flaky(ctx: JobContext) -> dict[str, Any]:
    raise ConnectionError(f"store went away (attempt {ctx.job.attempts})")


def _slow(ctx: JobContext) -> dict[str, Any]:
    for i in range(400):
        ctx.progress(i, 400)
        time.sleep(0.01)
    return {}


jobs.register(KIND, _record)
jobs.register("test-fails", _fails_for_good)
jobs.register("test-flaky", _flaky)
jobs.register("test-slow", _slow)


def test_two_runners_in_two_threads_never_run_one_job_twice(store: Store, tmp_path: Path) -> None:
    _RAN.clear()
    queued = [jobs.enqueue(store, KIND, {"n": i}, "test").id for i in range(30)]
    runners = [JobRunner(store, tmp_path, kind_names=[KIND]) for _ in range(2)]
    threads = [threading.Thread(target=r.run_pending) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(_RAN) == sorted(queued)  # each once
    ended = [jobs.get_job(store, i) for i in queued]
    assert {j.status for j in ended} == {"done"}
    assert all(j.attempts == 1 and j.result == {"seen": j.id} for j in ended)
    assert {j.worker for j in ended} <= {r.worker for r in runners}


def test_a_stalled_job_is_claimed_again_then_fails_with_the_last_error(store: Store) -> None:
    job = jobs.enqueue(store, KIND, {}, "test")
    first = jobs.claim(store, "dead-worker", [KIND])
    assert first is not None and first.id == job.id and first.attempts == 1
    assert jobs.claim(store, "other", [KIND]) is None  # still beating, as far as we know
    time.sleep(0.01)
    again = jobs.claim(store, "second", [KIND], stale_after=timedelta(0))
    assert again is not None and (again.worker, again.attempts) == ("second", 2)
    assert again.error is not None and "dead-worker stopped heart-beating" in again.error
    with pytest.raises(jobs.JobLost):
        jobs.heartbeat(store, job.id, "dead-worker")  # the first worker lost it
    time.sleep(0.01)
    third = jobs.claim(store, "third", [KIND], stale_after=timedelta(0))
    assert third is not None and third.attempts == 3
    time.sleep(0.01)
    assert jobs.claim(store, "fourth", [KIND], stale_after=timedelta(0)) is None
    failed = jobs.get_job(store, job.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith("gave up after 3 attempts; last error: worker dead-worker")


def test_a_failure_for_good_fails_at_once_and_others_are_retried(
    store: Store, tmp_path: Path
) -> None:
    runner = JobRunner(store, tmp_path, kind_names=["test-fails", "test-flaky"])
    bad = jobs.enqueue(store, "test-fails", {}, "test")
    flaky = jobs.enqueue(store, "test-flaky", {}, "test")
    ran = runner.run_pending()
    assert [j.id for j in ran] == [bad.id, flaky.id, flaky.id, flaky.id]
    assert jobs.get_job(store, bad.id).error == "the list names no bank"
    gave_up = jobs.get_job(store, flaky.id)
    assert (gave_up.status, gave_up.attempts) == ("failed", 3)
    assert gave_up.error == (
        "gave up after 3 attempts; last error: ConnectionError: store went away (attempt 3)"
    )


def test_cancelling_a_running_job_stops_its_handler(store: Store, tmp_path: Path) -> None:
    job = jobs.enqueue(store, "test-slow", {}, "test")
    (tmp_path / str(job.id)).mkdir()
    (tmp_path / str(job.id) / "upload").write_text("x")
    runner = JobRunner(store, tmp_path, kind_names=["test-slow"])
    ended: list[jobs.JobInfo | None] = []
    thread = threading.Thread(target=lambda: ended.append(runner.run_one()))
    thread.start()
    deadline = time.monotonic() + 10
    while jobs.get_job(store, job.id).done < 5:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cancelled = jobs.cancel(store, job.id, "test")
    assert cancelled.status == "cancelled"
    thread.join(10)
    assert not thread.is_alive()
    assert ended[0] is not None and ended[0].status == "cancelled"
    assert ended[0].done < 400
    assert not (tmp_path / str(job.id)).exists()  # its files went with it
    with pytest.raises(jobs.JobEnded):
        jobs.cancel(store, job.id, "test")


def test_a_stopping_runner_gives_its_job_back(store: Store, tmp_path: Path) -> None:
    job = jobs.enqueue(store, "test-slow", {}, "test")
    runner = JobRunner(store, tmp_path, kind_names=["test-slow"])
    thread = threading.Thread(target=runner.run_one)
    thread.start()
    while jobs.get_job(store, job.id).done < 2:
        time.sleep(0.01)
    runner.stop()
    thread.join(5)
    assert not thread.is_alive()
    back = jobs.get_job(store, job.id)
    assert (back.status, back.worker, back.attempts) == ("queued", None, 0)
    listed = jobs.list_jobs(store, kind="test-slow", status="queued")
    assert [j.id for j in listed] == [job.id]


def test_enqueue_runs_prepare_before_the_job_is_visible_and_undoes_on_failure(
    store: Store,
) -> None:
    seen: list[list[int]] = []

    def prepare(job_id: int) -> None:
        seen.append([j.id for j in jobs.list_jobs(store)])
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        jobs.enqueue(store, KIND, {}, "test", prepare=prepare)
    assert seen == [[]]  # other sessions do not see the job while it is prepared
    assert jobs.list_jobs(store) == []


def _append_to(ctx: JobContext) -> dict[str, Any]:
    with open(ctx.params["log"], "a") as out:  # one small O_APPEND write per run
        out.write(f"{ctx.job.id} {os.getpid()}\n")
    time.sleep(0.03)
    return {}


def _run_in_process(url: str, workdir: str) -> None:
    from childguard.store import open_store

    jobs.register("test-append", _append_to)
    store = open_store(url)
    try:
        JobRunner(store, Path(workdir), kind_names=["test-append"]).run_pending()
    finally:
        store.close()


def test_two_processes_never_run_one_job_twice(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    queued = [jobs.enqueue(store, "test-append", {"log": str(log)}, "test").id for _ in range(40)]
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_run_in_process, args=(store_url, str(tmp_path))) for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    lines = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(job) for job, _ in lines) == queued  # every job, each once
    assert len({pid for _, pid in lines}) == 2  # and both processes took some
    assert {jobs.get_job(store, i).status for i in queued} == {"done"}
