"""What `smsguard pack` ships for each device, and what the compact .npz form costs: every pack target of a full bundle
(files, total, deflated total as an APK or a gzip-serving web server stores it, manifest, `smsguard verify` on the
pack: its models in the Python runtime, or a client pack's models in MediaPipe),
then the .npz models (folded int8, compact int8, float32) side by side: size, load time (the file read, its hash
checked and the model opened: the compact form's table folded), the table's memory, one message end to end, and the
distance to Keras at export. Writes benchmarks/results/pack.json and pack.md.

    python benchmarks/pack.py BUNDLE [--runs 2000] [--loads 9]

BUNDLE is a full bundle of the default (fused) preset exported with the compact model (`smsguard export`). Times
are medians; the machine's load average is recorded beside them, since other work on a shared machine slows them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
NPZ_MODELS = ("model.int8.npz", "model.int8.compact.npz", "model.float32.npz")
BACKENDS = ("native", "numpy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--runs", type=int, default=2000, help="timed one-message predictions per model and backend")
    parser.add_argument("--loads", type=int, default=9, help="timed loads per model and backend")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.perf_counter()
    bundle = Path(args.bundle)
    manifest = (bundle / "manifest.json").read_bytes()
    load_before = os.getloadavg()[0]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("pack.py"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "bundle": {"name": bundle.name, "serial": json.loads(manifest)["serial"], "manifest_sha256": hashlib.sha256(manifest).hexdigest()},
        "bundle_files": len(json.loads(manifest)["files"]),
        "bundle_bytes": sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()),
        "packs": pack_sizes(bundle),
        "compact": compact_costs(bundle, args.runs, args.loads),
        "ports": port_costs(bundle),
    }
    result["load_average"] = [load_before, os.getloadavg()[0]]
    write_results(Path(args.out), "pack", result, markdown(result), f"{time.perf_counter() - started:.0f} s")
    return 0


def pack_sizes(bundle: Path) -> list[dict]:
    """Every target's pack of `bundle`: its files, sizes, deflated sizes, and whether `verify` passes on it."""
    from smsguard import _console as console
    from smsguard.cli import main as verify_cli_main
    from smsguard.export import PACK_TARGETS, PackConfig, pack

    def verify_cli(args: list[str]) -> int:
        return verify_cli_main(["verify", *args])

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for spec in PACK_TARGETS:
            out = Path(work) / str(spec.target)
            report = pack(bundle, out, PackConfig(spec.target))
            verified = verify_cli([str(out)]) == 0  # the checks a device runs: the models', or the client models' in MediaPipe
            deflated = sum(len(zlib.compress((out / name).read_bytes(), 6)) for name, _ in report.files)
            console.info(f"  {spec.target}: {report.total / 1e6:.2f} MB, {deflated / 1e6:.2f} MB deflated")
            rows.append({
                "target": str(spec.target),
                "runs_in": spec.runs_in,
                "files": [{"name": name, "size": size} for name, size in report.files],
                "total": report.total,
                "deflated": deflated,
                "manifest": (out / "manifest.json").stat().st_size,
                "verify": verified,
            })
    return rows


