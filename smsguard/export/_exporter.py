"""`export`: a run folder -> a bundle of quantized TFLite and ONNX models, the frozen vocabulary, a
parity report and a manifest pinning them together. The bundle appears whole or not at all."""

from __future__ import annotations

import importlib.metadata
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import smsguard
from smsguard import _console as console
from smsguard._staging import check_target, staged_folder
from smsguard.export import _choice as choice
from smsguard.export import _parity as parity
from smsguard.export._config import ExportConfig
from smsguard.export._mediapipe_target import export_mediapipe
from smsguard.export._onnx import OUTPUT_NAME, convert_onnx, quantize_onnx
from smsguard.export._primed import PRIMED_STATE_NODES, keras_weights, write_npz, write_primed_onnx
from smsguard.export._quiet import converter_output
from smsguard.export._tflite import TFLiteQuantization, convert_tflite, min_runtime_version
from smsguard.runtime._backends import TFLiteSession, backend_info, open_session
from smsguard.runtime._bundle import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    PARITY_NAME,
    VOCAB_NAME,
    BundleFile,
    read_json,
    write_json,
)
from smsguard.runtime._errors import BundleError
from smsguard.runtime._vocabulary import Vocabulary
from smsguard.train._data import read_split
from smsguard.train._metrics import evaluate
from smsguard.train._trainer import METRICS_NAME, MODEL_NAME, SPLIT_NAME, read_run_config

LABELS = ("ham", "spam")
_TFLITE_TITLES = {
    TFLiteQuantization.FLOAT32: "float32",
    TFLiteQuantization.DYNAMIC_INT8: "int8 dynamic range",
    TFLiteQuantization.FLOAT16: "float16",
    TFLiteQuantization.INT8: "full integer int8",
}
_REFERENCE_BACKEND = {"tflite": "litert", "onnx": "onnxruntime", "npz": "numpy"}  # what export checks each format in
_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy")


