"""The JavaScript runtime (clients/js/smsguard.mjs) beside the Python runtime's native backend, on the same machine,
bundle and messages: every SMS of the data set, one at a time after a warm-up, in Node and in headless Chromium;
and how close its results are.

    python benchmarks/ports_js.py BUNDLE [--data FILE] [--rounds 5] [--no-browser]

- native: `Classifier.predict_proba([text])` with the native backend (the C kernel, from raw text to probability),
  each message alone, after at least 2 s of warm-up on all of them; p50/p90/p99 are the median over the rounds of
  each round's percentiles; bulk is `predict_proba(all messages)` (the defaults), messages a second;
- Node: `node clients/js/bin/smsguard-client.mjs BUNDLE --bench --rounds R` (the same protocol: each message alone
  after at least 2 s of warm-up; bulk is every message one after another), for each .npz model, with the kernel a
  user gets (`auto`: WebAssembly SIMD) and with the plain-JS fallback (`--kernel js`: a page whose CSP refuses
  WebAssembly, or a platform without SIMD);
- Chromium: the demo page served by `smsguard serve-web` in Debian's headless chromium, which imports the module
  and times the recommended model the same way (`web/test/js-check.mjs`); the page is cross-origin isolated, so
  its clock ticks every 5 µs (coarser than the others': its percentiles are multiples of 5 µs);
- agreement: every message through the Node command line with `--ids`, against `Vocabulary.encode` and the native
  backend: ids identical, the largest probability difference, labels identical.

The issue's targets: Node p50 at most 3x the native backend's; the module at most 50 KB; a browser figure reported.
Wall-clock times on one thread, while the machine may be shared (load averages recorded): ratios hold better than
absolute figures. Writes benchmarks/results/ports-js.json and ports-js.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import cpu_name, write_results  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DATA = ROOT.parent / "shared" / "data" / "SMSSpamCollection"
MODULE = ROOT / "clients" / "js" / "smsguard.mjs"
CLI = ROOT / "clients" / "js" / "bin" / "smsguard-client.mjs"
WARM_UP_S = 2.0  # as the ports' --bench
NODE_RATIO_TARGET = 3.0
MODULE_BUDGET = 50 * 1024


def native_figures(bundle: Path, model: str, texts: list[str], rounds: int) -> dict:
    """The native backend, timed as the ports' --bench times themselves."""
    from smsguard.runtime import Classifier

    loading = time.perf_counter()
    classifier = Classifier.load(bundle, backend="native", model=model)
    load_ms = (time.perf_counter() - loading) * 1000
    start = time.perf_counter()
    while time.perf_counter() - start < WARM_UP_S:
        for text in texts:
            classifier.predict_proba([text])
    per_round: dict[str, list[float]] = {"p50": [], "p90": [], "p99": [], "bulk": []}
    for _ in range(rounds):
        times = np.empty(len(texts))
        for k, text in enumerate(texts):
            t0 = time.perf_counter_ns()
            classifier.predict_proba([text])
            times[k] = (time.perf_counter_ns() - t0) / 1000
        for q in (50, 90, 99):
            per_round[f"p{q}"].append(float(np.percentile(times, q, method="inverted_cdf")))
        t0 = time.perf_counter()
        classifier.predict_proba(texts)
        per_round["bulk"].append(len(texts) / (time.perf_counter() - t0))
    median = {key: float(np.median(values)) for key, values in per_round.items()}
    return {"runtime": f"Python {platform.python_version()}, smsguard native backend", "model": model, "kernel": "C (native)", "messages": len(texts), "rounds": rounds, "load_ms": load_ms,
            "p50_us": median["p50"], "p90_us": median["p90"], "p99_us": median["p99"], "bulk_msgs_per_s": median["bulk"]}


def node_figures(bundle: Path, model: str, kernel: str, lines: bytes, rounds: int) -> dict:
    command = ["node", str(CLI), str(bundle), "--model", model, "--kernel", kernel, "--bench", "--rounds", str(rounds)]
    done = subprocess.run(command, input=lines, capture_output=True, check=True, timeout=1800)
    return json.loads(done.stdout)


def browser_figures(bundle: Path, texts: list[str], rounds: int) -> dict:
    from smsguard._serve_web import make_server, serve_in_thread

    server = make_server(bundle, 0)
    serve_in_thread(server)
    try:
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "texts.json").write_text(json.dumps(texts))
            done = subprocess.run(
                ["node", str(ROOT / "web" / "test" / "js-check.mjs"), f"http://127.0.0.1:{server.server_address[1]}/", "-", str(Path(work) / "texts.json"), "-",
                 shutil.which("chromium") or "chromium", str(rounds)],
                capture_output=True, text=True, check=True, timeout=1800,
            )
    finally:
        server.shutdown()
        server.server_close()
    result = json.loads(done.stdout)
    timing = result["timing"]
    browser = result["version"].replace("/", " ")
    return {"runtime": f"{browser} headless, smsguard.mjs", **{key: timing[key] for key in ("model", "kernel", "messages", "rounds", "load_ms", "p50_us", "p90_us", "p99_us", "bulk_msgs_per_s")},
            "cross_origin_isolated": timing["isolated"], "blocked_requests": result["blocked"]}


def agreement(bundle: Path, model: str, texts: list[str], lines: bytes) -> dict:
    """Every message through the Node command line with --ids, against the Python reference on the same model file."""
    from smsguard.runtime import Classifier

    done = subprocess.run(["node", str(CLI), str(bundle), "--model", model, "--ids"], input=lines, capture_output=True, check=True, timeout=1800)
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    python = Classifier.load(bundle, backend="native", model=model)
    want_ids, want = python.encode(texts), python.predict_proba(texts).astype(np.float64)
    labels = python.decision.labels_of(want)
    ids = np.array([row["ids"] for row in rows])
    got = np.array([row["probability"] for row in rows])
    same_labels = sum(row["label"] == label for row, label in zip(rows, labels, strict=True))
    return {"model": model, "messages": len(texts), "ids_identical": int((ids == want_ids).all(axis=1).sum()), "max_abs_diff": float(np.abs(got - want).max()), "labels_identical": same_labels}


