# Owns the HMA-compatible routes (/m matching, /h hashing, /c curation), thin over `compat`.
"""The routes HMA 2 answers, with its paths, parameters and shapes. Lookups need a `match`
key, hashing a `hash` key, curation a `curate` key; with `allow_anonymous_hma` they also
accept calls with no key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from childguard.service import compat
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState

# HMA's error answer, `{"message": ...}`, for the OpenAPI document.
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
_WHEN = {
    400: "invalid signal, signal type, content or parameter",
    401: "no key, or an unknown, expired or revoked key",
    403: "a key of another role; a bank that exists already",
    404: "no such bank or content",
    413: "a body over the size limit",
    503: "the index is not ready",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": when, "content": {"application/json": {"schema": MESSAGE_SCHEMA}}}
    for status, when in _WHEN.items()
}

matching = APIRouter(prefix="/m", tags=["hma: matching"], responses=ERRORS)
hashing = APIRouter(prefix="/h", tags=["hma: hashing"], responses=ERRORS)
curation = APIRouter(prefix="/c", tags=["hma: curation"], responses=ERRORS)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _one_upload(photo: UploadFile | None, video: UploadFile | None) -> tuple[str, bytes]:
    given = [(name, f) for name, f in (("photo", photo), ("video", video)) if f is not None]
    if not given:
        raise compat.HmaError(400, "Missing multipart/form-data file upload")
    if len(given) > 1:
        raise compat.HmaError(400, "Only one file allowed per request")
    name, upload = given[0]
    return name, upload.file.read()


# ---------------------------------------------------------------------- /m


@matching.get("/lookup")
def lookup_get(
    request: Request,
    signal_type: str | None = Query(None, description="pdq, md5, sha1, sha256 or vpdq"),
    signal: str | None = Query(None, description="the hash"),
    url: str | None = Query(None, description="media to fetch, hash and look up instead"),
    content_type: str | None = Query(None, description="photo or video, for `url`"),
    _: Caller = owner("match", hma=True),
) -> dict[str, Any]:
    """Banks holding a match for one hash: `{"BANK": [{"bank_content_id", "distance"}]}`;
    for a `url`, keyed by signal type first (`{"pdq": {"BANK": [...]}}`) unless
    `signal_type` is given."""
    state = _state(request)
    if url:
        field, data = compat.fetch_url(state, url, content_type)
        return compat.lookup_upload(state, field, data, signal_type=signal_type)
    if signal is None or signal_type is None:
        missing = "signal" if signal is None else "signal_type"
        raise compat.HmaError(422, f"{missing} is required (or give a url)")
    return compat.lookup(state, signal_type, signal)


@matching.post("/lookup")
def lookup_post(
    request: Request,
    photo: UploadFile | None = File(None),
    video: UploadFile | None = File(None),
    signal_type: str | None = Query(None),
    _: Caller = owner("match", hma=True),
) -> dict[str, Any]:
    """Matches of an uploaded file, keyed by signal type: `{"pdq": {"BANK": [...]}}`."""
    field, data = _one_upload(photo, video)
    return compat.lookup_upload(_state(request), field, data, signal_type=signal_type)


@matching.get("/raw_lookup")
def raw_lookup(
    request: Request,
    signal_type: str = Query(...),
    signal: str = Query(...),
    include_distance: bool = Query(False),
    _: Caller = owner("match", hma=True),
) -> dict[str, Any]:
    """Matching bank content ids: `{"matches": [ids]}`."""
    return compat.raw_lookup(
        _state(request), signal_type, signal, include_distance=include_distance
    )


@matching.get("/index/status")
def index_status(
    request: Request,
    signal_type: str | None = Query(None),
    _: Caller = owner("match", hma=True),
) -> dict[str, Any]:
    """Per signal type: `{"built_to", "present", "size"}`."""
    return compat.index_status(_state(request), signal_type)


@matching.post("/compare")
def compare(
    body: Any = Body(..., examples=[{"pdq": ["<64 hex>", "<64 hex>"]}]),
    _: Caller = owner("match", hma=True),
) -> dict[str, Any]:
    """Compare pairs of hashes: `{"pdq": [match, {"distance": d}]}`."""
    return compat.compare(body)


# ---------------------------------------------------------------------- /h


@hashing.get("/hash")
def hash_url(
    request: Request,
    url: str | None = Query(None, description="media to fetch and hash"),
    content_type: str | None = Query(None, description="photo or video (default: from the URL)"),
    types: str | None = Query(None, description="comma-separated signal types"),
    _: Caller = owner("hash", hma=True),
) -> dict[str, str]:
    """Signals of the media at a URL, fetched under the crawler's SSRF policy."""
    if url is None:
        raise compat.HmaError(400, "url is required")
    state = _state(request)
    field, data = compat.fetch_url(state, url, content_type)
    return compat.hash_upload(state, field, data, types=types)


