"""The TensorFlow-free runtime on a real exported bundle: every model in its real interpreter, the
golden vectors, every error a damaged bundle or a bad argument gives, and no TensorFlow at import."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_with_non_model
from conftest import assert_same_bits, cannot_run

from smsguard import __version__
from smsguard.runtime import (
    BACKENDS,
    BackendError,
    Bundle,
    BundleError,
    Classifier,
    IntegrityError,
    installed_backends,
    verify_bundle,
)
from smsguard.runtime._backends import _load_error, backend_info

TFLITE_MODELS = ("model.float32.tflite", "model.dynamic_int8.tflite", "model.float16.tflite", "model.int8.tflite")
ONNX_MODELS = ("model.float32.onnx", "model.dynamic_int8.onnx", "model.float32.primed.onnx", "model.dynamic_int8.primed.onnx")
NPZ_MODELS = ("model.float32.npz", "model.int8.npz", "model.int8.compact.npz")
MODELS = TFLITE_MODELS + ONNX_MODELS + NPZ_MODELS
# the backend `auto` picks for a format here: the C kernel when it was built, else numba when the `fast` extra is installed
NPZ_BACKEND = "native" if backend_info("native").installed else "numba" if importlib.util.find_spec("numba") else "numpy"
BACKEND_OF = {"tflite": "litert", "onnx": "onnxruntime", "npz": NPZ_BACKEND}
FORMAT_OF = {name: name.rsplit(".", 1)[1] for name in MODELS}
HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "pandas", "sklearn", "cryptography")  # what the runtime must never import (cryptography: only with trusted keys)

FLOAT_ATOL = 1e-5  # a float32 model computes the Keras function; only summation order differs
QUANTIZED_ATOL = 0.01  # a quantized model against its own output on the export machine (same CPU here)
NUMPY_BATCH_ATOL = 1e-6  # the NumPy backend alone is not bit-identical across batch shapes (BLAS rounds by the matrix's shape)

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
    recommended = Bundle.load(bundle_dir).manifest.recommended
    auto = classifier()
    first = BACKEND_OF["npz"]  # native (built at install) or numba (the `fast` extra) when there, else numpy: all come before litert
    if first in ("native", "numba"):
        assert (auto.backend, auto.model.name) == (first, recommended["npz"])
    else:
        assert (auto.backend, auto.model.name) == ("litert", recommended["tflite"])
    for backend, fmt in (("litert", "tflite"), ("onnxruntime", "onnx"), ("numpy", "npz")):
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
    # and a batch of 1 after a batch of 600 (the TFLite input was resized) still gives the same
    after_large = clf.predict_proba(texts[:1])
    pairs = [(together, alone), (reversed_, alone), (after_large, alone[:1])]
    pairs += [(large[start : start + len(texts)], alone) for start in range(0, 600 - len(texts), len(texts))]
    for got, expected in pairs:
        if clf.backend == "numpy":
            np.testing.assert_allclose(got, expected, rtol=0, atol=NUMPY_BATCH_ATOL)
        else:  # LiteRT, ONNX Runtime, and the native and numba kernels: the same bits whatever the batch
            assert_same_bits(got, expected, (model, clf.backend))


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


class Generated:
    """A fresh generator over `items` each time it is iterated (each parametrized case reads it anew)."""

    def __init__(self, items: list) -> None:
        self.items = items

    def __iter__(self):
        return (item for item in self.items)


@slow
@pytest.mark.parametrize(("texts", "error", "message"), [
    (None, TypeError, "texts must be a list of strings, found None"),
    (42, TypeError, "texts must be a list of strings, found int"),
    (4.2, TypeError, "texts must be a list of strings, found float"),
    ("a single string", TypeError, "texts must be a list of strings, found a single str; wrap it in a list"),
    (b"single bytes", TypeError, "texts must be a list of strings, found a single bytes; wrap it in a list"),
    (["fine", 3], TypeError, "text at index 1 must be str or UTF-8 bytes, found int"),
    (["fine", "fine", None], TypeError, "text at index 2 must be str or UTF-8 bytes, found NoneType"),
    ([["nested"]], TypeError, "text at index 0 must be str or UTF-8 bytes, found list"),
    ([b"ok", b"caf\xe9 au lait"], ValueError, "text at index 1 is bytes that are not UTF-8: byte 0xe9 at offset 3; decode it yourself (for example with .decode('latin-1')) and pass str"),
    (Generated(["fine"] * 3000 + [7]), TypeError, "text at index 3000 must be str or UTF-8 bytes, found int"),
], ids=["None", "int", "float", "str", "bytes", "int item", "None item", "list item", "latin-1 bytes", "bad item past the first chunks"])
@pytest.mark.parametrize("method", ["predict_proba", "predict", "encode"])
def test_input_that_is_not_a_list_of_texts_is_refused(classifier, texts, error, message, method):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        getattr(classifier(), method)(texts)


U = "qzxv"  # a word the vocabulary does not hold: it stands for each unknown piece of an odd text
ODD_TEXTS = {  # each: a text, and the plain text the tokenizer must read the same way (U: one unknown word)
    "whitespace only": (" \t\n\r\u00a0 ", U),  # '\r' and the no-break space are not filters: one unknown word
    "NUL and control characters": ("\x00 win \x07 cash \x1b[31m now now\x7f", f"{U} win {U} cash {U} {U} now {U}"),  # DEL is no filter: 'now\x7f' is unknown
    "lone surrogates": ("\ud800 win \udfff cash \udbff\udc00", f"{U} win {U} cash {U}"),
    "right to left": ("مبروك لقد ربحت win cash \u202eprize\u202c now", f"{U} {U} {U} win cash {U} now"),  # RLO glued to a word: unknown (no normaliser)
    "emoji": ("😀 win 🎉 cash 👍🏽 now 🇺🇸", f"{U} win {U} cash {U} now {U}"),
    "CJK": ("恭喜 你 赢了 win cash 現金 now", f"{U} {U} {U} win cash {U} now"),
    "HTML": ("<p><b>WIN</b> <a href='http://x.co'>cash</a> now&nbsp;</p>", "p b win b a href 'http x co' cash a now nbsp p"),
}


@slow
@pytest.mark.parametrize("model", ["model.dynamic_int8.tflite", "model.dynamic_int8.onnx"])
def test_odd_texts_are_read_like_their_plain_equivalents(classifier, model):
    """Unknown scripts and symbols are read like any unknown word (the OOV id: this vocabulary has one; a
    vocabulary without one drops them, test_fast_texts.py); the known words around them count: the same ids
    and the same probability bits as a plain text."""
    clf = classifier(model)
    texts, plain = (list(column) for column in zip(*ODD_TEXTS.values(), strict=True))
    assert clf.vocabulary.config.oov_token is not None and U not in clf.vocabulary.word_index
    np.testing.assert_array_equal(clf.encode(texts), clf.encode(plain))
    assert np.count_nonzero(clf.encode(texts) > 1) >= 2 * (len(texts) - 1)  # the known words were found
    assert clf.predict_proba(texts).tobytes() == clf.predict_proba(plain).tobytes()
    assert clf.predict(texts) == clf.predict(plain)


@slow
def test_bytes_are_read_as_utf8(classifier):
    clf = classifier()
    texts = [SPAM, HAM, "Ça va? 😀 中文"]
    encoded = [text.encode("utf-8") for text in texts]
    np.testing.assert_array_equal(clf.predict_proba(encoded), clf.predict_proba(texts))
    np.testing.assert_array_equal(clf.predict_proba([encoded[0], texts[1], bytearray(encoded[2])]), clf.predict_proba(texts))
    assert clf.predict([encoded[0]]) == ["spam"]


@slow
def test_any_iterable_of_texts_is_accepted(classifier):
    clf = classifier()
    texts = [SPAM, HAM] * 1500  # past several streaming chunks
    expected = clf.predict_proba(texts)
    for kind in (tuple, iter, lambda t: (x for x in t), lambda t: np.array(t, dtype=object), lambda t: np.array(t)):
        assert_same_bits(clf.predict_proba(kind(texts)), expected, kind)
    assert clf.predict_proba(x for x in ()).shape == (0,)
    assert clf.predict(iter([])) == []


TEN_MB = 10_000_000
LONG_TEXTS = {  # 10 MB of UTF-8 each
    "spaced words": ("win cash now " * (TEN_MB // 13 + 1))[:TEN_MB],
    "one word": "a" * TEN_MB,
    "CJK, no spaces": "恭喜你赢了" * (TEN_MB // 15),
    "unknown words only": "😀 " * (TEN_MB // 5),  # nothing known: every piece is read, none kept
}
SPACED_PEAK = 1_000_000  # bytes: a spaced text is read 2 KB at a time and stops after maxlen ids
UNSPACED_PEAK = 8  # times the text's size: one word is lowered and filtered whole (a few copies of it)


def _scored_with_peak(clf, text):
    """`text`'s probability and the peak of Python's allocations (tracemalloc) while scoring it."""
    import tracemalloc

    tracemalloc.start()
    try:
        (probability,) = clf.predict_proba([text])
        return probability, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@slow
@pytest.mark.parametrize("name", LONG_TEXTS)
def test_a_10_mb_text_takes_bounded_memory(classifier, name):
    clf = classifier()
    text = LONG_TEXTS[name]
    probability, peak = _scored_with_peak(clf, text)
    assert 0 <= probability <= 1
    words = text.split()
    assert clf.encode([text]).tolist() == clf.encode([" ".join(words[:100])]).tolist()  # the same ids as its start
    assert peak <= (SPACED_PEAK if len(words) > 1 else UNSPACED_PEAK * len(text.encode("utf-8"))), peak


_MILLION = """
import json, sys
from pathlib import Path


