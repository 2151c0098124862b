"""Registering an organisation's published photos (and videos): signatures are computed here,
on the owner's machine, through the one pipeline's signals stage, and only signatures and
metadata reach the store (file name, optional title, where and when it was published). Image
bytes are never stored.

Each photo gets bank entries in its organisation's `protected` bank, written by
`childguard.banks.ensure_entries`: every signal of the content (md5, sha1, sha256, PDQ of a
photo, vPDQ of a video) and, for photos, one PDQ entry per region of the robust signature
(`childguard.robust.protected`) so that crops of the photo match too.

`register_signatures` takes signatures computed elsewhere (the browser, on the owner's device:
`service/web/static/org/`), checks them strictly (`SignatureInput.check`) and writes exactly
the entries `register_photos` writes for the same photo.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from childguard.banks import ensure_entries, mark_bank_changed, remove_entries_by_id
from childguard.errors import ChildguardError, InputFormatError, MediaError
from childguard.media import DEFAULT_LIMITS, Content, Limits, read_bytes
from childguard.pipeline.hashing import HashOptions, signals_of
from childguard.pipeline.sources import SNIFF_BYTES, claims_media, is_media_head
from childguard.signals.base import SignalValue
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import PdqSignal
from childguard.store import audit
from childguard.store.models import BankEntry
from childguard.store.protect_models import Organisation, ProtectedPhoto, ProtectedSignal

if TYPE_CHECKING:
    from childguard.robust.signature import ProtectedSignature

REGION_PREFIX = "region:"
SOURCE = "protect-register"


class PhotoNotFound(ChildguardError):
    """No protected photo has that id (in that organisation)."""


@dataclass
class RegisterReport:
    registered: list[ProtectedPhoto] = field(default_factory=list)
    already: list[ProtectedPhoto] = field(default_factory=list)
    # Already registered, with a signature whose frame did not fit the photo: signed anew.
    resigned: list[ProtectedPhoto] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # Photos signed now (registered or signed anew) whose copies may go unnoticed:
    # (photo, `PhotoWarning`).
    warnings: list[tuple[ProtectedPhoto, PhotoWarning]] = field(default_factory=list)

    def add(self, photo: ProtectedPhoto, outcome: str) -> None:
        """File `photo` under `store_signature`'s outcome, and its warning if it was signed
        now and has one (`photo_warning`)."""
        {REGISTERED: self.registered, ALREADY: self.already, RESIGNED: self.resigned}[
            outcome
        ].append(photo)
        warning = photo_warning(photo) if outcome != ALREADY else None
        if warning is not None:
            self.warnings.append((photo, warning))


# A photo signed with fewer ORB keypoints than this (a signature keeps up to 300) is hard to
# find beyond its whole copies: a copy's verification keeps a quarter to a half of the photo's
# keypoints as inliers, and a match on keypoints alone needs MIN_INLIERS (24) of them. A smooth
# gradient wallpaper of the benchmark photos signs 57 and its re-saved copies give 14 inliers.
FEW_KEYPOINTS = 96
# Warning codes (`PhotoWarning.code`), in the order `warning_code` tries them: a signature made
# by an earlier version (`robust.signature.stored_current`; registering the photo again signs it
# anew), few keypoints and a weak PDQ hash (quality under 50, which nominates candidates but
# decides nothing), or few keypoints only.
OUTDATED, PLAIN, FEW = "outdated", "plain", "few-keypoints"
WARNING_CODES = (OUTDATED, PLAIN, FEW)
# The photo lists' filter for every photo with a warning, whatever its code.
ANY_WARNING = "any"


@dataclass(frozen=True)
class PhotoWarning:
    """Why copies of a registered photo may go unnoticed: `code` (one of WARNING_CODES) and
    the reason in words."""

    code: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


def warning_code(
    pdq: str | None,
    pdq_quality: int | None,
    width: int,
    height: int,
    signatures: Mapping[str, Any] | None,
) -> str | None:
    """The warning code of a registered photo from its stored columns: None for a photo the
    matcher can find, and for a video (no robust signature is made for one). What
    `store_signature` stores as `ProtectedPhoto.warning` and `photo_warning` explains."""
    from childguard.robust.signature import stored_keypoints
    from childguard.signals.pdq import MIN_QUALITY

    if not pdq:
        return None
    if not _current(signatures, width, height):
        return OUTDATED
    if stored_keypoints((signatures or {}).get("robust")) >= FEW_KEYPOINTS:
        return None
    return PLAIN if (pdq_quality or 0) < MIN_QUALITY else FEW


def photo_warning(photo: ProtectedPhoto) -> PhotoWarning | None:
    """The warning for a registered photo whose signature gives the matcher little to go on,
    with its reason (`warning_code`); None for a photo it can find, and for a video."""
    from childguard.robust.signature import stored_keypoints
    from childguard.signals.pdq import MIN_QUALITY

    code = _stored_warning(photo)
    if code is None:
        return None
    if code == OUTDATED:
        return PhotoWarning(
            OUTDATED,
            "signed by an earlier version: square crops and grid cells of it may go unnoticed; "
            "register it again from its original to sign it anew",
        )
    keypoints = stored_keypoints((photo.signatures or {}).get("robust"))
    quality = photo.pdq_quality or 0
    if code == PLAIN:
        return PhotoWarning(
            PLAIN,
            f"too plain to be found reliably: {keypoints} keypoints (under {FEW_KEYPOINTS}) "
            f"and a weak PDQ hash (quality {quality}, under {MIN_QUALITY}); even a re-saved "
            "copy may go unnoticed",
        )
    return PhotoWarning(
        FEW,
        f"few keypoints ({keypoints}, under {FEW_KEYPOINTS}): whole copies are found by PDQ, "
        "but crops, grids and overlays may go unnoticed",
    )


# What `store_signature` did with one photo.
REGISTERED, ALREADY, RESIGNED = "registered", "already", "resigned"


def iter_image_files(root: Path) -> Iterator[Path]:
    """Photo and video files under `root` (or `root` itself), sorted, skipping hidden files and
    folders. A file is media by the pipeline's rule (`childguard.pipeline.sources`): its name
    claims a photo or video suffix, or its first bytes sniff as one; a `manifest.csv` is left
    out, and a photo saved without a suffix is registered."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if claims_media(path.name) or _sniffs_as_media(path):
            yield path


