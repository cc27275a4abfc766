"""The device lanes on the session's real bundles: tflite-runtime 2.14 with numpy < 2 in its own
environment (the word model's four TFLite models; test_fused.py runs it on the default's three), the
wheel (sdist -> wheel -> clean venvs without a compiler), and 64-bit ARM (Raspberry Pi OS userland,
Python 3.11) under qemu user-mode emulation with the cross-built aarch64 wheel (the default, fused).
Each is run by its script in devices/, as a person reruns it; where this machine cannot run it (not root,
no network) the script says why (exit 77), and the test is skipped with that reason, or fails under CI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cannot_run

from smsguard import __version__
from smsguard.export._targets import TARGETS
from smsguard.runtime import Bundle, ModelFormat

ROOT = Path(__file__).resolve().parents[1]
CANNOT_RUN_HERE = 77  # the lanes' exit status when a prerequisite is missing; the last stderr line says which
TFLITE_MODELS = tuple(t.file_name for t in TARGETS if t.format is ModelFormat.TFLITE)
ARM_BACKEND = {"tflite": "litert", "onnx": "onnxruntime", "npz": "numpy"}  # what the lane installs; numpy is always there
PI_CPUS = ("cortex-a53", "cortex-a72", "cortex-a76")  # Pi 3 and Zero 2 W, Pi 4 and 400, Pi 5
LEGACY = (2, 14)  # tflite-runtime's last release

slow = pytest.mark.slow


def lane(script: str, bundle: Path, *more: str) -> subprocess.CompletedProcess:
    """Run a lane; the wheel lanes build with this interpreter (its `build` and `auditwheel`); the tflite-runtime
    lane finds a CPython 3.8-3.11 itself, whatever runs the tests."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHON"} | ({} if script == "tflite_runtime_lane.sh" else {"PYTHON": sys.executable})
    done = subprocess.run([str(ROOT / "devices" / script), str(bundle), *more], capture_output=True, text=True, timeout=1500, check=False, env=environment)
    if done.returncode == CANNOT_RUN_HERE:
        cannot_run(f"{script}: {done.stderr.strip().splitlines()[-1]}")
    return done


def checklist(stderr: str) -> dict[tuple[str, str], str]:
    """verify's model lines, `(model, backend) -> "✓" or what it says`, for one run of verify."""
    lines = re.findall(r"^  -\[(.)\] (\S+) \[(\S+)\]: (.*)$", stderr, re.MULTILINE)
    return {(model, backend): "✓" if mark == "✓" else rest for mark, model, backend, rest in lines}


def runs_of_verify(stderr: str) -> list[str]:
    return stderr.split("* Verifying ")[1:]


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# ---- tflite-runtime 2.14 ---------------------------------------------------------------------------


