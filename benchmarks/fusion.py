"""The fusion benchmark (issue 19, item 4): the fused model averages its two branches' probabilities with equal
weight; would a combination learned on training data do better? Runtimes unchanged: this only measures.

For each seed it takes a run of the preset (trained here, or reused from --runs as benchmarks/evasion.py keeps
them), whose training recorded out-of-fold scores for both branches over the training and validation parts
(out_of_fold.json: every message scored by models that did not see it). On those scores it fits each combination
and chooses its threshold the way training does (the lowest flagging at most the preset's ham rate, 0.2%); the
test part, scored by the run's own branches (Keras, float32), is then judged at that threshold:

- mean: today's fused model, (p_words + p_ngrams) / 2;
- weighted mean: w p_words + (1 - w) p_ngrams, w (in steps of 0.05) minimising the out-of-fold log loss;
- logistic regression on the two branches' logits (scikit-learn, default regularisation). Its threshold is
  chosen on cross-validated (5-fold) out-of-fold predictions, so it is not placed on scores it was fitted to.

Figures as in benchmarks/accuracy.py, mean over the seeds. Writes benchmarks/results/fusion.json and fusion.md.

    python benchmarks/fusion.py [--preset fused] [--set FIELD=VALUE ...] [--seeds 42 43 44] [--runs DIR]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, write_results  # benchmarks/, beside this script
from _runs import parse_field, trained_run
from accuracy import HAM_RATE, SEEDS, recall_at_ham_rate

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = ("accuracy", "spam_precision", "spam_recall", "spam_f1", "ham_false_positive_rate", "roc_auc", "pr_auc", "recall_at_ham_rate", "log_loss")
MEAN, WEIGHTED, LOGISTIC = "mean (today)", "weighted mean", "logistic regression on logits"
EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before a logit or a log loss

Combination = Callable[[np.ndarray, np.ndarray], np.ndarray]


def main() -> int:
    from smsguard.train._config import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help=f"a fused preset (default: {DEFAULT_PRESET})")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field over the preset (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split and training seeds (default: 42 43 44)")
    parser.add_argument("--runs", help="reuse runs in DIR/seed-N when their config matches, train them there otherwise (default: a temporary folder)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for fusion.json and fusion.md (default: benchmarks/results)")
    args = parser.parse_args()
    overrides = dict(parse_field(item) for item in args.set)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        runs = Path(args.runs) if args.runs else Path(work)
        per_seed = {seed: run_seed(args.preset, overrides, seed, args.data, runs) for seed in args.seeds}
    names = list(next(iter(per_seed.values())))
    summary = {
        name: {k: float(np.mean([systems[name][k] for systems in per_seed.values()])) for k in FIGURES} | {"min_max": _spread(per_seed, name)} for name in names
    }
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("fusion.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(time.perf_counter() - started, 1),
        "preset": args.preset,
        "overrides": overrides,
        "seeds": args.seeds,
        "part": "test",
        "per_seed": {str(seed): systems for seed, systems in per_seed.items()},
        "summary": summary,
    }
    write_results(Path(args.out), "fusion", result, markdown(result), f"{result['seconds']:.0f} s")
    return 0


def _spread(per_seed: dict, name: str) -> dict:
    return {k: [float(min(s[name][k] for s in per_seed.values())), float(max(s[name][k] for s in per_seed.values()))] for k in FIGURES}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def combinations(labels: np.ndarray, words: np.ndarray, ngrams: np.ndarray, seed: int) -> dict[str, tuple[Combination, np.ndarray, dict]]:
    """Each combination fitted on the out-of-fold scores: (function of (p_words, p_ngrams), the out-of-fold scores
    its threshold is chosen on, what was fitted)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    weights = np.round(np.arange(0, 1.0001, 0.05), 2)
    w = float(weights[np.argmin([_log_loss(labels, a * words + (1 - a) * ngrams) for a in weights])])
    features = np.column_stack([_logit(words), _logit(ngrams)])
    logistic = LogisticRegression().fit(features, labels)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    held_out = cross_val_predict(LogisticRegression(), features, labels, cv=folds, method="predict_proba")[:, 1]
    return {
        MEAN: (lambda pw, pn: (pw + pn) / 2, (words + ngrams) / 2, {}),
        WEIGHTED: (lambda pw, pn: w * pw + (1 - w) * pn, w * words + (1 - w) * ngrams, {"w_words": w}),
        LOGISTIC: (
            lambda pw, pn: logistic.predict_proba(np.column_stack([_logit(pw), _logit(pn)]))[:, 1],
            held_out,
            {"coef_words": float(logistic.coef_[0, 0]), "coef_ngrams": float(logistic.coef_[0, 1]), "intercept": float(logistic.intercept_[0])},
        ),
    }


