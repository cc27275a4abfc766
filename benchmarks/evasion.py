"""The evasion benchmark (issue 19): how much spam a filter still catches, and how much ham it flags, when the
messages are obfuscated the ways spammers obfuscate them (`smsguard.train._evasion`, docs/explanation/evasion.md).

For each seed it trains a preset on the deduplicated, stratified split and exports it, as benchmarks/accuracy.py
does (or reuses a run and bundle of the same config from --runs), then scores the seed's test part, clean and
obfuscated by each family, with three systems at the thresholds they ship with:

- the default bundle: its recommended model through `smsguard.runtime.Classifier` (what `smsguard predict` runs);
- its word branch as the MediaPipe client runs it: the client model (float32) in LiteRT on
  `smsguard.runtime._mediapipe.client_ids` of the raw text, at the client's own threshold;
- the TF-IDF word + character n-gram LinearSVC of benchmarks/_baselines.py, fitted on the training part.

Per family: spam still caught = the share of the test spam a system catches on clean text that it still catches
obfuscated; ham flagged = the share of the obfuscated test ham it flags. Each test message is obfuscated once per
family, from the evaluation half of the generator's word lists and its evaluation stream seeded by the seed:
never the texts, substitutes or sentences training copies are made from. Also the clean figures and the
out-of-domain set (benchmarks/ood/messages.csv) for the same models. Writes benchmarks/results/evasion.json and
evasion.md (NAME.* with --name).

    python benchmarks/evasion.py [--preset fused] [--set augment_copies=1 ...] [--seeds 42 43 44] [--runs DIR] [--compare OLD.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _baselines import SVM, baseline_threshold, baselines  # benchmarks/, beside this script
from _results import command_line, write_results
from _runs import exported_bundle, parse_field
from accuracy import HAM_RATE, SEEDS, recall_at_ham_rate
from out_of_domain import OOD_SET, load_ood

RESULTS = Path(__file__).resolve().parent / "results"
BUNDLE = "default bundle"
CLIENT = "word branch, MediaPipe client"
CLIENT_NORMALISED = "same, fed normalised text"  # what the client would get if it could normalise: its cost, measured
SYSTEMS = (BUNDLE, CLIENT, CLIENT_NORMALISED, SVM)
CLEAN = ("accuracy", "spam_f1", "roc_auc", "ham_false_positive_rate", "spam_recall", "recall_at_ham_rate")
MIN_STILL_CAUGHT = 0.95  # issue 19: for every family, spam still caught >= 95% of the spam caught on clean text
MAX_HAM_RISE = 0.002  # ... and ham flagged <= the clean rate + 0.2 point
# Issue 19's "today's" clean figures for the default bundle (benchmarks/results/accuracy.md of 2026-11-28), at the
# precision the issue quotes them (98.97% / 0.958 / 0.9948 / 0.25%): a figure is no worse when it is no worse rounded so.
TODAY = {"accuracy": (">=", 0.9897, 4), "spam_f1": (">=", 0.958, 3), "roc_auc": (">=", 0.9948, 4), "ham_false_positive_rate": ("<=", 0.0025, 4)}

Scorer = Callable[[list[str]], np.ndarray]


def main() -> int:
    from smsguard.train._config import DEFAULT_PRESET, PRESETS
    from smsguard.train._evasion import DEFAULT_RATE, Family

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help=f"the preset measured (default: {DEFAULT_PRESET})")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field over the preset (repeatable): augment_copies=1")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split, training and obfuscation seeds (default: 42 43 44)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="share of the eligible characters or words each family changes (default: 1/3)")
    parser.add_argument("--families", nargs="+", default=[f.value for f in Family], help="the families measured (default: all)")
    parser.add_argument("--runs", help="keep each seed's run and bundle in DIR/seed-N and reuse them when their config matches: use a new DIR after changing the code (default: a temporary folder)")
    parser.add_argument("--compare", help="an earlier evasion.json to set beside this one (the default bundle's figures)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--ood", default=str(OOD_SET), help="the out-of-domain set (default: benchmarks/ood/messages.csv)")
    parser.add_argument("--name", default="evasion", help="results file name (default: evasion)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for NAME.json and NAME.md (default: benchmarks/results)")
    args = parser.parse_args()
    overrides = dict(parse_field(item) for item in args.set)
    families = [Family(name) for name in args.families]
    started = time.perf_counter()
    ood = load_ood(Path(args.ood))
    with tempfile.TemporaryDirectory() as work:
        runs = Path(args.runs) if args.runs else Path(work)
        per_seed = {seed: run_seed(args.preset, overrides, seed, args.data, runs, families, args.rate, ood) for seed in args.seeds}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("evasion.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(time.perf_counter() - started, 1),
        "preset": args.preset,
        "overrides": overrides,
        "augment_copies": _augment_copies(args.preset, overrides),
        "seeds": args.seeds,
        "rate": args.rate,
        "families": [f.value for f in families],
        "per_seed": {str(seed): systems for seed, systems in per_seed.items()},
        "summary": summarize(per_seed, families),
    }
    result["targets"] = check_targets(result["summary"], families)
    compare = json.loads(Path(args.compare).read_text()) if args.compare else None
    write_results(Path(args.out), args.name, result, markdown(result, compare), f"{result['seconds']:.0f} s")
    return 0


def scorers(bundle_dir: Path, config, texts: np.ndarray, labels: np.ndarray, split) -> dict[str, tuple[Scorer, float, str]]:
    """Each system as (score function, threshold, what it is)."""
    from smsguard.export._mediapipe_target import litert_scores
    from smsguard.runtime import Bundle, Classifier
    from smsguard.runtime.mediapipe import client_ids

    classifier = Classifier.load(bundle_dir)
    bundle = Bundle.load(bundle_dir)
    client = bundle.manifest.clients["mediapipe"]["models"][0]
    vocabulary = bundle.vocabulary
    words = vocabulary.with_ngrams(None)
    name, pipeline, svm_score = next(b for b in baselines() if b[0] == SVM)
    pipeline.fit(texts[split.train], labels[split.train])
    systems = {
        BUNDLE: (classifier.predict_proba, classifier.threshold, f"{classifier.model.name}, {classifier.backend}"),
        CLIENT: (lambda t: litert_scores(bundle_dir / client["name"], client_ids(words, t)), float(client["threshold"]), f"{client['name']}, litert"),
        SVM: (lambda t: svm_score(pipeline, np.asarray(t, dtype=object)), baseline_threshold(name, config, pipeline, svm_score, texts, labels, split), "scikit-learn"),
    }
    if vocabulary.normalise("F R E E") != "F R E E":  # a vocabulary with a normaliser
        normalised = lambda t: litert_scores(bundle_dir / client["name"], client_ids(words, [vocabulary.normalise(x) for x in t]))  # noqa: E731
        systems[CLIENT_NORMALISED] = (normalised, float(client["threshold"]), f"{client['name']}, litert, on normalised text")
    return systems


def _augment_copies(preset: str, overrides: dict) -> int:
    from smsguard.train import TrainConfig

    return TrainConfig.from_preset(preset, **overrides).augment_copies


def run_seed(preset: str, overrides: dict, seed: int, data: str | None, runs: Path, families: list, rate: float, ood) -> dict[str, dict]:
    """Every system's figures on one seed: clean, per family, out of domain."""
    from smsguard.train import TrainConfig, deduplicate, load_messages, locate_data, split_dataset
    from smsguard.train._evasion import evaluation_texts

    config = TrainConfig.from_preset(preset, **(overrides | {"seed": seed, "data": data}))
    bundle_dir = exported_bundle(config, runs, data)
    dataset, _ = deduplicate(load_messages(locate_data(data)))
    split = split_dataset(dataset, seed, config.test_size, config.validation_size)
    texts, labels = np.asarray(dataset.texts, dtype=object), np.asarray(dataset.labels)
    test_texts, test_labels = texts[split.test].tolist(), labels[split.test]
    obfuscated = {family: evaluation_texts(test_texts, family, seed, rate) for family in families}
    changed = {family: np.array([a != b for a, b in zip(test_texts, texts_, strict=True)]) for family, texts_ in obfuscated.items()}
    systems = {}
    for name, (score, threshold, what) in scorers(bundle_dir, config, texts, labels, split).items():
        print(f"* seed {seed}: scoring {name} ({what}) on the clean and obfuscated test part", file=sys.stderr)
        systems[name] = measure(score, threshold, test_texts, test_labels, obfuscated, changed) | {"model": what}
        systems[name]["ood"] = _ood(score(list(ood.texts)), threshold, ood.labels)
    return systems


