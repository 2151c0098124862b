# Owns the signals stage of the pipeline: one piece of content in, one record out, never a raise.
"""The signals stage of the pipeline: one piece of content in, one `ContentSignals` out.

Every registered signal type whose content types include the content's is asked for its
signal (exact hashes of any bytes; PDQ of a photo, decoded once through the safe fast path in
`childguard.media`; vPDQ of a video). Options add the query views the matcher searches
(`robust`: borders removed, regions of screenshots and collages, rotations and flips;
`dihedral`: the 8 rotation/flip PDQ variants) and, with `features`, the ORB features that
verification against protected photos needs. Bad content never raises here: it becomes a
record whose `error` says what is wrong, with every signal that could still be computed: the
exact hashes come from the bytes alone, so no decoder failure (a MediaError or any other
exception of a decoder, a view or the features) ever costs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childguard.errors import MediaError
from childguard.log import get_logger
from childguard.media import (
    BYTES,
    DEFAULT_LIMITS,
    BudgetExceeded,
    Content,
    Limits,
    time_budget,
)
from childguard.pipeline.sources import Source
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import DIHEDRAL_NAMES, PdqSignal, pdq_dihedral_exact
from childguard.signals.registry import get_signal_type, types_for

if TYPE_CHECKING:  # OpenCV, faiss and ORB load only when robust views or features are asked for
    from childguard.robust.grid import Box
    from childguard.robust.query import QueryHash
    from childguard.robust.query_features import QueryFeatures

log = get_logger(__name__)


def _internal(stage: str, exc: BaseException) -> str:
    """The error text of a failure that is not the content's known fault (a bug, a library's
    own exception): the record says so, and the batch goes on."""
    log.error("hashing stage failed", stage=stage, error=repr(exc))
    return f"internal-error: {stage}: {exc!r}"


@dataclass(frozen=True)
class HashOptions:
    """What to compute beyond each signal type's own signal."""

    dihedral: bool = False
    robust: bool = False
    # ORB features for protected verification (about 20-30 ms more per photo: ask for them
    # only when `Matcher.needs_features` says so). Implies `robust`.
    features: bool = False
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)


def signals_of(
    content: Content, options: HashOptions | None = None, *, exact_only: bool = False
) -> ContentSignals:
    """Hash one piece of content. Never raises for bad content: the record carries `error`.
    With `exact_only`, only the signal types of plain bytes (the exact hashes) are computed."""
    opts = options or HashOptions(limits=content.limits)
    if (opts.robust or opts.features) and not exact_only:
        content.picture_wanted = True  # the views and features are made from it
    record = ContentSignals(path=content.origin, size=content.size)
    if content.size > opts.limits.max_bytes:
        limit = opts.limits.max_bytes
        record.error = str(
            MediaError("too-large", f"{content.size} bytes, over the limit of {limit}")
        )
        return record
    kinds = frozenset({BYTES}) if exact_only else content.content_types
    record.content_type = content.content_type
    if exact_only:
        for cls in types_for(kinds):
            found = cls.hash_content(content)
            if found is not None:
                record.signals[cls.name] = found
        return record
    errors: list[str] = []
    for cls in types_for(kinds):
        try:
            found = cls.hash_content(content)
        except MediaError as exc:
            errors.append(str(exc))
            continue
        except Exception as exc:  # one signal type's failure costs only it
            errors.append(_internal(cls.name, exc))
            continue
        if found is not None:
            record.signals[cls.name] = found
    if record.content_type is None:
        errors.append(_undecodable(content))
    if errors:
        record.error = errors[0]
    try:
        _photo_extras(content, record, opts)
        if opts.robust:
            _type_views(content, record)
    except MediaError as exc:
        record.error = record.error or str(exc)
    except Exception as exc:  # views and features are extras: keep the signals
        record.error = record.error or _internal("views", exc)
    return record


def _type_views(content: Content, record: ContentSignals) -> None:
    """The query views each signal type offers for its own signal (`SignalType.query_views`)."""
    extra: list[QueryView] = []
    for name, signal in record.signals.items():
        for variant, value in get_signal_type(name).query_views(content, signal):
            extra.append(QueryView(name, value.value, value.quality, variant))
    if extra:
        record.views = (record.views or []) + extra


def _undecodable(content: Content) -> str:
    """The reason bytes that are neither photo nor video give (the image decoder's words)."""
    try:
        content.image()
    except MediaError as exc:
        return str(exc)
    except Exception as exc:
        return _internal("decode", exc)
    return str(MediaError("not-an-image", "content is not a recognised image or video format"))


# Photos narrower than this have no robust views (a 1-pixel image has no borders or regions).
_MIN_VIEW_SIDE = 2


