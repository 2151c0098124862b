"""The service watches by itself: with no command typed, the real service's scheduler crawls a
due watch of a local site, records the sightings, and delivers the alert to a local webhook
and a local SMTP server (aiosmtpd); a crawl the SSRF policy refused and an alert that could
not be delivered show as failed with their reasons, over `/v1/tasks` and on the supervisors'
page `/tasks`, whose "run now" starts a round. Two schedulers ("nodes") on one store never run
a task at once. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from childguard.crawl.leases import claim_watch
from childguard.crawl.sightings import list_sightings
from childguard.crawl.watch import SiteProfile, Watch
from childguard.crawl.watchstore import save_watch
from childguard.jobs import schedule
from childguard.jobs.schedule import TaskProblem
from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.service.config import Settings
from childguard.service.org_tasks import crawl_due_here, is_album_watch
from childguard.service.scheduler import LeasePolicy, PeriodicTask, Scheduler
from childguard.store import AuditEvent, open_store
from childguard.store.protect_models import Alert
from hotline.referral_fixtures import smtp_inbox
from local_http import serving
from sample_media import jpeg_bytes

from .conftest import live_server

SITE_HOST = "reposts.test"


def _site_handler(images: dict[str, bytes]) -> type[BaseHTTPRequestHandler]:
    page = (
        "<html><body><h1>Reposts</h1>"
        + "".join(f"<img src='/{name}'>" for name in images)
        + "</body></html>"
    )

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            if self.path == "/":
                body, kind, status = page.encode(), "text/html", 200
            elif path in images:
                body, kind, status = images[path], "image/jpeg", 200
            else:
                body, kind, status = b"not found", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Site


def _hook_handler(received: list[tuple[str, dict[str, Any]]]) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, json.loads(body)))
            status = 410 if self.path == "/gone" else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Hook


def _until(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def local_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A re-post site, a webhook receiver and an SMTP server, all on 127.0.0.1."""
    images = {"camp-01.jpg": jpeg_bytes(11), "club-07.jpg": jpeg_bytes(12)}
    received: list[tuple[str, dict[str, Any]]] = []
    with (
        smtp_inbox() as inbox,
        serving(_site_handler(images)) as site,
        serving(_hook_handler(received)) as hooks,
    ):
        monkeypatch.setenv("CHILDGUARD_SMTP_HOST", inbox.host)
        monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(inbox.port))
        for name, data in images.items():
            (tmp_path / name).write_bytes(data)
        yield {"site": site, "hooks": hooks, "received": received, "inbox": inbox}


def test_a_due_watch_is_crawled_and_alerted_by_the_service_itself(
    store_url: str, tmp_path: Path, local_world: dict[str, Any]
) -> None:
    port = local_world["site"].rsplit(":", 1)[1]
    store = open_store(store_url)
    try:
        with store.session() as s:
            scouts = create_organisation(
                s,
                "Scouts",
                emails=["leader@scouts.test"],
                webhook_url=f"{local_world['hooks']}/scouts",
            )
            club = create_organisation(s, "Club", webhook_url=f"{local_world['hooks']}/gone")
            register_photos(s, [tmp_path / "camp-01.jpg"], scouts)
            register_photos(s, [tmp_path / "club-07.jpg"], club)
        reposts = Watch(
            name="reposts", seeds=(f"http://{SITE_HOST}:{port}/",), max_depth=1, download_delay=0
        )
        save_watch(store, reposts)
        save_watch(store, Watch(name="blocked", seeds=("http://10.1.2.3/",), max_depth=0))
        assert not is_album_watch(reposts)
    finally:
        store.close()
    settings: dict[str, Any] = {
        "crawl_poll_seconds": 1,
        "album_poll_seconds": 1,
        "alert_poll_seconds": 1,
        "scheduler_poll_seconds": 0.2,
        "crawl_hash_workers": 0,
        "crawl_timeout_seconds": 120,
        "crawl_static_hosts": (f"{SITE_HOST}=127.0.0.1",),
        "crawl_private_hosts": (SITE_HOST,),
    }
    with live_server(store_url, tmp_path / "index", **settings) as server:
        received = local_world["received"]
        inbox = local_world["inbox"]
        _until(lambda: any(p == "/scouts" for p, _ in received), "the webhook alert")
        _until(lambda: inbox.messages, "the email alert")
        payload = next(d for p, d in received if p == "/scouts")
        assert payload["type"] == "sighting"
        assert payload["match"]["file_name"] == "camp-01.jpg"
        assert payload["image_url"] == f"http://{SITE_HOST}:{port}/camp-01.jpg"
        assert "camp-01.jpg" in inbox.messages[0]["Subject"]
        sightings = list_sightings(server.store, organisation="Scouts")
        assert sightings and {v.image_url for v in sightings} == {payload["image_url"]}

        # The club's webhook refuses (410): its alert failed for good, with the reason.
        def club_failed() -> Alert | None:
            with server.store.session() as s:
                alert = s.scalar(select(Alert).where(Alert.organisation_id == club.id))
                if alert is not None and alert.status == "failed":
                    s.expunge(alert)
                    return alert
            return None

        alert = _until(club_failed, "the club's alert to fail")
        assert "410" in (alert.last_error or "")

        supervisor = server.client("supervisor")
        tasks = {t["task"]: t for t in supervisor.get("/v1/tasks").json()["tasks"]}
        assert {"crawls", "albums", "alerts"} <= set(tasks)
        # Looks that found nothing due left no run: the one round is the record (a look in
        # progress shows as running until it finds nothing due, and then leaves no row).
        (crawled,) = [r for r in tasks["crawls"]["runs"] if r["status"] != "running"]
        assert crawled["status"] == "failed"
        assert "crawl blocked failed" in crawled["error"]
        assert "SSRF" in crawled["error"]
        by_watch = {c["watch"]: c for c in crawled["summary"]["crawls"]}
        assert by_watch["reposts"]["new_sightings"] >= 2 and by_watch["reposts"]["problem"] is None
        assert by_watch["blocked"]["ssrf_refused"] >= 1
        alert_errors = [r["error"] for r in tasks["alerts"]["runs"] if r["status"] == "failed"]
        assert any(f"alert {alert.id}" in e and "410" in e for e in alert_errors), alert_errors
        assert supervisor.get("/v1/tasks/crawls").json()["task"] == "crawls"
        assert supervisor.get("/v1/tasks/nothing").status_code == 404
        assert server.client("analyst").get("/v1/tasks").status_code == 403

        # The supervisors' page shows it, and "run now" starts a round at once.
        with contextlib.closing(server.user_client("supervisor", csrf=False)) as browser:
            page = browser.get("/tasks")
            assert page.status_code == 200
            text = page.text
            assert "crawl blocked failed" in text and "could not be delivered" in text
            token = text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            asked_at = datetime.now(UTC)
            asked = browser.post(
                "/tasks/crawls/run", data={"csrf_token": token}, follow_redirects=False
            )
            assert asked.status_code == 303
            # A round starts at once; it finds no watch due, so it leaves only its time.
            _until(
                lambda: (
                    datetime.fromisoformat(supervisor.get("/v1/tasks/crawls").json()["looked_at"])
                    >= asked_at
                ),
                "the crawls round asked for",
                timeout=30,
            )
            refused = browser.post("/tasks/crawls/run", data={}, follow_redirects=False)
            assert refused.status_code == 403  # no CSRF token
        with server.store.session() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.action == "task.run_now"))
            assert [e.object_id for e in events] == ["crawls"]
        # Each of the scouts' alerts went out once on each channel, and none twice.
        with server.store.session() as s:
            sent = s.scalars(
                select(Alert.sighting_id).where(
                    Alert.organisation_id == scouts.id, Alert.status == "sent"
                )
            ).all()
        delivered = [d["sighting_id"] for p, d in local_world["received"] if p == "/scouts"]
        # One alert per place (page and image), however many of the photo's entries matched there.
        places = {(v.page_url, v.image_url) for v in sightings}
        by_id = {v.id: (v.page_url, v.image_url) for v in sightings}
        assert sorted(delivered) == sorted(sent) and len(sent) == len(places)
        assert {by_id[i] for i in sent} == places
        assert len(local_world["inbox"].messages) == len(sent)


