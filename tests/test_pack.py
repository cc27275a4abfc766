"""`smsguard pack`: a bundle cut down to what one device runs, as a bundle of its own. Fast on the tiny bundle (the files
a pack holds, its manifest, scores bit-identical to the full bundle's, verify and its two kinds of mismatch, the
refusals that name a left-out file and the pack that holds it, signing with a real key, every one-line error);
slow on the trained default bundle (every target, the size targets, verify, bench)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_file
from tiny import TEXTS

from smsguard.cli import main
from smsguard.export import EDGE_CASES, PACK_TARGETS, PackConfig, PackTarget, pack
from smsguard.runtime import Bundle, BundleError, Classifier, IntegrityError, verify_bundle
from smsguard.runtime.bundle import FORMAT_VERSION, ids_sha256
from smsguard.runtime.signing import SignatureError, read_public_key

MESSAGES = [*TEXTS, "", "Ｆ Ｒ Ｅ Ｅ entry, cаll now", "x " * 60, "WIN WIN WIN a FREE prize now"]
NPZ_BACKENDS = ("native", "numba", "numpy")
MB = 1_000_000


def packed(bundle: Path, target: str, out: Path, **config: str) -> Path:
    pack(bundle, out, PackConfig(PackTarget(target), **config))
    return out


# ---- what a pack holds ------------------------------------------------------------------------------------


def test_a_java_pack_holds_the_vocabulary_and_the_compact_model_with_its_own_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "java", tmp_path / "java")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.int8.compact.npz", "vocab.json"]
    for name in ("vocab.json", "model.int8.compact.npz"):
        assert (out / name).read_bytes() == (tiny_bundle / name).read_bytes()
    full, pack_ = Bundle.load(tiny_bundle).manifest, Bundle.load(out).manifest
    assert pack_.format_version == FORMAT_VERSION == "1.4"
    assert (pack_.serial, pack_.source, pack_.threshold, pack_.labels, pack_.created) == (full.serial, full.source, full.threshold, full.labels, full.created)
    assert [e.name for e in pack_.files] == ["vocab.json", "model.int8.compact.npz"]
    assert pack_.files[1] == next(e for e in full.files if e.name == "model.int8.compact.npz")  # the same entry: hash, size, tolerance, form
    assert dict(pack_.recommended) == {"npz": "model.int8.compact.npz"}
    assert pack_.pack is not None and pack_.pack.target == "java" and pack_.pack.runs_in == "the Java runtime of clients/java"
    assert pack_.pack.source_manifest_sha256 == hashlib.sha256((tiny_bundle / "manifest.json").read_bytes()).hexdigest()
    assert [(e.name, e.pack) for e in pack_.pack.left_out] == [
        ("model.int8.npz", "--for pi"),
        ("model.float32.npz", "--for pi --model model.float32.npz"),
    ]


def test_a_packed_manifest_keeps_every_golden_message_with_ids_in_full_only_for_the_edge_cases(tiny_bundle: Path, tmp_path: Path) -> None:
    full = Bundle.load(tiny_bundle).golden
    golden = Bundle.load(packed(tiny_bundle, "pi", tmp_path / "pi")).golden
    edge_texts = {text for text, _ in EDGE_CASES}
    assert [g.text for g in golden] == [g.text for g in full] and any(g.text in edge_texts for g in golden)
    for g, f in zip(golden, full, strict=True):
        assert g.ids_sha256 == ids_sha256(f.ids) == hashlib.sha256(np.array(f.ids, dtype="<i4").tobytes()).hexdigest()
        assert g.ids == (f.ids if g.text in edge_texts else None)
        assert (g.label, g.keras_probability, dict(g.probabilities)) == (f.label, f.keras_probability, {"model.int8.npz": f.probabilities["model.int8.npz"]})
    raw = json.loads((tmp_path / "pi" / "manifest.json").read_text(encoding="utf-8"))
    assert sum("ids" in g for g in raw["golden"]) == sum(g.text in edge_texts for g in full)


def test_a_full_bundle_still_lists_every_golden_messages_ids_for_readers_of_format_1_3(tiny_bundle: Path) -> None:
    raw = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert all(len(g["ids"]) == 52 and "ids_sha256" not in g for g in raw["golden"])


@pytest.mark.parametrize(("target", "model"), [("pi", "model.int8.npz"), ("java", "model.int8.compact.npz"), ("web", "model.int8.compact.npz")])
def test_a_pack_scores_bit_identical_to_its_full_bundle(tiny_bundle: Path, tmp_path: Path, target: str, model: str) -> None:
    out = packed(tiny_bundle, target, tmp_path / target)
    for backend in NPZ_BACKENDS:
        packed_scores = Classifier.load(out, backend=backend).predict_proba(MESSAGES)
        full_scores = Classifier.load(tiny_bundle, backend=backend, model=model).predict_proba(MESSAGES)
        assert Classifier.load(out, backend=backend).model.name == model
        assert packed_scores.tobytes() == full_scores.tobytes(), backend


def test_model_names_a_model_of_the_full_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi", model="model.float32.npz")
    assert Bundle.load(out).manifest.recommended == {"npz": "model.float32.npz"}
    assert Classifier.load(out).predict_proba(MESSAGES).tobytes() == Classifier.load(tiny_bundle, model="model.float32.npz").predict_proba(MESSAGES).tobytes()


# ---- verify: the tokenizer or the model ------------------------------------------------------------------


def test_verify_passes_on_a_pack_and_says_how_the_ids_were_compared(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = packed(tiny_bundle, "java", tmp_path / "java")
    report = verify_bundle(out)
    assert report.passed and [(r.model, r.backend) for r in report.ran] == [("model.int8.compact.npz", b) for b in NPZ_BACKENDS]
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    assert "-[✓] tokenizer: 15 of 15 messages give the export machine's ids (1 compared in full, 14 by their SHA-256)" in capsys.readouterr().err


def test_a_hashed_message_whose_ids_differ_is_the_tokenizers_problem_and_left_out_of_the_models_check(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    edit_manifest(out, lambda m: m["golden"][2].update(ids_sha256="0" * 64, probabilities={"model.int8.npz": 0.5}))
    report = verify_bundle(out, ["numpy"])
    assert report.tokenizer_problems == [f"message 2 ({TEXTS[2][:40]!r}...): ids differ from the export machine's (their SHA-256); its probabilities are not compared"]
    assert [r.passed for r in report.results] == [True]  # the wrong probability was never compared: its ids are not the golden ones


def test_a_tokenizer_that_differs_shows_as_the_tokenizers_problem_never_as_the_models(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    vocab["ngrams"]["buckets"] = 199  # every n-gram id of a message with words moves; the model still takes them
    replace_file(out, "vocab.json", json.dumps(vocab).encode())
    report = verify_bundle(out, ["numpy"])
    golden = Bundle.load(out).golden
    assert len(report.tokenizer_problems) == sum(g.text != "" for g in golden) == 14
    assert all(p.endswith("ids differ from the export machine's (their SHA-256); its probabilities are not compared") for p in report.tokenizer_problems)
    assert [r.passed for r in report.results] == [True]  # the one message left (the empty one) still matches: the model is fine
    assert not report.passed


def test_a_listed_message_whose_ids_differ_says_which_part_differs_and_its_model_still_runs_on_the_golden_ids(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    edge = next(i for i, g in enumerate(Bundle.load(out).golden) if g.ids is not None)

    def change(m: dict) -> None:
        m["golden"][edge]["ids"][-1] = 7  # the last n-gram id of the empty message, whose row is all zeros
        m["golden"][edge]["ids_sha256"] = ids_sha256(m["golden"][edge]["ids"])

    edit_manifest(out, change)
    report = verify_bundle(out, ["numpy"])
    assert report.tokenizer_problems == [f"message {edge} (''...): ids differ from the export machine's (n-gram ids)"]
    assert not report.results[0].passed  # the model ran on the golden ids, which now hold an n-gram the model scores


def test_a_probability_that_differs_is_the_models_problem_alone(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    edit_manifest(out, lambda m: m["golden"][3]["probabilities"].update({"model.int8.npz": 0.999}))
    report = verify_bundle(out, ["numpy"])
    assert report.tokenizer_problems == [] and report.results[0].problems[0].startswith("1 of 15 messages in one batch differ by more than 0.01")


def test_golden_ids_that_do_not_match_their_hash_are_a_malformed_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    edge = next(i for i, g in enumerate(Bundle.load(out).golden) if g.ids is not None)
    edit_manifest(out, lambda m: m["golden"][edge]["ids"].__setitem__(0, 3))
    with pytest.raises(BundleError, match=r"^manifest '.*' is malformed: missing or invalid ids_sha256 of golden message '', which does not match its ids$"):
        Bundle.load(out)
    edit_manifest(out, lambda m: [m["golden"][edge].pop(key) for key in ("ids", "ids_sha256")])
    with pytest.raises(BundleError, match=r"^manifest '.*' is malformed: missing or invalid 'ids'$"):
        Bundle.load(out)


# ---- refusals that name the file and the pack that has it ----------------------------------------------


def test_a_runtime_asked_for_a_file_a_pack_left_out_names_it_and_the_pack_that_holds_it(tiny_bundle: Path, tmp_path: Path) -> None:
    out = packed(tiny_bundle, "java", tmp_path / "java")
    for model, args in (("model.int8.npz", "--for pi"), ("model.float32.npz", "--for pi --model model.float32.npz")):
        expected = f"bundle '{out}' is packed for java and does not hold model '{model}' of its full bundle; `smsguard pack BUNDLE {args}` makes a pack that holds it"
        with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
            Classifier.load(out, model=model)
    expected = f"bundle '{out}' has no onnx model for backend 'onnxruntime'; it is packed for java (the Java runtime of clients/java)"
    with pytest.raises(BundleError, match=f"^{re.escape(expected)}$"):
        Classifier.load(out, backend="onnxruntime")
    with pytest.raises(BundleError, match=rf"^bundle '{out}' has no model 'model.tflite'; it has: model.int8.compact.npz$"):
        Classifier.load(out, model="model.tflite")


def test_the_cli_prints_a_refusal_of_a_pack_in_one_line(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = packed(tiny_bundle, "web", tmp_path / "web")
    capsys.readouterr()
    assert main(["predict", "--bundle", str(out), "--model", "model.float32.npz", "hi"]) == 2
    err = capsys.readouterr().err
    assert err == f"ERROR bundle '{out}' is packed for web and does not hold model 'model.float32.npz' of its full bundle; `smsguard pack BUNDLE --for pi --model model.float32.npz` makes a pack that holds it\n"


# ---- the command -----------------------------------------------------------------------------------------


def test_pack_prints_each_file_with_its_size_and_the_total(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pi"
    assert main(["pack", str(tiny_bundle), "--for", "pi", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    sizes = {name: (out / name).stat().st_size for name in ("vocab.json", "model.int8.npz", "manifest.json")}
    assert err[0] == f"* Packing {tiny_bundle} for pi (the Python runtime with its native backend, as on a Raspberry Pi)"
    rows = [line.split() for line in err[1:5]]
    assert [(r[0], int(r[1].replace(",", "")), r[2]) for r in rows[:3]] == [(name, size, "bytes") for name, size in sizes.items()]
    assert rows[3][:3] == ["total", f"{sum(sizes.values()):,}", "bytes"]
    assert err[5] == (
        f"* Pack for pi written to {out} (2 of the bundle's 4 files, serial 1); check it with `smsguard verify {out}` (the golden vectors replayed in the Python runtime)"
    )


def test_pack_refuses_bad_input_in_one_line(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = packed(tiny_bundle, "pi", tmp_path / "pi")
    cases = [
        (["--for", "pi", "--out", str(out)], f"pack '{out}' already exists; pass --force to replace it, or choose another --out"),
        (["--for", "android", "--out", str(tmp_path / "a")],
         f"bundle '{tiny_bundle}' has no model to pack for android: LiteRT on Android, fed by the Java library's encode runs .tflite models; it has: model.float32.npz, model.int8.npz, model.int8.compact.npz"),
        (["--for", "mediapipe", "--out", str(tmp_path / "m")],
         f"bundle '{tiny_bundle}' has no model to pack for mediapipe: MediaPipe's TextClassifier on Android, iOS or the web runs the mediapipe client models; it has: model.float32.npz, model.int8.npz, model.int8.compact.npz"),
        (["--for", "java", "--model", "model.onnx", "--out", str(tmp_path / "j")], f"bundle '{tiny_bundle}' has no model 'model.onnx'; it has: model.float32.npz, model.int8.npz, model.int8.compact.npz"),
        (["--for", "java", "--model", "vocab.json", "--out", str(tmp_path / "j")], f"bundle '{tiny_bundle}' has no model 'vocab.json'; it has: model.float32.npz, model.int8.npz, model.int8.compact.npz"),
        (["--for", "mediapipe", "--model", "model.int8.npz", "--out", str(tmp_path / "m")],
         "model 'model.int8.npz' is a model of format npz, which MediaPipe's TextClassifier on Android, iOS or the web does not run; a pack for mediapipe holds one of: none of its files"),
        (["--for", "pi", "--sign-key", str(tmp_path / "none.key"), "--out", str(tmp_path / "s")], f"private key '{tmp_path / 'none.key'}' is missing"),
    ]
    for args, message in cases:
        assert main(["pack", str(tiny_bundle), *args]) == 2, args
        assert capsys.readouterr().err.splitlines()[-1] == f"ERROR {message}"
    assert main(["pack", str(out), "--for", "java", "--out", str(tmp_path / "again")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"ERROR bundle '{out}' is already a pack (for pi); pack the full bundle it was made from"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pi"]  # nothing half written


def test_pack_refuses_a_full_bundle_whose_file_changed(tiny_copy: Path, tmp_path: Path) -> None:
    model = tiny_copy / "model.int8.compact.npz"
    model.write_bytes(model.read_bytes()[:-1] + b"\x01")
    with pytest.raises(IntegrityError, match=rf"^bundle file '{model}' does not match its manifest: expected sha256 [0-9a-f]{{64}}, found [0-9a-f]{{64}}; the full bundle was changed, export it again before packing$"):
        pack(tiny_copy, tmp_path / "java", PackConfig(PackTarget.JAVA))
    assert not (tmp_path / "java").exists()


def test_every_target_is_declared_once_with_the_runtime_that_reads_it() -> None:
    assert [spec.target for spec in PACK_TARGETS] == list(PackTarget) == ["pi", "android", "java", "web", "mediapipe"]
    assert all(spec.runs_in and "{pack}" in spec.check for spec in PACK_TARGETS)
    with pytest.raises(ValueError, match="'ios' is not a valid PackTarget"):
        PackConfig("ios")  # type: ignore[arg-type]


def test_bench_runs_on_a_pack(tiny_bundle: Path, tmp_path: Path) -> None:
    from smsguard.bench import BenchConfig, run_benchmark

    out = packed(tiny_bundle, "java", tmp_path / "java")
    result = run_benchmark(out, BenchConfig(runs=10, warmup=1, threads=1))
    assert {(r["system"], r["backend"]) for r in result["results"]} == {("model.int8.compact.npz", b) for b in NPZ_BACKENDS}
    assert result["update"]["reload_ms"] > 0


# ---- the Java and JavaScript runtimes read their packs -----------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    from client_ports import require_tools

    require_tools("node")
    return "node"


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The jar as `make clients-java` builds it, and the command that runs LibraryCheck against it."""
    from client_ports import require_tools
    from test_client_java import CHECKS, JAR, ROOT

    require_tools("javac", "java", "jar", "make")
    done = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "clients-java"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    classes = tmp_path_factory.mktemp("java-checks")
    subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-cp", str(JAR), "-d", str(classes), str(CHECKS)], check=True)
    return JAR, ["java", "-cp", f"{JAR}:{classes}", "dev.smsguard.LibraryCheck"]


