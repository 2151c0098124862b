"""The scheduled tasks' leases and runs in the store (`childguard.jobs.schedule`), with an
injected clock, on SQLite and PostgreSQL: a due task runs once, a lease left by a dead node
(a real process killed with SIGKILL) is taken over only once it has expired, failures back
off, and two processes never hold one task at once."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from childguard.jobs import schedule
from childguard.jobs.schedule import Backoff, TaskProblem
from childguard.store import AuditEvent, Store
from childguard.store.scheduler_models import TaskLease

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def _lease_row(store: Store, task: str) -> TaskLease:
    with store.session() as s:
        row = s.get(TaskLease, task)
        assert row is not None
        s.expunge(row)
        return row


def test_a_due_task_runs_once_then_at_its_interval(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "crawls", 10 * MINUTE, now=clock)
    schedule.ensure_task(store, "crawls", 10 * MINUTE, now=clock)  # a second node: no change
    first = schedule.claim(store, "crawls", "node-a", lease=MINUTE, now=clock)
    assert first is not None
    assert schedule.claim(store, "crawls", "node-b", lease=MINUTE, now=clock) is None
    assert schedule.finish(store, first, summary={"crawled": 2}, now=clock)
    # Done: not due again until its interval has passed, whichever node asks.
    assert schedule.claim(store, "crawls", "node-b", now=clock) is None
    clock.advance(10 * MINUTE - timedelta(seconds=1))
    assert schedule.claim(store, "crawls", "node-a", now=clock) is None
    clock.advance(timedelta(seconds=1))
    second = schedule.claim(store, "crawls", "node-b", lease=MINUTE, now=clock)
    assert second is not None and second.holder == "node-b"
    assert schedule.finish(store, second, now=clock)

    (state,) = schedule.task_states(store)
    assert state.task == "crawls" and state.failures == 0 and not state.held(clock())
    assert state.next_run_at == clock() + 10 * MINUTE
    assert [(r.node, r.status) for r in state.runs] == [("node-b", "ok"), ("node-a", "ok")]
    assert state.runs[1].summary == {"crawled": 2}
    assert state.runs[1].ended_at == START
    with pytest.raises(schedule.TaskNotFound):
        schedule.claim(store, "no-such-task", "node-a", now=clock)


def test_run_now_makes_a_task_due_and_is_audited(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "albums", timedelta(hours=1), now=clock)
    lease = schedule.claim(store, "albums", "node-a", now=clock)
    assert lease is not None and schedule.finish(store, lease, now=clock)
    clock.advance(MINUTE)
    assert schedule.claim(store, "albums", "node-a", now=clock) is None
    assert schedule.request_run(store, "albums", "user:7", now=clock) == clock()
    assert schedule.claim(store, "albums", "node-b", now=clock) is not None
    with store.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "task.run_now")).one()
        assert (event.actor, event.object_id) == ("user:7", "albums")
    with pytest.raises(schedule.TaskNotFound):
        schedule.request_run(store, "nothing", "user:7", now=clock)


def test_a_failed_task_is_retried_with_a_capped_backoff(store: Store) -> None:
    clock = Clock()
    backoff = Backoff(base=timedelta(seconds=30), cap=timedelta(minutes=2))
    schedule.ensure_task(store, "alerts", MINUTE, now=clock)
    calls: list[datetime] = []

    def broken(_: threading.Event) -> None:
        calls.append(clock())
        raise RuntimeError("the SMTP server is down")

    waits = []
    for _ in range(4):
        outcome = schedule.run_task(store, "alerts", "node-a", broken, backoff=backoff, now=clock)
        assert outcome is not None and outcome.status == "failed"
        assert outcome.error == "RuntimeError: the SMTP server is down"
        due = _lease_row(store, "alerts").next_run_at
        waits.append(due - clock())
        # Not before its retry is due.
        clock.advance(due - clock() - timedelta(seconds=1))
        assert schedule.run_task(store, "alerts", "node-a", broken, now=clock) is None
        clock.advance(timedelta(seconds=1))
    assert waits == [timedelta(seconds=30), MINUTE, 2 * MINUTE, 2 * MINUTE]
    assert len(calls) == 4
    row = _lease_row(store, "alerts")
    assert row.failures == 4
    (last, *_) = schedule.recent_runs(store, "alerts")
    assert last.status == "failed" and "the SMTP server is down" in (last.error or "")
    assert "Traceback" in (last.error or "")

    outcome = schedule.run_task(store, "alerts", "node-a", lambda _: {"sent": 3}, now=clock)
    assert outcome is not None and outcome.status == "ok" and outcome.summary == {"sent": 3}
    row = _lease_row(store, "alerts")
    assert row.failures == 0 and row.next_run_at == clock() + MINUTE


def test_a_run_that_found_nothing_to_do_leaves_no_record(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "crawls", MINUTE, now=clock)
    outcome = schedule.run_task(store, "crawls", "node-a", lambda _: schedule.IDLE, now=clock)
    assert outcome is not None and outcome.status == "idle"
    assert schedule.recent_runs(store, "crawls") == []
    (state,) = schedule.task_states(store)
    assert state.looked_at == clock() and state.next_run_at == clock() + MINUTE
    assert not state.held(clock())
    clock.advance(MINUTE)
    outcome = schedule.run_task(store, "crawls", "node-b", lambda _: {"crawls": 1}, now=clock)
    assert outcome is not None and outcome.status == "ok"
    assert [r.node for r in schedule.recent_runs(store, "crawls")] == ["node-b"]


def test_task_states_gives_each_task_its_own_last_runs_newest_first(store: Store) -> None:
    clock = Clock()
    for task in ("alerts", "crawls", "sweeps"):
        schedule.ensure_task(store, task, MINUTE, now=clock)
    for i in range(4):
        for task in ("crawls", "alerts"):
            node = f"{task}-{i}"
            assert schedule.run_task(store, task, node, lambda _: {"n": 1}, now=clock)
        clock.advance(MINUTE)
    states = {s.task: s for s in schedule.task_states(store, runs=3)}
    assert sorted(states) == ["alerts", "crawls", "sweeps"]
    assert [r.node for r in states["crawls"].runs] == ["crawls-3", "crawls-2", "crawls-1"]
    assert [r.node for r in states["alerts"].runs] == ["alerts-3", "alerts-2", "alerts-1"]
    assert states["sweeps"].runs == []
    everything = {s.task: s for s in schedule.task_states(store, runs=10)}
    assert [r.node for r in everything["alerts"].runs] == [f"alerts-{i}" for i in (3, 2, 1, 0)]
    assert all(s.runs == [] for s in schedule.task_states(store, runs=0))


def test_a_round_that_partly_failed_runs_again_at_its_interval(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "crawls", 5 * MINUTE, now=clock)

    def refused(_: threading.Event) -> None:
        raise TaskProblem("crawl picshare failed: refused by the SSRF policy", {"crawls": 1})

    outcome = schedule.run_task(store, "crawls", "node-a", refused, now=clock)
    assert outcome is not None and outcome.status == "failed"
    (run,) = schedule.recent_runs(store, "crawls")
    assert run.error == "crawl picshare failed: refused by the SSRF policy"
    assert run.summary == {"crawls": 1}
    row = _lease_row(store, "crawls")
    assert row.failures == 1 and row.next_run_at == clock() + 5 * MINUTE


def test_a_lease_left_by_a_dead_node_is_taken_over_only_after_it_expires(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "crawls", MINUTE, now=clock)
    dead = schedule.claim(store, "crawls", "node-a", lease=2 * MINUTE, now=clock)
    assert dead is not None
    clock.advance(2 * MINUTE - timedelta(seconds=1))
    assert schedule.claim(store, "crawls", "node-b", lease=2 * MINUTE, now=clock) is None
    clock.advance(timedelta(seconds=2))
    taken = schedule.claim(store, "crawls", "node-b", lease=2 * MINUTE, now=clock)
    assert taken is not None
    old = next(r for r in schedule.recent_runs(store, "crawls") if r.id == dead.run_id)
    assert old.status == "failed" and "the lease of node-a expired" in (old.error or "")
    assert "node-b took the task over" in (old.error or "")
    # The slow node comes back: it cannot renew or finish the run it lost.
    assert not schedule.renew(store, dead, now=clock)
    assert not schedule.finish(store, dead, now=clock)
    assert _lease_row(store, "crawls").lease_holder == "node-b"
    assert schedule.finish(store, taken, now=clock)


def test_a_running_task_renews_its_lease(store: Store) -> None:
    clock = Clock()
    schedule.ensure_task(store, "albums", MINUTE, now=clock)
    lease = schedule.claim(store, "albums", "node-a", lease=MINUTE, now=clock)
    assert lease is not None
    for _ in range(5):  # five minutes of work, renewed every 30 seconds
        clock.advance(timedelta(seconds=30))
        assert schedule.renew(store, lease, extend=MINUTE, now=clock)
        clock.advance(timedelta(seconds=30))
        assert schedule.claim(store, "albums", "node-b", now=clock) is None
    assert schedule.finish(store, lease, now=clock)


def test_run_task_renews_in_a_thread_and_stops_work_that_lost_its_lease(store: Store) -> None:
    schedule.ensure_task(store, "slow", timedelta(seconds=1))
    lease = timedelta(seconds=0.6)
    seen: list[bool] = []

    def slow(stop: threading.Event) -> dict[str, int]:
        # Longer than the lease: only the renewals keep another node out.
        time.sleep(1.2)
        seen.append(schedule.claim(store, "slow", "other", force=True) is None)
        return {"done": 1}

    outcome = schedule.run_task(store, "slow", "node-a", slow, lease=lease)
    assert outcome is not None and outcome.status == "ok", outcome
    assert seen == [True]

    def robbed(stop: threading.Event) -> None:
        # Another node takes the task over (as after an expired lease): this run is told.
        with store.session() as s:
            row = s.get(TaskLease, "slow")
            assert row is not None
            row.lease_holder, row.last_run_id = "thief", -1
        assert stop.wait(5)

    outcome = schedule.run_task(store, "slow", "node-a", robbed, lease=lease, force=True)
    assert outcome is not None and outcome.status == "failed"
    assert "node-a lost the lease" in (outcome.error or "")


NODE = textwrap.dedent(
    """
    import json, sys, time
    from datetime import timedelta
    from childguard.jobs import schedule
    from childguard.store import open_store

    url, task, node, mode, out = sys.argv[1:6]
    store = open_store(url, create=False)
    if mode == "hold":
        lease = schedule.claim(store, task, node, lease=timedelta(minutes=1))
        print("claimed" if lease else "refused", flush=True)
        time.sleep(120)
    else:
        print("ready", flush=True)
        sys.stdin.readline()  # both nodes start together
        deadline = time.monotonic() + float(mode)
        spans = []
        def work(stop):
            begin = time.time()
            time.sleep(0.03)
            spans.append((begin, time.time()))
            return {"node": node}
        while time.monotonic() < deadline:
            schedule.run_task(store, task, node, work, lease=timedelta(seconds=30))
            time.sleep(0.005)
        with open(out, "w") as fh:
            json.dump(spans, fh)
    """
)


def _node(store_url: str, task: str, node: str, mode: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", NODE, store_url, task, node, mode, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_node_killed_mid_run_is_taken_over_after_its_lease_expires(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    schedule.ensure_task(store, "crawls", MINUTE)
    proc = _node(store_url, "crawls", "node-killed", "hold", tmp_path / "unused")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "claimed", proc.stderr.read() if proc.stderr else line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Its lease (a minute) still holds: a restarted service does not run the task twice.
    assert schedule.claim(store, "crawls", "node-restarted") is None
    (held,) = schedule.task_states(store)
    assert held.lease_holder == "node-killed" and held.runs[0].status == "running"
    later = Clock(datetime.now(UTC) + MINUTE + timedelta(seconds=1))
    taken = schedule.claim(store, "crawls", "node-restarted", now=later)
    assert taken is not None
    (state,) = schedule.task_states(store)
    assert [(r.node, r.status) for r in state.runs] == [
        ("node-restarted", "running"),
        ("node-killed", "failed"),
    ]
    assert "the lease of node-killed expired" in (state.runs[1].error or "")


def test_two_processes_never_run_one_task_at_once(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    schedule.ensure_task(store, "alerts", timedelta(0))
    procs = [
        _node(store_url, "alerts", f"node-{n}", "1.5", tmp_path / f"spans-{n}.json") for n in (1, 2)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        _out, err = proc.communicate("go\n", timeout=60)
        assert proc.returncode == 0, err
    spans = sorted(
        (begin, end, n)
        for n in (1, 2)
        for begin, end in json.loads((tmp_path / f"spans-{n}.json").read_text())
    )
    assert len(spans) >= 10
    for (_, end, _), (begin, _, _) in itertools.pairwise(spans):
        assert end <= begin, "two nodes ran the task at once"
    runs = schedule.recent_runs(store, "alerts", limit=1000)
    assert len(runs) == len(spans)
    assert {r.status for r in runs} == {"ok"}
    assert {r.summary["node"] for r in runs if r.summary} == {"node-1", "node-2"}
