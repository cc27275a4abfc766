"""Corrections on the tiny bundle: a report moves that message and its near-duplicates and leaves unrelated ones, the
state in its folder survives reloads, bundle updates and a writer killed at any moment, keeps no text, and stays
bounded; the command line's report and personal commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest
from tiny import TEXTS, make_bundle

from smsguard import cli
from smsguard.runtime import Classifier, NgramConfig, NgramHasher, Personal, PersonalError, PersonalStateWarning, TokenizerConfig, Vocabulary, _personal
from smsguard.runtime._personal import STATE_NAME, PersonalModel, read_state

SPAM = "WINNER!! You have won a £900 prize, call 09061701461 to claim now"
SPAM_AGAIN = "WINNER!! You have won a £500 prize, call 09061709999 to claim now"  # the same campaign, other numbers
HAM = "Are we still on for dinner tonight? I'll be there around 7"
HAM_AGAIN = "Are we still on for dinner tonight? I'll be there around 8"


def loaded(bundle: Path, folder: Path) -> Classifier:
    return Classifier.load(bundle, backend="numpy", personal=folder)


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the default model's bag (8192 buckets, 512 ids): n-grams collide as little as in a real bundle."""
    return make_bundle(tmp_path_factory.mktemp("wide") / "bundle", bag=NgramConfig())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "personal"
    out.mkdir()
    return out


