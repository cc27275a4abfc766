"""The C featuriser (`Vocabulary.featuriser`, `Model.run_texts`) against the Python reference (`Vocabulary.reference()`):
the join scan against the join rule's regular expression, every short string of its three kinds of character; rows
of every code point in windows (alone: slow tier), 20,000 generated texts, every UCI message and long texts past the
chunk size, over several configs; probabilities from text in one C call against the kernel on the reference's rows,
bit for bit, on the tiny bundle (the trained default in the slow tier); and the errors of the C entry points."""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from smsguard.runtime import BackendError, Bundle, Classifier, ModelFormat, NgramConfig, NgramHasher, TextSpec, TokenizerConfig, Vocabulary, _native
from smsguard.runtime._text import JoinRule, _letters_only
from smsguard.runtime._vocabulary import _CHUNK

needs_native = pytest.mark.skipif(not _native.available(), reason=_native.NOT_BUILT)
pytestmark = needs_native

WORDS = ("free", "FREE", "call", "Call", "now", "win", "prize", "txt", "ok", "lor", "u", "r", "ur", "2", "4", "£100", "İstanbul", "ΣΑΣ",
         "cafe\u0301", "naïve", "\u00a0", "a.b", "e-mail", "won't", "<UNKNOWN>", "日本", "😀", "x")
SEPARATORS = (" ", " ", " ", "  ", ".", ". ", " . ", "-", "_", "*", "+", "~", "|", "/", "·", "•", "\t", "\n", ",", "!", "'", ":", "\u3000", "\u200b")
UNICODE = "àéÜß£€ΣσςİıΑΒΓ中文😀👍🏽\u0301\u0307\u200d\ufeff\u00a0\u2028\x85\ud800\udfff\U0010ffff\uff26\uff32\uff25\uff25\u0430\u0435\u043e"
ASCII_WORDS = tuple(w for w in WORDS if w.isascii())
ASCII_SEPARATORS = tuple(s for s in SEPARATORS if s.isascii())


