# Owns organisations: creating, changing and removing them, with their `protected` bank.
"""Organisations that protect their photos: contacts (emails, webhook URL and secret), how
they want alerts (immediately or as a daily digest), and their own bank of kind `protected`.

`update_organisation` changes contacts and the alert mode (audited); when the contacts change,
the organisation's undelivered alerts are queued again for them. `remove_organisation` removes
an organisation with its photos, its bank and entries, its alerts, view readings, API keys and
webhook subscriptions (audited; `removal_summary` says what goes with it beforehand). Its
sightings stay, with the bank's name copied in them. An organisation with user accounts is not
removed: its users would lose their scope."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from childguard.alerts.dispatch import requeue_undelivered
from childguard.alerts.webhook import validate_webhook_url
from childguard.banks import remove_entries_by_id
from childguard.errors import ChildguardError
from childguard.store import audit
from childguard.store.account_models import ApiKey, User
from childguard.store.models import Bank, BankEntry
from childguard.store.protect_models import (
    ALERT_MODES,
    Alert,
    Organisation,
    ProtectedPhoto,
    ViewObservation,
)
from childguard.store.webhook_models import WebhookSubscription

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")
_NAME = re.compile(r"^[\w][\w .,'&()-]{0,199}$")


class OrganisationError(ChildguardError):
    """An organisation is unknown, already exists, or was given invalid contacts."""


class OrganisationNotFound(OrganisationError):
    """No organisation has that id."""


def bank_name_for(org_name: str) -> str:
    return f"protected:{org_name}"


def validate_emails(emails: Sequence[str]) -> list[str]:
    cleaned = [e.strip() for e in emails if e.strip()]
    bad = [e for e in cleaned if not _EMAIL.match(e)]
    if bad:
        raise OrganisationError(f"not an email address: {', '.join(repr(b) for b in bad)}")
    return cleaned


def create_organisation(
    session: Session,
    name: str,
    *,
    emails: Sequence[str] = (),
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    alert_mode: str = "immediate",
    actor: str = "cli",
) -> Organisation:
    """Create an organisation and its `protected` bank. A webhook without a secret gets a new
    random one (read it back with `show`, and give it to the receiver)."""
    name = name.strip()
    if not _NAME.match(name):
        raise OrganisationError(
            f"invalid organisation name {name!r}: use letters, digits, spaces and .,'&()- "
            "(at most 200 characters)"
        )
    if alert_mode not in ALERT_MODES:
        raise OrganisationError(f"alert mode must be one of {', '.join(ALERT_MODES)}")
    clean_emails = validate_emails(emails)
    if webhook_url:
        try:
            validate_webhook_url(webhook_url)
        except ValueError as exc:
            raise OrganisationError(str(exc)) from exc
        webhook_secret = webhook_secret or secrets.token_urlsafe(32)
    if session.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
        raise OrganisationError(
            f"organisation {name!r} already exists (change it with `childguard org edit`)"
        )
    bank_name = bank_name_for(name)
    if session.scalar(select(Bank.id).where(Bank.name == bank_name)) is not None:
        raise OrganisationError(f"a bank named {bank_name!r} already exists")
    bank = Bank(
        name=bank_name, kind="protected", owner=name, description=f"Photos {name} published"
    )
    session.add(bank)
    session.flush()
    org = Organisation(
        name=name,
        emails=clean_emails,
        webhook_url=webhook_url or None,
        webhook_secret=webhook_secret if webhook_url else None,
        alert_mode=alert_mode,
        bank_id=bank.id,
    )
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="org.create",
        object_type="organisation",
        object_id=org.id,
        details={"name": name, "bank": bank_name, "emails": clean_emails, "webhook": webhook_url},
    )
    return org


def _check_webhook(url: str) -> None:
    try:
        validate_webhook_url(url)
    except ValueError as exc:
        raise OrganisationError(str(exc)) from exc


def update_organisation(
    session: Session,
    org: Organisation,
    *,
    emails: Sequence[str] | None = None,
    webhook_url: str | None = None,
    remove_webhook: bool = False,
    webhook_secret: str | None = None,
    new_secret: bool = False,
    alert_mode: str | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Change what is given (None: unchanged): the contact emails (replaced as a whole), the
    webhook URL (`remove_webhook` drops it and its secret), the webhook secret (`new_secret`:
    a new random one; a new webhook without a secret gets one), the alert mode. Audited.
    When the contacts change, the organisation's undelivered alerts (pending or given up) are
    queued again with a fresh retry schedule. Returns what changed, `{field: [old, new]}`
    (secrets shown as `"set"`), plus `requeued_alerts`."""
    if webhook_url is not None and remove_webhook:
        raise OrganisationError("give a new webhook URL or remove the webhook, not both")
    if alert_mode is not None and alert_mode not in ALERT_MODES:
        raise OrganisationError(f"alert mode must be one of {', '.join(ALERT_MODES)}")
    changes: dict[str, Any] = {}
    if emails is not None:
        clean = validate_emails(emails)
        if clean != list(org.emails):
            changes["emails"] = [list(org.emails), clean]
            org.emails = clean
    if webhook_url is not None:
        _check_webhook(webhook_url)
        if webhook_url != org.webhook_url:
            changes["webhook_url"] = [org.webhook_url, webhook_url]
            org.webhook_url = webhook_url
    if remove_webhook and org.webhook_url is not None:
        changes["webhook_url"] = [org.webhook_url, None]
        org.webhook_url, org.webhook_secret = None, None
    if org.webhook_url:
        secret = webhook_secret
        if secret is None and (new_secret or not org.webhook_secret):
            secret = secrets.token_urlsafe(32)
        if secret is not None and secret != org.webhook_secret:
            changes["webhook_secret"] = ["set" if org.webhook_secret else None, "set"]
            org.webhook_secret = secret
    elif webhook_secret is not None or new_secret:
        raise OrganisationError("a webhook secret needs a webhook URL (--webhook)")
    if alert_mode is not None and alert_mode != org.alert_mode:
        changes["alert_mode"] = [org.alert_mode, alert_mode]
        org.alert_mode = alert_mode
    requeued = 0
    if changes.keys() & {"emails", "webhook_url", "webhook_secret"}:
        requeued = requeue_undelivered(session, org.id)
    session.flush()
    if changes:
        audit.record(
            session,
            actor=actor,
            action="org.update",
            object_type="organisation",
            object_id=org.id,
            details={"name": org.name, "changes": changes, "requeued_alerts": requeued},
        )
    return {**changes, "requeued_alerts": requeued}


