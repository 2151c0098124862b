"""Registration on the device, in real headless Chromium against the real service.

The browser's PDQ (`static/org/pdq.js`) passes Meta's conformance set and agrees with Python's
`pdq_from_pixels` on the same pixels; its protected signature agrees with
`compute_signature`. The full story, with one scheduled crawl for the module: an organisation
user registers the demo album at `/org/photos/add`, another organisation registers it with
`protect register`; the service's own scheduler crawls the due watch of the demo sharing site,
the alerts arrive at a local webhook and a local SMTP server (aiosmtpd), the sightings show on
`/org/sightings` named by the photo's file name and title, and the browser's recall is at least
the command line's. No run of 48 bytes of any photo (raw, hex or base64) is in any request body
of a registration or of the check before publishing; a corrupt file among good ones gets its
message and the rest register; another organisation's user sees none of it.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from childguard.accounts import create_user
from childguard.cli import app
from childguard.crawl.sightings import SightingView, list_sightings
from childguard.crawl.watch import Watch
from childguard.crawl.watchstore import save_watch
from childguard.demo.sites import AlbumSite, SharingSite, serving
from childguard.protect.organisations import create_organisation
from childguard.protect.register import list_photos, photos_for_entry
from childguard.robust.signature import ProtectedSignature, compute_signature
from childguard.signals.pdq import PdqSignal, pdq_from_pixels
from childguard.store.db import Store
from childguard.store.protect_models import Alert
from hotline.referral_fixtures import smtp_inbox
from local_http import serving as serving_handler
from sample_media import exif_photo, plain_photo
from screenshots import screenshots as screenshots
from screenshots import shoot as shoot_into
from service.conftest import LiveServer, live_server

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq"
LEAK_RUN = 48
ALBUM_SIZE = 6
CLI_ORG = "Command-line Scouts"  # the same album, registered with `protect register`


@dataclass
class OrgServer:
    """The service with its scheduler, the demo's sites, and the alerts' local receivers."""

    live: LiveServer
    db_url: str
    sites: DemoSites
    inbox: Any  # hotline.referral_fixtures.Inbox: the messages the SMTP server received
    hooks: list[tuple[str, dict[str, Any]]]  # (path, payload) of each webhook POST
    hook_url: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # org -> (user, password)
    org_ids: dict[str, int] = field(default_factory=dict)


def _hook_handler(received: list[tuple[str, dict[str, Any]]]) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Hook


@pytest.fixture(scope="module")
def org_server(
    tmp_path_factory: pytest.TempPathFactory, demo_sites: DemoSites
) -> Iterator[OrgServer]:
    """One service for the module, its scheduler looking every second for due crawls and
    alerts; the demo's sharing site reachable by its name on 127.0.0.1 (the test-only address
    allowance). "Browser Scouts" has an email address and a webhook on local servers."""
    base = tmp_path_factory.mktemp("orgreg")
    db_url = f"sqlite:///{base / 'store.db'}"
    host = demo_sites.share.host
    hooks: list[tuple[str, dict[str, Any]]] = []
    with pytest.MonkeyPatch.context() as env, smtp_inbox() as inbox:
        env.setenv("CHILDGUARD_SMTP_HOST", inbox.host)
        env.setenv("CHILDGUARD_SMTP_PORT", str(inbox.port))
        with (
            serving_handler(_hook_handler(hooks)) as hook_url,
            live_server(
                db_url,
                base / "index",
                crawl_poll_seconds=1,
                album_poll_seconds=1,
                alert_poll_seconds=1,
                scheduler_poll_seconds=0.2,
                crawl_hash_workers=0,
                crawl_timeout_seconds=280,
                crawl_static_hosts=(f"{host}=127.0.0.1",),
                crawl_private_hosts=(host,),
            ) as live,
        ):
            found = OrgServer(live, db_url, demo_sites, inbox, hooks, hook_url)
            contacts: dict[str, dict[str, Any]] = {
                "Browser Scouts": {
                    "emails": ["leader@scouts.test"],
                    "webhook_url": f"{hook_url}/scouts",
                },
                "Other Club": {},
            }
            for name, contact in contacts.items():
                with live.store.session() as s:
                    org = create_organisation(s, name, **contact)
                    found.org_ids[name] = org.id
                username = f"org-{secrets.token_hex(4)}"
                password = secrets.token_urlsafe(16)
                create_user(
                    live.store,
                    username,
                    password,
                    actor="test",
                    roles=("org-admin",),
                    organisation_id=found.org_ids[name],
                )
                found.users[name] = (username, password)
            with live.store.session() as s:
                found.org_ids[CLI_ORG] = create_organisation(s, CLI_ORG).id
            yield found


def _sign_in(context: Any, server: OrgServer, org: str) -> Any:
    page = context.new_page()
    username, password = server.users[org]
    page.goto(f"{server.live.url}/login?next=/org/photos/add")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/org/photos/add")
    return page


@dataclass
class Recorder:
    """Every request the page (and its worker) makes, with its body."""

    bodies: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, request: Any) -> None:
        self.bodies.append((request.url, request.post_data_buffer or b""))


@pytest.fixture(scope="module")
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(accept_downloads=True)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def org_page(context: Any, org_server: OrgServer) -> Any:
    """A page signed in as the Browser Scouts' user, at /org/photos/add."""
    return _sign_in(context, org_server, "Browser Scouts")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


