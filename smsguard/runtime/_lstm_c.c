/* smsguard.runtime._lstm_c: the folded, pad-primed LSTM of the .npz models in C (the "native" backend).
 *
 *   model = Model(table, table_scale, recurrent, dense_kernel, dense_bias, primed_h, primed_c, isa="auto",
 *                 *, ngram_scores=None, ngram_bias=0.0, ngram_length=0)
 *   model.run(ids, out)   # ids: int32 (n, maxlen + ngram_length), C order; out: float32 (n,), written
 *
 * `table` is float32 (num_words, 4u) with the i, f, o columns already halved, or int8 (num_words, 4u)
 * with `table_scale` float32 (num_words,) (the halving is applied per row as it is read). `recurrent`
 * is float32 (u, 4u), halved likewise; `primed_h`/`primed_c` float32 (maxlen + 1, u). See _lstm.py.
 *
 * A fused model also gives its n-gram branch, folded: `ngram_scores` float32 (buckets + 1,) with
 * ngram_scores[0] == 0, `ngram_bias`, and `ngram_length`, the n-gram ids after the word ids of a row.
 * Each message is then the mean of the LSTM's probability and sigmoid(ngram_bias + the mean score of
 * its non-zero n-gram ids), computed in float32 as NgramBranch.fuse computes it (its sum in NumPy's
 * pairwise order): one call a message, whatever the batch.
 *
 * CPython's limited API (the stable ABI, `abi3`) as of 3.11, and the buffer protocol: no NumPy headers, no
 * BLAS, no threads of its own. The GIL is released while messages run, so threads sharing a Model run in
 * parallel. Built by setuptools as an optional extension with portable flags; vectorized with what the
 * baseline ISA guarantees (SSE2 on x86-64, NEON/ASIMD on aarch64) plus AVX2+FMA and AVX-512 variants
 * chosen at run time on x86-64 (the same bits as AVX2's: each lane does the same fused multiply-adds).
 *
 * From text to probability in one call: a vocabulary's rules for ASCII text (the normaliser's join rule,
 * the Keras word tokenizer over the frozen word index, the bag below; _lstm_c_text.h) in a Featuriser,
 * which Vocabulary.featuriser makes, and
 *
 *   model.run_texts(featuriser, texts, out)  # texts: a list of ASCII str, or of (words, bag) UTF-8 bytes
 *                                            # that Python prepared for a text that is not ASCII
 *   featuriser.encode(texts, out)            # the same texts' rows of model input, int32 (n, width)
 *
 * run_texts featurises and scores with the GIL released throughout; a call allocates nothing for a short
 * text (its scratch is on the stack).
 *
 * The same extension computes the hashed character n-grams ("the bag", spec and reference in _ngrams.py):
 *
 *   count = ngram_ids(text, buckets, min_n, max_n, lower, out)   # one message; out: int32 (limit,)
 *   ngram_rows(texts, buckets, min_n, max_n, lower, out)         # a list of them; out: int32 (n, limit), rows
 *                                                                # contiguous (C order, or columns of a wider array)
 *
 * A text is an ASCII str as it is, or any other text lowered (if `lower`), split on Python's whitespace,
 * joined by spaces and encoded in UTF-8 (surrogatepass): C knows only ASCII whitespace and, with `lower`,
 * lowers only ASCII letters (all that str.lower() does to ASCII). Each row gets the ids, then zeros.
 * The GIL is released over more than 16 KB of text; no allocation per n-gram, none per message. */

/* The stable ABI. setup.py defines Py_LIMITED_API=0x030B0000 on Python 3.11 and later, so one wheel
 * (cp311-abi3) serves every later CPython; 3.10 builds a version-specific module from the sdist (its
 * limited API lacks the buffer protocol). Whatever is added to this file (the n-gram bag, a word
 * tokenizer) must stay within the 3.11 limited API: no static PyTypeObject (PyType_FromSpec), no direct
 * access to object structs (tp_name, PyUnicode_DATA, PySequence_Fast_ITEMS, PyBytes_AS_STRING, ...), only
 * functions and macros that <Python.h> declares under Py_LIMITED_API. Building with the define checks it:
 * a struct's fields do not compile, and a call outside the limited API is an implicit declaration, which
 * -Werror=implicit-function-declaration in setup.py turns into a failed build. Code that needs 3.10 too
 * (built without the define, from the sdist) keeps a PY_VERSION_HEX branch, as text_of does. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(__GNUC__)
#error "smsguard's native kernel needs GCC or Clang vector extensions; the NumPy backend runs instead"
#endif

/* Eigen's single-precision rational tanh (also ONNX Runtime's MLAS): within 3e-7 of tanh. */
#define TANH_CLAMP 7.90531110763549805f
#define TANH_N0 -2.76076847742355e-16f
#define TANH_N1 2.00018790482477e-13f
#define TANH_N2 -8.60467152213735e-11f
#define TANH_N3 5.12229709037114e-08f
#define TANH_N4 1.48572235717979e-05f
#define TANH_N5 6.37261928875436e-04f
#define TANH_N6 4.89352455891786e-03f
#define TANH_D0 1.19825839466702e-06f
#define TANH_D1 1.18534705686654e-04f
#define TANH_D2 2.26843463243900e-03f
#define TANH_D3 4.89352518554385e-03f

typedef struct {
    int units, maxlen;
    Py_ssize_t rows;
    const float *table;       /* NULL for an int8 table */
    const int8_t *table_q;    /* NULL for a float table */
    const float *table_scale;
    const float *recurrent, *dense_kernel, *primed_h, *primed_c;
    const float *packed;      /* R again, in the chosen kernel's panels (its FN(pack)); the columns past the last panel only in R */
    void *packed_memory;
    float dense_bias;
    float *half;              /* 4u: 0.5 for the i, f, o columns, 1 for c */
    const float *ngram_scores; /* a fused model's n-gram branch (NULL for a word model): buckets + 1 scores */
    Py_ssize_t ngram_ids;     /* len(ngram_scores): n-gram ids are 0..ngram_ids - 1 */
    Py_ssize_t ngram_length;  /* n-gram ids per row, after the maxlen word ids (0 for a word model) */
    float ngram_bias;
} Weights;

/* A message on its way through the kernel: its word ids, its z (4u), h, c and hz = 0 + h (u each: what the recurrent
 * product multiplies by), and its next token. */
typedef struct {
    const int32_t *ids;
    float *z, *h, *c, *hz;
    int t;
} Step;

#define STEP_FLOATS 7  /* a Step's floats, in units */

typedef float (*Kernel)(const int32_t *, const Weights *, float *);
typedef void (*Pair)(const int32_t *, const int32_t *, const Weights *, float *, float *, float *);
typedef void (*Quad)(const int32_t *const *, const Weights *, float *, float *const *);
typedef int (*Packer)(Weights *);
typedef float (*Profiler)(const int32_t *, const Weights *, float *, double *);

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- the kernels: baseline ISA, and AVX2+FMA on x86-64 ---------------------------------------- */

#define FN(name) name##_baseline
#define VEC_BYTES 16
#define KERNEL_TARGET
#include "_lstm_c_kernel.h"
#undef FN
#undef VEC_BYTES
#undef KERNEL_TARGET

#if defined(__x86_64__) || defined(_M_X64)
#define HAVE_AVX2 1
#define FN(name) name##_avx2
#define VEC_BYTES 32
#define KERNEL_TARGET __attribute__((target("avx2,fma")))
#include "_lstm_c_kernel.h"
#undef FN
#undef VEC_BYTES
#undef KERNEL_TARGET
/* Twice the lanes of AVX2 with the same arithmetic in each lane (every product a fused multiply-add, in the same order),
 * so the same bits (tests/test_native.py holds the two against each other); a quarter less time a token here. */
#define FN(name) name##_avx512
#define VEC_BYTES 64
#define KERNEL_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#include "_lstm_c_kernel.h"
#undef FN
#undef VEC_BYTES
#undef KERNEL_TARGET
#else
#define HAVE_AVX2 0
#endif

static const char *baseline_name(void) {
#if defined(__x86_64__) || defined(_M_X64)
    return "sse2";
#elif defined(__aarch64__)
    return "neon";
#else
    return "generic";
#endif
}

