"""The MediaPipe clients against smsguard, on every message of the data set: ids (through the probe
model), scores, labels at the bundle's threshold, and the time of one message in each. Needs a bundle
exported from a `--preset mediapipe` run, mediapipe installed, and for the browser Debian's chromium
and `make web`. Writes benchmarks/results/clients.json and clients.md.

    python benchmarks/clients.py BUNDLE [--data PATH] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from smsguard.export._mediapipe_target import litert_scores
    from smsguard.runtime import Bundle, Classifier
    from smsguard.runtime._mediapipe import client_ids
    from smsguard.runtime._mediapipe_client import classifier, mediapipe_version
    from smsguard.train import load_messages, locate_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--data")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.perf_counter()
    bundle = Bundle.load(args.bundle)
    section = bundle.manifest.clients["mediapipe"]
    texts = list(load_messages(locate_data(args.data)).texts)
    float_name, int8_name = (m["name"] for m in section["models"])
    smsguard_ids = bundle.vocabulary.encode(texts)
    runtime = Classifier.load(bundle.path, backend="litert", model="model.float32.tflite")
    reference = runtime.predict_proba(texts).astype(np.float64)
    int8_litert = litert_scores(bundle.path / int8_name, client_ids(bundle.vocabulary, texts))
    runtime_ms = _timed(lambda text: runtime.predict_proba([text]), texts)

    clients: dict[str, dict] = {}
    with classifier(bundle.path / section["probe"]) as probe:
        ids = probe.ids(texts)
    with classifier(bundle.path / float_name) as model:
        ms = _timed(lambda text: model.probabilities([text]), texts)
        scores = model.probabilities(texts)
    with classifier(bundle.path / int8_name) as model:
        int8_scores = model.probabilities(texts)
    clients[f"MediaPipe {mediapipe_version()} (Python, {platform.machine()})"] = _figures(ids, smsguard_ids, scores, reference, int8_scores, int8_litert, ms, bundle.threshold)

    if not args.no_browser:
        from smsguard._serve_web import make_server, serve_in_thread

        server = make_server(bundle.path, 0)
        serve_in_thread(server)
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "texts.json").write_text(json.dumps(texts))
            done = subprocess.run(
                ["node", str(ROOT / "web" / "test" / "browser-check.mjs"), f"http://127.0.0.1:{server.server_address[1]}/", str(Path(work) / "texts.json"),
                 str(Path(work) / "shot.png"), shutil.which("chromium") or "chromium"],
                capture_output=True, text=True, check=True,
            )
        server.shutdown()
        web = json.loads(done.stdout)
        browser_ids = np.array([r["scores"] for r in web["models"][section["probe"]]]).astype(np.int32)
        browser_scores = np.array([r["scores"][0] for r in web["models"][float_name]])
        browser_int8 = np.array([r["scores"][0] for r in web["models"][int8_name]])
        browser_ms = [r["ms"] for r in web["models"][float_name]]
        version = json.loads((ROOT / "web" / "node_modules" / "@mediapipe" / "tasks-text" / "package.json").read_text())["version"]
        name = f"@mediapipe/tasks-text {version} ({web['version']}, headless)"
        clients[name] = _figures(browser_ids, smsguard_ids, browser_scores, reference, browser_int8, int8_litert, browser_ms, bundle.threshold)
        clients[name]["blocked_requests"] = sorted(set(web["blocked"]))

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("clients.py"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "load": os.getloadavg()[0]},
        "seconds": round(time.perf_counter() - started, 1),
        "messages": len(texts),
        "reference": "smsguard runtime, model.float32.tflite in LiteRT (float); the int8 client model in LiteRT on smsguard's ids (int8)",
        "smsguard_ms_per_message_p50": float(np.median(runtime_ms)),
        "clients": clients,
    }
    rows = [
        "| client | ids identical | max \\|Δp\\| float32 | labels agree (float32) | max \\|Δp\\| int8 vs LiteRT | ms a message (p50, float32) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, c in clients.items():
        rows.append(
            f"| {name} | {c['ids_identical']:,} / {len(texts):,} | {c['max_abs_diff_float32']:.2g} | {c['labels_agree']:,} / {len(texts):,} | "
            f"{c['max_abs_diff_int8']:.2g} | {c['ms_p50']:.3f} |"
        )
    rows.append(f"| smsguard runtime (LiteRT, model.float32.tflite, tokenizer included) | — | — | — | — | {result['smsguard_ms_per_message_p50']:.3f} |")
    table = f"# MediaPipe clients against smsguard, {len(texts):,} messages\n\n{result['date']}, `{result['command']}`, load {result['machine']['load']:.1f}\n\n" + "\n".join(rows) + "\n"
    write_results(Path(args.out), "clients", result, table, f"{result['seconds']:.0f} s")
    return 0


def _timed(run, texts: list[str]) -> list[float]:
    for text in texts[:20]:
        run(text)
    out = []
    for text in texts:
        start = time.perf_counter()
        run(text)
        out.append(1000 * (time.perf_counter() - start))
    return out


def _figures(ids, smsguard_ids, scores, reference, int8_scores, int8_litert, ms, threshold: float) -> dict:
    return {
        "ids_identical": int((ids == smsguard_ids).all(axis=1).sum()),
        "max_abs_diff_float32": float(np.abs(np.asarray(scores) - reference).max()),
        "labels_agree": int(((np.asarray(scores) >= threshold) == (reference >= threshold)).sum()),
        "max_abs_diff_int8": float(np.abs(np.asarray(int8_scores) - int8_litert).max()),
        "ms_p50": float(np.median(ms)),
        "ms_p90": float(np.percentile(ms, 90)),
    }


if __name__ == "__main__":
    sys.exit(main())
