# Owns the banks themselves: create, list, get, update and delete, and their field rules.
"""Bank CRUD, and quarantine: a bank that answered more matches in a minute than its cap is
quarantined (`quarantine_bank`): it stops matching until a curator releases it
(`release_bank`). Every change writes an audit event in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from childguard.banks.records import bank_thresholds_json
from childguard.errors import ChildguardError, InputFormatError
from childguard.signals import get_signal_type
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.models import BANK_KINDS, DEFAULT_PDQ_THRESHOLD, Bank, BankEntry

_UNSET: Any = object()


class BankNotFound(ChildguardError):
    """No bank has that name or id."""


class BankExists(ChildguardError):
    """A bank with that name exists already."""


def _validate_bank_fields(
    name: str | None,
    kind: str | None,
    pdq_threshold: int | None,
    match_cap_per_minute: int | None = None,
) -> None:
    if name is not None and (
        not name or name != name.strip() or len(name) > 200 or not name.isprintable()
    ):
        raise InputFormatError(
            f"bad bank name {name!r}: want 1-200 printable characters, no outer spaces"
        )
    if kind is not None and kind not in BANK_KINDS:
        raise InputFormatError(f"bad bank kind {kind!r}; kinds: {', '.join(BANK_KINDS)}")
    if pdq_threshold is not None and not 0 <= pdq_threshold <= 256:
        raise InputFormatError(f"PDQ threshold {pdq_threshold} is outside 0-256")
    if match_cap_per_minute is not None and match_cap_per_minute < 0:
        raise InputFormatError(
            f"match cap {match_cap_per_minute} is negative; 0 means no cap, none the default"
        )


def find_bank(session: Session, bank: str | int) -> Bank:
    """The bank with that name (str) or id (int) in the caller's session; BankNotFound otherwise."""
    if isinstance(bank, int):
        found = session.get(Bank, bank)
    else:
        found = session.scalars(select(Bank).where(Bank.name == bank)).one_or_none()
    if found is None:
        raise BankNotFound(f"no bank {bank!r}")
    return found


def create_bank(
    store: Store,
    name: str,
    kind: str,
    *,
    description: str = "",
    owner: str = "",
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
    thresholds: Mapping[str, Any] | None = None,
    enabled: bool = True,
    match_cap_per_minute: int | None = None,
    actor: str,
) -> Bank:
    """Create a bank; BankExists if the name is taken, InputFormatError for bad fields.

    `thresholds` sets the bank's threshold of other near signal types (e.g. `{"vpdq": "80,50"}`),
    each checked by its signal type; PDQ's is `pdq_threshold`. `match_cap_per_minute`: None
    for the service's default cap, 0 for none."""
    _validate_bank_fields(name, kind, pdq_threshold, match_cap_per_minute)
    stored = bank_thresholds_json(thresholds) if thresholds else None
    with store.session() as session:
        if session.scalars(select(Bank.id).where(Bank.name == name)).first() is not None:
            raise BankExists(f"a bank named {name!r} exists already")
        bank = Bank(
            name=name,
            kind=kind,
            description=description,
            owner=owner,
            pdq_threshold=pdq_threshold,
            thresholds=stored,
            enabled=enabled,
            match_cap_per_minute=match_cap_per_minute,
        )
        session.add(bank)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="bank.create",
            object_type="bank",
            object_id=bank.id,
            details={
                "name": name,
                "kind": kind,
                "owner": owner,
                "pdq_threshold": pdq_threshold,
                "thresholds": stored,
                "enabled": enabled,
                "match_cap_per_minute": match_cap_per_minute,
            },
        )
    return bank


def list_banks(store: Store, *, kind: str | None = None, enabled: bool | None = None) -> list[Bank]:
    """All banks, by name, optionally only one kind or only enabled/disabled ones."""
    query = select(Bank).order_by(Bank.name)
    if kind is not None:
        query = query.where(Bank.kind == kind)
    if enabled is not None:
        query = query.where(Bank.enabled == enabled)
    with store.session() as session:
        return list(session.scalars(query))


def get_bank(store: Store, bank: str | int) -> Bank:
    """The bank with that name (str) or id (int); BankNotFound otherwise."""
    with store.session() as session:
        return find_bank(session, bank)


