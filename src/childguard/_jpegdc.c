/* DC-only decoder for progressive JPEGs: the 1/8-scale image from the DC scans alone.
 *
 * A progressive JPEG (SOF2) carries the DC coefficient of every 8x8 block in its first
 * scan(s); the DC coefficient is the block mean. Reading only those scans (and skipping the
 * AC scans by searching for the next marker, without entropy decoding them) yields the
 * 1/8-scale image that perceptual hashing needs, at a small fraction of a full decode.
 *
 * Scope: 8-bit Huffman progressive JPEGs with 1 (grey) or 3 (YCbCr) components and any
 * sampling factors that divide the maximum (4:4:4, 4:2:2, 4:2:0, 4:4:0, ...); interleaved and
 * non-interleaved DC scans; DC refinement scans; restart intervals; byte stuffing.
 * Anything else (baseline, arithmetic coding, CMYK/Adobe RGB, 12-bit, DNL, a missing EOI,
 * corrupt or truncated entropy data, ...) returns None so that the caller falls back to a full
 * decoder. Every read is bounds-checked; the caller caps the pixel count; the GIL is
 * released while decoding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LOOKAHEAD 9
#define MAX_COMPONENTS 3

typedef struct {
    int present;
    int32_t maxcode[18];  /* largest code of each length, -1 when none */
    int32_t valoffset[17];
    int nvals;
    uint8_t vals[256];
    uint16_t lookup[1 << LOOKAHEAD]; /* (length << 8) | symbol, 0 for longer codes */
} HuffTable;

typedef struct {
    int id, h, v, tq;
    int bw, bh;          /* blocks covering the component (non-interleaved scan extent) */
    int stride, rows;    /* allocated block grid (MCU-padded) */
    int32_t *coef;       /* DC coefficient per block */
    int have_dc;         /* a first DC scan covered this component */
    int al;              /* current successive-approximation low bit of its DC */
    int q0;              /* DC quantiser latched at the first DC scan */
    int32_t pred;
} Component;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    long long max_pixels;
    uint16_t qt[4][64];
    int qt_present[4];
    HuffTable dc[4];
    int restart_interval;
    int have_sof;
    int width, height, ncomp, hmax, vmax, mcux, mcuy;
    Component comp[MAX_COMPONENTS];
    int adobe_transform; /* -1 when no Adobe marker */
} Decoder;

typedef struct {
    const uint8_t *p, *end;
    uint64_t acc;
    int bits;
    int marker_hit;
    int pad; /* zero bits appended past the end of the entropy-coded data */
} BitReader;

static int build_huff(HuffTable *t, const uint8_t counts[16], const uint8_t *vals, int nvals) {
    memset(t, 0, sizeof(*t));
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        int n = counts[l - 1];
        t->valoffset[l] = k - code;
        for (int i = 0; i < n; i++) {
            /* Over-subscribed, or the all-ones code: rejected, as libjpeg does. */
            if (code >= ((int32_t)1 << l) - 1) return 0;
            if (l <= LOOKAHEAD) {
                int shift = LOOKAHEAD - l;
                int32_t base = code << shift;
                for (int j = 0; j < (1 << shift); j++) {
                    t->lookup[base + j] = (uint16_t)((l << 8) | vals[k]);
                }
            }
            code++;
            k++;
        }
        t->maxcode[l] = n ? code - 1 : -1;
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff;
    memcpy(t->vals, vals, (size_t)nvals);
    t->nvals = nvals;
    t->present = 1;
    return 1;
}

static inline void br_fill(BitReader *b) {
    while (b->bits <= 56) {
        uint32_t byte = 0;
        if (!b->marker_hit && b->p < b->end) {
            byte = *b->p;
            if (byte == 0xFF) {
                if (b->p + 1 < b->end && b->p[1] == 0x00) {
                    b->p += 2;
                } else {
                    b->marker_hit = 1; /* p stays on the marker */
                    byte = 0;
                    b->pad += 8;
                }
            } else {
                b->p++;
            }
        } else {
            b->pad += 8;
        }
        b->acc |= (uint64_t)byte << (56 - b->bits);
        b->bits += 8;
    }
}

static inline uint32_t br_get(BitReader *b, int n) {
    if (n == 0) return 0;
    br_fill(b);
    uint32_t v = (uint32_t)(b->acc >> (64 - n));
    b->acc <<= n;
    b->bits -= n;
    return v;
}

/* Zero bits consumed beyond the real data: the stream was cut short or corrupt. */
static inline int br_overrun(const BitReader *b) { return b->pad > b->bits; }

static inline int huff_decode(BitReader *b, const HuffTable *t) {
    br_fill(b);
    uint32_t v = (uint32_t)(b->acc >> 48);
    uint16_t e = t->lookup[v >> (16 - LOOKAHEAD)];
    if (e) {
        int l = e >> 8;
        b->acc <<= l;
        b->bits -= l;
        return e & 0xFF;
    }
    for (int l = LOOKAHEAD + 1; l <= 16; l++) {
        int32_t code = (int32_t)(v >> (16 - l));
        if (code <= t->maxcode[l]) {
            int32_t idx = code + t->valoffset[l];
            if (idx < 0 || idx >= t->nvals) return -1;
            b->acc <<= l;
            b->bits -= l;
            return t->vals[idx];
        }
    }
    return -1;
}

