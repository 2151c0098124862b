# Owns the `user` and `role` command groups.
"""`childguard user add|list|show|passwd|grant|revoke|disable|enable|remove`: manage the people
who sign in; `childguard role list`: the roles and the routes each owns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from childguard.cli import EXIT_USAGE, app
from childguard.cli.common import DbOption, actor_name, fail, out, store_or_exit
from childguard.cli.output import (
    Column,
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    emit,
    plain_table,
)
from childguard.vocabulary import ROLES

if TYPE_CHECKING:
    from childguard.accounts import UserInfo
    from childguard.store import Store

user_app = typer.Typer(
    help="Manage users (people who sign in): add, list, show, passwd, grant, revoke, "
    "disable, enable, remove.",
    no_args_is_help=True,
)
role_app = typer.Typer(help="The roles users and keys hold.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(role_app, name="role")

FORMATS = ("table", "json")
OneFormatOption = typer.Option("table", "--format", help="table or json (one object).")
ActorOption = typer.Option(None, "--actor", help="Who is acting, for the audit log.")
PasswordStdinOption = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of stdin."
)

ROLE_PURPOSES = {
    "hash": "hash media",
    "match": "match hashes and media against the banks",
    "curate": "manage banks and their entries",
    "reporter": "submit hotline reports",
    "analyst": "assess hotline items",
    "supervisor": "oversee analysts, review and confirm notices",
    "org-admin": "an organisation's protected photos, sightings and alerts",
    "admin": "administer the service: users, keys, audit",
}


def _format(value: str) -> str:
    if value not in FORMATS:
        raise fail(f"bad --format {value!r}: use table or json")
    return value


def _organisation_names(store: Store) -> dict[int, str]:
    from childguard.protect.organisations import list_organisations

    with store.session() as session:
        return {o.id: o.name for o in list_organisations(session)}


def _organisation_id(store: Store, name: str | None) -> int | None:
    if name is None:
        return None
    from childguard.protect.organisations import get_organisation

    with store.session() as session:
        return get_organisation(session, name).id


def _row(user: UserInfo, organisations: dict[int, str]) -> dict[str, Any]:
    org = user.organisation_id
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": list(user.roles),
        "organisation": organisations.get(org) if org is not None else None,
        "organisation_id": org,
        "enabled": user.enabled,
        "locked_until": (
            user.locked_until.isoformat() if user.locked_until and user.locked() else None
        ),
        "created_at": user.created_at.isoformat(),
        "created_by": user.created_by,
        "password_changed_at": user.password_changed_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def _show(user: UserInfo, store: Store, fmt: str) -> None:
    row = _row(user, _organisation_names(store))
    if fmt == "json":
        typer.echo(json.dumps(row))
        return
    table = plain_table("field", "value", show_header=False)
    for name, value in row.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        table.add_row(name, "" if shown is None else str(shown))
    out.print(table)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        given = sys.stdin.readline().rstrip("\r\n")
        if not given:
            raise fail("--password-stdin: stdin gave no password")
        return given
    typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return typed


@user_app.command("add")
def add(
    username: str = typer.Argument(..., help="2-100 letters, digits, '.', '_' or '-'."),
    role: list[str] = typer.Option(
        [], "--role", help=f"A role to hold (repeat for several): {', '.join(ROLES)}."
    ),
    org: str = typer.Option(
        None, "--org", help="The organisation the user belongs to (sees only its data)."
    ),
    display_name: str = typer.Option("", "--display-name", help="The name the pages show."),
    email: str = typer.Option(None, "--email", help="The user's email address."),
    password_stdin: bool = PasswordStdinOption,
    actor: str = ActorOption,
    db: str = DbOption,
    fmt: str = OneFormatOption,
) -> None:
    """Add a user. The password is asked for twice (or read from stdin with
    --password-stdin); only its argon2 hash is stored."""
    from childguard.accounts import check_role, check_username, create_user

    chosen = _format(fmt)
    with store_or_exit(db, create=True) as store:
        check_username(username)  # bad input fails before the password is asked for
        for name in role:
            check_role(name)
        organisation_id = _organisation_id(store, org)
        password = _read_password(password_stdin)
        user = create_user(
            store,
            username,
            password,
            actor=actor_name(actor),
            roles=role,
            organisation_id=organisation_id,
            display_name=display_name,
            email=email,
        )
        if chosen == "json":
            _show(user, store, chosen)
            return
    roles = ", ".join(user.roles) or "no roles"
    typer.echo(f"user {user.username!r} added (id {user.id}; {roles})")


USER_COLUMNS = (
    Column("id", justify="right"),
    Column("username"),
    Column("display_name", "name"),
    Column("roles", show=lambda roles: ", ".join(roles or [])),
    Column("organisation"),
    Column("state"),
    Column("last_login_at", "last sign-in", show=lambda at: (at or "")[:16].replace("T", " ")),
)


@user_app.command("list")
def list_(
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str = DbOption,
) -> None:
    """List users, never their passwords (table, json, jsonl or csv)."""
    from childguard.accounts import list_users

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with store_or_exit(db) as store:
        users = list_users(store)
        organisations = _organisation_names(store)
    rows = [_row(u, organisations) for u in users]
    if chosen == "table":
        for row in rows:
            row["state"] = (
                "disabled" if not row["enabled"] else ("locked" if row["locked_until"] else "")
            )
    emit(rows, chosen, columns=USER_COLUMNS, output=output, title="Users")


@user_app.command("show")
def show(
    username: str = typer.Argument(..., help="The user's username."),
    db: str = DbOption,
    fmt: str = OneFormatOption,
) -> None:
    """Show one user."""
    from childguard.accounts import get_user

    chosen = _format(fmt)
    with store_or_exit(db) as store:
        _show(get_user(store, username), store, chosen)


@user_app.command("passwd")
def passwd(
    username: str = typer.Argument(..., help="The user's username."),
    password_stdin: bool = PasswordStdinOption,
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Set a user's password; ends all their sessions and lifts a lockout."""
    from childguard.accounts import get_user, set_password

    with store_or_exit(db) as store:
        get_user(store, username)  # an unknown user fails before the password is asked for
        password = _read_password(password_stdin)
        user = set_password(store, username, password, actor=actor_name(actor))
    typer.echo(f"password of {user.username!r} changed; their sessions have ended")


