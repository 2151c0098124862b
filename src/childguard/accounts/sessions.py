# Owns every write of the user_session table: starting, finding, touching and ending sessions.
"""Browser sessions. Signing in starts a session: its token (43 random URL-safe characters,
256 bits) goes to the browser in a cookie and is shown nowhere else; the store keeps its
SHA-256. Each session has a CSRF token, derived from the session token (an HMAC of it), so the
server can put it in the pages it renders without keeping it; the store keeps its SHA-256 too.

A session ends when it is ended (sign-out, a password change, the user disabled), when it has
not been used for `Lifetime.idle`, or `Lifetime.absolute` after it started. Its use is
recorded in `last_seen_at` at most once a minute (`TOUCH_EVERY`). Starting and ending a
session are audited in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from childguard.store import audit
from childguard.store.account_models import User, UserSession
from childguard.store.base import utcnow
from childguard.store.db import Store

TOUCH_EVERY = timedelta(seconds=60)
_MAX_TOKEN = 200


@dataclass(frozen=True)
class Lifetime:
    """How long a session lasts: `idle` after its last use, `absolute` after it started."""

    idle: timedelta = timedelta(hours=1)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class SessionInfo:
    """A session as callers see it: everything but its tokens."""

    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    csrf_hash: str

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether `presented` is this session's CSRF token."""
        if not presented or len(presented) > _MAX_TOKEN:
            return False
        return hmac.compare_digest(_sha256(presented), self.csrf_hash)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_hash(token: str) -> str:
    """The stored form of a session token: its SHA-256 in hex."""
    return _sha256(token)


def csrf_token_for(token: str) -> str:
    """The CSRF token of the session whose token is `token`."""
    digest = hmac.new(token.encode(), b"childguard-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _info(row: UserSession) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        csrf_hash=row.csrf_hash,
    )


def start_session(
    session: Session, user_id: int, *, lifetime: Lifetime | None = None
) -> tuple[SessionInfo, str, str]:
    """Start a session for `user_id` in the caller's transaction; returns its record, its
    token and its CSRF token (neither is stored)."""
    span = lifetime or Lifetime()
    token = secrets.token_urlsafe(32)
    csrf = csrf_token_for(token)
    now = utcnow()
    row = UserSession(
        token_hash=token_hash(token),
        csrf_hash=_sha256(csrf),
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + span.absolute,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=f"user:{user_id}",
        action="session.start",
        object_type="user_session",
        object_id=row.id,
        details={"user_id": user_id, "expires_at": row.expires_at.isoformat()},
    )
    return _info(row), token, csrf


def find_session(
    session: Session, token: str, *, idle: timedelta, now: datetime | None = None
) -> SessionInfo | None:
    """The live session `token` opens (not ended, not expired, not idle past `idle`, its
    user not disabled), recording its use at most once a minute; None otherwise."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    at = now or utcnow()
    row = session.scalars(
        select(UserSession)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash(token), User.disabled_at.is_(None))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at <= at or row.last_seen_at + idle <= at:
        return None
    if at - row.last_seen_at >= TOUCH_EVERY:
        session.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=at))
        row.last_seen_at = at
    return _info(row)


def lookup_session(store: Store, token: str, *, idle: timedelta) -> SessionInfo | None:
    """`find_session` in a transaction of its own."""
    with store.session() as session:
        return find_session(session, token, idle=idle)


def end_session(store: Store, session_id: int, *, actor: str, reason: str = "logout") -> bool:
    """End one session from now on; False if it had ended already or there is none."""
    with store.session() as session:
        row = session.get(UserSession, session_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="session.end",
            object_type="user_session",
            object_id=row.id,
            details={"user_id": row.user_id, "reason": reason},
        )
        return True


def end_user_sessions(
    session: Session,
    user_id: int,
    *,
    actor: str,
    reason: str,
    keep_session_id: int | None = None,
) -> int:
    """End every live session of `user_id` but `keep_session_id`, in the caller's
    transaction; returns how many were ended."""
    now = utcnow()
    query = select(UserSession.id).where(
        UserSession.user_id == user_id,
        UserSession.revoked_at.is_(None),
        UserSession.expires_at > now,
    )
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    ids = list(session.scalars(query))
    if not ids:
        return 0
    session.execute(update(UserSession).where(UserSession.id.in_(ids)).values(revoked_at=now))
    audit.record(
        session,
        actor=actor,
        action="session.end_all",
        object_type="user_account",
        object_id=user_id,
        details={"sessions": ids, "reason": reason},
    )
    return len(ids)


def end_all_sessions(store: Store, user_id: int, *, actor: str, reason: str) -> int:
    """`end_user_sessions` in a transaction of its own."""
    with store.session() as session:
        return end_user_sessions(session, user_id, actor=actor, reason=reason)
