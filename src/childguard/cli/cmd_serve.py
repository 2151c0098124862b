"""`childguard serve`: run the service (the API) with uvicorn on embedded defaults."""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from childguard import config
from childguard.cli import app
from childguard.cli.common import fail, store_or_exit
from childguard.errors import ChildguardError

if TYPE_CHECKING:
    from childguard.store import Store

# uvicorn imports the app factory by name in each worker process (it needs a name, not an
# object, to start several workers).
APP_FACTORY = "childguard.service.app:app_from_env"
ADMIN_PASSWORD_ENV = "CHILDGUARD_ADMIN_PASSWORD"


@app.command("serve")
def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default 8000)."),
    db: str = typer.Option(
        None, "--db", help="Database URL or SQLite path (default: CHILDGUARD_DB or the data dir)."
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, max=64, help="Worker processes (default 1)."
    ),
    config_file: Path = typer.Option(
        None,
        "--config",
        help="TOML file of settings (default: CHILDGUARD_CONFIG); the environment and these "
        "options override it.",
    ),
    allow_anonymous_hma: bool = typer.Option(
        None,
        "--allow-anonymous-hma/--no-anonymous-hma",
        help="Let the HMA-compatible routes accept calls with no API key (default: off).",
    ),
) -> None:
    """Serve the API. Settings come from the --config file, then CHILDGUARD_* variables, then
    these options. On SIGTERM in-flight requests get `timeout_graceful_shutdown` seconds to
    finish, the indexes are saved and the command exits 0.

    The store is migrated here, once, before any worker starts; each worker then loads the
    index and follows the store on its own. On a store with no users the user `admin` is
    created first, and its password printed once on stderr (CHILDGUARD_ADMIN_PASSWORD, if
    set, is used instead and never printed)."""
    import uvicorn

    from childguard.service.config import check_environment
    from childguard.service.protocol import NoDelayH11Protocol

    given = {
        "CHILDGUARD_HOST": host,
        "CHILDGUARD_PORT": None if port is None else str(port),
        "CHILDGUARD_DB": config.database_url(db) if db else None,
        "CHILDGUARD_ALLOW_ANONYMOUS_HMA": (
            None if allow_anonymous_hma is None else str(allow_anonymous_hma).lower()
        ),
        "CHILDGUARD_WORKERS": None if workers is None else str(workers),
        # The workers read the same file.
        "CHILDGUARD_CONFIG": None if config_file is None else str(config_file.resolve()),
    }
    os.environ.update({k: v for k, v in given.items() if v is not None})
    try:
        settings = check_environment()
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    with store_or_exit(settings.db_url, create=True) as store:
        first_admin(store)  # migrated once here, before any worker opens it
    metrics_dir = _metrics_dir(settings.workers)
    # uvicorn raises SIGTERM again once its graceful shutdown is done; handled here, the
    # command then ends normally (exit 0), as a service manager expects.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level="info",
            # The service writes its own access log (no query strings, no reporters).
            access_log=False,
            timeout_keep_alive=settings.timeout_keep_alive,
            limit_concurrency=settings.limit_concurrency,
            # h11 even where httptools is installed, so the request-head limit holds; with
            # TCP_NODELAY on every connection (`childguard.service.protocol`).
            http=NoDelayH11Protocol,
            h11_max_incomplete_event_size=settings.h11_max_incomplete_event_size,
            timeout_graceful_shutdown=math.ceil(settings.timeout_graceful_shutdown),
            # A worker imports the whole CLI before it answers its first health check.
            timeout_worker_healthcheck=settings.timeout_worker_healthcheck,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM after uvicorn's graceful shutdown: nothing left to do."""


def _metrics_dir(workers: int) -> Path | None:
    """With several workers, a fresh folder for prometheus-client's multiprocess mode (set in
    PROMETHEUS_MULTIPROC_DIR for the workers, removed when the service stops); None with one
    worker or when PROMETHEUS_MULTIPROC_DIR is set already (the operator's folder)."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    base = config.data_dir() / "metrics"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"serve-{os.getpid()}-", dir=base))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def first_admin(store: Store) -> None:
    """On a store with no users, create `admin` and print its password once on stderr (or use
    CHILDGUARD_ADMIN_PASSWORD, never printed)."""
    from childguard.accounts import WeakPassword, ensure_first_admin

    given = os.environ.get(ADMIN_PASSWORD_ENV) or None
    try:
        made = ensure_first_admin(store, password=given)
    except WeakPassword as exc:
        raise fail(f"{ADMIN_PASSWORD_ENV}: {exc}") from None
    if made is None:
        return
    user, password = made
    if given is not None:
        typer.echo(
            f"first start: created the user {user.username!r} (role admin) with the password "
            f"in {ADMIN_PASSWORD_ENV}",
            err=True,
        )
        return
    typer.echo(
        f"first start: created the user {user.username!r} (role admin)\n"
        f"  username: {user.username}\n  password: {password}\n"
        f"The password is shown only this once; change it with "
        f"`childguard user passwd {user.username}`.",
        err=True,
    )
