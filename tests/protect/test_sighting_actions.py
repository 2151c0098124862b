"""The organisation's actions on its sightings, on SQLite and PostgreSQL: seen, false alarm
(an allow entry that silences the content's matches of the organisation's photos from then on,
never a known-abuse list's), report to the hotline (hinted `suspected: harvested`), the takedown
letter, the dashboard's figures and visits, album monitors and test alerts. Sightings are
seeded as a crawl makes them: photos registered, matched by the real matcher and recorded by
the crawl's recorder."""

from __future__ import annotations

from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.alert_servers import SmtpInbox, WebhookReceiver
from alerts.alert_servers import smtp_server as smtp_server
from alerts.alert_servers import webhook_receiver as webhook_receiver
from childguard.alerts.dispatch import AlertTransport, deliver, queue_sighting_alerts
from childguard.alerts.email import SmtpSettings
from childguard.alerts.webhook import RetryPolicy, verify_signature
from childguard.banks import EntryRecord, create_bank, import_records
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.sightings import SightingRecorder
from childguard.hotline.reports import report_urls
from childguard.matcher import Matcher
from childguard.protect import sighting_actions as actions
from childguard.protect.organisations import create_organisation, get_organisation_by_id
from childguard.protect.register import register_photos
from childguard.store import AuditEvent, Store
from childguard.store.base import utcnow
from childguard.store.hotline_models import Report
from childguard.store.protect_models import Organisation
from local_http import serving
from sample_media import jpeg_bytes


