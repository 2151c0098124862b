"""The organisation's pages in real headless Chromium against the real service: one
organisation never sees another's photos, sightings, alerts or albums (pages and API, with the
other's ids tried directly); a sighting is acted on end to end (seen, false alarm that keeps a
later match from alerting, a hotline report an analyst then reviews, the takedown letter);
contacts are edited and tested against a local webhook and SMTP server; the pages speak four
languages. The run takes the screenshots of docs/organisations.md (`org-*.png`): into a
temporary folder, or into docs/img with `make screenshots` (`CHILDGUARD_SCREENSHOTS`).

Photos are registered and their copies matched by the real matcher and recorded by the crawl's
recorder; the page counters and album readings of earlier days are written as the crawler
writes them (a crawl run and its page-counter rows), so the charts have a history."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from alerts.alert_servers import SmtpInbox, WebhookReceiver
from alerts.alert_servers import smtp_server as smtp_server
from alerts.alert_servers import webhook_receiver as webhook_receiver
from childguard.accounts import create_user
from childguard.alerts.dispatch import AlertTransport, deliver, queue_sighting_alerts
from childguard.crawl.hashing import hash_fetched
from childguard.matcher import Matcher
from childguard.protect import sighting_actions as actions
from childguard.protect.albums import check_album_run
from childguard.protect.organisations import get_organisation_by_id
from childguard.store.base import utcnow
from childguard.store.crawl_models import CrawlRun, PageCounter
from childguard.store.hotline_models import Report
from childguard.store.protect_models import Alert, Organisation
from hotline.hotline_site import serving
from local_http import serving as serving_handler
from protect.test_sighting_actions import seed_organisation, sight
from sample_media import jpeg_bytes
from screenshots import screenshots as screenshots
from screenshots import shoot as screenshots_shoot
from service.conftest import LiveServer, live_server

PHOTOS_DIR = Path(__file__).resolve().parents[2] / ".cache" / "photos"
ALBUM = "https://album.scouts-oak.test/summer-camp/"


@dataclass
class World:
    live: LiveServer
    site: Any
    a: int
    b: int
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)  # who -> (user, pw)
    places: dict[str, int] = field(default_factory=dict)  # image URL -> sighting id
    album_b: str = ""

    def org(self, org_id: int) -> Organisation:
        with self.live.store.session() as s:
            return get_organisation_by_id(s, org_id)


def _user(live: LiveServer, *roles: str, organisation_id: int | None = None) -> tuple[str, str]:
    username = f"user-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    create_user(
        live.store, username, password, actor="test", roles=roles, organisation_id=organisation_id
    )
    return username, password


def _run(
    live: LiveServer, watch: str, at: Any, counters: list[tuple[str, str, int | None, int | None]]
) -> int:
    """A crawl run of `watch` at `at` as the crawler stores it, with page-counter rows
    (page URL, image URL or "" for the page, views, comments)."""
    with live.store.session() as s:
        run = CrawlRun(watch_name=watch, started_at=at, finished_at=at, status="finished")
        s.add(run)
        s.flush()
        for page_url, image_url, views, comments in counters:
            s.add(
                PageCounter(
                    run_id=run.id,
                    page_url=page_url,
                    image_url=image_url,
                    observed_at=at,
                    views=views,
                    comments=comments,
                )
            )
        return run.id


class _Refuses(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(410)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("org-pages")
    with (
        serving() as site,
        serving_handler(_Refuses, "/gone") as gone_hook,
        live_server(
            f"sqlite:///{base / 'store.db'}",
            base / "index",
            allow_private_fetch=True,
            job_poll_seconds=0.2,
        ) as live,
    ):
        store = live.store
        a = seed_organisation(store, base / "a", "Scouts Oak", [41, 42, 43])
        b = seed_organisation(store, base / "b", "Club Elm", [51])
        images = {n: site.url(f"/i/{n}.jpg") for n in (41, 42, 43, 51)}
        for n in images:
            site.image(f"/i/{n}.jpg", jpeg_bytes(n))
        repost = site.url("/kids/holiday.html")
        other = site.url("/elm/board.html")
        site.page("/kids/holiday.html", "/i/41.jpg", "/i/42.jpg")
        site.page("/elm/board.html", "/i/51.jpg")
        now = utcnow()
        history = [(5, 120, 2), (4, 450, 9), (3, 1_900, 25), (2, 6_400, 61), (1, 9_800, 88)]
        for days, views, comments in history:
            _run(live, "reposts", now - timedelta(days=days), [(repost, "", views, comments)])
        run = _run(live, "reposts", now, [(repost, "", 12_400, 104)])
        sight(
            store,
            base / "idx",
            repost,
            {images[41]: jpeg_bytes(41), images[42]: jpeg_bytes(42)},
            run=run,
        )
        sight(store, base / "idx", other, {images[51]: jpeg_bytes(51)}, run=run)
        with store.session() as s:
            org_a = s.get(Organisation, a)
            assert org_a is not None
            org_a.webhook_url, org_a.webhook_secret = gone_hook, "old-secret"
            queue_sighting_alerts(s)
            deliver(s, AlertTransport(), organisations=[org_a])  # 410: failed for good
        world = World(live, site, a, b)
        for f in actions.organisation_places(store, world.org(a)):
            world.places[f.sighting.image_url] = f.sighting.id
        for f in actions.organisation_places(store, world.org(b)):
            world.places[f.sighting.image_url] = f.sighting.id
        assert set(world.places) == {images[41], images[42], images[51]}

        # Album monitors: A's camp album with a spike on day 3, B's own album.
        actions.add_album_monitor(
            store, world.org(a), ALBUM, item="figure.photo", item_views=".views", actor="test"
        )
        watch_b = actions.add_album_monitor(
            store,
            world.org(b),
            "https://elm.test/album/",
            item="li",
            item_views=".count",
            actor="test",
        )
        world.album_b = watch_b.name
        readings = [
            {"camp-01.jpg": 310, "camp-02.jpg": 290, "camp-03.jpg": 305},
            {"camp-01.jpg": 334, "camp-02.jpg": 311, "camp-03.jpg": 322},
            {"camp-01.jpg": 352, "camp-02.jpg": 336, "camp-03.jpg": 341},
            {"camp-01.jpg": 371, "camp-02.jpg": 180_336, "camp-03.jpg": 360},
        ]
        for n, views in enumerate(readings):
            at = now - timedelta(days=len(readings) - n)
            rows = [(ALBUM, ALBUM + name, v, None) for name, v in views.items()]
            run_id = _run(live, "album", at, [(ALBUM, "", None, None), *rows])
            with store.session() as s:
                org_a = s.get(Organisation, a)
                assert org_a is not None
                check_album_run(s, org_a, run_id)
        world.passwords = {
            "a": _user(live, "org-admin", organisation_id=a),
            "b": _user(live, "org-admin", organisation_id=b),
            "analyst": _user(live, "analyst"),
        }
        yield world


def sign_in(browser: Any, world: World, who: str, **context: Any) -> Any:
    username, password = world.passwords[who]
    ctx = browser.new_context(
        base_url=world.live.url,
        accept_downloads=True,
        viewport={"width": 1280, "height": 900},
        **context,
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors  # CSP refusals and script errors show here
    page.goto("/login?next=/org")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.url.endswith("/org"), page.url
    return page


def shoot(page: Any, folder: Path, name: str) -> None:
    """The screenshot docs/organisations.md shows as `org-<name>.png`."""
    taken = screenshots_shoot(page, folder, f"org-{name}")
    assert taken.stat().st_size > 1000, taken


@pytest.fixture(scope="module")
def signed_in_a(browser: Any, world: World) -> Iterator[Any]:
    """A page of organisation A's user, signed in once for the module's tests."""
    page = sign_in(browser, world, "a")
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture
def a_page(signed_in_a: Any) -> Any:
    """Organisation A's signed-in page, on the dashboard, its console errors cleared."""
    signed_in_a.console_errors.clear()
    signed_in_a.goto("/org")
    return signed_in_a


