/* The per-message LSTM of _lstm_c.c, included once per instruction set: the including file defines
 * FN(name) (the name with the ISA's suffix), VEC_BYTES (the vector width in bytes) and KERNEL_TARGET (a function
 * attribute: empty for the baseline ISA, target("avx2,fma") for the AVX2 variant). Plain C loops
 * for the elementwise parts (the compiler vectorizes them for the target); the recurrent product,
 * where the time goes, keeps eight vector accumulators in registers over all units (see PANEL).
 *
 * A message runs alone (FN(one)), or stepping together with one or three others (FN(two), FN(four)),
 * sharing each load of R; every column of every message gets the same chain of operations either way,
 * so a message's probability never depends on its neighbours (tests/test_native.py pins the bits).
 * Same math as _lstm_numba.py: the i, f, o columns are halved at load, so one tanh gives every gate
 * (sigmoid(x) = 0.5 + 0.5 tanh(x / 2)). */

typedef float FN(vec) __attribute__((vector_size(VEC_BYTES)));
#define KERNEL_W ((int)(VEC_BYTES / sizeof(float)))

KERNEL_TARGET static inline FN(vec) FN(load)(const float *p) {
    FN(vec) v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* x in every lane: x - 0 is x itself (whatever its sign), so the compiler broadcasts it from memory, without the
 * add that `(vec){0} + x` costs on the ports the multiply-adds need. The product's factors are hz = 0 + h (a
 * message's Step.hz, made once a step), so each lane gets the same value as before. */
KERNEL_TARGET static inline FN(vec) FN(splat)(float x) {
    return x - (FN(vec)){0};
}

/* Columns j0.. of the recurrent product (past the last full block of 8 or 4 vectors): a vector at a
 * time, then one at a time; the same for one message or two, so leftover columns round alike. */
KERNEL_TARGET static void FN(recurrent_columns)(float *restrict z, const float *restrict h, const float *restrict hz, const float *restrict recurrent, int units, int j0) {
    const int gates = 4 * units;
    for (; j0 + KERNEL_W <= gates; j0 += KERNEL_W) {
        FN(vec) a = FN(load)(z + j0);
        for (int k = 0; k < units; k++)
            a += FN(splat)(hz[k]) * FN(load)(recurrent + (size_t)k * gates + j0);
        __builtin_memcpy(z + j0, &a, sizeof a);
    }
    for (; j0 < gates; j0++) {
        float acc = z[j0];
        for (int k = 0; k < units; k++)
            acc += h[k] * recurrent[(size_t)k * gates + j0];
        z[j0] = acc;
    }
}

/* The packed copy of R (Weights.packed, made by FN(pack)): its columns in panels of PANEL (four vectors), each
 * panel's rows one after another (units x PANEL floats, contiguous), so that a panel fills the cache's sets evenly.
 * R (64 KB for 64 units) is more than L1 holds (48 KB here): streamed in one order every step, each step would
 * read all of it from L2. The columns are independent, so the panels go in alternate orders on alternate steps
 * (forward, then backward): the panels a step used last are still in L1 when the next starts with them. Each
 * column keeps its arithmetic: its input, then + h[k] R[k, j] for k = 0..u-1 in order. */
#define PANEL (4 * KERNEL_W)

KERNEL_TARGET static int FN(pack)(Weights *w) {
    const int units = w->units, gates = 4 * units, panels = gates / PANEL;
    free(w->packed_memory);
    w->packed_memory = NULL;
    w->packed = NULL;
    if (panels == 0)
        return 0;
    const size_t floats = (size_t)panels * units * PANEL;
    void *memory = malloc(floats * sizeof(float) + 63);  /* aligned to a cache line by hand: no posix_memalign everywhere */
    if (!memory)
        return -1;
    float *packed = (float *)(((uintptr_t)memory + 63) & ~(uintptr_t)63);
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < units; k++)
            memcpy(packed + ((size_t)p * units + k) * PANEL, w->recurrent + (size_t)k * gates + (size_t)p * PANEL, PANEL * sizeof(float));
    w->packed_memory = memory;
    w->packed = packed;
    return 0;
}

