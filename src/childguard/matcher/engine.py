"""The matcher: signals of content in, matches against every enabled bank out.

Semantics (see docs/matching.md):
- exact signals (md5, sha1, sha256) match on equality, through the store's (type, value) index;
- PDQ hashes are searched in the derived `BankIndex` at the largest enabled threshold, then
  each hit is kept only within its own bank's threshold;
- PDQ hashes with quality under `min_quality` (default 50) are not searched;
- the query views searched are the original hash, its dihedral variants with `dihedral`, and the
  robust views (borders removed, regions of screenshots/collages) when the record carries them;
- protected banks also match on verified features: a query that carries ORB features
  (`record.features`) is checked against the registered photos' keypoints (see
  `childguard.matcher.protected`), so crops, rotations and screenshots of a protected photo
  match even when no PDQ view is within the bank's threshold;
- a match in an `allow` bank silences the content's other matches (a known false positive);
- for each entry only the closest view is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from childguard.banks import EntryView, get_entries
from childguard.matcher.bank_index import BankIndex, SyncReport
from childguard.matcher.protected import ProtectedVerifier, verified_match
from childguard.matcher.results import Match, MatchOutcome
from childguard.signals import EXACT_SIGNAL_TYPES
from childguard.signals.pdq import DIHEDRAL_NAMES, MIN_QUALITY, hexes_to_array
from childguard.store.db import Store
from childguard.store.models import Bank, BankEntry

_DIHEDRAL_EXTRA = frozenset(DIHEDRAL_NAMES[1:])
# Views that only make a candidate (a quarter of the image) and never a match on their own
# in protected banks: a collage cell is verified by its own region views instead.
_UNTRUSTED_FOR_PROTECTED = ("quad",)
_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class QueryView:
    """One PDQ hash to search for a piece of content."""

    pdq: str
    quality: int
    variant: str


@dataclass
class MatchQuery:
    """The signals of one piece of content, as the matcher wants them."""

    exact: dict[str, str]
    views: list[QueryView]
    pdq_quality: int | None = None
    # ORB features (childguard.robust.protected.QueryFeatures) for protected verification.
    features: Any = None


def query_from_record(record: Any, *, dihedral: bool = False) -> MatchQuery:
    """Build a MatchQuery from a `HashRecord` (or any object with the same attributes).

    Uses `record.queries` (robust views) when present, else `record.pdq` and, with
    `dihedral`, `record.pdq_dihedral`. Dihedral views are dropped unless `dihedral`."""
    exact = {t: v for t in EXACT_SIGNAL_TYPES if (v := getattr(record, t, None))}
    quality = getattr(record, "pdq_quality", None)
    views: list[QueryView] = []
    robust = getattr(record, "queries", None)
    if robust:
        views = [QueryView(q.pdq, q.quality, q.variant) for q in robust]
    elif getattr(record, "pdq", None):
        views.append(QueryView(record.pdq, quality or 0, "original"))
        variants = getattr(record, "pdq_dihedral", None) or []
        views += [
            QueryView(h, quality or 0, name)
            for h, name in zip(variants[1:], DIHEDRAL_NAMES[1:], strict=False)
        ]
    if not dihedral:
        views = [v for v in views if v.variant not in _DIHEDRAL_EXTRA]
    return MatchQuery(
        exact=exact, views=views, pdq_quality=quality, features=getattr(record, "features", None)
    )


class Matcher:
    """Matches content against the banks of one store. Open once, match many."""

    def __init__(
        self,
        store: Store,
        *,
        index_base: Path | None = None,
        persist: bool = True,
        min_quality: int = MIN_QUALITY,
        dihedral: bool = False,
    ) -> None:
        self.store = store
        self.index_base = index_base
        self.persist = persist
        self.min_quality = min_quality
        self.dihedral = dihedral
        self._entries: dict[int, EntryView] = {}
        self.protected = ProtectedVerifier(store)
        self.bank_index: BankIndex
        self.last_sync: SyncReport
        self.refresh()

    # ------------------------------------------------------------------ state

    def refresh(self) -> SyncReport:
        """Bring the index and the bank settings up to date with the store."""
        self.bank_index, self.last_sync = BankIndex.open(
            self.store, base=self.index_base, persist=self.persist
        )
        self._entries.clear()
        self.protected.invalidate()
        with self.store.session() as session:
            banks = session.scalars(select(Bank)).all()
            self._banks = {b.id: (b.name, b.kind, b.pdq_threshold, b.enabled) for b in banks}
        enabled = [t for (_, _, t, on) in self._banks.values() if on]
        self.radius = max(enabled, default=0)
        return self.last_sync

    @property
    def needs_features(self) -> bool:
        """Whether queries should carry ORB features (`hash_bytes(..., features=True)`): true
        when an enabled protected bank holds photos registered with features."""
        live = {bank_id for bank_id, (_, _, _, on) in self._banks.items() if on}
        return bool(self.protected.bank_ids() & live)

    def _entry_views(self, ids: Iterable[int]) -> dict[int, EntryView]:
        wanted = [i for i in dict.fromkeys(ids) if i not in self._entries]
        if wanted:
            if len(self._entries) > _CACHE_LIMIT:
                self._entries.clear()
            self._entries.update(get_entries(self.store, wanted))
        return self._entries

    def _bank_live(self, entry: EntryView) -> tuple[bool, int]:
        """(enabled now, threshold now) for an entry's bank, from the refreshed settings."""
        found = self._banks.get(entry.bank_id)
        if found is None:
            return False, 0
        return found[3], found[2]

    # ------------------------------------------------------------------ matching

    def match_record(self, record: Any) -> MatchOutcome:
        """Match one HashRecord-like object (see `query_from_record`)."""
        return self.match_many([query_from_record(record, dihedral=self.dihedral)])[0]

    def match_records(self, records: Sequence[Any]) -> list[MatchOutcome]:
        return self.match_many([query_from_record(r, dihedral=self.dihedral) for r in records])

    def match_stream(
        self, records: Iterable[Any], *, batch_size: int = 128
    ) -> Iterator[tuple[Any, MatchOutcome]]:
        """(record, outcome) for each HashRecord-like object, matched in batches, in order."""
        batch: list[Any] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                yield from zip(batch, self.match_records(batch), strict=True)
                batch = []
        if batch:
            yield from zip(batch, self.match_records(batch), strict=True)

    def match_hash(self, signal_type: str, value: str, *, quality: int = 100) -> MatchOutcome:
        """Match one bare hash (as platforms send over the API)."""
        if signal_type == "pdq":
            q = MatchQuery(
                exact={}, views=[QueryView(value, quality, "original")], pdq_quality=quality
            )
        else:
            q = MatchQuery(exact={signal_type: value}, views=[])
        return self.match_many([q])[0]

    def __call__(self, hashes: Any) -> list[Match]:
        """The crawler's interface: an object with exact hashes, `pdq` and `pdq_quality`."""
        return self.match_record(hashes).matches

    def match_many(self, queries: Sequence[MatchQuery]) -> list[MatchOutcome]:
        """Match a batch of queries; PDQ views of the whole batch go to the index at once."""
        found: list[dict[int, Match]] = [{} for _ in queries]
        outcomes = [MatchOutcome() for _ in queries]
        self._match_exact(queries, found)
        self._match_pdq(queries, found, outcomes)
        self._match_verified(queries, found)
        for outcome, by_entry in zip(outcomes, found, strict=True):
            matches = sorted(by_entry.values(), key=lambda m: (m.distance, m.entry_id))
            allow = [m for m in matches if m.bank_kind == "allow"]
            if allow:
                outcome.allowed_by = allow
                outcome.suppressed = [m for m in matches if m.bank_kind != "allow"]
            else:
                outcome.matches = matches
        return outcomes

    def _keep(self, found: dict[int, Match], match: Match) -> None:
        old = found.get(match.entry_id)
        if old is None or match.distance < old.distance:
            found[match.entry_id] = match

    def _match_exact(self, queries: Sequence[MatchQuery], found: list[dict[int, Match]]) -> None:
        wanted: dict[tuple[str, str], list[int]] = {}
        for qi, q in enumerate(queries):
            for t, v in q.exact.items():
                wanted.setdefault((t, v.lower()), []).append(qi)
        if not wanted:
            return
        by_type: dict[str, list[str]] = {}
        for t, v in wanted:
            by_type.setdefault(t, []).append(v)
        hits: list[tuple[int, str, str]] = []
        with self.store.session() as session:
            for t, values in by_type.items():
                for start in range(0, len(values), 500):
                    rows = session.execute(
                        select(BankEntry.id, BankEntry.signal_type, BankEntry.value).where(
                            BankEntry.signal_type == t,
                            BankEntry.value.in_(values[start : start + 500]),
                        )
                    )
                    hits += [(int(r[0]), r[1], r[2]) for r in rows]
        views = self._entry_views(h[0] for h in hits)
        for entry_id, t, v in hits:
            entry = views.get(entry_id)
            if entry is None:
                continue
            enabled, _ = self._bank_live(entry)
            if not enabled:
                continue
            for qi in wanted[(t, v)]:
                self._keep(
                    found[qi],
                    Match.of(entry, distance=0, query_value=v, variant="bytes", threshold=0),
                )

    def _match_pdq(
        self,
        queries: Sequence[MatchQuery],
        found: list[dict[int, Match]],
        outcomes: list[MatchOutcome],
    ) -> None:
        flat: list[tuple[int, QueryView]] = []
        for qi, q in enumerate(queries):
            if not q.views:
                outcomes[qi].skipped_pdq = "no PDQ hash"
                continue
            original_quality = q.pdq_quality if q.pdq_quality is not None else q.views[0].quality
            if original_quality < self.min_quality:
                outcomes[
                    qi
                ].skipped_pdq = (
                    f"PDQ quality {original_quality} is under the minimum {self.min_quality}"
                )
                continue
            flat += [(qi, v) for v in q.views if v.quality >= self.min_quality]
        if not flat or not self._banks or len(self.bank_index.index) == 0:
            return
        packed = hexes_to_array([v.pdq for _, v in flat])
        result = self.bank_index.index.search(packed, self.radius)
        if not len(result):
            return
        views = self._entry_views(int(i) for i in np.unique(result.ids))
        for row, entry_id, dist in zip(
            result.query_index.tolist(), result.ids.tolist(), result.distances.tolist(), strict=True
        ):
            entry = views.get(entry_id)
            if entry is None:
                continue
            enabled, threshold = self._bank_live(entry)
            if not enabled or dist > threshold:
                continue
            qi, view = flat[row]
            if entry.bank_kind == "protected" and view.variant.startswith(_UNTRUSTED_FOR_PROTECTED):
                continue
            self._keep(
                found[qi],
                Match.of(
                    entry,
                    distance=int(dist),
                    query_value=view.pdq,
                    variant=view.variant,
                    threshold=threshold,
                ),
            )

    def _match_verified(self, queries: Sequence[MatchQuery], found: list[dict[int, Match]]) -> None:
        """Protected photos confirmed by their features, for queries that carry features.

        A photo already matched through one of its PDQ entries is not reported twice."""
        wanted = [(qi, q.features) for qi, q in enumerate(queries) if q.features is not None]
        if not wanted or not self.protected.bank_ids():
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
                enabled, threshold = self._bank_live(entry)
                if enabled:
                    self._keep(found[qi], verified_match(entry, hit, threshold=threshold))
