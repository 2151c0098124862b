# Owns childguard's own API under /v1: hash, match, banks and entries, with problem details.
"""The `/v1` routes, thin over the library: uploads go through `Pipeline.process`, hashes
through the service's matcher (`Matcher.match_many`), bank changes through `childguard.banks`.

Hashing needs a `hash` key, matching a `match` key, banks and entries a `curate` key. Every
error is an RFC 9457 problem detail (`childguard.service.api.problems`). Adding entries takes
an `Idempotency-Key`: the same key and body again answers the first result without adding; the
same key with another body is 409. Keys are kept per caller for `IDEMPOTENCY_TTL`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Body, File, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from childguard.alerts.subscriptions import query_signals
from childguard.banks import (
    EntryRecord,
    InvalidRecord,
    create_bank,
    delete_bank,
    delete_entries,
    entry_counts,
    get_bank,
    import_records,
    list_banks,
    quarantine_bank,
    release_bank,
    set_entries_disabled,
    update_bank,
)
from childguard.banks.records import canonical_signal, validated
from childguard.errors import InvalidSignal
from childguard.matcher import Match, MatchOutcome
from childguard.media import Content
from childguard.netguard.fetch import FetchRefused, fetch
from childguard.service.api.paging import DEFAULT_PAGE, MAX_PAGE, decode_cursor, encode_cursor
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.signals import get_signal_type
from childguard.signals.content import ContentSignals
from childguard.store import Bank
from childguard.store.base import utcnow
from childguard.store.idempotency_models import IdempotencyKey
from childguard.store.models import DEFAULT_PDQ_THRESHOLD

router = APIRouter(prefix="/v1", tags=["v1"], route_class=ProblemRoute, responses=RESPONSES)

MAX_HASHES = 1_000
MAX_ENTRIES = 10_000
IDEMPOTENCY_TTL = timedelta(hours=24)
STALE_CLAIM = timedelta(minutes=10)
UPLOAD_FIELD = "file"


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# ---------------------------------------------------------------------- bodies


class HashQuery(BaseModel):
    """One hash to match."""

    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(examples=["pdq"])
    value: str


class MatchRequest(BaseModel):
    """Up to 1,000 hashes, matched together."""

    model_config = ConfigDict(extra="forbid")
    hashes: list[HashQuery]


class BankIn(BaseModel):
    """A new bank. `thresholds` sets other near types' thresholds, e.g. `{"vpdq": "80,50"}`."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str = "known-abuse"
    description: str = ""
    owner: str = ""
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD
    thresholds: dict[str, Any] | None = None
    enabled: bool = True
    match_cap_per_minute: int | None = Field(
        None, description="matches a minute before quarantine; null: the service's, 0: none"
    )


class BankPatch(BaseModel):
    """The fields of a bank to change; those not given stay. `quarantined: false` releases a
    quarantined bank (`true` quarantines it by hand); `match_cap_per_minute: null` gives it
    the service's default cap again."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    kind: str | None = None
    description: str | None = None
    owner: str | None = None
    pdq_threshold: int | None = None
    thresholds: dict[str, Any] | None = None
    enabled: bool | None = None
    match_cap_per_minute: int | None = None
    quarantined: bool | None = None


class EntryIn(BaseModel):
    """One signal to bank, with its provenance and classification."""

    model_config = ConfigDict(extra="forbid")
    signal_type: str
    value: str
    classification_scheme: str | None = None
    classification_label: str | None = None
    original_id: str | None = None
    source: str | None = None
    organisation: str | None = None
    metadata: dict[str, Any] | None = None


class EntriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[EntryIn]


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str
    value: str


class SignalsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[SignalIn]


# ---------------------------------------------------------------------- shapes


def match_json(match: Match) -> dict[str, Any]:
    """`Match.to_dict()` plus its `classification` (`scheme:label`)."""
    return {**match.to_dict(), "classification": match.classification}


def result_json(
    record: ContentSignals, outcome: MatchOutcome, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """One query's answer: what was asked, its signals, matches, suppressed and skipped."""
    return {
        "query": query,
        "signals": record.to_dict(),
        "matches": [match_json(m) for m in outcome.matches],
        "suppressed": [match_json(m) for m in outcome.suppressed],
        "allowed_by": [match_json(m) for m in outcome.allowed_by],
        "skipped": outcome.skipped,
    }


