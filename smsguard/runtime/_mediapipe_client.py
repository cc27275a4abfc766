"""Running a bundle's client models in MediaPipe's own TextClassifier (`pip install 'smsguard[mediapipe]'`),
so that parity is proven in the client, not in a re-implementation of it.

`check_clients` replays the golden vectors: the probe model shows the ids MediaPipe computes (after the
client model's prefix), which must be the golden ids; each client model's score must be the Keras
probability within the float tolerance (float32), or its own score at export within the quantized one.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from smsguard._errors import BackendError
from smsguard.runtime._mediapipe import client_ids, client_text, pre_padded
from smsguard.runtime._verify import VerifyResult
from smsguard.runtime._vocabulary import Vocabulary
from smsguard.runtime.bundle import LEGACY_TOLERANCE, Bundle, BundleFile, verified_path

CLIENT = "mediapipe"


def mediapipe_version() -> str | None:
    """The installed mediapipe's version, or None when it is not installed."""
    try:
        return importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        return None


class MediaPipeClassifier:
    """MediaPipe's TextClassifier on one model file, all results kept (no score threshold)."""

    def __init__(self, path: Path) -> None:
        try:
            from mediapipe.tasks.python import text
            from mediapipe.tasks.python.core import base_options
        except ImportError:
            msg = "mediapipe is not installed: pip install 'smsguard[mediapipe]'"
            raise BackendError(msg) from None
        options = text.TextClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=str(path)))
        try:
            self._classifier = text.TextClassifier.create_from_options(options)
        except (RuntimeError, ValueError, OSError) as error:  # MediaPipe raises builtin errors carrying its status message
            msg = f"MediaPipe cannot load '{Path(path).name}': {str(error).splitlines()[0] if str(error) else type(error).__name__}"
            raise BackendError(msg) from None

    def scores(self, text: str) -> np.ndarray:
        """Every score of the model's one head, by category index."""
        categories = self._classifier.classify(text).classifications[0].categories
        out = np.zeros(len(categories), dtype=np.float32)
        for category in categories:
            out[category.index] = category.score
        return out

    def probabilities(self, texts: Iterable[str]) -> np.ndarray:
        return np.array([self.scores(text)[0] for text in texts], dtype=np.float64)

    def ids(self, texts: Iterable[str]) -> np.ndarray:
        """For the probe model: the ids the model sees."""
        return np.array([self.scores(text) for text in texts]).astype(np.int32)

    def close(self) -> None:
        self._classifier.close()


@contextlib.contextmanager
def classifier(path: Path) -> Iterator[MediaPipeClassifier]:
    opened = MediaPipeClassifier(path)
    try:
        yield opened
    finally:
        opened.close()


def client_section(bundle: Bundle) -> Mapping[str, Any] | None:
    return bundle.manifest.clients.get(CLIENT)


def check_clients(
    folder: Path, section: Mapping[str, Any], files: Mapping[str, BundleFile], golden: list[Mapping[str, Any]], vocabulary: Vocabulary
) -> tuple[list[str], list[VerifyResult]]:
    """Id problems and one result per client model, on the golden vectors (`golden`: manifest entries).

    The probe's ids must be what the spec says MediaPipe computes (`client_ids`: the text as given, up to a
    NUL, never normalised), rotated as the client model rotates them. A text MediaPipe cannot take (a lone
    surrogate has no UTF-8 form) or reads only in part (a NUL ends it for MediaPipe) is left out of the
    probabilities.
    """
    version = mediapipe_version()
    if version is None:
        msg = "mediapipe is not installed: pip install 'smsguard[mediapipe]'"
        raise BackendError(msg)
    backend = f"mediapipe {version}"
    usable = [i for i, g in enumerate(golden) if _encodable(g["text"])]
    whole = [i for i in usable if "\0" not in golden[i]["text"]]
    texts = [golden[i]["text"] for i in usable]
    problems: list[str] = []
    with classifier(verified_path(folder, files[section["probe"]])) as probe:
        found = probe.ids(texts)
    expected = pre_padded(client_ids(vocabulary, texts)) if texts else np.zeros((0, found.shape[1]), dtype=np.int32)
    for row, i in enumerate(usable):
        if not (found[row] == expected[row]).all():
            problems.append(f"message {i} ({golden[i]['text'][:40]!r}...): MediaPipe's ids differ from the golden ids")
    results = []
    for model in section["models"]:
        name, is_float = model["name"], model["quantization"] == "float32"
        reference = "keras" if is_float else "export"
        tolerance = float(model.get("tolerance", LEGACY_TOLERANCE[is_float]))
        result = VerifyResult(name, backend, reference, tolerance)
        try:
            with classifier(verified_path(folder, files[name])) as client:
                got = client.probabilities(golden[i]["text"] for i in whole)
        except BackendError as error:
            result.skipped = str(error)
            results.append(result)
            continue
        # A fused bundle's client is its word branch alone, whose Keras outputs (on the client's own ids) the section gives.
        keras = section.get("keras_probabilities") or [g["keras_probability"] for g in golden]
        want = np.array([keras[i] for i in whole]) if is_float else np.array(section["golden_probabilities"][name])[whole]
        diff = np.abs(got - want)
        result.max_abs_diff = float(diff.max()) if len(diff) else 0.0
        bad = np.flatnonzero(diff > tolerance)
        if len(bad):
            result.problems.append(f"{len(bad)} of {len(diff)} messages differ by more than {tolerance:g} (max {diff.max():.3g}, first: message {whole[bad[0]]})")
        results.append(result)
    return problems, results


def verify_clients(bundle: Bundle) -> tuple[list[str], list[VerifyResult]] | None:
    """`check_clients` on a loaded bundle; None when the bundle has no client models."""
    section = client_section(bundle)
    if not section:
        return None
    return check_clients(bundle.path, section, bundle.files, [g.to_dict() for g in bundle.golden], bundle.vocabulary)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = ["MediaPipeClassifier", "check_clients", "classifier", "client_section", "client_text", "mediapipe_version", "verify_clients"]
