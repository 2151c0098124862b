"""The matcher: the signals of content (`ContentSignals`) in, matches against every enabled bank
out. It loops over the registered signal types; nothing here knows one type from another
except through `SignalType`.

Semantics (see docs/matching.md):
- exact signals (md5, sha1, sha256) match on equality, through the store's (type, key) index;
- each near signal type (PDQ, vPDQ) is searched in its own derived index (`BankIndex`) at the
  loosest enabled threshold, then each hit is kept only within its own bank's threshold
  (`SignalType.within`);
- values whose quality is under the type's minimum (PDQ: 50) are not searched;
- the views searched are each type's original value plus the record's `views` (robust PDQ
  views: borders removed, regions of screenshots and collages, rotations and flips);
  rotations and flips match known-abuse and allow banks by default (`dihedral=None`), every
  bank with `dihedral=True`, none with `dihedral=False`;
- protected banks also match on verified features: a query that carries ORB features
  (`record.features`) is checked against the registered photos' keypoints (see
  `childguard.matcher.protected`), so crops, rotations and screenshots of a protected photo
  match even when no PDQ view is within the bank's threshold;
- known-abuse entries that hold a signature of their own (`bank_signature`: the hotline's own
  assessed items, `childguard.hotline.signatures`) are verified the same way, through the same
  verifier over those signatures (`SignedEntryVerifier`); a hit is a match on the signed entry
  with variant `verified:<n> inliers`. Entries from outside lists hold no signature and match
  only through the PDQ views;
- a match in an `allow` bank silences the content's other matches (a known false positive);
  an allow bank owned by an organisation (its `owner` is the organisation's name, as the
  organisation's pages make `allow:<name>`) silences only matches in that organisation's own
  protected bank, so an organisation's false alarm never quiets a known-abuse list or another
  organisation's photos; a service-wide allow bank (no organisation) silences every match;
- a disabled entry (`childguard.banks.set_entry_disabled`) matches nothing until its time
  passes; the bank's `updated_at` tells every follower to drop its cached entries;
- a quarantined bank (flooding with matches, `childguard.banks.quarantine_bank`) matches
  nothing, as a disabled one, until it is released;
- a derived PDQ view (any variant but the original) counts its distance plus a margin, its
  *rank* (`signals.pdq.view_rank`: 31 less the view's cap, `view_cap`: 10 bits for any view of
  a query whose quality is under 50, searched only when `min_quality` lets it in; 24 for a
  rotation or flip, 27 for a crop undone or solid padding removed, 31 for the others), and
  matches when its rank is within the bank's threshold or PDQ's default, 31,
  whichever is stricter (`view_limit`): a view is a guess at the photo and one more chance at
  a look-alike, so the original hash outranks it at the same distance, and a bank loosened
  beyond 31 loosens only the original hash;
- an entry whose hash repeats itself (`signals.pdq.repeats_itself`: what PDQ gives a photo with
  next to no structure) matches the query's original hash only, never a derived view;
- for each entry only the best-ranked view is reported, and matches are ordered by rank.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from childguard.banks import EntryView, get_entries, lookup_values
from childguard.log import get_logger
from childguard.matcher.bank_index import BankIndex, SyncReport, open_indexes
from childguard.matcher.protected import (
    VERIFIED_PREFIX,
    PhotoRef,
    ProtectedVerifier,
    VerifiedHit,
    add_signature,
    verified_match,
)
from childguard.matcher.results import Match, MatchOutcome
from childguard.signals.base import SignalType
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import (
    DIHEDRAL_NAMES,
    PdqSignal,
    view_limit,
    view_may_match,
    view_rank,
)
from childguard.signals.registry import SIGNAL_TYPES, get_signal_type
from childguard.store.bank_signature_models import BankSignature
from childguard.store.db import Store
from childguard.store.models import Bank, BankEntry
from childguard.store.protect_models import Organisation

_DIHEDRAL_EXTRA = frozenset(DIHEDRAL_NAMES[1:])
# Bank kinds that rotated and flipped views match by default: lists of known images, where
# the query side is the only help. Protected photos find their mirrors through features.
_DIHEDRAL_KINDS = frozenset({"known-abuse", "allow"})
# Views that only make a candidate (a quarter of the image) and never a match on their own
# in protected banks: a collage cell is verified by its own region views instead.
_UNTRUSTED_FOR_PROTECTED = ("quad",)
_CACHE_LIMIT = 200_000

log = get_logger(__name__)


class _Found(dict[int, Match]):
    """One query's matches so far, by entry id, with the rank each was kept at (`_keep`)."""

    def __init__(self) -> None:
        super().__init__()
        self.ranks: dict[int, int] = {}


