/*
 * childguard.robust._votes: the descriptor search behind the protected search's votes.
 *
 * An inverted file over 256-bit ORB descriptors (see protected.py, _VoteIndex):
 *   centres (L, 32) uint8: one centre a list;
 *   codes   (N, 32) uint8: the registered descriptors, list after list (CSR);
 *   ids     (N,) int64: each code's id (registration order), ascending within a list;
 *   offsets (L + 1,) int64: list l holds codes[offsets[l]:offsets[l + 1]].
 *
 * `search` gives each query its k nearest codes among the `nprobe` lists whose centres are
 * nearest. It returns what faiss's IndexBinaryIVF (heap search) returns for the same lists, bit
 * for bit, ties included:
 *   - the probed lists are the nprobe smallest centres by (distance, centre number), probed in
 *     that order (faiss's IndexBinaryFlat quantizer);
 *   - the lists are scanned in probe order and each list in its stored order; a code joins the
 *     k kept while fewer than k are kept, or when it is strictly nearer than the farthest kept,
 *     which then leaves (the farthest by (distance, id));
 *   - the result is sorted by (distance, id); missing neighbours are (INT32_MAX, -1).
 * With one list and one centre it is the exact search (faiss's IndexBinaryFlat). Distances are
 * counted eight codes at a time with AVX-512's vector popcount where the CPU has it, else four
 * at a time with AVX2, else with scalar popcounts (`paths()` names the ones this CPU has;
 * `search`'s `path` picks one, the fastest by default): the same results on every path.
 *
 * `assign` gives each row of x its nearest centre, (distance, centre number) smallest, its
 * distances counted on the fastest path.
 * `distances` gives the whole matrix of Hamming distances between two sets of codes.
 * `cross` gives the cross-checked nearest pairs of two descriptor sets within a distance: the
 * rows that are each other's nearest (lowest index among equals, as faiss's exact search and
 * OpenCV's BFMatcher with crossCheck pick them), its distances counted on the same paths.
 * The GIL is released in the loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CODE_BYTES 32
#define MAX_K 64
#define MAX_PROBES 64

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int32_t hamming256(const uint64_t *q, const uint8_t *b) {
    return __builtin_popcountll(q[0] ^ load64(b)) + __builtin_popcountll(q[1] ^ load64(b + 8)) +
           __builtin_popcountll(q[2] ^ load64(b + 16)) +
           __builtin_popcountll(q[3] ^ load64(b + 24));
}

/* The kept neighbours, sorted by (distance, id); `n` of at most `k` kept. */
typedef struct {
    int32_t dist[MAX_K];
    int64_t id[MAX_K];
    int n;
    int k;
} Kept;

static inline int before(int32_t da, int64_t ia, int32_t db, int64_t ib) {
    return da < db || (da == db && ia < ib);
}

static inline void offer(Kept *kept, int32_t d, int64_t id) {
    int i;
    if (kept->n == kept->k) {
        if (d >= kept->dist[kept->k - 1]) {
            return;
        }
        i = kept->k - 1; /* the farthest leaves */
    } else {
        i = kept->n++;
    }
    while (i > 0 && before(d, id, kept->dist[i - 1], kept->id[i - 1])) {
        kept->dist[i] = kept->dist[i - 1];
        kept->id[i] = kept->id[i - 1];
        i--;
    }
    kept->dist[i] = d;
    kept->id[i] = id;
}

/* Offers the codes at j + i whose bit i is set in `nearer` (distances d[i]), in order. A code
 * left out was no nearer than the farthest kept when the block began, and the farthest kept
 * only comes nearer: `offer` would have turned it away. */
static inline void offer_some(Kept *kept, const int64_t *d, unsigned nearer, const int64_t *ids,
                              int64_t j) {
    while (nearer) {
        int i = __builtin_ctz(nearer);
        nearer &= nearer - 1;
        offer(kept, (int32_t)d[i], ids ? ids[j + i] : j + i);
    }
}

