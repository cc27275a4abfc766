"""What a bundle ships besides its models: each model's threshold and the recommended model per format,
both decided on the validation part, so the test part stays a fair measure of what was chosen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smsguard.runtime import ModelFormat, Quantization, Variant
from smsguard.train import Metrics, evaluate, threshold_for_ham_fpr

ACCURACY_SLACK = 0.001  # a quantized model may be recommended within 0.1 point of its float model
SIZE_TIE = 1.02  # sizes within 2% are equally small (the primed ONNX models carry 10 kB of states)
_ROUNDING = 1e-12  # rates computed two ways must compare equal when their counts are


@dataclass(frozen=True)
class Candidate:
    """An exported model and its figures on the validation part, at the threshold it ships with."""

    model: str
    format: ModelFormat
    quantization: Quantization
    variant: Variant
    size: int
    threshold: float
    own_threshold: bool  # the manifest gives this model its own threshold
    validation: Metrics

    def __post_init__(self) -> None:
        for name, kind in (("format", ModelFormat), ("quantization", Quantization), ("variant", Variant)):
            object.__setattr__(self, name, kind(getattr(self, name)))  # text becomes its member; a typo fails here


def model_threshold(labels: np.ndarray, probabilities: np.ndarray, bundle_threshold: float, target_ham_fpr: float | None) -> float:
    """The bundle's threshold, unless this model flags more than `target_ham_fpr` of the validation
    ham at it; then the lowest threshold at which it does not, chosen the way training chose the bundle's."""
    if target_ham_fpr is None:
        return bundle_threshold
    if evaluate(labels, probabilities, bundle_threshold).ham_false_positive_rate <= target_ham_fpr + _ROUNDING:
        return bundle_threshold
    return threshold_for_ham_fpr(labels, probabilities, target_ham_fpr)


def recommended(candidates: list[Candidate]) -> dict[ModelFormat, str]:
    """Per format, the smallest model within 0.1 point of the float model's validation accuracy and
    with no higher validation ham false-positive rate; the float model when no other is. Models
    within 2% of that size count as equally small, and then a pad-primed one, which runs only the
    real tokens, wins."""
    chosen: dict[ModelFormat, str] = {}
    for fmt in sorted({c.format for c in candidates}):
        same = [c for c in candidates if c.format == fmt]
        reference = next(c for c in same if c.quantization is Quantization.FLOAT32).validation
        good = [
            c
            for c in same
            if c.validation.accuracy >= reference.accuracy - ACCURACY_SLACK - _ROUNDING
            and c.validation.ham_false_positive_rate <= reference.ham_false_positive_rate + _ROUNDING
        ]
        smallest = min(c.size for c in good)
        chosen[fmt] = min((c for c in good if c.size <= SIZE_TIE * smallest), key=lambda c: (c.variant is not Variant.PRIMED, c.size)).model
    return chosen
