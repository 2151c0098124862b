# Owns the hotline's evidence: sealed media files, the item's evidence columns, retention, purge.
"""Evidence: the media bytes of an item, kept only as evidence and only sealed.

`keep_evidence` seals an item's bytes (`crypto.seal`, AES-256-GCM, bound to `item:<id>`) into
`<evidence dir>/<id>.sealed` (written to a temporary name and renamed, so a crash leaves no
half file) and sets `evidence_path` and `evidence_expires_at` from the retention of the item's
outcome (`RETENTION`, days: pending review 90, `not-illegal` 0, `baseline` and
`nationally-illegal` 365, `harvested` 30; a deployment passes its own dict). The key comes from
the service (`derive_key(secret, "hotline-evidence")`), never from the database.
`purge_expired` deletes every file whose time is up and records `evidence_purged_at`, audited;
the `hotline-purge` job kind runs it (`childguard.hotline.processing`). `open_evidence` returns
the bytes for the blurred preview. `retention_until` is what `items` and `assessments` use to
set an item's expiry when its outcome is decided.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from childguard.errors import ChildguardError
from childguard.hotline.crypto import seal, unseal
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item

EVIDENCE_KEY_PURPOSE = "hotline-evidence"
PENDING = "pending"
RETENTION: dict[str, int] = {
    PENDING: 90,
    "not-illegal": 0,
    "baseline": 365,
    "nationally-illegal": 365,
    "harvested": 30,
    "undetermined": 90,
}
ACTOR = "hotline"


class EvidenceMissing(ChildguardError):
    """The item has no evidence (never kept, or purged)."""


def evidence_aad(item_id: int) -> bytes:
    return f"item:{item_id}".encode()


def retention_until(
    outcome: str | None, since: datetime, retention: Mapping[str, int] | None = None
) -> datetime:
    """When evidence of an item with `outcome` (None: pending review) expires."""
    days = dict(retention or RETENTION)
    key = outcome or PENDING
    return since + timedelta(days=days.get(key, days.get(PENDING, RETENTION[PENDING])))


def keep_evidence(
    store: Store,
    key: bytes,
    evidence_dir: Path,
    item_id: int,
    data: bytes,
    *,
    retention: Mapping[str, int] | None = None,
) -> Path:
    """Seal `data` as item `item_id`'s evidence (once: an item that has it, or had it purged,
    is left alone); the file's path."""
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise ValueError(f"no item {item_id}")
        if item.evidence_path and Path(item.evidence_path).exists():
            return Path(item.evidence_path)
        if item.evidence_purged_at is not None:
            return Path(item.evidence_path or "")
        evidence_dir.mkdir(parents=True, exist_ok=True)
        path = evidence_dir / f"{item_id}.sealed"
        temporary = evidence_dir / f".{item_id}.{os.getpid()}.tmp"
        temporary.write_bytes(seal(key, data, aad=evidence_aad(item_id)))
        os.replace(temporary, path)
        now = utcnow()
        item.evidence_path = str(path.resolve())
        item.evidence_expires_at = retention_until(item.outcome, now, retention)
        audit.record(
            session,
            actor=ACTOR,
            action="item.evidence",
            object_type="item",
            object_id=item_id,
            details={"bytes": len(data), "expires_at": item.evidence_expires_at.isoformat()},
        )
        return path


def open_evidence(store: Store, key: bytes, item_id: int) -> bytes:
    """The plain bytes of an item's evidence; EvidenceMissing when there are none."""
    with store.session() as session:
        item = session.get(Item, item_id)
        path = item.evidence_path if item is not None else None
        purged = item.evidence_purged_at if item is not None else None
    if not path or purged is not None or not Path(path).exists():
        raise EvidenceMissing(f"item {item_id} has no evidence")
    return unseal(key, Path(path).read_bytes(), aad=evidence_aad(item_id))


@dataclass(frozen=True)
class PurgeResult:
    purged: list[int]

    def to_dict(self) -> dict[str, object]:
        return {"purged": len(self.purged), "items": self.purged}


def purge_expired(store: Store, now: datetime | None = None, *, limit: int = 1000) -> PurgeResult:
    """Delete every evidence file whose retention ended by `now`, and record it."""
    at = now or utcnow()
    with store.session() as session:
        due = session.execute(
            select(Item.id, Item.evidence_path)
            .where(
                Item.evidence_path.is_not(None),
                Item.evidence_purged_at.is_(None),
                Item.evidence_expires_at <= at,
            )
            .order_by(Item.evidence_expires_at, Item.id)
            .limit(limit)
        ).all()
    purged: list[int] = []
    for item_id, path in due:
        if path:
            Path(path).unlink(missing_ok=True)
        with store.session() as session:
            session.execute(
                update(Item).where(Item.id == item_id).values(evidence_purged_at=utcnow())
            )
            audit.record(
                session,
                actor=ACTOR,
                action="item.evidence_purge",
                object_type="item",
                object_id=item_id,
                details={"path": path},
            )
        purged.append(item_id)
    return PurgeResult(purged)
