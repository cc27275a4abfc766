"""`smsguard bench`: end-to-end latency (raw text -> probability) of every model with every installed
backend, beside Keras `model.predict` on the same message; load and first-prediction time; file sizes.

Warm up, then time; one plain line per figure; JSON for programs and a markdown table for people."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from smsguard import __version__
from smsguard import _console as console
from smsguard._files import sha256_of
from smsguard._staging import write_atomic, write_json
from smsguard.runtime import Bundle, Classifier, ConfigError, SmsguardError, installed_backends, native_kernel, open_session


@dataclass(frozen=True)
class BenchConfig:
    """Every field is a `smsguard bench` flag."""

    runs: int = 1000  # timed single-message predictions per model, after warm-up
    warmup: int = 50  # untimed predictions first: caches, allocations, lazy kernels
    keras_model: str | None = None  # the bundle's source .keras file (RUN_DIR/model.keras), to time beside; checked against the manifest's hash
    keras_runs: int = 50  # model.predict costs tens of milliseconds a call
    threads: int = 8  # throughput is also measured with 1, 2, 4 ... up to this many threads sharing one Classifier
    message: str | None = None  # the message timed; default: the golden message of median length
    json: str | None = None  # write the results here as JSON
    markdown: str | None = None  # write the results here as a markdown table

    def __post_init__(self) -> None:
        for name in ("runs", "keras_runs"):
            if getattr(self, name) < 10:
                msg = f"{name} must be at least 10 to give a p99, found {getattr(self, name)}"
                raise ConfigError(msg)
        if self.warmup < 0:
            msg = f"warmup must be 0 or more, found {self.warmup}"
            raise ConfigError(msg)
        if self.threads < 1:
            msg = f"threads must be at least 1, found {self.threads}"
            raise ConfigError(msg)


@dataclass(frozen=True)
class Throughput:
    system: str  # model file
    backend: str
    threads: int  # sharing one Classifier, each predicting one message at a time
    messages_per_s: float
    messages: int  # predicted in the timed span


@dataclass(frozen=True)
class Timing:
    system: str  # model file, or "Keras model.predict"
    backend: str
    size: int | None  # bytes on disk
    load_ms: float  # from nothing to a ready model (hash check included)
    first_ms: float  # the first prediction after loading
    p50_us: float
    p95_us: float
    p99_us: float
    runs: int


def run_benchmark(bundle_dir: Path, config: BenchConfig) -> dict:
    bundle = Bundle.load(bundle_dir)
    if config.keras_model:
        _check_source_model(bundle, Path(config.keras_model))  # before any timing: it refuses in a second, not a minute
    message = config.message if config.message is not None else _median_message(bundle)
    tokens = int(np.count_nonzero(bundle.vocabulary.encode([message])))
    console.step(f"Benchmarking {bundle_dir}: one message of {len(message)} characters ({tokens} tokens), {config.runs} runs after {config.warmup} warm-up")
    kernel = native_kernel()
    if not kernel.available:
        console.info(f"  note: {kernel.problem}")
    timings, throughputs = [], []
    for entry in bundle.models.values():
        for info in installed_backends():
            if info.format != entry.format:
                continue
            started = time.perf_counter()
            session = open_session(info, bundle.model_path(entry), entry)
            classifier = Classifier(bundle, session)
            load_ms = (time.perf_counter() - started) * 1e3
            timings.append(_time(lambda classifier=classifier: classifier.predict_proba([message]), entry.name, info.name, entry.size, load_ms, config.warmup, config.runs))
            console.info(f"  {_line(timings[-1])}")
            scaling = thread_scaling(classifier, message, config.threads, config.runs)
            throughputs += scaling
            console.info("      " + "; ".join(f"{t.threads} thread{'s' * (t.threads > 1)} {t.messages_per_s:,.0f} msg/s" for t in scaling))
    keras = _keras_timing(bundle, config, message)
    if keras:
        timings.append(keras)
        console.info(f"  {_line(keras)}")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": _machine(),
        "bundle": str(bundle_dir),
        "message": message,
        "message_tokens": tokens,
        "results": [asdict(t) for t in timings],
        "throughput": [asdict(t) for t in throughputs],
        "update": update_timings(bundle),
    }
    table = markdown_table(result)
    print(table)
    if config.json:
        write_json(Path(config.json), result)
    if config.markdown:
        write_atomic(Path(config.markdown), table.encode("utf-8"))
    return result


def update_timings(bundle: Bundle) -> dict[str, float | None]:
    """What taking a model update costs on this device: checking an Ed25519 signature over this bundle's
    manifest (when `cryptography` is installed), and `Classifier.reload` of a copy of the bundle with a
    higher serial (load, every file's hash, the golden vectors replayed in the backend, the swap)."""
    import shutil
    import tempfile

    from smsguard.runtime.bundle import MANIFEST_NAME

    manifest_bytes = (bundle.path / MANIFEST_NAME).read_bytes()
    verify_ms = None
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        console.info("  (signature check not timed: pip install 'smsguard[sign]')")
    else:
        key = Ed25519PrivateKey.generate()
        signature, public = key.sign(manifest_bytes), key.public_key()
        runs = 200
        started = time.perf_counter()
        for _ in range(runs):
            public.verify(signature, manifest_bytes)
        verify_ms = (time.perf_counter() - started) * 1e3 / runs
    classifier = Classifier.load(bundle.path)
    with tempfile.TemporaryDirectory() as work:
        newer = Path(work) / "newer"
        shutil.copytree(bundle.path, newer)
        data = json.loads(manifest_bytes)
        data["serial"] = bundle.manifest.serial + 1
        write_json(newer / MANIFEST_NAME, data)
        started = time.perf_counter()
        classifier.reload(newer)
        reload_ms = (time.perf_counter() - started) * 1e3
    signature_text = f"{verify_ms:.3f} ms" if verify_ms is not None else "not timed"
    console.info(
        f"  update: signature check {signature_text} (Ed25519 over the {len(manifest_bytes) / 1e3:.0f} kB manifest); "
        f"reload {reload_ms:.0f} ms ({classifier.model.name} [{classifier.backend}]: load, every file's hash, golden vectors, swap)"
    )
    return {"signature_verify_ms": verify_ms, "reload_ms": reload_ms}


def markdown_table(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"Measured {result['date'][:10]} on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}, "
        f"one message of {len(result['message'])} characters ({result['message_tokens']} tokens), end to end (text -> probability):",
        "",
        "| model | backend | size | load | first call | p50 | p95 | p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in result["results"]:
        size = f"{t['size'] / 1e6:.2f} MB" if t["size"] else "—"
        lines.append(
            f"| {t['system']} | {t['backend']} | {size} | {t['load_ms']:.0f} ms | {t['first_ms']:.1f} ms | "
            f"{format_duration(t['p50_us'])} | {format_duration(t['p95_us'])} | {format_duration(t['p99_us'])} |"
        )
    throughput = result.get("throughput", [])
    if throughput:
        counts = sorted({t["threads"] for t in throughput})
        lines += [
            "",
            f"Throughput, messages per second, one message per call, with 1 to {counts[-1]} threads sharing one Classifier "
            f"({machine['cores']} cores):",
            "",
            "| model | backend | " + " | ".join(f"{n} thread{'s' * (n > 1)}" for n in counts) + " |",
            "|---|---|" + "---:|" * len(counts),
        ]
        for system, backend in dict.fromkeys((t["system"], t["backend"]) for t in throughput):
            rates = {t["threads"]: t["messages_per_s"] for t in throughput if (t["system"], t["backend"]) == (system, backend)}
            lines.append(f"| {system} | {backend} | " + " | ".join(f"{rates[n]:,.0f}" for n in counts) + " |")
    return "\n".join(lines) + "\n"


def thread_scaling(classifier: Classifier, message: str, max_threads: int, calls: int) -> list[Throughput]:
    """Messages per second when 1, 2, 4 ... `max_threads` threads share `classifier`: `calls` x
    `max_threads` one-message predictions split among them, all starting together, timed to the last."""
    counts = sorted({*(2**i for i in range(max_threads.bit_length()) if 2**i <= max_threads), max_threads})
    results = []
    for threads in counts:
        start = threading.Barrier(threads + 1)
        share = calls * max_threads // threads

        def work(start: threading.Barrier = start, share: int = share) -> None:
            start.wait()
            for _ in range(share):
                classifier.predict_proba([message])

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        results.append(Throughput(classifier.model.name, classifier.backend, threads, threads * share / elapsed, threads * share))
    return results


def _time(call, system: str, backend: str, size: int | None, load_ms: float, warmup: int, runs: int) -> Timing:
    started = time.perf_counter()
    call()
    first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(warmup):
        call()
    samples = np.empty(runs)
    for i in range(runs):
        started = time.perf_counter_ns()
        call()
        samples[i] = (time.perf_counter_ns() - started) / 1e3
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return Timing(system, backend, size, load_ms, first_ms, float(p50), float(p95), float(p99), runs)


def _keras_timing(bundle: Bundle, config: BenchConfig, message: str) -> Timing | None:
    if not config.keras_model:
        console.info("  (Keras not timed: pass --keras-model RUN_DIR/model.keras)")
        return None
    path = Path(config.keras_model)
    try:
        import keras
        import tensorflow as tf

        from smsguard.train import load_model
    except ImportError:
        console.info("  (Keras not timed: TensorFlow is not installed; pip install 'smsguard[train]')")
        return None
    tf.get_logger().setLevel("ERROR")  # model.predict in a loop warns about retracing, by design here
    started = time.perf_counter()
    model = load_model(path)
    load_ms = (time.perf_counter() - started) * 1e3
    vocabulary = bundle.vocabulary
    keras.config.disable_interactive_logging()
    timing = _time(lambda: model.predict(vocabulary.encode([message]), verbose=0), "Keras model.predict", f"keras {keras.__version__}", path.stat().st_size, load_ms, min(config.warmup, 5), config.keras_runs)
    return timing


def _check_source_model(bundle: Bundle, path: Path) -> None:
    """Refuse a Keras file that is missing or is not the one the bundle was exported from: timing
    another model beside this bundle's would compare nothing."""
    if not path.is_file():
        msg = f"Keras model '{path}' does not exist; pass --keras-model RUN_DIR/model.keras"
        raise SmsguardError(msg)
    source = bundle.manifest.source
    if source is not None and sha256_of(path) != source.model_sha256:
        msg = (
            f"Keras model '{path}' is not the one bundle '{bundle.path}' was exported from "
            f"(run '{source.run}', {source.model} sha256 {source.model_sha256[:12]}…); pass that run's {source.model}"
        )
        raise SmsguardError(msg)


def _median_message(bundle: Bundle) -> str:
    texts = sorted((g.text for g in bundle.golden if g.text), key=len)
    if not texts:
        return "Are we still on for dinner tonight?"
    return texts[len(texts) // 2]


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "smsguard": __version__}


def format_duration(value: float) -> str:
    """Microseconds as people read them: "29 µs", or "58.6 ms" from 10 ms up."""
    return f"{value / 1e3:.1f} ms" if value >= 1e4 else f"{value:.0f} µs"


def _line(t: Timing) -> str:
    return f"{t.system} [{t.backend}]: p50 {format_duration(t.p50_us)}, p95 {format_duration(t.p95_us)}, p99 {format_duration(t.p99_us)}; load {t.load_ms:.0f} ms, first call {t.first_ms:.1f} ms"

