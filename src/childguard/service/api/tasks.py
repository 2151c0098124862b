# Owns the scheduled tasks over the API: runs, errors and next runs.
"""the scheduled tasks over the API: runs, errors and next runs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
