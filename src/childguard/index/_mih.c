/*
 * childguard.index._mih: the hot loops of the PDQ multi-index hash (MIH) index.
 *
 * Layout (see pdq.py and docs/index.md):
 *   hashes  (n, 32) uint8, stored sorted by table 0's prefix, so table 0 needs no row array;
 *   ids     (n,) uint32 (when every id fits) or int64, row -> caller's id;
 *   offsets (8, 2^p + 1) CSR bucket offsets of each table, keyed by the top p bits of the
 *           table's 32-bit substring (bytes 4t..4t+3, big-endian): uint32, or uint16 relative
 *           to bases (8, 2^p / 256 + 1) uint32, one base per group of 256 buckets;
 *   rows    (7, n * row_bytes) uint8, tables 1..7: one entry per row in bucket order,
 *           little-endian, row_bytes = 3 (n <= 2^24) or 4. An entry's low 8*row_bytes - ib
 *           bits are the row number; its top ib ("inline") bits are the substring's next ib
 *           bits after the p-bit key, so most candidates are rejected without reading their
 *           hash (a random access); ib uses the bits a row number leaves spare;
 *   dead    uint8 bitmap of removed rows (tombstones), or None;
 *   delta   (dn, 32) uint8 + (dn,) int64: recent additions, scanned linearly.
 *
 * Correctness (pigeonhole): the 8 substrings partition the 256 bits, so an entry within
 * radius r of the query has some substring within s = r / 8 of the query's substring, and then
 * its p-bit prefix is within s as well; that table probes its bucket. Each result is reported
 * once: only by the first table whose full 32-bit substring is within s ("owner" rule).
 *
 * The linear strategy is a batched flat scan: each row of the bank is read once per batch of
 * QB queries and compared with all of them (so a batch costs one pass over the bank).
 * The GIL is released in the loops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NTABLES 8
#define GROUP_SHIFT 8
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

static inline uint32_t inline_of(const uint8_t *h, int t, int p, int ib) {
    return ib ? (__builtin_bswap32(load32(h + 4 * t)) >> (32 - p - ib)) & ((1u << ib) - 1) : 0;
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
    int t, p, rb, ib;
    if (!PyArg_ParseTuple(args, "Oiiii", &hobj, &t, &p, &rb, &ib)) return NULL;
    PyArrayObject *ha = as_array(hobj, NPY_UINT8, 2, "hashes");
    if (!ha) return NULL;
    if (PyArray_DIM(ha, 1) != HASH_BYTES || t < 0 || t >= NTABLES || p < 1 || p > 24 ||
        (rb != 3 && rb != 4) || ib < 0 || p + ib > 32 || ib >= 8 * rb) {
        PyErr_SetString(PyExc_ValueError, "build_table: bad arguments");
        return NULL;
    }
    npy_intp n = PyArray_DIM(ha, 0);
    if ((uint64_t)n > (1ULL << (8 * rb - ib)) || (uint64_t)n > 0xffffffffULL) {
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
            if (ib) v |= inline_of(h + i * HASH_BYTES, t, p, ib) << (8 * rb - ib);
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
#define QB 8 /* queries a pass of the flat scan */

typedef struct {
    const uint8_t *H;
    const uint8_t *dead;
    const int64_t *ids64;
    const uint32_t *ids32;
} segment_t;

static inline int64_t seg_id(const segment_t *g, npy_intp row) {
    return g->ids32 ? (int64_t)g->ids32[row] : g->ids64[row];
}

/* Flat scan of rows [0, n) of a segment against nq <= QB queries (packed as 4 words each):
 * each row is loaded once and compared with every query of the batch. Results go to one
 * buffer per query, so the caller can emit them grouped by query. */
