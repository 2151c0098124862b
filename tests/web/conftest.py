"""The real service with hotline items that have evidence, and real headless Chromium.

The items come from a real report: two benign synthetic pictures (sharp stripes and squares,
so that a blur shows) on a page served on 127.0.0.1, filed with `POST /v1/reports` and
processed by the service's own workers. The browser is Debian's `chromium` driven by
Playwright through `executable_path` (never Playwright's own download); without it the tests
are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from childguard.accounts import create_user
from childguard.store.hotline_models import Item
from hotline.hotline_site import serving
from service.conftest import LiveServer, live_server
from service.conftest import _cheap_password_hashes as _cheap_password_hashes

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def sharp_picture(seed: int) -> bytes:
    """A benign 320x240 PNG of coloured stripes and squares with hard edges."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    picture = np.kron(tiles, np.ones((20, 20, 1), dtype=np.uint8))
    picture[::4, :, :] = 255 - picture[::4, :, :]
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format="PNG")
    return out.getvalue()


@dataclass
class ReviewServer:
    """The service, its items (with evidence) and the pictures they were made of."""

    live: LiveServer
    items: dict[int, bytes]

    @property
    def url(self) -> str:
        return self.live.url

    def analyst(self, *roles: str) -> tuple[int, str, str]:
        """A new user holding `roles` (default analyst): id, username, password."""
        username = f"analyst-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        user = create_user(
            self.live.store, username, password, actor="test", roles=roles or ("analyst",)
        )
        return user.id, username, password


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewServer]:
    base = tmp_path_factory.mktemp("web")
    pictures = [sharp_picture(1), sharp_picture(2)]
    with (
        serving() as site,
        live_server(
            f"sqlite:///{base / 'store.db'}",
            base / "index",
            allow_private_fetch=True,
            job_poll_seconds=0.2,
        ) as live,
    ):
        site.routes["/a.png"] = _png_route(pictures[0])
        site.routes["/b.png"] = _png_route(pictures[1])
        site.page("/page.html", "/a.png", "/b.png")
        with live.client("reporter") as api:
            made = api.post("/v1/reports", json={"urls": [site.url("/page.html")]})
            assert made.status_code == 201, made.text
        deadline = time.monotonic() + 30
        while True:
            with live.store.session() as s:
                rows = s.scalars(select(Item).where(Item.evidence_path.is_not(None))).all()
                found = {row.id: Path(row.evidence_path or "") for row in rows}
                sizes = {row.id: row.byte_size for row in rows}
            if len(found) == 2:
                break
            assert time.monotonic() < deadline, "the report's two pictures became no items"
            time.sleep(0.1)
        by_size = {len(p): p for p in pictures}
        yield ReviewServer(live, {i: by_size[sizes[i] or 0] for i in found})


def _png_route(data: bytes) -> Any:
    from hotline.hotline_site import Route

    return Route(data, "image/png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make installs it: apt-get install chromium)")
        pytest.skip("chromium is not installed; `make venv` installs it (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(
            "playwright is not installed; it is in the dev extras (pip install -e '.[dev]')"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()
