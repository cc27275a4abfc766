"""Learning from corrections, measured: a simulated user reads a stream of messages with a bundle and a personal state
folder, reports every mistake the filter makes (`Classifier.report`), and after each report the rest of the stream
and the UCI test part are scored again.

Streams (each in 3 seeded orders):
- out-of-domain: benchmarks/ood/messages.csv (465 modern messages), with the default bundle; "UCI ham flagged" is its
  run's UCI test part;
- UCI campaigns: the test part of a run trained with `--split campaign` (near-duplicates kept in one part, so the
  test part holds campaigns the model never saw), with that run's bundle; "UCI ham flagged" is that test part's ham.

Reported: spam caught and ham flagged on the rest of the stream, with and without the corrections (the same
messages), and ham flagged on the UCI test part, against the number of reports; the figures when the user has
reported 10% of the stream's spam (targets: spam caught on the rest +15 points or more, UCI ham flagged +0.1 point or
less); a single report on messages with another number or name (near-duplicates); what the corrections did to
unrelated messages; the state's size and the extra time to load a bundle with it.

    python benchmarks/personal.py --bundle B --run R --campaign-bundle CB --campaign-run CR [--data PATH] [--seeds 0 1 2]
    python benchmarks/personal.py --bundle B --run R --campaign-bundle CB --campaign-run CR --render benchmarks/results/personal.json

Writes benchmarks/results/personal.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script
from out_of_domain import OOD_SET, load_ood

from smsguard.runtime import Classifier
from smsguard.train import read_split

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_CAUGHT, TARGET_FLAGGED = 15.0, 0.1  # points, at reports of 10% of a stream's spam
NAMES = ("Emma", "Sarah", "Tom", "Jack", "Lucy", "Mia", "Noah", "Amir", "Priya", "Chloe", "Dan", "Olivia", "Sam", "Mum", "Dad")


def simulate(bundle: str, backend: str, texts: list[str], labels: np.ndarray, order: np.ndarray, uci_ham: list[str]) -> dict:
    """One user, one order: every mistake reported; after each report the rest of the stream and the UCI ham scored."""
    with tempfile.TemporaryDirectory() as folder:
        clf = Classifier.load(bundle, backend=backend, personal=folder)
        names = clf.bundle.labels
        shipped = clf.decision.flags(clf.predict_proba(texts))
        shipped_uci = float(clf.decision.flags(clf.predict_proba(uci_ham)).mean())
        records, spam_reports, fit_seconds, caught_as_read = [], 0, [], 0
        for position, i in enumerate(order.tolist()):
            flagged = bool(clf.decision.flags(clf.predict_proba([texts[i]]))[0])
            caught_as_read += int(flagged and labels[i] == 1)
            if flagged == bool(labels[i]):
                continue
            started = time.perf_counter()
            clf.report([texts[i]], [names[int(labels[i])]])
            fit_seconds.append(time.perf_counter() - started)
            spam_reports += int(labels[i])
            rest = order[position + 1 :]
            now = clf.decision.flags(clf.predict_proba([texts[k] for k in rest])) if len(rest) else np.zeros(0, dtype=bool)
            spam, ham = labels[rest] == 1, labels[rest] == 0
            records.append({
                "reports": len(records) + 1, "spam_reports": spam_reports, "position": position + 1,
                "rest_spam": int(spam.sum()), "rest_ham": int(ham.sum()),
                "caught": _share(now[spam]), "caught_shipped": _share(shipped[rest][spam]),
                "flagged": _share(now[ham]), "flagged_shipped": _share(shipped[rest][ham]),
                "uci_flagged": float(clf.decision.flags(clf.predict_proba(uci_ham)).mean()), "uci_flagged_shipped": shipped_uci,
            })
        return {"records": records, "report_seconds": fit_seconds, "state_bytes": (Path(folder) / "personal.json").stat().st_size,
                "caught_as_read": caught_as_read / max(int(labels.sum()), 1), "caught_shipped_whole": float(shipped[labels == 1].mean())}


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else float("nan")


def at_ten_percent(run: dict, spam_total: int) -> dict | None:
    """The record right after the report that brought the spam reports to 10% of the stream's spam."""
    goal = math.ceil(0.1 * spam_total)
    return next((r for r in run["records"] if r["spam_reports"] >= goal), None)


