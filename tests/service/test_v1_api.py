"""childguard's own /v1 API over HTTP on the real server, on SQLite and PostgreSQL: hashing,
matching (by hash, batch and upload), banks with cursor pagination, entries with an
Idempotency-Key, and RFC 9457 problem details for every error."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import httpx
from sqlalchemy import select

import pdq_bits
from childguard.accounts import create_key
from childguard.service import Settings, create_app
from childguard.service.auth import RoleRule, api_routes, rule_of
from childguard.service.state import ServiceState
from childguard.store import AuditEvent
from childguard.store.base import utcnow
from local_http import serving
from sample_media import jpeg_bytes

from .conftest import LiveServer, live_server, running

RNG = random.Random(1401)
PROBLEM = "application/problem+json"


def rand_hex() -> str:
    return pdq_bits.rand_hex(RNG)


def flip(hex_: str, bits: int) -> str:
    return pdq_bits.flip(hex_, bits, RNG)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem detail of an error response, checked for RFC 9457's members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


def test_hash_upload_and_its_errors(server: LiveServer) -> None:
    photo = jpeg_bytes(3)
    with server.client("hash") as client:
        answer = client.post("/v1/hash", files={"file": ("a.jpg", photo, "image/jpeg")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["pdq"]) == 64 and body["md5"] and body["sha256"]
        assert (body["width"], body["height"], body["format"], body["error"]) == (
            320,
            240,
            "JPEG",
            None,
        )
        broken = client.post("/v1/hash", files={"file": ("b.jpg", photo[:60], "image/jpeg")})
        detail = problem(broken, 422)
        assert detail["type"].endswith("undecodable-content")
        assert detail["signals"]["md5"] and detail["signals"]["pdq"] is None
        problem(client.post("/v1/hash"), 422)
        problem(client.post("/v1/hash", files={"file": ("e.jpg", b"", "image/jpeg")}), 422)
    with server.client() as anonymous:
        refused = problem(anonymous.post("/v1/hash", files={"file": ("a.jpg", photo)}), 401)
        assert refused["type"].endswith("unauthorized")
        assert anonymous.get("/v1/banks").headers["www-authenticate"] == "Bearer"
    with server.client("match") as other:
        assert problem(other.post("/v1/hash"), 403)["type"].endswith("forbidden")


def test_banks_crud_and_cursor_pagination(server: LiveServer) -> None:
    with server.client("curate") as client:
        names = [f"bank-{i}" for i in (4, 1, 3, 0, 2)]
        for name in names:
            created = client.post("/v1/banks", json={"name": name, "pdq_threshold": 20})
            assert created.status_code == 201, created.text
            assert created.headers["location"] == f"/v1/banks/{name}"
        assert created.json()["entries"] == 0 and created.json()["pdq_threshold"] == 20

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/banks", params=params)
            assert page.status_code == 200, page.text
            seen += [b["name"] for b in page.json()["banks"]]
            pages += 1
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (sorted(names), 3)
        assert problem(client.get("/v1/banks", params={"cursor": "nonsense!"}), 400)
        assert problem(client.get("/v1/banks", params={"limit": 0}), 422)

        assert problem(client.post("/v1/banks", json={"name": "bank-1"}), 409)["type"].endswith(
            "bank-exists"
        )
        problem(client.post("/v1/banks", json={"name": "x", "kind": "nope"}), 422)
        problem(client.post("/v1/banks", json={"name": "x", "pdq_threshold": 999}), 422)
        problem(client.post("/v1/banks", json={"kind": "allow"}), 422)
        malformed = client.post(
            "/v1/banks", content=b"{not json", headers={"content-type": "application/json"}
        )
        problem(malformed, 400)
        video = client.post(
            "/v1/banks", json={"name": "videos", "thresholds": {"vpdq": "80,50"}}
        ).json()
        assert video["thresholds"]["vpdq"]
        problem(client.post("/v1/banks", json={"name": "v2", "thresholds": {"md5": 3}}), 422)

        shown = client.get("/v1/banks/bank-1").json()
        assert (shown["name"], shown["kind"], shown["enabled"]) == ("bank-1", "known-abuse", True)
        assert problem(client.get("/v1/banks/none"), 404)["type"].endswith("bank-not-found")
        patched = client.patch("/v1/banks/bank-1", json={"pdq_threshold": 10, "enabled": False})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["pdq_threshold"], patched.json()["enabled"]) == (10, False)
        renamed = client.patch("/v1/banks/bank-1", json={"name": "bank-9"}).json()
        assert renamed["name"] == "bank-9" and renamed["pdq_threshold"] == 10
        problem(client.patch("/v1/banks/bank-9", json={"name": "bank-2"}), 409)
        problem(client.patch("/v1/banks/bank-9", json={"enabled": None}), 422)
        problem(client.patch("/v1/banks/bank-9", json={"colour": "red"}), 422)
        problem(client.patch("/v1/banks/none", json={"enabled": True}), 404)

        deleted = client.delete("/v1/banks/bank-9")
        assert deleted.json() == {"deleted": "bank-9", "entries": 0}
        problem(client.delete("/v1/banks/bank-9"), 404)


def test_entries_idempotency_and_match(server: LiveServer) -> None:
    stored = rand_hex()
    near = flip(stored, 6)
    entry = {
        "signal_type": "pdq",
        "value": stored.upper(),
        "classification_scheme": "uk",
        "classification_label": "A",
        "original_id": "case-7",
        "source": "hotline",
    }
    with server.client("curate") as curate, server.client("match") as match:
        assert curate.post("/v1/banks", json={"name": "known"}).status_code == 201
        url = "/v1/banks/known/entries"
        key = {"Idempotency-Key": "req-1"}
        started = time.monotonic()
        first = curate.post(url, json={"entries": [entry]}, headers=key)
        assert first.status_code == 200, first.text
        found = match.get("/v1/match", params={"signal_type": "pdq", "value": near})
        assert time.monotonic() - started < 1.0
        assert found.status_code == 200, found.text
        result = found.json()
        assert result["query"] == {"signal_type": "pdq", "value": near}
        assert result["signals"]["pdq"] == near
        (hit,) = result["matches"]
        assert (hit["distance"], hit["bank_name"], hit["variant"]) == (6, "known", "original")
        assert (hit["classification"], hit["original_id"], hit["source"]) == (
            "uk:A",
            "case-7",
            "hotline",
        )
        assert hit["value"] == stored and hit["threshold"] == 31
        assert first.json() == {"bank": "known", "read": 1, "added": 1, "already_present": 0}

        again = curate.post(url, json={"entries": [entry]}, headers=key)
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        other = dict(entry, value=rand_hex())
        conflict = curate.post(url, json={"entries": [other]}, headers=key)
        assert problem(conflict, 409)["type"].endswith("idempotency-conflict")
        assert curate.get("/v1/banks/known").json()["entries"] == 1
        plain = curate.post(url, json={"entries": [entry, other]})
        assert plain.json()["added"] == 1 and plain.json()["already_present"] == 1
        assert problem(
            curate.post(url, json={"entries": [entry]}, headers={"Idempotency-Key": "k" * 300}), 400
        )
        bad = curate.post(url, json={"entries": [entry, dict(entry, value="zz")]}, headers=key)
        assert problem(bad, 409)  # the key is taken by another body; checked before adding
        bad = curate.post(url, json={"entries": [entry, dict(entry, value="zz")]})
        assert problem(bad, 422)["errors"][0]["loc"] == ["entries", "1"]
        problem(curate.post("/v1/banks/none/entries", json={"entries": [entry]}), 404)
        retry = curate.post(
            "/v1/banks/none/entries", json={"entries": [entry]}, headers={"Idempotency-Key": "r2"}
        )
        problem(retry, 404)  # a failed request does not keep its key
        assert curate.post("/v1/banks", json={"name": "none"}).status_code == 201
        retry = curate.post(
            "/v1/banks/none/entries", json={"entries": [entry]}, headers={"Idempotency-Key": "r2"}
        )
        assert retry.status_code == 200 and retry.json()["added"] == 1

        hashes = [
            {"signal_type": "pdq", "value": near},
            {"signal_type": "pdq", "value": rand_hex()},
        ]
        batch = match.post("/v1/match", json={"hashes": hashes})
        assert batch.status_code == 200, batch.text
        first_result, second_result = batch.json()["results"]
        assert {m["bank_name"] for m in first_result["matches"]} == {"known", "none"}
        assert second_result["matches"] == [] and second_result["suppressed"] == []
        too_many = [{"signal_type": "pdq", "value": near}] * 1001
        assert problem(match.post("/v1/match", json={"hashes": too_many}), 413)["limit"] == 1000
        invalid = match.post("/v1/match", json={"hashes": [{"signal_type": "pdq", "value": "x"}]})
        assert "hashes[0]" in problem(invalid, 422)["detail"]
        problem(
            match.post("/v1/match", json={"hashes": [{"signal_type": "nope", "value": "x"}]}), 422
        )
        problem(match.post("/v1/match", json={"hash": []}), 422)
        problem(match.post("/v1/match"), 422)
        problem(
            match.post("/v1/match", content=b"[", headers={"content-type": "application/json"}),
            400,
        )
        problem(match.get("/v1/match", params={"signal_type": "pdq"}), 422)

        # An allow bank holding the hash silences the known banks' matches.
        assert curate.post("/v1/banks", json={"name": "fp", "kind": "allow"}).status_code == 201
        curate.post(
            "/v1/banks/fp/entries", json={"entries": [{"signal_type": "pdq", "value": near}]}
        )
        silenced = match.get("/v1/match", params={"signal_type": "pdq", "value": near}).json()
        assert silenced["matches"] == [] and {m["bank_name"] for m in silenced["suppressed"]} == {
            "known",
            "none",
        }
        assert silenced["allowed_by"][0]["bank_name"] == "fp"
        assert curate.delete("/v1/banks/fp").status_code == 200

        removed = curate.request(
            "DELETE", url, json={"entries": [{"signal_type": "pdq", "value": stored}]}
        )
        assert removed.status_code == 200, removed.text
        assert removed.json()["removed"] == 1
        after = match.get("/v1/match", params={"signal_type": "pdq", "value": near}).json()
        assert {m["bank_name"] for m in after["matches"]} == {"none"}
        problem(
            curate.request("DELETE", url, json={"entries": [{"signal_type": "pdq", "value": "x"}]}),
            422,
        )


def test_entries_disable_enable_and_idempotent_remove(server: LiveServer) -> None:
    stored, kept = rand_hex(), rand_hex()
    near = flip(stored, 4)
    url = "/v1/banks/known/entries"
    pair = {"signal_type": "pdq", "value": stored}

    def banks_matching(client: httpx.Client, value: str) -> set[str]:
        answer = client.get("/v1/match", params={"signal_type": "pdq", "value": value})
        assert answer.status_code == 200, answer.text
        return {m["bank_name"] for m in answer.json()["matches"]}

    with server.client("curate") as curate, server.client("match") as match:
        assert curate.post("/v1/banks", json={"name": "known"}).status_code == 201
        entries = [pair, {"signal_type": "pdq", "value": kept}]
        assert curate.post(url, json={"entries": entries}).json()["added"] == 2
        assert banks_matching(match, near) == {"known"}

        off = curate.patch(
            url, json={"entries": [pair, {"signal_type": "pdq", "value": rand_hex()}]}
        )
        assert off.status_code == 200, off.text
        assert (off.json()["requested"], off.json()["changed"], off.json()["disabled"]) == (
            2,
            1,
            True,
        )
        assert banks_matching(match, near) == set()
        assert banks_matching(match, kept) == {"known"}
        assert curate.get("/v1/banks/known").json()["entries"] == 2  # disabled, not removed

        on = curate.patch(url, json={"entries": [pair], "disabled": False})
        assert on.json()["changed"] == 1
        assert banks_matching(match, near) == {"known"}

        later = (utcnow() + timedelta(days=1)).isoformat()
        assert curate.patch(url, json={"entries": [pair], "until": later}).json()["until"]
        assert banks_matching(match, near) == set()
        past = (utcnow() - timedelta(days=1)).isoformat()
        assert (
            "past"
            in problem(curate.patch(url, json={"entries": [pair], "until": past}), 422)["detail"]
        )
        bad = {"entries": [{"signal_type": "pdq", "value": "x"}]}
        problem(curate.patch(url, json=bad), 422)
        problem(curate.patch("/v1/banks/none/entries", json={"entries": [pair]}), 404)

        key = {"Idempotency-Key": "remove-1"}
        removed = curate.request("DELETE", url, json={"entries": [pair]}, headers=key)
        assert removed.json()["removed"] == 1
        again = curate.request("DELETE", url, json={"entries": [pair]}, headers=key)
        assert again.json() == removed.json() and again.headers["idempotent-replayed"] == "true"
        with server.store.session() as session:
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("bank.%_entries"))
            ).all()
        assert actions.count("bank.disable_entries") == 2
        assert actions.count("bank.enable_entries") == 1
        assert actions.count("bank.delete_entries") == 1


def test_match_by_upload(server: LiveServer) -> None:
    photo = jpeg_bytes(5)
    with server.client("hash") as hasher, server.client("curate") as curate:
        signals = hasher.post("/v1/hash", files={"file": ("p.jpg", photo)}).json()
        assert curate.post("/v1/banks", json={"name": "photos"}).status_code == 201
        entries = [{"signal_type": "md5", "value": signals["md5"]}]
        entries.append({"signal_type": "pdq", "value": signals["pdq"]})
        assert (
            curate.post("/v1/banks/photos/entries", json={"entries": entries}).json()["added"] == 2
        )
    with server.client("match") as match:
        answer = match.post("/v1/match", files={"file": ("p.jpg", photo, "image/jpeg")})
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert result["signals"]["pdq"] == signals["pdq"] and result["query"] is None
        assert {m["signal_type"] for m in result["matches"]} == {"md5", "pdq"}
        broken = match.post("/v1/match", files={"file": ("b.jpg", photo[:50])})
        problem(broken, 422)
        problem(match.post("/v1/match", files={"other": ("b.jpg", photo)}), 422)


def test_hash_and_match_by_url(tmp_path: Path, sqlite_server: LiveServer) -> None:
    photo = jpeg_bytes(7)
    handler = type("Site", (_Site,), {"routes": {"/p.jpg": photo, "/page": b"<html></html>"}})
    db = f"sqlite:///{tmp_path / 'url.db'}"
    with serving(handler) as site:
        with sqlite_server.client("hash") as guarded:
            refused = guarded.post("/v1/hash", params={"url": f"{site}/p.jpg"})
            assert "loopback" in problem(refused, 422)["detail"]
        with live_server(db, tmp_path / "index", allow_private_fetch=True) as running:
            with running.client("hash") as hasher:
                hashed = hasher.post("/v1/hash", params={"url": f"{site}/p.jpg"})
                assert hashed.status_code == 200, hashed.text
                assert hashed.json()["path"] == f"{site}/p.jpg" and hashed.json()["pdq"]
                problem(hasher.post("/v1/hash", params={"url": f"{site}/page"}), 422)
                problem(hasher.post("/v1/hash", params={"url": f"{site}/none"}), 422)
                both = hasher.post("/v1/hash", params={"url": site}, files={"file": ("a", photo)})
                problem(both, 422)

                urls = [f"{site}/p.jpg", f"{site}/none", f"{site}/p.jpg"]
                batch = hasher.post("/v1/hash/batch", json={"urls": urls})
                assert batch.status_code == 200, batch.text
                got = batch.json()
                assert (got["hashed"], got["failed"]) == (2, 1)
                first, missing, again = got["results"]
                assert first["signals"]["pdq"] == again["signals"]["pdq"] == hashed.json()["pdq"]
                assert missing["source"] == urls[1] and missing["error"]["status"] == 422
                other = jpeg_bytes(8)
                uploads = [
                    ("file", ("a.jpg", photo, "image/jpeg")),
                    ("file", ("b.jpg", other, "image/jpeg")),
                    ("file", ("c.jpg", b"not an image", "image/jpeg")),
                ]
                files = hasher.post("/v1/hash/batch", files=uploads).json()
                assert [r["source"] for r in files["results"]] == ["a.jpg", "b.jpg", "c.jpg"]
                a, b, c = files["results"]
                assert a["signals"]["pdq"] == hashed.json()["pdq"] != b["signals"]["pdq"]
                assert c["error"]["type"].endswith("undecodable-content")
                assert (files["hashed"], files["failed"]) == (2, 1)
                too_many = {"urls": [f"{site}/p.jpg"] * 101}
                assert problem(hasher.post("/v1/hash/batch", json=too_many), 413)["limit"] == 100
                problem(hasher.post("/v1/hash/batch", json={"urls": []}), 422)
                problem(hasher.post("/v1/hash/batch", json={"files": ["x"]}), 422)
            with running.client("curate") as curate:
                curate.post("/v1/banks", json={"name": "b"})
                entry = {"signal_type": "pdq", "value": hashed.json()["pdq"]}
                curate.post("/v1/banks/b/entries", json={"entries": [entry]})
            with running.client("match") as match:
                found = match.post("/v1/match", params={"url": f"{site}/p.jpg"})
                assert found.status_code == 200, found.text
                assert found.json()["results"][0]["matches"][0]["bank_name"] == "b"


class _Site(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header(
            "Content-Type", "image/jpeg" if body and body[:2] == b"\xff\xd8" else "text/html"
        )
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


def test_concurrent_requests_with_one_key_add_once(server: LiveServer) -> None:
    entries = [{"signal_type": "pdq", "value": rand_hex()} for _ in range(200)]
    with server.client("curate") as curate:
        assert curate.post("/v1/banks", json={"name": "race"}).status_code == 201

    def send(_: int) -> httpx.Response:
        with server.client("curate") as client:
            return client.post(
                "/v1/banks/race/entries",
                json={"entries": entries},
                headers={"Idempotency-Key": "same"},
            )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    done = [a for a in answers if a.status_code == 200]
    busy = [a for a in answers if a.status_code != 200]
    assert done and all(a.json() == done[0].json() for a in done)
    assert done[0].json()["added"] == 200
    assert all(problem(a, 409)["type"].endswith("idempotency-in-progress") for a in busy)
    with server.client("curate") as curate:
        assert curate.get("/v1/banks/race").json()["entries"] == 200


def test_matching_is_503_until_the_index_is_loaded(tmp_path: Path) -> None:
    class Loading(ServiceState):
        def start(self) -> None:  # the matcher never finishes loading
            pass

    state = Loading(Settings(db_url=f"sqlite:///{tmp_path / 'l.db'}", index_dir=tmp_path / "i"))
    _, key = create_key(state.store, "match", actor="test")
    with running(create_app(state=state)) as base:
        headers = {"Authorization": f"Bearer {key}"}
        params = {"signal_type": "pdq", "value": rand_hex()}
        one = httpx.get(f"{base}/v1/match", params=params, headers=headers)
        assert problem(one, 503)["type"].endswith("index-not-ready")
        batch = httpx.post(f"{base}/v1/match", json={"hashes": [params]}, headers=headers)
        problem(batch, 503)
        invalid = httpx.get(f"{base}/v1/match", params={**params, "value": "x"}, headers=headers)
        assert not problem(invalid, 422)["detail"].startswith("hashes[")


def test_openapi_lists_v1_with_problem_details(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as client:
        spec = client.get("/openapi.json").json()
    v1 = {p: ops for p, ops in spec["paths"].items() if p.startswith("/v1/")}
    assert set(v1) >= {
        "/v1/hash",
        "/v1/match",
        "/v1/banks",
        "/v1/banks/{name}",
        "/v1/banks/{name}/entries",
    }
    owned = {
        (method.lower(), route.path)
        for route in api_routes(create_app(Settings(db_url="sqlite://")).routes)
        if isinstance(rule_of(route), RoleRule)
        for method in route.methods
    }
    checked = 0
    for path, ops in v1.items():
        for method, op in ops.items():
            if (method, path) not in owned:
                continue
            checked += 1
            for status in ("401", "403", "422"):
                assert PROBLEM in op["responses"][status]["content"], (method, path, status)
    assert checked >= 8
    body = spec["paths"]["/v1/match"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
