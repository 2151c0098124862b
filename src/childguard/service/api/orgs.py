# Owns the /v1 organisation routes: organisations for admins, and for an organisation's own
# users its photos, the sightings of them and its alerts.
"""Organisations as tenants, under `/v1`, thin over `childguard.protect`.

`/v1/organisations*` (owner `admin`) lists, creates and shows organisations. `/v1/organisation*`
(owner `org-admin`) answers the caller's own organisation (`Caller.organisation_id`: a key or
user made for it) and nothing else: a caller of no organisation is 403 `no-organisation`, and
an id of another organisation's photo or sighting is 404, as an id that does not exist, so ids
never tell one tenant what another holds. Lists are cursor-paginated
(`childguard.service.api.paging`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError

from childguard.protect.organisations import (
    OrganisationError,
    OrganisationNotFound,
    create_organisation,
    get_organisation_by_id,
    organisation_exists,
    organisations_page,
)
from childguard.protect.register import photo_warning
from childguard.protect.tenancy import (
    OrganisationSighting,
    PhotoNotFound,
    alerts_page,
    organisation_sighting,
    organisation_sightings,
    organisation_summary,
    photo_detail,
    photos_page,
)
from childguard.service.api.paging import (
    MAX_ID,
    cursor_query,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    filter_text,
    filter_time,
    limit_query,
)
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.store.protect_models import Alert, Organisation, ProtectedPhoto

router = APIRouter(
    prefix="/v1", tags=["organisations"], route_class=ProblemRoute, responses=RESPONSES
)

NO_ORGANISATION = "this route is for an organisation's users"
# The largest ids the id columns hold (an organisation's is a 32-bit integer, photos' and
# sightings' 64-bit); a larger id in a path is 422, not a database error.
MAX_ORG_ID = 2**31 - 1


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------------- shapes


def organisation_json(org: Organisation) -> dict[str, Any]:
    """An organisation: its contacts, alert mode and bank (never its webhook secret)."""
    return {
        "id": org.id,
        "name": org.name,
        "emails": list(org.emails or []),
        "webhook_url": org.webhook_url,
        "alert_mode": org.alert_mode,
        "bank": org.bank.name,
        "created_at": _iso(org.created_at),
        "last_digest_at": _iso(org.last_digest_at),
    }


def photo_json(photo: ProtectedPhoto) -> dict[str, Any]:
    """A protected photo's metadata and hashes (no pixels are ever stored), and `warning`:
    `{"code", "reason"}` where its copies may go unnoticed (`protect.register.photo_warning`),
    else null."""
    warning = photo_warning(photo)
    return {
        "id": photo.id,
        "file_name": photo.file_name,
        "title": photo.title,
        "published_url": photo.published_url,
        "published_at": _iso(photo.published_at),
        "registered_at": _iso(photo.registered_at),
        "width": photo.width,
        "height": photo.height,
        "byte_size": photo.byte_size,
        "md5": photo.md5,
        "sha1": photo.sha1,
        "sha256": photo.sha256,
        "pdq": photo.pdq,
        "pdq_quality": photo.pdq_quality,
        "warning": warning.as_json() if warning else None,
    }


def sighting_json(found: OrganisationSighting, *, counters: bool = False) -> dict[str, Any]:
    """Where a copy of one of the organisation's photos was seen, and which photo it is."""
    v = found.sighting
    out: dict[str, Any] = {
        "id": v.id,
        "site": v.site,
        "page_url": v.page_url,
        "page_title": v.page_title,
        "image_url": v.image_url,
        "first_seen": _iso(v.first_seen),
        "last_seen": _iso(v.last_seen),
        "times_seen": v.times_seen,
        "status": v.status,
        "removed_at": _iso(v.removed_at),
        "signal_type": v.signal_type,
        "distance": v.distance,
        "photo": (
            {"id": found.photo.id, "file_name": found.photo.file_name, "title": found.photo.title}
            if found.photo is not None
            else None
        ),
    }
    if counters:
        out["counters"] = [{**c, "observed_at": _iso(c["observed_at"])} for c in v.counters]
    return out


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "status": alert.status,
        "created_at": _iso(alert.created_at),
        "sent_at": _iso(alert.sent_at),
        "email_sent_at": _iso(alert.email_sent_at),
        "webhook_sent_at": _iso(alert.webhook_sent_at),
        "attempts": alert.attempts,
        "last_error": alert.last_error,
        "sighting_id": alert.sighting_id,
        "payload": alert.payload,
    }