/* One message, one panel (its four vectors of columns in registers over all units). */
KERNEL_TARGET static inline void FN(panel)(float *restrict z, const float *restrict hz, const float *restrict p, int units) {
    FN(vec) a0 = FN(load)(z), a1 = FN(load)(z + KERNEL_W), a2 = FN(load)(z + 2 * KERNEL_W), a3 = FN(load)(z + 3 * KERNEL_W);
    for (int k = 0; k < units; k++, p += PANEL) {
        const FN(vec) hk = FN(splat)(hz[k]);
        a0 += hk * FN(load)(p);
        a1 += hk * FN(load)(p + KERNEL_W);
        a2 += hk * FN(load)(p + 2 * KERNEL_W);
        a3 += hk * FN(load)(p + 3 * KERNEL_W);
    }
    __builtin_memcpy(z, &a0, sizeof a0);
    __builtin_memcpy(z + KERNEL_W, &a1, sizeof a1);
    __builtin_memcpy(z + 2 * KERNEL_W, &a2, sizeof a2);
    __builtin_memcpy(z + 3 * KERNEL_W, &a3, sizeof a3);
}

/* One message, two panels side by side: eight vector accumulators, enough independent chains to keep the
 * multiply-add units busy. */
KERNEL_TARGET static inline void FN(panel_pair)(float *restrict z, const float *restrict hz, const float *restrict p, const float *restrict q, int units) {
    FN(vec) a0 = FN(load)(z), a1 = FN(load)(z + KERNEL_W), a2 = FN(load)(z + 2 * KERNEL_W), a3 = FN(load)(z + 3 * KERNEL_W);
    FN(vec) b0 = FN(load)(z + PANEL), b1 = FN(load)(z + PANEL + KERNEL_W), b2 = FN(load)(z + PANEL + 2 * KERNEL_W), b3 = FN(load)(z + PANEL + 3 * KERNEL_W);
    for (int k = 0; k < units; k++, p += PANEL, q += PANEL) {
        const FN(vec) hk = FN(splat)(hz[k]);
        a0 += hk * FN(load)(p);
        a1 += hk * FN(load)(p + KERNEL_W);
        a2 += hk * FN(load)(p + 2 * KERNEL_W);
        a3 += hk * FN(load)(p + 3 * KERNEL_W);
        b0 += hk * FN(load)(q);
        b1 += hk * FN(load)(q + KERNEL_W);
        b2 += hk * FN(load)(q + 2 * KERNEL_W);
        b3 += hk * FN(load)(q + 3 * KERNEL_W);
    }
    __builtin_memcpy(z, &a0, sizeof a0);
    __builtin_memcpy(z + KERNEL_W, &a1, sizeof a1);
    __builtin_memcpy(z + 2 * KERNEL_W, &a2, sizeof a2);
    __builtin_memcpy(z + 3 * KERNEL_W, &a3, sizeof a3);
    __builtin_memcpy(z + PANEL, &b0, sizeof b0);
    __builtin_memcpy(z + PANEL + KERNEL_W, &b1, sizeof b1);
    __builtin_memcpy(z + PANEL + 2 * KERNEL_W, &b2, sizeof b2);
    __builtin_memcpy(z + PANEL + 3 * KERNEL_W, &b3, sizeof b3);
}

/* z += h R for one message: pairs of panels, in the order of `backward` (see PANEL), then the columns past the
 * last full panel. */
KERNEL_TARGET static void FN(recurrent)(float *restrict z, const float *restrict h, const float *restrict hz, const Weights *w, int backward) {
    const int units = w->units, panels = 4 * units / PANEL;
    const size_t size = (size_t)units * PANEL;  /* floats in a panel */
    const float *packed = w->packed;
    if (!backward) {
        int p = 0;
        for (; p + 1 < panels; p += 2)
            FN(panel_pair)(z + p * PANEL, hz, packed + p * size, packed + (p + 1) * size, units);
        if (p < panels)
            FN(panel)(z + p * PANEL, hz, packed + p * size, units);
    } else {
        int p = panels & ~1;
        if (p < panels)
            FN(panel)(z + p * PANEL, hz, packed + p * size, units);
        for (p -= 2; p >= 0; p -= 2)
            FN(panel_pair)(z + p * PANEL, hz, packed + p * size, packed + (p + 1) * size, units);
    }
    if (panels * PANEL < 4 * units)
        FN(recurrent_columns)(z, h, hz, w->recurrent, units, panels * PANEL);
}

