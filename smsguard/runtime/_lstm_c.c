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
 * parallel. Built by setuptools
 * as an optional extension with portable flags; vectorized with what the baseline ISA guarantees
 * (SSE2 on x86-64, NEON/ASIMD on aarch64) plus an AVX2+FMA variant chosen at run time on x86-64.
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
    float dense_bias;
    float *half;              /* 4u: 0.5 for the i, f, o columns, 1 for c */
    const float *ngram_scores; /* a fused model's n-gram branch (NULL for a word model): buckets + 1 scores */
    Py_ssize_t ngram_ids;     /* len(ngram_scores): n-gram ids are 0..ngram_ids - 1 */
    Py_ssize_t ngram_length;  /* n-gram ids per row, after the maxlen word ids (0 for a word model) */
    float ngram_bias;
} Weights;

typedef float (*Kernel)(const int32_t *, const Weights *, float *);
typedef void (*Pair)(const int32_t *, const int32_t *, const Weights *, float *, float *, float *);
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

/* ---- a fused model's n-gram branch ----------------------------------------------------------------- */

/* The float32 sum of scores[ids[0..n-1]] in NumPy's pairwise order (its `pairwise_sum` in umath: up to 8
 * terms in a row; up to 128 in eight interleaved partial sums; more split in two at a multiple of 8), so
 * that it has the bits of `scores[ids].sum(axis=1, dtype=np.float32)` in NgramBranch.fuse. Plain C
 * without -ffast-math: the compiler may not reassociate it. */
static float gathered_sum(const float *scores, const int32_t *ids, Py_ssize_t n) {
    if (n < 8) {
        float sum = 0.0f;
        for (Py_ssize_t i = 0; i < n; i++)
            sum += scores[ids[i]];
        return sum;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++)
            r[j] = scores[ids[j]];
        Py_ssize_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += scores[ids[i + j]];
        float sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            sum += scores[ids[i]];
        return sum;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return gathered_sum(scores, ids, half) + gathered_sum(scores, ids + half, n - half);
}

/* The fused probability of a message from its LSTM probability and its n-gram ids (checked): the mean
 * of the two branches, the n-gram one sigmoid(bias + the mean score of the non-zero ids, 0 for none). */
static float fuse(const Weights *w, const int32_t *ngram_ids, float word) {
    const float total = 0.0f + gathered_sum(w->ngram_scores, ngram_ids, w->ngram_length);  /* NumPy starts from 0 */
    Py_ssize_t count = 0;
    for (Py_ssize_t j = 0; j < w->ngram_length; j++)
        count += ngram_ids[j] != 0;
    const float ngram = 1.0f / (1.0f + expf(-(w->ngram_bias + total / (float)(count > 1 ? count : 1))));
    return (word + ngram) * 0.5f;
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
    Profiler profiler;
    const char *isa;
} Model;