static int avx2_available(void) {
#if HAVE_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int avx512_available(void) {
#if HAVE_AVX2
    __builtin_cpu_init();
    return avx2_available() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* The instruction set "auto" picks on this CPU. */
static const char *best_name(void) {
    return avx512_available() ? "avx512" : avx2_available() ? "avx2+fma" : baseline_name();
}

/* ---- a fused model's n-gram branch ----------------------------------------------------------------- */

/* The float32 sum of scores[ids[0..n-1]] in NumPy's pairwise order (its `pairwise_sum` in umath: up to 8
 * terms in a row; up to 128 in eight interleaved partial sums; more split in two at a multiple of 8), so
 * that it has the bits of `scores[ids].sum(axis=1, dtype=np.float32)` in NgramBranch.fuse. Plain C
 * without -ffast-math: the compiler may not reassociate it.
 *
 * ids[live..n-1] are 0 (a row's padding), whose score is a zero: their terms are left out, a partial sum they
 * would have joined kept as 0.0f. Adding a zero changes no sum that is not zero, and a sum that is zero is zero
 * either way, up to its sign, which the caller's 0.0f + sum then makes +0: the same bits. */
static float gathered_sum(const float *scores, const int32_t *ids, Py_ssize_t n, Py_ssize_t live) {
    if (live <= 0)
        return 0.0f;
    if (live > n)
        live = n;
    if (n < 8) {
        float sum = 0.0f;
        for (Py_ssize_t i = 0; i < live; i++)
            sum += scores[ids[i]];
        return sum;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++)
            r[j] = j < live ? scores[ids[j]] : 0.0f;
        const Py_ssize_t body = n - (n % 8);
        for (Py_ssize_t i = 8; i < body && i < live; i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += scores[ids[i + j]];
        float sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (Py_ssize_t i = body; i < live; i++)
            sum += scores[ids[i]];
        return sum;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return gathered_sum(scores, ids, half, live) + gathered_sum(scores, ids + half, n - half, live - half);
}

/* How many of ids[0..n-1] there are up to the last that is not 0. */
static Py_ssize_t live_ids(const int32_t *ids, Py_ssize_t n) {
    while (n > 0 && ids[n - 1] == 0)
        n--;
    return n;
}

/* The fused probability of a message from its LSTM probability and its n-gram ids (checked): the mean
 * of the two branches, the n-gram one sigmoid(bias + the mean score of the non-zero ids, 0 for none). */
static float ngram_probability(const Weights *w, const int32_t *ngram_ids, Py_ssize_t live) {
    const float total = 0.0f + gathered_sum(w->ngram_scores, ngram_ids, w->ngram_length, live);  /* NumPy starts from 0 */
    Py_ssize_t count = 0;
    for (Py_ssize_t j = 0; j < live; j++)
        count += ngram_ids[j] != 0;
    return 1.0f / (1.0f + expf(-(w->ngram_bias + total / (float)(count > 1 ? count : 1))));
}

static inline float fused(float word, float ngram) {
    return (word + ngram) * 0.5f;
}

static float fuse(const Weights *w, const int32_t *ngram_ids, float word) {
    return fused(word, ngram_probability(w, ngram_ids, live_ids(ngram_ids, w->ngram_length)));
}

/* The index of the first of ids[0..n-1] outside 0..limit - 1, or -1: a scan without branches first
 * (which the compiler vectorizes; most rows are good), then the search. */
static Py_ssize_t first_bad(const int32_t *ids, Py_ssize_t n, Py_ssize_t limit) {
    const uint32_t top = limit < ((Py_ssize_t)1 << 31) ? (uint32_t)limit : (uint32_t)1 << 31;  /* a negative id is above it */
    uint32_t any = 0;
    for (Py_ssize_t j = 0; j < n; j++)
        any |= (uint32_t)ids[j] >= top;
    if (any)
        for (Py_ssize_t j = 0; j < n; j++)
            if ((uint32_t)ids[j] >= top)
                return j;
    return -1;
}

/* ---- the Model type ------------------------------------------------------------------------------- */

enum { TABLE, SCALE, RECURRENT, DENSE, PRIMED_H, PRIMED_C, NGRAM_SCORES, VIEWS };

typedef struct {
    PyObject_HEAD
    Weights w;
    Py_buffer views[VIEWS];
    int held[VIEWS];
    Kernel kernel;
    Pair pair;
    Quad quad;
    Profiler profiler;
    const char *isa;
} Model;

static void Model_dealloc(Model *self) {
    for (int i = 0; i < VIEWS; i++)
        if (self->held[i])
            PyBuffer_Release(&self->views[i]);
    free(self->w.half);
    free(self->w.packed_memory);
    PyTypeObject *type = Py_TYPE((PyObject *)self);  /* a heap type (PyType_FromSpec): its instances hold a reference to it */
    freefunc free_object = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free_object(self);
    Py_DECREF(type);
}

/* A C-contiguous buffer of `format` with `ndim` dimensions; returns 0 or sets an exception. */
static int take(Model *self, int slot, PyObject *obj, const char *name, char format, int ndim) {
    if (PyObject_GetBuffer(obj, &self->views[slot], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    self->held[slot] = 1;
    Py_buffer *v = &self->views[slot];
    const char *f = v->format ? v->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@')
        f++;
    if (f[0] != format || f[1] != '\0' || v->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %d-D array of format '%c', found format '%s' with %d dimensions",
                     name, ndim, format, v->format ? v->format : "B", v->ndim);
        return -1;
    }
    return 0;
}

/* The LSTM's arrays as buffers this Model holds, their shapes checked; 0 or an exception. */
static int take_lstm(Model *self, PyObject *table, PyObject *scale, PyObject *recurrent, PyObject *dense, PyObject *primed_h, PyObject *primed_c) {
    if (take(self, RECURRENT, recurrent, "recurrent", 'f', 2) || take(self, DENSE, dense, "dense_kernel", 'f', 1) ||
        take(self, PRIMED_H, primed_h, "primed_h", 'f', 2) || take(self, PRIMED_C, primed_c, "primed_c", 'f', 2))
        return -1;
    const int quantized = scale != Py_None;
    if (take(self, TABLE, table, "table", quantized ? 'b' : 'f', 2) || (quantized && take(self, SCALE, scale, "table_scale", 'f', 1)))
        return -1;
    const Py_ssize_t *rs = self->views[RECURRENT].shape, *ts = self->views[TABLE].shape, *ps = self->views[PRIMED_H].shape;
    const Py_ssize_t units = rs[0];
    const int ok = units > 0 && units <= 4096 && rs[1] == 4 * units && ts[1] == 4 * units && ts[0] > 0 &&
                   self->views[DENSE].shape[0] == units && ps[0] >= 2 && ps[0] <= 100001 && ps[1] == units &&
                   self->views[PRIMED_C].shape[0] == ps[0] && self->views[PRIMED_C].shape[1] == units &&
                   (!quantized || self->views[SCALE].shape[0] == ts[0]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "inconsistent LSTM array shapes");
        return -1;
    }
    return 0;
}

/* A fused model's n-gram scores (None for a word model) as a buffer this Model holds, checked; 0 or an exception. */
static int take_ngram_branch(Model *self, PyObject *ngram_scores, Py_ssize_t ngram_length) {
    const int fused = ngram_scores != Py_None;
    if (fused && take(self, NGRAM_SCORES, ngram_scores, "ngram_scores", 'f', 1))
        return -1;
    if (!fused && ngram_length != 0) {
        PyErr_Format(PyExc_ValueError, "ngram_length %zd needs ngram_scores", ngram_length);
        return -1;
    }
    if (fused && (ngram_length < 1 || ngram_length > INT32_MAX)) {
        PyErr_Format(PyExc_ValueError, "ngram_length must be from 1 to %d, found %zd", INT32_MAX, ngram_length);
        return -1;
    }
    if (fused && (self->views[NGRAM_SCORES].shape[0] < 1 || ((const float *)self->views[NGRAM_SCORES].buf)[0] != 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "ngram_scores must be a vector whose first (padding) score is 0");
        return -1;
    }
    return 0;
}

/* The kernel's view of the held buffers; 0, or -1 with MemoryError. */
static int set_weights(Model *self, float dense_bias, float ngram_bias, Py_ssize_t ngram_length) {
    Weights *w = &self->w;
    const int fused = self->held[NGRAM_SCORES], quantized = self->held[SCALE];
    const Py_ssize_t units = self->views[RECURRENT].shape[0];
    w->ngram_scores = fused ? (const float *)self->views[NGRAM_SCORES].buf : NULL;
    w->ngram_ids = fused ? self->views[NGRAM_SCORES].shape[0] : 0;
    w->ngram_length = fused ? ngram_length : 0;
    w->ngram_bias = ngram_bias;
    w->units = (int)units;
    w->maxlen = (int)(self->views[PRIMED_H].shape[0] - 1);
    w->rows = self->views[TABLE].shape[0];
    w->table = quantized ? NULL : (const float *)self->views[TABLE].buf;
    w->table_q = quantized ? (const int8_t *)self->views[TABLE].buf : NULL;
    w->table_scale = quantized ? (const float *)self->views[SCALE].buf : NULL;
    w->recurrent = (const float *)self->views[RECURRENT].buf;
    w->dense_kernel = (const float *)self->views[DENSE].buf;
    w->primed_h = (const float *)self->views[PRIMED_H].buf;
    w->primed_c = (const float *)self->views[PRIMED_C].buf;
    w->dense_bias = dense_bias;
    w->half = malloc(4 * units * sizeof(float));
    if (!w->half) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < 4 * units; j++)
        w->half[j] = (j >= 2 * units && j < 3 * units) ? 1.0f : 0.5f;
    return 0;
}

/* R in the panels of the chosen kernel; 0, or -1 with MemoryError. */
static int packed(Model *self, Packer pack) {
    if (pack(&self->w) == 0)
        return 0;
    PyErr_NoMemory();
    return -1;
}

/* The kernels for `isa`: "avx512", "avx2" (refused where the CPU lacks it), "baseline", or "auto": the widest this
 * CPU has. 0 or an exception. */
static int choose_isa(Model *self, const char *isa) {
    const int automatic = strcmp(isa, "auto") == 0, avx512 = strcmp(isa, "avx512") == 0, avx2 = strcmp(isa, "avx2") == 0;
    if (!automatic && !avx512 && !avx2 && strcmp(isa, "baseline") != 0) {
        PyErr_Format(PyExc_ValueError, "isa must be 'auto', 'avx512', 'avx2' or 'baseline', found '%s'", isa);
        return -1;
    }
    if ((avx512 && !avx512_available()) || (avx2 && !avx2_available())) {
        PyErr_Format(PyExc_ValueError, "this CPU (or build) has no %s", avx512 ? "AVX-512" : "AVX2+FMA");
        return -1;
    }
    Packer pack;
#if HAVE_AVX2
    if (avx512 || (automatic && avx512_available())) {
        self->kernel = one_avx512;
        self->pair = two_avx512;
        self->quad = four_avx512;
        pack = pack_avx512;
        self->profiler = profile_avx512;
        self->isa = "avx512";
        return packed(self, pack);
    }
    if (avx2 || (automatic && avx2_available())) {
        self->kernel = one_avx2;
        self->pair = two_avx2;
        self->quad = four_avx2;
        pack = pack_avx2;
        self->profiler = profile_avx2;
        self->isa = "avx2+fma";
        return packed(self, pack);
    }
#endif
    self->kernel = one_baseline;
    self->pair = two_baseline;
    self->quad = four_baseline;
    pack = pack_baseline;
    self->profiler = profile_baseline;
    self->isa = baseline_name();
    return packed(self, pack);
}

static int Model_init(Model *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"table", "table_scale", "recurrent", "dense_kernel", "dense_bias", "primed_h", "primed_c", "isa",
                               "ngram_scores", "ngram_bias", "ngram_length", NULL};
    PyObject *table, *scale, *recurrent, *dense, *primed_h, *primed_c, *ngram_scores = Py_None;
    float bias, ngram_bias = 0.0f;
    Py_ssize_t ngram_length = 0;
    const char *isa = "auto";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOfOO|s$Ofn", keywords, &table, &scale, &recurrent, &dense, &bias, &primed_h, &primed_c, &isa,
                                     &ngram_scores, &ngram_bias, &ngram_length))
        return -1;
    if (self->kernel) {
        PyErr_SetString(PyExc_RuntimeError, "Model is already initialized");
        return -1;
    }
    if (take_lstm(self, table, scale, recurrent, dense, primed_h, primed_c) || take_ngram_branch(self, ngram_scores, ngram_length) ||
        set_weights(self, bias, ngram_bias, ngram_length) || choose_isa(self, isa))
        return -1;
    return 0;
}

