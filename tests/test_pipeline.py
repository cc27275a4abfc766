"""The pipeline end to end on the real data set: a real run, a real export, every model in its real
interpreter; plus the pieces that decide pass or fail (metrics, thresholds, parity gates, staging)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_bits

from smsguard._files import sha256_of
from smsguard._staging import check_target, staged_folder
from smsguard.export._targets import TARGETS
from smsguard.runtime import Bundle, Classifier, SmsguardError, installed_backends
from smsguard.runtime.bundle import FORMAT_VERSION, Form, ModelFormat
from smsguard.train import evaluate, threshold_for_ham_fpr

TFLITE_MODELS = {t.file_name for t in TARGETS if t.format is ModelFormat.TFLITE}  # the names are pinned in test_targets.py
ONNX_MODELS = {t.file_name for t in TARGETS if t.format is ModelFormat.ONNX}
NPZ_MODELS = {t.file_name for t in TARGETS if t.format is ModelFormat.NPZ}
ROOT = Path(__file__).resolve().parents[1]  # the checkout


# ---- metrics and thresholds --------------------------------------------------------------------


def test_evaluate_counts_spam_as_positive() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.4])
    m = evaluate(labels, proba, threshold=0.5)
    assert m.confusion == ((3, 1), (1, 1))
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.spam_precision == pytest.approx(0.5)
    assert m.spam_recall == pytest.approx(0.5)
    assert m.ham_false_positive_rate == pytest.approx(0.25)
    assert m.roc_auc == pytest.approx(7 / 8)  # 7 of the 8 (spam, ham) pairs ranked right


def test_threshold_for_ham_fpr_is_the_lowest_meeting_the_target() -> None:
    ham = np.linspace(0.0, 0.99, 100)  # 100 ham scores
    spam = np.array([0.5, 0.995, 0.999])
    labels = np.r_[np.zeros(100), np.ones(3)]
    proba = np.r_[ham, spam].astype(np.float32)
    t = threshold_for_ham_fpr(labels, proba, target=0.02)  # at most 2 ham flagged
    flagged_ham = int(np.sum(proba[:100] >= t))
    assert flagged_ham == 2
    assert np.sum(proba[:100] >= np.nextafter(np.float32(t), np.float32(0))) == 3  # one step lower flags a third
    assert threshold_for_ham_fpr(labels, proba, target=0.0) > proba[:100].max()


def test_threshold_for_ham_fpr_rejects_targets_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"target ham false-positive rate must be in \[0, 1\), found 1.5"):
        threshold_for_ham_fpr(np.array([0, 1]), np.array([0.1, 0.9]), 1.5)


# ---- staging -------------------------------------------------------------------------------------


def test_staged_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("earlier bundle")
    with pytest.raises(RuntimeError, match="midway"), staged_folder(target, force=True, what="bundle") as folder:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("failed midway")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no partial folder left behind

    with staged_folder(target, force=True, what="bundle") as folder:
        (folder / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_staged_folder_refuses_an_existing_target_without_force(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    with (
        pytest.raises(SmsguardError, match=r"bundle '.*bundle' already exists; pass --force to replace it"),
        staged_folder(target, force=False, what="bundle"),
    ):
            pass


def dead_pid() -> int:
    """The id of a process that has exited."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)


def test_staged_folder_removes_what_a_killed_process_left(tmp_path: Path) -> None:
    leftover = tmp_path / f".bundle.partial-{dead_pid()}"
    leftover.mkdir()
    with staged_folder(tmp_path / "bundle", force=False, what="bundle"):
        pass
    assert not leftover.exists()


