"""The text spec pinned in vocab.json (format 2): the lowercase table, the normaliser, and what a vocabulary does with them."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from smsguard.runtime import BundleError, Lowercase, NgramConfig, NgramHasher, Normaliser, TextSpec, TokenizerConfig, Vocabulary
from smsguard.runtime._text import JOIN_SEPARATORS, WHITESPACE, JoinRule, ranges_of

LOWER = Lowercase.of_this_python()
NORMALISE = Normaliser.of_this_python()
SPEC = TextSpec.of_this_python(normalise=True)


def test_the_lowercase_table_is_this_pythons_str_lower_on_every_code_point() -> None:
    mismatches = [code for code in range(0x110000) if LOWER(chr(code)) != chr(code).lower()]
    assert mismatches == []
    assert LOWER("İ") == "i̇" and LOWER("ΣΑΣ ΣΑ.Σ. Σ") == "σας σα.ς. σ"


def test_the_final_sigma_rule_is_this_pythons_in_random_contexts() -> None:
    rng = random.Random(0)
    near = ["Σ"] * 8 + ["A", "a", " ", ".", "'", "\u0301", "\u00ad", "1", "\u02b0", "\u0345", "\ud800", "ß"]
    everything = [chr(code) for code in range(0x110000)]
    texts = ["".join(rng.choice(near) if rng.random() < 0.6 else rng.choice(everything) for _ in range(rng.randint(1, 9))) for _ in range(30_000)]
    assert [t for t in texts if LOWER(t) != t.lower()] == []


def test_a_pinned_table_is_applied_not_the_running_pythons() -> None:
    """A bundle made on another Python (another Unicode version) keeps its own mapping here: U+1C89, which
    Unicode 16 pairs with U+1C8A, lowers as the bundle's table says, whatever str.lower() does."""
    data = LOWER.to_dict()
    data["map"]["1c89"] = "\u1c8a"
    pinned = Lowercase.from_dict(data)
    assert pinned("X\u1c89") == "x\u1c8a"
    vocabulary = Vocabulary.fit(["x\u1c8a y"], TokenizerConfig(num_words=None), TextSpec(pinned))
    vocabulary = vocabulary.with_ngrams(NgramHasher(NgramConfig(buckets=97, length=8), native=False))
    again = Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())))
    assert again.words("X\u1c89 Y") == ["x\u1c8a", "y"]
    assert again.ngrams is not None and again.ngrams.ids("X\u1c89") == again.ngrams.ids("x\u1c8a")


def test_the_lowercase_table_round_trips_and_keeps_ascii_fast() -> None:
    again = Lowercase.from_dict(json.loads(json.dumps(LOWER.to_dict())))
    assert again == LOWER and again._ascii
    assert len(LOWER.mapping) > 1000 and 0x3A3 not in LOWER.mapping


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("FREE entry", "FREE entry"),
        ("F R E E entry", "FREE entry"),  # spaced out
        ("F.R.E.E entry", "FREE entry"),  # dotted out
        ("F. R. E. E", "FREE"),  # two separators between letters
        ("c-a-l-l now", "call now"),
        ("c-a-l-l 0-8-0-0 now", "call0800 now"),  # one run: a space is a separator too
        ("W\u200bI\u200bN\u200bN\u200bE\u200bR", "WINNER"),  # zero-width spaces removed, then joined
        ("Ｆｒｅｅ ｅｎｔｒｙ", "Free entry"),  # full-width forms folded
        ("𝐅𝐑𝐄𝐄 ①", "FREE 1"),  # mathematical bold, a circled digit
        ("Frее", "Free"),  # Cyrillic е inside a Latin word
        ("Привет", "Привет"),  # a Cyrillic word stays Cyrillic
        ("ΑΒΓ", "ΑΒΓ"),  # a Greek word stays Greek
        ("see you\u00a0at 6", "see you at 6"),  # a no-break space is a space
        ("u r a goodmate", "u r a goodmate"),  # SMS shorthand: fewer than 4 letters stay
        ("K..k..i'm fine", "K..k..i'm fine"),
        ("1 2 3 4 5", "12345"),
        ("a b c d5", "a b c d5"),  # the run must end where a word ends
        ("", ""),
    ],
)
def test_the_normaliser(text: str, normalised: str) -> None:
    assert NORMALISE(text) == normalised


def test_the_join_rule_is_one_regular_expression_ports_can_use() -> None:
    pattern = JoinRule().pattern()
    assert pattern == r"(?<![A-Za-z0-9])[A-Za-z0-9](?:[ .\-_*+~|/·•]{1,2}[A-Za-z0-9]){3,}(?![A-Za-z0-9])"
    assert set(JOIN_SEPARATORS) <= set(re.sub(r"\\(.)", r"\1", pattern[pattern.index("[ ") + 1 : pattern.index("]{1")]))