static PyObject *score(Model *self, PyObject *ids_obj, PyObject *out_obj, double *times);
static PyObject *Model_run_texts(Model *self, PyObject *const *args, Py_ssize_t nargs);

static PyObject *Model_run(Model *self, PyObject *args) {
    PyObject *ids_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO:run", &ids_obj, &out_obj))
        return NULL;
    return score(self, ids_obj, out_obj, NULL);
}

static PyObject *Model_profile(Model *self, PyObject *args) {
    PyObject *ids_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO:profile", &ids_obj, &out_obj))
        return NULL;
    double times[5] = {0, 0, 0, 0, 0};
    PyObject *done = score(self, ids_obj, out_obj, times);
    if (!done)
        return NULL;
    Py_DECREF(done);
    double begin = now_ns();
    for (int i = 0; i < 10000; i++)
        now_ns();
    const double timer = (now_ns() - begin) / 10001;  /* what one reading of the clock adds to each part */
    PyObject *parts = Py_BuildValue("{s:d,s:d,s:d,s:d,s:d}", "lookup_ns", times[0], "recurrence_ns", times[1], "activations_ns", times[2], "output_ns", times[3], "timer_ns", timer);
    if (parts && self->w.ngram_scores) {  /* a fused model: its n-gram gather, mean and fusion too */
        PyObject *ngram = PyFloat_FromDouble(times[4]);
        if (!ngram || PyDict_SetItemString(parts, "ngram_ns", ngram) < 0)
            Py_CLEAR(parts);
        Py_XDECREF(ngram);
    }
    return parts;
}

/* One id of a row outside the model's ranges, as an index into the rows (row * width + column), or -1. */
static Py_ssize_t first_bad_id(const Weights *w, const int32_t *rows, Py_ssize_t n) {
    const Py_ssize_t width = w->maxlen + w->ngram_length;
    for (Py_ssize_t m = 0; m < n; m++) {
        const int32_t *row = rows + m * width;
        Py_ssize_t j = first_bad(row, w->maxlen, w->rows);
        if (j < 0 && w->ngram_scores && (j = first_bad(row + w->maxlen, w->ngram_length, w->ngram_ids)) >= 0)
            j += w->maxlen;
        if (j >= 0)
            return m * width + j;
    }
    return -1;
}

/* The ValueError for an id outside the model's ranges: `value`, at `column` of the row of message `message`. */
static void bad_id_error(const Weights *w, int32_t value, Py_ssize_t message, Py_ssize_t column) {
    if (column < w->maxlen)
        PyErr_Format(PyExc_ValueError, "token id %d at row %zd is outside the model's vocabulary of %zd ids", value, message, w->rows);
    else
        PyErr_Format(PyExc_ValueError, "n-gram id %d at row %zd is outside the model's n-gram ids 0..%zd", value, message, w->ngram_ids - 1);
}

#define WINDOW 64  /* messages gathered, then run in order of length: four of like length step together to their ends */

/* A message waiting for the kernel: its word ids, where its probability goes, its real tokens, and (a fused model)
 * its n-gram branch's probability. */
typedef struct {
    const int32_t *ids;
    float *out;
    int length;
    float ngram;
} Pending;

static int real_tokens(const int32_t *ids, int maxlen) {
    int length = 0;
    for (int t = 0; t < maxlen; t++)
        length += ids[t] != 0;
    return length;
}

/* The LSTM probability of each of p[0..n-1] into its out, four at a time (two without AVX-512) in order of length, so
 * that few steps run with fewer messages; each message with the arithmetic of one alone, whatever its company. */
static void run_pending(const Model *self, Pending *p, int n, float *scratch) {
    for (int i = 1; i < n; i++) {  /* insertion sort by length: a window is small */
        const Pending x = p[i];
        int j = i;
        for (; j > 0 && p[j - 1].length > x.length; j--)
            p[j] = p[j - 1];
        p[j] = x;
    }
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t *ids[4] = {p[i].ids, p[i + 1].ids, p[i + 2].ids, p[i + 3].ids};
        float *out[4] = {p[i].out, p[i + 1].out, p[i + 2].out, p[i + 3].out};
        self->quad(ids, &self->w, scratch, out);
    }
    for (; i + 2 <= n; i += 2)
        self->pair(p[i].ids, p[i + 1].ids, &self->w, scratch, p[i].out, p[i + 1].out);
    if (i < n)
        *p[i].out = self->kernel(p[i].ids, &self->w, scratch);
}

/* The probabilities of n checked rows, WINDOW at a time through run_pending, then a fused model's n-gram branch, each
 * message's own whatever the batch. */
static void run_rows(const Model *self, const int32_t *rows, Py_ssize_t n, float *out, float *scratch) {
    const Weights *w = &self->w;
    const Py_ssize_t width = w->maxlen + w->ngram_length;
    Pending pending[WINDOW];
    for (Py_ssize_t m0 = 0; m0 < n; m0 += WINDOW) {
        const int count = n - m0 < WINDOW ? (int)(n - m0) : WINDOW;
        for (int i = 0; i < count; i++) {
            pending[i].ids = rows + (m0 + i) * width;
            pending[i].out = out + m0 + i;
            pending[i].length = real_tokens(pending[i].ids, w->maxlen);
        }
        run_pending(self, pending, count, scratch);
    }
    if (w->ngram_scores)
        for (Py_ssize_t m = 0; m < n; m++)
            out[m] = fuse(w, rows + m * width + w->maxlen, out[m]);
}

/* run_rows one message at a time through the profiler, adding each part's nanoseconds to times[0..4]. */
static void profile_rows(const Model *self, const int32_t *rows, Py_ssize_t n, float *out, float *scratch, double *times) {
    const Weights *w = &self->w;
    const Py_ssize_t width = w->maxlen + w->ngram_length;
    for (Py_ssize_t m = 0; m < n; m++) {
        out[m] = self->profiler(rows + m * width, w, scratch, times);
        if (w->ngram_scores) {
            const double begin = now_ns();
            out[m] = fuse(w, rows + m * width + w->maxlen, out[m]);
            times[4] += now_ns() - begin;
        }
    }
}