KERNEL_TARGET static inline FN(vec) FN(tanh_vec)(FN(vec) v) {
    typedef int ivec __attribute__((vector_size(VEC_BYTES)));
    const FN(vec) hi = (FN(vec)){0} + TANH_CLAMP, lo = -hi;
    ivec below = v < lo, above = v > hi;  /* masks: the clamp as selects, so that it vectorizes on every ISA */
    v = (FN(vec))((below & (ivec)lo) | (~below & (ivec)v));
    v = (FN(vec))((above & (ivec)hi) | (~above & (ivec)v));
    FN(vec) x2 = v * v;
    FN(vec) p = (FN(vec)){0} + TANH_N0;
    p = p * x2 + TANH_N1;
    p = p * x2 + TANH_N2;
    p = p * x2 + TANH_N3;
    p = p * x2 + TANH_N4;
    p = p * x2 + TANH_N5;
    p = p * x2 + TANH_N6;
    FN(vec) q = (FN(vec)){0} + TANH_D0;
    q = q * x2 + TANH_D1;
    q = q * x2 + TANH_D2;
    q = q * x2 + TANH_D3;
    return v * p / q;
}

/* tanh in place over n floats; a tail shorter than a vector goes through a zero-padded vector, so
 * every element takes the same instructions wherever it sits. */
KERNEL_TARGET static void FN(tanh)(float *restrict x, int n) {
    int j = 0;
    for (; j + KERNEL_W <= n; j += KERNEL_W) {
        FN(vec) v = FN(tanh_vec)(FN(load)(x + j));
        __builtin_memcpy(x + j, &v, sizeof v);
    }
    if (j < n) {
        float tail[KERNEL_W] = {0};
        memcpy(tail, x + j, (size_t)(n - j) * sizeof(float));
        FN(vec) v = FN(tanh_vec)(FN(load)(tail));
        memcpy(x + j, &v, (size_t)(n - j) * sizeof(float));
    }
}

/* The recurrent product of two messages at once, each exactly as FN(recurrent) computes it (every
 * column: its input, then + h[k] R[k, j] for k = 0..u-1 in order), sharing each load of R: a panel at a
 * time, in the order of `backward`. */
KERNEL_TARGET static void FN(recurrent2)(const Step *a, const Step *b, const Weights *w, int backward) {
    float *restrict za = a->z, *restrict zb = b->z;
    const float *restrict ha = a->hz, *restrict hb = b->hz;
    const int units = w->units, panels = 4 * units / PANEL;
    for (int i = 0; i < panels; i++) {
        const int j0 = (backward ? panels - 1 - i : i) * PANEL;
        float *restrict xa = za + j0, *restrict xb = zb + j0;
        FN(vec) a0 = FN(load)(xa), a1 = FN(load)(xa + KERNEL_W), a2 = FN(load)(xa + 2 * KERNEL_W), a3 = FN(load)(xa + 3 * KERNEL_W);
        FN(vec) b0 = FN(load)(xb), b1 = FN(load)(xb + KERNEL_W), b2 = FN(load)(xb + 2 * KERNEL_W), b3 = FN(load)(xb + 3 * KERNEL_W);
        const float *r = w->packed + (size_t)j0 * units;
        for (int k = 0; k < units; k++, r += PANEL) {
            const FN(vec) r0 = FN(load)(r), r1 = FN(load)(r + KERNEL_W), r2 = FN(load)(r + 2 * KERNEL_W), r3 = FN(load)(r + 3 * KERNEL_W);
            const FN(vec) hak = FN(splat)(ha[k]), hbk = FN(splat)(hb[k]);
            a0 += hak * r0;
            a1 += hak * r1;
            a2 += hak * r2;
            a3 += hak * r3;
            b0 += hbk * r0;
            b1 += hbk * r1;
            b2 += hbk * r2;
            b3 += hbk * r3;
        }
        __builtin_memcpy(xa, &a0, sizeof a0);
        __builtin_memcpy(xa + KERNEL_W, &a1, sizeof a1);
        __builtin_memcpy(xa + 2 * KERNEL_W, &a2, sizeof a2);
        __builtin_memcpy(xa + 3 * KERNEL_W, &a3, sizeof a3);
        __builtin_memcpy(xb, &b0, sizeof b0);
        __builtin_memcpy(xb + KERNEL_W, &b1, sizeof b1);
        __builtin_memcpy(xb + 2 * KERNEL_W, &b2, sizeof b2);
        __builtin_memcpy(xb + 3 * KERNEL_W, &b3, sizeof b3);
    }
    if (panels * PANEL < 4 * units) {  /* the columns past the last full panel, as FN(recurrent) runs them */
        FN(recurrent_columns)(za, a->h, ha, w->recurrent, units, panels * PANEL);
        FN(recurrent_columns)(zb, b->h, hb, w->recurrent, units, panels * PANEL);
    }
}