def _sniffs_as_media(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    return is_media_head(head)


def protected_signature(content: Content) -> ProtectedSignature:
    """A photo's protected signature (`childguard.robust.signature.compute_signature`), from
    its picture (`Content.picture`: the aspect ratio kept, as the browser's registration page
    signs it). Raises MediaError for a photo that cannot be decoded or signed."""
    import cv2

    from childguard.robust.signature import compute_signature

    try:
        return compute_signature(content.picture())
    except ValueError as exc:
        raise MediaError("unsupported", f"no protected signature for this photo: {exc}") from exc
    except cv2.error as exc:
        message = f"no protected signature for this photo (OpenCV: {exc.err or exc})"
        raise MediaError("unsupported", message) from exc


def _robust_signature(content: Content) -> tuple[list[QueryView], dict[str, Any]]:
    """The region PDQ views and the keypoint features of a photo's robust signature."""
    sig = protected_signature(content)
    views = [QueryView(PdqSignal.name, str(value), None, str(label)) for label, value in sig.pdq]
    return views, {"robust": json.loads(sig.to_json())}


def compute_photo_signature(path: Path, limits: Limits = DEFAULT_LIMITS) -> ContentSignals:
    """Hash one photo or video on this machine: its signals, and for photos the region views
    (`views`) and robust signature (`features`). Raises MediaError for anything that is not a
    safe photo or video."""
    content = Content(
        read_bytes(path, limits), origin=path.name, limits=limits, path=path, picture_wanted=True
    )
    record = signals_of(content, HashOptions(limits=limits))
    if record.error is not None or not record.query_views():
        raise MediaError.parse(record.error or "not-an-image: no perceptual signal")
    if PdqSignal.name in record.signals:
        original = record.value(PdqSignal.name)
        views, extra = _robust_signature(content)
        record.views = [v for v in views if v.value != original]
        record.features = extra
    return record


def _signals_to_store(record: ContentSignals) -> list[tuple[str, str, str]]:
    """(role, signal type, value) of every bank entry a registration links to its photo."""
    roles = [(name, name, value.value) for name, value in record.signals.items()]
    roles += [
        (f"{REGION_PREFIX}{v.variant}"[:32], v.signal_type, v.value) for v in record.views or []
    ]
    return roles


def store_signature(
    session: Session,
    org: Organisation,
    record: ContentSignals,
    *,
    title: str | None = None,
    published_url: str | None = None,
    published_at: datetime | None = None,
    actor: str = "cli",
) -> tuple[ProtectedPhoto, str]:
    """Store one computed signature. Returns the photo and REGISTERED, or for bytes already
    registered in this organisation ALREADY (nothing changes) or RESIGNED: the stored robust
    signature is out of date (`robust.signature.stored_current`: its frame does not fit the
    photo, signed from pixels whose sides were reduced apart, or it has no square views) and
    this one is current, so it replaces it; the bank entries stay as they are."""
    sha256 = record.value("sha256") or ""
    existing = session.scalar(
        select(ProtectedPhoto).where(
            ProtectedPhoto.organisation_id == org.id, ProtectedPhoto.sha256 == sha256
        )
    )
    regions = [[v.variant, v.value] for v in record.views or []]
    extra = dict(record.features or {})
    if existing is not None:
        if not _current(existing.signatures, existing.width, existing.height) and _current(
            extra, record.width or 0, record.height or 0
        ):
            existing.signatures = {**(existing.signatures or {}), **extra}
            existing.warning = _stored_warning(existing)
            mark_bank_changed(session, org.bank_id)  # matchers load the new signature
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="protect.resign",
                object_type="protected_photo",
                object_id=existing.id,
                details={"organisation": org.name, "file_name": existing.file_name},
            )
            return existing, RESIGNED
        return existing, ALREADY
    photo = ProtectedPhoto(
        organisation_id=org.id,
        file_name=record.path,
        title=title,
        published_url=published_url,
        published_at=published_at,
        width=record.width or 0,
        height=record.height or 0,
        byte_size=record.size or 0,
        md5=record.value("md5") or "",
        sha1=record.value("sha1") or "",
        sha256=sha256,
        pdq=record.value(PdqSignal.name),
        pdq_quality=record.quality(PdqSignal.name),
        signatures={"region_pdq": regions, **extra} if regions or extra else None,
    )
    photo.warning = _stored_warning(photo)
    session.add(photo)
    session.flush()
    roles = _signals_to_store(record)
    entry_ids = ensure_entries(
        session,
        org.bank_id,
        [(t, v) for _, t, v in roles],
        source=SOURCE,
        organisation=org.name,
        metadata={"photo_id": photo.id, "file_name": record.path, "title": title},
    )
    linked: set[int] = set()
    for (role, _, _), entry_id in zip(roles, entry_ids, strict=True):
        if entry_id in linked:
            continue
        linked.add(entry_id)
        session.add(ProtectedSignal(photo_id=photo.id, bank_entry_id=entry_id, role=role))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="protect.register",
        object_type="protected_photo",
        object_id=photo.id,
        details={"organisation": org.name, "file_name": record.path, "sha256": sha256},
    )
    return photo, REGISTERED


