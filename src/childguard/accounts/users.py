# Owns every write of the user_account and user_role tables: users, their roles and sign-ins.
"""Users: people who sign in with a username and a password (kept as an argon2id hash).

A user may hold several roles and may belong to one organisation (then it sees only that
organisation's data). Every write is audited in the same transaction; so is every sign-in,
successful or not (never the password, never the client's address). After `max_failures`
failed sign-ins in a row an account is locked for `lockout`; while it is locked even the right
password is refused. A password change, disabling and removal end the user's sessions.

`ensure_first_admin` makes the user `admin` (role `admin`) on a store with no users; the store's
unique username decides which of several processes starting at once makes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.accounts import sessions as browser_sessions
from childguard.accounts.passwords import (
    check_password,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from childguard.accounts.roles import check_role
from childguard.accounts.sessions import Lifetime, SessionInfo
from childguard.errors import ChildguardError, InputFormatError
from childguard.store import audit
from childguard.store.account_models import User, UserRole
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.protect_models import Organisation

FIRST_ADMIN = "admin"
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class UserNotFound(ChildguardError):
    """No user has that username (or id)."""


class UserExists(ChildguardError):
    """A user with that username exists already."""


class LoginFailed(ChildguardError):
    """A sign-in was refused. The message is the same whatever the reason (so that it says
    nothing about which usernames exist); `reason` is for the audit log and tests:
    `unknown-user`, `wrong-password`, `disabled` or `locked`."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "wrong username or password (an account is locked for a while after several "
            "failed sign-ins in a row)"
        )
        self.reason = reason


@dataclass(frozen=True)
class UserInfo:
    """A user as callers see it: everything but the password hash."""

    id: int
    username: str
    display_name: str
    email: str | None
    organisation_id: int | None
    roles: tuple[str, ...]
    created_at: datetime
    created_by: str
    password_changed_at: datetime
    disabled_at: datetime | None
    last_login_at: datetime | None
    failed_logins: int
    locked_until: datetime | None

    @property
    def actor(self) -> str:
        """This user's name in the audit log."""
        return f"user:{self.id}"

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or utcnow())

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _roles_of(session: Session, user_id: int) -> tuple[str, ...]:
    return tuple(sorted(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id))))


def _info(session: Session, row: User) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        organisation_id=row.organisation_id,
        roles=_roles_of(session, row.id),
        created_at=row.created_at,
        created_by=row.created_by,
        password_changed_at=row.password_changed_at,
        disabled_at=row.disabled_at,
        last_login_at=row.last_login_at,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )


def check_username(username: str) -> str:
    """The username in its stored form (lower case); InputFormatError saying the rule."""
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise InputFormatError(
            f"bad username {username!r}: want 2-100 characters of letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def _check_roles(roles: Iterable[str]) -> list[str]:
    return sorted({check_role(r) for r in roles})


def _check_details(display_name: str, email: str | None) -> str | None:
    if len(display_name) > 200 or not display_name.isprintable():
        raise InputFormatError("bad display name: want at most 200 printable characters")
    if email is None or not email.strip():
        return None
    clean = email.strip()
    if len(clean) > 320 or not _EMAIL.match(clean):
        raise InputFormatError(f"bad email address {email!r}")
    return clean


def _check_organisation(session: Session, organisation_id: int | None) -> None:
    if organisation_id is not None and session.get(Organisation, organisation_id) is None:
        raise InputFormatError(f"no organisation with id {organisation_id}")


def _row(session: Session, username: str) -> User:
    name = username.strip().lower()
    row = session.scalars(select(User).where(User.username == name)).first()
    if row is None:
        raise UserNotFound(f"no user named {username!r}")
    return row


def create_user(
    store: Store,
    username: str,
    password: str,
    *,
    actor: str,
    roles: Iterable[str] = (),
    organisation_id: int | None = None,
    display_name: str = "",
    email: str | None = None,
) -> UserInfo:
    """Create a user with `roles`, of `organisation_id` if given. InputFormatError for a bad
    username, password, role, email or organisation; UserExists for a taken username."""
    name = check_username(username)
    wanted = _check_roles(roles)
    clean_email = _check_details(display_name, email)
    password_hash = hash_password(password)
    try:
        with store.session() as session:
            _check_organisation(session, organisation_id)
            row = User(
                username=name,
                display_name=display_name,
                email=clean_email,
                password_hash=password_hash,
                organisation_id=organisation_id,
                created_by=actor,
            )
            session.add(row)
            session.flush()
            for role in wanted:
                session.add(UserRole(user_id=row.id, role=role, granted_by=actor))
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="user.create",
                object_type="user_account",
                object_id=row.id,
                details={
                    "username": name,
                    "roles": wanted,
                    "organisation_id": organisation_id,
                    "display_name": display_name,
                    "email": clean_email,
                },
            )
            return _info(session, row)
    except IntegrityError:
        raise UserExists(f"a user named {name!r} exists already") from None


