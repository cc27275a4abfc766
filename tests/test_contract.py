"""The model contract (`InputLayout`, `Decision`) and what uses it, on the fast tier's tiny bundle."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from tiny import TEXTS, make_bundle

from smsguard.runtime import Classifier
from smsguard.score import Scorer


@pytest.fixture
def two_thresholds(tmp_path: Path) -> tuple[Path, Path]:
    """The same model at two thresholds: everything ham at the first (1.0), everything spam at the second (0.0)."""
    return make_bundle(tmp_path / "high", threshold=1.0, serial=1), make_bundle(tmp_path / "low", threshold=0.0, serial=2)


def test_the_scorer_labels_with_the_threshold_of_the_model_that_scored_the_batch(two_thresholds: tuple[Path, Path]) -> None:
    """Scorer used to keep the threshold of the bundle it was made with, so after a reload it labelled the new
    model's probabilities at the old threshold."""
    high, low = two_thresholds
    classifier = Classifier.load(high)
    scorer = Scorer(classifier)
    batch = pa.RecordBatch.from_pydict({"text": list(TEXTS)})
    assert set(scorer(batch).column("spam_label").to_pylist()) == {"ham"}
    assert classifier.reload(low)
    assert set(scorer(batch).column("spam_label").to_pylist()) == {"spam"}
