"""Parity of every exported model against the Keras model, on the whole test part.

Like optimum's `validate_model_outputs`, but for quantized models too: all figures are collected
and printed as a checklist before one error names every model that failed its gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from smsguard import _console as console
from smsguard.runtime import Decision, Quantization, SmsguardError, Variant
from smsguard.train import evaluate

FLOAT_ATOL = 1e-5  # a float32 model computes the Keras function; only summation order differs (a target's `atol`)
MIN_LABEL_AGREEMENT = 0.995  # quantized exports may flip at most 1 label in 200
MAX_ACCURACY_DROP = 0.005  # ... and lose at most half a point of accuracy


class ParityError(SmsguardError):
    """An exported model's outputs are too far from the Keras model's."""


@dataclass(frozen=True)
class ModelParity:
    model: str
    backend: str
    quantization: Quantization
    variant: Variant
    threshold: float  # the model's, as shipped
    messages: int
    max_abs_diff: float
    label_agreement: float
    accuracy: float
    accuracy_change: float  # exported minus Keras, in fractions (0.001 = 0.1 point)
    spam_f1: float
    spam_f1_change: float
    ham_false_positive_rate: float
    size: int
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Subject:
    """A model whose outputs are compared: its file, the backend that ran it, its kind and size, and how far its
    outputs may be from the reference when it is a float32 model (a target's `atol`)."""

    model: str
    backend: str
    quantization: Quantization
    size: int
    variant: Variant = Variant.FIXED
    atol: float = FLOAT_ATOL

    def __post_init__(self) -> None:
        for name, kind in (("quantization", Quantization), ("variant", Variant)):
            object.__setattr__(self, name, kind(getattr(self, name)))  # a typo fails here, not silently below


def compare(
    subject: Subject, labels: np.ndarray, reference: np.ndarray, exported: np.ndarray, threshold: float, model_threshold: float | None = None
) -> ModelParity:
    """Figures of one model against the reference, and the gates it fails (empty when it passes).

    The reference is labelled at `threshold`, the model at `model_threshold` (default: the same):
    each as it ships.
    """
    own = threshold if model_threshold is None else model_threshold
    diff = float(np.max(np.abs(exported.astype(np.float64) - reference))) if len(reference) else 0.0
    agreement = float(np.mean(Decision(own).flags(exported) == Decision(threshold).flags(reference)))
    ours, theirs = evaluate(labels, exported, own), evaluate(labels, reference, threshold)
    failures = []
    if subject.quantization is Quantization.FLOAT32:
        if diff > subject.atol:
            failures.append(f"max abs difference {diff:.3g} exceeds {subject.atol:g}")
    else:
        if agreement < MIN_LABEL_AGREEMENT:
            failures.append(f"label agreement {100 * agreement:.2f}% is below {100 * MIN_LABEL_AGREEMENT:.1f}%")
        if theirs.accuracy - ours.accuracy > MAX_ACCURACY_DROP:
            drop = 100 * (theirs.accuracy - ours.accuracy)
            failures.append(f"accuracy drops {drop:.2f} points, more than {100 * MAX_ACCURACY_DROP:.1f}")
    return ModelParity(
        model=subject.model,
        backend=subject.backend,
        quantization=subject.quantization,
        variant=subject.variant,
        threshold=own,
        messages=len(reference),
        max_abs_diff=diff,
        label_agreement=agreement,
        accuracy=ours.accuracy,
        accuracy_change=ours.accuracy - theirs.accuracy,
        spam_f1=ours.spam_f1,
        spam_f1_change=ours.spam_f1 - theirs.spam_f1,
        ham_false_positive_rate=ours.ham_false_positive_rate,
        size=subject.size,
        failures=tuple(failures),
    )


def print_checklist(results: list[ModelParity]) -> None:
    for r in results:
        figures = (
            f"max diff {r.max_abs_diff:.2g}, labels agree {100 * r.label_agreement:.2f}%, "
            f"accuracy {100 * r.accuracy:.2f}% ({100 * r.accuracy_change:+.2f}), F1 {r.spam_f1:.4f} ({r.spam_f1_change:+.4f})"
        )
        console.check(r.passed, f"{r.model} [{r.backend}]: {figures}")
        for failure in r.failures:
            console.info(f"        {failure}")


def raise_on_failures(results: list[ModelParity]) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        details = "; ".join(f"{r.model}: {', '.join(r.failures)}" for r in failed)
        msg = f"{len(failed)} of {len(results)} exported models failed parity with the Keras model: {details}"
        raise ParityError(msg)


def report(results: list[ModelParity], reference_name: str, threshold: float, validation: dict[str, dict] | None = None) -> dict:
    """The parity report; `validation` adds each model's validation figures (what chose its threshold
    and the recommended models) under its name."""
    validation = validation or {}
    return {
        "reference": reference_name,
        "threshold": threshold,
        "gates": {
            "float_atol": FLOAT_ATOL,
            "min_label_agreement": MIN_LABEL_AGREEMENT,
            "max_accuracy_drop": MAX_ACCURACY_DROP,
        },
        "passed": all(r.passed for r in results),
        "models": [asdict(r) | {"passed": r.passed} | ({"validation": validation[r.model]} if r.model in validation else {}) for r in results],
    }