def conformance_of(pack_dir: Path, out: Path) -> Path:
    from smsguard.export import write_conformance

    write_conformance(pack_dir, out)
    return out


@pytest.mark.parametrize("kernel", ["auto", "js"])
def test_the_javascript_runtime_conforms_on_a_web_pack_with_its_compact_model(node: str, tiny_bundle: Path, tmp_path: Path, kernel: str) -> None:
    from test_client_js import assert_conforms

    out = packed(tiny_bundle, "web", tmp_path / "web")
    assert_conforms(out, conformance_of(out, tmp_path / "conformance.json"), kernel)


def test_the_java_runtime_conforms_on_a_java_pack_with_its_compact_model(java: tuple[Path, list[str]], tiny_bundle: Path, tmp_path: Path) -> None:
    jar, _ = java
    out = packed(tiny_bundle, "java", tmp_path / "java")
    conformance = conformance_of(out, tmp_path / "conformance.json")
    done = subprocess.run(["java", "-jar", str(jar), str(out), "--conformance", str(conformance)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    n = len(json.loads(conformance.read_text())["cases"])
    assert lines[1:] == [f"  -[✓] ids: {n} of {n} cases identical", *lines[2:3], f"* All {n} cases conform: ids identical, 1 models within 0.00001 with the same labels"]
    assert lines[2].startswith(f"  -[✓] model.int8.compact.npz: {n} of {n} probabilities within 0.00001 with the same label (max diff ")


def _without_npz(pack_dir: Path) -> Path:
    """A pack that holds no .npz model (as an android pack of a bundle with a .tflite model), whose full bundle's compact
    model is in the web and java packs."""
    def change(m: dict) -> None:
        left = [*m["pack"]["left_out"], {"name": "model.int8.compact.npz", "kind": "model", "format": "npz", "pack": "--for java", "targets": ["java", "web"]}]
        m.update(files=m["files"][:1], recommended={}, pack=dict(m["pack"], target="android", runs_in="LiteRT on Android", left_out=left))

    edit_manifest(pack_dir, change)
    return pack_dir


def test_the_ports_refuse_what_a_pack_left_out_naming_the_pack_that_holds_it(node: str, java: tuple[Path, list[str]], tiny_bundle: Path, tmp_path: Path) -> None:
    """The Python runtime's wording, in the JavaScript and Java runtimes."""
    from test_client_js import cli

    jar, _ = java
    for target in ("web", "java"):
        out = packed(tiny_bundle, target, tmp_path / target)
        expected = (f"ERROR bundle '{out}' is packed for {target} and does not hold model 'model.float32.npz' of its full bundle; "
                    "`smsguard pack BUNDLE --for pi --model model.float32.npz` makes a pack that holds it\n")
        done = cli(out, "--model", "model.float32.npz", lines=['"hi"'])
        assert (done.returncode, done.stderr) == (2, expected)
        done_java = subprocess.run(["java", "-jar", str(jar), str(out), "--model", "model.float32.npz"], input="", capture_output=True, text=True, timeout=120, check=False)
        assert (done_java.returncode, done_java.stderr) == (2, expected)
    no_npz = _without_npz(tmp_path / "java")
    done = cli(no_npz, lines=['"hi"'])
    assert (done.returncode, done.stderr) == (2, f"ERROR bundle '{no_npz}' recommends no .npz model; it has: (none); it is packed for android (LiteRT on Android); "
                                                 "its full bundle's model.int8.compact.npz is left out, and `smsguard pack BUNDLE --for web` makes a pack that holds it\n")
    done = subprocess.run(["java", "-jar", str(jar), str(no_npz)], input="", capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (2, f"ERROR bundle '{no_npz}' recommends no .npz model; name one of: []; it is packed for android (LiteRT on Android); "
                                                 "its full bundle's model.int8.compact.npz is left out, and `smsguard pack BUNDLE --for java` makes a pack that holds it\n")


def test_threads_share_one_java_classifier_of_a_compact_model_folding_its_rows_as_they_go(java: tuple[Path, list[str]], tiny_bundle: Path, tmp_path: Path) -> None:
    """A compact table's rows are folded on first use: eight threads meeting new words at once give the serial results."""
    _, checks = java
    out = packed(tiny_bundle, "java", tmp_path / "java")
    texts = [*MESSAGES, *(" ".join(TEXTS[i:] + TEXTS[:i]) for i in range(len(TEXTS)))]
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    done = subprocess.run([*checks, "threads", str(out), str(tmp_path / "texts.jsonl"), "8", "3"], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(done.stdout) == {"threads": 8, "calls": 8 * 3 * len(texts), "mismatches": 0}


def test_the_java_encoder_reads_a_pack_without_a_model_and_gives_its_golden_ids(java: tuple[Path, list[str]], tiny_bundle: Path, tmp_path: Path) -> None:
    """What an app that runs the .tflite model in LiteRT does with an android pack: the Java library's encode alone."""
    _, checks = java
    out = _without_npz(packed(tiny_bundle, "java", tmp_path / "java"))
    golden = Bundle.load(out).golden
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps(g.text) + "\n" for g in golden), encoding="utf-8")
    done = subprocess.run([*checks, "encode", str(out), str(tmp_path / "texts.jsonl")], capture_output=True, text=True, timeout=120, check=True)
    ids = json.loads(done.stdout)["ids"]
    assert [ids_sha256(row) for row in ids] == [g.digest for g in golden]


def test_serve_web_serves_a_web_pack_and_refuses_a_pack_without_an_npz_model_naming_the_web_pack(tiny_bundle: Path, tmp_path: Path) -> None:
    from smsguard._serve_web import WebError, site

    web = packed(tiny_bundle, "web", tmp_path / "web")
    served = site(web)
    assert sorted(name for name in served["files"] if name.startswith("/bundle/")) == [
        "/bundle/config.json", "/bundle/manifest.json", "/bundle/model.int8.compact.npz", "/bundle/vocab.json"]
    _without_npz(web)
    expected = (f"bundle '{web}' has no .npz model for the page's JavaScript runtime; it is packed for android (LiteRT on Android); its full bundle's "
                "model.int8.compact.npz is left out, and `smsguard pack BUNDLE --for web` makes a pack that holds it")
    with pytest.raises(WebError, match=f"^{re.escape(expected)}$"):
        site(web)


# ---- signing ---------------------------------------------------------------------------------------------


def test_a_pack_is_signed_again_with_a_real_key_over_its_own_manifest(tiny_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cryptography", reason="signing needs smsguard[sign]")
    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys)]) == 0
    assert main(["sign", str(tiny_copy), "--key", str(keys / "smsguard.key")]) == 0
    unsigned, signed = tmp_path / "unsigned", tmp_path / "signed"
    capsys.readouterr()
    assert main(["pack", str(tiny_copy), "--for", "java", "--out", str(unsigned)]) == 0
    assert "  note: the full bundle is signed, the pack is not (a signature covers one manifest, and the pack's is new): pass --sign-key to sign it" in capsys.readouterr().err
    assert main(["pack", str(tiny_copy), "--for", "java", "--out", str(signed), "--sign-key", str(keys / "smsguard.key")]) == 0
    assert "manifest.sig" in capsys.readouterr().err
    public = read_public_key(keys / "smsguard.pub")
    assert Bundle.load(signed, trusted_keys=[public]).signed_by == public.key_id
    assert main(["verify", str(signed), "--trusted-key", str(keys / "smsguard.pub")]) == 0
    with pytest.raises(SignatureError, match=rf"^bundle '{unsigned}' is not signed \(no manifest.sig\), and trusted keys were given"):
        Bundle.load(unsigned, trusted_keys=[public])
    shutil.copy(tiny_copy / "manifest.sig", unsigned / "manifest.sig")  # the full bundle's signature covers its own manifest only
    with pytest.raises(SignatureError, match=rf"^bundle '{unsigned}': the signature by key {public.key_id} does not match its manifest"):
        Bundle.load(unsigned, trusted_keys=[public])


