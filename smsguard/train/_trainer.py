"""`train`: data -> tokenizer -> the tutorial's LSTM -> a run folder with everything needed to export
and to recompute every figure (model, vocabulary, split, config, history, metrics, plots)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsguard import _console as console
from smsguard._staging import check_target, staged_folder, write_json
from smsguard.runtime import Vocabulary
from smsguard.runtime.bundle import HISTORY_NAME, METRICS_NAME, RUN_CONFIG_NAME, RUN_MODEL_NAME, SPLIT_NAME, VOCAB_NAME, read_json
from smsguard.train._config import TrainConfig
from smsguard.train._data import deduplicate, load_messages, locate_data, split_dataset
from smsguard.train._metrics import Metrics, evaluate, threshold_for_ham_fpr


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    threshold: float
    validation: Metrics
    test: Metrics


def train(config: TrainConfig, out: Path, force: bool = False) -> TrainResult:
    """Train, evaluate on the held-out parts, and write the run folder whole (or not at all)."""
    out = Path(out)
    check_target(out, force, "run folder")
    data_path = locate_data(config.data)
    full = load_messages(data_path, config.text_column, config.label_column)
    dataset, dropped = deduplicate(full)
    console.step(
        f"Loaded {len(full):,} messages ({int(full.labels.sum()):,} spam) from {data_path}; "
        f"dropped {dropped:,} exact duplicate texts, {len(dataset):,} left"
    )
    split = split_dataset(dataset, config.seed, config.test_size, config.validation_size)
    texts = np.asarray(dataset.texts, dtype=object)
    parts = {name: getattr(split, name) for name in ("train", "validation", "test")}
    console.step(
        f"Split (stratified, seed {config.seed}): " + ", ".join(f"{name} {len(p):,}" for name, p in parts.items())
    )

    vocabulary = Vocabulary.fit(texts[split.train].tolist(), config.tokenizer)
    console.step(f"Fitted the tokenizer on the training part: {len(vocabulary.word_index):,} words, keeping ids below {vocabulary.size:,}")
    x = {name: vocabulary.encode(texts[p].tolist()) for name, p in parts.items()}
    y = {name: dataset.labels[p].astype(np.float32) for name, p in parts.items()}

    import keras  # here, so that `smsguard --help` and the runtime never pay for TensorFlow

    from smsguard.train._model import ModelConfig, build_model
    from smsguard.train._plots import write_plots

    keras.utils.set_random_seed(config.seed)
    model_config = ModelConfig(
        vocab_size=vocabulary.size,
        maxlen=config.maxlen,
        embedding_dim=config.embedding_dim,
        lstm_units=config.lstm_units,
        activation=config.activation,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        learning_rate=config.learning_rate,
    )
    model = build_model(model_config)
    console.step(
        f"Training Embedding({model_config.vocab_size}, {config.embedding_dim}) -> LSTM({config.lstm_units}, {config.activation}) "
        f"-> Dense(1, sigmoid) for {_epochs_wording(config)} (preset {config.preset})"
    )
    history, kept_epoch, seconds = _fit(model, config, x, y)

    proba = {name: model.predict(x[name], batch_size=1024, verbose=0).reshape(-1) for name in ("validation", "test")}
    if config.target_ham_fpr is None:
        threshold = 0.5
    else:
        threshold = threshold_for_ham_fpr(y["validation"], proba["validation"], config.target_ham_fpr)
        console.step(f"Threshold {threshold:.6g} meets a ham false-positive rate of {config.target_ham_fpr:g} on the validation part")
    metrics = {name: evaluate(y[name], proba[name], threshold) for name in ("validation", "test")}

    with staged_folder(out, force, "run folder") as folder:
        model.save(folder / RUN_MODEL_NAME)
        write_json(folder / VOCAB_NAME, vocabulary.to_dict())
        split.to_json(dataset, dropped, config.seed, folder / SPLIT_NAME)
        # The data file by name and hash (split.json): a run folder carries no path of the machine that made it.
        recorded = asdict(config) | {"data": None, "data_file": {"name": data_path.name, "sha256": dataset.sha256}}
        write_json(folder / RUN_CONFIG_NAME, {"train": recorded, "model": asdict(model_config)})
        write_json(folder / HISTORY_NAME, history | {"kept_epoch": kept_epoch, "seconds": seconds})
        write_json(
            folder / METRICS_NAME,
            {
                "threshold": threshold,
                "threshold_rule": "0.5" if config.target_ham_fpr is None else f"ham FPR <= {config.target_ham_fpr:g} on validation",
                "positive_label": "spam",
                "validation": metrics["validation"].to_dict(),
                "test": metrics["test"].to_dict(),
            },
        )
        write_plots(folder / "plots", y["test"], proba["test"], metrics["test"], history)

    console.info("\n" + metrics_table({"validation": metrics["validation"], "test": metrics["test"]}))
    console.step(f"Trained in {seconds:.1f} s; run written to {out}")
    return TrainResult(out, threshold, metrics["validation"], metrics["test"])


def _fit(model: Any, config: TrainConfig, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> tuple[dict, int, float]:
    """Train on the training part, watching the validation part; (history, the epoch kept, seconds)."""
    import keras

    stopper = None
    if config.early_stopping_patience:
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True)
    started = time.perf_counter()
    history = model.fit(
        x["train"],
        y["train"],
        validation_data=(x["validation"], y["validation"]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        # Only when asked, so that the tutorial preset trains exactly as it did before class weights existed.
        class_weight={0: 1.0, 1: config.spam_weight} if config.spam_weight != 1.0 else None,
        callbacks=[stopper] if stopper else [],
        verbose=1 if sys.stderr.isatty() else 2,
    ).history
    seconds = time.perf_counter() - started
    history = {key: [float(v) for v in values] for key, values in history.items()}
    kept_epoch = len(history["loss"])
    if stopper:
        kept_epoch = stopper.best_epoch + 1  # restored at the end of training
        console.step(f"Kept the weights of epoch {kept_epoch} of {len(history['loss'])}: the lowest validation loss")
    return history, kept_epoch, seconds


def _epochs_wording(config: TrainConfig) -> str:
    if not config.early_stopping_patience:
        return f"{config.epochs} epochs"
    return f"at most {config.epochs} epochs, stopping {config.early_stopping_patience} after the lowest validation loss"


def metrics_table(columns: dict[str, Metrics]) -> str:
    def pct(value: float) -> str:
        return f"{100 * value:.2f}%"

    rows = [["", *columns]]
    rows.append(["messages", *(f"{m.n:,}" for m in columns.values())])
    rows.append(["threshold", *(f"{m.threshold:.4g}" for m in columns.values())])
    rows.append(["accuracy", *(pct(m.accuracy) for m in columns.values())])
    rows.append(["spam precision", *(pct(m.spam_precision) for m in columns.values())])
    rows.append(["spam recall", *(pct(m.spam_recall) for m in columns.values())])
    rows.append(["spam F1", *(f"{m.spam_f1:.4f}" for m in columns.values())])
    rows.append(["ham flagged (FPR)", *(pct(m.ham_false_positive_rate) for m in columns.values())])
    rows.append(["ROC-AUC", *(f"{m.roc_auc:.4f}" for m in columns.values())])
    rows.append(["confusion [[tn fp] [fn tp]]", *(json.dumps([list(r) for r in m.confusion]) for m in columns.values())])
    return console.table(rows)


def read_run_config(run_dir: Path) -> tuple[TrainConfig, dict]:
    """The TrainConfig and ModelConfig fields a run was trained with."""
    data = read_json(Path(run_dir) / RUN_CONFIG_NAME, "run config")
    return TrainConfig.from_dict(data["train"]), data["model"]