# ---------------------------------------------------------------------- admin


class OrganisationIn(BaseModel):
    """A new organisation: its name, alert contacts and how it wants alerts."""

    model_config = ConfigDict(extra="forbid")
    name: str
    emails: list[str] = []
    webhook_url: str | None = None
    alert_mode: str = "immediate"


@router.get("/organisations")
def organisations_list(
    request: Request,
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    _: Caller = owner("admin"),
) -> dict[str, Any]:
    """Organisations by name, a page at a time: `{"organisations": [...], "next_cursor"}`."""
    after = decode_cursor(cursor) if cursor is not None else None
    with _state(request).store.session() as s:
        found = organisations_page(s, after_name=after, limit=limit + 1)
    page = found[:limit]
    return {
        "organisations": [organisation_json(o) for o in page],
        "next_cursor": encode_cursor(page[-1].name) if len(found) > limit else None,
    }


@router.post("/organisations", status_code=201)
def organisations_create(
    request: Request, body: OrganisationIn, caller: Caller = owner("admin")
) -> JSONResponse:
    """Create an organisation and its `protected` bank: 201 and the organisation, with
    `webhook_secret` (shown only here) when it has a webhook; 409 if the name is taken."""
    state = _state(request)
    filter_text(body.name, "name")
    filter_text(body.webhook_url, "webhook_url")
    for i, email in enumerate(body.emails):
        filter_text(email, f"emails[{i}]")
    try:
        with state.store.session() as s:
            org = create_organisation(
                s,
                body.name,
                emails=body.emails,
                webhook_url=body.webhook_url,
                alert_mode=body.alert_mode,
                actor=caller.actor,
            )
            answer = organisation_json(org)
            secret = org.webhook_secret
    except OrganisationError as exc:
        with state.store.session() as s:
            taken = organisation_exists(s, body.name)
        raise Problem(
            409 if taken else 422,
            str(exc),
            slug="organisation-exists" if taken else "invalid-value",
        ) from None
    except IntegrityError:
        raise Problem(
            409, f"organisation {body.name!r} already exists", slug="organisation-exists"
        ) from None
    state.changed()
    if secret is not None:
        answer["webhook_secret"] = secret
    return JSONResponse(
        answer, status_code=201, headers={"Location": f"/v1/organisations/{answer['id']}"}
    )


def _organisation(state: ServiceState, org_id: int) -> Organisation:
    with state.store.session() as s:
        try:
            return get_organisation_by_id(s, org_id)
        except OrganisationNotFound as exc:
            raise Problem(404, str(exc), slug="organisation-not-found") from None


@router.get("/organisations/{org_id}")
def organisations_show(
    request: Request, org_id: int = Path(ge=1, le=MAX_ORG_ID), _: Caller = owner("admin")
) -> dict[str, Any]:
    """One organisation, with `counts` of its photos, bank entries, sightings and alerts."""
    state = _state(request)
    org = _organisation(state, org_id)
    return {**organisation_json(org), "counts": organisation_summary(state.store, org)}


# ---------------------------------------------------------------------- the caller's own


def my_organisation(state: ServiceState, caller: Caller) -> Organisation:
    """The organisation the caller acts for; 403 `no-organisation` for a caller of none."""
    if caller.organisation_id is None:
        raise Problem(403, NO_ORGANISATION, slug="no-organisation")
    with state.store.session() as s:
        try:
            return get_organisation_by_id(s, caller.organisation_id)
        except OrganisationNotFound:
            raise Problem(403, NO_ORGANISATION, slug="no-organisation") from None


