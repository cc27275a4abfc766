"""The runtimes of a bundle on other platforms beside the Python native backend, on the same bundle, model files
and messages: the time of one message end to end (text in, probability out) after a warm-up, as p50/p90/p99, and
bulk messages per second; and the size of each port. Target (issue 17): the JVM's p50 at most 2x the native
backend's; Node's at most 3x; a browser figure reported.

Every port is timed by its own `--bench` mode, one protocol for all (the client command-line contract): read the
messages (one JSON string a line), warm up on all of them for at least 2 s, then `rounds` passes timing each
message alone, and the same passes timed whole for the bulk rate. The native backend is timed the same way here,
in process (`Classifier.predict_proba([text])`). Runtimes take turns, `--repeats` times, and each figure is the
median of its repeats, so that a burst of load from other processes on a shared machine falls on all of them.

    python benchmarks/ports.py BUNDLE [--data PATH] [--rounds 5] [--repeats 3] [--sample N]

Adding a port: a function in PORTS that returns its `--bench` command (or None when it is not built), and its
files in SIZES. A browser runner returns the same JSON record from the page (see `browser_record`).
Writes benchmarks/results/ports.json and ports.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
JAR = ROOT / "clients" / "java" / "build" / "smsguard-client.jar"
NODE_CLI = ROOT / "clients" / "js" / "bin" / "smsguard-client.mjs"
WARM_UP_S = 2.0  # the ports' own warm-up: every message, for at least this long
TARGETS = {"java": 2.0, "node": 3.0}  # the issue's; the plain-JS fallback and the browser are reported, not held to one  # p50 / the native backend's p50, at most


def java_command(bundle: Path, model: str, rounds: int) -> list[str] | None:
    """The JVM as a user runs it: `java -jar`, no flags (what an app gets with nothing tuned)."""
    if not JAR.is_file() or shutil.which("java") is None:
        return None
    return ["java", "-jar", str(JAR), str(bundle), "--model", model, "--bench", "--rounds", str(rounds)]


def node_command(kernel: str) -> Callable[[Path, str, int], list[str] | None]:
    """The Node client with one LSTM kernel: "wasm" (WebAssembly SIMD, the default where WebAssembly runs) or "js"
    (the plain-JavaScript fallback for pages whose policy forbids WebAssembly)."""

    def command(bundle: Path, model: str, rounds: int) -> list[str] | None:
        if not NODE_CLI.is_file() or shutil.which("node") is None:
            return None
        return ["node", str(NODE_CLI), str(bundle), "--model", model, "--kernel", kernel, "--bench", "--rounds", str(rounds)]

    return command


PORTS: dict[str, Callable[[Path, str, int], list[str] | None]] = {"java": java_command, "node": node_command("wasm"), "node-js": node_command("js")}
SIZES: dict[str, Path] = {
    "java: smsguard-client.jar (library and command line)": JAR,
    "javascript: smsguard.mjs (the module)": ROOT / "clients" / "js" / "smsguard.mjs",
}


def browser_record(bundle: Path, model: str, messages: list[str], rounds: int) -> dict[str, Any] | None:
    """The same record from the module in headless Chromium (Debian's), on the demo page that `smsguard serve-web`
    serves on 127.0.0.1, every other request blocked; None without chromium or the page's npm packages."""
    from smsguard._serve_web import make_server, serve_in_thread
    from smsguard.runtime import Bundle

    chromium = shutil.which("chromium")
    if chromium is None or not (ROOT / "web" / "node_modules").is_dir() or shutil.which("node") is None:
        return None
    if Bundle.load(bundle).manifest.recommended.get("npz") != model:
        return None  # the demo page runs the bundle's recommended .npz
    server = make_server(bundle, 0)
    serve_in_thread(server)
    try:
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "texts.json").write_text(json.dumps(messages))
            done = subprocess.run(
                ["node", str(ROOT / "web" / "test" / "js-check.mjs"), f"http://127.0.0.1:{server.server_address[1]}/", "-", str(Path(work) / "texts.json"), "-",
                 chromium, str(rounds)],
                capture_output=True, text=True, check=True, timeout=1800,
            )
    finally:
        server.shutdown()
        server.server_close()
    result = json.loads(done.stdout)
    timing = result["timing"]
    return {"runtime": f"{result['version'].replace('/', ' ')} headless, smsguard.mjs ({timing['kernel']})",
            **{key: timing[key] for key in ("load_ms", "p50_us", "p90_us", "p99_us", "bulk_msgs_per_s")}}


def native_record(bundle: Path, model: str, messages: list[str], rounds: int) -> dict[str, Any]:
    """The `--bench` protocol in this process, on the native backend: predict_proba of one message, end to end."""
    from smsguard.runtime import Classifier

    started = time.perf_counter()
    classifier = Classifier.load(bundle, backend="native", model=model)
    load_ms = (time.perf_counter() - started) * 1e3
    warm_start = time.perf_counter()
    while time.perf_counter() - warm_start < WARM_UP_S:
        for text in messages:
            classifier.predict_proba([text])
    single, whole = [], []
    for _ in range(rounds):
        for text in messages:
            begin = time.perf_counter_ns()
            classifier.predict_proba([text])
            single.append(time.perf_counter_ns() - begin)
        begin = time.perf_counter_ns()
        for text in messages:
            classifier.predict_proba([text])
        whole.append(time.perf_counter_ns() - begin)
    p50, p90, p99 = np.percentile(np.array(single) / 1e3, [50, 90, 99])
    return {
        "runtime": f"python {platform.python_version()} native backend",
        "model": model,
        "messages": len(messages),
        "rounds": rounds,
        "load_ms": round(load_ms, 1),
        "p50_us": round(float(p50), 2),
        "p90_us": round(float(p90), 2),
        "p99_us": round(float(p99), 2),
        "bulk_msgs_per_s": round(len(messages) / (float(np.median(whole)) / 1e9), 1),
    }