/* Position of the next marker (0xFF followed by neither 0x00, 0xFF nor RSTn) at or after pos. */
static size_t next_marker(const uint8_t *d, size_t size, size_t pos) {
    while (pos + 1 < size) {
        const uint8_t *hit = memchr(d + pos, 0xFF, size - pos - 1);
        if (!hit) return size;
        pos = (size_t)(hit - d);
        uint8_t nx = d[pos + 1];
        if (nx == 0x00 || (nx >= 0xD0 && nx <= 0xD7)) {
            pos += 2;
        } else if (nx == 0xFF) {
            pos += 1;
        } else {
            return pos;
        }
    }
    return size;
}

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static int parse_dqt(Decoder *d, const uint8_t *p, size_t len) {
    size_t i = 0;
    while (i < len) {
        int pq = p[i] >> 4, tq = p[i] & 15;
        i++;
        if (tq > 3 || pq > 1) return 0;
        size_t need = pq ? 128 : 64;
        if (i + need > len) return 0;
        for (int k = 0; k < 64; k++) d->qt[tq][k] = pq ? be16(p + i + 2 * k) : p[i + k];
        d->qt_present[tq] = 1;
        i += need;
    }
    return 1;
}

static int parse_dht(Decoder *d, const uint8_t *p, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (i + 17 > len) return 0;
        int tc = p[i] >> 4, th = p[i] & 15;
        if (tc > 1 || th > 3) return 0;
        const uint8_t *counts = p + i + 1;
        int total = 0;
        for (int k = 0; k < 16; k++) total += counts[k];
        if (total > 256 || i + 17 + (size_t)total > len) return 0;
        if (tc == 0 && !build_huff(&d->dc[th], counts, p + i + 17, total)) return 0;
        /* AC tables are never needed: AC scans are skipped, not decoded. */
        i += 17 + (size_t)total;
    }
    return 1;
}

static int parse_sof2(Decoder *d, const uint8_t *p, size_t len) {
    if (d->have_sof || len < 6) return 0;
    if (p[0] != 8) return 0; /* 8-bit samples only */
    d->height = be16(p + 1);
    d->width = be16(p + 3);
    d->ncomp = p[5];
    if (d->height == 0 || d->width == 0) return 0; /* DNL: not supported */
    if ((long long)d->width * d->height > d->max_pixels) return 0;
    if (d->ncomp != 1 && d->ncomp != 3) return 0;
    if (len < 6 + 3 * (size_t)d->ncomp) return 0;
    d->hmax = d->vmax = 1;
    for (int c = 0; c < d->ncomp; c++) {
        Component *k = &d->comp[c];
        k->id = p[6 + 3 * c];
        k->h = p[7 + 3 * c] >> 4;
        k->v = p[7 + 3 * c] & 15;
        k->tq = p[8 + 3 * c];
        if (k->h < 1 || k->h > 4 || k->v < 1 || k->v > 4 || k->tq > 3) return 0;
        for (int o = 0; o < c; o++)
            if (d->comp[o].id == k->id) return 0;
        if (k->h > d->hmax) d->hmax = k->h;
        if (k->v > d->vmax) d->vmax = k->v;
    }
    if (d->ncomp == 1) { /* a lone component is never interleaved: its sampling is moot */
        d->comp[0].h = d->comp[0].v = 1;
        d->hmax = d->vmax = 1;
    }
    d->mcux = (d->width + 8 * d->hmax - 1) / (8 * d->hmax);
    d->mcuy = (d->height + 8 * d->vmax - 1) / (8 * d->vmax);
    for (int c = 0; c < d->ncomp; c++) {
        Component *k = &d->comp[c];
        if (d->hmax % k->h || d->vmax % k->v) return 0;
        int cw = (int)(((long long)d->width * k->h + d->hmax - 1) / d->hmax);
        int ch = (int)(((long long)d->height * k->v + d->vmax - 1) / d->vmax);
        k->bw = (cw + 7) / 8;
        k->bh = (ch + 7) / 8;
        k->stride = d->mcux * k->h;
        k->rows = d->mcuy * k->v;
        k->coef = calloc((size_t)k->stride * (size_t)k->rows, sizeof(int32_t));
        if (!k->coef) return 0;
    }
    d->have_sof = 1;
    return 1;
}

/* One block of a DC scan: first pass (ah == 0) or refinement (ah > 0). */
static inline int dc_block(BitReader *b, Component *k, const HuffTable *t, int ah, int al,
                           int32_t *cell) {
    if (ah == 0) {
        int s = huff_decode(b, t);
        if (s < 0 || s > 15) return 0;
        int32_t diff = 0;
        if (s) {
            uint32_t v = br_get(b, s);
            diff = (v < (1u << (s - 1))) ? (int32_t)v - (int32_t)(1u << s) + 1 : (int32_t)v;
        }
        k->pred += diff;
        if (k->pred > 65535 || k->pred < -65535) return 0;
        *cell = k->pred * (1 << al);
    } else if (br_get(b, 1)) {
        *cell |= (1 << al);
    }
    return 1;
}

