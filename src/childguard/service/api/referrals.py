# Owns the referral routes: bundles built, downloaded, sent and acknowledged; NCMEC export.
"""Referrals over JSON, thin over `childguard.hotline.referrals` (and the NCMEC export of
`childguard.hotline.ncmec`). Every route is the analyst's (`owner("analyst")`: keys of that
role and signed-in analysts).

- `POST /v1/hotline/referrals` `{"route_ids", "destination_id", "with_media"?}`: 201, the
  referral `built` from routes an analyst confirmed (409 `route-not-confirmed` otherwise);
- `GET /v1/hotline/referrals?state=&cursor=&limit=`: `{"referrals", "next_cursor"}`;
- `GET /v1/hotline/referrals/{id}`: the referral;
- `GET /v1/hotline/referrals/{id}/bundle`: the zip (`Content-Disposition: attachment`),
  checked against its recorded hashes first; each download is audited;
- `GET /v1/hotline/referrals/{id}/check`: the bundle read back, every hash checked;
- `POST /v1/hotline/referrals/{id}/send` `{"resend_uncertain"?}`: sent by the destination's
  channel; 502 `send-failed` (the referral `failed`, with the reason) when the channel fails;
- `POST /v1/hotline/referrals/{id}/acknowledge` `{"external_ref"}`: the destination has it;
- `GET /v1/hotline/items/{id}/ncmec.xml` and `GET /v1/hotline/referrals/{id}/ncmec.xml`: the
  NCMEC-shaped export (`application/xml`) of a decided illegal item, or of a referral's items.

Bundles live under `<data dir>/bundles`; the evidence key and the destinations' signing
secrets are derived from the service's secret; email goes over the alerts' SMTP settings
(`CHILDGUARD_SMTP_*`), from `hotline_notifier_email` when it is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from childguard.hotline import ncmec, referrals, routing
from childguard.hotline.bundles import (
    BundleError,
    BundleMismatch,
    EvidenceUnavailable,
    UnknownItem,
    verify_bundle,
)
from childguard.hotline.crypto import derive_key
from childguard.hotline.destinations import DestinationNotFound
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE
from childguard.service.api.paging import (
    MAX_ID,
    cursor_query,
    decode_id_cursor,
    encode_cursor,
    limit_query,
)
from childguard.service.api.problems import (
    MEDIA_TYPE,
    PROBLEM_SCHEMA,
    RESPONSES,
    Problem,
    ProblemRoute,
)
from childguard.service.auth import Caller, owner
from childguard.service.hotline_tasks import smtp_settings
from childguard.service.scheduler import data_dir
from childguard.service.state import ServiceState

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    502: {
        "description": "the destination could not be reached or refused the referral",
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    },
}
router = APIRouter(
    prefix="/v1/hotline", tags=["hotline"], route_class=ProblemRoute, responses=_RESPONSES
)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ReferralId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the referral's id")]
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the item's id")]
ReferralState = Literal["built", "sending", "sent", "uncertain", "acknowledged", "failed"]


class BuildRequest(BaseModel):
    route_ids: list[Id] = Field(
        min_length=1, max_length=referrals.MAX_ROUTES, description="confirmed routes"
    )
    destination_id: Id = Field(description="the police unit or partner hotline")
    with_media: bool = Field(
        False, description="include the evidence, encrypted to the destination's age key"
    )


class SendRequest(BaseModel):
    resend_uncertain: bool = Field(
        False, description="send again a referral whose earlier send was interrupted"
    )


class AcknowledgeRequest(BaseModel):
    external_ref: str = Field(min_length=1, max_length=200, description="the destination's id")


class XmlResponse(Response):
    media_type = "application/xml"


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def bundles_dir(state: ServiceState) -> Path:
    return data_dir(state.settings) / "bundles"


def transport(state: ServiceState) -> referrals.ReferralTransport:
    """How this service sends referrals: the alerts' SMTP settings, the derived secrets."""
    settings = state.settings
    secret = state.secret_key()
    return referrals.ReferralTransport(
        smtp=smtp_settings(settings),
        secret_for=lambda destination_id: referrals.destination_secret(secret, destination_id),
        reply_to=settings.hotline_notifier_email,
    )


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, referrals.ReferralNotFound | routing.RouteNotFound | DestinationNotFound):
        return Problem(404, str(exc), slug="not-found")
    if isinstance(exc, UnknownItem):
        return Problem(404, str(exc), slug="not-found")
    if isinstance(exc, routing.RouteNotConfirmed):
        return Problem(409, str(exc), slug="route-not-confirmed")
    if isinstance(exc, referrals.ReferralSendFailed):
        return Problem(502, str(exc), slug="send-failed", referral=exc.referral.to_dict())
    if isinstance(exc, referrals.ReferralStateError | EvidenceUnavailable | ncmec.NotExportable):
        return Problem(409, str(exc), slug="referral-conflict")
    if isinstance(exc, BundleMismatch):
        return Problem(409, str(exc), slug="bundle-mismatch")
    if isinstance(exc, BundleError | referrals.InvalidReferral | routing.InvalidRoute):
        return Problem(422, str(exc), slug="invalid-referral")
    raise exc