def _stored_warning(photo: ProtectedPhoto) -> str | None:
    return warning_code(photo.pdq, photo.pdq_quality, photo.width, photo.height, photo.signatures)


def _current(signatures: Mapping[str, Any] | None, width: int, height: int) -> bool:
    """Whether the robust signature in `signatures` is current for the photo (none at all is
    not: there is nothing to match with)."""
    from childguard.robust.signature import stored_current

    return stored_current((signatures or {}).get("robust"), width, height)


def _sign_one(path: Path, limits: Limits) -> tuple[ContentSignals | None, str | None]:
    """`compute_photo_signature`, with a media error as its text (exceptions with their own
    arguments do not cross a process pool)."""
    try:
        return compute_photo_signature(path, limits), None
    except MediaError as exc:
        return None, f"{exc.reason}: {exc.message}"


def _signed(
    paths: Iterable[Path], limits: Limits, workers: int
) -> Iterator[tuple[Path, ContentSignals | None, str | None]]:
    """Each path with its signature or why it has none, in order, on `workers` processes."""
    if workers <= 1:
        for path in paths:
            yield (path, *_sign_one(path, limits))
        return
    from childguard.pipeline.pool import new_pool

    ordered = list(paths)
    with new_pool(workers) as pool:
        for path, (record, failure) in zip(
            ordered, pool.map(_sign_one, ordered, [limits] * len(ordered), chunksize=4), strict=True
        ):
            yield path, record, failure


