"""The runtime on the fast tier's tiny bundle (NumPy alone, no training): loading and refusing bundles, the
backends, the threshold rule, verify, reload, signing and the command line's errors. The slow tier repeats
what matters on a trained, exported model (test_runtime.py, test_cli.py, test_signing.py)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_file
from tiny import GOLDEN, TEXTS, make_bundle

from smsguard import cli
from smsguard.runtime import (
    BackendError,
    Bundle,
    BundleError,
    Classifier,
    Decision,
    InputLayout,
    IntegrityError,
    ReloadError,
    TokenizerConfig,
    Vocabulary,
    installed_backends,
    verify_bundle,
)
from smsguard.runtime._classifier import STREAM_CHUNK

NPZ_BACKENDS = [b.name for b in installed_backends() if b.format == "npz"]


@pytest.mark.parametrize("backend", NPZ_BACKENDS)
def test_every_npz_backend_runs_both_models_and_agrees(tiny_bundle: Path, backend: str) -> None:
    reference = Classifier.load(tiny_bundle, backend="numpy", model="model.float32.npz").predict_proba(GOLDEN)
    for model in ("model.float32.npz", "model.int8.npz"):
        got = Classifier.load(tiny_bundle, backend=backend, model=model).predict_proba(GOLDEN)
        assert got.dtype == np.float32 and got.shape == (len(GOLDEN),)
        np.testing.assert_allclose(got, reference, atol=1e-5 if model == "model.float32.npz" else 0.02, rtol=0)


def test_the_decision_rule_is_at_or_above_the_threshold() -> None:
    decision = Decision(0.5)
    probabilities = np.array([0.4999999, 0.5, 0.75], dtype=np.float32)
    assert decision.labels_of(probabilities) == ["ham", "spam", "spam"]
    assert decision.flags(probabilities).tolist() == [False, True, True]
    assert decision.label(0.5) == "spam" and Decision(0.5, ("ok", "junk")).label(0.1) == "ok"


def test_classify_names_the_decision_serial_and_model(tiny_copy: Path) -> None:
    edit_manifest(tiny_copy, lambda m: m.update(threshold=0.25, serial=7))
    classified = Classifier.load(tiny_copy, backend="numpy").classify(TEXTS)
    assert classified.decision == Decision(0.25) and classified.serial == 7 and classified.model == "model.int8.npz"
    assert classified.labels == Decision(0.25).labels_of(classified.probabilities)


def test_a_model_with_its_own_threshold_labels_at_it(tiny_copy: Path) -> None:
    probabilities = Classifier.load(tiny_copy, backend="numpy", model="model.int8.npz").predict_proba(TEXTS)
    own = float(np.sort(probabilities)[len(TEXTS) // 2])  # half the texts at or above it

    def give_own(manifest: dict) -> None:
        manifest["threshold"] = 0.999
        next(f for f in manifest["files"] if f["name"] == "model.int8.npz")["threshold"] = own

    edit_manifest(tiny_copy, give_own)
    int8 = Classifier.load(tiny_copy, backend="numpy", model="model.int8.npz")
    assert int8.threshold == own and int8.predict(TEXTS) == Decision(own).labels_of(probabilities)
    assert Classifier.load(tiny_copy, backend="numpy", model="model.float32.npz").threshold == 0.999


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_older_manifest_formats_still_load(tiny_copy: Path, version: str) -> None:
    """1.1 added a model's own threshold and variant and builtin-kernel outputs; 1.2 the serial; 1.3 the tolerance."""
    before = Classifier.load(tiny_copy, backend="numpy").predict_proba(TEXTS)

    def older(manifest: dict) -> None:
        manifest["format_version"] = version
        for entry in manifest["files"]:
            entry.pop("tolerance", None)
            if version == "1.0":
                entry.pop("variant", None)
                entry.pop("threshold", None)
        for golden in manifest["golden"]:
            if version == "1.0":
                golden.pop("builtin_kernel_probabilities", None)
        if version in ("1.0", "1.1"):
            manifest.pop("serial")

    edit_manifest(tiny_copy, older)
    loaded = Classifier.load(tiny_copy, backend="numpy")
    assert loaded.serial == (1 if version == "1.2" else 0)
    assert loaded.predict_proba(TEXTS).tobytes() == before.tobytes()
    assert verify_bundle(tiny_copy, ["numpy"]).passed


