"""The declared export targets: the one list that decides which models a bundle holds, their file names,
and that a bundle built from any list of targets is whole (loads, verifies, recommends among its models)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from smsguard.export import TARGETS, export
from smsguard.runtime import Bundle, Classifier, ModelFormat, Quantization, Variant, verify_bundle
from smsguard.runtime.bundle import Form, model_file_name

# The models of a bundle of the default run, in the order export writes them. Adding a model format is
# adding a target to smsguard/export/_targets.py and its name here.
DEFAULT_MODELS = (
    "model.float32.tflite",
    "model.dynamic_int8.tflite",
    "model.float16.tflite",
    "model.int8.tflite",
    "model.float32.onnx",
    "model.dynamic_int8.onnx",
    "model.float32.primed.onnx",
    "model.dynamic_int8.primed.onnx",
    "model.float32.npz",
    "model.int8.npz",
    "model.int8.compact.npz",
)


def test_the_targets_are_the_models_of_a_bundle() -> None:
    assert tuple(t.file_name for t in TARGETS) == DEFAULT_MODELS
    assert len({(t.format, t.quantization, t.variant, t.form) for t in TARGETS}) == len(TARGETS)  # one file per kind


def test_file_names_follow_one_rule() -> None:
    assert model_file_name(ModelFormat.TFLITE, Quantization.DYNAMIC_INT8, Variant.FIXED) == "model.dynamic_int8.tflite"
    assert model_file_name(ModelFormat.ONNX, Quantization.FLOAT32, Variant.PRIMED) == "model.float32.primed.onnx"
    assert model_file_name(ModelFormat.NPZ, Quantization.INT8, Variant.PRIMED) == "model.int8.npz"  # always primed: no infix
    assert model_file_name(ModelFormat.NPZ, Quantization.INT8, Variant.PRIMED, Form.COMPACT) == "model.int8.compact.npz"


def test_every_target_is_checked_in_a_backend_that_runs_its_format() -> None:
    from smsguard.runtime import backend_info

    for target in TARGETS:
        assert backend_info(target.backend).format is target.format, target.file_name


def test_an_unknown_format_or_quantization_is_refused_at_the_boundary() -> None:
    from smsguard.runtime import BundleFile

    with pytest.raises(ValueError, match="'tflight' is not a valid ModelFormat"):
        BundleFile("m.tflite", "model", 1, "0" * 64, format="tflight", quantization="int8")
    with pytest.raises(ValueError, match="'int4' is not a valid Quantization"):
        BundleFile("m.tflite", "model", 1, "0" * 64, format="tflite", quantization="int4")


@pytest.mark.slow
def test_a_bundle_holds_exactly_the_targets_it_was_exported_with(run_dir: Path, tmp_path: Path) -> None:
    chosen = tuple(t for t in TARGETS if t.format is ModelFormat.NPZ)
    out = export(run_dir, tmp_path / "bundle", targets=chosen)
    bundle = Bundle.load(out)
    assert list(bundle.models) == [t.file_name for t in chosen]
    assert {p.name for p in out.iterdir()} == {*bundle.models, "vocab.json", "parity.json", "manifest.json"}
    assert set(bundle.manifest.recommended) == {ModelFormat.NPZ}
    assert {name for g in bundle.golden for name in g.probabilities} == set(bundle.models)
    report = verify_bundle(out, ["numpy"])
    assert report.passed and len(report.ran) == len(chosen)
    assert Classifier.load(out, backend="numpy").predict(["see you at 6"]) == ["ham"]


@pytest.mark.slow
def test_no_artifact_holds_a_path_of_the_machine_that_made_it(run_dir: Path, bundle_dir: Path) -> None:
    """Run folders and bundles travel: they name files and hashes, never where they were built."""
    machine_paths = {str(run_dir.resolve().parent), str(bundle_dir.resolve().parent), str(Path.cwd()), os.path.expanduser("~")}
    machine_paths |= {str(Path(__file__).resolve().parents[2])}  # the checkout's parent, where ../shared/data lives
    for folder in (run_dir, bundle_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            for name, content in _contents(path):
                for machine_path in machine_paths:
                    assert machine_path.encode() not in content, f"{name} holds {machine_path!r}"
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["run"] == run_dir.name
    assert Bundle.load(bundle_dir).manifest.source is not None


def _contents(path: Path) -> list[tuple[str, bytes]]:
    """A file's bytes, and each member's of a zip (a .keras file is one)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [(f"{path.name}:{member}", archive.read(member)) for member in archive.namelist()]
    return [(path.name, path.read_bytes())]