/* ids: int32 (n, maxlen + ngram_length) and out: float32 (n,), C-contiguous; 0, or an exception with both released. */
static int take_rows(const Weights *w, PyObject *ids_obj, PyObject *out_obj, Py_buffer *ids, Py_buffer *out) {
    if (PyObject_GetBuffer(ids_obj, ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (PyObject_GetBuffer(out_obj, out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(ids);
        return -1;
    }
    const Py_ssize_t width = w->maxlen + w->ngram_length;  /* a row: the word ids, then a fused model's n-gram ids */
    const char *fi = ids->format ? ids->format : "B", *fo = out->format ? out->format : "B";
    fi += (fi[0] == '<' || fi[0] == '=' || fi[0] == '@');
    fo += (fo[0] == '<' || fo[0] == '=' || fo[0] == '@');
    if (strcmp(fi, "i") != 0 || ids->itemsize != 4 || ids->ndim != 2 || ids->shape[1] != width) {
        if (w->ngram_scores)
            PyErr_Format(PyExc_ValueError, "ids must be a C-contiguous int32 array of shape (n, %zd): %d word ids, then %zd n-gram ids", width, w->maxlen, w->ngram_length);
        else
            PyErr_Format(PyExc_ValueError, "ids must be a C-contiguous int32 array of shape (n, %d)", w->maxlen);
    } else if (strcmp(fo, "f") != 0 || out->ndim != 1 || out->shape[0] != ids->shape[0]) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous float32 array with one element per row of ids");
    } else {
        return 0;
    }
    PyBuffer_Release(out);
    PyBuffer_Release(ids);
    return -1;
}

#define STACK_UNITS 128  /* the kernel's scratch (4 messages' Steps) is on the stack up to this many units */

static PyObject *score(Model *self, PyObject *ids_obj, PyObject *out_obj, double *times) {
    if (!self->kernel) {
        PyErr_SetString(PyExc_RuntimeError, "Model is not initialized");
        return NULL;
    }
    Py_buffer ids, out;
    if (take_rows(&self->w, ids_obj, out_obj, &ids, &out) < 0)
        return NULL;
    const int32_t *rows = (const int32_t *)ids.buf;
    const Py_ssize_t n = ids.shape[0];
    float stack[4 * STEP_FLOATS * STACK_UNITS] __attribute__((aligned(64)));
    float *scratch = self->w.units <= STACK_UNITS ? stack : malloc(4 * STEP_FLOATS * (size_t)self->w.units * sizeof(float));
    Py_ssize_t bad = -1;
    if (scratch) {
        Py_BEGIN_ALLOW_THREADS
        if ((bad = first_bad_id(&self->w, rows, n)) < 0 && times)
            profile_rows(self, rows, n, (float *)out.buf, scratch, times);
        else if (bad < 0)
            run_rows(self, rows, n, (float *)out.buf, scratch);
        Py_END_ALLOW_THREADS
    }
    if (!scratch)
        PyErr_NoMemory();
    else if (bad >= 0)
        bad_id_error(&self->w, rows[bad], bad / (self->w.maxlen + self->w.ngram_length), bad % (self->w.maxlen + self->w.ngram_length));
    if (scratch != stack)
        free(scratch);
    PyBuffer_Release(&out);
    PyBuffer_Release(&ids);
    return scratch && bad < 0 ? Py_NewRef(Py_None) : NULL;
}

static PyObject *Model_get_isa(Model *self, void *closure) {
    (void)closure;
    return PyUnicode_FromString(self->isa ? self->isa : "");
}

static PyMethodDef Model_methods[] = {
    {"run", (PyCFunction)Model_run, METH_VARARGS,
     "run(ids, out): the spam probability of each row of int32 ids (n, maxlen + ngram_length) into float32 out (n,)"},
    {"run_texts", (PyCFunction)(void (*)(void))Model_run_texts, METH_FASTCALL,
     "run_texts(featuriser, texts, out): the spam probability of each text (an ASCII str, or a pair of bytes prepared by "
     "Vocabulary.split_ascii) into float32 out (n,), featurised here; the GIL released throughout"},
    {"profile", (PyCFunction)Model_profile, METH_VARARGS, "profile(ids, out): run(), timed by part (for the benchmark): a dict of nanoseconds (a fused model's n-gram branch as ngram_ns), and one clock reading's cost"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"isa", (getter)Model_get_isa, NULL, "the instruction set the kernel runs with", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Model_slots[] = {
    {Py_tp_doc, (void *)"The folded, pad-primed LSTM of an .npz model; run() is thread-safe and releases the GIL."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Model_init},
    {Py_tp_dealloc, (void *)Model_dealloc},
    {Py_tp_methods, Model_methods},
    {Py_tp_getset, Model_getset},
    {0, NULL},
};

static PyType_Spec Model_spec = {"smsguard.runtime._lstm_c.Model", sizeof(Model), 0, Py_TPFLAGS_DEFAULT, Model_slots};

/* ---- the n-gram bag --------------------------------------------------------------------------------- */

#define NGRAM_MAX_N 16
#define NGRAM_MAX_BUCKETS 2147483646  /* 2**31 - 2: every id, buckets included, fits an int32 */
#define NGRAM_BITMAP_MAX_BUCKETS (1 << 19)  /* up to a 64 KB bitmap; past it a hash set sized by the row */
#define NGRAM_STACK_BYTES 2048  /* the word scratch and a bitmap of up to 16383 buckets live on the stack */
#define NGRAM_GIL_BYTES 16384  /* more text than this runs without the GIL (about 0.1 ms); less is done
                                  before a waiting thread would get it, and taking it back can wait 5 ms */

static uint32_t crc_table[256];  /* CRC-32 (IEEE 802.3, reflected: zlib's), filled once at import */
static unsigned char ascii_lower[256], ascii_same[256];  /* what str.lower() does to ASCII; nothing */

static void ngram_tables_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
        ascii_same[i] = (unsigned char)i;
        ascii_lower[i] = (unsigned char)(i >= 'A' && i <= 'Z' ? i + ('a' - 'A') : i);
    }
}

/* Python's whitespace among ASCII characters: the only whitespace C sees (see the top of this file). */
static inline int ascii_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* `a % d` for a divisor fixed per call: Lemire's multiply-only remainder (exact for 32-bit a and d >= 1),
 * a few cycles instead of a division per n-gram. */
typedef struct {
    uint32_t d;
    uint64_t m;
} Divisor;

static inline uint32_t remainder_of(uint32_t a, Divisor by) {
    if (!(by.d & (by.d - 1)))  /* a power of two, as the default 8192: a mask (10% faster) */
        return a & (by.d - 1);
#if defined(__SIZEOF_INT128__)
    return (uint32_t)(((__uint128_t)(by.m * a) * by.d) >> 64);
#else
    return a % by.d;
#endif
}

/* The ids a message has kept so far: a bitmap of buckets + 1 bits, or, for many buckets, an open-addressing
 * set (0 is empty) of at least twice the ids a row can keep. Both are empty between messages: after each,
 * what it set is cleared (or the whole bitmap, when that is quicker). */
typedef struct {
    uint64_t *bits;
    uint32_t *slots;
    size_t words;    /* the bitmap's */
    uint32_t shift;  /* slot of id = (id * golden ratio) >> shift */
    uint32_t mask;
} Seen;

static inline int seen_add(Seen *seen, uint32_t id) {
    if (seen->bits) {
        uint64_t *word = &seen->bits[id >> 6], bit = (uint64_t)1 << (id & 63);
        if (*word & bit)
            return 0;
        *word |= bit;
        return 1;
    }
    for (uint32_t k = (id * 0x9E3779B1u) >> seen->shift;; k = (k + 1) & seen->mask) {
        if (seen->slots[k] == id)
            return 0;
        if (!seen->slots[k]) {
            seen->slots[k] = id;
            return 1;
        }
    }
}

/* Removes ids[0..count), the ids added since the set was empty. In reverse order: every slot an id probed
 * past when it went in then still holds an id that went in before it, so each is found where it is. */
static void seen_clear(Seen *seen, const int32_t *ids, Py_ssize_t count) {
    if (seen->bits) {
        if ((size_t)count * 8 >= seen->words)  /* a memset clears 8 words or more in the time of one store */
            memset(seen->bits, 0, seen->words * sizeof(uint64_t));
        else
            for (Py_ssize_t j = 0; j < count; j++)
                seen->bits[(uint32_t)ids[j] >> 6] = 0;
        return;
    }
    for (Py_ssize_t j = count; j-- > 0;) {
        uint32_t k = ((uint32_t)ids[j] * 0x9E3779B1u) >> seen->shift;
        while (seen->slots[k] != (uint32_t)ids[j])
            k = (k + 1) & seen->mask;
        seen->slots[k] = 0;
    }
}

typedef struct {
    Divisor buckets;
    int min_n, max_n;
    const unsigned char *fold;  /* each byte as it is read: ascii_lower, or the identity */
    Py_ssize_t limit;  /* ids kept per message: the row's width */
} Bag;

/* Puts `id` at row[count] and returns the new count: count + 1 if it was not there, else count (the row's
 * next id overwrites it). With the bitmap, no branch on which: a first sighting or a repeat is a coin
 * toss the CPU would often lose, and those branches cost a quarter of the time. */
static inline Py_ssize_t keep(Seen *seen, int32_t *row, Py_ssize_t count, uint32_t id) {
    if (seen->bits) {
        uint64_t *word = &seen->bits[id >> 6], had = *word, bit = (uint64_t)1 << (id & 63);
        *word = had | bit;
        row[count] = (int32_t)id;
        return count + !(had & bit);
    }
    if (seen_add(seen, id))
        row[count++] = (int32_t)id;
    return count;
}

#define CRC_STEP(crc, byte) (crc_table[((crc) ^ (byte)) & 0xFF] ^ ((crc) >> 8))

/* The grams of an ASCII word (most words), where a code point is a byte: bag_row's loops without the
 * boundary tests, and without the starts too near the end for any gram. Inlined twice, once with the
 * default sizes as constants, which the compiler unrolls (10% faster). Returns the row's new count. */
static inline __attribute__((always_inline)) Py_ssize_t ascii_word(const unsigned char *word, Py_ssize_t wrapped, const Bag *bag, Seen *seen,
                                                                   int32_t *row, Py_ssize_t count, const int min_n, const int max_n) {
    for (Py_ssize_t start = 0; start + min_n <= wrapped; start++) {
        const unsigned char *gram = word + start;
        const int top = wrapped - start < max_n ? (int)(wrapped - start) : max_n;
        uint32_t crc = 0xFFFFFFFFu;
        int k = 0;
        for (; k < min_n - 1; k++)
            crc = CRC_STEP(crc, gram[k]);
        for (; k < top; k++) {
            crc = CRC_STEP(crc, gram[k]);
            count = keep(seen, row, count, remainder_of(~crc, bag->buckets) + 1);
            if (count == bag->limit)
                return count;
        }
    }
    return count;
}

/* One message: its first `limit` distinct ids into row, in the order word, start, n; zeros after them.
 * `scratch` holds the longest word plus its wrap; each word is copied there through `fold` (the text is
 * lowered already, but for ASCII, whose lowering is this table). Each start position's CRC runs on byte by byte, and is
 * read off at each code point boundary (a byte that is not 0b10xxxxxx) for n = min_n..max_n. Reads stay
 * within data and the word, whatever the bytes: a stray continuation byte just joins the code point before. */
static Py_ssize_t bag_row(const unsigned char *data, Py_ssize_t size, const Bag *bag, Seen *seen, unsigned char *scratch, int32_t *row) {
    const int min_n = bag->min_n, max_n = bag->max_n;
    Py_ssize_t count = 0, at = 0;
    while (count < bag->limit) {
        while (at < size && ascii_space(data[at]))
            at++;
        if (at == size)
            break;
        const unsigned char *fold = bag->fold;
        unsigned char high = 0;
        Py_ssize_t wrapped = 1;
        scratch[0] = '<';
        for (; at < size && !ascii_space(data[at]); at++) {
            high |= data[at];
            scratch[wrapped++] = fold[data[at]];
        }
        scratch[wrapped++] = '>';
        if (!(high & 0x80)) {
            count = min_n == 2 && max_n == 5 ? ascii_word(scratch, wrapped, bag, seen, row, count, 2, 5)
                                             : ascii_word(scratch, wrapped, bag, seen, row, count, min_n, max_n);
            continue;
        }
        for (Py_ssize_t start = 0; start < wrapped;) {
            uint32_t crc = 0xFFFFFFFFu;
            Py_ssize_t p = start, second = wrapped;
            for (int n = 1; n <= max_n && p < wrapped; n++) {
                do
                    crc = CRC_STEP(crc, scratch[p++]);
                while (p < wrapped && (scratch[p] & 0xC0) == 0x80);
                if (n == 1)
                    second = p;
                if (n >= min_n) {
                    count = keep(seen, row, count, remainder_of(~crc, bag->buckets) + 1);
                    if (count == bag->limit)
                        goto full;
                }
            }
            start = second;
        }
    }
full:
    seen_clear(seen, row, count);
    memset(row + count, 0, (size_t)(bag->limit - count) * sizeof(int32_t));
    return count;
}

/* The working memory of a call: scratch for the longest word, and an empty Seen; on the stack when small. */
typedef struct {
    uint64_t stack[NGRAM_STACK_BYTES / sizeof(uint64_t)];
    unsigned char *scratch;
    void *heap_scratch, *heap_seen;
    Seen seen;
} Work;

static void work_free(Work *work) {
    free(work->heap_scratch);
    free(work->heap_seen);
}

static int work_init(Work *work, const Bag *bag, Py_ssize_t longest, uint32_t buckets) {
    memset(&work->seen, 0, sizeof work->seen);
    work->heap_scratch = work->heap_seen = NULL;
    const size_t scratch = (size_t)longest + 2;
    size_t used = 0;
    if (buckets < NGRAM_BITMAP_MAX_BUCKETS) {
        work->seen.words = (size_t)buckets / 64 + 1;
        const size_t bytes = work->seen.words * sizeof(uint64_t);
        if (bytes <= sizeof work->stack) {
            memset(work->stack, 0, bytes);
            work->seen.bits = work->stack;
            used = bytes;
        } else if (!(work->seen.bits = work->heap_seen = calloc(bytes, 1))) {
            return -1;
        }
    } else {
        /* More slots than distinct ids a message can keep (at most min(limit, buckets) < 2**31): never full. */
        uint32_t log2 = 4;
        const uint64_t wanted = (uint64_t)bag->limit < buckets ? (uint64_t)bag->limit : buckets;
        while (log2 < 31 && ((uint64_t)1 << log2) < 2 * wanted)
            log2++;
        if (!(work->seen.slots = work->heap_seen = calloc((size_t)1 << log2, sizeof(uint32_t))))
            return -1;
        work->seen.shift = 32 - log2;
        work->seen.mask = ((uint32_t)1 << log2) - 1;
    }
    if (scratch <= sizeof work->stack - used)
        work->scratch = (unsigned char *)work->stack + used;
    else if (!(work->scratch = work->heap_scratch = malloc(scratch)))
        return -1;
    return 0;
}

/* buckets, min_n, max_n and lower (args[0..3]) as a Bag without its limit, or an exception. */
static int bag_of(Bag *bag, PyObject *const *args) {
    long long buckets;
    long min_n, max_n;
    int lower;
    if ((buckets = PyLong_AsLongLong(args[0])) == -1 && PyErr_Occurred())
        return -1;
    if ((min_n = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred())
        return -1;
    if ((max_n = PyLong_AsLong(args[2])) == -1 && PyErr_Occurred())
        return -1;
    if ((lower = PyObject_IsTrue(args[3])) < 0)
        return -1;
    if (buckets < 1 || buckets > NGRAM_MAX_BUCKETS) {
        PyErr_Format(PyExc_ValueError, "buckets must be from 1 to %d, found %lld", NGRAM_MAX_BUCKETS, buckets);
        return -1;
    }
    if (min_n < 1 || min_n > max_n || max_n > NGRAM_MAX_N) {
        PyErr_Format(PyExc_ValueError, "n-gram sizes must satisfy 1 <= min_n <= max_n <= %d, found min_n=%ld, max_n=%ld", NGRAM_MAX_N, min_n, max_n);
        return -1;
    }
    bag->buckets.d = (uint32_t)buckets;
    bag->buckets.m = UINT64_MAX / (uint32_t)buckets + 1;
    bag->min_n = (int)min_n;
    bag->max_n = (int)max_n;
    bag->fold = lower ? ascii_lower : ascii_same;
    return 0;
}

/* A writable int32 buffer of `ndim` dimensions whose rows are contiguous and apart (a C-contiguous array,
 * or columns of a wider one: a fused model's n-gram ids beside its word ids); returns 0 or sets an exception. */
static int int32_out(PyObject *obj, Py_buffer *view, int ndim, const char *shape) {
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    f += (f[0] == '<' || f[0] == '=' || f[0] == '@');
    int ok = strcmp(f, "i") == 0 && view->itemsize == 4 && view->ndim == ndim && (view->shape[ndim - 1] < 2 || view->strides[ndim - 1] == 4);
    if (ok && ndim == 2 && view->shape[0] > 1)  /* rows in order, none overlapping the next */
        ok = view->strides[0] % 4 == 0 && view->strides[0] >= 4 * view->shape[1];
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "out must be a writable int32 array of shape %s whose rows are contiguous", shape);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The int32 elements from one row of a 2-D `int32_out` buffer to the next. */
static Py_ssize_t row_step(const Py_buffer *view) {
    return view->shape[0] > 1 ? view->strides[0] / 4 : view->shape[1];
}

typedef struct {
    const unsigned char *data;  /* the text (a featuriser's: the input of its word ids) */
    Py_ssize_t size;
    const unsigned char *bag;   /* a featuriser's text prepared in Python: the input of its n-gram ids; NULL for any other */
    Py_ssize_t bag_size;
} Text;

/* A text's bytes: a bytes object's, or an ASCII str's characters (its UTF-8, read in place: an ASCII
 * str's UTF-8 is its own data, so the common SMS needs no encoding). Any other str must be encoded by the
 * caller, split on Python's whitespace: C knows only the ASCII one. */
static int text_of(PyObject *item, Py_ssize_t index, Text *text) {
    text->bag = NULL;
    text->bag_size = 0;
    if (PyBytes_Check(item)) {
        char *data;
        if (PyBytes_AsStringAndSize(item, &data, &text->size) < 0)
            return -1;
        text->data = (const unsigned char *)data;
        return 0;
    }
    if (PyUnicode_Check(item)) {  /* ASCII when its UTF-8 has one byte a character: then it is the str's own data, not a copy */
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &text->size);
        if (utf8 && text->size == PyUnicode_GetLength(item)) {
            text->data = (const unsigned char *)utf8;
            return 0;
        }
        PyErr_Clear();  /* a lone surrogate has no UTF-8 */
        PyErr_Format(PyExc_TypeError, "texts[%zd] must be bytes or an ASCII str, found a str that is not ASCII", index);
        return -1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *type = PyType_GetName(Py_TYPE(item));
    if (type)
        PyErr_Format(PyExc_TypeError, "texts[%zd] must be bytes or an ASCII str, found %U", index, type);
    Py_XDECREF(type);
#else
    PyErr_Format(PyExc_TypeError, "texts[%zd] must be bytes or an ASCII str, found %s", index, Py_TYPE(item)->tp_name);
#endif
    return -1;
}

static PyObject *ngram_ids(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "ngram_ids takes 6 arguments (text, buckets, min_n, max_n, lower, out), found %zd", nargs);
        return NULL;
    }
    Bag bag;
    Text text;
    Py_buffer out;
    if (bag_of(&bag, args + 1) < 0 || text_of(args[0], 0, &text) < 0 || int32_out(args[5], &out, 1, "(limit,)") < 0)
        return NULL;
    bag.limit = out.shape[0];
    Work work;
    PyObject *result = NULL;
    if (work_init(&work, &bag, text.size, bag.buckets.d) < 0) {
        PyErr_NoMemory();
    } else {
        Py_ssize_t count;
        if (text.size > NGRAM_GIL_BYTES) {  /* the caller holds the text while the call lasts */
            Py_BEGIN_ALLOW_THREADS
            count = bag_row(text.data, text.size, &bag, &work.seen, work.scratch, out.buf);
            Py_END_ALLOW_THREADS
        } else {
            count = bag_row(text.data, text.size, &bag, &work.seen, work.scratch, out.buf);
        }
        result = PyLong_FromSsize_t(count);
    }
    work_free(&work);
    PyBuffer_Release(&out);
    return result;
}

/* The texts of a call, read once while the GIL is held: each one's bytes, kept alive by a tuple of our own
 * (without the GIL another thread could empty the caller's list and free its texts). */
typedef struct {
    PyObject *held;
    Text *each, few[16];
    Py_ssize_t n, longest, total;
} Texts;

typedef int (*TextReader)(PyObject *item, Py_ssize_t index, Text *text);

static void texts_free(Texts *texts) {
    if (texts->each != texts->few)
        PyMem_Free(texts->each);
    Py_XDECREF(texts->held);
}

/* `sequence` read item by item with `read`; 0, or an exception with nothing held. */
static int texts_read(Texts *texts, PyObject *sequence, TextReader read, const char *expected) {
    memset(texts, 0, sizeof *texts);
    texts->each = texts->few;
    if (!(texts->held = PySequence_Tuple(sequence))) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "texts must be a list of %s", expected);
        }
        return -1;
    }
    texts->n = PyTuple_Size(texts->held);
    if (texts->n > 16 && !(texts->each = PyMem_Malloc((size_t)texts->n * sizeof(Text)))) {
        texts->each = texts->few;
        texts_free(texts);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t m = 0; m < texts->n; m++) {
        if (read(PyTuple_GetItem(texts->held, m), m, &texts->each[m]) < 0) {
            texts_free(texts);
            return -1;
        }
        const Text *text = &texts->each[m];
        const Py_ssize_t longer = text->size > text->bag_size ? text->size : text->bag_size;
        texts->longest = longer > texts->longest ? longer : texts->longest;
        texts->total += text->size + text->bag_size;
    }
    return 0;
}