def generated_text(rng: random.Random) -> str:
    """SMS-like: words of a small pool (found and unknown) cut by separators, letters spaced or dotted apart for the
    join rule; three texts in five ASCII, the others with any character of a Unicode pool now and then; mostly short,
    a few long, some past the chunk size."""
    shape, plain = rng.random(), rng.random() < 0.6
    words, separators = (ASCII_WORDS, ASCII_SEPARATORS) if plain else (WORDS, SEPARATORS)
    if shape < 0.15:  # letters spaced or dotted apart, and near misses
        letters = rng.choices("FREEcall2win" + ("" if plain else "xé"), k=rng.randint(1, 9))
        gaps = [rng.choice([" ", ".", ". ", "  ", "-", " - ", "", "   ", "'"] + ([] if plain else ["·"])) for _ in letters]
        return "".join(letter + gap for letter, gap in zip(letters, gaps, strict=True)) + rng.choice(["", " now", "!", "x"])
    pieces = []
    for _ in range(rng.randint(0, 400 if shape > 0.97 else 25)):
        pieces.append(rng.choice(words) if plain or rng.random() < 0.8 else "".join(rng.choices(UNICODE, k=rng.randint(1, 3))))
        pieces.append(rng.choice(separators))
    text = "".join(pieces)
    return text * (_CHUNK // max(len(text), 1) + 2) if shape > 0.99 else text


def generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [generated_text(rng) for _ in range(count)]


def vocabulary(config: TokenizerConfig, ngrams: NgramConfig | None, spec: str) -> Vocabulary:
    """A vocabulary fitted on generated texts; `spec`: "normalise" (format 2, the default), "plain" (format 2 without a
    normaliser) or "legacy" (format 1: str.lower, no normaliser)."""
    text = None if spec == "legacy" else TextSpec.of_this_python(spec == "normalise")
    fitted = Vocabulary.fit(generated(300, seed=1), config, text)
    return fitted.with_ngrams(None if ngrams is None else NgramHasher(ngrams))


CONFIGS = {  # name: (tokenizer, bag, text spec)
    "default": (TokenizerConfig(num_words=60, lower=False, oov_token="<UNKNOWN>", maxlen=12), NgramConfig(buckets=251, length=40), "normalise"),
    "lower-post-pre": (TokenizerConfig(num_words=None, lower=True, maxlen=7, padding="post", truncating="pre"), NgramConfig(buckets=97, length=30), "normalise"),
    "split-dot": (TokenizerConfig(num_words=25, filters="!?,", split=".", oov_token="zz", maxlen=9), NgramConfig(min_n=1, max_n=3, lower=False, length=25), "plain"),
    "legacy-words": (TokenizerConfig(num_words=40, lower=True, oov_token=None, maxlen=15), None, "legacy"),
    "words-long-rows": (TokenizerConfig(num_words=50, lower=False, maxlen=300, truncating="pre"), None, "normalise"),
    "legacy-fused": (TokenizerConfig(num_words=30, lower=False, maxlen=20, padding="post"), NgramConfig(buckets=3, length=7), "legacy"),
}


@functools.cache
def fitted_pair(name: str) -> tuple[Vocabulary, Vocabulary]:
    """(a vocabulary of CONFIGS[name] with its C featuriser, the same computing every row in Python)."""
    fitted = vocabulary(*CONFIGS[name])
    assert fitted.featuriser is not None, name
    reference = fitted.reference()
    assert reference.featuriser is None and (reference.ngrams is None or not reference.ngrams.native)
    return fitted, reference


@pytest.fixture(params=sorted(CONFIGS))
def vocabularies(request: pytest.FixtureRequest) -> tuple[str, Vocabulary, Vocabulary]:
    return request.param, *fitted_pair(request.param)


def assert_same_rows(fitted: Vocabulary, reference: Callable[[list[str]], np.ndarray], texts: list[str]) -> None:
    got, expected = fitted.encode_checked(texts), reference(texts)
    assert got.shape == expected.shape == (len(texts), fitted.width) and got.dtype == np.int32
    differ = np.flatnonzero((got != expected).any(axis=1))
    assert not len(differ), f"text {differ[0]} {texts[differ[0]][:80]!r}: C {got[differ[0]].tolist()}, Python {expected[differ[0]].tolist()}"


# ---- the join rule: a scan in C, the regular expression in Python -------------------------------------------


def join_featuriser(rule: JoinRule):
    separators = "".join(c for c in rule.separators if c.isascii()).encode("ascii")
    return _native.featuriser(bytes(range(256)), ord(" "), {}, 0, 1, True, True, (separators, rule.min_letters, rule.max_separator_run), None)


@pytest.mark.parametrize(("rule", "longest"), [(JoinRule(), 8), (JoinRule(2, " .", 1), 7), (JoinRule(3, ".", 3), 7), (JoinRule(4, " ", 1), 8)])
def test_the_join_scan_is_the_regular_expression_on_every_short_string(rule: JoinRule, longest: int) -> None:
    """The regex tells apart only letters or digits, separators and anything else (tests/test_text.py holds the rest of
    the normaliser); every string of up to `longest` characters over a letter, a digit, the rule's separators among
    " ." and one other character (half a million for the spec's rule) is joined by the scan as by re.sub."""
    pattern, featuriser = re.compile(rule.pattern()), join_featuriser(rule)
    alphabet = "a7" + "".join(sorted({" ", "."} & set(rule.separators))) + "!"
    joined = 0
    for length in range(longest + 1):
        for letters in itertools.product(alphabet, repeat=length):
            text = "".join(letters)
            expected = pattern.sub(_letters_only, text)
            assert featuriser.join(text.encode("ascii")).decode("ascii") == expected, text
            joined += expected != text
    assert joined > 50


def test_the_join_scan_is_the_regular_expression_on_generated_texts() -> None:
    rule = JoinRule()
    pattern, featuriser = re.compile(rule.pattern()), join_featuriser(rule)
    rng = random.Random(5)
    texts = [t for t in generated(20_000, seed=5) if t.isascii()] + ["".join(rng.choices("aB3 .-_*+~|/!'", k=rng.randint(0, 60))) for _ in range(20_000)]
    for text in texts:
        assert featuriser.join(text.encode("ascii")).decode("ascii") == pattern.sub(_letters_only, text), text
    joined = sum(pattern.search(text) is not None for text in texts)
    assert joined > 500


# ---- rows: C against the Python reference --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", *(pytest.param(name, marks=pytest.mark.slow) for name in ("lower-post-pre", "legacy-fused"))])
def test_every_code_point_in_windows(name: str) -> None:
    """Each code point beside its neighbours, an ASCII word and now and then a capital sigma, so that lowering, the
    normaliser's tables, whitespace and the words around them all meet every character (the default's settings here;
    words lowered, and str.lower() with no normaliser, in the slow tier)."""
    fitted, reference = fitted_pair(name)
    step = 509
    windows = range(0, 0x110000, step)
    texts = ["FREE " + "".join(map(chr, range(first, min(first + step, 0x110000)))) + (" ΑΣ" if n % 16 == 0 else "") + " call" for n, first in enumerate(windows)]
    assert_same_rows(fitted, reference.encode_checked, texts)


def test_generated_texts(vocabularies: tuple[str, Vocabulary, Vocabulary]) -> None:
    """20,000 texts (2,000 for the other configs) against the reference's words, with the n-gram ids of the C hasher
    (tests/test_ngrams.py holds it against its own reference); a tenth of them against the pure Python reference."""
    name, fitted, reference = vocabularies
    texts = generated(20_000 if name == "default" else 2_000, seed=sum(map(ord, name)))
    assert sum(not t.isascii() for t in texts) > len(texts) // 4 and sum(t.isascii() and bool(t.strip()) for t in texts) > len(texts) // 3
    assert_same_rows(fitted, fitted.encode_reference, texts)
    assert_same_rows(fitted, reference.encode_checked, texts[::10])


def test_long_texts(vocabularies: tuple[str, Vocabulary, Vocabulary]) -> None:
    """Past the chunk size the reference tokenizes piece by piece (`_first_ids`, `_last_ids`); C reads the whole text."""
    _, fitted, reference = vocabularies
    rng = random.Random(3)
    words = [w for w in WORDS if w.isascii()]
    ascii_long = " ".join(rng.choice(words) for _ in range(30_000))
    texts = [ascii_long, ascii_long.replace(" ", ". "), "F R E E " * 5000, "x" * 100_000, "Σ" + "a" * 5000 + "Σ.", ascii_long + " £ " + ascii_long,
             " ".join(rng.choice(WORDS) for _ in range(20_000)), "\u3000".join(words * 300)]
    assert all(len(t) > _CHUNK for t in texts)
    assert_same_rows(fitted, reference.encode_checked, texts)


def test_every_uci_message(vocabularies: tuple[str, Vocabulary, Vocabulary], uci_texts: list[str]) -> None:
    _, fitted, reference = vocabularies
    assert_same_rows(fitted, reference.encode_checked, uci_texts)


def test_a_vocabulary_fitted_on_the_uci_messages(uci_texts: list[str]) -> None:
    """The default's settings, its words found: every UCI message has the reference's row."""
    config = TokenizerConfig(num_words=7000, lower=False, oov_token="<UNKNOWN>", maxlen=40)
    fitted = Vocabulary.fit(uci_texts, config, TextSpec.of_this_python(True)).with_ngrams(NgramHasher(NgramConfig(length=512)))
    assert_same_rows(fitted, fitted.reference().encode_checked, uci_texts)


@pytest.mark.slow
def test_every_code_point_alone() -> None:
    fitted = vocabulary(*CONFIGS["default"])
    texts = [chr(code) for code in range(0x110000)]
    assert_same_rows(fitted, fitted.reference().encode_checked, texts)
    assert_same_rows(fitted, fitted.reference().encode_checked, ["A" + text + "Σ" for text in texts])


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"split": "ab"}, "a split of two characters"),
        ({"split": "é"}, "a split that is not ASCII"),
        ({"filters": "!?é"}, "a filter that is not ASCII"),
    ],
)
def test_what_c_cannot_do_is_done_in_python(change: dict, why: str) -> None:
    config = TokenizerConfig(**{"num_words": 50, "lower": False, "maxlen": 10} | change)
    fitted = vocabulary(config, NgramConfig(buckets=97, length=20), "normalise")
    assert fitted.featuriser is None, why
    texts = generated(200, seed=9)
    assert_same_rows(fitted, fitted.reference().encode_checked, texts)


