# Owns where routes lead: police units, partner hotlines, platforms, and the home country.
"""The routing configuration a supervisor edits: destinations and the home country.

A destination is a police unit, a partner hotline (one per hosting country it covers) or a
platform's terms-of-service team (covering the hosts it names, `example.com` for that host or
`.example.com` for it and its subdomains). Each has a channel: `email` (an address), `webhook`
or `api` (an http(s) URL), or `download` (an analyst downloads the bundle and hands it over).
A destination may carry an age X25519 recipient (`age1...`): evidence media in its bundles is
encrypted to it.

Every write is audited. Destinations are never deleted (referrals keep pointing at them);
`active=False` takes one out of routing.

A `webhook` or `api` destination's requests are signed (`childguard.alerts.webhook.sign`)
with its own secret, derived from the service's (`destination_secret`); a supervisor reveals
it to give to the destination's receiver (`reveal_secret`, audited). It signs referrals to
police units and hotlines, and webhook notices to a platform destination's address
(`platform_at`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from childguard.errors import ChildguardError, InputFormatError
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.referral_models import (
    DESTINATION_CHANNELS,
    DESTINATION_KINDS,
    HotlineConfig,
    HotlineDestination,
)

VICS_PROFILES = ("uk", "us")
SIGNED_CHANNELS = ("webhook", "api")
SECRET_PURPOSE = b"referral-destination"
HOME_COUNTRY_KEY = "home_country"
MAX_NAME = 200
MAX_HOSTS = 500
_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$")
_HOST = re.compile(r"^\.?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
EDITABLE = (
    "name",
    "channel",
    "address",
    "country",
    "vics_profile",
    "public_key",
    "hosts",
    "active",
)


class DestinationNotFound(ChildguardError):
    """No destination has this id."""


class InvalidDestination(InputFormatError):
    """A destination's field is not acceptable; the message says which and why."""


class NothingSigned(ChildguardError):
    """The destination's channel (email, download) signs nothing: it has no secret to give."""


@dataclass(frozen=True)
class DestinationInfo:
    id: int
    name: str
    kind: str
    country: str | None
    channel: str
    address: str | None
    vics_profile: str | None
    public_key: str | None
    hosts: tuple[str, ...]
    active: bool
    updated_at: datetime
    updated_by: str

    def covers_host(self, host: str) -> bool:
        """Whether this (platform) destination names `host`."""
        host = host.lower().rstrip(".")
        for pattern in self.hosts:
            if pattern.startswith("."):
                if host == pattern[1:] or host.endswith(pattern):
                    return True
            elif host == pattern:
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        data["updated_at"] = self.updated_at.isoformat()
        return data