/* Decode a DC scan starting at d->pos (just after the SOS header); leave pos on the next marker. */
static int decode_dc_scan(Decoder *d, Component **sc, const int *td, int ns, int ah, int al) {
    BitReader b = {d->data + d->pos, d->data + d->size, 0, 0, 0, 0};
    long long total;
    int mcux = 0;
    if (ns == 1) {
        mcux = sc[0]->bw;
        total = (long long)sc[0]->bw * sc[0]->bh;
    } else {
        mcux = d->mcux;
        total = (long long)d->mcux * d->mcuy;
    }
    int next_rst = 0;
    long long todo = d->restart_interval;
    const HuffTable *tab[MAX_COMPONENTS];
    for (int c = 0; c < ns; c++) {
        sc[c]->pred = 0;
        tab[c] = &d->dc[td[c]];
    }
    long long rows = total / mcux;
    for (long long my = 0; my < rows; my++) {
        for (int mx = 0; mx < mcux; mx++) {
            if (d->restart_interval) {
                if (todo == 0) {
                    if (br_overrun(&b)) return 0;
                    /* Bytes left before the marker are extraneous (libjpeg skips them). */
                    const uint8_t *q = b.p;
                    while (q + 1 < b.end && !(q[0] == 0xFF && q[1] != 0x00 && q[1] != 0xFF)) q++;
                    if (q + 1 >= b.end || q[1] != (0xD0 | next_rst)) return 0;
                    b.p = q + 2;
                    b.acc = 0;
                    b.bits = 0;
                    b.pad = 0;
                    b.marker_hit = 0;
                    next_rst = (next_rst + 1) & 7;
                    for (int c = 0; c < ns; c++) sc[c]->pred = 0;
                    todo = d->restart_interval;
                }
                todo--;
            }
            if (ns == 1) {
                Component *k = sc[0];
                if (!dc_block(&b, k, tab[0], ah, al, &k->coef[my * k->stride + mx])) return 0;
                continue;
            }
            for (int c = 0; c < ns; c++) {
                Component *k = sc[c];
                for (int v = 0; v < k->v; v++) {
                    int32_t *row = &k->coef[(my * k->v + v) * k->stride + (long long)mx * k->h];
                    for (int h = 0; h < k->h; h++) {
                        if (!dc_block(&b, k, tab[c], ah, al, &row[h])) return 0;
                    }
                }
            }
        }
    }
    if (br_overrun(&b)) return 0;
    d->pos = next_marker(d->data, d->size, (size_t)(b.p - d->data));
    return 1;
}

static int parse_sos(Decoder *d, const uint8_t *p, size_t len) {
    if (!d->have_sof || len < 1) return 0;
    int ns = p[0];
    if (ns < 1 || ns > d->ncomp || len != 4 + 2 * (size_t)ns) return 0;
    Component *sc[MAX_COMPONENTS];
    int td[MAX_COMPONENTS];
    int blocks = 0;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i];
        sc[i] = NULL;
        for (int c = 0; c < d->ncomp; c++)
            if (d->comp[c].id == id) sc[i] = &d->comp[c];
        if (!sc[i]) return 0;
        for (int o = 0; o < i; o++)
            if (sc[o] == sc[i]) return 0;
        td[i] = p[2 + 2 * i] >> 4;
        if (td[i] > 3) return 0;
        blocks += sc[i]->h * sc[i]->v;
    }
    int ss = p[1 + 2 * ns], se = p[2 + 2 * ns];
    int ah = p[3 + 2 * ns] >> 4, al = p[3 + 2 * ns] & 15;
    if (ss != 0) { /* AC scan: skip its entropy-coded data */
        if (se > 63 || se < ss || ns != 1) return 0;
        d->pos = next_marker(d->data, d->size, d->pos);
        return 1;
    }
    if (se != 0 || al > 13 || (ns > 1 && blocks > 10)) return 0;
    for (int i = 0; i < ns; i++) {
        Component *k = sc[i];
        if (ah == 0) {
            if (k->have_dc || !d->qt_present[k->tq]) return 0;
            if (!d->dc[td[i]].present) return 0;
            k->q0 = d->qt[k->tq][0];
            k->have_dc = 1;
            k->al = al;
        } else {
            if (!k->have_dc || ah != k->al || al >= ah) return 0;
            k->al = al;
        }
    }
    return decode_dc_scan(d, sc, td, ns, ah, al);
}

