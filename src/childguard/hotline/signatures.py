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
task runs it, as it holds the evidence key), then signs anew the stored signatures that are out of
date (`robust.signature.stored_current`: a frame that does not fit their item, made from pixels
whose sides were reduced apart before signatures came from the item's picture,
`Content.picture`; or no square views), looking for them once per process, until it has tried
every one. Every signature written is audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from childguard.errors import MediaError
from childguard.hotline.assessments import HOTLINE_BANK
from childguard.hotline.evidence import EvidenceMissing, open_evidence
from childguard.hotline.schemes import ILLEGAL_OUTCOMES
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Content, Limits
from childguard.store import audit
from childguard.store.bank_signature_models import BankSignature
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.models import Bank, BankEntry

log = get_logger(__name__)

PDQ = "pdq"


def subject_of(item_id: int) -> str:
    return f"item:{item_id}"


@dataclass
class SignReport:
    """What `sign_banked` did: items signed, items whose bent signature was signed anew, and
    those left unsigned with the reason."""

    signed: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    resigned: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "signed": len(self.signed),
            "skipped": len(self.skipped),
            "items": self.signed,
            "resigned": self.resigned,
        }


# Stores this process has looked through for bent signatures and found none left in.
_SWEPT: set[str] = set()


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

    pixels = Content(data, origin="evidence", limits=limits, picture_wanted=True).picture()
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
    store: Store,
    evidence_key: bytes,
    item_id: int,
    *,
    actor: str,
    limits: Limits,
    anew: bool = False,
) -> tuple[bool, str]:
    """Sign one banked item; with `anew`, replace a stored signature that is out of date for
    the item (and only such a one)."""
    entry_id, why = _pdq_entry(store, item_id)
    if entry_id is None:
        return False, why
    with store.session() as session:
        if not _may_write(session, entry_id, item_id, anew):
            return False, "signed already"
    try:
        signature = _signature(open_evidence(store, evidence_key, item_id), limits)
    except EvidenceMissing:
        return False, "no evidence"
    except (MediaError, ValueError) as exc:
        log.info("hotline.unsignable", item=item_id, error=str(exc))
        return False, f"no signature: {exc}"
    with store.session() as session:
        if not _may_write(session, entry_id, item_id, anew):  # another worker was faster
            return False, "signed already"
        stored = session.get(BankSignature, entry_id)
        if stored is None:
            session.add(
                BankSignature(
                    bank_entry_id=entry_id, signature=signature, subject=subject_of(item_id)
                )
            )
        else:
            stored.signature = signature
            stored.created_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="hotline.resign" if stored is not None else "hotline.sign",
            object_type="bank_entry",
            object_id=entry_id,
            details={"item_id": item_id, "bank": HOTLINE_BANK},
        )
    return True, ""


def _may_write(session: Session, entry_id: int, item_id: int, anew: bool) -> bool:
    """Whether the entry has no signature, or (`anew`) one out of date for the item."""
    stored = session.get(BankSignature, entry_id)
    if stored is None:
        return True
    if not anew:
        return False
    item = session.get(Item, item_id)
    if item is None:
        return False
    from childguard.robust.signature import stored_current

    return not stored_current(stored.signature, item.width or 0, item.height or 0)


def _bent(store: Store, limit: int) -> list[int]:
    """Up to `limit` items whose stored signature is out of date (its frame does not fit them,
    or it has no square views) and whose evidence is still held, by item id; the frames and the
    first square's label are read out of the JSON by the database, not the signatures
    themselves."""
    from childguard.robust.signature import SQUARE_VIEWS, frame_fits

    first_square = next(iter(SQUARE_VIEWS))

    prefix = subject_of(0)[:-1]
    with store.session() as session:
        frames = session.execute(
            select(
                BankSignature.subject,
                BankSignature.signature[("size", 0)].as_integer(),
                BankSignature.signature[("size", 1)].as_integer(),
                BankSignature.signature[("squares", 0, 0)].as_string(),
            ).where(BankSignature.subject.startswith(prefix))
        ).all()
        by_item = {
            int(subject[len(prefix) :]): ((w, h), square == first_square)
            for subject, w, h, square in frames
            if subject[len(prefix) :].isdigit() and w and h
        }
        bent: list[int] = []
        ids = sorted(by_item)
        for start in range(0, len(ids), 500):
            if len(bent) >= limit:
                break
            chunk = ids[start : start + 500]
            rows = session.execute(
                select(Item.id, Item.width, Item.height)
                .where(
                    Item.id.in_(chunk),
                    Item.evidence_path.is_not(None),
                    Item.evidence_purged_at.is_(None),
                )
                .order_by(Item.id)
            )
            for item_id, width, height in rows:
                frame, squared = by_item[item_id]
                if not squared or not frame_fits(frame, width or 0, height or 0):
                    bent.append(int(item_id))
    return bent[:limit]


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
    room = limit - len(banked)
    if room <= 0 or store.url in _SWEPT:
        return report
    bent = _bent(store, room)
    for item_id in bent:
        signed, why = _sign(store, evidence_key, item_id, actor=actor, limits=limits, anew=True)
        if signed:
            report.resigned.append(item_id)
        else:
            report.skipped.append((item_id, why))
    if len(bent) < room:  # every one there was has been tried: no need to look again
        _SWEPT.add(store.url)
    return report