def test_ascii_text_takes_the_fast_path_with_the_same_result() -> None:
    rng = random.Random(1)
    alphabet = "abcXYZ 019.-_*'\u00e9"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        slow = Normaliser(NORMALISE.remove, {**NORMALISE.fold, 0x41: "A"}, NORMALISE.lookalikes)  # an ASCII entry turns the fast path off
        assert not slow._ascii_fast and NORMALISE._ascii_fast
        assert NORMALISE(text) == slow(text)


def test_the_tables_hold_what_the_spec_says() -> None:
    removed = {code for first, last in NORMALISE.remove for code in range(first, last + 1)}
    assert {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0xFE0F, 0x034F} <= removed
    assert not {0x0600, 0xFFF9} & removed  # visible format characters stay
    assert NORMALISE.fold[0xFF21] == "A" and NORMALISE.fold[0x00A0] == " " and 0xF900 not in NORMALISE.fold
    assert all(value.isascii() and value.isalnum() and len(value) == 1 for value in NORMALISE.lookalikes.values())
    assert NORMALISE.lookalikes[0x0435] == "e" and NORMALISE.lookalikes[0x0406] == "I"
    assert not set(NORMALISE.fold) & set(NORMALISE.lookalikes)
    for value in NORMALISE.fold.values():  # one pass is enough: a folded value folds to itself
        assert value.translate(NORMALISE._removing) == value
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_the_spec_round_trips_through_json() -> None:
    data = json.loads(json.dumps(SPEC.to_dict()))
    assert TextSpec.from_dict(data) == SPEC
    assert data["format"] == 1 and data["normalise"]["join"] == {"min_letters": 4, "separators": JOIN_SEPARATORS, "max_separator_run": 2}
    assert TextSpec.from_dict(TextSpec(LOWER).to_dict()).normaliser is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format=2), r"text format 2 is not supported \(this smsguard reads 1\)"),
        (lambda d: d["lowercase"].pop("map"), r"text section is malformed: KeyError: 'map'"),
        (lambda d: d["lowercase"]["map"].update({"zz": "a"}), r"text section is malformed: ValueError: invalid literal for int\(\) with base 16: 'zz'"),
        (lambda d: d["normalise"].update(remove=[[5, 1]]), r"text section is malformed: ValueError: remove must be sorted \[first, last\] code point ranges"),
        (lambda d: d["normalise"]["join"].update(min_letters=1), r"text section is malformed: ValueError: join needs min_letters >= 2"),
    ],
)
def test_a_malformed_text_section_is_refused_in_one_line(edit, message: str) -> None:
    data = json.loads(json.dumps(SPEC.to_dict()))
    edit(data)
    with pytest.raises(BundleError, match="^" + message):
        TextSpec.from_dict(data)


TEXTS = ["Free entry in 2 a wkly comp", "see you at 6", "WINNER!! claim your prize", "ok lor"]


def test_a_vocabulary_encodes_normalised_text_and_tokenizes_as_given() -> None:
    config = TokenizerConfig(num_words=None, lower=False, oov_token="<UNKNOWN>", maxlen=8)
    vocabulary = Vocabulary.fit(TEXTS, config, SPEC).with_ngrams(NgramHasher(NgramConfig(buckets=997, length=16)))
    obfuscated = ["F r e e entry in 2 a wkly comp", "Ｗｉｎｎｅｒ"]
    plain = ["Free entry in 2 a wkly comp", "Winner"]
    assert (vocabulary.encode(obfuscated) == vocabulary.encode(plain)).all()
    assert vocabulary.texts_to_sequences(["F r e e"]) != vocabulary.texts_to_sequences(["Free"])  # what MediaPipe's client sees
    assert vocabulary.normalise("F r e e") == "Free"
    data = vocabulary.to_dict()
    assert data["format"] == 2 and data["text"]["normalise"] is not None
    assert (Vocabulary.from_dict(json.loads(json.dumps(data))).encode(obfuscated) == vocabulary.encode(plain)).all()


def test_a_format_1_vocabulary_still_reads_and_lowers_with_this_python() -> None:
    vocabulary = Vocabulary.fit(TEXTS, TokenizerConfig(num_words=None, maxlen=8))
    data = vocabulary.to_dict()
    assert data["format"] == 1 and "text" not in data
    again = Vocabulary.from_dict(data)
    assert again.text is None and again.normalise("F R E E") == "F R E E"
    assert (again.encode(["FREE ENTRY"]) == vocabulary.encode(["free entry"])).all()


def test_a_vocabulary_fitted_with_the_spec_counts_normalised_words() -> None:
    vocabulary = Vocabulary.fit(["F R E E", "Ｆｒｅｅ", "free"], TokenizerConfig(num_words=None, lower=False), SPEC)
    assert vocabulary.word_index == {"FREE": 1, "Free": 2, "free": 3}
    assert np.array_equal(vocabulary.encode(["Ｆ Ｒ Ｅ Ｅ"])[0, -1:], [1])


def test_ranges_of() -> None:
    assert ranges_of([5, 1, 2, 3, 9, 10]) == ((1, 3), (5, 5), (9, 10))