_ERRORS = (
    referrals.ReferralNotFound,
    referrals.ReferralStateError,
    referrals.ReferralSendFailed,
    referrals.InvalidReferral,
    routing.RouteNotFound,
    routing.RouteNotConfirmed,
    routing.InvalidRoute,
    DestinationNotFound,
    BundleError,
    ncmec.NotExportable,
)


async def _run(work: Any) -> Any:
    try:
        return await run_in_threadpool(work)
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post("/referrals", status_code=201)
async def build(
    request: Request, body: BuildRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Build one bundle for confirmed routes to a police unit or partner hotline."""
    state = _state(request)

    def work() -> dict[str, Any]:
        info = referrals.build_referral(
            state.store,
            body.route_ids,
            destination_id=body.destination_id,
            actor=caller.actor,
            bundles_dir=bundles_dir(state),
            evidence_key=derive_key(state.secret_key(), EVIDENCE_KEY_PURPOSE),
            with_media=body.with_media,
            notifier_name=state.settings.hotline_notifier_name,
        )
        return info.to_dict()

    result: dict[str, Any] = await _run(work)
    return result


@router.get("/referrals")
async def list_all(
    request: Request,
    state: ReferralState | None = None,
    cursor: str | None = cursor_query(),
    limit: int = limit_query(),
    _: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Referrals in id order, optionally of one state; `next_cursor` pages."""
    after = decode_id_cursor(cursor) if cursor else 0
    service = _state(request)

    def work() -> list[referrals.ReferralInfo]:
        referrals.settle_stale(service.store)
        return referrals.list_referrals(service.store, state=state, after_id=after, limit=limit)

    page: list[referrals.ReferralInfo] = await _run(work)
    return {
        "referrals": [r.to_dict() for r in page],
        "next_cursor": encode_cursor(page[-1].id) if len(page) == limit else None,
    }


@router.get("/referrals/{referral_id}")
async def get_one(
    request: Request, referral_id: ReferralId, _: Caller = owner("analyst")
) -> dict[str, Any]:
    """One referral: its state, times, hashes, destination and routes."""
    store = _state(request).store
    info: referrals.ReferralInfo = await _run(lambda: referrals.get_referral(store, referral_id))
    return info.to_dict()


@router.get(
    "/referrals/{referral_id}/bundle",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the bundle zip"}},
)
async def download(
    request: Request, referral_id: ReferralId, caller: Caller = owner("analyst")
) -> FileResponse:
    """The bundle zip, checked against its recorded hashes; the download is audited."""
    store = _state(request).store
    info, path = await _run(lambda: referrals.open_bundle(store, referral_id, actor=caller.actor))
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"{info.reference}.zip",
        content_disposition_type="attachment",
        headers={"X-Childguard-Manifest-SHA256": info.manifest_sha256},
    )


