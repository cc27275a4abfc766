"""The one door to the C extension `_lstm_c`: nothing else in smsguard imports it.

pip builds the extension at install time when a C compiler is there (setup.py); without one the install
still succeeds, `available()` is False, the `.npz` models run in the NumPy backend and the n-gram bag in its
Python reference, and `verify`/`bench` say so once (`status()`). The extension holds the LSTM kernel (`Model`,
one message at a time, the GIL released), the n-gram hasher (`ngram_rows`) and the featuriser (`Featuriser`: a
vocabulary's rules for ASCII text, so that `Model.run_texts` goes from text to probability in one call)."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

from smsguard._errors import BackendError

MODULE = "smsguard.runtime._lstm_c"
NOT_BUILT = (
    "the native kernel (smsguard.runtime._lstm_c) was not built when smsguard was installed (no C compiler?); "
    ".npz models run in the NumPy backend, slower: install a C compiler (apt-get install gcc python3-dev) "
    "and reinstall smsguard"
)


@functools.cache
def _extension() -> Any:
    try:
        return importlib.import_module(MODULE)
    except ImportError:
        return None


def available() -> bool:
    return _extension() is not None


def extension() -> Any:
    """The loaded extension module, or a BackendError saying why there is none."""
    found = _extension()
    if found is None:
        raise BackendError(NOT_BUILT)
    return found


def best_isa() -> str:
    """The instruction set the kernel uses on this CPU ("avx512", "avx2+fma", "sse2", "neon"), or "" unbuilt."""
    return str(extension().best_isa()) if available() else ""


def lstm_model(*arrays: Any, isa: str = "auto", **ngram_branch: Any) -> Any:
    """The kernel's `Model` over the folded LSTM's arrays (it keeps them alive through their buffers)."""
    return extension().Model(*arrays, isa, **ngram_branch)


def featuriser(table: bytes, split: int, words: dict[bytes, int], oov: int, maxlen: int, pad_front: bool, keep_first: bool,
               join: tuple[bytes, int, int] | None, bag: tuple[int, int, int, bool, int] | None) -> Any:
    """The C featuriser of a vocabulary's rules for ASCII text (`Vocabulary.featuriser` says what each argument is)."""
    return extension().Featuriser(table, split, words, oov, maxlen, pad_front, keep_first, join, bag)


def ngram_rows(texts: list[str | bytes], buckets: int, min_n: int, max_n: int, lower: bool, out: Any) -> None:
    """The C n-gram hasher: each text's ids into a row of `out` (int32, contiguous rows)."""
    extension().ngram_rows(texts, buckets, min_n, max_n, lower, out)


@dataclass(frozen=True)
class NativeKernel:
    """Whether the C kernel is there, the instruction set it uses, and what to do when it is not."""

    available: bool
    isa: str
    problem: str  # "" when available


def status() -> NativeKernel:
    return NativeKernel(True, best_isa(), "") if available() else NativeKernel(False, "", NOT_BUILT)