def export(run_dir: Path, out: Path, config: ExportConfig | None = None, force: bool = False) -> Path:
    config = config or ExportConfig()
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / MODEL_NAME).is_file():
        msg = f"run folder '{run_dir}' has no {MODEL_NAME}; train one with `smsguard train --out {run_dir}`"
        raise BundleError(msg)
    if out.resolve() == run_dir.resolve():
        msg = f"--out '{out}' is the run folder itself; choose another folder for the bundle"
        raise BundleError(msg)
    check_target(out, force, "bundle")
    train_config, model_fields = read_run_config(run_dir)
    vocabulary = Vocabulary.from_dict(read_json(run_dir / VOCAB_NAME, "vocabulary"))
    threshold = float(read_json(run_dir / METRICS_NAME, "metrics")["threshold"])
    dataset, split = read_split(run_dir / SPLIT_NAME, config.data, train_config.text_column, train_config.label_column)
    texts = np.asarray(dataset.texts, dtype=object)
    test_texts = texts[split.test].tolist()
    test_labels = dataset.labels[split.test]
    test_ids = vocabulary.encode(test_texts)
    validation_labels = dataset.labels[split.validation]
    validation_ids = vocabulary.encode(texts[split.validation].tolist())
    calibration = vocabulary.encode(texts[split.train[: config.calibration_messages]].tolist())

    console.step(f"Loading {run_dir / MODEL_NAME}")
    from smsguard.train._model import ModelConfig, inference_copy, load_model

    model = load_model(run_dir / MODEL_NAME)
    model_config = ModelConfig(**model_fields)
    _check_model_matches_vocabulary(model, vocabulary, run_dir)
    reference = model.predict(test_ids, batch_size=1024, verbose=0).reshape(-1).astype(np.float64)

    with staged_folder(out, force, "bundle") as folder:
        write_json(folder / VOCAB_NAME, vocabulary.to_dict())
        models: list[tuple[Path, str, str, str]] = []  # (path, format, quantization, variant)
        min_runtime: dict[str, dict[str, str]] = {}  # model file -> backend -> oldest version that runs it

        unrolled = inference_copy(model, model_config, unroll=True)
        for quantization in TFLiteQuantization:
            title = _TFLITE_TITLES[quantization]
            console.step(f"Exporting TFLite ({title}) ...")
            path = folder / f"model.{quantization.value}.tflite"
            with converter_output(f"the model to TFLite ({title})"):
                path.write_bytes(convert_tflite(unrolled, quantization, calibration))
            oldest = min_runtime_version(path.read_bytes())
            if oldest:
                min_runtime[path.name] = {"tflite-runtime": oldest}
            models.append((path, "tflite", quantization.value, "fixed"))

        console.step(f"Exporting ONNX (float32, opset {config.opset}) ...")
        onnx_path = folder / "model.float32.onnx"
        with converter_output(f"the model to ONNX (opset {config.opset})"):
            convert_onnx(inference_copy(model, model_config), model_config.maxlen, model.inputs[0].name, onnx_path, config.opset)
        models.append((onnx_path, "onnx", "float32", "fixed"))
        console.step("Exporting ONNX (int8 dynamic) ...")
        quantized_onnx = folder / "model.dynamic_int8.onnx"
        with converter_output("the ONNX model to dynamic int8"):
            quantize_onnx(onnx_path, quantized_onnx)
        models.append((quantized_onnx, "onnx", "dynamic_int8", "fixed"))

        if vocabulary.config.padding == "pre" and model_config.activation == "tanh":
            weights = keras_weights(model)
            maxlen = model_config.maxlen
            console.step("Exporting the pad-primed models (ONNX any length; folded NumPy float32 and int8) ...")
            primed_onnx = folder / "model.float32.primed.onnx"
            with converter_output("the pad-primed ONNX model"):
                write_primed_onnx(weights, maxlen, model.inputs[0].name, OUTPUT_NAME, primed_onnx, config.opset)
                quantize_onnx(primed_onnx, folder / "model.dynamic_int8.primed.onnx", keep_float=PRIMED_STATE_NODES)
            models.append((primed_onnx, "onnx", "float32", "primed"))
            models.append((folder / "model.dynamic_int8.primed.onnx", "onnx", "dynamic_int8", "primed"))
            for quantization, quantize in (("float32", False), ("int8", True)):
                path = folder / f"model.{quantization}.npz"
                write_npz(weights, maxlen, path, quantize)
                models.append((path, "npz", quantization, "primed"))
        else:
            console.info("  (no pad-primed models: they need padding='pre' and a tanh LSTM)")

        target = train_config.target_ham_fpr
        console.step(
            f"Checking every model on the {len(validation_ids):,} validation messages"
            + (f" (its threshold for a ham false-positive rate of {target:g})" if target is not None else "")
            + f", and against Keras on the {len(test_ids):,} test messages ..."
        )
        entries, results, candidates, outputs, builtin_outputs = [], [], [], {}, {}
        golden_rows = _golden_rows(test_labels, config.golden_messages)
        golden_ids = np.concatenate([test_ids[golden_rows], vocabulary.encode([""])])
        for path, fmt, quantization, variant in models:
            fields = {"format": fmt, "quantization": quantization, "variant": variant}
            provisional = BundleFile.describe(path, "model", **fields)
            backend = backend_info(_REFERENCE_BACKEND[fmt])
            session = open_session(backend, path, provisional)
            inputs, outputs_spec = session.signature()
            on_validation = session.run(validation_ids)
            own = choice.model_threshold(validation_labels, on_validation, threshold, target)
            entries.append(
                BundleFile.describe(
                    path, "model", **fields, inputs=inputs, outputs=outputs_spec, min_runtime=min_runtime.get(path.name),
                    threshold=None if own == threshold else own,
                )
            )
            candidates.append(
                choice.Candidate(
                    path.name, fmt, quantization, variant, provisional.size, own, own != threshold, evaluate(validation_labels, on_validation, own)
                )
            )
            exported = session.run(test_ids)
            outputs[path.name] = session.run(golden_ids)
            if fmt == "tflite":
                builtin_outputs[path.name] = _builtin_kernel_outputs(path, provisional, golden_ids)
            results.append(
                parity.compare(path.name, backend.name, quantization, provisional.size, test_labels, reference, exported, threshold, variant, own)
            )
        for c in candidates:
            if c.own_threshold:
                console.step(
                    f"{c.model} flags more than {target:g} of the validation ham at the bundle's threshold {threshold:.8g}; "
                    f"it ships with its own, {c.threshold:.8g}"
                )
        parity.print_checklist(results)
        parity.raise_on_failures(results)
        validation = {
            c.model: {"threshold": c.threshold, "accuracy": c.validation.accuracy, "ham_false_positive_rate": c.validation.ham_false_positive_rate}
            for c in candidates
        }
        write_json(folder / PARITY_NAME, parity.report(results, f"{run_dir / MODEL_NAME} (Keras {_version('keras')})", threshold, validation))

        golden_texts = [test_texts[i] for i in golden_rows] + [""]
        golden_labels = [LABELS[int(test_labels[i])] for i in golden_rows] + ["ham"]
        keras_golden = model.predict(golden_ids, batch_size=1024, verbose=0).reshape(-1)
        golden = [
            {
                "text": text,
                "ids": golden_ids[i].tolist(),
                "label": golden_labels[i],
                "keras_probability": float(keras_golden[i]),
                "probabilities": {name: float(values[i]) for name, values in outputs.items()},
                "builtin_kernel_probabilities": {name: float(values[i]) for name, values in builtin_outputs.items()},
            }
            for i, text in enumerate(golden_texts)
        ]
        # The MediaPipe client models: one separate step, its files pinned like the others, its section under "clients".
        client_files, clients = export_mediapipe(model, model_config, vocabulary, threshold, folder, test_texts, test_labels, reference, golden)
        files = [
            BundleFile.describe(folder / VOCAB_NAME, "vocabulary"),
            *entries,
            BundleFile.describe(folder / PARITY_NAME, "report"),
            *client_files,
        ]
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "smsguard_version": smsguard.__version__,
            "tools": {"python": platform.python_version()} | {tool: _version(tool) for tool in _TOOLS},
            "labels": list(LABELS),
            "output": "probability of the second label",
            "threshold": threshold,
            "vocabulary": VOCAB_NAME,
            "recommended": choice.recommended(candidates),
            "source": {
                "run": str(run_dir.resolve()),
                "model": MODEL_NAME,
                "model_sha256": BundleFile.describe(run_dir / MODEL_NAME, "source").sha256,
                "data_sha256": dataset.sha256,
            },
            "files": [entry.to_dict() for entry in files],
            "golden": golden,
        } | ({"clients": clients} if clients else {})
        write_json(folder / MANIFEST_NAME, manifest)

    console.step(f"Bundle written to {out} ({len(models)} models; recommended: {', '.join(manifest['recommended'].values())})")
    return out


