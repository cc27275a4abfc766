"""The performance suite: every figure side by side, in one run, so ratios hold on a noisy machine, on the model users
get (the default preset: fused, vocabulary format 2, normalising) with the word model (the tuned preset) as a second
row. Each figure is the median of repeated runs.

    python benchmarks/performance.py [--bundle DIR --run RUN_DIR] [--word-bundle DIR --word-run RUN_DIR] [--repeats 3] [--messages 300]

- single-message latency, end to end (raw text -> probability), p50/p95/p99, overall and by length (real tokens), of
  the default classifier and of every model x installed backend; beside Keras `model.predict` and a direct Keras call,
  and the bare interpreters (ONNX Runtime `run`, LiteRT `invoke`) on ready ids of the fixed-length float32 models;
- where a message's time goes in the default classifier: featurising in C, the kernel's parts, the Python around the
  one C call, and the floor of the recurrent product on this machine;
- cold start: a fresh process from its start to its first probability, smsguard vs TensorFlow+Keras;
- bulk throughput on 100,000 messages (the data set repeated), featurising included, on one core (`taskset -c 0`), on
  every core with nothing tuned, beside a process that keeps one core busy, and with workers=cores; beside Keras
  `predict(batch_size=1024)` on ids from the fastest featuriser there is (smsguard's own, in C);
- peak resident memory of each of those processes, and each model file's size.

Every process runs with nothing tuned: no thread setting in its environment (what a user gets). Without --bundle it
trains and exports the default model first, without --word-bundle the word model (a few minutes each). Writes
benchmarks/results/performance.json, performance.md and performance.png, with the date, the CPU and the load average
before and after (the machine may be shared: the load says how much to trust absolute figures).
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
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
BUCKETS = ((0, 5), (6, 10), (11, 20), (21, 30), (31, 40))  # real tokens per message
BULK_MESSAGES = 100_000
KERAS_CALLS = 40  # model.predict costs tens of milliseconds: fewer calls, same percentiles
MODELS = {"fused": "fused", "word": "tuned"}  # the rows, and the preset each is trained with: the default, the word LSTM alone
SEPARATOR = ":"  # a process kind names its model first: "fused:bulk-runtime-auto-1-default"


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
        from smsguard.runtime import Bundle
        from smsguard.train import load_model

        model = load_model(Path(run) / "model.keras")
        model.predict(Bundle.load(bundle).vocabulary.encode(["Are we still on for dinner tonight?"]), verbose=0)
        result = {"backend": f"keras {_keras_version()}"}
    elif kind.startswith("bulk-runtime"):
        result = bulk_runtime(kind, bundle, texts)
    elif kind.startswith("bulk-keras"):
        result = bulk_keras(bundle, run, texts)
    else:
        raise SystemExit(f"unknown measurement {kind}")
    result["peak_rss_mb"] = peak_rss_mb()
    result["inside_seconds"] = time.perf_counter() - started
    return result


def bulk_runtime(kind: str, bundle: str, texts: list[str]) -> dict:
    from smsguard.runtime import Classifier

    _, backend, workers_text, _ = bulk_kind(kind)
    workers = int(workers_text)
    classifier = Classifier.load(bundle, backend=backend)
    classifier.predict_proba(texts[:2048], workers=1)  # warm: compile caches, first allocations
    begin = time.perf_counter()
    classifier.predict_proba(texts, workers=workers)
    return {"backend": classifier.backend, "model": classifier.model.name, "seconds": time.perf_counter() - begin, "workers": workers}


def bulk_keras(bundle: str, run: str, texts: list[str]) -> dict:
    """Keras `predict(batch_size=1024)` on ids from the fastest featuriser there is: smsguard's vocabulary, in C (Keras has
    no n-gram featuriser of its own; for the word model it is faster than Keras' Tokenizer too)."""
    from smsguard.runtime import Bundle
    from smsguard.train import load_model

    vocabulary = Bundle.load(bundle).vocabulary
    model = load_model(Path(run) / "model.keras")

    def score(batch: list[str]) -> np.ndarray:
        return model.predict(vocabulary.encode(batch), batch_size=1024, verbose=0)

    score(texts[:2048])
    begin = time.perf_counter()
    score(texts)
    return {"backend": f"keras {_keras_version()}", "seconds": time.perf_counter() - begin, "workers": os.cpu_count()}