/* Offers codes[from:to] (ids[j], or j itself without ids) to `kept` in order. Four codes at a
 * time: none of them joins unless one is nearer than the farthest kept (which only a joining
 * code changes); else they are offered one at a time, in order. */
static void scan_scalar(const uint64_t *q, const uint8_t *codes, const int64_t *ids, int64_t from,
                        int64_t to, Kept *kept) {
    int64_t j = from;
    for (; j + 4 <= to; j += 4) {
        const uint8_t *b = codes + j * CODE_BYTES;
        int32_t d[4] = {hamming256(q, b), hamming256(q, b + CODE_BYTES),
                        hamming256(q, b + 2 * CODE_BYTES), hamming256(q, b + 3 * CODE_BYTES)};
        int32_t m01 = d[0] < d[1] ? d[0] : d[1], m23 = d[2] < d[3] ? d[2] : d[3];
        if (kept->n == kept->k && (m01 < m23 ? m01 : m23) >= kept->dist[kept->k - 1]) {
            continue;
        }
        for (int i = 0; i < 4; i++) {
            offer(kept, d[i], ids ? ids[j + i] : j + i);
        }
    }
    for (; j < to; j++) {
        offer(kept, hamming256(q, codes + j * CODE_BYTES), ids ? ids[j] : j);
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

/* Bytes' bit counts by nibble lookup (AVX2 has no vector popcount). */
__attribute__((target("avx2"))) static inline __m256i popcount8(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                         2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* The distances of four consecutive codes to q, as four 64-bit lanes in code order. */
__attribute__((target("avx2"))) static inline __m256i hamming4(__m256i q, const uint8_t *b) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i a = _mm256_sad_epu8(
        popcount8(_mm256_xor_si256(q, _mm256_loadu_si256((const __m256i *)b))), zero);
    __m256i c = _mm256_sad_epu8(
        popcount8(_mm256_xor_si256(q, _mm256_loadu_si256((const __m256i *)(b + 32)))), zero);
    __m256i e = _mm256_sad_epu8(
        popcount8(_mm256_xor_si256(q, _mm256_loadu_si256((const __m256i *)(b + 64)))), zero);
    __m256i g = _mm256_sad_epu8(
        popcount8(_mm256_xor_si256(q, _mm256_loadu_si256((const __m256i *)(b + 96)))), zero);
    /* a = [a0 a1 | a2 a3] (the 64-bit partial sums of code 0), likewise c, e, g */
    __m256i ac = _mm256_add_epi64(_mm256_unpacklo_epi64(a, c), _mm256_unpackhi_epi64(a, c));
    __m256i eg = _mm256_add_epi64(_mm256_unpacklo_epi64(e, g), _mm256_unpackhi_epi64(e, g));
    /* ac = [a01 c01 | a23 c23], eg = [e01 g01 | e23 g23] */
    return _mm256_add_epi64(_mm256_permute2x128_si256(ac, eg, 0x20),
                            _mm256_permute2x128_si256(ac, eg, 0x31));
}

__attribute__((target("avx2"))) static void scan_avx2(const uint64_t *q, const uint8_t *codes,
                                                     const int64_t *ids, int64_t from, int64_t to,
                                                     Kept *kept) {
    __m256i qv = _mm256_loadu_si256((const __m256i *)q);
    int64_t j = from;
    for (; j + 4 <= to; j += 4) {
        __m256i d = hamming4(qv, codes + j * CODE_BYTES);
        unsigned nearer = 15; /* the codes that may join: all while fewer than k are kept */
        if (kept->n == kept->k) {
            __m256i worst = _mm256_set1_epi64x(kept->dist[kept->k - 1]);
            __m256i closer = _mm256_cmpgt_epi64(worst, d);
            nearer = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(closer));
            if (!nearer) {
                continue;
            }
        }
        int64_t out[4];
        _mm256_storeu_si256((__m256i *)out, d);
        offer_some(kept, out, nearer, ids, j);
    }
    for (; j < to; j++) {
        offer(kept, hamming256(q, codes + j * CODE_BYTES), ids ? ids[j] : j);
    }
}

#define AVX512 "avx512f,avx512vpopcntdq"

/* The distances of eight consecutive codes to q (q twice in qq), as eight 64-bit lanes in code
 * order. */
__attribute__((target(AVX512))) static inline __m512i hamming8(__m512i qq, const uint8_t *b) {
    const __m512i order = _mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7);
    __m512i a = _mm512_popcnt_epi64(_mm512_xor_si512(qq, _mm512_loadu_si512(b)));
    __m512i c = _mm512_popcnt_epi64(_mm512_xor_si512(qq, _mm512_loadu_si512(b + 64)));
    __m512i e = _mm512_popcnt_epi64(_mm512_xor_si512(qq, _mm512_loadu_si512(b + 128)));
    __m512i g = _mm512_popcnt_epi64(_mm512_xor_si512(qq, _mm512_loadu_si512(b + 192)));
    /* a = [c0: a0 a1 a2 a3 | c1: a4 a5 a6 a7], likewise c (codes 2, 3), e (4, 5), g (6, 7) */
    __m512i ac = _mm512_add_epi64(_mm512_unpacklo_epi64(a, c), _mm512_unpackhi_epi64(a, c));
    __m512i eg = _mm512_add_epi64(_mm512_unpacklo_epi64(e, g), _mm512_unpackhi_epi64(e, g));
    /* ac = [a01 c01 | a23 c23 | a45 c45 | a67 c67], eg likewise */
    __m512i d =
        _mm512_add_epi64(_mm512_shuffle_i64x2(ac, eg, 0x88), _mm512_shuffle_i64x2(ac, eg, 0xdd));
    /* d = [a01+a23 c01+c23 | a45+a67 c45+c67 | e.. g.. | e.. g..]: codes 0 2 1 3 4 6 5 7 */
    return _mm512_permutexvar_epi64(order, d);
}

