"""The model contract, in one place: what a row of model input holds (`InputLayout`) and how a probability
becomes a label (`Decision`). Training, export, the runtime, the scorer, the CLI and the web demo's
configuration all take these from here; every model file carries its layout in its own metadata."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smsguard._errors import BundleError

DEFAULT_MAXLEN = 40  # word ids per message, the tutorial's: 95% of training messages have at most 33 words, every spam at most 39
LABELS = ("ham", "spam")  # (negative, positive): every model outputs the probability of the second
INPUT_NAME = "token_ids"  # every model's input: int32 (batch, width), or (batch, steps + n-gram length) for a pad-primed one
OUTPUT_NAME = "spam_probability"  # every model's output: float32 (batch, 1)
MAXLEN_KEY = "smsguard.maxlen"  # the layout in a model file's metadata (ONNX metadata_props, TFLite metadata, npz meta)
NGRAM_LENGTH_KEY = "smsguard.ngram_length"
LAYOUT_METADATA = "smsguard.layout"  # a TFLite model's named metadata: the layout's metadata as JSON


@dataclass(frozen=True)
class InputLayout:
    """One row of model input: `maxlen` word ids, then, for a fused model, `ngram_length` hashed n-gram ids."""

    maxlen: int = DEFAULT_MAXLEN
    ngram_length: int = 0  # 0: a word model alone

    def __post_init__(self) -> None:
        for name in ("maxlen", "ngram_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "maxlen" else 0):
                msg = f"input layout: {name} must be a {'positive' if name == 'maxlen' else 'non-negative'} integer, found {value!r}"
                raise BundleError(msg)

    @property
    def width(self) -> int:
        """Columns of a row: the word ids, then the n-gram ids."""
        return self.maxlen + self.ngram_length

    @property
    def fused(self) -> bool:
        return self.ngram_length > 0

    def split(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(word ids, n-gram ids or None) of rows of model input, checked against the width."""
        if ids.ndim != 2 or ids.shape[1] != self.width:
            msg = f"expected int32 ids of shape (n, {self.width}), found {ids.shape}"
            raise ValueError(msg)
        if not self.fused:
            return ids, None
        return np.ascontiguousarray(ids[:, : self.maxlen]), ids[:, self.maxlen :]

    def metadata(self) -> dict[str, str]:
        """The layout as a model file's metadata: string keys and values."""
        return {MAXLEN_KEY: str(self.maxlen), NGRAM_LENGTH_KEY: str(self.ngram_length)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], where: str) -> InputLayout | None:
        """The layout a model file states (None for a model written before files stated it)."""
        if MAXLEN_KEY not in metadata:
            return None
        try:
            return cls(int(metadata[MAXLEN_KEY]), int(metadata.get(NGRAM_LENGTH_KEY, 0)))
        except (TypeError, ValueError):
            msg = f"model '{where}' states a malformed input layout: {dict(metadata)!r}"
            raise BundleError(msg) from None

    def describe(self) -> str:
        return f"{self.maxlen} word ids" + (f" then {self.ngram_length} n-gram ids" if self.fused else "")


@dataclass(frozen=True)
class Decision:
    """How a model's probability becomes a label: `labels[1]` ("spam") at or above `threshold`, else `labels[0]`."""

    threshold: float
    labels: tuple[str, str] = LABELS

    def flags(self, probabilities: Iterable[float] | np.ndarray) -> np.ndarray:
        """True where a probability is labelled positive: the rule, written once. Compared in float32, the type
        every model outputs and every threshold is chosen in (`threshold_for_ham_fpr`), so that a probability
        equal to the threshold is positive on every backend and in every client."""
        values = probabilities if isinstance(probabilities, np.ndarray) else np.fromiter(probabilities, dtype=np.float64)
        return values.astype(np.float32, copy=False) >= np.float32(self.threshold)

    def label(self, probability: float) -> str:
        return self.labels_of([probability])[0]

    def labels_of(self, probabilities: Iterable[float] | np.ndarray) -> list[str]:
        negative, positive = self.labels
        return [positive if flag else negative for flag in self.flags(probabilities).tolist()]

    def to_dict(self) -> dict[str, Any]:
        """For clients (the web demo's configuration): the threshold, the labels and the rule in words."""
        return {"threshold": self.threshold, "labels": list(self.labels), "rule": "labels[1] when probability >= threshold, else labels[0]"}
