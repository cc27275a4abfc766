"""The TensorFlow-free runtime on a real exported bundle: every model in its real interpreter, the
golden vectors, every error a damaged bundle or a bad argument gives, and no TensorFlow at import."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smsguard.runtime import (
    BACKENDS,
    BackendError,
    Bundle,
    BundleError,
    Classifier,
    IntegrityError,
    installed_backends,
)
from smsguard.runtime._backends import _load_error
from smsguard.runtime._verify import verify_bundle

TFLITE_MODELS = ("model.float32.tflite", "model.dynamic_int8.tflite", "model.float16.tflite", "model.int8.tflite")
ONNX_MODELS = ("model.float32.onnx", "model.dynamic_int8.onnx")
MODELS = TFLITE_MODELS + ONNX_MODELS
BACKEND_OF = {"tflite": "litert", "onnx": "onnxruntime"}  # the backend `auto` picks for a format here
FORMAT_OF = {name: "tflite" if name.endswith(".tflite") else "onnx" for name in MODELS}
HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "pandas", "sklearn")  # what the runtime must never import

FLOAT_ATOL = 1e-5  # a float32 model computes the Keras function; only summation order differs
QUANTIZED_ATOL = 0.01  # a quantized model against its own output on the export machine (same CPU here)
BATCH_ATOL = 1e-6  # each row is computed by the same kernels whatever its neighbours; 0 is measured

SPAM = "URGENT! You have WON a guaranteed £1000 cash prize. To claim call 09061701461 now. T&C apply. Valid 12hrs only"
HAM = "Are we still on for dinner tonight? I will be there around 7."
OLD_OP_ERROR = (
    "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of this builtin might be "
    "supported. Are you using an old TFLite binary with a newer model?\nRegistration failed."
)

slow = pytest.mark.slow


@pytest.fixture(scope="session")
def classifier(bundle_dir: Path):
    """`classifier(model, backend)`: one loaded Classifier per pair for the whole session."""
    return functools.cache(lambda model=None, backend="auto": Classifier.load(bundle_dir, backend=backend, model=model))


def edit_manifest(bundle: Path, change) -> None:
    """Rewrite manifest.json after `change(manifest)`; the manifest itself is not hashed."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def replace_with_non_model(bundle: Path, name: str) -> Path:
    """Overwrite a model file with text and record the new bytes' sha256, so only the loader can object."""
    path = bundle / name
    path.write_bytes(b"this is not a model, but its sha256 is in the manifest\n" * 20)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def change(manifest: dict) -> None:
        entry = next(f for f in manifest["files"] if f["name"] == name)
        entry["sha256"], entry["size"] = digest, path.stat().st_size

    edit_manifest(bundle, change)
    return path


def integrity_message(path: Path, expected: str, actual: str, size: int, expected_size: int) -> str:
    return (
        f"bundle file '{path}' does not match its manifest: expected sha256 {expected}, found {actual} "
        f"({size} bytes, expected {expected_size}); the file was changed or truncated, re-export the bundle "
        f"or copy it again"
    )


# ---- arguments that need no bundle -----------------------------------------------------------------


def test_a_missing_bundle_folder_is_refused(tmp_path):
    missing = tmp_path / "nowhere"
    expected = f"bundle '{missing}' does not exist; create one with `smsguard export RUN_DIR --out {missing}`"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(missing)


def test_a_file_given_as_bundle_is_refused(tmp_path):
    file = tmp_path / "manifest.json"
    file.write_text("{}")
    expected = f"bundle '{file}' is not a folder; create one with `smsguard export RUN_DIR --out {file}`"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(file)


def test_a_folder_without_manifest_is_refused(tmp_path):
    expected = f"manifest '{tmp_path / 'manifest.json'}' is missing"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(tmp_path)