__attribute__((target(AVX512))) static void scan_avx512(const uint64_t *q, const uint8_t *codes,
                                                       const int64_t *ids, int64_t from,
                                                       int64_t to, Kept *kept) {
    __m256i half = _mm256_loadu_si256((const __m256i *)q);
    __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(half), half, 1);
    int64_t j = from;
    for (; j + 8 <= to; j += 8) {
        __m512i d = hamming8(qq, codes + j * CODE_BYTES);
        unsigned nearer = 255;
        if (kept->n == kept->k) {
            nearer = _mm512_cmpgt_epi64_mask(_mm512_set1_epi64(kept->dist[kept->k - 1]), d);
            if (!nearer) {
                continue;
            }
        }
        int64_t out[8];
        _mm512_storeu_si512(out, d);
        offer_some(kept, out, nearer, ids, j);
    }
    /* The last one to seven codes four at a time, then one at a time, in order. */
    scan_avx2(q, codes, ids, j, to, kept);
}

/* Every code's distance to q, in code order. */
__attribute__((target("avx2"))) static void distances_avx2(const uint64_t *q, const uint8_t *codes,
                                                          int64_t n, int32_t *out) {
    __m256i qv = _mm256_loadu_si256((const __m256i *)q);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        int64_t d[4];
        _mm256_storeu_si256((__m256i *)d, hamming4(qv, codes + j * CODE_BYTES));
        for (int i = 0; i < 4; i++) {
            out[j + i] = (int32_t)d[i];
        }
    }
    for (; j < n; j++) {
        out[j] = hamming256(q, codes + j * CODE_BYTES);
    }
}

__attribute__((target(AVX512))) static void distances_avx512(const uint64_t *q,
                                                            const uint8_t *codes, int64_t n,
                                                            int32_t *out) {
    __m256i half = _mm256_loadu_si256((const __m256i *)q);
    __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(half), half, 1);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        _mm256_storeu_si256((__m256i *)(out + j),
                            _mm512_cvtepi64_epi32(hamming8(qq, codes + j * CODE_BYTES)));
    }
    distances_avx2(q, codes + j * CODE_BYTES, n - j, out + j);
}
#endif

