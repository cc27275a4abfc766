"""Explanations, measured: are the spans `Classifier.explain` names the ones the score depends on, and how long
does an explanation take?

Faithfulness (deletion test): for every spam of a run's UCI test part that the bundle catches, take out the k
spans the explanation ranks highest (k = 1..5) and score what is left; do the same with k random spans of the
same lengths (character windows placed at random, not overlapping) and with k random words of the message,
20 draws each. The explanation passes at k when taking out its spans lowers the score more than the random
draws do (their mean drop; also read in log-odds, and beside their median); a message passes when it does at
every k it has more than k spans for. Rankings compared: the explanation's (`contribution`), each of its two
parts alone, and the bag's exact split (`bag_share`).

Speed: `explain` and `predict_proba` one message at a time over the whole test part, after a warm-up; wall
time and the thread's CPU time (the machine is shared: CPU time is the steadier figure).

    python benchmarks/explain.py --bundle BUNDLE --run RUN [--data PATH] [--backend native] [--draws 20]

Writes benchmarks/results/explain.json and explain.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script

from smsguard.runtime import Classifier
from smsguard.runtime._explain import Explanation, without
from smsguard.train import read_split

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
KS = (1, 2, 3, 4, 5)
RANKINGS = {  # how the spans taken out are chosen: the explanation's, and each of its parts alone
    "explanation (contribution)": lambda s: s.contribution,
    "its word part (occlusion)": lambda s: s.words,
    "its bag part (exact deletion)": lambda s: s.ngrams,
    "the bag's exact split (bag_share)": lambda s: s.bag_share,
}
RANDOM = ("random spans of the same lengths", "random words")
CRITERIA = {  # how "lowers the score more than random spans" is read: the drop beside the random draws'
    "mean drop": lambda top, draws: top > np.mean(draws),
    "mean drop in log-odds": lambda top, draws: _logit_drop(top) > np.mean(_logit_drop(draws)),
    "median drop": lambda top, draws: top > np.median(draws),
}
TARGET_PASS = 0.95  # share of caught spam whose explanation beats random spans at every k
_P0: list[float] = [0.0]  # the message's score, for the log-odds reading


def _logit_drop(drop):
    p0 = _P0[0]
    p = np.clip(p0 - np.asarray(drop), 1e-7, 1 - 1e-7)
    return np.log(p0 / (1 - p0)) - np.log(p / (1 - p))


def random_windows(rng: np.random.Generator, size: int, lengths: list[int]) -> list[tuple[int, int]] | None:
    """Non-overlapping character windows of `lengths`, placed at random in a text of `size` characters."""
    for _ in range(50):
        taken = np.zeros(size, dtype=bool)
        placed = []
        for length in rng.permutation(lengths).tolist():
            free = [start for start in range(size - length + 1) if not taken[start : start + length].any()]
            if not free:
                break
            start = int(rng.choice(free))
            taken[start : start + length] = True
            placed.append((start, start + length))
        if len(placed) == len(lengths):
            return placed
    return None


def deletions(explanation: Explanation, rng: np.random.Generator, draws: int) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Every text to score for one message, and (what, k, how many texts) in the same order."""
    text, spans = explanation.text, explanation.spans
    texts: list[str] = []
    plan: list[tuple[str, int, int]] = []
    for k in KS:
        if len(spans) <= k:
            continue
        for name, key in RANKINGS.items():
            ranked = sorted(spans, key=lambda s, key=key: -key(s))[:k]
            texts.append(without(text, [(s.start, s.end) for s in ranked]))
            plan.append((name, k, 1))
        lengths = [s.end - s.start for s in sorted(spans, key=lambda s: -s.contribution)[:k]]
        windows = [random_windows(rng, len(text), lengths) for _ in range(draws)]
        texts += [without(text, w) for w in windows if w is not None]
        plan.append((RANDOM[0], k, sum(w is not None for w in windows)))
        words = [rng.choice(len(spans), size=k, replace=False) for _ in range(draws)]
        texts += [without(text, [(spans[i].start, spans[i].end) for i in chosen]) for chosen in words]
        plan.append((RANDOM[1], k, draws))
    return texts, plan