def _check_model_matches_vocabulary(model, vocabulary: Vocabulary, run_dir: Path) -> None:
    embedding_rows = model.get_layer("embedding").input_dim
    maxlen = model.inputs[0].shape[1]
    if embedding_rows != vocabulary.size or maxlen != vocabulary.config.maxlen:
        msg = (
            f"run folder '{run_dir}': the model takes {maxlen} ids below {embedding_rows}, but its "
            f"vocabulary gives {vocabulary.config.maxlen} ids below {vocabulary.size}; the run is inconsistent, train it again"
        )
        raise BundleError(msg)


def _builtin_kernel_outputs(path: Path, entry: BundleFile, ids: np.ndarray) -> np.ndarray:
    """A TFLite model's outputs from LiteRT's builtin kernels, without the XNNPACK delegate it applies by
    default. A runtime without XNNPACK for some op (tflite-runtime 2.14 runs the full-integer model
    this way) computes these instead: the integer kernels round differently, by up to 9 output steps
    (0.035) on the tutorial's test messages, with the same labels."""
    return TFLiteSession(backend_info("litert"), path, entry, builtin_kernels=True).run(ids)


def _golden_rows(labels: np.ndarray, count: int) -> np.ndarray:
    """Half spam, half ham where the test part allows, chosen the same way every time."""
    rng = np.random.default_rng(0)
    spam, ham = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_spam = min(len(spam), count // 2)
    n_ham = min(len(ham), count - n_spam)
    return np.sort(np.concatenate([rng.choice(spam, n_spam, replace=False), rng.choice(ham, n_ham, replace=False)]))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"

