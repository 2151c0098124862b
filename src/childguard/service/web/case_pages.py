# Owns the analysts' case pages: routes to confirm, bundles to download, notices.
"""The analysts' case pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
