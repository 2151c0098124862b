"""The HMA-compatible routes over HTTP on the real server, on SQLite and PostgreSQL: HMA's
shapes and errors, and a signal added through the API (or by another writer) matchable
within a second."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

import pdq_bits
from childguard.accounts import create_key
from childguard.banks import EntryRecord, add_entries, create_bank
from childguard.service import Settings, create_app
from childguard.service.state import ServiceState
from childguard.signals.pdq import PdqSignal
from sample_media import jpeg_bytes

from .conftest import LiveServer, live_server, running

RNG = random.Random(14)


def rand_hex() -> str:
    return pdq_bits.rand_hex(RNG)


def flip(hex_: str, bits: int) -> str:
    return pdq_bits.flip(hex_, bits, RNG)


def test_health_and_openapi(server: LiveServer) -> None:
    with server.client() as client:
        ready = client.get("/status")
        assert (ready.status_code, ready.text) == (200, "I-AM-ALIVE")
        assert ready.headers["content-type"].startswith("text/plain")
        assert client.get("/status/live").status_code == 200
        spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/m/lookup", "/m/raw_lookup", "/h/hash", "/c/banks"} <= set(spec["paths"])


def test_banks_signals_and_lookups(server: LiveServer) -> None:
    stored = rand_hex()
    near = flip(stored, 5)
    with server.client("curate") as curate, server.client("match") as match:
        created = curate.post("/c/banks", json={"name": "TEST_BANK"})
        assert created.status_code == 201
        assert created.json() == {"matching_enabled_ratio": 1.0, "name": "TEST_BANK"}
        again = curate.post("/c/banks", json={"name": "TEST_BANK"})
        assert (again.status_code, again.json()) == (403, {"message": "Bank already exists"})
        assert curate.post("/c/banks", json={"name": "lower case"}).status_code == 400
        missing = curate.post("/c/banks", json={})
        assert missing.status_code == 422 and missing.json()["message"]
        assert curate.post("/c/banks").status_code == 422
        assert {"matching_enabled_ratio": 1.0, "name": "TEST_BANK"} in curate.get("/c/banks").json()
        assert curate.get("/c/bank/TEST_BANK").json()["name"] == "TEST_BANK"
        assert curate.get("/c/bank/NOPE").status_code == 404

        added = curate.post("/c/bank/TEST_BANK/signal", json={"pdq": stored.upper()})
        started = time.monotonic()
        assert added.status_code == 200
        body = added.json()
        assert body["signals"] == {"pdq": stored} and isinstance(body["id"], int)
        found = match.get("/m/lookup", params={"signal_type": "pdq", "signal": near})
        assert time.monotonic() - started < 1.0
        assert found.status_code == 200
        assert found.json() == {"TEST_BANK": [{"bank_content_id": body["id"], "distance": "5"}]}

        raw = match.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": near})
        assert raw.json() == {"matches": [body["id"]]}
        with_distance = match.get(
            "/m/raw_lookup",
            params={"signal_type": "pdq", "signal": near, "include_distance": "true"},
        )
        assert with_distance.json() == {
            "matches": [{"bank_content_id": body["id"], "distance": "5"}]
        }
        far = match.get("/m/lookup", params={"signal_type": "pdq", "signal": flip(stored, 60)})
        assert far.json() == {}

        bad = match.get("/m/lookup", params={"signal_type": "pdq", "signal": "zz"})
        assert bad.status_code == 400 and "message" in bad.json()
        unknown = match.get("/m/lookup", params={"signal_type": "nope", "signal": stored})
        assert unknown.json() == {"message": "No such SignalType 'nope'"}
        no_signal = match.get("/m/lookup", params={"signal_type": "pdq"})
        assert no_signal.status_code == 422 and "signal" in no_signal.json()["message"]
        no_bank = curate.post("/c/bank/NOPE/signal", json={"pdq": stored})
        assert no_bank.json() == {"message": "bank 'NOPE' not found"}
        assert no_bank.status_code == 404
        assert curate.post("/c/bank/TEST_BANK/signal", json={"pdq": "12"}).status_code == 400

        status = match.get("/m/index/status").json()
        assert status["pdq"]["present"] is True and status["pdq"]["size"] == 1
        assert match.get("/m/index/status", params={"signal_type": "x"}).status_code == 400


def test_a_signal_written_elsewhere_is_matchable_at_the_next_refresh(
    store_url: str, tmp_path: Path
) -> None:
    """Another process (a CLI import, another worker) adds the entry; the server follows at its
    next refresh (every 0.2 s here; within 3 s allows a loaded machine, never refreshing fails)."""
    with live_server(store_url, tmp_path / "index", refresh_seconds=0.2) as server:
        _follows_another_writer(server)


def _follows_another_writer(server: LiveServer) -> None:
    create_bank(server.store, "OTHER_WRITER", "known-abuse", actor="test")
    value = rand_hex()
    with server.client("match") as match:
        params = {"signal_type": "pdq", "signal": value}
        assert match.get("/m/lookup", params=params).json() == {}
        add_entries(server.store, "OTHER_WRITER", [EntryRecord("pdq", value)], actor="test")
        started = time.monotonic()
        while True:
            found = match.get("/m/lookup", params=params).json()
            elapsed = time.monotonic() - started
            if found or elapsed > 3:
                break
            time.sleep(0.02)
    assert "OTHER_WRITER" in found
    assert elapsed < 3.0


def test_compare(server: LiveServer) -> None:
    a = rand_hex()
    with server.client("match") as match:
        same = match.post("/m/compare", json={"pdq": [a, flip(a, 9)]})
        assert same.json() == {"pdq": [True, {"distance": 9}]}
        apart = match.post("/m/compare", json={"pdq": [a, flip(a, 100)]}).json()
        assert apart == {"pdq": [False, {"distance": 100}]}
        assert match.post("/m/compare", json={"pdq": [a]}).status_code == 400
        assert match.post("/m/compare", json=[a]).status_code == 400


def test_hash_and_lookup_uploads(server: LiveServer) -> None:
    photo = jpeg_bytes()
    with server.client("hash") as hasher:
        hashed = hasher.post("/h/hash", files={"photo": ("a.jpg", photo, "image/jpeg")})
        assert hashed.status_code == 200, hashed.text
        signals = hashed.json()
        assert PdqSignal.validate(signals["pdq"]) == signals["pdq"]
        assert set(signals) == {"pdq"}
        both = hasher.post(
            "/h/hash",
            params={"types": "pdq,md5"},
            files={"photo": ("a.jpg", photo, "image/jpeg")},
        )
        assert both.json() == {"pdq": signals["pdq"], "md5": hashlib.md5(photo).hexdigest()}
        assert hasher.post(
            "/h/hash", params={"types": "vpdq"}, files={"photo": ("a.jpg", photo)}
        ).json() == {"message": "signal type 'vpdq' doesn't exist or is disabled"}
        assert hasher.post("/h/hash", files={"file": ("a.jpg", photo)}).status_code == 400
        not_image = hasher.post("/h/hash", files={"photo": ("a.jpg", b"not an image")})
        assert not_image.status_code == 400 and "message" in not_image.json()
        assert hasher.get("/h/hash").json() == {"message": "url is required"}
    with server.client("curate") as curate, server.client("match") as match:
        curate.post("/c/banks", json={"name": "PHOTOS"})
        entry = curate.post("/c/bank/PHOTOS/signal", json={"pdq": signals["pdq"]}).json()
        looked = match.post("/m/lookup", files={"photo": ("b.jpg", photo, "image/jpeg")})
        assert looked.status_code == 200, looked.text
        by_type = looked.json()
        assert by_type == {"pdq": {"PHOTOS": [{"bank_content_id": entry["id"], "distance": "0"}]}}
        one = match.post(
            "/m/lookup", params={"signal_type": "pdq"}, files={"photo": ("b.jpg", photo)}
        )
        assert one.json() == by_type["pdq"]


def test_request_size_limit(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("hash") as hasher:
        big = hasher.post("/h/hash", files={"photo": ("a.jpg", b"\xff" * 300 * 1024)})
    assert big.status_code == 413 and "message" in big.json()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"pdq": ["'
        for _ in range(40):
            yield b"0" * 8192
        yield b'"]}'

    with sqlite_server.client("match") as match:
        chunked = match.post(
            "/m/compare", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert chunked.status_code == 413 and "message" in chunked.json()


def test_anonymous_hma_only_when_allowed(sqlite_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'anon.db'}"
    with live_server(url, tmp_path / "index", allow_anonymous_hma=True) as running:
        with running.client() as anonymous:
            params = {"signal_type": "pdq", "signal": rand_hex()}
            assert anonymous.get("/m/lookup", params=params).status_code == 200
            made = anonymous.post("/c/banks", json={"name": "ANON"})
            assert made.status_code == 201
        with running.client("hash") as wrong:
            assert wrong.get("/m/lookup", params=params).status_code == 403
    with sqlite_server.client() as anonymous:
        assert anonymous.get("/m/lookup", params=params).status_code == 401


def test_bank_update_delete_and_content(server: LiveServer) -> None:
    photo = jpeg_bytes(2)
    value = rand_hex()
    with server.client("curate") as curate, server.client("match") as match:
        curate.post("/c/banks", json={"name": "EDIT_ME"})
        entry = curate.post("/c/bank/EDIT_ME/signal", json={"pdq": value}).json()
        params = {"signal_type": "pdq", "signal": value}
        disabled = curate.put("/c/bank/EDIT_ME", json={"enabled": False})
        assert disabled.json() == {"matching_enabled_ratio": 0.0, "name": "EDIT_ME"}
        assert match.get("/m/lookup", params=params).json() == {}
        renamed = curate.put("/c/bank/EDIT_ME", json={"name": "EDITED", "enabled_ratio": 1})
        assert renamed.json() == {"matching_enabled_ratio": 1.0, "name": "EDITED"}
        assert list(match.get("/m/lookup", params=params).json()) == ["EDITED"]
        assert curate.put("/c/bank/NOPE", json={"enabled": True}).status_code == 404
        assert curate.put("/c/bank/EDITED", json={"name": "bad"}).status_code == 400
        assert curate.put("/c/bank/EDITED", json={"enabled_ratio": 0.5}).status_code == 400

        content = curate.post("/c/bank/EDITED/content", files={"photo": ("p.jpg", photo)})
        assert content.status_code == 200, content.text
        banked = content.json()
        assert set(banked["signals"]) == {"pdq"} and banked["id"] != entry["id"]
        looked = match.post("/m/lookup", files={"photo": ("p.jpg", photo)}).json()
        assert looked["pdq"]["EDITED"][0]["bank_content_id"] == banked["id"]
        assert curate.post("/c/bank/NOPE/content", files={"photo": ("p.jpg", photo)}).json() == {
            "message": "bank 'NOPE' not found"
        }

        gone = curate.delete(f"/c/bank/EDITED/content/{entry['id']}")
        assert gone.json() == {"deleted": 1}
        assert match.get("/m/lookup", params=params).json() == {}
        assert curate.delete(f"/c/bank/EDITED/content/{entry['id']}").json() == {"deleted": 0}

        assert curate.delete("/c/bank/EDITED").json() == {"message": "Done"}
        assert curate.delete("/c/bank/EDITED").json() == {"message": "Done"}
        assert curate.get("/c/bank/EDITED").status_code == 404
        assert match.post("/m/lookup", files={"photo": ("p.jpg", photo)}).json() == {"pdq": {}}


def test_a_bank_of_one_hash_matches_after_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """HMA loses a one-hash PDQ index when it is saved and loaded again; this must not."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    value = rand_hex()
    with live_server(url, tmp_path / "index") as first, first.client("curate") as curate:
        curate.post("/c/banks", json={"name": "ONE"})
        curate.post("/c/bank/ONE/signal", json={"pdq": value})
    saved = json.loads(next((tmp_path / "index").glob("pdq-*/manifest.json")).read_text())
    assert saved["size"] == 1
    with live_server(url, tmp_path / "index") as second, second.client("match") as match:
        found = match.get("/m/lookup", params={"signal_type": "pdq", "signal": flip(value, 3)})
        assert list(found.json()) == ["ONE"]