def test_an_album_watch_is_told_from_a_crawl_watch() -> None:
    album = Watch(
        name="album",
        seeds=("http://album.test/",),
        organisation="Scouts",
        profiles={"album.test": SiteProfile(item="figure", item_views=".views")},
    )
    assert is_album_watch(album)
    assert not is_album_watch(Watch(name="album2", seeds=album.seeds, profiles=album.profiles))


def test_two_schedulers_on_one_store_never_run_a_task_at_once(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    lock = threading.Lock()
    running: list[str] = []
    overlaps: list[list[str]] = []
    ran: list[str] = []

    def task_for(node: str) -> PeriodicTask:
        def run(_: threading.Event) -> dict[str, str]:
            with lock:
                running.append(node)
                if len(running) > 1:
                    overlaps.append(list(running))
            time.sleep(0.03)
            with lock:
                running.remove(node)
                ran.append(node)
            return {"node": node}

        return PeriodicTask("digest", 0.01, run, singleton=True)

    nodes = [
        Scheduler([task_for(n)], lock_dir=tmp_path / n, store=store, node=n)
        for n in ("node-1", "node-2")
    ]
    for n in nodes:
        n.policy = schedule_policy()
        n.start()
    try:
        _until(lambda: len(ran) >= 10, "ten runs", timeout=30)
    finally:
        for n in nodes:
            assert n.stop()
    try:
        assert overlaps == []
        runs = schedule.recent_runs(store, "digest", limit=500)
        assert {r.status for r in runs} == {"ok"}
        assert len(runs) == len(ran)
    finally:
        store.close()


def schedule_policy() -> LeasePolicy:
    return LeasePolicy(lease=timedelta(seconds=30), poll_seconds=0.01)


def test_the_service_leaves_a_watch_a_crawl_worker_holds_and_crawls_it_once_released(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    try:
        watch = Watch(name="held", seeds=("http://127.0.0.1:9/",))
        save_watch(store, watch)
        worker = claim_watch(store, watch, "crawl-host:1", force=True)
        assert worker is not None
        settings = Settings(db_url=store_url, index_dir=tmp_path / "index")
        summary = crawl_due_here(store, settings, threading.Event())
        assert summary == {"crawls": [{"watch": "held", "skipped": "held by another crawl worker"}]}
        assert worker.done()
        with pytest.raises(TaskProblem) as refused:  # now the service's: the SSRF policy refuses
            crawl_due_here(store, settings, threading.Event())
        assert refused.value.summary["crawls"][0]["watch"] == "held"
        assert refused.value.summary["crawls"][0]["ssrf_refused"] >= 1
    finally:
        store.close()