static void Model_dealloc(Model *self) {
    for (int i = 0; i < VIEWS; i++)
        if (self->held[i])
            PyBuffer_Release(&self->views[i]);
    free(self->w.half);
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
    if (take(self, RECURRENT, recurrent, "recurrent", 'f', 2) || take(self, DENSE, dense, "dense_kernel", 'f', 1) ||
        take(self, PRIMED_H, primed_h, "primed_h", 'f', 2) || take(self, PRIMED_C, primed_c, "primed_c", 'f', 2))
        return -1;
    const int quantized = scale != Py_None;
    if (take(self, TABLE, table, "table", quantized ? 'b' : 'f', 2))
        return -1;
    if (quantized && take(self, SCALE, scale, "table_scale", 'f', 1))
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
    Weights *w = &self->w;
    w->ngram_scores = fused ? (const float *)self->views[NGRAM_SCORES].buf : NULL;
    w->ngram_ids = fused ? self->views[NGRAM_SCORES].shape[0] : 0;
    w->ngram_length = fused ? ngram_length : 0;
    w->ngram_bias = ngram_bias;
    w->units = (int)units;
    w->maxlen = (int)(ps[0] - 1);
    w->rows = ts[0];
    w->table = quantized ? NULL : (const float *)self->views[TABLE].buf;
    w->table_q = quantized ? (const int8_t *)self->views[TABLE].buf : NULL;
    w->table_scale = quantized ? (const float *)self->views[SCALE].buf : NULL;
    w->recurrent = (const float *)self->views[RECURRENT].buf;
    w->dense_kernel = (const float *)self->views[DENSE].buf;
    w->primed_h = (const float *)self->views[PRIMED_H].buf;
    w->primed_c = (const float *)self->views[PRIMED_C].buf;
    w->dense_bias = bias;
    w->half = malloc(4 * units * sizeof(float));
    if (!w->half) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < 4 * units; j++)
        w->half[j] = (j >= 2 * units && j < 3 * units) ? 1.0f : 0.5f;
    if (strcmp(isa, "auto") == 0 || strcmp(isa, "avx2") == 0) {
        if (avx2_available()) {
#if HAVE_AVX2
            self->kernel = one_avx2;
            self->pair = two_avx2;
            self->profiler = profile_avx2;
            self->isa = "avx2+fma";
#endif
        } else if (strcmp(isa, "avx2") == 0) {
            PyErr_SetString(PyExc_ValueError, "this CPU (or build) has no AVX2+FMA");
            return -1;
        }
    } else if (strcmp(isa, "baseline") != 0) {
        PyErr_Format(PyExc_ValueError, "isa must be 'auto', 'avx2' or 'baseline', found '%s'", isa);
        return -1;
    }
    if (!self->kernel) {
        self->kernel = one_baseline;
        self->pair = two_baseline;
        self->profiler = profile_baseline;
        self->isa = baseline_name();
    }
    return 0;
}

static PyObject *score(Model *self, PyObject *ids_obj, PyObject *out_obj, double *times);

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

static PyObject *score(Model *self, PyObject *ids_obj, PyObject *out_obj, double *times) {
    if (!self->kernel) {
        PyErr_SetString(PyExc_RuntimeError, "Model is not initialized");
        return NULL;
    }
    Py_buffer ids, out;
    if (PyObject_GetBuffer(ids_obj, &ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&ids);
        return NULL;
    }
    PyObject *result = NULL;
    const Weights *w = &self->w;
    const int maxlen = w->maxlen;
    const Py_ssize_t width = maxlen + w->ngram_length;  /* a row: the word ids, then a fused model's n-gram ids */
    const char *fi = ids.format ? ids.format : "B", *fo = out.format ? out.format : "B";
    fi += (fi[0] == '<' || fi[0] == '=' || fi[0] == '@');
    fo += (fo[0] == '<' || fo[0] == '=' || fo[0] == '@');
    if (strcmp(fi, "i") != 0 || ids.itemsize != 4 || ids.ndim != 2 || ids.shape[1] != width) {
        if (w->ngram_scores)
            PyErr_Format(PyExc_ValueError, "ids must be a C-contiguous int32 array of shape (n, %zd): %d word ids, then %zd n-gram ids", width, maxlen, w->ngram_length);
        else
            PyErr_Format(PyExc_ValueError, "ids must be a C-contiguous int32 array of shape (n, %d)", maxlen);
        goto done;
    }
    if (strcmp(fo, "f") != 0 || out.ndim != 1 || out.shape[0] != ids.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous float32 array with one element per row of ids");
        goto done;
    }
    const Py_ssize_t n = ids.shape[0];
    const int32_t *rows = (const int32_t *)ids.buf;
    float *probabilities = (float *)out.buf;
    Py_ssize_t bad = -1;  /* the first id out of range, as an index into rows */
    float *scratch = malloc(12 * (size_t)w->units * sizeof(float));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t m = 0; m < n && bad < 0; m++) {
        const int32_t *row = rows + m * width;
        Py_ssize_t j = first_bad(row, maxlen, w->rows);
        if (j < 0 && w->ngram_scores && (j = first_bad(row + maxlen, w->ngram_length, w->ngram_ids)) >= 0)
            j += maxlen;
        if (j >= 0)
            bad = m * width + j;
    }
    if (bad >= 0) {
    } else if (times) {
        for (Py_ssize_t m = 0; m < n; m++) {
            const int32_t *row = rows + m * width;
            probabilities[m] = self->profiler(row, w, scratch, times);
            if (w->ngram_scores) {
                const double begin = now_ns();
                probabilities[m] = fuse(w, row + maxlen, probabilities[m]);
                times[4] += now_ns() - begin;
            }
        }
    } else {
        Py_ssize_t m = 0;
        for (; m + 1 < n; m += 2)  /* two at a time, each with the arithmetic of one alone */
            self->pair(rows + m * width, rows + (m + 1) * width, w, scratch, probabilities + m, probabilities + m + 1);
        if (m < n)
            probabilities[m] = self->kernel(rows + m * width, w, scratch);
        if (w->ngram_scores)  /* each message's own, whatever the batch */
            for (m = 0; m < n; m++)
                probabilities[m] = fuse(w, rows + m * width + maxlen, probabilities[m]);
    }
    Py_END_ALLOW_THREADS
    free(scratch);
    if (bad >= 0) {
        if (bad % width < maxlen)
            PyErr_Format(PyExc_ValueError, "token id %d at row %zd is outside the model's vocabulary of %zd ids", rows[bad], bad / width, w->rows);
        else
            PyErr_Format(PyExc_ValueError, "n-gram id %d at row %zd is outside the model's n-gram ids 0..%zd", rows[bad], bad / width, w->ngram_ids - 1);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&ids);
    return result;
}