def stream(bundle: str, backend: str, texts: list[str], labels: np.ndarray, uci_ham: list[str], seeds: list[int]) -> dict:
    runs = {}
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(texts))
        runs[seed] = simulate(bundle, backend, texts, labels, order, uci_ham)
        point = at_ten_percent(runs[seed], int(labels.sum()))
        print(f"  seed {seed}: {len(runs[seed]['records'])} reports; at 10% of the spam: {point}", file=sys.stderr, flush=True)
    points = {seed: at_ten_percent(run, int(labels.sum())) for seed, run in runs.items()}
    return {"messages": len(texts), "spam": int(labels.sum()), "uci_ham": len(uci_ham), "runs": runs, "at_10_percent": points}


def variants(text: str, rng: np.random.Generator, count: int = 5) -> list[str]:
    """The same message with other numbers, and another name where it holds one of NAMES: what a campaign changes."""
    out = []
    for _ in range(count):
        changed = re.sub(r"\d", lambda _: str(rng.integers(10)), text)
        changed = re.sub(r"\b(" + "|".join(NAMES) + r")\b", lambda m: str(rng.choice([n for n in NAMES if n != m.group()])), changed)
        if changed != text:
            out.append(changed)
    return out


def near_duplicates(bundle: str, backend: str, texts: list[str], labels: np.ndarray) -> dict:
    """For each message the bundle gets wrong that has a number or a name: one report of it, then its variants."""
    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = {"spam": [], "ham": []}
    clf0 = Classifier.load(bundle, backend=backend)
    wrong = clf0.decision.flags(clf0.predict_proba(texts)) != labels.astype(bool)
    for i in np.flatnonzero(wrong):
        others = variants(texts[i], rng)
        was_wrong = clf0.decision.flags(clf0.predict_proba(others)) != bool(labels[i]) if others else []
        others = [v for v, w in zip(others, was_wrong, strict=True) if w]
        if not others:
            continue
        with tempfile.TemporaryDirectory() as folder:
            clf = Classifier.load(bundle, backend=backend, personal=folder)
            label = clf.bundle.labels[int(labels[i])]
            clf.report([texts[i]], [label])
            out[label].append(float((clf.decision.flags(clf.predict_proba(others)) == bool(labels[i])).mean()))
    return {label: {"messages": len(v), "variants_fixed": float(np.mean(v)) if v else None, "all_fixed": float(np.mean([x == 1.0 for x in v])) if v else None}
            for label, v in out.items()}


def unrelated(bundle: str, backend: str, stream_texts: list[str], stream_labels: np.ndarray, uci_texts: list[str], uci_labels: np.ndarray) -> dict:
    """Every mistake of the whole stream reported at once: what it does to the UCI test part (other messages)."""
    with tempfile.TemporaryDirectory() as folder:
        clf = Classifier.load(bundle, backend=backend, personal=folder)
        before = clf.predict_proba(uci_texts)
        wrong = clf.decision.flags(clf.predict_proba(stream_texts)) != stream_labels.astype(bool)
        clf.report([t for t, w in zip(stream_texts, wrong, strict=True) if w], [clf.bundle.labels[int(y)] for y, w in zip(stream_labels, wrong, strict=True) if w])
        after = clf.predict_proba(uci_texts)
        moved = np.abs(after - before)
        was, now = clf.decision.flags(before), clf.decision.flags(after)
        spam = np.asarray(uci_labels, dtype=bool)
        return {"reports": int(wrong.sum()), "mean_abs_change": float(moved.mean()), "moved_over_0.01": float((moved > 0.01).mean()),
                "labels_changed": int((now != was).sum()), "messages": len(uci_texts), "spam": int(spam.sum()), "ham": int((~spam).sum()),
                "spam_caught_before": int((was & spam).sum()), "spam_caught_after": int((now & spam).sum()),
                "ham_flagged_before": int((was & ~spam).sum()), "ham_flagged_after": int((now & ~spam).sum())}