/* The bag of each text into a row of out, without the GIL over more than NGRAM_GIL_BYTES of text. */
static int bag_rows(const Bag *bag, const Texts *texts, const Py_buffer *out) {
    Work work;
    if (work_init(&work, bag, texts->longest, bag->buckets.d) < 0) {
        work_free(&work);
        PyErr_NoMemory();
        return -1;
    }
    const Py_ssize_t step = row_step(out);
    PyThreadState *saved = texts->total > NGRAM_GIL_BYTES ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t m = 0; m < texts->n; m++)
        bag_row(texts->each[m].data, texts->each[m].size, bag, &work.seen, work.scratch, (int32_t *)out->buf + m * step);
    if (saved)
        PyEval_RestoreThread(saved);
    work_free(&work);
    return 0;
}

static PyObject *ngram_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "ngram_rows takes 6 arguments (texts, buckets, min_n, max_n, lower, out), found %zd", nargs);
        return NULL;
    }
    Bag bag;
    Texts texts;
    Py_buffer out;
    if (bag_of(&bag, args + 1) < 0 || texts_read(&texts, args[0], text_of, "bytes and ASCII str") < 0)
        return NULL;
    if (int32_out(args[5], &out, 2, "(len(texts), limit)") < 0) {
        texts_free(&texts);
        return NULL;
    }
    int done = -1;
    if (out.shape[0] != texts.n) {
        PyErr_Format(PyExc_ValueError, "out has %zd rows for %zd texts", out.shape[0], texts.n);
    } else {
        bag.limit = out.shape[1];
        done = bag_rows(&bag, &texts, &out);
    }
    PyBuffer_Release(&out);
    texts_free(&texts);
    return done < 0 ? NULL : Py_NewRef(Py_None);
}

