"""`PdqIndex`: exact radius search over PDQ hashes with multi-index hashing (MIH).

The 256 bits split into 8 substrings of 32 bits. By pigeonhole, a hash within radius r of a
query has some substring within s = r // 8 of the query's substring. Each substring has a
table: CSR buckets keyed by its top `prefix_bits` bits. Each table entry is a row number
with the substring's next `inline_bits` bits beside it (the bits a 3-byte row number leaves
spare: 4 at 1M rows, 0 past 2^24), so an entry whose key and inline bits already differ from
the query's by more than s is dropped without reading its hash. A search probes every bucket
within s of the query's prefix in each table and verifies candidates with a full 256-bit
popcount, in C (`_mih.c`). The result is every entry within the radius: recall is 100% by
construction and tested against brute force.

A batch of queries (`search` takes any number) is cheaper per query than one: the
"linear" strategy is a batched flat scan that reads the bank once per 8 queries, and "auto"
chooses between it and MIH by a cost model of the bank's size, key width and batch.

Memory per hash (n rows): 32 (hash) + 4 or 8 (id: uint32 when every id fits, else int64)
+ 7 tables x 3 (row entries; table 0 is the storage order itself, so it needs none)
+ bucket offsets: 8 x 2 x 2^prefix_bits / n (uint16 within groups of 256 buckets, plus a
uint32 base a group; uint32 offsets when a group holds 65,536 rows or more) bytes.
`prefix_bits` defaults to the widest key that keeps the total within 64 bytes per hash
(`default_prefix_bits`); wider keys mean fewer candidates per probed bucket, so the budget is
spent on speed.

Changes never rebuild on the spot: additions go to a delta segment scanned linearly, and are
merged into the main segment when the delta passes `merge_fraction` of it; removals set a
tombstone bit, filtered in the kernel, and are compacted away when they pass
`compact_fraction`. Save/load write and read plain .npy files (optionally memory-mapped).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

import childguard.index._mih as _mih
from childguard.index.base import Candidate, SignalComparison, SignalIndex
from childguard.index.result import SearchResult

HASH_BYTES = 32
N_TABLES = 8
FORMAT_VERSION = 2  # 2: table entries carry inline key bits; 1 (none) still loads
Strategy = Literal["auto", "mih", "linear"]
_MODES = {"auto": 0, "mih": 1, "linear": 2}


BYTES_PER_HASH_BUDGET = 64


GROUP_SHIFT = 8  # narrow offsets: one uint32 base per 2^8 buckets, uint16 within the group


def offsets_bytes(p: int, narrow: bool) -> int:
    """Bytes of the 8 tables' bucket offsets at prefix width p: uint32 per bucket, or (narrow)
    uint16 per bucket plus one uint32 base per group of 256 buckets."""
    buckets = (1 << p) + 1
    if not narrow:
        return N_TABLES * 4 * buckets
    return N_TABLES * (2 * buckets + 4 * (((1 << p) >> GROUP_SHIFT) + 1))


def default_prefix_bits(
    n: int, id_bytes: int = 8, row_bytes: int = 3, *, narrow: bool = False
) -> int:
    """Bucket key width for n rows: the widest (fewest candidates per probe) whose bucket
    offsets still fit the 64-bytes-per-hash budget, and no wider than ~2 rows per bucket
    (past that, probing more buckets costs more than the candidates it saves). In [4, 24]."""
    widest = math.floor(math.log2(max(n, 1))) - 1
    left = BYTES_PER_HASH_BUDGET - HASH_BYTES - id_bytes - (N_TABLES - 1) * row_bytes
    p = 4
    tombstones = (n + 7) // 8
    while p < min(24, widest) and offsets_bytes(p + 1, narrow) + tombstones <= left * n:
        p += 1
    return p


def _narrow(off: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One table's uint32 offsets as (uint16 within-group offsets, uint32 group bases), or None
    when some group of 256 buckets holds 65,536 rows or more (heavy duplicates)."""
    base = off[:: 1 << GROUP_SHIFT]
    if base.shape[0] < ((off.shape[0] - 1) >> GROUP_SHIFT) + 1:
        base = np.append(base, off[-1])
    low = off - np.repeat(base, 1 << GROUP_SHIFT)[: off.shape[0]]
    if int(low.max(initial=0)) > 0xFFFF:
        return None
    return low.astype(np.uint16), base.astype(np.uint32)


