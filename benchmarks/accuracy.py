"""The accuracy benchmark behind the README table. On the deduplicated, stratified splits of three seeds
(`split_dataset`, as `smsguard train` makes them), side by side: the Keras model of a preset, every model
exported from it (quantized, run through the smsguard runtime at the threshold it ships with), the
tutorial preset's Keras model for reference, and two classic baselines trained on the same training
part: TF-IDF word + character n-grams with a linear SVM, and TF-IDF words with multinomial naive Bayes.
All figures are on each seed's test part. Writes benchmarks/results/accuracy.json and accuracy.md (accuracy-PRESET.* for another preset than the default).

    python benchmarks/accuracy.py [--preset tuned] [--seeds 42 43 44] [--data PATH]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _baselines import SVM, baseline_threshold, baselines, default_threshold  # benchmarks/, beside this script
from _results import command_line, write_results

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = (42, 43, 44)
METRICS = ("accuracy", "spam_precision", "spam_recall", "spam_f1", "ham_false_positive_rate", "roc_auc", "pr_auc", "recall_at_ham_rate")
HAM_RATE = 0.002  # recall_at_ham_rate: the spam caught at the test threshold that flags at most this share of ham
TUTORIAL = "Keras, tutorial preset (reference)"
TUNED = "Keras, tuned preset (the word LSTM alone)"
# The targets of the fused-model issue, for the recommended quantized model (mean over the seeds, test part).
TARGETS = {
    "accuracy": (">=", 0.992),
    "spam_f1": (">=", 0.968),
    "ham_false_positive_rate": ("<=", 0.002),
    "roc_auc": (">=", 0.996),
}
MAX_MODEL_BYTES = 1_400_000  # 1.4 MB


def main() -> int:
    from smsguard.train._config import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help=f"the preset measured (default: {DEFAULT_PRESET})")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split and training seeds (default: 42 43 44)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for accuracy.json and accuracy.md (default: benchmarks/results)")
    args = parser.parse_args()
    started = time.perf_counter()
    per_seed = {seed: run_seed(args.preset, seed, args.data) for seed in args.seeds}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("accuracy.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(time.perf_counter() - started, 1),
        "preset": args.preset,
        "seeds": args.seeds,
        "part": "test",
        "sizes_are": (
            "bytes of the file a device loads: the .tflite/.onnx file; model.keras as Keras saves it (weights and "
            "optimizer state); for a baseline, the fitted scikit-learn pipeline (vectorizers with their vocabularies, "
            "and the classifier) as written by joblib.dump"
        ),
        "thresholds_are": (
            "each system at the threshold it ships with: the LSTM's from training (0.5, or the lowest meeting the "
            "preset's target ham false-positive rate on the validation part or, with threshold_folds, on out-of-fold "
            "predictions over train + validation), an exported model's own when its "
            "manifest entry gives one; the SVM at decision 0 and naive Bayes at 0.5, or, when the preset has a "
            "target, chosen the way the preset chooses the LSTM's (on the validation part, or on out-of-fold scores over "
            "train + validation with threshold_folds), and also shown at decision 0 / 0.5 for comparison"
        ),
        "per_seed": {str(seed): systems for seed, systems in per_seed.items()},
        "summary": summarize(per_seed),
    }
    result["targets"] = check_targets(result["summary"])
    name = "accuracy" if args.preset == DEFAULT_PRESET else f"accuracy-{args.preset}"  # one file per preset measured
    write_results(Path(args.out), name, result, markdown(result), f"{result['seconds']:.0f} s")
    return 0


def run_seed(preset: str, seed: int, data: str | None) -> dict[str, dict]:
    """Every system's test figures on one seed's split: name -> metrics, size, threshold."""
    from smsguard.export import ExportConfig, export
    from smsguard.runtime import Bundle, Classifier
    from smsguard.train import TrainConfig, deduplicate, evaluate, load_messages, locate_data, split_dataset, train

    systems: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work:
        config = TrainConfig.from_preset(preset, seed=seed, data=data)
        run_dir, bundle_dir = Path(work) / "run", Path(work) / "bundle"
        print(f"\n== seed {seed}: train ({preset} preset), export, evaluate", file=sys.stderr)
        result = train(config, run_dir)
        keras_size = (run_dir / "model.keras").stat().st_size
        export(run_dir, bundle_dir, ExportConfig(data=data))

        dataset, _ = deduplicate(load_messages(locate_data(data)))
        split = split_dataset(dataset, seed, config.test_size, config.validation_size)
        texts = np.asarray(dataset.texts, dtype=object)
        test_texts, test_labels = texts[split.test].tolist(), dataset.labels[split.test]
        proba = _keras_scores(run_dir, test_texts)
        systems[f"Keras, {preset} preset"] = _entry(result.test, keras_size, test_labels, proba)
        if config.target_ham_fpr is not None:  # what the target's threshold costs and buys, shown beside it
            systems[f"Keras, {preset} preset, at threshold 0.5 (comparison)"] = _entry(evaluate(test_labels, proba, 0.5), keras_size, test_labels, proba)
        bundle = Bundle.load(bundle_dir)
        recommended = {bundle.recommended(fmt).name for fmt in ("tflite", "onnx")}
        for name, entry in bundle.models.items():
            classifier = Classifier.load(bundle_dir, model=name)
            scores = classifier.predict_proba(test_texts)
            metrics = evaluate(test_labels, scores, classifier.threshold)
            systems[name] = _entry(metrics, entry.size, test_labels, scores) | {
                "own_threshold": entry.threshold is not None,
                "recommended": name in recommended,
            }
            if name in recommended:
                systems[f"recommended {entry.format}"] = systems[name] | {"model": name}

        if preset != "tutorial":
            tutorial = train(TrainConfig.from_preset("tutorial", seed=seed, data=data), Path(work) / "tutorial")
            systems[TUTORIAL] = _entry(tutorial.test, (Path(work) / "tutorial" / "model.keras").stat().st_size, test_labels, _keras_scores(Path(work) / "tutorial", test_texts))

        if preset != "tuned":  # today's word LSTM alone, for comparison
            tuned = train(TrainConfig.from_preset("tuned", seed=seed, data=data), Path(work) / "tuned")
            systems[TUNED] = _entry(tuned.test, (Path(work) / "tuned" / "model.keras").stat().st_size, test_labels, _keras_scores(Path(work) / "tuned", test_texts))

        for name, pipeline, score in baselines():
            pipeline.fit(texts[split.train], dataset.labels[split.train])
            threshold = baseline_threshold(name, config, pipeline, score, texts, dataset.labels, split)
            scores = score(pipeline, texts[split.test])
            size = _joblib_size(pipeline, Path(work))
            systems[name] = _entry(evaluate(test_labels, scores, threshold), size, test_labels, scores)
            if config.target_ham_fpr is not None:  # at its own decision threshold, as without a target
                systems[f"{name}, at {default_threshold(name):g} (comparison)"] = _entry(evaluate(test_labels, scores, default_threshold(name)), size, test_labels, scores)
    return systems


def recall_at_ham_rate(labels, scores, rate: float = HAM_RATE) -> float:
    """The spam recall at the lowest test threshold that flags at most `rate` of the test ham: how well a
    system ranks, compared at one ham rate whatever threshold it ships with."""
    from smsguard.train import evaluate, threshold_for_ham_fpr

    return evaluate(labels, scores, threshold_for_ham_fpr(labels, scores, rate)).spam_recall


def _keras_scores(run_dir: Path, texts: list[str]) -> np.ndarray:
    """A run's Keras model on `texts`, through its own vocabulary."""
    from smsguard._files import read_json
    from smsguard.runtime import Vocabulary
    from smsguard.train._model import load_model

    vocabulary = Vocabulary.from_dict(read_json(run_dir / "vocab.json", "vocabulary"))
    return load_model(run_dir / "model.keras").predict(vocabulary.encode(texts), batch_size=1024, verbose=0).reshape(-1)


