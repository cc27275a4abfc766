"""Explanations on the tiny bundle: the spans are the message's words where they were written, each span's two parts
are the drops of the score without it (word ids, bag), the bag's split adds up exactly to what the bag moves, and
every backend says the same."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from tiny import GOLDEN, TEXTS

from smsguard.runtime import Classifier, NgramConfig, NgramHasher, TextSpec, TokenizerConfig, Vocabulary, installed_backends
from smsguard.runtime._explain import _kept_tokens, without

NPZ_BACKENDS = [b.name for b in installed_backends() if b.format == "npz"]


def test_the_spans_are_the_words_as_written(tiny_bundle: Path) -> None:
    text = "Ｆ Ｒ Ｅ Ｅ entry,  c.a.l.l\u200b now"
    explanation = Classifier.load(tiny_bundle, backend="numpy").explain(text)
    assert [s.text for s in explanation.spans] == ["Ｆ Ｒ Ｅ Ｅ", "entry,", "c.a.l.l", "now"]  # the removed character is no part of a word
    assert all(text[s.start : s.end] == s.text for s in explanation.spans)
    assert [s.start for s in explanation.spans] == [0, 8, 16, 25]


@pytest.mark.parametrize("text", [*GOLDEN, "WINNER!! WINNER!! call call call 09061701461", "Σ İ ﬀ"])
def test_the_bags_shares_add_up_to_what_the_bag_moves(tiny_bundle: Path, text: str) -> None:
    clf = Classifier.load(tiny_bundle, backend="numpy", model="model.float32.npz")
    explanation = clf.explain(text)
    row = clf.encode([text])
    emptied = row.copy()
    emptied[:, clf.vocabulary.config.maxlen :] = 0
    moved = float(clf.session.run(row)[0]) - float(clf.session.run(emptied)[0])
    assert sum(s.bag_share for s in explanation.spans) == pytest.approx(moved, abs=1e-5)
    assert explanation.probability == pytest.approx(float(clf.predict_proba([text])[0]), abs=1e-7)


@pytest.mark.parametrize("text", [TEXTS[0], TEXTS[4], "WINNER!! WINNER!! call call now", "www.x.com/win now"])
def test_each_part_is_the_drop_without_the_span(tiny_bundle: Path, text: str) -> None:
    """`words`: the span's words out of the word ids, the bag kept; `ngrams`: the span out of the bag, the word ids
    kept; `contribution`: both, which is the message scored without the span."""
    clf = Classifier.load(tiny_bundle, backend="numpy", model="model.float32.npz")
    explanation = clf.explain(text)
    maxlen = clf.vocabulary.config.maxlen
    row = clf.encode([text])
    full = float(clf.session.run(row)[0])
    for span in explanation.spans:
        shortened = clf.encode([without(text, [(span.start, span.end)])])
        words_out, bag_out = shortened.copy(), row.copy()
        words_out[:, maxlen:] = row[:, maxlen:]
        bag_out[:, maxlen:] = shortened[:, maxlen:]
        assert span.words == pytest.approx(full - float(clf.session.run(words_out)[0]), abs=1e-5), span
        assert span.ngrams == pytest.approx(full - float(clf.session.run(bag_out)[0]), abs=1e-5), span
        assert span.contribution == pytest.approx(full - float(clf.session.run(shortened)[0]), abs=1e-5), span
        assert span.log_odds == pytest.approx(np.log(full / (1 - full)) - np.log((full - span.contribution) / (1 - full + span.contribution)), abs=1e-4)


@pytest.mark.parametrize("backend", NPZ_BACKENDS)
def test_every_backend_gives_the_same_explanation(tiny_bundle: Path, backend: str) -> None:
    reference = Classifier.load(tiny_bundle, backend="numpy").explain(TEXTS[1])
    got = Classifier.load(tiny_bundle, backend=backend).explain(TEXTS[1])
    assert [(s.start, s.end) for s in got.spans] == [(s.start, s.end) for s in reference.spans]
    np.testing.assert_allclose([s.contribution for s in got.spans], [s.contribution for s in reference.spans], atol=1e-5)


def test_top_and_json(tiny_bundle: Path) -> None:
    explanation = Classifier.load(tiny_bundle, backend="numpy").explain(TEXTS[2])
    top = explanation.top(3)
    assert len(top) <= 3 and all(s.contribution > 0 for s in top)
    assert [s.contribution for s in top] == sorted((s.contribution for s in top), reverse=True)
    data = json.loads(json.dumps(explanation.to_dict()))
    assert data["label"] in ("ham", "spam") and data["text"] == TEXTS[2]
    assert [(s["start"], s["end"]) for s in data["spans"]] == [(s.start, s.end) for s in explanation.spans]


def test_an_empty_message_has_no_spans(tiny_bundle: Path) -> None:
    explanation = Classifier.load(tiny_bundle, backend="numpy").explain("")
    assert explanation.spans == () and explanation.top(5) == []


def test_without_takes_out_ranges() -> None:
    assert without("free entry now", [(0, 5), (11, 14)]) == "entry "


@pytest.mark.parametrize(
    "config",
    [
        TokenizerConfig(num_words=60, lower=False, oov_token="<UNKNOWN>", maxlen=12),
        TokenizerConfig(num_words=None, lower=True, oov_token=None, maxlen=5, truncating="pre", padding="post"),
        TokenizerConfig(num_words=30, lower=True, oov_token="<OOV>", maxlen=40, split="."),
    ],
)
def test_the_words_found_are_the_models_word_ids(config: TokenizerConfig) -> None:
    """The explainer finds each word the model sees, and where: the same ids as `encode`, on every kind of text."""
    rng = random.Random(0)
    spec = TextSpec.of_this_python(normalise=True)
    vocabulary = Vocabulary.fit(TEXTS, config, spec).with_ngrams(NgramHasher(NgramConfig(buckets=97, length=16)))
    near = [*"FREE call now ok lor .,!?-", "\u200b", "Ｆ", "İ", "Σ", "\u00a0", "\r", "\x0b", "ﬀ", "е"]
    texts = [*GOLDEN, *("".join(rng.choice(near) for _ in range(rng.randint(0, 60))) for _ in range(2000))]
    for text in texts:
        normalised = vocabulary.normalise(text)
        tokens = _kept_tokens(vocabulary, normalised)
        row = vocabulary.encode([text])[0, : config.maxlen]
        assert [index for index, _, _ in tokens] == row[row > 0].tolist(), repr(text)
        for _, start, end in tokens:
            assert 0 <= start < end <= len(normalised)


def test_the_command_line_prints_plain_text_json_or_colour(tiny_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from smsguard import cli

    assert cli.main(["explain", "--bundle", str(tiny_bundle), "--backend", "numpy", "--top", "2", TEXTS[0]]) == 0
    lines = capsys.readouterr().out.splitlines()
    explanation = Classifier.load(tiny_bundle, backend="numpy").explain(TEXTS[0])
    assert lines[0] == f"{explanation.label} {explanation.probability:.3f} (threshold 0.500)  {TEXTS[0]}"  # not a terminal: no colour
    top = sorted(explanation.spans, key=lambda s: -abs(s.log_odds))[:2]
    assert lines[1:] == [f"  {s.log_odds:+6.2f}  {s.text!r}: {explanation.probability:.4f} -> {explanation.probability - s.contribution:.4f} without it" for s in top]
    assert cli.main(["explain", "--bundle", str(tiny_bundle), "--backend", "numpy", "--json", TEXTS[0], TEXTS[4]]) == 0
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["text"] for d in documents] == [TEXTS[0], TEXTS[4]] and documents[0]["spans"][0]["start"] == 0
    from smsguard.cli import _explained_line

    coloured = _explained_line(explanation, colour=True)
    strongest = max(explanation.spans, key=lambda s: abs(s.log_odds))
    assert re.sub("\033\\[[0-9;]*m", "", coloured) == lines[0]  # the same line, with colours
    assert f"\033[30;4{1 if strongest.log_odds > 0 else 2}m{strongest.text}\033[0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.main(["explain", "--bundle", str(tiny_bundle), "--backend", "numpy", TEXTS[0]]) == 0
    assert "\033[" not in capsys.readouterr().out