def main() -> int:
    from smsguard.runtime import Bundle, ModelFormat
    from smsguard.train import load_messages

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", help="a bundle with vocab.json format 2 (the default preset's)")
    parser.add_argument("--data", default=str(DATA), help="the SMS Spam Collection (default: ../shared/data)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every timing")
    parser.add_argument("--no-browser", action="store_true", help="leave out headless Chromium")
    parser.add_argument("--out", default=str(RESULTS), help="where the results go")
    args = parser.parse_args()
    started = time.perf_counter()
    bundle = Path(args.bundle)
    loaded = Bundle.load(bundle)
    models = [name for name, entry in loaded.models.items() if entry.format is ModelFormat.NPZ]
    recommended = loaded.manifest.recommended.get(ModelFormat.NPZ, models[0])
    models.sort(key=lambda name: name != recommended)
    texts = list(load_messages(Path(args.data)).texts)
    lines = "".join(json.dumps(text) + "\n" for text in texts).encode()
    load_before = os.getloadavg()
    rows = []
    for model in models:
        rows.append(native_figures(bundle, model, texts, args.rounds))
        rows.append(node_figures(bundle, model, "auto", lines, args.rounds))
        rows.append(node_figures(bundle, model, "js", lines, args.rounds))
    if not args.no_browser:
        rows.append(browser_figures(bundle, texts, args.rounds))
    agreements = [agreement(bundle, model, texts, lines) for model in models]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/ports_js.py", *sys.argv[1:]]),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "node": _node_version(), "load_before": load_before, "load_after": os.getloadavg()},
        "bundle": {"name": bundle.name, "manifest_serial": loaded.manifest.serial, "recommended": recommended},
        "module_bytes": MODULE.stat().st_size,
        "downloads": downloads(bundle, loaded.manifest.vocabulary, models),
        "rows": rows,
        "agreement": agreements,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(Path(args.out), "ports-js", result, table(result, recommended), f"{result['seconds']:.0f} s")
    return 0


def downloads(bundle: Path, vocabulary: str, models: list[str]) -> list[dict]:
    """What a page fetches to run a model: the module and the bundle's manifest, vocabulary and .npz models (any one of
    them), as they are and gzipped (what a server that compresses sends)."""
    files = [("smsguard.mjs", MODULE), *((name, bundle / name) for name in ("manifest.json", vocabulary, *models))]
    return [{"file": name, "bytes": path.stat().st_size, "gzip_bytes": len(gzip.compress(path.read_bytes(), 9))} for name, path in files]


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def table(result: dict, recommended: str) -> str:
    native = {row["model"]: row["p50_us"] for row in result["rows"] if row["kernel"] == "C (native)"}
    node = next(row for row in result["rows"] if row["runtime"].startswith("node") and row["model"] == recommended and row["kernel"] != "js")
    ratio = node["p50_us"] / native[recommended]
    machine = result["machine"]
    lines = [
        f"Measured {result['date'][:16].replace('T', ' ')} UTC on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}, Node {machine['node']}; "
        f"`{result['command']}`; {result['rows'][0]['messages']:,} messages one at a time, {result['rows'][0]['rounds']} rounds.",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in machine['load_before'])}, after: {', '.join(f'{x:.2f}' for x in machine['load_after'])}"
        + (" — measured under load (other processes busy on this machine): ratios hold better than absolute figures." if machine["load_before"][0] > machine["cores"] else "."),
        "",
        "**Targets**",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
        f"| Node p50 / native backend p50 ({recommended}) | {ratio:.2f} | <= {NODE_RATIO_TARGET:g} | {'yes' if ratio <= NODE_RATIO_TARGET else 'no'} |",
        f"| smsguard.mjs, unminified | {result['module_bytes']:,} bytes | <= {MODULE_BUDGET:,} | {'yes' if result['module_bytes'] <= MODULE_BUDGET else 'no'} |",
        "",
        "**Each message alone, after warm-up** (µs of wall-clock time, raw text to probability; the median of the rounds' percentiles; "
        "load: reading and checking the bundle's files and the model, once)",
        "",
        "| runtime | model | step | load ms | p50 | p90 | p99 | bulk msg/s | p50 / native |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['runtime']} | {row['model']} | {row['kernel']} | {row['load_ms']:.0f} | {row['p50_us']:.1f} | {row['p90_us']:.1f} | {row['p99_us']:.1f} | {row['bulk_msgs_per_s']:,.0f} | "
            f"{row['p50_us'] / native[row['model']]:.2f} |"
        )
    lines += ["", "**What a page downloads** (the module, then the bundle's files it reads: one .npz model of the two)", "", "| file | bytes | gzipped |", "|---|---:|---:|"]
    lines += [f"| {d['file']} | {d['bytes']:,} | {d['gzip_bytes']:,} |" for d in result["downloads"]]
    lines += ["", "**Agreement with the Python runtime** (every message through the Node command line with `--ids`; probabilities against the native backend)", "",
              "| model | ids identical | max \\|Δp\\| | labels identical |", "|---|---:|---:|---:|"]
    for a in result["agreement"]:
        lines.append(f"| {a['model']} | {a['ids_identical']:,} / {a['messages']:,} | {a['max_abs_diff']:.2g} | {a['labels_identical']:,} / {a['messages']:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
