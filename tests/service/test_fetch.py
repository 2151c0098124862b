"""Media by URL (`/h/hash?url=`, `/m/lookup?url=`, `/c/bank/<name>/content?url=`): fetched
under the crawler's SSRF policy, from a real HTTP site on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from childguard.netguard.fetch import FetchRefused, fetch
from local_http import serving

from .conftest import LiveServer, live_server
from .test_hma_api import jpeg_bytes

PHOTO = jpeg_bytes(3)


class _Site(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {
        "/photo.jpg": (200, {"Content-Type": "image/jpeg"}, PHOTO),
        "/page": (200, {"Content-Type": "text/html"}, b"<html></html>"),
        "/moved": (302, {"Location": "/photo.jpg"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/big": (200, {"Content-Type": "image/jpeg"}, b"\xff" * 400_000),
    }

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(_Site) as url:
        yield url


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("fetch")
    url = f"sqlite:///{base / 'store.db'}"
    with live_server(
        url, base / "index", allow_private_fetch=True, max_request_bytes=256 * 1024
    ) as running:
        yield running


def test_private_addresses_and_other_schemes_are_refused(
    sqlite_server: LiveServer, site: str
) -> None:
    with sqlite_server.client("hash") as hasher:
        local = hasher.get("/h/hash", params={"url": f"{site}/photo.jpg"})
        assert local.status_code == 400 and "loopback" in local.json()["message"]
        metadata = hasher.get("/h/hash", params={"url": "http://169.254.169.254/latest"})
        assert "metadata" in metadata.json()["message"]
        named = hasher.get("/h/hash", params={"url": "http://localhost:1/x.jpg"})
        assert "local name" in named.json()["message"]
        scheme = hasher.get("/h/hash", params={"url": "file:///etc/passwd"})
        assert scheme.status_code == 400 and "scheme" in scheme.json()["message"]
    with pytest.raises(FetchRefused, match="scheme"):
        fetch("ftp://example.org/a.jpg", max_bytes=10, allow_private=True)


def test_hash_lookup_and_bank_by_url(open_server: LiveServer, site: str) -> None:
    with open_server.client("hash") as hasher:
        uploaded = hasher.post("/h/hash", files={"photo": ("p.jpg", PHOTO)}).json()
        by_url = hasher.get("/h/hash", params={"url": f"{site}/photo.jpg"})
        assert by_url.status_code == 200, by_url.text
        assert by_url.json() == uploaded
        assert hasher.get("/h/hash", params={"url": f"{site}/moved"}).json() == uploaded
        page = hasher.get("/h/hash", params={"url": f"{site}/page"})
        assert page.status_code == 400 and "unsupported url ContentType" in page.json()["message"]
        forced = hasher.get("/h/hash", params={"url": f"{site}/page", "content_type": "photo"})
        assert forced.status_code == 400 and "cannot hash" in forced.json()["message"]
        assert (
            "redirected more than"
            in hasher.get("/h/hash", params={"url": f"{site}/loop"}).json()["message"]
        )
        assert "over" in hasher.get("/h/hash", params={"url": f"{site}/big"}).json()["message"]
        assert "404" in hasher.get("/h/hash", params={"url": f"{site}/none"}).json()["message"]
    with open_server.client("curate") as curate, open_server.client("match") as match:
        curate.post("/c/banks", json={"name": "BY_URL"})
        banked = curate.post("/c/bank/BY_URL/content", params={"url": f"{site}/photo.jpg"})
        assert banked.status_code == 200, banked.text
        entry = banked.json()
        assert entry["signals"] == uploaded
        hit = [{"bank_content_id": entry["id"], "distance": "0"}]
        found = match.get("/m/lookup", params={"url": f"{site}/photo.jpg"})
        assert found.json() == {"pdq": {"BY_URL": hit}}
        only = match.get("/m/lookup", params={"url": f"{site}/photo.jpg", "signal_type": "pdq"})
        assert only.json() == {"BY_URL": hit}
        assert curate.post("/c/bank/BY_URL/content").status_code == 400


def test_lookup_needs_a_signal_or_a_url(sqlite_server: LiveServer, tmp_path: Path) -> None:
    with sqlite_server.client("match") as match:
        answer = match.get("/m/lookup", params={"signal_type": "pdq"})
    assert answer.status_code == 422 and "signal" in answer.json()["message"]