if TYPE_CHECKING:
    from childguard.robust.protected import ProtectedIndex


@dataclass(frozen=True)
class BankSettings:
    """A bank's matching settings as of the last refresh."""

    name: str
    kind: str
    enabled: bool
    thresholds: dict[str, Any]  # signal type -> threshold in that type's form
    # Moves with every change to the bank or to one of its entries' settings (an entry
    # disabled), so a refresh drops the entries it cached.
    updated_at: datetime | None = None
    # Quarantined for flooding (`childguard.banks.quarantine_bank`): matches nothing until
    # released, as if disabled.
    quarantined: bool = False
    # The bank's own cap on matches a minute (None: the service's default; 0: none).
    match_cap_per_minute: int | None = None
    # An allow bank owned by an organisation silences only matches in these banks (the
    # organisation's protected bank); None: every match (a service-wide allow bank).
    silences: frozenset[int] | None = None

    @property
    def matching(self) -> bool:
        """Whether the bank matches now: enabled and not quarantined."""
        return self.enabled and not self.quarantined


class SignedEntryVerifier(ProtectedVerifier):
    """The signatures held with bank entries (`bank_signature`), loaded from the store on first
    use and searched exactly as protected photos are (`ProtectedVerifier.search`). Each
    signature is one "photo" keyed by its entry; a hit names that entry."""

    def _load(self) -> ProtectedIndex:
        from childguard.robust.protected import ProtectedIndex

        index = ProtectedIndex()
        photos: dict[str, PhotoRef] = {}
        with self.store.session() as session:
            rows = session.execute(
                select(BankSignature.bank_entry_id, BankEntry.bank_id, BankSignature.signature)
                .join(BankEntry, BankEntry.id == BankSignature.bank_entry_id)
                .order_by(BankSignature.bank_entry_id)
            )
            for entry_id, bank_id, signature in rows:
                key = f"entry:{entry_id}"
                add_signature(
                    index,
                    photos,
                    key,
                    signature,
                    photo_id=int(entry_id),
                    bank_id=int(bank_id),
                    entry_id=int(entry_id),
                )
        self._photos = photos
        self._index = index
        log.info("entry signatures loaded", entries=len(photos))
        return index


def signed_entry_match(entry: EntryView, hit: VerifiedHit, *, threshold: int) -> Match:
    """A verified hit on a signed entry as a Match: variant `verified:<n> inliers`, distance the
    best PDQ view distance, the inlier count in the metadata."""
    match = Match.of(
        entry,
        distance=hit.distance,
        query_value=hit.query_pdq,
        variant=f"{VERIFIED_PREFIX}{round(hit.inliers)} inliers",
        threshold=threshold,
    )
    metadata = dict(entry.metadata or {})
    metadata["verified_inliers"] = round(float(hit.inliers), 1)
    if hit.region:
        metadata["verified_region"] = hit.region
    return replace(match, metadata=metadata)


def _signature_mark(store: Store) -> tuple[int, int]:
    """(count, newest entry id) of the stored entry signatures: moves when one is added or
    removed, so a refresh reloads them."""
    with store.engine.connect() as connection:
        row = connection.execute(select(func.count(), func.max(BankSignature.bank_entry_id))).one()
    return int(row[0] or 0), int(row[1] or 0)


def bank_thresholds(bank: Bank) -> dict[str, Any]:
    """The bank's threshold for every near signal type (PDQ's in its own column)."""
    stored = dict(bank.thresholds or {})
    stored.setdefault(PdqSignal.name, bank.pdq_threshold)
    return {
        name: cls.parse_threshold(stored.get(name))
        for name, cls in SIGNAL_TYPES.items()
        if not cls.exact
    }


def _allow_scope(bank: Bank, org_banks: Mapping[str, int]) -> frozenset[int] | None:
    """The banks an allow bank silences: its organisation's protected bank when an
    organisation owns it, None (every bank) for a service-wide one or another kind."""
    if bank.kind != "allow" or not bank.owner or bank.owner not in org_banks:
        return None
    return frozenset({org_banks[bank.owner]})