def list_users(store: Store) -> list[UserInfo]:
    """Every user, by username."""
    with store.session() as session:
        return [_info(session, r) for r in session.scalars(select(User).order_by(User.username))]


def get_user(store: Store, username: str) -> UserInfo:
    """The user named `username`; UserNotFound if there is none."""
    with store.session() as session:
        return _info(session, _row(session, username))


def get_user_by_id(store: Store, user_id: int) -> UserInfo:
    """The user with id `user_id`; UserNotFound if there is none."""
    with store.session() as session:
        row = session.get(User, user_id)
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        return _info(session, row)


def set_password(
    store: Store,
    username: str,
    password: str,
    *,
    actor: str,
    keep_session_id: int | None = None,
) -> UserInfo:
    """Give the user a new password and end their sessions (all but `keep_session_id`, the
    one the change was made from). Also lifts a lockout."""
    password_hash = hash_password(password)
    with store.session() as session:
        row = _row(session, username)
        row.password_hash = password_hash
        row.password_changed_at = utcnow()
        row.failed_logins = 0
        row.locked_until = None
        session.flush()
        ended = browser_sessions.end_user_sessions(
            session, row.id, actor=actor, reason="password-change", keep_session_id=keep_session_id
        )
        audit.record(
            session,
            actor=actor,
            action="user.password",
            object_type="user_account",
            object_id=row.id,
            details={"username": row.username, "sessions_ended": ended},
        )
        return _info(session, row)


def grant_roles(store: Store, username: str, roles: Iterable[str], *, actor: str) -> UserInfo:
    """Add `roles` to the user's (those held already stay as they are, unaudited)."""
    wanted = _check_roles(roles)
    with store.session() as session:
        row = _row(session, username)
        held = set(_roles_of(session, row.id))
        added = [r for r in wanted if r not in held]
        for role in added:
            session.add(UserRole(user_id=row.id, role=role, granted_by=actor))
        if added:
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="user.grant",
                object_type="user_account",
                object_id=row.id,
                details={"username": row.username, "roles": added},
            )
        return _info(session, row)


def revoke_roles(store: Store, username: str, roles: Iterable[str], *, actor: str) -> UserInfo:
    """Take `roles` from the user (those not held are ignored, unaudited)."""
    wanted = _check_roles(roles)
    with store.session() as session:
        row = _row(session, username)
        held = set(_roles_of(session, row.id))
        removed = [r for r in wanted if r in held]
        if removed:
            session.execute(
                delete(UserRole).where(UserRole.user_id == row.id, UserRole.role.in_(removed))
            )
            audit.record(
                session,
                actor=actor,
                action="user.revoke",
                object_type="user_account",
                object_id=row.id,
                details={"username": row.username, "roles": removed},
            )
        return _info(session, row)


def disable_user(store: Store, username: str, *, actor: str) -> UserInfo:
    """Refuse the user's sign-ins and end their sessions from now on (again: no change)."""
    with store.session() as session:
        row = _row(session, username)
        if row.disabled_at is None:
            row.disabled_at = utcnow()
            session.flush()
            ended = browser_sessions.end_user_sessions(
                session, row.id, actor=actor, reason="disabled"
            )
            audit.record(
                session,
                actor=actor,
                action="user.disable",
                object_type="user_account",
                object_id=row.id,
                details={"username": row.username, "sessions_ended": ended},
            )
        return _info(session, row)


def enable_user(store: Store, username: str, *, actor: str) -> UserInfo:
    """Let a disabled or locked user sign in again (clears the lockout too)."""
    with store.session() as session:
        row = _row(session, username)
        if row.disabled_at is not None or row.locked_until is not None or row.failed_logins:
            was_disabled = row.disabled_at is not None
            row.disabled_at = None
            row.locked_until = None
            row.failed_logins = 0
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="user.enable",
                object_type="user_account",
                object_id=row.id,
                details={"username": row.username, "was_disabled": was_disabled},
            )
        return _info(session, row)


def remove_user(store: Store, username: str, *, actor: str) -> UserInfo:
    """Delete the user, their roles and their sessions; returns what they were."""
    with store.session() as session:
        row = _row(session, username)
        info = _info(session, row)
        browser_sessions.end_user_sessions(session, row.id, actor=actor, reason="removed")
        session.execute(delete(UserRole).where(UserRole.user_id == row.id))
        session.delete(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.remove",
            object_type="user_account",
            object_id=info.id,
            details={"username": info.username, "roles": list(info.roles)},
        )
        return info


