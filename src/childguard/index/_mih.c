/*
 * childguard.index._mih: the hot loops of the PDQ multi-index hash (MIH) index.
 *
 * Layout (see pdq.py and docs/index.md):
 *   hashes  (n, 32) uint8, stored sorted by table 0's prefix, so table 0 needs no row array;
 *   ids     (n,) uint32 (when every id fits) or int64, row -> caller's id;
 *   offsets (8, 2^p + 1) uint32, CSR bucket offsets of each table, keyed by the top p bits of
 *           the table's 32-bit substring (bytes 4t..4t+3, big-endian);
 *   rows    (7, n * row_bytes) uint8, tables 1..7: row numbers in bucket order, little-endian,
 *           row_bytes = 3 (n <= 2^24) or 4;
 *   dead    uint8 bitmap of removed rows (tombstones), or None;
 *   delta   (dn, 32) uint8 + (dn,) int64: recent additions, scanned linearly.
 *
 * Correctness (pigeonhole): the 8 substrings partition the 256 bits, so an entry within
 * radius r of the query has some substring within s = r / 8 of the query's substring, and then
 * its p-bit prefix is within s as well; that table probes its bucket. Each result is reported
 * once: only by the first table whose full 32-bit substring is within s ("owner" rule).
 * The GIL is released in the loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NTABLES 8
#define HASH_BYTES 32

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int hamming256(const uint8_t *a, const uint8_t *b) {
    return __builtin_popcountll(load64(a) ^ load64(b)) +
           __builtin_popcountll(load64(a + 8) ^ load64(b + 8)) +
           __builtin_popcountll(load64(a + 16) ^ load64(b + 16)) +
           __builtin_popcountll(load64(a + 24) ^ load64(b + 24));
}

static inline uint32_t prefix_of(const uint8_t *h, int t, int p) {
    return __builtin_bswap32(load32(h + 4 * t)) >> (32 - p);
}

static inline uint32_t read_row(const uint8_t *rows, int64_t pos, int rb) {
    const uint8_t *r = rows + pos * rb;
    uint32_t v = (uint32_t)r[0] | ((uint32_t)r[1] << 8) | ((uint32_t)r[2] << 16);
    if (rb == 4) v |= (uint32_t)r[3] << 24;
    return v;
}

/* Check an argument is a C-contiguous ndarray of the given type and dimensionality. */
static PyArrayObject *as_array(PyObject *obj, int type, int ndim, const char *name) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy array", name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_TYPE(a) != type || PyArray_NDIM(a) != ndim || !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_Format(PyExc_ValueError, "%s has the wrong dtype, shape or layout", name);
        return NULL;
    }
    return a;
}

/* ---------------------------------------------------------------- build_table */

static PyObject *build_table(PyObject *self, PyObject *args) {
    PyObject *hobj;
    int t, p, rb;
    if (!PyArg_ParseTuple(args, "Oiii", &hobj, &t, &p, &rb)) return NULL;
    PyArrayObject *ha = as_array(hobj, NPY_UINT8, 2, "hashes");
    if (!ha) return NULL;
    if (PyArray_DIM(ha, 1) != HASH_BYTES || t < 0 || t >= NTABLES || p < 1 || p > 24 ||
        (rb != 3 && rb != 4)) {
        PyErr_SetString(PyExc_ValueError, "build_table: bad arguments");
        return NULL;
    }
    npy_intp n = PyArray_DIM(ha, 0);
    if ((rb == 3 && n > (1 << 24)) || (uint64_t)n > 0xffffffffULL) {
        PyErr_SetString(PyExc_ValueError, "build_table: too many rows for row_bytes");
        return NULL;
    }
    npy_intp nb = (npy_intp)1 << p;
    npy_intp odim = nb + 1, rdim = n * rb;
    PyArrayObject *off = (PyArrayObject *)PyArray_ZEROS(1, &odim, NPY_UINT32, 0);
    PyArrayObject *rows = (PyArrayObject *)PyArray_SimpleNew(1, &rdim, NPY_UINT8);
    if (!off || !rows) {
        Py_XDECREF(off);
        Py_XDECREF(rows);
        return NULL;
    }
    const uint8_t *h = (const uint8_t *)PyArray_DATA(ha);
    uint32_t *o = (uint32_t *)PyArray_DATA(off);
    uint8_t *r = (uint8_t *)PyArray_DATA(rows);
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    uint32_t *cursor = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)nb);
    if (!cursor) {
        failed = 1;
    } else {
        for (npy_intp i = 0; i < n; i++) o[prefix_of(h + i * HASH_BYTES, t, p) + 1]++;
        for (npy_intp b = 0; b < nb; b++) o[b + 1] += o[b];
        memcpy(cursor, o, sizeof(uint32_t) * (size_t)nb);
        for (npy_intp i = 0; i < n; i++) {
            uint32_t pos = cursor[prefix_of(h + i * HASH_BYTES, t, p)]++;
            uint8_t *dst = r + (npy_intp)pos * rb;
            uint32_t v = (uint32_t)i;
            dst[0] = v & 0xff;
            dst[1] = (v >> 8) & 0xff;
            dst[2] = (v >> 16) & 0xff;
            if (rb == 4) dst[3] = (v >> 24) & 0xff;
        }
        free(cursor);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_DECREF(off);
        Py_DECREF(rows);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(NN)", off, rows);
}