def test_a_not_spam_report_clears_the_message_and_its_near_duplicates_only(wide: Path, tmp_path: Path, folder: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(wide, bundle)
    edit_manifest(bundle, lambda m: m.update(threshold=0.3))  # the tiny model then flags every message
    clf = loaded(bundle, folder)
    others = [t for t in TEXTS if t != SPAM]
    before = clf.predict_proba([SPAM, SPAM_AGAIN, *others])
    assert clf.predict([SPAM, SPAM_AGAIN]) == ["spam", "spam"]
    made = clf.report([SPAM], ["ham"])
    assert [(c.id, c.label) for c in made] == [(1, "ham")]
    after = clf.predict_proba([SPAM, SPAM_AGAIN, *others])
    assert clf.predict([SPAM, SPAM_AGAIN]) == ["ham", "ham"]
    assert clf.predict(others) == ["spam"] * len(others)
    unmoved = [t for t, a, b in zip(others, after[2:], before[2:], strict=True) if a == b]
    assert len(unmoved) >= len(others) - 2  # unrelated messages keep their score exactly, bar a neighbour or two ("call ... now")


def test_a_spam_report_flags_the_message_and_its_campaign(wide: Path, tmp_path: Path, folder: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(wide, bundle)
    edit_manifest(bundle, lambda m: m.update(threshold=0.7))  # flags nothing
    clf = loaded(bundle, folder)
    assert clf.predict([HAM, HAM_AGAIN, TEXTS[5]]) == ["ham", "ham", "ham"]
    before = clf.predict_proba(TEXTS)
    clf.report([HAM], ["spam"])
    assert clf.predict([HAM, HAM_AGAIN, TEXTS[5]]) == ["spam", "spam", "ham"]
    assert clf.predict([t for t in TEXTS if t != HAM]) == ["ham"] * (len(TEXTS) - 1)
    assert sum(a == b for a, b in zip(clf.predict_proba(TEXTS), before, strict=True)) >= len(TEXTS) - 3
    explanation = clf.explain(HAM_AGAIN)
    assert explanation.label == "spam" and explanation.personal > 0
    assert explanation.probability == pytest.approx(float(clf.predict_proba([HAM_AGAIN])[0]), abs=1e-6)


def test_the_state_is_kept_and_applied_again_at_the_next_load(tiny_bundle: Path, folder: Path) -> None:
    clf = loaded(tiny_bundle, folder)
    clf.report([SPAM, HAM], ["ham", "spam"])
    again = loaded(tiny_bundle, folder)
    np.testing.assert_array_equal(again.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    assert [(c.id, c.label) for c in Personal(folder).corrections] == [(1, "ham"), (2, "spam")]
    clf.report([SPAM], ["spam"])  # the same message again: its earlier correction is replaced
    assert [(c.id, c.label) for c in Personal(folder).corrections] == [(2, "spam"), (3, "spam")]


def test_undo_and_clear_give_back_the_shipped_scores(tiny_bundle: Path, folder: Path) -> None:
    shipped = Classifier.load(tiny_bundle, backend="numpy").predict_proba(TEXTS)
    clf = loaded(tiny_bundle, folder)
    clf.report([TEXTS[0], TEXTS[4]], ["ham", "spam"])
    assert not np.allclose(loaded(tiny_bundle, folder).predict_proba(TEXTS), shipped)
    assert [c.id for c in Personal(folder).undo([1, 2])] == [1, 2]
    np.testing.assert_allclose(loaded(tiny_bundle, folder).predict_proba(TEXTS), shipped, atol=1e-6)
    clf.report([TEXTS[0]], ["ham"])
    assert Personal(folder).clear() == 3 - 2
    np.testing.assert_allclose(loaded(tiny_bundle, folder).predict_proba(TEXTS), shipped, atol=1e-6)
    with pytest.raises(PersonalError, match="^" + re.escape(f"personal state '{folder / STATE_NAME}' has no correction 9; `smsguard personal {folder}` lists them") + "$"):
        Personal(folder).undo([9])


def test_no_text_is_kept(tiny_bundle: Path, folder: Path) -> None:
    loaded(tiny_bundle, folder).report([SPAM, "meet Priyanka at Waterloo 1830"], ["spam", "ham"])
    content = (folder / STATE_NAME).read_bytes()
    data = json.loads(content)
    assert set(data) == {"format", "kind", "salt", "bag", "learner", "next_id", "corrections", "bags", "weights"}
    assert set(data["corrections"][0]) == {"id", "label", "reported", "message", "size", "probability", "serial"}
    for word in ("WINNER", "winner", "09061701461", "prize", "Priyanka", "priyanka", "Waterloo", "1830"):
        assert word.encode() not in content, word


def test_the_state_is_bounded(tiny_bundle: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_personal, "MAX_CORRECTIONS", 5)
    clf = loaded(tiny_bundle, folder)
    clf.report([f"message {k} for you" for k in range(8)], ["spam"] * 8)
    assert [c.id for c in Personal(folder).corrections] == [4, 5, 6, 7, 8]


def test_bad_reports_are_refused_in_one_line(tiny_bundle: Path, folder: Path) -> None:
    clf = loaded(tiny_bundle, folder)
    with pytest.raises(PersonalError, match=r"^label 'junk' is not one of this bundle's labels: ham, spam$"):
        clf.report([SPAM], ["junk"])
    with pytest.raises(PersonalError, match=r"^report got 2 messages and 1 labels: give one label per message$"):
        clf.report([SPAM, HAM], ["spam"])
    with pytest.raises(PersonalError, match=r"^report needs a personal state folder: load with Classifier.load\(bundle, personal=DIR\)$"):
        Classifier.load(tiny_bundle, backend="numpy").report([SPAM], ["spam"])
    with pytest.raises(PersonalError, match="^" + re.escape(f"personal state folder '{folder / 'nope'}' does not exist; create it (mkdir) or give another --personal") + "$"):
        Classifier.load(tiny_bundle, backend="numpy", personal=folder / "nope")
    (folder / STATE_NAME).write_text("{not json")
    with pytest.raises(PersonalError, match="^" + re.escape(f"personal state '{folder / STATE_NAME}' is not a state this smsguard reads")):
        Classifier.load(tiny_bundle, backend="numpy", personal=folder)


def test_a_new_bundle_with_the_same_bag_takes_the_state(tiny_copy: Path, tmp_path: Path, folder: Path) -> None:
    clf = loaded(tiny_copy, folder)
    clf.report([SPAM], ["ham"])
    newer = make_bundle(tmp_path / "newer", seed=3, serial=2)  # other weights, the same vocabulary and bag
    assert clf.reload(newer)
    assert clf.predict_proba([SPAM])[0] == loaded(newer, folder).predict_proba([SPAM])[0]
    assert clf.personal_note == "" and clf.predict([SPAM]) == ["ham"]


def test_a_bundle_with_another_bag_sets_the_state_aside_with_one_message(tiny_bundle: Path, tmp_path: Path, folder: Path) -> None:
    loaded(tiny_bundle, folder).report([SPAM], ["ham"])
    other = make_bundle(tmp_path / "other", edit=lambda v: v.with_ngrams(NgramHasher(NgramConfig(buckets=97, length=40))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = loaded(other, folder)
    message = clf.personal_note
    assert [str(w.message) for w in caught if w.category is PersonalStateWarning] == [message]
    assert message.startswith(f"personal state '{folder / STATE_NAME}' (1 corrections) was made for another n-gram bag (251 buckets")
    assert message.endswith("than this bundle's (97 buckets, n-grams of 2 to 5 characters, 40 ids, text spec " + message.split("text spec ")[2].split(")")[0]
                            + "): it is not applied; the next report sets it aside as personal.set-aside-<time>.json and starts a new one")
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), Classifier.load(other, backend="numpy").predict_proba(TEXTS))
    clf.report([HAM], ["spam"])
    assert [p.name.startswith("personal.set-aside-") for p in folder.glob("personal.set-aside-*.json")] == [True]
    assert [c.label for c in Personal(folder).corrections] == ["spam"]
    assert clf.personal_note.startswith("personal state made for another n-gram bag (251 buckets")


WRITER = textwrap.dedent(
    """
    import sys
    from smsguard.runtime import Classifier
    clf = Classifier.load(sys.argv[1], backend="numpy", personal=sys.argv[2])
    k = int(sys.argv[3])
    while True:
        clf.report([f"message {k} about the prize draw"], ["spam" if k % 2 else "ham"])
        k += 1
    """
)


def test_a_writer_killed_at_any_moment_leaves_a_readable_state(tiny_bundle: Path, folder: Path) -> None:
    """SIGKILL a process that reports without pause, at 6 moments: each time the state reads, and loads with a bundle."""
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    counts = []
    for trial in range(6):
        written = _written(folder)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tiny_bundle), str(folder), str(1000 * trial)], env=env)
        deadline = time.monotonic() + 60
        while _written(folder) == written and time.monotonic() < deadline:  # it has written once: it is in its loop
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        state = read_state(folder)
        assert state is not None
        counts.append(len(state.corrections))
        loaded(tiny_bundle, folder).predict_proba(TEXTS)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    loaded(tiny_bundle, folder).report([SPAM], ["spam"])
    assert not list(folder.glob(f".{STATE_NAME}.*.tmp"))  # a dead writer's temporary file goes with the next write