def test_lookups_side_by_side_with_writes(sqlite_server: LiveServer) -> None:
    """Queries from several threads while signals are added: every answer is whole, and every
    signal added is found by the next lookup."""
    from concurrent.futures import ThreadPoolExecutor

    values = [rand_hex() for _ in range(12)]
    with (
        sqlite_server.client("curate") as curate,
        sqlite_server.client("match") as match,
        ThreadPoolExecutor(4) as pool,
    ):
        curate.post("/c/banks", json={"name": "BUSY"})

        def query(i: int) -> int:
            params = {"signal_type": "pdq", "signal": values[i % len(values)]}
            return match.get("/m/lookup", params=params).status_code

        running = [pool.submit(query, i) for i in range(48)]
        for value in values:
            entry = curate.post("/c/bank/BUSY/signal", json={"pdq": value}).json()
            found = match.get("/m/lookup", params={"signal_type": "pdq", "signal": value})
            assert found.json()["BUSY"] == [{"bank_content_id": entry["id"], "distance": "0"}]
        assert {f.result() for f in running} == {200}


def test_not_ready_until_the_index_is_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Before the matcher has loaded: /status is 503 INDEX-NOT-LOADED, lookups 503, and the
    index status says not present; /status/live answers."""

    class Loading(ServiceState):
        def start(self) -> None:  # the matcher never finishes loading
            pass

    url = f"sqlite:///{tmp_path / 'loading.db'}"
    state = Loading(Settings(db_url=url, index_dir=tmp_path / "index"))
    _, key = create_key(state.store, "match", actor="test")
    with running(create_app(state=state)) as base:
        status = httpx.get(f"{base}/status")
        assert (status.status_code, status.text) == (503, "INDEX-NOT-LOADED")
        assert httpx.get(f"{base}/status/live").status_code == 200
        headers = {"Authorization": f"Bearer {key}"}
        params = {"signal_type": "pdq", "signal": rand_hex()}
        lookup = httpx.get(f"{base}/m/lookup", params=params, headers=headers)
        assert (lookup.status_code, lookup.json()) == (503, {"message": "index not yet ready"})
        index = httpx.get(f"{base}/m/index/status", headers=headers).json()
        assert index["pdq"] == {"built_to": -1, "present": False, "size": 0}


def test_each_bank_keeps_its_own_threshold(sqlite_server: LiveServer) -> None:
    """HMA matches every bank at PDQ distance 31; here each bank's own threshold applies."""
    value = rand_hex()
    create_bank(sqlite_server.store, "STRICT_8", "known-abuse", pdq_threshold=8, actor="test")
    create_bank(sqlite_server.store, "LOOSE_40", "known-abuse", pdq_threshold=40, actor="test")
    with sqlite_server.client("curate") as curate, sqlite_server.client("match") as match:
        for bank in ("STRICT_8", "LOOSE_40"):
            curate.post(f"/c/bank/{bank}/signal", json={"pdq": value})
        near = match.get("/m/lookup", params={"signal_type": "pdq", "signal": flip(value, 6)})
        assert set(near.json()) == {"STRICT_8", "LOOSE_40"}
        mid = match.get("/m/lookup", params={"signal_type": "pdq", "signal": flip(value, 35)})
        assert list(mid.json()) == ["LOOSE_40"]
        assert mid.json()["LOOSE_40"][0]["distance"] == "35"


