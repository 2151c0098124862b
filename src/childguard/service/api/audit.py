# Owns the /v1 audit route: the audit log, filtered and paginated, for admins.
"""`GET /v1/audit` (owner `admin`): audit events newest first, thin over
`childguard.store.audit_log.list_events`, with its filters and cursor pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from childguard.service.api.paging import (
    cursor_query,
    decode_id_cursor,
    encode_cursor,
    filter_text,
    filter_time,
    limit_query,
)
from childguard.service.api.problems import RESPONSES, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.store.audit_log import list_events

router = APIRouter(prefix="/v1", tags=["audit"], route_class=ProblemRoute, responses=RESPONSES)


@router.get("/audit")
def audit_list(
    request: Request,
    actor: str | None = Query(None, description="only this actor (e.g. `key:3`)"),
    action: str | None = Query(None, description="this action or those under it (`key.`)"),
    object_type: str | None = Query(None, description="only events on this type of object"),
    object_id: str | None = Query(None, description="only events on the object with this id"),
    since: datetime | None = Query(None, description="at or after this time (UTC if no zone)"),
    until: datetime | None = Query(None, description="before this time (UTC if no zone)"),
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    _: Caller = owner("admin"),
) -> dict[str, Any]:
    """Who did what to which object, and when, newest first: `{"events": [{"id", "at",
    "actor", "action", "object_type", "object_id", "details"}], "next_cursor"}`."""
    state: ServiceState = request.app.state.service
    before = decode_id_cursor(cursor) if cursor is not None else None
    found = list_events(
        state.store,
        actor=filter_text(actor, "actor"),
        action=filter_text(action, "action"),
        object_type=filter_text(object_type, "object_type"),
        object_id=filter_text(object_id, "object_id"),
        since=filter_time(since, "since"),
        until=filter_time(until, "until"),
        limit=limit + 1,
        before_id=before,
        newest_first=True,
    )
    page = found[:limit]
    return {
        "events": [e.to_dict() for e in page],
        "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None,
    }
