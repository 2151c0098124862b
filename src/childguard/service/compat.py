# Owns what the HMA-compatible routes answer, as plain functions over the matcher and banks.
"""HMA 2 (OpenMediaMatch) semantics: the shapes its `/m`, `/h` and `/c` blueprints answer,
computed through childguard's own library. Lookups go through `Matcher`, uploads through
`Pipeline.process`, bank writes through `childguard.banks`; nothing here matches on its own.

Each function returns the JSON body HMA would, or raises `HmaError(status, message)`, which
the routes answer as `{"message": ...}` with that status, as HMA's error handler does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from childguard.alerts.subscriptions import query_signals
from childguard.banks import (
    BankExists,
    BankNotFound,
    EntryView,
    create_bank,
    delete_bank,
    ensure_entries,
    find_bank,
    get_entries,
    remove_entries_by_id,
    set_entry_disabled,
    update_bank,
)
from childguard.banks import list_banks as _list_banks
from childguard.banks.records import canonical_signal
from childguard.errors import ChildguardError, InvalidSignal
from childguard.matcher import Match, MatchOutcome
from childguard.media import BYTES, Content, Limits
from childguard.netguard.fetch import FetchRefused, fetch
from childguard.service.state import IndexNotReady, ServiceState
from childguard.signals import get_signal_type
from childguard.signals.base import SignalType
from childguard.signals.registry import SIGNAL_TYPES, types_for
from childguard.store import audit

BANK_NAME = re.compile(r"^[A-Z0-9_]+$")
# HMA's `disable_until_ts`: 1 is enabled, 0 disabled until enabled again, any other value a
# Unix time until which the content is disabled; at most five years ahead.
CONTENT_ENABLED = 1
CONTENT_DISABLED = 0
MAX_DISABLE_SECONDS = 5 * 365 * 24 * 3600
# HMA's content types, as the upload's field name and `content_type` names them.
CONTENT_FIELDS = ("photo", "video")
DEFAULT_BANK_KIND = "known-abuse"


class HmaError(Exception):
    """An HMA-shaped error: `{"message": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _signal_type(name: str) -> type[SignalType]:
    try:
        return get_signal_type(name)
    except ValueError:
        raise HmaError(400, f"No such SignalType '{name}'") from None


def _validated(signal_type: str, signal: str) -> tuple[type[SignalType], str]:
    cls = _signal_type(signal_type)
    try:
        return cls, cls.validate(signal)
    except InvalidSignal as exc:
        raise HmaError(400, f"invalid signal type: {exc}") from None


def _outcome(state: ServiceState, cls: type[SignalType], value: str) -> MatchOutcome:
    try:
        with state.matcher() as matcher:
            outcome = matcher.match_hash(cls.name, value)
    except IndexNotReady:
        raise HmaError(503, "index not yet ready") from None
    state.matched([([(cls.name, value)], outcome)])
    return outcome


def _by_bank(matches: Sequence[Match]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in matches:
        out.setdefault(m.bank_name, []).append(
            {"bank_content_id": m.entry_id, "distance": str(m.distance)}
        )
    return out


# ---------------------------------------------------------------------- /m: matching


def lookup(state: ServiceState, signal_type: str, signal: str) -> dict[str, Any]:
    """`GET /m/lookup?signal_type=&signal=`: `{"BANK": [{"bank_content_id", "distance"}]}`,
    each bank under its own threshold."""
    cls, value = _validated(signal_type, signal)
    return _by_bank(_outcome(state, cls, value).matches)


def raw_lookup(
    state: ServiceState, signal_type: str, signal: str, *, include_distance: bool = False
) -> dict[str, Any]:
    """`GET /m/raw_lookup`: `{"matches": [ids]}`, or with `include_distance` the objects."""
    cls, value = _validated(signal_type, signal)
    matches = _outcome(state, cls, value).matches
    if include_distance:
        found: list[Any] = [
            {"bank_content_id": m.entry_id, "distance": str(m.distance)} for m in matches
        ]
    else:
        found = [m.entry_id for m in matches]
    return {"matches": found}


def index_status(state: ServiceState, signal_type: str | None = None) -> dict[str, Any]:
    """`GET /m/index/status`: per near signal type, `{"built_to", "present", "size"}`.
    `built_to` is the Unix time of the last sync with the store (-1 before the first)."""
    names = [n for n, cls in SIGNAL_TYPES.items() if not cls.exact]
    if signal_type is not None:
        if signal_type not in names:
            raise HmaError(400, f"No such signal type '{signal_type}'")
        names = [signal_type]
    try:
        with state.matcher() as matcher:
            age = time.monotonic() - state.last_refresh
            built_to = int(time.time() - age)
            return {
                n: {"built_to": built_to, "present": True, "size": len(matcher.indexes[n].index)}
                for n in names
            }
    except IndexNotReady:
        return {n: {"built_to": -1, "present": False, "size": 0} for n in names}


def compare(body: Any) -> dict[str, Any]:
    """`POST /m/compare` with `{"pdq": [a, b]}`: `{"pdq": [match, {"distance": d}]}`, under
    the type's default threshold."""
    if not isinstance(body, dict):
        raise HmaError(400, "Request input was not a dict")
    out: dict[str, Any] = {}
    for name, pair in body.items():
        cls = _signal_type(str(name))
        if not isinstance(pair, list):
            raise HmaError(400, f"Comparison hashes for {name} was not a list")
        if len(pair) != 2:
            raise HmaError(400, "Comparison hash list length must be exactly 2")
        try:
            left, right = (cls.validate(str(v)) for v in pair)
        except InvalidSignal as exc:
            raise HmaError(400, f"Invalid {name} hash: {exc}") from None
        result = cls.compare(left, right)
        out[str(name)] = [bool(result.match), {"distance": result.distance}]
    return out


# ---------------------------------------------------------------------- /h: hashing


def _content(field: str, data: bytes, limits: Limits) -> Content:
    if field not in CONTENT_FIELDS:
        raise HmaError(400, f"no such content_type: '{field}'")
    if not data:
        raise HmaError(400, "the uploaded file is empty")
    return Content(data, origin=f"upload:{field}", limits=limits)


def _wanted_types(field: str, types: str | None) -> list[str]:
    """The types of the content type (HMA's default: `pdq` for a photo), or those named in
    `types`, which may also name the exact types of its bytes (`md5`, `sha1`, `sha256`)."""
    if types is None:
        return [cls.name for cls in types_for([field])]
    offered = [cls.name for cls in types_for([field, BYTES])]
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    for name in wanted:
        if name not in offered:
            raise HmaError(400, f"signal type '{name}' doesn't exist or is disabled")
    if not wanted:
        raise HmaError(400, "empty signal type selection")
    return wanted


def hash_upload(
    state: ServiceState, field: str, data: bytes, *, types: str | None = None
) -> dict[str, str]:
    """`POST /h/hash` with one file in the field `photo` (or `video`): signal type -> value,
    for every signal type that hashes that content type (or those named in `types`)."""
    wanted = _wanted_types(field, types)
    content = _content(field, data, state.hasher.limits)
    record, _ = state.hasher.process(content)
    if record.error is not None:
        raise HmaError(400, f"cannot hash the {field}: {record.error}")
    return {t: v for t in wanted if (v := record.value(t)) is not None}


def lookup_upload(
    state: ServiceState, field: str, data: bytes, *, signal_type: str | None = None
) -> dict[str, Any]:
    """`POST /m/lookup` with one file: `{"pdq": {"BANK": [...]}}` per signal type of the
    content (matched through the pipeline, robust views included), or only `signal_type`'s
    `{"BANK": [...]}` when it is given."""
    content = _content(field, data, state.hasher.limits)
    try:
        with state.matcher() as matcher:
            record, outcome = state.pipeline(matcher).process(content)
    except IndexNotReady:
        raise HmaError(503, "index not yet ready") from None
    if record.error is not None:
        raise HmaError(400, f"cannot hash the {field}: {record.error}")
    state.matched([(query_signals(record), outcome)])
    by_type = {
        t: _by_bank([m for m in outcome.matches if m.signal_type == t])
        for t in _wanted_types(field, None)
        if t in record.signals
    }
    if signal_type is not None:
        if signal_type not in by_type:
            raise HmaError(400, f"No such SignalType '{signal_type}' for this content")
        return dict(by_type[signal_type])
    return by_type


def fetch_url(state: ServiceState, url: str, content_type: str | None = None) -> tuple[str, bytes]:
    """(content type, bytes) of the media at `url`, fetched under the SSRF policy
    (`childguard.netguard.fetch`); the type is `content_type`, or the response's Content-Type
    (`image/*` is a photo, `video/*` a video)."""
    try:
        fetched = fetch(
            url,
            max_bytes=state.settings.max_request_bytes,
            allow_private=state.settings.allow_private_fetch,
        )
    except FetchRefused as exc:
        raise HmaError(400, str(exc)) from None
    if content_type:
        if content_type not in CONTENT_FIELDS:
            raise HmaError(400, f"no such content_type: '{content_type}'")
        return content_type, fetched.data
    if fetched.content_type.startswith("image"):
        return "photo", fetched.data
    if fetched.content_type.startswith("video"):
        return "video", fetched.data
    raise HmaError(
        400,
        f"unsupported url ContentType: '{fetched.content_type}', if you know the expected "
        "type, provide it with the content_type query param",
    )


# ---------------------------------------------------------------------- /c: curation


def _bank_json(name: str, enabled: bool) -> dict[str, Any]:
    return {"matching_enabled_ratio": 1.0 if enabled else 0.0, "name": name}


def list_banks(state: ServiceState) -> list[dict[str, Any]]:
    """`GET /c/banks`: every bank as `{"matching_enabled_ratio", "name"}`."""
    return [_bank_json(b.name, b.enabled) for b in _list_banks(state.store)]


def get_bank(state: ServiceState, name: str) -> dict[str, Any]:
    """`GET /c/bank/<name>`."""
    with state.store.session() as session:
        try:
            bank = find_bank(session, name)
        except BankNotFound:
            raise HmaError(404, f"bank '{name}' not found") from None
        return _bank_json(bank.name, bank.enabled)


def _enabled_from(body: Mapping[str, Any]) -> bool:
    if "enabled_ratio" in body:
        try:
            ratio = float(body["enabled_ratio"])
        except (TypeError, ValueError):
            raise HmaError(400, "enabled_ratio must be a number") from None
        if ratio not in (0.0, 1.0):
            raise HmaError(400, "childguard banks are enabled or not: enabled_ratio must be 0 or 1")
        return ratio == 1.0
    if "enabled" in body:
        raw = body["enabled"]
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in {"1", "true"}
    return True


def create_bank_hma(state: ServiceState, body: Any, *, actor: str) -> dict[str, Any]:
    """`POST /c/banks` with `{"name": "UPPER_SNAKE"}`: the bank, as HMA answers it (201)."""
    if not isinstance(body, dict):
        raise HmaError(400, "this endpoint expects a json object payload")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise HmaError(422, "name is required")
    if not BANK_NAME.match(name):
        raise HmaError(400, "Bank names must be UPPER_WITH_UNDERSCORE")
    enabled = _enabled_from(body)
    try:
        create_bank(state.store, name, DEFAULT_BANK_KIND, enabled=enabled, actor=actor)
    except BankExists:
        raise HmaError(403, "Bank already exists") from None
    except ChildguardError as exc:
        raise HmaError(400, str(exc)) from None
    state.changed()
    return _bank_json(name, enabled)


def _canonical_signals(body: Mapping[Any, Any]) -> dict[str, str]:
    if not body:
        raise HmaError(400, "No signals given")
    signals: dict[str, str] = {}
    for name, value in body.items():
        if str(name) not in SIGNAL_TYPES:
            raise HmaError(400, f"No such signal type {name}")
        try:
            canon_type, canon_value = canonical_signal(str(name), str(value))
        except InvalidSignal as exc:
            raise HmaError(400, f"Invalid {name} signal: {exc}") from None
        signals[canon_type] = canon_value
    return signals


def _bank_signals(
    state: ServiceState, bank_name: str, signals: dict[str, str], *, actor: str, source: str
) -> dict[str, Any]:
    with state.store.session() as session:
        try:
            bank = find_bank(session, bank_name)
        except BankNotFound:
            raise HmaError(404, f"bank '{bank_name}' not found") from None
        ids = ensure_entries(
            session, bank.id, list(signals.items()), source=source, organisation=None
        )
        audit.record(
            session,
            actor=actor,
            action="bank.add_signals",
            object_type="bank",
            object_id=bank.id,
            details={"name": bank.name, "entry_ids": ids, "signal_types": list(signals)},
        )
    state.changed()
    return {"id": ids[0], "signals": signals}


def add_signals(state: ServiceState, bank_name: str, body: Any, *, actor: str) -> dict[str, Any]:
    """`POST /c/bank/<name>/signal` with `{"pdq": hex, ...}`: `{"id": n, "signals": {...}}`.

    Each signal is one bank entry; `id` is the first one's (the `bank_content_id` lookups
    answer). The matcher of this process syncs before the call returns."""
    if not isinstance(body, dict):
        raise HmaError(400, "No signals given")
    signals = _canonical_signals(body)
    return _bank_signals(state, bank_name, signals, actor=actor, source="api")


def add_content(
    state: ServiceState, bank_name: str, field: str, data: bytes, *, actor: str
) -> dict[str, Any]:
    """`POST /c/bank/<name>/content` with one file: hashed through the pipeline, each signal
    of its content type banked; `{"id": n, "signals": {...}}`."""
    get_bank(state, bank_name)
    signals = hash_upload(state, field, data)
    if not signals:
        raise HmaError(400, f"the {field} gave no signals")
    return _bank_signals(state, bank_name, signals, actor=actor, source="api:upload")


def update_bank_hma(
    state: ServiceState, bank_name: str, body: Any, *, actor: str
) -> dict[str, Any]:
    """`PUT /c/bank/<name>` with `name`, `enabled` or `enabled_ratio`: the bank as it is now."""
    if not isinstance(body, dict):
        raise HmaError(400, "this endpoint expects a json object payload")
    changes: dict[str, Any] = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not BANK_NAME.match(name):
            raise HmaError(400, "Bank names must be UPPER_WITH_UNDERSCORE")
        changes["name"] = name
    if "enabled" in body or "enabled_ratio" in body:
        changes["enabled"] = _enabled_from(body)
    try:
        bank = update_bank(state.store, bank_name, actor=actor, **changes)
    except BankNotFound:
        raise HmaError(404, "Bank not found") from None
    except BankExists:
        raise HmaError(403, "Bank already exists") from None
    except ChildguardError as exc:
        raise HmaError(400, str(exc)) from None
    state.changed()
    return _bank_json(bank.name, bank.enabled)


def delete_bank_hma(state: ServiceState, bank_name: str, *, actor: str) -> dict[str, Any]:
    """`DELETE /c/bank/<name>`: `{"message": "Done"}`, whether or not the bank existed (as
    HMA). An organisation's protected bank cannot be deleted here (403)."""
    try:
        delete_bank(state.store, bank_name, actor=actor)
    except BankNotFound:
        return {"message": "Done"}
    except IntegrityError:
        raise HmaError(403, f"bank '{bank_name}' belongs to an organisation") from None
    state.changed()
    return {"message": "Done"}


def delete_content(
    state: ServiceState, bank_name: str, content_id: int, *, actor: str
) -> dict[str, Any]:
    """`DELETE /c/bank/<name>/content/<id>`: `{"deleted": n}` (0 when the bank holds no such
    entry)."""
    get_bank(state, bank_name)
    entry = get_entries(state.store, [content_id]).get(content_id)
    if entry is None or entry.bank_name != bank_name:
        return {"deleted": 0}
    with state.store.session() as session:
        deleted = remove_entries_by_id(session, [content_id])
        audit.record(
            session,
            actor=actor,
            action="bank.delete_entries",
            object_type="bank",
            object_id=entry.bank_id,
            details={"name": bank_name, "entry_ids": [content_id], "removed": deleted},
        )
    state.changed()
    return {"deleted": deleted}


def _content_entry(state: ServiceState, bank_name: str, content_id: int) -> EntryView:
    get_bank(state, bank_name)
    entry = get_entries(state.store, [content_id]).get(content_id)
    if entry is None or entry.bank_name != bank_name:
        raise HmaError(404, f"content '{content_id}' not found")
    return entry


def _content_json(entry: EntryView, *, include_signals: bool = False) -> dict[str, Any]:
    """HMA's `BankContentConfig`: `id`, `disable_until_ts`, `collab_metadata` (the list the
    entry came from, with its id there), `original_media_uri` (childguard keeps no media: null)
    and `bank`; `signals` with `include_signals`."""
    until = entry.disabled_until
    collab: dict[str, list[str]] = {}
    if entry.source:
        collab[entry.source] = [entry.original_id] if entry.original_id else []
    out: dict[str, Any] = {
        "id": entry.id,
        "disable_until_ts": CONTENT_ENABLED if until is None else until,
        "collab_metadata": collab,
        "original_media_uri": None,
        "bank": _bank_json(entry.bank_name, entry.bank_enabled),
    }
    if include_signals:
        out["signals"] = {entry.signal_type: entry.value}
    return out


def get_content(
    state: ServiceState, bank_name: str, content_id: int, *, include_signals: bool = False
) -> dict[str, Any]:
    """`GET /c/bank/<name>/content/<id>`: the content's config (see `_content_json`); 404 when
    the bank holds no such content."""
    entry = _content_entry(state, bank_name, content_id)
    return _content_json(entry, include_signals=include_signals)


def update_content(
    state: ServiceState, bank_name: str, content_id: int, body: Any, *, actor: str
) -> dict[str, Any]:
    """`PUT /c/bank/<name>/content/<id>` with `{"disable_until_ts": n}`: disable the content
    (0: until enabled again; a Unix time: until then) or enable it (1). Every worker stops
    matching it at its next refresh, this one before the call returns. Answers the content's
    config as it is now."""
    _content_entry(state, bank_name, content_id)
    if not isinstance(body, dict):
        raise HmaError(400, "this endpoint expects a json object payload")
    if "disable_until_ts" in body:
        raw = body["disable_until_ts"]
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        except (TypeError, ValueError):
            raise HmaError(400, f"Invalid int value: {raw!r}") from None
        if value < 0:
            raise HmaError(400, "disable_until_ts must be a non-negative integer")
        if value > time.time() + MAX_DISABLE_SECONDS:
            raise HmaError(400, "disable_until_ts must be less than 5 years in the future")
        until = None if value == CONTENT_ENABLED else value
        if not set_entry_disabled(state.store, bank_name, content_id, until, actor=actor):
            raise HmaError(404, f"content '{content_id}' not found")
        state.changed()
    return _content_json(_content_entry(state, bank_name, content_id))