@slow
def test_tflite_runtime_2_14_runs_and_verifies_every_tflite_model(bundle_dir):
    done = lane("tflite_runtime_lane.sh", bundle_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^\* Python 3\.\d+\.\d+ on \S+: tflite-runtime 2\.14\.\d+, numpy 1\.", done.stderr, re.MULTILINE), done.stderr
    assert "site-packages/smsguard/" in done.stderr  # the installed smsguard, not the checkout
    assert [row["label"] for row in map(json.loads, done.stdout.splitlines())] == ["spam", "ham"]
    (run,) = runs_of_verify(done.stderr)
    assert "-[✓] tokenizer: " in run
    assert checklist(run) == {(m, "tflite-runtime"): "✓" for m in TFLITE_MODELS}
    assert run.rstrip().splitlines()[-1] == "* All 4 model/backend pairs match"
    files = {f.name: f for f in Bundle.load(bundle_dir).files.values()}
    assert all(version(files[m].min_runtime["tflite-runtime"]) <= LEGACY for m in TFLITE_MODELS)  # as the lane found


def per_channel_dynamic_int8(run_dir: Path) -> bytes:
    """The dynamic-range model as the converter makes it by default: int8 weights per output channel,
    which needs FULLY_CONNECTED version 12 (the bundle's model is per matrix, for tflite-runtime 2.14)."""
    import tensorflow as tf

    from smsguard.train._model import ModelConfig, inference_copy, load_model
    from smsguard.train._trainer import read_run_config

    _, model_fields = read_run_config(run_dir)
    converter = tf.lite.TFLiteConverter.from_keras_model(inference_copy(load_model(run_dir / "model.keras"), ModelConfig(**model_fields), unroll=True))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


@slow
def test_tflite_runtime_2_14_names_the_op_of_a_model_too_new_for_it(run_dir, bundle_copy):
    from smsguard.export._tflite import min_runtime_version

    model = per_channel_dynamic_int8(run_dir)
    (bundle_copy / "model.dynamic_int8.tflite").write_bytes(model)
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = next(f for f in manifest["files"] if f["name"] == "model.dynamic_int8.tflite")
    entry |= {"sha256": hashlib.sha256(model).hexdigest(), "size": len(model), "min_runtime": {"tflite-runtime": min_runtime_version(model)}}
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    assert version(entry["min_runtime"]["tflite-runtime"]) > LEGACY  # what the manifest would say of it: 2.17.0

    done = lane("tflite_runtime_lane.sh", bundle_copy)
    assert done.returncode == 1, done.stderr[-3000:]  # the other three still run and match, but a model that cannot run is no pass
    (run,) = runs_of_verify(done.stderr)
    results = checklist(run)
    assert results.pop(("model.dynamic_int8.tflite", "tflite-runtime")) == (
        "not run: tflite-runtime 2.14.0 is too old for model 'model.dynamic_int8.tflite': it cannot run op "
        "FULLY_CONNECTED version 12; install ai-edge-litert (pip install 'smsguard[litert]'), or pick another model of the bundle"
    )
    assert results == {(m, "tflite-runtime"): "✓" for m in TFLITE_MODELS if m != "model.dynamic_int8.tflite"}
    assert run.rstrip().splitlines()[-1] == (
        "ERROR 3 of 4 model/backend pairs match the export machine; 1 could not be run (listed above: use another model of the bundle, or install what it needs)"
    )


# ---- the wheel ---------------------------------------------------------------------------------------


@slow
def test_the_wheel_from_the_sdist_installs_without_a_compiler_and_runs_the_native_kernel(fused_bundle, tmp_path):
    done = lane("wheel_lane.sh", fused_bundle, str(tmp_path))
    assert done.returncode == 0, done.stderr[-5000:]
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert wheel.name == f"smsguard-{__version__}-cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    assert sdist.name == f"smsguard-{__version__}.tar.gz"
    pythons = re.findall(r"^\* Python (3\.\d+)\.\d+: smsguard/runtime/(_lstm_c\.\S+), native kernel (\S+)$", done.stderr, re.MULTILINE)
    assert pythons[0][:2] == (f"{sys.version_info.major}.{sys.version_info.minor}", "_lstm_c.abi3.so")  # the builder's, from the wheel
    for version, module, _ in pythons:  # any other CPython found: the same abi3 wheel, or 3.10 from the sdist
        assert module == ("_lstm_c.abi3.so" if version != "3.10" else f"_lstm_c.cpython-310-{os.uname().machine}-linux-gnu.so"), pythons
    runs = runs_of_verify(done.stderr)
    assert len(runs) == len(pythons)
    models = [m for m in Bundle.load(fused_bundle).models if m.endswith(".npz")]
    for run in runs:
        assert checklist(run) == {(m, "native"): "✓" for m in models}
    assert done.stderr.rstrip().splitlines()[-1] == "* The wheel installs without a compiler and runs the native kernel"


# ---- 64-bit ARM ---------------------------------------------------------------------------------------


@slow
def test_the_runtime_and_verify_pass_on_emulated_raspberry_pi_cpus(fused_bundle):
    """The default (fused) bundle: the word LSTM's NEON kernel and the n-gram hasher and fusion, in one run."""
    models = tuple(Bundle.load(fused_bundle).models)
    done = lane("arm64_lane.sh", fused_bundle)
    assert done.returncode == 0, done.stderr[-5000:]
    assert re.findall(r"^\* Emulated (\S+)$", done.stderr, re.MULTILINE) == list(PI_CPUS)
    environments = re.findall(r"^\* Python (3\.11\.\d+) on (\w+) \(glibc [\d.]+\): numpy \S+, ai-edge-litert \S+, onnxruntime \S+$", done.stderr, re.MULTILINE)
    assert [machine for _, machine in environments] == ["aarch64"] * len(PI_CPUS)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["cpu"], row["backend"], row["labels"]) for row in rows] == [
        ("aarch64", backend, ["spam", "ham"]) for _ in PI_CPUS for backend in ("litert", "onnxruntime", "native")
    ]
    wheel = re.findall(r"^\* Built (smsguard-\S+\.whl) \(\d+ bytes\)$", done.stderr, re.MULTILINE)
    assert wheel == [f"smsguard-{__version__}-cp311-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"]
    assert f"* Installed {wheel[0]} with the emulated Python's pip, in a root with no compiler" in done.stderr.splitlines()
    # the cross-built wheel's kernel, NEON path, on every CPU
    assert re.findall(r"^\* native kernel: (.+)$", done.stderr, re.MULTILINE) == ["neon (smsguard/runtime/_lstm_c.abi3.so)"] * len(PI_CPUS)
    runs = runs_of_verify(done.stderr)
    assert len(runs) == len(PI_CPUS)
    for cpu, run in zip(PI_CPUS, runs, strict=False):
        assert "-[✓] tokenizer: " in run, cpu
        expected = {(m, ARM_BACKEND[m.rsplit(".", 1)[1]]): "✓" for m in models} | {(m, "native"): "✓" for m in models if m.endswith(".npz")}
        assert checklist(run) == expected, (cpu, run)