def peak_kb():  # this process's own high-water mark (VmHWM): ru_maxrss carries the parent's across exec, and pytest's is large
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))

import numpy as np
from smsguard.runtime import Classifier

classifier = Classifier.load(sys.argv[1])
texts = [f"message {i}: WINNER!! call 0800 now, or are we still on for dinner?" for i in range(64)]
expected = classifier.predict_proba(texts * 100)[:64]  # warm up past the streaming chunk size: a chunk's working memory is in the peak
before = peak_kb()
# a new string object per message (equal to one of the 64): a reader that held them all would hold ~100 MB
probabilities = classifier.predict_proba(texts[i % 64][:-1] + texts[i % 64][-1] for i in range(1_000_000))
grown = peak_kb() - before
print(json.dumps({
    "count": len(probabilities),
    "grown_kb": grown,
    "same": bool((probabilities.reshape(-1, 64) == expected).all()),
}))
"""
MILLION_GROWTH_KB = 10 * 1024  # docs/reference/python-api.md: the million float32 probabilities (4 MB) held twice while they are joined, and the chunks in flight


@slow
def test_a_million_messages_are_streamed_in_bounded_memory(bundle_dir):
    done = subprocess.run([sys.executable, "-c", _MILLION, str(bundle_dir)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["count"] == 1_000_000
    assert report["same"]  # each message's probability, whatever chunk it fell in
    assert report["grown_kb"] < MILLION_GROWTH_KB, report


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
def test_a_vocabulary_from_another_run_is_refused(bundle_copy, uci_texts):
    """Same format, same settings, fitted on other messages: the manifest pins the one the models were
    trained with."""
    from smsguard._staging import write_json
    from smsguard.runtime import Vocabulary

    vocab = bundle_copy / "vocab.json"
    pinned = vocab.read_bytes()
    other = Vocabulary.fit(uci_texts[::-1][:3000], Bundle.load(bundle_copy).vocabulary.config)
    write_json(vocab, other.to_dict())
    expected = integrity_message(
        vocab, hashlib.sha256(pinned).hexdigest(), hashlib.sha256(vocab.read_bytes()).hexdigest(), vocab.stat().st_size, len(pinned)
    )
    with pytest.raises(IntegrityError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy)

    def repin(manifest: dict) -> None:  # someone "fixes" the hash: verify still sees other ids than the golden ones
        entry = next(f for f in manifest["files"] if f["name"] == "vocab.json")
        entry["sha256"], entry["size"] = hashlib.sha256(vocab.read_bytes()).hexdigest(), vocab.stat().st_size

    edit_manifest(bundle_copy, repin)
    _, tokenizer_problems, _ = verify_bundle(bundle_copy, ["onnxruntime"])
    assert len(tokenizer_problems) > len(Bundle.load(bundle_copy).golden) // 2


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
    expected = "unknown backend 'tensorflow'; choose one of: auto, native, numba, litert, tflite-runtime, onnxruntime, numpy"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, backend="tensorflow")


@slow
def test_an_unknown_model_lists_the_bundle_models(bundle_dir):
    expected = f"bundle '{bundle_dir}' has no model 'model.tflite'; it has: {', '.join(Bundle.load(bundle_dir).models)}"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_dir, model="model.tflite")


@slow
def test_a_newer_major_format_version_names_the_smsguard_that_reads_it(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(format_version="2.0", smsguard_version="0.7.0"))
    expected = (
        f"manifest '{bundle_copy / 'manifest.json'}' has format 2.0, written by smsguard 0.7.0; this smsguard "
        f"{__version__} reads format 1.x: upgrade to smsguard 0.7.0 or later (pip install -U 'smsguard>=0.7.0')"
    )
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(bundle_copy)


@slow
def test_a_newer_major_format_version_without_its_writer_asks_to_upgrade(bundle_copy):
    def change(manifest: dict) -> None:
        manifest["format_version"] = "3.1"
        del manifest["smsguard_version"]

    edit_manifest(bundle_copy, change)
    expected = (
        f"manifest '{bundle_copy / 'manifest.json'}' has format 3.1; this smsguard {__version__} reads format 1.x: "
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
        cannot_run("tflite-runtime is installed here: this test checks the error without it")
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
    def change(manifest: dict) -> None:  # both references of the model: its default and builtin kernels
        for probabilities in (manifest["golden"][3]["probabilities"], manifest["golden"][3]["builtin_kernel_probabilities"]):
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


@slow
def test_verify_accepts_a_quantized_tflite_model_that_matches_the_builtin_kernel_outputs(bundle_copy):
    """A runtime without XNNPACK for the model computes what LiteRT's builtin kernels computed on the
    export machine: verify passes it against those, and says so."""
    def change(manifest: dict) -> None:
        for golden in manifest["golden"]:  # builtin outputs := what this machine's LiteRT computes
            golden["builtin_kernel_probabilities"]["model.int8.tflite"] = golden["probabilities"]["model.int8.tflite"]
        probabilities = manifest["golden"][3]["probabilities"]
        p = probabilities["model.int8.tflite"]
        probabilities["model.int8.tflite"] = p + 0.5 if p < 0.5 else p - 0.5

    edit_manifest(bundle_copy, change)
    _, _, results = verify_bundle(bundle_copy, ["litert"])
    (int8,) = [r for r in results if r.model == "model.int8.tflite"]
    assert (int8.passed, int8.compared_to, int8.max_abs_diff) == (True, "export's builtin kernels", 0.0)
    assert all(r.compared_to == ("keras" if r.model == "model.float32.tflite" else "export") for r in results if r is not int8)


# ---- threads and processes ---------------------------------------------------------------------------------

THREADS, CALLS = 8, 1000  # one Classifier shared by 8 threads, 1,000 calls each
BATCH_SIZES = (1, 1, 2, 3, 5, 8, 13, 1, 64, 4)  # mixed, so the interpreter is resized between calls


def mixed_batches(texts: list[str], count: int, offset: int = 0) -> list[list[str]]:
    batches = []
    for i in range(offset, offset + count):
        size = BATCH_SIZES[i % len(BATCH_SIZES)]
        start = (i * 7) % len(texts)
        batches.append((texts[start:] + texts)[:size])
    return batches


@slow
@pytest.mark.parametrize("model", MODELS)
def test_one_classifier_shared_by_8_threads_gives_the_serial_results(bundle_dir, model):
    import threading

    texts = [g.text for g in Bundle.load(bundle_dir).golden]
    classifier = Classifier.load(bundle_dir, model=model)
    work = [mixed_batches(texts, CALLS, offset=thread * CALLS) for thread in range(THREADS)]
    serial = [[classifier.predict_proba(batch) for batch in batches] for batches in work]
    threaded: list[list[np.ndarray]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def calls(thread: int) -> None:
        start.wait()  # all at once
        threaded[thread] = [classifier.predict_proba(batch) for batch in work[thread]]

    workers = [threading.Thread(target=calls, args=(thread,)) for thread in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [len(results) for results in threaded] == [CALLS] * THREADS
    for expected, got in zip(serial, threaded, strict=False):
        for e, g in zip(expected, got, strict=False):
            assert_same_bits(g, e, model)


_PROCESSES = """
import json, multiprocessing, sys
from smsguard.runtime import Classifier