def load_cost(bundle: str, backend: str, corrections: list[str], labels: list[str], repeats: int = 30) -> dict:
    """Median time of Classifier.load without and with a personal state of len(corrections) corrections."""
    with tempfile.TemporaryDirectory() as folder:
        Classifier.load(bundle, backend=backend, personal=folder).report(corrections, labels)
        timings: dict[str, list[float]] = {"without": [], "with": [], "without_cpu": [], "with_cpu": []}
        for _ in range(repeats):
            for name, personal in (("without", None), ("with", folder)):
                started, cpu = time.perf_counter(), time.thread_time()
                Classifier.load(bundle, backend=backend, personal=personal)
                timings[f"{name}_cpu"].append(time.thread_time() - cpu)
                timings[name].append(time.perf_counter() - started)
        return {"corrections": len(corrections), "state_bytes": (Path(folder) / "personal.json").stat().st_size,
                **{f"{name}_ms": 1000 * statistics.median(v) for name, v in timings.items()}}


def plot(streams: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(streams), figsize=(6.5 * len(streams), 4.5), squeeze=False)
    for axis, (name, result) in zip(axes[0], streams.items(), strict=True):
        uci = axis.twinx()
        for k, run in enumerate(result["runs"].values()):
            records = run["records"]
            x = [r["reports"] for r in records]
            for key, colour, label in (("caught", "tab:red", "spam caught, rest of stream"), ("caught_shipped", "tab:red", "  without corrections"),
                                       ("flagged", "tab:blue", "ham flagged, rest of stream"), ("flagged_shipped", "tab:blue", "  without corrections")):
                axis.plot(x, [100 * r[key] for r in records], color=colour, linestyle=":" if key.endswith("shipped") else "-", alpha=0.8,
                          label=label if k == 0 else None)
            for key, style, label in (("uci_flagged", "-", "ham flagged, UCI test part (right axis)"), ("uci_flagged_shipped", ":", "  without corrections")):
                uci.plot(x, [100 * r[key] for r in records], color="tab:green", linestyle=style, alpha=0.8, label=label if k == 0 else None)
            point = list(result["at_10_percent"].values())[k]
            if point:
                axis.axvline(point["reports"], color="grey", linewidth=0.6)
        axis.set_title(f"{name}: {result['messages']} messages, {result['spam']} spam")
        axis.set_xlabel("reports (every mistake the user saw)")
        axis.set_ylabel("%")
        axis.set_ylim(0, 100)
        uci.set_ylim(0, 1)
        uci.set_ylabel("% of UCI test ham flagged", color="tab:green")
        axis.legend(fontsize=8, loc="upper left")
        uci.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def summary(result: dict) -> dict:
    """Figures at the 10% point of each order; where the filter misses fewer spam than that (every mistake reported
    before), the order has no such point, and the figures after its last report stand beside."""
    points = [p for p in result["at_10_percent"].values() if p]
    last = [run["records"][-1] for run in result["runs"].values() if run["records"]]
    rise = [100 * (p["caught"] - p["caught_shipped"]) for p in points]
    uci = [100 * (p["uci_flagged"] - p["uci_flagged_shipped"]) for p in points]
    return {"orders": len(result["runs"]), "with_a_10_percent_point": len(points), "spam_reports_in_all": [r["spam_reports"] for r in last],
            "reports": [p["reports"] for p in points], "spam_reports": [p["spam_reports"] for p in points],
            "caught_shipped": [100 * p["caught_shipped"] for p in points], "caught": [100 * p["caught"] for p in points], "caught_rise": rise,
            "flagged_shipped": [100 * p["flagged_shipped"] for p in points], "flagged": [100 * p["flagged"] for p in points],
            "uci_flagged_rise": uci, "uci_flagged_rise_after_last_report": [100 * (r["uci_flagged"] - r["uci_flagged_shipped"]) for r in last],
            "caught_as_read": [100 * run["caught_as_read"] for run in result["runs"].values()],
            "caught_shipped_whole": [100 * run["caught_shipped_whole"] for run in result["runs"].values()],
            "met": len(points) == len(result["runs"]) and min(rise) >= TARGET_CAUGHT and max(uci) <= TARGET_FLAGGED}


