"""The supervisors' routing page against the real server: the home country set, a
destination added (a bad one refused with the reason), taken out of routing and put back,
each change audited; analysts and keys are refused."""

from __future__ import annotations

from contextlib import closing

from sqlalchemy import select

from childguard.hotline import destinations
from childguard.store.models import AuditEvent

from .conftest import LiveServer


def test_a_supervisor_edits_the_routing_in_the_browser(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    with closing(server.user_client("supervisor")) as supervisor:
        page = supervisor.get("/hotline/routing")
        assert page.status_code == 200, page.text
        assert 'name="csrf_token"' in page.text
        home = supervisor.post("/hotline/routing/home-country", data={"country": "nl"})
        assert home.status_code == 303 and home.headers["location"] == "/hotline/routing"
        assert destinations.home_country(server.store, "BE") == "NL"
        added = supervisor.post(
            "/hotline/routing/destinations",
            data={
                "name": "Meldpunt (page)",
                "kind": "hotline",
                "country": "de",
                "channel": "email",
                "address": "reports@meldpunt.example",
                "vics_profile": "",
                "public_key": "",
                "hosts": "",
            },
        )
        assert added.status_code == 303, added.text
        made = [
            d for d in destinations.list_destinations(server.store) if d.name == "Meldpunt (page)"
        ]
        assert len(made) == 1 and made[0].country == "DE" and made[0].vics_profile is None
        shown = supervisor.get("/hotline/routing").text
        assert "Meldpunt (page)" in shown and "reports@meldpunt.example" in shown
        bad = supervisor.post(
            "/hotline/routing/destinations",
            data={
                "name": "x",
                "kind": "platform",
                "channel": "webhook",
                "address": "https://abuse.example/hook",
                "hosts": "",
            },
        )
        assert bad.status_code == 422 and "hosts it covers" in bad.text
        out = supervisor.post(
            f"/hotline/routing/destinations/{made[0].id}/active", data={"active": "no"}
        )
        assert out.status_code == 303
        assert destinations.get_destination(server.store, made[0].id).active is False
        supervisor.post(
            f"/hotline/routing/destinations/{made[0].id}/active", data={"active": "yes"}
        )
        assert destinations.get_destination(server.store, made[0].id).active is True
        platform = supervisor.post(
            "/hotline/routing/destinations",
            data={
                "name": "Pics ToS (page)",
                "kind": "platform",
                "channel": "webhook",
                "address": "https://abuse.example/hook",
                "hosts": "pics.example\n.cdn.example",
            },
        )
        assert platform.status_code == 303
        (tos,) = [d for d in destinations.list_destinations(server.store) if d.kind == "platform"]
        assert tos.hosts == (".cdn.example", "pics.example")
        assert (
            supervisor.post(
                "/hotline/routing/destinations/999999/active", data={"active": "no"}
            ).status_code
            == 404
        )
    with closing(server.user_client("analyst")) as analyst:
        assert analyst.get("/hotline/routing").status_code == 403
    with server.client("supervisor") as key:
        assert key.get("/hotline/routing").status_code == 400  # a page for a person
    with server.store.session() as s:
        actors = s.scalars(
            select(AuditEvent.actor).where(AuditEvent.action.like("destination.%"))
        ).all()
    assert len(actors) >= 4 and all(a.startswith("user:") for a in actors)