def bank_json(bank: Bank, entries: int) -> dict[str, Any]:
    return {
        "name": bank.name,
        "kind": bank.kind,
        "description": bank.description,
        "owner": bank.owner,
        "enabled": bank.enabled,
        "pdq_threshold": bank.pdq_threshold,
        "thresholds": bank.thresholds or {},
        "entries": entries,
        "match_cap_per_minute": bank.match_cap_per_minute,
        "quarantined_at": bank.quarantined_at.isoformat() if bank.quarantined_at else None,
        "quarantine_reason": bank.quarantine_reason,
        "created_at": bank.created_at.isoformat() if bank.created_at else None,
        "updated_at": bank.updated_at.isoformat() if bank.updated_at else None,
    }


def _field_errors(exc: ValidationError) -> Problem:
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(f['loc'])}: {f['msg']}" for f in fields)
    return Problem(422, detail or "invalid request", slug="invalid-request", errors=fields)


# ---------------------------------------------------------------------- hash


def _upload_content(data: bytes, filename: str | None, state: ServiceState) -> Content:
    if not data:
        raise Problem(422, f"the uploaded {UPLOAD_FIELD!r} is empty", slug="empty-upload")
    return Content(data, origin=filename or "upload", limits=state.hasher.limits)


def _undecodable(record: ContentSignals) -> Problem:
    return Problem(
        422,
        f"cannot hash the upload: {record.error}",
        slug="undecodable-content",
        signals=record.to_dict(),
    )


def fetched(state: ServiceState, url: str) -> tuple[bytes, str]:
    """The bytes at `url` (and the URL after redirects), fetched under the crawler's SSRF
    policy (`childguard.netguard.fetch`); a refused or failed fetch is 422."""
    try:
        got = fetch(
            url,
            max_bytes=state.settings.max_request_bytes,
            allow_private=state.settings.allow_private_fetch,
        )
    except FetchRefused as exc:
        raise Problem(422, str(exc), slug="fetch-refused") from None
    return got.data, got.url


def _one_source(has_file: bool, url: str | None) -> None:
    if has_file and url:
        raise Problem(422, f"send a file in {UPLOAD_FIELD!r} or a url, not both")
    if not has_file and not url:
        raise Problem(422, f"send the content in the multipart field {UPLOAD_FIELD!r} or a url")


def hash_bytes(state: ServiceState, data: bytes, origin: str | None) -> dict[str, Any]:
    """The signals of some content hashed through the pipeline (no matching)."""
    record, _ = state.hasher.process(_upload_content(data, origin, state))
    if record.error is not None:
        raise _undecodable(record)
    return record.to_dict()


_URL = Query(None, description="media to fetch (under the SSRF policy) instead of an upload")


@router.post("/hash")
def hash_upload(
    request: Request,
    file: UploadFile | None = File(None, description="the photo or video"),
    url: str | None = _URL,
    _: Caller = owner("hash"),
) -> dict[str, Any]:
    """The signals of one uploaded file (multipart field `file`) or of the media at `url`,
    in the hash output layout (`ContentSignals.to_dict()`). Content that cannot be decoded is
    422, with the signals its bytes gave (the exact hashes) in `signals`."""
    _one_source(file is not None, url)
    state = _state(request)
    if url:
        data, origin = fetched(state, url)
        return hash_bytes(state, data, origin)
    assert file is not None
    return hash_bytes(state, file.file.read(), file.filename)


