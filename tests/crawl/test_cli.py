"""The crawl and sightings commands end to end: a stored watch, a bank in the store, a crawl."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from typer.testing import CliRunner

from childguard.cli import app
from childguard.crawl.hashing import hash_fetched
from childguard.store.db import open_store
from childguard.store.models import Bank, BankEntry


def test_watch_crawl_and_sightings_commands(site: Any, db_url: str, make_photo: Any) -> None:
    protected = make_photo(41)
    site.page("/", '<html><title>Re-posts</title><img src="/r.jpg"><img src="/x.jpg"></html>')
    site.image("/r.jpg", protected)
    site.image("/x.jpg", make_photo(42))
    with open_store(db_url) as store, store.session() as s:
        bank = Bank(name="scouts-protected", kind="protected", owner="scouts")
        s.add(bank)
        s.flush()
        s.add(
            BankEntry(
                bank_id=bank.id,
                signal_type="pdq",
                value=hash_fetched(protected).value("pdq"),
                organisation="scouts",
            )
        )
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["crawl", "watch", "add", "site", "--seed", site.url("/"), "--delay", "0", "--db", db_url],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["crawl", "watch", "add", "bad", "--seed", "ftp://x/", "--db", db_url])
    assert res.exit_code == 2 and "http(s)" in res.output
    res = runner.invoke(app, ["crawl", "watch", "list", "--json", "--db", db_url])
    assert [w["name"] for w in json.loads(res.output)] == ["site"]
    res = runner.invoke(app, ["crawl", "run", "site", "--allow-private", "--json", "--db", db_url])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["new_sightings"] == 1
    res = runner.invoke(
        app, ["sightings", "list", "--format", "json", "--org", "scouts", "--db", db_url]
    )
    rows = json.loads(res.output)
    assert len(rows) == 1 and rows[0]["image_url"] == site.url("/r.jpg")
    assert rows[0]["bank"] == "scouts-protected" and rows[0]["page_title"] == "Re-posts"
    res = runner.invoke(
        app, ["sightings", "list", "--format", "json", "--org", "other", "--db", db_url]
    )
    assert json.loads(res.output) == []
    res = runner.invoke(
        app, ["sightings", "export", "--format", "csv", "--status", "online", "--db", db_url]
    )
    exported = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["image_url"] for r in exported] == [site.url("/r.jpg")]
    res = runner.invoke(app, ["sightings", "show", str(rows[0]["id"]), "--db", db_url])
    assert json.loads(res.output)["status"] == "online"
    res = runner.invoke(app, ["sightings", "list", "--status", "gone", "--db", db_url])
    assert res.exit_code == 2