def seed_organisation(
    store: Store,
    folder: Path,
    name: str,
    seeds: list[int],
    *,
    emails: list[str] | None = None,
    webhook_url: str | None = None,
) -> int:
    """An organisation with one registered photo per seed (`photo-<seed>.jpg`, the first one
    titled "Summer camp <seed>"); returns its id."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (folder / f"photo-{seed}.jpg").write_bytes(jpeg_bytes(seed))
    with store.session() as s:
        org = create_organisation(
            s,
            name,
            emails=emails if emails is not None else [f"team@{seeds[0]}.example"],
            webhook_url=webhook_url,
        )
        report = register_photos(
            s, folder, org, titles={f"photo-{seed}.jpg": f"Summer camp {seed}" for seed in seeds}
        )
        assert not report.failed
        return org.id


def sight(
    store: Store,
    index_dir: Path,
    page: str,
    images: dict[str, bytes],
    *,
    run: int | None = None,
) -> list[Any]:
    """A crawl's view of `page` showing `images` (URL -> bytes): matched by the real matcher
    and recorded by the crawl's recorder. Returns each image's match outcome."""
    matcher = Matcher(store, index_base=index_dir, persist=False)
    recorder = SightingRecorder(store, run_id=run, watch_name="pics")
    recorder.page(page, title="Holiday snaps", image_urls=list(images), gone=False)
    outcomes = []
    for url, data in images.items():
        hashes = hash_fetched(data)
        outcome = matcher.match(hashes)
        pdq = [m for m in outcome.matches if m.signal_type == "pdq" and m.variant == "original"]
        recorder.image(url, page_url=page, gone=False, hashes=hashes, matches=pdq[:1])
        outcomes.append(outcome)
    recorder.finish()
    return outcomes


def organisation(store: Store, org_id: int) -> Organisation:
    with store.session() as s:
        return get_organisation_by_id(s, org_id)


@pytest.fixture
def two(store: Store, tmp_path: Path) -> tuple[Organisation, Organisation, dict[str, int]]:
    """Organisations A (photos 11, 12) and B (photo 21), each with sightings of its photos;
    the sighting ids by image URL."""
    a = seed_organisation(store, tmp_path / "a", "Scouts A", [11, 12])
    b = seed_organisation(store, tmp_path / "b", "Club B", [21])
    sight(
        store,
        tmp_path / "idx",
        "https://pics.example/album/a",
        {
            "https://pics.example/i/11.jpg": jpeg_bytes(11),
            "https://pics.example/i/12.jpg": jpeg_bytes(12),
        },
    )
    sight(
        store,
        tmp_path / "idx",
        "https://pics.example/album/b",
        {"https://pics.example/i/21.jpg": jpeg_bytes(21)},
    )
    org_a, org_b = organisation(store, a), organisation(store, b)
    ids = {
        f.sighting.image_url: f.sighting.id
        for org in (org_a, org_b)
        for f in actions.stated_sightings(store, org)
    }
    assert len(ids) == 3
    return org_a, org_b, ids


def test_states_follow_the_actions_then_a_report_to_the_hotline_and_the_takedown_letter(
    store: Store, two: tuple[Organisation, Organisation, dict[str, int]]
) -> None:
    a, b, ids = two
    seen_id = ids["https://pics.example/i/11.jpg"]
    listed = actions.stated_sightings(store, a)
    assert {s.state.state for s in listed} == {"new"}
    assert {s.found.photo.file_name for s in listed if s.found.photo} == {
        "photo-11.jpg",
        "photo-12.jpg",
    }
    state = actions.mark_seen(store, a, seen_id, actor="user:1")
    assert (state.state, state.actor) == ("seen", "user:1")
    assert actions.sighting_state(store, a, seen_id).state == "seen"
    assert [s.found.sighting.id for s in actions.stated_sightings(store, a, state="seen")] == [
        seen_id
    ]
    assert len(actions.stated_sightings(store, a, state="new")) == 1
    with store.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "org.sighting.seen")).all()
        assert [(e.actor, e.object_id) for e in events] == [("user:1", str(seen_id))]
    with pytest.raises(actions.InputFormatError):
        actions.stated_sightings(store, a, state="bogus")

    # Another organisation's sighting is answered as an unknown one; nothing is done to it.
    theirs = ids["https://pics.example/i/21.jpg"]
    for call in (
        lambda: actions.mark_seen(store, a, theirs, actor="x"),
        lambda: actions.mark_false_alarm(store, a, theirs, "not ours", actor="x"),
        lambda: actions.report_to_hotline(store, a, theirs, actor="x", enqueue=False),
        lambda: actions.takedown_letter(store, a, theirs),
        lambda: actions.sighting_state(store, a, theirs),
    ):
        with pytest.raises(actions.SightingNotFound):
            call()
    assert actions.sighting_state(store, b, theirs).state == "new"
    with store.session() as s:
        assert s.scalars(select(Report)).all() == []

    # The sighting seen above is reported to the hotline.
    target = ids["https://pics.example/i/11.jpg"]
    filed = actions.report_to_hotline(
        store, a, target, actor="user:1", note="seen by a parent", language="nl", enqueue=False
    )
    assert filed.state.state == "reported" and filed.state.hotline_report_id is not None
    assert filed.tracking_code
    urls = [u.url for u in report_urls(store, filed.state.hotline_report_id)]
    assert urls == ["https://pics.example/album/a", "https://pics.example/i/11.jpg"]
    with store.session() as s:
        report = s.get(Report, filed.state.hotline_report_id)
        assert report is not None
        assert report.reporter == f"organisation:{a.id}" and report.language == "nl"
        assert report.description is not None
        assert report.description.startswith("Possibly harvested")
        assert report.hints == {"content_type": "images", "suspected": "harvested"}
        assert "Summer camp 11" in report.description and "seen by a parent" in report.description

    # The takedown letter names the photo, the URLs, the match and the contact, in each language.
    words = {"en": "File name", "nl": "Bestandsnaam", "fr": "Nom du fichier", "de": "Dateiname"}
    for lang, word in words.items():
        letter = actions.takedown_letter(store, a, target, language=lang)
        assert letter.language == lang
        assert f"{word}: photo-11.jpg" in letter.body
        for text in (
            "Summer camp 11",
            "https://pics.example/album/a",
            "https://pics.example/i/11.jpg",
            "team@11.example",
            "pdq",
            "pics.example",
        ):
            assert text in letter.body, (lang, text)
        assert "pics.example" in letter.subject
        assert letter.file_name == f"takedown-request-sighting-{target}-{lang}.txt"
    assert actions.takedown_letter(store, a, target, language="xx").language == "en"


def test_visits_and_the_dashboard_count_what_is_new_then_a_false_alarm_never_alerts_again(
    store: Store, tmp_path: Path, two: tuple[Organisation, Organisation, dict[str, int]]
) -> None:
    a, _, ids = two
    from childguard.accounts import create_user

    user = create_user(
        store, "secretary", "a long password 123", actor="test", roles=("org-admin",)
    )
    start = utcnow()
    assert actions.record_visit(store, a, user.id, now=start) is None
    assert actions.record_visit(store, a, user.id, now=start + timedelta(minutes=10)) is None
    later = start + timedelta(hours=2)
    since = actions.record_visit(store, a, user.id, now=later)
    assert since == start + timedelta(minutes=10)
    summary = actions.dashboard_summary(store, a, None)
    assert (summary.photos, summary.new_sightings, summary.awaiting_action) == (2, 2, 2)
    cut = utcnow()
    sight(
        store,
        tmp_path / "idx3",
        "https://pics.example/new",
        {"https://pics.example/n.jpg": jpeg_bytes(11)},
    )
    summary = actions.dashboard_summary(store, a, cut)
    assert summary.new_sightings == 1 and summary.awaiting_action == 3

    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Gone, "/hook") as url, store.session() as s:
        org = s.get(Organisation, a.id)
        assert org is not None
        org.emails, org.webhook_url, org.webhook_secret = [], url, "s3cret"
        queue_sighting_alerts(s)
        deliver(s, AlertTransport())
    summary = actions.dashboard_summary(store, a, cut)
    assert summary.open_alerts == 3 and len(summary.failed_alerts) == 3
    assert "HTTP 410" in (summary.failed_alerts[0].last_error or "")
    assert summary.to_dict()["failed_alerts"][0]["last_error"]

    # A false alarm: allowed for good, so the same picture on a new page never alerts again.
    target = ids["https://pics.example/i/12.jpg"]
    with pytest.raises(actions.ActionRefused, match="say why"):
        actions.mark_false_alarm(store, a, target, "  ", actor="user:1")
    with store.session() as s:
        queue_sighting_alerts(s)  # the first crawl's alerts
    state = actions.mark_false_alarm(store, a, target, "a different child's photo", actor="user:1")
    assert state.state == "false-alarm" and state.reason == "a different child's photo"
    assert state.allow is not None and state.allow["bank"] == "allow:Scouts A"
    assert len(state.allow["entries"]) == 2  # sha256 and PDQ of the image
    again = actions.mark_false_alarm(store, a, target, "still not ours", actor="user:1")
    assert again.allow is not None and again.allow["entries"] == state.allow["entries"]

    # A later crawl: the same content on a new page matches nothing, so no sighting, no alert.
    outcomes = sight(
        store,
        tmp_path / "idx2",
        "https://other.example/repost",
        {
            "https://other.example/x.jpg": jpeg_bytes(12),
            "https://other.example/y.jpg": jpeg_bytes(11),
        },
    )
    assert outcomes[0].matches == [] and outcomes[0].allowed_by
    assert {m.bank_name for m in outcomes[0].allowed_by} == {"allow:Scouts A"}
    assert outcomes[1].matches, "the other photo still matches"
    with store.session() as s:
        queued = queue_sighting_alerts(s)
        assert [q.payload["image_url"] for q in queued] == ["https://other.example/y.jpg"]
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "bank.allow")).all()

    # The organisation's allow bank silences only its own photos' matches: a known-abuse list
    # holding the same picture still matches it.
    hashes = hash_fetched(jpeg_bytes(12))
    create_bank(store, "hotline-known", "known-abuse", actor="t")
    import_records(
        store, "hotline-known", [EntryRecord("sha256", hashes.value("sha256") or "")], actor="t"
    )
    outcome = Matcher(store, index_base=tmp_path / "idx4", persist=False).match(hashes)
    assert [m.bank_name for m in outcome.matches] == ["hotline-known"]
    assert {m.bank_name for m in outcome.suppressed} == {"protected:Scouts A"}


def test_album_monitors_are_the_organisations_own(store: Store) -> None:
    with store.session() as s:
        a_id = create_organisation(s, "Scouts A").id
        b_id = create_organisation(s, "Club B").id
    a, b = organisation(store, a_id), organisation(store, b_id)
    with pytest.raises(actions.ActionRefused, match="site profile"):
        actions.add_album_monitor(
            store, a, "https://club.example/album", item="", item_views="", actor="x"
        )
    with pytest.raises(actions.ActionRefused):
        actions.add_album_monitor(
            store, a, "ftp://club.example/album", item="figure", item_views=".v", actor="x"
        )
    watch = actions.add_album_monitor(
        store, a, "https://club.example/album", item="figure.photo", item_views=".views", actor="x"
    )
    assert watch.organisation == "Scouts A" and watch.max_depth == 0
    mine = actions.album_monitors(store, a)
    assert [(m.name, m.url, m.profile.item_views) for m in mine] == [
        (watch.name, "https://club.example/album", ".views")
    ]
    assert actions.album_monitors(store, b) == []
    with pytest.raises(actions.ActionRefused):
        actions.remove_album_monitor(store, b, watch.name, actor="y")
    actions.remove_album_monitor(store, a, watch.name, actor="x")
    assert actions.album_monitors(store, a) == []


def test_a_test_alert_goes_through_the_real_email_and_webhook(
    store: Store,
    tmp_path: Path,
    smtp_server: SmtpInbox,
    webhook_receiver: WebhookReceiver,
) -> None:
    with store.session() as s:
        org_id = create_organisation(
            s, "Swim C", emails=["coach@swim.example"], webhook_url=webhook_receiver.url
        ).id
    org = organisation(store, org_id)
    transport = AlertTransport(
        smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port),
        webhook_policy=RetryPolicy(attempts=1),
    )
    results = actions.send_test_alert(org, transport, actor="user:1", store=store)
    assert [(r.channel, r.ok) for r in results] == [("email", True), ("webhook", True)]
    assert smtp_server.messages and "Test alert" in smtp_server.messages[0]["Subject"]
    headers, body = webhook_receiver.requests[0]
    assert webhook_receiver.payloads()[0]["type"] == "test"
    assert verify_signature(
        org.webhook_secret or "",
        body,
        headers.get("X-Childguard-Timestamp", ""),
        headers.get("X-Childguard-Signature", ""),
    )
    webhook_receiver.status_after = 404
    failed = actions.send_test_alert(org, AlertTransport(smtp=None), actor="user:1")
    assert [(r.channel, r.ok) for r in failed] == [("email", False), ("webhook", False)]
    assert "SMTP" in failed[0].detail and "404" in failed[1].detail


def test_the_tables_migrate_down_and_up_again(store: Store) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from childguard.store.db import alembic_config

    mine = {"org_sighting_state", "org_visit"}
    assert mine <= set(inspect(store.engine).get_table_names())
    config = alembic_config()
    for target, expected in (("0013_scheduler", set()), ("head", mine)):
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            if target == "head":
                command.upgrade(config, target)
            else:
                command.downgrade(config, target)
        assert mine & set(inspect(store.engine).get_table_names()) == expected
