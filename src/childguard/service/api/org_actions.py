# Owns the organisation's actions on its sightings and contacts over the API.
"""the organisation's actions on its sightings and contacts over the API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