/* Walk the markers; 1 when the whole file was understood and every component has its DC. */
static int decode(Decoder *d) {
    const uint8_t *data = d->data;
    if (d->size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 0;
    d->pos = 2;
    for (;;) {
        if (d->pos + 1 >= d->size) return 0; /* no EOI: truncated */
        if (data[d->pos] != 0xFF) {
            d->pos = next_marker(data, d->size, d->pos);
            continue;
        }
        uint8_t m = data[d->pos + 1];
        if (m == 0xFF) {
            d->pos++;
            continue;
        }
        d->pos += 2;
        if (m == 0xD9) break; /* EOI */
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* TEM, stray RSTn */
        if (m == 0x00 || m == 0xD8) return 0;
        if (d->pos + 2 > d->size) return 0;
        size_t len = be16(data + d->pos);
        if (len < 2 || d->pos + len > d->size) return 0;
        const uint8_t *p = data + d->pos + 2;
        size_t n = len - 2;
        d->pos += len;
        int ok = 1;
        switch (m) {
        case 0xC2: ok = parse_sof2(d, p, n); break;
        case 0xC4: ok = parse_dht(d, p, n); break;
        case 0xDB: ok = parse_dqt(d, p, n); break;
        case 0xDD:
            ok = n >= 2;
            if (ok) d->restart_interval = be16(p);
            break;
        case 0xDA: ok = parse_sos(d, p, n); break;
        case 0xEE:
            if (n >= 12 && memcmp(p, "Adobe", 5) == 0) d->adobe_transform = p[11];
            break;
        default:
            /* Every other SOFn (baseline, lossless, arithmetic), DAC, DNL: not ours. */
            if ((m >= 0xC0 && m <= 0xCF) || m == 0xDC) ok = 0;
            break;
        }
        if (!ok) return 0;
    }
    if (!d->have_sof) return 0;
    for (int c = 0; c < d->ncomp; c++)
        if (!d->comp[c].have_dc) return 0;
    if (d->ncomp == 3) {
        if (d->adobe_transform == 0) return 0; /* Adobe RGB */
        if (d->adobe_transform < 0 && d->comp[0].id == 'R' && d->comp[1].id == 'G' &&
            d->comp[2].id == 'B')
            return 0;
    }
    return 1;
}

static inline double dc_mean(const Component *k, int bx, int by) {
    double v = (double)k->coef[(size_t)by * k->stride + bx] * k->q0 / 8.0 + 128.0;
    return v < 0.0 ? 0.0 : (v > 255.0 ? 255.0 : v);
}

static inline uint8_t to_u8(double v) {
    v = floor(v + 0.5);
    return (uint8_t)(v < 0.0 ? 0.0 : (v > 255.0 ? 255.0 : v));
}

/* Linear interpolation of a subsampled component's block means at an output block centre. */
static inline double sample(const Component *k, double fx, double fy) {
    int x0 = (int)floor(fx), y0 = (int)floor(fy);
    double ax = fx - x0, ay = fy - y0;
    int x1 = x0 + 1, y1 = y0 + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > k->bw - 1) x1 = k->bw - 1;
    if (y1 > k->bh - 1) y1 = k->bh - 1;
    if (x0 > x1) x0 = x1;
    if (y0 > y1) y0 = y1;
    double top = dc_mean(k, x0, y0) * (1.0 - ax) + dc_mean(k, x1, y0) * ax;
    double bottom = dc_mean(k, x0, y1) * (1.0 - ax) + dc_mean(k, x1, y1) * ax;
    return top * (1.0 - ay) + bottom * ay;
}

/* The 1/8-scale RGB image: one pixel per block of the full-resolution sampling grid. */
static void render(const Decoder *d, uint8_t *out, int ow, int oh) {
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            uint8_t *px = out + ((size_t)y * ow + x) * 3;
            double v[MAX_COMPONENTS];
            for (int c = 0; c < d->ncomp; c++) {
                const Component *k = &d->comp[c];
                if (k->h == d->hmax && k->v == d->vmax) {
                    v[c] = dc_mean(k, x < k->bw ? x : k->bw - 1, y < k->bh ? y : k->bh - 1);
                } else {
                    double fx = (x + 0.5) * k->h / d->hmax - 0.5;
                    double fy = (y + 0.5) * k->v / d->vmax - 0.5;
                    v[c] = sample(k, fx, fy);
                }
            }
            if (d->ncomp == 1) {
                px[0] = px[1] = px[2] = to_u8(v[0]);
            } else {
                double yy = v[0], cb = v[1] - 128.0, cr = v[2] - 128.0;
                px[0] = to_u8(yy + 1.402 * cr);
                px[1] = to_u8(yy - 0.344136286 * cb - 0.714136286 * cr);
                px[2] = to_u8(yy + 1.772 * cb);
            }
        }
    }
}

/* The 1/8-scale luma plane (float, 0..255): the Y (or grey) block means. */
static void render_luma(const Decoder *d, float *out, int ow, int oh) {
    const Component *k = &d->comp[0];
    int direct = k->h == d->hmax && k->v == d->vmax;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            double v;
            if (direct) {
                v = dc_mean(k, x < k->bw ? x : k->bw - 1, y < k->bh ? y : k->bh - 1);
            } else {
                v = sample(k, (x + 0.5) * k->h / d->hmax - 0.5, (y + 0.5) * k->v / d->vmax - 0.5);
            }
            out[(size_t)y * ow + x] = (float)v;
        }
    }
}

static void free_decoder(Decoder *d) {
    for (int c = 0; c < MAX_COMPONENTS; c++) {
        free(d->comp[c].coef);
        d->comp[c].coef = NULL;
    }
}

static PyObject *decode_dc(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    long long max_pixels;
    int luma = 0;
    if (!PyArg_ParseTuple(args, "y*L|p", &view, &max_pixels, &luma)) return NULL;
    Decoder *d = calloc(1, sizeof(Decoder));
    if (!d) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    d->data = view.buf;
    d->size = (size_t)view.len;
    d->max_pixels = max_pixels;
    d->adobe_transform = -1;
    int ok;
    uint8_t *out = NULL;
    int ow = 0, oh = 0;
    Py_BEGIN_ALLOW_THREADS
    ok = decode(d);
    if (ok) {
        ow = (d->width + 7) / 8;
        oh = (d->height + 7) / 8;
        out = malloc((size_t)ow * oh * (luma ? sizeof(float) : 3));
        if (!out) ok = 0;
        else if (luma) render_luma(d, (float *)out, ow, oh);
        else render(d, out, ow, oh);
    }
    free_decoder(d);
    Py_END_ALLOW_THREADS
    free(d);
    PyBuffer_Release(&view);
    if (!ok) {
        free(out);
        Py_RETURN_NONE;
    }
    npy_intp dims[3] = {oh, ow, 3};
    PyObject *arr = luma ? PyArray_SimpleNew(2, dims, NPY_FLOAT32)
                         : PyArray_SimpleNew(3, dims, NPY_UINT8);
    if (arr)
        memcpy(PyArray_DATA((PyArrayObject *)arr), out, (size_t)ow * oh * (luma ? sizeof(float) : 3));
    free(out);
    return arr;
}


