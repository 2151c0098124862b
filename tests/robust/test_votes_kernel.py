"""The vote kernel (`childguard.robust._votes`) against plain NumPy references and faiss."""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childguard.robust import _votes, protected
from childguard.robust.protected import ProtectedIndex
from childguard.robust.signature import ProtectedSignature


@pytest.fixture(autouse=True)
def _faiss_on_one_thread() -> Iterator[None]:
    """faiss's searches here are small: on busy cores its OpenMP threads only wait."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Hamming distances of packed 256-bit codes."""
    return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2).astype(np.int64)


def reference_search(
    queries: np.ndarray,
    centres: np.ndarray,
    codes: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    nprobe: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's contract, one code at a time: the nprobe nearest centres by (distance,
    number), their lists scanned in that order; a code joins while fewer than k are kept or
    when strictly nearer than the farthest kept, which leaves (farthest by (distance, id))."""
    dist = np.full((len(queries), k), np.iinfo(np.int32).max, np.int64)
    out = np.full((len(queries), k), -1, np.int64)
    to_centres = _hamming(queries, centres)
    to_codes = _hamming(queries, codes)
    for qn in range(len(queries)):
        order = sorted(range(len(centres)), key=lambda c: (to_centres[qn, c], c))
        kept: list[tuple[int, int]] = []
        for lst in order[:nprobe] if len(centres) > 1 else [0]:
            for j in range(offsets[lst], offsets[lst + 1]):
                d = int(to_codes[qn, j])
                if len(kept) == k:
                    if d >= kept[-1][0]:
                        continue
                    kept.pop()
                kept.append((d, int(ids[j])))
                kept.sort()
        for i, (d, n) in enumerate(kept):
            dist[qn, i], out[qn, i] = d, n
    return dist, out


def _lists(codes: np.ndarray, lists: int) -> tuple[np.ndarray, ...]:
    """Centres at a regular stride and the codes as inverted lists (`_VoteIndex`'s layout)."""
    centres = np.ascontiguousarray(codes[:: max(1, len(codes) // lists)][:lists])
    assigned = np.argmin(_hamming(codes, centres), axis=1)  # the first of equals
    order = np.argsort(assigned, kind="stable")
    offsets = np.zeros(len(centres) + 1, np.int64)
    np.cumsum(np.bincount(assigned, minlength=len(centres)), out=offsets[1:])
    return centres, np.ascontiguousarray(codes[order]), order.astype(np.int64), offsets


def _sparse(rng: np.random.Generator, n: int, density: float) -> np.ndarray:
    """Codes with few bits set: many equal distances, so ties decide the neighbours."""
    return np.ascontiguousarray(np.packbits(rng.random((n, 256)) < density, axis=1))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    lists=st.integers(1, 12),
    nprobe=st.integers(1, 6),
    k=st.integers(1, 6),
    density=st.sampled_from([0.01, 0.05, 0.5]),
)
def test_search_is_the_reference(
    seed: int, n: int, lists: int, nprobe: int, k: int, density: float
) -> None:
    rng = np.random.default_rng(seed)
    codes = _sparse(rng, n, density)
    queries = _sparse(rng, 20, density)
    centres, stored, ids, offsets = _lists(codes, min(lists, n))
    want = reference_search(queries, centres, stored, ids, offsets, nprobe, k)
    for path in _votes.paths():  # the scalar popcounts, and AVX2 and AVX-512 where the CPU has them
        got = _votes.search(queries, centres, stored, ids, offsets, nprobe, k, path)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert got[0].dtype == np.int32 and got[1].dtype == np.int64


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    na=st.integers(0, 60),
    nb=st.integers(0, 60),
    limit=st.integers(0, 256),
    density=st.sampled_from([0.02, 0.5]),
)
def test_cross_is_the_mutual_nearest_reference(
    seed: int, na: int, nb: int, limit: int, density: float
) -> None:
    rng = np.random.default_rng(seed)
    a, b = _sparse(rng, na, density), _sparse(rng, nb, density)
    for path in _votes.paths():
        rows, cols = _votes.cross(a, b, limit, path)
        if not na or not nb:
            assert len(rows) == len(cols) == 0
            continue
        d = _hamming(a, b)
        near_b, near_a = np.argmin(d, axis=1), np.argmin(d, axis=0)  # the first of equals
        keep = [i for i in range(na) if near_a[near_b[i]] == i and d[i, near_b[i]] <= limit]
        assert rows.tolist() == keep and cols.tolist() == near_b[keep].tolist()


def test_assign_is_the_nearest_centre_first_of_equals() -> None:
    rng = np.random.default_rng(3)
    x, centres = _sparse(rng, 500, 0.02), _sparse(rng, 30, 0.02)
    assert _votes.assign(x, centres).tolist() == np.argmin(_hamming(x, centres), axis=1).tolist()


def test_search_gives_faiss_inverted_file_neighbours() -> None:
    """What the votes were before the kernel: faiss's IndexBinaryIVF over the same centres
    (regular stride) gives the same distances and ids, ties included, and its exact index the
    same as one list."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    noisy = np.unpackbits(base[rng.integers(0, 60, 6000)], axis=1) ^ (rng.random((6000, 256)) < 0.1)
    codes = np.ascontiguousarray(np.packbits(noisy, axis=1))
    queries = np.ascontiguousarray(
        np.packbits(np.unpackbits(codes[:400], axis=1) ^ (rng.random((400, 256)) < 0.1), axis=1)
    )
    lists = len(codes) // protected.VOTE_LIST
    centres = np.ascontiguousarray(codes[:: len(codes) // lists][:lists])
    quantizer = faiss.IndexBinaryFlat(256)
    quantizer.add(centres)
    ivf = faiss.IndexBinaryIVF(quantizer, 256, lists)
    ivf.train(codes)
    ivf.nprobe = protected.VOTE_PROBES
    ivf.add(codes)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    index = protected._VoteIndex()
    assert index._sync([codes]).probes == protected.VOTE_PROBES
    for k in (1, 4):
        want = ivf.search(queries, k)
        got = index.search([codes], queries, k)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        one = np.zeros((1, 32), np.uint8), np.arange(len(codes), dtype=np.int64)
        exact = _votes.search(queries, one[0], codes, one[1], np.array([0, len(codes)]), 1, k)
        want = flat.search(queries, k)
        assert np.array_equal(exact[0], want[0]) and np.array_equal(exact[1], want[1])


def test_votes_grow_with_the_index() -> None:
    """Photos added after a search join the lists: exact search below EXACT_VOTES, then an
    inverted file whose centres stay those of its build while photos are added, as faiss's
    inverted file appended them (the same neighbours as one built on the first photos' centres
    with every descriptor added)."""
    rng = np.random.default_rng(11)
    photos = [rng.integers(0, 256, (300, 32), dtype=np.uint8) for _ in range(16)]
    index = ProtectedIndex()
    queries = np.ascontiguousarray(
        np.packbits(
            np.unpackbits(np.concatenate(photos)[::12], axis=1) ^ (rng.random((400, 256)) < 0.08),
            axis=1,
        )
    )
    flat = faiss.IndexBinaryFlat(256)
    for i, desc in enumerate(photos):
        points = rng.random((len(desc), 2)).astype(np.float32) * 500
        index.add(f"p{i}", ProtectedSignature([], points, desc, size=(500, 500)))
        flat.add(desc)
        got = index._votes.search(index._desc_parts, queries, 4)
        if index._votes._trained == 0:
            want = flat.search(queries, 4)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert index._votes._trained == 14 * 300 and index._votes.total == 16 * 300
    every = np.ascontiguousarray(np.concatenate(photos))
    trained = every[: 14 * 300]
    lists = len(trained) // protected.VOTE_LIST
    quantizer = faiss.IndexBinaryFlat(256)
    quantizer.add(np.ascontiguousarray(trained[:: len(trained) // lists][:lists]))
    ivf = faiss.IndexBinaryIVF(quantizer, 256, lists)
    ivf.train(trained)
    ivf.nprobe = protected.VOTE_PROBES
    ivf.add(every)
    want = ivf.search(queries, 4)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((2, 16), np.uint8),),  # not 32 bytes
        (np.zeros((2, 32), np.int32),),  # not uint8
    ],
)
def test_search_refuses_bad_arrays(args: tuple[np.ndarray]) -> None:
    one = np.zeros((1, 32), np.uint8)
    with pytest.raises(ValueError):
        _votes.search(args[0], one, one, np.zeros(1, np.int64), np.array([0, 1]), 1, 4)
    with pytest.raises(ValueError):
        _votes.cross(args[0], one, 64)


def test_search_refuses_bad_lists() -> None:
    one = np.zeros((1, 32), np.uint8)
    ids = np.zeros(1, np.int64)
    for offsets, k in [
        (np.array([0, 2]), 4),  # past the codes
        (np.array([0]), 4),  # no list
        (np.array([0, 1]), 0),  # k
    ]:
        with pytest.raises(ValueError):
            _votes.search(one, one, one, ids, offsets.astype(np.int64), 1, k)


def test_search_names_its_paths_and_refuses_others() -> None:
    one = np.zeros((1, 32), np.uint8)
    ids, offsets = np.zeros(1, np.int64), np.array([0, 1], np.int64)
    paths = _votes.paths()
    assert paths[0] == "scalar" and set(paths) <= {"scalar", "avx2", "avx512"}
    for path in ("sse9", "avx512" if "avx512" not in paths else "mmx"):
        with pytest.raises(ValueError, match="path"):
            _votes.search(one, one, one, ids, offsets, 1, 1, path)
        with pytest.raises(ValueError, match="path"):
            _votes.cross(one, one, 64, path)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    na=st.integers(0, 40),
    nb=st.integers(0, 70),
    density=st.sampled_from([0.02, 0.5]),
)
def test_distances_are_the_reference(seed: int, na: int, nb: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = _sparse(rng, na, density), _sparse(rng, nb, density)
    for path in _votes.paths():
        got = _votes.distances(a, b, path)
        assert got.dtype == np.int32 and got.shape == (na, nb)
        assert np.array_equal(got, _hamming(a, b))