/* ---- the featuriser: ASCII text to a row of model input, without leaving C ------------------------------ */

#include "_lstm_c_text.h"

#define TEXT_STACK_BYTES 8192  /* a call's text scratch (a joined text, a word, the ids kept) on the stack up to this */

typedef struct {
    PyObject_HEAD
    Words words;
    Join join;
    int joins;  /* the vocabulary normalises: on ASCII text its normaliser is the join rule alone */
    Bag bag;    /* a fused model's n-gram bag (bag.limit ids a row); limit 0: a word model */
} Featuriser;

static PyObject *FeaturiserType;  /* the type, made at import */

static void Featuriser_dealloc(Featuriser *self) {
    free(self->words.slots);
    free(self->words.keys);
    PyTypeObject *type = Py_TYPE((PyObject *)self);  /* a heap type: its instances hold a reference to it */
    freefunc free_object = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free_object(self);
    Py_DECREF(type);
}

/* The word index {ASCII word bytes: id >= 1} into words->slots and words->keys; 0 or an exception. */
static int words_of(Words *words, PyObject *index) {
    PyObject *key, *value;
    Py_ssize_t position = 0, bytes = 1;
    const char *expected = "words must be a dict of word bytes to int ids, under 2**28 words and 4 GB of them";
    if (!PyDict_Check(index) || PyDict_Size(index) > (1 << 28)) {
        PyErr_SetString(PyExc_TypeError, expected);
        return -1;
    }
    while (PyDict_Next(index, &position, &key, &value)) {
        if (!PyBytes_Check(key) || !PyLong_Check(value) || (bytes += PyBytes_Size(key)) > UINT32_MAX) {
            PyErr_SetString(PyExc_TypeError, expected);
            return -1;
        }
    }
    uint32_t slots = 16;
    while (slots < 2 * (uint32_t)PyDict_Size(index))
        slots *= 2;
    words->mask = slots - 1;
    if (!(words->slots = calloc(slots, sizeof(Slot))) || !(words->keys = malloc((size_t)bytes))) {
        PyErr_NoMemory();
        return -1;
    }
    uint32_t offset = 0;
    for (position = 0; PyDict_Next(index, &position, &key, &value);) {
        char *data;
        Py_ssize_t length;
        const long id = PyLong_AsLong(value);
        if (id < 1 || id > INT32_MAX) {
            PyErr_Clear();  /* an OverflowError, if any, says less than this */
            PyErr_SetString(PyExc_ValueError, "word ids must be from 1 to 2**31 - 1");
            return -1;
        }
        if (PyBytes_AsStringAndSize(key, &data, &length) < 0)
            return -1;
        if (!length)
            continue;  /* the tokenizer drops empty words: never looked up */
        memcpy(words->keys + offset, data, (size_t)length);
        words_add(words, offset, (uint32_t)length, (int32_t)id);
        offset += (uint32_t)length;
    }
    return 0;
}

