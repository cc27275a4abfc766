"""The out-of-domain benchmark: systems trained on the 2011 UCI SMS Spam Collection, scored on
benchmarks/ood/messages.csv, modern SMS (parcel-fee and toll scams, "hi mum" messages, task scams, OTP
codes, ...) written by hand for this project and never used for training, thresholds or model selection.

For each seed it trains exactly as benchmarks/accuracy.py does (the preset's LSTM on the deduplicated,
stratified split, exported; the TF-IDF word + char LinearSVC and the naive Bayes baseline fitted on the same
training part, at accuracy.py's thresholds), then scores the whole out-of-domain set with: the Keras model,
the recommended exported models through `smsguard.runtime.Classifier`, and the two baselines. Per system:
accuracy, spam recall, ham flagged, ROC-AUC, PR-AUC, recall per spam category and flagged rate per ham
category, beside the same system's figures on the seed's UCI test part. Writes
benchmarks/results/out_of_domain.json and out_of_domain.md (out_of_domain-PRESET.* for another preset than the default).

    python benchmarks/out_of_domain.py [--preset tuned] [--seeds 42 43 44] [--data PATH] [--ood PATH]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _baselines import NB, SVM, baseline_threshold, baselines  # benchmarks/, beside this script
from _results import command_line, write_results
from accuracy import SEEDS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OOD_SET = HERE / "ood" / "messages.csv"
METRICS = ("accuracy", "spam_recall", "ham_false_positive_rate", "roc_auc", "pr_auc")
IN_DOMAIN = ("accuracy", "spam_recall", "ham_false_positive_rate")


@dataclass(frozen=True)
class OodSet:
    """The out-of-domain messages in file order: text, label (1 = spam) and category of each."""

    texts: tuple[str, ...]
    labels: np.ndarray
    categories: tuple[str, ...]
    sha256: str


def load_ood(path: Path) -> OodSet:
    """Read the set with the project's own loader, and its `category` column beside it."""
    from smsguard.train import load_messages

    dataset = load_messages(path)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if [row["text"] for row in rows] != list(dataset.texts):
        msg = f"{path}: the category column does not line up with the messages the loader read"
        raise SystemExit(msg)
    return OodSet(dataset.texts, np.asarray(dataset.labels), tuple(row["category"] for row in rows), dataset.sha256)


def main() -> int:
    from smsguard.train._config import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help=f"the preset measured (default: {DEFAULT_PRESET})")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split and training seeds (default: 42 43 44)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--ood", default=str(OOD_SET), help="the out-of-domain set (default: benchmarks/ood/messages.csv)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for out_of_domain.json and .md (default: benchmarks/results)")
    args = parser.parse_args()
    ood = load_ood(Path(args.ood))
    load_at_start = _load_average()
    started = time.perf_counter()
    per_seed = {seed: run_seed(args.preset, seed, args.data, ood) for seed in args.seeds}
    spam_categories = sorted({c for c, y in zip(ood.categories, ood.labels, strict=True) if y == 1})
    ham_categories = sorted({c for c, y in zip(ood.categories, ood.labels, strict=True) if y == 0})
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("out_of_domain.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "load_average": {"start": [round(x, 2) for x in load_at_start], "end": [round(x, 2) for x in _load_average()]},
        "seconds": round(time.perf_counter() - started, 1),
        "preset": args.preset,
        "seeds": args.seeds,
        "ood_set": {
            "name": Path(args.ood).name,
            "sha256": ood.sha256,
            "messages": len(ood.texts),
            "spam": int(ood.labels.sum()),
            "ham": int((ood.labels == 0).sum()),
            "categories": {c: ood.categories.count(c) for c in (*spam_categories, *ham_categories)},
        },
        "thresholds_are": (
            "each system at the threshold it ships with, chosen on the UCI data only, as in benchmarks/accuracy.py: "
            "the LSTM's from training, an exported model's own when its manifest entry gives one, the SVM at "
            "decision 0 and naive Bayes at 0.5 (or, when the preset has a target ham false-positive rate, the "
            "threshold meeting it on the UCI validation part)"
        ),
        "per_seed": {str(seed): systems for seed, systems in per_seed.items()},
        "summary": summarize(per_seed, spam_categories, ham_categories),
        "spam_categories": spam_categories,
        "ham_categories": ham_categories,
    }
    name = "out_of_domain" if args.preset == DEFAULT_PRESET else f"out_of_domain-{args.preset}"  # one file per preset measured
    write_results(Path(args.out), name, result, markdown(result), f"{result['seconds']:.0f} s")
    return 0


