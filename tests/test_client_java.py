"""The Java runtime of a bundle (clients/java), in a real JVM, against the Python runtime: the conformance file,
every UCI message and a generated Unicode set (ids identical, probabilities within 1e-5 of the native backend on
the same .npz, labels identical), the Java ids in Python's LiteRT on the bundle's .tflite models, 1 MB messages,
threads, the command-line contract and its errors. Outside CI the tests skip without a JDK; under CI they fail."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_file
from client_ports import compare_with_python, require_tools, run_client
from conftest import cannot_run, missing_module
from unicode_texts import megabyte_texts, unicode_texts

from smsguard.export import MIN_LABEL_AGREEMENT, Conformance, python_problems, write_conformance
from smsguard.runtime import Bundle, Classifier, Decision, backend_info, open_session

ROOT = Path(__file__).resolve().parents[1]
JAR = ROOT / "clients" / "java" / "build" / "smsguard-client.jar"
CHECKS = ROOT / "clients" / "java" / "test" / "dev" / "smsguard" / "LibraryCheck.java"
JAR_LIMIT = 100 * 1024  # the size target for the library as a jar


@pytest.fixture(scope="session")
def jar() -> Path:
    """The jar as `make clients-java` builds it (javac --release 8, the JDK alone)."""
    require_tools("javac", "java", "jar", "jdeps", "make")
    done = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "clients-java"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return JAR


@pytest.fixture(scope="session")
def checks(jar: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs LibraryCheck (the API checks the command line cannot reach) against the jar."""
    classes = tmp_path_factory.mktemp("java-checks")
    subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-cp", str(jar), "-d", str(classes), str(CHECKS)], check=True)
    return ["java", "-cp", f"{jar}:{classes}", "dev.smsguard.LibraryCheck"]


def client(jar: Path, bundle: Path, *flags: str) -> list[str]:
    return ["java", "-jar", str(jar), str(bundle), *flags]


def run_lines(command: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120, check=False)


# ---- fast: the jar and its usage errors ------------------------------------------------------------------------


def test_the_jar_is_small_and_holds_the_library_alone(jar):
    listing = subprocess.run(["jar", "tf", str(jar)], capture_output=True, text=True, check=True).stdout.split()
    assert JAR.stat().st_size <= JAR_LIMIT
    assert all(name.startswith(("META-INF/", "dev/")) for name in listing) and "dev/smsguard/Classifier.class" in listing