MAX_BATCH = 100
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["urls"],
                    "properties": {
                        "urls": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                            "items": {"type": "string"},
                        }
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {
                        UPLOAD_FIELD: {
                            "type": "array",
                            "maxItems": MAX_BATCH,
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                }
            },
        },
    }
}


class UrlBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(min_length=1)


def _batch_item(
    state: ServiceState, index: int, source: str, load: Callable[[], tuple[bytes, str]]
) -> dict[str, Any]:
    """One item of a batch: its signals, or the problem that one item met (the others go on)."""
    try:
        data, origin = load()
        return {"index": index, "source": source, "signals": hash_bytes(state, data, origin)}
    except Problem as exc:
        return {"index": index, "source": source, "error": exc.body()}


def _given(data: bytes, name: str) -> tuple[bytes, str]:
    return data, name


def hash_batch_of(
    state: ServiceState, items: list[tuple[str, Callable[[], tuple[bytes, str]]]]
) -> dict[str, Any]:
    results = [_batch_item(state, i, source, load) for i, (source, load) in enumerate(items)]
    failed = sum(1 for r in results if "error" in r)
    return {"results": results, "hashed": len(results) - failed, "failed": failed}


@router.post("/hash/batch", openapi_extra=_BATCH_BODY)
async def hash_batch(request: Request, _: Caller = owner("hash")) -> dict[str, Any]:
    """Hash up to 100 files (the multipart field `file`, repeated) or URLs (`{"urls": [...]}`,
    each fetched under the SSRF policy): `{"results": [{"index", "source", "signals"} or
    {"index", "source", "error"}], "hashed", "failed"}`, in order. An item that cannot be
    fetched or decoded has its own problem in `error`; the others are still hashed."""
    state = _state(request)
    items: list[tuple[str, Callable[[], tuple[bytes, str]]]] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_BATCH + 1)
        uploads = [u for u in form.getlist(UPLOAD_FIELD) if isinstance(u, StarletteUploadFile)]
        if not uploads:
            raise Problem(422, f"send the files in the multipart field {UPLOAD_FIELD!r}")
        if len(uploads) > MAX_BATCH:
            raise Problem(413, f"at most {MAX_BATCH} files per batch", limit=MAX_BATCH)
        for upload in uploads:
            data = await upload.read()
            name = upload.filename or "upload"
            items.append((name, partial(_given, data, name)))
    else:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise Problem(400, "the request body is not valid JSON", slug="malformed") from None
        urls = body.get("urls") if isinstance(body, dict) else None
        if isinstance(urls, list) and len(urls) > MAX_BATCH:
            raise Problem(413, f"at most {MAX_BATCH} URLs per batch", limit=MAX_BATCH)
        try:
            parsed = UrlBatch.model_validate(body)
        except ValidationError as exc:
            raise _field_errors(exc) from None
        for url in parsed.urls:
            items.append((url, partial(fetched, state, url)))
    return await run_in_threadpool(hash_batch_of, state, items)


# ---------------------------------------------------------------------- match


def _hash_record(index: int | None, signal_type: str, value: str) -> ContentSignals:
    where = f"hashes[{index}]: " if index is not None else ""
    try:
        cls = get_signal_type(signal_type)
    except ValueError as exc:
        raise Problem(422, f"{where}{exc}", slug="invalid-signal") from None
    try:
        canonical = cls.validate(value)
    except InvalidSignal as exc:
        raise Problem(422, f"{where}{exc}", slug="invalid-signal") from None
    record = ContentSignals(path="")
    record.set(cls.name, canonical, 100 if cls.min_quality is not None else None)
    return record


def match_hashes(
    state: ServiceState, queries: list[HashQuery], *, batch: bool = True
) -> dict[str, Any]:
    """Each hash matched under each bank's threshold, in one batch: `{"results": [...]}`.
    An invalid hash is 422 naming it (`hashes[i]` in a `batch`)."""
    records = [
        _hash_record(i if batch else None, q.signal_type, q.value) for i, q in enumerate(queries)
    ]
    outcomes = state.with_matcher(lambda m: m.match_many(records))
    state.matched([(query_signals(r), o) for r, o in zip(records, outcomes, strict=True)])
    return {
        "results": [
            result_json(r, o, {"signal_type": q.signal_type, "value": q.value})
            for q, r, o in zip(queries, records, outcomes, strict=True)
        ]
    }


