"""Organisations as tenants over HTTP, on SQLite and PostgreSQL: each organisation's users see
only its protected photos, sightings and alerts, and get 404 for another's ids; admins manage
organisations and read the audit log."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from childguard.accounts import create_key
from childguard.accounts.users import create_user, sign_in
from childguard.alerts.dispatch import queue_sighting_alerts
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.sightings import SightingRecorder
from childguard.matcher import Matcher
from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.service.auth import SESSION_COOKIE
from childguard.store import Store
from sample_media import jpeg_bytes

from .conftest import LiveServer

PROBLEM = "application/problem+json"


@dataclass
class Tenant:
    """One organisation as the tests set it up: its id, photos, sightings and its key."""

    id: int
    name: str
    key: str
    photo_ids: dict[str, int] = field(default_factory=dict)  # file name -> id
    sighting_ids: set[int] = field(default_factory=set)

    def client(self, server: LiveServer) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _tenant(store: Store, tmp: Path, name: str, seeds: list[int]) -> Tenant:
    folder = tmp / name.replace(" ", "-")
    folder.mkdir()
    for seed in seeds:
        (folder / f"photo-{seed}.jpg").write_bytes(jpeg_bytes(seed))
    with store.session() as s:
        org = create_organisation(s, name, emails=[f"team@{seeds[0]}.example"])
        report = register_photos(s, folder, org, titles={f"photo-{seeds[0]}.jpg": "First"})
        assert not report.failed
        org_id = org.id
        photos = {p.file_name: p.id for p in report.registered}
    _, key = create_key(store, "org-admin", actor="test", organisation_id=org_id)
    return Tenant(id=org_id, name=name, key=key, photo_ids=photos)


def _sight(store: Store, tmp: Path, page: str, seeds: list[int], *, run: int | None = None) -> None:
    """A crawl's view of `page` showing the photos of `seeds`: matched by the real matcher and
    recorded by the crawl's recorder (one sighting per image, on its PDQ entry)."""
    matcher = Matcher(store, index_base=tmp / "matcher-index", persist=False)
    recorder = SightingRecorder(store, run_id=run, watch_name="pics")
    images = [f"https://pics.example/img/{seed}.jpg" for seed in seeds]
    recorder.page(page, title="Holiday snaps", image_urls=images, gone=False)
    for seed, image in zip(seeds, images, strict=True):
        hashes = hash_fetched(jpeg_bytes(seed))
        outcome = matcher.match(hashes)
        pdq = [m for m in outcome.matches if m.signal_type == "pdq" and m.variant == "original"]
        assert pdq, f"photo {seed} did not match its own entry"
        recorder.image(image, page_url=page, gone=False, hashes=hashes, matches=pdq[:1])
    recorder.finish()


@pytest.fixture
def tenants(server: LiveServer, tmp_path: Path) -> tuple[Tenant, Tenant]:
    store = server.store
    a = _tenant(store, tmp_path, "Scouts A", [11, 12])
    b = _tenant(store, tmp_path, "Club B", [21, 22])
    _sight(store, tmp_path, "https://pics.example/album/a", [11, 12])
    _sight(store, tmp_path, "https://pics.example/album/b", [21])
    with store.session() as s:
        for alert in queue_sighting_alerts(s):
            (a if alert.organisation_id == a.id else b).sighting_ids.add(alert.sighting_id or 0)
    return a, b


