"""The organisation's actions over HTTP: each organisation acts only on its own sightings and
albums (another's ids are 404, as unknown ones), a false alarm is allowed for good, a hotline
report is filed, the takedown letter downloads, contacts are validated and changed, and the
summary counts what is new. On SQLite only: the library under these routes
(`childguard.protect.sighting_actions`) is tested on SQLite and PostgreSQL in
tests/protect/test_sighting_actions.py."""

from __future__ import annotations

from pathlib import Path

import httpx

from childguard.accounts import create_key
from childguard.hotline.reports import report_urls
from childguard.protect import sighting_actions as actions
from childguard.protect.organisations import get_organisation_by_id
from protect.test_sighting_actions import seed_organisation, sight
from sample_media import jpeg_bytes

from .conftest import LiveServer

PROBLEM = "application/problem+json"


def _client(server: LiveServer, org_id: int) -> httpx.Client:
    _, key = create_key(server.store, "org-admin", actor="test", organisation_id=org_id)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _sightings(server: LiveServer, org_id: int) -> dict[str, int]:
    with server.store.session() as s:
        org = get_organisation_by_id(s, org_id)
    return {
        f.sighting.image_url: f.sighting.id for f in actions.organisation_places(server.store, org)
    }


def test_the_actions_of_one_organisation_and_not_of_another(
    sqlite_server: LiveServer, tmp_path: Path
) -> None:
    server = sqlite_server
    store = server.store
    a = seed_organisation(store, tmp_path / "a", "Scouts A", [61, 62])
    b = seed_organisation(store, tmp_path / "b", "Club B", [71])
    sight(
        store,
        tmp_path / "idx",
        "https://pics.example/a",
        {
            "https://pics.example/61.jpg": jpeg_bytes(61),
            "https://pics.example/62.jpg": jpeg_bytes(62),
        },
    )
    sight(
        store,
        tmp_path / "idx",
        "https://pics.example/b",
        {"https://pics.example/71.jpg": jpeg_bytes(71)},
    )
    mine, theirs = _sightings(server, a), _sightings(server, b)
    first, second = mine["https://pics.example/61.jpg"], mine["https://pics.example/62.jpg"]
    other = theirs["https://pics.example/71.jpg"]
    with _client(server, a) as api:
        summary = api.get("/v1/organisation/summary")
        assert summary.status_code == 200, summary.text
        assert (summary.json()["photos"], summary.json()["new_sightings"]) == (2, 2)
        assert summary.json()["awaiting_action"] == 2
        assert set(summary.json()["photo_warnings"]) == {"outdated", "plain", "few-keypoints"}

        for method, path, body in (
            ("GET", f"/sightings/{other}/state", None),
            ("POST", f"/sightings/{other}/seen", None),
            ("POST", f"/sightings/{other}/false-alarm", {"reason": "x"}),
            ("POST", f"/sightings/{other}/hotline-report", {}),
            ("GET", f"/sightings/{other}/takedown-letter", None),
            ("GET", "/sightings/999999/state", None),
        ):
            answer = api.request(method, f"/v1/organisation{path}", json=body)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)

        seen = api.post(f"/v1/organisation/sightings/{first}/seen")
        assert seen.status_code == 200 and seen.json()["state"] == "seen"
        refused = api.post(f"/v1/organisation/sightings/{second}/false-alarm", json={"reason": ""})
        assert refused.status_code == 422 and "why" in refused.json()["detail"]
        allowed = api.post(
            f"/v1/organisation/sightings/{second}/false-alarm", json={"reason": "not ours"}
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["allow"]["bank"] == "allow:Scouts A"
        filed = api.post(
            f"/v1/organisation/sightings/{first}/hotline-report", json={"note": "please look"}
        )
        assert filed.status_code == 201, filed.text
        assert filed.json()["state"] == "reported" and filed.json()["tracking_code"]
        urls = [u.url for u in report_urls(store, filed.json()["hotline_report_id"])]
        assert urls == ["https://pics.example/a", "https://pics.example/61.jpg"]
        letter = api.get(
            f"/v1/organisation/sightings/{first}/takedown-letter", params={"lang": "fr"}
        )
        assert letter.status_code == 200 and letter.headers["content-type"].startswith("text/plain")
        assert "attachment" in letter.headers["content-disposition"]
        assert (
            "Nom du fichier : photo-61.jpg" in letter.text
            or "Nom du fichier: photo-61.jpg" in letter.text
        )
        assert (
            api.get(
                f"/v1/organisation/sightings/{first}/takedown-letter", params={"lang": "xx"}
            ).status_code
            == 422
        )
        state = api.get(f"/v1/organisation/sightings/{second}/state").json()
        assert state["state"] == "false-alarm" and state["reason"] == "not ours"
        assert api.get("/v1/organisation/summary").json()["awaiting_action"] == 0

        bad = api.patch("/v1/organisation/contacts", json={"emails": ["nope"]})
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        private = api.patch(
            "/v1/organisation/contacts", json={"webhook_url": "http://127.0.0.1:9/x"}
        )
        assert private.status_code == 422 and "refused" in private.json()["detail"]
        changed = api.patch(
            "/v1/organisation/contacts",
            json={"emails": ["leader@a.example"], "webhook_url": "https://93.184.215.14/hook"},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["emails"] == ["leader@a.example"]
        assert changed.json()["webhook_secret"]
        gone = api.patch("/v1/organisation/contacts", json={"remove_webhook": True})
        assert gone.status_code == 200 and gone.json()["webhook_url"] is None

        added = api.post(
            "/v1/organisation/albums",
            json={"url": "https://club.example/album", "item": "figure", "item_views": ".v"},
        )
        assert added.status_code == 201, added.text
        assert (
            api.post(
                "/v1/organisation/albums", json={"url": "x", "item": "", "item_views": ""}
            ).status_code
            == 422
        )
        albums = api.get("/v1/organisation/albums").json()["albums"]
        assert [m["url"] for m in albums] == ["https://club.example/album"]
    with _client(server, b) as them:
        assert them.get("/v1/organisation/albums").json()["albums"] == []
        assert them.delete(f"/v1/organisation/albums/{added.json()['name']}").status_code == 404
        assert them.get(f"/v1/organisation/sightings/{other}/state").json()["state"] == "new"
        assert them.get("/v1/organisation/summary").json()["photos"] == 1
    with _client(server, a) as api:
        assert api.delete(f"/v1/organisation/albums/{added.json()['name']}").status_code == 204
        assert api.get("/v1/organisation/albums").json()["albums"] == []