def run_seed(preset: str, overrides: dict, seed: int, data: str | None, runs: Path) -> dict[str, dict]:
    """Each combination's test figures on one seed."""
    from smsguard._files import read_json
    from smsguard.runtime import Vocabulary
    from smsguard.train import TrainConfig, deduplicate, evaluate, load_messages, locate_data, split_dataset, threshold_for_ham_fpr
    from smsguard.train._model import NGRAMS, WORDS, load_model
    from smsguard.train._run_folder import OUT_OF_FOLD_NAME

    config = TrainConfig.from_preset(preset, **(overrides | {"seed": seed, "data": data}))
    run_dir = trained_run(config, runs, needs=(OUT_OF_FOLD_NAME,))
    oof = read_json(run_dir / OUT_OF_FOLD_NAME, "out-of-fold scores")
    labels, words, ngrams = (np.asarray(oof[k], dtype=np.float64) for k in ("labels", "words", "ngrams"))
    dataset, _ = deduplicate(load_messages(locate_data(data)))
    split = split_dataset(dataset, seed, config.test_size, config.validation_size)
    test_texts, test_labels = np.asarray(dataset.texts, dtype=object)[split.test].tolist(), np.asarray(dataset.labels)[split.test]
    ids = Vocabulary.from_dict(read_json(run_dir / "vocab.json", "vocabulary")).encode(test_texts)
    model, maxlen = load_model(run_dir / "model.keras"), config.maxlen
    test_words = model.get_layer(WORDS).predict(ids[:, :maxlen], batch_size=1024, verbose=0).reshape(-1).astype(np.float64)
    test_ngrams = model.get_layer(NGRAMS).predict(ids[:, maxlen:], batch_size=1024, verbose=0).reshape(-1).astype(np.float64)
    target = config.target_ham_fpr if config.target_ham_fpr is not None else HAM_RATE
    systems = {}
    for name, (combine, oof_scores, fitted) in combinations(labels, words, ngrams, seed).items():
        threshold = threshold_for_ham_fpr(labels, oof_scores, target)
        scores = combine(test_words, test_ngrams)
        metrics = evaluate(test_labels, scores, threshold)
        systems[name] = {k: getattr(metrics, k) for k in FIGURES if hasattr(metrics, k)} | {
            "recall_at_ham_rate": recall_at_ham_rate(test_labels, scores),
            "log_loss": _log_loss(test_labels, scores),
            "threshold": threshold,
            "out_of_fold_log_loss": _log_loss(labels, oof_scores),
            "fitted": fitted,
            "confusion": [list(row) for row in metrics.confusion],
        }
    return systems


def markdown(result: dict) -> str:
    def pct(name: str, key: str) -> str:
        s = result["summary"][name]
        low, high = s["min_max"][key]
        return f"{100 * s[key]:.2f}% ({100 * low:.2f}–{100 * high:.2f})"

    def num(name: str, key: str) -> str:
        s = result["summary"][name]
        low, high = s["min_max"][key]
        return f"{s[key]:.4f} ({low:.4f}–{high:.4f})"

    setting = ", ".join(f"{k}={v}" for k, v in result["overrides"].items()) or "no overrides"
    lines = [
        f"Measured {result['date'][:10]} with `{result['command']}` ({result['seconds']:.0f} s): preset {result['preset']} ({setting}), "
        f"test parts of seeds {', '.join(map(str, result['seeds']))}; mean (min–max) over the seeds; each combination fitted and its "
        "threshold chosen on the run's out-of-fold branch scores over train + validation.",
        "",
        f"| combination | accuracy | spam precision | spam recall | spam F1 | ham flagged | ROC-AUC | PR-AUC | recall at {100 * HAM_RATE:g}% ham | log loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in result["summary"]:
        lines.append(
            f"| {name} | {pct(name, 'accuracy')} | {pct(name, 'spam_precision')} | {pct(name, 'spam_recall')} | {num(name, 'spam_f1')} | "
            f"{pct(name, 'ham_false_positive_rate')} | {num(name, 'roc_auc')} | {num(name, 'pr_auc')} | {pct(name, 'recall_at_ham_rate')} | {num(name, 'log_loss')} |"
        )
    fitted = {seed: {name: s["fitted"] for name, s in systems.items() if s["fitted"]} for seed, systems in result["per_seed"].items()}
    lines += ["", "Fitted per seed: " + "; ".join(f"seed {seed}: " + ", ".join(f"{k} {v:.3g}" for f in fits.values() for k, v in f.items()) for seed, fits in fitted.items()) + "."]
    lines += ["", "The test scores are the run's Keras branches (float32); the exported models of the default bundle agree with them to 0.003 or better (benchmarks/results/accuracy.md).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