@pytest.mark.slow  # jdeps reads every class: seconds
def test_the_jar_needs_the_java_base_module_alone(jar):
    modules = subprocess.run(["jdeps", "--print-module-deps", str(jar)], capture_output=True, text=True, check=True).stdout.strip()
    assert modules == "java.base"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "ERROR no bundle given; usage: java -jar smsguard-client.jar BUNDLE [--model NAME] [--personal DIR] [--ids | --conformance FILE | --bench [--rounds N]]"),
        (["b", "--idz"], "ERROR unknown option '--idz'; usage: java -jar smsguard-client.jar BUNDLE [--model NAME] [--personal DIR] [--ids | --conformance FILE | --bench [--rounds N]]"),
        (["b", "--rounds", "0"], "ERROR --rounds must be a positive integer, found '0'"),
        (["b", "--model"], "ERROR --model needs a value; usage: java -jar smsguard-client.jar BUNDLE [--model NAME] [--personal DIR] [--ids | --conformance FILE | --bench [--rounds N]]"),
        (["/nonexistent/bundle"], "ERROR bundle '/nonexistent/bundle' does not exist; create one with `smsguard export RUN_DIR --out /nonexistent/bundle`"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(jar, args, message):
    done = run_lines(["java", "-jar", str(jar), *args], b"")
    assert (done.returncode, done.stderr.decode(), done.stdout) == (2, message + "\n", b"")


# ---- slow: on the trained default (fused) bundle ---------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_file(fused_bundle: Path, data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conformance") / "conformance.json"
    write_conformance(fused_bundle, out, data_path)
    return out


@pytest.mark.slow
def test_the_conformance_file_travels_as_ascii_and_holds_the_hard_cases(conformance_file, fused_bundle):
    raw = conformance_file.read_bytes()
    raw.decode("ascii")  # every non-ASCII character, lone surrogates included, as a \u escape
    assert b"\\ud800" in raw and b"\\udfff" in raw
    data = Conformance.read(conformance_file)
    bundle = Bundle.load(fused_bundle)
    assert data.models == tuple(name for name, entry in bundle.models.items() if entry.format == "npz")
    names = [case["name"] for case in data.cases]
    whitespace = bundle.vocabulary.ngrams.to_dict()["whitespace"]
    assert all(f"whitespace U+{ord(char):04X} between words" in names for char in whitespace)
    assert sum(name.startswith("UCI line ") for name in names) == 100
    assert bundle.vocabulary.text is not None and bundle.vocabulary.text.normaliser is not None  # the default preset normalises
    spaced = next(case for case in data.cases if case["name"] == "spaced letters")
    assert bundle.vocabulary.normalise(spaced["text"]) == "FREE entry WINNER"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_the_python_runtime_conforms(conformance_file, fused_bundle, backend):
    assert python_problems(fused_bundle, Conformance.read(conformance_file), backend) == []


@pytest.mark.parametrize("which", ["tiny_bundle", pytest.param("fused_bundle", marks=pytest.mark.slow), pytest.param("bundle_dir", marks=pytest.mark.slow)])
def test_the_java_runtime_conforms(jar, which, request, tmp_path):
    """On the fast tier's tiny bundle, the default (fused, normalising) bundle and a word model alone (the tuned
    preset: no bag, no normaliser)."""
    bundle = request.getfixturevalue(which)
    conformance_file = tmp_path / "conformance.json"
    write_conformance(bundle, conformance_file)
    done = run_lines(client(jar, bundle, "--conformance", str(conformance_file)), b"")
    lines = done.stdout.decode().splitlines()
    n = len(Conformance.read(conformance_file).cases)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert lines[1] == f"  -[✓] ids: {n} of {n} cases identical"
    assert lines[2].startswith(f"  -[✓] model.float32.npz: {n} of {n} probabilities within 0.00001 with the same label (max diff ")
    assert lines[3].startswith(f"  -[✓] model.int8.npz: {n} of {n} probabilities within 0.00001 with the same label (max diff ")
    assert lines[4].startswith(f"  -[✓] model.int8.compact.npz: {n} of {n} probabilities within 0.00001 with the same label (max diff ")  # folded at load
    assert lines[5] == f"* All {n} cases conform: ids identical, 3 models within 0.00001 with the same labels"


def test_a_changed_conformance_file_fails_naming_the_case(jar, tiny_bundle, tmp_path):
    conformance_file = tmp_path / "conformance.json"
    write_conformance(tiny_bundle, conformance_file)
    data = json.loads(conformance_file.read_text())
    case = next(c for c in data["cases"] if c["name"] == "sigma alone")
    case["ids"][39] += 1
    case["probabilities"]["model.int8.npz"] += 0.001
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    done = run_lines(client(jar, tiny_bundle, "--conformance", str(changed)), b"")
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert f"  -[x] ids: {len(data['cases']) - 1} of {len(data['cases'])} cases identical\n        case \"sigma alone\": column 39 is " in out
    assert "  -[x] model.int8.npz: " in out and '        case "sigma alone": probability ' in out
    assert out.splitlines()[-1] == "ERROR ids differ; 1 of 3 models do not conform (details above)"


@pytest.mark.slow
def test_every_uci_message_and_the_unicode_set_give_pythons_ids_and_probabilities(jar, fused_bundle, uci_texts):
    """Ids identical on 100% of them, probabilities within 1e-5 of the native backend on the same file, same labels."""
    texts = uci_texts + unicode_texts()
    for model, flags in (("model.int8.npz", ["--ids"]), ("model.float32.npz", [])):
        rows = run_client(client(jar, fused_bundle, "--model", model, *flags), texts)
        result = compare_with_python(fused_bundle, model, texts, rows)
        assert result.conforms, (model, result)
    assert result.messages >= 20_000 + len(uci_texts)


@pytest.mark.slow
def test_the_default_model_is_the_recommended_npz(jar, fused_bundle, uci_texts):
    rows = run_client(client(jar, fused_bundle), uci_texts[:50])
    recommended = Bundle.load(fused_bundle).manifest.recommended["npz"]
    assert compare_with_python(fused_bundle, recommended, uci_texts[:50], rows).conforms


@pytest.mark.slow
def test_megabyte_messages_give_pythons_ids(jar, fused_bundle):
    """A 1 MB message in each shape that would make a naive port quadratic (or overflow a regex's stack)."""
    texts = list(megabyte_texts().values())
    rows = run_client(client(jar, fused_bundle, "--ids"), texts, timeout=300)
    result = compare_with_python(fused_bundle, Bundle.load(fused_bundle).manifest.recommended["npz"], texts, rows)
    assert result.conforms, result


@pytest.mark.slow
def test_java_ids_in_litert_meet_the_bundles_gates(jar, fused_bundle, uci_texts):
    """The Android-with-LiteRT path: the Java encoding fed to each .tflite model in LiteRT. On the golden messages
    each model meets its manifest tolerance against the export machine's outputs; on every UCI message the float32
    model is within the float gate of the float32 .npz, and a quantized one keeps the parity gate's label agreement."""
    if missing_module("ai_edge_litert", "pip install 'smsguard[litert]'"):
        cannot_run(missing_module("ai_edge_litert", "pip install 'smsguard[litert]'"))
    bundle = Bundle.load(fused_bundle)
    golden = [g.text for g in bundle.golden]
    ids = np.array([row["ids"] for row in run_client(client(jar, fused_bundle, "--ids"), golden + uci_texts)], dtype=np.int32)
    golden_ids, uci_ids = ids[: len(golden)], ids[len(golden) :]
    assert (golden_ids == np.array([g.ids for g in bundle.golden])).all()
    reference = Classifier.load(fused_bundle, backend="native", model="model.float32.npz")
    float_reference = reference.predict_proba(uci_texts).astype(np.float64)
    flags = Decision(reference.threshold).flags(float_reference)
    litert = backend_info("litert")
    tflite = [entry for entry in bundle.models.values() if entry.format == "tflite"]
    assert {entry.quantization for entry in tflite} >= {"float32", "dynamic_int8"}
    for entry in tflite:
        session = open_session(litert, bundle.model_path(entry), entry)
        on_golden = session.run(golden_ids).astype(np.float64)
        expected = np.array([g.probabilities[entry.name] for g in bundle.golden])
        assert np.abs(on_golden - expected).max() <= entry.atol, entry.name
        on_uci = session.run(uci_ids).astype(np.float64)
        if entry.is_float:
            assert np.abs(on_uci - float_reference).max() <= entry.atol, entry.name
        else:
            agreement = np.mean(Decision(bundle.threshold_of(entry)).flags(on_uci) == flags)
            assert agreement >= MIN_LABEL_AGREEMENT, (entry.name, agreement)


def test_a_compressed_npz_reads_the_same(jar, tiny_copy, tmp_path):
    """np.savez_compressed's deflated entries (export writes stored ones) give the same probabilities."""
    with np.load(tiny_copy / "model.int8.npz") as data:
        arrays = {name: data[name] for name in data.files}
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, **arrays)
    texts = ["WINNER!! F R E E prize", "see you at 6", ""]
    before = run_client(client(jar, tiny_copy, "--ids"), texts)
    replace_file(tiny_copy, "model.int8.npz", compressed.read_bytes())
    assert run_client(client(jar, tiny_copy, "--ids"), texts) == before