def faithfulness(clf: Classifier, spam: list[str], draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    drops: dict[str, dict[int, list[float]]] = {name: {k: [] for k in KS} for name in (*RANKINGS, *RANDOM)}
    passed = {c: {name: {k: [0, 0] for k in KS} for name in RANKINGS} for c in CRITERIA}  # [passed, measured]
    every_k = {c: {name: [0, 0] for name in RANKINGS} for c in CRITERIA}
    for text in spam:
        explanation = clf.explain(text)
        texts, plan = deletions(explanation, rng, draws)
        scores = clf.predict_proba(texts) if texts else np.zeros(0)
        _P0[0] = explanation.probability
        got: dict[tuple[str, int], np.ndarray] = {}
        at = 0
        for name, k, count in plan:
            got[name, k] = explanation.probability - scores[at : at + count]
            if count:
                drops[name][k].append(float(np.mean(got[name, k])))
            at += count
        for criterion, beats in CRITERIA.items():
            for name in RANKINGS:
                results = []
                for k in KS:
                    if (name, k) in got and len(got[RANDOM[0], k]):
                        results.append(bool(beats(float(got[name, k][0]), got[RANDOM[0], k])))
                        passed[criterion][name][k][0] += results[-1]
                        passed[criterion][name][k][1] += 1
                every_k[criterion][name][0] += all(results)
                every_k[criterion][name][1] += bool(results)
    return {
        "messages": len(spam),
        "draws": draws,
        "mean_drop": {name: {k: float(np.mean(v)) if v else None for k, v in per_k.items()} for name, per_k in drops.items()},
        "pass_rate": {c: {name: {k: p / n if n else None for k, (p, n) in per_k.items()} for name, per_k in by.items()} for c, by in passed.items()},
        "measured": {name: {k: n for k, (_, n) in per_k.items()} for name, per_k in passed["mean drop"].items()},
        "pass_every_k": {c: {name: p / n if n else None for name, (p, n) in by.items()} for c, by in every_k.items()},
    }


def timings(clf: Classifier, texts: list[str]) -> dict:
    """Per message: explain and predict_proba, wall and thread CPU, in ms, after a warm-up of 50 messages."""
    for text in texts[:50]:
        clf.explain(text)
        clf.predict_proba([text])
    out: dict[str, dict[str, float]] = {}
    for name, call in (("explain", lambda t: clf.explain(t)), ("predict_proba", lambda t: clf.predict_proba([t]))):
        wall, cpu = [], []
        for text in texts:
            w, c = time.perf_counter(), time.thread_time()
            call(text)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
        out[name] = {f"{kind}_{q}": float(np.percentile(values, q) * 1000) for kind, values in (("wall", wall), ("cpu", cpu)) for q in (50, 95, 99)}
        out[name] |= {"wall_mean": float(np.mean(wall) * 1000), "cpu_mean": float(np.mean(cpu) * 1000)}
    return out


def table(result: dict) -> str:
    f, t = result["faithfulness"], result["timing"]
    lines = [
        f"Measured {result['date']} with `{result['command']}` ({result['took_s']:.0f} s; load average {result['load_before']} before, "
        f"{result['load_after']} after; {result['cpu']}, Python {result['python']}): bundle model {result['model']} on the {result['backend']} backend, "
        f"{f['messages']} spam of the UCI test part that it catches.",
        "",
        f"**Faithfulness**: the share of those messages for which taking out the k spans a ranking puts first lowers the spam score more "
        f"than taking out k random spans of the same lengths ({f['draws']} draws, placed at random, not overlapping), at each k and at "
        f"every k the message has more than k spans for (target: {TARGET_PASS:.0%} at every k, the explanation's ranking, mean drop):",
    ]
    for criterion in CRITERIA:
        lines += ["", f"Beside the random draws' {criterion}:", "",
                  "| ranking | " + " | ".join(f"k = {k}" for k in KS) + " | every k |", "|---|" + "---:|" * (len(KS) + 1)]
        for name in RANKINGS:
            cells = [f"{100 * v:.1f}%" if v is not None else "n/a" for v in f["pass_rate"][criterion][name].values()]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | **{100 * f['pass_every_k'][criterion][name]:.1f}%** |")
    lines += ["", "The curve: mean drop of the spam score (points of probability) when k spans are taken out:", "",
              "| spans taken out | " + " | ".join(f"k = {k}" for k in KS) + " |", "|---|" + "---:|" * len(KS)]
    for name, per_k in f["mean_drop"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * v:.2f}" if v is not None else "n/a" for v in per_k.values()) + " |")
    lines += ["", f"**Speed**, one message at a time over the {result['timed_messages']} messages of the test part, after a warm-up "
              "(ms; target: explain <= 2 ms with the native backend; CPU: the thread's own time, steadier than wall time on a shared machine):", "",
              "| call | CPU p50 | CPU p95 | CPU mean | wall p50 | wall p95 | wall mean |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in t.items():
        lines.append(f"| {name} | {v['cpu_50']:.3f} | {v['cpu_95']:.3f} | {v['cpu_mean']:.3f} | {v['wall_50']:.3f} | {v['wall_95']:.3f} | {v['wall_mean']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="the bundle explained")
    parser.add_argument("--run", required=True, help="its run folder (for the UCI test part, from split.json)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data)")
    parser.add_argument("--backend", default="native", help="the backend (default: native)")
    parser.add_argument("--draws", type=int, default=20, help="random draws per message and k (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started, load_before = time.perf_counter(), _load()
    clf = Classifier.load(args.bundle, backend=args.backend)
    dataset, split = read_split(Path(args.run) / "split.json", args.data)
    texts = [dataset.texts[i] for i in split.test]
    labels = dataset.labels[split.test]
    flags = clf.decision.flags(clf.predict_proba(texts))
    caught = [t for t, y, f in zip(texts, labels, flags, strict=True) if y == 1 and f]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line("explain.py"),
        "cpu": cpu_name(), "python": platform.python_version(), "backend": clf.backend, "model": clf.model.name,
        "faithfulness": faithfulness(clf, caught, args.draws, args.seed),
        "timing": timings(clf, texts), "timed_messages": len(texts), "load_before": load_before,
    }
    result |= {"load_after": _load(), "took_s": time.perf_counter() - started}
    write_results(Path(args.out), "explain", result, table(result), f"{result['took_s']:.0f} s")
    return 0


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
