"""The referral routes on the real server (SQLite and PostgreSQL): nothing is built before an
analyst confirms; a built bundle is downloaded and read back with every hash checked; it is
sent to a real SMTP server, acknowledged, and exported in the NCMEC shape."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from childguard.hotline import ncmec, routing
from childguard.hotline.bundles import verify_bundle
from childguard.store.models import AuditEvent
from hotline.hotline_site import serving
from hotline.referral_fixtures import (
    BASELINE,
    HOME,
    INFANT_C,
    cheap_password_hashes,
    police,
    report_and_assess,
    smtp_inbox,
)

from .conftest import LiveServer

__all__ = ["cheap_password_hashes"]


def test_a_referral_is_built_downloaded_sent_and_acknowledged(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server.store
    with serving() as site:
        reported = report_and_assess(
            store, site, tmp_path / "evidence", [71, 72], [BASELINE, INFANT_C]
        )
    destination = police(store, channel="email", address="unit@police.test")
    routing.propose_routes(store, default_home=HOME)
    route_ids = [r.id for i in reported.item_ids for r in routing.list_routes(store, item_id=i)]
    body = {"route_ids": route_ids, "destination_id": destination}
    with server.client("analyst") as client, smtp_inbox() as inbox:
        refused = client.post("/v1/hotline/referrals", json=body)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/route-not-confirmed")
        assert client.get("/v1/hotline/referrals").json()["referrals"] == []

        routing.confirm(store, route_ids, actor="user:5", check_after=timedelta(hours=6))
        built = client.post("/v1/hotline/referrals", json=body)
        assert built.status_code == 201, built.text
        referral = built.json()
        assert referral["state"] == "built" and referral["route_ids"] == route_ids
        assert referral["reference"].startswith("CG-R-") and "bundle_path" not in referral
        rid = referral["id"]
        listed = client.get("/v1/hotline/referrals", params={"state": "built"}).json()
        assert [r["id"] for r in listed["referrals"]] == [rid] and listed["next_cursor"] is None
        assert (
            client.get(f"/v1/hotline/referrals/{rid}").json()["reference"] == referral["reference"]
        )
        assert client.get("/v1/hotline/referrals/999999").status_code == 404

        zipped = client.get(f"/v1/hotline/referrals/{rid}/bundle")
        assert zipped.status_code == 200
        assert zipped.headers["content-type"] == "application/zip"
        disposition = zipped.headers["content-disposition"]
        assert (
            disposition.startswith("attachment") and f"{referral['reference']}.zip" in disposition
        )
        assert hashlib.sha256(zipped.content).hexdigest() == referral["bundle_sha256"]
        copy = tmp_path / "downloaded.zip"
        copy.write_bytes(zipped.content)
        found = verify_bundle(copy, manifest_sha256=referral["manifest_sha256"])
        assert found.ok, found.problems
        assert found.manifest is not None
        assert [i["item_id"] for i in found.manifest["items"]] == reported.item_ids
        assert client.get(f"/v1/hotline/referrals/{rid}/check").json()["ok"] is True

        monkeypatch.setenv("CHILDGUARD_SMTP_HOST", inbox.host)
        monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(inbox.port))
        sent = client.post(f"/v1/hotline/referrals/{rid}/send", json={})
        assert sent.status_code == 200, sent.text
        assert sent.json()["state"] == "sent" and sent.json()["sent_by"].startswith("key:")
        (message,) = inbox.messages
        (attachment,) = [p for p in message.walk() if p.get_filename()]
        assert attachment.get_payload(decode=True) == zipped.content
        again = client.post(f"/v1/hotline/referrals/{rid}/send", json={})
        assert again.status_code == 409 and len(inbox.messages) == 1
        assert {r.state for r in routing.list_routes(store, ids=route_ids)} == {"referred"}

        ack = client.post(f"/v1/hotline/referrals/{rid}/acknowledge", json={"external_ref": "PD-1"})
        assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
        assert ack.json()["external_ref"] == "PD-1"
        empty = client.post(f"/v1/hotline/referrals/{rid}/acknowledge", json={"external_ref": ""})
        assert empty.status_code == 422

        xml = client.get(f"/v1/hotline/items/{reported.item_ids[0]}/ncmec.xml")
        assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
        assert ncmec.check_export(xml.content) == []
        per_referral = client.get(f"/v1/hotline/referrals/{rid}/ncmec.xml")
        assert per_referral.status_code == 200
        root = etree.fromstring(per_referral.content)
        assert [f.findtext("industryClassification") for f in root.findall("fileDetails")] == [
            "A1",
            "A2",
        ]
        assert client.get("/v1/hotline/items/999999/ncmec.xml").status_code == 404
    with store.session() as s:
        downloads = s.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.action == "referral.download", AuditEvent.object_id == str(rid)
            )
        ).all()
    assert len(downloads) == 1 and downloads[0].startswith("key:")
