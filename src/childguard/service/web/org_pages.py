# Owns the organisation's pages: dashboard, sightings, album monitors, contacts.
"""the organisation's pages: dashboard, sightings, album monitors, contacts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
