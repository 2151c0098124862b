"""The `hotline_*` settings reach the hotline over HTTP: one vote is final when one is
required, the daily viewing cap follows its minutes, a decision's evidence retention follows
its days; the settings are read from the environment and checked."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from childguard.service.config import Settings, SettingsError
from childguard.service.hotline_tasks import (
    dedupe_settings,
    notice_transport,
    retention,
    smtp_settings,
)
from childguard.store import open_store
from childguard.store.base import utcnow
from childguard.store.hotline_models import Item
from hotline.review_items import make_item

from .conftest import live_server

BASELINE = {"age_band": "prepubescent", "severity": "A"}


def test_one_required_vote_is_final_and_the_cap_and_retention_follow_their_settings(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with live_server(
        db,
        tmp_path / "index",
        hotline_votes_required=1,
        hotline_daily_cap_minutes=1,
        hotline_retention_illegal_days=7,
    ) as server:
        item_id = make_item(server.store, 61)
        with closing(server.user_client("analyst")) as analyst:
            taken = analyst.post("/v1/hotline/queue/next", json={}).json()
            assert taken["item"]["id"] == item_id
            assert taken["exposure"]["cap_seconds"] == 60
            vote = analyst.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE})
            assert vote.status_code == 200, vote.text
            assert vote.json()["status"] == "final" and vote.json()["outcome"] == "baseline"
            other = make_item(server.store, 62)
            assert analyst.post("/v1/hotline/queue/next", json={}).json()["item"]["id"] == other
            shown = analyst.post(f"/v1/hotline/items/{other}/reveal", json={"seconds": 60})
            assert shown.status_code == 429, shown.text  # a minute on screen: the cap
            assert analyst.post("/v1/hotline/queue/next", json={}).status_code == 429
        with server.store.session() as s:
            item = s.get(Item, item_id)
            assert item is not None and item.state == "assessed"
            expires = item.evidence_expires_at
        assert expires is not None
        assert abs(expires - (utcnow() + timedelta(days=7))) < timedelta(minutes=5)


def test_two_votes_are_needed_by_default(tmp_path: Path) -> None:
    with live_server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index") as server:
        item_id = make_item(server.store, 63)
        with closing(server.user_client("analyst")) as analyst:
            analyst.post("/v1/hotline/queue/next", json={})
            vote = analyst.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE})
            assert vote.json()["status"] == "recorded"


def test_the_hotline_settings_come_from_the_environment_and_are_checked() -> None:
    settings = Settings.from_env(
        {
            "CHILDGUARD_HOTLINE_VOTES_REQUIRED": "3",
            "CHILDGUARD_HOTLINE_PDQ_THRESHOLD": "20",
            "CHILDGUARD_HOTLINE_VPDQ_PERCENT": "90",
            "CHILDGUARD_HOTLINE_RETENTION_HARVESTED_DAYS": "14",
        }
    )
    assert settings.hotline_votes_required == 3
    dedupe = dedupe_settings(settings)
    assert dedupe.pdq == 20 and dedupe.vpdq.query_percent == 90.0
    assert retention(settings) == {
        "pending": 90,
        "undetermined": 90,
        "baseline": 365,
        "nationally-illegal": 365,
        "harvested": 14,
        "not-illegal": 0,
    }
    with pytest.raises(SettingsError, match=r"CHILDGUARD_HOTLINE_VOTES_REQUIRED: .* 1-10"):
        Settings.from_env({"CHILDGUARD_HOTLINE_VOTES_REQUIRED": "0"})
    with pytest.raises(SettingsError, match="hotline_fetch_attempts 0 is outside 1-50"):
        Settings(hotline_fetch_attempts=0)


def test_the_preview_default_is_a_setting_under_each_analysts_own_choice(tmp_path: Path) -> None:
    from childguard.accounts.users import create_user
    from childguard.hotline import review
    from childguard.service.hotline_tasks import preview_default
    from childguard.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        user = create_user(
            store, "analyst-1", "a long enough password", actor="t", roles=["analyst"]
        )
        assert preview_default(Settings()) == review.PreviewPreferences(8, True)
        default = preview_default(Settings(hotline_preview_blur=5, hotline_preview_greyscale=False))
        assert review.preview_preferences(store, user.id, default) == review.PreviewPreferences(
            5, False
        )
        review.set_preview_preferences(store, user.id, blur=9, greyscale=True)
        assert review.preview_preferences(store, user.id, default) == review.PreviewPreferences(
            9, True
        )
        with pytest.raises(SettingsError, match="hotline_preview_blur 11 is outside 0-10"):
            Settings(hotline_preview_blur=11)
    finally:
        store.close()


def test_notices_and_referrals_share_one_smtp_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHILDGUARD_SMTP_HOST", "CHILDGUARD_SMTP_PORT", "CHILDGUARD_SMTP_FROM"):
        monkeypatch.delenv(name, raising=False)
    plain = Settings(db_url="sqlite://")
    named = Settings(db_url="sqlite://", hotline_notifier_email="notices@hotline.test")
    store = open_store("sqlite://")
    assert smtp_settings(plain) is None and notice_transport(plain, b"k" * 32, store).smtp is None
    monkeypatch.setenv("CHILDGUARD_SMTP_HOST", "mail.hotline.test")
    monkeypatch.setenv("CHILDGUARD_SMTP_PORT", "2525")
    monkeypatch.setenv("CHILDGUARD_SMTP_FROM", "alerts@hotline.test")
    smtp = smtp_settings(plain)
    assert smtp is not None and (smtp.host, smtp.port) == ("mail.hotline.test", 2525)
    assert smtp.sender == "alerts@hotline.test"
    from_notifier = smtp_settings(named)
    assert from_notifier is not None and from_notifier.sender == "notices@hotline.test"
    assert notice_transport(named, b"k" * 32, store).smtp == from_notifier
