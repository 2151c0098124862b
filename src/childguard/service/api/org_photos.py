# Owns the organisation's registration of photos by signature over the API:
# POST /v1/organisation/photos/signatures.
"""Photos registered by signature: the browser (or any client) computes each photo's
signature on the owner's device and sends only that and the metadata; no image bytes.

`POST /v1/organisation/photos/signatures` (owner `org-admin`) takes `{"photos": [...]}`, at
most `MAX_SIGNATURES` at a time, each as `childguard.protect.register.SignatureInput.check`
describes, for the caller's own organisation (never one named in the body). The whole batch
is checked before anything is written: one bad photo is 422 `invalid-signature` naming the
field (`photos[3].sha256: want 64 lowercase hex digits`) and nothing is registered. A photo
already registered (same SHA-256) is answered in `already` and adds nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from childguard.protect.organisations import get_organisation_by_id
from childguard.protect.register import (
    SignatureInvalid,
    check_signatures,
    register_signatures,
)
from childguard.service.api.orgs import my_organisation
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState

router = APIRouter(
    prefix="/v1", tags=["organisations"], route_class=ProblemRoute, responses=RESPONSES
)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


@router.post("/organisation/photos/signatures")
def organisation_register_signatures(
    request: Request,
    body: dict[str, Any] = Body(...),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """Register photos by their signatures: `{"registered": [...], "already": [...],
    "resigned": [...], "warnings": [...]}`, each `{"id", "file_name", "sha256"}`, in the order
    sent; a warning adds `warning`, `{"code", "reason"}` (code `protect.register.PLAIN` or
    `FEW`): a photo signed now whose copies may go unnoticed (`protect.register.photo_warning`)."""
    state = _state(request)
    org = my_organisation(state, caller)
    unknown = sorted(set(body) - {"photos"})
    if unknown:
        raise Problem(422, f"unknown field {unknown[0]!r}", slug="invalid-signature")
    try:
        items = check_signatures(body.get("photos"))
    except SignatureInvalid as exc:
        raise Problem(422, str(exc), slug="invalid-signature") from None
    with state.store.session() as s:
        report = register_signatures(
            s, get_organisation_by_id(s, org.id), items, actor=caller.actor
        )
        answer = {
            "registered": [_photo(p) for p in report.registered],
            "already": [_photo(p) for p in report.already],
            "resigned": [_photo(p) for p in report.resigned],
            "warnings": [{**_photo(p), "warning": w.as_json()} for p, w in report.warnings],
        }
    if answer["registered"] or answer["resigned"]:
        state.changed()
    return answer


def _photo(photo: Any) -> dict[str, Any]:
    return {"id": photo.id, "file_name": photo.file_name, "sha256": photo.sha256}
