"""The JavaScript runtime of a bundle (clients/js/smsguard.mjs) held to the Python one: in Node, through its command
line (a conformance file with both kernels, the Python ids and probabilities on every UCI message and a Unicode set
that holds every code point, 1 MB messages, a tampered or old bundle, bad input) and in headless Chromium (the
conformance file in the demo page, and the page showing both models' probabilities). The tiny bundle's tests are
fast; the trained default bundle's are slow. Node and Chromium are real: outside CI a missing one skips, under CI
(CI=true) it fails."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_file
from conftest import cannot_run
from unicode_texts import megabyte_texts, unicode_texts

from smsguard.export import FLOAT_ATOL
from smsguard.runtime import Bundle, Classifier, ModelFormat, TextSpec, TokenizerConfig, Vocabulary

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "clients" / "js" / "smsguard.mjs"
CLI = ROOT / "clients" / "js" / "bin" / "smsguard-client.mjs"
MODULE_BUDGET = 50 * 1024  # the size target for the module, unminified
KERNELS = ("auto", "js")  # WebAssembly SIMD where there is one (Node has it), and the plain-JS fallback


def _require(*tools: str) -> None:
    """Skip when a real component is missing, except under CI, where it fails the run."""
    missing = [tool for tool in tools if tool != "puppeteer" and shutil.which(tool) is None]
    if "puppeteer" in tools and not (ROOT / "web" / "node_modules" / "puppeteer-core").is_dir():
        missing.append("web/node_modules (run `make web`)")
    if missing:
        cannot_run(f"{', '.join(missing)} not found (.ci/run installs Debian's chromium as root; `make web` the npm packages)")


@pytest.fixture(scope="session")
def node() -> str:
    _require("node")
    return "node"


def cli(bundle: Path, *args: str, lines: Sequence[str] = (), timeout: float = 600) -> subprocess.CompletedProcess:
    """The command line on `lines` (one JSON text a line), as bytes in and text out."""
    stdin = "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")
    done = subprocess.run(["node", str(CLI), str(bundle), *args], input=stdin, capture_output=True, timeout=timeout, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def classify(bundle: Path, texts: Sequence[str], *args: str, timeout: float = 1200) -> list[dict]:
    done = cli(bundle, *args, lines=[json.dumps(text) for text in texts], timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(texts)
    return rows


def python_results(bundle: Path, model: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The reference: `Vocabulary.encode`'s ids, and the native backend's probabilities and labels on `model`."""
    classifier = Classifier.load(bundle, backend="native", model=model)
    probabilities = classifier.predict_proba(texts).astype(np.float64)
    return classifier.encode(texts), probabilities, classifier.decision.labels_of(probabilities)


def assert_same_as_python(bundle: Path, model: str, texts: list[str], rows: list[dict]) -> None:
    ids, probabilities, labels = python_results(bundle, model, texts)
    if "ids" in rows[0]:
        got = np.array([row["ids"] for row in rows])
        differ = np.nonzero((got != ids).any(axis=1))[0]
        assert not len(differ), f"{len(differ)} of {len(texts)} texts get other ids, first {texts[differ[0]]!r:.200}"
    diff = np.abs(np.array([row["probability"] for row in rows]) - probabilities)
    assert diff.max() <= FLOAT_ATOL, f"{model}: max diff {diff.max():.3g} at {texts[int(diff.argmax())]!r:.200}"
    assert [row["label"] for row in rows] == labels


@functools.cache
def unicode_sample() -> list[str]:
    """Every 97th text of the Unicode set: a cross-section of it for the fast tier."""
    return unicode_texts()[::97]


def npz_models(bundle: Path) -> list[str]:
    return [name for name, entry in Bundle.load(bundle).models.items() if entry.format is ModelFormat.NPZ]


# ---- the conformance file ---------------------------------------------------------------------------------------


def golden_conformance(bundle: Path, out: Path) -> Path:
    """The bundle's conformance file, as `smsguard conformance BUNDLE --out FILE` writes it (the Java client's tests run
    the same file)."""
    from smsguard.export import write_conformance

    write_conformance(bundle, out)
    return out


