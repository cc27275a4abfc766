"""Which word model should the fused model's word branch be? The measurement behind the default.

On the accuracy benchmark's splits (seeds 42-44, `split_dataset` as `smsguard train` makes them), three
word LSTMs of the tuned settings, each alone and each averaged with the same character n-gram bag (the
fused preset's n-gram branch, trained once per seed), Keras test figures at 0.5:

- cased: the mediapipe tokenizer (case kept, `<UNKNOWN>`): the one MediaPipe's TextClassifier reproduces,
  so the bundle's client model can be the fused model's own word branch;
- lowercased: the tuned tokenizer (`<OOV>`);
- normalised: lowercased after replacing URLs, amounts of money, phone numbers and other numbers by shape
  tokens (`NORMALISERS` below: an experiment here, not part of smsguard; no client can reproduce it).

Writes benchmarks/results/word_branch.json and word_branch.md.

    python benchmarks/word_branch.py [--seeds 42 43 44] [--data PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("accuracy", "spam_f1", "ham_false_positive_rate", "roc_auc", "pr_auc")
NORMALISERS = (  # in order; shape tokens of letters only, so that the word tokenizer's filters keep them whole
    (re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|co\.uk|net|org|biz|info|uk|io|ly|me)\b\S*"), " zzurl "),
    (re.compile(r"(?i)[£$€]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:p|pence|pounds?|gbp|usd|eur|k)\b"), " zzmoney "),
    (re.compile(r"\+?\d[\d -]{7,}\d"), " zzphone "),
)
NUMBER = re.compile(r"\d+")
VARIANTS = {"cased": ("mediapipe", False), "lowercased": ("tuned", False), "normalised": ("tuned", True)}  # (tokenizer preset, normalise)


def normalise(text: str) -> str:
    for pattern, token in NORMALISERS:
        text = pattern.sub(token, text)
    return NUMBER.sub(lambda m: f" zznum{min(len(m.group()), 5)} ", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--data")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.perf_counter()
    per_seed = {str(seed): run_seed(seed, args.data) for seed in args.seeds}
    names = list(next(iter(per_seed.values())))
    summary = {name: {m: float(np.mean([per_seed[s][name][m] for s in per_seed])) for m in METRICS} for name in names}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("word_branch.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "load": os.getloadavg()[0]},
        "seconds": round(time.perf_counter() - started, 1),
        "part": "test",
        "threshold": 0.5,
        "per_seed": per_seed,
        "summary": summary,
    }
    rows = ["| word branch | alone or fused | accuracy | spam F1 | ham flagged | ROC-AUC | PR-AUC | accuracy per seed |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for name, m in summary.items():
        variant, how = name.split(" ", 1)
        seeds = ", ".join(f"{100 * per_seed[s][name]['accuracy']:.2f}%" for s in per_seed)
        rows.append(
            f"| {variant} | {how} | {100 * m['accuracy']:.2f}% | {m['spam_f1']:.4f} | {100 * m['ham_false_positive_rate']:.2f}% | "
            f"{m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {seeds} |"
        )
    table = (
        f"# The fused model's word branch\n\nMeasured {result['date'][:10]} with `{result['command']}` ({result['seconds']:.0f} s, load "
        f"{result['machine']['load']:.1f}): Keras test figures at threshold 0.5, mean of seeds {', '.join(per_seed)}; \"fused\" is the "
        "mean of the word model's and the seed's n-gram bag's probabilities.\n\n" + "\n".join(rows) + "\n"
    )
    write_results(Path(args.out), "word_branch", result, table, f"{result['seconds']:.0f} s")
    return 0


def run_seed(seed: int, data: str | None) -> dict[str, dict[str, float]]:
    import keras

    from smsguard.runtime import NgramHasher, Vocabulary
    from smsguard.train import TrainConfig, deduplicate, evaluate, load_messages, locate_data, split_dataset
    from smsguard.train._model import build_ngram_model, build_word_model
    from smsguard.train._trainer import _fit

    dataset, _ = deduplicate(load_messages(locate_data(data)))
    split = split_dataset(dataset, seed)
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    labels = {name: dataset.labels[p].astype(np.float32) for name, p in parts.items()}
    raw = np.asarray(dataset.texts, dtype=object)
    fused_config = TrainConfig.from_preset("fused", seed=seed, data=data)

    print(f"\n== seed {seed}: the n-gram bag", file=sys.stderr)
    hasher = NgramHasher(fused_config.ngrams)
    bag = {name: hasher.encode(raw[p].tolist()) for name, p in parts.items()}
    keras.utils.set_random_seed(seed)
    ngrams = build_ngram_model(fused_config.model_config(2))  # the word table's size does not matter here
    _fit(ngrams, fused_config, bag, labels)
    bag_test = ngrams.predict(bag["test"], verbose=0).reshape(-1)

    out = {}
    for variant, (preset, normalised) in VARIANTS.items():
        print(f"\n== seed {seed}: the {variant} word LSTM", file=sys.stderr)
        config = TrainConfig.from_preset(preset, seed=seed, data=data)
        texts = np.asarray([normalise(t) for t in dataset.texts], dtype=object) if normalised else raw
        vocabulary = Vocabulary.fit(texts[split.train].tolist(), config.tokenizer)
        x = {name: vocabulary.encode(texts[p].tolist()) for name, p in parts.items()}
        keras.utils.set_random_seed(seed)
        words = build_word_model(config.model_config(vocabulary.size))
        _fit(words, config, x, labels)
        word_test = words.predict(x["test"], verbose=0).reshape(-1)
        for how, scores in (("alone", word_test), ("fused", (word_test + bag_test) / 2)):
            metrics = evaluate(labels["test"], scores, 0.5)
            out[f"{variant} {how}"] = {m: float(getattr(metrics, m)) for m in METRICS}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