static void distances_scalar(const uint64_t *q, const uint8_t *codes, int64_t n, int32_t *out) {
    for (int64_t j = 0; j < n; j++) {
        out[j] = hamming256(q, codes + j * CODE_BYTES);
    }
}

/* The `want` smallest of d[0:n] by (distance, index), in that order, into `at` (fewer when n
 * is smaller): the distances' histogram gives the distance the last one is at, then the few
 * at or under it are sorted (insertion, stable). `spare` holds n entries. Returns how many. */
static int smallest(const int32_t *d, int64_t n, int want, int64_t *at, int64_t *spare) {
    int64_t count[CODE_BYTES * 8 + 1] = {0};
    for (int64_t j = 0; j < n; j++) {
        count[d[j]]++;
    }
    int64_t below = 0;
    int bar = 0;
    while (bar < CODE_BYTES * 8 && below + count[bar] < want) {
        below += count[bar++];
    }
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++) {
        if (d[j] <= bar) {
            int64_t i = m++;
            while (i > 0 && d[spare[i - 1]] > d[j]) {
                spare[i] = spare[i - 1];
                i--;
            }
            spare[i] = j;
        }
    }
    int got = m < want ? (int)m : want;
    memcpy(at, spare, sizeof(int64_t) * (size_t)got);
    return got;
}

typedef void (*ScanFn)(const uint64_t *, const uint8_t *, const int64_t *, int64_t, int64_t,
                       Kept *);
typedef void (*DistancesFn)(const uint64_t *, const uint8_t *, int64_t, int32_t *);

/* The scan paths, slowest first; `available` says whether this CPU runs one. */
typedef struct {
    const char *name;
    ScanFn scan;
    DistancesFn distances;
} ScanPath;

static const ScanPath PATHS[] = {
    {"scalar", scan_scalar, distances_scalar},
#ifdef HAVE_AVX2_PATH
    {"avx2", scan_avx2, distances_avx2},
    {"avx512", scan_avx512, distances_avx512},
#endif
};
#define N_PATHS ((int)(sizeof(PATHS) / sizeof(PATHS[0])))

static int available(int path) {
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (path == 1) {
        return __builtin_cpu_supports("avx2");
    }
    if (path == 2) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vpopcntdq");
    }
#endif
    return path == 0;
}

/* The path `name` names (NULL: the fastest this CPU has); NULL with an exception set when it
 * is unknown or this CPU lacks it. */