/* ---------------------------------------------------------------- results buffer */

typedef struct {
    int64_t *q;
    int64_t *id;
    int32_t *d;
    size_t len, cap;
    int oom;
} results_t;

static inline void push(results_t *res, int64_t q, int64_t id, int32_t d) {
    if (res->len == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 1024;
        int64_t *nq = realloc(res->q, cap * sizeof(int64_t));
        if (nq) res->q = nq;
        int64_t *ni = realloc(res->id, cap * sizeof(int64_t));
        if (ni) res->id = ni;
        int32_t *nd = realloc(res->d, cap * sizeof(int32_t));
        if (nd) res->d = nd;
        if (!nq || !ni || !nd) {
            res->oom = 1;
            return;
        }
        res->cap = cap;
    }
    res->q[res->len] = q;
    res->id[res->len] = id;
    res->d[res->len] = d;
    res->len++;
}

/* All p-bit masks with popcount <= s, in increasing popcount order. */
static void gen_masks(uint32_t *out, size_t *i, int p, int start, int left, uint32_t cur) {
    if (left == 0) {
        out[(*i)++] = cur;
        return;
    }
    for (int b = start; b <= p - left; b++) gen_masks(out, i, p, b + 1, left - 1, cur | (1u << b));
}

static uint32_t *flip_masks(int p, int s, size_t *count) {
    if (s > p) s = p;
    size_t total = 0, c = 1;
    for (int k = 0; k <= s; k++) {
        total += c;
        c = c * (size_t)(p - k) / (size_t)(k + 1);
    }
    uint32_t *m = malloc(total * sizeof(uint32_t));
    if (!m) return NULL;
    size_t i = 0;
    for (int k = 0; k <= s; k++) gen_masks(m, &i, p, 0, k, 0);
    *count = i;
    return m;
}

static inline int is_dead(const uint8_t *dead, uint32_t row) {
    return dead && ((dead[row >> 3] >> (row & 7)) & 1);
}

/* ---------------------------------------------------------------- search */

#define PREFETCH 16

