"""What the fused model (word LSTM + hashed character n-grams) costs beside the word model alone, with the
same backend: single-message latency of `Classifier.predict_proba([text])` over the SMS messages, bulk
throughput, and where a fused message's time goes.

    python benchmarks/fused.py FUSED_BUNDLE WORD_BUNDLE [--rounds 3] [--messages N] [--data FILE]

- single message: p50/p90 of `predict_proba([text])` over every message of the data set (or the first
  N), end to end (raw text -> probability), for each backend: native and numba (`model.int8.npz`),
  onnxruntime (`model.dynamic_int8.primed.onnx`), litert (`model.dynamic_int8.tflite`). The fused and
  the word call of a message are timed one after the other (in alternating order), so that a load that
  comes and goes weighs on both alike; each figure is the median over the rounds;
- bulk: messages a second of `predict_proba(all messages)` (defaults: chunks of 2048 in pieces of 256, each
  piece scored by one of as many threads as the cores), the median of the rounds;
- profile (native, and numba for comparison): featurising (C), the LSTM, the n-gram gather-mean with the
  fusion, and the rest (end to end minus those), each timed back to back for a message after an untimed run
  of it (warm caches), each message's best of the rounds, the median over messages. The native kernel
  times its own parts (`Model.profile`); in numba the LSTM and the gather-mean are its kernels, the fusion
  `NgramBranch.fuse_means` in NumPy.

The issue's targets: featurising a typical SMS (word tokenizer + n-grams, `Vocabulary.encode_checked` with
the C n-gram hasher) at most 20 µs; the fused model end to end no slower than 2x the word model's p50 with
the same backend. Wall-clock times on one thread; under load (see the load averages recorded) ratios hold
better than absolute figures. About a minute on this machine. Writes benchmarks/results/fused.json and
fused.md.
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

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "SMSSpamCollection"
BACKENDS = (  # (backend, model): the same file name in both bundles
    ("native", "model.int8.npz"),
    ("numba", "model.int8.npz"),
    ("onnxruntime", "model.dynamic_int8.primed.onnx"),
    ("litert", "model.dynamic_int8.tflite"),
)
FEATURISE_TARGET_US = 20.0
RATIO_TARGET = 2.0
WARM_UP = 50  # messages run before timing: first allocations, numba's cache, interpreters' tensors


def best_us(call, items: list, rounds: int) -> np.ndarray:
    """Each item's fastest of `rounds` calls (microseconds of wall-clock time), after a warm-up: load
    spikes drop out."""
    for item in items[:WARM_UP]:
        call(item)
    best = np.full(len(items), np.inf)
    for _ in range(rounds):
        for i, item in enumerate(items):
            begin = time.perf_counter_ns()
            call(item)
            best[i] = min(best[i], (time.perf_counter_ns() - begin) / 1e3)
    return best


def single_message(fused, words, texts: list[str], rounds: int) -> dict:
    """p50/p90 of predict_proba([text]) for both classifiers, the two calls of a message back to back;
    in wall-clock time (what a caller waits), and the p50 in this thread's CPU time (which time spent
    waiting for a core on a loaded machine does not count: one message runs on the calling thread)."""
    calls = (lambda t: fused.predict_proba([t]), lambda t: words.predict_proba([t]))
    for text in texts[:WARM_UP]:
        calls[0](text)
        calls[1](text)
    wall, cpu = np.empty((2, rounds, len(texts))), np.empty((2, rounds, len(texts)))
    for r in range(rounds):
        for i, text in enumerate(texts):
            first = (i + r) % 2  # alternate which goes first
            for which in (first, 1 - first):
                cpu_begin, wall_begin = time.thread_time_ns(), time.perf_counter_ns()
                calls[which](text)
                wall_end, cpu_end = time.perf_counter_ns(), time.thread_time_ns()
                wall[which, r, i], cpu[which, r, i] = (wall_end - wall_begin) / 1e3, (cpu_end - cpu_begin) / 1e3
    out = {}
    for which, name in enumerate(("fused", "words")):
        p50, p90 = np.median(np.percentile(wall[which], [50, 90], axis=1), axis=1)
        out[name] = {"p50_us": float(p50), "p90_us": float(p90), "cpu_p50_us": float(np.median(np.percentile(cpu[which], 50, axis=1)))}
    out["ratio_p50"] = out["fused"]["p50_us"] / out["words"]["p50_us"]
    out["cpu_ratio_p50"] = out["fused"]["cpu_p50_us"] / out["words"]["cpu_p50_us"]
    return out


def bulk(fused, words, texts: list[str], rounds: int) -> dict:
    fused.predict_proba(texts[:2048])
    words.predict_proba(texts[:2048])
    seconds: dict[str, list[float]] = {"fused": [], "words": []}
    for _ in range(rounds):
        for name, classifier in (("fused", fused), ("words", words)):
            begin = time.perf_counter()
            classifier.predict_proba(texts)
            seconds[name].append(time.perf_counter() - begin)
    out = {name: {"messages_per_second": len(texts) / float(np.median(s))} for name, s in seconds.items()}
    out["ratio"] = out["fused"]["messages_per_second"] / out["words"]["messages_per_second"]
    return out


def profile(classifier, texts: list[str], rounds: int) -> dict:
    """Where a fused message's time goes in `classifier` (native or numba): see the module's docstring.
    Every part of a message is timed back to back, after one untimed run of the message, so that all see
    the same load and the same caches (the single-message figures include a message's first touch)."""
    session, vocabulary = classifier.session, classifier.vocabulary
    assert vocabulary.ngrams is not None, "the fused bundle has no n-gram spec"
    maxlen = vocabulary.config.maxlen
    ids = [vocabulary.encode_checked([t]) for t in texts]
    steps = [int(np.count_nonzero(row[0, :maxlen])) for row in ids]
    calls = {
        "end_to_end": lambda i: classifier.predict_proba([texts[i]]),
        "featurise": lambda i: vocabulary.encode_checked([texts[i]]),
        "session_run": lambda i: session.run(ids[i]),
    }
    native = classifier.backend == "native"
    if not native:  # numba: its LSTM kernel on the word ids, then its gather-mean kernel and NumPy's fusion, as NumbaSession.run
        kernel, arguments, means, branch = session._kernel, session._args, session._means, session.weights.ngrams
        words = [np.ascontiguousarray(row[:, :maxlen]) for row in ids]
        word_probability = [kernel(w, *arguments) for w in words]
        calls["lstm"] = lambda i: kernel(words[i], *arguments)
        calls["ngram_gather_mean"] = lambda i: branch.fuse_means(word_probability[i], means(ids[i][:, maxlen:], branch.scores)[0])
    best = {name: np.full(len(texts), np.inf) for name in (*calls, "lstm", "ngram_gather_mean")}
    for i in range(min(WARM_UP, len(texts))):
        for call in calls.values():
            call(i)
    probability = np.empty(1, dtype=np.float32)
    for _ in range(rounds):
        for i in range(len(texts)):
            calls["end_to_end"](i)  # untimed: the message's table rows into the cache, for every part alike
            for name, call in calls.items():
                begin = time.perf_counter_ns()
                call(i)
                best[name][i] = min(best[name][i], (time.perf_counter_ns() - begin) / 1e3)
            if native:  # the kernel's own clock: three readings a step, one for the output, one for the n-grams
                p = session._model.profile(ids[i], probability)
                timer = p["timer_ns"]
                lstm_ns = p["lookup_ns"] + p["recurrence_ns"] + p["activations_ns"] + p["output_ns"] - timer * (3 * steps[i] + 1)
                best["lstm"][i] = min(best["lstm"][i], max(lstm_ns, 0.0) / 1e3)
                best["ngram_gather_mean"][i] = min(best["ngram_gather_mean"][i], max(p["ngram_ns"] - timer, 0.0) / 1e3)
    best["glue"] = best["end_to_end"] - best["featurise"] - best["lstm"] - best["ngram_gather_mean"]
    out: dict = {"backend": classifier.backend, "model": classifier.model.name} | ({"isa": session.isa} if native else {})
    out |= {f"{name}_us": float(np.median(values)) for name, values in best.items()}
    out["median_word_tokens"] = float(np.median(steps))
    out["median_ngram_ids"] = float(np.median([np.count_nonzero(row[0, maxlen:]) for row in ids]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fused", help="a bundle of the fused preset")
    parser.add_argument("words", help="a bundle of a word-only model (the default preset)")
    parser.add_argument("--data", default=str(DATA), help="the SMS Spam Collection (default: ../shared/data)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement")
    parser.add_argument("--messages", type=int, default=0, help="messages timed one by one (default: all)")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()

    from smsguard.runtime import Classifier, backend_info

    texts = [line.split("\t", 1)[1] for line in Path(args.data).read_text(encoding="utf-8").splitlines() if "\t" in line]
    timed = texts[: args.messages] if args.messages else texts
    backends, skipped = [], []
    for name, model in BACKENDS:
        if not backend_info(name).installed:
            skipped.append(name)
            continue
        print(f"* {name} ({model})", file=sys.stderr, flush=True)
        fused = Classifier.load(args.fused, backend=name, model=model)
        words = Classifier.load(args.words, backend=name, model=model)
        if fused.vocabulary.ngrams is None or words.vocabulary.ngrams is not None:
            raise SystemExit(f"expected a fused bundle then a word-only one, found {args.fused} and {args.words}")
        row = {"backend": name, "model": model, "single_message": single_message(fused, words, timed, args.rounds), "bulk": bulk(fused, words, texts, args.rounds)}
        if name in ("native", "numba"):
            row["profile"] = profile(fused, timed, args.rounds)
        backends.append(row)
        s = row["single_message"]
        print(f"  p50 fused {s['fused']['p50_us']:.1f} µs, words {s['words']['p50_us']:.1f} µs: {s['ratio_p50']:.2f}x", file=sys.stderr, flush=True)

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("fused.py"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "load_before": load_before, "load_after": os.getloadavg()},
        "bundles": {"fused": str(Path(args.fused).resolve()), "words": str(Path(args.words).resolve())},
        "messages": len(timed),
        "bulk_messages": len(texts),
        "rounds": args.rounds,
        "backends": backends,
        "skipped": skipped,
    }
    result["targets"] = targets(result)
    write_results(RESULTS, "fused", result, markdown(result), f"{time.perf_counter() - started:.0f} s")
    return 0


def targets(result: dict) -> list[dict]:
    out = []
    native = next((b for b in result["backends"] if b["backend"] == "native"), None)
    if native:
        featurise = native["profile"]["featurise_us"]
        out.append({"figure": "featurise a message (word ids + n-gram ids, in C), median µs", "measured": featurise, "target": f"<= {FEATURISE_TARGET_US:g}", "met": featurise <= FEATURISE_TARGET_US})
    for b in result["backends"]:
        ratio = b["single_message"]["ratio_p50"]
        out.append({"figure": f"fused / word-only p50, {b['backend']} ({b['model']})", "measured": ratio, "target": f"<= {RATIO_TARGET:g}", "met": ratio <= RATIO_TARGET})
    return out


def markdown(result: dict) -> str:
    machine = result["machine"]
    under_load = " — measured under load (other processes busy on this machine): ratios hold better than absolute figures." if max(machine["load_after"] + machine["load_before"]) > 1.0 else "."
    lines = [
        f"Measured {result['date'][:10]} on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}; `{result['command'].strip()}`; "
        f"{result['messages']} messages one at a time, {result['rounds']} rounds.",
        f"Load average (1, 5, 15 min) before: {_load(machine['load_before'])}, after: {_load(machine['load_after'])}{under_load}",
        "",
        "**Targets**",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    lines += [f"| {t['figure']} | {t['measured']:.3g} | {t['target']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    lines += [
        "",
        "**Single message, end to end** (`predict_proba([text])`, µs of wall-clock time; the median of the rounds' percentiles; "
        "CPU: the p50 in the calling thread's CPU time, which waiting for a core does not count)",
        "",
        "| backend | model | fused p50 | fused p90 | word p50 | word p90 | fused / word p50 | CPU: fused p50 | CPU: word p50 | CPU: fused / word |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["backends"]:
        s, f, w = b["single_message"], b["single_message"]["fused"], b["single_message"]["words"]
        lines.append(
            f"| {b['backend']} | {b['model']} | {f['p50_us']:.1f} | {f['p90_us']:.1f} | {w['p50_us']:.1f} | {w['p90_us']:.1f} | {s['ratio_p50']:.2f} "
            f"| {f['cpu_p50_us']:.1f} | {w['cpu_p50_us']:.1f} | {s['cpu_ratio_p50']:.2f} |"
        )
    lines += [
        "",
        f"**Bulk** (`predict_proba` of all {result['bulk_messages']} messages at once, defaults; the median of the rounds)",
        "",
        "| backend | fused msg/s | word msg/s | fused / word |",
        "|---|---:|---:|---:|",
    ]
    for b in result["backends"]:
        k = b["bulk"]
        lines.append(f"| {b['backend']} | {k['fused']['messages_per_second']:,.0f} | {k['words']['messages_per_second']:,.0f} | {k['ratio']:.2f} |")
    profiles = [b["profile"] for b in result["backends"] if "profile" in b]
    if profiles:
        lines += [
            "",
            "**Where a fused message's time goes** (µs, one message at a time, its parts back to back after an untimed run of it: "
            "each message's best of the rounds, the median over messages; the parts' medians need not add up to the end-to-end one)",
            "",
            "| part | " + " | ".join(f"{p['backend']} ({p['model']})" for p in profiles) + " |",
            "|---|" + "---:|" * len(profiles),
        ]
        rows = [
            ("featurise: word ids and n-gram ids into one row (`Vocabulary.encode_checked`, C)", "featurise_us"),
            ("LSTM kernel", "lstm_us"),
            ("n-gram gather-mean and fusion", "ngram_gather_mean_us"),
            ("session.run (the kernel call from Python)", "session_run_us"),
            ("the rest (end to end minus featurise, LSTM, gather-mean: Python, and the calls' own cost)", "glue_us"),
            ("**end to end**", "end_to_end_us"),
        ]
        lines += [f"| {label} | " + " | ".join(f"{p[key]:.1f}" for p in profiles) + " |" for label, key in rows]
        p = profiles[0]
        lines += [
            "",
            f"Median message: {p['median_word_tokens']:.0f} word tokens, {p['median_ngram_ids']:.0f} distinct n-gram ids. "
            "Native: the LSTM and the n-gram branch are timed inside the one C call (`Model.profile`, clock readings taken out); "
            "numba: its LSTM kernel, then its gather-mean kernel and the fusion in NumPy (`NgramBranch.fuse_means`).",
        ]
    if result["skipped"]:
        lines += ["", f"Not installed here, skipped: {', '.join(result['skipped'])}."]
    return "\n".join(lines) + "\n"


def _load(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