def test_a_changed_vocabulary_fails_its_hash(tiny_copy: Path) -> None:
    vocab = tiny_copy / "vocab.json"
    vocab.write_bytes(vocab.read_bytes().replace(b'"FREE"', b'"FRED"', 1))
    with pytest.raises(IntegrityError, match=rf"^bundle file '{vocab}' does not match its manifest: expected sha256 [0-9a-f]{{64}}, found [0-9a-f]{{64}}"):
        Classifier.load(tiny_copy)


def test_a_truncated_model_fails_its_hash_and_a_missing_one_is_named(tiny_copy: Path) -> None:
    model = tiny_copy / "model.int8.npz"
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="the file was changed or truncated"):
        Classifier.load(tiny_copy, model="model.int8.npz")
    model.unlink()
    with pytest.raises(BundleError, match=rf"^bundle file '{model}' is missing; re-export the bundle or copy the whole folder$"):
        Classifier.load(tiny_copy, model="model.int8.npz")
    assert Classifier.load(tiny_copy, model="model.float32.npz").predict_proba(TEXTS).shape == (len(TEXTS),)


def test_a_model_whose_file_takes_other_rows_than_the_vocabulary_gives_is_refused(tiny_copy: Path) -> None:
    data = json.loads((tiny_copy / "vocab.json").read_text(encoding="utf-8"))
    data["sequence"]["maxlen"] = 11
    replace_file(tiny_copy, "vocab.json", json.dumps(data).encode())
    with pytest.raises(BundleError, match=r"^model 'model.int8.npz' of bundle '.*' takes 12 word ids then 40 n-gram ids, but its vocabulary gives 11 word ids then 40 n-gram ids; re-export the bundle$"):
        Classifier.load(tiny_copy, backend="numpy")


def test_unknown_backends_and_models_are_named(tiny_bundle: Path) -> None:
    with pytest.raises(BackendError, match=r"^unknown backend 'tensorflow'; choose one of: auto, native"):
        Classifier.load(tiny_bundle, backend="tensorflow")
    with pytest.raises(BundleError, match=rf"^bundle '{tiny_bundle}' has no model 'model.tflite'; it has: model.float32.npz, model.int8.npz, model.int8.compact.npz$"):
        Classifier.load(tiny_bundle, model="model.tflite")
    with pytest.raises(BundleError, match=rf"^bundle '{tiny_bundle}' has no onnx model for backend 'onnxruntime'$"):
        Classifier.load(tiny_bundle, backend="onnxruntime")


def test_verify_passes_only_when_every_pair_ran(tiny_copy: Path) -> None:
    report = verify_bundle(tiny_copy)
    assert report.passed and {r.backend for r in report.results} == set(NPZ_BACKENDS)
    assert len(report.ran) == 3 * len(NPZ_BACKENDS)
    edit_manifest(tiny_copy, lambda m: m["golden"][0].update(keras_probability=m["golden"][0]["keras_probability"] + 0.5))
    failed = verify_bundle(tiny_copy)
    assert not failed.passed and {r.model for r in failed.results if not r.passed} == {"model.float32.npz"}


