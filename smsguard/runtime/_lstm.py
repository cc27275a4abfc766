"""The LSTM in NumPy, exact and length-adaptive, from an `.npz` file written at export.

Two facts make it cheap. The model pads at the front, so k pad tokens from the zero state always
reach the same state: export stores it for k = 0..maxlen (`primed_h`, `primed_c`), and a message
only runs its real tokens. And the embedding is followed by the LSTM's input projection, so export
folds `E[token] @ W + b` into one table: a step is a row lookup plus `h @ U`.

The file holds plain arrays (no pickle): `table` (float32, num_words x 4u) or `table_q` (int8) with
`table_scale` (float32 per row), `recurrent` (u x 4u), `dense_kernel` (u,), `dense_bias` (1,),
`primed_h` and `primed_c` (maxlen+1 x u), and `meta` (a JSON string). Gate order is Keras': i, f, c, o.

The compact form (`meta.format` 2) stores the table unfolded, for half the bytes where size matters more than
load time: `embedding_q` (int8, num_words x e) with `embedding_scale` (float32 per row), `kernel` (e x 4u) and
`bias` (4u,). `compact_table` folds them at load, in float64 rounded once to float32 as export folds a table,
so every backend gets the same table and runs it as it runs a float32 model's.

A fused model adds its n-gram branch, folded at export into `ngram_scores` (float32, buckets + 1; 0 for
padding) and `ngram_bias` (1,), with `ngram_length` in `meta`: each row of input is `maxlen` word ids then
`ngram_length` n-gram ids, and the probability is the mean of the LSTM's and sigmoid(ngram_bias + the mean
score of the n-gram ids that are not 0). That is a gather and a mean: `NgramBranch.fuse` in NumPy for the
numpy and numba backends; the native kernel computes the same in C, in the same call as its LSTM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsguard.runtime._contract import InputLayout
from smsguard.runtime._manifest import NPZ_COMPACT_FORMAT, NPZ_FORMAT

# Multiply-adds in one matrix product that OpenBLAS runs on the calling thread (m n k <= 65536 x 4,
# its default threshold). The step's product is cut into row blocks this small: with a BLAS thread
# per core beside the Python thread, a multi-threaded product of tiny matrices ran 3 to 7 times
# slower on 2 cores than on one, and the runtime must not depend on OPENBLAS_NUM_THREADS.
SINGLE_THREAD_MACS = 65536 * 4


@dataclass(frozen=True)
class NgramBranch:
    """A fused model's n-gram branch, folded: one score per bucket."""

    scores: np.ndarray  # float32 (buckets + 1,), scores[0] == 0
    bias: np.float32
    length: int  # n-gram ids per row, after the word ids

    @classmethod
    def load(cls, data: Any, meta: dict, path: Path) -> NgramBranch | None:
        """The branch stored in an open npz (None for a word model alone)."""
        if "ngram_length" not in meta:
            return None
        scores = np.ascontiguousarray(data["ngram_scores"], dtype=np.float32).reshape(-1)
        if scores.ndim != 1 or not len(scores) or scores[0] != 0:
            msg = f"'{path}' has malformed n-gram scores: expected a vector whose first (padding) score is 0"
            raise ValueError(msg)
        return cls(scores, np.float32(data["ngram_bias"].reshape(-1)[0]), int(meta["ngram_length"]))

    def fuse(self, word_probability: np.ndarray, ngram_ids: np.ndarray) -> np.ndarray:
        """The fused probability from the word branch's and the n-gram ids (n, length); row by row, so a
        message's result does not depend on the others in its batch."""
        if ngram_ids.size and (ngram_ids.min() < 0 or ngram_ids.max() >= len(self.scores)):
            msg = f"n-gram ids must be in 0..{len(self.scores) - 1}"
            raise ValueError(msg)
        total = self.scores[ngram_ids].sum(axis=1, dtype=np.float32)
        count = np.maximum(np.count_nonzero(ngram_ids, axis=1), 1).astype(np.float32)
        return self.fuse_means(word_probability, total / count)

    def fuse_means(self, word_probability: np.ndarray, means: np.ndarray) -> np.ndarray:
        """`fuse` from each row's mean n-gram score (float32; the numba backend computes them in its kernel)."""
        ngram = np.float32(1.0) / (np.float32(1.0) + np.exp(-(self.bias + means)))
        return ((word_probability + ngram) * np.float32(0.5)).astype(np.float32)


