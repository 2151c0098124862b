"""`crawl run` tells the truth: a crawl whose every request the SSRF policy refused fails
(exit 1) and says how a test allows local addresses; `crawl watch remove` asks first."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from childguard.cli import app


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