@user_app.command("grant")
def grant(
    username: str = typer.Argument(..., help="The user's username."),
    roles: list[str] = typer.Argument(..., help=f"Roles to add: {', '.join(ROLES)}."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Add roles to a user."""
    from childguard.accounts import grant_roles

    with store_or_exit(db) as store:
        user = grant_roles(store, username, roles, actor=actor_name(actor))
    typer.echo(f"{user.username!r} holds: {', '.join(user.roles) or 'no roles'}")


@user_app.command("revoke")
def revoke(
    username: str = typer.Argument(..., help="The user's username."),
    roles: list[str] = typer.Argument(..., help="Roles to take away."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Take roles from a user (effective on their next request)."""
    from childguard.accounts import revoke_roles

    with store_or_exit(db) as store:
        user = revoke_roles(store, username, roles, actor=actor_name(actor))
    typer.echo(f"{user.username!r} holds: {', '.join(user.roles) or 'no roles'}")


@user_app.command("disable")
def disable(
    username: str = typer.Argument(..., help="The user's username."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Refuse a user's sign-ins and end their sessions."""
    from childguard.accounts import disable_user

    with store_or_exit(db) as store:
        user = disable_user(store, username, actor=actor_name(actor))
    typer.echo(f"user {user.username!r} disabled; their sessions have ended")


@user_app.command("enable")
def enable(
    username: str = typer.Argument(..., help="The user's username."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Let a disabled or locked-out user sign in again."""
    from childguard.accounts import enable_user

    with store_or_exit(db) as store:
        user = enable_user(store, username, actor=actor_name(actor))
    typer.echo(f"user {user.username!r} enabled")


@user_app.command("remove")
def remove(
    username: str = typer.Argument(..., help="The user's username."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Delete a user, their roles and their sessions (the audit log keeps what they did)."""
    from childguard.accounts import get_user, remove_user

    with store_or_exit(db) as store:
        get_user(store, username)
        if not yes and not typer.confirm(f"remove the user {username!r}?"):
            raise typer.Exit(EXIT_USAGE)
        user = remove_user(store, username, actor=actor_name(actor))
    typer.echo(f"user {user.username!r} removed")


ROLE_COLUMNS = (
    Column("role"),
    Column("purpose", "for"),
    Column("routes", show=lambda routes: "\n".join(routes or []) or "(none yet)"),
)


@role_app.command("list")
def role_list(
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
) -> None:
    """The roles, what each is for, and the routes of the service each owns (table, json,
    jsonl or csv)."""
    from childguard.service import Settings, create_app
    from childguard.service.auth import routes_by_owner

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    owned = routes_by_owner(create_app(Settings(db_url="sqlite://")).routes)
    rows: list[dict[str, Any]] = [
        {
            "role": role,
            "purpose": ROLE_PURPOSES.get(role, ""),
            "routes": [f"{methods} {path}" for methods, path in owned.get(role, [])],
        }
        for role in ROLES
    ]
    rows.append(
        {
            "role": "(signed in)",
            "purpose": "any key or user",
            "routes": [f"{m} {p}" for m, p in owned.get("signed_in", [])],
        }
    )
    rows.append(
        {
            "role": "(public)",
            "purpose": "anyone",
            "routes": [f"{m} {p}" for m, p in owned.get("public", [])],
        }
    )
    emit(rows, chosen, columns=ROLE_COLUMNS, output=output, title="Roles")
