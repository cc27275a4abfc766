"""The LSTM kernels of `_lstm`, compiled with numba (the optional `fast` extra) and cached on disk.

A message costs microseconds: no per-step Python or NumPy call, only its real tokens, and the
state stays in cache. tanh is Eigen's single-precision rational approximation (the one ONNX
Runtime's MLAS uses too): within 3e-7 of tanh and three times faster than libm's here.
"""

from __future__ import annotations

import numba
import numpy as np

_CLAMP = np.float32(7.90531110763549805)  # tanh is 1 in float32 beyond this
_NUM = tuple(np.float32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_DEN = tuple(np.float32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))
_HALF = np.float32(0.5)


@numba.njit(inline="always", fastmath=True)
def _tanh(x):  # pragma: no cover - compiled
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = _NUM[0]
    p = p * x2 + _NUM[1]
    p = p * x2 + _NUM[2]
    p = p * x2 + _NUM[3]
    p = p * x2 + _NUM[4]
    p = p * x2 + _NUM[5]
    p = p * x2 + _NUM[6]
    q = _DEN[0]
    q = q * x2 + _DEN[1]
    q = q * x2 + _DEN[2]
    q = q * x2 + _DEN[3]
    return x * p / q


@numba.njit(nogil=True, fastmath=True)
def _one(ids, table, recurrent, dense_kernel, dense_bias, primed_h, primed_c, z, h, c):  # pragma: no cover - compiled
    maxlen = ids.shape[0]
    units = recurrent.shape[0]
    gates = 4 * units
    length = 0
    for t in range(maxlen):
        if ids[t] != 0:
            length += 1
    start = maxlen - length
    for j in range(units):
        h[j] = primed_h[start, j]
        c[j] = primed_c[start, j]
    for t in range(start, maxlen):
        row = ids[t]
        for j in range(gates):
            z[j] = table[row, j]
        for k in range(units):
            hk = h[k]
            for j in range(gates):
                z[j] += hk * recurrent[k, j]
        for j in range(gates):
            z[j] = _tanh(z[j])  # i, f, o columns are halved: sigmoid(x) = 0.5 + 0.5 tanh(x / 2)
        for j in range(units):
            i = _HALF + _HALF * z[j]
            f = _HALF + _HALF * z[units + j]
            o = _HALF + _HALF * z[3 * units + j]
            c[j] = f * c[j] + i * z[2 * units + j]
            h[j] = o * _tanh(c[j])
    logit = dense_bias
    for j in range(units):
        logit += h[j] * dense_kernel[j]
    return np.float32(1.0 / (1.0 + np.exp(-logit)))


@numba.njit(cache=True, nogil=True)
def proba_serial(ids, table, recurrent, dense_kernel, dense_bias, primed_h, primed_c):  # pragma: no cover - compiled
    units = recurrent.shape[0]
    z = np.empty(4 * units, dtype=np.float32)
    h = np.empty(units, dtype=np.float32)
    c = np.empty(units, dtype=np.float32)
    out = np.empty(ids.shape[0], dtype=np.float32)
    for m in range(ids.shape[0]):
        out[m] = _one(ids[m], table, recurrent, dense_kernel, dense_bias, primed_h, primed_c, z, h, c)
    return out
