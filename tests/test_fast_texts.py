"""Odd texts on word-only tiny bundles, with and without an OOV token, with and without the normaliser (NumPy
alone, no training): every odd text gets the very ids and probability bits of a plain text holding its known
words, with one placeholder word for each unknown piece where the vocabulary has an OOV id, and none where it
drops unknown words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny import make_bundle

from smsguard.runtime import Classifier, installed_backends, verify_bundle

NPZ_BACKENDS = [b.name for b in installed_backends() if b.format == "npz"]
UNKNOWN = "qzxv"  # a word no tiny vocabulary holds: it stands for each unknown piece of an odd text
U = UNKNOWN
ODD_TEXTS = {  # each: an odd text, and the plain text the tokenizer must read it as (the tiny vocabularies keep case)
    "whitespace only": (" \t\n\r\u00a0 ", U),  # '\r' and the no-break space are not filters: one unknown word
    "NUL and control characters": ("\x00 win \x07 now \x1b[31m call call\x7f", f"{U} win {U} now {U} {U} call {U}"),  # '\x1b', '31m'; DEL is no filter
    "lone surrogates": ("\ud800 win \udfff now \udbff\udc00", f"{U} win {U} now {U}"),
    "right to left": ("مبروك لقد ربحت win now \u202eprize\u202c call", f"{U} {U} {U} win now {{rlo}} call"),  # RLO and PDF glued to a word
    "emoji": ("😀 win 🎉 now 👍🏽 call 🇺🇸", f"{U} win {U} now {U} call {U}"),
    "CJK": ("恭喜 你 赢了 win now 現金 call", f"{U} {U} {U} win now {U} call"),
    "HTML": ("<p><b>WIN</b> <a href='http://x.co'>now</a> call&nbsp;</p>", f"p b {U} b a href {U} x {U} now a call nbsp p"),
}


RLO_WORD = {True: "prize", False: UNKNOWN}  # the normaliser drops bidirectional controls: the word is known again


@pytest.fixture(scope="module", params=[("<UNKNOWN>", True), ("<UNKNOWN>", False), (None, True), (None, False)],
                ids=["oov-normalised", "oov", "no-oov-normalised", "no-oov"])
def word_bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    oov_token, normalise = request.param
    return make_bundle(tmp_path_factory.mktemp("words") / "bundle", ngrams=False, oov_token=oov_token, normalise=normalise)


def test_a_word_only_bundle_with_or_without_an_oov_token_verifies(word_bundle: Path) -> None:
    report = verify_bundle(word_bundle)
    assert report.passed and len(report.results) == len(report.bundle.models) * len(NPZ_BACKENDS) >= 2 * len(NPZ_BACKENDS)
    vocabulary = report.bundle.vocabulary
    assert vocabulary.ngrams is None and vocabulary.width == vocabulary.config.maxlen


def test_unknown_words_take_the_oov_id_or_leave_no_trace(word_bundle: Path) -> None:
    vocabulary = Classifier.load(word_bundle, backend="numpy").vocabulary
    oov = vocabulary.config.oov_token
    known = [vocabulary.word_index[w] for w in ("win", "now")]
    if oov is None:
        assert vocabulary.texts_to_sequences([f"{U} win {U} now {U}"]) == [known]
        assert vocabulary.encode([f"{U} {U}"]).tolist() == vocabulary.encode([""]).tolist()  # nothing but padding
    else:
        assert vocabulary.texts_to_sequences([f"{U} win {U} now {U}"]) == [[1, known[0], 1, known[1], 1]]
        assert vocabulary.word_index[oov] == 1


@pytest.mark.parametrize("backend", NPZ_BACKENDS)
def test_odd_texts_give_the_ids_and_bits_of_their_plain_equivalents(word_bundle: Path, backend: str) -> None:
    classifier = Classifier.load(word_bundle, backend=backend)
    rlo = RLO_WORD[classifier.vocabulary.text.normaliser is not None]
    texts, plain = (list(column) for column in zip(*ODD_TEXTS.values(), strict=True))
    plain = [text.format(rlo=rlo) for text in plain]
    assert classifier.encode(texts).tolist() == classifier.encode(plain).tolist()
    assert classifier.predict_proba(texts).tobytes() == classifier.predict_proba(plain).tobytes()
    assert classifier.predict(texts) == classifier.predict(plain)
    if classifier.vocabulary.config.oov_token is None:  # the placeholders leave no trace either: the known words alone
        # (not HTML: its known words alone put four one-letter words side by side, which the normaliser joins)
        kept = [i for i, name in enumerate(ODD_TEXTS) if name != "HTML"]
        bare = [" ".join(w for w in plain[i].split() if w != UNKNOWN) for i in kept]
        assert classifier.predict_proba([texts[i] for i in kept]).tobytes() == classifier.predict_proba(bare).tobytes()
    assert np.unique(classifier.predict_proba(texts)).size > 1  # the known words count: not one constant output