# ---- the trained default bundle ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def packs(fused_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packs")
    return {str(spec.target): packed(fused_bundle, str(spec.target), root / str(spec.target)) for spec in PACK_TARGETS}


def _total(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


@pytest.mark.slow
def test_the_default_models_android_java_and_web_packs_are_under_2_mb_with_manifests_under_50_kb(packs: dict[str, Path]) -> None:
    for target in ("android", "java", "web"):
        assert _total(packs[target]) <= 2 * MB, (target, _total(packs[target]))
    for target, folder in packs.items():
        assert (folder / "manifest.json").stat().st_size <= 50_000, target
    assert {p.name for p in packs["android"].iterdir()} == {"vocab.json", "model.dynamic_int8.tflite", "manifest.json"}
    assert {p.name for p in packs["web"].iterdir()} == {"vocab.json", "model.int8.compact.npz", "manifest.json"}
    assert {p.name for p in packs["mediapipe"].iterdir()} == {"vocab.json", "model.mediapipe.dynamic_int8.tflite", "mediapipe.probe.tflite", "manifest.json"}


@pytest.mark.slow
def test_every_pack_of_the_default_bundle_verifies_in_the_cli(packs: dict[str, Path]) -> None:
    for target, folder in packs.items():
        done = subprocess.run([sys.executable, "-m", "smsguard", "verify", str(folder)], capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, (target, done.stderr[-2000:])
        assert "by their SHA-256" in done.stderr


@pytest.mark.slow
def test_packs_of_the_default_bundle_score_bit_identical_to_it(fused_bundle: Path, packs: dict[str, Path], uci_texts: list[str]) -> None:
    texts = uci_texts[:2000] + [g.text for g in Bundle.load(fused_bundle).golden]
    for target, backend in (("pi", "native"), ("pi", "numpy"), ("java", "native"), ("web", "numpy"), ("android", "litert")):
        clf = Classifier.load(packs[target], backend=backend)
        full = Classifier.load(fused_bundle, backend=backend, model=clf.model.name)
        assert clf.predict_proba(texts).tobytes() == full.predict_proba(texts).tobytes(), (target, backend)


@pytest.mark.slow
def test_bench_runs_on_a_pack_of_the_default_bundle(packs: dict[str, Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "smsguard", "bench", str(packs["android"]), "--runs", "10", "--warmup", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| model.dynamic_int8.tflite | litert |" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["auto", "js"])
def test_the_javascript_runtime_conforms_on_the_default_bundles_web_pack_in_node(node: str, packs: dict[str, Path], tmp_path: Path, kernel: str) -> None:
    from test_client_js import assert_conforms

    assert_conforms(packs["web"], conformance_of(packs["web"], tmp_path / "conformance.json"), kernel)


@pytest.mark.slow
def test_the_default_bundles_web_pack_in_the_demo_page_in_headless_chromium(node: str, packs: dict[str, Path], uci_texts: list[str], tmp_path: Path) -> None:
    """serve-web serves the web pack alone (no MediaPipe client in it) and the page runs its compact model with both
    kernels on the pack's golden messages, in Debian's chromium with every request to another host blocked."""
    from test_client_js import ROOT, _require

    from smsguard._serve_web import make_server, serve_in_thread
    from smsguard.export import FLOAT_ATOL

    _require("chromium", "puppeteer")
    web = packs["web"]
    conformance = conformance_of(web, tmp_path / "conformance.json")
    (tmp_path / "texts.json").write_text(json.dumps(uci_texts[:200]))
    server = make_server(web, 0)
    serve_in_thread(server)
    try:
        done = subprocess.run(["node", str(ROOT / "web" / "test" / "js-check.mjs"), f"http://127.0.0.1:{server.server_address[1]}/", str(conformance),
                               str(tmp_path / "texts.json"), str(tmp_path / "shot.png"), shutil.which("chromium") or "chromium", "1"],
                              capture_output=True, text=True, timeout=600, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["pageError"] is None and not result["errors"]
    spec = json.loads(conformance.read_text())
    assert spec["models"] == ["model.int8.compact.npz"] and result["conformance"]["ids"] == [case["ids"] for case in spec["cases"]]
    want = np.array([case["probabilities"]["model.int8.compact.npz"] for case in spec["cases"]])
    for kernel in ("wasm", "js"):
        got = np.array([r["probability"] for r in result["conformance"]["models"][f"model.int8.compact.npz {kernel}"]])
        assert np.abs(got - want).max() <= FLOAT_ATOL, kernel


@pytest.mark.slow
def test_the_java_runtime_conforms_on_the_default_bundles_java_pack(java: tuple[Path, list[str]], packs: dict[str, Path], tmp_path: Path) -> None:
    jar, _ = java
    conformance = conformance_of(packs["java"], tmp_path / "conformance.json")
    done = subprocess.run(["java", "-jar", str(jar), str(packs["java"]), "--conformance", str(conformance)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith("cases conform: ids identical, 1 models within 0.00001 with the same labels")


@pytest.mark.slow
def test_the_android_pack_in_litert_fed_by_the_java_encoder_gives_the_full_bundles_probabilities(java: tuple[Path, list[str]], packs: dict[str, Path], tmp_path: Path) -> None:
    """The Android path: the Java library's ids (the pack's vocabulary) into the pack's .tflite model in LiteRT, on the
    golden messages: the ids hash to the golden ones, and the probabilities are the full bundle's, bit for bit."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT is not installed: pip install 'smsguard[litert]'")
    from smsguard.runtime import backend_info, open_session

    _, checks = java
    android = Bundle.load(packs["android"])
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps(g.text) + "\n" for g in android.golden), encoding="utf-8")
    ids = np.array(json.loads(subprocess.run([*checks, "encode", str(android.path), str(tmp_path / "texts.jsonl")], capture_output=True, text=True,
                                             timeout=300, check=True).stdout)["ids"], dtype=np.int32)
    assert [ids_sha256(row) for row in ids] == [g.digest for g in android.golden]
    (entry,) = android.models.values()
    got = open_session(backend_info("litert"), android.model_path(entry), entry).run(ids)
    expected = np.array([g.probabilities[entry.name] for g in android.golden], dtype=np.float32)
    assert got.tobytes() == expected.tobytes()
