"""The host link's pages in the access log of a `childguard serve` subprocess: no client
address or user agent, and the route template, never the token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from childguard.service.access_log import is_private

from .test_ops_serve import serve


def test_the_host_pages_are_private_prefixes_and_nothing_else_is() -> None:
    assert is_private("/host") and is_private("/host/notice/abc/removed")
    assert not is_private("/hostile") and not is_private("/v1/hotline/notices")


def test_no_address_or_user_agent_of_a_host_is_logged(tmp_path: Path) -> None:
    agent = "HostAbuseDesk/2.0 (privacy-probe)"
    token = "T" * 43
    with serve(tmp_path) as served:
        with httpx.Client(base_url=served.url, headers={"User-Agent": agent}) as host:
            assert host.get(f"/host/notice/{token}").status_code == 404
            removed = host.post(f"/host/notice/{token}/removed", data={"comment": "gone"})
            assert removed.status_code in (403, 404)
            # Another route still logs its caller, so the check below can fail.
            assert host.get("/status").status_code == 200
        deadline = time.monotonic() + 5
        while True:
            lines = [e for e in served.log_lines() if e.get("event") == "http.request"]
            if any(e.get("user_agent") == agent for e in lines):
                break
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        text = served.stderr.read_text()
    hosts = [e for e in lines if (e.get("route") or e.get("path") or "").startswith("/host")]
    assert [e.get("route") for e in hosts] == [
        "/host/notice/{token}",
        "/host/notice/{token}/removed",
    ]
    for entry in hosts:
        assert "client" not in entry and "user_agent" not in entry, entry
    health = next(e for e in lines if e.get("user_agent") == agent)
    assert health["route"] == "/status" and health["client"] == "127.0.0.1"
    assert text.count(agent) == 1 and token not in text