def match_upload(state: ServiceState, data: bytes, filename: str | None) -> dict[str, Any]:
    """One upload hashed and matched through the pipeline (robust views included)."""
    content = _upload_content(data, filename, state)
    with state.matcher() as matcher:
        record, outcome = state.pipeline(matcher).process(content)
    if record.error is not None:
        raise _undecodable(record)
    state.matched([(query_signals(record), outcome)])
    return {"results": [result_json(record, outcome)]}


_MATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["hashes"],
                    "properties": {
                        "hashes": {
                            "type": "array",
                            "maxItems": MAX_HASHES,
                            "items": {
                                "type": "object",
                                "required": ["signal_type", "value"],
                                "properties": {
                                    "signal_type": {"type": "string"},
                                    "value": {"type": "string"},
                                },
                            },
                        }
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post("/match", openapi_extra=_MATCH_BODY)
async def match_post(
    request: Request, url: str | None = _URL, _: Caller = owner("match")
) -> dict[str, Any]:
    """Match up to 1,000 hashes (`{"hashes": [{"signal_type", "value"}]}`), one upload
    (multipart field `file`) or the media at `url`: `{"results": [{"query", "signals",
    "matches", "suppressed", "allowed_by", "skipped"}]}`, one result per query, in order."""
    state = _state(request)
    if url:
        data, origin = await run_in_threadpool(fetched, state, url)
        return await run_in_threadpool(match_upload, state, data, origin)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get(UPLOAD_FIELD)
        if not isinstance(upload, StarletteUploadFile):
            raise Problem(422, f"send the content in the multipart field {UPLOAD_FIELD!r}")
        data = await upload.read()
        return await run_in_threadpool(match_upload, state, data, upload.filename)
    raw = await request.body()
    if not raw:
        raise Problem(422, "send {'hashes': [...]} as JSON, or a file", slug="invalid-request")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Problem(400, "the request body is not valid JSON", slug="malformed") from None
    hashes = body.get("hashes") if isinstance(body, dict) else None
    if isinstance(hashes, list) and len(hashes) > MAX_HASHES:
        raise Problem(
            413,
            f"{len(hashes)} hashes: at most {MAX_HASHES} per request",
            slug="too-many-hashes",
            limit=MAX_HASHES,
        )
    try:
        parsed = MatchRequest.model_validate(body)
    except ValidationError as exc:
        raise _field_errors(exc) from None
    return await run_in_threadpool(match_hashes, state, parsed.hashes)


@router.get("/match")
def match_get(
    request: Request,
    signal_type: str = Query(..., examples=["pdq"]),
    value: str = Query(..., description="the hash"),
    _: Caller = owner("match"),
) -> dict[str, Any]:
    """Match one hash: one result (`query`, `signals`, `matches`, `suppressed`, ...)."""
    result: dict[str, Any] = match_hashes(
        _state(request), [HashQuery(signal_type=signal_type, value=value)], batch=False
    )["results"][0]
    return result


# ---------------------------------------------------------------------- banks


@router.get("/banks")
def banks_list(
    request: Request,
    limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
    kind: str | None = Query(None, description="only banks of this kind"),
    _: Caller = owner("curate"),
) -> dict[str, Any]:
    """Banks by name, a page at a time: `{"banks": [...], "next_cursor": str | null}`."""
    store = _state(request).store
    banks = sorted(list_banks(store, kind=kind), key=lambda b: b.name)
    if cursor is not None:
        after = decode_cursor(cursor)
        banks = [b for b in banks if b.name > after]
    page = banks[:limit]
    counts = entry_counts(store)
    more = len(banks) > limit
    return {
        "banks": [bank_json(b, counts.get(b.id, 0)) for b in page],
        "next_cursor": encode_cursor(page[-1].name) if more and page else None,
    }


@router.post("/banks", status_code=201)
def banks_create(request: Request, body: BankIn, caller: Caller = owner("curate")) -> JSONResponse:
    """Create a bank: 201 and the bank; 409 if the name is taken."""
    state = _state(request)
    bank = create_bank(
        state.store,
        body.name,
        body.kind,
        description=body.description,
        owner=body.owner,
        pdq_threshold=body.pdq_threshold,
        thresholds=body.thresholds,
        enabled=body.enabled,
        match_cap_per_minute=body.match_cap_per_minute,
        actor=caller.actor,
    )
    state.changed()
    return JSONResponse(
        bank_json(bank, 0), status_code=201, headers={"Location": f"/v1/banks/{bank.name}"}
    )


def _show(state: ServiceState, name: str) -> dict[str, Any]:
    bank = get_bank(state.store, name)
    return bank_json(bank, entry_counts(state.store).get(bank.id, 0))


@router.get("/banks/{name}")
def banks_show(request: Request, name: str, _: Caller = owner("curate")) -> dict[str, Any]:
    """One bank, with its number of entries."""
    return _show(_state(request), name)


@router.patch("/banks/{name}")
def banks_update(
    request: Request, name: str, body: BankPatch, caller: Caller = owner("curate")
) -> dict[str, Any]:
    """Change a bank's name, kind, description, owner, thresholds, enabled flag or match cap,
    or release it from quarantine (`{"quarantined": false}`): the bank as it is now."""
    state = _state(request)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if "thresholds" in changes and changes["thresholds"] is None:
        changes["thresholds"] = {}
    nulls = [k for k, v in changes.items() if v is None and k != "match_cap_per_minute"]
    if nulls:
        raise Problem(422, f"{', '.join(sorted(nulls))} cannot be null", slug="invalid-request")
    quarantined = changes.pop("quarantined", None)
    bank = update_bank(state.store, name, actor=caller.actor, **changes)
    if quarantined is False:
        release_bank(state.store, bank.id, actor=caller.actor)
    elif quarantined:
        quarantine_bank(state.store, bank.id, "quarantined by a curator", actor=caller.actor)
    state.changed()
    return _show(state, bank.name)


@router.delete("/banks/{name}")
def banks_delete(request: Request, name: str, caller: Caller = owner("curate")) -> dict[str, Any]:
    """Delete a bank and its entries: `{"deleted": name, "entries": n}`; 404 if there is no
    such bank, 409 for an organisation's protected bank."""
    state = _state(request)
    try:
        removed = delete_bank(state.store, name, actor=caller.actor)
    except IntegrityError:
        raise Problem(
            409, f"bank {name!r} belongs to an organisation", slug="bank-in-use"
        ) from None
    state.changed()
    return {"deleted": name, "entries": removed}


# ---------------------------------------------------------------------- idempotency


def _fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(row: IdempotencyKey) -> JSONResponse:
    return JSONResponse(
        row.response, status_code=row.status or 200, headers={"Idempotent-Replayed": "true"}
    )


def _expired(row: IdempotencyKey) -> bool:
    """A settled key older than the TTL, or a claim its request never settled (a process
    that died while handling it)."""
    age = utcnow() - row.created_at
    return age > IDEMPOTENCY_TTL or (row.status is None and age > STALE_CLAIM)


def claim_key(state: ServiceState, scope: str, key: str, digest: str) -> JSONResponse | None:
    """Claim `key` for this request: None when it is new (the caller then does the work and
    `settle_key`s it), the first answer when it was settled with the same request; 409 for a
    different request, or one still in progress."""
    for _ in range(2):
        with state.store.session() as session:
            row = session.scalars(
                select(IdempotencyKey).where(
                    IdempotencyKey.scope == scope, IdempotencyKey.key == key
                )
            ).one_or_none()
            if row is not None and _expired(row):
                session.delete(row)
                session.flush()
                row = None
            if row is not None:
                if row.request_hash != digest:
                    raise Problem(
                        409,
                        "this Idempotency-Key was used with a different request",
                        slug="idempotency-conflict",
                    )
                if row.status is None:
                    raise Problem(
                        409,
                        "a request with this Idempotency-Key is still in progress",
                        slug="idempotency-in-progress",
                    )
                return _replay(row)
        try:
            with state.store.session() as session:
                session.add(IdempotencyKey(scope=scope, key=key, request_hash=digest))
            return None
        except IntegrityError:  # another request claimed it first: answer as it does
            continue
    raise Problem(409, "a request with this Idempotency-Key is still in progress")


def settle_key(state: ServiceState, scope: str, key: str, status: int | None, body: Any) -> None:
    """Record the answer of a claimed key, or (status None) release the claim."""
    with state.store.session() as session:
        where = (IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        if status is None:
            session.execute(delete(IdempotencyKey).where(*where))
            return
        row = session.scalars(select(IdempotencyKey).where(*where)).one()
        row.status = status
        row.response = body


def _checked_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise Problem(400, "Idempotency-Key must be 1-255 printable characters", slug="malformed")
    return key


# ---------------------------------------------------------------------- entries


def _records(entries: list[EntryIn]) -> list[EntryRecord]:
    if len(entries) > MAX_ENTRIES:
        raise Problem(
            413, f"{len(entries)} entries: at most {MAX_ENTRIES} per request", limit=MAX_ENTRIES
        )
    records: list[EntryRecord] = []
    errors: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        checked = validated(
            EntryRecord(
                signal_type=e.signal_type,
                value=e.value,
                source=e.source or "api:v1",
                organisation=e.organisation,
                original_id=e.original_id,
                classification_scheme=e.classification_scheme,
                classification_label=e.classification_label,
                metadata=e.metadata,
                position=i,
                position_kind="record",
            )
        )
        if isinstance(checked, InvalidRecord):
            errors.append({"loc": ["entries", str(i)], "msg": checked.reason})
        else:
            records.append(checked)
    if errors:
        detail = "; ".join(f"entries[{e['loc'][1]}]: {e['msg']}" for e in errors[:20])
        raise Problem(422, detail, slug="invalid-signal", errors=errors)
    return records


def add_bank_entries(
    state: ServiceState, name: str, entries: list[EntryIn], *, actor: str
) -> dict[str, Any]:
    """Add entries to a bank (those present already add nothing); the matcher of this process
    syncs before it returns."""
    records = _records(entries)
    result = import_records(state.store, name, records, actor=actor, prevalidated=True)
    state.changed()
    return {
        "bank": result.bank,
        "read": result.read,
        "added": result.added,
        "already_present": result.already_present,
    }


def answer_once(
    state: ServiceState,
    scope: str,
    key: str | None,
    digest: str,
    run: Callable[[], dict[str, Any]],
    status: int = 200,
) -> JSONResponse:
    """Answer `run()` with `status`; with an idempotency `key` (checked), the same key and
    request `digest` again answers the first result (header `Idempotent-Replayed: true`)
    without running, the same key with another digest is 409, and a request that fails
    does not keep its key."""
    if key is None:
        return JSONResponse(run(), status_code=status)
    replayed = claim_key(state, scope, key, digest)
    if replayed is not None:
        return replayed
    try:
        answer = run()
    except BaseException:
        settle_key(state, scope, key, None, None)
        raise
    settle_key(state, scope, key, status, answer)
    return JSONResponse(answer, status_code=status)


def idempotent(
    request: Request,
    caller: Caller,
    idempotency_key: str | None,
    body: BaseModel,
    run: Callable[[], dict[str, Any]],
) -> JSONResponse:
    """`answer_once` for a JSON body: the request's digest is its method, path and body."""
    key = _checked_key(idempotency_key)
    digest = (
        _fingerprint(request.method, request.url.path, body.model_dump(mode="json"))
        if key is not None
        else ""
    )
    return answer_once(_state(request), caller.actor, key, digest, run)


_IDEMPOTENCY = Header(None, description="makes a retry safe")


@router.post("/banks/{name}/entries")
def entries_add(
    request: Request,
    name: str,
    body: EntriesIn,
    idempotency_key: str | None = _IDEMPOTENCY,
    caller: Caller = owner("curate"),
) -> JSONResponse:
    """Add signals with their classification and provenance:
    `{"bank", "read", "added", "already_present"}`. An `Idempotency-Key` makes a retry safe."""
    state = _state(request)
    return idempotent(
        request,
        caller,
        idempotency_key,
        body,
        lambda: add_bank_entries(state, name, body.entries, actor=caller.actor),
    )


def _pairs(entries: list[SignalIn]) -> list[tuple[str, str]]:
    """Canonical (signal_type, value) pairs; 413 past MAX_ENTRIES, 422 naming a bad one."""
    if len(entries) > MAX_ENTRIES:
        raise Problem(413, f"at most {MAX_ENTRIES} entries per request", limit=MAX_ENTRIES)
    pairs: list[tuple[str, str]] = []
    for i, e in enumerate(entries):
        try:
            pairs.append(canonical_signal(e.signal_type, e.value))
        except InvalidSignal as exc:
            raise Problem(422, f"entries[{i}]: {exc}", slug="invalid-signal") from None
    return pairs


@router.delete("/banks/{name}/entries")
def entries_remove(
    request: Request,
    name: str,
    body: SignalsIn = Body(...),
    idempotency_key: str | None = _IDEMPOTENCY,
    caller: Caller = owner("curate"),
) -> JSONResponse:
    """Remove (signal_type, value) pairs from a bank: `{"bank", "requested", "removed",
    "ids"}`; pairs the bank does not hold remove nothing."""
    state = _state(request)
    pairs = _pairs(body.entries)

    def run() -> dict[str, Any]:
        ids = delete_entries(state.store, name, pairs, actor=caller.actor)
        state.changed()
        return {"bank": name, "requested": len(pairs), "removed": len(ids), "ids": ids}

    return idempotent(request, caller, idempotency_key, body, run)


class EntriesDisableIn(SignalsIn):
    """Signals to disable (`disabled: true`, until `until` or until enabled again) or to
    enable again (`disabled: false`)."""

    disabled: bool = True
    until: datetime | None = Field(None, description="disabled until then (with a time zone)")


@router.patch("/banks/{name}/entries")
def entries_disable(
    request: Request,
    name: str,
    body: EntriesDisableIn,
    idempotency_key: str | None = _IDEMPOTENCY,
    caller: Caller = owner("curate"),
) -> JSONResponse:
    """Disable or enable (signal_type, value) pairs of a bank: `{"bank", "requested",
    "changed", "ids", "disabled", "until"}`. A disabled entry stays in the bank and stops
    matching on every worker at its next refresh."""
    state = _state(request)
    pairs = _pairs(body.entries)
    until: int | None = None
    if body.disabled:
        if body.until is None:
            until = 0
        elif body.until.tzinfo is None:
            raise Problem(422, "until needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        elif body.until <= utcnow():
            raise Problem(422, f"until {body.until.isoformat()} is in the past")
        else:
            until = int(body.until.timestamp())

    def run() -> dict[str, Any]:
        ids = set_entries_disabled(state.store, name, pairs, until, actor=caller.actor)
        state.changed()
        return {
            "bank": name,
            "requested": len(pairs),
            "changed": len(ids),
            "ids": ids,
            "disabled": body.disabled,
            "until": body.until.isoformat() if body.disabled and body.until else None,
        }

    return idempotent(request, caller, idempotency_key, body, run)
