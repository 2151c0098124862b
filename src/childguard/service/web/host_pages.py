# Owns the host's notice page: the tokenised link a host opens without an account.
"""The host's notice page (see childguard.hotline.host_links)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
