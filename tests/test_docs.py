"""The documentation cannot drift from the code: every CLI argument has a help text (the reference page is
generated from the parser), every file and field of a bundle is in the format's specification, the README
stays short and its headline table is the one the results files give, and the site loads nothing from
the network."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cannot_run, missing_module

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUNDLE_FORMAT = (DOCS / "reference" / "bundle-format.md").read_text(encoding="utf-8")


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cli_reference = load(DOCS / "hooks" / "cli_reference.py", "cli_reference")
headline = load(ROOT / "benchmarks" / "headline.py", "headline")


# ---- the command line ------------------------------------------------------------------------------


def test_every_cli_command_and_argument_has_a_help_text():
    assert cli_reference.undocumented(cli_reference.parser()) == []


def test_the_cli_reference_page_has_a_section_for_every_command():
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    rendered = cli_reference.render(page)
    for name, (command, _) in cli_reference.commands(cli_reference.parser()).items():
        assert f"## smsguard {name}\n" in rendered
        for action in cli_reference.arguments(command):
            for flag in action.option_strings or [action.metavar or action.dest]:
                assert f"`{flag}" in rendered, (name, flag)


def test_a_flag_without_help_fails_the_reference():
    root = argparse.ArgumentParser(prog="smsguard")
    commands = root.add_subparsers()
    command = commands.add_parser("predict", help="classify messages")
    command.add_argument("--bundle", help="the bundle folder")
    command.add_argument("--new-flag")
    command.add_argument("--only-default", default=3, help=" (default: 3)")
    page = "<!-- smsguard-cli predict -->\n"
    with pytest.raises(ValueError, match=re.escape(
        "the CLI reference cannot be generated: an argument or command without a help text: smsguard predict --new-flag; "
        "an argument or command without a help text: smsguard predict --only-default"
    )):
        cli_reference.render(page, root)
    with pytest.raises(ValueError, match=re.escape("the page has no line `<!-- smsguard-cli predict -->` for the command predict")):
        cli_reference.render("nothing here\n", root)


# ---- the bundle format -------------------------------------------------------------------------------


def documented(name: str) -> bool:
    return f"`{name}`" in BUNDLE_FORMAT


def test_every_file_a_bundle_can_hold_is_in_the_bundle_format():
    from smsguard.export._mediapipe import PROBE_NAME, ClientQuantization, model_name
    from smsguard.export._targets import TARGETS
    from smsguard.runtime.bundle import MANIFEST_NAME, PARITY_NAME, VOCAB_NAME
    from smsguard.runtime.signing import SIGNATURE_NAME

    names = [t.file_name for t in TARGETS] + [model_name(q) for q in ClientQuantization]
    names += [PROBE_NAME, MANIFEST_NAME, PARITY_NAME, VOCAB_NAME, SIGNATURE_NAME]
    missing = [n for n in names if n not in BUNDLE_FORMAT]
    assert missing == []


def test_every_manifest_field_is_in_the_bundle_format():
    import dataclasses

    from smsguard.runtime.bundle import BundleFile, Form, GoldenVector, LeftOut, Manifest, ModelFormat, PackInfo, Source, TensorSpec, ids_sha256

    tensor = TensorSpec("token_ids", "int32", (None, 40))
    model = BundleFile("model.int8.npz", "model", 1, "0" * 64, "npz", "int8", "primed", (tensor,), (tensor,), {"tflite-runtime": "2.3.0"}, 0.5, 0.01, Form.COMPACT)
    golden = GoldenVector("hi", (0, 1), "ham", 0.1, {"model.int8.npz": 0.1}, {"model.int8.npz": 0.1}, ids_sha256((0, 1)))
    source = Source("run", "model.keras", "0" * 64, "0" * 64)
    left = LeftOut("model.float32.tflite", "model", "tflite", "--for android --model model.float32.tflite")
    pack = PackInfo("java", "the Java runtime", "0" * 64, "2026-12-04T00:00:00+00:00", (left,))
    manifest = Manifest(0.5, (model,), recommended={ModelFormat.NPZ: "model.int8.npz"}, golden=(golden,), source=source, clients={"mediapipe": {}}, pack=pack)
    fields = set(manifest.to_dict()) | set(model.to_dict()) | set(golden.to_dict()) | set(source.to_dict()) | set(tensor.to_dict())
    fields |= set(pack.to_dict()) | set(left.to_dict())
    fields |= {f.name for kind in (Manifest, BundleFile, GoldenVector, Source, TensorSpec, PackInfo, LeftOut) for f in dataclasses.fields(kind)}  # optional ones too
    assert sorted(f for f in fields if not documented(f)) == []


def test_every_vocabulary_field_is_in_the_bundle_format():
    from smsguard.runtime import NgramConfig, NgramHasher, TokenizerConfig, Vocabulary
    from smsguard.runtime._text import TextSpec

    words = Vocabulary.fit(["win a prize now", "see you at six"], TokenizerConfig(num_words=10, oov_token="<OOV>"), TextSpec.of_this_python(normalise=True))
    vocabulary = words.with_ngrams(NgramHasher(NgramConfig(buckets=64)))
    data = vocabulary.to_dict()
    fields = set(data) | set(data["tokenizer"]) | set(data["sequence"]) | set(data["ngrams"]) | set(data["text"])
    assert data["text"]["normalise"] is not None
    spec = (DOCS / "reference" / "input-spec.md").read_text(encoding="utf-8")  # the text section is specified there
    text_fields = set(data["text"]["lowercase"]) | set(data["text"]["lowercase"]["final_sigma"]) | set(data["text"]["normalise"]) | set(data["text"]["normalise"]["join"])
    assert sorted(f for f in text_fields if f'"{f}"' not in spec) == []
    assert sorted(f for f in fields if not documented(f)) == []


def test_every_npz_array_and_meta_field_the_runtime_reads_is_in_the_bundle_format():
    sources = "".join((ROOT / "smsguard" / "runtime" / name).read_text(encoding="utf-8") for name in ("_lstm.py", "_lstm_native.py"))
    arrays = set(re.findall(r'data\["(\w+)"\]', sources))
    meta = set(re.findall(r'meta(?:\.get\(|\[)"(\w+)"', sources))
    assert {"recurrent", "primed_h", "ngram_scores"} <= arrays  # the pattern still finds what the loaders read
    assert sorted(name for name in arrays | meta if not documented(name)) == []


def test_every_signature_and_parity_field_is_in_the_bundle_format(tmp_path):
    import dataclasses
    import json

    if missing_module("cryptography", "pip install 'smsguard[sign]'"):
        cannot_run(missing_module("cryptography", "pip install 'smsguard[sign]'"))
    from smsguard.export._parity import ModelParity
    from smsguard.runtime.signing import generate_keys, sign_manifest

    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    private, _ = generate_keys(tmp_path / "keys")
    signature = json.loads(sign_manifest(tmp_path, private).read_text(encoding="utf-8"))
    parity = [f.name for f in dataclasses.fields(ModelParity)]
    assert sorted(f for f in [*signature, *parity] if not documented(f)) == []


# ---- the README --------------------------------------------------------------------------------------


def test_the_readme_fits_in_200_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200


def test_the_headline_table_is_the_one_the_results_files_give():
    """README.md and benchmarks/results/headline.md hold what benchmarks/headline.py makes of the results."""
    table = headline.headline_table()
    assert (ROOT / "benchmarks" / "results" / "headline.md").read_text(encoding="utf-8") == table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert headline.readme_with(table, readme) == readme


def test_the_headline_table_reads_its_figures_from_the_results(tmp_path, monkeypatch):
    import json
    import shutil

    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    accuracy = json.loads((results / "accuracy.json").read_text(encoding="utf-8"))
    accuracy["summary"]["recommended tflite"]["accuracy"]["mean"] = 0.5
    (results / "accuracy.json").write_text(json.dumps(accuracy), encoding="utf-8")
    monkeypatch.setattr(headline, "RESULTS", results)
    assert "| accuracy on held-out UCI test messages (mean of 3 seeds) | 50.00% |" in headline.headline_table()


# ---- the site ----------------------------------------------------------------------------------------


def test_the_site_builds_strictly_and_loads_nothing_from_the_network(tmp_path):
    if missing_module("mkdocs", "pip install 'smsguard[docs]'"):
        cannot_run(missing_module("mkdocs", "pip install 'smsguard[docs]'"))
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],  # not --quiet: it hides the warnings --strict counts
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    external = re.compile(r"""(?:src|href)=["']?(?:https?:)?//|@import\s+url\(["']?(?:https?:)?//|fonts\.googleapis|fonts\.gstatic""")
    loaded = []
    for page in site.rglob("*"):
        if page.suffix in (".html", ".css", ".js"):
            text = page.read_text(encoding="utf-8", errors="replace")
            # links a reader clicks (<a href>) may leave the site; what a page loads by itself may not
            text = re.sub(r"<a\s[^>]*>", "", text)
            loaded += [f"{page.relative_to(site)}: {m.group(0)}" for m in external.finditer(text)]
    assert loaded == []
    assert (site / "reference" / "cli" / "index.html").is_file()
    assert (site / "assets" / "performance.png").is_file()
    api = (site / "reference" / "python-api" / "index.html").read_text(encoding="utf-8")
    assert "predict_proba" in api and "verify_bundle" in api  # mkdocstrings rendered the docstrings


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme) if "://" not in t]
    assert "docs/tutorial/index.md" in targets
    assert [t for t in targets if not (ROOT / t).exists()] == []


MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|tmp|root|home|Users|var/folders)/[^\s`'\"|)]*")


def test_no_results_file_names_a_path_of_the_machine_that_wrote_it():
    """Results travel with the repository: a command in them names a folder by its last part (DIR/bundle), never where it was."""
    found = {path.name: MACHINE_PATH.findall(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "benchmarks" / "results").glob("*.*")) if path.suffix in (".md", ".json")}
    assert {name: paths for name, paths in found.items() if paths} == {}


def test_a_benchmark_command_names_outside_paths_by_their_last_part(monkeypatch, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _results import command_line
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    (tmp_path / "bundle").mkdir()
    monkeypatch.setattr(sys, "argv", ["ports.py", str(tmp_path / "bundle"), "--rounds", "3", str(ROOT / "benchmarks" / "results"), "--out=x"])
    assert command_line("ports.py") == "python benchmarks/ports.py DIR/bundle --rounds 3 benchmarks/results --out=x"