def assert_conforms(bundle: Path, conformance: Path, kernel: str) -> None:
    done = cli(bundle, "--conformance", str(conformance), "--kernel", kernel)
    spec = json.loads(conformance.read_text(encoding="ascii"))
    count, models = len(spec["cases"]), spec["models"]
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"* Conformance of the JavaScript runtime (Node {node_version()}, kernel {kernel}) with '{conformance}': {count} cases, {len(models)} models"
    assert lines[1] == f"  -[✓] ids: {count} of {count} cases identical"
    for line, model in zip(lines[2:-1], models, strict=True):
        assert line.startswith(f"  -[✓] {model}: {count} of {count} probabilities within 0.00001 with the same label (max diff "), done.stdout
    assert lines[-1] == f"* All {count} cases conform: ids identical, {len(models)} models within 0.00001 with the same labels"


@functools.cache
def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip().removeprefix("v")


# ---- fast: the tiny bundle ---------------------------------------------------------------------------------------


def test_the_module_is_one_file_with_no_dependency_within_its_budget() -> None:
    source = MODULE.read_text(encoding="utf-8")
    assert MODULE.stat().st_size <= MODULE_BUDGET
    assert not [line for line in source.splitlines() if line.startswith("import ")]  # node: modules only by dynamic import, in Node
    assert "export class Classifier" in source and "export class Bundle" in source


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_tiny_bundle_conforms_in_node(node: str, tiny_bundle: Path, tmp_path: Path, kernel: str) -> None:
    assert_conforms(tiny_bundle, golden_conformance(tiny_bundle, tmp_path / "conformance.json"), kernel)


def test_a_conformance_run_that_differs_fails_and_says_where(node: str, tiny_bundle: Path, tmp_path: Path) -> None:
    path = golden_conformance(tiny_bundle, tmp_path / "conformance.json")
    spec = json.loads(path.read_text())
    spec["cases"][2]["ids"][-1] += 1
    spec["cases"][3]["probabilities"]["model.int8.npz"] += 0.001
    path.write_text(json.dumps(spec))
    done = cli(tiny_bundle, "--conformance", str(path))
    assert done.returncode == 1
    count = len(spec["cases"])
    lines = done.stdout.splitlines()
    changed = spec["cases"][2]["ids"][-1]
    assert lines[1:3] == [f"  -[x] ids: {count - 1} of {count} cases identical", f'        case "{spec["cases"][2]["name"]}": column {len(spec["cases"][2]["ids"]) - 1} is {changed - 1}, expected {changed}']
    by_model = {line.split(": ")[0][len("  -[x] "):]: i for i, line in enumerate(lines) if line.startswith("  -[")}
    assert lines[by_model["model.float32.npz"]].startswith(f"  -[✓] model.float32.npz: {count} of {count} probabilities within 0.00001 with the same label")
    failed = by_model["model.int8.npz"]
    assert lines[failed].startswith(f"  -[x] model.int8.npz: {count - 1} of {count} probabilities within 0.00001 with the same label (max diff 0.0010)")
    assert lines[failed + 1].startswith(f'        case "{spec["cases"][3]["name"]}": probability ') and f"expected {spec['cases'][3]['probabilities']['model.int8.npz']} (" in lines[failed + 1]
    assert lines[-1] == "ERROR ids differ; 1 of 3 models do not conform (details above)"


def test_a_conformance_file_of_another_bundle_is_refused(node: str, tiny_bundle: Path, tmp_path: Path) -> None:
    path = golden_conformance(tiny_bundle, tmp_path / "conformance.json")
    spec = json.loads(path.read_text())
    spec["bundle"]["manifest_sha256"] = "0" * 64
    path.write_text(json.dumps(spec))
    done = cli(tiny_bundle, "--conformance", str(path))
    actual = json.loads(golden_conformance(tiny_bundle, tmp_path / "again.json").read_text())["bundle"]["manifest_sha256"]
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"ERROR conformance file '{path}' was made for another bundle (manifest sha256 {'0' * 64}), not '{tiny_bundle}' (manifest sha256 {actual}); "
        f"generate it with `smsguard conformance {tiny_bundle} --out FILE`\n"
    )


@pytest.mark.parametrize("kernel", KERNELS)
def test_node_gives_the_python_ids_and_probabilities(node: str, tiny_bundle: Path, kernel: str) -> None:
    texts = [g.text for g in Bundle.load(tiny_bundle).golden] + unicode_sample()
    for model in npz_models(tiny_bundle):
        assert_same_as_python(tiny_bundle, model, texts, classify(tiny_bundle, texts, "--model", model, "--ids", "--kernel", kernel))


