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
from smsguard._files import read_json
from smsguard._staging import check_target, staged_folder, write_json
from smsguard.runtime import NgramHasher, TextSpec, Vocabulary
from smsguard.runtime.bundle import VOCAB_NAME
from smsguard.train._augment import Copies, obfuscated_copies
from smsguard.train._campaigns import make_split
from smsguard.train._config import ModelConfig, TrainConfig
from smsguard.train._data import Dataset, Split, deduplicate, load_sources, locate_data
from smsguard.train._metrics import Metrics, evaluate, threshold_for_ham_fpr
from smsguard.train._run_folder import HISTORY_NAME, METRICS_NAME, OUT_OF_FOLD_NAME, RUN_CONFIG_NAME, RUN_MODEL_NAME, SPLIT_NAME


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
    dataset, dropped, split = _data_and_split(config)
    texts = np.asarray(dataset.texts, dtype=object)
    parts = {name: getattr(split, name) for name in ("train", "validation", "test")}

    vocabulary = fit_vocabulary(config, texts[split.train].tolist())
    x = {name: vocabulary.encode(texts[p].tolist()) for name, p in parts.items()}
    y = {name: dataset.labels[p].astype(np.float32) for name, p in parts.items()}
    pool = np.concatenate([split.train, split.validation])  # the out-of-fold thresholds' messages, in this order
    copies = obfuscated_copies(config, vocabulary, texts[pool].tolist(), dataset.labels[pool])

    import keras  # here, so that `smsguard --help` and the runtime never pay for TensorFlow

    from smsguard.train._plots import write_plots

    keras.utils.set_random_seed(config.seed)
    model_config = config.model_config(vocabulary.size)
    model, history, kept, seconds = _fit_model(model_config, config, *_with_copies(x, y, copies))

    proba = {name: model.predict(x[name], batch_size=1024, verbose=0).reshape(-1) for name in ("validation", "test")}
    threshold, rule, word_threshold, out_of_fold = _threshold(config, model_config, x, y, proba, kept, copies)
    metrics = {name: evaluate(y[name], proba[name], threshold) for name in ("validation", "test")}
    by_source = _metrics_by_source(dataset, split, y["test"], proba["test"], threshold)

    with staged_folder(out, force, "run folder") as folder:
        model.save(folder / RUN_MODEL_NAME)
        write_json(folder / VOCAB_NAME, vocabulary.to_dict(), compact=True)
        split.to_json(dataset, dropped, config.seed, folder / SPLIT_NAME)
        # The data file by name and hash (split.json): a run folder carries no path of the machine that made it.
        recorded = asdict(config) | {"data": None, "split": str(config.split), "data_file": dataset.files[0].to_dict() | {"rows": None}}
        recorded["data_file"].pop("rows")
        if len(dataset.files) > 1:
            recorded["data_files"] = [f.to_dict() for f in dataset.files]
        write_json(folder / RUN_CONFIG_NAME, {"train": recorded, "model": asdict(model_config)})
        write_json(folder / HISTORY_NAME, history | {"kept_epoch": kept[0], "seconds": seconds})
        threshold_fields = {"threshold": threshold, "threshold_rule": rule} | ({"word_threshold": word_threshold} if word_threshold is not None else {})
        by_file = {"test_by_source": {name: m.to_dict() for name, m in by_source.items()}} if by_source else {}
        write_json(folder / METRICS_NAME, threshold_fields | {"positive_label": "spam"} | {name: m.to_dict() for name, m in metrics.items()} | by_file)
        if out_of_fold is not None:
            write_json(folder / OUT_OF_FOLD_NAME, out_of_fold)
        write_plots(folder / "plots", y["test"], proba["test"], metrics["test"], history)

    console.info("\n" + metrics_table({"validation": metrics["validation"], "test": metrics["test"]} | {f"test: {name}": m for name, m in by_source.items()}))
    console.step(f"Trained in {seconds:.1f} s; run written to {out}")
    return TrainResult(out, threshold, metrics["validation"], metrics["test"])


def _data_and_split(config: TrainConfig) -> tuple[Dataset, int, Split]:
    """The data files, read in order with exact duplicates dropped, and the run's split (what it says on the console)."""
    paths = [locate_data(path) for path in config.data] or [locate_data(None)]
    full = load_sources(paths, config.text_column, config.label_column)
    dataset, dropped = deduplicate(full)
    per_file = ", ".join(f"{f.name}: {int((dataset.sources == k).sum()):,}" for k, f in enumerate(dataset.files))
    console.step(
        f"Loaded {len(full):,} messages ({int(full.labels.sum()):,} spam) from {', '.join(map(str, paths))}; "
        f"dropped {dropped:,} exact duplicate texts, {len(dataset):,} left" + (f" ({per_file})" if len(paths) > 1 else "")
    )
    split = make_split(dataset, config.seed, config.test_size, config.validation_size, config.split)
    sizes = ", ".join(f"{name} {len(getattr(split, name)):,}" for name in ("train", "validation", "test"))
    console.step(f"Split ({config.split}, seed {config.seed}): {sizes}")
    return dataset, dropped, split