def _info(row: HotlineDestination) -> DestinationInfo:
    return DestinationInfo(
        id=row.id,
        name=row.name,
        kind=row.kind,
        country=row.country,
        channel=row.channel,
        address=row.address,
        vics_profile=row.vics_profile,
        public_key=row.public_key,
        hosts=tuple(row.hosts or ()),
        active=row.active,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def check_country(country: str | None, *, field: str = "country") -> str | None:
    """`country` upper-cased if it is an ISO 3166-1 alpha-2 code (or None)."""
    if country is None:
        return None
    text = country.strip()
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise InvalidDestination(f"{field} {country!r} is not an ISO 3166-1 alpha-2 code")
    return text.upper()


def _check_address(channel: str, address: str | None) -> str | None:
    if channel == "download":
        return None
    if not address or not address.strip():
        raise InvalidDestination(f"a {channel} destination needs an address")
    text = address.strip()
    if channel == "email":
        if len(text) > 254 or not _EMAIL.match(text):
            raise InvalidDestination(f"address {text[:100]!r} is not an email address")
        return text
    if not re.match(r"^https?://[^/\s]+", text) or any(c.isspace() for c in text):
        raise InvalidDestination(f"address {text[:100]!r} is not an http(s) URL")
    return text


def _check_public_key(key: str | None) -> str | None:
    if key is None or not key.strip():
        return None
    from pyrage import x25519

    text = key.strip()
    try:
        x25519.Recipient.from_str(text)
    except Exception:
        raise InvalidDestination(
            "public_key is not an age X25519 recipient (age1...); make one with age-keygen"
        ) from None
    return text


def _check_hosts(hosts: Sequence[str] | None) -> list[str] | None:
    if hosts is None:
        return None
    if isinstance(hosts, str):
        raise InvalidDestination("hosts is a list of host names")
    if len(hosts) > MAX_HOSTS:
        raise InvalidDestination(f"hosts names {len(hosts)} hosts; at most {MAX_HOSTS}")
    out = []
    for host in hosts:
        text = str(host).strip().lower().rstrip(".")
        if not _HOST.match(text) or len(text) > 254:
            raise InvalidDestination(f"host {str(host)[:100]!r} is not a host name")
        out.append(text)
    return sorted(set(out))


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    kind = values["kind"]
    if kind not in DESTINATION_KINDS:
        raise InvalidDestination(f"kind {kind!r} is not one of {', '.join(DESTINATION_KINDS)}")
    channel = values["channel"]
    if channel not in DESTINATION_CHANNELS:
        raise InvalidDestination(
            f"channel {channel!r} is not one of {', '.join(DESTINATION_CHANNELS)}"
        )
    name = str(values["name"]).strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidDestination(f"name must be 1-{MAX_NAME} characters")
    country = check_country(values.get("country"))
    if kind in ("police", "hotline") and country is None:
        raise InvalidDestination(f"a {kind} destination needs the country it serves")
    profile = values.get("vics_profile")
    if profile is not None and profile not in VICS_PROFILES:
        raise InvalidDestination(f"vics_profile {profile!r} is not one of {VICS_PROFILES}")
    hosts = _check_hosts(values.get("hosts"))
    if kind == "platform" and not hosts:
        raise InvalidDestination("a platform destination needs the hosts it covers")
    return {
        "name": name,
        "kind": kind,
        "channel": channel,
        "address": _check_address(channel, values.get("address")),
        "country": country,
        "vics_profile": profile,
        "public_key": _check_public_key(values.get("public_key")),
        "hosts": hosts,
        "active": bool(values.get("active", True)),
    }


def _audit_details(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k != "public_key"}
    if "public_key" in values:
        out["public_key_set"] = values["public_key"] is not None
    return out


def create_destination(
    store: Store,
    *,
    name: str,
    kind: str,
    channel: str,
    actor: str,
    address: str | None = None,
    country: str | None = None,
    vics_profile: str | None = None,
    public_key: str | None = None,
    hosts: Sequence[str] | None = None,
    active: bool = True,
) -> DestinationInfo:
    """A new destination, checked and audited; InvalidDestination saying what is wrong."""
    values = _checked(
        {
            "name": name,
            "kind": kind,
            "channel": channel,
            "address": address,
            "country": country,
            "vics_profile": vics_profile,
            "public_key": public_key,
            "hosts": hosts,
            "active": active,
        }
    )
    try:
        with store.session() as session:
            row = HotlineDestination(updated_by=actor, **values)
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="destination.create",
                object_type="destination",
                object_id=row.id,
                details=_audit_details(values),
            )
            return _info(row)
    except IntegrityError:
        raise InvalidDestination(f"a destination named {values['name']!r} exists") from None


def _row(session: Any, destination_id: int) -> HotlineDestination:
    row = session.get(HotlineDestination, destination_id)
    if row is None:
        raise DestinationNotFound(f"no destination {destination_id}")
    return row