static const ScanPath *pick_path(const char *name) {
    for (int p = N_PATHS - 1; p >= 0; p--) {
        if (name == NULL ? available(p) : strcmp(name, PATHS[p].name) == 0) {
            if (!available(p)) {
                PyErr_Format(PyExc_ValueError, "this CPU cannot run the %s path", name);
                return NULL;
            }
            return &PATHS[p];
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown path %s (see paths())", name ? name : "");
    return NULL;
}

/* The distances of one code (32 bytes at `code`) to codes[0:n] on `path`, into out[0:n]. */
static inline void distances_of(const ScanPath *path, const uint8_t *code, const uint8_t *codes,
                                int64_t n, int32_t *out) {
    uint64_t q[4];
    memcpy(q, code, CODE_BYTES);
    path->distances(q, codes, n, out);
}

static PyObject *votes_paths(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyObject *out = PyList_New(0);
    for (int p = 0; out != NULL && p < N_PATHS; p++) {
        if (available(p)) {
            PyObject *name = PyUnicode_FromString(PATHS[p].name);
            if (name == NULL || PyList_Append(out, name) < 0) {
                Py_XDECREF(name);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(name);
        }
    }
    return out;
}

static int check2d(PyArrayObject *a, const char *name, int dtype, npy_intp cols) {
    if (PyArray_NDIM(a) != 2 || PyArray_TYPE(a) != dtype || !PyArray_IS_C_CONTIGUOUS(a) ||
        PyArray_DIM(a, 1) != cols) {
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous (n, %d) array", name,
                     (int)cols);
        return 0;
    }
    return 1;
}

static int check1d(PyArrayObject *a, const char *name, int dtype) {
    if (PyArray_NDIM(a) != 1 || PyArray_TYPE(a) != dtype || !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous 1-d array", name);
        return 0;
    }
    return 1;
}

static PyObject *votes_search(PyObject *self, PyObject *args) {
    PyArrayObject *queries, *centres, *codes, *ids, *offsets;
    int nprobe, k;
    const char *path = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!ii|z", &PyArray_Type, &queries, &PyArray_Type,
                          &centres, &PyArray_Type, &codes, &PyArray_Type, &ids, &PyArray_Type,
                          &offsets, &nprobe, &k, &path)) {
        return NULL;
    }
    const ScanPath *chosen = pick_path(path);
    if (chosen == NULL) {
        return NULL;
    }
    if (!check2d(queries, "queries", NPY_UINT8, CODE_BYTES) ||
        !check2d(centres, "centres", NPY_UINT8, CODE_BYTES) ||
        !check2d(codes, "codes", NPY_UINT8, CODE_BYTES) || !check1d(ids, "ids", NPY_INT64) ||
        !check1d(offsets, "offsets", NPY_INT64)) {
        return NULL;
    }
    npy_intp nq = PyArray_DIM(queries, 0), nl = PyArray_DIM(centres, 0);
    npy_intp ncodes = PyArray_DIM(codes, 0);
    if (k < 1 || k > MAX_K) {
        PyErr_Format(PyExc_ValueError, "k must be 1..%d", MAX_K);
        return NULL;
    }
    if (nl < 1 || PyArray_DIM(offsets, 0) != nl + 1 || PyArray_DIM(ids, 0) != ncodes) {
        PyErr_SetString(PyExc_ValueError, "offsets must have one more entry than centres, "
                                          "ids one per code");
        return NULL;
    }
    const int64_t *off = (const int64_t *)PyArray_DATA(offsets);
    if (off[0] != 0 || off[nl] != ncodes) {
        PyErr_SetString(PyExc_ValueError, "offsets must run from 0 to the number of codes");
        return NULL;
    }
    for (npy_intp l = 0; l < nl; l++) {
        if (off[l + 1] < off[l]) {
            PyErr_SetString(PyExc_ValueError, "offsets must not decrease");
            return NULL;
        }
    }
    if (nprobe < 1) {
        PyErr_SetString(PyExc_ValueError, "nprobe must be at least 1");
        return NULL;
    }
    if (nprobe > nl) {
        nprobe = (int)nl;
    }
    if (nprobe > MAX_PROBES) {
        PyErr_Format(PyExc_ValueError, "nprobe must be at most %d", MAX_PROBES);
        return NULL;
    }
    npy_intp dims[2] = {nq, k};
    PyArrayObject *out_d = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT32);
    PyArrayObject *out_i = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT64);
    if (out_d == NULL || out_i == NULL) {
        Py_XDECREF(out_d);
        Py_XDECREF(out_i);
        return NULL;
    }
    const uint8_t *qs = (const uint8_t *)PyArray_DATA(queries);
    const uint8_t *cs = (const uint8_t *)PyArray_DATA(centres);
    const uint8_t *bs = (const uint8_t *)PyArray_DATA(codes);
    const int64_t *is = (const int64_t *)PyArray_DATA(ids);
    int32_t *od = (int32_t *)PyArray_DATA(out_d);
    int64_t *oi = (int64_t *)PyArray_DATA(out_i);
    /* A query's distances to the centres, and the work space picking the nearest. */
    int32_t *to_centres = malloc(sizeof(int32_t) * (size_t)nl);
    int64_t *spare = malloc(sizeof(int64_t) * (size_t)nl);
    if (to_centres == NULL || spare == NULL) {
        free(to_centres);
        free(spare);
        Py_DECREF(out_d);
        Py_DECREF(out_i);
        return PyErr_NoMemory();
    }

    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp qn = 0; qn < nq; qn++) {
        uint64_t q[4];
        memcpy(q, qs + qn * CODE_BYTES, CODE_BYTES);
        int64_t probed[MAX_PROBES] = {0};
        int probes = 1;
        if (nl > 1) {
            chosen->distances(q, cs, nl, to_centres);
            probes = smallest(to_centres, nl, nprobe, probed, spare);
        }
        Kept kept;
        kept.n = 0;
        kept.k = k;
        for (int p = 0; p < probes; p++) {
            int64_t l = probed[p];
            chosen->scan(q, bs, is, off[l], off[l + 1], &kept);
        }
        for (int j = 0; j < k; j++) {
            od[qn * k + j] = j < kept.n ? kept.dist[j] : INT32_MAX;
            oi[qn * k + j] = j < kept.n ? kept.id[j] : -1;
        }
    }
    Py_END_ALLOW_THREADS;
    free(to_centres);
    free(spare);
    return Py_BuildValue("NN", out_d, out_i);
}