def _joblib_size(pipeline, folder: Path) -> int:
    import joblib

    path = folder / "baseline.joblib"
    joblib.dump(pipeline, path)
    size = path.stat().st_size
    path.unlink()
    return size


def _entry(metrics, size: int, labels=None, scores=None) -> dict:
    data = {name: getattr(metrics, name) for name in METRICS if name != "recall_at_ham_rate"}
    data["recall_at_ham_rate"] = recall_at_ham_rate(labels, scores) if scores is not None else float("nan")
    return data | {"threshold": metrics.threshold, "size": int(size), "confusion": [list(row) for row in metrics.confusion]}


def summarize(per_seed: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """Per system: mean, std, min and max over the seeds of each metric and of the size."""
    names = [name for name in next(iter(per_seed.values()))]
    summary = {}
    for name in names:
        rows = [systems[name] for systems in per_seed.values() if name in systems]
        summary[name] = {
            key: {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "min": float(np.min(values)),
                "max": float(np.max(values)),
            }
            for key in (*METRICS, "size")
            for values in [[row[key] for row in rows]]
        }
        if "model" in rows[0]:
            summary[name]["models"] = [row["model"] for row in rows]
        if "own_threshold" in rows[0]:
            summary[name]["own_threshold_seeds"] = sum(row["own_threshold"] for row in rows)
    return summary


def check_targets(summary: dict[str, dict]) -> dict[str, list[dict]]:
    """Each recommended model against the issue's targets and the SVM: figure, target, met."""
    checks = {}
    for name in (n for n in summary if n.startswith("recommended ")):
        figures = summary[name]
        rows = []
        for metric, (op, bound) in TARGETS.items():
            value = figures[metric]["mean"]
            rows.append({"what": metric, "value": value, "target": f"{op} {bound:g}", "met": value >= bound if op == ">=" else value <= bound})
        for metric in ("accuracy", "spam_f1", "roc_auc", "recall_at_ham_rate"):
            value, svm = figures[metric]["mean"], summary[SVM][metric]["mean"]
            rows.append({"what": f"{metric} vs the SVM", "value": value, "target": f">= {svm:.4f}", "met": value >= svm})
        size = figures["size"]["max"]
        rows.append({"what": "model file size (largest seed)", "value": size, "target": f"<= {MAX_MODEL_BYTES}", "met": size <= MAX_MODEL_BYTES})
        checks[name] = rows
    return checks


def markdown(result: dict) -> str:
    def pct(s: dict) -> str:
        return f"{100 * s['mean']:.2f}% ({100 * s['min']:.2f}–{100 * s['max']:.2f})"

    def num(s: dict) -> str:
        return f"{s['mean']:.4f} ({s['min']:.4f}–{s['max']:.4f})"

    seeds = ", ".join(map(str, result["seeds"]))
    lines = [
        f"Measured {result['date'][:10]} with `{result['command']}` ({result['seconds']:.0f} s): test parts of the "
        f"deduplicated stratified splits of seeds {seeds}; mean (min–max) over the seeds; preset {result['preset']}.",
        "",
        f"| system | size | accuracy | spam precision | spam recall | spam F1 | ham flagged | ROC-AUC | PR-AUC | recall at {100 * HAM_RATE:g}% ham |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["summary"].items():
        label = name
        if "models" in s:
            label += " (" + ", ".join(sorted(set(s["models"]))) + ")"
        if s.get("own_threshold_seeds"):
            label += f" [own threshold in {s['own_threshold_seeds']} of {len(result['seeds'])} seeds]"
        size = f"{s['size']['mean'] / 1e6:.2f} MB"
        lines.append(
            f"| {label} | {size} | {pct(s['accuracy'])} | {pct(s['spam_precision'])} | {pct(s['spam_recall'])} | "
            f"{num(s['spam_f1'])} | {pct(s['ham_false_positive_rate'])} | {num(s['roc_auc'])} | {num(s['pr_auc'])} | {pct(s['recall_at_ham_rate'])} |"
        )
    lines += [
        "",
        "Sizes: " + result["sizes_are"] + ".",
        "",
        "Thresholds: " + result["thresholds_are"] + ".",
        "",
        f"Recall at {100 * HAM_RATE:g}% ham: the spam recall at the test threshold that flags at most {100 * HAM_RATE:g}% of the test ham "
        "(an oracle threshold, the same ham rate for every system: how well each ranks).",
        "",
    ]
    for name, rows in result["targets"].items():
        lines.append(f"Targets, {name}:")
        lines.append("")
        for row in rows:
            value = f"{row['value']:,.0f} bytes" if "size" in row["what"] else f"{row['value']:.4f}"
            lines.append(f"- [{'x' if row['met'] else ' '}] {row['what']}: {value} (target {row['target']})")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