#if VEC_BYTES == 64
/* Four messages at once (AVX-512 alone has the 32 registers: 16 accumulators, 4 vectors of R, a broadcast),
 * each exactly as FN(recurrent) computes it, sharing each load of R among four. */
KERNEL_TARGET static void FN(recurrent4)(const Step *s, const Weights *w, int backward) {
    const int units = w->units, panels = 4 * units / PANEL;
    for (int i = 0; i < panels; i++) {
        const int j0 = (backward ? panels - 1 - i : i) * PANEL;
        FN(vec) a[4][4];
        for (int m = 0; m < 4; m++)
            for (int v = 0; v < 4; v++)
                a[m][v] = FN(load)(s[m].z + j0 + v * KERNEL_W);
        const float *r = w->packed + (size_t)j0 * units;
        const float *h0 = s[0].hz, *h1 = s[1].hz, *h2 = s[2].hz, *h3 = s[3].hz;
        for (int k = 0; k < units; k++, r += PANEL) {
            const FN(vec) r0 = FN(load)(r), r1 = FN(load)(r + KERNEL_W), r2 = FN(load)(r + 2 * KERNEL_W), r3 = FN(load)(r + 3 * KERNEL_W);
            FN(vec) x = FN(splat)(h0[k]);
            a[0][0] += x * r0; a[0][1] += x * r1; a[0][2] += x * r2; a[0][3] += x * r3;
            x = FN(splat)(h1[k]);
            a[1][0] += x * r0; a[1][1] += x * r1; a[1][2] += x * r2; a[1][3] += x * r3;
            x = FN(splat)(h2[k]);
            a[2][0] += x * r0; a[2][1] += x * r1; a[2][2] += x * r2; a[2][3] += x * r3;
            x = FN(splat)(h3[k]);
            a[3][0] += x * r0; a[3][1] += x * r1; a[3][2] += x * r2; a[3][3] += x * r3;
        }
        for (int m = 0; m < 4; m++)
            for (int v = 0; v < 4; v++)
                __builtin_memcpy(s[m].z + j0 + v * KERNEL_W, &a[m][v], sizeof a[m][v]);
    }
    if (panels * PANEL < 4 * units)
        for (int m = 0; m < 4; m++)
            FN(recurrent_columns)(s[m].z, s[m].h, s[m].hz, w->recurrent, units, panels * PANEL);
}
#endif

/* The message's state after its pads (the primed state); returns where its real tokens start. */
KERNEL_TARGET static int FN(start)(const int32_t *restrict ids, const Weights *w, float *restrict h, float *restrict c) {
    int length = 0;
    for (int t = 0; t < w->maxlen; t++)
        length += ids[t] != 0;
    const int start = w->maxlen - length;
    memcpy(h, w->primed_h + (size_t)start * w->units, w->units * sizeof(float));
    memcpy(c, w->primed_c + (size_t)start * w->units, w->units * sizeof(float));
    return start;
}

/* z := the token's row of the folded input table (an int8 row: q x scale, then the gate halving, as
 * the NumPy loader computes the float table). */
KERNEL_TARGET static void FN(lookup)(const Weights *w, int32_t token, float *restrict z) {
    const int gates = 4 * w->units;
    const size_t row = (size_t)token;
    if (w->table_q) {
        const int8_t *q = w->table_q + row * gates;
        const float scale = w->table_scale[row];
        for (int j = 0; j < gates; j++)
            z[j] = ((float)q[j] * scale) * w->half[j];
    } else {
        memcpy(z, w->table + row * gates, gates * sizeof(float));
    }
}