def run_seed(preset: str, seed: int, data: str | None, ood: OodSet) -> dict[str, dict]:
    """Every system's figures on the out-of-domain set (and on the seed's UCI test part): name -> entry."""
    from smsguard._files import read_json
    from smsguard.export import ExportConfig, export
    from smsguard.runtime import Bundle, Classifier, Vocabulary
    from smsguard.runtime.bundle import ModelFormat
    from smsguard.train import TrainConfig, deduplicate, evaluate, load_messages, locate_data, split_dataset, train
    from smsguard.train._model import load_model

    ood_texts = list(ood.texts)
    systems: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work:
        config = TrainConfig.from_preset(preset, seed=seed, data=data)
        run_dir, bundle_dir = Path(work) / "run", Path(work) / "bundle"
        print(f"\n== seed {seed}: train ({preset} preset), export, score the out-of-domain set", file=sys.stderr)
        result = train(config, run_dir)
        export(run_dir, bundle_dir, ExportConfig(data=data))

        vocabulary = Vocabulary.from_dict(read_json(run_dir / "vocab.json", "vocabulary"))
        proba = load_model(run_dir / "model.keras").predict(vocabulary.encode(ood_texts), batch_size=1024, verbose=0).reshape(-1)
        systems[f"Keras, {preset} preset"] = _entry(ood, proba, result.threshold, evaluate, result.test)

        dataset, _ = deduplicate(load_messages(locate_data(data)))
        split = split_dataset(dataset, seed, config.test_size, config.validation_size)
        texts = np.asarray(dataset.texts, dtype=object)
        test_texts, test_labels = texts[split.test].tolist(), dataset.labels[split.test]

        bundle = Bundle.load(bundle_dir)
        for fmt in (ModelFormat.TFLITE, ModelFormat.ONNX):
            entry = bundle.recommended(fmt)
            if entry is None:
                continue
            classifier = Classifier.load(bundle_dir, model=entry.name)
            in_domain = evaluate(test_labels, classifier.predict_proba(test_texts), classifier.threshold)
            systems[f"recommended {fmt.value}"] = _entry(ood, classifier.predict_proba(ood_texts), classifier.threshold, evaluate, in_domain) | {
                "model": entry.name
            }

        for name, pipeline, score in baselines():
            pipeline.fit(texts[split.train], dataset.labels[split.train])
            threshold = baseline_threshold(name, config, pipeline, score, texts, dataset.labels, split)
            in_domain = evaluate(test_labels, score(pipeline, texts[split.test]), threshold)
            systems[name] = _entry(ood, np.asarray(score(pipeline, np.asarray(ood_texts, dtype=object))), threshold, evaluate, in_domain)
    return systems


