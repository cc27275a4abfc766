"""The MediaPipe client models, proven in the real clients: a run trained with the mediapipe preset, its
bundle, MediaPipe's Python TextClassifier on every test message, and the web demo in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import needs

from smsguard.export import FLOAT_ATOL, QUANTIZED_ATOL
from smsguard.runtime._mediapipe import LABELS_FILE, VOCAB_FILE, client_ids, client_text, delimiter_pattern, vocab_file

ROOT = Path(__file__).resolve().parents[1]
FLOAT, INT8, PROBE = "model.mediapipe.float32.tflite", "model.mediapipe.dynamic_int8.tflite", "mediapipe.probe.tflite"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mediapipe_run(data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smsguard.train import TrainConfig, train

    out = tmp_path_factory.mktemp("mediapipe") / "run"
    train(TrainConfig.from_preset("mediapipe", data=str(data_path)), out)
    return out


@pytest.fixture(scope="module")
def mediapipe_bundle(mediapipe_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smsguard.export import export

    out = tmp_path_factory.mktemp("mediapipe") / "bundle"
    export(mediapipe_run, out)
    return out


@pytest.fixture(scope="module")
def test_part(mediapipe_run: Path, data_path: Path) -> tuple[list[str], np.ndarray]:
    """The run's test messages and Keras' probabilities for them."""
    from smsguard._files import read_json
    from smsguard.runtime import Vocabulary
    from smsguard.train._data import read_split
    from smsguard.train._model import load_model

    dataset, split = read_split(mediapipe_run / "split.json", str(data_path), None, None)
    texts = [dataset.texts[i] for i in split.test]
    vocabulary = Vocabulary.from_dict(read_json(mediapipe_run / "vocab.json", "vocabulary"))
    keras = load_model(mediapipe_run / "model.keras").predict(vocabulary.encode(texts), batch_size=1024, verbose=0).reshape(-1)
    return texts, keras.astype(np.float64)


def test_the_bundle_pins_the_client_files_apart_from_the_runtime_models(mediapipe_bundle: Path) -> None:
    from smsguard.runtime import Bundle

    bundle = Bundle.load(mediapipe_bundle)
    section = bundle.manifest.clients["mediapipe"]
    assert [m["name"] for m in section["models"]] == [FLOAT, INT8] and section["probe"] == PROBE
    assert {name: bundle.files[name].kind for name in (FLOAT, INT8, PROBE)} == dict.fromkeys((FLOAT, INT8, PROBE), "client")
    assert not {FLOAT, INT8, PROBE} & set(bundle.models)
    assert section["checked_in"]["mediapipe"]
    assert all(r["passed"] for r in section["parity"])


def test_the_metadata_is_what_mediapipe_reads(mediapipe_bundle: Path) -> None:
    from smsguard.export._tflite_metadata import REGEX_TOKENIZER_OPTIONS, TENSOR_AXIS_LABELS, VOCABULARY, associated_files, read_metadata
    from smsguard.runtime import Bundle

    bundle = Bundle.load(mediapipe_bundle)
    model = (mediapipe_bundle / FLOAT).read_bytes()
    metadata = read_metadata(model)
    assert metadata["min_parser_version"] == "1.2.1"
    assert metadata["process_unit"] == REGEX_TOKENIZER_OPTIONS
    assert metadata["delim_regex_pattern"] == delimiter_pattern(bundle.vocabulary.config)
    assert metadata["vocab_file"] == (VOCAB_FILE, VOCABULARY) and metadata["labels_file"] == (LABELS_FILE, TENSOR_AXIS_LABELS)
    assert f">= {bundle.threshold:.8g}" in str(metadata["description"]) and metadata["license"] and metadata["author"] and metadata["version"]
    assert associated_files(model) == {VOCAB_FILE: vocab_file(bundle.vocabulary), LABELS_FILE: b"spam"}


def _mediapipe(path: Path):
    from smsguard.runtime._mediapipe_client import classifier

    return classifier(path)


def test_mediapipe_gives_smsguards_ids_and_scores_on_every_test_message(mediapipe_bundle: Path, test_part: tuple[list[str], np.ndarray]) -> None:
    """In MediaPipe's own TextClassifier (Python): the probe's ids are the runtime's, id for id; the float
    model is Keras within the float tolerance, the int8 model LiteRT within the quantized one."""
    from smsguard.export._mediapipe_target import litert_scores
    from smsguard.runtime import Bundle

    texts, keras = test_part
    vocabulary = Bundle.load(mediapipe_bundle).vocabulary
    with _mediapipe(mediapipe_bundle / PROBE) as probe:
        ids = probe.ids(texts)
    assert (ids == vocabulary.encode(texts)).all()
    with _mediapipe(mediapipe_bundle / FLOAT) as client:
        assert np.abs(client.probabilities(texts) - keras).max() <= FLOAT_ATOL
    litert = litert_scores(mediapipe_bundle / INT8, client_ids(vocabulary, texts))
    with _mediapipe(mediapipe_bundle / INT8) as client:
        assert np.abs(client.probabilities(texts) - litert).max() <= QUANTIZED_ATOL


def test_a_nul_ends_the_text_for_mediapipe_and_a_lone_surrogate_is_refused(mediapipe_bundle: Path) -> None:
    """The one documented difference: MediaPipe scores a text as smsguard scores it up to its first NUL."""
    from smsguard.runtime import Classifier

    runtime = Classifier.load(mediapipe_bundle, model="model.float32.npz")
    text = "Are we still on for dinner tonight?\0 WINNER!! Claim your FREE prize, call 09061701461 now"
    with _mediapipe(mediapipe_bundle / FLOAT) as client:
        on_nul = client.probabilities([text])[0]
        with pytest.raises(UnicodeEncodeError):
            client.probabilities(["FREE \ud800 prize"])
    cut, whole = runtime.predict_proba([client_text(text), text])
    assert abs(on_nul - cut) <= FLOAT_ATOL
    assert abs(on_nul - whole) > 0.1  # the rest of the text would have made it spam
    assert runtime.predict_proba(["FREE \ud800 prize"]).shape == (1,)  # the runtime scores it: the surrogate is a character


def test_verify_runs_the_client_models_in_mediapipe_and_fails_when_they_drift(mediapipe_bundle: Path, tmp_path: Path, capsys) -> None:
    from smsguard.cli import main

    assert main(["verify", str(mediapipe_bundle)]) == 0
    err = capsys.readouterr().err
    assert f"MediaPipe tokenizer: {len(json.loads((mediapipe_bundle / 'manifest.json').read_text())['golden'])} of" in err
    assert f"{INT8} [mediapipe " in err
    copy = tmp_path / "bundle"
    shutil.copytree(mediapipe_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["clients"]["mediapipe"]["golden_probabilities"][INT8][3] += 0.05
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"{INT8} [mediapipe" in err and "1 of" in err and "ERROR the MediaPipe client models do not match" in err


def test_a_run_the_client_cannot_reproduce_gets_no_client_model(bundle_dir: Path) -> None:
    """The default (tuned, lowercased) bundle: export said why in one line and wrote no client model."""
    from smsguard.export._mediapipe import ClientModelError, ClientQuantization, check_mediapipe, convert_mediapipe
    from smsguard.runtime import Bundle

    bundle = Bundle.load(bundle_dir)
    assert not bundle.manifest.clients and not list(bundle_dir.glob("*mediapipe*"))
    reason = check_mediapipe(bundle.vocabulary)
    assert reason and reason.startswith("no MediaPipe client model: ") and "lowercases" in reason and "\n" not in reason
    with pytest.raises(ClientModelError, match=r"^no MediaPipe client model"):
        convert_mediapipe(None, None, bundle.vocabulary, 0.5, bundle_dir / "x.tflite", ClientQuantization.FLOAT32)
    from smsguard._serve_web import site

    served = site(bundle_dir)  # the web demo still runs the full model, in smsguard.mjs, without a MediaPipe column
    config = json.loads(served["files"]["/bundle/config.json"])
    assert config["models"] == [] and config["probe"] is None and config["npz"] and served["vendor"] is None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _browser_missing() -> str:
    if not shutil.which("chromium"):
        return "Debian's chromium is not installed (.ci/run installs it as root: apt-get install chromium)"
    if not shutil.which("node"):
        return "node is not installed"
    if not (ROOT / "web" / "node_modules" / "puppeteer-core").is_dir():
        return "web/node_modules is missing: run `make web`"
    return ""


@needs(_browser_missing())
def test_the_web_demo_classifies_like_smsguard_in_headless_chromium(mediapipe_bundle: Path, tmp_path: Path) -> None:
    """The page, served by `serve-web`, in Debian's chromium with every non-local request blocked: the
    probe's ids are the golden ids, the scores the golden ones; it types a message and is screenshotted."""
    from smsguard._serve_web import make_server, serve_in_thread
    from smsguard.runtime import Bundle

    bundle = Bundle.load(mediapipe_bundle)
    golden = [g.to_dict() for g in bundle.golden]
    section = bundle.manifest.clients["mediapipe"]
    (tmp_path / "texts.json").write_text(json.dumps([g["text"] for g in golden]))
    server = make_server(mediapipe_bundle, 0)
    serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        screenshot = tmp_path / "web-demo.png"
        done = subprocess.run(
            ["node", str(ROOT / "web" / "test" / "browser-check.mjs"), url, str(tmp_path / "texts.json"), str(screenshot), shutil.which("chromium") or ""],
            capture_output=True, text=True, timeout=300, check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    print(f"screenshot: {screenshot}; {result['version']}; blocked: {result['blocked']}")
    assert not result["errors"]
    assert all("127.0.0.1" not in request and "localhost" not in request for request in result["blocked"])
    # The golden messages MediaPipe reads whole: not those a NUL ends for it, nor those with a lone surrogate
    # (no UTF-8 form), which the golden set holds since it carries edge cases (verify leaves them out likewise).
    whole = [i for i, g in enumerate(golden) if "\0" not in g["text"] and _utf8(g["text"])]
    assert len(whole) >= len(golden) - 4
    ids = np.array([r["scores"] for r in result["models"][PROBE]]).astype(np.int32)[whole]
    assert (ids == np.array([golden[i]["ids"] for i in whole])).all()
    float_scores = np.array([r["scores"][0] for r in result["models"][FLOAT]])[whole]
    assert np.abs(float_scores - np.array([golden[i]["keras_probability"] for i in whole])).max() <= FLOAT_ATOL
    int8_scores = np.array([r["scores"][0] for r in result["models"][INT8]])[whole]
    assert np.abs(int8_scores - np.array(section["golden_probabilities"][INT8])[whole]).max() <= QUANTIZED_ATOL
    assert result["shown"]["label"] == "spam" and float(result["shown"]["probability"]) >= bundle.threshold  # the full model, smsguard.mjs
    assert result["shown"]["mediapipe"]["label"] == "spam" and float(result["shown"]["mediapipe"]["probability"]) >= section["models"][0]["threshold"]
    assert screenshot.stat().st_size > 10_000