def _metrics_by_source(dataset: Dataset, split: Split, labels: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Metrics]:
    """The test part's figures for each data file, when there are several (a file with no test message, or with only
    one label in it, gets none: its recall or false-positive rate would mean nothing)."""
    if len(dataset.files) < 2:
        return {}
    origin = dataset.sources[split.test]
    out = {}
    for k, file in enumerate(dataset.files):
        mine = origin == k
        if len(np.unique(labels[mine])) == 2:
            out[file.name] = evaluate(labels[mine], proba[mine], threshold)
        else:
            console.step(f"No per-file test figures for {file.name}: its test part holds {int(mine.sum())} messages of one label")
    return out


def fit_vocabulary(config: TrainConfig, texts: list[str]) -> Vocabulary:
    """The frozen vocabulary of a run: the text spec of this Python (and its normaliser when `normalise`), the word
    tokenizer fitted on `texts` (the training part), and the n-gram bag when the run has that branch."""
    vocabulary = Vocabulary.fit(texts, config.tokenizer, TextSpec.of_this_python(config.normalise))
    normalised = ", normalised first" if config.normalise else ""
    console.step(f"Fitted the tokenizer on the training part{normalised}: {len(vocabulary.word_index):,} words, keeping ids below {vocabulary.size:,}")
    ngrams = config.ngrams
    if ngrams is None:
        return vocabulary
    console.step(
        f"Each message also gets up to {ngrams.length} ids of its character {ngrams.min_n}- to {ngrams.max_n}-grams, "
        f"hashed into {ngrams.buckets:,} buckets"
    )
    return vocabulary.with_ngrams(NgramHasher(ngrams))


