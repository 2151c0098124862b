"""A real HTTP site on 127.0.0.1 for the hotline's tests (routes set per test), and images."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from PIL import Image

from childguard.demo.sites import LocalHTTPServer
from childguard.hotline.crypto import derive_key
from childguard.hotline.processing import ProcessingSettings
from childguard.hotline.trace import HostTracer
from sample_media import jpeg_bytes


@dataclass
class Route:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(self, path: str, *images: str) -> None:
        body = "".join(f'<img src="{i}">' for i in images)
        self.routes[path] = Route(f"<html><body>{body}</body></html>".encode())

    def image(self, path: str, data: bytes, **kw: object) -> None:
        self.routes[path] = Route(data, "image/jpeg", **kw)  # type: ignore[arg-type]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            site.hits.append(self.path)
            route = site.routes.get(self.path) or Route(b"not found", "text/plain", 404)
            deadline = time.monotonic() + route.delay
            while time.monotonic() < deadline and site.routes.get(self.path) is route:
                time.sleep(0.05)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for k, v in route.headers.items():
                self.send_header(k, v)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(route.body)

    return Handler


@contextlib.contextmanager
def serving() -> Iterator[Site]:
    site = Site()
    server = LocalHTTPServer(("127.0.0.1", 0), _handler(site))
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def near_duplicate(data: bytes) -> bytes:
    """The same picture re-encoded smaller at a lower quality (different bytes, near PDQ)."""
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((300, 225))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


SECRET = b"s" * 32


def settings_for(evidence_dir: Path, **kw: object) -> ProcessingSettings:
    tracer = HostTracer(resolve=lambda host: ["127.0.0.1"], reverse=lambda ip: "localhost")
    return ProcessingSettings(
        evidence_dir=evidence_dir,
        evidence_key=derive_key(SECRET, "hotline-evidence"),
        allow_private=True,
        timeout=10.0,
        tracer=tracer,
        **kw,  # type: ignore[arg-type]
    )


__all__ = ["Route", "Site", "jpeg_bytes", "near_duplicate", "serving", "settings_for"]
