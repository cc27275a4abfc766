"""Quantized models held to evidence the export did not make itself. On the word bundle and on the default
(fused) one: every quantized model's labels on the whole test part, from the raw texts through the runtime,
against the labels of `model.keras` computed here (not the parity report, not the golden values); and every
quantized model against its own outputs on the export machine at 0 tolerance, since this is that machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smsguard.export._targets import TARGETS
from smsguard.runtime import Bundle, Classifier, ModelFormat, backend_info, open_session

pytestmark = pytest.mark.slow

MIN_LABEL_AGREEMENT = 0.995  # the README's gate for a quantized model: at most 1 label in 200 differs from Keras'
MAX_ACCURACY_DROP = 0.005  # ... and at most half a point of accuracy lost
EXPORT_BACKEND = {t.file_name: t.backend for t in TARGETS}  # the backend export ran each model in for its golden outputs


@pytest.fixture(scope="module", params=["word", "fused"])
def exported(request: pytest.FixtureRequest, data_path: Path) -> dict:
    """A bundle, and its run's test part with Keras' probabilities on it."""
    from smsguard.train import load_model, read_split

    run, bundle = (request.getfixturevalue("run_dir"), request.getfixturevalue("bundle_dir")) if request.param == "word" else (
        request.getfixturevalue("fused_run"), request.getfixturevalue("fused_bundle"))
    dataset, split = read_split(run / "split.json", data_path)
    texts = [dataset.texts[i] for i in split.test]
    labels = np.array([dataset.labels[i] for i in split.test])
    loaded = Bundle.load(bundle)
    keras = load_model(run / "model.keras").predict(loaded.vocabulary.encode(texts), batch_size=512, verbose=0).reshape(-1)
    return {"bundle": bundle, "loaded": loaded, "texts": texts, "labels": labels, "keras": keras}


def quantized(bundle: Bundle) -> list[str]:
    names = [name for name, entry in bundle.models.items() if not entry.is_float]
    assert len(names) >= 4, names  # dynamic int8 TFLite and ONNX (fixed and primed), float16, the int8 table
    return names


def test_quantized_models_label_the_test_part_as_keras_does(exported: dict) -> None:
    bundle, texts, labels, keras = exported["loaded"], exported["texts"], exported["labels"], exported["keras"]
    assert len(texts) > 1000
    keras_spam = keras >= bundle.manifest.threshold
    keras_accuracy = float(np.mean(keras_spam == (labels == 1)))
    for name in quantized(bundle):
        classifier = Classifier.load(exported["bundle"], model=name)
        spam = np.array(classifier.predict(texts)) == "spam"
        agreement = float(np.mean(spam == keras_spam))
        accuracy = float(np.mean(spam == (labels == 1)))
        assert agreement >= MIN_LABEL_AGREEMENT, (name, classifier.backend, agreement)
        assert keras_accuracy - accuracy <= MAX_ACCURACY_DROP, (name, classifier.backend, accuracy, keras_accuracy)


def test_quantized_models_give_their_export_outputs_bit_for_bit_on_the_export_machine(exported: dict) -> None:
    """The bundle was exported on this machine a moment ago: each quantized model, in the backend export ran it
    in, gives the recorded golden outputs exactly (verify allows 0.01, for other CPUs), in two sessions."""
    bundle = exported["loaded"]
    texts = [g.text for g in bundle.golden]
    for name in quantized(bundle):
        recorded = np.array([g.probabilities[name] for g in bundle.golden], dtype=np.float32)
        for _ in range(2):
            got = Classifier.load(exported["bundle"], backend=EXPORT_BACKEND[name], model=name).predict_proba(texts)
            assert got.tobytes() == recorded.tobytes(), (name, float(np.abs(got - recorded).max()))
        entry = bundle.model(name)
        if entry.format is ModelFormat.TFLITE:  # and LiteRT's builtin kernels what they gave at export
            builtin = np.array([g.builtin_kernel_probabilities[name] for g in bundle.golden], dtype=np.float32)
            session = open_session(backend_info("litert"), bundle.model_path(entry), entry, builtin_kernels=True)
            assert session.run(np.array([g.ids for g in bundle.golden], dtype=np.int32)).tobytes() == builtin.tobytes(), name
