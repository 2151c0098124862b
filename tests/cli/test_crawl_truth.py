"""`crawl run` tells the truth: a crawl whose every request the SSRF policy refused fails
(exit 1) and says how a test allows local addresses; `crawl watch remove` asks first; a
sighting names the protected photo it matched (file name and title), not only its entry id."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from childguard.cli import app
from childguard.protect.organisations import create_organisation
from childguard.protect.register import photo_signals, register_photos
from childguard.store import open_store
from childguard.store.base import utcnow
from childguard.store.crawl_models import Sighting
from childguard.store.protect_models import ProtectedPhoto
from sample_media import jpeg_bytes


def _add_watch(db: str, name: str, seed: str) -> None:
    res = CliRunner().invoke(
        app, ["crawl", "watch", "add", name, "--seed", seed, "--delay", "0", "--db", db]
    )
    assert res.exit_code == 0, res.output


def test_a_crawl_the_ssrf_policy_refused_entirely_fails_and_says_how_to_allow(
    store_url: str,
) -> None:
    _add_watch(store_url, "local", "http://127.0.0.1:9/")
    res = CliRunner().invoke(app, ["crawl", "run", "local", "--db", store_url])
    assert res.exit_code == 1, res.output
    assert "refused by the SSRF policy" in res.output
    assert "--allow-private" in res.output
    res = CliRunner().invoke(app, ["crawl", "run", "local", "--json", "--db", store_url])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data[0]["pages"] == 0 and data[0]["ssrf_refused"] >= 1
    assert "SSRF" in data[0]["problem"]


def test_watch_remove_asks_unless_yes(store_url: str) -> None:
    _add_watch(store_url, "w", "http://share.example/")
    res = CliRunner().invoke(app, ["crawl", "watch", "remove", "w", "--db", store_url], input="n\n")
    assert res.exit_code != 0
    listed = CliRunner().invoke(app, ["crawl", "watch", "list", "--json", "--db", store_url])
    assert [w["name"] for w in json.loads(listed.output)] == ["w"]
    res = CliRunner().invoke(app, ["crawl", "watch", "remove", "w", "--yes", "--db", store_url])
    assert res.exit_code == 0, res.output
    listed = CliRunner().invoke(app, ["crawl", "watch", "list", "--json", "--db", store_url])
    assert json.loads(listed.output) == []


def test_sightings_name_the_matched_photo(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = tmp_path / "album"
    album.mkdir()
    (album / "camp.jpg").write_bytes(jpeg_bytes(7))
    now = utcnow()
    with open_store(store_url) as store, store.session() as s:
        org = create_organisation(s, "Scouts")
        register_photos(s, album, org, titles={"camp.jpg": "Campfire"})
        photo = s.scalar(select(ProtectedPhoto))
        assert photo is not None
        entry = next(e for role, e in photo_signals(s, photo) if role == "pdq")
        s.add(
            Sighting(
                site="share.example",
                page_url="http://share.example/gallery",
                image_url="http://share.example/img/1.jpg",
                entry_id=entry.id,
                match_key=f"entry:{entry.id}",
                bank="protected:Scouts",
                bank_kind="protected",
                organisation="Scouts",
                signal_type="pdq",
                distance=3,
                first_seen=now,
                last_seen=now,
                status_changed_at=now,
            )
        )
    runner = CliRunner()
    res = runner.invoke(app, ["sightings", "list", "--format", "json", "--db", store_url])
    rows = json.loads(res.stdout)
    assert [(r["photo_file_name"], r["photo_title"]) for r in rows] == [("camp.jpg", "Campfire")]
    res = runner.invoke(app, ["sightings", "export", "--format", "csv", "--db", store_url])
    exported = list(csv.DictReader(io.StringIO(res.stdout)))
    assert exported[0]["photo_file_name"] == "camp.jpg"
    assert exported[0]["photo_title"] == "Campfire"
    res = runner.invoke(app, ["sightings", "list", "--db", store_url], env={"COLUMNS": "250"})
    assert "camp.jpg (Campfire)" in res.output
    res = runner.invoke(app, ["sightings", "show", str(rows[0]["id"]), "--db", store_url])
    assert json.loads(res.stdout)["photo_title"] == "Campfire"