def register_photos(
    session: Session,
    source: Path | Sequence[Path],
    org: Organisation,
    *,
    titles: Mapping[str, str] | None = None,
    published_url: str | None = None,
    published_at: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
    actor: str = "cli",
    workers: int = 1,
    on_signed: Callable[[Path, bool], None] | None = None,
) -> RegisterReport:
    """Register every photo and video under `source` (a folder, a file, or a list of files)
    for `org`.

    All signatures are computed before anything is written, on `workers` processes (1: in
    this process); `on_signed(path, failed)` is called as each one is done, in order. Files
    that cannot be decoded safely are reported in `failed` with the reason, and the rest are
    still registered. `titles` maps a file name to its title.
    """
    paths: Iterable[Path] = iter_image_files(source) if isinstance(source, Path) else source
    computed: list[ContentSignals] = []
    report = RegisterReport()
    for path, record, failure in _signed(paths, limits, workers):
        if record is not None:
            computed.append(record)
        else:
            report.failed.append((str(path), failure or "internal-error"))
        if on_signed is not None:
            on_signed(path, record is None)
    for record in computed:
        title = (titles or {}).get(record.path)
        photo, outcome = store_signature(
            session,
            org,
            record,
            title=title,
            published_url=published_url,
            published_at=published_at,
            actor=actor,
        )
        report.add(photo, outcome)
    return report


# ---------------------------------------------------------------- signatures from the device

# The most photos one call registers (the browser sends them in batches of at most this).
MAX_SIGNATURES = 100
MAX_FILE_NAME = 255
MAX_TITLE = 300
MAX_URL = 2048
# A registered photo's work frame: longest side 384-512 px (`childguard.robust.orb`).
MAX_FRAME_SIDE = 512
MAX_KEYPOINTS = 300
_HEX = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
_HEX_RE = re.compile(r"[0-9a-f]+")


class SignatureInvalid(ChildguardError):
    """A signature sent from the device is malformed; the message names the field."""


def _view_labels() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The labels a signature's searched views and its squares must carry, in order."""
    from childguard.robust.signature import SQUARE_VIEWS, VIEWS

    return tuple(VIEWS), tuple(SQUARE_VIEWS)


def _labelled_hashes(
    where: str, value: Any, labels: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or len(value) != len(labels):
        raise SignatureInvalid(f"{where}: want {len(labels)} [label, hash]")
    pairs: list[tuple[str, str]] = []
    for i, (pair, label) in enumerate(zip(value, labels, strict=True)):
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] != label:
            raise SignatureInvalid(f"{where}[{i}]: want [{label!r}, hash]")
        pairs.append((label, _hex(f"{where}[{i}]", pair[1], "pdq")))
    return tuple(pairs)