/* ---- PDQ from luma ------------------------------------------------------------------------
 * Meta's PDQ (pdq/cpp/hashing/pdqhashing.cpp) on a luma plane, with the same float arithmetic
 * in the same order, so the hash equals `pdqhash.compute` on the same luma: two passes of a box
 * ("Jarosz") filter along rows then columns, ceil(side / 128) wide; 64x64 samples; the 16x16
 * low-frequency block of their DCT; one bit per coefficient above the median. Quality is the
 * gradient sum of the 64x64 samples. The column pass runs over a whole row at a time (each
 * column keeps its own running sum), which gives the same sums as walking each column.
 */

static float pdq_dct[16 * 64];

static void pdq_init_dct(void) {
    const float scale = (float)sqrt(2.0 / 64.0);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 64; j++)
            pdq_dct[i * 64 + j] =
                (float)(scale * cos((3.14159265358979323846 / 2.0 / 64.0) * (i + 1) * (2 * j + 1)));
}

static void box_rows(const float *in, float *out, int rows, int cols, int window) {
    int half = (window + 2) / 2;
    int p1 = half - 1, p2 = window - half + 1, p3 = cols - window, p4 = half - 1;
    for (int r = 0; r < rows; r++) {
        const float *iv = in + (size_t)r * cols;
        float *ov = out + (size_t)r * cols;
        int li = 0, ri = 0, oi = 0, n = 0;
        float sum = 0.0f;
        for (int i = 0; i < p1; i++) { sum += iv[ri++]; n++; }
        for (int i = 0; i < p2; i++) { sum += iv[ri++]; n++; ov[oi++] = sum / n; }
        for (int i = 0; i < p3; i++) { sum += iv[ri++]; sum -= iv[li++]; ov[oi++] = sum / n; }
        for (int i = 0; i < p4; i++) { sum -= iv[li++]; n--; ov[oi++] = sum / n; }
    }
}

static void box_cols(const float *in, float *out, float *sum, int rows, int cols, int window) {
    int half = (window + 2) / 2;
    int p1 = half - 1, p2 = window - half + 1, p3 = rows - window, p4 = half - 1;
    int li = 0, ri = 0, oi = 0, n = 0;
    for (int j = 0; j < cols; j++) sum[j] = 0.0f;
#define ROW(k) (in + (size_t)(k) * cols)
#define OUT(k) (out + (size_t)(k) * cols)
    for (int i = 0; i < p1; i++, ri++, n++) {
        const float *a = ROW(ri);
        for (int j = 0; j < cols; j++) sum[j] += a[j];
    }
    for (int i = 0; i < p2; i++, ri++, oi++) {
        const float *a = ROW(ri);
        float *o = OUT(oi);
        n++;
        for (int j = 0; j < cols; j++) { sum[j] += a[j]; o[j] = sum[j] / n; }
    }
    for (int i = 0; i < p3; i++, ri++, li++, oi++) {
        const float *a = ROW(ri), *b = ROW(li);
        float *o = OUT(oi);
        for (int j = 0; j < cols; j++) { sum[j] += a[j]; sum[j] -= b[j]; o[j] = sum[j] / n; }
    }
    for (int i = 0; i < p4; i++, li++, oi++) {
        const float *b = ROW(li);
        float *o = OUT(oi);
        n--;
        for (int j = 0; j < cols; j++) { sum[j] -= b[j]; o[j] = sum[j] / n; }
    }
#undef ROW
#undef OUT
}

static float torben_median(const float *m, int n) {
    float min = m[0], max = m[0];
    for (int i = 1; i < n; i++) {
        if (m[i] < min) min = m[i];
        if (m[i] > max) max = m[i];
    }
    int less, greater, equal;
    float guess, maxlt, mingt;
    for (;;) {
        guess = (min + max) / 2;
        less = greater = equal = 0;
        maxlt = min;
        mingt = max;
        for (int i = 0; i < n; i++) {
            if (m[i] < guess) {
                less++;
                if (m[i] > maxlt) maxlt = m[i];
            } else if (m[i] > guess) {
                greater++;
                if (m[i] < mingt) mingt = m[i];
            } else {
                equal++;
            }
        }
        if (less <= (n + 1) / 2 && greater <= (n + 1) / 2) break;
        if (less > greater) max = maxlt;
        else min = mingt;
    }
    if (less >= (n + 1) / 2) return maxlt;
    if (less + equal >= (n + 1) / 2) return guess;
    return mingt;
}

/* PDQ of a rows x cols luma plane held in buf1 (overwritten; buf2 and colsum are scratch of
 * rows * cols and cols floats). Writes the 32 hash bytes (big-endian: bit 255 first). */