def test_native_false_computes_every_row_in_python() -> None:
    fitted = vocabulary(*CONFIGS["default"])
    python = Vocabulary(fitted.config, fitted.word_index, fitted.ngrams, fitted.text, native=False)
    assert python.featuriser is None and python.ngrams is not None and not python.ngrams.native


# ---- probabilities: text to probability in one C call, bit for bit -------------------------------------------


def assert_scores_as_today(bundle: Path, texts: list[str]) -> None:
    """Every .npz model: predict_proba (one call per message, and in bulk) gives the bits of the kernel run on the
    rows the Python reference makes (today's native backend)."""
    models = sorted(name for name, entry in Bundle.load(bundle).models.items() if entry.format is ModelFormat.NPZ)
    assert {"model.float32.npz", "model.int8.npz"} <= set(models)
    for model in models:
        classifier = Classifier.load(bundle, backend="native", model=model)
        assert classifier.vocabulary.featuriser is not None
        today = classifier.session.run(classifier.vocabulary.reference().encode(texts))
        alone = np.array([classifier.predict_proba([text])[0] for text in texts], dtype=np.float32)
        for got in (alone, classifier.predict_proba(texts), classifier.predict_proba(iter(texts))):
            differ = np.flatnonzero(got.view(np.uint32) != today.view(np.uint32))
            assert not len(differ), f"{model}: text {differ[0]} {texts[differ[0]][:60]!r}: {got[differ[0]]!r}, today {today[differ[0]]!r}"


