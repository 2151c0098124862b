# Owns the `key` command group.
"""`childguard key create|list|revoke`: manage API keys (shown once, stored as a hash)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from childguard.cli import EXIT_USAGE, app
from childguard.cli.common import DbOption, JsonOption, actor_name, err
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.cli.output import (
    Column,
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    emit,
)
from childguard.vocabulary import ROLES

if TYPE_CHECKING:
    from childguard.accounts import ApiKeyInfo
    from childguard.store import Store

key_app = typer.Typer(help="Manage API keys: create, list, revoke.")
app.add_typer(key_app, name="key")

_RELATIVE = re.compile(r"^(\d+)([dh])$")


def parse_expiry(raw: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, a date (`2027-01-31`, midnight UTC) or an ISO time (UTC when it names no
    zone)."""
    text = raw.strip()
    found = _RELATIVE.match(text)
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        delta = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
        return (now or datetime.now(UTC)) + delta
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"bad --expires {raw!r}: use 30d, 12h, 2027-01-31 or an ISO time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _row(info: ApiKeyInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.prefix,
        "role": info.role,
        "organisation_id": info.organisation_id,
        "created_at": info.created_at.isoformat(),
        "created_by": info.created_by,
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "last_used_at": info.last_used_at.isoformat() if info.last_used_at else None,
        "usable": info.usable(),
    }


def _organisation_id(store: Store, name: str) -> int:
    from childguard.protect.organisations import get_organisation

    with store.session() as session:
        return get_organisation(session, name).id


@key_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    name: str = typer.Option("", "--name", help="A label to tell keys apart."),
    expires: str = typer.Option(None, "--expires", help="30d, 12h, 2027-01-31 or an ISO time."),
    org: str = typer.Option(
        None, "--org", help="The organisation the key acts for (it sees only that one's data)."
    ),
    actor: str = typer.Option(None, "--actor", help="Who is acting, for the audit log."),
    db: str = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from childguard.accounts import create_key

    expires_at = parse_expiry(expires) if expires else None
    with _store(db, create=True) as store:
        organisation_id = _organisation_id(store, org) if org is not None else None
        info, key = create_key(
            store,
            role,
            actor=actor_name(actor),
            name=name,
            expires_at=expires_at,
            organisation_id=organisation_id,
        )
    if as_json:
        typer.echo(json.dumps({**_row(info), "key": key}))
        return
    typer.echo(key)
    err.print(f"key {info.id} ({info.role}) created; it is shown only this once.")


def _minute(at: str | None) -> str:
    return (at or "")[:16].replace("T", " ")


KEY_COLUMNS = (
    Column("id", justify="right"),
    Column("name"),
    Column("prefix"),
    Column("role"),
    Column("expires_at", "expires", show=_minute),
    Column("revoked_at", "revoked", show=_minute),
    Column("last_used_at", "last used", show=_minute),
)


@key_app.command("list")
def list_(
    all_: bool = typer.Option(True, "--all/--active", help="Include revoked keys."),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str = DbOption,
) -> None:
    """List keys, never the keys themselves (table, json, jsonl or csv)."""
    from childguard.accounts import list_keys

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store:
        keys = list_keys(store, include_revoked=all_)
    emit([_row(info) for info in keys], chosen, columns=KEY_COLUMNS, output=output, title="Keys")


@key_app.command("revoke")
def revoke(
    key_id: int = typer.Argument(..., help="The key's id (see `key list`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    actor: str = typer.Option(None, "--actor", help="Who is acting, for the audit log."),
    db: str = DbOption,
) -> None:
    """Revoke a key from now on: every client that uses it is refused (asks first, unless
    --yes; a revoked key cannot be restored, only replaced by a new one)."""
    from childguard.accounts import list_keys, revoke_key

    with _store(db) as store:
        found = next((k for k in list_keys(store) if k.id == key_id), None)
        if found is None:
            raise _fail(f"no API key with id {key_id}")
        if found.revoked_at is None and not yes:
            what = f"key {found.id} ({found.name or 'no name'}, {found.role}, {found.prefix}...)"
            if not typer.confirm(f"revoke {what}? Its clients are refused from then on"):
                err.print("nothing revoked")
                raise typer.Exit(EXIT_USAGE)
        info = revoke_key(store, key_id, actor=actor_name(actor))
    typer.echo(f"key {info.id} revoked at {info.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
