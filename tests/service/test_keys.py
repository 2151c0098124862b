"""API keys in the store, on SQLite and PostgreSQL: shown once and stored as a hash, roles,
expiry, revocation and last use, each creation and revocation audited; the api_key table is
what migration 0007 builds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from childguard.accounts import (
    KeyNotFound,
    create_key,
    hash_key,
    identify_key,
    list_keys,
    revoke_key,
)
from childguard.errors import InputFormatError
from childguard.store import AuditEvent, Base, Store
from childguard.store.account_models import ApiKey
from childguard.store.base import utcnow


def test_api_key_model_matches_the_migration(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diff if "api_key" in repr(d)]
    assert mine == []


def test_key_is_shown_once_and_stored_as_its_hash(store: Store) -> None:
    info, key = create_key(store, "match", actor="tester", name="platform A")
    assert key.startswith("cg_") and len(key) > 40
    with store.session() as session:
        row = session.scalars(select(ApiKey)).one()
        stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
    assert key not in stored and row.key_hash == hash_key(key)
    assert info.prefix == key[:10] and info.role == "match" and info.name == "platform A"
    assert identify_key(store, key) == info
    assert identify_key(store, key + "x") is None
    assert identify_key(store, "not-a-key") is None


def test_use_revocation_expiry_and_audit(store: Store) -> None:
    info, key = create_key(store, "curate", actor="tester")
    assert list_keys(store)[0].last_used_at is None
    identify_key(store, key)
    assert list_keys(store)[0].last_used_at is not None
    revoked = revoke_key(store, info.id, actor="admin")
    assert revoked.revoked_by == "admin" and not revoked.usable()
    assert identify_key(store, key) is None
    revoke_key(store, info.id, actor="admin")  # a second revocation changes nothing
    assert list_keys(store, include_revoked=False) == []
    with pytest.raises(KeyNotFound):
        revoke_key(store, 999, actor="admin")
    with store.session() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.object_id) for e in events] == [
        ("key.create", "tester", str(info.id)),
        ("key.revoke", "admin", str(info.id)),
    ]
    assert key not in repr([e.details for e in events])


def test_bad_roles_and_expiries_are_refused(store: Store) -> None:
    with pytest.raises(InputFormatError, match="unknown role 'root'"):
        create_key(store, "root", actor="t")
    with pytest.raises(InputFormatError, match="in the past"):
        create_key(store, "match", actor="t", expires_at=utcnow() - timedelta(seconds=1))
    assert list_keys(store) == []