static PyObject *votes_distances(PyObject *self, PyObject *args) {
    PyArrayObject *a, *b;
    const char *path = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!|z", &PyArray_Type, &a, &PyArray_Type, &b, &path)) {
        return NULL;
    }
    if (!check2d(a, "a", NPY_UINT8, CODE_BYTES) || !check2d(b, "b", NPY_UINT8, CODE_BYTES)) {
        return NULL;
    }
    const ScanPath *chosen = pick_path(path);
    if (chosen == NULL) {
        return NULL;
    }
    npy_intp na = PyArray_DIM(a, 0), nb = PyArray_DIM(b, 0);
    npy_intp dims[2] = {na, nb};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT32);
    if (out == NULL) {
        return NULL;
    }
    const uint8_t *as = (const uint8_t *)PyArray_DATA(a);
    const uint8_t *bs = (const uint8_t *)PyArray_DATA(b);
    int32_t *o = (int32_t *)PyArray_DATA(out);
    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp i = 0; i < na; i++) {
        distances_of(chosen, as + i * CODE_BYTES, bs, nb, o + i * nb);
    }
    Py_END_ALLOW_THREADS;
    return (PyObject *)out;
}

static PyObject *votes_assign(PyObject *self, PyObject *args) {
    PyArrayObject *x, *centres;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!", &PyArray_Type, &x, &PyArray_Type, &centres)) {
        return NULL;
    }
    if (!check2d(x, "x", NPY_UINT8, CODE_BYTES) ||
        !check2d(centres, "centres", NPY_UINT8, CODE_BYTES)) {
        return NULL;
    }
    npy_intp n = PyArray_DIM(x, 0), nl = PyArray_DIM(centres, 0);
    if (nl < 1) {
        PyErr_SetString(PyExc_ValueError, "no centres");
        return NULL;
    }
    npy_intp dims[1] = {n};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (out == NULL) {
        return NULL;
    }
    const ScanPath *fastest = pick_path(NULL);
    int32_t *row = malloc(sizeof(int32_t) * (size_t)nl);
    if (row == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    const uint8_t *xs = (const uint8_t *)PyArray_DATA(x);
    const uint8_t *cs = (const uint8_t *)PyArray_DATA(centres);
    int64_t *o = (int64_t *)PyArray_DATA(out);
    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp i = 0; i < n; i++) {
        distances_of(fastest, xs + i * CODE_BYTES, cs, nl, row);
        int64_t at = 0;
        for (npy_intp l = 1; l < nl; l++) {
            if (row[l] < row[at]) {
                at = l;
            }
        }
        o[i] = at;
    }
    Py_END_ALLOW_THREADS;
    free(row);
    return (PyObject *)out;
}

