"""A real HTTP site on 127.0.0.1 for crawler tests: routes are set per test, served by a
threaded http.server started once per module. Images are synthetic (numpy/Pillow drawn)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.matching import StoreMatcher
from childguard.demo.sites import LocalHTTPServer
from childguard.store.db import open_store


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: bool = False  # serve an ETag and answer If-None-Match with 304


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []
        self.times: list[tuple[str, float]] = []  # (path, time.monotonic()) of every request
        self.lock = threading.Lock()
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def page(self, path: str, html: str, **kw: object) -> None:
        self.routes[path] = Route(body=html.encode(), **kw)  # type: ignore[arg-type]

    def image(self, path: str, data: bytes, **kw: object) -> None:
        ctype = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        self.routes[path] = Route(body=data, content_type=ctype, **kw)  # type: ignore[arg-type]

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.hits if p == path)

    def requests_to(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for p, h in self.hits if p == path]

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.hits.clear()
            self.times.clear()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with site.lock:
                site.hits.append((self.path, dict(self.headers.items())))
                site.times.append((self.path, time.monotonic()))
            route = site.routes.get(self.path)
            if route is None:
                route = Route(b"not found", 404, "text/plain")
            if route.delay:
                time.sleep(route.delay)
            tag = '"' + hashlib.sha1(route.body).hexdigest() + '"'
            if route.etag and self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                self.send_header("ETag", tag)
            for k, v in route.headers.items():
                self.send_header(k, v)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(route.body)

    return Handler


@pytest.fixture(scope="module")
def _server() -> Iterator[Site]:
    site = Site()
    server = LocalHTTPServer(("127.0.0.1", 0), _handler(site))
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def site(_server: Site) -> Site:
    _server.reset()
    _server.routes["/robots.txt"] = Route(b"User-agent: *\nAllow: /\n", 200, "text/plain")
    return _server


def synthetic_photo(seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A deterministic, structured (non-flat) picture; distinct seeds give distinct PDQ hashes."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), dtype=np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.005, 0.05), rng.uniform(0.005, 0.05), rng.uniform(0, 6.28)
            img[..., c] += np.sin(xx * fx + yy * fy + ph)
    img = (img - img.min()) / (img.max() - img.min() + 1e-6) * 255
    for _ in range(6):
        x0, y0 = rng.integers(0, w - 40), rng.integers(0, h - 40)
        img[y0 : y0 + 40, x0 : x0 + 40] = rng.integers(0, 255, 3)
    out = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(out, format=fmt, quality=90)
    return out.getvalue()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/crawl.db"


@pytest.fixture
def make_photo() -> object:
    return synthetic_photo


@pytest.fixture
def bank_matcher(db_url: str) -> Callable[..., StoreMatcher]:
    """A factory of the store's real matcher over a protected bank holding the PDQ hashes of
    given images (`{entry label: image bytes}`), in the crawl's store (`db_url` unless the
    test crawls into another)."""

    def make(images: dict[int, bytes], threshold: int = 31, url: str = db_url) -> StoreMatcher:
        with open_store(url) as store:
            create_bank(store, "protected-test", "protected", actor="t", pdq_threshold=threshold)
            records = [
                EntryRecord("pdq", hash_fetched(data).value("pdq") or "", original_id=str(label))
                for label, data in images.items()
            ]
            import_records(store, "protected-test", records, actor="t", organisation="scouts")
        return StoreMatcher(url)

    return make
