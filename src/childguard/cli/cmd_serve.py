"""`childguard serve`: run the service (the API) with uvicorn on embedded defaults."""

from __future__ import annotations

import os

import typer

from childguard import config
from childguard.cli import app
from childguard.cli.common import fail, store_or_exit
from childguard.errors import ChildguardError
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
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    allow_anonymous_hma: bool = typer.Option(
        None,
        "--allow-anonymous-hma/--no-anonymous-hma",
        help="Let the HMA-compatible routes accept calls with no API key (default: off).",
    ),
) -> None:
    """Serve the API. Settings come from CHILDGUARD_* variables; these options override them.

    The store is migrated here, once, before any worker starts; each worker then loads the
    index and follows the store on its own. On a store with no users the user `admin` is
    created first, and its password printed once on stderr (CHILDGUARD_ADMIN_PASSWORD, if
    set, is used instead and never printed)."""
    import uvicorn

    from childguard.service.config import check_environment

    given = {
        "CHILDGUARD_HOST": host,
        "CHILDGUARD_PORT": None if port is None else str(port),
        "CHILDGUARD_DB": config.database_url(db) if db else None,
        "CHILDGUARD_ALLOW_ANONYMOUS_HMA": (
            None if allow_anonymous_hma is None else str(allow_anonymous_hma).lower()
        ),
    }
    os.environ.update({k: v for k, v in given.items() if v is not None})
    try:
        check_environment()
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    with store_or_exit(os.environ.get("CHILDGUARD_DB")) as store:
        first_admin(store)  # migrated once here, before any worker opens it
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=os.environ.get("CHILDGUARD_HOST", "127.0.0.1"),
        port=_port(os.environ.get("CHILDGUARD_PORT", "8000")),
        workers=workers,
        log_level="info",
    )


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


def _port(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise typer.BadParameter(f"CHILDGUARD_PORT={raw!r} is not a whole number") from None