@router.get("/organisation")
def organisation_mine(request: Request, caller: Caller = owner("org-admin")) -> dict[str, Any]:
    """The caller's organisation: name, emails, webhook, alert mode, bank and `counts`."""
    state = _state(request)
    org = my_organisation(state, caller)
    return {**organisation_json(org), "counts": organisation_summary(state.store, org)}


@router.get("/organisation/photos")
def organisation_photos(
    request: Request,
    warning: str | None = Query(
        None, description="only the photos with this warning: outdated, plain, few-keypoints or any"
    ),
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """The organisation's protected photos in registration order:
    `{"photos": [...], "next_cursor"}`; with `warning`, only those with that warning
    (`protect.register.WARNING_CODES`, or `any`)."""
    state = _state(request)
    org = my_organisation(state, caller)
    after = decode_id_cursor(cursor) if cursor is not None else None
    found = photos_page(state.store, org, after_id=after, limit=limit + 1, warning=warning)
    page = found[:limit]
    return {
        "photos": [photo_json(p) for p in page],
        "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None,
    }


@router.get("/organisation/photos/{photo_id}")
def organisation_photo(
    request: Request,
    photo_id: int = Path(ge=1, le=MAX_ID),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """One of the organisation's photos, with its registered `signals` (`role`,
    `signal_type`, `value`); 404 for any other id."""
    state = _state(request)
    org = my_organisation(state, caller)
    try:
        detail = photo_detail(state.store, org, photo_id)
    except PhotoNotFound as exc:
        raise Problem(404, str(exc), slug="photo-not-found") from None
    signals = [{"role": r, "signal_type": t, "value": v} for r, t, v in detail.signals]
    return {**photo_json(detail.photo), "signals": signals}


_SINCE = Query(None, description="only those first seen at or after this time (UTC if no zone)")


@router.get("/organisation/sightings")
def organisation_sightings_list(
    request: Request,
    status: str | None = Query(None, description="online, removed or changed"),
    since: datetime | None = _SINCE,
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """Sightings of the organisation's photos, newest first: `{"sightings": [...],
    "next_cursor"}`, each with its page and image URLs, site, first and last seen, status,
    the matched photo (`id`, `file_name`, `title`) and the distance."""
    state = _state(request)
    org = my_organisation(state, caller)
    before = decode_id_cursor(cursor) if cursor is not None else None
    found = organisation_sightings(
        state.store,
        org,
        status=status,
        since=filter_time(since, "since"),
        before_id=before,
        limit=limit + 1,
    )
    page = found[:limit]
    return {
        "sightings": [sighting_json(f) for f in page],
        "next_cursor": encode_cursor(page[-1].sighting.id) if len(found) > limit else None,
    }


@router.get("/organisation/sightings/{sighting_id}")
def organisation_sightings_show(
    request: Request,
    sighting_id: int = Path(ge=1, le=MAX_ID),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """One sighting of the organisation's photos, with the page's view and comment
    `counters`; 404 for any other id."""
    state = _state(request)
    org = my_organisation(state, caller)
    found = organisation_sighting(state.store, org, sighting_id)
    if found is None:
        raise Problem(404, f"no sighting with id {sighting_id}", slug="sighting-not-found")
    return sighting_json(found, counters=True)


@router.get("/organisation/alerts")
def organisation_alerts(
    request: Request,
    status: str | None = Query(None, description="pending, sent or failed"),
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """The organisation's alerts, newest first, with their delivery status:
    `{"alerts": [...], "next_cursor"}`."""
    state = _state(request)
    org = my_organisation(state, caller)
    before = decode_id_cursor(cursor) if cursor is not None else None
    found = alerts_page(state.store, org, status=status, before_id=before, limit=limit + 1)
    page = found[:limit]
    return {
        "alerts": [alert_json(a) for a in page],
        "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None,
    }
