# Owns the organisation's registration of photos by signature over the API.
"""the organisation's registration of photos by signature over the API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