@pytest.mark.parametrize("name", ["model.int8.npz", "vocab.json"])
def test_a_tampered_bundle_exits_2_naming_the_file(jar, tiny_copy, name):
    copy = tiny_copy
    path = copy / name
    entry = Bundle.load(copy).files[name]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 1
    path.write_bytes(bytes(content))
    done = run_lines(client(jar, copy, "--model", "model.int8.npz"), b'"hello"\n')
    stderr = done.stderr.decode()
    assert (done.returncode, done.stdout, stderr.count("\n")) == (2, b"", 1)
    assert stderr.startswith(f"ERROR bundle file '{path}' does not match its manifest: expected sha256 {entry.sha256}, found ")
    assert stderr.endswith(f" ({entry.size} bytes, expected {entry.size}); the file was changed or truncated, re-export the bundle or copy it again\n")


def test_a_missing_file_and_a_format_1_vocabulary_exit_2(jar, tiny_copy):
    copy = tiny_copy
    (copy / "model.float32.npz").unlink()
    done = run_lines(client(jar, copy, "--model", "model.float32.npz"), b"")
    assert (done.returncode, done.stderr.decode()) == (2, f"ERROR bundle file '{copy}/model.float32.npz' is missing; re-export the bundle or copy the whole folder\n")
    vocab = json.loads((copy / "vocab.json").read_text(encoding="utf-8"))
    vocab["format"] = 1
    del vocab["text"]
    replace_file(copy, "vocab.json", json.dumps(vocab).encode())
    done = run_lines(client(jar, copy), b"")
    message = f"ERROR '{copy}/vocab.json': vocabulary format 1 is not supported by this runtime: re-export the bundle with smsguard >= 0.2\n"
    assert (done.returncode, done.stderr.decode()) == (2, message)
    edit_manifest(copy, lambda manifest: manifest.update(format_version="2.0"))
    done = run_lines(client(jar, copy), b"")
    assert done.stderr.decode().startswith(f"ERROR manifest '{copy}/manifest.json' has format 2.0, written by smsguard ")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b'"ok"\n5\n', "ERROR line 2 of the input is 5, expected a JSON string (the message's text)\n"),
        (b'"ok"\n"fine"\nnot json\n', "ERROR line 3 of the input is not JSON (expected one JSON string per line): unexpected character 'n' at character 0\n"),
        (b'"ok"\n{"text": "x"}\n', "ERROR line 2 of the input is an object, expected a JSON string (the message's text)\n"),
        (b'"ok"\n"\xff"\n', "ERROR line 2 of the input is not UTF-8: bytes that are not UTF-8 at offset 1\n"),
        (b'"ok"\n\n', "ERROR line 2 of the input is not JSON (expected one JSON string per line): expected a value, found the end at character 0\n"),
        (b'"ok"\nnull\n', "ERROR line 2 of the input is null, expected a JSON string (the message's text)\n"),
    ],
)
def test_a_bad_line_exits_2_naming_it_after_the_good_ones(jar, tiny_bundle, stdin, message):
    done = run_lines(client(jar, tiny_bundle), stdin)
    good = stdin.count(b"\n") - 1
    assert (done.returncode, done.stderr.decode()) == (2, message)
    assert len(done.stdout.decode().splitlines()) == good