class Matcher:
    """Matches content against the banks of one store. Open once, match many."""

    def __init__(
        self,
        store: Store,
        *,
        index_base: Path | None = None,
        persist: bool = True,
        min_quality: int | None = None,
        dihedral: bool | None = None,
        mmap: bool = False,
    ) -> None:
        self.store = store
        self.index_base = index_base
        self.persist = persist
        # Open saved indexes memory-mapped (the service: its workers share the pages).
        self.mmap = mmap
        # None: each signal type's own minimum (PDQ 50); a number overrides it for every type
        # that has a quality.
        self.min_quality = min_quality
        self.dihedral = dihedral
        self._entries: dict[int, EntryView] = {}
        self.protected = ProtectedVerifier(store)
        self.signed = SignedEntryVerifier(store)
        self._signature_mark: tuple[int, int] | None = None
        self.indexes: dict[str, BankIndex] = {}
        self.last_sync: dict[str, SyncReport] = {}
        self._banks: dict[int, BankSettings] = {}
        # Told every batch's records and outcomes after matching (the service counts matches
        # per bank with it); it must not match again.
        self.on_outcomes: Callable[[Sequence[ContentSignals], list[MatchOutcome]], None] | None
        self.on_outcomes = None
        self.refresh()

    # ------------------------------------------------------------------ state

    def refresh(self) -> dict[str, SyncReport]:
        """Bring every index and the bank settings up to date with the store.

        The first call opens each index (from disk where it was saved); later calls sync the
        indexes in memory by entry ids (added after the watermark, removed since), so a
        long-running matcher (the service) follows the store without rebuilding or reloading."""
        if self.indexes:
            reports: dict[str, SyncReport] = {}
            for name, index in self.indexes.items():
                added, removed = index.sync(self.store)
                reports[name] = SyncReport(False, added, removed, len(index.index))
            self.last_sync = reports
        else:
            opened = open_indexes(
                self.store, base=self.index_base, persist=self.persist, mmap=self.mmap
            )
            self.indexes = {name: index for name, (index, _) in opened.items()}
            self.last_sync = {name: report for name, (_, report) in opened.items()}
        with self.store.session() as session:
            banks = session.scalars(select(Bank)).all()
            org_banks = dict(session.execute(select(Organisation.name, Organisation.bank_id)).all())
            settings = {
                b.id: BankSettings(
                    b.name,
                    b.kind,
                    b.enabled,
                    bank_thresholds(b),
                    b.updated_at,
                    quarantined=b.quarantined_at is not None,
                    match_cap_per_minute=b.match_cap_per_minute,
                    silences=_allow_scope(b, org_banks),
                )
                for b in banks
            }
        changed = settings != self._banks or any(r.removed for r in self.last_sync.values())
        if changed or any(r.added for r in self.last_sync.values()):
            self.protected.invalidate()
        mark = _signature_mark(self.store)
        if changed or mark != self._signature_mark:
            self.signed.invalidate()
        self._signature_mark = mark
        if changed:
            self._entries.clear()
        self._banks = settings
        return self.last_sync

    def save(self) -> None:
        """Save every index where it was opened from (nothing when `persist` is off), so the
        next open syncs only what changed after now."""
        for index in self.indexes.values():
            index.save(self.store)

    @property
    def banks(self) -> Mapping[int, BankSettings]:
        """Every bank's matching settings as of the last refresh, by bank id."""
        return dict(self._banks)

    @property
    def bank_index(self) -> BankIndex:
        """The PDQ index (the one most callers ask about)."""
        return self.indexes[PdqSignal.name]

    def loosest(self, signal_type: type[SignalType]) -> Any:
        """The threshold an index search of `signal_type` runs at: the loosest enabled one."""
        enabled = [b.thresholds[signal_type.name] for b in self._banks.values() if b.matching]
        return signal_type.loosest(enabled) if enabled else None

    @property
    def needs_features(self) -> bool:
        """Whether queries should carry ORB features (`HashOptions(features=True)`): true when
        an enabled protected bank holds photos registered with features, or an enabled bank
        holds entries with signatures of their own."""
        live = {bank_id for bank_id, b in self._banks.items() if b.matching}
        return bool((self.protected.bank_ids() | self.signed.bank_ids()) & live)

    def _entry_views(self, ids: Iterable[int]) -> dict[int, EntryView]:
        wanted = [i for i in dict.fromkeys(ids) if i not in self._entries]
        if wanted:
            if len(self._entries) > _CACHE_LIMIT:
                self._entries.clear()
            self._entries.update(get_entries(self.store, wanted))
        return self._entries

    def _live(self, entry: EntryView) -> BankSettings | None:
        """The entry's bank settings if the bank is enabled and the entry is not disabled."""
        found = self._banks.get(entry.bank_id)
        if found is None or not found.matching or not entry.matches_at(time.time()):
            return None
        return found

    def _min_quality(self, signal_type: type[SignalType]) -> int | None:
        if signal_type.min_quality is None:
            return None
        return signal_type.min_quality if self.min_quality is None else self.min_quality

    def _view_allowed(self, view: QueryView, bank_kind: str) -> bool:
        if view.variant in _DIHEDRAL_EXTRA:
            allowed = bank_kind in _DIHEDRAL_KINDS if self.dihedral is None else self.dihedral
            if not allowed:
                return False
        return not (bank_kind == "protected" and view.variant.startswith(_UNTRUSTED_FOR_PROTECTED))

    # ------------------------------------------------------------------ matching

    def match(self, record: ContentSignals) -> MatchOutcome:
        """Match one piece of content."""
        return self.match_many([record])[0]

    def __call__(self, record: ContentSignals) -> list[Match]:
        """The crawler's interface: the matches of one piece of content."""
        return self.match(record).matches

    def match_stream(
        self, records: Iterable[ContentSignals], *, batch_size: int = 128
    ) -> Iterator[tuple[ContentSignals, MatchOutcome]]:
        """(record, outcome) for each record, matched in batches, in order."""
        batch: list[ContentSignals] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                yield from zip(batch, self.match_many(batch), strict=True)
                batch = []
        if batch:
            yield from zip(batch, self.match_many(batch), strict=True)

    def match_hash(self, signal_type: str, value: str, *, quality: int = 100) -> MatchOutcome:
        """Match one bare hash (as platforms send over the API)."""
        cls = get_signal_type(signal_type)
        record = ContentSignals(path="")
        record.set(cls.name, cls.validate(value), quality if cls.min_quality is not None else None)
        return self.match(record)

    def match_many(
        self,
        records: Sequence[ContentSignals],
        *,
        near_indexes: Mapping[str, BankIndex] | None = None,
    ) -> list[MatchOutcome]:
        """Match a batch; each type's views of the whole batch go to its index at once.

        `near_indexes` stand in for the matcher's own near indexes (a Dask scan passes the
        answers its workers found in their copies of the index)."""
        found: list[_Found] = [_Found() for _ in records]
        outcomes = [MatchOutcome() for _ in records]
        self._match_exact(records, found)
        for name, index in (self.indexes if near_indexes is None else near_indexes).items():
            self._match_near(get_signal_type(name), index, records, found, outcomes)
        self._match_verified(records, found)
        for outcome, by_entry in zip(outcomes, found, strict=True):
            matches = sorted(
                by_entry.values(), key=lambda m: (by_entry.ranks[m.entry_id], m.entry_id)
            )
            allow = [m for m in matches if m.bank_kind == "allow"]
            if allow:
                outcome.allowed_by = allow
                silenced = self._silenced_by(allow)
                for m in matches:
                    if m.bank_kind == "allow":
                        continue
                    if silenced is None or m.bank_id in silenced:
                        outcome.suppressed.append(m)
                    else:
                        outcome.matches.append(m)
            else:
                outcome.matches = matches
        if self.on_outcomes is not None:
            self.on_outcomes(records, outcomes)
        return outcomes

    def _silenced_by(self, allow: Sequence[Match]) -> frozenset[int] | None:
        """The banks whose matches these allow matches silence (None: every bank)."""
        scoped: set[int] = set()
        for m in allow:
            bank = self._banks.get(m.bank_id)
            if bank is None or bank.silences is None:
                return None
            scoped |= bank.silences
        return frozenset(scoped)

    def _keep(self, found: _Found, match: Match, rank: int | None = None) -> None:
        """Keep `match` if it ranks above the entry's match so far; `rank` defaults to its
        distance (a derived PDQ view's is `view_rank`)."""
        rank = match.distance if rank is None else rank
        old = found.ranks.get(match.entry_id)
        if old is None or rank < old:
            found[match.entry_id] = match
            found.ranks[match.entry_id] = rank

    def _match_exact(self, records: Sequence[ContentSignals], found: list[_Found]) -> None:
        wanted: dict[tuple[str, str], list[int]] = {}
        for qi, record in enumerate(records):
            for t, v in record.exact().items():
                wanted.setdefault((t, v.lower()), []).append(qi)
        if not wanted:
            return
        by_type: dict[str, list[str]] = {}
        for t, v in wanted:
            by_type.setdefault(t, []).append(v)
        hits = [
            (entry_id, t, value)
            for t, values in by_type.items()
            for entry_id, value in lookup_values(self.store, t, values)
        ]
        views = self._entry_views(h[0] for h in hits)
        for entry_id, t, v in hits:
            entry = views.get(entry_id)
            if entry is None or self._live(entry) is None:
                continue
            for qi in wanted[(t, v)]:
                self._keep(
                    found[qi],
                    Match.of(entry, distance=0, query_value=v, variant="bytes", threshold=0),
                )

    def _match_near(
        self,
        signal_type: type[SignalType],
        index: BankIndex,
        records: Sequence[ContentSignals],
        found: list[_Found],
        outcomes: list[MatchOutcome],
    ) -> None:
        name = signal_type.name
        floor = self._min_quality(signal_type)
        flat: list[tuple[int, QueryView]] = []
        for qi, record in enumerate(records):
            views = [v for v in record.query_views() if v.signal_type == name]
            if not views:
                continue
            if floor is not None:
                original = record.quality(name)
                quality = original if original is not None else (views[0].quality or 0)
                if quality < floor:
                    outcomes[
                        qi
                    ].skipped = f"{name.upper()} quality {quality} is under the minimum {floor}"
                    continue
                views = [v for v in views if (v.quality or 0) >= floor]
            flat += [(qi, v) for v in views]
        loosest = self.loosest(signal_type)
        if not flat or loosest is None or len(index.index) == 0:
            return
        results = index.index.query([v.value for _, v in flat], loosest)
        views_by_id = self._entry_views(e for hits in results for e, _ in hits)
        for (qi, view), hits in zip(flat, results, strict=True):
            for entry_id, comparison in hits:
                entry = views_by_id.get(entry_id)
                bank = self._live(entry) if entry is not None else None
                if entry is None or bank is None:
                    continue
                threshold = bank.thresholds[name]
                rank = comparison.distance
                if name == PdqSignal.name:
                    if not view_may_match(view.variant, entry.value):
                        continue
                    quality = view.quality or 0
                    threshold = view_limit(view.variant, quality, threshold)
                    rank = view_rank(view.variant, quality, comparison.distance)
                if not signal_type.within(comparison, threshold):
                    continue
                if not self._view_allowed(view, bank.kind):
                    continue
                self._keep(
                    found[qi],
                    Match.of(
                        entry,
                        distance=comparison.distance,
                        query_value=view.value,
                        variant=view.variant,
                        threshold=threshold,
                        detail=comparison.detail,
                    ),
                    rank,
                )

    def _match_verified(self, records: Sequence[ContentSignals], found: list[_Found]) -> None:
        """Protected photos, and entries with signatures of their own, confirmed by their
        features, for records that carry features.

        A photo already matched through one of its PDQ entries is not reported twice; nor is a
        signed entry that matched through a PDQ view."""
        wanted = [(qi, r.features) for qi, r in enumerate(records) if r.features is not None]
        if not wanted:
            return
        if self.signed.bank_ids():
            for qi, features in wanted:
                for hit in self.signed.search(features):
                    views = self._entry_views([hit.photo.entry_id])
                    entry = views.get(hit.photo.entry_id)
                    if entry is None or entry.id in found[qi]:
                        continue
                    bank = self._live(entry)
                    if bank is not None:
                        threshold = bank.thresholds[PdqSignal.name]
                        self._keep(found[qi], signed_entry_match(entry, hit, threshold=threshold))
        if not self.protected.bank_ids():
            return
        for qi, features in wanted:
            hits = self.protected.search(features)
            if not hits:
                continue
            views = self._entry_views(h.photo.entry_id for h in hits)
            matched_photos = {
                (m.metadata or {}).get("photo_id")
                for m in found[qi].values()
                if m.bank_kind == "protected"
            }
            for hit in hits:
                entry = views.get(hit.photo.entry_id)
                if entry is None or hit.photo.photo_id in matched_photos:
                    continue
                bank = self._live(entry)
                if bank is not None:
                    threshold = bank.thresholds[PdqSignal.name]
                    self._keep(found[qi], verified_match(entry, hit, threshold=threshold))