def _entry(ood: OodSet, scores: np.ndarray, threshold: float, evaluate: Callable, in_domain) -> dict:
    """One system on one seed: the out-of-domain metrics, per-category rates, what it got wrong, and the
    same system's figures on the UCI test part."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    metrics = evaluate(ood.labels, scores, threshold)
    flagged = scores >= threshold
    categories = np.asarray(ood.categories, dtype=object)
    per_category = {str(c): float(flagged[categories == c].mean()) for c in sorted(set(ood.categories))}
    wrong = [
        {"label": "spam" if y else "ham", "category": c, "score": round(float(s), 4), "text": t}
        for t, y, c, s, f in zip(ood.texts, ood.labels, ood.categories, scores, flagged, strict=True)
        if bool(f) != bool(y)
    ]
    return {
        **{name: getattr(metrics, name) for name in METRICS},
        "threshold": float(threshold),
        "confusion": [list(row) for row in metrics.confusion],
        "flagged_per_category": per_category,
        "in_domain_test": {name: getattr(in_domain, name) for name in IN_DOMAIN},
        "wrong": wrong,
    }


def summarize(per_seed: dict[int, dict[str, dict]], spam_categories: list[str], ham_categories: list[str]) -> dict[str, dict]:
    """Per system: mean, min and max over the seeds of each metric, category rate and in-domain figure."""

    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}

    summary: dict[str, dict] = {}
    for name in next(iter(per_seed.values())):
        rows = [systems[name] for systems in per_seed.values() if name in systems]
        summary[name] = {
            **{key: stats([row[key] for row in rows]) for key in METRICS},
            "in_domain_test": {key: stats([row["in_domain_test"][key] for row in rows]) for key in IN_DOMAIN},
            "flagged_per_category": {c: stats([row["flagged_per_category"][c] for row in rows]) for c in (*spam_categories, *ham_categories)},
        }
        if "model" in rows[0]:
            summary[name]["models"] = sorted({row["model"] for row in rows})
    return summary


def markdown(result: dict) -> str:
    def pct(s: dict) -> str:
        if len(result["seeds"]) == 1:
            return f"{100 * s['mean']:.1f}%"
        return f"{100 * s['mean']:.1f}% ({100 * s['min']:.1f}–{100 * s['max']:.1f})"

    def num(s: dict) -> str:
        if len(result["seeds"]) == 1:
            return f"{s['mean']:.3f}"
        return f"{s['mean']:.3f} ({s['min']:.3f}–{s['max']:.3f})"

    ood, summary = result["ood_set"], result["summary"]
    names = list(summary)
    labels = {name: name + (" (" + ", ".join(summary[name]["models"]) + ")" if "models" in summary[name] else "") for name in names}
    seeds = ", ".join(map(str, result["seeds"]))
    spread = "" if len(result["seeds"]) == 1 else "; mean (min–max) over the seeds"
    load = (
        " / ".join(f"{x:.2f}" for x in result["load_average"]["start"])
        + " at the start, "
        + " / ".join(f"{x:.2f}" for x in result["load_average"]["end"])
        + " at the end"
    )
    lines = [
        f"Measured {result['date'][:10]} with `{result['command']}` ({result['seconds']:.0f} s; 1/5/15-minute load average {load}): "
        f"trained on the UCI data (seeds {seeds}, preset {result['preset']}), scored on `{ood['name']}`, "
        f"{ood['messages']} modern messages written by hand ({ood['spam']} spam, {ood['ham']} ham){spread}.",
        "",
        "| system | OOD accuracy | OOD spam recall | OOD ham flagged | OOD ROC-AUC | OOD PR-AUC | UCI test accuracy | UCI test spam recall | UCI test ham flagged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        s, d = summary[name], summary[name]["in_domain_test"]
        lines.append(
            f"| {labels[name]} | {pct(s['accuracy'])} | {pct(s['spam_recall'])} | {pct(s['ham_false_positive_rate'])} | "
            f"{num(s['roc_auc'])} | {num(s['pr_auc'])} | {pct(d['accuracy'])} | {pct(d['spam_recall'])} | {pct(d['ham_false_positive_rate'])} |"
        )
    short = {name: name.replace(", tuned preset", "").replace("TF-IDF words + chars, ", "").replace("TF-IDF words, ", "") for name in names}
    for title, categories in (
        ("Spam caught (recall), per spam category", result["spam_categories"]),
        ("Ham flagged as spam, per ham category", result["ham_categories"]),
    ):
        lines += ["", f"{title}:", "", "| category | messages | " + " | ".join(short[n] for n in names) + " |"]
        lines.append("|---|---:|" + "---:|" * len(names))
        for c in categories:
            cells = " | ".join(pct(summary[n]["flagged_per_category"][c]) for n in names)
            lines.append(f"| {c} | {ood['categories'][c]} | {cells} |")
    lines += [
        "",
        "Thresholds: " + result["thresholds_are"] + ".",
        "",
        f"The set is for evaluation only: never used for training, thresholds or model selection. "
        f"Every missed spam and flagged ham, with its score, is in out_of_domain.json (`per_seed.*.*.wrong`). "
        f"{NB} and {SVM} are the baselines of benchmarks/accuracy.py.",
        "",
    ]
    return "\n".join(lines)


def _load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


if __name__ == "__main__":
    raise SystemExit(main())