def compact_costs(bundle_dir: Path, runs: int, loads: int) -> list[dict]:
    """Each .npz model in each backend: size, median load, table memory, one message's p50 and p95, distance to Keras."""
    from smsguard.runtime import Bundle, Classifier, backend_info, open_session

    bundle = Bundle.load(bundle_dir)
    parity = {m["model"]: m for m in json.loads((bundle_dir / "parity.json").read_text(encoding="utf-8"))["models"]}
    message = sorted((g.text for g in bundle.golden if g.text), key=len)[len(bundle.golden) // 2]
    rows = []
    for name in NPZ_MODELS:
        entry = bundle.model(name)
        for backend in BACKENDS:
            info = backend_info(backend)
            load_ms = []
            for _ in range(loads):
                begun = time.perf_counter()
                session = open_session(info, bundle.model_path(entry), entry)  # the hash checked, the file read and opened
                load_ms.append((time.perf_counter() - begun) * 1e3)
            classifier = Classifier(bundle, session)
            for _ in range(200):
                classifier.predict_proba([message])
            samples = np.empty(runs)
            for i in range(runs):
                begun_ns = time.perf_counter_ns()
                classifier.predict_proba([message])
                samples[i] = (time.perf_counter_ns() - begun_ns) / 1e3
            rows.append({
                "model": name,
                "backend": backend,
                "size": entry.size,
                "load_ms": float(np.median(load_ms)),
                "table_bytes": _table_bytes(backend, bundle.model_path(entry)),
                "p50_us": float(np.percentile(samples, 50)),
                "p95_us": float(np.percentile(samples, 95)),
                "max_abs_diff_keras": parity[name]["max_abs_diff"],
                "label_agreement": parity[name]["label_agreement"],
            })
            print(f"  {name} [{backend}]: {entry.size / 1e6:.2f} MB, load {rows[-1]['load_ms']:.0f} ms, p50 {rows[-1]['p50_us']:.0f} µs", file=sys.stderr)
    return rows


def port_costs(bundle_dir: Path) -> list[dict]:
    """The Java and JavaScript runtimes on the folded and the compact int8 model: load (the bundle read and checked, the
    model built: both fold a compact table's row on its first use, not at load), and
    each golden message alone after warm-up (their `--bench`); in JavaScript also the first message after load and
    the same message again. A runtime whose tools are missing is left out."""
    from smsguard.runtime import Bundle

    golden = Bundle.load(bundle_dir).golden
    texts = "".join(json.dumps(g.text) + "\n" for g in golden)
    first = sorted((g.text for g in golden if g.text), key=len)[len(golden) // 2]
    commands = {}
    if shutil.which("java") and (ROOT / "clients" / "java" / "build" / "smsguard-client.jar").is_file():
        commands["Java"] = ["java", "-jar", str(ROOT / "clients" / "java" / "build" / "smsguard-client.jar"), str(bundle_dir)]
    if shutil.which("node"):
        commands["JavaScript"] = ["node", str(ROOT / "clients" / "js" / "bin" / "smsguard-client.mjs"), str(bundle_dir)]
    rows = []
    for port, command in commands.items():
        for name in NPZ_MODELS[:2]:
            done = subprocess.run([*command, "--bench", "--model", name, "--rounds", "3"], input=texts, capture_output=True, text=True, check=True, timeout=600)
            row = {"port": port} | json.loads(done.stdout)
            if port == "JavaScript":
                row["cold"] = _first_message_in_node(bundle_dir, name, first)
            rows.append(row)
            print(f"  {name} [{port}]: load {row['load_ms']:.0f} ms, p50 {row['p50_us']:.0f} µs", file=sys.stderr)
    if not commands:
        print("  (the Java and JavaScript runtimes not timed: no java with `make clients-java`, no node)", file=sys.stderr)
    return rows


def _first_message_in_node(bundle_dir: Path, model: str, text: str) -> dict:
    """Load, the first message after it, and the same message again, in Node (milliseconds)."""
    script = f"""import {{ Classifier }} from {json.dumps((ROOT / "clients" / "js" / "smsguard.mjs").as_uri())};
        const t0 = performance.now();
        const classifier = await Classifier.load({json.dumps(str(bundle_dir))}, {{ model: {json.dumps(model)} }});
        const t1 = performance.now();
        classifier.classify({json.dumps(text)});
        const t2 = performance.now();
        classifier.classify({json.dumps(text)});
        console.log(JSON.stringify({{ load_ms: t1 - t0, first_ms: t2 - t1, again_ms: performance.now() - t2 }}));"""
    return json.loads(subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=600).stdout)


def _table_bytes(backend: str, path: Path) -> int:
    """The input table as the backend holds it in memory: the native kernel keeps an int8 table int8, NumPy makes it
    float32; a compact model's table is float32 in both, once folded."""
    from smsguard.runtime._lstm import LstmWeights
    from smsguard.runtime._lstm_native import NativeArrays

    if backend == "numpy":
        return int(LstmWeights.load(path).table.nbytes)
    arrays = NativeArrays.load(path)
    return int(arrays.table.nbytes + (0 if arrays.table_scale is None else arrays.table_scale.nbytes))


def markdown(result: dict) -> str:
    mb = 1e6
    busy = ": other work ran beside it, so times are slower than on an idle machine" if max(result["load_average"]) > 0.5 * result["cores"] else ""
    lines = [
        "<!-- --8<-- [start:packs] -->",
        f"Measured {result['date'][:10]} on {result['cpu']} ({result['cores']} cores; load average {result['load_average'][0]:.1f} before, "
        f"{result['load_average'][1]:.1f} after{busy}), from a full default "
        f"bundle of {result['bundle_files']} files, {result['bundle_bytes'] / mb:.1f} MB, serial {result['bundle']['serial']} "
        f"(`{result['command']}`).",
        "",
        "| `--for` | runs in | files | total | deflated | manifest | `verify` |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in result["packs"]:
        files = ", ".join(f"`{f['name']}`" for f in row["files"] if f["name"] != "manifest.json")
        verified = "passes" if row["verify"] else "FAILS"
        lines.append(f"| `{row['target']}` | {row['runs_in']} | {files} | {row['total'] / mb:.2f} MB | {row['deflated'] / mb:.2f} MB | "
                     f"{row['manifest'] / 1e3:.0f} kB | {verified} |")
    lines += [
        "<!-- --8<-- [end:packs] -->",
        "",
        "<!-- --8<-- [start:compact] -->",
        "The `.npz` models: what the compact form saves in size and costs at load (one message of the golden set's median length, "
        "end to end, after warm-up; load = hash check, read and open, median):",
        "",
        "| model | backend | size | load | table in memory | p50 | p95 | max diff vs Keras | labels as Keras |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["compact"]:
        lines.append(f"| `{row['model']}` | {row['backend']} | {row['size'] / mb:.2f} MB | {row['load_ms']:.0f} ms | {row['table_bytes'] / mb:.1f} MB | "
                     f"{row['p50_us']:.0f} µs | {row['p95_us']:.0f} µs | {row['max_abs_diff_keras']:.2g} | {row['label_agreement']:.2%} |")
    if result["ports"]:
        lines += [
            "",
            "The Java and JavaScript runtimes (their `--bench`: load = the bundle read and checked and the model built; p50 and p90 "
            "of each golden message alone after warm-up, median of 3 rounds; in Node, the first message after loading and the "
            "same message again: both runtimes fold a compact table's rows on their first use):",
            "",
            "| runtime | model | load | first message | again | p50 | p90 |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in result["ports"]:
            cold = row.get("cold")
            first = f"{cold['first_ms']:.1f} ms | {cold['again_ms']:.2f} ms" if cold else "— | —"
            lines.append(f"| {row['runtime']}{', ' + row['kernel'] if row.get('kernel') else ''} | `{row['model']}` | {row['load_ms']:.0f} ms | {first} | "
                         f"{row['p50_us']:.0f} µs | {row['p90_us']:.0f} µs |")
    lines.append("<!-- --8<-- [end:compact] -->")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