def _written(folder: Path) -> int:
    path = folder / STATE_NAME
    return path.stat().st_mtime_ns if path.exists() else 0


def test_a_word_model_takes_its_own_bag() -> None:
    vocabulary = Vocabulary.fit(TEXTS, TokenizerConfig(num_words=60))
    bags = PersonalModel.bags_of(vocabulary, ["free prize now", ""], np.zeros((2, 40), dtype=np.int32))
    assert len(bags[0][bags[0] > 0]) > 5 and not bags[1].any()


def test_the_command_line(tiny_bundle: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--bundle", str(tiny_bundle), "--personal", str(folder), "--spam", HAM, TEXTS[5]]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].startswith("#1 spam: ") and out.out.splitlines()[1].startswith("#2 spam: ")
    assert out.err.strip().endswith(f"2 corrections recorded in {folder} (2 in all)")
    assert cli.main(["report", "--bundle", str(tiny_bundle), "--personal", str(folder), "--ham", TEXTS[6], "--save-text", str(folder / "mine.csv")]) == 0
    assert capsys.readouterr().err.strip().endswith(f"1 message and label appended to {folder / 'mine.csv'} (text in clear: for smsguard train --data)")
    assert (folder / "mine.csv").read_text() == f"label,text\nham,\"{TEXTS[6]}\"\n"
    assert cli.main(["personal", str(folder), "--undo", "3"]) == 0
    capsys.readouterr()
    assert cli.main(["personal", str(folder)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["id", "label", "reported", "(UTC)", "n-grams", "score", "then", "bundle", "serial"] and len(listed) == 3
    assert cli.main(["personal", str(folder), "--json"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [1, 2]
    assert cli.main(["predict", "--bundle", str(tiny_bundle), "--personal", str(folder), HAM]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "spam"
    assert cli.main(["personal", str(folder), "--undo", "1"]) == 0
    assert "Forgot 1 correction: #1 (spam, " in capsys.readouterr().err
    assert cli.main(["personal", str(folder), "--undo", "7"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"personal state '{folder / STATE_NAME}' has no correction 7; `smsguard personal {folder}` lists them")
    assert cli.main(["personal", str(folder), "--clear"]) == 0
    assert cli.main(["personal", str(folder)]) == 0
    assert f"no corrections in {folder}" in capsys.readouterr().out
    assert cli.main(["report", "--bundle", str(tiny_bundle), "--personal", str(folder / "missing"), "--ham", HAM]) == 2
    assert capsys.readouterr().err.strip().endswith(f"personal state folder '{folder / 'missing'}' does not exist; create it (mkdir) or give another --personal")


def test_smsguard_serve_applies_a_personal_folder_and_reads_it_again_at_a_reload(tiny_bundle: Path, folder: Path) -> None:
    from serve_helpers import request, running

    clf = loaded(tiny_bundle, folder)
    clf.report([SPAM], ["ham"])
    with running(tiny_bundle, "--personal", str(folder)) as server:
        status, _, body = request(server, "POST", "/v1/classify", {"messages": [{"text": SPAM}, {"text": HAM}]})
        assert status == 200
        assert [r["probability"] for r in body["results"]] == [round(float(p), 6) for p in clf.predict_proba([SPAM, HAM])]
        clf.report([HAM], ["spam"])  # another process records a correction; a reload reads it
        assert request(server, "POST", "/v1/reload")[2]["reloaded"] is False
        _, _, body = request(server, "POST", "/v1/classify", {"messages": [{"text": HAM}]})
        assert body["results"][0]["probability"] == round(float(loaded(tiny_bundle, folder).predict_proba([HAM])[0]), 6)
        assert body["results"][0]["label"] == "spam"
