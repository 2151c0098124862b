# Owns the organisation's page that registers photos on the device: /org/photos/add.
"""the organisation's page that registers photos on the device: /org/photos/add."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
