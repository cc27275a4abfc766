/* smsguard.runtime._lstm_c: the folded, pad-primed LSTM of the .npz models in C (the "native" backend).
 *
 *   model = Model(table, table_scale, recurrent, dense_kernel, dense_bias, primed_h, primed_c, isa="auto")
 *   model.run(ids, out)   # ids: int32 (n, maxlen), C order; out: float32 (n,), written
 *
 * `table` is float32 (num_words, 4u) with the i, f, o columns already halved, or int8 (num_words, 4u)
 * with `table_scale` float32 (num_words,) (the halving is applied per row as it is read). `recurrent`
 * is float32 (u, 4u), halved likewise; `primed_h`/`primed_c` float32 (maxlen + 1, u). See _lstm.py.
 *
 * Plain CPython C API and the buffer protocol: no NumPy headers, no BLAS, no threads of its own. The
 * GIL is released while messages run, so threads sharing a Model run in parallel. Built by setuptools
 * as an optional extension with portable flags; vectorized with what the baseline ISA guarantees
 * (SSE2 on x86-64, NEON/ASIMD on aarch64) plus an AVX2+FMA variant chosen at run time on x86-64. */

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

/* ---- the Model type ------------------------------------------------------------------------------- */

enum { TABLE, SCALE, RECURRENT, DENSE, PRIMED_H, PRIMED_C, VIEWS };

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
    Py_TYPE(self)->tp_free((PyObject *)self);
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
    static char *keywords[] = {"table", "table_scale", "recurrent", "dense_kernel", "dense_bias", "primed_h", "primed_c", "isa", NULL};
    PyObject *table, *scale, *recurrent, *dense, *primed_h, *primed_c;
    float bias;
    const char *isa = "auto";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOfOO|s", keywords, &table, &scale, &recurrent, &dense, &bias, &primed_h, &primed_c, &isa))
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
    Weights *w = &self->w;
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
    double times[4] = {0, 0, 0, 0};
    PyObject *done = score(self, ids_obj, out_obj, times);
    if (!done)
        return NULL;
    Py_DECREF(done);
    double begin = now_ns();
    for (int i = 0; i < 10000; i++)
        now_ns();
    const double timer = (now_ns() - begin) / 10001;  /* what one reading of the clock adds to each part */
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d}", "lookup_ns", times[0], "recurrence_ns", times[1], "activations_ns", times[2], "output_ns", times[3], "timer_ns", timer);
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
    const char *fi = ids.format ? ids.format : "B", *fo = out.format ? out.format : "B";
    fi += (fi[0] == '<' || fi[0] == '=' || fi[0] == '@');
    fo += (fo[0] == '<' || fo[0] == '=' || fo[0] == '@');
    if (strcmp(fi, "i") != 0 || ids.itemsize != 4 || ids.ndim != 2 || ids.shape[1] != w->maxlen) {
        PyErr_Format(PyExc_ValueError, "ids must be a C-contiguous int32 array of shape (n, %d)", w->maxlen);
        goto done;
    }
    if (strcmp(fo, "f") != 0 || out.ndim != 1 || out.shape[0] != ids.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "out must be a C-contiguous float32 array with one element per row of ids");
        goto done;
    }
    const Py_ssize_t n = ids.shape[0], total = n * w->maxlen;
    const int32_t *rows = (const int32_t *)ids.buf;
    float *probabilities = (float *)out.buf;
    Py_ssize_t bad = -1;
    float *scratch = malloc(12 * (size_t)w->units * sizeof(float));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < total; i++)
        if (rows[i] < 0 || rows[i] >= w->rows) {
            bad = i;
            break;
        }
    if (bad >= 0) {
    } else if (times) {
        for (Py_ssize_t m = 0; m < n; m++)
            probabilities[m] = self->profiler(rows + m * w->maxlen, w, scratch, times);
    } else {
        Py_ssize_t m = 0;
        for (; m + 1 < n; m += 2)  /* two at a time, each with the arithmetic of one alone */
            self->pair(rows + m * w->maxlen, rows + (m + 1) * w->maxlen, w, scratch, probabilities + m, probabilities + m + 1);
        if (m < n)
            probabilities[m] = self->kernel(rows + m * w->maxlen, w, scratch);
    }
    Py_END_ALLOW_THREADS
    free(scratch);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "token id %d at row %zd is outside the model's vocabulary of %zd ids", rows[bad], bad / w->maxlen, w->rows);
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
    {"run", (PyCFunction)Model_run, METH_VARARGS, "run(ids, out): the spam probability of each row of int32 ids (n, maxlen) into float32 out (n,)"},
    {"profile", (PyCFunction)Model_profile, METH_VARARGS, "profile(ids, out): run(), timed by part (for the benchmark): a dict of nanoseconds, and one clock reading's cost"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"isa", (getter)Model_get_isa, NULL, "the instruction set the kernel runs with", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "smsguard.runtime._lstm_c.Model",
    .tp_doc = "The folded, pad-primed LSTM of an .npz model; run() is thread-safe and releases the GIL.",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

static PyObject *best_isa(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyUnicode_FromString(avx2_available() ? "avx2+fma" : baseline_name());
}

static PyMethodDef module_methods[] = {
    {"best_isa", best_isa, METH_NOARGS, "the instruction set a Model runs with on this CPU by default"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_lstm_c", "smsguard's native LSTM kernel (see _lstm_native.py)", -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lstm_c(void) {
    if (PyType_Ready(&ModelType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (!module)
        return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(module, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
