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


@numba.njit(nogil=True)
def _block(scores, ids, start, n):  # pragma: no cover - compiled
    """NumPy's `pairwise_sum` of up to 128 terms, scores[ids[start:start + n]]: up to 8 in a row; else eight interleaved
    partial sums, combined in pairs, then the rest in a row."""
    if n < 8:
        total = np.float32(0.0)
        for i in range(start, start + n):
            total += scores[ids[i]]
        return total
    r = np.empty(8, dtype=np.float32)
    for j in range(8):
        r[j] = scores[ids[start + j]]
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += scores[ids[start + i + j]]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += scores[ids[start + i]]
        i += 1
    return total


@numba.njit(nogil=True)
def _pairwise(scores, ids, n):  # pragma: no cover - compiled
    """The float32 sum of scores[ids[:n]] in NumPy's pairwise order (`_lstm_c.c`'s gathered_sum): past 128 terms, the sum
    of two halves split at a multiple of 8, each summed the same way. Without recursion (numba's disk cache cannot load a
    recursive function): a stack of halves, each waiting for its first half (stage 0), its second (1), or their sum (2)."""
    starts, sizes, stages = np.empty(64, np.int64), np.empty(64, np.int64), np.zeros(64, np.int8)
    sums = np.empty(64, dtype=np.float32)
    starts[0], sizes[0], top, done = 0, n, 0, 0
    while top >= 0:
        size = sizes[top]
        if size <= 128 or stages[top] == 2:
            if size <= 128:
                sums[done] = _block(scores, ids, starts[top], size)
            else:
                sums[done - 2] = sums[done - 2] + sums[done - 1]
                done -= 1
            done += size <= 128
            top -= 1
            continue
        half = size // 2 - (size // 2) % 8
        starts[top + 1] = starts[top] + (0 if stages[top] == 0 else half)
        sizes[top + 1] = half if stages[top] == 0 else size - half
        stages[top + 1] = 0
        stages[top] += 1
        top += 1
    return sums[0]


@numba.njit(cache=True, nogil=True)
def ngram_means(ngram_ids, scores):  # pragma: no cover - compiled
    """Each row's mean score over its non-zero n-gram ids (0 for none), float32 with the bits of `NgramBranch.fuse`'s
    `scores[ids].sum(axis=1, dtype=float32) / max(count, 1)`; and -1, or the first row holding an id outside `scores`."""
    rows, length = ngram_ids.shape
    means = np.empty(rows, dtype=np.float32)
    for m in range(rows):
        count = 0
        for j in range(length):
            if ngram_ids[m, j] < 0 or ngram_ids[m, j] >= scores.shape[0]:
                return means, m
            count += ngram_ids[m, j] != 0
        means[m] = (np.float32(0.0) + _pairwise(scores, ngram_ids[m], length)) / np.float32(max(count, 1))
    return means, -1