def test_each_line_is_answered_before_the_next_is_read(jar, tiny_bundle):
    """A caller may write one message and wait for its result (a filter service): the output is flushed whenever
    reading the next line would wait."""
    with subprocess.Popen(client(jar, tiny_bundle), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdin is not None and process.stdout is not None
        for text in ("WINNER!! Claim your prize now", "see you at 6"):
            process.stdin.write(json.dumps(text).encode() + b"\n")
            process.stdin.flush()
            assert set(json.loads(process.stdout.readline())) == {"probability", "label"}
        process.stdin.close()
        assert process.wait(timeout=60) == 0


def test_lone_surrogates_and_unicode_escapes_travel(jar, tiny_bundle):
    texts = ["\ud800", "a\udc00b", "😀", "\x00", "İ Σ"]
    stdin = "".join(json.dumps(text) + "\n" for text in texts).encode("ascii")
    done = run_lines(client(jar, tiny_bundle, "--ids"), stdin)
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert done.returncode == 0 and len(rows) == len(texts)
    assert compare_with_python(tiny_bundle, "model.int8.npz", texts, rows).conforms


def test_threads_share_one_classifier(checks, tiny_bundle, tmp_path):
    """N threads x M calls on one Classifier give the serial results, ids and probabilities bit for bit."""
    sample = ["".join(map(chr, range(start, start + 200))) for start in range(0, 0xD800, 0x200)] + ["WINNER!! F R E E", "ΟΔΟΣ İ", "", "x " * 300]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps(t) + "\n" for t in sample))
    done = subprocess.run([*checks, "threads", str(tiny_bundle), str(texts), "8", "3"], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(done.stdout) == {"threads": 8, "calls": 8 * 3 * len(sample), "mismatches": 0}


def test_the_api_refuses_bad_calls_with_clear_exceptions(checks, tiny_copy):
    bundle = tiny_copy
    tflite = b"a .tflite model is refused by its manifest entry before it is read"
    (bundle / "model.float32.tflite").write_bytes(tflite)
    entry = {"name": "model.float32.tflite", "kind": "model", "size": len(tflite), "sha256": hashlib.sha256(tflite).hexdigest(), "format": "tflite",
             "quantization": "float32", "variant": "fixed"}
    edit_manifest(bundle, lambda manifest: manifest["files"].append(entry))
    vocabulary = Bundle.load(bundle).vocabulary
    assert vocabulary.ngrams is not None
    maxlen, length, buckets = vocabulary.config.maxlen, vocabulary.ngrams.config.length, vocabulary.ngrams.config.buckets
    width = maxlen + length
    done = subprocess.run([*checks, "api", str(bundle)], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout)
    assert result["encode(null)"] == "NullPointerException: text must not be null: pass the message's text"
    assert result["classify(null)"] == result["encode(null)"]
    assert result["probability(null row)"] == "NullPointerException: row must not be null: pass the ids Encoder.encode gives"
    assert result["probability(short row)"] == f"IllegalArgumentException: expected a row of {width} ids ({maxlen} word ids, then {length} n-gram ids), found 3"
    assert result["probability(bad id)"] == f"IllegalArgumentException: n-gram id -5 at column {width - 1} is outside the model's ids 0..{buckets}"
    assert result["load(tflite)"] == (
        f"BundleException: bundle file '{bundle}/model.float32.tflite' is a tflite model: this library runs the .npz models "
        "([model.float32.npz, model.int8.npz, model.int8.compact.npz]); feed a .tflite model to LiteRT's Interpreter with Encoder.encode"
    )
    assert result["load(missing model)"] == f"BundleException: bundle '{bundle}' has no model 'model.nope.npz'; its .npz models: model.float32.npz, model.int8.npz, model.int8.compact.npz"
    assert result["folder(null)"] == "NullPointerException: folder must not be null"
    assert result["streams gives the folder's result"] == "true"
    assert result["streams missing file"] == "BundleException: bundle file 'assets/empty/manifest.json' is missing; re-export the bundle or copy the whole folder"
    assert result["prediction"] in ("spam true true", "ham false false")
    assert result["width"] == f"{width} = {maxlen} + {length}"


@pytest.mark.slow
def test_bench_prints_one_json_line(jar, fused_bundle, uci_texts):
    stdin = "".join(json.dumps(t) + "\n" for t in uci_texts[:100]).encode()
    done = subprocess.run(client(jar, fused_bundle, "--bench", "--rounds", "2"), input=stdin, capture_output=True, timeout=120, check=True)
    result = json.loads(done.stdout)
    assert set(result) == {"runtime", "model", "messages", "rounds", "load_ms", "warm_up_s", "p50_us", "p90_us", "p99_us", "bulk_msgs_per_s"}
    assert (result["messages"], result["rounds"], result["model"]) == (100, 2, "model.int8.npz")
    assert result["warm_up_s"] >= 2 and 0 < result["p50_us"] <= result["p90_us"] <= result["p99_us"] and result["bulk_msgs_per_s"] > 0