static int pdq_from_64(float a[64][64], uint8_t out[32]);

static int pdq_hash_luma(float *buf1, float *buf2, float *colsum, int rows, int cols,
                         uint8_t out[32]) {
    memset(out, 0, 32);
    if (rows < 5 || cols < 5) return 0;
    static const int passes = 2;
    float a[64][64];
    if (rows == 64 && cols == 64) {
        memcpy(a, buf1, sizeof(a));
    } else {
        int wrow = (cols + 127) / 128, wcol = (rows + 127) / 128;
        for (int p = 0; p < passes; p++) {
            box_rows(buf1, buf2, rows, cols, wrow);
            box_cols(buf2, buf1, colsum, rows, cols, wcol);
        }
        for (int i = 0; i < 64; i++) {
            int ii = (int)(((i + 0.5) * rows) / 64);
            for (int j = 0; j < 64; j++) {
                int jj = (int)(((j + 0.5) * cols) / 64);
                a[i][j] = buf1[(size_t)ii * cols + jj];
            }
        }
    }
    return pdq_from_64(a, out);
}

/* |(u - v) * 100 / 255| truncated to an integer, as PDQ's quality metric takes it; luma outside
 * 0..255 (only a caller's float plane can hold it) is bounded, so the conversion is defined. */
static inline int gradient_step(float u, float v) {
    float d = ((u - v) * 100) / 255;
    if (!(d > -10000.0f && d < 10000.0f)) return 10000; /* also NaN */
    int k = (int)d;
    return k < 0 ? -k : k;
}

/* Quality, DCT and bits of the 64x64 samples. */
static int pdq_from_64(float a[64][64], uint8_t out[32]) {
    float t[16][64], b[16][16];
    int gradient = 0;
    for (int i = 0; i < 63; i++)
        for (int j = 0; j < 64; j++) gradient += gradient_step(a[i][j], a[i + 1][j]);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 63; j++) gradient += gradient_step(a[i][j], a[i][j + 1]);
    int quality = gradient / 90;
    if (quality > 100) quality = 100;
    for (int i = 0; i < 16; i++) {
        const float *pd = &pdq_dct[i * 64];
        for (int j = 0; j < 64; j++) {
            float s = 0.0f;
            for (int k = 0; k < 64; k++) s += pd[k] * a[k][j];
            t[i][j] = s;
        }
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            const float *pd = &pdq_dct[j * 64];
            float s = 0.0f;
            for (int k = 0; k < 64; k++) s += t[i][k] * pd[k];
            b[i][j] = s;
        }
    float median = torben_median(&b[0][0], 256);
    memset(out, 0, 32);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            if (b[i][j] > median) {
                int k = i * 16 + j;
                out[31 - (k >> 3)] |= (uint8_t)(1u << (k & 7));
            }
    return quality;
}

/* pdq(array) -> (bytes, quality): an HxW luma plane (uint8 or float32) or an HxWx3 uint8 RGB
 * image (luma = 0.299 R + 0.587 G + 0.114 B in double, rounded to float, as pdqhash does). */
static PyObject *pdq(PyObject *self, PyObject *arg) {
    (void)self;
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY(arg, NPY_NOTYPE, 2, 3, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (!arr) return NULL;
    int nd = PyArray_NDIM(arr), type = PyArray_TYPE(arr);
    npy_intp *dims = PyArray_DIMS(arr);
    int ok = (nd == 2 && (type == NPY_UINT8 || type == NPY_FLOAT32)) ||
             (nd == 3 && type == NPY_UINT8 && dims[2] == 3);
    if (!ok || dims[0] > INT32_MAX / 4 || dims[1] > INT32_MAX / 4) {
        Py_DECREF(arr);
        PyErr_SetString(PyExc_ValueError, "want an HxW uint8/float32 luma or HxWx3 uint8 RGB array");
        return NULL;
    }
    int rows = (int)dims[0], cols = (int)dims[1];
    size_t n = (size_t)rows * (size_t)cols;
    float *buf1 = malloc((n ? n : 1) * sizeof(float)), *buf2 = malloc((n ? n : 1) * sizeof(float));
    float *colsum = malloc(((size_t)cols + 1) * sizeof(float));
    if (!buf1 || !buf2 || !colsum) {
        free(buf1), free(buf2), free(colsum);
        Py_DECREF(arr);
        return PyErr_NoMemory();
    }
    uint8_t hash[32];
    int quality;
    const void *src = PyArray_DATA(arr);
    Py_BEGIN_ALLOW_THREADS
    if (nd == 3) {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++, p += 3)
            buf1[i] = (float)(p[0] * 0.299 + p[1] * 0.587 + p[2] * 0.114);
    } else if (type == NPY_UINT8) {
        const uint8_t *p = src;
        for (size_t i = 0; i < n; i++) buf1[i] = (float)p[i];
    } else {
        memcpy(buf1, src, n * sizeof(float));
    }
    quality = pdq_hash_luma(buf1, buf2, colsum, rows, cols, hash);
    Py_END_ALLOW_THREADS
    free(buf1), free(buf2), free(colsum);
    Py_DECREF(arr);
    return Py_BuildValue("y#i", (const char *)hash, (Py_ssize_t)32, quality);
}

