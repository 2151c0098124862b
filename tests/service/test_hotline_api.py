"""The review over HTTP against the real server: signed-in analysts take locked items, vote
and agree (labels in every scheme, hashes in the hotline's bank and matchable) or disagree
(a supervisor decides); reveals are audited; the exposure cap holds; a false positive goes to
the allow bank and silences the match; keys are refused where a person is needed."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

import httpx
from sqlalchemy import update

from childguard.hotline.assessments import ALLOW_BANK, HOTLINE_BANK
from childguard.matcher import Matcher
from childguard.pipeline import hash_bytes
from childguard.store.hotline_models import Item
from hotline.review_items import make_item
from sample_media import jpeg_bytes

from .conftest import LiveServer

BASELINE = {"age_band": "prepubescent", "severity": "A"}
PUBESCENT = {"age_band": "pubescent", "severity": "A"}


def _clear_queue(server: LiveServer) -> None:
    """Earlier tests' items (a module-wide server) out of the queue."""
    with server.store.session() as s:
        s.execute(update(Item).where(Item.state == "new").values(state="assessed"))


def _take(client: httpx.Client, **body: object) -> dict[str, object] | None:
    answer = client.post("/v1/hotline/queue/next", json=body)
    assert answer.status_code == 200, answer.text
    item: dict[str, object] | None = answer.json()["item"]
    return item


def test_two_analysts_agree_and_the_hashes_become_matchable(server: LiveServer) -> None:
    item_id = make_item(server.store, 41)
    sha256 = hash_bytes(jpeg_bytes(41)).value("sha256")
    with (
        closing(server.user_client("analyst")) as first,
        closing(server.user_client("analyst")) as second,
        server.client("match") as matcher,
    ):
        taken = _take(first)
        assert taken is not None and taken["id"] == item_id
        assert taken["places"][0]["url"] == "http://site.test/41.jpg"  # type: ignore[index]
        assert taken["matches"] == [] and taken["assessments"] == []
        assert "sha256" in taken["signals"]  # type: ignore[operator]
        assert _take(second) is None  # locked to the first analyst
        assert first.post(f"/v1/hotline/items/{item_id}/release").json()["released"]
        assert _take(second) is not None
        assert second.post(f"/v1/hotline/items/{item_id}/release").json()["released"]
        assert _take(first) is not None
        vote = first.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE})
        assert vote.status_code == 200, vote.text
        assert vote.json()["status"] == "recorded"
        again = first.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE})
        assert again.status_code == 409 and again.json()["type"].endswith("already-voted")
        assert _take(first) is None  # never an item one voted on
        taken = _take(second)
        assert taken is not None and len(taken["assessments"]) == 1  # type: ignore[arg-type]
        final = second.post(
            f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE, "note": "agree"}
        ).json()
        assert final["status"] == "final" and final["outcome"] == "baseline"
        schemes = {(lb["scheme"], lb["profile"]): lb["label"] for lb in final["labels"]}
        assert schemes == {
            ("inhope", "default"): "baseline",
            ("uk", "default"): "A",
            ("ncmec", "industry"): "A1",
            ("vics", "US"): "1",
            ("vics", "UK"): "1",
        }
        found = matcher.get("/v1/match", params={"signal_type": "sha256", "value": sha256})
        assert [m["bank_name"] for m in found.json()["matches"]] == [HOTLINE_BANK]
        assert found.json()["matches"][0]["classification_scheme"] == "uk"


def test_a_disagreement_goes_to_a_supervisor(sqlite_server: LiveServer) -> None:
    _clear_queue(sqlite_server)
    item_id = make_item(sqlite_server.store, 42)
    with (
        closing(sqlite_server.user_client("analyst")) as first,
        closing(sqlite_server.user_client("analyst")) as second,
        closing(sqlite_server.user_client("supervisor")) as boss,
    ):
        first.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": BASELINE})
        split = second.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": PUBESCENT})
        assert split.json()["status"] == "supervisor"
        waiting = boss.get("/v1/hotline/disagreements").json()["items"]
        assert [w["item_id"] for w in waiting] == [item_id]
        assert len(waiting[0]["votes"]) == 2
        decided = boss.post(
            f"/v1/hotline/items/{item_id}/decision",
            json={"facts": PUBESCENT, "note": "the age band decides it"},
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["outcome"] == "nationally-illegal"
        assert boss.get("/v1/hotline/disagreements").json()["items"] == []
        bad = first.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": {"age": 1}})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(
            "application/problem+json"
        )