def measure(score: Scorer, threshold: float, texts: list[str], labels: np.ndarray, obfuscated: dict, changed: dict) -> dict:
    """Clean figures, then per family: spam still caught (of the spam caught clean) and ham flagged."""
    from smsguard.train import evaluate

    spam, ham = labels == 1, labels == 0
    clean_scores = np.asarray(score(texts), dtype=np.float64)
    caught = (clean_scores >= threshold) & spam
    metrics = evaluate(labels, clean_scores, threshold)
    clean = {k: getattr(metrics, k) for k in CLEAN if hasattr(metrics, k)} | {"recall_at_ham_rate": recall_at_ham_rate(labels, clean_scores)}
    entry: dict = {"threshold": float(threshold), "clean": clean, "spam": int(spam.sum()), "caught": int(caught.sum())}
    entry["clean"]["ham_flagged"] = int(((clean_scores >= threshold) & ham).sum())
    entry["families"] = {}
    for family, family_texts in obfuscated.items():
        flagged = np.asarray(score(family_texts), dtype=np.float64) >= threshold
        entry["families"][family.value] = {
            "still_caught": int((flagged & caught).sum()),
            "still_caught_share": float((flagged & caught).sum() / max(caught.sum(), 1)),
            "ham_flagged": int((flagged & ham).sum()),
            "ham_flagged_rate": float((flagged & ham).sum() / max(ham.sum(), 1)),
            "changed_spam": float(changed[family][caught].mean()) if caught.any() else 0.0,
            "changed_ham": float(changed[family][ham].mean()),
        }
    return entry