def read_meta(data: Any, path: Path) -> dict:
    """An open npz's `meta`, refused unless it is a model this runtime runs (format, gate order, activation)."""
    meta = json.loads(str(data["meta"]))
    if meta.get("format") not in (NPZ_FORMAT, NPZ_COMPACT_FORMAT) or meta.get("gates") != "ifco" or meta.get("activation") != "tanh":
        msg = f"'{path}' is an LSTM weights file this smsguard cannot run: {meta}"
        raise ValueError(msg)
    return meta


def compact_table(data: Any, path: Path) -> np.ndarray:
    """A compact model's input table, folded: `embedding_q x embedding_scale @ kernel + bias`, float32 (num_words, 4u).

    Summed in float64 and rounded once, as export folds a table, so the result does not depend on the BLAS or the
    machine: every backend (and every port that sums in double) gets the same float32 table."""
    embedding_q, scale = data["embedding_q"], data["embedding_scale"].reshape(-1)
    kernel, bias = data["kernel"], data["bias"].reshape(-1)
    if embedding_q.ndim != 2 or kernel.ndim != 2 or scale.shape != (embedding_q.shape[0],) or kernel.shape[0] != embedding_q.shape[1] or bias.shape != (kernel.shape[1],):
        msg = f"'{path}' has inconsistent compact table arrays: embedding {embedding_q.shape}, scale {scale.shape}, kernel {kernel.shape}, bias {bias.shape}"
        raise ValueError(msg)
    embedding = embedding_q.astype(np.float64) * scale.astype(np.float64)[:, None]
    return (embedding @ kernel.astype(np.float64) + bias.astype(np.float64)).astype(np.float32)


def float_table(data: Any, path: Path) -> np.ndarray:
    """The input table as float32 (num_words, 4u), whichever way the file stores it."""
    if "table" in data:
        return data["table"].astype(np.float32)
    if "table_q" in data:
        return data["table_q"].astype(np.float32) * data["table_scale"].astype(np.float32)[:, None]
    return compact_table(data, path)


def gate_halving(units: int) -> np.ndarray:
    """0.5 for the i, f, o columns (sigmoid(x) = 0.5 + 0.5 tanh(x / 2)), 1 for c: see `LstmWeights`."""
    half = np.full(4 * units, 0.5, dtype=np.float32)
    half[2 * units : 3 * units] = 1.0
    return half