DECODE_JS = """async ([b64, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], {type}),
    {imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none"});
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const {pdqFromPixels} = await import("/org/static/org/pdq.js");
  return pdqFromPixels(data, bitmap.width, bitmap.height, 4);
}"""

PIXELS_JS = """async ([b64, w, h]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const {pdqFromPixels} = await import("/org/static/org/pdq.js");
  return pdqFromPixels(bytes, w, h, 3);
}"""


def test_pdq_in_the_browser_passes_the_conformance_set(org_page: Any) -> None:
    with (CONFORMANCE / "expected.csv").open(newline="") as fh:
        expected = [
            (CONFORMANCE / "images" / r["image"], r["expected_pdq"]) for r in csv.DictReader(fh)
        ]
    assert len(expected) >= 30
    distances = {}
    for image, want in expected:
        kind = "image/png" if image.suffix == ".png" else "image/jpeg"
        got = org_page.evaluate(DECODE_JS, [_b64(image.read_bytes()), kind])
        distances[image.name] = PdqSignal.distance(got["hash"], want)
    worst = max(distances, key=lambda k: distances[k])
    mean = sum(distances.values()) / len(distances)
    print(f"browser PDQ vs the reference: worst {distances[worst]} bits, mean {mean:.2f}")
    assert distances[worst] <= 16, f"{worst} is {distances[worst]} bits from the reference"
    assert mean <= 6, f"mean distance {mean:.2f} over {len(distances)} images"


def test_pdq_in_the_browser_agrees_with_python_on_the_same_pixels(
    org_page: Any, real_photos: list[Path]
) -> None:
    rng = np.random.default_rng(5)
    arrays = [rng.integers(0, 256, size=(97, 131, 3), dtype=np.uint8)]
    for path in real_photos[:4]:
        im = Image.open(path).convert("RGB")
        im.thumbnail((700, 700))
        arrays.append(np.asarray(im))
    for pixels in arrays:
        h, w = pixels.shape[:2]
        want, quality = pdq_from_pixels(pixels)
        got = org_page.evaluate(PIXELS_JS, [_b64(pixels.tobytes()), w, h])
        assert PdqSignal.distance(got["hash"], want) <= 2, (w, h)
        assert abs(got["quality"] - quality) <= 1


# ---------------------------------------------------------------- registering in the browser