@pytest.fixture
def word_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny bundle as a word model alone, with the other tokenizer settings: lowercased, no OOV token, truncating
    the front, padding at the front (what an .npz model needs)."""
    import tiny

    fused = tiny.weights
    monkeypatch.setattr(tiny, "weights", lambda vocabulary, seed: {k: v for k, v in fused(vocabulary, seed).items() if not k.startswith("ngram")})
    config = TokenizerConfig(num_words=40, lower=True, oov_token=None, maxlen=tiny.MAXLEN, truncating="pre")
    return tiny.make_bundle(tmp_path / "words", edit=lambda v: Vocabulary.fit(tiny.TEXTS, config, v.text))


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_word_model_alone_with_other_tokenizer_settings(node: str, word_bundle: Path, tmp_path: Path, kernel: str) -> None:
    assert Bundle.load(word_bundle).vocabulary.ngrams is None
    assert_conforms(word_bundle, golden_conformance(word_bundle, tmp_path / "conformance.json"), kernel)
    texts = [g.text for g in Bundle.load(word_bundle).golden] + unicode_sample()
    for model in npz_models(word_bundle):
        assert_same_as_python(word_bundle, model, texts, classify(word_bundle, texts, "--model", model, "--ids", "--kernel", kernel))


def test_the_default_model_is_the_recommended_npz_and_the_output_is_the_contract(node: str, tiny_bundle: Path) -> None:
    rows = classify(tiny_bundle, ["WINNER!! call now", "see you at 6"])
    assert [sorted(row) for row in rows] == [["label", "probability"]] * 2
    _, probabilities, labels = python_results(tiny_bundle, Bundle.load(tiny_bundle).manifest.recommended[ModelFormat.NPZ], ["WINNER!! call now", "see you at 6"])
    assert [row["label"] for row in rows] == labels and np.abs(np.array([row["probability"] for row in rows]) - probabilities).max() <= FLOAT_ATOL


def test_a_tampered_file_is_refused_in_one_line_naming_it(node: str, tiny_copy: Path) -> None:
    path = tiny_copy / "model.int8.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    entry = next(f for f in json.loads((tiny_copy / "manifest.json").read_text())["files"] if f["name"] == "model.int8.npz")
    done = cli(tiny_copy, "--model", "model.int8.npz", lines=['"hello"'])
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"ERROR bundle file '{path}' does not match its manifest: expected sha256 {entry['sha256']}, found {hashlib.sha256(data).hexdigest()} "
        f"({len(data)} bytes, expected {entry['size']}); the file was changed or truncated, re-export the bundle or copy it again\n"
    )


def test_a_missing_bundle_file_or_model_is_refused_in_one_line(node: str, tiny_copy: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert cli(missing, lines=['"hi"']).stderr == f"ERROR bundle '{missing}' does not exist; create one with `smsguard export RUN_DIR --out {missing}`\n"
    done = cli(tiny_copy, "--model", "model.float32.tflite", lines=['"hi"'])
    assert (done.returncode, done.stderr) == (2, f"ERROR bundle '{tiny_copy}' has no .npz model 'model.float32.tflite'; it has: model.int8.npz, model.float32.npz, model.int8.compact.npz\n")
    (tiny_copy / "model.int8.npz").unlink()
    done = cli(tiny_copy, lines=['"hi"'])
    assert (done.returncode, done.stderr) == (2, f"ERROR bundle file '{tiny_copy / 'model.int8.npz'}' is missing; re-export the bundle or copy the whole folder\n")


def test_a_format_1_vocabulary_is_refused_in_one_line(node: str, tiny_copy: Path) -> None:
    vocabulary = Bundle.load(tiny_copy).vocabulary
    old = Vocabulary(vocabulary.config, vocabulary.word_index, vocabulary.ngrams).to_dict()  # no text section: format 1
    assert old["format"] == 1
    replace_file(tiny_copy, "vocab.json", json.dumps(old).encode())
    done = cli(tiny_copy, lines=['"hi"'])
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"ERROR '{tiny_copy / 'vocab.json'}': vocabulary format 1 is not supported by this runtime: re-export the bundle with smsguard >= 0.2\n"


def test_bad_input_lines_end_the_run_in_one_line_after_the_results_before(node: str, tiny_bundle: Path) -> None:
    for bad, message in (
        ("{bad", "line 3 of the input is not JSON (expected one JSON string per line): Expected property name or '}' in JSON at position 1"),
        ("null", "line 3 of the input is null, expected a JSON string (the message's text)"),
        ("42", "line 3 of the input is 42, expected a JSON string (the message's text)"),
        ('["a"]', "line 3 of the input is an array, expected a JSON string (the message's text)"),
        ("\udcff", "line 3 of the input is not UTF-8: The encoded data was not valid for encoding utf-8"),  # a surrogate written as UTF-8 bytes (surrogatepass): not UTF-8
    ):
        done = cli(tiny_bundle, lines=['"one"', '"two"', bad, '"four"'])
        assert (done.returncode, done.stderr) == (2, f"ERROR {message}\n")
        assert len(done.stdout.splitlines()) == 2


def test_a_caller_may_write_one_message_and_wait_for_its_answer(node: str, tiny_bundle: Path) -> None:
    with subprocess.Popen(["node", str(CLI), str(tiny_bundle)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as client:
        assert client.stdin and client.stdout
        answers = []
        for text in ("WINNER!! call now", "see you at 6"):
            client.stdin.write(json.dumps(text) + "\n")
            client.stdin.flush()
            answers.append(json.loads(client.stdout.readline()))  # with stdin still open
        client.stdin.close()
        assert client.wait(timeout=30) == 0 and client.stdout.read() == ""
    assert [sorted(answer) for answer in answers] == [["label", "probability"]] * 2


def test_usage_errors_are_one_line(node: str, tiny_bundle: Path) -> None:
    done = subprocess.run(["node", str(CLI)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (2, "ERROR a BUNDLE folder is needed; usage: smsguard-client BUNDLE [--model NAME] [--kernel auto|wasm|js] [--personal DIR] [--ids] | --conformance FILE | --bench [--rounds N]\n")
    done = cli(tiny_bundle, "--kernel", "gpu")
    assert done.returncode == 2 and done.stderr.startswith("ERROR --kernel must be auto, wasm or js, found gpu; usage: ")
    done = cli(tiny_bundle, "--bench")
    assert (done.returncode, done.stderr) == (2, "ERROR --bench needs messages on standard input, one JSON string per line\n")


def test_the_module_refuses_what_is_not_a_string_with_a_type_error(node: str, tiny_bundle: Path) -> None:
    script = f"""
        import {{ Classifier }} from {json.dumps(MODULE.as_uri())};
        const classifier = await Classifier.load({json.dumps(str(tiny_bundle))});
        for (const value of [null, undefined, 42, {{}}, ["a"]]) {{
          try {{ classifier.classify(value); console.log("accepted"); }} catch (error) {{ console.log(`${{error.name}}: ${{error.message}}`); }}
        }}
        console.log(JSON.stringify(Array.from(classifier.encode("\\ud800 \\udfff\\ud800"))));
    """
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    *refusals, ids = done.stdout.splitlines()
    assert refusals == [
        "TypeError: text must be a string, found null",
        "TypeError: text must be a string, found undefined",
        "TypeError: text must be a string, found number",
        "TypeError: text must be a string, found an Object",
        "TypeError: text must be a string, found an array",
    ]
    assert json.loads(ids) == Bundle.load(tiny_bundle).vocabulary.encode(["\ud800 \udfff\ud800"])[0].tolist()  # surrogatepass's ids


def test_a_deflated_npz_and_a_node_without_web_globals_read_the_same(node: str, tiny_copy: Path, tmp_path: Path) -> None:
    """np.savez_compressed's zip (deflate), read with DecompressionStream, and with node:zlib where there is none;
    the hashes with node:crypto where there is no global crypto (Node 18)."""
    source = tiny_copy / "model.int8.npz"
    with zipfile.ZipFile(source) as stored:
        arrays = {name.removesuffix(".npy"): stored.read(name) for name in stored.namelist()}
    deflated = tmp_path / "deflated.npz"
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name, data in arrays.items():
            out.writestr(f"{name}.npy", data)
    replace_file(tiny_copy, "model.int8.npz", deflated.read_bytes())
    conformance = golden_conformance(tiny_copy, tmp_path / "conformance.json")
    assert_conforms(tiny_copy, conformance, "auto")
    bare = "data:text/javascript,delete globalThis.DecompressionStream; delete globalThis.crypto;"
    done = subprocess.run(["node", "--import", bare, str(CLI), str(tiny_copy), "--conformance", str(conformance)], capture_output=True, text=True, check=False)
    count = len(json.loads(conformance.read_text(encoding="ascii"))["cases"])
    assert done.returncode == 0 and done.stdout.splitlines()[-1].startswith(f"* All {count} cases conform: ids identical, 3 models"), done.stdout + done.stderr


# ---- slow: the trained default bundle ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fused_conformance(fused_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return golden_conformance(fused_bundle, tmp_path_factory.mktemp("js") / "conformance.json")


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
def test_the_trained_bundle_conforms_in_node(node: str, fused_bundle: Path, fused_conformance: Path, kernel: str) -> None:
    assert TextSpec.from_dict(json.loads((fused_bundle / "vocab.json").read_text())["text"]).normaliser is not None  # the spec in full
    assert_conforms(fused_bundle, fused_conformance, kernel)


@pytest.mark.slow
def test_every_uci_message_and_every_code_point_get_the_python_ids_in_node(node: str, fused_bundle: Path, uci_texts: list[str]) -> None:
    """Ids through the command line with --ids (every text, on the recommended model); probabilities and labels on
    both .npz models."""
    texts = list(uci_texts) + unicode_texts()
    assert len(texts) >= 5574 + 20_000
    recommended, *others = sorted(npz_models(fused_bundle), key=lambda name: name != Bundle.load(fused_bundle).manifest.recommended[ModelFormat.NPZ])
    assert_same_as_python(fused_bundle, recommended, texts, classify(fused_bundle, texts, "--ids"))
    for model in others:
        assert_same_as_python(fused_bundle, model, texts, classify(fused_bundle, texts, "--model", model))


@pytest.mark.slow
def test_megabyte_messages_are_bounded_and_still_the_python_ids(node: str, fused_bundle: Path) -> None:
    texts = list(megabyte_texts().values())
    model = Bundle.load(fused_bundle).manifest.recommended[ModelFormat.NPZ]
    assert_same_as_python(fused_bundle, model, texts, classify(fused_bundle, texts, "--ids", timeout=120))  # seconds for 8 MB: linear


@pytest.mark.slow
def test_the_module_and_the_demo_page_in_headless_chromium(node: str, fused_bundle: Path, fused_conformance: Path, uci_texts: list[str], tmp_path: Path) -> None:
    """The demo page, served by serve-web, in Debian's chromium with every request to another host blocked: the
    conformance file through both .npz models with both kernels in the page, a tampered file and bad input refused,
    and a typed message shown with both models' probabilities and labels, its words highlighted as Python explains them."""
    _require("chromium", "puppeteer")
    from smsguard._serve_web import make_server, serve_in_thread

    (tmp_path / "texts.json").write_text(json.dumps(uci_texts[:500]))
    screenshot = tmp_path / "demo.png"
    server = make_server(fused_bundle, 0)
    serve_in_thread(server)
    try:
        done = subprocess.run(
            ["node", str(ROOT / "web" / "test" / "js-check.mjs"), f"http://127.0.0.1:{server.server_address[1]}/", str(fused_conformance), str(tmp_path / "texts.json"),
             str(screenshot), shutil.which("chromium") or "chromium", "1"],
            capture_output=True, text=True, timeout=600, check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    print(f"screenshot: {screenshot}; {result['version']}; p50 {result['timing']['p50_us']:.0f} µs ({result['timing']['kernel']}); blocked: {result['blocked']}")
    assert result["pageError"] is None and not result["errors"]
    assert all("127.0.0.1" not in request and "localhost" not in request for request in result["blocked"])
    spec = json.loads(fused_conformance.read_text())
    assert result["conformance"]["ids"] == [case["ids"] for case in spec["cases"]]
    bundle = Bundle.load(fused_bundle)
    for model in spec["models"]:
        decision = Classifier.load(fused_bundle, backend="native", model=model).decision
        want = np.array([case["probabilities"][model] for case in spec["cases"]])
        for kernel in ("wasm", "js"):
            got = result["conformance"]["models"][f"{model} {kernel}"]
            assert np.abs(np.array([r["probability"] for r in got]) - want).max() <= FLOAT_ATOL
            assert [r["label"] for r in got] == decision.labels_of(want)
    refusals = result["refusals"]
    assert refusals["tampered"]["integrity"] and refusals["tampered"]["message"].startswith("bundle file 'vocab.json' does not match its manifest: expected sha256 ")
    assert [refusals[key] for key in ("null", "undefined", "42")] == [f"TypeError: text must be a string, found {what}" for what in ("null", "undefined", "number")]
    assert result["timing"]["kernel"] == "wasm-simd" and result["timing"]["isolated"] and result["timing"]["finite"]
    shown, text = result["shown"], "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461."
    python = Classifier.load(fused_bundle, backend="native")
    assert abs(float(shown["probability"]) - float(python.predict_proba([text])[0])) <= FLOAT_ATOL + 5e-7  # shown to 6 decimals
    assert shown["label"] == python.decision.label(float(python.predict_proba([text])[0]))
    explained = python.explain(text)  # the page highlights the spans Python names, each with the same drop of the score
    assert [(s["start"], s["end"], s["text"]) for s in result["explained"]["spans"]] == [(s.start, s.end, s.text) for s in explained.spans]  # BMP text: UTF-16 = code points
    assert np.abs(np.array([s["contribution"] for s in result["explained"]["spans"]]) - [s.contribution for s in explained.spans]).max() <= 2 * FLOAT_ATOL
    assert [m["text"] for m in shown["marks"]] == [s.text for s in explained.spans]
    section = bundle.manifest.clients.get("mediapipe")
    if section:  # the default preset's bundle has the MediaPipe client model beside the full one
        threshold = section["models"][0]["threshold"]
        assert shown["mediapipe"]["label"] == ("spam" if float(shown["mediapipe"]["probability"]) >= threshold else "ham")
    assert screenshot.stat().st_size > 10_000


# ---- serve-web: what the page needs -------------------------------------------------------------------------------


def test_serve_web_serves_the_module_and_the_checked_bundle_files_cross_origin_isolated(tiny_bundle: Path) -> None:
    """The tiny bundle has no MediaPipe client: the page runs the full model alone."""
    import urllib.request

    from smsguard._serve_web import make_server, serve_in_thread

    server = make_server(tiny_bundle, 0)
    serve_in_thread(server)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        config = json.loads(urllib.request.urlopen(f"{base}/bundle/config.json").read())
        with urllib.request.urlopen(f"{base}/smsguard.mjs") as response:
            assert response.read() == MODULE.read_bytes() and response.headers["Content-Type"] == "text/javascript"
            assert (response.headers["Cross-Origin-Opener-Policy"], response.headers["Cross-Origin-Embedder-Policy"]) == ("same-origin", "require-corp")
        for name in ("manifest.json", "vocab.json", *config["npz"]):
            assert urllib.request.urlopen(f"{base}/bundle/{name}").read() == (tiny_bundle / name).read_bytes()
        if shutil.which("node"):  # the module over fetch, in Node
            script = f"""import {{ Classifier }} from {json.dumps(MODULE.as_uri())};
                const classifier = await Classifier.load({json.dumps(base + "/bundle/")});
                console.log(JSON.stringify(classifier.classify("WINNER!! call now")));"""
            fetched = json.loads(subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=60).stdout)
            _, probabilities, labels = python_results(tiny_bundle, config["npz"][0], ["WINNER!! call now"])
            assert abs(fetched["probability"] - probabilities[0]) <= FLOAT_ATOL and fetched["label"] == labels[0]
    finally:
        server.shutdown()
        server.server_close()
    assert config["npz"] == ["model.int8.npz", "model.float32.npz", "model.int8.compact.npz"]  # the recommended one first: the page's default
    assert (config["models"], config["probe"]) == ([], None)


def test_serve_web_refuses_a_bundle_it_cannot_show_in_one_line(tiny_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from smsguard.cli import main

    path = tiny_copy / "model.float32.npz"
    path.write_bytes(path.read_bytes()[:-1])
    assert main(["serve-web", str(tiny_copy), "--port", "0"]) == 2
    assert capsys.readouterr().err.startswith(f"ERROR bundle file '{path}' does not match its manifest: expected sha256 ")
    edit_manifest(tiny_copy, lambda m: m.update(files=[f for f in m["files"] if not f["name"].endswith(".npz")], recommended={}))
    assert main(["serve-web", str(tiny_copy), "--port", "0"]) == 2
    assert capsys.readouterr().err == f"ERROR bundle '{tiny_copy}' has no .npz model for the page's JavaScript runtime; export the run again with this smsguard\n"