BATCH_SIZES = (1, 2, 3, 5, 8, 13, 64)
classifier = None


def use(shared):
    global classifier
    classifier = shared


def predict(batch):
    return classifier.predict_proba(batch).tolist()


if __name__ == "__main__":
    bundle, method, model = sys.argv[1:]
    classifier = Classifier.load(bundle, model=model)
    texts = [g.text for g in classifier.bundle.golden]
    work = [(texts[i % len(texts):] + texts)[: BATCH_SIZES[i % len(BATCH_SIZES)]] for i in range(300)]
    serial = [predict(batch) for batch in work]
    context = multiprocessing.get_context(method)
    # fork: the children inherit the loaded Classifier; spawn: it is sent to each and loaded there again
    arguments = {} if method == "fork" else {"initializer": use, "initargs": (classifier,)}
    with context.Pool(3, **arguments) as pool:
        results = pool.map(predict, work, chunksize=10)
    print(json.dumps({"same": results == serial, "calls": len(results)}))
"""


@slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("model", ["model.dynamic_int8.tflite", "model.dynamic_int8.onnx"])
def test_processes_started_by_fork_or_spawn_give_the_serial_results(bundle_dir, tmp_path, method, model):
    script = tmp_path / "processes.py"  # spawn imports the main module again: it must be a file
    script.write_text(_PROCESSES)
    done = subprocess.run(
        [sys.executable, str(script), str(bundle_dir), method, model], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"same": True, "calls": 300}


@slow
def test_a_classifier_sent_to_another_process_is_loaded_there_again(bundle_copy):
    classifier = Classifier.load(bundle_copy, backend="onnxruntime", model="model.float32.onnx")
    function, arguments = classifier.__reduce__()
    # the bundle, backend and model; no trusted keys, no personal state folder
    assert (function, arguments) == (Classifier.load, (str(bundle_copy), "onnxruntime", "model.float32.onnx", classifier._trusted, None, None))
    assert not classifier._trusted
    (bundle_copy / "model.float32.onnx").write_bytes(b"changed since")
    with pytest.raises(IntegrityError, match=r"model\.float32\.onnx' does not match its manifest"):
        function(*arguments)  # what the other process does: hashes are checked again


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


@slow
@pytest.mark.parametrize("name", LONG_TEXTS)
def test_a_10_mb_text_takes_bounded_memory_in_the_default_model(fused_bundle, name):
    """The default (fused) model normalises the text and reads its n-gram bag too: a few copies of the text at most
    (a list of its words or of its characters, as once, is 20 to 28 times its size)."""
    clf = Classifier.load(fused_bundle)
    text = LONG_TEXTS[name]
    clf.predict_proba(["warm"])
    probability, peak = _scored_with_peak(clf, text)
    assert 0 <= probability <= 1
    assert peak <= UNSPACED_PEAK * len(text.encode("utf-8")), peak