def update_bank(
    store: Store,
    bank: str | int,
    *,
    actor: str,
    name: str = _UNSET,
    kind: str = _UNSET,
    description: str = _UNSET,
    owner: str = _UNSET,
    pdq_threshold: int = _UNSET,
    thresholds: Mapping[str, Any] = _UNSET,
    enabled: bool = _UNSET,
    match_cap_per_minute: int | None = _UNSET,
    threshold_changes: Mapping[str, Any | None] = _UNSET,
) -> Bank:
    """Change the given fields of a bank; the audit event records old and new values.
    `thresholds` replaces the per-type thresholds of other near signal types;
    `threshold_changes` changes some of them and keeps the others (a type mapped to None goes
    back to its type's default); `match_cap_per_minute` None means the service's default cap,
    0 no cap."""
    if thresholds is not _UNSET and threshold_changes is not _UNSET:
        raise InputFormatError("give thresholds or threshold_changes, not both")
    set_some: dict[str, Any] = {}
    cleared: set[str] = set()
    if threshold_changes is not _UNSET:
        set_some = bank_thresholds_json(
            {k: v for k, v in threshold_changes.items() if v is not None}
        )
        for k, v in threshold_changes.items():
            if v is None:
                try:
                    cleared.add(get_signal_type(k).name)
                except ValueError as exc:
                    raise InputFormatError(str(exc)) from None
    wanted = {
        "name": name,
        "kind": kind,
        "description": description,
        "owner": owner,
        "pdq_threshold": pdq_threshold,
        "thresholds": thresholds if thresholds is _UNSET else bank_thresholds_json(thresholds),
        "enabled": enabled,
        "match_cap_per_minute": match_cap_per_minute,
    }
    changes: dict[str, Any] = {k: v for k, v in wanted.items() if v is not _UNSET}
    _validate_bank_fields(
        changes.get("name"),
        changes.get("kind"),
        changes.get("pdq_threshold"),
        changes.get("match_cap_per_minute"),
    )
    with store.session() as session:
        found = find_bank(session, bank)
        if threshold_changes is not _UNSET:
            merged = {k: v for k, v in (found.thresholds or {}).items() if k not in cleared}
            changes["thresholds"] = {**merged, **set_some} or None
        if "name" in changes and changes["name"] != found.name:
            taken = session.scalars(select(Bank.id).where(Bank.name == changes["name"])).first()
            if taken is not None:
                raise BankExists(f"a bank named {changes['name']!r} exists already")
        diff = {
            k: {"old": getattr(found, k), "new": v}
            for k, v in changes.items()
            if getattr(found, k) != v
        }
        for k, v in changes.items():
            setattr(found, k, v)
        if diff:
            found.updated_at = utcnow()
            audit.record(
                session,
                actor=actor,
                action="bank.update",
                object_type="bank",
                object_id=found.id,
                details={"name": found.name, "changes": diff},
            )
    return found


def delete_bank(store: Store, bank: str | int, *, actor: str) -> int:
    """Delete a bank and all its entries; returns how many entries went with it."""
    with store.session() as session:
        found = find_bank(session, bank)
        count = session.scalar(select(func.count()).where(BankEntry.bank_id == found.id)) or 0
        session.execute(delete(BankEntry).where(BankEntry.bank_id == found.id))
        session.execute(delete(Bank).where(Bank.id == found.id))
        audit.record(
            session,
            actor=actor,
            action="bank.delete",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "kind": found.kind, "entries": count},
        )
    return count


def quarantine_bank(store: Store, bank: str | int, reason: str, *, actor: str) -> Bank:
    """Quarantine a bank: it stops matching (the matcher treats it as disabled from its next
    refresh) until `release_bank`. A bank already quarantined keeps its first time and reason
    and records nothing."""
    with store.session() as session:
        found = find_bank(session, bank)
        if found.quarantined_at is not None:
            return found
        found.quarantined_at = utcnow()
        found.quarantine_reason = reason
        found.updated_at = found.quarantined_at
        audit.record(
            session,
            actor=actor,
            action="bank.quarantine",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "reason": reason},
        )
    return found


def release_bank(store: Store, bank: str | int, *, actor: str) -> Bank:
    """Release a quarantined bank, so it matches again; a bank not quarantined is left as it
    is and records nothing."""
    with store.session() as session:
        found = find_bank(session, bank)
        if found.quarantined_at is None:
            return found
        details = {
            "name": found.name,
            "quarantined_at": found.quarantined_at.isoformat(),
            "reason": found.quarantine_reason,
        }
        found.quarantined_at = None
        found.quarantine_reason = None
        found.updated_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="bank.release",
            object_type="bank",
            object_id=found.id,
            details=details,
        )
    return found


def mark_bank_changed(session: Session, bank_id: int) -> None:
    """Move the bank's `updated_at`, so that every matcher that follows the store drops what
    it cached of the bank at its next refresh (its entries, its photos' features): for a
    change that adds and removes no entry, such as a protected photo signed anew."""
    found = session.get(Bank, bank_id)
    if found is None:
        raise BankNotFound(f"bank {bank_id} not found")
    found.updated_at = utcnow()