/* The gates from z, then the new c and h. */
KERNEL_TARGET static void FN(update)(const Weights *w, const Step *s) {
    float *restrict z = s->z, *restrict h = s->h, *restrict c = s->c, *restrict hz = s->hz;
    const int units = w->units;
    int j0 = 0;
    for (; j0 + KERNEL_W <= units; j0 += KERNEL_W) {  /* a vector of units at a time: its h is ready while the rest divide */
        const FN(vec) i = (FN(vec)){0} + 0.5f + 0.5f * FN(tanh_vec)(FN(load)(z + j0));
        const FN(vec) f = (FN(vec)){0} + 0.5f + 0.5f * FN(tanh_vec)(FN(load)(z + units + j0));
        const FN(vec) g = FN(tanh_vec)(FN(load)(z + 2 * units + j0));
        const FN(vec) o = FN(tanh_vec)(FN(load)(z + 3 * units + j0));
        const FN(vec) cell = f * FN(load)(c + j0) + i * g;
        const FN(vec) out = FN(tanh_vec)(cell) * ((FN(vec)){0} + 0.5f + 0.5f * o);
        __builtin_memcpy(c + j0, &cell, sizeof cell);
        const FN(vec) plus_zero = (FN(vec)){0} + out;
        __builtin_memcpy(h + j0, &out, sizeof out);
        __builtin_memcpy(hz + j0, &plus_zero, sizeof plus_zero);
    }
    if (j0 < units) {
        const int n = units - j0;
        for (int gate = 0; gate < 4; gate++)
            FN(tanh)(z + gate * units + j0, n);
        for (int j = j0; j < units; j++) {
            const float i = 0.5f + 0.5f * z[j];
            const float f = 0.5f + 0.5f * z[units + j];
            c[j] = f * c[j] + i * z[2 * units + j];
        }
        memcpy(h + j0, c + j0, n * sizeof(float));
        FN(tanh)(h + j0, n);
        for (int j = j0; j < units; j++) {
            h[j] *= 0.5f + 0.5f * z[3 * units + j];
            hz[j] = 0.0f + h[j];
        }
    }
}

KERNEL_TARGET static float FN(output)(const Weights *w, const float *restrict h) {
    float logit = w->dense_bias;
    for (int j = 0; j < w->units; j++)
        logit += h[j] * w->dense_kernel[j];
    return (float)(1.0 / (1.0 + exp(-(double)logit)));
}

/* Asks for the table row of token t (if any) while this step's product runs: the rows of a big vocabulary are
 * seldom in L1 or L2 when their word comes. */
KERNEL_TARGET static inline void FN(prefetch)(const Weights *w, const Step *s, int t) {
    if (t >= w->maxlen)
        return;
    const int gates = 4 * w->units;
    const size_t row = (size_t)s->ids[t];
    if (w->table_q) {
        const int8_t *q = w->table_q + row * gates;
        for (int b = 0; b < gates; b += 64)
            __builtin_prefetch(q + b);
        __builtin_prefetch(w->table_scale + row);
    } else {
        const float *f = w->table + row * gates;
        for (int b = 0; b < gates; b += 16)
            __builtin_prefetch(f + b);
    }
}

/* A message's state from the first of its real tokens on (scratch: STEP_FLOATS x units floats: z, h, c, hz). */
KERNEL_TARGET static void FN(begin)(Step *s, const int32_t *ids, const Weights *w, float *scratch) {
    s->ids = ids;
    s->z = scratch;
    s->h = scratch + 4 * w->units;
    s->c = s->h + w->units;
    s->hz = s->c + w->units;
    s->t = FN(start)(ids, w, s->h, s->c);
    for (int j = 0; j < w->units; j++)
        s->hz[j] = 0.0f + s->h[j];
    FN(prefetch)(w, s, s->t);
}

/* The rest of one message's tokens, alone. */
KERNEL_TARGET static void FN(alone)(Step *s, const Weights *w) {
    for (; s->t < w->maxlen; s->t++) {
        FN(lookup)(w, s->ids[s->t], s->z);
        FN(prefetch)(w, s, s->t + 1);
        FN(recurrent)(s->z, s->h, s->hz, w, s->t & 1);
        FN(update)(w, s);
    }
}

/* Two messages stepping together while both have tokens left (sharing each load of R), then each alone. */
KERNEL_TARGET static void FN(together)(Step *a, Step *b, const Weights *w) {
    for (; a->t < w->maxlen && b->t < w->maxlen; a->t++, b->t++) {
        FN(lookup)(w, a->ids[a->t], a->z);
        FN(lookup)(w, b->ids[b->t], b->z);
        FN(prefetch)(w, a, a->t + 1);
        FN(prefetch)(w, b, b->t + 1);
        FN(recurrent2)(a, b, w, a->t & 1);
        FN(update)(w, a);
        FN(update)(w, b);
    }
    FN(alone)(a, w);
    FN(alone)(b, w);
}