def test_the_tiny_bundle_scores_as_today(tiny_bundle: Path) -> None:
    from tiny import GOLDEN

    assert_scores_as_today(tiny_bundle, [*GOLDEN, *generated(3000, seed=11)])


def test_the_tiny_bundle_scores_every_uci_message_as_today(tiny_bundle: Path, uci_texts: list[str]) -> None:
    assert_scores_as_today(tiny_bundle, uci_texts)


@pytest.mark.slow
def test_the_trained_default_scores_every_uci_message_as_today(fused_bundle: Path, uci_texts: list[str]) -> None:
    assert_scores_as_today(fused_bundle, uci_texts)


# ---- the C entry points' errors ------------------------------------------------------------------------------


def test_run_texts_refuses_what_it_cannot_score(tiny_bundle: Path) -> None:
    classifier = Classifier.load(tiny_bundle, backend="native", model="model.int8.npz")
    model, featuriser, out = classifier.session._model, classifier.vocabulary.featuriser, np.empty(2, dtype=np.float32)
    with pytest.raises(TypeError, match=r"^featuriser must be a Featuriser$"):
        model.run_texts(object(), ["a", "b"], out)
    with pytest.raises(TypeError, match=r"^texts\[1\] must be an ASCII str or a pair of bytes \(words, bag\)$"):
        model.run_texts(featuriser, ["a", "é"], out)
    with pytest.raises(TypeError, match=r"^texts must be a list of ASCII str and pairs of bytes$"):
        model.run_texts(featuriser, 3, out)
    with pytest.raises(ValueError, match=r"^out must be a C-contiguous float32 array with one element per text$"):
        model.run_texts(featuriser, ["a"], out)
    words = Vocabulary(TokenizerConfig(maxlen=12), classifier.vocabulary.word_index)
    with pytest.raises(ValueError, match=r"^the featuriser makes rows of 12 word ids and 0 n-gram ids, the model takes 12 and 40$"):
        model.run_texts(words.featuriser, ["a", "b"], out)


def test_an_id_past_the_model_is_refused_as_with_rows(tiny_bundle: Path) -> None:
    classifier = Classifier.load(tiny_bundle, backend="native", model="model.int8.npz")
    vocabulary = classifier.vocabulary
    index = dict(vocabulary.word_index) | {"zzz": 10**6}
    wide = Vocabulary(TokenizerConfig(num_words=None, lower=False, maxlen=12), index, vocabulary.ngrams, vocabulary.text)
    expected = f"native backend: token id 1000000 at row 1 is outside the model's vocabulary of {vocabulary.size} ids"
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        classifier.session.run_texts(wide, ["ok", "ok zzz"])
    with pytest.raises(BackendError, match=f"^{re.escape(expected)}$"):
        classifier.session.run(wide.encode(["ok", "ok zzz"]))


def test_a_featuriser_refuses_bad_settings() -> None:
    table = bytes(range(256))
    with pytest.raises(ValueError, match=r"^join separators must be ASCII characters other than letters and digits, found byte 0x61$"):
        _native.featuriser(table, 32, {}, 0, 5, True, True, (b" a", 4, 2), None)
    with pytest.raises(ValueError, match=r"^word ids must be from 1 to 2\*\*31 - 1$"):
        _native.featuriser(table, 32, {b"a": 0}, 0, 5, True, True, None, None)
    with pytest.raises(TypeError, match=r"^words must be a dict of word bytes to int ids, under 2\*\*28 words and 4 GB of them$"):
        _native.featuriser(table, 32, {"a": 1}, 0, 5, True, True, None, None)
    with pytest.raises(ValueError, match=r"^a Featuriser needs a 256-byte table, an ASCII split, an OOV id >= 0 \(0: none\) and maxlen from 1 to 100000$"):
        _native.featuriser(table[:10], 32, {}, 0, 5, True, True, None, None)


def test_a_long_text_is_joined_a_piece_at_a_time_as_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """joined_words cuts a long text into pieces at whitespace: the same bytes as splitting it whole."""
    import random

    from smsguard.runtime import _ngrams

    rng = random.Random(0)
    characters = ["a", "é", "😀", " ", "\u3000", "\t", "\n", "\u2028", "\u00a0", "x", "\ud800"]
    for piece in (1, 2, 3, 7, 64):
        monkeypatch.setattr(_ngrams, "_JOIN_PIECE", piece)
        for _ in range(60):
            text = "".join(rng.choice(characters) for _ in range(rng.randrange(0, 400)))
            assert _ngrams.joined_words(text) == " ".join(text.split()).encode("utf-8", "surrogatepass"), (piece, text)