def test_an_organisation_never_sees_anothers_photos_sightings_alerts_or_albums(
    a_page: Any, world: World
) -> None:
    theirs = world.places[world.site.url("/i/51.jpg")]
    page = a_page
    text = page.inner_text("main")
    assert "Scouts Oak" in text and "Club Elm" not in text and "photo-51" not in text
    page.goto("/org/sightings")
    listed = page.inner_text("#sightings")
    assert "photo-41.jpg" in listed and "Summer camp 41" in listed
    assert "photo-51" not in listed and "/elm/" not in listed
    page.goto("/org/alerts")
    assert "/elm/" not in page.inner_text("main")
    page.goto("/org/albums")
    assert ALBUM in page.inner_text("main") and "elm.test" not in page.inner_text("main")

    page.goto(f"/org/sightings/{theirs}")
    assert page.locator("#org-message").is_visible()
    assert "photo-51" not in page.content()
    api = page.request
    assert api.get(f"/org/sightings/{theirs}").status == 404
    assert api.get(f"/org/sightings/{theirs}/letter").status == 404
    assert api.get(f"/v1/organisation/sightings/{theirs}").status == 404
    assert api.get(f"/v1/organisation/sightings/{theirs}/state").status == 404
    assert api.get(f"/v1/organisation/sightings/{theirs}/takedown-letter").status == 404
    csrf = page.input_value("input[name=csrf_token]")
    for action in ("seen", "false-alarm", "report"):
        answer = api.post(
            f"/org/sightings/{theirs}/{action}", form={"csrf_token": csrf, "reason": "x"}
        )
        assert answer.status == 404, action
    headers = {"X-CSRF-Token": csrf}
    assert api.post(f"/v1/organisation/sightings/{theirs}/seen", headers=headers).status == 404
    assert (
        api.post(
            f"/v1/organisation/sightings/{theirs}/false-alarm",
            data=json.dumps({"reason": "x"}),
            headers={**headers, "Content-Type": "application/json"},
        ).status
        == 404
    )
    removed = api.post(f"/org/albums/{world.album_b}/remove", form={"csrf_token": csrf})
    assert removed.status == 404
    assert api.delete(f"/v1/organisation/albums/{world.album_b}", headers=headers).status == 404
    mine = api.get("/v1/organisation/albums").json()["albums"]
    assert [m["url"] for m in mine] == [ALBUM]
    photos = api.get("/v1/organisation/photos").json()["photos"]
    assert {p["file_name"] for p in photos} == {"photo-41.jpg", "photo-42.jpg", "photo-43.jpg"}
    assert api.get("/v1/organisation/photos?warning=any").json()["photos"] == []
    refused = api.get("/v1/organisation/photos?warning=bent")
    assert refused.status == 422 and "warning must be one of" in refused.text()
    alerts = api.get("/v1/organisation/alerts").json()["alerts"]
    assert alerts and all("/elm/" not in json.dumps(a) for a in alerts)
    assert actions.sighting_state(world.live.store, world.org(world.b), theirs).state == "new"
    assert [m.name for m in actions.album_monitors(world.live.store, world.org(world.b))] == [
        world.album_b
    ]