/* ---- PDQ of a resized plane, without making the resized image -------------------------------
 * PDQ of `plane` (rows x cols) resized with Lanczos (a = 3) to out_h x out_w, where the plane's
 * region [x0, x1] x [y0, y1] (in its own pixels) maps onto the output. Resizing, PDQ's box
 * filters and its 64-point decimation are each separable and linear: along each axis they
 * compose into 64 filters over the plane's pixels (`composite`), applied along rows and then
 * along columns. The cost is that of the small plane, whatever the size it is hashed at.
 */

typedef struct {
    int *first, *count;
    float *weight; /* count[i] weights from first[i], `taps` apart */
    int taps;
} Resampler;

static double lanczos3(double x) {
    if (x < 0) x = -x;
    if (x < 1e-9) return 1.0;
    if (x >= 3.0) return 0.0;
    double px = 3.14159265358979323846 * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
}

static int resampler_init(Resampler *r, int in, int out, double lo, double hi) {
    double scale = (hi - lo) / out, support = 3.0 * (scale > 1.0 ? scale : 1.0);
    double fs = scale > 1.0 ? scale : 1.0;
    r->taps = (int)ceil(support) * 2 + 2;
    r->first = malloc(sizeof(int) * (size_t)out);
    r->count = malloc(sizeof(int) * (size_t)out);
    r->weight = malloc(sizeof(float) * (size_t)out * (size_t)r->taps);
    if (!r->first || !r->count || !r->weight) return 0;
    for (int o = 0; o < out; o++) {
        double centre = lo + (o + 0.5) * scale;
        int a = (int)floor(centre - support), b = (int)ceil(centre + support);
        if (a < 0) a = 0;
        if (b > in) b = in;
        if (b - a > r->taps) b = a + r->taps;
        double total = 0.0;
        float *w = r->weight + (size_t)o * r->taps;
        int n = 0;
        if (fs == 1.0 && b > a) {
            /* Unit steps: sin(pi x) alternates in sign and sin(pi x / 3) turns by pi / 3 a tap,
             * so three sines an output instead of two a tap. */
            const double pi = 3.14159265358979323846, c3 = 0.5, s3 = 0.86602540378443864676;
            double x = a + 0.5 - centre, s1 = sin(pi * x), sn = sin(pi * x / 3), cs = cos(pi * x / 3);
            for (int i = a; i < b; i++, n++, x += 1.0) {
                double v = fabs(x) < 1e-9 ? 1.0 : (fabs(x) >= 3.0 ? 0.0 : 3.0 * s1 * sn / (pi * pi * x * x));
                w[n] = (float)v;
                total += v;
                double next = sn * c3 + cs * s3;
                cs = cs * c3 - sn * s3;
                sn = next;
                s1 = -s1;
            }
        } else {
            for (int i = a; i < b; i++, n++) {
                double v = lanczos3((i + 0.5 - centre) / fs);
                w[n] = (float)v;
                total += v;
            }
        }
        for (int k = 0; k < n; k++) w[k] = (float)(total != 0.0 ? w[k] / total : 0.0);
        if (b <= a) { /* outside the plane: the nearest edge pixel */
            a = centre < 0 ? 0 : in - 1;
            w[0] = 1.0f;
            n = 1;
        }
        r->first[o] = a;
        r->count[o] = n;
    }
    return 1;
}

static void resampler_free(Resampler *r) {
    free(r->first), free(r->count), free(r->weight);
}

/* PDQ's box window around output `o` of a line of `len`: [lo, hi], as box_rows walks it. */
static inline void box_window(int o, int len, int window, int *lo, int *hi) {
    int half = (window + 2) / 2;
    *lo = o - (window - half);
    *hi = o + half - 1;
    if (*lo < 0) *lo = 0;
    if (*hi > len - 1) *hi = len - 1;
}

/* The 64 composite filters of one axis: resample (Lanczos, `r`) to `len`, box twice with PDQ's
 * window, keep sample j = (int)((j + 0.5) * len / 64). Filter j covers inputs first[j] ..
 * first[j] + count[j] - 1, its weights `n_in` apart in `weight`. `scratch` holds `len` +
 * `n_in` doubles. */
static void composite(const Resampler *r, int n_in, int len, int *first, int *count,
                      float *weight, double *scratch) {
    int window = (len + 127) / 128;
    double *over_m = scratch, *over_i = scratch + len;
    for (int j = 0; j < 64; j++) {
        int pos = (int)(((j + 0.5) * len) / 64);
        int lo, hi, mlo = len, mhi = -1;
        box_window(pos, len, window, &lo, &hi);
        for (int o = lo; o <= hi; o++) {
            int a, b;
            box_window(o, len, window, &a, &b);
            if (a < mlo) mlo = a;
            if (b > mhi) mhi = b;
        }
        for (int m = mlo; m <= mhi; m++) over_m[m] = 0.0;
        double outer = 1.0 / (hi - lo + 1);
        for (int o = lo; o <= hi; o++) {
            int a, b;
            box_window(o, len, window, &a, &b);
            double w = outer / (b - a + 1);
            for (int m = a; m <= b; m++) over_m[m] += w;
        }
        int ilo = n_in, ihi = -1;
        for (int m = mlo; m <= mhi; m++) {
            if (r->first[m] < ilo) ilo = r->first[m];
            if (r->first[m] + r->count[m] - 1 > ihi) ihi = r->first[m] + r->count[m] - 1;
        }
        for (int i = ilo; i <= ihi; i++) over_i[i] = 0.0;
        for (int m = mlo; m <= mhi; m++) {
            const float *w = r->weight + (size_t)m * r->taps;
            for (int k = 0; k < r->count[m]; k++) over_i[r->first[m] + k] += over_m[m] * w[k];
        }
        first[j] = ilo;
        count[j] = ihi - ilo + 1;
        for (int i = ilo; i <= ihi; i++) weight[(size_t)j * n_in + (i - ilo)] = (float)over_i[i];
    }
}