def table(result: dict) -> str:
    def span(values: list[float], digits: int = 1) -> str:
        return f"{np.mean(values):.{digits}f} ({min(values):.{digits}f} to {max(values):.{digits}f})" if values else "n/a"

    lines = [
        f"Measured {result['date']} with `{result['command']}` ({result['took_s']:.0f} s; load average {result['load_before']} before, "
        f"{result['load_after']} after; {result['cpu']}, Python {result['python']}, backend {result['backend']}).",
        "",
        "A simulated user reads each stream in 3 seeded orders and reports every mistake the filter makes; figures are taken right "
        "after the report that brings the spam reported to 10% of the stream's spam, on the rest of the stream (the same messages "
        "scored with and without the corrections) and on the UCI test part's ham. Mean (min to max) over the orders:",
        "",
        "| stream | reports (spam) | spam caught on the rest | rise (target >= 15) | ham flagged on the rest | UCI ham flagged, rise (target <= 0.1) | met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for name, s in result["summary"].items():
        if s["with_a_10_percent_point"] < s["orders"]:
            lines.append(f"| {name} | no 10% point in {s['orders'] - s['with_a_10_percent_point']} of {s['orders']} orders: the filter missed only "
                         f"{span(s['spam_reports_in_all'])} of the {result['streams'][name]['spam']} spam, all reported | | | | "
                         f"after the last report: {span(s['uci_flagged_rise_after_last_report'], 2)} | no |")
            if not s["with_a_10_percent_point"]:
                continue
        lines.append(
            f"| {name} | {span(s['reports'])} ({span(s['spam_reports'])}) | {span(s['caught_shipped'])} -> {span(s['caught'])} | {span(s['caught_rise'])} "
            f"| {span(s['flagged_shipped'])} -> {span(s['flagged'])} | {span(s['uci_flagged_rise'], 2)} | {'yes' if s['met'] else 'no'} |"
        )
    lines += ["", "Spam caught as the user read each stream, every mistake reported as it came (the whole stream, mean of the orders): "
              + "; ".join(f"{name}: {span(s['caught_shipped_whole'])}% without corrections, {span(s['caught_as_read'])}% with them"
                          for name, s in result["summary"].items()) + ".",
              "", "The curves, spam caught and ham flagged against the number of reports: `personal.png` beside this file.", "",
              "**One report, its near-duplicates**: each message of the out-of-domain set the bundle gets wrong and that holds a number or a "
              "name, reported alone into an empty state; then up to 5 copies with other numbers and names that the bundle also got wrong:", "",
              "| reported as | messages | copies put right | messages with every copy put right |", "|---|---:|---:|---:|"]
    for label, n in result["near_duplicates"].items():
        shown = (f"{100 * n['variants_fixed']:.1f}%", f"{100 * n['all_fixed']:.1f}%") if n["messages"] else ("n/a", "n/a")
        lines.append(f"| {label} | {n['messages']} | {shown[0]} | {shown[1]} |")
    u = result["unrelated"]
    lines += ["", f"**Other messages after many reports**: every mistake of the out-of-domain set reported at once ({u['reports']} reports, a "
              f"stress test); on the {u['messages']} messages of the UCI test part the score moved by {100 * u['mean_abs_change']:.3f} points on "
              f"average, by more than 1 point for {100 * u['moved_over_0.01']:.1f}% of them; spam caught {u['spam_caught_before']} -> "
              f"{u['spam_caught_after']} of {u['spam']}, ham flagged {u['ham_flagged_before']} -> {u['ham_flagged_after']} of {u['ham']}.", "",
              "**State and load time** (median of 30 loads, native backend, the state written by `report`; CPU: the thread's own time, "
              "steadier than wall time on a shared machine; target: 10 ms more):", "",
              "| corrections | personal.json | load without (CPU / wall) | load with (CPU / wall) | extra CPU | extra wall |", "|---:|---:|---:|---:|---:|---:|"]
    for c in result["load"]:
        lines.append(f"| {c['corrections']} | {c['state_bytes'] / 1024:.0f} KiB | {c['without_cpu_ms']:.1f} / {c['without_ms']:.1f} ms | "
                     f"{c['with_cpu_ms']:.1f} / {c['with_ms']:.1f} ms | {c['with_cpu_ms'] - c['without_cpu_ms']:.1f} ms | {c['with_ms'] - c['without_ms']:.1f} ms |")
    seconds = [s for stream in result["streams"].values() for run in stream["runs"].values() for s in run["report_seconds"]]
    lines += ["", f"A report (one message: its record, the fit and the atomic write) took {1000 * statistics.median(seconds):.0f} ms at the median, "
              f"{1000 * max(seconds):.0f} ms at most, over the {len(seconds)} reports of the simulations."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="the default bundle (out-of-domain stream)")
    parser.add_argument("--run", required=True, help="its run folder (its UCI test part)")
    parser.add_argument("--campaign-bundle", required=True, help="a bundle trained with --split campaign (UCI campaign stream)")
    parser.add_argument("--campaign-run", required=True, help="its run folder")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--backend", default="native")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--render", metavar="JSON", help="only write the table and the plot again from a results file this script wrote")
    args = parser.parse_args()
    if args.render:
        result = json.loads(Path(args.render).read_text())
        Path(args.out).mkdir(parents=True, exist_ok=True)
        plot(result["streams"], Path(args.out) / "personal.png")
        write_results(Path(args.out), "personal", result, table(result), "rendered again")
        return 0
    started, load_before = time.perf_counter(), _load()
    ood = load_ood(OOD_SET)
    ood_texts, ood_labels = list(ood.texts), np.asarray(ood.labels)
    ds, split = read_split(Path(args.run) / "split.json", args.data)
    uci_texts = [ds.texts[i] for i in split.test]
    uci_ham = [t for t, y in zip(uci_texts, ds.labels[split.test], strict=True) if y == 0]
    cds, csplit = read_split(Path(args.campaign_run) / "split.json", args.data)
    campaign_texts, campaign_labels = [cds.texts[i] for i in csplit.test], np.asarray(cds.labels[csplit.test])
    campaign_ham = [t for t, y in zip(campaign_texts, campaign_labels, strict=True) if y == 0]
    print("* out-of-domain stream", file=sys.stderr)
    streams = {"out-of-domain": stream(args.bundle, args.backend, ood_texts, ood_labels, uci_ham, args.seeds)}
    print("* UCI campaign stream", file=sys.stderr)
    streams["UCI campaigns"] = stream(args.campaign_bundle, args.backend, campaign_texts, campaign_labels, campaign_ham, args.seeds)
    train_texts = [ds.texts[i] for i in split.train]
    train_labels = ["spam" if ds.labels[i] else "ham" for i in split.train]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command_line("personal.py"),
        "cpu": cpu_name(), "python": platform.python_version(), "backend": args.backend, "load_before": load_before,
        "streams": streams, "summary": {name: summary(s) for name, s in streams.items()},
        "near_duplicates": near_duplicates(args.bundle, args.backend, ood_texts, ood_labels),
        "unrelated": unrelated(args.bundle, args.backend, ood_texts, ood_labels, uci_texts, ds.labels[split.test]),
        "load": [load_cost(args.bundle, args.backend, train_texts[:n], train_labels[:n]) for n in (10, 100, 500)],
    }
    result |= {"load_after": _load(), "took_s": time.perf_counter() - started}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(streams, out / "personal.png")
    write_results(out, "personal", result, table(result), f"{result['took_s']:.0f} s")
    return 0


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
