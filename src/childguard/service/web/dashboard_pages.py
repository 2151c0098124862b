# Owns the supervisors' dashboard page: charts drawn server-side and their CSV.
"""The supervisors' dashboard (see childguard.hotline.statistics)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