def test_get_and_update_content(server: LiveServer) -> None:
    """HMA's `BankContentConfig` over GET and PUT; disabling stops the content matching at
    once on this server, and `disable_until_ts` 1 enables it again."""
    value = rand_hex()
    params = {"signal_type": "pdq", "signal": flip(value, 4)}
    with server.client("curate") as curate, server.client("match") as match:
        curate.post("/c/banks", json={"name": "CONTENT"})
        curate.post("/c/banks", json={"name": "ELSEWHERE"})
        entry = curate.post("/c/bank/CONTENT/signal", json={"pdq": value}).json()
        url = f"/c/bank/CONTENT/content/{entry['id']}"
        config = {
            "id": entry["id"],
            "disable_until_ts": 1,
            "collab_metadata": {"api": []},
            "original_media_uri": None,
            "bank": {"matching_enabled_ratio": 1.0, "name": "CONTENT"},
        }
        assert curate.get(url).json() == config
        with_signals = curate.get(url, params={"include_signals": "true"}).json()
        assert with_signals == {**config, "signals": {"pdq": value}}
        assert curate.get(f"/c/bank/ELSEWHERE/content/{entry['id']}").json() == {
            "message": f"content '{entry['id']}' not found"
        }
        assert curate.get("/c/bank/NOPE/content/1").status_code == 404
        assert curate.get(f"/c/bank/CONTENT/content/{entry['id'] + 99}").status_code == 404

        disabled = curate.put(url, json={"disable_until_ts": 0})
        assert disabled.status_code == 200, disabled.text
        assert disabled.json() == {**config, "disable_until_ts": 0}
        assert curate.get(url).json()["disable_until_ts"] == 0
        assert match.get("/m/lookup", params=params).json() == {}
        assert match.get("/m/raw_lookup", params=params).json() == {"matches": []}

        later = int(time.time()) + 3600
        assert curate.put(url, json={"disable_until_ts": later}).json()["disable_until_ts"] == later
        assert match.get("/m/lookup", params=params).json() == {}
        assert curate.put(url, json={"disable_until_ts": 1}).json() == config
        assert list(match.get("/m/lookup", params=params).json()) == ["CONTENT"]

        for bad in (-1, "soon", int(time.time()) + 6 * 365 * 24 * 3600):
            refused = curate.put(url, json={"disable_until_ts": bad})
            assert refused.status_code == 400 and refused.json()["message"], bad
        assert curate.put(url, json=[0]).status_code == 400
        assert curate.put(url).status_code == 422
        assert curate.put("/c/bank/NOPE/content/1", json={"disable_until_ts": 0}).json() == {
            "message": "bank 'NOPE' not found"
        }
        assert curate.put(f"{url}9", json={"disable_until_ts": 0}).status_code == 404
        assert curate.get(url).json() == config  # refused updates changed nothing


