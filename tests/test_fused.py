"""The fused model (word LSTM + hashed character n-gram bag), the default, through the whole pipeline on the
real data: the run and bundle of `smsguard demo` (the default preset in full), every model in its real
interpreter; plus the settings that shape it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_bits, cannot_run

from smsguard.runtime import Bundle, Classifier, ConfigError, ModelFormat, NgramConfig, NgramHasher, Variant, installed_backends, verify_bundle
from smsguard.runtime.bundle import MANIFEST_NAME, VOCAB_NAME
from smsguard.train import TrainConfig

TEXTS = [
    "WINNER!! Claim your £900 prize now: txt CLAIM to 80086",
    "Ok lar... Joking wif u oni...",
    "Your parcel is held at the depot, pay the £1.99 fee at royalmail-redelivery.co",
    "",
    "   ",
    "Hi mum, I dropped my phone in the toilet, this is my new number. Can you text me?",
    "ÇA VA? Δες ΤΟ ΣΗΜΕΙΟ İstanbul 🎉🎉",
    "x" * 3000,
]


# ---- settings ------------------------------------------------------------------------------------


def test_the_fused_preset_is_the_mediapipe_word_model_beside_the_bag() -> None:
    config = TrainConfig.from_preset("fused")
    mediapipe = TrainConfig.from_preset("mediapipe")
    assert (config.lower, config.oov_token) == (mediapipe.lower, mediapipe.oov_token) == (False, "<UNKNOWN>")
    assert config.ngrams == NgramConfig(buckets=8192, min_n=2, max_n=5, length=512, lower=True)
    assert (config.target_ham_fpr, config.threshold_folds) == (0.002, 5)
    model = config.model_config(7000)
    assert model.fused and model.width == config.maxlen + 512
    assert not model.words.fused and model.words.width == config.maxlen
    assert TrainConfig.from_preset("tuned").ngrams is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"threshold_folds": 1}, "threshold_folds must be 0 (choose on the validation part) or at least 2, found 1"),
        ({"threshold_folds": -2}, "threshold_folds must be 0 (choose on the validation part) or at least 2, found -2"),
        ({"ngram_dim": 0}, "ngram_dim must be at least 1 and ngram_scale positive, found 0 and 30.0"),
        ({"ngram_min_n": 0}, "min_n"),
        ({"ngram_min_n": 4, "ngram_max_n": 3}, "max_n"),
        ({"ngram_length": 0}, "length"),
    ],
)
def test_bad_fused_settings_fail_with_one_line_naming_them(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        TrainConfig.from_preset("fused", **overrides)
    assert "\n" not in str(error.value)


def test_train_takes_every_ngram_setting_as_a_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smsguard.cli import main
    from smsguard.train import _trainer as trainer

    seen: list[TrainConfig] = []
    monkeypatch.setattr(trainer, "train", lambda config, out, force=False: seen.append(config))
    flags = ["--ngram-buckets", "4096", "--ngram-min-n", "3", "--ngram-max-n", "4", "--ngram-length", "256", "--no-ngram-lower"]
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "fused", *flags, "--threshold-folds", "3"]) == 0
    assert seen[0].ngrams == NgramConfig(buckets=4096, min_n=3, max_n=4, length=256, lower=False)
    assert seen[0].threshold_folds == 3


# ---- a real fused run and bundle -------------------------------------------------------------------


@pytest.mark.slow
def test_a_fused_run_records_both_branches_and_an_out_of_fold_threshold(fused_run: Path) -> None:
    metrics = json.loads((fused_run / "metrics.json").read_text())
    assert metrics["threshold_rule"] == "ham FPR <= 0.002 on out-of-fold predictions, 5 folds over train + validation"
    assert 0 < metrics["threshold"] < 1 and 0 < metrics["word_threshold"] < 1
    history = json.loads((fused_run / "history.json").read_text())
    assert history["loss"] and history["ngrams"]["loss"]  # each branch with its own early stopping
    assert 1 <= history["ngrams"]["kept_epoch"] <= len(history["ngrams"]["loss"])
    model = json.loads((fused_run / "config.json").read_text())["model"]
    assert (model["ngram_buckets"], model["ngram_length"]) == (8192, 512)


@pytest.mark.slow
def test_the_fused_keras_model_is_the_mean_of_its_branches(fused_run: Path, uci_texts: list[str]) -> None:
    from smsguard._files import read_json
    from smsguard.runtime import Vocabulary
    from smsguard.train._model import NGRAMS, WORDS, load_model

    vocabulary = Vocabulary.from_dict(read_json(fused_run / VOCAB_NAME, "vocabulary"))
    model = load_model(fused_run / "model.keras")  # safe_mode: the n-gram mean is a registered layer, no Python in the file
    ids = vocabulary.encode(uci_texts[:300] + TEXTS)
    maxlen = vocabulary.config.maxlen
    words = model.get_layer(WORDS).predict(ids[:, :maxlen], verbose=0).reshape(-1)
    ngrams = model.get_layer(NGRAMS).predict(ids[:, maxlen:], verbose=0).reshape(-1)
    fused = model.predict(ids, verbose=0).reshape(-1)
    np.testing.assert_allclose(fused, (words + ngrams) / 2, atol=1e-6)
    assert np.isfinite(fused).all()  # the empty and blank texts have no n-grams: their n-gram mean is 0, not 0/0


@pytest.mark.slow
def test_the_fused_bundle_verifies_in_every_backend(fused_bundle: Path) -> None:
    report = verify_bundle(fused_bundle)
    assert report.passed, [r.problems for r in report.results if not r.passed] + report.tokenizer_problems
    ran = {(r.model, r.backend) for r in report.ran}
    for backend in installed_backends():
        assert any(b == backend.name for _, b in ran), f"no model ran in {backend.name}"


@pytest.mark.slow
def test_the_bundle_writes_down_the_ngram_spec_and_its_golden_ids_hold_the_ngram_ids(fused_bundle: Path) -> None:
    spec = json.loads((fused_bundle / VOCAB_NAME).read_text(encoding="utf-8"))["ngrams"]
    assert {k: spec[k] for k in ("buckets", "min_n", "max_n", "length", "lower", "hash", "encoding", "wrap", "order")} == {
        "buckets": 8192, "min_n": 2, "max_n": 5, "length": 512, "lower": True, "hash": "crc32", "encoding": "utf-8", "wrap": ["<", ">"], "order": "word, start, n",
    }  # fmt: skip
    bundle = Bundle.load(fused_bundle)
    vocabulary = bundle.vocabulary
    # The plain-Python reference, not the C kernel the runtime uses, on the text as both branches see it (normalised).
    reference = NgramHasher(NgramConfig(), native=False, lowercase=vocabulary.ngrams.lowercase if vocabulary.ngrams else str.lower)
    maxlen = vocabulary.config.maxlen
    for golden in bundle.golden:
        ngram_ids = list(golden.ids[maxlen:])
        expected = reference.ids(vocabulary.normalise(golden.text))
        assert ngram_ids == expected + [0] * (512 - len(expected))
        assert list(golden.ids[:maxlen]) == vocabulary.with_ngrams(None).encode([golden.text])[0].tolist()
    assert any(g.ids[maxlen] != 0 for g in bundle.golden) and any(g.text == "" for g in bundle.golden)


@pytest.mark.slow
def test_every_fused_model_takes_one_row_of_word_and_ngram_ids(fused_bundle: Path) -> None:
    manifest = json.loads((fused_bundle / MANIFEST_NAME).read_text())
    models = {f["name"]: f for f in manifest["files"] if f["kind"] == "model"}
    assert "model.int8.tflite" not in models  # full-integer int8 cannot divide by the n-gram count (see _targets.py)
    assert len(models) == 10
    for name, entry in models.items():
        (spec,) = entry["inputs"]
        assert spec["dtype"] == "int32", name
        assert spec["shape"][1] in (40 + 512, None), name  # a primed ONNX model takes any number of word ids before the n-grams


@pytest.mark.slow
def test_the_client_model_is_the_word_branch_at_its_own_threshold(fused_bundle: Path, fused_run: Path) -> None:
    manifest = json.loads((fused_bundle / MANIFEST_NAME).read_text())
    section = manifest["clients"]["mediapipe"]
    word_threshold = json.loads((fused_run / "metrics.json").read_text())["word_threshold"]
    assert {m["threshold"] for m in section["models"]} == {word_threshold}
    assert len(section["keras_probabilities"]) == len(manifest["golden"])
    fused_keras = [g["keras_probability"] for g in manifest["golden"]]
    assert section["keras_probabilities"] != fused_keras  # the word branch alone, not the fused model


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["native", "numba", "numpy", "onnxruntime", "litert"])
def test_fused_backends_agree_on_raw_text_alone_and_in_a_batch(fused_bundle: Path, uci_texts: list[str], backend: str) -> None:
    if backend not in {b.name for b in installed_backends()}:
        cannot_run(f"{backend} is not installed")
    texts = uci_texts[:200] + TEXTS
    reference = Classifier.load(fused_bundle, backend="onnxruntime", model="model.float32.onnx").predict_proba(texts)
    models = {"native": "model.float32.npz", "numba": "model.float32.npz", "numpy": "model.float32.npz", "onnxruntime": "model.float32.primed.onnx", "litert": "model.float32.tflite"}
    classifier = Classifier.load(fused_bundle, backend=backend, model=models[backend])
    batch = classifier.predict_proba(texts)
    alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batch, reference, atol=1e-5)
    if backend == "numpy":  # BLAS rounds a row's product by the matrix's shape
        np.testing.assert_allclose(alone, batch, atol=NUMPY_BATCH_ATOL, rtol=0)
    else:  # the same bits alone or among others
        assert_same_bits(batch, alone, backend)


NUMPY_BATCH_ATOL = 1e-6  # the NumPy backend is not bit-identical across batch shapes (measured: up to 2e-7)
FIXED_ONNX_BATCH_ATOL = 1e-6  # nor is ONNX Runtime on a fused bundle's fixed-length .onnx models (measured: 1.2e-7)


@pytest.mark.slow
def test_a_fused_message_gets_the_same_bits_alone_or_in_any_batch_in_every_pair(fused_bundle: Path, uci_texts: list[str]) -> None:
    """Every model of the default bundle in every backend here: alone, in its batch, in the batch reversed and in
    a batch of 600, the same bits, but for the two exceptions measured (the NumPy backend, and ONNX Runtime with
    the fixed-length ONNX models of a fused bundle), which stay within 1e-6."""
    texts = uci_texts[:100] + TEXTS
    bundle = Bundle.load(fused_bundle)
    for name, entry in bundle.models.items():
        for backend in (b.name for b in installed_backends() if b.format is entry.format):
            classifier = Classifier.load(fused_bundle, backend=backend, model=name)
            alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
            batches = (classifier.predict_proba(texts), classifier.predict_proba(texts[::-1])[::-1], classifier.predict_proba((texts * 6)[:600])[: len(texts)])
            exception = backend == "numpy" or (entry.format is ModelFormat.ONNX and entry.variant is Variant.FIXED)
            for batch in batches:
                if exception:
                    np.testing.assert_allclose(batch, alone, atol=NUMPY_BATCH_ATOL if backend == "numpy" else FIXED_ONNX_BATCH_ATOL, rtol=0)
                else:
                    assert_same_bits(batch, alone, (name, backend))


# ---- the device lanes (tests/test_devices.py runs them on the word model's bundle) ---------------------


@pytest.mark.slow
def test_tflite_runtime_2_14_runs_and_verifies_the_fused_tflite_models(fused_bundle: Path) -> None:
    from test_devices import checklist, lane, runs_of_verify

    done = lane("tflite_runtime_lane.sh", fused_bundle)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_of_verify(done.stderr)
    assert "-[✓] tokenizer: " in run  # the n-gram ids too, in the lane's own install (numpy < 2)
    assert checklist(run) == {(m, "tflite-runtime"): "✓" for m in ("model.float32.tflite", "model.dynamic_int8.tflite", "model.float16.tflite")}
    assert [json.loads(line)["label"] for line in done.stdout.splitlines()] == ["spam", "ham"]


def test_train_help_prints_percent_signs_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    from smsguard.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "5-fold threshold for 0.2% ham flagged" in out
    assert "option_strings" not in out  # argparse's %-formatting of a help text with a bare % dumps the action
