"""`export`: a run folder -> a bundle of quantized TFLite and ONNX models, the frozen vocabulary, a
parity report and a manifest pinning them together. The bundle appears whole or not at all.

Three steps over the declared targets (`_targets.TARGETS`): convert each one that applies, check each
written model (`_check.check_model`), then write the parity report and the manifest from the records."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from smsguard import _console as console
from smsguard._staging import check_target, staged_folder, write_json
from smsguard.export import _choice as choice
from smsguard.export import _parity as parity
from smsguard.export._check import CheckData, ModelCheck, check_model
from smsguard.export._config import ExportConfig
from smsguard.export._golden import EDGE_CASES
from smsguard.export._mediapipe_target import CLIENT_TARGETS, ClientData
from smsguard.export._run import RunInputs, read_run
from smsguard.export._targets import TARGETS, ExportContext, ExportTarget
from smsguard.runtime import BundleError, BundleFile, FileKind, GoldenVector, Manifest, Source, distribution_version
from smsguard.runtime.bundle import LABELS, MANIFEST_NAME, PARITY_NAME, VOCAB_NAME, Form
from smsguard.runtime.signing import read_private_key, sign_manifest
from smsguard.train import RUN_MODEL_NAME

_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy")


def export(run_dir: Path, out: Path, config: ExportConfig | None = None, force: bool = False, targets: Sequence[ExportTarget] = TARGETS) -> Path:
    """Export `run_dir` to a bundle at `out` with a model for each of `targets` that applies to the run
    (default: every declared one); refuse an existing `out` unless `force`."""
    config = config or ExportConfig()
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / RUN_MODEL_NAME).is_file():
        msg = f"run folder '{run_dir}' has no {RUN_MODEL_NAME}; train one with `smsguard train --out {run_dir}`"
        raise BundleError(msg)
    if out.resolve() == run_dir.resolve():
        msg = f"--out '{out}' is the run folder itself; choose another folder for the bundle"
        raise BundleError(msg)
    check_target(out, force, "bundle")
    if config.sign_key:
        read_private_key(config.sign_key)  # a bad key fails now, not after minutes of conversion
    run = read_run(run_dir, config)

    console.step(f"Loading {run.model_path}")
    from smsguard.train import ModelConfig, load_model

    model = load_model(run.model_path)
    _check_model_matches_vocabulary(model, run)
    context = ExportContext(model, ModelConfig(**run.model_fields), run.vocabulary, run.calibration_ids, config)
    golden_rows = _golden_rows(run.test_labels, config.golden_messages)
    golden_ids = np.concatenate([run.test_ids[golden_rows], run.vocabulary.encode([text for text, _ in EDGE_CASES])])
    data = CheckData(
        validation_ids=run.validation_ids,
        validation_labels=run.validation_labels,
        test_ids=run.test_ids,
        test_labels=run.test_labels,
        keras_test=_keras(model, run.test_ids),
        golden_ids=golden_ids,
        threshold=run.threshold,
        # With a threshold chosen on out-of-fold predictions, the validation part (about 450 ham) is too small to
        # move it per model: every model ships with the bundle's, and the parity gates hold it to Keras' labels.
        target_ham_fpr=None if run.train_config.threshold_folds else run.train_config.target_ham_fpr,
    )

    with staged_folder(out, force, "bundle") as folder:
        write_json(folder / VOCAB_NAME, run.vocabulary.to_dict(), compact=True)
        written = convert_targets(context, folder, targets)
        checks = check_targets(written, data, run)
        write_json(folder / PARITY_NAME, _parity_report(checks, run))
        golden = _golden_vectors(run, golden_rows, golden_ids, _keras(model, golden_ids), checks)
        client_files, clients = export_clients(context, folder, ClientData(run.client_threshold, run.test_texts, run.test_labels, [g.to_dict() for g in golden]))
        manifest = build_manifest(folder, run, checks, golden, config.serial, client_files, clients)
        write_json(folder / MANIFEST_NAME, manifest.to_dict())
        if config.sign_key:
            sign_manifest(folder, config.sign_key)

    recommended = ", ".join(manifest.recommended.values())
    console.step(f"Bundle written to {out} ({len(checks)} models; recommended: {recommended})")
    return out


def convert_targets(context: ExportContext, folder: Path, targets: Sequence[ExportTarget] = TARGETS) -> list[tuple[ExportTarget, Path]]:
    """Convert every target that applies to this run, in order; the written files."""
    written = []
    for target in targets:
        if not target.applies_to(context):
            continue
        console.step(f"Exporting {target.title} -> {target.file_name} ...")
        path = folder / target.file_name
        target.convert(context, folder, path)
        written.append((target, path))
    if any(target.primed for target in targets) and not context.can_prime:
        console.info("  (no pad-primed models: they need padding='pre' and a tanh LSTM)")
    if context.model_config.fused and any(not target.fused for target in targets):
        console.info("  (no full-integer int8 TFLite model: a fused model's n-gram mean divides by the n-gram count, which int8 cannot do exactly)")
    return written


def export_clients(context: ExportContext, folder: Path, data: ClientData) -> tuple[list[BundleFile], dict[str, Any]]:
    """Every client target that can reproduce the run's tokenizer writes and checks its files; the others say why not."""
    files: list[BundleFile] = []
    clients: dict[str, Any] = {}
    for target in CLIENT_TARGETS:
        problem = target.why_not(context.vocabulary.with_ngrams(None))
        if problem:
            console.step(problem)
            continue
        entries, section = target.export(context, folder, data)
        files += entries
        clients |= section
    return files, clients