@router.get("/referrals/{referral_id}/check")
async def check(
    request: Request, referral_id: ReferralId, _: Caller = owner("analyst")
) -> dict[str, Any]:
    """The bundle read back: every file's hash and size against the manifest, the manifest's
    and the zip's against the referral's."""
    store = _state(request).store

    def work() -> dict[str, Any]:
        info = referrals.get_referral(store, referral_id)
        path = Path(info.bundle_path)
        if not path.is_file():
            return {"ok": False, "manifest_sha256": None, "files": [], "problems": ["missing"]}
        found = verify_bundle(
            path, manifest_sha256=info.manifest_sha256, bundle_sha256=info.bundle_sha256
        )
        return found.to_dict()

    result: dict[str, Any] = await _run(work)
    return result


@router.post("/referrals/{referral_id}/send")
async def send(
    request: Request,
    referral_id: ReferralId,
    body: SendRequest | None = None,
    caller: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Send the referral by its destination's channel (a download: mark it handed over)."""
    state = _state(request)
    resend = body.resend_uncertain if body is not None else False

    def work() -> dict[str, Any]:
        info = referrals.send_referral(
            state.store,
            referral_id,
            actor=caller.actor,
            transport=transport(state),
            resend_uncertain=resend,
        )
        return info.to_dict()

    result: dict[str, Any] = await _run(work)
    return result


@router.post("/referrals/{referral_id}/acknowledge")
async def acknowledge(
    request: Request,
    referral_id: ReferralId,
    body: AcknowledgeRequest,
    caller: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Record that the destination has the referral, under its own reference."""
    store = _state(request).store

    def work() -> dict[str, Any]:
        return referrals.acknowledge(
            store, referral_id, external_ref=body.external_ref, actor=caller.actor
        ).to_dict()

    result: dict[str, Any] = await _run(work)
    return result


def _reporter(state: ServiceState) -> ncmec.Reporter:
    settings = state.settings
    return ncmec.Reporter(settings.hotline_notifier_name, settings.hotline_notifier_email)


_XML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {}}, "description": "the NCMEC-shaped export"}
}


@router.get("/items/{item_id}/ncmec.xml", response_class=XmlResponse, responses=_XML)
async def item_ncmec(
    request: Request, item_id: ItemId, caller: Caller = owner("analyst")
) -> XmlResponse:
    """The NCMEC-shaped export of one item decided baseline or nationally illegal."""
    state = _state(request)
    data: bytes = await _run(
        lambda: ncmec.export_items(
            state.store, [item_id], actor=caller.actor, reporter=_reporter(state)
        )
    )
    return XmlResponse(
        data, headers={"Content-Disposition": f'attachment; filename="item-{item_id}.xml"'}
    )


@router.get("/referrals/{referral_id}/ncmec.xml", response_class=XmlResponse, responses=_XML)
async def referral_ncmec(
    request: Request, referral_id: ReferralId, caller: Caller = owner("analyst")
) -> XmlResponse:
    """The NCMEC-shaped export of a referral's items."""
    state = _state(request)

    def work() -> tuple[str, bytes]:
        info = referrals.get_referral(state.store, referral_id)
        manifest = referrals.bundle_manifest(state.store, referral_id)
        item_ids = [int(item["item_id"]) for item in manifest.get("items", [])]
        data = ncmec.export_items(
            state.store,
            item_ids,
            actor=caller.actor,
            reporter=_reporter(state),
            reference=info.reference,
        )
        return info.reference, data

    reference, data = await _run(work)
    return XmlResponse(
        data, headers={"Content-Disposition": f'attachment; filename="{reference}.xml"'}
    )