def _ood(scores: np.ndarray, threshold: float, labels: np.ndarray) -> dict:
    from smsguard.train import evaluate

    metrics = evaluate(labels, np.asarray(scores, dtype=np.float64), threshold)
    return {k: getattr(metrics, k) for k in ("accuracy", "spam_recall", "ham_false_positive_rate", "roc_auc")}


def summarize(per_seed: dict[int, dict], families: list) -> dict:
    """Per system: the mean over the seeds of each figure, and the counts summed."""
    summary = {}
    for name in (s for s in SYSTEMS if s in next(iter(per_seed.values()))):
        rows = [systems[name] for systems in per_seed.values()]
        summary[name] = {
            "clean": {k: float(np.mean([r["clean"][k] for r in rows])) for k in CLEAN},
            "ood": {k: float(np.mean([r["ood"][k] for r in rows])) for k in rows[0]["ood"]},
            "caught": sum(r["caught"] for r in rows),
            "spam": sum(r["spam"] for r in rows),
            "families": {
                f.value: {k: float(np.mean([r["families"][f.value][k] for r in rows])) for k in rows[0]["families"][f.value]} for f in families
            },
        }
    return summary


def check_targets(summary: dict, families: list) -> list[dict]:
    """The default bundle against issue 19's targets."""
    figures, rows = summary[BUNDLE], []
    clean_ham = figures["clean"]["ham_false_positive_rate"]
    for f in families:
        fam = figures["families"][f.value]
        rows.append({"what": f"{f.value}: spam still caught", "value": fam["still_caught_share"], "target": f">= {MIN_STILL_CAUGHT:g}", "met": fam["still_caught_share"] >= MIN_STILL_CAUGHT})
        bound = clean_ham + MAX_HAM_RISE
        rows.append({"what": f"{f.value}: ham flagged", "value": fam["ham_flagged_rate"], "target": f"<= {bound:.4f}", "met": fam["ham_flagged_rate"] <= bound + 1e-12})
    for metric, (op, bound, digits) in TODAY.items():
        value = figures["clean"][metric]
        shown = round(value, digits)
        rows.append({"what": f"clean {metric}", "value": value, "target": f"{op} {bound:g} (rounded to {digits} decimals)", "met": shown >= bound if op == ">=" else shown <= bound})
    return rows


