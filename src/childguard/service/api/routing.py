# Owns the routing routes: destinations, the home country, routes and their confirmation.
"""Routes of the hotline's routing (see childguard.hotline.routing)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
