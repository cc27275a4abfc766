/* The per-message LSTM of _lstm_c.c, included once per instruction set: the including file defines
 * KERNEL (the function's name), VEC_BYTES (the vector width in bytes) and KERNEL_TARGET (a function
 * attribute: empty for the baseline ISA, target("avx2,fma") for the AVX2 variant). Plain C loops
 * for the elementwise parts (the compiler vectorizes them for the target); the recurrent product,
 * where the time goes, keeps eight vector accumulators in registers over all units.
 *
 * One function runs every message, whatever the batch: a message's probability never depends on
 * its neighbours. Same math as _lstm_numba.py: the i, f, o columns are halved at load, so one tanh
 * gives every gate (sigmoid(x) = 0.5 + 0.5 tanh(x / 2)). */

typedef float KERNEL_VEC __attribute__((vector_size(VEC_BYTES)));
#define KERNEL_W ((int)(VEC_BYTES / sizeof(float)))

KERNEL_TARGET static inline KERNEL_VEC KERNEL_LOAD(const float *p) {
    KERNEL_VEC v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

KERNEL_TARGET static void KERNEL_RECURRENT(float *restrict z, const float *restrict h, const float *restrict recurrent, int units) {
    const int gates = 4 * units;
    const int block = 8 * KERNEL_W;
    int j0 = 0;
    for (; j0 + block <= gates; j0 += block) {
        KERNEL_VEC a0 = KERNEL_LOAD(z + j0), a1 = KERNEL_LOAD(z + j0 + KERNEL_W), a2 = KERNEL_LOAD(z + j0 + 2 * KERNEL_W),
                   a3 = KERNEL_LOAD(z + j0 + 3 * KERNEL_W), a4 = KERNEL_LOAD(z + j0 + 4 * KERNEL_W), a5 = KERNEL_LOAD(z + j0 + 5 * KERNEL_W),
                   a6 = KERNEL_LOAD(z + j0 + 6 * KERNEL_W), a7 = KERNEL_LOAD(z + j0 + 7 * KERNEL_W);
        const float *r = recurrent + j0;
        for (int k = 0; k < units; k++, r += gates) {
            KERNEL_VEC hk = (KERNEL_VEC){0} + h[k];
            a0 += hk * KERNEL_LOAD(r);
            a1 += hk * KERNEL_LOAD(r + KERNEL_W);
            a2 += hk * KERNEL_LOAD(r + 2 * KERNEL_W);
            a3 += hk * KERNEL_LOAD(r + 3 * KERNEL_W);
            a4 += hk * KERNEL_LOAD(r + 4 * KERNEL_W);
            a5 += hk * KERNEL_LOAD(r + 5 * KERNEL_W);
            a6 += hk * KERNEL_LOAD(r + 6 * KERNEL_W);
            a7 += hk * KERNEL_LOAD(r + 7 * KERNEL_W);
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
    for (; j0 < gates; j0++) {  /* columns past the last full block (units not a multiple of 2 W) */
        float acc = z[j0];
        for (int k = 0; k < units; k++)
            acc += h[k] * recurrent[(size_t)k * gates + j0];
        z[j0] = acc;
    }
}

KERNEL_TARGET static inline KERNEL_VEC KERNEL_TANH_VEC(KERNEL_VEC v) {
    typedef int ivec __attribute__((vector_size(VEC_BYTES)));
    const KERNEL_VEC hi = (KERNEL_VEC){0} + TANH_CLAMP, lo = -hi;
    ivec below = v < lo, above = v > hi;  /* masks: the clamp as selects, so that it vectorizes on every ISA */
    v = (KERNEL_VEC)((below & (ivec)lo) | (~below & (ivec)v));
    v = (KERNEL_VEC)((above & (ivec)hi) | (~above & (ivec)v));
    KERNEL_VEC x2 = v * v;
    KERNEL_VEC p = (KERNEL_VEC){0} + TANH_N0;
    p = p * x2 + TANH_N1;
    p = p * x2 + TANH_N2;
    p = p * x2 + TANH_N3;
    p = p * x2 + TANH_N4;
    p = p * x2 + TANH_N5;
    p = p * x2 + TANH_N6;
    KERNEL_VEC q = (KERNEL_VEC){0} + TANH_D0;
    q = q * x2 + TANH_D1;
    q = q * x2 + TANH_D2;
    q = q * x2 + TANH_D3;
    return v * p / q;
}

/* tanh in place over n floats; a tail shorter than a vector goes through a zero-padded vector, so
 * every element takes the same instructions wherever it sits. */
KERNEL_TARGET static void KERNEL_TANH(float *restrict x, int n) {
    int j = 0;
    for (; j + KERNEL_W <= n; j += KERNEL_W) {
        KERNEL_VEC v = KERNEL_TANH_VEC(KERNEL_LOAD(x + j));
        __builtin_memcpy(x + j, &v, sizeof v);
    }
    if (j < n) {
        float tail[KERNEL_W] = {0};
        memcpy(tail, x + j, (size_t)(n - j) * sizeof(float));
        KERNEL_VEC v = KERNEL_TANH_VEC(KERNEL_LOAD(tail));
        memcpy(x + j, &v, (size_t)(n - j) * sizeof(float));
    }
}

/* The spam probability of one front-padded row of ids; scratch is 6 x units floats. */
KERNEL_TARGET static float KERNEL(const int32_t *restrict ids, const Weights *w, float *restrict scratch) {
    const int units = w->units, gates = 4 * units, maxlen = w->maxlen;
    float *restrict z = scratch, *restrict h = scratch + gates, *restrict c = h + units;
    int length = 0;
    for (int t = 0; t < maxlen; t++)
        length += ids[t] != 0;
    const int start = maxlen - length;
    memcpy(h, w->primed_h + (size_t)start * units, units * sizeof(float));
    memcpy(c, w->primed_c + (size_t)start * units, units * sizeof(float));
    for (int t = start; t < maxlen; t++) {
        const size_t row = (size_t)ids[t];
        if (w->table_q) {  /* int8 rows: q x scale, then the gate halving, as the NumPy loader computes the float table */
            const int8_t *q = w->table_q + row * gates;
            const float scale = w->table_scale[row];
            for (int j = 0; j < gates; j++)
                z[j] = ((float)q[j] * scale) * w->half[j];
        } else {
            memcpy(z, w->table + row * gates, gates * sizeof(float));
        }
        KERNEL_RECURRENT(z, h, w->recurrent, units);
        KERNEL_TANH(z, gates);
        for (int j = 0; j < units; j++) {
            const float i = 0.5f + 0.5f * z[j];
            const float f = 0.5f + 0.5f * z[units + j];
            c[j] = f * c[j] + i * z[2 * units + j];
        }
        memcpy(h, c, units * sizeof(float));
        KERNEL_TANH(h, units);
        for (int j = 0; j < units; j++)
            h[j] *= 0.5f + 0.5f * z[3 * units + j];
    }
    float logit = w->dense_bias;
    for (int j = 0; j < units; j++)
        logit += h[j] * w->dense_kernel[j];
    return (float)(1.0 / (1.0 + exp(-(double)logit)));
}

#undef KERNEL_W