def _pct_or_blank(figures: dict, key: str) -> str:
    return f"{100 * figures[key]:.1f}%" if key in figures else ""


def markdown(result: dict, compare: dict | None) -> str:
    from smsguard.train._evasion import CHARACTER_LEVEL, SENTENCE_LEVEL, WORD_LEVEL

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    summary = result["summary"]
    systems = [s for s in SYSTEMS if s in summary]
    level = {f.value: name for name, group in (("character", CHARACTER_LEVEL), ("word", WORD_LEVEL), ("sentence", SENTENCE_LEVEL)) for f in group}
    before = compare["summary"][BUNDLE] if compare else None
    setting = ", ".join(f"{k}={v}" for k, v in result["overrides"].items()) or "no overrides"
    lines = [
        f"Measured {result['date'][:10]} with `{result['command']}` ({result['seconds']:.0f} s): preset {result['preset']} ({setting}), "
        f"test parts of seeds {', '.join(map(str, result['seeds']))}, each family at rate {result['rate']:.2f}; mean over the seeds.",
        "",
        "Spam still caught (of the test spam each system catches on clean text) and ham flagged (of the obfuscated test ham):",
        "",
        "| family | level | " + " | ".join(f"caught: {s}" for s in systems) + " | " + " | ".join(f"ham flagged: {s}" for s in systems) + (" | before: caught | before: ham flagged |" if before else " |"),
        "|---|---|" + "---:|" * (2 * len(systems) + (2 if before else 0)),
    ]
    clean = " | ".join(f"100% ({summary[s]['caught']} of {summary[s]['spam']})" for s in systems) + " | " + " | ".join(pct(summary[s]["clean"]["ham_false_positive_rate"]) for s in systems)
    lines.append(f"| none (clean) | | {clean} |" + (f" 100% | {pct(before['clean']['ham_false_positive_rate'])} |" if before else ""))
    for family in result["families"]:
        cells = [pct(summary[s]["families"][family]["still_caught_share"]) for s in systems] + [pct(summary[s]["families"][family]["ham_flagged_rate"]) for s in systems]
        if before:
            old = before["families"].get(family)
            cells += [pct(old["still_caught_share"]), pct(old["ham_flagged_rate"])] if old else ["", ""]
        lines.append(f"| {family} | {level.get(family, 'all three')} | " + " | ".join(cells) + " |")
    lines += ["", "Clean test part and out-of-domain set (benchmarks/ood/messages.csv), same models and thresholds:", ""]
    lines += [
        f"| system | model | accuracy | spam F1 | ROC-AUC | ham flagged | recall at {100 * HAM_RATE:g}% ham | OOD accuracy | OOD spam recall | OOD ham flagged | OOD ROC-AUC |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(s, summary[s]) for s in systems] + ([("default bundle, before", before)] if before else [])
    for name, s in rows:
        c, o = s["clean"], s["ood"]
        model = result["per_seed"][str(result["seeds"][0])][name]["model"] if name in systems else ""
        lines.append(
            f"| {name} | {model} | {pct(c['accuracy'])} | {c['spam_f1']:.4f} | {c['roc_auc']:.4f} | {100 * c['ham_false_positive_rate']:.2f}% | {_pct_or_blank(c, 'recall_at_ham_rate')} | "
            f"{pct(o['accuracy'])} | {pct(o['spam_recall'])} | {pct(o['ham_false_positive_rate'])} | {o['roc_auc']:.3f} |"
        )
    lines += ["", "Targets (issue 19), default bundle:", ""]
    lines += [f"- [{'x' if r['met'] else ' '}] {r['what']}: {r['value']:.5f} (target {r['target']})" for r in result["targets"]]
    lines += [
        "",
        "How the obfuscated messages are made: docs/explanation/evasion.md. The MediaPipe client tokenizes the raw text: it "
        f"cannot apply the bundle's text normalisation, so its column is what a MediaPipe app gets; \"{CLIENT_NORMALISED}\" is the same "
        "client model on the ids of the normalised text, what the client would get if it could normalise (only for a bundle with a normaliser).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
