"""Export's MediaPipe step: the client models, their probe, their parity in LiteRT on the whole test
part and, when mediapipe is installed, in MediaPipe's TextClassifier on the golden vectors.

One call from `export` (`export_mediapipe`), returning the manifest entries of the files it wrote and
the manifest's `clients` section; for a run whose tokenizer the client cannot reproduce it prints one
line and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from smsguard import _console as console
from smsguard.export import _parity as parity
from smsguard.export._mediapipe import PROBE_NAME, ClientQuantization, check_mediapipe, convert_mediapipe, model_name, write_probe
from smsguard.export._quiet import converter_output
from smsguard.runtime import Quantization, Side, Vocabulary
from smsguard.runtime.bundle import BundleFile, FileKind
from smsguard.runtime.mediapipe import LABELS_FILE, PAD, UNKNOWN, VOCAB_FILE, check_clients, client_ids, delimiter_pattern, mediapipe_version, pre_padded


def export_mediapipe(
    model,
    model_config,
    vocabulary: Vocabulary,
    threshold: float,
    folder: Path,
    test_texts: list[str],
    test_labels: np.ndarray,
    golden: list[Mapping[str, Any]],
) -> tuple[list[BundleFile], dict[str, Any]]:
    """`model`: the Keras word model the client runs (a fused model's word branch). Its reference outputs are
    Keras' on the ids the client computes (the text as given: MediaPipe cannot normalise)."""
    problem = check_mediapipe(vocabulary)
    if problem:
        console.step(problem)
        return [], {}
    console.step("Exporting the MediaPipe client models (float32, int8 dynamic) with TFLite metadata, and their id probe ...")
    names = []
    for quantization in ClientQuantization:
        names.append(model_name(quantization))
        with converter_output(f"the MediaPipe client model ({quantization.value})"):
            convert_mediapipe(model, model_config, vocabulary, threshold, folder / names[-1], quantization)
    with converter_output("the MediaPipe id probe"):
        write_probe(vocabulary, folder / PROBE_NAME)

    console.step(f"Checking the client models in LiteRT against Keras on the {len(test_texts):,} test messages, as MediaPipe tokenizes them ...")
    test_ids = client_ids(vocabulary, test_texts)
    golden_ids = client_ids(vocabulary, [g["text"] for g in golden])
    reference, golden_keras = _keras(model, vocabulary, test_ids), _keras(model, vocabulary, golden_ids)
    results, golden_probabilities = [], {}
    for quantization, name in zip(ClientQuantization, names, strict=True):
        path = folder / name
        outputs = litert_scores(path, test_ids)
        subject = parity.Subject(name, "litert", Quantization(quantization.value), path.stat().st_size)
        results.append(parity.compare(subject, test_labels, reference, outputs, threshold))
        golden_probabilities[name] = litert_scores(path, golden_ids).tolist()
    parity.print_checklist(results)
    parity.raise_on_failures(results)

    entries = [BundleFile.describe(folder / name, FileKind.CLIENT) for name in [*names, PROBE_NAME]]
    section: dict[str, Any] = {
        "client": "MediaPipe Tasks TextClassifier (Android, iOS, web, Python)",
        "models": [{"name": name, "quantization": q.value, "threshold": threshold} for q, name in zip(ClientQuantization, names, strict=True)],
        "probe": PROBE_NAME,
        "tokenizer": {
            "delim_regex_pattern": delimiter_pattern(vocabulary.config),
            "vocab_file": VOCAB_FILE,
            "labels_file": LABELS_FILE,
            "pad": PAD,
            "unknown": UNKNOWN,
            "padding": "post (the model moves it before the words)" if vocabulary.config.padding == "pre" else "post",
            "text": "read up to its first NUL",
        },
        "parity": [r.__dict__ | {"passed": r.passed} for r in results],
        "golden_probabilities": golden_probabilities,
    }
    section["keras_probabilities"] = [float(p) for p in golden_keras]
    version = mediapipe_version()
    if version is None:
        console.info("  (mediapipe is not installed: the client models were checked in LiteRT only; pip install 'smsguard[mediapipe]' to check them in MediaPipe)")
    else:
        console.step(f"Checking the client models in MediaPipe {version}'s TextClassifier on the {len(golden)} golden messages ...")
        problems, checks = check_clients(folder, section, {e.name: e for e in entries}, golden, vocabulary)
        console.check(not problems, f"{PROBE_NAME} [mediapipe {version}]: {len(golden) - len(problems)} of {len(golden)} messages give the golden ids")
        for r in checks:
            console.check(r.passed, f"{r.model} [{r.backend}]: max diff {r.max_abs_diff:.2g} vs {r.compared_to} (atol {r.tolerance:g})" + (f": {r.skipped}" if r.skipped else ""))
        failed = [r for r in checks if not r.passed]
        if problems or failed:
            details = "; ".join(problems[:3] + [f"{r.model}: {', '.join(r.problems) or r.skipped}" for r in failed])
            raise parity.ParityError(f"the MediaPipe client models do not match smsguard in MediaPipe {version}: {details}")
        section["checked_in"] = {"mediapipe": version}
    return entries, {"mediapipe": section}


def _keras(model, vocabulary: Vocabulary, ids: np.ndarray) -> np.ndarray:
    """The Keras word model's outputs on client ids (padded after the words), fed as it was trained."""
    fed = pre_padded(ids) if vocabulary.config.padding is Side.PRE else ids
    return model.predict(fed, batch_size=1024, verbose=0).reshape(-1).astype(np.float64)


def litert_scores(path: Path, ids: np.ndarray) -> np.ndarray:
    """A client model's scores in LiteRT, one message at a time (its input is [1, L])."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    out = np.empty(len(ids), dtype=np.float64)
    for i, row in enumerate(ids):
        interpreter.set_tensor(input_index, row[None, :].astype(np.int32))
        interpreter.invoke()
        out[i] = interpreter.get_tensor(output_index).reshape(-1)[0]
    return out