static void scan_batch(const segment_t *g, npy_intp n, const uint64_t *qw, int nq, int radius,
                       npy_intp q0, results_t *bres) {
    const uint8_t *H = g->H;
    if (nq == QB) {
        for (npy_intp row = 0; row < n; row++) {
            const uint8_t *h = H + row * HASH_BYTES;
            uint64_t a0 = load64(h), a1 = load64(h + 8), a2 = load64(h + 16), a3 = load64(h + 24);
            for (int j = 0; j < QB; j++) {
                const uint64_t *q = qw + 4 * j;
                int d = __builtin_popcountll(a0 ^ q[0]) + __builtin_popcountll(a1 ^ q[1]) +
                        __builtin_popcountll(a2 ^ q[2]) + __builtin_popcountll(a3 ^ q[3]);
                if (__builtin_expect(d <= radius, 0) && !is_dead(g->dead, (uint32_t)row))
                    push(&bres[j], q0 + j, seg_id(g, row), d);
            }
        }
        return;
    }
    for (npy_intp row = 0; row < n; row++) {
        const uint8_t *h = H + row * HASH_BYTES;
        uint64_t a0 = load64(h), a1 = load64(h + 8), a2 = load64(h + 16), a3 = load64(h + 24);
        for (int j = 0; j < nq; j++) {
            const uint64_t *q = qw + 4 * j;
            int d = __builtin_popcountll(a0 ^ q[0]) + __builtin_popcountll(a1 ^ q[1]) +
                    __builtin_popcountll(a2 ^ q[2]) + __builtin_popcountll(a3 ^ q[3]);
            if (__builtin_expect(d <= radius, 0) && !is_dead(g->dead, (uint32_t)row))
                push(&bres[j], q0 + j, seg_id(g, row), d);
        }
    }
}

static void append_results(results_t *res, results_t *from) {
    for (size_t k = 0; k < from->len && !res->oom; k++)
        push(res, from->q[k], from->id[k], from->d[k]);
    if (from->oom) res->oom = 1;
    from->len = 0;
}

static size_t n_choose_upto(int p, int s) {
    size_t total = 0, c = 1;
    if (s > p) s = p;
    for (int k = 0; k <= s; k++) {
        total += c;
        c = c * (size_t)(p - k) / (size_t)(k + 1);
    }
    return total;
}

/* Cost model of one query, in units of one row of a batched flat scan (measured on this
 * project's 2-core EPYC: the two strategies cross near 30k rows batched, 10k one query a call).
 * MIH pays per probed bucket (two dependent reads, prefetched), per scanned bucket entry, and
 * per candidate whose hash it must read (a random read); the flat scan pays per row, more when
 * one query a pass streams a bank that does not fit in cache. */
static int mih_is_cheaper(npy_intp n, int p, int ib, int s, int batched) {
    double buckets = NTABLES * (double)n_choose_upto(p, s);
    double per_bucket = (double)n / (double)((npy_intp)1 << p);
    double entries = buckets * per_bucket;
    int fb = p + ib > 32 ? 32 : p + ib;
    double verified = 7.0 * (double)n * (double)n_choose_upto(fb, s) / ldexp(1.0, fb) +
                      (double)n * (double)n_choose_upto(32, s) / ldexp(1.0, 32) + entries / 32.0;
    double mih = 7.0 * buckets + 1.0 * entries + 10.0 * verified;
    double per_row = batched ? 1.0 : (n * HASH_BYTES <= (8 << 20) ? 1.3 : 2.5);
    return mih < (double)n * per_row;
}

typedef struct {
    const uint32_t *o32;
    const uint16_t *o16;
    const uint32_t *base;
    npy_intp nb1, ng1;
} offsets_t;

static inline const void *off_addr(const offsets_t *o, int t, uint32_t b) {
    return o->o16 ? (const void *)(o->o16 + t * o->nb1 + b) : (const void *)(o->o32 + t * o->nb1 + b);
}

static inline uint32_t off_at(const offsets_t *o, int t, uint32_t b) {
    if (o->o16) return o->base[t * o->ng1 + (b >> GROUP_SHIFT)] + o->o16[t * o->nb1 + b];
    return o->o32[t * o->nb1 + b];
}

