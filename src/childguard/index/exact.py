"""`ExactIndex`: id lookup by exact hash value, for md5, sha1 and sha256 signals.

Values are kept as raw digest bytes (hex strings are accepted and decoded), so an md5 costs
16 bytes, not a 32-character str. A plain dict maps digest -> ids; save/load use one .npy
pair (fixed-width bytes and int64 ids), never pickle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DIGEST_BYTES = {"md5": 16, "sha1": 20, "sha256": 32}


class ExactIndex:
    """Exact-match index of one digest width. Several ids may share a value."""

    def __init__(self, signal_type: str = "md5") -> None:
        if signal_type not in DIGEST_BYTES:
            raise ValueError(
                f"unknown exact signal type {signal_type!r}; one of {sorted(DIGEST_BYTES)}"
            )
        self.signal_type = signal_type
        self.width = DIGEST_BYTES[signal_type]
        self._map: dict[bytes, list[int]] = {}
        self._count = 0

    def _key(self, value: str | bytes) -> bytes:
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value.strip())
            except ValueError:
                msg = f"not a {self.signal_type} hash (non-hex): {value[:80]!r}"
                raise ValueError(msg) from None
        else:
            raw = bytes(value)
        if len(raw) != self.width:
            raise ValueError(
                f"not a {self.signal_type} hash: want {self.width} bytes, got {len(raw)}"
            )
        return raw

    def add(self, ids: Iterable[int], values: Iterable[str | bytes]) -> None:
        """Add (id, value) pairs. All values are validated before anything is added."""
        id_list = [int(i) for i in ids]
        keys = [self._key(v) for v in values]
        if len(id_list) != len(keys):
            raise ValueError(f"got {len(id_list)} ids for {len(keys)} values")
        for i, k in zip(id_list, keys, strict=True):
            self._map.setdefault(k, []).append(i)
        self._count += len(keys)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove every entry carrying one of `ids`; returns how many went. O(n) per call."""
        gone = {int(i) for i in ids}
        if not gone:
            return 0
        removed = 0
        for k in list(self._map):
            kept = [i for i in self._map[k] if i not in gone]
            removed += len(self._map[k]) - len(kept)
            if kept:
                self._map[k] = kept
            else:
                del self._map[k]
        self._count -= removed
        return removed

    def lookup(self, value: str | bytes) -> list[int]:
        """Ids whose value equals `value` (empty if none)."""
        return list(self._map.get(self._key(value), ()))

    def lookup_many(self, values: Iterable[str | bytes]) -> list[list[int]]:
        return [self.lookup(v) for v in values]

    def __len__(self) -> int:
        return self._count

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str | bytes) and self._key(value) in self._map

    def save(self, path: str | Path) -> None:
        """Write `path`/{values,ids}.npy and meta.json (temporary names, then rename)."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        keys = [k for k, v in self._map.items() for _ in v]
        ids = [i for v in self._map.values() for i in v]
        values = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, self.width)
        for name, arr in (("values", values), ("ids", np.asarray(ids, dtype=np.int64))):
            tmp = d / f".{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)
            tmp.replace(d / f"{name}.npy")
        tmp = d / ".meta.json.tmp"
        tmp.write_text(json.dumps({"format": "childguard-exact", "signal_type": self.signal_type}))
        tmp.replace(d / "meta.json")

    @classmethod
    def load(cls, path: str | Path) -> ExactIndex:
        d = Path(path)
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{d}: not a saved exact index ({exc})") from exc
        if not isinstance(meta, dict):
            raise ValueError(f"{d}: meta.json is not an object")
        if meta.get("format") != "childguard-exact":
            raise ValueError(f"{d}: unknown index format {meta.get('format')!r}")
        self = cls(meta["signal_type"])
        values = np.load(d / "values.npy", allow_pickle=False)
        ids = np.load(d / "ids.npy", allow_pickle=False)
        if values.ndim != 2 or values.shape[1] != self.width or values.shape[0] != ids.shape[0]:
            raise ValueError(f"{d}: index files are inconsistent")
        raw = values.tobytes()
        w = self.width
        for j, i in enumerate(ids.tolist()):
            self._map.setdefault(raw[j * w : (j + 1) * w], []).append(i)
        self._count = int(ids.shape[0])
        return self