def test_disabled_content_stops_matching_on_every_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two servers on one store, as two workers: content disabled through one stops matching
    on the other at its next refresh, and matches again once enabled. The bound leaves room for
    a loaded machine: a refresh every 0.2 s, seen within 3 s, where never refreshing fails."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    value = rand_hex()
    params = {"signal_type": "pdq", "signal": value}
    with (
        live_server(url, tmp_path / "index", refresh_seconds=0.2) as one,
        live_server(url, tmp_path / "index", refresh_seconds=0.2) as two,
        one.client("curate") as curate,
    ):
        match_two = httpx.Client(
            base_url=two.url, headers={"Authorization": f"Bearer {two.keys['match']}"}
        )
        curate.post("/c/banks", json={"name": "SHARED"})
        entry = curate.post("/c/bank/SHARED/signal", json={"pdq": value}).json()

        def seen_on_two(expected: bool) -> float:
            started = time.monotonic()
            while (
                list(match_two.get("/m/lookup", params=params).json()) == ["SHARED"]
            ) != expected:
                assert time.monotonic() - started < 3, f"worker two still says {not expected}"
                time.sleep(0.02)
            return time.monotonic() - started

        with match_two:
            seen_on_two(True)
            content = f"/c/bank/SHARED/content/{entry['id']}"
            assert curate.put(content, json={"disable_until_ts": 0}).status_code == 200
            seen_on_two(False)
            assert curate.put(content, json={"disable_until_ts": 1}).status_code == 200
            seen_on_two(True)
