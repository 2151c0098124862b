"""`VpdqIndex`: bank videos searched frame by frame, then aggregated per video.

Every bank video's good, distinct frames (quality 50 or more, deduplicated by hash) are rows of
one `PdqIndex`, under row ids that map back to the video's entry id. A query video's good frames
are searched at PDQ radius 31 by multi-index hashing; the hits are grouped per entry into the
two vPDQ percentages (query frames matched, bank frames matched) and kept where they pass the
threshold. The result equals `VpdqSignal.compare` against every entry, which the tests check.

The matching rules themselves (quality floor, frame distance, `VpdqThreshold`) live here, below
the signal type that uses them, as PDQ's packing lives in `index.pdq`.

Adding and removing videos adds and removes their rows; nothing is rebuilt. Save/load write the
frame index (`frames/`), three .npy arrays and a meta.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from childguard.index.base import Candidate, SignalComparison, SignalIndex
from childguard.index.pdq import PdqIndex, pack_hex

FORMAT = "childguard-vpdq"
FORMAT_VERSION = 1

QUALITY_THRESHOLD = 50  # frames under this PDQ quality are not compared
FRAME_DISTANCE = 31  # two frames match within this PDQ Hamming distance


@dataclass(frozen=True)
class VpdqThreshold:
    """When two videos match: at least `query_percent` of the query's frames and at least
    `bank_percent` of the bank video's frames are matched (good, distinct frames only)."""

    query_percent: float = 80.0
    bank_percent: float = 0.0

    def __post_init__(self) -> None:
        for name in ("query_percent", "bank_percent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"a vpdq {name} must be a number from 0 to 100, got {value!r}")
            if not 0.0 <= float(value) <= 100.0:
                raise ValueError(f"a vpdq {name} must be a number from 0 to 100, got {value!r}")

    def __str__(self) -> str:
        return f"{self.query_percent:g},{self.bank_percent:g}"

    def admits(self, query_percent: float, bank_percent: float) -> bool:
        return query_percent >= self.query_percent and bank_percent >= self.bank_percent


DEFAULT_VPDQ_THRESHOLD = VpdqThreshold()


def good_frames(frames: Sequence[tuple[str, int]]) -> list[str]:
    """The hashes matching compares, from (pdq_hex, quality) pairs: quality 50 or more,
    deduplicated, in order."""
    return list(dict.fromkeys(h for h, q in frames if q >= QUALITY_THRESHOLD))


def good_frames_of(value: str) -> list[str]:
    """`good_frames` of a canonical vPDQ value (a JSON list of 'pdq_hex,quality,timestamp')."""
    pairs = []
    for item in json.loads(value):
        pdq_hex, quality, _ = item.split(",")
        pairs.append((pdq_hex, int(quality)))
    return good_frames(pairs)


def vpdq_comparison(
    query_percent: float, bank_percent: float, threshold: VpdqThreshold
) -> SignalComparison:
    """The comparison of two videos from their two percentages; distance is the share of the
    query's frames not matched (0: every frame matched)."""
    return SignalComparison(
        match=threshold.admits(query_percent, bank_percent),
        distance=round(100.0 - query_percent),
        detail={"query_match_percent": query_percent, "bank_match_percent": bank_percent},
    )


class VpdqIndex(SignalIndex):
    """Bank videos (vPDQ values) under int64 entry ids; adding an id again replaces it."""

    def __init__(self) -> None:
        self._frames = PdqIndex()
        self._row_entry = np.zeros(0, dtype=np.int64)  # row id -> entry id (-1: removed)
        self._n_rows = 0
        self._entry_frames: dict[int, int] = {}  # entry id -> its good, distinct frames

    @classmethod
    def from_values(cls, ids: np.ndarray, values: Sequence[str]) -> Self:
        index = cls()
        index.add_values(ids, values)
        return index

    def add_values(self, ids: np.ndarray, values: Sequence[str]) -> None:
        entry_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if entry_ids.shape[0] != len(values):
            raise ValueError(f"{entry_ids.shape[0]} ids for {len(values)} values")
        if len(set(entry_ids.tolist())) != entry_ids.shape[0]:
            raise ValueError("an id appears twice in one add")
        again = [i for i in entry_ids.tolist() if i in self._entry_frames]
        if again:
            self.remove(np.asarray(again, dtype=np.int64))
        hexes: list[str] = []
        owners: list[int] = []
        for entry_id, value in zip(entry_ids.tolist(), values, strict=True):
            frames = good_frames_of(value)
            self._entry_frames[entry_id] = len(frames)
            hexes.extend(frames)
            owners.extend([entry_id] * len(frames))
        if not hexes:
            return
        start = self._n_rows
        rows = np.arange(start, start + len(hexes), dtype=np.int64)
        self._grow(start + len(hexes))
        self._row_entry[rows] = np.asarray(owners, dtype=np.int64)
        self._n_rows += len(hexes)
        self._frames.add(rows, pack_hex(hexes))

    def _grow(self, n: int) -> None:
        if n <= self._row_entry.shape[0]:
            return
        grown = np.full(max(n, 2 * self._row_entry.shape[0], 1024), -1, dtype=np.int64)
        grown[: self._row_entry.shape[0]] = self._row_entry
        self._row_entry = grown

    def remove(self, ids: np.ndarray) -> int:
        gone = [
            i
            for i in np.atleast_1d(np.asarray(ids, dtype=np.int64)).tolist()
            if i in self._entry_frames
        ]
        if not gone:
            return 0
        live = self._row_entry[: self._n_rows]
        rows = np.flatnonzero(np.isin(live, np.asarray(gone, dtype=np.int64)))
        if rows.size:
            self._frames.remove(rows.astype(np.int64))
            self._row_entry[rows] = -1
        for i in gone:
            del self._entry_frames[i]
        return len(gone)

    def live_ids(self) -> np.ndarray:
        return np.fromiter(self._entry_frames, dtype=np.int64, count=len(self._entry_frames))

    def __len__(self) -> int:
        return len(self._entry_frames)

    @property
    def frame_count(self) -> int:
        """Frame rows searched (good, distinct frames of every video held)."""
        return len(self._frames)

    def query(self, values: Sequence[str], threshold: Any) -> list[list[Candidate]]:
        """For each query video (canonical values), every bank video whose two percentages
        pass `threshold` (a `VpdqThreshold`; None: the default), best first."""
        limit = DEFAULT_VPDQ_THRESHOLD if threshold is None else threshold
        if not isinstance(limit, VpdqThreshold):
            raise TypeError(f"a vPDQ index is queried with a VpdqThreshold, got {threshold!r}")
        per_query = [good_frames_of(v) for v in values]
        out: list[list[Candidate]] = [[] for _ in values]
        hexes = [h for frames in per_query for h in frames]
        if not hexes or not len(self._frames):
            return out
        owner = np.repeat(np.arange(len(values)), [len(f) for f in per_query])
        result = self._frames.search(pack_hex(hexes), FRAME_DISTANCE)
        if not len(result):
            return out
        frame = result.query_index.astype(np.int64)  # position in `hexes`
        rows = result.ids.astype(np.int64)
        query = owner[frame]
        entry = self._row_entry[rows]
        # Query frames matched per (query, entry), and bank frames matched per (query, entry).
        q_pairs = np.unique(np.stack([query, entry, frame]), axis=1)
        b_pairs = np.unique(np.stack([query, entry, rows]), axis=1)
        q_keys, q_counts = np.unique(q_pairs[:2], axis=1, return_counts=True)
        b_keys, b_counts = np.unique(b_pairs[:2], axis=1, return_counts=True)
        bank_hits = {(int(a), int(b)): int(c) for a, b, c in zip(*b_keys, b_counts, strict=True)}
        for qi, entry_id, count in zip(*q_keys, q_counts, strict=True):
            qi, entry_id = int(qi), int(entry_id)
            query_percent = 100.0 * int(count) / len(per_query[qi])
            bank_percent = 100.0 * bank_hits[qi, entry_id] / self._entry_frames[entry_id]
            found = vpdq_comparison(query_percent, bank_percent, limit)
            if found.match:
                out[qi].append((entry_id, found))
        for hits in out:
            hits.sort(key=lambda c: (c[1].distance, -_bank_percent(c), c[0]))
        return out

    def save(self, path: Path) -> None:
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self._frames.save(d / "frames")
        entries = np.fromiter(self._entry_frames, dtype=np.int64, count=len(self._entry_frames))
        counts = np.fromiter(
            self._entry_frames.values(), dtype=np.int64, count=len(self._entry_frames)
        )
        for name, arr in (
            ("row_entry", self._row_entry[: self._n_rows]),
            ("entries", entries),
            ("entry_frames", counts),
        ):
            tmp = d / f".{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)
            tmp.replace(d / f"{name}.npy")
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps({"format": FORMAT, "version": FORMAT_VERSION}))
        tmp.replace(d / "meta.json")

    @classmethod
    def load(cls, path: Path) -> Self:
        d = Path(path)
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{d}: not a saved vPDQ index ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{d}: not a saved vPDQ index")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{d}: unknown vPDQ index version {meta.get('version')!r}")
        index = cls()
        index._frames = PdqIndex.load(d / "frames")
        row_entry = np.load(d / "row_entry.npy", allow_pickle=False).astype(np.int64)
        entries = np.load(d / "entries.npy", allow_pickle=False)
        counts = np.load(d / "entry_frames.npy", allow_pickle=False)
        if entries.shape != counts.shape:
            raise ValueError(f"{d}: entries and entry_frames differ in length")
        index._row_entry = row_entry.copy()
        index._n_rows = int(row_entry.shape[0])
        index._entry_frames = dict(zip(entries.tolist(), counts.tolist(), strict=True))
        return index


def _bank_percent(candidate: Candidate) -> float:
    detail = candidate[1].detail or {}
    return float(detail.get("bank_match_percent", 0.0))
