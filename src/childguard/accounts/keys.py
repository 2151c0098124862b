# Owns every write of the api_key table: creating, revoking and recording the use of keys.
"""API keys. A key is `cg_` plus 43 random URL-safe characters (256 bits), shown once when it
is created; the store keeps only its SHA-256. Creation and revocation are audited in the
same transaction; use is recorded in `last_used_at`, at most once a minute per key.

`identify_key` keeps each key it found usable in memory for `CACHE_SECONDS` (1 s), so a busy
client costs one store query a second, not one a request; a key revoked through another
process stops working there within that second (in this process at once).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from childguard.accounts.roles import check_role
from childguard.errors import ChildguardError, InputFormatError
from childguard.store import audit
from childguard.store.account_models import ApiKey
from childguard.store.base import utcnow
from childguard.store.db import Store

KEY_PREFIX = "cg_"
_SHOWN_PREFIX = 10  # characters of the key kept to tell keys apart: "cg_" and 7 more
LAST_USED_EVERY = timedelta(seconds=60)
CACHE_SECONDS = 1.0
_CACHE_MAX = 10_000


class KeyNotFound(ChildguardError):
    """No API key has that id."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as callers see it: everything but the key."""

    id: int
    name: str
    prefix: str
    role: str
    organisation_id: int | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None

    def usable(self, now: datetime | None = None) -> bool:
        """Not revoked and not expired."""
        at = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)

    @property
    def actor(self) -> str:
        """This key's name in the audit log."""
        return f"key:{self.id}"


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=row.role,
        organisation_id=row.organisation_id,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
    )


class _KeyCache:
    """Keys found usable lately, by store URL and key hash, each for `CACHE_SECONDS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str], tuple[float, ApiKeyInfo]] = {}

    def get(self, store: Store, key_hash: str) -> ApiKeyInfo | None:
        with self._lock:
            hit = self._found.get((store.url, key_hash))
        if hit is None or time.monotonic() - hit[0] >= CACHE_SECONDS:
            return None
        return hit[1]

    def put(self, store: Store, key_hash: str, info: ApiKeyInfo) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._found) >= _CACHE_MAX:
                self._found = {k: v for k, v in self._found.items() if now - v[0] < CACHE_SECONDS}
                if len(self._found) >= _CACHE_MAX:
                    self._found.clear()
            self._found[(store.url, key_hash)] = (now, info)

    def forget(self, store: Store, key_hash: str) -> None:
        with self._lock:
            self._found.pop((store.url, key_hash), None)


_cache = _KeyCache()


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store,
    role: str,
    *,
    actor: str,
    name: str = "",
    expires_at: datetime | None = None,
    organisation_id: int | None = None,
) -> tuple[ApiKeyInfo, str]:
    """Create a key with `role`, acting for `organisation_id` if given; returns its record
    and the key itself (shown once, never stored). InputFormatError for an unknown role, a
    long name or an expiry in the past."""
    check_role(role)
    if len(name) > 200 or not name.isprintable():
        raise InputFormatError("bad key name: want at most 200 printable characters")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InputFormatError("the expiry needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        if expires_at <= utcnow():
            raise InputFormatError(f"the expiry {expires_at.isoformat()} is in the past")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with store.session() as session:
        row = ApiKey(
            name=name,
            prefix=key[:_SHOWN_PREFIX],
            key_hash=hash_key(key),
            role=role,
            organisation_id=organisation_id,
            created_by=actor,
            expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="key.create",
            object_type="api_key",
            object_id=row.id,
            details={
                "name": name,
                "role": role,
                "organisation_id": organisation_id,
                "prefix": row.prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        info = _info(row)
    return info, key


def list_keys(store: Store, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """Every key, oldest first."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with store.session() as session:
        return [_info(r) for r in session.scalars(query)]


def revoke_key(store: Store, key_id: int, *, actor: str) -> ApiKeyInfo:
    """Revoke a key from now on; KeyNotFound if there is none. Revoking twice keeps the
    first revocation (and audits nothing the second time)."""
    with store.session() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise KeyNotFound(f"no API key with id {key_id}")
        digest = row.key_hash
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.revoked_by = actor
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="key.revoke",
                object_type="api_key",
                object_id=row.id,
                details={"name": row.name, "role": row.role, "prefix": row.prefix},
            )
        info = _info(row)
    _cache.forget(store, digest)
    return info


def cached_key(store: Store, key: str) -> ApiKeyInfo | None:
    """The usable key this is if `identify_key` found it in the last `CACHE_SECONDS`; None
    when that needs the store (no store query here)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    cached = _cache.get(store, hash_key(key))
    return cached if cached is not None and cached.usable() else None


def identify_key(store: Store, key: str) -> ApiKeyInfo | None:
    """The usable key this is (not revoked, not expired), recording its use; None otherwise.
    A key found usable is remembered for `CACHE_SECONDS`."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    now = utcnow()
    digest = hash_key(key)
    cached = _cache.get(store, digest)
    if cached is not None and cached.usable(now):
        return cached
    with store.session() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
        if row is None:
            return None
        info = _info(row)
        if not info.usable(now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    _cache.put(store, digest, info)
    return info
