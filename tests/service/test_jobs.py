"""Bulk import as a background job, over HTTP against the real server on SQLite and
PostgreSQL: 202 and a job to poll, the entries match afterwards, malformed lists, idempotent
re-runs and retries, a job whose runner died, cancelling, listing; the scheduler's lifecycle."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from childguard import jobs
from childguard.banks import EntryRecord, import_records
from childguard.jobs import JobRunner
from childguard.service import Settings
from childguard.service.scheduler import PeriodicTask, Scheduler, jobs_dir
from childguard.service.state import ServiceState

from .conftest import LiveServer, live_server

RNG = random.Random(14)
PROBLEM = "application/problem+json"


def md5s(n: int) -> list[str]:
    return [f"{RNG.getrandbits(128):032x}" for _ in range(n)]


def pdqs(n: int) -> list[str]:
    return [f"{RNG.getrandbits(256):064x}" for _ in range(n)]


@pytest.fixture
def quick(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service with a scheduler that looks for jobs every 50 ms."""
    with live_server(store_url, tmp_path / "index", job_poll_seconds=0.05) as running:
        yield running


@pytest.fixture
def idle(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service with no scheduler: jobs stay queued until a test runs them."""
    with live_server(store_url, tmp_path / "index", scheduler_enabled=False) as running:
        yield running


def make_bank(client: httpx.Client, name: str) -> None:
    answer = client.post("/v1/banks", json={"name": name, "kind": "known-abuse"})
    assert answer.status_code == 201, answer.text


def queue_import(
    client: httpx.Client, bank: str, text: str, *, multipart: bool = True, **params: Any
) -> dict[str, Any]:
    url = f"/v1/banks/{bank}/imports"
    if multipart:
        answer = client.post(url, params=params, files={"file": ("list.txt", text.encode())})
    else:
        answer = client.post(url, params=params, content=text.encode())
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()["job"]
    assert answer.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["kind"] == "bank-import"
    return job


def wait_for(client: httpx.Client, job_id: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()["job"]
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def matched_banks(client: httpx.Client, signal_type: str, values: list[str]) -> list[list[str]]:
    hashes = [{"signal_type": signal_type, "value": v} for v in values]
    results = client.post("/v1/match", json={"hashes": hashes}).json()["results"]
    return [sorted({m["bank_name"] for m in r["matches"]}) for r in results]


def test_an_import_is_202_then_done_and_its_entries_match(
    quick: LiveServer, tmp_path: Path
) -> None:
    values = md5s(3000)
    with quick.client("curate") as curate, quick.client("match") as match:
        make_bank(curate, "bulk")
        text = "# a plain list\n" + "\n".join(values) + "\n" + values[0] + "\n"
        job = queue_import(curate, "bulk", text, source="hotline-list-7")
        done = wait_for(curate, job["id"])
        assert done["status"] == "done", done
        assert done["result"] == {
            "bank": "bulk",
            "format": "plain",
            "read": 3001,
            "added": 3000,
            "already_present": 1,
            "invalid": 0,
            "invalid_first": [],
        }
        assert done["progress"]["done"] == done["progress"]["total"] == len(text.encode())
        assert curate.get("/v1/banks/bulk").json()["entries"] == 3000
        deadline = time.monotonic() + 5  # the matcher follows the store
        while matched_banks(match, "md5", values[-3:]) != [["bulk"]] * 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        one = match.get("/v1/match", params={"signal_type": "md5", "value": values[5]}).json()
        assert one["matches"][0]["source"] == "hotline-list-7"
        # the same list again (raw body this time) adds nothing
        again = wait_for(curate, queue_import(curate, "bulk", text, multipart=False)["id"])
        assert (again["result"]["added"], again["result"]["already_present"]) == (0, 3001)
        assert curate.get("/v1/banks/bulk").json()["entries"] == 3000
    assert not any(jobs_dir(Settings(data_dir=tmp_path)).glob("*/upload"))  # uploads removed


def test_pdq_lists_need_their_type_and_invalid_lines_are_reported(quick: LiveServer) -> None:
    values = pdqs(200)
    with quick.client("curate") as curate, quick.client("match") as match:
        make_bank(curate, "pdqs")
        text = "\n".join([*values[:100], "not-a-hash", values[100][:-1] + "z", *values[100:]])
        ambiguous = wait_for(curate, queue_import(curate, "pdqs", text)["id"])
        assert ambiguous["status"] == "failed"
        assert "64 hex digits could be a PDQ or a SHA-256 hash" in ambiguous["error"]
        assert ambiguous["error"].startswith("plain list: line 1:")
        typed = wait_for(curate, queue_import(curate, "pdqs", text, signal_type="pdq")["id"])
        assert typed["status"] == "done", typed
        result = typed["result"]
        assert (result["added"], result["invalid"]) == (200, 2)
        assert [i["line"] for i in result["invalid_first"]] == [101, 102]
        assert all(i["reason"] for i in result["invalid_first"])
        deadline = time.monotonic() + 5
        while matched_banks(match, "pdq", values[150:151]) != [["pdqs"]]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_import_requests_are_checked_before_anything_is_queued(idle: LiveServer) -> None:
    with idle.client("curate") as curate:
        make_bank(curate, "checked")
        files = {"file": ("l.txt", b"0" * 32)}
        missing = curate.post("/v1/banks/nope/imports", files=files)
        assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
        assert missing.json()["type"].endswith("bank-not-found")
        bad_format = curate.post("/v1/banks/checked/imports", params={"format": "xml"}, files=files)
        assert bad_format.status_code == 422 and "unknown format 'xml'" in bad_format.text
        bad_type = curate.post(
            "/v1/banks/checked/imports", params={"signal_type": "crc"}, files=files
        )
        assert bad_type.status_code == 422
        empty = curate.post("/v1/banks/checked/imports", content=b"")
        assert empty.status_code == 422 and empty.json()["type"].endswith("empty-upload")
        assert curate.get("/v1/jobs").json() == {"jobs": [], "next_cursor": None}


def test_an_idempotency_key_answers_the_first_job(idle: LiveServer) -> None:
    text = "\n".join(md5s(50))
    with idle.client("curate") as curate:
        make_bank(curate, "idem")
        headers = {"Idempotency-Key": "import-1"}
        files = {"file": ("a.txt", text.encode())}
        first = curate.post("/v1/banks/idem/imports", files=files, headers=headers)
        second = curate.post("/v1/banks/idem/imports", files=files, headers=headers)
        assert first.status_code == second.status_code == 202
        assert second.headers["idempotent-replayed"] == "true"
        assert second.json()["job"]["id"] == first.json()["job"]["id"]
        assert second.headers["location"] == first.headers["location"]
        other = curate.post(
            "/v1/banks/idem/imports", files={"file": ("a.txt", b"0" * 32)}, headers=headers
        )
        assert other.status_code == 409
        assert len(curate.get("/v1/jobs").json()["jobs"]) == 1


def test_a_job_whose_runner_died_is_resumed_without_duplicates(
    idle: LiveServer, tmp_path: Path
) -> None:
    values = md5s(2500)
    with idle.client("curate") as curate:
        make_bank(curate, "resume")
        job = queue_import(curate, "resume", "\n".join(values) + "\n")
        # a worker takes it, gets half-way and dies without a word
        dead = jobs.claim(idle.store, "dead-worker", ["bank-import"])
        assert dead is not None and dead.id == job["id"]
        half = [EntryRecord("md5", v) for v in values[:1200]]
        import_records(idle.store, "resume", half, actor="dead-worker")
        assert curate.get(f"/v1/jobs/{job['id']}").json()["job"]["status"] == "running"
        runner = JobRunner(
            idle.store, jobs_dir(Settings(data_dir=tmp_path)), stale_after=timedelta(0)
        )
        time.sleep(0.01)
        ran = runner.run_one()
        assert ran is not None and ran.id == job["id"]
        done = curate.get(f"/v1/jobs/{job['id']}").json()["job"]
        assert (done["status"], done["attempts"]) == ("done", 2), done
        assert (done["result"]["added"], done["result"]["already_present"]) == (1300, 1200)
        assert curate.get("/v1/banks/resume").json()["entries"] == 2500


def test_jobs_are_listed_a_page_at_a_time_and_queued_ones_cancel(
    idle: LiveServer, tmp_path: Path
) -> None:
    with idle.client("curate") as curate:
        make_bank(curate, "many")
        ids = [queue_import(curate, "many", md5s(1)[0])["id"] for _ in range(5)]
        first = curate.get("/v1/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
        rest = curate.get("/v1/jobs", params={"limit": 10, "cursor": first["next_cursor"]}).json()
        assert [j["id"] for j in rest["jobs"]] == ids[::-1][2:]
        assert rest["next_cursor"] is None
        assert curate.get("/v1/jobs", params={"cursor": "garbage"}).status_code == 400
        upload = jobs_dir(Settings(data_dir=tmp_path)) / str(ids[0]) / "upload"
        assert upload.is_file()
        cancelled = curate.delete(f"/v1/jobs/{ids[0]}")
        assert cancelled.status_code == 200 and cancelled.json()["job"]["status"] == "cancelled"
        assert not upload.exists()
        assert curate.delete(f"/v1/jobs/{ids[0]}").status_code == 409
        assert curate.get("/v1/jobs/999999").status_code == 404
        assert curate.get("/v1/jobs/x").json()["type"].endswith("job-not-found")
        queued = curate.get("/v1/jobs", params={"status": "queued"}).json()["jobs"]
        assert sorted(j["id"] for j in queued) == ids[1:]


def test_the_scheduler_stops_with_the_app_and_survives_failing_tasks(tmp_path: Path) -> None:
    calls: list[str] = []

    def broken(_: threading.Event) -> None:
        calls.append("broken")
        raise RuntimeError("no")

    scheduler = Scheduler(
        [
            PeriodicTask("broken", 0.02, broken),
            PeriodicTask("ok", 0.02, lambda _: calls.append("ok")),
            PeriodicTask("slow", 0.02, lambda stop: stop.wait(60)),
        ],
        lock_dir=tmp_path,
    )
    scheduler.start()
    time.sleep(0.3)
    assert scheduler.tasks["broken"].failures >= 3  # logged, and run again
    assert calls.count("ok") >= 3
    started = time.monotonic()
    assert scheduler.stop() is True
    assert time.monotonic() - started < 2
    assert not scheduler.running

    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 's.db'}", index_dir=tmp_path / "index", data_dir=tmp_path
    )
    state = ServiceState(settings)
    state.start()
    assert state.scheduler is not None and state.scheduler.running
    assert set(state.scheduler.tasks) >= {"jobs", "webhooks", "alerts"}
    key = (tmp_path / "secret.key").stat()
    assert key.st_mode & 0o777 == 0o600 and key.st_size == 32
    started = time.monotonic()
    state.close()
    assert not state.scheduler.running
    assert time.monotonic() - started < 8