static PyObject *search(PyObject *self, PyObject *args) {
    PyObject *hobj, *iobj, *oobj, *bobj, *robj, *deadobj, *dhobj, *diobj, *qobj;
    int rb, p, ib, radius, mode;
    if (!PyArg_ParseTuple(args, "OOOOOiiiOOOOii", &hobj, &iobj, &oobj, &bobj, &robj, &rb, &p,
                          &ib, &deadobj, &dhobj, &diobj, &qobj, &radius, &mode))
        return NULL;
    PyArrayObject *ha = as_array(hobj, NPY_UINT8, 2, "hashes");
    PyArrayObject *ia = NULL;
    if (ha) {
        int it = PyArray_Check(iobj) && PyArray_TYPE((PyArrayObject *)iobj) == NPY_UINT32 ? NPY_UINT32 : NPY_INT64;
        ia = as_array(iobj, it, 1, "ids");
    }
    PyArrayObject *oa = NULL;
    if (ia) {
        int ot = PyArray_Check(oobj) && PyArray_TYPE((PyArrayObject *)oobj) == NPY_UINT16 ? NPY_UINT16 : NPY_UINT32;
        oa = as_array(oobj, ot, 2, "offsets");
    }
    PyArrayObject *ba = oa ? as_array(bobj, NPY_UINT32, 2, "bases") : NULL;
    PyArrayObject *ra = ba ? as_array(robj, NPY_UINT8, 2, "rows") : NULL;
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
              p > 24 || ib < 0 || p + ib > 32 || ib >= 8 * rb || mode < 0 || mode > 2;
    if (!bad && n > 0) {
        bad = PyArray_DIM(oa, 0) != NTABLES || PyArray_DIM(oa, 1) != ((npy_intp)1 << p) + 1 ||
              PyArray_DIM(ra, 0) != NTABLES - 1 || PyArray_DIM(ra, 1) != n * rb ||
              (deada && PyArray_DIM(deada, 0) < (n + 7) / 8) ||
              PyArray_DIM(ba, 0) != NTABLES ||
              PyArray_DIM(ba, 1) != (((npy_intp)1 << p) >> GROUP_SHIFT) + 1 ||
              (uint64_t)n > (1ULL << (8 * rb - ib));
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
    segment_t mainseg = {H, dead, id32 ? NULL : IDS64, id32 ? IDS32 : NULL};
    segment_t deltaseg = {DH, NULL, DIDS, NULL};
    npy_intp nb1 = ((npy_intp)1 << p) + 1;
    const int o16 = PyArray_TYPE(oa) == NPY_UINT16;
    offsets_t O = {o16 ? NULL : (const uint32_t *)PyArray_DATA(oa),
                   o16 ? (const uint16_t *)PyArray_DATA(oa) : NULL, PyArray_DATA(ba), nb1,
                   PyArray_DIM(ba, 1)};
    int s = radius / NTABLES;
    const int rowbits = 8 * rb - ib;
    const uint32_t rowmask = rowbits >= 32 ? 0xffffffffu : ((1u << rowbits) - 1);
    results_t res = {0};
    results_t bres[QB];
    memset(bres, 0, sizeof(bres));
    int oom = 0;

    Py_BEGIN_ALLOW_THREADS
    size_t nmasks = 0;
    uint32_t *masks = NULL;
    uint8_t *mpop = NULL;
    uint32_t *cand = NULL, *bkt = NULL, *blo = NULL, *bhi = NULL;
    uint8_t *ctab = NULL;
    size_t cand_cap = 0;
    int use_mih = 0;
    if (n > 0 && mode != 2) use_mih = mode == 1 || mih_is_cheaper(n, p, ib, s, m > 1);
    if (use_mih) {
        masks = flip_masks(p, s, &nmasks);
        mpop = malloc(nmasks ? nmasks : 1);
        bkt = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        blo = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        bhi = malloc(sizeof(uint32_t) * NTABLES * (nmasks + 1));
        if (!masks || !mpop || !bkt || !blo || !bhi) oom = 1;
        for (size_t k = 0; !oom && k < nmasks; k++) mpop[k] = (uint8_t)__builtin_popcount(masks[k]);
    }
    if (!use_mih) {
        /* batched flat scan of the main segment and the delta */
        uint64_t qw[4 * QB];
        for (npy_intp q0 = 0; q0 < m && !res.oom; q0 += QB) {
            int nq = m - q0 < QB ? (int)(m - q0) : QB;
            for (int j = 0; j < nq; j++)
                for (int w = 0; w < 4; w++) qw[4 * j + w] = load64(Q + (q0 + j) * HASH_BYTES + 8 * w);
            if (n > 0) scan_batch(&mainseg, n, qw, nq, radius, q0, bres);
            if (dn > 0) scan_batch(&deltaseg, dn, qw, nq, radius, q0, bres);
            for (int j = 0; j < nq; j++) append_results(&res, &bres[j]);
        }
    }
    for (npy_intp qi = 0; use_mih && qi < m && !oom && !res.oom; qi++) {
        const uint8_t *q = Q + qi * HASH_BYTES;
        uint32_t qsub[NTABLES], qinl[NTABLES];
        for (int t = 0; t < NTABLES; t++) {
            qsub[t] = load32(q + 4 * t);
            qinl[t] = inline_of(q, t, p, ib);
        }
        /* stage 1: every probed bucket of every table; prefetch its offsets */
        for (int t = 0; t < NTABLES; t++) {
            uint32_t qp = prefix_of(q, t, p);
            for (size_t k = 0; k < nmasks; k++) {
                uint32_t b = qp ^ masks[k];
                bkt[t * nmasks + k] = b;
                __builtin_prefetch(off_addr(&O, t, b));
            }
        }
        /* stage 2: bucket ranges; prefetch the start of the first buckets' rows (stage 3
         * prefetches the rest PREFETCH buckets ahead, so they are in L1 when it reads them) */
        size_t need = 0;
        for (int t = 0; t < NTABLES; t++) {
            const uint8_t *rows = t ? R + (npy_intp)(t - 1) * n * rb : NULL;
            for (size_t k = 0; k < nmasks; k++) {
                uint32_t b = bkt[t * nmasks + k];
                uint32_t lo = off_at(&O, t, b), hi = off_at(&O, t, b + 1);
                blo[t * nmasks + k] = lo;
                bhi[t * nmasks + k] = hi;
                need += hi - lo;
                if (hi > lo && k < PREFETCH) {
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
        /* stage 3: candidate rows; an entry whose key and inline bits are already further
         * than s from the query's is dropped here, without reading its hash. Table 0's
         * buckets are runs of the hashes themselves: their substring is checked in place. */
        size_t nc = 0;
        for (size_t k = 0; k < nmasks; k++) {
            if (k + PREFETCH < nmasks) __builtin_prefetch(H + (npy_intp)blo[k + PREFETCH] * HASH_BYTES);
            for (uint32_t pos = blo[k]; pos < bhi[k]; pos++) {
                if (__builtin_popcount(load32(H + (npy_intp)pos * HASH_BYTES) ^ qsub[0]) > s) continue;
                cand[nc] = pos;
                ctab[nc++] = 0;
            }
        }
        for (int t = 1; t < NTABLES; t++) {
            const uint8_t *rows = R + (npy_intp)(t - 1) * n * rb;
            const uint32_t qi_t = qinl[t];
            for (size_t k = 0; k < nmasks; k++) {
                uint32_t lo = blo[t * nmasks + k], hi = bhi[t * nmasks + k];
                if (k + PREFETCH < nmasks)
                    __builtin_prefetch(rows + (npy_intp)blo[t * nmasks + k + PREFETCH] * rb);
                int left = s - mpop[k];
                for (uint32_t pos = lo; pos < hi; pos++) {
                    uint32_t v = read_row(rows, pos, rb);
                    if (ib && __builtin_popcount((v >> rowbits) ^ qi_t) > left) continue;
                    cand[nc] = v & rowmask;
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
            push(&res, qi, seg_id(&mainseg, row), d);
        }
        for (npy_intp j = 0; j < dn; j++) {
            int d = hamming256(DH + j * HASH_BYTES, q);
            if (d <= radius) push(&res, qi, DIDS[j], d);
        }
    }
    free(masks);
    free(mpop);
    free(cand);
    free(ctab);
    free(bkt);
    free(blo);
    free(bhi);
    for (int j = 0; j < QB; j++) {
        if (bres[j].oom) res.oom = 1;
        free(bres[j].q);
        free(bres[j].id);
        free(bres[j].d);
    }
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
     "build_table(hashes, table, prefix_bits, row_bytes, inline_bits) -> (offsets, rows): counting "
     "sort of one table's buckets."},
    {"search", search, METH_VARARGS,
     "search(hashes, ids, offsets, bases, rows, row_bytes, prefix_bits, inline_bits, dead, delta_hashes, "
     "delta_ids, queries, radius, mode) -> (query_index, ids, distances). mode: 0 auto, 1 mih, "
     "2 linear (a batched flat scan)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mih",
                                    "Multi-index hashing kernels for PDQ.", -1, methods};

PyMODINIT_FUNC PyInit__mih(void) {
    import_array();
    return PyModule_Create(&module);
}
