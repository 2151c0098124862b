"""The analysts' case pages in real headless Chromium: a route proposed for each assessed
item, its preview only ever blurred, an override with its reason, nothing built before the
analyst's confirmation, a takedown notice drafted and sent only on the analyst's word, and a
referral bundle built, downloaded through the browser (it reads back whole) and recorded as
handed over."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from alerts.alert_servers import SmtpInbox
from alerts.alert_servers import smtp_server as smtp_server
from childguard.hotline import destinations, referrals, routing
from childguard.hotline.bundles import route_ids_of, verify_bundle
from childguard.store import audit
from childguard.store.audit_log import list_events
from hotline.routed_items import BASELINE, NOT_ILLEGAL, analysts, assess

from .conftest import ReviewServer
from .test_dashboard_pages import sign_in


def high_frequency_energy(png: bytes) -> float:
    grey = Image.open(io.BytesIO(png)).convert("L").resize((256, 192))
    pixels = np.asarray(grey, dtype=np.float64)
    return float(np.mean(np.diff(pixels, axis=1) ** 2) + np.mean(np.diff(pixels, axis=0) ** 2))


@pytest.fixture(scope="module")
def cases_server(review_server: ReviewServer) -> Iterator[dict[str, Any]]:
    """The review server's two items decided, one baseline and one not illegal, and the
    home police as a destination."""
    store = review_server.live.store
    police = destinations.create_destination(
        store, name="Federal police", kind="police", country="BE", channel="download", actor="t"
    )
    baseline, clean = sorted(review_server.items)
    voters = analysts(store)
    assess(store, baseline, BASELINE, voters)
    assess(store, clean, NOT_ILLEGAL, voters)
    yield {"baseline": baseline, "clean": clean, "police": police.id}


def test_override_confirm_build_and_download_a_bundle(
    browser: Any,
    review_server: ReviewServer,
    cases_server: dict[str, Any],
    smtp_server: SmtpInbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("CHILDGUARD_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(smtp_server.port))
    live = review_server.live
    page = sign_in(browser, live, "/hotline/cases", "analyst")
    try:
        assert page.url.endswith("/hotline/cases")
        routes = {r.item_id: r for r in routing.list_routes(live.store)}
        clean = routes[cases_server["clean"]]
        assert (routes[cases_server["baseline"]].route, clean.route) == ("police", "closed")
        assert page.locator(f"#case-{clean.id}").is_visible()

        # The preview is blurred, and no query makes it clear (the baseline item's: its
        # evidence is kept, where a not-illegal item's may be purged at any time).
        baseline = routes[cases_server["baseline"]]
        page.goto(f"/hotline/cases/{baseline.id}")
        page.wait_for_function("document.getElementById('preview').complete")
        assert page.evaluate("document.getElementById('preview').naturalWidth") > 0
        blurred = page.request.get(f"/hotline/cases/{baseline.id}/preview.png")
        asked_clear = page.request.get(f"/hotline/cases/{baseline.id}/preview.png?clear=1")
        assert blurred.status == 200 and blurred.headers["content-type"] == "image/png"
        assert asked_clear.body() == blurred.body()
        original = review_server.items[cases_server["baseline"]]
        assert high_frequency_energy(blurred.body()) < 0.05 * high_frequency_energy(original)

        page.goto("/hotline/cases")
        page.click(f"#case-{clean.id} a")
        assert page.inner_text("#proposed-route") == "closed"
        assert "not illegal" in page.inner_text("#route-reason")

        # Nothing leaves before the confirmation: no bundle form, and a post is refused.
        assert page.locator("#referral-form").count() == 0
        csrf = page.get_attribute("#confirm-form input[name=csrf_token]", "value")
        early = page.request.post(
            f"/hotline/cases/{clean.id}/referral",
            form={"csrf_token": csrf, "destination_id": str(cases_server["police"])},
        )
        assert early.status == 409 and "not confirmed" in early.text()
        assert referrals.list_referrals(live.store) == []

        # An override needs a reason; with one it is kept; then the confirmation.
        bare = page.request.post(
            f"/hotline/cases/{clean.id}/override",
            form={"csrf_token": csrf, "route": "police", "reason": " "},
        )
        assert bare.status == 422 and "needs a reason" in bare.text()
        assert routing.get_route(live.store, clean.id).route == "closed"
        page.check("#override-form input[name=route][value=police]")
        page.select_option("#destination-police", str(cases_server["police"]))
        page.fill("#override-reason-input", "the context shows a child: refer it")
        with page.expect_navigation():
            page.click("#override-form button[type=submit]")
        assert page.inner_text("#current-route") == "police"
        assert page.inner_text("#destination") == "Federal police"
        assert page.inner_text("#override-reason") == "the context shows a child: refer it"
        (event,) = list_events(live.store, action="route.override", object_id=clean.id)
        assert (event.details or {})["reason"] == "the context shows a child: refer it"
        with page.expect_navigation():
            page.click("#confirm-form button[type=submit]")
        assert page.inner_text("#confirmed-by").startswith("by user:")
        assert page.locator("#override-form").count() == 0

        # A draft notice to the host, sent only once the analyst confirms it.
        page.fill("#notice-address", "abuse@host.example")
        with page.expect_navigation():
            page.click("#notice-form button[type=submit]")
        notice = page.locator(".notice").first
        assert "abuse@host.example" in notice.inner_text() and "draft" in notice.inner_text()
        assert smtp_server.messages == []
        with page.expect_navigation():
            page.click(".send-notice button[type=submit]")
        assert "open, sent 1 time(s)" in page.locator(".notice").first.inner_text()
        (mail,) = smtp_server.messages
        assert mail["To"] == "abuse@host.example"
        assert clean.url in mail.get_payload()
        assert page.inner_text("#route-state") == "notified"
        # Build the bundle and download it through the browser.
        with page.expect_navigation():
            page.click("#referral-form button[type=submit]")
        (referral,) = referrals.list_referrals(live.store)
        assert page.url.endswith(f"/hotline/cases/{clean.id}?referral={referral.id}")
        with page.expect_download() as download_info:
            page.click(f"#download-{referral.id}")
        saved = tmp_path / "bundle.zip"
        download_info.value.save_as(saved)
        check = verify_bundle(
            saved,
            manifest_sha256=referral.manifest_sha256,
            bundle_sha256=referral.bundle_sha256,
        )
        assert check.ok, check.problems
        assert check.manifest is not None and route_ids_of(check.manifest) == [clean.id]
        assert page.locator("#referral-form").count() == 0  # one bundle per route
        with page.expect_navigation():
            page.click(f"#send-referral-{referral.id} button[type=submit]")
        assert referrals.get_referral(live.store, referral.id).state == "sent"
        sent = routing.get_route(live.store, clean.id)
        assert sent.referral_id == referral.id and sent.referred_at is not None
        assert page.locator(f"#send-referral-{referral.id}").count() == 0

        # However long the audit log grows, the case keeps its referral and notice.
        with live.store.session() as session:
            for n in range(600):
                for action, kind in (("referral.build", "referral"), ("notice.create", "notice")):
                    audit.record(
                        session,
                        actor="t",
                        action=action,
                        object_type=kind,
                        object_id=10_000 + n,
                        details={"routes": [10_000 + n]},
                    )
        page.goto(f"/hotline/cases/{clean.id}")
        assert page.locator(f"#referral-{referral.id}").is_visible()
        assert "abuse@host.example" in page.locator(".notice").first.inner_text()

        # The list confirms the ticked routes at once.
        page.goto("/hotline/cases?confirmed=no")
        assert page.locator(f"#case-{clean.id}").count() == 0
        page.check(f"#case-{baseline.id} input[name=route_id]")
        with page.expect_navigation():
            page.click("#confirm-many button[type=submit]")
        assert page.url.endswith("/hotline/cases?confirmed=yes")
        assert routing.get_route(live.store, baseline.id).confirmed_by == sent.confirmed_by
    finally:
        page.context.close()