def _text(where: str, value: Any, limit: int, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise SignatureInvalid(f"{where}: required")
        return None
    if not isinstance(value, str):
        raise SignatureInvalid(f"{where}: want a string")
    if len(value) > limit:
        raise SignatureInvalid(f"{where}: at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise SignatureInvalid(f"{where}: control characters are not allowed")
    return value


def _int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SignatureInvalid(f"{where}: want an integer")
    if not low <= value <= high:
        raise SignatureInvalid(f"{where}: want {low} to {high}, got {value}")
    return value


def _hex(where: str, value: Any, kind: str) -> str:
    want = _HEX[kind]
    if not isinstance(value, str) or len(value) != want or not _HEX_RE.fullmatch(value):
        raise SignatureInvalid(f"{where}: want {want} lowercase hex digits")
    return value


@dataclass(frozen=True)
class SignatureInput:
    """One photo's signature and metadata as the device sends it (see `check`)."""

    file_name: str
    width: int
    height: int
    byte_size: int
    md5: str
    sha1: str
    sha256: str
    pdq: str
    pdq_quality: int
    views: tuple[tuple[str, str], ...]
    squares: tuple[tuple[str, str], ...]
    features: str
    frame: tuple[int, int]
    title: str | None = None
    published_url: str | None = None
    published_at: datetime | None = None

    @classmethod
    def check(cls, data: Any, where: str = "photo") -> SignatureInput:
        """Validate one photo's JSON object strictly; SignatureInvalid names what is wrong.

        Keys: file_name, width, height, byte_size, md5, sha1, sha256, pdq, pdq_quality,
        signature ({pdq: [[label, hex], ...] for every registered view, features: base64 of
        keypoints and descriptors, size: [w, h] of the work frame}), and optional title,
        published_url (http or https) and published_at (ISO date or time).
        """
        if not isinstance(data, Mapping):
            raise SignatureInvalid(f"{where}: want an object")
        known = set(_HEX) | {
            "file_name", "width", "height", "byte_size", "pdq_quality", "signature", "title",
            "published_url", "published_at",
        }  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise SignatureInvalid(f"{where}: unknown field {unknown[0]!r}")
        name = _text(f"{where}.file_name", data.get("file_name"), MAX_FILE_NAME, required=True)
        if name is None or "/" in name or "\\" in name or name in (".", ".."):
            raise SignatureInvalid(f"{where}.file_name: a file name, not a path")
        hashes = {k: _hex(f"{where}.{k}", data.get(k), k) for k in _HEX}
        sig = data.get("signature")
        if not isinstance(sig, Mapping) or set(sig) - {"pdq", "squares", "features", "size"}:
            raise SignatureInvalid(
                f"{where}.signature: want an object of pdq, squares, features, size"
            )
        view_labels, square_labels = _view_labels()
        pairs = _labelled_hashes(f"{where}.signature.pdq", sig.get("pdq"), view_labels)
        # The squares only sharpen the aligned check, so a client that predates them may leave
        # them out (grid cells of their wide photos are then found less often).
        squares = (
            _labelled_hashes(f"{where}.signature.squares", sig["squares"], square_labels)
            if "squares" in sig
            else ()
        )
        size = sig.get("size")
        if not isinstance(size, list) or len(size) != 2:
            raise SignatureInvalid(f"{where}.signature.size: want [width, height]")
        frame = (
            _int(f"{where}.signature.size[0]", size[0], 1, MAX_FRAME_SIDE),
            _int(f"{where}.signature.size[1]", size[1], 1, MAX_FRAME_SIDE),
        )
        features = sig.get("features")
        _check_features(f"{where}.signature.features", features, frame)
        published_url = _text(f"{where}.published_url", data.get("published_url"), MAX_URL)
        if published_url is not None and not re.match(r"https?://[^\s/]+", published_url):
            raise SignatureInvalid(f"{where}.published_url: want an http or https URL")
        return cls(
            file_name=name,
            width=_int(f"{where}.width", data.get("width"), 1, 1_000_000),
            height=_int(f"{where}.height", data.get("height"), 1, 1_000_000),
            byte_size=_int(
                f"{where}.byte_size", data.get("byte_size"), 1, DEFAULT_LIMITS.max_bytes
            ),
            pdq_quality=_int(f"{where}.pdq_quality", data.get("pdq_quality"), 0, 100),
            views=pairs,
            squares=squares,
            features=str(features),
            frame=frame,
            title=_text(f"{where}.title", data.get("title"), MAX_TITLE),
            published_url=published_url,
            published_at=_when(f"{where}.published_at", data.get("published_at")),
            **hashes,
        )

    def record(self) -> ContentSignals:
        """The signals record `compute_photo_signature` would give for the same photo."""
        record = ContentSignals(
            path=self.file_name,
            size=self.byte_size,
            content_type="photo",
            width=self.width,
            height=self.height,
        )
        for kind in ("md5", "sha1", "sha256"):
            record.signals[kind] = SignalValue(getattr(self, kind))
        record.signals[PdqSignal.name] = SignalValue(self.pdq, self.pdq_quality)
        record.views = [
            QueryView(PdqSignal.name, value, None, label)
            for label, value in self.views
            if value != self.pdq
        ]
        record.features = {
            "robust": {
                "pdq": [[label, value] for label, value in self.views],
                **({"squares": [list(pair) for pair in self.squares]} if self.squares else {}),
                "features": self.features,
                "size": list(self.frame),
            }
        }
        return record


def _check_features(where: str, blob: Any, frame: tuple[int, int]) -> None:
    if not isinstance(blob, str) or len(blob) > 4 * (36 * MAX_KEYPOINTS + 2) // 3 + 4:
        raise SignatureInvalid(f"{where}: want base64 of at most {MAX_KEYPOINTS} keypoints")
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SignatureInvalid(f"{where}: not base64") from None
    if len(raw) % 36:
        raise SignatureInvalid(f"{where}: length is not a multiple of 36 bytes")
    n = len(raw) // 36
    for i in range(n):
        x = int.from_bytes(raw[4 * i : 4 * i + 2], "big")
        y = int.from_bytes(raw[4 * i + 2 : 4 * i + 4], "big")
        if x > frame[0] or y > frame[1]:
            raise SignatureInvalid(f"{where}: keypoint {i} ({x}, {y}) is outside the frame")


def _when(where: str, value: Any) -> datetime | None:
    text = _text(where, value, 64)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SignatureInvalid(f"{where}: want an ISO date or time, e.g. 2024-06-01") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def check_signatures(items: Any) -> list[SignatureInput]:
    """Every photo of a batch checked (see `SignatureInput.check`); nothing is written."""
    if not isinstance(items, list) or not items:
        raise SignatureInvalid("photos: want a non-empty list")
    if len(items) > MAX_SIGNATURES:
        raise SignatureInvalid(f"photos: at most {MAX_SIGNATURES} in one call, got {len(items)}")
    return [SignatureInput.check(item, f"photos[{i}]") for i, item in enumerate(items)]


def register_signatures(
    session: Session,
    org: Organisation,
    items: Sequence[SignatureInput],
    *,
    actor: str = "cli",
) -> RegisterReport:
    """Register photos whose signatures were computed on the owner's device: the same bank
    entries, photo rows and audit as `register_photos`; a photo already registered (same
    SHA-256 in this organisation) is reported in `already` and nothing is added (in
    `resigned` where its stored signature is replaced, see `store_signature`)."""
    report = RegisterReport()
    for item in items:
        photo, outcome = store_signature(
            session,
            org,
            item.record(),
            title=item.title,
            published_url=item.published_url,
            published_at=item.published_at,
            actor=actor,
        )
        report.add(photo, outcome)
    return report


def list_photos(
    session: Session, org: Organisation | None = None, *, warning: str | None = None
) -> list[ProtectedPhoto]:
    """Protected photos (of `org` only, if given), with `warning` as `where_warning` takes it."""
    query = select(ProtectedPhoto).order_by(ProtectedPhoto.organisation_id, ProtectedPhoto.id)
    if org is not None:
        query = query.where(ProtectedPhoto.organisation_id == org.id)
    return list(session.scalars(where_warning(query, warning)))


_Selected = TypeVar("_Selected", bound=Select[Any])


def where_warning(query: _Selected, warning: str | None) -> _Selected:
    """`query` of protected photos narrowed to those with `warning` (a code of WARNING_CODES,
    or ANY_WARNING for any); None leaves it as it is. Another value is an InputFormatError."""
    if warning is None:
        return query
    if warning == ANY_WARNING:
        return query.where(ProtectedPhoto.warning.is_not(None))
    if warning not in WARNING_CODES:
        raise InputFormatError(
            f"warning must be one of {', '.join((*WARNING_CODES, ANY_WARNING))}, not {warning!r}"
        )
    return query.where(ProtectedPhoto.warning == warning)


def get_photo(session: Session, photo_id: int, org: Organisation | None = None) -> ProtectedPhoto:
    photo = session.get(ProtectedPhoto, photo_id)
    if photo is None or (org is not None and photo.organisation_id != org.id):
        raise PhotoNotFound(f"no protected photo with id {photo_id}")
    return photo


def photo_signals(session: Session, photo: ProtectedPhoto) -> list[tuple[str, BankEntry]]:
    """(role, bank entry) for each signal registered for the photo."""
    rows = session.execute(
        select(ProtectedSignal.role, BankEntry)
        .join(BankEntry, BankEntry.id == ProtectedSignal.bank_entry_id)
        .where(ProtectedSignal.photo_id == photo.id)
        .order_by(BankEntry.id)
    )
    return [(role, entry) for role, entry in rows]


def photos_for_entry(session: Session, bank_entry_id: int) -> list[ProtectedPhoto]:
    """The protected photos a matched bank entry stands for (usually one)."""
    return list(
        session.scalars(
            select(ProtectedPhoto)
            .join(ProtectedSignal, ProtectedSignal.photo_id == ProtectedPhoto.id)
            .where(ProtectedSignal.bank_entry_id == bank_entry_id)
            .order_by(ProtectedPhoto.id)
        )
    )


def remove_photo(session: Session, photo: ProtectedPhoto, *, actor: str = "cli") -> int:
    """Remove a photo and the bank entries no other photo shares. Returns entries removed."""
    entry_ids = [e.id for _, e in photo_signals(session, photo)]
    session.execute(delete(ProtectedSignal).where(ProtectedSignal.photo_id == photo.id))
    shared = set(
        session.scalars(
            select(ProtectedSignal.bank_entry_id)
            .where(ProtectedSignal.bank_entry_id.in_(entry_ids))
            .group_by(ProtectedSignal.bank_entry_id)
            .having(func.count() > 0)
        )
    )
    orphans = [i for i in entry_ids if i not in shared]
    if orphans:
        remove_entries_by_id(session, orphans)
    audit.record(
        session,
        actor=actor,
        action="protect.remove",
        object_type="protected_photo",
        object_id=photo.id,
        details={
            "file_name": photo.file_name,
            "sha256": photo.sha256,
            "entries_removed": len(orphans),
        },
    )
    session.delete(photo)
    session.flush()
    return len(orphans)
