# Owns every write of bank_signature: the protected-style signatures of the hotline's own items.
"""Richer signatures for the hotline's own known-abuse entries.

An outside list gives hashes only, so its entries match only what the query side can recover
(`childguard.robust.query`). For an item the hotline assessed itself the media was held (sealed
as evidence, `childguard.hotline.evidence`), so once the item is banked (`assessments.bank_item`)
its signature is computed as an organisation's protected photo gets one
(`childguard.robust.signature.compute_signature`: PDQ of the registered views, ORB features) and
stored with the item's PDQ entry in the hotline's bank (`bank_signature`). The matcher then
verifies queries against these signatures exactly as against protected photos, so crops,
rotations and screenshots of the hotline's own items match while outside lists stay hash-only.

`sign_item` signs one banked item while its evidence is held (idempotent); `sign_banked` signs
every banked item that has none yet and whose evidence is still held (the hotline's periodic
task runs it, as it holds the evidence key). Every signature written is audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select

from childguard.errors import MediaError
from childguard.hotline.assessments import HOTLINE_BANK
from childguard.hotline.evidence import EvidenceMissing, open_evidence
from childguard.hotline.schemes import ILLEGAL_OUTCOMES
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Content, Limits
from childguard.store import audit
from childguard.store.bank_signature_models import BankSignature
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.models import Bank, BankEntry

log = get_logger(__name__)

PDQ = "pdq"


def subject_of(item_id: int) -> str:
    return f"item:{item_id}"


@dataclass
class SignReport:
    """What `sign_banked` did: items signed, and those left unsigned with the reason."""

    signed: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"signed": len(self.signed), "skipped": len(self.skipped), "items": self.signed}


def _pdq_entry(store: Store, item_id: int) -> tuple[int | None, str]:
    """The id of the banked item's PDQ entry in the hotline's bank (None: none), or why not."""
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            return None, "no such item"
        if item.state != "assessed" or item.outcome not in ILLEGAL_OUTCOMES:
            return None, "not banked"
        value = item.pdq
        if not value:
            return None, "no PDQ"
        entry_id = session.scalar(
            select(BankEntry.id)
            .join(Bank, Bank.id == BankEntry.bank_id)
            .where(
                Bank.name == HOTLINE_BANK, BankEntry.signal_type == PDQ, BankEntry.value == value
            )
        )
        if entry_id is None:
            return None, "not in the hotline's bank"
        return int(entry_id), ""


def _signature(data: bytes, limits: Limits) -> dict[str, object]:
    import cv2

    from childguard.robust.signature import compute_signature

    pixels = Content(data, origin="evidence", limits=limits).picture()
    try:
        sig = compute_signature(pixels)
    except cv2.error as exc:
        raise ValueError(f"OpenCV: {exc.err or exc}") from exc
    parsed: dict[str, object] = json.loads(sig.to_json())
    return parsed


def sign_item(
    store: Store,
    evidence_key: bytes,
    item_id: int,
    *,
    actor: str,
    limits: Limits = DEFAULT_LIMITS,
) -> bool:
    """Store the signature of a banked item with its PDQ entry, computed from its evidence.

    True when a signature was written; False when the entry has one already, the item is not
    banked, or its evidence is gone (purged, never kept, not a photo)."""
    signed, _why = _sign(store, evidence_key, item_id, actor=actor, limits=limits)
    return signed


def _sign(
    store: Store, evidence_key: bytes, item_id: int, *, actor: str, limits: Limits
) -> tuple[bool, str]:
    entry_id, why = _pdq_entry(store, item_id)
    if entry_id is None:
        return False, why
    with store.session() as session:
        if session.get(BankSignature, entry_id) is not None:
            return False, "signed already"
    try:
        signature = _signature(open_evidence(store, evidence_key, item_id), limits)
    except EvidenceMissing:
        return False, "no evidence"
    except (MediaError, ValueError) as exc:
        log.info("hotline.unsignable", item=item_id, error=str(exc))
        return False, f"no signature: {exc}"
    with store.session() as session:
        if session.get(BankSignature, entry_id) is not None:  # another worker was faster
            return False, "signed already"
        session.add(
            BankSignature(bank_entry_id=entry_id, signature=signature, subject=subject_of(item_id))
        )
        audit.record(
            session,
            actor=actor,
            action="hotline.sign",
            object_type="bank_entry",
            object_id=entry_id,
            details={"item_id": item_id, "bank": HOTLINE_BANK},
        )
    return True, ""


def sign_banked(
    store: Store,
    evidence_key: bytes,
    *,
    actor: str = "hotline",
    limit: int = 200,
    limits: Limits = DEFAULT_LIMITS,
) -> SignReport:
    """Sign up to `limit` banked items that have no signature yet and still hold evidence."""
    report = SignReport()
    with store.session() as session:
        signed_entries = select(BankSignature.bank_entry_id)
        banked = session.execute(
            select(Item.id)
            .join(BankEntry, BankEntry.value == Item.pdq)
            .join(Bank, Bank.id == BankEntry.bank_id)
            .where(
                Bank.name == HOTLINE_BANK,
                BankEntry.signal_type == PDQ,
                BankEntry.id.not_in(signed_entries),
                Item.state == "assessed",
                Item.outcome.in_(ILLEGAL_OUTCOMES),
                Item.evidence_path.is_not(None),
                Item.evidence_purged_at.is_(None),
            )
            .order_by(Item.id)
            .limit(limit)
        ).all()
    for (item_id,) in banked:
        signed, why = _sign(store, evidence_key, int(item_id), actor=actor, limits=limits)
        if signed:
            report.signed.append(int(item_id))
        else:
            report.skipped.append((int(item_id), why))
    return report
