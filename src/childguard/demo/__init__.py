"""Embedded defaults for `childguard demo`: the bundled sample photos in `assets/`."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
