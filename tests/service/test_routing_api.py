"""Routing over HTTP against the real server: a supervisor configures destinations and the
home country (audited); analysts see the proposed routes, override one with a reason and
confirm them; the configuration is refused to analysts and the routes to supervisors."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from childguard.accounts import create_user
from childguard.hotline.assessments import record_vote
from childguard.store.models import AuditEvent
from hotline.review_items import make_item

from .conftest import LiveServer

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
