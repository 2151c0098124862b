# Owns the /v1 routes of background jobs: bulk imports queued as jobs, and the jobs themselves.
"""`POST /v1/banks/{name}/imports` saves a hash-list upload under the data dir
(`jobs/<id>/upload`) and queues a `bank-import` job for it (`childguard.jobs`), answering 202
with the job and `Location: /v1/jobs/<id>`; the scheduler of some worker then runs it. `GET
/v1/jobs/{id}` shows a job's state, progress, result and error; `GET /v1/jobs` lists them,
newest first, a page at a time; `DELETE /v1/jobs/{id}` cancels a queued or running one.
Every route needs a `curate` key; a key that acts for an organisation sees that
organisation's jobs only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from childguard.banks import get_bank
from childguard.banks.formats import FORMATS
from childguard.errors import InputFormatError
from childguard.jobs import (
    JobEnded,
    JobInfo,
    JobNotFound,
    bank_import,
    cancel,
    enqueue,
    get_job,
    job_dir,
    list_jobs,
)
from childguard.service.api.paging import cursor_query, decode_id_cursor, encode_cursor, limit_query
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.api.v1 import (
    UPLOAD_FIELD,
    _checked_key,
    _fingerprint,
    answer_once,
)
from childguard.service.auth import Caller, owner
from childguard.service.scheduler import jobs_dir
from childguard.service.state import ServiceState

router = APIRouter(prefix="/v1", tags=["v1: jobs"], route_class=ProblemRoute, responses=RESPONSES)

_CHUNK = 1 << 20

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _job_id(raw: str) -> int:
    if not raw.isdigit():
        raise Problem(404, f"no job {raw!r}", slug="job-not-found")
    return int(raw)


def _not_found(exc: JobNotFound) -> Problem:
    return Problem(404, str(exc), slug="job-not-found")


def job_json(job: JobInfo) -> dict[str, Any]:
    return job.to_dict()


async def _stage_upload(request: Request, staging: Path) -> tuple[str | None, str]:
    """The upload written to `staging` (multipart field `file`, or the raw body): its file
    name and SHA-256."""
    digest = hashlib.sha256()
    filename: str | None = None
    staging.parent.mkdir(parents=True, exist_ok=True)
    with staging.open("wb") as out:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get(UPLOAD_FIELD)
            if not isinstance(upload, StarletteUploadFile):
                raise Problem(422, f"send the hash list in the multipart field {UPLOAD_FIELD!r}")
            filename = upload.filename
            while chunk := await upload.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        else:
            async for chunk in request.stream():
                digest.update(chunk)
                out.write(chunk)
    if staging.stat().st_size == 0:
        raise Problem(422, "the hash list is empty", slug="empty-upload")
    return filename, digest.hexdigest()


@router.post("/banks/{name}/imports", status_code=202, openapi_extra=_IMPORT_BODY)
async def imports_create(
    request: Request,
    name: str,
    format: str | None = Query(
        None, description=f"one of {', '.join(FORMATS)} (guessed if absent)"
    ),
    signal_type: str | None = Query(
        None, description="type of untyped hashes (64-digit plain lists)"
    ),
    columns: str | None = Query(
        None, description="CSV column map, e.g. value=Hash,classification_label=Cat"
    ),
    source: str | None = Query(None, description="the list's name (default: the file name)"),
    organisation: str | None = Query(None, description="the organisation that supplied it"),
    idempotency_key: str | None = Header(None, description="makes a retry safe"),
    caller: Caller = owner("curate"),
) -> JSONResponse:
    """Queue an import of a hash list (multipart field `file`, or the raw body) into a bank:
    202, `{"job": {...}}` and `Location: /v1/jobs/<id>`. The job's result counts what was
    `added`, `already_present` and `invalid` (with the first invalid lines). With an
    `Idempotency-Key`, the same key and upload again answers the first job."""
    state = _state(request)
    bank = await run_in_threadpool(get_bank, state.store, name)
    key = _checked_key(idempotency_key)
    base = jobs_dir(state.settings)
    staging = base / "incoming" / uuid.uuid4().hex
    try:
        filename, digest = await _stage_upload(request, staging)
        try:
            params = bank_import.check_params(
                {
                    "bank": bank.name,
                    "format": format,
                    "signal_type": signal_type,
                    "columns": columns,
                    "source": source,
                    "organisation": organisation,
                    "filename": filename,
                }
            )
        except InputFormatError as exc:
            raise Problem(422, str(exc), slug="invalid-import") from None
        fingerprint = _fingerprint("POST", request.url.path, {"params": params, "sha256": digest})

        def place(job_id: int) -> None:
            target = job_dir(base, job_id) / bank_import.UPLOAD_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(target)

        def queue() -> dict[str, Any]:
            job = enqueue(
                state.store,
                bank_import.KIND,
                params,
                caller.actor,
                caller.organisation_id,
                prepare=place,
            )
            return {"job": job_json(job)}

        answer = await run_in_threadpool(
            answer_once, state, caller.actor, key, fingerprint, queue, 202
        )
    finally:
        staging.unlink(missing_ok=True)
    job_id = _replayed_job(answer)
    if job_id is not None:
        answer.headers["Location"] = f"/v1/jobs/{job_id}"
    return answer


def _replayed_job(response: JSONResponse) -> int | None:
    """The id of the job an answer (first or replayed) names."""
    try:
        return int(json.loads(bytes(response.body))["job"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


@router.get("/jobs")
def jobs_list(
    request: Request,
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    kind: str | None = Query(None, description="only jobs of this kind"),
    status: str | None = Query(None, description="only jobs in this state"),
    caller: Caller = owner("curate"),
) -> dict[str, Any]:
    """Jobs newest first, a page at a time: `{"jobs": [...], "next_cursor": str | null}`."""
    before = decode_id_cursor(cursor) if cursor is not None else None
    found = list_jobs(
        _state(request).store,
        before_id=before,
        limit=limit + 1,
        kind=kind,
        status=status,
        organisation_id=caller.organisation_id,
    )
    page = found[:limit]
    more = len(found) > limit
    return {
        "jobs": [job_json(j) for j in page],
        "next_cursor": encode_cursor(page[-1].id) if more and page else None,
    }


@router.get("/jobs/{job_id}")
def jobs_show(request: Request, job_id: str, caller: Caller = owner("curate")) -> dict[str, Any]:
    """One job: `{"job": {"id", "kind", "status", "progress": {"done", "total"}, "result",
    "error", ...}}`."""
    try:
        job = get_job(
            _state(request).store, _job_id(job_id), organisation_id=caller.organisation_id
        )
    except JobNotFound as exc:
        raise _not_found(exc) from None
    return {"job": job_json(job)}


@router.delete("/jobs/{job_id}")
def jobs_cancel(request: Request, job_id: str, caller: Caller = owner("curate")) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops at its next progress report):
    the job as it is now; 409 for a job that has ended."""
    state = _state(request)
    number = _job_id(job_id)
    try:
        job = cancel(state.store, number, caller.actor, organisation_id=caller.organisation_id)
    except JobNotFound as exc:
        raise _not_found(exc) from None
    except JobEnded as exc:
        raise Problem(409, str(exc), slug="job-ended") from None
    if job.started_at is None:  # never claimed: no worker will remove its files
        shutil.rmtree(job_dir(jobs_dir(state.settings), number), ignore_errors=True)
    return {"job": job_json(job)}