def _problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def _all(client: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, one page of `limit=1` at a time."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        query = {"limit": 1, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=query)
        assert page.status_code == 200, page.text
        items += page.json()[key]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def test_each_organisation_sees_only_its_own(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    assert len(a.sighting_ids) == 2 and len(b.sighting_ids) == 1
    for me, other in ((a, b), (b, a)):
        with me.client(server) as client:
            mine = client.get("/v1/organisation")
            assert mine.status_code == 200, mine.text
            body = mine.json()
            assert (body["id"], body["name"], body["bank"]) == (
                me.id,
                me.name,
                f"protected:{me.name}",
            )
            assert body["counts"]["photos"] == 2
            assert body["counts"]["sightings"]["total"] == len(me.sighting_ids)
            assert body["counts"]["alerts"]["total"] == len(me.sighting_ids)

            photos = _all(client, "/v1/organisation/photos", "photos")
            assert {p["id"]: p["file_name"] for p in photos} == {
                i: n for n, i in me.photo_ids.items()
            }
            sightings = _all(client, "/v1/organisation/sightings", "sightings")
            assert {s["id"] for s in sightings} == me.sighting_ids
            assert all(s["photo"]["id"] in me.photo_ids.values() for s in sightings)
            alerts = _all(client, "/v1/organisation/alerts", "alerts")
            assert {x["sighting_id"] for x in alerts} == me.sighting_ids
            assert all(x["payload"]["organisation"] == me.name for x in alerts)

            for photo_id in other.photo_ids.values():
                _problem(client.get(f"/v1/organisation/photos/{photo_id}"), 404, "photo-not-found")
            for sighting_id in other.sighting_ids:
                missing = client.get(f"/v1/organisation/sightings/{sighting_id}")
                _problem(missing, 404, "sighting-not-found")
            own_photo = next(iter(me.photo_ids.values()))
            shown = client.get(f"/v1/organisation/photos/{own_photo}")
            assert shown.status_code == 200 and shown.json()["id"] == own_photo
            assert {"pdq", "sha256"} <= {s["role"] for s in shown.json()["signals"]}
            one = client.get(f"/v1/organisation/sightings/{min(me.sighting_ids)}")
            assert one.status_code == 200 and "counters" in one.json()


def test_a_sighting_names_its_page_image_and_photo(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with a.client(server) as client:
        listed = client.get("/v1/organisation/sightings")
    assert listed.status_code == 200
    by_image = {s["image_url"]: s for s in listed.json()["sightings"]}
    first = by_image["https://pics.example/img/11.jpg"]
    assert first["page_url"] == "https://pics.example/album/a"
    assert first["page_title"] == "Holiday snaps"
    assert first["site"] == "pics.example" and first["status"] == "online"
    assert first["photo"]["file_name"] == "photo-11.jpg" and first["photo"]["title"] == "First"
    assert first["distance"] == 0 and first["signal_type"] == "pdq"
    assert first["first_seen"] and first["last_seen"]
    assert by_image["https://pics.example/img/12.jpg"]["photo"]["title"] is None
    ids = [s["id"] for s in listed.json()["sightings"]]
    assert ids == sorted(ids, reverse=True)  # newest first


def test_sighting_filters(
    server: LiveServer, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, b = tenants
    # The album no longer shows photo 12: its sighting is removed on the next crawl.
    recorder = SightingRecorder(server.store, run_id=None, watch_name="pics")
    recorder.page(
        "https://pics.example/album/a",
        title="Holiday snaps",
        image_urls=["https://pics.example/img/11.jpg"],
        gone=False,
    )
    assert recorder.finish()["removed"] == 1
    with a.client(server) as client:
        removed = client.get("/v1/organisation/sightings", params={"status": "removed"})
        assert [s["image_url"] for s in removed.json()["sightings"]] == [
            "https://pics.example/img/12.jpg"
        ]
        online = client.get("/v1/organisation/sightings", params={"status": "online"})
        assert [s["image_url"] for s in online.json()["sightings"]] == [
            "https://pics.example/img/11.jpg"
        ]
        later = client.get("/v1/organisation/sightings", params={"since": "2999-01-01T00:00:00Z"})
        assert later.status_code == 200 and later.json()["sightings"] == []
        earlier = client.get("/v1/organisation/sightings", params={"since": "2000-01-01"})
        assert len(earlier.json()["sightings"]) == 2
        _problem(client.get("/v1/organisation/sightings", params={"status": "lost"}), 422)
        _problem(client.get("/v1/organisation/alerts", params={"status": "lost"}), 422)
        _problem(client.get("/v1/organisation/photos", params={"cursor": "nonsense"}), 400)
        mine = client.get("/v1/organisation").json()["counts"]["sightings"]
        assert (mine["online"], mine["removed"]) == (1, 1)
    with b.client(server) as client:  # B's own sighting is untouched
        assert client.get("/v1/organisation").json()["counts"]["sightings"]["online"] == 1


def test_callers_of_no_organisation_are_refused(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    routes = [
        "/v1/organisation",
        "/v1/organisation/photos",
        f"/v1/organisation/photos/{next(iter(a.photo_ids.values()))}",
        "/v1/organisation/sightings",
        f"/v1/organisation/sightings/{min(a.sighting_ids)}",
        "/v1/organisation/alerts",
    ]
    with server.client("org-admin") as orgless, server.client("admin") as admin:
        for route in routes:
            body = _problem(orgless.get(route), 403, "no-organisation")
            assert body["detail"] == "this route is for an organisation's users"
            assert "org-admin" in _problem(admin.get(route), 403, "forbidden")["detail"]
    with a.client(server) as client:
        _problem(client.get("/v1/organisations"), 403, "forbidden")
        _problem(client.get(f"/v1/organisations/{a.id}"), 403, "forbidden")


def test_admins_create_list_and_show_organisations(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with server.client("admin") as admin:
        made = admin.post(
            "/v1/organisations",
            json={
                "name": "Harbour Rowing",
                "emails": ["safeguarding@rowing.example"],
                "webhook_url": "https://hooks.rowing.example/cg",
                "alert_mode": "daily",
            },
        )
        assert made.status_code == 201, made.text
        org = made.json()
        assert made.headers["location"] == f"/v1/organisations/{org['id']}"
        assert org["bank"] == "protected:Harbour Rowing" and org["alert_mode"] == "daily"
        assert len(org["webhook_secret"]) >= 32
        plain = admin.post("/v1/organisations", json={"name": "Chess Club"})
        assert plain.status_code == 201 and "webhook_secret" not in plain.json()

        _problem(admin.post("/v1/organisations", json={"name": "Scouts A"}), 409)
        bad_email = admin.post("/v1/organisations", json={"name": "X", "emails": ["nope"]})
        assert "not an email" in _problem(bad_email, 422)["detail"]
        _problem(admin.post("/v1/organisations", json={"name": "Y", "alert_mode": "hourly"}), 422)
        _problem(admin.post("/v1/organisations", json={"name": "Z", "colour": "red"}), 422)

        names = [o["name"] for o in _all(admin, "/v1/organisations", "organisations")]
        assert names == sorted(["Scouts A", "Club B", "Harbour Rowing", "Chess Club"])
        shown = admin.get(f"/v1/organisations/{a.id}")
        assert shown.status_code == 200
        assert "webhook_secret" not in shown.json()
        assert shown.json()["counts"]["photos"] == 2
        assert shown.json()["counts"]["sightings"]["total"] == len(a.sighting_ids)
        _problem(admin.get("/v1/organisations/999999"), 404, "organisation-not-found")
        _problem(admin.get("/v1/organisations", params={"cursor": "bm90LWpzb24"}), 400)

        created = admin.get("/v1/audit", params={"action": "org"}).json()["events"]
        assert [e["details"]["name"] for e in created] == [
            "Chess Club",
            "Harbour Rowing",
            "Club B",
            "Scouts A",
        ]
        assert {e["action"] for e in created} == {"org.create"}
        assert created[0]["actor"].startswith("key:")  # the admin key that made it
    with b.client(server) as client:  # a new organisation's photos are not B's either
        assert client.get("/v1/organisation").json()["counts"]["photos"] == 2


def test_audit_route_filters_and_pages(server: LiveServer) -> None:
    store = server.store
    for name in ("one", "two", "three"):
        create_key(store, "match", actor="auditor-test", name=name)
    with server.client("admin") as admin:
        pages = _all(admin, "/v1/audit", "events", actor="auditor-test")
        assert [e["details"]["name"] for e in pages] == ["three", "two", "one"]
        assert all(e["action"] == "key.create" and e["object_type"] == "api_key" for e in pages)
        one_id = pages[-1]["object_id"]
        exact = admin.get("/v1/audit", params={"object_type": "api_key", "object_id": one_id})
        assert [e["details"]["name"] for e in exact.json()["events"]] == ["one"]
        keys = admin.get("/v1/audit", params={"action": "key.", "limit": 1000}).json()["events"]
        assert len(keys) >= 3 + 8  # the server's key per role, and these three
        assert admin.get("/v1/audit", params={"action": "ke"}).json()["events"] == []
        future = admin.get("/v1/audit", params={"since": "2999-01-01T00:00:00Z"})
        assert future.json() == {"events": [], "next_cursor": None}
        past = admin.get("/v1/audit", params={"until": "2000-01-01", "actor": "auditor-test"})
        assert past.json()["events"] == []
        _problem(admin.get("/v1/audit", params={"limit": 0}), 422)
        _problem(admin.get("/v1/audit", params={"cursor": "!!"}), 400, "bad-cursor")
    with server.client("supervisor") as supervisor:
        _problem(supervisor.get("/v1/audit"), 403, "forbidden")


def test_a_signed_in_user_of_an_organisation_sees_only_its_own(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    password = "a long enough passphrase 42"
    create_user(
        server.store, "coach", password, actor="test", roles=["org-admin"], organisation_id=b.id
    )
    *_, token, _ = sign_in(server.store, "coach", password)
    cookies = {SESSION_COOKIE: token}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as browser:
        listed = browser.get("/v1/organisation/sightings")
        assert listed.status_code == 200, listed.text
        assert {s["id"] for s in listed.json()["sightings"]} == b.sighting_ids
        assert browser.get("/v1/organisation").json()["name"] == b.name
        for photo_id in a.photo_ids.values():
            _problem(browser.get(f"/v1/organisation/photos/{photo_id}"), 404, "photo-not-found")


def test_out_of_range_values_are_refused_not_crashes(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    huge = str(2**63)
    overflow = "9999-12-31T23:59:59-23:00"  # no UTC time: past year 9999
    too_far = base64.urlsafe_b64encode(json.dumps({"after": 2**64}).encode()).decode()
    with server.client("admin") as admin:
        _problem(admin.get(f"/v1/organisations/{2**31}"), 422)
        nul_email = {"name": "Nul Club", "emails": ["a\x00b@club.example"]}
        _problem(admin.post("/v1/organisations", json=nul_email), 422)
        _problem(admin.get("/v1/audit", params={"actor": "key:\x00"}), 422)
        _problem(admin.get("/v1/audit", params={"since": overflow}), 422)
        _problem(admin.get("/v1/audit", params={"cursor": too_far}), 400, "bad-cursor")
    with a.client(server) as client:
        _problem(client.get(f"/v1/organisation/photos/{huge}"), 422)
        _problem(client.get(f"/v1/organisation/sightings/{huge}"), 422)
        _problem(client.get("/v1/organisation/sightings", params={"since": overflow}), 422)
        _problem(client.get("/v1/organisation/alerts", params={"cursor": too_far}), 400)
        # The largest ids the columns hold are simply not there.
        _problem(client.get(f"/v1/organisation/photos/{2**63 - 1}"), 404, "photo-not-found")
        _problem(client.get(f"/v1/organisation/sightings/{2**63 - 1}"), 404)