def test_acting_on_a_sighting_end_to_end(
    a_page: Any, world: World, tmp_path: Path, screenshots: Path
) -> None:
    store = world.live.store
    first = world.places[world.site.url("/i/41.jpg")]
    second = world.places[world.site.url("/i/42.jpg")]
    page = a_page
    assert page.inner_text("#card-photos").startswith("3")
    assert page.inner_text("#card-new").startswith("2")
    assert page.inner_text("#card-alerts").startswith("3")  # two failed, the spike waits
    assert "HTTP 410" in page.inner_text("#failed-alerts")
    shoot(page, screenshots, "dashboard")

    page.click("a[href='/org/sightings']")
    page.wait_for_url("**/org/sightings")
    shoot(page, screenshots, "sightings")
    page.click(f"#sighting-{first} a")
    page.wait_for_url(f"**/org/sightings/{first}")
    svg = page.locator("svg.chart").first
    assert svg.is_visible() and page.locator("svg.chart").count() == 2
    assert "12400" in page.inner_text("main").replace(",", "")
    assert page.inner_text(".photo-file") == "photo-41.jpg"

    page.click("#form-seen button")
    page.wait_for_selector("#action-done")
    assert page.url.endswith(f"/org/sightings/{first}")  # htmx: answered in place
    assert page.inner_text("#sighting-state") == "seen"
    shoot(page, screenshots, "sighting")

    with page.expect_download() as got:
        page.click("#letter-en")
    letter = got.value
    assert letter.suggested_filename == f"takedown-request-sighting-{first}-en.txt"
    saved = tmp_path / "letter.txt"
    letter.save_as(saved)
    body = saved.read_text()
    for text in ("photo-41.jpg", "Summer camp 41", world.site.url("/kids/holiday.html")):
        assert text in body
    german = page.request.get(f"/org/sightings/{first}/letter?language=de").text()
    assert "Dateiname: photo-41.jpg" in german

    page.fill("#note", "a parent told us")
    page.click("#form-report button")
    page.wait_for_selector("#hotline-report")
    assert page.inner_text("#sighting-state") == "reported to the hotline"
    report_id = actions.sighting_state(store, world.org(world.a), first).hotline_report_id
    with store.session() as s:
        report = s.get(Report, report_id)
        assert report is not None and (report.description or "").startswith("Possibly harvested")
        assert (report.hints or {}).get("suspected") == "harvested"

    page.goto(f"/org/sightings/{second}")
    page.click("#form-false-alarm button")  # no reason: the browser asks for one
    assert page.inner_text("#sighting-state") == "new"
    page.fill("#reason", "   ")  # only spaces: the service refuses, shown in place
    page.click("#form-false-alarm button")
    page.wait_for_selector("#action-error")
    assert "say why" in page.inner_text("#action-error")
    assert page.inner_text("#sighting-state") == "new"
    page.fill("#reason", "another club's photo of the same lake")
    page.click("#form-false-alarm button")
    page.wait_for_selector("#action-done")
    assert page.inner_text("#sighting-state") == "false alarm"
    assert page.console_errors == []

    # The analyst sees the reported URLs once the hotline processed the report.
    username, password = world.passwords["analyst"]
    with httpx.Client(base_url=world.live.url, timeout=30) as analyst:
        signed = analyst.post("/v1/session", json={"username": username, "password": password})
        analyst.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        deadline = time.monotonic() + 40
        item = None
        while item is None:
            answer = analyst.post("/v1/hotline/queue/next", json={})
            assert answer.status_code == 200, answer.text
            item = answer.json()["item"]
            if item is None:
                assert time.monotonic() < deadline, "the reported page became no item"
                time.sleep(0.3)
        assert world.site.url("/i/41.jpg") in json.dumps(item)
        # The analyst sees the report's class on the item: possibly harvested.
        assert item["suspected"] == ["harvested"]
        hinted = [p for p in item["places"] if p["report_id"] == report_id]
        assert hinted and all(p["hints"]["suspected"] == "harvested" for p in hinted)
        shown = analyst.get(f"/hotline/items/{item['id']}", headers={"Accept": "text/html"})
        assert shown.status_code == 200, shown.text
        assert 'data-suspected="harvested"' in shown.text
        assert "Possibly harvested" in shown.text

    # A later crawl finds the false alarm's picture again: it is allowed, nothing alerts.
    matcher = Matcher(store, index_base=tmp_path / "idx", persist=False)
    outcome = matcher.match(hash_fetched(jpeg_bytes(42)))
    assert outcome.matches == [] and outcome.allowed_by
    sight(
        store,
        tmp_path / "idx2",
        "https://elsewhere.example/p",
        {"https://elsewhere.example/42.jpg": jpeg_bytes(42)},
    )
    with store.session() as s:
        assert queue_sighting_alerts(s) == []
        alerts = s.scalars(select(Alert)).all()
        assert not [a for a in alerts if "elsewhere.example" in json.dumps(a.payload)]


