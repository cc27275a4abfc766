"""The personal state (a user's corrections, `smsguard report`) in the Java and JavaScript runtimes, in a real JVM and
a real Node, against the Python runtime: on the same model probability, the port's layer gives Python's probability
bit for bit (float32) on the golden and Unicode texts, the reported messages and their near-duplicates, and leaves
every message no step moves exactly as the model scored it; end to end (the port's own model) within the models'
tolerance with the same labels. A state made for another n-gram bag is not applied, with one note; one without fitted
weights gets its near-duplicate step alone, with a note. Outside CI the tests skip without a JDK or Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from client_ports import require_tools
from tiny import GOLDEN, TEXTS, make_bundle
from unicode_texts import unicode_texts

from smsguard.export import FLOAT_ATOL
from smsguard.runtime import Bundle, Classifier, NgramConfig, Personal
from smsguard.runtime._personal import model_of, read_state
from smsguard.runtime._personal_fit import Weights

ROOT = Path(__file__).resolve().parents[1]
JAR = ROOT / "clients" / "java" / "build" / "smsguard-client.jar"
JS_CLI = ROOT / "clients" / "js" / "bin" / "smsguard-client.mjs"
MODEL = "model.float32.npz"
SPAM = TEXTS[0]
SPAM_AGAIN = "WINNER!! You have won a £500 prize, call 09061709999 to claim now"  # the same campaign, other numbers
HAM = TEXTS[4]
HAM_AGAIN = "Are we still on for dinner tonight? I'll be there around 8"
MESSAGES = [*GOLDEN, *TEXTS, SPAM_AGAIN, HAM_AGAIN, "WINNER!! You have won a prize", *unicode_texts()[::400]]


@pytest.fixture(scope="module")
def jar() -> Path:
    require_tools("javac", "java", "jar", "make")
    done = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "clients-java"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return JAR


def command(port: str, bundle: Path, folder: Path) -> list[str]:
    if port == "java":
        return ["java", "-jar", str(JAR), str(bundle), "--model", MODEL, "--personal", str(folder)]
    return ["node", str(JS_CLI), str(bundle), "--model", MODEL, "--personal", str(folder)]


@pytest.fixture(params=["java", "node"])
def port(request: pytest.FixtureRequest) -> str:
    if request.param == "java":
        request.getfixturevalue("jar")
    else:
        require_tools("node")
    return request.param


def run_port(port: str, bundle: Path, folder: Path, texts: list[str]) -> tuple[list[dict], str]:
    """Each text's row ({probability, label, model_probability}) and the port's standard error."""
    stdin = "".join(json.dumps(text, ensure_ascii=True) + "\n" for text in texts).encode("ascii")
    done = subprocess.run(command(port, bundle, folder), input=stdin, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(rows) == len(texts)
    return rows, done.stderr.decode()


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the default model's bag (8192 buckets, 512 ids), as in test_personal.py."""
    return make_bundle(tmp_path_factory.mktemp("wide") / "bundle", bag=NgramConfig(), threshold=0.5)


