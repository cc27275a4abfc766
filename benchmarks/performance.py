"""The performance suite behind the README: every figure side by side, in one run, so ratios hold
on a noisy machine. Each figure is the median of repeated runs.

    python benchmarks/performance.py [--bundle DIR --run RUN_DIR] [--repeats 3] [--messages 300]

- single-message latency, end to end (raw text -> probability), p50/p95/p99, overall and by
  length (real tokens), for every model x installed backend; beside Keras `model.predict` and a
  direct Keras call, and the bare interpreters (LiteRT `invoke`, ONNX Runtime `run`) on
  pre-tokenized 40-token input of the fixed-length float32 models;
- cold start: a fresh process from its start to its first probability, smsguard vs TensorFlow+Keras;
- bulk throughput on 100,000 messages (the data set repeated), tokenization included, on one core
  and on all, beside Keras `predict(batch_size=1024)` with the Keras tokenizer;
- peak resident memory of each of those processes, and each model file's size.

Without --bundle it trains and exports the tutorial model first. Writes benchmarks/results/
performance.json, performance.md and performance.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import cpu_name, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
BUCKETS = ((0, 5), (6, 10), (11, 20), (21, 30), (31, 40))  # real tokens per message
BULK_MESSAGES = 100_000
KERAS_CALLS = 40  # model.predict costs tens of milliseconds: fewer calls, same percentiles


# ---- measurements that run in their own process ---------------------------------------------------


def child(kind: str, bundle: str, run: str, texts_file: str) -> dict:
    """One measurement in a fresh process; prints its result and peak memory as JSON."""
    started = time.perf_counter()
    texts = json.loads(Path(texts_file).read_text()) if texts_file else []
    if kind.startswith("cold-runtime"):
        from smsguard.runtime import Classifier

        backend = kind.removeprefix("cold-runtime").removeprefix("-") or "auto"
        classifier = Classifier.load(bundle, backend=backend)
        classifier.predict_proba(["Are we still on for dinner tonight?"])
        result = {"backend": classifier.backend, "model": classifier.model.name}
    elif kind == "cold-keras":
        import keras

        from smsguard.runtime import Bundle

        model = keras.models.load_model(Path(run) / "model.keras", compile=False, safe_mode=True)
        model.predict(Bundle.load(bundle).vocabulary.encode(["Are we still on for dinner tonight?"]), verbose=0)
        result = {"backend": f"keras {keras.__version__}"}
    elif kind.startswith("bulk-runtime"):
        from smsguard.runtime import Classifier

        _, backend, workers_text, _ = bulk_kind(kind)
        workers = int(workers_text)
        classifier = Classifier.load(bundle, backend=backend)
        classifier.predict_proba(texts[:2048], workers=1)  # warm: compile caches, first allocations
        begin = time.perf_counter()
        classifier.predict_proba(texts, workers=workers)
        result = {"backend": classifier.backend, "model": classifier.model.name, "seconds": time.perf_counter() - begin, "workers": workers}
    elif kind.startswith("bulk-keras"):
        import keras
        from tf_keras.preprocessing.sequence import pad_sequences
        from tf_keras.preprocessing.text import Tokenizer

        from smsguard.runtime import Bundle

        vocabulary = Bundle.load(bundle).vocabulary
        tokenizer = Tokenizer(num_words=vocabulary.config.num_words, oov_token=vocabulary.config.oov_token)
        tokenizer.word_index = dict(vocabulary.word_index)
        model = keras.models.load_model(Path(run) / "model.keras", compile=False, safe_mode=True)
        config = vocabulary.config

        def score(batch):
            ids = pad_sequences(tokenizer.texts_to_sequences(batch), maxlen=config.maxlen, padding=config.padding, truncating=config.truncating)
            return model.predict(ids, batch_size=1024, verbose=0)

        score(texts[:2048])
        begin = time.perf_counter()
        score(texts)
        result = {"backend": f"keras {keras.__version__}", "seconds": time.perf_counter() - begin, "workers": os.cpu_count()}
    else:
        raise SystemExit(f"unknown measurement {kind}")
    result["peak_rss_mb"] = peak_rss_mb()
    result["inside_seconds"] = time.perf_counter() - started
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec, so a child of a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bulk_kind(kind: str) -> tuple[str, str, str, str]:
    """"bulk-runtime-BACKEND-WORKERS-HOW" -> (what, backend, workers, how); HOW: default (nothing tuned,
    every core), pinned (taskset -c 0) or busy (default, beside a process that keeps one core busy)."""
    what, backend, workers, how = kind.rsplit("-", 3) if kind.startswith("bulk-runtime") else (kind, "", "", kind.rsplit("-", 1)[1])
    return what, backend, workers, how


def in_fresh_process(kind: str, bundle: Path, run: Path, texts_file: str = "") -> dict:
    """Nothing tuned: no thread setting in the environment (what a user gets); "pinned" kinds run under
    `taskset -c 0`, "busy" ones beside a process spinning on the machine."""
    how = bulk_kind(kind)[3] if kind.startswith("bulk") else ""
    pin = ["taskset", "-c", "0"] if how == "pinned" and shutil.which("taskset") else []
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if how == "busy" else None
    begin = time.perf_counter()
    try:
        done = subprocess.run(
            [*pin, sys.executable, __file__, "--child", kind, "--bundle", str(bundle), "--run", str(run), "--texts", texts_file],
            capture_output=True,
            text=True,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    finally:
        if busy:
            busy.kill()
            busy.wait()
    wall = time.perf_counter() - begin
    if done.returncode:
        raise SystemExit(f"measurement {kind} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


# ---- single-message latency, in this process -----------------------------------------------------


def percentiles(samples_us: np.ndarray) -> dict:
    p50, p95, p99 = np.percentile(samples_us, [50, 95, 99])
    return {"p50_us": float(p50), "p95_us": float(p95), "p99_us": float(p99)}


def time_each(call, items: list, rounds: int) -> np.ndarray:
    """Microseconds per call, one per item per round, after a warm-up pass."""
    for item in items[:50]:
        call(item)
    samples = np.empty((rounds, len(items)))
    for r in range(rounds):
        for i, item in enumerate(items):
            begin = time.perf_counter_ns()
            call(item)
            samples[r, i] = (time.perf_counter_ns() - begin) / 1e3
    return samples


def latency_table(bundle_dir: Path, run_dir: Path, texts: list[str], repeats: int) -> list[dict]:
    from smsguard.runtime import Bundle, Classifier, installed_backends, open_session

    bundle = Bundle.load(bundle_dir)
    lengths = np.count_nonzero(bundle.vocabulary.encode(texts), axis=1)
    rows = []

    def add(system: str, backend: str, samples: np.ndarray, size: int | None, per_message: bool = True) -> None:
        runs = [percentiles(s) for s in samples]  # one set of percentiles per repeat
        row = {"system": system, "backend": backend, "size": size}
        row |= {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        if per_message:
            for low, high in BUCKETS:
                chosen = (lengths >= low) & (lengths <= high)
                if chosen.any():
                    row[f"p50_us_{low}_{high}"] = float(np.median(samples[:, chosen]))
        rows.append(row)
        print(f"  {system} [{backend}]: p50 {row['p50_us']:.1f} µs, p99 {row['p99_us']:.1f} µs", file=sys.stderr, flush=True)

    default = Classifier.load(bundle_dir)
    add(f"smsguard default ({default.model.name})", default.backend, time_each(lambda t: default.predict_proba([t]), texts, repeats), default.model.size)
    for entry in bundle.models.values():
        for info in installed_backends():
            if info.format == entry.format:
                classifier = Classifier(bundle, open_session(info, bundle.model_path(entry), entry))
                add(entry.name, info.name, time_each(lambda t, classifier=classifier: classifier.predict_proba([t]), texts, repeats), entry.size)

    ids = bundle.vocabulary.encode(texts)
    rows_ids = [ids[i : i + 1] for i in range(len(ids))]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(bundle.model_path(bundle.model("model.float32.onnx"))), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    add("bare ONNX Runtime run, model.float32.onnx, 40 ids", "onnxruntime", time_each(lambda x: session.run(None, {name: x}), rows_ids, repeats), None)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(bundle.model_path(bundle.model("model.float32.tflite"))), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def invoke(x):
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    add("bare LiteRT invoke, model.float32.tflite, 40 ids", "litert", time_each(invoke, rows_ids, repeats), None)

    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    model = keras.models.load_model(run_dir / "model.keras", compile=False, safe_mode=True)
    few = texts[:KERAS_CALLS]
    encode = bundle.vocabulary.encode
    keras_samples = time_each(lambda t: model.predict(encode([t]), verbose=0), few, 1)
    add("Keras model.predict", f"keras {keras.__version__}", np.repeat(keras_samples, repeats, axis=0), None, per_message=False)
    call_samples = time_each(lambda t: model(encode([t]), training=False).numpy(), texts, 1)
    add("Keras direct call model(x)", f"keras {keras.__version__}", np.repeat(call_samples, repeats, axis=0), None, per_message=False)
    return rows


# ---- the whole suite -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle")
    parser.add_argument("--run", help="the run folder the bundle was exported from (for the Keras model)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: ../shared/data)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every measurement; figures are medians")
    parser.add_argument("--messages", type=int, default=300, help="test messages timed one by one")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--texts", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.bundle, args.run, args.texts)))
        return 0

    RESULTS.mkdir(exist_ok=True)
    load_before = os.getloadavg()  # 1, 5 and 15 minute load averages: figures taken under load say so
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        run_dir, bundle_dir = Path(args.run or work / "run"), Path(args.bundle or work / "bundle")
        if not args.bundle:
            from smsguard.export import ExportConfig, export
            from smsguard.train import TrainConfig, train

            # The word LSTM alone (tuned): this suite compares it with bare Keras and ONNX Runtime on padded word ids;
            # the fused default is measured beside it by benchmarks/fused.py.
            train(TrainConfig.from_preset("tuned", data=args.data), run_dir)
            export(run_dir, bundle_dir, ExportConfig(data=args.data))
        from smsguard.train import read_split

        dataset, split = read_split(run_dir / "split.json", args.data)
        rng = np.random.default_rng(0)
        test_texts = [dataset.texts[i] for i in rng.choice(split.test, min(args.messages, len(split.test)), replace=False)]
        bulk = list(dataset.texts) * (BULK_MESSAGES // len(dataset.texts) + 1)
        texts_file = work / "bulk.json"
        texts_file.write_text(json.dumps(bulk[:BULK_MESSAGES]))

        print("* Single-message latency", file=sys.stderr)
        latency = latency_table(bundle_dir, run_dir, test_texts, args.repeats)
        print("* Per-step profile and floor", file=sys.stderr)
        profile = step_profile(bundle_dir, test_texts, args.repeats)
        processes = {}
        from smsguard.runtime import installed_backends

        cold = ["cold-runtime", *(f"cold-runtime-{b.name}" for b in installed_backends()), "cold-keras"]
        npz = [b.name for b in installed_backends() if b.format == "npz"]
        bulk = [f"bulk-runtime-auto-1-{how}" for how in ("default", "pinned", "busy")] + [f"bulk-runtime-auto-{os.cpu_count()}-default"]
        bulk += [f"bulk-runtime-{name}-1-{how}" for name in npz for how in ("default", "pinned")]
        for kind in (*cold, *bulk, "bulk-keras-default", "bulk-keras-pinned"):
            print(f"* {kind} x {args.repeats}", file=sys.stderr, flush=True)
            runs = [in_fresh_process(kind, bundle_dir, run_dir, str(texts_file) if kind.startswith("bulk") else "") for _ in range(args.repeats)]
            merged = dict(runs[0])
            for key in ("wall_seconds", "seconds", "peak_rss_mb"):
                if key in merged:
                    merged[key] = float(np.median([r[key] for r in runs]))
            if "seconds" in merged:
                merged["messages_per_second"] = BULK_MESSAGES / merged["seconds"]
            processes[kind] = merged
        sizes = {p.name: p.stat().st_size for p in sorted(bundle_dir.iterdir())}
        keras_size = (run_dir / "model.keras").stat().st_size

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/performance.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "load_before": load_before, "load_after": os.getloadavg()},
        "repeats": args.repeats,
        "latency": latency,
        "processes": processes,
        "profile": profile,
        "sizes": sizes | {"model.keras": keras_size},
    }
    result["targets"] = targets(result)
    plot(result, RESULTS / "performance.png")
    write_results(RESULTS, "performance", result, markdown(result), "and performance.png")
    return 0


def targets(result: dict) -> list[dict]:
    """The issue's targets: the default classifier (the native backend where it was built) against
    a bare ONNX Runtime run, TensorFlow+Keras start-up and memory, and Keras bulk scoring."""
    rows = {r["system"]: r for r in result["latency"]}
    default = next(r for r in result["latency"] if r["system"].startswith("smsguard default"))
    bare_onnx = next(r for name, r in rows.items() if name.startswith("bare ONNX"))
    keras_predict = rows["Keras model.predict"]
    p = result["processes"]
    cores = result["machine"]["cores"]

    def rate(kind: str) -> float:
        return p[kind]["messages_per_second"]

    keras = rate("bulk-keras-default")
    out = [
        ("single-message p50, default vs bare ONNX Runtime run", default["p50_us"] / bare_onnx["p50_us"], "<=", 0.25),
        ("Keras model.predict p50 / default p50", keras_predict["p50_us"] / default["p50_us"], ">=", 1000),
        ("cold start, runtime / TensorFlow+Keras", p["cold-runtime"]["wall_seconds"] / p["cold-keras"]["wall_seconds"], "<=", 0.05),
        ("peak memory, runtime / Keras (cold-start processes)", p["cold-runtime"]["peak_rss_mb"] / p["cold-keras"]["peak_rss_mb"], "<=", 0.08),
        ("bulk throughput, 1 core (taskset) / Keras predict(1024) on 1 core", rate("bulk-runtime-auto-1-pinned") / rate("bulk-keras-pinned"), ">=", 5),
        (f"bulk throughput, {cores} cores, nothing tuned / Keras predict(1024)", rate("bulk-runtime-auto-1-default") / keras, ">=", 5),
        ("bulk throughput, nothing tuned, beside a busy process / Keras predict(1024) idle", rate("bulk-runtime-auto-1-busy") / keras, ">=", 5),
        (f"bulk throughput, workers={cores} / Keras predict(1024)", rate(f"bulk-runtime-auto-{cores}-default") / keras, ">=", 5),
    ]
    for kind in (k for k in p if k.startswith("cold-runtime-")):
        out.append((f"cold start, {kind.removeprefix('cold-runtime-')} backend / TensorFlow+Keras", p[kind]["wall_seconds"] / p["cold-keras"]["wall_seconds"], "<=", 0.05))
        out.append((f"peak memory, {kind.removeprefix('cold-runtime-')} backend / Keras", p[kind]["peak_rss_mb"] / p["cold-keras"]["peak_rss_mb"], "<=", 0.08))
    return [{"figure": name, "ratio": ratio, "target": f"{op} {goal:g}", "met": ratio <= goal if op == "<=" else ratio >= goal} for name, ratio, op, goal in out]


# ---- where a message's time goes, and the floor ----------------------------------------------------


def step_profile(bundle_dir: Path, texts: list[str], repeats: int) -> dict:
    """One message at a time through the default classifier, split into tokenize (text -> padded
    ids), the kernel's parts (the native backend times its lookup, recurrence, activations and
    output itself) and the Python between them; beside the floor this machine allows: the
    recurrent product's multiply-adds at the single-core matrix-product rate measured here."""
    from smsguard.runtime import Classifier

    classifier = Classifier.load(bundle_dir)
    session = classifier.session
    ids = [classifier.encode([t]) for t in texts]
    tokens = np.array([int(np.count_nonzero(i)) for i in ids])

    def best_us(call, items) -> np.ndarray:  # each message's best of the rounds: load spikes drop out
        return time_each(call, items, max(repeats, 3)).min(axis=0)

    end_to_end = best_us(lambda t: classifier.predict_proba([t]), texts)
    tokenize = best_us(lambda t: classifier.encode([t]), texts)
    run = best_us(session.run, ids)
    out: dict = {"backend": classifier.backend, "model": classifier.model.name, "median_tokens": float(np.median(tokens))}
    out |= {
        "end_to_end_us": float(np.median(end_to_end)),
        "tokenize_us": float(np.median(tokenize)),
        "kernel_call_us": float(np.median(run)),
        "glue_us": float(np.median(end_to_end - tokenize - run)),
    }
    model = getattr(session, "_model", None)
    if classifier.backend == "native" and model is not None:
        parts = {"lookup_ns": 0.0, "recurrence_ns": 0.0, "activations_ns": 0.0, "output_ns": 0.0, "timer_ns": 0.0}
        probability = np.empty(1, dtype=np.float32)
        for row in ids:
            for key, value in model.profile(row, probability).items():
                parts[key] = parts.get(key, 0.0) + value  # a fused model adds ngram_ns
        steps = max(int(tokens.sum()), 1)
        timer = parts.pop("timer_ns") / len(ids)  # one clock reading, taken out of each timed part
        for key in ("lookup_ns", "recurrence_ns", "activations_ns"):
            parts[key] = max(parts[key] - timer * steps, 0.0)
        parts["output_ns"] = max(parts["output_ns"] - timer * len(ids), 0.0)
        out |= {"isa": session.isa, "per_step_ns": {k.removesuffix("_ns"): parts[k] / steps for k in ("lookup_ns", "recurrence_ns", "activations_ns")}}
        out["output_per_message_ns"] = parts["output_ns"] / len(ids)
        units = int(session.units)
        macs = units * 4 * units
        gflops = single_core_gflops()
        out["floor"] = {
            "single_core_sgemm_gflops": gflops,
            "recurrent_macs_per_step": macs,
            "recurrence_floor_ns_per_step": 2 * macs / gflops,
            "kernel_floor_us_median_message": 2 * macs * float(np.median(tokens)) / gflops / 1e3,
        }
    return out


