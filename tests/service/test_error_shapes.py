"""Every error under /v1 is an RFC 9457 problem detail, FastAPI's own included (unknown path,
wrong method, body too large, invalid fields, no key or another role's); the HMA routes and
other paths keep `{"message": ...}`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from .conftest import LiveServer

PROBLEM = "application/problem+json"


def _problem(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM), answer.headers
    body = answer.json()
    assert isinstance(body, dict)
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status and body["detail"] == body["message"]
    return body


def _message(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) >= {"message"} and "type" not in body
    return body


def test_v1_errors_are_problem_details(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as anonymous:
        unknown = _problem(anonymous.get("/v1/no/such/route"), 404)
        assert unknown["type"].endswith("/not-found")  # type: ignore[union-attr]
        _problem(anonymous.get("/v1"), 404)
        no_key = _problem(anonymous.get("/v1/banks"), 401)
        assert no_key["type"].endswith("/unauthorized")  # type: ignore[union-attr]
    with sqlite_server.client("hash") as wrong:
        forbidden = _problem(wrong.get("/v1/banks"), 403)
        assert "curate" in str(forbidden["detail"])
    with sqlite_server.client("curate") as curate:
        method = curate.put("/v1/banks")
        body = _problem(method, 405)
        assert body["type"].endswith("/method-not-allowed")  # type: ignore[union-attr]
        assert "GET" in method.headers["allow"]
        invalid = _problem(curate.post("/v1/banks", json={"kind": "known-abuse"}), 422)
        assert invalid["errors"] and "name" in str(invalid["detail"])
        _problem(curate.get("/v1/banks", params={"limit": "many"}), 422)
        _problem(
            curate.post("/v1/banks", content=b"{", headers={"Content-Type": "application/json"}),
            400,
        )
    with sqlite_server.client("hash") as hasher:
        big = hasher.post("/v1/hash", files={"file": ("a.jpg", b"\xff" * 300 * 1024)})
        too_large = _problem(big, 413)
        assert too_large["type"].endswith("/too-large")  # type: ignore[union-attr]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"hashes": [{"signal_type": "pdq", "value": "'
        for _ in range(40):
            yield b"0" * 8192
        yield b'"}]}'

    with sqlite_server.client("match") as match:
        streamed = match.post(
            "/v1/match", content=chunks(), headers={"Content-Type": "application/json"}
        )
        _problem(streamed, 413)


def test_other_paths_keep_hma_messages(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as anonymous:
        assert _message(anonymous.get("/no/such/route"), 404) == {"message": "Not Found"}
        assert _message(anonymous.get("/v1x"), 404) == {"message": "Not Found"}
        _message(anonymous.get("/m/lookup"), 401)
        _message(anonymous.delete("/status"), 405)
    with sqlite_server.client("match") as match:
        _message(match.delete("/m/lookup"), 405)
        _message(match.get("/m/raw_lookup"), 422)
        _message(match.post("/m/compare", content=b"x" * 300 * 1024), 413)
    with sqlite_server.client("hash") as wrong:
        _message(wrong.get("/m/index/status"), 403)