/* join: None, or (separators: bytes, min_letters, max_run) with ASCII separators that are not letters. */
static int join_of(Featuriser *self, PyObject *join) {
    const char *separators;
    Py_ssize_t count;
    if (join == Py_None)
        return 0;
    if (!PyTuple_Check(join) || !PyArg_ParseTuple(join, "y#ii", &separators, &count, &self->join.min_letters, &self->join.max_run)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "join must be None or (separators: bytes, min_letters: int, max_run: int)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char c = (unsigned char)separators[i];
        if (c >= 128 || is_alnum(c)) {
            PyErr_Format(PyExc_ValueError, "join separators must be ASCII characters other than letters and digits, found byte 0x%02x", c);
            return -1;
        }
        self->join.separator[c] = 1;
    }
    if (self->join.min_letters < 2 || self->join.max_run < 1) {
        PyErr_Format(PyExc_ValueError, "join needs min_letters >= 2 and max_run >= 1, found %d and %d", self->join.min_letters, self->join.max_run);
        return -1;
    }
    self->joins = 1;
    return 0;
}

/* bag: None, or (buckets, min_n, max_n, lower, length) of the n-gram bag (see bag_of). */
static int bag_from(Featuriser *self, PyObject *bag) {
    if (bag == Py_None)
        return 0;
    if (!PyTuple_Check(bag) || PyTuple_Size(bag) != 5) {
        PyErr_SetString(PyExc_TypeError, "bag must be None or (buckets, min_n, max_n, lower, length)");
        return -1;
    }
    PyObject *items[4] = {PyTuple_GetItem(bag, 0), PyTuple_GetItem(bag, 1), PyTuple_GetItem(bag, 2), PyTuple_GetItem(bag, 3)};
    const Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GetItem(bag, 4));
    if (bag_of(&self->bag, items) < 0 || (length == -1 && PyErr_Occurred()))
        return -1;
    if (length < 1 || length > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "the bag's length must be from 1 to %d, found %zd", INT32_MAX, length);
        return -1;
    }
    self->bag.limit = length;
    return 0;
}

static int Featuriser_init(Featuriser *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"table", "split", "words", "oov", "maxlen", "pad_front", "keep_first", "join", "bag", NULL};
    const char *table;
    Py_ssize_t table_size;
    int split, oov, maxlen, pad_front, keep_first;
    PyObject *index, *join, *bag;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y#iOiippOO", keywords, &table, &table_size, &split, &index, &oov, &maxlen, &pad_front,
                                     &keep_first, &join, &bag))
        return -1;
    if (self->words.slots) {
        PyErr_SetString(PyExc_RuntimeError, "Featuriser is already initialized");
        return -1;
    }
    if (table_size != 256 || split < 0 || split > 127 || oov < 0 || maxlen < 1 || maxlen > 100000) {
        PyErr_SetString(PyExc_ValueError, "a Featuriser needs a 256-byte table, an ASCII split, an OOV id >= 0 (0: none) and maxlen from 1 to 100000");
        return -1;
    }
    memcpy(self->words.table, table, 256);
    self->words.split = (unsigned char)split;
    self->words.oov = oov;
    self->words.maxlen = maxlen;
    self->words.pad_front = pad_front;
    self->words.keep_first = keep_first;
    return words_of(&self->words, index) < 0 || join_of(self, join) < 0 || bag_from(self, bag) < 0 ? -1 : 0;
}

/* A text for the featuriser: an ASCII str (its characters, read in place), or a non-ASCII text prepared in Python
 * (Vocabulary.split_ascii): a pair of bytes, the UTF-8 of the text its word ids are made of, then its bag's input. */
static int ascii_or_prepared(PyObject *item, Py_ssize_t index, Text *text) {
    char *words, *bag;
    text->bag = NULL;
    text->bag_size = 0;
    if (PyUnicode_Check(item)) {
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &text->size);  /* an ASCII str's own characters: no copy */
        if (utf8 && text->size == PyUnicode_GetLength(item)) {
            text->data = (const unsigned char *)utf8;
            return 0;
        }
        PyErr_Clear();  /* a lone surrogate has no UTF-8 */
    } else if (PyTuple_Check(item) && PyTuple_Size(item) == 2 && PyBytes_Check(PyTuple_GetItem(item, 0)) && PyBytes_Check(PyTuple_GetItem(item, 1))) {
        if (PyBytes_AsStringAndSize(PyTuple_GetItem(item, 0), &words, &text->size) < 0 ||
            PyBytes_AsStringAndSize(PyTuple_GetItem(item, 1), &bag, &text->bag_size) < 0)
            return -1;
        text->data = (const unsigned char *)words;
        text->bag = (const unsigned char *)bag;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "texts[%zd] must be an ASCII str or a pair of bytes (words, bag)", index);
    return -1;
}

/* What featurising a call's texts needs: the bag's scratch, room for the longest text joined and for one of its
 * words, and the ring of word ids; on the stack when it fits. */
typedef struct {
    Work bag;
    unsigned char *joined, *word;
    int32_t *ring;
    void *heap;
    unsigned char stack[TEXT_STACK_BYTES] __attribute__((aligned(64)));
} TextWork;

static void text_work_free(TextWork *work) {
    free(work->heap);
    work_free(&work->bag);
}

static int text_work_init(TextWork *work, const Featuriser *f, Py_ssize_t longest) {
    const size_t ring = (size_t)f->words.maxlen * sizeof(int32_t), room = ring + 2 * (size_t)longest;
    unsigned char *base = work->stack;
    work->heap = work->bag.heap_scratch = work->bag.heap_seen = NULL;
    if (room > sizeof work->stack && !(base = work->heap = malloc(room)))
        return -1;
    work->ring = (int32_t *)base;
    work->joined = base + ring;
    work->word = work->joined + longest;
    return f->bag.limit ? work_init(&work->bag, &f->bag, longest, f->bag.buckets.d) : 0;
}

/* A text's row of model input: its word ids, then a fused model's n-gram ids, of the text as encode sees it (an
 * ASCII text normalised here: by the join rule; a prepared one as it is). Returns how many n-gram ids it has (zeros
 * after them). */
static Py_ssize_t featurise(const Featuriser *f, const Text *text, TextWork *work, int32_t *row) {
    Py_ssize_t size = text->size, bag_size;
    const unsigned char *data = f->joins && !text->bag ? join_text(&f->join, text->data, text->size, work->joined, &size) : text->data;
    const unsigned char *bag = text->bag ? text->bag : data;
    bag_size = text->bag ? text->bag_size : size;
    word_row(&f->words, data, size, work->word, work->ring, row);
    return f->bag.limit ? bag_row(bag, bag_size, &f->bag, &work->bag.seen, work->bag.scratch, row + f->words.maxlen) : 0;
}

/* encode(texts, out): each text's row into out (int32 (len(texts), width), rows contiguous). Without the GIL over
 * more than NGRAM_GIL_BYTES of text. */
static PyObject *Featuriser_encode(Featuriser *self, PyObject *const *args, Py_ssize_t nargs) {
    const Py_ssize_t width = self->words.maxlen + self->bag.limit;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "encode takes 2 arguments (texts, out), found %zd", nargs);
        return NULL;
    }
    Texts texts;
    Py_buffer out;
    if (texts_read(&texts, args[0], ascii_or_prepared, "ASCII str and pairs of bytes") < 0)
        return NULL;
    if (int32_out(args[1], &out, 2, "(len(texts), width)") < 0) {
        texts_free(&texts);
        return NULL;
    }
    TextWork work;
    int done = -1;
    if (out.shape[0] != texts.n || out.shape[1] != width) {
        PyErr_Format(PyExc_ValueError, "out must have %zd rows of %zd ids, found shape (%zd, %zd)", texts.n, width, out.shape[0], out.shape[1]);
    } else if (text_work_init(&work, self, texts.longest) < 0) {
        text_work_free(&work);
        PyErr_NoMemory();
    } else {
        const Py_ssize_t step = row_step(&out);
        PyThreadState *saved = texts.total > NGRAM_GIL_BYTES ? PyEval_SaveThread() : NULL;
        for (Py_ssize_t m = 0; m < texts.n; m++)
            featurise(self, &texts.each[m], &work, (int32_t *)out.buf + m * step);
        if (saved)
            PyEval_RestoreThread(saved);
        text_work_free(&work);
        done = 0;
    }
    PyBuffer_Release(&out);
    texts_free(&texts);
    return done < 0 ? NULL : Py_NewRef(Py_None);
}

/* join(text): an ASCII text (bytes) after the join rule, as the normaliser leaves it (the text itself without one). */
static PyObject *Featuriser_join(Featuriser *self, PyObject *text) {
    char *data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(text, &data, &size) < 0)
        return NULL;
    if (!self->joins)
        return Py_NewRef(text);
    unsigned char *out = malloc(size ? (size_t)size : 1);
    if (!out)
        return PyErr_NoMemory();
    Py_ssize_t joined;
    const unsigned char *result = join_text(&self->join, (const unsigned char *)data, size, out, &joined);
    PyObject *done = PyBytes_FromStringAndSize((const char *)result, joined);
    free(out);
    return done;
}

static PyObject *Featuriser_get_width(Featuriser *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->words.maxlen + self->bag.limit);
}

