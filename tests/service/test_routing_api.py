"""Routing over HTTP against the real server: a supervisor configures destinations and the
home country (audited); analysts see the proposed routes, override one with a reason and
confirm them; the configuration is refused to analysts and the routes to supervisors."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import select

from childguard.accounts import create_user
from childguard.alerts.webhook import SIGNATURE_HEADER
from childguard.hotline import destinations, notices
from childguard.hotline.assessments import record_vote
from childguard.store.models import AuditEvent
from hotline.review_items import make_item

from .conftest import LiveServer, live_server

BASELINE = {"age_band": "prepubescent", "severity": "A"}


def _assessed(server: LiveServer, seed: int) -> int:
    item_id = make_item(server.store, seed)
    for _ in range(2):
        user = create_user(
            server.store,
            f"a-{secrets.token_hex(4)}",
            "a long test password",
            actor="t",
            roles=["analyst"],
        )
        record_vote(server.store, item_id, user.id, BASELINE)
    return item_id


def test_supervisors_configure_and_analysts_route(server: LiveServer) -> None:
    with server.client("supervisor") as supervisor, server.client("analyst") as analyst:
        made = supervisor.post(
            "/v1/hotline/destinations",
            json={"name": "Police NL", "kind": "police", "country": "nl", "channel": "download"},
        )
        assert made.status_code == 201, made.text
        assert made.json()["country"] == "NL"
        bad = supervisor.post(
            "/v1/hotline/destinations",
            json={
                "name": "x",
                "kind": "hotline",
                "country": "FR",
                "channel": "email",
                "address": "not an address",
            },
        )
        assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-destination")
        assert "email" in bad.json()["detail"]
        home = supervisor.put("/v1/hotline/home-country", json={"country": "nl"})
        assert home.json() == {"home_country": "NL"}
        listed = supervisor.get("/v1/hotline/destinations").json()
        assert listed["home_country"] == "NL" and [d["name"] for d in listed["items"]] == [
            "Police NL"
        ]
        renamed = supervisor.patch(
            f"/v1/hotline/destinations/{made.json()['id']}", json={"name": "Politie"}
        )
        assert renamed.json()["name"] == "Politie"
        assert analyst.get("/v1/hotline/destinations").status_code == 403
        assert supervisor.get("/v1/hotline/routes").status_code == 403

        item_id = _assessed(server, 61)
        routes = analyst.get("/v1/hotline/routes", params={"item_id": item_id}).json()["items"]
        assert len(routes) == 1
        route = routes[0]
        assert (route["route"], route["destination_name"], route["state"]) == (
            "police",
            "Politie",
            "assessed",
        )
        assert "unknown" in route["reason"]  # no host trace for the test URL
        assert route["confirmed"] is False
        empty = analyst.post(
            f"/v1/hotline/routes/{route['id']}/override", json={"route": "closed", "reason": ""}
        )
        assert empty.status_code == 422
        closed = analyst.post(
            f"/v1/hotline/routes/{route['id']}/override",
            json={"route": "closed", "reason": "a duplicate of a case police already hold"},
        ).json()
        assert (closed["proposed_route"], closed["route"]) == ("police", "closed")
        done = analyst.post("/v1/hotline/routes/confirm", json={"route_ids": [route["id"]]})
        assert done.status_code == 200, done.text
        assert done.json()["items"][0]["state"] == "closed"
        late = analyst.post(
            f"/v1/hotline/routes/{route['id']}/override",
            json={"route": "police", "reason": "changed my mind"},
        )
        assert late.status_code == 409
        assert analyst.get("/v1/hotline/routes/999999").status_code == 404
    with server.store.session() as s:
        actions = set(s.scalars(select(AuditEvent.action)).all())
    assert {"destination.create", "destination.update", "routing.home-country"} <= actions
    assert {"route.propose", "route.override", "route.confirm"} <= actions


def test_ids_past_the_id_column_are_refused_not_a_server_error(sqlite_server: LiveServer) -> None:
    huge = 2**63
    with (
        sqlite_server.client("supervisor") as supervisor,
        sqlite_server.client("analyst") as analyst,
    ):
        for answer in (
            supervisor.get(f"/v1/hotline/destinations/{huge}"),
            supervisor.patch(f"/v1/hotline/destinations/{huge}", json={"active": False}),
            supervisor.patch("/v1/hotline/destinations/0", json={"active": False}),
            analyst.get(f"/v1/hotline/routes/{huge}"),
            analyst.get("/v1/hotline/routes", params={"item_id": huge}),
            analyst.post(
                f"/v1/hotline/routes/{huge}/override", json={"route": "closed", "reason": "x"}
            ),
            analyst.post(
                "/v1/hotline/routes/1/override",
                json={"route": "police", "reason": "x", "destination_id": huge},
            ),
            analyst.post("/v1/hotline/routes/confirm", json={"route_ids": [huge]}),
        ):
            assert answer.status_code == 422, (answer.request.url, answer.text)
        largest = 2**63 - 1
        missing = supervisor.patch(f"/v1/hotline/destinations/{largest}", json={"active": False})
        assert missing.status_code == 404 and missing.json()["type"].endswith(
            "destination-not-found"
        )
        assert analyst.get(f"/v1/hotline/routes/{largest}").status_code == 404


def test_supervisors_reveal_the_signing_secrets_receivers_check(tmp_path: Path) -> None:
    with live_server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index") as server:
        key = (tmp_path / "secret.key").read_bytes()
        with server.client("supervisor") as supervisor, server.client("analyst") as analyst:
            hook = supervisor.post(
                "/v1/hotline/destinations",
                json={
                    "name": "Partner hotline FR",
                    "kind": "hotline",
                    "country": "FR",
                    "channel": "webhook",
                    "address": "https://hotline.example/referrals",
                },
            ).json()
            mail = supervisor.post(
                "/v1/hotline/destinations",
                json={
                    "name": "Police NL",
                    "kind": "police",
                    "country": "NL",
                    "channel": "email",
                    "address": "unit@police.example",
                },
            ).json()
            shown = supervisor.post(f"/v1/hotline/destinations/{hook['id']}/secret")
            assert shown.status_code == 200, shown.text
            answer = shown.json()
            assert answer["secret"] == destinations.destination_secret(key, hook["id"])
            assert answer["header"] == SIGNATURE_HEADER and "HMAC-SHA256" in answer["how"]
            unsigned = supervisor.post(f"/v1/hotline/destinations/{mail['id']}/secret")
            assert unsigned.status_code == 409
            assert unsigned.json()["type"].endswith("nothing-signed")
            assert supervisor.post("/v1/hotline/destinations/999999/secret").status_code == 404
            assert analyst.post(f"/v1/hotline/destinations/{hook['id']}/secret").status_code == 403

            address = "https://host.example/notices"
            notice_hook = supervisor.post(
                "/v1/hotline/notices/webhook-secret", json={"address": address}
            )
            assert notice_hook.status_code == 200, notice_hook.text
            assert notice_hook.json()["secret"] == notices.webhook_secret(key, address)
            assert notice_hook.json()["destination_id"] is None
            assert notice_hook.json()["header"] == SIGNATURE_HEADER
            bad = supervisor.post("/v1/hotline/notices/webhook-secret", json={"address": "nope"})
            assert bad.status_code == 422
            refused = analyst.post("/v1/hotline/notices/webhook-secret", json={"address": address})
            assert refused.status_code == 403
        with server.store.session() as s:
            reveals = s.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("%secret_reveal"))
            ).all()
        assert sorted(reveals) == ["destination.secret_reveal", "notice.webhook_secret_reveal"]