def test_the_album_page_charts_the_views_and_shows_the_spike(
    a_page: Any, world: World, screenshots: Path
) -> None:
    page = a_page
    page.goto("/org/albums")
    spikes = page.locator(".spike")
    assert spikes.count() == 1
    assert "camp-02.jpg" in spikes.first.inner_text()
    assert spikes.first.locator("svg.chart circle").count() >= 3
    assert page.locator(".album svg.chart").count() == 4  # the spike and three photos
    shoot(page, screenshots, "albums")


def test_contacts_are_edited_and_a_test_alert_arrives(
    a_page: Any,
    world: World,
    smtp_server: SmtpInbox,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    screenshots: Path,
) -> None:
    monkeypatch.setenv("CHILDGUARD_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(smtp_server.port))
    page = a_page
    page.goto("/org/contacts")
    page.fill("#emails-field", "leader@scouts-oak.test\nnot-an-address")
    page.click("#save-contacts")
    assert "not-an-address" in page.inner_text("#contacts-error")
    page.fill("#emails-field", "leader@scouts-oak.test\nsecretary@scouts-oak.test")
    page.fill("#webhook-field", webhook_receiver.url)
    page.click("#save-contacts")
    page.wait_for_selector("#contacts-done")
    assert page.locator("#emails .email").all_inner_texts() == [
        "leader@scouts-oak.test",
        "secretary@scouts-oak.test",
    ]
    page.click("#send-test")
    page.wait_for_selector("#test-results table")
    assert "/org/contacts/test" not in page.url  # htmx: answered in place
    results = page.inner_text("#test-results")
    assert results.count("delivered") == 2 and "not delivered" not in results
    shoot(page, screenshots, "contacts")
    assert any("Test alert" in m["Subject"] for m in smtp_server.messages)
    assert any(p.get("type") == "test" for p in webhook_receiver.payloads())

    page.click("button[aria-label='Remove secretary@scouts-oak.test']")
    page.wait_for_selector("#contacts-done")
    assert page.locator("#emails .email").all_inner_texts() == ["leader@scouts-oak.test"]
    page.click("#remove-webhook")
    page.wait_for_selector("#no-webhook")
    page.click("#send-test")
    page.wait_for_selector("#test-results table")
    assert page.inner_text("#test-results").count("delivered") == 1
    assert page.console_errors == []
    assert world.org(world.a).emails == ["leader@scouts-oak.test"]


def test_an_unsigned_browser_is_sent_to_sign_in_and_back(world: World) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    with httpx.Client(base_url=world.live.url, timeout=30) as client:
        for target, expected in (
            ("/org", "/login?next=/org"),
            ("/org/sightings?status=online", "/login?next=/org/sightings%3Fstatus%3Donline"),
            ("/org/albums", "/login?next=/org/albums"),
        ):
            answer = client.get(target, headers=html)
            assert answer.status_code == 303, (target, answer.text)
            assert answer.headers["location"] == expected
        # Not for the static files, the API or a client that does not ask for a page.
        for target in ("/org/static/vendor/htmx.min.js", "/v1/organisation", "/org/sightings"):
            headers = html if target != "/org/sightings" else {"Accept": "application/json"}
            answer = client.get(target, headers=headers)
            assert answer.status_code == 401, target
            assert answer.headers["content-type"].startswith("application/"), target
            assert "location" not in answer.headers
        # A refused form post shows a page with the way to sign in, not a redirect.
        posted = client.post("/org/sightings/1/seen", headers=html, data={"csrf_token": "x"})
        assert posted.status_code == 401 and "text/html" in posted.headers["content-type"]
        assert 'href="/login?next=/org/sightings/1/seen"' in posted.text
        # Signing in on the page it was sent to lands back where the browser was going.
        sent = client.get("/org/sightings?status=online", headers=html).headers["location"]
        form = client.get(sent, headers=html)
        assert form.status_code == 200
        fields = {
            name: form.text.split(f'name="{name}" value="', 1)[1].split('"', 1)[0]
            for name in ("csrf_token", "next")
        }
        assert fields["next"] == "/org/sightings?status=online"
        username, password = world.passwords["b"]
        signed = client.post("/login", data={**fields, "username": username, "password": password})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/org/sightings?status=online"
        landed = client.get(signed.headers["location"], headers=html)
        assert landed.status_code == 200 and "Club Elm" in landed.text


LANGUAGE_WORDS = {
    "de": ("Warnungen", "Fotos geschützt"),
    "nl": ("Meldingen", "foto's beschermd"),
    "fr": ("Alertes", "photos protégées"),
    "en": ("Alerts", "photos protected"),
}


def test_the_pages_speak_four_languages(browser: Any, world: World) -> None:
    # German from the browser's Accept-Language alone, then each language by its link.
    page = sign_in(browser, world, "b", locale="de-DE")
    try:
        for lang, words in LANGUAGE_WORDS.items():
            if lang != "de":
                page.click(f"header a[hreflang={lang}]")
                page.wait_for_url(f"**/org?lang={lang}")
            text = page.inner_text("body")
            assert all(w in text for w in words), (lang, text[:300])
            assert page.locator("html").get_attribute("lang") == lang
        page.goto("/org/sightings")  # the choice is remembered
        assert page.locator("html").get_attribute("lang") == "en"
    finally:
        page.context.close()


def test_the_photos_page_lists_the_organisations_photos_with_their_warnings(
    browser: Any, world: World, tmp_path: Path
) -> None:
    from childguard.protect.register import (
        compute_photo_signature,
        photo_warning,
        register_photos,
        store_signature,
    )
    from childguard.protect.tenancy import photos_page
    from sample_media import plain_photo

    folder = tmp_path / "plain"
    folder.mkdir()
    plain_photo(folder / "plain.jpg")
    older = tmp_path / "older.jpg"
    shutil.copy(sorted(PHOTOS_DIR.glob("mate-backgrounds/*.jpg"))[0], older)
    record = compute_photo_signature(older)  # as an earlier version's client sent it
    record.features = {
        "robust": {k: v for k, v in record.features["robust"].items() if k != "squares"}
    }  # type: ignore[index]
    with world.live.store.session() as s:
        registered = register_photos(s, folder, world.org(world.b))
        assert [w.code for _, w in registered.warnings] == ["plain"]
        store_signature(s, world.org(world.b), record)
    mine = photos_page(world.live.store, world.org(world.b))
    assert [p.file_name for p in mine] == ["photo-51.jpg", "plain.jpg", "older.jpg"]
    page = sign_in(browser, world, "b")
    try:
        # The dashboard counts the photo to register again and links to it.
        assert "1 to register again" in page.inner_text("#card-photos")
        assert "2 with a warning" in page.inner_text("#card-photos")
        page.click("#photos-outdated")
        page.wait_for_url("**/org/photos?warning=outdated")
        assert page.locator("#photos tbody tr").count() == 1
        row = page.locator(f"#photo-{mine[2].id}")
        assert row.get_attribute("data-warning") == "outdated"
        assert "Register again" in row.inner_text() and "earlier version" in row.inner_text()
        assert page.locator("#warning").input_value() == "outdated"
        page.select_option("#warning", value="any")
        page.click("form.filters button")
        page.wait_for_url("**/org/photos?warning=any")
        assert page.locator("#photos tbody tr").count() == 2
        page.goto(f"/org/photos?warning=outdated&after={mine[2].id}")
        assert "No photos match." in page.inner_text("#no-photos")
        page.goto("/org/photos?warning=bent")  # not a filter: every photo
        assert page.locator("#photos tbody tr").count() == 3
        page.goto("/org/photos?warning=outdated&lang=de")
        assert "Erneut registrieren" in page.inner_text("#photos")
        page.goto("/org?lang=en")
        page.click("header a[href='/org/photos']")
        page.wait_for_url("**/org/photos")
        assert page.locator("header a[aria-current=page]").inner_text() == "Registered photos"
        rows = page.locator("#photos tbody tr")
        assert rows.count() == 3
        listed = page.inner_text("#photos")
        assert "photo-4" not in listed  # none of the other organisation's photos
        for p in mine:
            row = page.locator(f"#photo-{p.id}")
            assert p.file_name in row.inner_text()
            warning = photo_warning(p)
            assert row.get_attribute("data-warning") == (warning.code if warning else None)
        plain = page.locator(f"#photo-{mine[1].id}")
        assert "Hard to find" in plain.inner_text() and "too plain" in plain.inner_text()
        assert "Copies are found" in page.locator(f"#photo-{mine[0].id}").inner_text()
        assert page.locator("#next-page").count() == 0
        # The page after the first photo holds the second only; in Dutch, the warning too.
        page.goto(f"/org/photos?after={mine[1].id}&lang=nl")
        assert page.locator("#photos tbody tr").count() == 1
        assert "eerdere versie" in page.inner_text("#photos")
        page.goto(f"/org/photos?after={mine[0].id}&lang=nl")
        assert "te egaal om betrouwbaar gevonden te worden" in page.inner_text("#photos")
        page.goto(f"/org/photos?after={mine[2].id}&lang=en")
        assert page.locator("#no-photos").is_visible()
        for cursor in ("x", "-1", "9" * 40):  # not an id: the first page
            page.goto(f"/org/photos?after={cursor}")
            assert page.locator("#photos tbody tr").count() == 3, cursor
        assert page.console_errors == []
        # Another organisation's user sees only its own; an analyst is refused.
        other = sign_in(browser, world, "a")
        try:
            other.goto("/org/photos")
            assert "plain.jpg" not in other.inner_text("main")
            assert other.locator("#photos tbody tr").count() == 3
        finally:
            other.context.close()
        with world.live.client() as anonymous:
            assert anonymous.get("/org/photos").status_code in (303, 401)
    finally:
        page.context.close()
