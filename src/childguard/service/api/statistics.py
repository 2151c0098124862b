# Owns the statistics routes: times to referral, notice and removal; INHOPE-style counts.
"""Routes of the hotline's statistics (see childguard.hotline.statistics)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