_SGEMM = """
import json, time, numpy as np
a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
a @ a
best = min((lambda b: (a @ a, time.perf_counter() - b)[1])(time.perf_counter()) for _ in range(5))
print(json.dumps(2 * 1024**3 / best / 1e9))
"""


def single_core_gflops() -> float:
    """This machine's single-core float32 matrix-product rate (OpenBLAS on one thread, one core): the
    FLOP rate a hand-tuned recurrent product could reach at best."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    done = subprocess.run([*pin, sys.executable, "-c", _SGEMM], capture_output=True, text=True, check=True, env=os.environ | {"OPENBLAS_NUM_THREADS": "1"})
    return float(done.stdout.strip())


def markdown(result: dict) -> str:
    load = result["machine"].get("load_after") or (0.0,)
    under_load = " — measured under load: ratios hold better than absolute figures." if max(load) > 1.5 else "."
    lines = [
        f"Measured {result['date'][:10]} on {result['machine']['cpu']} ({result['machine']['cores']} cores), Python {result['machine']['python']}; "
        f"`{result['command'].strip()}`; every figure the median of {result['repeats']} runs.",
        f"Load average (1, 5, 15 min) before: {_load(result['machine'].get('load_before'))}, after: {_load(result['machine'].get('load_after'))}{under_load}",
        "Processes run with nothing tuned (no thread setting in the environment); `pinned`: under `taskset -c 0`; `busy`: beside a process spinning on one core.",
        "",
        "**Targets**",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    lines += [f"| {t['figure']} | {t['ratio']:.3g} | {t['target']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    bucket_names = [f"{low}–{high}" for low, high in BUCKETS]
    lines += [
        "",
        "**Single message, end to end** (µs; by length: p50 for messages of that many real tokens)",
        "",
        "| system | backend | size | p50 | p95 | p99 | " + " | ".join(bucket_names) + " |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(BUCKETS),
    ]
    for r in result["latency"]:
        size = f"{r['size'] / 1e6:.2f} MB" if r.get("size") else "—"
        buckets = [f"{r[f'p50_us_{low}_{high}']:.0f}" if f"p50_us_{low}_{high}" in r else "—" for low, high in BUCKETS]
        lines.append(f"| {r['system']} | {r['backend']} | {size} | {_us(r['p50_us'])} | {_us(r['p95_us'])} | {_us(r['p99_us'])} | " + " | ".join(buckets) + " |")
    p = result["processes"]
    lines += ["", "**Processes**", "", "| process | backend / model | time | throughput | peak memory |", "|---|---|---:|---:|---:|"]
    for kind, r in p.items():
        what = r.get("backend", "") + (f" / {r['model']}" if r.get("model") else "")
        time_s = f"{r['seconds']:.2f} s" if "seconds" in r else f"{r['wall_seconds']:.2f} s (start to first probability)"
        rate = f"{r['messages_per_second']:,.0f} msg/s" if "messages_per_second" in r else "—"
        lines.append(f"| {kind} | {what} | {time_s} | {rate} | {r['peak_rss_mb']:.0f} MB |")
    lines += profile_markdown(result.get("profile") or {})
    lines += ["", "**Files**", "", "| file | size |", "|---|---:|"]
    lines += [f"| {name} | {size / 1e6:.2f} MB |" for name, size in result["sizes"].items() if name.startswith("model")]
    return "\n".join(lines) + "\n"


def profile_markdown(profile: dict) -> list[str]:
    if not profile:
        return []
    lines = [
        "",
        (
            f"**Where a message's time goes** ({profile['backend']} / {profile['model']}, one message at a time: each message's best of 3 rounds, median over messages; "
            f"median message: {profile['median_tokens']:.0f} real tokens)"
        ),
        "",
        "| part | µs per message |",
        "|---|---:|",
        f"| tokenize (text -> padded ids) | {profile['tokenize_us']:.1f} |",
        f"| kernel call (ids -> probability) | {profile['kernel_call_us']:.1f} |",
        f"| Python between them (predict_proba) | {profile['glue_us']:.1f} |",
        f"| **end to end** | **{profile['end_to_end_us']:.1f}** |",
    ]
    if "per_step_ns" in profile:
        step, floor = profile["per_step_ns"], profile["floor"]
        lines += [
            "",
            (
                f"Inside the kernel ({profile['isa']}), per real token: lookup {step['lookup']:.0f} ns, recurrent product {step['recurrence']:.0f} ns, "
                f"activations and cell update {step['activations']:.0f} ns; output layer {profile['output_per_message_ns']:.0f} ns a message."
            ),
            (
                f"Floor on this machine: the recurrent product is {floor['recurrent_macs_per_step']:,} multiply-adds a token; at the single-core "
                f"float32 matrix-product rate measured here ({floor['single_core_sgemm_gflops']:.0f} GFLOP/s) that is "
                f"{floor['recurrence_floor_ns_per_step']:.0f} ns a token, {floor['kernel_floor_us_median_message']:.1f} µs for the median message."
            ),
        ]
    return lines


def _load(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "?"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["latency"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [3, 2]})
    names = [f"{r['system']} [{r['backend']}]" for r in rows]
    left.barh(names, [r["p50_us"] for r in rows], color=["tab:red" if "Keras" in n else "tab:grey" if "bare" in n else "tab:blue" for n in names])
    left.set_xscale("log")
    left.invert_yaxis()
    left.set_xlabel("single message, p50 (µs, log scale)")
    left.tick_params(axis="y", labelsize=7)
    p = result["processes"]
    kinds = [k for k in p if "messages_per_second" in p[k]]
    right.bar(kinds, [p[k]["messages_per_second"] for k in kinds], color=["tab:red" if "keras" in k else "tab:blue" for k in kinds])
    right.set_ylabel("messages per second, 100,000 messages")
    right.tick_params(axis="x", labelrotation=20)
    fig.suptitle(f"smsguard, {result['date'][:10]}, {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _us(value: float) -> str:
    return f"{value / 1e3:.1f} ms" if value >= 1e4 else f"{value:.1f} µs"


if __name__ == "__main__":
    raise SystemExit(main())
