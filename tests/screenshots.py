"""Where the browser tests write their screenshots: a temporary folder of the run by default,
so a test run leaves the checkout as it was; the folder `CHILDGUARD_SCREENSHOTS` names when it
is set (`make screenshots` sets it to docs/img, the screenshots the docs show). A relative
folder is taken from the checkout's root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS_ENV = "CHILDGUARD_SCREENSHOTS"
ROOT = Path(__file__).resolve().parents[1]


def screenshot_dir(default: Path) -> Path:
    """The folder `CHILDGUARD_SCREENSHOTS` names (relative to the checkout), else `default`;
    made if missing."""
    chosen = os.environ.get(SCREENSHOTS_ENV, "").strip()
    if not chosen:
        folder = default
    else:
        folder = Path(chosen) if Path(chosen).is_absolute() else ROOT / chosen
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder this run's screenshots go to."""
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def shoot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot of `page` as `folder/<name>.png`; returns its path."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