def test_a_manifest_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    expected = (
        f"manifest '{tmp_path / 'manifest.json'}' is not readable JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(tmp_path)


@slow
def test_the_too_old_interpreter_error_names_op_and_version(bundle_dir):
    entry = Bundle.load(bundle_dir).model("model.int8.tflite")
    litert = next(b for b in BACKENDS if b.name == "litert")
    legacy = next(b for b in BACKENDS if b.name == "tflite-runtime")

    error = _load_error(litert, entry, ValueError(OLD_OP_ERROR))
    assert isinstance(error, BackendError)
    assert str(error) == (
        f"litert {litert.version} is too old for model 'model.int8.tflite': it cannot run op FULLY_CONNECTED "
        "version 12; upgrade it, or pick another model of the bundle"
    )
    assert str(_load_error(legacy, entry, ValueError(OLD_OP_ERROR))) == (
        f"tflite-runtime {legacy.version} is too old for model 'model.int8.tflite': it cannot run op "
        "FULLY_CONNECTED version 12; install ai-edge-litert (pip install 'smsguard[litert]'), or pick another "
        "model of the bundle"
    )


@slow
def test_any_other_load_error_keeps_its_first_line(bundle_dir):
    entry = Bundle.load(bundle_dir).model("model.float32.tflite")
    litert = next(b for b in BACKENDS if b.name == "litert")
    assert str(_load_error(litert, entry, RuntimeError("bad flatbuffer\nmore detail"))) == (
        f"litert {litert.version} cannot load model 'model.float32.tflite': bad flatbuffer"
    )
    assert str(_load_error(litert, entry, ValueError(""))) == (
        f"litert {litert.version} cannot load model 'model.float32.tflite': ValueError"
    )


# ---- loading -----------------------------------------------------------------------------------------


@slow
def test_the_bundle_holds_the_six_models(bundle_dir):
    bundle = Bundle.load(bundle_dir)
    assert sorted(bundle.models) == sorted(MODELS)
    assert {name: entry.format for name, entry in bundle.models.items()} == FORMAT_OF


@slow
@pytest.mark.parametrize("model", MODELS)
def test_auto_loads_each_model_in_the_backend_for_its_format(classifier, model):
    clf = classifier(model)
    assert clf.model.name == model
    assert clf.backend == BACKEND_OF[FORMAT_OF[model]]


@slow
@pytest.mark.parametrize("model", MODELS)
def test_the_named_backend_loads_each_model_of_its_format(classifier, model):
    backend = BACKEND_OF[FORMAT_OF[model]]
    clf = classifier(model, backend)
    assert (clf.model.name, clf.backend) == (model, backend)


@slow
def test_without_a_model_each_backend_loads_the_recommended_one(classifier, bundle_dir):
    recommended = Bundle.load(bundle_dir).manifest["recommended"]
    auto = classifier()
    assert (auto.backend, auto.model.name) == ("litert", recommended["tflite"])  # litert comes first
    for backend, fmt in (("litert", "tflite"), ("onnxruntime", "onnx")):
        assert classifier(None, backend).model.name == recommended[fmt]


@slow
def test_a_backend_refuses_a_model_of_the_other_format(bundle_dir):
    expected = "backend 'litert' runs tflite models, not 'model.float32.onnx' (onnx)"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, backend="litert", model="model.float32.onnx")


# ---- predictions ---------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n", [0, 1, 7, 600])
def test_predict_proba_gives_one_float32_per_text(classifier, model, n):
    texts = [f"message {i}: call me later" for i in range(n)]
    probabilities = classifier(model).predict_proba(texts)
    assert probabilities.shape == (n,)
    assert probabilities.dtype == np.float32
    assert np.all((probabilities >= 0) & (probabilities <= 1))


@slow
@pytest.mark.parametrize("model", MODELS)
def test_a_text_gets_the_same_probability_whatever_its_batch(classifier, bundle_dir, model):
    clf = classifier(model)
    texts = [g.text for g in Bundle.load(bundle_dir).golden]
    alone = np.concatenate([clf.predict_proba([text]) for text in texts])
    together = clf.predict_proba(texts)
    reversed_ = clf.predict_proba(texts[::-1])[::-1]
    large = clf.predict_proba((texts * 10)[:600])
    np.testing.assert_allclose(together, alone, rtol=0, atol=BATCH_ATOL)
    np.testing.assert_allclose(reversed_, alone, rtol=0, atol=BATCH_ATOL)
    for start in range(0, 600 - len(texts), len(texts)):
        np.testing.assert_allclose(large[start : start + len(texts)], alone, rtol=0, atol=BATCH_ATOL)
    # and a batch of 1 after a batch of 600 (the TFLite input was resized) still gives the same
    np.testing.assert_allclose(clf.predict_proba(texts[:1]), alone[:1], rtol=0, atol=BATCH_ATOL)


