"""The `native` backend: the `.npz` models in the C kernel `_lstm_c` that pip builds at install time.

The kernel runs one message at a time with the same function whatever the batch (a probability is
bit-identical alone or among thousands), uses no BLAS and no threads of its own, and releases the
GIL while it runs. An int8 table stays int8 in memory: each row is dequantized as it is read, exactly
as `LstmWeights.load` dequantizes the whole table for the NumPy backend. A compact model's table is folded at
load (`_lstm.compact_table`) and runs as a float32 table. A fused model's n-gram branch
(`NgramBranch`) runs in the same call: the kernel gathers the scores of a row's n-gram ids, takes their
mean and averages the two branches as `NgramBranch.fuse` does, so a fused message is one C call too. With the
vocabulary's C featuriser (`Vocabulary.featuriser`) the call starts from the texts themselves (`proba_texts`).

Where the extension was not built (no C compiler at install time, `_native.available()` is False) the
runtime falls back to the NumPy backend, and `verify`/`bench` say so once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsguard.runtime import _native
from smsguard.runtime._contract import InputLayout
from smsguard.runtime._lstm import NgramBranch, float_table, gate_halving, read_meta


@dataclass(frozen=True)
class NativeArrays:
    """What the kernel reads, as `LstmWeights` holds it, but with an int8 table left int8."""

    table: np.ndarray  # float32 (num_words, 4u), i, f, o columns halved; or int8 (num_words, 4u)
    table_scale: np.ndarray | None  # float32 (num_words,) for an int8 table
    recurrent: np.ndarray  # float32 (u, 4u), halved like the table
    dense_kernel: np.ndarray  # float32 (u,)
    dense_bias: float
    primed_h: np.ndarray  # float32 (maxlen + 1, u)
    primed_c: np.ndarray
    maxlen: int
    ngrams: NgramBranch | None = None  # a fused model's n-gram branch

    @classmethod
    def load(cls, path: Path) -> NativeArrays:
        with np.load(path, allow_pickle=False) as data:
            meta = read_meta(data, path)
            recurrent = data["recurrent"].astype(np.float32)
            units = recurrent.shape[0] if recurrent.ndim == 2 else 0
            half = gate_halving(units)
            scale: np.ndarray | None
            if "table_q" in data:
                table = np.ascontiguousarray(data["table_q"], dtype=np.int8)
                scale = np.ascontiguousarray(data["table_scale"], dtype=np.float32).reshape(-1)
            else:  # a float32 table, or a compact one folded now
                table, scale = np.ascontiguousarray(float_table(data, path) * half), None
            return cls(
                table=aligned(table),
                table_scale=None if scale is None else aligned(scale),
                recurrent=aligned(recurrent * half),
                dense_kernel=aligned(data["dense_kernel"].astype(np.float32).reshape(-1)),
                dense_bias=float(data["dense_bias"].reshape(-1)[0]),
                primed_h=aligned(data["primed_h"].astype(np.float32)),
                primed_c=aligned(data["primed_c"].astype(np.float32)),
                maxlen=int(meta["maxlen"]),
                ngrams=NgramBranch.load(data, meta, path),
            )

    @property
    def layout(self) -> InputLayout:
        """The input these arrays take, as the file's `meta` states it."""
        return InputLayout(self.maxlen, self.ngrams.length if self.ngrams else 0)

    def model(self, isa: str = "auto") -> Any:
        """The kernel's `Model` over these arrays (it keeps them alive through their buffers); a fused
        model's takes rows of its word ids then its n-gram ids, and fuses the branches itself."""
        if self.primed_h.shape[0] != self.maxlen + 1:
            msg = f"primed states have {self.primed_h.shape[0]} rows, expected maxlen + 1 = {self.maxlen + 1}"
            raise ValueError(msg)
        ngrams = self.ngrams
        branch = {} if ngrams is None else {"ngram_scores": ngrams.scores, "ngram_bias": float(ngrams.bias), "ngram_length": ngrams.length}
        return _native.lstm_model(self.table, self.table_scale, self.recurrent, self.dense_kernel, self.dense_bias, self.primed_h, self.primed_c, isa=isa, **branch)


ALIGNMENT = 64  # bytes: a cache line, and an AVX-512 register


def aligned(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `array` whose data starts on a cache line. The kernel's vector loads (64 bytes with
    AVX-512) then never straddle two lines. NumPy aligns its arrays to 16 bytes only, so which of the weights
    straddled changed from one process to the next with whatever was allocated before: a server's CPU time a
    message moved by up to a fifth between two starts of the same code (benchmarks/serve.py)."""
    buffer = np.empty(array.nbytes + ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    out = buffer[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def proba_texts(model: Any, featuriser: Any, texts: list[str | tuple[bytes, bytes]]) -> np.ndarray:
    """The kernel's probabilities for texts as `Vocabulary.featuriser_input` gives them: featurised and run in one C call."""
    out = np.empty(len(texts), dtype=np.float32)
    model.run_texts(featuriser, texts, out)
    return out


def proba(model: Any, ids: np.ndarray) -> np.ndarray:
    """The kernel's probabilities for rows of model input: word ids (n, maxlen), then a fused model's
    n-gram ids (n, maxlen + ngram_length); the kernel checks the shape and every id."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    out = np.empty(len(ids), dtype=np.float32)
    model.run(ids, out)
    return out