def _register(page: Any, files: list[Path], *, title: str = "", timeout_s: float = 120) -> Any:
    """Pick `files` on /org/photos/add, register, wait for the summary; returns its element."""
    page.goto(page.url.split("?")[0])
    page.set_input_files("#photos", [str(f) for f in files])
    if title:
        page.fill("#title", title)
    page.click("#start")
    summary = page.locator("#summary[data-done=true]")
    summary.wait_for(timeout=timeout_s * 1000)
    return summary


def shoot(page: Any, folder: Path, name: str) -> None:
    """The screenshot docs/organisations.md shows, org-<name>.png in the run's screenshot
    folder (tests/screenshots.py: a temporary folder, or docs/img under `make screenshots`)."""
    shoot_into(page, folder, f"org-{name}")


def _states(page: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for row in page.locator("#progress tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        out[cells[0]] = (row.get_attribute("data-state"), cells[1])
    return out


def _decoded_forms(body: bytes) -> list[bytes]:
    """`body`, and every hex or base64 run in it decoded at each alignment."""
    forms = [body]
    for m in re.finditer(rb"[0-9a-fA-F]{96,}", body):
        for off in (0, 1):
            part = m.group()[off:]
            forms.append(bytes.fromhex(part[: len(part) // 2 * 2].decode()))
    for m in re.finditer(rb"[A-Za-z0-9+/_-]{64,}", body):
        run = m.group().replace(b"-", b"+").replace(b"_", b"/")
        for off in range(4):
            part = run[off:]
            forms.append(base64.b64decode(part[: len(part) // 4 * 4]))
    return forms


def _leaks(bodies: list[tuple[str, bytes]], files: list[Path]) -> list[str]:
    """Where a request body holds any run of LEAK_RUN bytes of a file: raw, in hex or in
    base64 (standard or URL-safe, at any alignment)."""
    windows: dict[bytes, str] = {}
    for url, body in bodies:
        for form in _decoded_forms(body):
            for i in range(len(form) - LEAK_RUN + 1):
                windows.setdefault(form[i : i + LEAK_RUN], url)
    found = []
    for path in files:
        data = path.read_bytes()
        for i in range(len(data) - LEAK_RUN + 1):
            where = windows.get(data[i : i + LEAK_RUN])
            if where is not None:
                found.append(f"{where} holds bytes {i}-{i + LEAK_RUN} of {path.name}")
                break
    return found


def test_registration_sends_no_image_bytes_and_reports_a_corrupt_file(
    org_page: Any, org_server: OrgServer, real_photos: list[Path], tmp_path: Path
) -> None:
    photos = []
    for i, source in enumerate(real_photos[10:13]):
        im = Image.open(source).convert("RGB")
        im.thumbnail((900, 900))
        path = tmp_path / f"leak-{i}.jpg"
        im.save(path, quality=90)
        photos.append(path)
    png = tmp_path / "leak-3.png"
    Image.open(photos[0]).resize((300, 200)).save(png)
    photos.append(png)
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(photos[1].read_bytes()[:200] + b"\x00" * 500)
    recorder = Recorder()
    org_page.context.on("request", recorder)
    try:
        summary = _register(org_page, [*photos, corrupt], title="Camp 2024")
    finally:
        org_page.context.remove_listener("request", recorder)
    states = _states(org_page)
    assert states["broken.jpg"][0] == "failed"
    assert "could not be read as a photo" in states["broken.jpg"][1]
    assert all(states[p.name][0] == "registered" for p in photos), states
    assert summary.get_attribute("data-registered") == "4"
    assert summary.get_attribute("data-failed") == "1"

    posted = [(u, b) for u, b in recorder.bodies if b]
    assert any("/v1/organisation/photos/signatures" in u for u, _ in posted)
    assert sum(len(b) for _, b in posted) > 4 * 1000  # the signatures themselves went
    assert _leaks(recorder.bodies, [*photos, corrupt]) == []
    # The check above finds a photo's bytes where they are (it cannot pass vacuously).
    assert _leaks([("x", b"pre" + photos[2].read_bytes()[5000:5100])], photos)
    assert _leaks([("x", photos[2].read_bytes()[7000:7100].hex().encode())], photos)
    assert _leaks([("x", base64.b64encode(photos[2].read_bytes()[9001:9200]))], photos)
    assert _leaks([("x", b'{"a": "' + base64.b64encode(photos[1].read_bytes()) + b'"}')], photos)

    with org_server.live.store.session() as s:
        from childguard.protect.organisations import get_organisation_by_id

        org = get_organisation_by_id(s, org_server.org_ids["Browser Scouts"])
        stored = {p.file_name: p for p in list_photos(s, org)}
    for path in photos:
        row = stored[path.name]
        assert row.title == "Camp 2024"
        assert row.byte_size == path.stat().st_size
        with path.open("rb") as fh:
            import hashlib

            data = fh.read()
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert row.md5 == hashlib.md5(data).hexdigest()
        assert row.sha1 == hashlib.sha1(data).hexdigest()
        sig = ProtectedSignature.from_json(json.dumps((row.signatures or {})["robust"]))
        assert len(sig.descriptors) >= 100

    # The same photos again: nothing new; a photo whose stored signature was made from pixels
    # reduced apart (square, of a 4:3 photo) is signed anew, and its row says so.
    from childguard.protect.register import compute_photo_signature, store_signature
    from childguard.robust.signature import frame_fits, stored_frame

    bent_path = tmp_path / "bent.jpg"
    im = Image.open(real_photos[20]).convert("RGB")
    im.thumbnail((800, 800))
    im.save(bent_path, quality=90)
    record = compute_photo_signature(bent_path)
    bent = compute_signature(np.asarray(im.resize((400, 400))))
    assert not frame_fits(bent.size, record.width, record.height)
    record.features = {"robust": json.loads(bent.to_json())}
    with org_server.live.store.session() as s:
        org = get_organisation_by_id(s, org_server.org_ids["Browser Scouts"])
        bent_id = store_signature(s, org, record)[0].id
    # A photo too plain to be found reliably registers, and its row and the summary warn.
    plain = plain_photo(tmp_path / "plain.jpg")
    again = _register(org_page, [*photos[:2], bent_path, plain])
    assert again.get_attribute("data-already") == "2"
    assert again.get_attribute("data-resigned") == "1"
    assert again.get_attribute("data-registered") == "1"
    assert again.get_attribute("data-warned") == "1"
    assert "1 signed anew" in again.inner_text()
    assert "1 may be hard to find" in again.inner_text()
    states = _states(org_page)
    assert states["bent.jpg"][0] == "resigned" and "signed anew" in states["bent.jpg"][1]
    assert states["plain.jpg"][0] == "registered" and "too plain" in states["plain.jpg"][1]
    warned = org_page.locator("#progress tbody tr[data-warning=plain]")
    assert warned.count() == 1
    assert states[photos[0].name][0] == "already"
    with org_server.live.store.session() as s:
        org = get_organisation_by_id(s, org_server.org_ids["Browser Scouts"])
        row = next(p for p in list_photos(s, org) if p.id == bent_id)
        assert frame_fits(stored_frame((row.signatures or {})["robust"]), row.width, row.height)


SIGNATURE_JS = """async ([b64, w, h]) => {
  const rgb = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba[4 * i] = rgb[3 * i]; rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2]; rgba[4 * i + 3] = 255;
  }
  const {protectedSignature} = await import("/org/static/org/signature.js");
  const cv = await (await import("/org/static/vendor/opencv.js")).default();
  return protectedSignature(cv, rgba, w, h).signature;
}"""


def test_the_browser_signature_is_the_one_protect_register_computes(
    org_page: Any, org_server: OrgServer, real_photos: list[Path]
) -> None:
    """Same pixels, same views, same frame; PDQ of each view within a few bits; nearly all
    ORB keypoints and descriptors the same (OpenCV.js is the same OpenCV as the Python side)."""
    page = org_page.context.new_page()  # signed in; on a script whose policy lets OpenCV.js run
    try:
        page.goto(f"{org_server.live.url}/org/static/org/register_worker.js")
        for path in real_photos[20:22]:
            im = Image.open(path).convert("RGB")
            im.thumbnail((1100, 1100))
            pixels = np.asarray(im)
            h, w = pixels.shape[:2]
            got = ProtectedSignature.from_json(
                json.dumps(page.evaluate(SIGNATURE_JS, [_b64(pixels.tobytes()), w, h]))
            )
            want = compute_signature(pixels)
            assert [lbl for lbl, _ in got.pdq] == [lbl for lbl, _ in want.pdq]
            assert got.size == want.size
            assert [lbl for lbl, _ in got.squares] == [lbl for lbl, _ in want.squares]
            views = zip(got.compared_views(), want.compared_views(), strict=True)
            for (label, a), (_, b) in views:
                assert PdqSignal.distance(a, b) <= 4, (path.name, label)
            assert abs(len(got.descriptors) - len(want.descriptors)) <= 10
            same = {
                (int(x), int(y), bytes(d))
                for (x, y), d in zip(want.keypoints, want.descriptors, strict=True)
            }
            shared = sum(
                (int(x), int(y), bytes(d)) in same
                for (x, y), d in zip(got.keypoints, got.descriptors, strict=True)
            )
            assert shared >= 0.8 * len(want.descriptors), (path.name, shared)
    finally:
        page.close()


# ---------------------------------------------------------------- recall on the demo's site


@dataclass
class DemoSites:
    album: AlbumSite
    share: SharingSite


@pytest.fixture(scope="module")
def demo_sites(tmp_path_factory: pytest.TempPathFactory, photos_dir: Path) -> Iterator[DemoSites]:
    from childguard.demo.story import pick_photos

    base = tmp_path_factory.mktemp("demo-sites")
    picked = pick_photos(photos_dir, album_size=ALBUM_SIZE, unrelated=2)
    album = AlbumSite.build(base / "album", picked.album, title="Camp 2024 - Demo Scout Group")
    share = SharingSite.build(
        base / "share", album.photos, reposts=ALBUM_SIZE, unrelated=picked.unrelated, synthetic=2
    )
    with serving(album, share):
        yield DemoSites(album, share)


def _reposts_by_url(sites: DemoSites) -> dict[str, str]:
    """The sharing site's image URLs (full size and thumbnail) of each re-post -> the album
    photo's file name."""
    return {
        sites.share.url(f"/{kind}/{post.id}.jpg"): str(post.source)
        for post in sites.share.reposts
        for kind in ("i", "t")
    }


def _found(sites: DemoSites, store: Store, organisation: str) -> dict[str, SightingView]:
    """Album photos whose re-post (full size or thumbnail) the organisation has a sighting of
    that names that photo: file name -> one such sighting."""
    by_url = _reposts_by_url(sites)
    found: dict[str, SightingView] = {}
    with store.session() as s:
        for v in list_sightings(store, organisation=organisation):
            if v.entry_id is None:
                continue
            names = {p.file_name for p in photos_for_entry(s, v.entry_id)}
            source = by_url.get(v.image_url)
            if source in names:
                found.setdefault(str(source), v)
    return found


def _until(check: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_full_story_register_in_the_browser_the_scheduler_finds_and_alerts(
    org_page: Any, org_server: OrgServer, browser: Any, screenshots: Path
) -> None:
    """An organisation user registers the demo album in the browser; the same album is
    registered for another organisation with `protect register`. A due watch of the demo's
    sharing site is crawled by the service's own scheduler, once; the alerts arrive at the
    local webhook and SMTP server; the sightings are on /org/sightings, named by the photo's
    file name and title; the browser's recall is at least the command line's."""
    sites, live = org_server.sites, org_server.live
    album_files = [p.path for p in sites.album.photos]
    summary = _register(org_page, album_files, title="Camp 2024")
    assert summary.get_attribute("data-registered") == str(len(album_files))
    shoot(org_page, screenshots, "photos-add")

    album_dir = album_files[0].parent
    assert sorted(album_dir.iterdir()) == sorted(album_files)
    cli = CliRunner().invoke(
        app, ["protect", "register", str(album_dir), "--org", CLI_ORG, "--db", org_server.db_url]
    )
    assert cli.exit_code == 0, cli.output
    assert f"registered {len(album_files)}," in cli.output

    # Nothing was crawled yet; the watch is due at once, and the scheduler alone crawls it.
    assert list_sightings(live.store) == []
    save_watch(
        live.store,
        Watch(
            name="picshare",
            seeds=(sites.share.url("/"),),
            max_depth=6,
            max_pages=300,
            download_delay=0,
            concurrency_per_domain=8,
        ),
    )
    supervisor = live.client("supervisor")

    def crawled() -> dict[str, Any] | None:
        runs = supervisor.get("/v1/tasks/crawls").json()["runs"]
        return next((r for r in runs if r["status"] != "running"), None)

    try:
        run = _until(crawled, "the scheduler's crawl of the sharing site")
    finally:
        supervisor.close()
    assert run["status"] == "ok", run
    (picshare,) = run["summary"]["crawls"]
    assert picshare["watch"] == "picshare" and picshare["problem"] is None
    assert picshare["pages"] > 0 and picshare["new_sightings"] > 0

    reposted = {str(p.source) for p in sites.share.reposts}
    cli_found = _found(sites, live.store, CLI_ORG)
    browser_found = _found(sites, live.store, "Browser Scouts")
    print(
        f"recall: command line {len(cli_found)}/{len(reposted)}, "
        f"browser {len(browser_found)}/{len(reposted)}"
    )
    assert len(cli_found) >= len(reposted) // 2  # the comparison means something
    assert len(browser_found) >= len(cli_found), (
        sorted(set(cli_found) - set(browser_found)),
        sorted(set(browser_found) - set(cli_found)),
    )

    # Every place a copy of the browser organisation's photos was found is alerted on both
    # channels, and no sighting twice.
    scouts = list_sightings(live.store, organisation="Browser Scouts")
    place_of = {v.id: (v.page_url, v.image_url) for v in scouts}
    org_id = org_server.org_ids["Browser Scouts"]

    def delivered() -> bool:
        hooked = [d["sighting_id"] for p, d in org_server.hooks if p == "/scouts"]
        with live.store.session() as s:
            alerts = s.execute(
                select(Alert.sighting_id, Alert.status).where(Alert.organisation_id == org_id)
            ).all()
        return (
            {place_of.get(i) for i in hooked} == set(place_of.values())
            and all(status == "sent" for _, status in alerts)
            and {i for i, _ in alerts} == set(hooked)
            and len(org_server.inbox.messages) == len(hooked)
        )

    _until(delivered, "the alerts at the webhook and the SMTP server", timeout=60)
    hooked = [d for p, d in org_server.hooks if p == "/scouts"]
    assert len({d["sighting_id"] for d in hooked}) == len(hooked)
    by_image: dict[str, list[dict[str, Any]]] = {}
    for d in hooked:
        by_image.setdefault(d["image_url"], []).append(d)
    for name, sighting in browser_found.items():
        for payload in by_image[sighting.image_url]:
            assert payload["type"] == "sighting"
            assert payload["page_url"] == sighting.page_url
            assert payload["match"]["file_name"] == name
            assert payload["match"]["title"] == "Camp 2024"
    subjects = [m["Subject"] for m in org_server.inbox.messages]
    assert len(subjects) == len(hooked)
    assert all(s.startswith("[childguard] Your photo Camp 2024 was found on ") for s in subjects)
    assert all(m["To"] == "leader@scouts.test" for m in org_server.inbox.messages)
    assert not [p for p, _ in org_server.hooks if p != "/scouts"]

    # The sightings page names each found photo by its file name and title, one row a place.
    org_page.goto(f"{live.url}/org/sightings?lang=en")
    rows = {}
    for row in org_page.locator("#sightings tbody tr").all():
        image_url = row.locator("td.url").nth(1).inner_text()
        named = (row.locator(".photo-file").inner_text(), row.locator(".photo-title").inner_text())
        assert image_url not in rows, image_url
        rows[image_url] = named
    assert set(rows) == {v.image_url for v in scouts}
    by_url = _reposts_by_url(sites)
    assert {by_url[u] for u in rows if u in by_url} == set(browser_found)
    for url, named in rows.items():
        if url in by_url:
            assert named == (by_url[url], "Camp 2024"), url
    # The other organisations' users see none of it.
    elsewhere = browser.new_context()
    try:
        other = _sign_in(elsewhere, org_server, "Other Club")
        other.goto(f"{live.url}/org/sightings?lang=en")
        assert other.locator("#no-sightings").count() == 1
        assert other.locator("#sightings").count() == 0
    finally:
        elsewhere.close()


# ---------------------------------------------------------------- the check before publishing


def test_the_check_before_publishing_flags_exif_and_saves_a_clean_copy_locally(
    org_page: Any, org_server: OrgServer, tmp_path: Path, screenshots: Path
) -> None:
    from childguard.protect.prepublish import check_before_publishing

    photo = exif_photo(tmp_path / "camp.jpg", orientation=6, size=(240, 160), quality=92)
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(plain)
    page = org_page.context.new_page()
    recorder = Recorder()
    page.on("request", recorder)
    try:
        page.goto(f"{org_server.live.url}/org/photos/check?lang=en")
        page.set_input_files("#check-photos", [str(photo), str(plain)])
        result = page.locator("section.result[data-file='camp.jpg'][data-state=checked]")
        result.wait_for(timeout=20_000)
        items = result.locator("li").all()
        found = {li.get_attribute("data-category"): li.inner_text() for li in items}
        severity = {
            li.get_attribute("data-category"): li.get_attribute("data-severity") for li in items
        }
        assert "51.05000, 3.72500" in found["location"]
        assert "SN-0042-XYZ" in found["serial"]
        assert "Jane Leader" in found["owner"]
        assert "2024:07:14 10:31:00" in found["date"]
        assert severity["location"] == severity["serial"] == severity["owner"] == "high"
        # The same findings as the Python check, category for category.
        python = {f.category for f in check_before_publishing(photo).findings}
        assert set(found) == python
        other = page.locator("section.result[data-file='plain.png'][data-state=checked]")
        other.wait_for(timeout=10_000)
        shoot(page, screenshots, "photos-check")
        assert other.get_attribute("data-findings") == "0"

        with page.expect_download() as download:
            result.locator("button.save").click()
        saved = tmp_path / "saved.jpg"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "camp-clean.jpg"
        result.locator("p.cleaned[data-left='0']").wait_for(timeout=10_000)
    finally:
        page.close()
    assert check_before_publishing(saved).clean
    data = saved.read_bytes()
    assert b"Jane" not in data and b"SN-0042" not in data
    original = np.rot90(np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16), -1)
    cleaned = np.asarray(Image.open(saved).convert("RGB"), dtype=np.int16)
    assert cleaned.shape == original.shape  # shown upright: the EXIF rotation was applied
    assert np.abs(cleaned - original).mean() < 4
    # Nothing was uploaded: no request carried a body, let alone the photo's bytes.
    assert [u for u, b in recorder.bodies if b] == []
    assert _leaks(recorder.bodies, [photo, plain]) == []


# ---------------------------------------------------------------- languages, headers, files


@pytest.mark.parametrize(
    ("lang", "title"),
    [
        ("nl", "Foto's registreren"),
        ("fr", "Enregistrer des photos"),
        ("de", "Fotos registrieren"),
        ("en", "Register photos"),
    ],
)
def test_the_pages_speak_four_languages(
    org_page: Any, org_server: OrgServer, lang: str, title: str
) -> None:
    page = org_page.context.new_page()
    try:
        page.goto(f"{org_server.live.url}/org/photos/add?lang={lang}")
        assert page.locator("h1").inner_text() == title
        assert page.locator("html").get_attribute("lang") == lang
    finally:
        page.close()
    org_page.goto(f"{org_server.live.url}/org/photos/add?lang=en")


def test_the_pages_policy_and_the_static_files(org_server: OrgServer) -> None:
    import httpx

    from childguard.service.web.org_register_pages import _media_type

    username, password = org_server.users["Browser Scouts"]
    with httpx.Client(base_url=org_server.live.url, timeout=30) as client:
        client.post("/v1/session", json={"username": username, "password": password})
        answer = client.get("/org/photos/add")
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self' 'wasm-unsafe-eval';" in policy
        assert "worker-src 'self'" in policy and "connect-src 'self'" in policy
        assert "unsafe-eval'" not in policy.replace("wasm-unsafe-eval'", "")
        assert "webkitdirectory" in answer.text
        for path, kind in (
            ("org/pdq.js", "text/javascript"),
            ("vendor/opencv.js", "text/javascript"),
            ("vendor/htmx.min.js", "text/javascript"),
        ):
            got = client.get(f"/org/static/{path}")
            assert got.status_code == 200 and got.headers["content-type"].startswith(kind)
            assert got.headers["x-content-type-options"] == "nosniff"
        for bad in (
            "templates/base.html",
            "org/../pages.py",
            "org/%2e%2e/pages.py",
            "vendor/README",
            "org/",
        ):
            assert client.get(f"/org/static/{bad}").status_code == 404, bad
    assert httpx.get(f"{org_server.live.url}/org/static/org/pdq.js").status_code == 401
    assert _media_type(Path("x/ort.wasm")) == "application/wasm"


def test_a_hundred_photos_register_in_batches_without_freezing_the_page(
    org_page: Any, tmp_path: Path
) -> None:
    rng = np.random.default_rng(17)
    files = []
    for i in range(100):
        tiles = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
        picture = np.kron(tiles, np.ones((20, 20, 1), dtype=np.uint8))
        path = tmp_path / f"many-{i:03d}.jpg"
        Image.fromarray(picture).save(path, quality=85)
        files.append(path)
    posts: list[int] = []

    def on_request(request: Any) -> None:
        if request.url.endswith("/v1/organisation/photos/signatures"):
            posts.append(len(json.loads(request.post_data or "{}")["photos"]))

    org_page.goto(org_page.url.split("?")[0])
    # The page's own thread keeps ticking while the worker hashes.
    org_page.evaluate(
        """() => { window.__gap = 0; let last = performance.now();
        window.__tick = setInterval(() => { const now = performance.now();
        window.__gap = Math.max(window.__gap, now - last); last = now; }, 50); }"""
    )
    org_page.on("request", on_request)
    try:
        org_page.set_input_files("#photos", [str(f) for f in files])
        org_page.click("#start")
        summary = org_page.locator("#summary[data-done=true]")
        summary.wait_for(timeout=180_000)
    finally:
        org_page.remove_listener("request", on_request)
    assert summary.get_attribute("data-registered") == "100"
    assert sum(posts) == 100 and max(posts) <= 20 and len(posts) >= 5
    gap = org_page.evaluate("() => { clearInterval(window.__tick); return window.__gap; }")
    assert gap < 3000, f"the page froze for {gap:.0f} ms"
    assert org_page.locator("#progress tbody tr[data-state=registered]").count() == 100