/* The spam probability of one front-padded row of ids; scratch: STEP_FLOATS x units floats. */
KERNEL_TARGET static float FN(one)(const int32_t *restrict ids, const Weights *w, float *restrict scratch) {
    Step s;
    FN(begin)(&s, ids, w, scratch);
    FN(alone)(&s, w);
    return FN(output)(w, s.h);
}

/* Two messages, each through exactly the arithmetic of FN(one) (so each gets the same bits as alone),
 * stepping together while both have tokens left; scratch: 2 x STEP_FLOATS x units floats. */
KERNEL_TARGET static void FN(two)(const int32_t *restrict ids_a, const int32_t *restrict ids_b, const Weights *w, float *restrict scratch,
                                  float *out_a, float *out_b) {
    Step a, b;
    FN(begin)(&a, ids_a, w, scratch);
    FN(begin)(&b, ids_b, w, scratch + STEP_FLOATS * w->units);
    FN(together)(&a, &b, w);
    *out_a = FN(output)(w, a.h);
    *out_b = FN(output)(w, b.h);
}

/* Four messages (best of equal length), each through exactly the arithmetic of FN(one), stepping together while
 * all have tokens left, the rest in a pair or alone; scratch: 4 x STEP_FLOATS x units floats. Without AVX-512's registers: two pairs. */
KERNEL_TARGET static void FN(four)(const int32_t *const *ids, const Weights *w, float *restrict scratch, float *const *out) {
#if VEC_BYTES == 64
    Step s[4];
    for (int m = 0; m < 4; m++)
        FN(begin)(&s[m], ids[m], w, scratch + (size_t)m * STEP_FLOATS * w->units);
    while (s[0].t < w->maxlen && s[1].t < w->maxlen && s[2].t < w->maxlen && s[3].t < w->maxlen) {
        for (int m = 0; m < 4; m++)
            FN(lookup)(w, s[m].ids[s[m].t], s[m].z);
        for (int m = 0; m < 4; m++)
            FN(prefetch)(w, &s[m], s[m].t + 1);
        FN(recurrent4)(s, w, s[0].t & 1);
        for (int m = 0; m < 4; m++) {
            FN(update)(w, &s[m]);
            s[m].t++;
        }
    }
    Step *rest[4];
    int left = 0;
    for (int m = 0; m < 4; m++)
        if (s[m].t < w->maxlen)
            rest[left++] = &s[m];
    if (left >= 2)
        FN(together)(rest[0], rest[1], w);
    if (left == 1 || left == 3)
        FN(alone)(rest[left - 1], w);
    for (int m = 0; m < 4; m++)
        *out[m] = FN(output)(w, s[m].h);
#else
    FN(two)(ids[0], ids[1], w, scratch, out[0], out[1]);
    FN(two)(ids[2], ids[3], w, scratch, out[2], out[3]);
#endif
}

/* The same steps as FN(one), timed by part for the benchmark's profile (not used to score): adds the
 * nanoseconds of the row lookup, the recurrent product, the activations and cell update, and the
 * output layer to times[0..3]. */
KERNEL_TARGET static float FN(profile)(const int32_t *restrict ids, const Weights *w, float *restrict scratch, double *times) {
    Step s;
    double t0 = now_ns(), t1;
    for (FN(begin)(&s, ids, w, scratch); s.t < w->maxlen; s.t++) {
        FN(lookup)(w, s.ids[s.t], s.z);
        FN(prefetch)(w, &s, s.t + 1);
        t1 = now_ns(); times[0] += t1 - t0; t0 = t1;
        FN(recurrent)(s.z, s.h, s.hz, w, s.t & 1);
        t1 = now_ns(); times[1] += t1 - t0; t0 = t1;
        FN(update)(w, &s);
        t1 = now_ns(); times[2] += t1 - t0; t0 = t1;
    }
    const float p = FN(output)(w, s.h);
    times[3] += now_ns() - t0;
    return p;
}

#undef PANEL
#undef KERNEL_W