def test_reveals_are_audited_locks_expire_and_the_cap_holds(sqlite_server: LiveServer) -> None:
    _clear_queue(sqlite_server)
    item_id = make_item(sqlite_server.store, 43)
    with (
        closing(sqlite_server.user_client("analyst")) as first,
        closing(sqlite_server.user_client("analyst")) as second,
        sqlite_server.client("admin") as admin,
    ):
        early = first.post(f"/v1/hotline/items/{item_id}/reveal", json={"reason": "x"})
        assert early.status_code == 409
        assert _take(first, lock_seconds=1) is not None
        user_id = first.get("/v1/me").json()["user"]["id"]
        shown = first.post(
            f"/v1/hotline/items/{item_id}/reveal", json={"reason": "check the age band"}
        )
        assert shown.status_code == 200, shown.text
        assert shown.json()["exposure"]["reveals"] == 1
        events = admin.get("/v1/audit", params={"action": "hotline.reveal"}).json()["events"]
        assert [(e["actor"], e["object_id"]) for e in events][:1] == [
            (f"user:{user_id}", str(item_id))
        ]
        assert events[0]["details"]["reason"] == "check the age band"
        assert _take(second) is None
        time.sleep(1.1)
        assert _take(second) is not None  # the first analyst's lock expired
        for _ in range(2):  # two hours on screen: the default daily cap
            second.post(f"/v1/hotline/items/{item_id}/reveal", json={"seconds": 3600})
        capped = second.post(f"/v1/hotline/items/{item_id}/reveal")
        assert capped.status_code == 429 and capped.json()["type"].endswith("exposure-cap")
        assert second.post("/v1/hotline/queue/next", json={}).status_code == 429


def test_a_false_positive_goes_to_the_allow_bank_and_silences_the_match(
    sqlite_server: LiveServer, tmp_path: Path
) -> None:
    _clear_queue(sqlite_server)
    store = sqlite_server.store
    record = hash_bytes(jpeg_bytes(44))
    with sqlite_server.client("curate") as curator:  # through the API: the matcher follows
        made = curator.post("/v1/banks", json={"name": "PARTNER_LIST", "kind": "known-abuse"})
        assert made.status_code == 201, made.text
        added = curator.post(
            "/v1/banks/PARTNER_LIST/entries",
            json={"entries": [{"signal_type": "sha256", "value": record.value("sha256")}]},
        )
        assert added.status_code == 200, added.text
    matches = Matcher(store, index_base=tmp_path).match(record).matches
    item_id = make_item(store, 44, matches=matches)
    query = {"signal_type": "sha256", "value": record.value("sha256")}
    with (
        closing(sqlite_server.user_client("analyst")) as analyst,
        sqlite_server.client("match") as matcher,
    ):
        taken = _take(analyst)
        assert taken is not None and taken["id"] == item_id and taken["priority"] == 0
        key = f"entry:{taken['matches'][0]['entry_id']}"  # type: ignore[index]
        assert matcher.get("/v1/match", params=query).json()["matches"]
        marked = analyst.post(
            f"/v1/hotline/items/{item_id}/false-positive",
            json={"match": key, "reason": "a benign lookalike"},
        )
        assert marked.status_code == 200, marked.text
        assert marked.json()["bank"] == ALLOW_BANK
        found = matcher.get("/v1/match", params=query).json()
        assert found["matches"] == [] and found["suppressed"]


def test_keys_are_refused_where_a_person_is_needed(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("analyst") as key:
        refused = key.post("/v1/hotline/queue/next", json={})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "the review queue is for signed-in analysts"
        assert key.post("/v1/hotline/items/1/release").status_code == 403
        schemes = key.get("/v1/hotline/schemes").json()
        assert {s["scheme"] for s in schemes["schemes"]} == {"inhope", "uk", "ncmec", "vics"}
    with sqlite_server.client("supervisor") as key:
        assert key.get("/v1/hotline/disagreements").status_code == 200