def test_verify_fails_when_a_pair_could_not_be_run(tiny_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model no backend here can load is not a pass, even when every pair that ran matches."""
    replace_file(tiny_copy, "model.int8.npz", b"not a model, but its sha256 is in the manifest")
    report = verify_bundle(tiny_copy)
    others = sorted(name for name in report.bundle.models if name != "model.int8.npz")
    assert sorted((r.model, r.passed) for r in report.ran) == sorted((name, True) for name in others for _ in NPZ_BACKENDS)
    assert [(r.model, r.backend) for r in report.results if r.skipped] == [("model.int8.npz", b) for b in NPZ_BACKENDS]
    assert not report.passed
    assert cli.main(["verify", str(tiny_copy)]) == 1
    n, pairs = len(NPZ_BACKENDS), len(report.results)
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"ERROR {pairs - n} of {pairs} model/backend pairs match the export machine; "
        f"{n} could not be run (listed above: use another model of the bundle, or install what it needs)"
    )


def _other_vocabulary(vocabulary: Vocabulary) -> Vocabulary:
    config = TokenizerConfig(num_words=40, lower=True, oov_token="<OOV>", maxlen=vocabulary.config.maxlen)
    return Vocabulary.fit(TEXTS[::-1], config, vocabulary.text).with_ngrams(vocabulary.ngrams)


def test_reload_never_mixes_two_bundles(tmp_path: Path) -> None:
    """Two bundles that differ in vocabulary, threshold and weights; calls longer than one chunk, four threads,
    `predict_proba` and `predict`, while the main thread swaps them back and forth: every call's result is
    wholly one bundle's."""
    first = make_bundle(tmp_path / "first", seed=0, threshold=0.3, serial=1)
    second = make_bundle(tmp_path / "second", seed=1, threshold=0.6, serial=2, edit=_other_vocabulary)
    texts = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(STREAM_CHUNK + 500)]
    expected = {}
    for bundle in (first, second):
        loaded = Classifier.load(bundle, backend="numpy")
        expected[bundle] = (loaded.predict_proba(texts).tobytes(), loaded.predict(texts))
    assert expected[first] != expected[second]
    classifier = Classifier.load(first, backend="numpy")
    seen: list[object] = []
    stop = threading.Event()

    def call(labels: bool) -> None:
        while not stop.is_set():
            seen.append(("labels", classifier.predict(texts)) if labels else ("proba", classifier.predict_proba(texts).tobytes()))

    workers = [threading.Thread(target=call, args=(i % 2 == 1,)) for i in range(4)]
    for worker in workers:
        worker.start()
    serial = 2
    for round_ in range(6):
        source = second if round_ % 2 == 0 else first
        copy = tmp_path / f"round{round_}"
        shutil.copytree(source, copy)
        edit_manifest(copy, lambda m, s=serial: m.update(serial=s))
        serial += 1
        classifier.reload(copy)
    stop.set()
    for worker in workers:
        worker.join()
    assert seen
    for kind, result in seen:
        assert result in [expected[first][0 if kind == "proba" else 1], expected[second][0 if kind == "proba" else 1]]


def test_a_refused_reload_keeps_the_old_model(tiny_bundle: Path, tmp_path: Path) -> None:
    classifier = Classifier.load(tiny_bundle, backend="numpy")
    before = classifier.predict_proba(TEXTS)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    edit_manifest(broken, lambda m: m.update(serial=5))
    (broken / "model.int8.npz").write_bytes(b"not a model")
    with pytest.raises(ReloadError, match=rf"^bundle '{broken}' not taken, still running serial 1 from '{tiny_bundle}': bundle file"):
        classifier.reload(broken)
    assert classifier.predict_proba(TEXTS).tobytes() == before.tobytes() and classifier.serial == 1