def _fit_model(model_config: ModelConfig, config: TrainConfig, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> tuple[Any, dict, tuple[int, ...], float]:
    """(model, history, the epoch kept per branch, seconds). A fused model's branches are trained one after the
    other, each with its own early stopping: trained jointly, early stopping ends training (the LSTM is best
    after 2 to 6 epochs) before the n-gram embeddings learn anything."""
    from smsguard.train._model import build_model, build_ngram_model, build_word_model, fuse

    console.step(f"Training {_described(model_config, config)} for {_epochs_wording(config)} (preset {config.preset})")
    if not model_config.fused:
        model = build_model(model_config)
        history, kept, seconds = _fit(model, config, x, y)
        return model, history, (kept,), seconds
    maxlen = model_config.maxlen
    words = build_word_model(model_config)
    history, kept_words, seconds = _fit(words, config, {k: v[:, :maxlen] for k, v in x.items()}, y)
    console.step(f"Training the n-gram branch: Embedding({model_config.ngram_buckets + 1}, {model_config.ngram_dim}) -> mean x {model_config.ngram_scale:g} -> Dense(1, sigmoid)")
    ngrams = build_ngram_model(model_config)
    ngram_history, kept_ngrams, ngram_seconds = _fit(ngrams, config, {k: v[:, maxlen:] for k, v in x.items()}, y)
    fused = fuse(words, ngrams, model_config)
    history |= {"ngrams": ngram_history | {"kept_epoch": kept_ngrams, "seconds": ngram_seconds}}
    return fused, history, (kept_words, kept_ngrams), seconds + ngram_seconds


def _with_copies(x: dict[str, np.ndarray], y: dict[str, np.ndarray], copies: Copies | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The parts a model trains on: the training part followed by its obfuscated copies, when there are any."""
    if copies is None:
        return x, y
    train_x, train_y = copies.added(x["train"], y["train"], np.arange(len(y["train"])))
    return x | {"train": train_x}, y | {"train": train_y}


def _threshold(
    config: TrainConfig, model_config: ModelConfig, x: dict[str, np.ndarray], y: dict[str, np.ndarray], proba: dict[str, np.ndarray], kept: tuple[int, ...],
    copies: Copies | None,
) -> tuple[float, str, float | None, dict | None]:
    """The decision threshold and how it was chosen: 0.5; or the lowest meeting `target_ham_fpr`, on the
    validation part, or on out-of-fold predictions over training + validation (`threshold_folds`). Third, for
    a fused model chosen out of fold: its word branch's own threshold, for the client model that runs it alone;
    fourth, then, the out-of-fold scores themselves (`OUT_OF_FOLD_NAME`)."""
    target = config.target_ham_fpr
    if target is None:
        return 0.5, "0.5", None, None
    if not config.threshold_folds:
        threshold = threshold_for_ham_fpr(y["validation"], proba["validation"], target)
        console.step(f"Threshold {threshold:.6g} meets a ham false-positive rate of {target:g} on the validation part")
        return threshold, f"ham FPR <= {target:g} on validation", None, None
    labels, scores, word_scores, ngram_scores = _out_of_fold(config, model_config, x, y, kept, copies)
    threshold = threshold_for_ham_fpr(labels, scores, target)
    word_threshold = threshold_for_ham_fpr(labels, word_scores, target) if model_config.fused else None
    ham = int((labels == 0).sum())
    console.step(
        f"Threshold {threshold:.6g} meets a ham false-positive rate of {target:g} on out-of-fold predictions for the "
        f"{len(labels):,} training and validation messages ({ham:,} ham, {config.threshold_folds} folds)"
    )
    rule = f"ham FPR <= {target:g} on out-of-fold predictions, {config.threshold_folds} folds over train + validation"
    if not model_config.fused:
        return threshold, rule, word_threshold, None
    out_of_fold = {"folds": config.threshold_folds, "messages": "the training part, then the validation part, in split.json's order"}
    out_of_fold |= {"labels": labels.astype(int).tolist(), "fused": scores.tolist(), "words": word_scores.tolist(), "ngrams": ngram_scores.tolist()}
    return threshold, rule, word_threshold, out_of_fold


def _out_of_fold(
    config: TrainConfig, model_config: ModelConfig, x: dict[str, np.ndarray], y: dict[str, np.ndarray], kept: tuple[int, ...], copies: Copies | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each training and validation message scored by a model that did not see it: `threshold_folds`
    stratified folds, each model trained like the run's for the epochs the run kept (no early stopping:
    the held-out fold must not choose anything), on its seen folds and their obfuscated copies; the held-out
    fold is scored clean. The validation part alone holds about 450 ham, too few to place a 0.2% threshold
    (one message is 0.22%); these are about 3,150. (labels, fused, word branch, n-gram branch scores)."""
    import keras
    from sklearn.model_selection import StratifiedKFold

    from smsguard.train._model import build_ngram_model, build_word_model, fuse

    pool_x = np.concatenate([x["train"], x["validation"]])
    pool_y = np.concatenate([y["train"], y["validation"]])
    scores = np.zeros(len(pool_y), dtype=np.float32)
    word_scores = np.zeros(len(pool_y), dtype=np.float32)  # the word branch alone
    ngram_scores = np.zeros(len(pool_y), dtype=np.float32)
    maxlen = model_config.maxlen
    folds = StratifiedKFold(config.threshold_folds, shuffle=True, random_state=config.seed)
    weights = {0: 1.0, 1: config.spam_weight} if config.spam_weight != 1.0 else None
    for fold, (seen, held) in enumerate(folds.split(pool_x, pool_y)):
        console.step(f"Out-of-fold scores for the threshold: fold {fold + 1} of {config.threshold_folds}")
        keras.utils.set_random_seed(config.seed + 1 + fold)
        fit = {"batch_size": config.batch_size, "shuffle": True, "class_weight": weights, "verbose": 0}
        seen_x, seen_y = copies.added(pool_x[seen], pool_y[seen], seen) if copies is not None else (pool_x[seen], pool_y[seen])
        words = build_word_model(model_config)
        words.fit(seen_x[:, :maxlen], seen_y, epochs=kept[0], **fit)
        model = words
        if model_config.fused:
            ngrams = build_ngram_model(model_config)
            ngrams.fit(seen_x[:, maxlen:], seen_y, epochs=kept[1], **fit)
            model = fuse(words, ngrams, model_config)
            ngram_scores[held] = ngrams.predict(pool_x[held, maxlen:], batch_size=1024, verbose=0).reshape(-1)
        scores[held] = model.predict(pool_x[held], batch_size=1024, verbose=0).reshape(-1)
        word_scores[held] = words.predict(pool_x[held, :maxlen], batch_size=1024, verbose=0).reshape(-1)
    return pool_y, scores, word_scores, ngram_scores


def _described(model_config: ModelConfig, config: TrainConfig) -> str:
    words = f"Embedding({model_config.vocab_size}, {config.embedding_dim}) -> LSTM({config.lstm_units}, {config.activation}) -> Dense(1, sigmoid)"
    return f"the word branch, {words}," if model_config.fused else words


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