static PyObject *search(PyObject *self, PyObject *args) {
    PyObject *hobj, *iobj, *oobj, *robj, *deadobj, *dhobj, *diobj, *qobj;
    int rb, p, radius, mode;
    if (!PyArg_ParseTuple(args, "OOOOiiOOOOii", &hobj, &iobj, &oobj, &robj, &rb, &p, &deadobj,
                          &dhobj, &diobj, &qobj, &radius, &mode))
        return NULL;
    PyArrayObject *ha = as_array(hobj, NPY_UINT8, 2, "hashes");
    PyArrayObject *ia = NULL;
    if (ha) {
        int it = PyArray_Check(iobj) && PyArray_TYPE((PyArrayObject *)iobj) == NPY_UINT32 ? NPY_UINT32 : NPY_INT64;
        ia = as_array(iobj, it, 1, "ids");
    }
    PyArrayObject *oa = ia ? as_array(oobj, NPY_UINT32, 2, "offsets") : NULL;
    PyArrayObject *ra = oa ? as_array(robj, NPY_UINT8, 2, "rows") : NULL;
    PyArrayObject *dha = ra ? as_array(dhobj, NPY_UINT8, 2, "delta_hashes") : NULL;
    PyArrayObject *dia = dha ? as_array(diobj, NPY_INT64, 1, "delta_ids") : NULL;
    PyArrayObject *qa = dia ? as_array(qobj, NPY_UINT8, 2, "queries") : NULL;
    if (!qa) return NULL;
    PyArrayObject *deada = NULL;
    if (deadobj != Py_None && !(deada = as_array(deadobj, NPY_UINT8, 1, "dead"))) return NULL;

    npy_intp n = PyArray_DIM(ha, 0), dn = PyArray_DIM(dha, 0), m = PyArray_DIM(qa, 0);
    int bad = PyArray_DIM(ha, 1) != HASH_BYTES || PyArray_DIM(dha, 1) != HASH_BYTES ||
              PyArray_DIM(qa, 1) != HASH_BYTES || PyArray_DIM(ia, 0) != n ||
              PyArray_DIM(dia, 0) != dn || radius < 0 || (rb != 3 && rb != 4) || p < 1 ||
              p > 24 || mode < 0 || mode > 2;
    if (!bad && n > 0) {
        bad = PyArray_DIM(oa, 0) != NTABLES || PyArray_DIM(oa, 1) != ((npy_intp)1 << p) + 1 ||
              PyArray_DIM(ra, 0) != NTABLES - 1 || PyArray_DIM(ra, 1) != n * rb ||
              (deada && PyArray_DIM(deada, 0) < (n + 7) / 8);
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "search: inconsistent index arrays or arguments");
        return NULL;
    }

    const uint8_t *H = PyArray_DATA(ha), *R = PyArray_DATA(ra), *DH = PyArray_DATA(dha);
    const uint8_t *Q = PyArray_DATA(qa), *dead = deada ? PyArray_DATA(deada) : NULL;
    const int64_t *IDS64 = PyArray_DATA(ia), *DIDS = PyArray_DATA(dia);
    const uint32_t *IDS32 = PyArray_DATA(ia);
    const int id32 = PyArray_TYPE(ia) == NPY_UINT32;