static PyMethodDef Featuriser_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Featuriser_encode, METH_FASTCALL,
     "encode(texts, out): the model input of each text (an ASCII str, or a prepared pair of bytes) into its row of int32 out (n, width)"},
    {"join", (PyCFunction)Featuriser_join, METH_O, "join(text): ASCII bytes after the normaliser's join rule"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Featuriser_getset[] = {
    {"width", (getter)Featuriser_get_width, NULL, "ids in a row: maxlen word ids, then the bag's", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Featuriser_slots[] = {
    {Py_tp_doc, (void *)"Featuriser(table, split, words, oov, maxlen, pad_front, keep_first, join, bag): a vocabulary's "
                        "rules for ASCII text in C (see _vocabulary.py, which makes it)"},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Featuriser_init},
    {Py_tp_dealloc, (void *)Featuriser_dealloc},
    {Py_tp_methods, Featuriser_methods},
    {Py_tp_getset, Featuriser_getset},
    {0, NULL},
};

static PyType_Spec Featuriser_spec = {"smsguard.runtime._lstm_c.Featuriser", sizeof(Featuriser), 0, Py_TPFLAGS_DEFAULT, Featuriser_slots};

/* ---- text to probability: Model.run_texts ---------------------------------------------------------------- */

/* Asks for the table rows of a checked row's words: a big vocabulary's rows are seldom in the cache when a message
 * comes, and the first is needed at once. */
static void prefetch_rows(const Weights *w, const int32_t *ids) {
    const size_t bytes = (size_t)4 * w->units * (w->table_q ? 1 : sizeof(float));
    const char *table = w->table_q ? (const char *)w->table_q : (const char *)w->table;
    for (int t = 0; t < w->maxlen; t++)
        if (ids[t])
            for (size_t b = 0; b < bytes; b += 64)
                __builtin_prefetch(table + (size_t)ids[t] * bytes + b);
}

/* The messages of a window through the kernel, then each one's fused probability. */
static void run_window(const Model *self, Pending *pending, int count, float *scratch) {
    run_pending(self, pending, count, scratch);
    if (self->w.ngram_scores)
        for (int i = 0; i < count; i++)
            *pending[i].out = fused(*pending[i].out, pending[i].ngram);
}

/* Every message's probability into out: featurised into `row`, checked, its word ids kept in `words` (WINDOW rows of
 * maxlen) and its n-gram branch's probability computed, then WINDOW messages at a time through run_window (one
 * message straight through the kernel); -1, or the message * width + column of the first id outside the model's
 * ranges (its value: *bad). */
static Py_ssize_t score_texts(const Model *self, const Featuriser *f, const Texts *texts, TextWork *work, int32_t *row, int32_t *words,
                              float *scratch, float *out, int32_t *bad) {
    const Weights *w = &self->w;
    const Py_ssize_t width = w->maxlen + w->ngram_length;
    Pending pending[WINDOW];
    int waiting = 0;
    for (Py_ssize_t m = 0; m < texts->n; m++) {
        const Py_ssize_t live = featurise(f, &texts->each[m], work, row);
        const Py_ssize_t column = first_bad_id(w, row, 1);
        if (column >= 0) {
            *bad = row[column];
            return m * width + column;
        }
        if (texts->n == 1) {  /* the rows of its words asked for first, they come while the n-gram branch runs */
            prefetch_rows(w, row);
            const float ngram = w->ngram_scores ? ngram_probability(w, row + w->maxlen, live) : 0.0f;
            const float word = self->kernel(row, w, scratch);
            out[m] = w->ngram_scores ? fused(word, ngram) : word;
            return -1;
        }
        Pending *p = &pending[waiting];
        int32_t *kept = words + (size_t)waiting * w->maxlen;
        memcpy(kept, row, (size_t)w->maxlen * sizeof(int32_t));
        p->ids = kept;
        p->out = out + m;
        p->length = real_tokens(kept, w->maxlen);
        p->ngram = w->ngram_scores ? ngram_probability(w, row + w->maxlen, live) : 0.0f;
        if (++waiting == WINDOW) {
            run_window(self, pending, waiting, scratch);
            waiting = 0;
        }
    }
    if (waiting)
        run_window(self, pending, waiting, scratch);
    return -1;
}

/* out: float32 (n,), C-contiguous and writable; 0 or an exception. */
static int take_probabilities(PyObject *obj, Py_ssize_t n, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return -1;
    const char *format = view->format ? view->format : "B";
    format += (format[0] == '<' || format[0] == '=' || format[0] == '@');
    if (strcmp(format, "f") == 0 && view->ndim == 1 && view->shape[0] == n)
        return 0;
    PyBuffer_Release(view);
    PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous float32 array with one element per text");
    return -1;
}

#define STACK_WIDTH 1024  /* a row of model input on the stack up to this width (1,024 ids) */
#define STACK_WORDS (WINDOW * 64)  /* a window's word ids on the stack up to a maxlen of 64 */

/* score_texts on a call's texts, without the GIL; 0 or an exception. */
static int score_call(const Model *self, const Featuriser *f, const Texts *texts, float *out) {
    const Weights *w = &self->w;
    const Py_ssize_t width = w->maxlen + w->ngram_length;
    const size_t kept = texts->n > 1 ? (size_t)WINDOW * w->maxlen : 0;
    float stack_scratch[4 * STEP_FLOATS * STACK_UNITS] __attribute__((aligned(64)));
    int32_t stack_row[STACK_WIDTH] __attribute__((aligned(64)));
    int32_t stack_words[STACK_WORDS] __attribute__((aligned(64)));
    float *scratch = w->units <= STACK_UNITS ? stack_scratch : malloc(4 * STEP_FLOATS * (size_t)w->units * sizeof(float));
    int32_t *row = width <= STACK_WIDTH ? stack_row : malloc((size_t)width * sizeof(int32_t));
    int32_t *words = kept <= STACK_WORDS ? stack_words : malloc(kept * sizeof(int32_t));
    TextWork work;
    const int ready = text_work_init(&work, f, texts->longest) == 0 && scratch && row && words;
    Py_ssize_t bad = -1;
    int32_t value = 0;
    if (ready) {
        Py_BEGIN_ALLOW_THREADS
        bad = score_texts(self, f, texts, &work, row, words, scratch, out, &value);
        Py_END_ALLOW_THREADS
    }
    text_work_free(&work);
    if (scratch != stack_scratch)
        free(scratch);
    if (row != stack_row)
        free(row);
    if (words != stack_words)
        free(words);
    if (!ready)
        PyErr_NoMemory();
    else if (bad >= 0)
        bad_id_error(w, value, bad / width, bad % width);
    return ready && bad < 0 ? 0 : -1;
}

/* run_texts(featuriser, texts, ids, out): see the top of this file. */
static PyObject *Model_run_texts(Model *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "run_texts takes 3 arguments (featuriser, texts, out), found %zd", nargs);
        return NULL;
    }
    if (!self->kernel || !PyObject_TypeCheck(args[0], (PyTypeObject *)FeaturiserType)) {
        PyErr_SetString(self->kernel ? PyExc_TypeError : PyExc_RuntimeError, self->kernel ? "featuriser must be a Featuriser" : "Model is not initialized");
        return NULL;
    }
    const Featuriser *f = (const Featuriser *)args[0];
    if (f->words.maxlen != self->w.maxlen || f->bag.limit != self->w.ngram_length) {
        PyErr_Format(PyExc_ValueError, "the featuriser makes rows of %d word ids and %zd n-gram ids, the model takes %d and %zd", f->words.maxlen,
                     f->bag.limit, self->w.maxlen, self->w.ngram_length);
        return NULL;
    }
    Texts texts;
    Py_buffer out;
    if (texts_read(&texts, args[1], ascii_or_prepared, "ASCII str and pairs of bytes") < 0)
        return NULL;
    int done = -1;
    if (take_probabilities(args[2], texts.n, &out) == 0) {
        done = score_call(self, f, &texts, out.buf);
        PyBuffer_Release(&out);
    }
    texts_free(&texts);
    return done < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *best_isa(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyUnicode_FromString(best_name());
}

static PyMethodDef module_methods[] = {
    {"best_isa", best_isa, METH_NOARGS, "the instruction set a Model runs with on this CPU by default"},
    {"ngram_ids", (PyCFunction)(void (*)(void))ngram_ids, METH_FASTCALL,
     "ngram_ids(text, buckets, min_n, max_n, lower, out): one message's n-gram ids into int32 out (limit,), zeros after them; returns how many"},
    {"ngram_rows", (PyCFunction)(void (*)(void))ngram_rows, METH_FASTCALL,
     "ngram_rows(texts, buckets, min_n, max_n, lower, out): ngram_ids for a list of texts, one row of int32 out (n, limit) each"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_lstm_c", "smsguard's native LSTM kernel (see _lstm_native.py) and n-gram bag (see _ngrams.py)", -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lstm_c(void) {
    ngram_tables_init();
    PyObject *module = PyModule_Create(&module_def);
    if (!module)
        return NULL;
    PyObject *model_type = PyType_FromSpec(&Model_spec);
    if (!model_type || PyModule_AddObject(module, "Model", model_type) < 0) {
        Py_XDECREF(model_type);
        Py_DECREF(module);
        return NULL;
    }
    if (!FeaturiserType && !(FeaturiserType = PyType_FromSpec(&Featuriser_spec))) {  /* held for the process: run_texts checks against it */
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Featuriser", FeaturiserType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
