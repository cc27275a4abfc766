"""What a port's tests need beside its texts (`unicode_texts.py`): the tool check that skips outside CI and fails
under it, the client command-line contract (one JSON string a line in, one JSON object a line out), and the
comparison of a port's results with the Python reference on the same model file."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from conftest import cannot_run

from smsguard.export import FLOAT_ATOL
from smsguard.runtime import Classifier, Decision


def require_tools(*names: str) -> None:
    """Skip when a tool is missing, except under CI (CI=true), where a real component that cannot run fails the run."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    cannot_run(f"{', '.join(missing)} not found on PATH (.ci/run installs Debian's packages as root)")


# ---- the client command line --------------------------------------------------------------------------------


def run_client(command: Sequence[str], texts: Sequence[str], timeout: float = 600) -> list[dict]:
    """One result per text from a client's command line (one JSON string a line in, one JSON object a line out)."""
    stdin = "".join(json.dumps(text, ensure_ascii=True) + "\n" for text in texts).encode("ascii")
    done = subprocess.run(list(command), input=stdin, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    rows = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert len(rows) == len(texts), f"{len(rows)} results for {len(texts)} messages"
    return rows


@dataclass
class PortComparison:
    """A port's results on the same model file as the Python runtime's native backend."""

    messages: int
    ids_identical: int | None  # None when the port was not asked for ids
    max_abs_diff: float
    labels_identical: int
    examples: list[str] = field(default_factory=list)  # the first differences, for the assertion message

    @property
    def conforms(self) -> bool:
        ids_ok = self.ids_identical is None or self.ids_identical == self.messages
        return ids_ok and self.max_abs_diff <= FLOAT_ATOL and self.labels_identical == self.messages


def compare_with_python(bundle: Path, model: str, texts: Sequence[str], rows: Sequence[dict]) -> PortComparison:
    """Ids (when the rows have them) against `Vocabulary.encode`, probabilities and labels against the native backend."""
    classifier = Classifier.load(bundle, backend="native", model=model)
    expected = classifier.predict_proba(list(texts)).astype(np.float64)
    got = np.array([row["probability"] for row in rows], dtype=np.float64)
    labels = Decision(classifier.threshold, classifier.bundle.labels).labels_of(expected)
    same_labels = [row["label"] == label for row, label in zip(rows, labels, strict=True)]
    examples = [f"label of {texts[i]!r:.80}: {rows[i]['label']!r}, expected {labels[i]!r}" for i, ok in enumerate(same_labels) if not ok][:3]
    diff = np.abs(got - expected)
    examples += [f"probability of {texts[i]!r:.80}: {got[i]}, expected {expected[i]}" for i in np.nonzero(diff > FLOAT_ATOL)[0][:3]]
    identical = None
    if rows and "ids" in rows[0]:
        want = classifier.encode(list(texts))
        have = np.array([row["ids"] for row in rows], dtype=np.int64)
        same = (have == want).all(axis=1)
        identical = int(same.sum())
        examples += [f"ids of {texts[i]!r:.80} differ from column {int(np.argmax(have[i] != want[i]))}" for i in np.nonzero(~same)[0][:3]]
    return PortComparison(len(texts), identical, float(diff.max()) if len(diff) else 0.0, sum(same_labels), examples)