def port_record(command: list[str], messages_file: Path) -> dict[str, Any]:
    with open(messages_file, "rb") as stdin:
        done = subprocess.run(command, stdin=stdin, capture_output=True, timeout=1800, check=False)
    if done.returncode != 0:
        msg = f"{command[0]} --bench failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}"
        raise RuntimeError(msg)
    return json.loads(done.stdout)


def measure(bundle: Path, models: list[str], messages: list[str], rounds: int, repeats: int) -> dict[str, dict[str, list[dict]]]:
    """{model: {runtime: [record per repeat]}}, the runtimes taking turns."""
    records: dict[str, dict[str, list[dict]]] = {model: {} for model in models}
    with tempfile.TemporaryDirectory() as work:
        messages_file = Path(work) / "messages.jsonl"
        messages_file.write_text("".join(json.dumps(text, ensure_ascii=True) + "\n" for text in messages), encoding="ascii")
        for repeat in range(repeats):
            for model in models:
                print(f"* repeat {repeat + 1}/{repeats}, {model}: native", file=sys.stderr, flush=True)
                records[model].setdefault("native", []).append(native_record(bundle, model, messages, rounds))
                for name, command_of in PORTS.items():
                    command = command_of(bundle, model, rounds)
                    if command is not None:
                        print(f"* repeat {repeat + 1}/{repeats}, {model}: {name}", file=sys.stderr, flush=True)
                        records[model].setdefault(name, []).append(port_record(command, messages_file))
                browser = browser_record(bundle, model, messages, rounds)
                if browser is not None:
                    records[model].setdefault("browser", []).append(browser)
    return records


def summary(runs: list[dict]) -> dict[str, Any]:
    """One runtime's figures: the median of each over the repeats (the runtime's own description kept)."""
    keys = [key for key in ("load_ms", "p50_us", "p90_us", "p99_us", "bulk_msgs_per_s") if key in runs[0]]
    return {"runtime": runs[0]["runtime"], **{key: float(np.median([run[key] for run in runs])) for key in keys}, "repeats": runs}


def table(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"Measured {result['date'][:10]} on {machine['cpu']} ({machine['cores']} cores); `{result['command']}`; "
        f"{result['messages']} messages, each alone after a warm-up of at least {WARM_UP_S:g} s on all of them, "
        f"{result['rounds']} rounds; each figure the median of {result['repeats']} repeats, the runtimes taking turns.",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in machine['load_before'])}, after: "
        f"{', '.join(f'{x:.2f}' for x in machine['load_after'])} — other agents share this 2-core machine: "
        "ratios hold better than absolute figures.",
        "",
        "**One message, end to end** (text in, probability out; µs of wall-clock time; bulk: whole passes, messages/s)",
        "",
        "| model | runtime | p50 µs | p90 µs | p99 µs | bulk msg/s | load ms | p50 / native | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for model, runtimes in result["models"].items():
        native = runtimes["native"]["p50_us"]
        for name, figures in runtimes.items():
            ratio = figures["p50_us"] / native
            target = TARGETS.get(name)
            met = "" if target is None else ("yes" if ratio <= target else "no")
            lines.append(
                f"| {model} | {name}: {figures['runtime']} | {figures['p50_us']:.1f} | {figures['p90_us']:.1f} | {figures['p99_us']:.1f} | "
                f"{figures['bulk_msgs_per_s']:,.0f} | {figures.get('load_ms', float('nan')):.0f} | {ratio:.2f} | "
                f"{'' if target is None else f'<= {target:g}'} | {met} |"
            )
    lines += ["", "**Size**", "", "| file | bytes | KB |", "|---|---:|---:|"]
    lines += [f"| {name} | {size:,} | {size / 1024:.1f} |" for name, size in result["sizes"].items()]
    missing = [name for name in PORTS if all(name not in runtimes for runtimes in result["models"].values())]
    if missing:
        lines += ["", f"Not measured (not built on this machine): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    from smsguard.runtime import Bundle
    from smsguard.train import load_messages, locate_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--data", help="the UCI file (default: the usual places)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=0, help="a seeded sample of this many messages (default: all)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.perf_counter()
    bundle_dir = Path(args.bundle)
    bundle = Bundle.load(bundle_dir)
    messages = list(load_messages(locate_data(args.data)).texts)
    if args.sample:
        messages = random.Random(0).sample(messages, args.sample)
    models = list(dict.fromkeys([bundle.manifest.recommended["npz"], *(n for n, e in bundle.models.items() if e.format == "npz")]))
    load_before = os.getloadavg()
    records = measure(bundle_dir, models, messages, args.rounds, args.repeats)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("ports.py"),
        "bundle": {"name": bundle_dir.name, "serial": bundle.manifest.serial, "manifest_sha256": hashlib.sha256((bundle_dir / "manifest.json").read_bytes()).hexdigest()},
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_before": load_before, "load_after": os.getloadavg(), "shared": "other agents run on this machine"},
        "messages": len(messages),
        "rounds": args.rounds,
        "repeats": args.repeats,
        "models": {model: {name: summary(runs) for name, runs in runtimes.items()} for model, runtimes in records.items()},
        "sizes": {name: path.stat().st_size for name, path in SIZES.items() if path.is_file()},
    }
    write_results(Path(args.out), "ports", result, table(result), f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