@dataclass(frozen=True)
class OrganisationRemoval:
    """What removing an organisation takes with it (its sightings stay)."""

    name: str
    bank: str
    photos: int
    bank_entries: int
    alerts: int
    view_readings: int
    api_keys: int
    webhook_subscriptions: int
    users: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.photos} protected photo(s), the bank {self.bank!r} with {self.bank_entries} "
            f"entries, {self.alerts} alert(s), {self.view_readings} view reading(s), "
            f"{self.api_keys} API key(s) and {self.webhook_subscriptions} webhook "
            "subscription(s); its sightings stay"
        )


def _count(session: Session, model: Any, column: Any, value: int) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(column == value)) or 0)


def removal_summary(session: Session, org: Organisation) -> OrganisationRemoval:
    """What `remove_organisation` would remove, counted now."""
    return OrganisationRemoval(
        name=org.name,
        bank=org.bank.name,
        photos=_count(session, ProtectedPhoto, ProtectedPhoto.organisation_id, org.id),
        bank_entries=_count(session, BankEntry, BankEntry.bank_id, org.bank_id),
        alerts=_count(session, Alert, Alert.organisation_id, org.id),
        view_readings=_count(session, ViewObservation, ViewObservation.organisation_id, org.id),
        api_keys=_count(session, ApiKey, ApiKey.organisation_id, org.id),
        webhook_subscriptions=_count(
            session, WebhookSubscription, WebhookSubscription.organisation_id, org.id
        ),
        users=_count(session, User, User.organisation_id, org.id),
    )


def remove_organisation(
    session: Session, org: Organisation, *, actor: str = "cli"
) -> OrganisationRemoval:
    """Remove `org` with everything `removal_summary` lists (audited). Refused while user
    accounts belong to it: remove them or move them to another organisation first."""
    summary = removal_summary(session, org)
    if summary.users:
        raise OrganisationError(
            f"organisation {org.name!r} has {summary.users} user account(s): remove them "
            "first (`childguard user list`, `childguard user remove`)"
        )
    bank = org.bank
    entry_ids = list(session.scalars(select(BankEntry.id).where(BankEntry.bank_id == bank.id)))
    org_id = org.id
    session.delete(org)  # photos, alerts, readings, keys and subscriptions go with it
    session.flush()
    remove_entries_by_id(session, entry_ids)
    session.delete(bank)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="org.remove",
        object_type="organisation",
        object_id=org_id,
        details=summary.to_dict(),
    )
    return summary


def get_organisation(session: Session, name: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.name == name.strip()))
    if org is None:
        known = ", ".join(list_organisation_names(session)) or "none yet"
        raise OrganisationError(f"no organisation named {name!r} (known: {known})")
    return org


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.name)))


def list_organisation_names(session: Session) -> list[str]:
    return list(session.scalars(select(Organisation.name).order_by(Organisation.name)))


def get_organisation_by_id(session: Session, org_id: int) -> Organisation:
    """The organisation with id `org_id`; OrganisationNotFound if there is none."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise OrganisationNotFound(f"no organisation with id {org_id}")
    return org


def organisation_exists(session: Session, name: str) -> bool:
    found = session.scalar(select(Organisation.id).where(Organisation.name == name.strip()))
    return found is not None


def organisations_page(
    session: Session, *, after_name: str | None = None, limit: int = 50
) -> list[Organisation]:
    """Organisations by name, a page at a time: those named after `after_name`."""
    query = select(Organisation).order_by(Organisation.name).limit(limit)
    if after_name is not None:
        query = query.where(Organisation.name > after_name)
    return list(session.scalars(query))