#define IDS(row) (id32 ? (int64_t)IDS32[row] : IDS64[row])
    const uint32_t *O = PyArray_DATA(oa);
    npy_intp nb1 = ((npy_intp)1 << p) + 1;
    int s = radius / NTABLES;
    results_t res = {0};
    int oom = 0;

    Py_BEGIN_ALLOW_THREADS
    size_t nmasks = 0;
    uint32_t *masks = NULL;
    uint32_t *cand = NULL, *bkt = NULL, *blo = NULL, *bhi = NULL;
    uint8_t *ctab = NULL;
    size_t cand_cap = 0;
    int use_mih = 0;
    if (n > 0 && mode != 2) {
        if (mode == 1) {
            use_mih = 1;
        } else {
            /* cost model: expected candidates (random access, ~4x a sequential compare) vs n */
            double probes = 0, c = 1;
            int ss = s > p ? p : s;
            for (int k = 0; k <= ss; k++) {
                probes += c;
                c = c * (p - k) / (k + 1);
            }
            double expected = NTABLES * probes * ((double)n / (double)(nb1 - 1));
            use_mih = expected * 4.0 < (double)n;
        }
    }
    if (use_mih) {
        masks = flip_masks(p, s, &nmasks);
        bkt = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        blo = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        bhi = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        if (!masks || !bkt || !blo || !bhi) oom = 1;
    }
    for (npy_intp qi = 0; qi < m && !oom && !res.oom; qi++) {
        const uint8_t *q = Q + qi * HASH_BYTES;
        if (n > 0 && use_mih) {
            uint32_t qsub[NTABLES];
            for (int t = 0; t < NTABLES; t++) qsub[t] = load32(q + 4 * t);
            /* stage 1: every probed bucket of every table; prefetch its offsets */
            for (int t = 0; t < NTABLES; t++) {
                const uint32_t *off = O + (npy_intp)t * nb1;
                uint32_t qp = prefix_of(q, t, p);
                for (size_t k = 0; k < nmasks; k++) {
                    uint32_t b = qp ^ masks[k];
                    bkt[t * nmasks + k] = b;
                    __builtin_prefetch(off + b);
                }
            }
            /* stage 2: bucket ranges; prefetch the start of each bucket's rows */
            size_t need = 0;
            for (int t = 0; t < NTABLES; t++) {
                const uint32_t *off = O + (npy_intp)t * nb1;
                const uint8_t *rows = t ? R + (npy_intp)(t - 1) * n * rb : NULL;
                for (size_t k = 0; k < nmasks; k++) {
                    uint32_t b = bkt[t * nmasks + k];
                    uint32_t lo = off[b], hi = off[b + 1];
                    blo[t * nmasks + k] = lo;
                    bhi[t * nmasks + k] = hi;
                    need += hi - lo;
                    if (hi > lo) {
                        if (t) __builtin_prefetch(rows + (npy_intp)lo * rb);
                        else __builtin_prefetch(H + (npy_intp)lo * HASH_BYTES);
                    }
                }
            }
            if (need > cand_cap) {
                size_t cap = cand_cap ? cand_cap : 4096;
                while (cap < need) cap *= 2;
                uint32_t *c2 = realloc(cand, cap * sizeof(uint32_t));
                if (c2) cand = c2;
                uint8_t *t2 = realloc(ctab, cap);
                if (t2) ctab = t2;
                if (!c2 || !t2) {
                    oom = 1;
                    break;
                }
                cand_cap = cap;
            }
            /* stage 3: candidate rows */
            size_t nc = 0;
            for (int t = 0; t < NTABLES; t++) {
                const uint8_t *rows = t ? R + (npy_intp)(t - 1) * n * rb : NULL;
                for (size_t k = 0; k < nmasks; k++) {
                    uint32_t lo = blo[t * nmasks + k], hi = bhi[t * nmasks + k];
                    for (uint32_t pos = lo; pos < hi; pos++) {
                        cand[nc] = t ? read_row(rows, pos, rb) : pos;
                        ctab[nc++] = (uint8_t)t;
                    }
                }
            }
            /* stage 4: verify (prefetching ahead); report each entry from its owner table only */
            for (size_t k = 0; k < nc; k++) {
                if (k + PREFETCH < nc) __builtin_prefetch(H + (npy_intp)cand[k + PREFETCH] * HASH_BYTES);
                uint32_t row = cand[k];
                int t = ctab[k];
                const uint8_t *h = H + (npy_intp)row * HASH_BYTES;
                if (__builtin_popcount(load32(h + 4 * t) ^ qsub[t]) > s) continue;
                int owned_earlier = 0;
                for (int u = 0; u < t; u++)
                    if (__builtin_popcount(load32(h + 4 * u) ^ qsub[u]) <= s) {
                        owned_earlier = 1;
                        break;
                    }
                if (owned_earlier) continue;
                int d = hamming256(h, q);
                if (d > radius || is_dead(dead, row)) continue;
                push(&res, qi, IDS(row), d);
            }
        } else if (n > 0) {
            for (npy_intp row = 0; row < n; row++) {
                int d = hamming256(H + row * HASH_BYTES, q);
                if (d <= radius && !is_dead(dead, (uint32_t)row)) push(&res, qi, IDS(row), d);
            }
        }
        for (npy_intp j = 0; j < dn; j++) {
            int d = hamming256(DH + j * HASH_BYTES, q);
            if (d <= radius) push(&res, qi, DIDS[j], d);
        }
    }
    free(masks);
    free(cand);
    free(ctab);
    free(bkt);
    free(blo);
    free(bhi);
    Py_END_ALLOW_THREADS

    if (oom || res.oom) {
        free(res.q);
        free(res.id);
        free(res.d);
        return PyErr_NoMemory();
    }
    npy_intp len = (npy_intp)res.len;
    PyArrayObject *oq = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_INT64);
    PyArrayObject *oi = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_INT64);
    PyArrayObject *od = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_INT32);
    if (oq && oi && od && len) {
        memcpy(PyArray_DATA(oq), res.q, res.len * sizeof(int64_t));
        memcpy(PyArray_DATA(oi), res.id, res.len * sizeof(int64_t));
        memcpy(PyArray_DATA(od), res.d, res.len * sizeof(int32_t));
    }
    free(res.q);
    free(res.id);
    free(res.d);
    if (!oq || !oi || !od) {
        Py_XDECREF(oq);
        Py_XDECREF(oi);
        Py_XDECREF(od);
        return NULL;
    }
    return Py_BuildValue("(NNN)", oq, oi, od);
}

static PyMethodDef methods[] = {
    {"build_table", build_table, METH_VARARGS,
     "build_table(hashes, table, prefix_bits, row_bytes) -> (offsets, rows): counting sort of one "
     "table's buckets."},
    {"search", search, METH_VARARGS,
     "search(hashes, ids, offsets, rows, row_bytes, prefix_bits, dead, delta_hashes, delta_ids, "
     "queries, radius, mode) -> (query_index, ids, distances). mode: 0 auto, 1 mih, 2 linear."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mih",
                                    "Multi-index hashing kernels for PDQ.", -1, methods};

PyMODINIT_FUNC PyInit__mih(void) {
    import_array();
    return PyModule_Create(&module);
}
