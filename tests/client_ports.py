"""What the tests of every port of the runtime share (Java, JavaScript): the tool check that skips outside CI and
fails under it, the generated Unicode set, the client command-line contract (one JSON string a line in, one JSON
object a line out), and the comparison of a port's results with the Python reference on the same model file."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from smsguard.export import FLOAT_ATOL
from smsguard.runtime import Classifier, Decision

UNICODE_WINDOW = 64  # code points per text of the window set: 17,408 texts cover 0..0x10FFFF
SIGMA_WINDOW = 48  # code points per text of the word set (each as its own word "a<c>Σ"): 23,211 texts
RANDOM_TEXTS = 3000  # seeded random mixes on top
MEGABYTE = 1 << 20


def require_tools(*names: str) -> None:
    """Skip when a tool is missing, except under CI (CI=true), where a real component that cannot run fails the run."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not found on PATH (.ci/run installs Debian's packages as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # conftest's IN_CI
        pytest.fail(f"under CI every client must run: {reason}")
    pytest.skip(reason)


# ---- the texts ----------------------------------------------------------------------------------------------


def _travels(text: str) -> bool:
    """JSON carries the text unchanged (a high then a low lone surrogate would arrive as one code point)."""
    return json.loads(json.dumps(text)) == text


def unicode_texts(seed: int = 0) -> list[str]:
    """At least 20,000 texts that hold every code point 0..0x10FFFF twice: in a run of its neighbours, and as a
    word of its own between an ASCII letter and a capital sigma (where lowercase, fold, look-alikes, removal and
    the final-sigma rule all read it); then seeded random mixes of ASCII, whitespace, sigma, surrogates and
    supplementary code points."""
    top = 0x110000
    windows = ["".join(map(chr, range(start, min(start + UNICODE_WINDOW, top)))) for start in range(0, top, UNICODE_WINDOW)]
    words = [" ".join(f"a{chr(code)}\u03a3" for code in range(start, min(start + SIGMA_WINDOW, top))) for start in range(0, top, SIGMA_WINDOW)]
    rng = random.Random(seed)
    mixes = [_random_text(rng) for _ in range(RANDOM_TEXTS)]
    texts = windows + words + mixes
    assert len(texts) >= 20_000 and all(map(_travels, texts)), "the Unicode set must travel through JSON unchanged"
    return texts


def _random_text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 80)):
        roll = rng.random()
        if roll < 0.45:
            pieces.append(chr(rng.randint(32, 126)))
        elif roll < 0.6:
            pieces.append(chr(rng.randint(0x80, 0x800)))
        elif roll < 0.75:
            pieces.append(rng.choice(" \t\n\x00\u00a0\u3000\u2028\u0085\u200b\u00ad\u03a3\u03c2\u0130I\u0307'.-ＦＲＥＥ\U0001d400😀"))
        elif roll < 0.9:
            pieces.append(chr(rng.randint(0, 0xFFFF)))
        else:
            pieces.append(chr(rng.randint(0x10000, 0x10FFFF)))
    text = "".join(pieces)
    return text if _travels(text) else json.loads(json.dumps(text))


def megabyte_texts() -> dict[str, str]:
    """1 MB messages that a port must handle in time linear in their length (the tokenizers stop early, the
    normaliser is one pass): the shapes that make a naive port quadratic or deep in recursion."""
    rng = random.Random(1)
    mixed = "".join(rng.choice("abc XYZ 019 .,!'£€ΣΑΟçé😀\u00a0\u200b") for _ in range(MEGABYTE))
    return {
        "words": ("free prize call now " * (MEGABYTE // 20))[:MEGABYTE],
        "one word": "x" * MEGABYTE,
        "spaced letters": ("F R E E " * (MEGABYTE // 8))[:MEGABYTE],
        "dotted letters": "a" + ".b" * (MEGABYTE // 2),
        "sigmas and case-ignorables": ("ΑΣ'''''" + "'" * 1000) * (MEGABYTE // 1007),
        "whitespace": " \t\u3000" * (MEGABYTE // 3),
        "mixed": mixed,
    }


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