@hashing.post("/hash")
def hash_post(
    request: Request,
    photo: UploadFile | None = File(None),
    video: UploadFile | None = File(None),
    types: str | None = Query(None, description="comma-separated signal types"),
    _: Caller = owner("hash", hma=True),
) -> dict[str, str]:
    """Signals of one uploaded file (field `photo` or `video`): `{"pdq": hex, ...}`."""
    field, data = _one_upload(photo, video)
    return compat.hash_upload(_state(request), field, data, types=types)


# ---------------------------------------------------------------------- /c


@curation.get("/banks")
def banks_index(request: Request, _: Caller = owner("curate", hma=True)) -> list[dict[str, Any]]:
    """Every bank: `[{"matching_enabled_ratio", "name"}]`."""
    return compat.list_banks(_state(request))


@curation.post("/banks", status_code=201)
def bank_create(
    request: Request,
    body: Any = Body(..., examples=[{"name": "MY_BANK"}]),
    caller: Caller = owner("curate", hma=True),
) -> JSONResponse:
    """Create a bank (UPPER_SNAKE name): 201 and `{"matching_enabled_ratio", "name"}`."""
    created = compat.create_bank_hma(_state(request), body, actor=caller.actor)
    return JSONResponse(created, status_code=201)


@curation.get("/bank/{bank_name}")
def bank_show(
    request: Request, bank_name: str, _: Caller = owner("curate", hma=True)
) -> dict[str, Any]:
    """One bank: `{"matching_enabled_ratio", "name"}`."""
    return compat.get_bank(_state(request), bank_name)


@curation.post("/bank/{bank_name}/signal")
def bank_add_signal(
    request: Request,
    bank_name: str,
    body: Any = Body(..., examples=[{"pdq": "<64 hex>"}]),
    caller: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """Add signals to a bank: `{"id": n, "signals": {"pdq": hex}}`."""
    return compat.add_signals(_state(request), bank_name, body, actor=caller.actor)


@curation.put("/bank/{bank_name}")
def bank_update(
    request: Request,
    bank_name: str,
    body: Any = Body(..., examples=[{"enabled": False}]),
    caller: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """Rename, enable or disable a bank: the bank as it is now."""
    return compat.update_bank_hma(_state(request), bank_name, body, actor=caller.actor)


@curation.delete("/bank/{bank_name}")
def bank_delete(
    request: Request, bank_name: str, caller: Caller = owner("curate", hma=True)
) -> dict[str, Any]:
    """Delete a bank and its entries: `{"message": "Done"}`."""
    return compat.delete_bank_hma(_state(request), bank_name, actor=caller.actor)


@curation.post("/bank/{bank_name}/content")
def bank_add_content(
    request: Request,
    bank_name: str,
    photo: UploadFile | None = File(None),
    video: UploadFile | None = File(None),
    url: str | None = Query(None, description="media to fetch instead of an upload"),
    content_type: str | None = Query(None, description="photo or video, for `url`"),
    caller: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """Hash an uploaded (or fetched) file and bank its signals:
    `{"id": n, "signals": {"pdq": hex}}`."""
    state = _state(request)
    if url:
        compat.get_bank(state, bank_name)
        field, data = compat.fetch_url(state, url, content_type)
    elif photo is None and video is None:
        raise compat.HmaError(400, "Neither `url` nor multipart file upload was received")
    else:
        field, data = _one_upload(photo, video)
    return compat.add_content(state, bank_name, field, data, actor=caller.actor)


@curation.get("/bank/{bank_name}/content/{content_id}")
def bank_get_content(
    request: Request,
    bank_name: str,
    content_id: int,
    include_signals: bool = Query(False, description="add the content's `signals`"),
    _: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """One banked content: `{"id", "disable_until_ts", "collab_metadata",
    "original_media_uri", "bank"}`, and `signals` with `include_signals=true`."""
    return compat.get_content(
        _state(request), bank_name, content_id, include_signals=include_signals
    )


@curation.put("/bank/{bank_name}/content/{content_id}")
def bank_update_content(
    request: Request,
    bank_name: str,
    content_id: int,
    body: Any = Body(..., examples=[{"disable_until_ts": 0}]),
    caller: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """Disable (`disable_until_ts` 0, or a Unix time to disable until) or enable (1) one
    banked content; every worker stops matching it at its next refresh. The content as it
    is now."""
    return compat.update_content(_state(request), bank_name, content_id, body, actor=caller.actor)


@curation.delete("/bank/{bank_name}/content/{content_id}")
def bank_delete_content(
    request: Request,
    bank_name: str,
    content_id: int,
    caller: Caller = owner("curate", hma=True),
) -> dict[str, Any]:
    """Remove one entry from a bank: `{"deleted": n}`."""
    return compat.delete_content(_state(request), bank_name, content_id, actor=caller.actor)