def _keras_version() -> str:
    import keras

    return str(keras.__version__)


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


def in_fresh_process(kind: str, paths: dict[str, tuple[Path, Path]], texts_file: str = "") -> dict:
    """`kind` ("MODEL:measurement") in a fresh process with nothing tuned (no thread setting in the environment: what a
    user gets); "pinned" kinds run under `taskset -c 0`, "busy" ones beside a process spinning on one core."""
    model, measurement = kind.split(SEPARATOR)
    bundle, run = paths[model]
    how = bulk_kind(measurement)[3] if measurement.startswith("bulk") else ""
    pin = ["taskset", "-c", "0"] if how == "pinned" and shutil.which("taskset") else []
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if how == "busy" else None
    begin = time.perf_counter()
    try:
        done = subprocess.run(
            [*pin, sys.executable, __file__, "--child", measurement, "--bundle", str(bundle), "--run", str(run), "--texts", texts_file],
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


def process_kinds(backends: list[str], npz_backends: list[str]) -> list[str]:
    """Every process measured: cold starts, bulk runs of both models (the fused default first), Keras's."""
    cores = os.cpu_count()
    kinds = ["fused:cold-runtime", *(f"fused:cold-runtime-{name}" for name in backends), "fused:cold-keras", "word:cold-runtime", "word:cold-keras"]
    for model in MODELS:
        kinds += [f"{model}:bulk-runtime-auto-1-{how}" for how in ("default", "pinned", "busy")] + [f"{model}:bulk-runtime-auto-{cores}-default"]
        kinds += [f"{model}:bulk-keras-{how}" for how in ("default", "pinned")]
    kinds += [f"fused:bulk-runtime-{name}-1-{how}" for name in npz_backends if name != "numpy" for how in ("default", "pinned")]
    return kinds


def run_processes(kinds: list[str], paths: dict[str, tuple[Path, Path]], texts_file: Path, repeats: int, messages: int) -> dict:
    """Every kind `repeats` times, interleaved (each round runs every kind once, so that a load that comes and goes weighs
    on all alike); each figure the median of its runs."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for round_number in range(repeats):
        for kind in kinds:
            print(f"* {kind} (round {round_number + 1} of {repeats})", file=sys.stderr, flush=True)
            runs[kind].append(in_fresh_process(kind, paths, str(texts_file) if SEPARATOR + "bulk" in kind else ""))
    processes = {}
    for kind, done in runs.items():
        merged = dict(done[0])
        for key in ("wall_seconds", "seconds", "peak_rss_mb"):
            if key in merged:
                merged[key] = float(np.median([r[key] for r in done]))
        if "seconds" in merged:
            merged["messages_per_second"] = messages / merged["seconds"]
        processes[kind.removeprefix("fused" + SEPARATOR)] = merged  # the default's kinds keep their names (headline.py reads them)
    return processes


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


class Latency:
    """The rows of the latency table, each the median over repeats of its percentiles (and by length)."""

    def __init__(self, lengths: dict[str, np.ndarray]) -> None:
        self.rows: list[dict] = []
        self.lengths = lengths  # real word tokens of each timed message, by model

    def add(self, model: str, system: str, backend: str, samples: np.ndarray, size: int | None, per_message: bool = True) -> None:
        runs = [percentiles(s) for s in samples]
        row = {"model": model, "system": system, "backend": backend, "size": size}
        row |= {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        if per_message:
            for low, high in BUCKETS:
                chosen = (self.lengths[model] >= low) & (self.lengths[model] <= high)
                if chosen.any():
                    row[f"p50_us_{low}_{high}"] = float(np.median(samples[:, chosen]))
        self.rows.append(row)
        print(f"  {model}: {system} [{backend}]: p50 {row['p50_us']:.1f} µs, p99 {row['p99_us']:.1f} µs", file=sys.stderr, flush=True)


def latency_table(paths: dict[str, tuple[Path, Path]], texts: list[str], repeats: int) -> list[dict]:
    from smsguard.runtime import Bundle

    bundles = {model: Bundle.load(bundle) for model, (bundle, _) in paths.items()}
    table = Latency({model: np.count_nonzero(b.vocabulary.encode(texts)[:, : b.vocabulary.config.maxlen], axis=1) for model, b in bundles.items()})
    for model, bundle in bundles.items():
        default_and_backends(table, model, bundle, texts, repeats, every_backend=model == "fused")
        bare_interpreters(table, model, bundle, texts, repeats)
        keras_calls(table, model, bundle, paths[model][1], texts, repeats)
    return table.rows


def default_and_backends(table: Latency, model: str, bundle, texts: list[str], repeats: int, every_backend: bool) -> None:
    from smsguard.runtime import Classifier, installed_backends, open_session

    default = Classifier.load(bundle.path)
    table.add(model, f"smsguard default ({default.model.name})", default.backend, time_each(lambda t: default.predict_proba([t]), texts, repeats), default.model.size)
    if not every_backend:
        return
    for entry in bundle.models.values():
        for info in installed_backends():
            if info.format == entry.format and not entry.name.startswith("model.mediapipe"):
                classifier = Classifier(bundle, open_session(info, bundle.model_path(entry), entry))
                table.add(model, entry.name, info.name, time_each(lambda t, classifier=classifier: classifier.predict_proba([t]), texts, repeats), entry.size)


def bare_interpreters(table: Latency, model: str, bundle, texts: list[str], repeats: int) -> None:
    """ONNX Runtime `run` and LiteRT `invoke` of the fixed-length float32 models on ids made beforehand (every word step)."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    ids = bundle.vocabulary.encode(texts)
    rows = [ids[i : i + 1] for i in range(len(ids))]
    width = ids.shape[1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(bundle.model_path(bundle.model("model.float32.onnx"))), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    table.add(model, f"bare ONNX Runtime run, model.float32.onnx, {width} ready ids", "onnxruntime", time_each(lambda x: session.run(None, {name: x}), rows, repeats), None)
    interpreter = Interpreter(model_path=str(bundle.model_path(bundle.model("model.float32.tflite"))), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def invoke(x):
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    table.add(model, f"bare LiteRT invoke, model.float32.tflite, {width} ready ids", "litert", time_each(invoke, rows, repeats), None)


def keras_calls(table: Latency, model: str, bundle, run_dir: Path, texts: list[str], repeats: int) -> None:
    import tensorflow as tf

    from smsguard.train import load_model

    tf.get_logger().setLevel("ERROR")
    keras_model = load_model(run_dir / "model.keras")
    encode = bundle.vocabulary.encode
    version = f"keras {_keras_version()}"
    predict = time_each(lambda t: keras_model.predict(encode([t]), verbose=0), texts[:KERAS_CALLS], 1)
    table.add(model, "Keras model.predict", version, np.repeat(predict, repeats, axis=0), None, per_message=False)
    call = time_each(lambda t: keras_model(encode([t]), training=False).numpy(), texts[:KERAS_CALLS], 1)
    table.add(model, "Keras direct call model(x)", version, np.repeat(call, repeats, axis=0), None, per_message=False)


# ---- where a message's time goes, and the floor ----------------------------------------------------


def step_profile(bundle_dir: Path, texts: list[str], repeats: int) -> dict:
    """One message at a time through the default classifier (native): end to end (`predict_proba([text])`), the one C
    call it makes (`Model.run_texts`: featurising and the kernel), featurising alone (`Featuriser.encode`, and the
    Python that prepares a text that is not ASCII), the kernel on ready ids, and the kernel's own clock of its parts;
    each message's best of the rounds, the median over messages. Beside it, the floor this machine allows: the
    recurrent product's multiply-adds at the single-core matrix-product rate measured here."""
    from smsguard.runtime import Classifier

    classifier = Classifier.load(bundle_dir)
    session, vocabulary = classifier.session, classifier.vocabulary
    out: dict = {"backend": classifier.backend, "model": classifier.model.name}
    model, featuriser = getattr(session, "_model", None), vocabulary.featuriser
    if classifier.backend != "native" or model is None or featuriser is None:
        return out | {"skipped": f"the default classifier runs {classifier.backend}, not the native kernel with its featuriser"}
    ids = [classifier.encode([t]) for t in texts]
    inputs = [vocabulary.featuriser_input([t]) for t in texts]
    probability, row = np.empty(1, dtype=np.float32), np.empty((1, vocabulary.width), dtype=np.int32)

    def best_us(call, items) -> np.ndarray:  # each message's best of the rounds: load spikes drop out
        return time_each(call, items, max(repeats, 3)).min(axis=0)

    parts = {
        "end_to_end_us": best_us(lambda t: classifier.predict_proba([t]), texts),
        "one_c_call_us": best_us(lambda x: model.run_texts(featuriser, x, probability), inputs),
        "featurise_us": best_us(lambda x: featuriser.encode(x, row), inputs),
        "prepare_us": best_us(vocabulary.featuriser_input, [[t] for t in texts]),
        "kernel_call_us": best_us(lambda x: model.run(x, probability), ids),
    }
    out |= {key: float(np.median(values)) for key, values in parts.items()}
    out["python_us"] = float(np.median(parts["end_to_end_us"] - parts["one_c_call_us"]))
    tokens = np.array([int(np.count_nonzero(i[0, : vocabulary.config.maxlen])) for i in ids])
    out |= {"median_tokens": float(np.median(tokens)), "not_ascii": sum(not t.isascii() for t in texts), "isa": session.isa}
    out |= kernel_parts(model, ids, tokens, int(session.units))
    return out


def kernel_parts(model, ids: list[np.ndarray], tokens: np.ndarray, units: int) -> dict:
    """The kernel's own clock (`Model.profile`): lookup, recurrent product, activations per real token; the output layer
    and a fused model's n-gram branch per message; one clock reading's cost taken out of each part."""
    parts: dict[str, float] = {}
    probability = np.empty(1, dtype=np.float32)
    for row in ids:
        for key, value in model.profile(row, probability).items():
            parts[key] = parts.get(key, 0.0) + value
    steps = max(int(tokens.sum()), 1)
    timer = parts.pop("timer_ns") / len(ids)
    for key in ("lookup_ns", "recurrence_ns", "activations_ns"):
        parts[key] = max(parts[key] - timer * steps, 0.0)
    out = {"per_step_ns": {k.removesuffix("_ns"): parts[k] / steps for k in ("lookup_ns", "recurrence_ns", "activations_ns")}}
    out["output_per_message_ns"] = max(parts["output_ns"] - timer * len(ids), 0.0) / len(ids)
    if "ngram_ns" in parts:
        out["ngram_per_message_ns"] = max(parts["ngram_ns"] - timer * len(ids), 0.0) / len(ids)
    macs, gflops = units * 4 * units, single_core_gflops()
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


# ---- the whole suite -------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, work: Path) -> dict[str, tuple[Path, Path]]:
    """(bundle, run folder) of each model: as given, or trained and exported here from its preset."""
    given = {"fused": (args.bundle, args.run), "word": (args.word_bundle, args.word_run)}
    paths = {}
    for model, preset in MODELS.items():
        bundle, run = given[model]
        if bundle and not run:
            raise SystemExit(f"--{'' if model == 'fused' else 'word-'}bundle needs its run folder (--{'' if model == 'fused' else 'word-'}run), for the Keras model")
        if not bundle:
            from smsguard.export import ExportConfig, export
            from smsguard.train import TrainConfig, train

            print(f"* Training and exporting the {model} model (--preset {preset})", file=sys.stderr, flush=True)
            run, bundle = work / f"{model}-run", work / f"{model}-bundle"
            train(TrainConfig.from_preset(preset, data=args.data), run)
            export(run, bundle, ExportConfig(data=args.data))
        paths[model] = (Path(bundle), Path(run))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", help="the default (fused) bundle; default: train and export one")
    parser.add_argument("--run", help="the run folder --bundle was exported from (for the Keras model)")
    parser.add_argument("--word-bundle", help="a word model's bundle (the tuned preset); default: train and export one")
    parser.add_argument("--word-run", help="the run folder --word-bundle was exported from")
    parser.add_argument("--data", help="the SMS Spam Collection (default: ../shared/data)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every measurement; figures are medians")
    parser.add_argument("--messages", type=int, default=300, help="test messages timed one by one")
    parser.add_argument("--bulk", type=int, default=BULK_MESSAGES, help="messages of the bulk runs (the data set repeated)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--texts", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.bundle, args.run, args.texts)))
        return 0
    started, load_before = time.perf_counter(), os.getloadavg()  # 1, 5 and 15 minute load averages: figures taken under load say so
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        paths = prepare(args, work)
        result = measure(args, paths, work)
    result |= {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("performance.py"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "load_before": load_before, "load_after": os.getloadavg()},
        "repeats": args.repeats,
    }
    result["targets"] = targets(result)
    plot(result, RESULTS / "performance.png")
    write_results(RESULTS, "performance", result, markdown(result), f"{time.perf_counter() - started:.0f} s, and performance.png")
    return 0


def measure(args: argparse.Namespace, paths: dict[str, tuple[Path, Path]], work: Path) -> dict:
    from smsguard.runtime import installed_backends
    from smsguard.train import read_split

    dataset, split = read_split(paths["fused"][1] / "split.json", args.data)
    rng = np.random.default_rng(0)
    test_texts = [dataset.texts[i] for i in rng.choice(split.test, min(args.messages, len(split.test)), replace=False)]
    bulk = list(dataset.texts) * (args.bulk // len(dataset.texts) + 1)
    texts_file = work / "bulk.json"
    texts_file.write_text(json.dumps(bulk[: args.bulk]))
    print("* Single-message latency", file=sys.stderr)
    latency = latency_table(paths, test_texts, args.repeats)
    print("* Where a message's time goes, and the floor", file=sys.stderr)
    profile = step_profile(paths["fused"][0], test_texts, args.repeats)
    backends = [b.name for b in installed_backends()]
    npz = [b.name for b in installed_backends() if b.format == "npz"]
    processes = run_processes(process_kinds(backends, npz), paths, texts_file, args.repeats, args.bulk)
    bundle, run = paths["fused"]
    sizes = {p.name: p.stat().st_size for p in sorted(bundle.iterdir())} | {"model.keras": (run / "model.keras").stat().st_size}
    return {"latency": latency, "processes": processes, "profile": profile, "sizes": sizes, "bulk_messages": args.bulk}


def targets(result: dict) -> list[dict]:
    """Issue 22's targets, for the default (fused) model and, as a second row, the word model; then the standing ones:
    Keras's p50 against ours, cold start and memory against TensorFlow+Keras, workers=cores in bulk."""
    rows, p, cores = result["latency"], result["processes"], result["machine"]["cores"]

    def row(model: str, prefix: str) -> dict:
        return next(r for r in rows if r["model"] == model and r["system"].startswith(prefix))

    out = []
    for model in MODELS:
        kind = (lambda k: k) if model == "fused" else (lambda k: f"word{SEPARATOR}{k}")
        label = "" if model == "fused" else ", word model"

        def rate(k: str, kind=kind) -> float:
            return p[kind(k)]["messages_per_second"]

        out += [
            (f"p50 text -> probability / bare ONNX Runtime run on ready ids (float32){label}", row(model, "smsguard default")["p50_us"] / row(model, "bare ONNX")["p50_us"], "<=", 0.12),
            (f"bulk 100k messages, 1 core (taskset) / Keras on 1 core{label}", rate("bulk-runtime-auto-1-pinned") / rate("bulk-keras-pinned"), ">=", 10),
            (f"bulk, {cores} cores, nothing tuned / Keras{label}", rate("bulk-runtime-auto-1-default") / rate("bulk-keras-default"), ">=", 10),
            (f"bulk beside a busy process / Keras, idle{label}", rate("bulk-runtime-auto-1-busy") / rate("bulk-keras-default"), ">=", 5),
        ]
    out += [
        ("Keras model.predict p50 / default p50", row("fused", "Keras model.predict")["p50_us"] / row("fused", "smsguard default")["p50_us"], ">=", 1000),
        ("cold start, runtime / TensorFlow+Keras", p["cold-runtime"]["wall_seconds"] / p["cold-keras"]["wall_seconds"], "<=", 0.05),
        ("peak memory, runtime / Keras (cold-start processes)", p["cold-runtime"]["peak_rss_mb"] / p["cold-keras"]["peak_rss_mb"], "<=", 0.08),
        (f"bulk throughput, workers={cores} / Keras", p[f"bulk-runtime-auto-{cores}-default"]["messages_per_second"] / p["bulk-keras-default"]["messages_per_second"], ">=", 5),
    ]
    for kind in (k for k in p if k.startswith("cold-runtime-")):
        name = kind.removeprefix("cold-runtime-")
        out.append((f"cold start, {name} backend / TensorFlow+Keras", p[kind]["wall_seconds"] / p["cold-keras"]["wall_seconds"], "<=", 0.05))
        out.append((f"peak memory, {name} backend / Keras", p[kind]["peak_rss_mb"] / p["cold-keras"]["peak_rss_mb"], "<=", 0.08))
    return [{"figure": name, "ratio": ratio, "target": f"{op} {goal:g}", "met": ratio <= goal if op == "<=" else ratio >= goal} for name, ratio, op, goal in out]


def markdown(result: dict) -> str:
    machine = result["machine"]
    under_load = " — measured under load: ratios hold better than absolute figures." if max(machine["load_before"] + machine["load_after"]) > 1.0 else "."
    lines = [
        f"Measured {result['date'][:16].replace('T', ' ')} UTC on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}; "
        f"`{result['command'].strip()}`; every figure the median of {result['repeats']} runs.",
        f"Load average (1, 5, 15 min) before: {_load(machine['load_before'])}, after: {_load(machine['load_after'])}{under_load}",
        "Models: **fused**, the default (word LSTM + character n-grams, vocabulary format 2, normalising); **word**, the word LSTM alone "
        "(tuned preset). Processes run with nothing tuned (no thread setting in the environment); `pinned`: under `taskset -c 0`; "
        "`busy`: beside a process spinning on one core. Keras gets the fastest featuriser there is (smsguard's, in C).",
        "",
        "**Targets**",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    lines += [f"| {t['figure']} | {t['ratio']:.3g} | {t['target']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    lines += latency_markdown(result["latency"])
    lines += ["", "**Processes**", "", "| process | backend / model | time | throughput | peak memory |", "|---|---|---:|---:|---:|"]
    for kind, r in result["processes"].items():
        what = r.get("backend", "") + (f" / {r['model']}" if r.get("model") else "")
        time_s = f"{r['seconds']:.2f} s" if "seconds" in r else f"{r['wall_seconds']:.2f} s (start to first probability)"
        rate = f"{r['messages_per_second']:,.0f} msg/s" if "messages_per_second" in r else "—"
        name = kind if SEPARATOR in kind else f"fused{SEPARATOR}{kind}"
        lines.append(f"| {name} | {what} | {time_s} | {rate} | {r['peak_rss_mb']:.0f} MB |")
    lines += profile_markdown(result.get("profile") or {})
    lines += ["", "**Files** (the fused default's)", "", "| file | size |", "|---|---:|"]
    lines += [f"| {name} | {size / 1e6:.2f} MB |" for name, size in result["sizes"].items() if name.startswith("model")]
    return "\n".join(lines) + "\n"


def latency_markdown(rows: list[dict]) -> list[str]:
    bucket_names = [f"{low}–{high}" for low, high in BUCKETS]
    lines = [
        "",
        "**Single message, end to end** (µs; by length: p50 for messages of that many real word tokens)",
        "",
        "| model | system | backend | size | p50 | p95 | p99 | " + " | ".join(bucket_names) + " |",
        "|---|---|---|---:|---:|---:|---:|" + "---:|" * len(BUCKETS),
    ]
    for r in rows:
        size = f"{r['size'] / 1e6:.2f} MB" if r.get("size") else "—"
        buckets = [f"{r[f'p50_us_{low}_{high}']:.0f}" if f"p50_us_{low}_{high}" in r else "—" for low, high in BUCKETS]
        lines.append(f"| {r['model']} | {r['system']} | {r['backend']} | {size} | {_us(r['p50_us'])} | {_us(r['p95_us'])} | {_us(r['p99_us'])} | " + " | ".join(buckets) + " |")
    return lines


def profile_markdown(profile: dict) -> list[str]:
    if not profile or "skipped" in profile:
        return ["", f"Where a message's time goes: not measured ({profile.get('skipped', 'no profile')})."] if profile else []
    lines = [
        "",
        (
            f"**Where a message's time goes** ({profile['backend']} / {profile['model']}, fused default, one message at a time: each message's best of "
            f"the rounds, median over messages; median message: {profile['median_tokens']:.0f} real word tokens; {profile['not_ascii']} of the messages are not ASCII)"
        ),
        "",
        "| part | µs per message |",
        "|---|---:|",
        f"| Python before the C call (`featuriser_input`: a non-ASCII text normalised and lowered here) | {profile['prepare_us']:.2f} |",
        f"| featurise in C (`Featuriser.encode`: join, word ids, n-gram ids) | {profile['featurise_us']:.2f} |",
        f"| the kernel on ready ids (`Model.run`) | {profile['kernel_call_us']:.2f} |",
        f"| **the one C call** (`Model.run_texts`: featurise and kernel) | **{profile['one_c_call_us']:.2f}** |",
        f"| Python around it (`predict_proba` minus the C call) | {profile['python_us']:.2f} |",
        f"| **end to end** (`predict_proba([text])`) | **{profile['end_to_end_us']:.2f}** |",
    ]
    step, floor = profile["per_step_ns"], profile["floor"]
    ngram = f"; the n-gram gather-mean and fusion {profile['ngram_per_message_ns']:.0f} ns" if "ngram_per_message_ns" in profile else ""
    lines += [
        "",
        (
            f"Inside the kernel ({profile['isa']}), per real word token: lookup {step['lookup']:.0f} ns, recurrent product {step['recurrence']:.0f} ns, "
            f"activations and cell update {step['activations']:.0f} ns; a message's output layer {profile['output_per_message_ns']:.0f} ns{ngram}."
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 7), gridspec_kw={"width_ratios": [3, 2]})
    names = [f"{r['model']}: {r['system']} [{r['backend']}]" for r in rows]
    left.barh(names, [r["p50_us"] for r in rows], color=["tab:red" if "Keras" in n else "tab:grey" if "bare" in n else "tab:blue" for n in names])
    left.set_xscale("log")
    left.invert_yaxis()
    left.set_xlabel("single message, p50 (µs, log scale)")
    left.tick_params(axis="y", labelsize=6)
    p = result["processes"]
    kinds = [k for k in p if "messages_per_second" in p[k]]
    right.barh(kinds, [p[k]["messages_per_second"] for k in kinds], color=["tab:red" if "keras" in k else "tab:blue" for k in kinds])
    right.invert_yaxis()
    right.set_xlabel(f"messages per second, {result['bulk_messages']:,} messages")
    right.tick_params(axis="y", labelsize=6)
    fig.suptitle(f"smsguard, {result['date'][:10]}, {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _us(value: float) -> str:
    return f"{value / 1e3:.1f} ms" if value >= 1e4 else f"{value:.1f} µs"


if __name__ == "__main__":
    raise SystemExit(main())
