"""The validate step of export: each written model, run in the backend a device runs it with, checked
against Keras on the test part (the parity gates) and measured on the validation part (its threshold
and the recommendation), with its outputs on the golden messages. One record per model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smsguard.export import _choice as choice
from smsguard.export import _parity as parity
from smsguard.export._targets import ExportTarget
from smsguard.export._tflite import min_runtime_version
from smsguard.runtime import BundleFile, FileKind, ModelFormat, backend_info, open_session
from smsguard.train import evaluate


@dataclass(frozen=True, eq=False)
class CheckData:
    """The messages every model is checked on, and what Keras gave for them."""

    validation_ids: np.ndarray
    validation_labels: np.ndarray
    test_ids: np.ndarray
    test_labels: np.ndarray
    keras_test: np.ndarray  # Keras' probabilities on the test part: the parity reference
    golden_ids: np.ndarray  # the golden messages a device replays
    threshold: float  # the bundle's
    target_ham_fpr: float | None  # the run's, for a model's own threshold


@dataclass(frozen=True, eq=False)
class ModelCheck:
    """One model, checked: its manifest entry, parity figures, validation figures and golden outputs."""

    entry: BundleFile
    parity: parity.ModelParity
    candidate: choice.Candidate
    golden: np.ndarray  # its outputs on the golden messages
    builtin_golden: np.ndarray | None  # TFLite: the same with LiteRT's builtin kernels, no XNNPACK


def check_model(target: ExportTarget, path: Path, data: CheckData) -> ModelCheck:
    """Run the model at `path` in its target's backend on the validation, test and golden messages."""
    info = backend_info(target.backend)
    fields = {"format": target.format, "quantization": target.quantization, "variant": target.variant, "form": target.form}
    described = BundleFile.describe(path, FileKind.MODEL, **fields)
    session = open_session(info, path, described)
    inputs, outputs = session.signature()
    on_validation = session.run(data.validation_ids)
    own = choice.model_threshold(data.validation_labels, on_validation, data.threshold, data.target_ham_fpr)
    on_test = session.run(data.test_ids)
    builtin_golden = None
    min_runtime = None
    if target.format is ModelFormat.TFLITE:
        builtin_golden = open_session(info, path, described, builtin_kernels=True).run(data.golden_ids)
        oldest = min_runtime_version(path.read_bytes())
        min_runtime = {"tflite-runtime": oldest} if oldest else None
    entry = dataclasses.replace(
        described, inputs=inputs, outputs=outputs, min_runtime=min_runtime, threshold=None if own == data.threshold else own, tolerance=target.atol
    )
    return ModelCheck(
        entry=entry,
        parity=parity.compare(
            parity.Subject(path.name, info.name, target.quantization, entry.size, target.variant, target.atol),
            data.test_labels, data.keras_test, on_test, data.threshold, own,
        ),
        candidate=choice.Candidate(
            path.name, target.format, target.quantization, target.variant, entry.size, own, own != data.threshold,
            evaluate(data.validation_labels, on_validation, own),
        ),
        golden=session.run(data.golden_ids),
        builtin_golden=builtin_golden,
    )
