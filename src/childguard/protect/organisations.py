"""Organisations that protect their photos: contacts (emails, webhook URL and secret), how
they want alerts (immediately or as a daily digest), and their own bank of kind `protected`."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from childguard.alerts.webhook import validate_webhook_url
from childguard.errors import ChildguardError
from childguard.store import audit
from childguard.store.models import Bank
from childguard.store.protect_models import ALERT_MODES, Organisation

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
        raise OrganisationError(f"organisation {name!r} already exists")
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
