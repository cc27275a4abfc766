"""Thresholds and the recommended model: a model's own threshold in the manifest, used by the Classifier;
bundles written before it still load; how export chooses both on the validation part."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from smsguard.runtime import Bundle, BundleError, Classifier, Session, TokenizerConfig, Vocabulary
from smsguard.runtime.bundle import BundleFile, FileKind, Manifest, ModelFormat, Quantization
from smsguard.train import evaluate

# ---- the manifest and the Classifier ------------------------------------------------------------------


def write_bundle(folder: Path, thresholds: dict[str, float | None], format_version: str = "1.1") -> Path:
    """A bundle with a real vocabulary and manifest, written through the bundle format's own classes; its
    model files are never opened here."""
    folder.mkdir()
    vocabulary = Vocabulary.fit(["win a prize now", "see you at six"], TokenizerConfig(maxlen=4))
    (folder / "vocab.json").write_text(json.dumps(vocabulary.to_dict()), encoding="utf-8")
    files = [BundleFile.describe(folder / "vocab.json", FileKind.VOCABULARY)]
    for name, threshold in thresholds.items():
        fmt, quantization = ModelFormat(name.rsplit(".", 1)[1]), Quantization(name.split(".")[1])
        files.append(BundleFile(name, FileKind.MODEL, 1, "0" * 64, fmt, quantization, threshold=threshold))
    manifest = Manifest(threshold=0.5, files=tuple(files), recommended={ModelFormat.TFLITE: "model.int8.tflite"}, format_version=format_version)
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()), encoding="utf-8")
    return folder


class FixedSession(Session):
    """Stands in for an interpreter: every message gets the same probability (a session states no layout)."""

    backend = None  # type: ignore[assignment]

    def __init__(self, entry: BundleFile, probability: float) -> None:
        self.entry, self.probability = entry, probability

    def run(self, ids: np.ndarray) -> np.ndarray:
        return np.full(len(ids), self.probability, dtype=np.float32)


def test_a_model_with_its_own_threshold_is_used_at_it(tmp_path: Path) -> None:
    bundle = Bundle.load(write_bundle(tmp_path / "b", {"model.float32.tflite": None, "model.int8.tflite": 0.7}))
    own, shared = bundle.model("model.int8.tflite"), bundle.model("model.float32.tflite")
    assert own.threshold == 0.7 and shared.threshold is None
    assert bundle.threshold_of(own) == 0.7 and bundle.threshold_of(shared) == 0.5

    assert Classifier(bundle, FixedSession(own, 0.6)).threshold == 0.7
    assert Classifier(bundle, FixedSession(own, 0.6)).predict(["win a prize"]) == ["ham"]  # 0.6 < its own 0.7
    assert Classifier(bundle, FixedSession(shared, 0.6)).predict(["win a prize"]) == ["spam"]  # 0.6 >= the bundle's 0.5


def test_a_bundle_from_before_per_model_thresholds_still_loads(tmp_path: Path) -> None:
    bundle = Bundle.load(write_bundle(tmp_path / "b", {"model.int8.tflite": None}, format_version="1.0"))
    entry = bundle.model("model.int8.tflite")
    assert entry.threshold is None and "threshold" not in entry.to_dict()
    assert Classifier(bundle, FixedSession(entry, 0.5)).threshold == 0.5


def test_a_model_threshold_round_trips_through_its_manifest_entry() -> None:
    entry = BundleFile("m.int8.tflite", "model", 1, "0" * 64, format="tflite", quantization="int8", threshold=0.25)
    assert entry.to_dict()["threshold"] == 0.25
    assert BundleFile.from_dict(entry.to_dict()) == entry


def test_a_model_threshold_out_of_range_is_refused(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", {"model.int8.tflite": 1.5})
    expected = f"manifest '{folder / 'manifest.json'}' is malformed: model 'model.int8.tflite' has threshold 1.5, expected one in [0, 1]"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Bundle.load(folder)


# ---- what export chooses --------------------------------------------------------------------------


def test_a_model_keeps_the_bundle_threshold_when_it_meets_the_target() -> None:
    from smsguard.export._choice import model_threshold

    labels = np.array([0, 0, 0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9], dtype=np.float32)
    assert model_threshold(labels, proba, 0.5, target_ham_fpr=0.0) == 0.5
    assert model_threshold(labels, proba, 0.5, target_ham_fpr=None) == 0.5


def test_a_model_that_flags_too_much_ham_at_the_bundle_threshold_gets_its_own() -> None:
    from smsguard.export._choice import model_threshold

    labels = np.array([0, 0, 0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.55, 0.8, 0.9], dtype=np.float32)  # a ham at 0.55: flagged at 0.5
    own = model_threshold(labels, proba, 0.5, target_ham_fpr=0.0)
    assert own == float(np.nextafter(np.float32(0.55), np.float32(1)))
    assert evaluate(labels, proba, own).ham_false_positive_rate == 0.0
    assert model_threshold(labels, proba, 0.5, target_ham_fpr=None) == 0.5  # no target: 0.5 for every model


def candidate(model: str, size: int, accuracy: float, ham_fpr: float):
    from smsguard.export._choice import Candidate
    from smsguard.train._metrics import Metrics

    metrics = Metrics(1000, 0.5, accuracy, 1.0, 1.0, 1.0, ham_fpr, 1.0, 1.0, ((0, 0), (0, 0)))
    fmt, quantization = model.rsplit(".", 1)[1], model.split(".")[1]
    return Candidate(model, fmt, quantization, "fixed", size, 0.5, False, metrics)


def test_the_recommended_model_is_the_smallest_within_a_tenth_of_a_point_and_no_more_ham_flagged() -> None:
    from smsguard.export._choice import recommended

    candidates = [
        candidate("model.float32.tflite", 400, 0.990, 0.002),
        candidate("model.float16.tflite", 200, 0.990, 0.002),
        candidate("model.dynamic_int8.tflite", 110, 0.9891, 0.002),  # 0.09 point lower: within
        candidate("model.int8.tflite", 100, 0.995, 0.003),  # more accurate, but flags more ham
        candidate("model.float32.onnx", 400, 0.990, 0.002),
        candidate("model.dynamic_int8.onnx", 100, 0.9889, 0.0),  # 0.11 point lower: too far
    ]
    assert recommended(candidates) == {"tflite": "model.dynamic_int8.tflite", "onnx": "model.float32.onnx"}