def get_preferences(store: Store, user_id: int) -> dict[str, Any]:
    """The user's page preferences (empty when none are kept); UserNotFound if no such user."""
    with store.session() as session:
        row = session.get(User, user_id)
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        return dict(row.preferences or {})


def set_preferences(
    store: Store, user_id: int, preferences: dict[str, Any], *, actor: str
) -> dict[str, Any]:
    """Set these top-level page preferences of the user (the others stay), audited; returns
    all of them. UserNotFound if no such user."""
    with store.session() as session:
        row = session.get(User, user_id)
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        merged = {**(row.preferences or {}), **preferences}
        row.preferences = merged
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.preferences",
            object_type="user_account",
            object_id=row.id,
            details={"set": preferences},
        )
        return dict(merged)


def _failed(session: Session, reason: str, row: User | None, details: dict[str, object]) -> None:
    audit.record(
        session,
        actor="anonymous",
        action="user.login_failed",
        object_type="user_account",
        object_id=row.id if row is not None else "",
        details={"reason": reason, **details},
    )


def authenticate(
    store: Store,
    username: str,
    password: str,
    *,
    max_failures: int = MAX_FAILURES,
    lockout: timedelta = LOCKOUT,
) -> UserInfo:
    """The user whose username and password these are, with the sign-in recorded; LoginFailed
    otherwise (recorded too). `max_failures` failures in a row lock the account for
    `lockout`. A hash made with older parameters is replaced by a current one."""
    name = username.strip().lower()
    with store.session() as session:
        row = session.scalars(select(User).where(User.username == name)).first() if name else None
        right = verify_password(row.password_hash if row is not None else None, password)
        now = utcnow()
        if row is None:
            _failed(session, "unknown-user", None, {})
            failure = LoginFailed("unknown-user")
        elif row.disabled_at is not None:
            _failed(session, "disabled", row, {})
            failure = LoginFailed("disabled")
        elif row.locked_until is not None and row.locked_until > now:
            _failed(session, "locked", row, {"locked_until": row.locked_until.isoformat()})
            failure = LoginFailed("locked")
        elif not right:
            session.execute(
                update(User).where(User.id == row.id).values(failed_logins=User.failed_logins + 1)
            )
            session.refresh(row)
            details: dict[str, object] = {"failed_logins": row.failed_logins}
            if row.failed_logins >= max_failures:
                row.locked_until = now + lockout
                row.failed_logins = 0
                details["locked_until"] = row.locked_until.isoformat()
            _failed(session, "wrong-password", row, details)
            failure = LoginFailed("wrong-password")
        else:
            row.failed_logins = 0
            row.locked_until = None
            row.last_login_at = now
            if needs_rehash(row.password_hash):
                row.password_hash = hash_password(password)
            session.flush()
            audit.record(
                session,
                actor=f"user:{row.id}",
                action="user.login",
                object_type="user_account",
                object_id=row.id,
                details={"username": row.username},
            )
            return _info(session, row)
    raise failure


def sign_in(
    store: Store,
    username: str,
    password: str,
    *,
    lifetime: Lifetime | None = None,
    max_failures: int = MAX_FAILURES,
    lockout: timedelta = LOCKOUT,
) -> tuple[UserInfo, SessionInfo, str, str]:
    """`authenticate`, then start a session: the user, the session, its token and its CSRF
    token."""
    user = authenticate(store, username, password, max_failures=max_failures, lockout=lockout)
    with store.session() as session:
        info, token, csrf = browser_sessions.start_session(session, user.id, lifetime=lifetime)
    return user, info, token, csrf


def identify_session(
    store: Store, token: str, *, idle: timedelta
) -> tuple[UserInfo, SessionInfo] | None:
    """The user and live session `token` opens, with its use recorded; None otherwise."""
    with store.session() as session:
        found = browser_sessions.find_session(session, token, idle=idle)
        if found is None:
            return None
        row = session.get(User, found.user_id)
        if row is None or row.disabled_at is not None:
            return None
        return _info(session, row), found


def ensure_first_admin(store: Store, *, password: str | None = None) -> tuple[UserInfo, str] | None:
    """On a store with no users, create `admin` with the `admin` role and `password` (a
    random one if None); returns the user and the password. None when there are users
    already or another process made the first admin at the same time."""
    if password is not None:
        check_password(password)
    with store.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
    chosen = password if password is not None else generate_password()
    try:
        user = create_user(store, FIRST_ADMIN, chosen, actor="system:first-start", roles=["admin"])
    except UserExists:
        return None
    return user, chosen