@pytest.fixture(scope="module")
def reported(wide: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state Python's report wrote: the spam message said to be ham, the ham one spam, and one more of each."""
    folder = tmp_path_factory.mktemp("personal")
    clf = Classifier.load(wide, backend="numpy", personal=folder)
    clf.report([SPAM, HAM], ["ham", "spam"])
    clf.report([TEXTS[7], TEXTS[2]], ["spam", "ham"])
    assert read_state(folder).weights is not None
    return folder


@pytest.fixture(scope="module")
def loose(reported: Path, wide: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same corrections under other learner settings (no dead zone, a tiny l2: the shift moves most messages that
    share an n-gram with a correction; written as Python writes them, 1e-05 included), fitted by Python's next load."""
    folder = tmp_path_factory.mktemp("loose")
    shutil.copy(reported / "personal.json", folder / "personal.json")
    state = json.loads((folder / "personal.json").read_text())
    state["learner"].update(dead_zone=0.0, anchor_margin=0.25, near=0.9, l2=1e-05)
    state["weights"] = None
    (folder / "personal.json").write_text(json.dumps(state, separators=(",", ":")))
    Classifier.load(wide, backend="numpy", personal=folder)  # fits, and writes the weights back
    assert read_state(folder).weights is not None
    return folder


def python_layer(bundle: Path, folder: Path, model_probabilities: list[float], texts: list[str], weights: bool = True) -> np.ndarray:
    """Python's layer (as it stands in `folder`, not refitted) on the port's model probabilities."""
    loaded = Bundle.load(bundle)
    threshold = Classifier.load(bundle, backend="numpy", model=MODEL).decision.threshold
    state = read_state(folder)
    layer = model_of(state if weights else replace(state, weights=Weights.none()), loaded.labels, threshold)
    bags = layer.bags(texts, loaded.vocabulary.encode(texts), loaded.vocabulary)
    return layer.adjust(np.array(model_probabilities, dtype=np.float32), bags)


def probabilities(rows: list[dict], key: str = "probability") -> np.ndarray:
    return np.array([row[key] for row in rows], dtype=np.float32)


@pytest.mark.parametrize("which", ["reported", "loose"])
def test_the_port_applies_pythons_state_bit_for_bit(port: str, wide: Path, which: str, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(which)
    rows, stderr = run_port(port, wide, folder, MESSAGES)
    assert stderr == ""
    model, got = probabilities(rows, "model_probability"), probabilities(rows)
    expected = python_layer(wide, folder, model.tolist(), MESSAGES)
    differ = [(MESSAGES[i][:40], float(got[i]), float(expected[i])) for i in np.nonzero(got.view(np.uint32) != expected.view(np.uint32))[0]]
    assert differ == []
    moved = got != model
    at = {text: i for i, text in enumerate(MESSAGES)}
    assert all(moved[at[text]] for text in (SPAM, HAM, SPAM_AGAIN, HAM_AGAIN, TEXTS[7], TEXTS[2]))  # the reports and their near-duplicates
    if which == "reported":
        assert 0 < moved.sum() < len(MESSAGES) // 2  # and most others keep the model's probability, exactly
        assert [rows[at[t]]["label"] for t in (SPAM, SPAM_AGAIN, HAM, HAM_AGAIN)] == ["ham", "ham", "spam", "spam"]
    else:
        assert moved.sum() > len(MESSAGES) // 2  # the shift alone moves most of them


def test_the_port_end_to_end_is_pythons_within_the_tolerance(port: str, wide: Path, reported: Path) -> None:
    rows, _ = run_port(port, wide, reported, MESSAGES)
    python = Classifier.load(wide, backend="native", model=MODEL, personal=reported)
    expected = python.predict_proba(MESSAGES).astype(np.float64)
    assert float(np.abs(probabilities(rows).astype(np.float64) - expected).max()) <= FLOAT_ATOL
    assert [row["label"] for row in rows] == python.predict(MESSAGES)


def test_a_state_of_another_bag_is_not_applied_and_says_so(port: str, tiny_bundle: Path, reported: Path) -> None:
    rows, stderr = run_port(port, tiny_bundle, reported, [SPAM, HAM])
    assert probabilities(rows).tolist() == probabilities(rows, "model_probability").tolist()
    text = Bundle.load(tiny_bundle).vocabulary.text.sha256[:12]
    assert stderr == (f"note: personal state '{reported / 'personal.json'}' (4 corrections) was made for another n-gram bag (8192 buckets, n-grams of 2 to 5 "
                      f"characters, 512 ids, text spec {text}) than this bundle's (251 buckets, n-grams of 2 to 5 characters, 40 ids, text spec {text}): "
                      "it is not applied; the next report sets it aside as personal.set-aside-<time>.json and starts a new one\n")
    with pytest.warns(UserWarning, match="was made for another n-gram bag"):
        assert Classifier.load(tiny_bundle, backend="numpy", personal=reported).personal_note  # Python refuses it too


def test_a_state_without_fitted_weights_gets_the_near_duplicate_step_alone(port: str, wide: Path, reported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "personal"
    shutil.copytree(reported, folder)
    Personal(folder).undo([4])  # drops the weights: Python fits again at its next load, a port cannot
    rows, stderr = run_port(port, wide, folder, MESSAGES)
    assert stderr == (f"note: personal state '{folder / 'personal.json'}' (3 corrections) has no weights fitted for this bundle's vocabulary, and this "
                      "runtime does not fit: only its near-duplicate step is applied; load it once with the Python runtime "
                      "(`smsguard predict --bundle BUNDLE --personal DIR TEXT`) to fit them\n")
    expected = python_layer(wide, folder, probabilities(rows, "model_probability").tolist(), MESSAGES, weights=False)
    assert probabilities(rows).view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    assert [row["label"] for row in run_port(port, wide, folder, [SPAM_AGAIN, HAM_AGAIN])[0]] == ["ham", "spam"]