@slow
@pytest.mark.parametrize("model", MODELS)
def test_a_clear_spam_and_a_clear_ham_are_classified_right(classifier, model):
    assert classifier(model).predict([SPAM, HAM]) == ["spam", "ham"]


@slow
@pytest.mark.parametrize("model", ["model.dynamic_int8.tflite", "model.dynamic_int8.onnx"])
def test_predict_says_spam_from_the_threshold_up(bundle_copy, model):
    probability = float(Classifier.load(bundle_copy, model=model).predict_proba([SPAM])[0])

    def at(threshold: float) -> list[str]:
        edit_manifest(bundle_copy, lambda m: m.update(threshold=threshold))
        return Classifier.load(bundle_copy, model=model).predict([SPAM])

    assert at(probability) == ["spam"]
    assert at(float(np.nextafter(np.float32(probability), np.float32(1)))) == ["ham"]
    assert at(float(np.nextafter(np.float32(probability), np.float32(0)))) == ["spam"]


@slow
def test_the_empty_string_is_a_valid_message(classifier):
    clf = classifier()
    assert clf.encode([""]).tolist() == [[0] * clf.vocabulary.config.maxlen]
    (probability,) = clf.predict_proba([""])
    assert 0 <= probability <= 1
    assert clf.predict([""]) == ["ham"]


@slow
def test_encode_gives_int32_rows_of_maxlen(classifier):
    clf = classifier()
    maxlen = clf.vocabulary.config.maxlen
    ids = clf.encode([SPAM, HAM, "", "call " * 500])
    assert ids.dtype == np.int32
    assert ids.shape == (4, maxlen)
    assert clf.encode([]).shape == (0, maxlen)
    assert ids[2].tolist() == [0] * maxlen
    assert ids[3].tolist() == [clf.vocabulary.word_index["call"]] * maxlen  # a long text is cut to maxlen


@slow
@pytest.mark.parametrize(("texts", "message"), [
    (["fine", 3], "text at index 1 must be str, found int"),
    (["fine", "fine", None], "text at index 2 must be str, found NoneType"),
    ([b"bytes"], "text at index 0 must be str, found bytes"),
    ("a single string", "texts must be a list of strings, found a single str; wrap it in a list"),
])
def test_a_text_that_is_not_str_is_refused(classifier, texts, message):
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        classifier().predict_proba(texts)


# ---- golden vectors -------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_reproduces_the_golden_vectors(classifier, bundle_dir, model):
    golden = Bundle.load(bundle_dir).golden
    assert len(golden) > 10
    clf = classifier(model)
    np.testing.assert_array_equal(clf.encode([g.text for g in golden]), np.array([g.ids for g in golden]))
    got = clf.predict_proba([g.text for g in golden]).astype(np.float64)
    if clf.model.is_float:
        np.testing.assert_allclose(got, [g.keras_probability for g in golden], rtol=0, atol=FLOAT_ATOL)
    else:
        np.testing.assert_allclose(got, [g.probabilities[model] for g in golden], rtol=0, atol=QUANTIZED_ATOL)


# ---- a damaged bundle or a bad argument ------------------------------------------------------------------


