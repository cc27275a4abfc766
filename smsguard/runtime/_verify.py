"""`verify`: replay a bundle's golden vectors on every model with every installed backend, so a
device can prove it computes what the export machine computed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smsguard.runtime._backends import backend_info, installed_backends, open_session
from smsguard.runtime._bundle import Bundle, BundleFile, GoldenVector
from smsguard.runtime._errors import BackendError

FLOAT_ATOL = 1e-5  # float32 models compute the Keras function; only summation order differs
QUANTIZED_ATOL = 0.01  # a quantized model against its own output on the export machine: about 2 output steps of the int8 model, for CPUs whose integer kernels round differently


@dataclass
class VerifyResult:
    model: str
    backend: str
    compared_to: str  # "keras" for float models; "export" (the model's own recorded output) or "export's builtin kernels" otherwise
    tolerance: float
    max_abs_diff: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str = ""  # why the backend could not run the model at all

    @property
    def passed(self) -> bool:
        return not self.problems and not self.skipped


def verify_bundle(path: str | Path, backends: list[str] | None = None) -> tuple[Bundle, list[str], list[VerifyResult]]:
    """Check the tokenizer against the golden ids, then every (model, backend) pair against the
    golden probabilities, with the messages in one batch and one at a time.

    Returns the bundle, tokenizer problems, and one result per pair.
    """
    bundle = Bundle.load(path)
    golden = bundle.golden
    if not golden:
        msg = f"bundle '{bundle.path}' has no golden vectors to verify against; re-export it"
        raise BackendError(msg)
    texts = [g.text for g in golden]
    ids = bundle.vocabulary.encode(texts)
    expected_ids = np.array([g.ids for g in golden], dtype=np.int32)
    tokenizer_problems = [
        f"message {i} ({texts[i][:40]!r}...): ids differ from the export machine's"
        for i in np.flatnonzero((ids != expected_ids).any(axis=1))
    ]
    for name in backends or ():
        backend_info(name)  # an unknown name is an error, not a silent filter
    chosen = [b for b in installed_backends() if backends is None or b.name in backends]
    results = []
    for entry in bundle.models.values():
        for info in (b for b in chosen if b.format == entry.format):
            references = _references(entry, golden)
            try:
                session = open_session(info, bundle.model_path(entry), entry)
            except BackendError as error:
                reference, tolerance, _ = references[0]
                results.append(VerifyResult(entry.name, info.name, reference, tolerance, skipped=str(error)))
                continue
            batch = session.run(expected_ids)
            single = np.concatenate([session.run(expected_ids[i : i + 1]) for i in range(len(expected_ids))])
            compared = [_compare(entry.name, info.name, *reference, batch, single) for reference in references]
            results.append(next((r for r in compared if r.passed), compared[0]))
    return bundle, tokenizer_problems, results


def _references(entry: BundleFile, golden: list[GoldenVector]) -> list[tuple[str, float, np.ndarray]]:
    """What a model's outputs may equal: Keras for a float model; for a quantized one its own outputs on
    the export machine, or, for TFLite, those of LiteRT's builtin kernels (a runtime that runs the
    model without XNNPACK, such as tflite-runtime 2.14 with the full-integer model, rounds like them)."""
    if entry.is_float:
        return [("keras", FLOAT_ATOL, np.array([g.keras_probability for g in golden]))]
    references = [("export", QUANTIZED_ATOL, np.array([g.probabilities[entry.name] for g in golden]))]
    if all(entry.name in g.builtin_kernel_probabilities for g in golden):
        builtin = np.array([g.builtin_kernel_probabilities[entry.name] for g in golden])
        references.append(("export's builtin kernels", QUANTIZED_ATOL, builtin))
    return references


def _compare(model: str, backend: str, reference: str, tolerance: float, expected: np.ndarray, batch: np.ndarray, single: np.ndarray) -> VerifyResult:
    result = VerifyResult(model, backend, reference, tolerance)
    for how, got in (("in one batch", batch), ("one at a time", single)):
        diff = np.abs(got.astype(np.float64) - expected)
        result.max_abs_diff = max(result.max_abs_diff, float(diff.max()))
        bad = np.flatnonzero(diff > tolerance)
        if len(bad):
            result.problems.append(
                f"{len(bad)} of {len(diff)} messages {how} differ by more than {tolerance:g} "
                f"(max {diff.max():.3g}, first: message {bad[0]})"
            )
    return result