static PyObject *Model_get_isa(Model *self, void *closure) {
    (void)closure;
    return PyUnicode_FromString(self->isa ? self->isa : "");
}

static PyMethodDef Model_methods[] = {
    {"run", (PyCFunction)Model_run, METH_VARARGS,
     "run(ids, out): the spam probability of each row of int32 ids (n, maxlen + ngram_length) into float32 out (n,)"},
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
    const unsigned char *data;
    Py_ssize_t size;
} Text;

/* A text's bytes: a bytes object's, or an ASCII str's characters (its UTF-8, read in place: an ASCII
 * str's UTF-8 is its own data, so the common SMS needs no encoding). Any other str must be encoded by the
 * caller, split on Python's whitespace: C knows only the ASCII one. */
static int text_of(PyObject *item, Py_ssize_t index, Text *text) {
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

static PyObject *ngram_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "ngram_rows takes 6 arguments (texts, buckets, min_n, max_n, lower, out), found %zd", nargs);
        return NULL;
    }
    Bag bag;
    if (bag_of(&bag, args + 1) < 0)
        return NULL;
    /* A tuple of our own holds the texts: with the GIL released, another thread could empty the caller's
     * list and free them (for a tuple this is the same object). */
    PyObject *texts = PySequence_Tuple(args[0]);
    if (!texts) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "texts must be a list of bytes and ASCII str");
        }
        return NULL;
    }
    Py_buffer out;
    if (int32_out(args[5], &out, 2, "(len(texts), limit)") < 0) {
        Py_DECREF(texts);
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = PyTuple_Size(texts);
    Text few[16], *each = n <= 16 ? few : PyMem_Malloc((size_t)n * sizeof(Text));
    Py_ssize_t longest = 0, total = 0;
    Work work;
    work.heap_scratch = work.heap_seen = NULL;
    if (!each) {
        PyErr_NoMemory();
        goto done;
    }
    if (out.shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "out has %zd rows for %zd texts", out.shape[0], n);
        goto done;
    }
    for (Py_ssize_t m = 0; m < n; m++) {
        if (text_of(PyTuple_GetItem(texts, m), m, &each[m]) < 0)
            goto done;
        longest = each[m].size > longest ? each[m].size : longest;
        total += each[m].size;
    }
    const int unlocked = total > NGRAM_GIL_BYTES;
    bag.limit = out.shape[1];
    if (work_init(&work, &bag, longest, bag.buckets.d) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_ssize_t step = row_step(&out);
    PyThreadState *saved = unlocked ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t m = 0; m < n; m++)
        bag_row(each[m].data, each[m].size, &bag, &work.seen, work.scratch, (int32_t *)out.buf + m * step);
    if (saved)
        PyEval_RestoreThread(saved);
    result = Py_NewRef(Py_None);
done:
    work_free(&work);
    if (each != few)
        PyMem_Free(each);
    PyBuffer_Release(&out);
    Py_DECREF(texts);
    return result;
}

static PyObject *best_isa(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyUnicode_FromString(avx2_available() ? "avx2+fma" : baseline_name());
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
    return module;
}
