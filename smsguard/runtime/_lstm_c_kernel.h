/* The per-message LSTM of _lstm_c.c, included once per instruction set: the including file defines
 * FN(name) (the name with the ISA's suffix), VEC_BYTES (the vector width in bytes) and KERNEL_TARGET (a function
 * attribute: empty for the baseline ISA, target("avx2,fma") for the AVX2 variant). Plain C loops
 * for the elementwise parts (the compiler vectorizes them for the target); the recurrent product,
 * where the time goes, keeps eight vector accumulators in registers over all units.
 *
 * One function runs every message, whatever the batch: a message's probability never depends on
 * its neighbours. Same math as _lstm_numba.py: the i, f, o columns are halved at load, so one tanh
 * gives every gate (sigmoid(x) = 0.5 + 0.5 tanh(x / 2)). */

typedef float FN(vec) __attribute__((vector_size(VEC_BYTES)));
#define KERNEL_W ((int)(VEC_BYTES / sizeof(float)))

KERNEL_TARGET static inline FN(vec) FN(load)(const float *p) {
    FN(vec) v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* Columns j0.. of the recurrent product (past the last full block of 8 or 4 vectors): a vector at a
 * time, then one at a time; the same for one message or two, so leftover columns round alike. */
KERNEL_TARGET static void FN(recurrent_columns)(float *restrict z, const float *restrict h, const float *restrict recurrent, int units, int j0) {
    const int gates = 4 * units;
    for (; j0 + KERNEL_W <= gates; j0 += KERNEL_W) {
        FN(vec) a = FN(load)(z + j0);
        for (int k = 0; k < units; k++)
            a += ((FN(vec)){0} + h[k]) * FN(load)(recurrent + (size_t)k * gates + j0);
        __builtin_memcpy(z + j0, &a, sizeof a);
    }
    for (; j0 < gates; j0++) {
        float acc = z[j0];
        for (int k = 0; k < units; k++)
            acc += h[k] * recurrent[(size_t)k * gates + j0];
        z[j0] = acc;
    }
}

#if VEC_BYTES == 64
/* Sixteen vectors of columns (all 256 of 64 units) in registers over all units: R read once, row after row, in one
 * sequential stream (a tenth faster than two passes of eight here). AVX-512 alone has the 32 registers for it. */
KERNEL_TARGET static void FN(block16)(float *restrict z, const float *restrict h, const float *restrict recurrent, int units, int j0) {
    const int gates = 4 * units;
    FN(vec) a[16];
    for (int i = 0; i < 16; i++)
        a[i] = FN(load)(z + j0 + i * KERNEL_W);
    const float *r = recurrent + j0;
    for (int k = 0; k < units; k++, r += gates) {
        const FN(vec) hk = (FN(vec)){0} + h[k];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            a[i] += hk * FN(load)(r + i * KERNEL_W);
    }
    for (int i = 0; i < 16; i++)
        __builtin_memcpy(z + j0 + i * KERNEL_W, &a[i], sizeof a[i]);
}
#endif

KERNEL_TARGET static void FN(recurrent)(float *restrict z, const float *restrict h, const float *restrict recurrent, int units) {
    const int gates = 4 * units;
    const int block = 8 * KERNEL_W;
    int j0 = 0;
#if VEC_BYTES == 64
    for (; j0 + 16 * KERNEL_W <= gates; j0 += 16 * KERNEL_W)
        FN(block16)(z, h, recurrent, units, j0);
#endif
    for (; j0 + block <= gates; j0 += block) {
        FN(vec) a0 = FN(load)(z + j0), a1 = FN(load)(z + j0 + KERNEL_W), a2 = FN(load)(z + j0 + 2 * KERNEL_W),
                   a3 = FN(load)(z + j0 + 3 * KERNEL_W), a4 = FN(load)(z + j0 + 4 * KERNEL_W), a5 = FN(load)(z + j0 + 5 * KERNEL_W),
                   a6 = FN(load)(z + j0 + 6 * KERNEL_W), a7 = FN(load)(z + j0 + 7 * KERNEL_W);
        const float *r = recurrent + j0;
        for (int k = 0; k < units; k++, r += gates) {
            FN(vec) hk = (FN(vec)){0} + h[k];
            a0 += hk * FN(load)(r);
            a1 += hk * FN(load)(r + KERNEL_W);
            a2 += hk * FN(load)(r + 2 * KERNEL_W);
            a3 += hk * FN(load)(r + 3 * KERNEL_W);
            a4 += hk * FN(load)(r + 4 * KERNEL_W);
            a5 += hk * FN(load)(r + 5 * KERNEL_W);
            a6 += hk * FN(load)(r + 6 * KERNEL_W);
            a7 += hk * FN(load)(r + 7 * KERNEL_W);
        }
        __builtin_memcpy(z + j0, &a0, sizeof a0);
        __builtin_memcpy(z + j0 + KERNEL_W, &a1, sizeof a1);
        __builtin_memcpy(z + j0 + 2 * KERNEL_W, &a2, sizeof a2);
        __builtin_memcpy(z + j0 + 3 * KERNEL_W, &a3, sizeof a3);
        __builtin_memcpy(z + j0 + 4 * KERNEL_W, &a4, sizeof a4);
        __builtin_memcpy(z + j0 + 5 * KERNEL_W, &a5, sizeof a5);
        __builtin_memcpy(z + j0 + 6 * KERNEL_W, &a6, sizeof a6);
        __builtin_memcpy(z + j0 + 7 * KERNEL_W, &a7, sizeof a7);
    }
    if (j0 < gates)
        FN(recurrent_columns)(z, h, recurrent, units, j0);
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
 * column: its input, then + h[k] R[k, j] for k = 0..u-1 in order), sharing each load of R: the
 * product streams R (64 KB for 64 units) from L2, so two messages a pass cost little more than one. */
KERNEL_TARGET static void FN(recurrent2)(float *restrict za, const float *restrict ha, float *restrict zb, const float *restrict hb,
                                         const float *restrict recurrent, int units) {
    const int gates = 4 * units;
    const int block = 4 * KERNEL_W;
    int j0 = 0;
    for (; j0 + block <= gates; j0 += block) {
        FN(vec) a0 = FN(load)(za + j0), a1 = FN(load)(za + j0 + KERNEL_W), a2 = FN(load)(za + j0 + 2 * KERNEL_W), a3 = FN(load)(za + j0 + 3 * KERNEL_W);
        FN(vec) b0 = FN(load)(zb + j0), b1 = FN(load)(zb + j0 + KERNEL_W), b2 = FN(load)(zb + j0 + 2 * KERNEL_W), b3 = FN(load)(zb + j0 + 3 * KERNEL_W);
        const float *r = recurrent + j0;
        for (int k = 0; k < units; k++, r += gates) {
            const FN(vec) r0 = FN(load)(r), r1 = FN(load)(r + KERNEL_W), r2 = FN(load)(r + 2 * KERNEL_W), r3 = FN(load)(r + 3 * KERNEL_W);
            const FN(vec) hak = (FN(vec)){0} + ha[k], hbk = (FN(vec)){0} + hb[k];
            a0 += hak * r0;
            a1 += hak * r1;
            a2 += hak * r2;
            a3 += hak * r3;
            b0 += hbk * r0;
            b1 += hbk * r1;
            b2 += hbk * r2;
            b3 += hbk * r3;
        }
        __builtin_memcpy(za + j0, &a0, sizeof a0);
        __builtin_memcpy(za + j0 + KERNEL_W, &a1, sizeof a1);
        __builtin_memcpy(za + j0 + 2 * KERNEL_W, &a2, sizeof a2);
        __builtin_memcpy(za + j0 + 3 * KERNEL_W, &a3, sizeof a3);
        __builtin_memcpy(zb + j0, &b0, sizeof b0);
        __builtin_memcpy(zb + j0 + KERNEL_W, &b1, sizeof b1);
        __builtin_memcpy(zb + j0 + 2 * KERNEL_W, &b2, sizeof b2);
        __builtin_memcpy(zb + j0 + 3 * KERNEL_W, &b3, sizeof b3);
    }
    if (j0 < gates) {  /* the columns FN(recurrent) leaves to its scalar loop, or runs in its own blocks */
        FN(recurrent_columns)(za, ha, recurrent, units, j0);
        FN(recurrent_columns)(zb, hb, recurrent, units, j0);
    }
}

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
KERNEL_TARGET static void FN(update)(const Weights *w, float *restrict z, float *restrict h, float *restrict c) {
    const int units = w->units;
    FN(tanh)(z, 4 * units);
    for (int j = 0; j < units; j++) {
        const float i = 0.5f + 0.5f * z[j];
        const float f = 0.5f + 0.5f * z[units + j];
        c[j] = f * c[j] + i * z[2 * units + j];
    }
    memcpy(h, c, units * sizeof(float));
    FN(tanh)(h, units);
    for (int j = 0; j < units; j++)
        h[j] *= 0.5f + 0.5f * z[3 * units + j];
}

KERNEL_TARGET static float FN(output)(const Weights *w, const float *restrict h) {
    float logit = w->dense_bias;
    for (int j = 0; j < w->units; j++)
        logit += h[j] * w->dense_kernel[j];
    return (float)(1.0 / (1.0 + exp(-(double)logit)));
}

/* The spam probability of one front-padded row of ids; scratch: 6 x units floats. */
KERNEL_TARGET static float FN(one)(const int32_t *restrict ids, const Weights *w, float *restrict scratch) {
    float *restrict z = scratch, *restrict h = scratch + 4 * w->units, *restrict c = h + w->units;
    for (int t = FN(start)(ids, w, h, c); t < w->maxlen; t++) {
        FN(lookup)(w, ids[t], z);
        FN(recurrent)(z, h, w->recurrent, w->units);
        FN(update)(w, z, h, c);
    }
    return FN(output)(w, h);
}

/* Two messages, each through exactly the arithmetic of FN(one) (so each gets the same bits as alone),
 * stepping together while both have tokens left; scratch: 12 x units floats. */
KERNEL_TARGET static void FN(two)(const int32_t *restrict ids_a, const int32_t *restrict ids_b, const Weights *w, float *restrict scratch,
                                  float *out_a, float *out_b) {
    const int units = w->units;
    float *restrict za = scratch, *restrict ha = za + 4 * units, *restrict ca = ha + units;
    float *restrict zb = ca + units, *restrict hb = zb + 4 * units, *restrict cb = hb + units;
    int ta = FN(start)(ids_a, w, ha, ca), tb = FN(start)(ids_b, w, hb, cb);
    for (; ta < w->maxlen && tb < w->maxlen; ta++, tb++) {
        FN(lookup)(w, ids_a[ta], za);
        FN(lookup)(w, ids_b[tb], zb);
        FN(recurrent2)(za, ha, zb, hb, w->recurrent, units);
        FN(update)(w, za, ha, ca);
        FN(update)(w, zb, hb, cb);
    }
    for (; ta < w->maxlen; ta++) {
        FN(lookup)(w, ids_a[ta], za);
        FN(recurrent)(za, ha, w->recurrent, units);
        FN(update)(w, za, ha, ca);
    }
    for (; tb < w->maxlen; tb++) {
        FN(lookup)(w, ids_b[tb], zb);
        FN(recurrent)(zb, hb, w->recurrent, units);
        FN(update)(w, zb, hb, cb);
    }
    *out_a = FN(output)(w, ha);
    *out_b = FN(output)(w, hb);
}

#undef KERNEL_W

/* The same steps as FN(one), timed by part for the benchmark's profile (not used to score): adds the
 * nanoseconds of the row lookup, the recurrent product, the activations and cell update, and the
 * output layer to times[0..3]. */
KERNEL_TARGET static float FN(profile)(const int32_t *restrict ids, const Weights *w, float *restrict scratch, double *times) {
    float *restrict z = scratch, *restrict h = scratch + 4 * w->units, *restrict c = h + w->units;
    double t0 = now_ns(), t1;
    for (int t = FN(start)(ids, w, h, c); t < w->maxlen; t++) {
        FN(lookup)(w, ids[t], z);
        t1 = now_ns(); times[0] += t1 - t0; t0 = t1;
        FN(recurrent)(z, h, w->recurrent, w->units);
        t1 = now_ns(); times[1] += t1 - t0; t0 = t1;
        FN(update)(w, z, h, c);
        t1 = now_ns(); times[2] += t1 - t0; t0 = t1;
    }
    const float p = FN(output)(w, h);
    times[3] += now_ns() - t0;
    return p;
}

#undef KERNEL_W
