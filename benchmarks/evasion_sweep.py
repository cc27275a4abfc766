"""How many obfuscated copies the default trains on: the evasion benchmark's results, one row per number of copies.

Each input is an `evasion.json` that `benchmarks/evasion.py` wrote (with `--set augment_copies=N` over the default,
or the default itself); this reads their default-bundle figures and writes benchmarks/results/evasion-sweep.{json,md}:
the families that meet issue 19's spam target, the hardest families, and the clean and out-of-domain figures.

    python benchmarks/evasion_sweep.py benchmarks/results/evasion-no-copies.json benchmarks/results/evasion-copies-2.json \\
        benchmarks/results/evasion.json benchmarks/results/evasion-copies-4.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _results import write_results

SYSTEM = "default bundle"
SHOWN = ("symbols", "punctuation", "good-words", "mixed")  # the families that missed at some number of copies


def _copies(result: dict) -> int:
    """The copies the run trained on: recorded since 2026-12-05; before, an override or the default's none."""
    return int(result.get("augment_copies", (result.get("overrides") or {}).get("augment_copies", 0)))


def _row(name: str, result: dict) -> dict:
    summary = result["summary"][SYSTEM]
    families = summary["families"]
    spam_targets = [t for t in result["targets"] if t["what"].endswith("spam still caught")]
    return {
        "file": name,
        "copies": _copies(result),
        "families_met": sum(t["met"] for t in spam_targets),
        "families": len(spam_targets),
        "still_caught": {family: families[family]["still_caught_share"] for family in SHOWN if family in families},
        "clean": summary["clean"],
        "ood": summary["ood"],
    }


def _table(rows: list[dict]) -> str:
    head = ["copies", "file", "families at >= 95% caught", *(f"caught: {f}" for f in SHOWN), "accuracy", "spam F1", "ROC-AUC", "ham flagged", "OOD accuracy", "OOD ROC-AUC"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for row in sorted(rows, key=lambda r: r["copies"]):
        caught = [f"{row['still_caught'][f]:.1%}" if f in row["still_caught"] else "—" for f in SHOWN]
        clean, ood = row["clean"], row["ood"]
        cells = [str(row["copies"]), f"`{row['file']}`", f"{row['families_met']} of {row['families']}", *caught, f"{clean['accuracy']:.2%}",
                 f"{clean['spam_f1']:.4f}", f"{clean['roc_auc']:.4f}", f"{clean['ham_false_positive_rate']:.2%}", f"{ood['accuracy']:.1%}", f"{ood['roc_auc']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="evasion JSON files of the default preset, each with its number of copies")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {path.name: json.loads(path.read_text()) for path in args.results}
    rows = [_row(name, result) for name, result in results.items()]
    dates = sorted(str(r["date"])[:10] for r in results.values())
    header = (f"The default preset trained on 0 to 4 obfuscated copies of every training message, from {len(rows)} runs of "
              f"`benchmarks/evasion.py` ({dates[0]} to {dates[-1]}; seeds 42, 43, 44, rate 1/3, mean over the seeds). "
              "Command: `python benchmarks/evasion_sweep.py " + " ".join(f"benchmarks/results/{name}" for name in results) + "`.\n\n")
    write_results(args.out, "evasion-sweep", {"rows": rows}, header + _table(rows) + "\n", f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
