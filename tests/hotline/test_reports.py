"""Reports on SQLite and PostgreSQL: validation before any write, saved before anything is
fetched, the tracking code stored only hashed, the email only sealed, the audit without the
reporter's data, the public status and the URL states the processing moves through."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from childguard.hotline.crypto import derive_key, unseal
from childguard.hotline.reports import (
    EMAIL_AAD,
    MAX_URLS,
    ReportRejected,
    create_report,
    due_urls,
    mark_url,
    normalise_tracking_code,
    report_status,
    report_urls,
)
from childguard.jobs import list_jobs
from childguard.store import Store
from childguard.store.base import utcnow
from childguard.store.hotline_models import Report, ReportUrl
from childguard.store.models import AuditEvent

KEY = derive_key(os.urandom(32), "report-email")


def _rejected(store: Store, urls: list[str], **kwargs: object) -> ReportRejected:
    with pytest.raises(ReportRejected) as caught:
        create_report(store, urls, channel="web", email_key=KEY, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_bad_input_is_refused_with_what_and_where_and_nothing_is_written(store: Store) -> None:
    cases = {
        "url-scheme": ["https://ok.example/a", "ftp://files.example/x"],
        "url-credentials": ["https://user:secret@host.example/x"],
        "url-host": ["https:///no-host"],
        "url-invalid": ["https://host.example/a b"],
        "url-too-long": ["https://host.example/" + "a" * 2100],
        "no-urls": ["", "  "],
        "too-many-urls": [f"https://host.example/{i}" for i in range(MAX_URLS + 1)],
    }
    for code, urls in cases.items():
        error = _rejected(store, urls)
        assert error.code == code
    scheme = _rejected(store, cases["url-scheme"])
    assert (
        scheme.position == 2 and "URL 2" in str(scheme) and "ftp://files.example/x" in str(scheme)
    )
    assert "http:// or https://" in str(scheme)
    assert _rejected(store, ["https://a.example"], description="x" * 5001).code == (
        "description-too-long"
    )
    assert _rejected(store, ["https://a.example"], email="not an address").code == "email-invalid"
    with pytest.raises(ReportRejected) as no_key:
        create_report(store, ["https://a.example"], channel="web", email="a@b.example")
    assert no_key.value.code == "email-without-key"
    assert _rejected(store, ["https://a.example"], hints={"colour": "red"}).code == "hint-invalid"
    with store.session() as s:
        assert s.scalars(select(Report)).all() == []
        assert s.scalars(select(ReportUrl)).all() == []
    assert list_jobs(store, kind="hotline-report") == []


def test_a_report_is_saved_whole_before_any_fetch_with_its_code_hashed_and_email_sealed(
    store: Store,
) -> None:
    urls = [
        "https://site.example/page",
        "HTTPS://SITE.example/page",  # the same URL: folded
        " http://other.example/img.jpg ",
    ]
    new = create_report(
        store,
        urls,
        channel="api",
        reporter="key:7",
        description="seen on a forum",
        hints={"site_type": "forum", "content_type": "images"},
        email="reporter@mail.example",
        language="fr",
        email_key=KEY,
        enqueue=False,
    )
    assert len(new.url_ids) == 2
    with store.session() as s:
        report = s.get(Report, new.id)
        assert report is not None
        assert (
            report.tracking_hash
            == hashlib.sha256(normalise_tracking_code(new.tracking_code).encode()).hexdigest()
        )
        assert report.channel == "api" and report.reporter == "key:7" and report.language == "fr"
        assert report.hints == {"site_type": "forum", "content_type": "images"}
        sealed = report.email_encrypted
        assert sealed is not None and b"reporter@mail.example" not in sealed
        assert unseal(KEY, sealed, EMAIL_AAD) == b"reporter@mail.example"
        rows = s.scalars(select(ReportUrl).order_by(ReportUrl.position)).all()
        assert [(r.url, r.state, r.attempts) for r in rows] == [
            ("https://site.example/page", "received", 0),
            ("http://other.example/img.jpg", "received", 0),
        ]
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "report.create")).all()
        assert [(e.object_id, e.details) for e in events] == [
            (str(new.id), {"channel": "api", "urls": 2})
        ]
        assert "mail.example" not in json.dumps(events[0].details)
        # The code is nowhere in the store in clear.
        assert new.tracking_code not in json.dumps([report.tracking_hash, report.description])
    assert list_jobs(store, kind="hotline-report") == []  # enqueue=False
    # Without a job (as after a crash before it was queued), the URLs are due all the same.
    due = due_urls(store, utcnow(), 10)
    assert [d.id for d in due] == list(new.url_ids)


def test_enqueue_queues_one_processing_job_for_the_report(store: Store) -> None:
    new = create_report(store, ["https://site.example/x"], channel="web")
    jobs = list_jobs(store, kind="hotline-report")
    assert [(j.params, j.status) for j in jobs] == [({"report_id": new.id}, "queued")]
    with store.session() as s:
        assert s.get(Report, new.id) is not None and s.get(Report, new.id).email_encrypted is None  # type: ignore[union-attr]


def test_status_shows_each_url_state_and_never_what_was_found(store: Store) -> None:
    new = create_report(
        store,
        ["https://a.example/1", "https://a.example/2", "https://a.example/3"],
        channel="web",
        enqueue=False,
    )
    first, second, third = new.url_ids
    assert mark_url(
        store, first, "fetched", final_url="https://a.example/1/", content_type="text/html"
    )
    with store.session() as s:
        assert mark_url(s, first, "traced", trace={"addresses": ["192.0.2.1"]})
    later = utcnow() + timedelta(minutes=10)
    assert mark_url(
        store, second, "fetch-failed", error="connection refused", next_attempt_at=later
    )
    assert mark_url(store, third, "fetched")
    assert mark_url(store, third, "traced")
    assert mark_url(store, third, "in-review")
    assert mark_url(store, third, "assessed")
    assert not mark_url(store, 999_999, "fetched")
    with pytest.raises(ValueError):
        mark_url(store, first, "found-something")

    code = new.tracking_code
    status = report_status(store, code.lower().replace("-", " "))
    assert status is not None
    assert [(u.position, u.url, u.state) for u in status.urls] == [
        (1, "https://a.example/1", "processing"),
        (2, "https://a.example/2", "fetch-failed"),
        (3, "https://a.example/3", "assessed"),
    ]
    shown = json.dumps(status.to_dict())
    assert "192.0.2.1" not in shown and "connection refused" not in shown
    assert report_status(store, "AAAA-BBBB-CCCC-DDDD-EEEE") is None
    assert report_status(store, " - ") is None

    infos = {u.id: u for u in report_urls(store, new.id)}
    assert infos[first].final_url == "https://a.example/1/"
    assert infos[first].attempts == 1 and infos[second].attempts == 1
    assert infos[second].last_error == "connection refused"
    # The failed URL is due again only once its next attempt time has come.
    assert [u.id for u in due_urls(store, utcnow(), 10)] == []
    assert [u.id for u in due_urls(store, later + timedelta(seconds=1), 10)] == [second]