def _photo_extras(content: Content, record: ContentSignals, opts: HashOptions) -> None:
    """Size and format of a decoded photo, and the views and features the options ask for."""
    if PdqSignal.name not in record.signals:
        return
    image = content.image()
    record.width, record.height, record.format = image.width, image.height, image.format
    views: list[QueryView] = []
    robust = (opts.robust or opts.features) and min(image.width, image.height) >= _MIN_VIEW_SIDE
    if opts.dihedral and not robust:  # the robust views hold the same dihedral hashes
        variants, quality = pdq_dihedral_exact(image.pixels)
        views += [
            QueryView(PdqSignal.name, h, quality, name)
            for h, name in zip(variants[1:], DIHEDRAL_NAMES[1:], strict=True)
        ]
    if robust:
        from childguard.robust.query import query_regions

        picture = content.picture()
        hashes, cells, boxes = query_regions(picture)
        views += [QueryView(PdqSignal.name, q.pdq, q.quality, q.variant) for q in hashes]
        if opts.features:
            try:
                record.features = compact_features(picture, hashes, cells=cells, boxes=boxes)
            except Exception as exc:  # an extreme shape ORB cannot take: hashes stand without
                log.warning("no features", path=record.path, error=repr(exc))
    if views:
        record.views = views


def pdq_dihedral(record: ContentSignals) -> list[str] | None:
    """The 8 rotation/flip PDQ hashes in DIHEDRAL_NAMES order (original first), where the
    record was hashed with `dihedral`."""
    original = record.value(PdqSignal.name)
    by_variant = {v.variant: v.value for v in record.views or [] if v.signal_type == PdqSignal.name}
    if original is None or not all(n in by_variant for n in DIHEDRAL_NAMES[1:]):
        return None
    return [original] + [by_variant[n] for n in DIHEDRAL_NAMES[1:]]


def pdq_views(record: ContentSignals) -> list[QueryHash]:
    """The record's PDQ query views (original first) in the robust module's form."""
    from childguard.robust.query import QueryHash

    return [
        QueryHash(v.value, v.quality or 0, v.variant)
        for v in record.query_views()
        if v.signal_type == PdqSignal.name
    ]


def compact_features(
    pixels: Any,
    hashes: list[QueryHash],
    *,
    cells: list[Box] | None = None,
    boxes: list[Box] | None = None,
) -> QueryFeatures:
    """The query's ORB features computed now, without the pixels (picklable; the grey copy of
    at most 256 px that the aligned check warps travels with them, and the grey copy of at most
    FOCUS_SIDE px that the focused cut is made from, see `QueryFeatures.focus_copy`). `cells`: the
    grid cells query hashing found (`query_views`), so the grid is not detected again; `boxes`:
    likewise its photo-like regions (`photo_regions`), when the caller has them.

    The features of the mirrored query (flipped copies) and of its photo-like regions
    (screenshots, collages) are computed here too, while the pixels are at hand, so the
    matcher can run the same verification passes as the robustness benchmark."""
    from childguard.robust.query_features import QueryFeatures, query_features

    def without_pixels(q: QueryFeatures, keep: list[QueryHash]) -> QueryFeatures:
        return QueryFeatures(keep, keypoints=q.keypoints, descriptors=q.descriptors, check=q.check)

    full = query_features(pixels, hashes, cells=cells, boxes=boxes)
    mirror = full.mirrored()
    return QueryFeatures(
        hashes,
        keypoints=full.keypoints,
        descriptors=full.descriptors,
        mirror=without_pixels(mirror, []) if mirror is not None else None,
        regions=[without_pixels(r, []) for r in full.regions()],
        check=full.check,
        focus=full.focus_copy(),
    )


def hash_bytes(
    data: bytes,
    *,
    path: str = "",
    dihedral: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    robust: bool = False,
    features: bool = False,
) -> ContentSignals:
    """Hash one item's bytes (see `signals_of`)."""
    options = HashOptions(dihedral=dihedral, robust=robust, features=features, limits=limits)
    return signals_of(Content(data, origin=path, limits=limits), options)


def hash_source(source: Source, options: HashOptions) -> ContentSignals:
    """Hash one `Source` (a file, an archive member, or a walk error) within the per-file
    time budget (`Limits.file_seconds`). Never raises for bad content or a failing stage."""
    if source.error is not None:
        return ContentSignals(path=source.path, error=source.error)
    try:
        content = source.content(options.limits)
    except MediaError as exc:
        return ContentSignals(path=source.path, error=str(exc))
    except Exception as exc:
        return ContentSignals(path=source.path, error=_internal("read", exc))
    try:
        with time_budget(options.limits.file_seconds):
            return signals_of(content, options)
    except BudgetExceeded as exc:  # the time budget ran out: keep what the bytes alone give
        record = signals_of(content, HashOptions(limits=options.limits), exact_only=True)
        record.error = exc.error
        return record


def hash_file(
    path: Path | str,
    *,
    dihedral: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    robust: bool = False,
    features: bool = False,
) -> ContentSignals:
    """Hash one file. Unreadable or oversize files give a record with `error`."""
    options = HashOptions(dihedral=dihedral, robust=robust, features=features, limits=limits)
    return hash_source(Source(path=str(path), file=Path(path)), options)
