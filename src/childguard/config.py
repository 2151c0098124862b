# Owns where childguard keeps its data: the data dir, the store's URL, where indexes live.
"""Where childguard keeps its data and how it finds its database.

Precedence: an explicit argument, then the CHILDGUARD_* environment variables,
then the defaults (SQLite under the user's data directory):

- `CHILDGUARD_HOME`: the data dir (default: the platform's user data dir, e.g.
  `~/.local/share/childguard`), holding the default store `childguard.db`, the indexes of stores
  that are not SQLite files, and the service's secret key and scheduler state.
- `CHILDGUARD_DB`: the store, as a SQLAlchemy URL (`sqlite:////abs/path.db`,
  `postgresql+psycopg://user@host/db`) or a path to a SQLite file.

A SQLite file's derived indexes live beside it, in `<file>.index/`; any other store's (and
those of a SQLite file in a folder that cannot be written) live in the data dir's `index/`, in
a folder keyed by a hash of its URL.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

from childguard.errors import ChildguardError

APP_NAME = "childguard"
# The database kinds a store may be (SQLAlchemy backend names).
STORE_BACKENDS = ("sqlite", "postgresql")
# Bare values starting `<one of these>:` are a mistyped URL, not a file name.
URL_LIKE = frozenset({"sqlite", "postgresql", "postgres", "mysql", "http", "https", "file"})
STORE_FORMS = (
    "a path to a SQLite file, sqlite:////ABSOLUTE/PATH.db or "
    "postgresql+psycopg://USER@HOST/DATABASE"
)


class BadStoreUrl(ChildguardError):
    """The store's URL names no database kind childguard can use."""


def data_dir(*, create: bool = True) -> Path:
    """The directory for the default database, indexes and caches (created unless `create` is
    false)."""
    override = os.environ.get("CHILDGUARD_HOME")
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(explicit: str | None = None) -> str:
    """SQLAlchemy URL of the store. A bare path means a SQLite file; a SQLite file's path is made
    absolute (a relative one is taken from the working folder, as SQLite would)."""
    value = explicit or os.environ.get("CHILDGUARD_DB")
    if not value:
        return f"sqlite:///{data_dir(create=False) / 'childguard.db'}"
    if "://" not in value:
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower() if ":" in value else ""
        if scheme in URL_LIKE:
            raise BadStoreUrl(f"{value!r} is not a database URL; use {STORE_FORMS}")
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(value)
    except ArgumentError:
        raise BadStoreUrl(f"{value!r} is not a database URL; use {STORE_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend not in STORE_BACKENDS:
        raise BadStoreUrl(
            f"{backend!r} in {value!r} is not a database childguard can use; use {STORE_FORMS}"
        )
    path = sqlite_path(value)
    if path is not None and parsed.database != str(path):
        return parsed.set(database=str(path)).render_as_string(hide_password=False)
    return value


def sqlite_path(url: str) -> Path | None:
    """The absolute path of a SQLite store's file; None for an in-memory SQLite store or any
    other database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(os.path.abspath(Path(database).expanduser()))


def store_index_dir(url: str) -> Path:
    """Where the derived indexes of the store at `url` are saved (created on demand): beside a
    SQLite file (`<file>.index/`), else under the data dir's `index/`, keyed by the URL. A
    SQLite file in a folder that cannot be written (a read-only mount) keeps its index in the
    data dir too, keyed by the file's absolute path."""
    path = sqlite_path(url)
    if path is not None:
        beside = path.with_name(path.name + ".index")
        try:
            beside.mkdir(exist_ok=True)
            if os.access(beside, os.W_OK):
                return beside
        except OSError:
            pass
        key_of = f"sqlite:///{path}"
    else:
        from sqlalchemy.engine import make_url

        key_of = make_url(url).render_as_string(hide_password=True)
    key = hashlib.sha256(key_of.encode()).hexdigest()[:16]
    keyed = data_dir() / "index" / f"store-{key}"
    keyed.mkdir(parents=True, exist_ok=True)
    return keyed


def index_dir(explicit: str | None = None) -> Path:
    """The base folder for derived indexes when one is given (the service's `index_dir`
    setting), else the data dir's `index/` (created on demand)."""
    path = Path(explicit) if explicit else data_dir() / "index"
    path.mkdir(parents=True, exist_ok=True)
    return path