@slow
def test_a_vocabulary_changed_by_one_byte_fails_its_hash(bundle_copy):
    vocab = bundle_copy / "vocab.json"
    original = vocab.read_bytes()
    content = bytearray(original)
    content[len(content) // 2] ^= 0x01  # still the same size
    vocab.write_bytes(bytes(content))
    expected = integrity_message(
        vocab, hashlib.sha256(original).hexdigest(), hashlib.sha256(content).hexdigest(), len(content), len(original)
    )
    with pytest.raises(IntegrityError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy)


@slow
@pytest.mark.parametrize("model", ["model.dynamic_int8.tflite", "model.dynamic_int8.onnx"])
def test_a_truncated_model_fails_its_hash(bundle_copy, model):
    path = bundle_copy / model
    original = path.read_bytes()
    path.write_bytes(original[:1000])
    expected = integrity_message(
        path, hashlib.sha256(original).hexdigest(), hashlib.sha256(original[:1000]).hexdigest(), 1000, len(original)
    )
    with pytest.raises(IntegrityError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy, model=model)


@slow
def test_a_deleted_model_is_missing_and_the_others_still_load(bundle_copy):
    (bundle_copy / "model.float16.tflite").unlink()
    expected = (
        f"bundle file '{bundle_copy / 'model.float16.tflite'}' is missing; re-export the bundle or copy the whole folder"
    )
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy, model="model.float16.tflite")
    assert Classifier.load(bundle_copy, model="model.float32.tflite").predict([SPAM]) == ["spam"]


@slow
def test_an_unknown_backend_lists_the_valid_ones(bundle_dir):
    expected = "unknown backend 'tensorflow'; choose one of: auto, litert, tflite-runtime, onnxruntime"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, backend="tensorflow")


@slow
def test_an_unknown_model_lists_the_bundle_models(bundle_dir):
    expected = f"bundle '{bundle_dir}' has no model 'model.tflite'; it has: {', '.join(Bundle.load(bundle_dir).models)}"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, model="model.tflite")


@slow
def test_a_newer_major_format_version_asks_to_upgrade(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(format_version="2.0"))
    expected = (
        f"manifest '{bundle_copy / 'manifest.json'}' has format 2.0, newer than this smsguard reads (1.1); "
        "upgrade smsguard (pip install -U smsguard)"
    )
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy)


@slow
def test_unknown_optional_fields_and_a_newer_minor_version_are_ignored(bundle_copy):
    def change(manifest: dict) -> None:
        manifest["format_version"] = "1.9"
        manifest["signed_by"] = {"key": "a field from the future"}
        for entry in manifest["files"]:
            entry["compression"] = "none"

    edit_manifest(bundle_copy, change)
    assert Classifier.load(bundle_copy).predict([SPAM, HAM]) == ["spam", "ham"]


@slow
@pytest.mark.parametrize("model", ["model.int8.tflite", "model.dynamic_int8.onnx"])
def test_a_model_threshold_in_the_manifest_is_the_one_its_classifier_uses(bundle_copy, model):
    probability = float(Classifier.load(bundle_copy, model=model).predict_proba([SPAM])[0])
    above = float(np.nextafter(np.float32(probability), np.float32(1)))

    def change(manifest: dict) -> None:
        manifest["threshold"] = 0.5
        next(f for f in manifest["files"] if f["name"] == model)["threshold"] = above

    edit_manifest(bundle_copy, change)
    own = Classifier.load(bundle_copy, model=model)
    assert own.threshold == above
    assert own.predict([SPAM]) == ["ham"]  # just under its own threshold
    other = next(name for name in MODELS if FORMAT_OF[name] == FORMAT_OF[model] and name != model)
    assert Classifier.load(bundle_copy, model=other).threshold == 0.5


@slow
def test_a_format_1_0_manifest_without_model_thresholds_still_loads(bundle_copy):
    def change(manifest: dict) -> None:
        manifest["format_version"] = "1.0"
        manifest["threshold"] = 0.5
        for entry in manifest["files"]:
            entry.pop("threshold", None)

    edit_manifest(bundle_copy, change)
    for model in MODELS:
        classifier = Classifier.load(bundle_copy, model=model)
        assert classifier.threshold == 0.5
        assert classifier.predict([SPAM, HAM]) == ["spam", "ham"]


