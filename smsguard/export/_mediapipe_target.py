"""Export's MediaPipe step: the client models, their probe, their parity in LiteRT on the whole test
part and, when mediapipe is installed, in MediaPipe's TextClassifier on the golden vectors.

A client target (`MediaPipeTarget`, in `CLIENT_TARGETS`): export asks it `why_not` for the run (a tokenizer the
client cannot reproduce: one line, nothing written), then `export`s it, which returns the manifest entries of
the files it wrote and the manifest's `clients` section. It owns its check and its tolerances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsguard import _console as console
from smsguard.export import _parity as parity
from smsguard.export._mediapipe import PROBE_NAME, ClientQuantization, check_mediapipe, convert_mediapipe, model_name, write_probe
from smsguard.export._parity import FLOAT_ATOL
from smsguard.export._quiet import converter_output
from smsguard.export._targets import QUANTIZED_ATOL, ExportContext
from smsguard.runtime import Quantization, Side, Vocabulary
from smsguard.runtime.bundle import BundleFile, FileKind
from smsguard.runtime.mediapipe import (
    CLIENT,
    LABELS_FILE,
    PAD,
    UNKNOWN,
    VOCAB_FILE,
    check_clients,
    client_ids,
    delimiter_pattern,
    mediapipe_version,
    pre_padded,
)


@dataclass(frozen=True, eq=False)
class ClientData:
    """What a client target checks its models on: the run's test part and the bundle's golden messages."""

    threshold: float  # the client's own: a fused run's word branch alone has its own, chosen out of fold
    test_texts: list[str]
    test_labels: np.ndarray
    golden: list[Mapping[str, Any]]  # the manifest's golden vectors, as dicts


@dataclass(frozen=True)
class MediaPipeTarget:
    """The client models MediaPipe's TextClassifier runs as they are (a fused model's word branch, which MediaPipe's
    tokenizer reproduces), their id probe, and their check: in LiteRT against Keras on the whole test part (the
    parity gates), then in MediaPipe itself on the golden messages when mediapipe is installed."""

    name: str = CLIENT
    title: str = "the MediaPipe client models (float32, int8 dynamic) with TFLite metadata, and their id probe"

    def why_not(self, vocabulary: Vocabulary) -> str | None:
        """None when the client reproduces the run's tokenizer; else the one line export prints instead."""
        return check_mediapipe(vocabulary)

    def export(self, context: ExportContext, folder: Path, data: ClientData) -> tuple[list[BundleFile], dict[str, Any]]:
        """Write and check the client models; (their manifest entries, the manifest's `clients` section)."""
        from smsguard.train import word_branch  # here: importing it imports Keras, which an export that fails early never needs

        words, vocabulary = word_branch(context.model), context.vocabulary.with_ngrams(None)
        console.step(f"Exporting {self.title} ...")
        names = [model_name(q) for q in ClientQuantization]
        for quantization, name in zip(ClientQuantization, names, strict=True):
            with converter_output(f"the MediaPipe client model ({quantization.value})"):
                convert_mediapipe(words, context.model_config.words, vocabulary, data.threshold, folder / name, quantization)
        with converter_output("the MediaPipe id probe"):
            write_probe(vocabulary, folder / PROBE_NAME)
        section = _checked_in_litert(words, vocabulary, folder, names, data)
        entries = [BundleFile.describe(folder / name, FileKind.CLIENT) for name in [*names, PROBE_NAME]]
        _check_in_mediapipe(folder, section, entries, data.golden, vocabulary)
        return entries, {self.name: section}


CLIENT_TARGETS = (MediaPipeTarget(),)


def _checked_in_litert(words: Any, vocabulary: Vocabulary, folder: Path, names: list[str], data: ClientData) -> dict[str, Any]:
    """The parity gates in LiteRT, on the ids MediaPipe computes (the text as given: it cannot normalise), and the
    section of the manifest that records them."""
    console.step(f"Checking the client models in LiteRT against Keras on the {len(data.test_texts):,} test messages, as MediaPipe tokenizes them ...")
    test_ids = client_ids(vocabulary, data.test_texts)
    golden_ids = client_ids(vocabulary, [g["text"] for g in data.golden])
    reference = _keras(words, vocabulary, test_ids)
    results, golden_probabilities, models = [], {}, []
    for quantization, name in zip(ClientQuantization, names, strict=True):
        path, kind = folder / name, Quantization(quantization.value)
        results.append(parity.compare(parity.Subject(name, "litert", kind, path.stat().st_size), data.test_labels, reference, litert_scores(path, test_ids), data.threshold))
        golden_probabilities[name] = litert_scores(path, golden_ids).tolist()
        models.append({"name": name, "quantization": kind.value, "threshold": data.threshold, "tolerance": FLOAT_ATOL if kind is Quantization.FLOAT32 else QUANTIZED_ATOL})
    parity.print_checklist(results)
    parity.raise_on_failures(results)
    return {
        "client": "MediaPipe Tasks TextClassifier (Android, iOS, web, Python)",
        "models": models,
        "probe": PROBE_NAME,
        "tokenizer": _tokenizer_section(vocabulary),
        "parity": [r.__dict__ | {"passed": r.passed} for r in results],
        "golden_probabilities": golden_probabilities,
        "keras_probabilities": [float(p) for p in _keras(words, vocabulary, golden_ids)],
    }


def _tokenizer_section(vocabulary: Vocabulary) -> dict[str, str]:
    return {
        "delim_regex_pattern": delimiter_pattern(vocabulary.config),
        "vocab_file": VOCAB_FILE,
        "labels_file": LABELS_FILE,
        "pad": PAD,
        "unknown": UNKNOWN,
        "padding": "post (the model moves it before the words)" if vocabulary.config.padding == "pre" else "post",
        "text": "read up to its first NUL",
    }


def _check_in_mediapipe(folder: Path, section: dict[str, Any], entries: list[BundleFile], golden: list[Mapping[str, Any]], vocabulary: Vocabulary) -> None:
    """The golden messages in MediaPipe's own TextClassifier (recorded under `checked_in`), when it is installed."""
    version = mediapipe_version()
    if version is None:
        console.info("  (mediapipe is not installed: the client models were checked in LiteRT only; pip install 'smsguard[mediapipe]' to check them in MediaPipe)")
        return
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
