"""What export reads from a training run folder: the settings, the vocabulary, the threshold, and the
run's own validation and test messages (rebuilt from split.json and the data file, checked by hash)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smsguard._files import read_json, sha256_of
from smsguard.export._config import ExportConfig
from smsguard.runtime import Vocabulary
from smsguard.runtime.bundle import VOCAB_NAME
from smsguard.train import METRICS_NAME, RUN_MODEL_NAME, SPLIT_NAME, TrainConfig, read_run_config, read_split


@dataclass(frozen=True, eq=False)
class RunInputs:
    """A run folder, read and checked: everything export needs besides the Keras model itself."""

    folder: Path
    train_config: TrainConfig
    model_fields: dict  # the run's ModelConfig, as recorded
    vocabulary: Vocabulary
    threshold: float  # the run's, chosen at training
    client_threshold: float  # a fused run's word branch alone (its client model), chosen the same way; else the run's
    model_sha256: str
    data_sha256: str
    test_texts: list[str]
    test_labels: np.ndarray
    test_ids: np.ndarray
    validation_labels: np.ndarray
    validation_ids: np.ndarray
    calibration_ids: np.ndarray  # the first training messages, for the full-integer model

    @property
    def model_path(self) -> Path:
        return self.folder / RUN_MODEL_NAME


def read_run(run_dir: Path, config: ExportConfig) -> RunInputs:
    train_config, model_fields = read_run_config(run_dir)
    vocabulary = Vocabulary.from_dict(read_json(run_dir / VOCAB_NAME, "vocabulary"))
    metrics = read_json(run_dir / METRICS_NAME, "metrics")
    threshold = float(metrics["threshold"])
    dataset, split = read_split(run_dir / SPLIT_NAME, config.data, train_config.text_column, train_config.label_column)
    texts = np.asarray(dataset.texts, dtype=object)
    test_texts = texts[split.test].tolist()
    return RunInputs(
        folder=run_dir,
        train_config=train_config,
        model_fields=model_fields,
        vocabulary=vocabulary,
        threshold=threshold,
        client_threshold=float(metrics.get("word_threshold", threshold)),
        model_sha256=sha256_of(run_dir / RUN_MODEL_NAME),
        data_sha256=dataset.sha256,
        test_texts=test_texts,
        test_labels=dataset.labels[split.test],
        test_ids=vocabulary.encode(test_texts),
        validation_labels=dataset.labels[split.validation],
        validation_ids=vocabulary.encode(texts[split.validation].tolist()),
        calibration_ids=vocabulary.encode(texts[split.train[: config.calibration_messages]].tolist()),
    )