def update_destination(
    store: Store, destination_id: int, *, actor: str, **changes: Any
) -> DestinationInfo:
    """Change the named fields (`EDITABLE`); the kind never changes. Audited with the old
    and new values (a public key only as set or not)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidDestination(
            f"cannot change {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}"
        )
    try:
        with store.session() as session:
            row = _row(session, destination_id)
            current = {
                "name": row.name,
                "kind": row.kind,
                "channel": row.channel,
                "address": row.address,
                "country": row.country,
                "vics_profile": row.vics_profile,
                "public_key": row.public_key,
                "hosts": row.hosts,
                "active": row.active,
            }
            values = _checked({**current, **changes})
            changed = {k: v for k, v in values.items() if current.get(k) != v}
            for key, value in changed.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            row.updated_by = actor
            if changed:
                audit.record(
                    session,
                    actor=actor,
                    action="destination.update",
                    object_type="destination",
                    object_id=row.id,
                    details={
                        "before": _audit_details({k: current[k] for k in changed}),
                        "after": _audit_details(changed),
                    },
                )
            session.flush()
            return _info(row)
    except IntegrityError:
        raise InvalidDestination(f"a destination named {changes.get('name')!r} exists") from None


def get_destination(store: Store, destination_id: int) -> DestinationInfo:
    with store.session() as session:
        return _info(_row(session, destination_id))


def list_destinations(
    store: Store, *, kind: str | None = None, active_only: bool = False
) -> list[DestinationInfo]:
    query = select(HotlineDestination).order_by(HotlineDestination.kind, HotlineDestination.name)
    if kind is not None:
        query = query.where(HotlineDestination.kind == kind)
    if active_only:
        query = query.where(HotlineDestination.active.is_(True))
    with store.session() as session:
        return [_info(row) for row in session.scalars(query)]


def home_country(store: Store, default: str) -> str:
    """The hotline's country as a supervisor set it, else `default` (the setting)."""
    with store.session() as session:
        row = session.get(HotlineConfig, HOME_COUNTRY_KEY)
        return str(row.value) if row is not None and row.value else default.upper()


def set_home_country(store: Store, country: str, *, actor: str) -> str:
    """Set the hotline's country (audited); the checked code."""
    code = check_country(country, field="home_country")
    assert code is not None
    with store.session() as session:
        row = session.get(HotlineConfig, HOME_COUNTRY_KEY)
        before = row.value if row is not None else None
        if row is None:
            session.add(HotlineConfig(key=HOME_COUNTRY_KEY, value=code, updated_by=actor))
        else:
            row.value = code
            row.updated_at = utcnow()
            row.updated_by = actor
        audit.record(
            session,
            actor=actor,
            action="routing.home-country",
            object_type="hotline-config",
            object_id=HOME_COUNTRY_KEY,
            details={"before": before, "after": code},
        )
    return code


# ---------------------------------------------------------------------- signing secrets


def destination_secret(service_secret: bytes, destination_id: int) -> str:
    """The signing secret of one destination's webhook or api requests (hex)."""
    key = hmac.new(service_secret, SECRET_PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, f"destination:{destination_id}".encode(), hashlib.sha256).hexdigest()


def reveal_secret(
    store: Store, service_secret: bytes, destination_id: int, *, actor: str
) -> tuple[DestinationInfo, str]:
    """The destination and its signing secret, for its receiver; every reveal is audited.
    NothingSigned for an email or download destination."""
    with store.session() as session:
        destination = _info(_row(session, destination_id))
        if destination.channel not in SIGNED_CHANNELS:
            raise NothingSigned(
                f"{destination.name!r} receives by {destination.channel}: nothing it gets is signed"
            )
        audit.record(
            session,
            actor=actor,
            action="destination.secret_reveal",
            object_type="destination",
            object_id=destination.id,
            details={"channel": destination.channel},
        )
    return destination, destination_secret(service_secret, destination.id)


def platform_at(store: Store, address: str) -> DestinationInfo | None:
    """The platform destination whose webhook or api address is exactly `address` (the
    active one first, then the oldest), if any."""
    with store.session() as session:
        row = session.scalars(
            select(HotlineDestination)
            .where(
                HotlineDestination.kind == "platform",
                HotlineDestination.channel.in_(SIGNED_CHANNELS),
                HotlineDestination.address == address,
            )
            .order_by(HotlineDestination.active.desc(), HotlineDestination.id)
            .limit(1)
        ).first()
        return _info(row) if row is not None else None