@slow
def test_the_legacy_tflite_runtime_when_not_installed_says_how_to_install_it(bundle_dir):
    if next(b for b in BACKENDS if b.name == "tflite-runtime").installed:
        pytest.skip("tflite-runtime is installed here")
    expected = "backend 'tflite-runtime' is not installed; install it with: pip install 'smsguard[tflite]'"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, backend="tflite-runtime")


@slow
@pytest.mark.parametrize(("model", "backend", "reason"), [
    ("model.float32.tflite", "litert", "The model is not a valid Flatbuffer buffer"),
    ("model.float32.onnx", "onnxruntime", "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from {path} failed:Protobuf parsing failed."),
])
def test_a_file_that_is_not_a_model_cannot_be_loaded(bundle_copy, model, backend, reason):
    path = replace_with_non_model(bundle_copy, model)
    info = next(b for b in BACKENDS if b.name == backend)
    expected = f"{backend} {info.version} cannot load model '{model}': {reason.format(path=path)}"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy, model=model)


# ---- verify ---------------------------------------------------------------------------------------------


@slow
def test_verify_passes_every_model_with_every_backend(bundle_dir):
    bundle, tokenizer_problems, results = verify_bundle(bundle_dir)
    assert tokenizer_problems == []
    expected = {(name, b.name) for name, entry in bundle.models.items() for b in installed_backends() if b.format == entry.format}
    assert {(r.model, r.backend) for r in results} == expected
    assert {(r.model, r.backend) for r in results} >= {(m, BACKEND_OF[FORMAT_OF[m]]) for m in MODELS}
    assert [(r.model, r.problems, r.skipped) for r in results if not r.passed] == []


@slow
def test_verify_fails_the_model_whose_golden_probability_was_changed(bundle_copy):
    def change(manifest: dict) -> None:
        probabilities = manifest["golden"][3]["probabilities"]
        p = probabilities["model.int8.tflite"]
        probabilities["model.int8.tflite"] = p + 0.5 if p < 0.5 else p - 0.5

    edit_manifest(bundle_copy, change)
    bundle, tokenizer_problems, results = verify_bundle(bundle_copy)
    assert tokenizer_problems == []
    failed = [r for r in results if not r.passed]
    assert [(r.model, r.backend) for r in failed] == [("model.int8.tflite", "litert")]
    assert failed[0].max_abs_diff == pytest.approx(0.5, abs=QUANTIZED_ATOL)
    assert failed[0].problems == [
        f"1 of {len(bundle.golden)} messages {how} differ by more than 0.01 "
        f"(max {failed[0].max_abs_diff:.3g}, first: message 3)"
        for how in ("in one batch", "one at a time")
    ]


# ---- no TensorFlow on the device --------------------------------------------------------------------------

_NO_HEAVY_IMPORTS = f"HEAVY = {HEAVY!r}\n" + """
import json, sys
import smsguard.runtime as runtime
labels = {}
for backend in sys.argv[2:]:
    classifier = runtime.Classifier.load(sys.argv[1], backend=backend)
    labels[backend] = classifier.predict(["WINNER!! claim your cash prize now", "see you at 6"])
heavy = sorted(name for name in sys.modules if name.startswith(HEAVY))
print(json.dumps({"labels": labels, "heavy": heavy}))
"""


@slow
def test_the_runtime_never_imports_tensorflow_keras_or_the_training_stack(bundle_dir):
    backends = ["litert", "onnxruntime"]
    done = subprocess.run(
        [sys.executable, "-c", _NO_HEAVY_IMPORTS, str(bundle_dir), *backends],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["labels"]) == backends
    assert all(len(labels) == 2 for labels in report["labels"].values())
    assert report["heavy"] == []


@slow
def test_the_predict_command_imports_nothing_heavy(bundle_dir):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "smsguard", "predict", "--bundle", str(bundle_dir), "hi"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["text"] for line in done.stdout.splitlines()] == ["hi"]
    imported = [m[1] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE)]
    assert "smsguard.runtime._classifier" in imported  # the report was parsed
    assert [name for name in imported if name.startswith(HEAVY)] == []
