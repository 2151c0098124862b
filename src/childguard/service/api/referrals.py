# Owns the referral routes: bundles built, downloaded, sent and acknowledged; NCMEC export.
"""Routes of referrals (see childguard.hotline.referrals)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
