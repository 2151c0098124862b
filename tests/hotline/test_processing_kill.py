"""A worker killed with SIGKILL mid-fetch: the job is claimed again once its heartbeat lapses,
and the re-run finishes the report with no duplicate items or places."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from childguard.hotline import processing
from childguard.hotline.reports import create_report, report_urls
from childguard.jobs import JobRunner, get_job
from childguard.store.db import Store
from childguard.store.hotline_models import Item, ItemPlace
from hotline.hotline_site import jpeg_bytes, serving, settings_for

WORKER = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from hotline.hotline_site import settings_for
    from childguard.hotline import processing
    from childguard.jobs import JobRunner
    from childguard.store.db import open_store
    store = open_store(sys.argv[1])
    processing.configure(settings_for(Path(sys.argv[2])))
    JobRunner(store, Path(sys.argv[2]) / "jobs", worker="doomed", heartbeat_seconds=0.2,
              kind_names=["hotline-report"]).run_one()
    """
)


def test_a_worker_killed_mid_fetch_loses_nothing_and_duplicates_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence"
    tests_dir = str(Path(__file__).resolve().parents[1])
    with serving() as site:
        site.image("/first.jpg", jpeg_bytes(51))
        site.image("/slow.jpg", jpeg_bytes(52), delay=60)
        site.page("/page.html", "/first.jpg", "/slow.jpg")
        report = create_report(store, [site.url("/page.html")], channel="web")
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, store_url, str(evidence), tests_dir],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            deadline = time.monotonic() + 30
            while "/slow.jpg" not in site.hits:
                assert time.monotonic() < deadline and worker.poll() is None, "never fetched"
                time.sleep(0.05)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Item)) == 0  # page not done yet
        site.image("/slow.jpg", jpeg_bytes(52))  # the site answers now
        processing.configure(settings_for(evidence))
        runner = JobRunner(
            store,
            tmp_path / "jobs",
            kind_names=["hotline-report"],
            stale_after=timedelta(seconds=1),
            heartbeat_seconds=0.2,
        )
        time.sleep(1.5)
        job = runner.run_one()
        assert job is not None and job.status == "done" and job.attempts == 2
        # Processing the same report again (a second re-run) changes nothing.
        processing.process_report(store, report.id, settings_for(evidence), now=None)
    assert get_job(store, job.id).status == "done"
    (url,) = report_urls(store, report.id)
    assert url.state == "in-review"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2
        assert s.scalar(select(func.count()).select_from(ItemPlace)) == 2
        assert sorted(s.scalars(select(Item.times_seen))) == [1, 1]