def inline_bits(n: int, prefix_bits: int, row_bytes: int) -> int:
    """How many of a substring's bits after its key a table entry carries beside the row number:
    the bits a row number of n rows leaves spare in `row_bytes`, up to the substring's end."""
    row_bits = max(1, (n - 1).bit_length())
    return max(0, min(8 * row_bytes - row_bits, 32 - prefix_bits))


def _check_hashes(hashes: np.ndarray, what: str = "hashes") -> np.ndarray:
    a = np.asarray(hashes)
    if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != HASH_BYTES:
        raise ValueError(
            f"{what} must be an (n, {HASH_BYTES}) uint8 array of packed PDQ hashes "
            f"(see childguard.signals.pdq.hexes_to_array); got dtype {a.dtype}, shape {a.shape}"
        )
    return np.ascontiguousarray(a)


def _check_ids(ids: np.ndarray, n: int | None = None) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise ValueError(f"ids must be a 1-d integer array; got dtype {a.dtype}, shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"got {a.shape[0]} ids for {n} hashes")
    return np.ascontiguousarray(a, dtype=np.int64)


class _Growable:
    """An append-only pair of (hashes, ids) arrays with amortised O(1) appends."""

    def __init__(self) -> None:
        self.hashes = np.zeros((0, HASH_BYTES), dtype=np.uint8)
        self.ids = np.zeros(0, dtype=np.int64)
        self.n = 0

    def append(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        need = self.n + ids.shape[0]
        if need > self.ids.shape[0]:
            cap = max(need, 2 * self.ids.shape[0], 1024)
            h = np.zeros((cap, HASH_BYTES), dtype=np.uint8)
            i = np.zeros(cap, dtype=np.int64)
            h[: self.n] = self.hashes[: self.n]
            i[: self.n] = self.ids[: self.n]
            self.hashes, self.ids = h, i
        self.hashes[self.n : need] = hashes
        self.ids[self.n : need] = ids
        self.n = need

    def keep(self, mask: np.ndarray) -> None:
        h, i = self.hashes[: self.n][mask], self.ids[: self.n][mask]
        self.n = 0
        self.hashes = np.zeros((0, HASH_BYTES), dtype=np.uint8)
        self.ids = np.zeros(0, dtype=np.int64)
        self.append(i, h)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.hashes[: self.n], self.ids[: self.n]


def pack_hex(values: Sequence[str]) -> np.ndarray:
    """Hex PDQ hashes packed into an (n, 32) uint8 array, the layout the index uses."""
    if not values:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, HASH_BYTES)


class PdqIndex(SignalIndex):
    """Every entry within a Hamming radius of each query; incremental add and remove.

    Ids are the caller's int64 keys (e.g. bank entry ids); they need not be unique, and
    `remove` drops every row carrying a given id.
    """

    def __init__(
        self,
        *,
        prefix_bits: int | None = None,
        merge_fraction: float = 0.1,
        min_merge: int = 50_000,
        compact_fraction: float = 0.2,
    ) -> None:
        if prefix_bits is not None and not 1 <= prefix_bits <= 24:
            raise ValueError("prefix_bits must be in 1..24")
        self._fixed_prefix_bits = prefix_bits
        self.merge_fraction = merge_fraction
        self.min_merge = min_merge
        self.compact_fraction = compact_fraction
        self._set_main(np.zeros((0, HASH_BYTES), np.uint8), np.zeros(0, np.int64))
        self._delta = _Growable()

    # ------------------------------------------------------------------ structure

    def _set_main(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        """Build the main segment from rows (hashes, ids): sort by table 0, then 7 tables."""
        n = hashes.shape[0]
        if n and int(ids.min()) >= 0 and int(ids.max()) < (1 << 32):
            ids = ids.astype(np.uint32)  # 4 bytes a row instead of 8; searches return int64
        rb = 3 if n <= (1 << 24) else 4
        order_done = False
        for narrow in (True, False):
            p = self._fixed_prefix_bits or default_prefix_bits(
                n, ids.dtype.itemsize, rb, narrow=narrow
            )
            ib = inline_bits(n, p, rb)
            bases = np.zeros((N_TABLES, ((1 << p) >> GROUP_SHIFT) + 1), dtype=np.uint32)
            if not n:
                offsets = np.zeros((N_TABLES, (1 << p) + 1), dtype=np.uint32)
                rows = np.zeros((N_TABLES - 1, 0), dtype=np.uint8)
                break
            off0, order = _mih.build_table(hashes, 0, p, 4, 0)
            if not order_done:  # storage order: sorted by table 0's key (so by any shorter key)
                perm = order.view(np.uint32)
                hashes, ids = hashes[perm], ids[perm]
                order_done = True
            del order
            offsets = np.empty((N_TABLES, (1 << p) + 1), dtype=np.uint16 if narrow else np.uint32)
            rows = np.empty((N_TABLES - 1, n * rb), dtype=np.uint8)
            ok = True
            for t in range(N_TABLES):
                if t:
                    off, rows[t - 1] = _mih.build_table(hashes, t, p, rb, ib)
                else:
                    off = off0
                if narrow:
                    split = _narrow(off)
                    if split is None:
                        ok = False
                        break
                    offsets[t], bases[t] = split
                else:
                    offsets[t] = off
            if ok:
                break
        self._bases = bases
        self._hashes = np.ascontiguousarray(hashes)
        self._ids = np.ascontiguousarray(ids)
        self._offsets = offsets
        self._rows = rows
        self._row_bytes = rb
        self._prefix_bits = p
        self._inline_bits = ib
        self._dead = np.zeros((n + 7) // 8, dtype=np.uint8)
        self._n_dead = 0

    def _live_main(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._n_dead:
            return self._hashes, self._ids
        alive = ~np.unpackbits(self._dead, count=self._ids.shape[0], bitorder="little").astype(bool)
        return self._hashes[alive], self._ids[alive]

    def compact(self) -> None:
        """Merge the delta into the main segment and drop removed rows (a full rebuild)."""
        mh, mi = self._live_main()
        dh, di = self._delta.view()
        self._delta = _Growable()
        self._set_main(np.concatenate([mh, dh]), np.concatenate([mi, di]))

    def _maybe_merge(self) -> None:
        live_main = self._ids.shape[0] - self._n_dead
        big_delta = self._delta.n > max(self.min_merge, self.merge_fraction * live_main)
        many_dead = self._n_dead > max(0.0, self.compact_fraction * self._ids.shape[0])
        if big_delta or many_dead:
            self.compact()

    # ------------------------------------------------------------------ public API

    @classmethod
    def build(cls, ids: np.ndarray, hashes: np.ndarray, **options: float | int | None) -> PdqIndex:
        """A new index over (ids, hashes), built in one pass (options: see `__init__`)."""
        index = cls(**options)  # type: ignore[arg-type]
        h = _check_hashes(hashes)
        index._set_main(h, _check_ids(ids, h.shape[0]))
        return index

    def add(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Add entries; they are searchable at once. No rebuild: they go to the delta."""
        h = _check_hashes(hashes)
        i = _check_ids(ids, h.shape[0])
        if not h.shape[0]:
            return
        if not len(self) and h.shape[0] > self.min_merge:
            self._set_main(h, i)  # first bulk load: build directly, skip the delta copy
            return
        self._delta.append(i, h)
        self._maybe_merge()

    @classmethod
    def from_values(cls, ids: np.ndarray, values: Sequence[str]) -> PdqIndex:
        return cls.build(np.asarray(ids, dtype=np.int64), pack_hex(values))

    def add_values(self, ids: np.ndarray, values: Sequence[str]) -> None:
        self.add(np.asarray(ids, dtype=np.int64), pack_hex(values))

    def query(self, values: Sequence[str], threshold: Any) -> list[list[Candidate]]:
        """Every entry within Hamming distance `threshold` of each hex value."""
        radius = int(threshold)
        out: list[list[Candidate]] = [[] for _ in values]
        if not values or not len(self):
            return out
        result = self.search(pack_hex(values), radius)
        for qi, entry_id, dist in zip(
            result.query_index.tolist(), result.ids.tolist(), result.distances.tolist(), strict=True
        ):
            out[qi].append((entry_id, SignalComparison(match=True, distance=dist)))
        return out

    def remove(self, ids: np.ndarray) -> int:
        """Remove every entry carrying one of `ids`; returns how many rows went. O(n) per call,
        so remove in batches."""
        gone = _check_ids(np.atleast_1d(np.asarray(ids)))
        if not gone.size:
            return 0
        removed = 0
        n = self._ids.shape[0]
        if n:
            hit = np.isin(self._ids, gone)
            dead = np.unpackbits(self._dead, count=n, bitorder="little").astype(bool)
            new = hit & ~dead
            removed += int(new.sum())
            if removed:
                self._dead = np.packbits(dead | hit, bitorder="little")
                self._n_dead += removed
        if self._delta.n:
            in_delta = np.isin(self._delta.view()[1], gone)
            k = int(in_delta.sum())
            if k:
                self._delta.keep(~in_delta)
                removed += k
        self._maybe_merge()
        return removed

    def search(
        self, queries: np.ndarray, radius: int = 31, *, strategy: Strategy = "auto"
    ) -> SearchResult:
        """Every (query, entry) pair within `radius` (0..256), grouped by query.

        Pass many queries at once where you can: "linear" is a batched flat scan that reads
        the bank once per 8 queries. `strategy` "auto" lets a cost model of the bank's size,
        key width, radius and batch choose MIH probing or that scan per call (the scan wins
        below about 30k rows batched, 10k one query a call, and for big radii, where
        s = radius // 8 makes probing touch most buckets); "mih" and "linear" force one (the
        tests use them to cover both paths).
        """
        q = _check_hashes(np.atleast_2d(np.asarray(queries)), "queries")
        if not 0 <= radius <= 8 * HASH_BYTES:
            raise ValueError(f"radius must be in 0..256, got {radius}")
        if strategy not in _MODES:
            raise ValueError(f"strategy must be one of {sorted(_MODES)}")
        dh, di = self._delta.view()
        qi, ids, dist = _mih.search(
            self._hashes,
            self._ids,
            self._offsets,
            self._bases,
            self._rows,
            self._row_bytes,
            self._prefix_bits,
            self._inline_bits,
            self._dead if self._n_dead else None,
            np.ascontiguousarray(dh),
            np.ascontiguousarray(di),
            q,
            int(radius),
            _MODES[strategy],
        )
        return SearchResult(qi, ids, dist)

    def __len__(self) -> int:
        return self._ids.shape[0] - self._n_dead + self._delta.n

    def live_ids(self) -> np.ndarray:
        """The ids of every entry the index holds (int64, unordered, with repeats if added so)."""
        _, main_ids = self._live_main()
        return np.concatenate([main_ids.astype(np.int64), self._delta.view()[1].astype(np.int64)])

    @property
    def prefix_bits(self) -> int:
        return self._prefix_bits

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (main segment, tombstones, delta buffers)."""
        arrays = (self._hashes, self._ids, self._offsets, self._bases, self._rows, self._dead)
        return sum(a.nbytes for a in arrays) + self._delta.hashes.nbytes + self._delta.ids.nbytes

    def stats(self) -> dict[str, int]:
        return {
            "main_rows": int(self._ids.shape[0]),
            "removed_rows": int(self._n_dead),
            "delta_rows": int(self._delta.n),
            "prefix_bits": self._prefix_bits,
            "inline_bits": self._inline_bits,
            "offset_bytes": self._offsets.dtype.itemsize,
            "row_bytes": self._row_bytes,
            "memory_bytes": self.memory_bytes(),
        }

    # ------------------------------------------------------------------ persistence

    _FILES = ("hashes", "ids", "offsets", "rows", "dead", "delta_hashes", "delta_ids")

    def save(self, path: str | Path) -> None:
        """Write the index to directory `path` as .npy files plus meta.json (as-is: no rebuild).

        Files are written under temporary names and renamed, so a crash leaves the old copy."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        dh, di = self._delta.view()
        arrays = {
            "hashes": self._hashes,
            "ids": self._ids,
            "offsets": self._offsets,
            "bases": self._bases,
            "rows": self._rows,
            "dead": self._dead,
            "delta_hashes": dh,
            "delta_ids": di,
        }
        meta = {
            "format": "childguard-pdq-mih",
            "version": FORMAT_VERSION,
            "prefix_bits": self._prefix_bits,
            "fixed_prefix_bits": self._fixed_prefix_bits,
            "row_bytes": self._row_bytes,
            "inline_bits": self._inline_bits,
            "n_dead": self._n_dead,
            "merge_fraction": self.merge_fraction,
            "min_merge": self.min_merge,
            "compact_fraction": self.compact_fraction,
        }
        for name, arr in arrays.items():
            tmp = d / f".{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
            tmp.replace(d / f"{name}.npy")
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.replace(d / "meta.json")

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> PdqIndex:
        """Read an index written by `save`. With mmap=True the main arrays are memory-mapped
        read-only (instant load; pages come in on first search)."""
        d = Path(path)
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{d}: not a saved PDQ index ({exc})") from exc
        if not isinstance(meta, dict):
            raise ValueError(f"{d}: meta.json is not an object")
        if meta.get("format") != "childguard-pdq-mih" or meta.get("version") not in (1, 2):
            found = f"{meta.get('format')!r} version {meta.get('version')!r}"
            raise ValueError(f"{d}: unknown index format {found}")
        mode: Literal["r"] | None = "r" if mmap else None
        a = {n: np.load(d / f"{n}.npy", mmap_mode=mode, allow_pickle=False) for n in cls._FILES}
        p = int(meta["prefix_bits"])
        groups = (N_TABLES, ((1 << p) >> GROUP_SHIFT) + 1)
        if (d / "bases.npy").exists():
            a["bases"] = np.load(d / "bases.npy", mmap_mode=mode, allow_pickle=False)
        else:  # version 1: uint32 offsets, no group bases
            a["bases"] = np.zeros(groups, dtype=np.uint32)
        narrow = a["offsets"].dtype == np.uint16
        last = int(a["bases"][0, -1]) if narrow else 0
        self = cls(
            prefix_bits=meta["fixed_prefix_bits"],
            merge_fraction=meta["merge_fraction"],
            min_merge=meta["min_merge"],
            compact_fraction=meta["compact_fraction"],
        )
        n = a["ids"].shape[0]
        rb = int(meta["row_bytes"])
        ib = int(meta.get("inline_bits", 0))
        ok = (
            a["hashes"].shape == (n, HASH_BYTES)
            and a["offsets"].shape == (N_TABLES, (1 << p) + 1)
            and a["rows"].shape == (N_TABLES - 1, n * rb)
            and a["dead"].shape == ((n + 7) // 8,)
            and a["delta_hashes"].shape == (a["delta_ids"].shape[0], HASH_BYTES)
            and a["offsets"].dtype in (np.uint16, np.uint32)
            and a["bases"].shape == groups
            and a["bases"].dtype == np.uint32
            and (n == 0 or last + int(a["offsets"][0, -1]) == n)
            and ib >= 0
            and p + ib <= 32
            and n <= (1 << (8 * rb - ib))
        )
        if not ok:
            raise ValueError(f"{d}: index files are inconsistent (truncated or mixed copies?)")
        self._hashes, self._ids = a["hashes"], a["ids"]
        self._offsets, self._rows, self._dead = a["offsets"], a["rows"], a["dead"]
        self._bases = a["bases"]
        self._prefix_bits, self._row_bytes, self._inline_bits = p, rb, ib
        self._n_dead = int(meta["n_dead"])
        if mmap:  # tombstones are written in place on remove: keep them in RAM
            self._dead = np.array(self._dead)
        self._delta = _Growable()
        self._delta.append(np.asarray(a["delta_ids"]), np.asarray(a["delta_hashes"]))
        return self
