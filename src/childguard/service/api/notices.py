# Owns the notice routes: notices created, confirmed, sent and listed.
"""Routes of notice-and-takedown (see childguard.hotline.notices)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
