"""Evidence is sealed on disk (the plain bytes never appear), opens with the key only, and is
purged on schedule with the purge recorded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from childguard.hotline import evidence, processing
from childguard.hotline.crypto import SealError, derive_key
from childguard.hotline.reports import create_report
from childguard.jobs import JobRunner, enqueue
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.models import AuditEvent
from hotline.hotline_site import jpeg_bytes, serving, settings_for


def test_evidence_is_sealed_opened_with_the_key_and_purged_on_schedule(
    store: Store, tmp_path: Path
) -> None:
    photo = jpeg_bytes(61)
    settings = settings_for(tmp_path / "evidence")
    with serving() as site:
        site.image("/e.jpg", photo)
        report = create_report(store, [site.url("/e.jpg")], channel="api", enqueue=False)
        processing.process_report(store, report.id, settings)
    with store.session() as s:
        item = s.scalars(select(Item)).one()
        item_id, path, expires, first_seen = (
            item.id,
            Path(item.evidence_path or ""),
            item.evidence_expires_at,
            item.first_seen,
        )
    sealed = path.read_bytes()
    assert path.parent == (tmp_path / "evidence").resolve()
    assert photo not in sealed and photo[:64] not in sealed and len(sealed) > len(photo)
    assert evidence.open_evidence(store, settings.evidence_key, item_id) == photo
    with pytest.raises(SealError):
        evidence.open_evidence(store, derive_key(b"x" * 32, "hotline-evidence"), item_id)
    assert expires is not None
    assert timedelta(days=89) < expires - first_seen <= timedelta(days=90, minutes=1)

    assert evidence.purge_expired(store, expires - timedelta(seconds=1)).purged == []
    assert path.exists()
    assert evidence.purge_expired(store, expires + timedelta(seconds=1)).purged == [item_id]
    assert not path.exists()
    with store.session() as s:
        assert s.get(Item, item_id).evidence_purged_at is not None  # type: ignore[union-attr]
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "item"))
        assert "item.evidence_purge" in list(actions)
    with pytest.raises(evidence.EvidenceMissing):
        evidence.open_evidence(store, settings.evidence_key, item_id)


def test_not_illegal_evidence_goes_at_once_through_the_purge_job(
    store: Store, tmp_path: Path
) -> None:
    key = derive_key(b"k" * 32, "hotline-evidence")
    with store.session() as s:
        item = Item(
            sha256="a" * 64, content_type="photo", byte_size=3, signals={}, outcome="not-illegal"
        )
        s.add(item)
        s.flush()
        item_id = item.id
    path = evidence.keep_evidence(store, key, tmp_path / "ev", item_id, b"abc")
    enqueue(store, processing.PURGE_KIND, {}, actor="test")
    (job,) = JobRunner(store, tmp_path / "jobs", kind_names=[processing.PURGE_KIND]).run_pending()
    assert job.status == "done" and job.result == {"purged": 1, "items": [item_id]}
    assert not path.exists()
