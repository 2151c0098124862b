"""The service runs the hotline's processing: a report filed with `POST /v1/reports` is
fetched from a site on 127.0.0.1 by the service's own job runner, becomes an item, and its
evidence is sealed under `<data dir>/evidence` with the key derived from the service's secret."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import open_evidence
from childguard.hotline.reports import report_urls
from childguard.service.config import Settings
from childguard.service.secret_key import service_secret_key
from childguard.store.hotline_models import Item, Report
from hotline.hotline_site import jpeg_bytes, serving
from service.conftest import live_server


def test_a_report_filed_over_http_is_processed_by_the_service(tmp_path: Path) -> None:
    photo = jpeg_bytes(71)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        serving() as site,
        live_server(db, tmp_path / "index", allow_private_fetch=True, job_poll_seconds=0.2) as srv,
    ):
        site.image("/r.jpg", photo)
        site.page("/r.html", "/r.jpg")
        with srv.client("reporter") as api:
            made = api.post("/v1/reports", json={"urls": [site.url("/r.html")]})
            assert made.status_code == 201, made.text
        with srv.store.session() as s:
            report_id = s.scalars(select(Report.id)).one()
        deadline = time.monotonic() + 20
        while report_urls(srv.store, report_id)[0].state != "in-review":
            assert time.monotonic() < deadline, report_urls(srv.store, report_id)
            time.sleep(0.1)
        with srv.store.session() as s:
            item = s.scalars(select(Item)).one()
            path = Path(item.evidence_path or "")
        assert path.parent == (tmp_path / "evidence").resolve()
        secret = service_secret_key(Settings(db_url=db, data_dir=tmp_path))
        key = derive_key(secret, "hotline-evidence")
        assert open_evidence(srv.store, key, item.id) == photo
        (url,) = report_urls(srv.store, report_id)
        assert url.final_url == site.url("/r.html") and url.content_type == "text/html"


def test_analysts_see_the_urls_that_could_not_be_fetched(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        serving() as site,
        live_server(db, tmp_path / "index", allow_private_fetch=True, job_poll_seconds=0.2) as srv,
    ):
        missing = site.url("/gone.jpg")
        with srv.client("reporter") as api:
            assert api.post("/v1/reports", json={"urls": [missing]}).status_code == 201
        with srv.client("analyst") as analyst:
            deadline = time.monotonic() + 20
            while not (failed := analyst.get("/v1/hotline/fetch-failures").json()["items"]):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            (row,) = failed
            assert row["url"] == missing and row["attempts"] >= 1
            assert "404" in row["last_error"] and row["next_attempt_at"]
            page = analyst.get("/v1/hotline/fetch-failures", params={"limit": 1}).json()
            assert page["next_cursor"] is None
            assert (
                analyst.get("/v1/hotline/fetch-failures", params={"cursor": "x"}).status_code == 400
            )
        with srv.client("match") as other:
            assert other.get("/v1/hotline/fetch-failures").status_code == 403