static PyObject *votes_cross(PyObject *self, PyObject *args) {
    PyArrayObject *a, *b;
    int limit;
    const char *path = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!i|z", &PyArray_Type, &a, &PyArray_Type, &b, &limit, &path)) {
        return NULL;
    }
    if (!check2d(a, "query", NPY_UINT8, CODE_BYTES) || !check2d(b, "train", NPY_UINT8, CODE_BYTES)) {
        return NULL;
    }
    npy_intp na = PyArray_DIM(a, 0), nb = PyArray_DIM(b, 0);
    const ScanPath *chosen = pick_path(path);
    if (chosen == NULL) {
        return NULL;
    }
    int32_t *row = malloc(sizeof(int32_t) * (size_t)(nb > 0 ? nb : 1));
    int32_t *best_b = malloc(sizeof(int32_t) * (size_t)(nb > 0 ? nb : 1));
    int64_t *arg_b = malloc(sizeof(int64_t) * (size_t)(nb > 0 ? nb : 1));
    int32_t *best_a = malloc(sizeof(int32_t) * (size_t)(na > 0 ? na : 1));
    int64_t *arg_a = malloc(sizeof(int64_t) * (size_t)(na > 0 ? na : 1));
    if (!row || !best_b || !arg_b || !best_a || !arg_a) {
        free(row);
        free(best_b);
        free(arg_b);
        free(best_a);
        free(arg_a);
        return PyErr_NoMemory();
    }
    const uint8_t *as = (const uint8_t *)PyArray_DATA(a);
    const uint8_t *bs = (const uint8_t *)PyArray_DATA(b);
    npy_intp pairs = 0;
    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp j = 0; j < nb; j++) {
        best_b[j] = INT32_MAX;
        arg_b[j] = -1;
    }
    /* One pass over the distance matrix: each row's nearest column and each column's nearest
     * row, the lowest index among equals (rows and columns are visited in order). */
    for (npy_intp i = 0; i < na; i++) {
        int32_t best = INT32_MAX;
        int64_t at = -1;
        distances_of(chosen, as + i * CODE_BYTES, bs, nb, row);
        for (npy_intp j = 0; j < nb; j++) {
            int32_t d = row[j];
            if (d < best) {
                best = d;
                at = j;
            }
            if (d < best_b[j]) {
                best_b[j] = d;
                arg_b[j] = i;
            }
        }
        best_a[i] = best;
        arg_a[i] = at;
    }
    for (npy_intp i = 0; i < na; i++) {
        if (arg_a[i] >= 0 && arg_b[arg_a[i]] == i && best_a[i] <= limit) {
            pairs++;
        }
    }
    Py_END_ALLOW_THREADS;
    npy_intp dims[1] = {pairs};
    PyArrayObject *rows = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    PyArrayObject *cols = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (rows == NULL || cols == NULL) {
        Py_XDECREF(rows);
        Py_XDECREF(cols);
        free(row);
        free(best_b);
        free(arg_b);
        free(best_a);
        free(arg_a);
        return NULL;
    }
    int64_t *r = (int64_t *)PyArray_DATA(rows), *c = (int64_t *)PyArray_DATA(cols);
    npy_intp n = 0;
    for (npy_intp i = 0; i < na; i++) {
        if (arg_a[i] >= 0 && arg_b[arg_a[i]] == i && best_a[i] <= limit) {
            r[n] = i;
            c[n] = arg_a[i];
            n++;
        }
    }
    free(row);
    free(best_b);
    free(arg_b);
    free(best_a);
    free(arg_a);
    return Py_BuildValue("NN", rows, cols);
}

static PyMethodDef methods[] = {
    {"cross", votes_cross, METH_VARARGS,
     "cross(query, train, limit, path=None) -> (query rows, train rows) of the cross-checked "
     "nearest pairs"},
    {"search", votes_search, METH_VARARGS,
     "search(queries, centres, codes, ids, offsets, nprobe, k, path=None) -> (distances, ids)"},
    {"paths", votes_paths, METH_NOARGS, "paths() -> the scan paths this CPU runs, slowest first"},
    {"assign", votes_assign, METH_VARARGS, "assign(x, centres) -> nearest centre of each row"},
    {"distances", votes_distances, METH_VARARGS,
     "distances(a, b, path=None) -> (len(a), len(b)) int32 Hamming distances"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_votes",
                                    "The protected search's vote kernel.", -1, methods};

PyMODINIT_FUNC PyInit__votes(void) {
    import_array();
    return PyModule_Create(&module);
}