def test_checking_a_target_puts_back_the_folder_a_process_killed_mid_swap_moved_aside(tmp_path: Path) -> None:
    """Killed between its two renames, a run leaves the earlier folder as `.NAME.old-PID` and no NAME."""
    aside = tmp_path / f".bundle.old-{dead_pid()}"
    aside.mkdir()
    (aside / "old.txt").write_text("earlier bundle")
    with pytest.raises(SmsguardError, match="already exists"):
        check_target(tmp_path / "bundle", force=False, what="bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert (tmp_path / "bundle" / "old.txt").read_text() == "earlier bundle"


def test_an_earlier_folder_moved_aside_is_removed_once_the_new_one_is_in_place(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    aside = tmp_path / f".bundle.old-{dead_pid()}"
    aside.mkdir()
    check_target(tmp_path / "bundle", force=True, what="bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_the_leftovers_of_a_live_process_are_left_alone(tmp_path: Path) -> None:
    for name in (f".bundle.partial-{os.getpid()}", f".bundle.old-{os.getpid()}", ".bundle.partial-x"):
        (tmp_path / name).mkdir()
    check_target(tmp_path / "bundle", force=False, what="bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".bundle.old-{os.getpid()}", f".bundle.partial-{os.getpid()}", ".bundle.partial-x"])


# ---- parity gates ----------------------------------------------------------------------------------


def test_parity_gates_fail_with_the_model_and_the_figure() -> None:
    from smsguard.export import ParityError
    from smsguard.export._parity import Subject, compare, raise_on_failures

    labels = np.array([0] * 150 + [1] * 50)
    reference = np.where(labels == 1, 0.9, 0.1).astype(np.float64)
    close = compare(Subject("a.float32.tflite", "litert", "float32", 1), labels, reference, reference + 5e-6, 0.5)
    far = compare(Subject("b.float32.onnx", "onnxruntime", "float32", 1), labels, reference, reference + 2e-5, 0.5)
    flipped = reference.copy()
    flipped[:2] = 0.9  # two ham now flagged: 99.0% agreement, 1 point of accuracy lost
    quantized = compare(Subject("c.int8.tflite", "litert", "int8", 1), labels, reference, flipped, 0.5)
    assert close.passed and not far.passed and not quantized.passed
    assert far.failures == ("max abs difference 2e-05 exceeds 1e-05",)
    assert quantized.failures == (
        "label agreement 99.00% is below 99.5%",
        "accuracy drops 1.00 points, more than 0.5",
    )
    with pytest.raises(ParityError, match=r"2 of 3 exported models failed parity .*b\.float32\.onnx: max abs difference 2e-05.*c\.int8\.tflite: label agreement 99\.00%"):
        raise_on_failures([close, far, quantized])


# ---- a real run -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_folder_holds_everything_needed_to_recompute_its_figures(run_dir: Path, data_path: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    assert {"model.keras", "vocab.json", "split.json", "config.json", "history.json", "metrics.json", "plots"} <= names
    assert {p.name for p in (run_dir / "plots").glob("*.png")} == {"roc.png", "precision_recall.png", "confusion_matrix.png", "history.png"}
    from smsguard.train import TrainConfig

    shipped = TrainConfig.from_preset("tuned")  # the run is the tuned preset's (the fused default's is test_fused.py's)
    history = json.loads((run_dir / "history.json").read_text())
    assert 1 <= len(history["loss"]) == len(history["val_loss"]) <= shipped.epochs
    assert 1 <= history["kept_epoch"] <= len(history["loss"])
    if shipped.early_stopping_patience:
        assert history["kept_epoch"] == int(np.argmin(history["val_loss"])) + 1

    metrics = json.loads((run_dir / "metrics.json").read_text())
    if shipped.target_ham_fpr is None:
        assert metrics["threshold"] == 0.5
    else:
        assert metrics["threshold_rule"] == f"ham FPR <= {shipped.target_ham_fpr:g} on validation"
        assert metrics["validation"]["ham_false_positive_rate"] <= shipped.target_ham_fpr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["preset"] == shipped.preset
    for part in ("validation", "test"):
        assert set(metrics[part]) >= {"accuracy", "spam_precision", "spam_recall", "spam_f1", "ham_false_positive_rate", "roc_auc", "confusion"}

    # Recompute the test figures from split.json, the raw data file and the saved model alone.
    from smsguard.runtime import Vocabulary
    from smsguard.train import read_split
    from smsguard.train._model import load_model

    split = json.loads((run_dir / "split.json").read_text())
    assert split["duplicates_dropped"] == 403
    assert split["source"]["sha256"] == sha256_of(data_path)
    lines = data_path.read_bytes().decode("utf-8", "replace").split("\n")
    rows = [lines[r].rstrip("\r").split("\t", 1) for r in split["test"]]
    labels = np.array([label == "spam" for label, _ in rows])
    vocabulary = Vocabulary.from_dict(json.loads((run_dir / "vocab.json").read_text()))
    model = load_model(run_dir / "model.keras")
    proba = model.predict(vocabulary.encode([text for _, text in rows]), verbose=0).reshape(-1)
    recomputed = evaluate(labels, proba, metrics["threshold"])
    assert recomputed.confusion == tuple(tuple(r) for r in metrics["test"]["confusion"])
    assert recomputed.accuracy == pytest.approx(metrics["test"]["accuracy"])

    _dataset, parts = read_split(run_dir / "split.json")
    assert len(parts.test) == len(rows) and not set(parts.test) & set(parts.train)


@pytest.mark.slow
def test_the_tokenizer_is_fitted_on_the_training_part_only(run_dir: Path) -> None:
    from smsguard.runtime import Vocabulary
    from smsguard.train import read_split

    dataset, split = read_split(run_dir / "split.json")
    vocabulary = Vocabulary.from_dict(json.loads((run_dir / "vocab.json").read_text()))
    refit = Vocabulary.fit([dataset.texts[i] for i in split.train], vocabulary.config, vocabulary.text)
    assert refit == vocabulary
    everything = Vocabulary.fit(dataset.texts, vocabulary.config, vocabulary.text)
    assert everything != vocabulary


@pytest.mark.slow
def test_a_target_ham_fpr_sets_the_threshold_on_validation(data_path: Path, tmp_path: Path) -> None:
    from smsguard.train import TrainConfig, train

    result = train(TrainConfig.from_preset("tuned", data=str(data_path), epochs=2, target_ham_fpr=0.0), tmp_path / "run")
    assert result.validation.ham_false_positive_rate == 0.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["threshold"] == result.threshold != 0.5
    assert metrics["threshold_rule"] == "ham FPR <= 0 on validation"


@pytest.mark.slow
def test_the_same_seed_trains_the_same_model(data_path: Path, tmp_path: Path) -> None:
    from smsguard.train import TrainConfig, train

    first = train(TrainConfig.from_preset("tuned", data=str(data_path), epochs=1, seed=7), tmp_path / "a")
    second = train(TrainConfig.from_preset("tuned", data=str(data_path), epochs=1, seed=7), tmp_path / "b")
    assert first.test == second.test
    assert (tmp_path / "a" / "split.json").read_bytes() == (tmp_path / "b" / "split.json").read_bytes()


# ---- a real bundle ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_bundle_holds_every_model_pinned_by_the_manifest(bundle_dir: Path) -> None:
    from smsguard.train import TrainConfig

    maxlen = TrainConfig().maxlen
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == "1.4"
    assert manifest["labels"] == ["ham", "spam"]
    assert set(manifest["tools"]) >= {"tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "python"}
    files = {f["name"]: f for f in manifest["files"]}
    assert set(files) == TFLITE_MODELS | ONNX_MODELS | NPZ_MODELS | {"vocab.json", "parity.json"}
    assert {p.name for p in bundle_dir.iterdir()} == set(files) | {"manifest.json"}
    for name, entry in files.items():
        assert entry["size"] == (bundle_dir / name).stat().st_size
        assert entry["sha256"] == sha256_of(bundle_dir / name)
    for name in TFLITE_MODELS | ONNX_MODELS | NPZ_MODELS:
        entry = files[name]
        assert entry["kind"] == "model" and entry["format"] == name.rsplit(".", 1)[1]
        assert entry["quantization"] == name.split(".")[1]
        (inp,) = entry["inputs"]
        primed = entry["variant"] == "primed"
        assert primed == (".primed." in name or name.endswith(".npz"))
        assert inp["dtype"] == "int32" and inp["shape"] == ([None, None] if primed and entry["format"] == "onnx" else [None, maxlen])
        (out,) = entry["outputs"]
        assert out["dtype"] == "float32"
    assert len(manifest["golden"]) >= 64
    assert {g["label"] for g in manifest["golden"]} == {"spam", "ham"}
    assert set(manifest["recommended"]) == {"tflite", "onnx", "npz"}


@pytest.mark.slow
def test_no_json_file_of_the_run_folder_holds_a_path_of_the_machine(run_dir: Path, data_path: Path) -> None:
    """docs/reference/run-folder.md: split.json holds the data file's name and SHA-256, 'never its path'; nor
    does any other JSON file of the run (the folder is what export reads on another machine)."""
    split = json.loads((run_dir / "split.json").read_text())
    assert split["source"]["name"] == data_path.name
    paths = {str(p) for p in (run_dir.resolve(), data_path.resolve().parent, Path.home(), ROOT)}
    for file in run_dir.glob("*.json"):
        content = file.read_text(encoding="utf-8")
        assert [p for p in paths if p in content] == [], file.name


@pytest.mark.slow
def test_no_file_of_the_bundle_holds_a_path_of_the_export_machine(bundle_dir: Path, run_dir: Path, data_path: Path) -> None:
    """docs/reference/bundle-format.md: the source is the run folder's name, 'never a path of the export machine';
    no model file, vocabulary or report carries one either (they travel to devices)."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["source"]["run"] == run_dir.name and "/" not in manifest["source"]["run"]
    paths = {str(p) for p in (run_dir.resolve(), bundle_dir.resolve(), data_path.resolve().parent, Path.home(), ROOT)}
    for file in bundle_dir.iterdir():
        content = file.read_bytes()
        assert [p for p in paths if p.encode() in content] == [], file.name


@pytest.mark.slow
def test_the_recommended_model_follows_the_rule_on_the_validation_part(bundle_dir: Path) -> None:
    """Per format: the smallest within 0.1 point of the float model's validation accuracy, no more ham
    flagged; within 2% of that size, a pad-primed model first."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    report = json.loads((bundle_dir / "parity.json").read_text())
    figures = {m["model"]: m["validation"] | {"size": m["size"]} for m in report["models"]}
    folded_npz = {t.file_name for t in TARGETS if t.format is ModelFormat.NPZ and t.form is Form.FOLDED}  # a compact model is for packs, never recommended
    for fmt, models in (("tflite", TFLITE_MODELS), ("onnx", ONNX_MODELS), ("npz", folded_npz)):
        reference = figures[f"model.float32.{fmt}"]
        good = {
            name
            for name in models
            if figures[name]["accuracy"] >= reference["accuracy"] - 0.001 - 1e-12
            and figures[name]["ham_false_positive_rate"] <= reference["ham_false_positive_rate"] + 1e-12
        }
        smallest = min(figures[name]["size"] for name in good)
        tied = [name for name in good if figures[name]["size"] <= 1.02 * smallest]
        assert manifest["recommended"][fmt] == min(tied, key=lambda name: (".primed." not in name and not name.endswith(".npz"), figures[name]["size"]))


@pytest.mark.slow
def test_each_model_ships_the_threshold_it_was_checked_at(bundle_dir: Path, run_dir: Path) -> None:
    from smsguard.train import TrainConfig

    target = TrainConfig.from_preset("tuned").target_ham_fpr  # bundle_dir is the tuned run's
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    report = {m["model"]: m for m in json.loads((bundle_dir / "parity.json").read_text())["models"]}
    assert manifest["threshold"] == json.loads((run_dir / "metrics.json").read_text())["threshold"]
    for entry in manifest["files"]:
        if entry["kind"] != "model":
            continue
        shipped = entry.get("threshold", manifest["threshold"])
        assert report[entry["name"]]["threshold"] == report[entry["name"]]["validation"]["threshold"] == shipped
        assert Classifier.load(bundle_dir, model=entry["name"]).threshold == shipped
        if target is not None:
            assert report[entry["name"]]["validation"]["ham_false_positive_rate"] <= target
        else:
            assert "threshold" not in entry


@pytest.mark.slow
def test_quantized_models_are_smaller(bundle_dir: Path) -> None:
    size = {p.name: p.stat().st_size for p in bundle_dir.iterdir()}
    assert size["model.dynamic_int8.tflite"] < 0.3 * size["model.float32.tflite"]
    assert size["model.int8.tflite"] < 0.3 * size["model.float32.tflite"]
    assert size["model.float16.tflite"] < 0.55 * size["model.float32.tflite"]
    assert size["model.dynamic_int8.onnx"] < 0.3 * size["model.float32.onnx"]


@pytest.mark.slow
def test_tflite_models_use_builtin_ops_only(bundle_dir: Path) -> None:
    """No Flex (select TensorFlow) op: a device with LiteRT alone can run every model."""
    for name in TFLITE_MODELS:
        assert b"Flex" not in (bundle_dir / name).read_bytes(), name


LEGACY_TFLITE_RUNTIME = (2, 14)  # tflite-runtime's last release: devices/tflite_runtime_lane.sh runs it


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.slow
def test_every_tflite_model_records_an_oldest_runtime_that_tflite_runtime_2_14_meets(bundle_dir: Path) -> None:
    """The manifest's min_runtime is the converter's own figure (the `min_runtime_version` metadata it
    derives from the op versions); dense layers quantized per channel would need 2.17 (FULLY_CONNECTED v12)."""
    from smsguard.export._tflite import min_runtime_version

    files = {f["name"]: f for f in json.loads((bundle_dir / "manifest.json").read_text())["files"]}
    for name in sorted(TFLITE_MODELS):
        oldest = files[name]["min_runtime"]["tflite-runtime"]
        assert oldest == min_runtime_version((bundle_dir / name).read_bytes()), name
        assert _version(oldest) <= LEGACY_TFLITE_RUNTIME, (name, oldest)
    assert all("min_runtime" not in files[name] for name in ONNX_MODELS)


@pytest.mark.slow
def test_golden_vectors_hold_the_builtin_kernel_outputs_of_each_tflite_model(bundle_dir: Path) -> None:
    golden = Bundle.load(bundle_dir).golden
    assert all(set(g.builtin_kernel_probabilities) == TFLITE_MODELS for g in golden)
    for name in TFLITE_MODELS:
        builtin = np.array([g.builtin_kernel_probabilities[name] for g in golden])
        default = np.array([g.probabilities[name] for g in golden])
        assert np.abs(builtin - default).max() <= 0.05, name  # integer kernels round differently; labels stay


@pytest.mark.slow
def test_onnx_models_use_opset_17_and_a_native_lstm(bundle_dir: Path) -> None:
    import onnx

    for name in ONNX_MODELS:
        model = onnx.load(bundle_dir / name)
        onnx.checker.check_model(model)
        assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert "LSTM" in {node.op_type for node in model.graph.node}
        assert [o.name for o in model.graph.output] == ["spam_probability"]


@pytest.mark.slow
def test_parity_report_covers_every_model_on_the_whole_test_part(bundle_dir: Path, run_dir: Path) -> None:
    report = json.loads((bundle_dir / "parity.json").read_text())
    test_size = len(json.loads((run_dir / "split.json").read_text())["test"])
    assert report["passed"] is True
    assert {m["model"] for m in report["models"]} == TFLITE_MODELS | ONNX_MODELS | NPZ_MODELS
    for m in report["models"]:
        assert m["messages"] == test_size
        if m["quantization"] == "float32":
            assert m["max_abs_diff"] <= 1e-5
        else:
            assert m["label_agreement"] >= 0.995 and m["accuracy_change"] >= -0.005


@pytest.mark.slow
def test_every_exported_model_matches_keras_on_fresh_text(bundle_dir: Path, run_dir: Path) -> None:
    """Messages the export never saw, through the runtime, against Keras on the same ids."""
    from smsguard.train._model import load_model

    texts = ["", "ok", "URGENT! You have WON a guaranteed £1000 cash prize. Call 09050000321 now!", "see you at 6 " * 30]
    bundle = Bundle.load(bundle_dir)
    keras_proba = load_model(run_dir / "model.keras").predict(bundle.vocabulary.encode(texts), verbose=0).reshape(-1)
    for name, entry in bundle.models.items():
        classifier = Classifier.load(bundle_dir, model=name)
        atol = 1e-5 if entry.is_float else 0.05  # quantized: close, not equal (gated on labels at export)
        np.testing.assert_allclose(classifier.predict_proba(texts), keras_proba, atol=atol, err_msg=name)


@pytest.mark.slow
def test_export_refuses_data_that_differs_from_the_run(run_dir: Path, tmp_path: Path, data_path: Path) -> None:
    from smsguard.export import export
    from smsguard.train import DataError

    changed = tmp_path / "SMSSpamCollection"
    changed.write_bytes(data_path.read_bytes() + b"ham\tone more message\n")
    with pytest.raises(DataError, match=rf"data file '{re.escape(str(changed))}' is not the one this run was trained on"):
        export(run_dir, tmp_path / "bundle", _export_config(data=str(changed)))
    assert not (tmp_path / "bundle").exists()


@pytest.mark.slow
def test_an_export_with_a_drifting_model_fails_naming_it_and_writes_no_bundle(run_dir: Path, tmp_path: Path) -> None:
    """export() with converters that drift (the float32 .npz written with its output bias moved by 1e-3; the int8
    table's by 3, which flips labels): it fails after checking every model, names both with their figures, and
    leaves nothing where the bundle was to be."""
    import dataclasses

    from smsguard.export import ParityError, export
    from smsguard.export._primed import write_npz
    from smsguard.runtime import Quantization

    def drifting(target, shift: float):
        def convert(context, folder: Path, path: Path) -> None:
            weights = dict(context.weights) | {"dense_bias": context.weights["dense_bias"] + np.float32(shift)}
            write_npz(weights, context.model_config.maxlen, path, target.quantization is Quantization.INT8)

        return dataclasses.replace(target, convert=convert)

    float32, int8 = (next(t for t in TARGETS if t.file_name == name) for name in ("model.float32.npz", "model.int8.npz"))
    out = tmp_path / "bundle"
    with pytest.raises(ParityError) as error:
        export(run_dir, out, targets=(drifting(float32, 1e-3), drifting(int8, 3.0)))
    assert re.fullmatch(
        r"2 of 2 exported models failed parity with the Keras model: "
        r"model\.float32\.npz: max abs difference [0-9.e-]+ exceeds 1e-05; "
        r"model\.int8\.npz: label agreement \d+\.\d\d% is below 99\.5%(, accuracy drops \d+\.\d\d points, more than 0\.5)?",
        str(error.value),
    ), str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no bundle, and no staging folder left beside it


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(demo_dir: tuple[Path, subprocess.CompletedProcess]) -> None:
    """The README's main command, as a user runs it (the default preset, fused)."""
    out, result = demo_dir
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p["label"] for p in predictions] == ["spam", "ham"]
    assert (out / "bench.md").read_text().count("|") > 20
    bundle = Bundle.load(out / "bundle")
    pairs = [(name, b.name) for name, entry in bundle.models.items() for b in installed_backends() if b.format == entry.format]
    assert f"\n* All {len(pairs)} model/backend pairs match\n" in result.stderr  # printed only when every pair ran and matched
    assert "not run:" not in result.stderr and "-[x]" not in result.stderr
    assert "(preset fused)" in result.stderr and "5 folds" in result.stderr
    assert "Traceback" not in result.stderr


def _export_config(**fields):
    from smsguard.export import ExportConfig

    return ExportConfig(**fields)


# ---- an export killed midway, by a real signal to a real process -----------------------------------


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_an_export_killed_midway_leaves_the_earlier_bundle_whole(run_dir: Path, bundle_dir: Path, tmp_path: Path, signum) -> None:
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    earlier = _hashes(target)
    with open(tmp_path / "export.log", "wb") as log:
        export = subprocess.Popen(
            [sys.executable, "-m", "smsguard", "export", str(run_dir), "--out", str(target), "--force"], stdout=log, stderr=log
        )
        partial = tmp_path / f".bundle.partial-{export.pid}"
        deadline = time.monotonic() + 600
        while not any(partial.glob("*.tflite")):  # midway: a model is being written, the bundle is not whole
            assert export.poll() is None, (tmp_path / "export.log").read_text()
            assert time.monotonic() < deadline, "the export never started writing models"
            time.sleep(0.02)
        export.send_signal(signum)
        status = export.wait(timeout=120)
    output = (tmp_path / "export.log").read_text()
    assert "Traceback" not in output
    assert _hashes(target) == earlier  # the earlier bundle, byte for byte
    assert Classifier.load(target).predict(["WINNER!! claim your cash prize now", "see you at 6"]) == ["spam", "ham"]
    if signum == signal.SIGTERM:  # the process cleans up after itself
        assert status == 128 + signal.SIGTERM, output
        assert output.splitlines()[-1] == "ERROR interrupted; nothing was left half written"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "export.log"]
    else:  # it cannot: its partial folder stays until the next export to that path
        assert status == -signal.SIGKILL
        assert sorted(p.name for p in tmp_path.iterdir()) == [partial.name, "bundle", "export.log"]
        again = subprocess.run(
            [sys.executable, "-m", "smsguard", "export", str(run_dir), "--out", str(target)], capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 2
        assert again.stderr == f"ERROR bundle '{target}' already exists; pass --force to replace it, or choose another --out\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "export.log"]
        assert _hashes(target) == earlier


@pytest.mark.slow
def test_a_train_killed_while_writing_leaves_no_run_folder(data_path: Path, tmp_path: Path) -> None:
    """docs/reference/run-folder.md: the run folder 'appears whole or not at all'. A real `smsguard train` (600
    messages, one epoch) killed by SIGKILL once it writes its files leaves no run folder; the next train to that
    path removes what it left and writes the folder whole."""
    data = tmp_path / "SMSSpamCollection"
    data.write_bytes(b"".join(data_path.read_bytes().splitlines(keepends=True)[:600]))
    target = tmp_path / "run"
    command = [sys.executable, "-m", "smsguard", "train", "--data", str(data), "--out", str(target), "--preset", "tuned", "--epochs", "1"]
    with open(tmp_path / "train.out", "wb") as log:
        train = subprocess.Popen(command, stdout=log, stderr=log)
        partial = tmp_path / f".run.partial-{train.pid}"
        deadline = time.monotonic() + 600
        while not (partial.is_dir() and any(partial.iterdir())):  # midway: some files written, not all
            assert train.poll() is None, (tmp_path / "train.out").read_text()
            assert time.monotonic() < deadline, "the train never started writing its folder"
            time.sleep(0.005)
        train.kill()
        assert train.wait(timeout=120) == -signal.SIGKILL
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([partial.name, data.name, "train.out"])
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", data.name, "train.out"])
    assert {"model.keras", "vocab.json", "split.json", "config.json", "history.json", "metrics.json"} <= {p.name for p in target.iterdir()}


# ---- nothing is loaded with pickle ---------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "smsguard"
UNSAFE = {  # pattern -> what it would load
    r"^\s*(?:import|from)\s+(?:pickle|cPickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)\b": "a pickle-family module",
    r"\b(?:pickle|joblib|dill|marshal)\.loads?\(": "pickled Python objects",
    r"allow_pickle\s*=\s*True": "pickled objects inside a numpy file",
    r"safe_mode\s*=\s*False|enable_unsafe_deserialization": "Python code inside a Keras file",
    r"\btorch\.load\(": "a pickled PyTorch file",
}


def test_nothing_in_the_package_loads_pickles() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()} ({what})"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for pattern, what in UNSAFE.items()
        if re.search(pattern, line)
    ]
    assert found == []
    sources = {path: path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    keras_loads = [(path, call) for path, text in sources.items() for call in re.findall(r"keras\.models\.load_model\([^)]*\)", text)]
    assert keras_loads and all("safe_mode=True" in call for _, call in keras_loads), keras_loads


@pytest.mark.slow
def test_a_keras_model_holding_python_code_is_refused(tmp_path: Path) -> None:
    import keras

    from smsguard.train._model import load_model

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "model.keras")
    expected = (
        f"Keras model '{tmp_path / 'model.keras'}' holds Python code, which smsguard never loads (Requested the "
        "deserialization of a `Lambda` layer whose `function` is a Python lambda); train it with `smsguard train`"
    )
    with pytest.raises(SmsguardError, match=f"^{re.escape(expected)}$"):
        load_model(tmp_path / "model.keras")


# ---- length-adaptive models and bulk scoring ---------------------------------------------------------


@pytest.mark.slow
def test_every_float_model_and_backend_matches_keras_at_every_length(bundle_dir: Path, run_dir: Path) -> None:
    """The pad-primed models run only the real tokens, yet match Keras' 40 steps: on every test
    message, and on messages of every length from 0 to maxlen + 10, one at a time and batched."""
    from smsguard.runtime import installed_backends, open_session
    from smsguard.train import read_split
    from smsguard.train._model import load_model

    bundle = Bundle.load(bundle_dir)
    maxlen = bundle.vocabulary.config.maxlen
    dataset, split = read_split(run_dir / "split.json")
    known = [w for w, i in bundle.vocabulary.word_index.items() if i < bundle.vocabulary.size][: maxlen + 10]
    by_length = [" ".join(known[:k]) for k in range(maxlen + 11)]
    texts = [dataset.texts[i] for i in split.test] + by_length
    ids = bundle.vocabulary.encode(texts)
    assert sorted(set(np.count_nonzero(ids[-len(by_length) :], axis=1))) == list(range(maxlen + 1))
    keras_proba = load_model(run_dir / "model.keras").predict(ids, batch_size=1024, verbose=0).reshape(-1)
    checked = set()
    for entry in (e for e in bundle.models.values() if e.is_float):
        for info in (b for b in installed_backends() if b.format == entry.format):
            classifier = Classifier(bundle, open_session(info, bundle.model_path(entry), entry))
            batched = classifier.predict_proba(texts)
            single = np.array([classifier.predict_proba([t])[0] for t in by_length])
            np.testing.assert_allclose(batched, keras_proba, atol=1e-5, rtol=0, err_msg=f"{entry.name} [{info.name}]")
            np.testing.assert_allclose(single, keras_proba[-len(by_length) :], atol=1e-5, rtol=0, err_msg=f"{entry.name} [{info.name}] alone")
            checked.add((entry.name, info.name))
    assert {("model.float32.primed.onnx", "onnxruntime"), ("model.float32.npz", "numpy")} <= checked


@pytest.mark.slow
def test_bulk_scoring_streams_and_gives_the_same_result_in_processes(bundle_dir: Path, uci_texts: list[str]) -> None:
    classifier = Classifier.load(bundle_dir, backend="numpy", model="model.int8.npz")
    texts = uci_texts[:2500] * 2  # more than one batch
    expected = classifier.predict_proba(texts)
    assert_same_bits(classifier.predict_proba(iter(texts)), expected, "streamed")
    assert_same_bits(classifier.predict_proba(texts, workers=2), expected, "in 2 processes")
    with pytest.raises(TypeError, match=r"^text at index 4321 must be str or UTF-8 bytes, found NoneType$"):
        classifier.predict_proba([*texts[:4321], None])


@pytest.mark.slow
def test_a_corrupt_npz_model_is_refused_with_a_clear_error(bundle_copy: Path) -> None:
    from bundle_edits import replace_with_non_model

    from smsguard.runtime import BackendError

    replace_with_non_model(bundle_copy, "model.float32.npz")
    with pytest.raises(BackendError, match=r"^numpy \S+ cannot load model 'model.float32.npz': "):
        Classifier.load(bundle_copy, backend="numpy", model="model.float32.npz")


@pytest.mark.slow
def test_a_model_trained_with_dropout_converts_to_a_native_onnx_lstm_with_the_same_outputs(tmp_path: Path) -> None:
    """Recurrent dropout makes Keras build the LSTM step by step, where tf2onnx finds no LSTM; export
    converts the dropout-free twin, which computes the same function."""
    import onnx
    import onnxruntime

    from smsguard.export._onnx import convert_onnx
    from smsguard.train._model import ModelConfig, build_model, inference_copy

    config = ModelConfig(vocab_size=50, maxlen=6, embedding_dim=4, lstm_units=3, dropout=0.3, recurrent_dropout=0.3)
    model = build_model(config)
    ids = np.random.default_rng(0).integers(0, 50, size=(5, 6)).astype(np.int32)
    twin = inference_copy(model, config)
    np.testing.assert_array_equal(twin.predict(ids, verbose=0), model.predict(ids, verbose=0))
    convert_onnx(twin, config.layout, twin.inputs[0].name, tmp_path / "m.onnx", 17)
    assert "LSTM" in {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: ids})
    np.testing.assert_allclose(onnx_out.reshape(-1), model.predict(ids, verbose=0).reshape(-1), atol=1e-5)
