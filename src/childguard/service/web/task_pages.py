# Owns the supervisors' page of scheduled tasks: runs, errors and next runs.
"""the supervisors' page of scheduled tasks: runs, errors and next runs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
