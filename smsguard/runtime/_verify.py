"""`verify`: replay a bundle's golden vectors on every model with every installed backend, so a
device can prove it computes what the export machine computed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smsguard.runtime._backends import backend_info, installed_backends, open_session
from smsguard.runtime._bundle import Bundle
from smsguard.runtime._errors import BackendError

FLOAT_ATOL = 1e-5  # float32 models compute the Keras function; only summation order differs
QUANTIZED_ATOL = 0.01  # a quantized model against its own output on the export machine: about 2 output steps of the int8 model, for CPUs whose integer kernels round differently


@dataclass
class VerifyResult:
    model: str
    backend: str
    compared_to: str  # "keras" for float models, "export" (the model's own recorded output) otherwise
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
            if entry.is_float:
                expected = np.array([g.keras_probability for g in golden])
                result = VerifyResult(entry.name, info.name, "keras", FLOAT_ATOL)
            else:
                expected = np.array([g.probabilities[entry.name] for g in golden])
                result = VerifyResult(entry.name, info.name, "export", QUANTIZED_ATOL)
            results.append(result)
            try:
                session = open_session(info, bundle.model_path(entry), entry)
            except BackendError as error:
                result.skipped = str(error)
                continue
            batch = session.run(expected_ids)
            single = np.concatenate([session.run(expected_ids[i : i + 1]) for i in range(len(expected_ids))])
            for how, got in (("in one batch", batch), ("one at a time", single)):
                diff = np.abs(got.astype(np.float64) - expected)
                result.max_abs_diff = max(result.max_abs_diff, float(diff.max()))
                bad = np.flatnonzero(diff > result.tolerance)
                if len(bad):
                    result.problems.append(
                        f"{len(bad)} of {len(diff)} messages {how} differ by more than {result.tolerance:g} "
                        f"(max {diff.max():.3g}, first: message {bad[0]})"
                    )
    return bundle, tokenizer_problems, results