@dataclass(frozen=True)
class LstmWeights:
    """Weights ready for the kernels: the i, f, o columns are halved so that one tanh gives every
    gate (sigmoid(x) = (1 + tanh(x / 2)) / 2); halving is exact in binary floating point."""

    table: np.ndarray  # float32 (num_words, 4u), gate order i, f, c, o
    recurrent: np.ndarray  # float32 (u, 4u)
    dense_kernel: np.ndarray  # float32 (u,)
    dense_bias: float
    primed_h: np.ndarray  # float32 (maxlen + 1, u): the state after k pad tokens
    primed_c: np.ndarray
    maxlen: int
    ngrams: NgramBranch | None = None  # a fused model's n-gram branch

    @property
    def units(self) -> int:
        return self.recurrent.shape[0]

    @property
    def layout(self) -> InputLayout:
        """The input these weights take, as the file's `meta` states it."""
        return InputLayout(self.maxlen, self.ngrams.length if self.ngrams else 0)

    @classmethod
    def load(cls, path: Path) -> LstmWeights:
        with np.load(path, allow_pickle=False) as data:
            meta = read_meta(data, path)
            table = float_table(data, path)
            recurrent = data["recurrent"].astype(np.float32)
            dense_kernel = data["dense_kernel"].astype(np.float32).reshape(-1)
            dense_bias = float(data["dense_bias"].reshape(-1)[0])
            primed_h = data["primed_h"].astype(np.float32)
            primed_c = data["primed_c"].astype(np.float32)
            ngrams = NgramBranch.load(data, meta, path)
        units = recurrent.shape[0]
        maxlen = int(meta["maxlen"])
        shapes_ok = (
            table.ndim == 2
            and table.shape[1] == 4 * units
            and recurrent.shape == (units, 4 * units)
            and dense_kernel.shape == (units,)
            and primed_h.shape == primed_c.shape == (maxlen + 1, units)
        )
        if not shapes_ok:
            msg = f"'{path}' has inconsistent array shapes for an LSTM of {units} units and maxlen {maxlen}"
            raise ValueError(msg)
        half = gate_halving(units)
        return cls(
            table=np.ascontiguousarray(table * half),
            recurrent=np.ascontiguousarray(recurrent * half),
            dense_kernel=dense_kernel,
            dense_bias=dense_bias,
            primed_h=primed_h,
            primed_c=primed_c,
            maxlen=maxlen,
            ngrams=ngrams,
        )


def proba(ids: np.ndarray, weights: LstmWeights) -> np.ndarray:
    """Spam probabilities for rows of model input (front-padded word ids, then a fused model's n-gram ids)."""
    words, ngram_ids = weights.layout.split(ids)
    out = lstm_proba(words, weights)
    return out if weights.ngrams is None or ngram_ids is None else weights.ngrams.fuse(out, ngram_ids)


def lstm_proba(ids: np.ndarray, weights: LstmWeights) -> np.ndarray:
    """The LSTM's spam probabilities for front-padded ids (n, maxlen): every message steps only through its
    real tokens, all messages together, the longest joining first."""
    n, maxlen = ids.shape
    u = weights.units
    lengths = np.count_nonzero(ids, axis=1)
    order = np.argsort(-lengths, kind="stable")
    ids = ids[order]
    starts = maxlen - lengths[order]  # ascending: where each message's real tokens begin
    h = weights.primed_h[starts]
    c = weights.primed_c[starts]
    active = np.searchsorted(starts, np.arange(maxlen), side="right")  # messages running at each step
    first = int(starts[0]) if n else maxlen
    block = max(1, SINGLE_THREAD_MACS // (u * 4 * u))  # rows per matrix product
    z = np.empty((n, 4 * u), dtype=np.float32)
    gated = np.empty((n, u), dtype=np.float32)
    for step in range(first, maxlen):
        k = int(active[step])
        zk = z[:k]
        for row in range(0, k, block):  # small products: BLAS keeps each on this thread (see SINGLE_THREAD_MACS)
            np.matmul(h[row : min(row + block, k)], weights.recurrent, out=zk[row : min(row + block, k)])
        zk += weights.table[ids[:k, step]]
        np.tanh(zk, out=zk)
        zk[:, : 2 * u] += 1.0  # i and f, doubled: (1 + tanh(x/2)) = 2 sigmoid(x)
        zk[:, 3 * u :] += 1.0  # o, doubled
        ck, gk = c[:k], gated[:k]
        ck *= zk[:, u : 2 * u]
        np.multiply(zk[:, :u], zk[:, 2 * u : 3 * u], out=gk)
        ck += gk
        ck *= 0.5
        np.tanh(ck, out=gk)
        gk *= zk[:, 3 * u :]
        np.multiply(gk, 0.5, out=h[:k])
    logits = h @ weights.dense_kernel + weights.dense_bias
    out = np.empty(n, dtype=np.float32)
    out[order] = 1.0 / (1.0 + np.exp(-logits))
    return out
