# Owns the HTTP service: the FastAPI app, its settings, auth and the per-process state.
"""The service: `create_app(settings)` builds the FastAPI app; `Settings.from_env()` reads its
settings. Run it with `childguard serve`. Routes are thin over plain functions
(`childguard.service.compat` for the HMA-compatible API) and each is owned by one role."""

from childguard.service.app import create_app
from childguard.service.config import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]