static PyObject *pdq_resized(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    int out_w, out_h;
    double x0, y0, x1, y1;
    if (!PyArg_ParseTuple(args, "O(ii)(dddd)", &obj, &out_w, &out_h, &x0, &y0, &x1, &y1))
        return NULL;
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY(obj, NPY_FLOAT32, 2, 2,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (!arr) return NULL;
    int rows = (int)PyArray_DIM(arr, 0), cols = (int)PyArray_DIM(arr, 1);
    if (out_w < 5 || out_h < 5 || out_w > 65536 || out_h > 65536 || rows < 1 || cols < 1 ||
        !(x1 > x0) || !(y1 > y0) || x0 < 0 || y0 < 0 || x1 > cols || y1 > rows) {
        Py_DECREF(arr);
        PyErr_SetString(PyExc_ValueError, "want a float32 plane, an output size of at least 5x5 "
                                          "and a box inside the plane");
        return NULL;
    }
    const float *plane = PyArray_DATA(arr);
    Resampler rx = {0}, ry = {0};
    int longest = out_w > out_h ? out_w : out_h, widest = cols > rows ? cols : rows;
    double *scratch = malloc(sizeof(double) * ((size_t)longest + (size_t)widest));
    float *wx = malloc(sizeof(float) * 64 * (size_t)cols), *wy = malloc(sizeof(float) * 64 * (size_t)rows);
    float *tmp = malloc(sizeof(float) * (size_t)rows * 64);
    int fx[64], cx[64], fy[64], cy[64];
    int ok = scratch && wx && wy && tmp;
    uint8_t hash[32];
    int quality = 0;
    Py_BEGIN_ALLOW_THREADS
    ok = ok && resampler_init(&rx, cols, out_w, x0, x1) && resampler_init(&ry, rows, out_h, y0, y1);
    if (ok) {
        composite(&rx, cols, out_w, fx, cx, wx, scratch);
        composite(&ry, rows, out_h, fy, cy, wy, scratch);
        for (int r = 0; r < rows; r++) {
            const float *line = plane + (size_t)r * cols;
            for (int j = 0; j < 64; j++) {
                const float *w = wx + (size_t)j * cols, *p = line + fx[j];
                float acc = 0.0f;
                for (int k = 0; k < cx[j]; k++) acc += w[k] * p[k];
                tmp[(size_t)r * 64 + j] = acc;
            }
        }
        float a[64][64];
        for (int i = 0; i < 64; i++) {
            const float *w = wy + (size_t)i * rows;
            for (int j = 0; j < 64; j++) a[i][j] = 0.0f;
            for (int k = 0; k < cy[i]; k++) {
                const float *t = tmp + (size_t)(fy[i] + k) * 64;
                for (int j = 0; j < 64; j++) a[i][j] += w[k] * t[j];
            }
        }
        quality = pdq_from_64(a, hash);
    }
    Py_END_ALLOW_THREADS
    resampler_free(&rx), resampler_free(&ry);
    free(scratch), free(wx), free(wy), free(tmp);
    Py_DECREF(arr);
    if (!ok) return PyErr_NoMemory();
    return Py_BuildValue("y#i", (const char *)hash, (Py_ssize_t)32, quality);
}

static PyMethodDef methods[] = {
    {"decode_dc", decode_dc, METH_VARARGS,
     "decode_dc(data, max_pixels, luma=False) -> ndarray | None\n\n"
     "The 1/8-scale RGB image (ceil(H/8), ceil(W/8), 3) uint8 of a progressive JPEG from its DC\n"
     "scans only (with luma=True the (ceil(H/8), ceil(W/8)) float32 luma plane), or None when\n"
     "the file is not one this kernel handles (the caller falls back)."},
    {"pdq", pdq, METH_O,
     "pdq(array) -> (bytes, int)\n\n"
     "PDQ hash (32 bytes, bit 255 first) and quality of an HxW uint8/float32 luma plane or an\n"
     "HxWx3 uint8 RGB image: the same arithmetic as Meta's C++ on the same luma."},
    {"pdq_resized", pdq_resized, METH_VARARGS,
     "pdq_resized(plane, (width, height), (x0, y0, x1, y1)) -> (bytes, int)\n\n"
     "PDQ of a float32 luma plane resized with Lanczos to width x height, the plane's region\n"
     "(x0, y0)-(x1, y1) mapping onto the output, computed without making the resized image."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jpegdc",
                                    "DC-only progressive JPEG decoder.", -1, methods};

PyMODINIT_FUNC PyInit__jpegdc(void) {
    import_array();
    pdq_init_dct(); /* once, under the GIL: the hashing functions only read it */
    return PyModule_Create(&module);
}
