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
 * counted with AVX2 where the CPU has it (`simd`, the default), else with scalar popcounts:
 * the same numbers either way.
 *
 * `assign` gives each row of x its nearest centre, (distance, centre number) smallest.
 * `cross` gives the cross-checked nearest pairs of two descriptor sets within a distance: the
 * rows that are each other's nearest (lowest index among equals, as faiss's exact search and
 * OpenCV's BFMatcher with crossCheck pick them).
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
        if (kept->n == kept->k) {
            __m256i worst = _mm256_set1_epi64x(kept->dist[kept->k - 1]);
            if (!_mm256_movemask_epi8(_mm256_cmpgt_epi64(worst, d))) {
                continue;
            }
        }
        int64_t out[4];
        _mm256_storeu_si256((__m256i *)out, d);
        for (int i = 0; i < 4; i++) {
            offer(kept, (int32_t)out[i], ids ? ids[j + i] : j + i);
        }
    }
    for (; j < to; j++) {
        offer(kept, hamming256(q, codes + j * CODE_BYTES), ids ? ids[j] : j);
    }
}
#endif

typedef void (*ScanFn)(const uint64_t *, const uint8_t *, const int64_t *, int64_t, int64_t,
                       Kept *);

/* The vector path where the CPU has it (`simd`), else the plain one: the same results. */
static ScanFn pick_scan(int simd) {
#ifdef HAVE_AVX2_PATH
    if (simd && __builtin_cpu_supports("avx2")) {
        return scan_avx2;
    }
#endif
    (void)simd;
    return scan_scalar;
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
    int nprobe, k, simd = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!ii|p", &PyArray_Type, &queries, &PyArray_Type,
                          &centres, &PyArray_Type, &codes, &PyArray_Type, &ids, &PyArray_Type,
                          &offsets, &nprobe, &k, &simd)) {
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

    ScanFn scan = pick_scan(simd);
    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp qn = 0; qn < nq; qn++) {
        uint64_t q[4];
        memcpy(q, qs + qn * CODE_BYTES, CODE_BYTES);
        Kept probes;
        probes.n = 0;
        probes.k = nprobe;
        if (nl == 1) {
            probes.n = 1;
            probes.id[0] = 0;
        } else {
            scan(q, cs, NULL, 0, nl, &probes);
        }
        Kept kept;
        kept.n = 0;
        kept.k = k;
        for (int p = 0; p < probes.n; p++) {
            int64_t l = probes.id[p];
            scan(q, bs, is, off[l], off[l + 1], &kept);
        }
        for (int j = 0; j < k; j++) {
            od[qn * k + j] = j < kept.n ? kept.dist[j] : INT32_MAX;
            oi[qn * k + j] = j < kept.n ? kept.id[j] : -1;
        }
    }
    Py_END_ALLOW_THREADS;
    return Py_BuildValue("NN", out_d, out_i);
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
    const uint8_t *xs = (const uint8_t *)PyArray_DATA(x);
    const uint8_t *cs = (const uint8_t *)PyArray_DATA(centres);
    int64_t *o = (int64_t *)PyArray_DATA(out);
    Py_BEGIN_ALLOW_THREADS;
    for (npy_intp i = 0; i < n; i++) {
        uint64_t q[4];
        memcpy(q, xs + i * CODE_BYTES, CODE_BYTES);
        int32_t best = INT32_MAX;
        int64_t at = 0;
        for (npy_intp l = 0; l < nl; l++) {
            int32_t d = hamming256(q, cs + l * CODE_BYTES);
            if (d < best) {
                best = d;
                at = l;
            }
        }
        o[i] = at;
    }
    Py_END_ALLOW_THREADS;
    return (PyObject *)out;
}

static PyObject *votes_cross(PyObject *self, PyObject *args) {
    PyArrayObject *a, *b;
    int limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!i", &PyArray_Type, &a, &PyArray_Type, &b, &limit)) {
        return NULL;
    }
    if (!check2d(a, "query", NPY_UINT8, CODE_BYTES) || !check2d(b, "train", NPY_UINT8, CODE_BYTES)) {
        return NULL;
    }
    npy_intp na = PyArray_DIM(a, 0), nb = PyArray_DIM(b, 0);
    int32_t *best_b = malloc(sizeof(int32_t) * (size_t)(nb > 0 ? nb : 1));
    int64_t *arg_b = malloc(sizeof(int64_t) * (size_t)(nb > 0 ? nb : 1));
    int32_t *best_a = malloc(sizeof(int32_t) * (size_t)(na > 0 ? na : 1));
    int64_t *arg_a = malloc(sizeof(int64_t) * (size_t)(na > 0 ? na : 1));
    if (!best_b || !arg_b || !best_a || !arg_a) {
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
        uint64_t q[4];
        memcpy(q, as + i * CODE_BYTES, CODE_BYTES);
        int32_t best = INT32_MAX;
        int64_t at = -1;
        for (npy_intp j = 0; j < nb; j++) {
            int32_t d = hamming256(q, bs + j * CODE_BYTES);
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
    free(best_b);
    free(arg_b);
    free(best_a);
    free(arg_a);
    return Py_BuildValue("NN", rows, cols);
}

static PyMethodDef methods[] = {
    {"cross", votes_cross, METH_VARARGS,
     "cross(query, train, limit) -> (query rows, train rows) of the cross-checked nearest pairs"},
    {"search", votes_search, METH_VARARGS,
     "search(queries, centres, codes, ids, offsets, nprobe, k, simd=True) -> (distances, ids)"},
    {"assign", votes_assign, METH_VARARGS, "assign(x, centres) -> nearest centre of each row"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_votes",
                                    "The protected search's vote kernel.", -1, methods};

PyMODINIT_FUNC PyInit__votes(void) {
    import_array();
    return PyModule_Create(&module);
}
