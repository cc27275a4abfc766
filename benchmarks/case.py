"""Does keeping case cost accuracy? The measurement behind the default tokenizer: on the accuracy
benchmark's splits (seeds 42-44, `split_dataset` as `smsguard train` makes them), the Keras test
figures of two presets side by side, trained in the same process: the default ("tuned": lowercased,
`<OOV>`) and "mediapipe" (cased, `<UNKNOWN>`: the tokenizer MediaPipe's TextClassifier reproduces).
Writes benchmarks/results/case.json and case.md.

    python benchmarks/case.py [--presets tuned mediapipe] [--seeds 42 43 44] [--data PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _results import command_line, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("accuracy", "spam_f1", "ham_false_positive_rate", "roc_auc")


def main() -> int:
    from smsguard.train import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tuned", "mediapipe"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--data")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.perf_counter()
    per_seed: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            for preset in args.presets:
                result = train(TrainConfig.from_preset(preset, seed=seed, data=args.data), Path(work) / f"{preset}-{seed}")
                per_seed.setdefault(str(seed), {})[preset] = {m: getattr(result.test, m) for m in METRICS}
    summary = {p: {m: sum(per_seed[s][p][m] for s in per_seed) / len(per_seed) for m in METRICS} for p in args.presets}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("case.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "load": os.getloadavg()[0]},
        "seconds": round(time.perf_counter() - started, 1),
        "part": "test",
        "per_seed": per_seed,
        "summary": summary,
    }
    rows = ["| preset | seed | accuracy | spam F1 | ham FPR | ROC-AUC |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for seed, presets in per_seed.items():
        for preset, m in presets.items():
            rows.append(f"| {preset} | {seed} | {100 * m['accuracy']:.2f}% | {m['spam_f1']:.4f} | {100 * m['ham_false_positive_rate']:.2f}% | {m['roc_auc']:.4f} |")
    for preset, m in summary.items():
        rows.append(f"| **{preset}** | mean | {100 * m['accuracy']:.2f}% | {m['spam_f1']:.4f} | {100 * m['ham_false_positive_rate']:.2f}% | {m['roc_auc']:.4f} |")
    table = f"# Tokenizer case: Keras test figures\n\n{result['date']}, `{result['command']}`, load {result['machine']['load']:.1f}\n\n" + "\n".join(rows) + "\n"
    write_results(Path(args.out), "case", result, table, f"{result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
