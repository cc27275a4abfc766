"""Training that expects evasion: obfuscated copies of the messages a model trains on, labels kept.

The copies are made once per run, for every message of the training and validation parts (the pool the
out-of-fold thresholds train on), from the run's seed (`TRAINING_STREAM`) and the training half of the word
lists (`Use.TRAINING`). A model trains on its clean messages plus the copies of those same messages: the final
model on the training part's, each out-of-fold model on its seen folds'. What a model is judged on stays clean:
the validation part (early stopping), the held-out fold (the threshold) and the test part (the figures).
The vocabulary is fitted on the clean training part alone, so an obfuscated word takes no id from a real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smsguard import _console as console
from smsguard.runtime import Vocabulary
from smsguard.train._config import TrainConfig
from smsguard.train._evasion import TRAINING_STREAM, Family, Use, obfuscation


@dataclass(frozen=True, eq=False)
class Copies:
    """Encoded obfuscated copies of a pool of messages: row i is a copy of pool message `origin[i]`, label `y[i]`."""

    x: np.ndarray
    y: np.ndarray
    origin: np.ndarray

    def added(self, x: np.ndarray, y: np.ndarray, messages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`x` and `y` (the pool messages at `messages`) followed by the copies of those messages."""
        keep = np.isin(self.origin, messages)
        return np.concatenate([x, self.x[keep]]), np.concatenate([y, self.y[keep]])


def obfuscated(texts: Sequence[str], families: Sequence[Family], rate: float, copies: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`copies` rounds over `texts`, each message obfuscated by one of `families` drawn at random:
    (the obfuscated texts, the index of the message each came from). A copy the family left unchanged (a
    message without a word or letter it applies to) is dropped: it would only count its message twice."""
    rng = np.random.default_rng([seed, TRAINING_STREAM])
    functions = [obfuscation(family, Use.TRAINING) for family in families]
    out: list[str] = []
    origin: list[int] = []
    for _ in range(copies):
        for i, text in enumerate(texts):
            copy = functions[int(rng.integers(len(functions)))](text, rng, rate)
            if copy != text:
                out.append(copy)
                origin.append(i)
    return out, np.asarray(origin, dtype=np.int64)


def obfuscated_copies(config: TrainConfig, vocabulary: Vocabulary, texts: Sequence[str], labels: np.ndarray) -> Copies | None:
    """The run's copies of the pool `texts` (training part, then validation part), encoded; None when the
    config asks for none (`augment_copies` 0). A copy whose ids are its original's (the normaliser undid the
    obfuscation, or it touched only what the tokenizer drops) is dropped too."""
    if not config.augment_copies:
        return None
    families = config.families
    made, origin = obfuscated(texts, families, config.augment_rate, config.augment_copies, config.seed)
    x = vocabulary.encode(made)
    new = np.any(x != vocabulary.encode(texts)[origin], axis=1)  # the model would see the others as their original
    console.step(
        f"Obfuscated copies (labels kept): {int(new.sum()):,} of {len(texts):,} training and validation messages x {config.augment_copies}, "
        f"{config.augment_rate:g} of their eligible words, {len(families)} families"
    )
    return Copies(x[new], np.asarray(labels, dtype=np.float32)[origin[new]], origin[new])