def check_targets(written: list[tuple[ExportTarget, Path]], data: CheckData, run: RunInputs) -> list[ModelCheck]:
    """Check every written model, print the checklist, and raise ParityError naming each model that fails."""
    target = data.target_ham_fpr
    console.step(
        f"Checking every model on the {len(data.validation_ids):,} validation messages"
        + (f" (its threshold for a ham false-positive rate of {target:g})" if target is not None else "")
        + f", and against Keras on the {len(data.test_ids):,} test messages ..."
    )
    checks = [check_model(t, path, data) for t, path in written]
    for c in checks:
        if c.candidate.own_threshold:
            console.step(
                f"{c.candidate.model} flags more than {target:g} of the validation ham at the bundle's threshold {data.threshold:.8g}; "
                f"it ships with its own, {c.candidate.threshold:.8g}"
            )
    results = [c.parity for c in checks]
    parity.print_checklist(results)
    parity.raise_on_failures(results)
    return checks


def build_manifest(
    folder: Path,
    run: RunInputs,
    checks: list[ModelCheck],
    golden: list[GoldenVector],
    serial: int | None = None,
    client_files: Sequence[BundleFile] = (),
    clients: Mapping[str, Any] | None = None,
) -> Manifest:
    created = datetime.now(timezone.utc)
    files = (
        BundleFile.describe(folder / VOCAB_NAME, FileKind.VOCABULARY),
        *(c.entry for c in checks),
        BundleFile.describe(folder / PARITY_NAME, FileKind.REPORT),
        *client_files,
    )
    return Manifest(
        threshold=run.threshold,
        files=files,
        recommended=choice.recommended([c.candidate for c in checks if c.entry.form is Form.FOLDED]),  # a compact model is for packs
        golden=tuple(golden),
        source=Source(run=run.folder.resolve().name, model=run.model_path.name, model_sha256=run.model_sha256, data_sha256=run.data_sha256),
        serial=int(created.timestamp()) if serial is None else serial,
        created=created.isoformat(timespec="seconds"),
        tools={"python": platform.python_version()} | {tool: distribution_version(tool) for tool in _TOOLS},
        clients=dict(clients or {}),
    )


def _parity_report(checks: list[ModelCheck], run: RunInputs) -> dict:
    validation = {
        c.candidate.model: {
            "threshold": c.candidate.threshold,
            "accuracy": c.candidate.validation.accuracy,
            "ham_false_positive_rate": c.candidate.validation.ham_false_positive_rate,
        }
        for c in checks
    }
    reference = f"{run.folder.resolve().name}/{run.model_path.name} (Keras {distribution_version('keras')})"
    return parity.report([c.parity for c in checks], reference, run.threshold, validation)


def _golden_vectors(run: RunInputs, rows: np.ndarray, ids: np.ndarray, keras: np.ndarray, checks: list[ModelCheck]) -> list[GoldenVector]:
    """The golden test messages and the edge cases, with every model's outputs on them."""
    texts = [run.test_texts[i] for i in rows] + [text for text, _ in EDGE_CASES]
    labels = [LABELS[int(run.test_labels[i])] for i in rows] + [label for _, label in EDGE_CASES]
    return [
        GoldenVector(
            text=text,
            ids=tuple(int(v) for v in ids[i]),
            label=labels[i],
            keras_probability=float(keras[i]),
            probabilities={c.entry.name: float(c.golden[i]) for c in checks},
            builtin_kernel_probabilities={c.entry.name: float(c.builtin_golden[i]) for c in checks if c.builtin_golden is not None},
        )
        for i, text in enumerate(texts)
    ]


def _keras(model, ids: np.ndarray) -> np.ndarray:
    return model.predict(ids, batch_size=1024, verbose=0).reshape(-1).astype(np.float64)


def _check_model_matches_vocabulary(model, run: RunInputs) -> None:
    from smsguard.train import word_branch

    embedding_rows = word_branch(model).get_layer("embedding").input_dim
    width = model.inputs[0].shape[1]
    vocabulary = run.vocabulary
    if embedding_rows != vocabulary.size or width != vocabulary.width:
        msg = (
            f"run folder '{run.folder}': the model takes {width} ids (words below {embedding_rows}), but its "
            f"vocabulary gives {vocabulary.width} (words below {vocabulary.size}); the run is inconsistent, train it again"
        )
        raise BundleError(msg)


def _golden_rows(labels: np.ndarray, count: int) -> np.ndarray:
    """Half spam, half ham where the test part allows, chosen the same way every time."""
    rng = np.random.default_rng(0)
    spam, ham = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_spam = min(len(spam), count // 2)
    n_ham = min(len(ham), count - n_spam)
    return np.sort(np.concatenate([rng.choice(spam, n_spam, replace=False), rng.choice(ham, n_ham, replace=False)]))
