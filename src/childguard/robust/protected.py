# Owns the in-memory index of protected signatures and the search over it: PDQ candidates,
# descriptor votes, and which candidates are verified in which order.
"""Protected photos: the index of registered signatures and how a query is matched against it.

`ProtectedIndex` finds candidate photos by PDQ hits and by descriptor votes, and verifies them
(`childguard.robust.verify`). The signature is in `childguard.robust.signature`, the query side
in `childguard.robust.query_features`, the ORB features in `childguard.robust.orb`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from childguard.robust import _votes
from childguard.robust.query_features import PARTITIONS, QueryFeatures, query_features
from childguard.robust.signature import ProtectedSignature
from childguard.robust.verify import (
    DESCRIPTOR_MATCH,
    PDQ_CLOSE,
    PDQ_ONLY_DISTANCE,
    decide,
    inlier_points,
    verify,
)
from childguard.signals.pdq import MIN_QUALITY, hamming_many, hexes_to_array

# Query views too speculative to match on PDQ alone; they only nominate candidates for verification.
UNTRUSTED_VARIANTS = ("quad",)
# Dihedral query views that mirror the picture (see childguard.signals.pdq.DIHEDRAL_NAMES).
FLIP_VARIANTS = frozenset({"flipx", "flipy", "flip_plus1", "flip_minus1"})
# A descriptor votes only when its nearest photo is this much nearer than the next photo's.
VOTE_RATIO = 0.8
_VOTE_NEIGHBOURS = 4
# The whole query's most voted photos that are verified.
_VOTES = 2
# Only the strongest query descriptors vote (the search is the costly step); all of them verify.
# Not fewer: a query's top-up keypoints come last (`orb_features`), and at 500 voters they no
# longer voted: one astro repost chain and one stickers + 25% crop of 20 were lost.
VOTERS = 1000
# A grid cell's strongest descriptors vote (one search for all cells), and the cells whose top
# photo has the most votes are verified, at most this many.
CELL_VOTERS = 100
CELL_VERIFY = 4
# The mirrored and region queries verify their own top vote and the closest PDQ candidate; their
# strongest ALT_VOTERS descriptors vote (a mirrored or framed copy's right photo got 67-280 of
# 300-500 votes).
_ALT_PDQ_CANDIDATES = 1
ALT_VOTERS = 300
# An unmatched candidate with this many inliers, packed into part of the query, is verified again
# on the query cut around them (`_verify_focused`). The right photo in an astro grid without
# gutters had 11-28 inliers in the whole picture; wrong photos in the harness's grids at most 8.
FOCUS_INLIERS = 10
# A candidate beyond PDQ_ONLY_DISTANCE is verified only with at least this many votes: every
# such match had 12 or more of the whole query's 1000 voters, 20 or more of a cell's 100 and 67
# or more of a mirror's 300, while 72% of the candidates verified for a photo that matches
# nothing had 0-3. The whole query's own most voted photos need only MAIN_MIN_VOTES: one that
# does not match still scores its inliers (`hit_score`), above the distractors' for some copies
# (an astro grid's photo at 14 inliers on 2 votes).
MIN_VOTES = 5
MAIN_MIN_VOTES = 2
# A candidate beyond PDQ_ONLY_DISTANCE with fewer than MIN_VOTES votes (nearly every candidate
# of a photo that matches nothing) is verified with the query's usual keypoints first; the
# top-up's weaker corners (a second detection) join only when those give this many inliers.
RECHECK_INLIERS = 10


# The descriptor search behind the votes: exact below EXACT_VOTES registered descriptors, an
# inverted file above (VOTE_LIST descriptors a list, VOTE_PROBES lists searched, built again
# whenever the descriptors have doubled). On the benchmark's 366 photos (109,344 descriptors)
# it put the right photo among a hard query's two most voted as often as the exact search
# (195 of 216 crops, rotations, chains and mirrored passes; exact 194, HNSW with M=16 193) at
# a fifth of HNSW's cost. The search is the compiled kernel `childguard.robust._votes`: the
# neighbours faiss's IndexBinaryIVF gives for the same lists, ties included (tested). Its
# distances are counted 8 codes at a time with AVX-512's vector popcount where the CPU has it
# (1,000 voters: 3.2 ms, 1.5x the scalar path's speed; `make bench-votes`).
EXACT_VOTES = 4096
VOTE_LIST = 200
VOTE_PROBES = 8


@dataclass(frozen=True)
class _VoteLists:
    """The registered descriptors as inverted lists (`_votes.search`'s layout): one list and
    one (unused) centre for the exact search."""

    centres: np.ndarray  # (lists, 32) uint8
    codes: np.ndarray  # (n, 32) uint8, list after list
    ids: np.ndarray  # (n,) int64 registration order, ascending within a list
    offsets: np.ndarray  # (lists + 1,) int64
    probes: int


class _VoteIndex:
    """Nearest registered descriptors for the votes, rebuilt as the registered ones grow."""

    def __init__(self) -> None:
        # Searches from several threads (the matcher's) build the lists once. Adding photos
        # while another thread searches is not supported (nor was it before).
        self._lock = threading.Lock()
        self._lists: _VoteLists | None = None
        self._every = np.zeros((0, 32), np.uint8)  # registered descriptors, registration order
        self._assigned = np.zeros(0, np.int64)  # each one's list
        self._parts = 0  # registered parts in the lists
        self._trained = 0  # descriptors the centres were taken from (0: exact search)

    @property
    def total(self) -> int:
        return len(self._every)

    def _sync(self, parts: list[np.ndarray]) -> _VoteLists:
        if self._lists is not None and self._parts == len(parts):
            return self._lists
        new = [np.ascontiguousarray(p, dtype=np.uint8) for p in parts[self._parts :]]
        every = np.ascontiguousarray(np.concatenate([self._every, *new]))
        total = len(every)
        stale = self._lists is None or (
            total >= 2 * self._trained if self._trained else total >= EXACT_VOTES
        )
        if stale and total >= EXACT_VOTES:
            # The lists' centres are registered descriptors taken at a regular stride: k-means
            # over the benchmark's descriptors took 23 s (a loaded machine) and put the right
            # photo among a hard query's two most voted no more often (194 against 195).
            lists = max(1, total // VOTE_LIST)
            centres = np.ascontiguousarray(every[:: total // lists][:lists])
            self._assigned, self._trained = _votes.assign(every, centres), total
        elif stale or not self._trained:
            centres, self._trained = np.zeros((1, 32), np.uint8), 0
            self._assigned = np.zeros(total, np.int64)
        else:
            assert self._lists is not None
            centres = self._lists.centres
            added = every[len(self._every) :]
            self._assigned = np.concatenate([self._assigned, _votes.assign(added, centres)])
        # Each list in registration order, as faiss's inverted lists hold them.
        order = np.argsort(self._assigned, kind="stable")
        offsets = np.zeros(len(centres) + 1, np.int64)
        np.cumsum(np.bincount(self._assigned, minlength=len(centres)), out=offsets[1:])
        self._every, self._parts = every, len(parts)
        self._lists = _VoteLists(
            centres,
            np.ascontiguousarray(every[order]),
            order.astype(np.int64),
            offsets,
            VOTE_PROBES if self._trained else 1,
        )
        return self._lists

    def search(
        self, parts: list[np.ndarray], queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(distances, ids) of each query descriptor's k nearest registered descriptors (ids in
        registration order; -1 where fewer were found)."""
        with self._lock:
            lists = self._sync(parts)
        return _votes.search(
            np.ascontiguousarray(queries, dtype=np.uint8),
            lists.centres,
            lists.codes,
            lists.ids,
            lists.offsets,
            lists.probes,
            k,
        )


@dataclass
class ProtectedHit:
    photo: str
    distance: int  # best PDQ distance between a query hash and one of the photo's views
    region: str  # which registered view gave that distance
    inliers: float  # verification score (0 when not verified)
    match: bool
    aligned: int | None = None  # the aligned check's PDQ distance, when measured


class ProtectedIndex:
    """In-memory index of protected signatures.

    PDQ views are searched by brute force; ORB descriptors through the vote kernel (exact for
    a few photos, an inverted file for more, see `_VoteIndex`).
    """

    def __init__(self) -> None:
        self.signatures: dict[str, ProtectedSignature] = {}
        self._hash_owner: list[tuple[str, str]] = []
        self._hash_parts: list[np.ndarray] = []
        self._hashes = np.zeros((0, 32), np.uint8)
        self._desc_owner: list[str] = []
        self._photo_no: dict[str, int] = {}
        self._owner_ids: np.ndarray | None = None
        self._desc_parts: list[np.ndarray] = []
        self._votes = _VoteIndex()
        self._dirty = True

    def add(self, photo: str, signature: ProtectedSignature) -> None:
        if photo in self.signatures:
            raise ValueError(f"photo {photo!r} is already in the index")
        self._photo_no[photo] = len(self.signatures)
        self.signatures[photo] = signature
        self._hash_owner.extend((photo, label) for label, _ in signature.pdq)
        self._hash_parts.append(hexes_to_array([h for _, h in signature.pdq]))
        if len(signature.descriptors):
            self._desc_owner.extend([photo] * len(signature.descriptors))
            self._desc_parts.append(np.ascontiguousarray(signature.descriptors, dtype=np.uint8))
        self._dirty = True

    def _ready(self) -> None:
        if self._dirty:
            self._hashes = (
                np.vstack(self._hash_parts) if self._hash_parts else np.zeros((0, 32), np.uint8)
            )
            self._dirty = False

    def pdq_hits(self, q: QueryFeatures, *, radius: int = 80) -> dict[str, tuple[int, str]]:
        """photo -> (best distance, registered view) over the query's hashes within `radius`.

        Quadrant query hashes and weak ones (quality under 50) only nominate
        candidates: their distance is reported as 256.
        """
        self._ready()
        out: dict[str, tuple[int, str]] = {}
        if not len(self._hashes) or not q.hashes:
            return out
        dist = _hamming_matrix(hexes_to_array([qh.pdq for qh in q.hashes]), self._hashes)
        trusted = [
            qh.quality >= MIN_QUALITY and not qh.variant.startswith(UNTRUSTED_VARIANTS)
            for qh in q.hashes
        ]
        # In query-hash order, then registered-hash order: the first view at the best
        # distance names the region, and photos come in the order they were first seen.
        for k, i in zip(*np.nonzero(dist <= radius), strict=True):
            photo, label = self._hash_owner[int(i)]
            d = int(dist[k, i]) if trusted[k] else 256
            if photo not in out or d < out[photo][0]:
                out[photo] = (d, label)
        return out

    def voted(self, q: QueryFeatures, *, votes: int = 2) -> list[str]:
        """The photos most voted for by the query's ORB descriptors.

        A query descriptor votes for the photo of its nearest registered descriptor
        only when that one is distinctive: within DESCRIPTOR_MATCH and clearly
        nearer than the second nearest of another photo (Lowe's ratio test). Photos
        full of generic corners (star fields, text) otherwise collect votes from
        every query.
        """
        return [photo for photo, _n in self.voted_many([q], votes=votes)[0]]

    def voted_many(
        self, queries: list[QueryFeatures], *, votes: int = 1, voters: int | None = None
    ) -> list[list[tuple[str, int]]]:
        """`voted` for several queries (a grid's cells) in one descriptor search, with each
        photo's vote count; each query's strongest `voters` (VOTERS) descriptors vote."""
        voters = VOTERS if voters is None else voters
        parts = [q.voters(voters) for q in queries]
        sizes = [len(p) for p in parts]
        if not self._desc_owner or not sum(sizes):
            return [[] for _ in queries]
        k = min(_VOTE_NEIGHBOURS, len(self._desc_owner))
        dist, idx = self._votes.search(self._desc_parts, np.concatenate(parts), k)
        if self._owner_ids is None or len(self._owner_ids) != len(self._desc_owner):
            self._owner_ids = np.array([self._photo_no[p] for p in self._desc_owner], np.int64)
        owner = np.where(idx >= 0, self._owner_ids[np.maximum(idx, 0)], -1)
        other = (owner != owner[:, :1]) & (owner >= 0)
        other[:, 0] = False
        # Distance to the nearest descriptor of another photo (none among the k: the bar itself).
        second = np.where(
            other.any(axis=1),
            dist[np.arange(len(dist)), np.argmax(other, axis=1)],
            DESCRIPTOR_MATCH / VOTE_RATIO,
        )
        good = (owner[:, 0] >= 0) & (dist[:, 0] <= DESCRIPTOR_MATCH)
        good &= dist[:, 0] < VOTE_RATIO * second
        photos = list(self.signatures)
        out: list[list[tuple[str, int]]] = []
        start = 0
        for size in sizes:
            sel = good[start : start + size]
            tally: Counter[str] = Counter(
                photos[int(o)] for o in owner[start : start + size][sel, 0]
            )
            out.append(tally.most_common(votes))
            start += size
        return out

    def search(self, query: np.ndarray | QueryFeatures, *, limit: int = 4) -> list[ProtectedHit]:
        """Hits sorted best first; `match` applies `decide`.

        The closest trusted PDQ hit within PDQ_ONLY_DISTANCE is verified first and
        answers at once if `decide` accepts it; otherwise PDQ candidates and
        descriptor votes are verified geometrically, then the mirrored query (flips)
        and the query's photo-like regions (screenshots, collages), the cut around a weak
        fit's inliers (`_verify_focused`), and last a square query cut into equal cells: the
        cells PDQ puts near a registered view (`_verify_partition_hashes`), then, where the
        partition's lines show seams, every cell's votes (`QueryFeatures.partition`: 3x3, then
        4x4) as a grid's cells are.
        """
        q = query if isinstance(query, QueryFeatures) else query_features(query)
        cands = self.pdq_hits(q)
        ranked = sorted(cands.items(), key=lambda kv: kv[1][0])
        hits: list[ProtectedHit] = []
        if ranked and ranked[0][1][0] <= PDQ_ONLY_DISTANCE:
            photo, (dist, label) = ranked[0]
            # Within PDQ_CLOSE `decide` matches whatever the keypoints say: the light features
            # only measure the hit's support (its score), at a third of the full detection.
            hits.append(self._hit(q.lighter() if dist <= PDQ_CLOSE else q, photo, dist, label))
            if hits[0].match:
                return hits
        if q.is_grid():
            # A grid: each cell is a photo of its own, square-cropped; its votes are verified
            # before the whole picture's (whose keypoints the other cells share).
            hits = self._verify_cells(q.regions(), hits, cands)
            if any(h.match for h in hits):
                hits.sort(key=lambda h: (-h.match, -hit_score(h)))
                return hits
        # The most voted photos, then the PDQ-closest up to `limit`: look-alike photos (deep-sky
        # images) crowd the PDQ candidates within 80 bits. A candidate too far for PDQ support
        # and without MAIN_MIN_VOTES votes is kept unverified.
        tally = dict(self.voted_many([q], votes=_VOTES)[0])
        voted = list(tally)
        for photo in voted:
            cands.setdefault(photo, (256, ""))
        ranked = sorted(cands.items(), key=lambda kv: kv[1][0])
        order = list(dict.fromkeys(voted + [photo for photo, _ in ranked]))
        order = order[: max(limit, len(voted))]
        done = {h.photo for h in hits}
        for photo in order:
            dist, label = cands[photo]
            if photo in done:
                continue
            if _worth(dist, tally.get(photo, 0), MAIN_MIN_VOTES):
                hits.append(self._hit(q, photo, dist, label, tally.get(photo, 0)))
            else:
                hits.append(ProtectedHit(photo, dist, label, 0.0, False))
        # A flipped re-post, or a photo inside a larger picture: the alternative query's
        # own votes and the candidates so far are verified with its features.
        mirror = None if any(h.match for h in hits) or q.is_grid() else q.mirrored()
        if mirror is not None:
            hits = self._verify_more(mirror, hits, cands)
        if not any(h.match for h in hits) and not q.is_grid():
            for region in q.regions():
                hits = self._verify_more(region, hits, cands)
                if any(h.match for h in hits):
                    break
        if not any(h.match for h in hits):
            hits = self._verify_focused(q, hits)
        if not any(h.match for h in hits):
            hits = self._verify_partition_hashes(q, hits)
        for n in PARTITIONS:
            if any(h.match for h in hits):
                break
            cells = q.partition(n)
            if cells:
                hits = self._verify_cells(cells, hits, cands)
        if hits and not any(h.match for h in hits) and hits[0].distance <= PDQ_ONLY_DISTANCE:
            hits[0] = self._unverifiable(q, hits[0])
        hits.sort(key=lambda h: (-h.match, -hit_score(h)))
        return hits

    def _hit(
        self, q: QueryFeatures, photo: str, dist: int, label: str, votes: int | None = None
    ) -> ProtectedHit:
        """`photo` verified against `q`. A candidate beyond PDQ support with fewer than
        MIN_VOTES `votes` is verified with the query's usual keypoints first, and again with the
        top-up's only when those give RECHECK_INLIERS."""
        signature = self.signatures[photo]
        weak = votes is not None and votes < MIN_VOTES and dist > PDQ_ONLY_DISTANCE
        first = q.before_top_up() if weak else q
        if first is not q:
            v = verify(first, signature)
            if v.score < RECHECK_INLIERS:
                return ProtectedHit(photo, dist, label, v.score, decide(dist, v.score, v.aligned))
        v = verify(q, signature)
        match = decide(dist, v.score, v.aligned)
        return ProtectedHit(photo, dist, label, v.score, match, v.aligned)

    def _unverifiable(self, q: QueryFeatures, hit: ProtectedHit) -> ProtectedHit:
        """A PDQ hit from a mirrored or region view, when that view's features are not at hand
        (a query that travelled without its pixels), keeps the plain PDQ rule."""
        photo_hashes = hexes_to_array([h for _, h in self.signatures[hit.photo].pdq])
        best = min(
            (int(hamming_many(hexes_to_array([qh.pdq])[0], photo_hashes).min()), qh.variant)
            for qh in q.hashes
            if qh.quality >= MIN_QUALITY and not qh.variant.startswith(UNTRUSTED_VARIANTS)
        )
        variant = best[1]
        if variant in FLIP_VARIANTS and q.mirrored() is None:
            return ProtectedHit(hit.photo, hit.distance, hit.region, hit.inliers, True)
        if variant.startswith("region") and not q.regions():
            return ProtectedHit(hit.photo, hit.distance, hit.region, hit.inliers, True)
        return hit

    def _verify_cells(
        self,
        cells: list[QueryFeatures],
        hits: list[ProtectedHit],
        cands: dict[str, tuple[int, str]],
    ) -> list[ProtectedHit]:
        """Each grid cell's most voted photo, verified with the cell's features: one descriptor
        search for all cells (CELL_VOTERS each), then the CELL_VERIFY cells whose photo has
        the most votes, best first, up to the first match."""
        scored = {h.photo: h for h in hits}
        tops = [
            (voted[0][1], i, voted[0][0])
            for i, voted in enumerate(self.voted_many(cells, votes=1, voters=CELL_VOTERS))
            if voted
        ]
        for n, i, photo in sorted(tops, reverse=True)[:CELL_VERIFY]:
            dist, label = cands.get(photo, (256, ""))
            if not _worth(dist, n):
                continue
            hit = self._hit(cells[i], photo, dist, label, n)
            old = scored.get(photo)
            if old is None or hit.inliers > old.inliers or hit.match:
                scored[photo] = hit
            if hit.match:
                break
        return list(scored.values())

    def _verify_partition_hashes(
        self, q: QueryFeatures, hits: list[ProtectedHit]
    ) -> list[ProtectedHit]:
        """The cells of each equal partition (`QueryFeatures.partition_hashes`) whose PDQ hash
        is within PDQ_ONLY_DISTANCE of a registered view, closest first, verified with the
        cell's own features (at most CELL_VERIFY a partition) up to the first match. A cell
        under MIN_QUALITY (a flat patch of sky) nominates nothing, and a cell that does not
        match leaves the hits as they were: its PDQ distance is no evidence for the whole query
        (a look-alike star field's cell would otherwise outscore real matches, `hit_score`)."""
        self._ready()
        if not len(self._hashes):
            return hits
        for n, packed, quality in q.partition_hashes(PARTITIONS):
            dist = _hamming_matrix(packed, self._hashes)
            dist[quality < MIN_QUALITY] = PDQ_ONLY_DISTANCE + 1
            near: dict[tuple[int, str], tuple[int, str]] = {}
            for k, i in zip(*np.nonzero(dist <= PDQ_ONLY_DISTANCE), strict=True):
                photo, label = self._hash_owner[int(i)]
                d = int(dist[k, i])
                if (int(k), photo) not in near or d < near[int(k), photo][0]:
                    near[int(k), photo] = (d, label)
            if not near:
                continue
            cells = q.partition(n, gated=False)
            ranked = sorted(near.items(), key=lambda kv: kv[1][0])[:CELL_VERIFY]
            for (k, photo), (d, label) in ranked:
                hit = self._hit(cells[k], photo, d, label)
                if hit.match:
                    return [h for h in hits if h.photo != photo] + [hit]
        return hits

    def _verify_focused(self, q: QueryFeatures, hits: list[ProtectedHit]) -> list[ProtectedHit]:
        """The best unmatched candidate with FOCUS_INLIERS, verified again on the query cut
        around the keypoints that agreed with it (`QueryFeatures.focused`): a photo in one
        cell of a grid that grid detection missed."""
        best = max(
            (h for h in hits if not h.match and h.inliers >= FOCUS_INLIERS),
            key=lambda h: h.inliers,
            default=None,
        )
        if best is None:
            return hits
        view = q.focused(inlier_points(q, self.signatures[best.photo]))
        if view is None:
            return hits
        hit = self._hit(view, best.photo, best.distance, best.region)
        if not hit.match and hit.inliers <= best.inliers:
            return hits
        return [hit if h is best else h for h in hits]

    def _verify_more(
        self, alt: QueryFeatures, hits: list[ProtectedHit], cands: dict[str, tuple[int, str]]
    ) -> list[ProtectedHit]:
        scored = {h.photo: h for h in hits}
        closest = [h.photo for h in sorted(hits, key=lambda h: h.distance)[:_ALT_PDQ_CANDIDATES]]
        tally = dict(self.voted_many([alt], votes=1, voters=ALT_VOTERS)[0])
        for photo in dict.fromkeys(list(tally) + closest):
            old = scored.get(photo)
            dist, label = (old.distance, old.region) if old else cands.get(photo, (256, ""))
            if not _worth(dist, tally.get(photo, 0)):
                continue
            hit = self._hit(alt, photo, dist, label, tally.get(photo, 0))
            if old is None or hit.inliers > old.inliers:
                scored[photo] = hit
        return list(scored.values())


def _worth(distance: int, votes: int, least: int | None = None) -> bool:
    """Whether a candidate is verified: within PDQ_ONLY_DISTANCE a few keypoints confirm a PDQ
    hit; beyond it the candidate needs `least` votes (MIN_VOTES by default)."""
    return distance <= PDQ_ONLY_DISTANCE or votes >= (MIN_VOTES if least is None else least)


def _hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances (len(a), len(b)) int32 between packed (n, 32) PDQ hashes."""
    return _votes.distances(np.ascontiguousarray(a, np.uint8), np.ascontiguousarray(b, np.uint8))


def hit_score(hit: ProtectedHit) -> float:
    """One number ordering hits by confidence (for recall-at-precision curves)."""
    return hit.inliers + max(0.0, (PDQ_ONLY_DISTANCE + 12 - hit.distance)) * 2.0