def test_the_layout_of_a_vocabulary_is_its_model_input(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    assert bundle.vocabulary.layout == InputLayout(12, 40)
    assert bundle.vocabulary.encode(TEXTS).shape == (len(TEXTS), 52)


def test_the_command_line_says_what_is_wrong_in_one_line(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert cli.main(["predict", "--bundle", str(missing), "hello"]) == 2
    assert capsys.readouterr().err.strip() == f"ERROR bundle '{missing}' does not exist; create one with `smsguard export RUN_DIR --out {missing}`"
    assert cli.main(["predict", "--bundle", str(tiny_bundle), "--backend", "numpy", "hello", "FREE entry"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["hello", "FREE entry"] and {line["label"] for line in lines} <= {"ham", "spam"}
    assert cli.main(["verify", str(tiny_bundle)]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"* All {len(Bundle.load(tiny_bundle).models) * len(NPZ_BACKENDS)} model/backend pairs match"


TRAINING_ONLY = ("pandas", "sklearn", "scipy", "tensorflow", "keras", "tf_keras", "matplotlib")
_DEVICE_CLI = """
import sys
for name in sys.argv[2].split(","):
    sys.modules[name] = None  # an import of it fails, as on a device install (numpy and a runtime extra)
from smsguard import cli
sys.exit(cli.main(["verify", sys.argv[1], "--backend", "numpy"]))
"""


def test_the_command_line_runs_verify_without_the_training_stack(tiny_bundle: Path) -> None:
    """A device install has numpy and a runtime, not pandas, scikit-learn or Keras: building the command line
    (every command's flags, the training ones too) and `verify` must not import them (the tflite-runtime and
    arm64 lanes caught `train._config` importing pandas through the campaign split)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _DEVICE_CLI, str(tiny_bundle), ",".join(TRAINING_ONLY)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pairs match" in done.stderr


def _score_in_child(classifier: Classifier, texts: list[str], out) -> None:
    out.put(classifier.predict_proba(texts, threads=2).tobytes())


def test_calls_at_once_share_the_process_scoring_threads_and_a_forked_child_has_its_own(tiny_bundle: Path) -> None:
    """Two calls at once (a server's requests, a Dask worker's tasks) take turns on one pool of scoring threads, never a
    pool each; a child forked after the pool started (workers=2 forks) starts its own, as the parent's threads stay behind."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    classifier = Classifier.load(tiny_bundle)
    texts = (TEXTS * (3 * STREAM_CHUNK // len(TEXTS) + 1))[: 3 * STREAM_CHUNK]
    expected = classifier.predict_proba(texts, threads=1).tobytes()
    with ThreadPoolExecutor(4) as callers:
        answers = list(callers.map(lambda _: classifier.predict_proba(texts, threads=2).tobytes(), range(8)))
    assert answers == [expected] * 8
    pool = [t.name for t in threading.enumerate() if t.name.startswith("smsguard-score")]
    assert len(pool) <= 2 if classifier.session.releases_gil else not pool, pool
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_score_in_child, args=(classifier, texts, out))
    child.start()
    assert out.get(timeout=60) == expected
    child.join(timeout=60)
    assert child.exitcode == 0


def test_threads_1_scores_on_the_calling_thread_with_the_same_bits(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that runs a task per core itself (Dask's threads) asks for no threads of the classifier's own."""
    classifier = Classifier.load(tiny_bundle)
    texts = (TEXTS * (3 * STREAM_CHUNK // len(TEXTS) + 1))[: 3 * STREAM_CHUNK]
    expected = np.concatenate([classifier.predict_proba(texts[i : i + 100]) for i in range(0, len(texts), 100)])
    scored_on: list[str] = []
    score = Classifier._score

    def recording(self: Classifier, chunk: list[str]) -> np.ndarray:  # the real scoring, noting the thread it runs on
        scored_on.append(threading.current_thread().name)
        return score(self, chunk)

    monkeypatch.setattr(Classifier, "_score", recording)
    for threads, pooled in ((1, False), (2, classifier.session.releases_gil)):
        scored_on.clear()
        got = np.concatenate([p for _, p in classifier.iter_chunks(texts, threads=threads)])
        assert got.tobytes() == expected.tobytes(), threads
        assert {name.startswith("smsguard-score") for name in scored_on} == {pooled}, (threads, scored_on)
        assert classifier.predict_proba(texts, threads=threads).tobytes() == expected.tobytes(), threads
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=rf"^threads must be 0 \(one per core\) or a positive number of threads, found {bad!r}$"):
            classifier.predict_proba(texts, threads=bad)  # type: ignore[arg-type]
