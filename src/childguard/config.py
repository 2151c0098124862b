"""Where childguard keeps its data and how it finds its database.

Precedence: an explicit argument, then the CHILDGUARD_* environment variables,
then the defaults (SQLite under the user's data directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "childguard"


def data_dir() -> Path:
    """The directory for the default database, indexes and caches (created on demand)."""
    override = os.environ.get("CHILDGUARD_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(explicit: str | None = None) -> str:
    """SQLAlchemy URL of the store. A bare path means a SQLite file."""
    value = explicit or os.environ.get("CHILDGUARD_DB")
    if not value:
        return f"sqlite:///{data_dir() / 'childguard.db'}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def index_dir(explicit: str | None = None) -> Path:
    """Where derived PDQ indexes are saved."""
    path = Path(explicit) if explicit else data_dir() / "index"
    path.mkdir(parents=True, exist_ok=True)
    return path
