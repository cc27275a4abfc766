"""The obfuscation generator (smsguard.train._evasion): what each family changes, that rate 0 changes nothing,
that a seed fixes the output, that training and evaluation draw on disjoint word lists; the obfuscated
training copies (labels kept); the augmentation settings; and one short augmented training run."""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from smsguard.cli import main
from smsguard.runtime import TextSpec, TokenizerConfig, Vocabulary
from smsguard.train import TrainConfig
from smsguard.train._augment import obfuscated, obfuscated_copies
from smsguard.train._evasion import (
    CHATTY_CLOSERS,
    CHATTY_OPENERS,
    CYRILLIC_GREEK,
    DIGITS,
    EMOJI,
    GOOD_SENTENCES,
    INVISIBLES,
    PUNCTUATION,
    SUBSTITUTES,
    SYMBOLS,
    Family,
    Use,
    evaluation_texts,
    obfuscation,
    parse_families,
)

SPAM = "WINNER!! As a valued network customer you have been selected to receive a £900 prize reward! To claim call 09061701461. Claim code KL341. Valid 12 hours only."
HAM = "Ok lar... Joking wif u oni... I'll call you when I get home, don't forget the milk x"
TEXTS = [SPAM, HAM, "", "   ", "FREE entry", "Ü ö 😀 中文 \u200b", "a b c", "Call FREE now!!!"]


def run(family: Family, text: str, seed: int = 0, rate: float = 1 / 3, use: Use = Use.EVALUATION) -> str:
    return obfuscation(family, use)(text, np.random.default_rng(seed), rate)


def same_length_changes(before: str, after: str) -> list[tuple[str, str]]:
    assert len(before) == len(after)
    return [(a, b) for a, b in zip(before, after, strict=True) if a != b]


@pytest.mark.parametrize("family", list(Family))
def test_rate_zero_is_the_identity(family: Family) -> None:
    for text in TEXTS:
        assert run(family, text, rate=0.0) == text


@pytest.mark.parametrize("family", list(Family))
def test_a_seed_fixes_the_output_and_another_seed_changes_it(family: Family) -> None:
    assert run(family, SPAM, seed=7) == run(family, SPAM, seed=7)
    assert run(family, SPAM, seed=7) != SPAM
    assert len({run(family, SPAM, seed=seed) for seed in range(5)}) > 1


@pytest.mark.parametrize(("family", "table"), [(Family.LOOKALIKES, CYRILLIC_GREEK), (Family.DIGITS, DIGITS), (Family.SYMBOLS, SYMBOLS)])
def test_one_letter_changes_in_about_a_third_of_the_words_it_applies_to(family: Family, table: dict[str, str]) -> None:
    words = SPAM.split(" ")
    changes = [same_length_changes(old, new) for old, new in zip(words, run(family, SPAM).split(" "), strict=True)]
    assert all(len(change) <= 1 for change in changes)
    assert all(new in table[old] for change in changes for old, new in change)
    eligible = sum(any(c in table for c in word) for word in words)
    assert 0.2 * eligible < sum(map(bool, changes)) < 0.5 * eligible


def test_lookalikes_are_cyrillic_or_greek() -> None:
    for old, new in same_length_changes(SPAM, run(Family.LOOKALIKES, SPAM, rate=1.0)):
        assert unicodedata.name(new).split()[0] in ("CYRILLIC", "GREEK"), (old, new)


def test_homoglyphs_mix_several_scripts_in_one_message() -> None:
    scripts = {unicodedata.name(new).split()[0] for _, new in same_length_changes(SPAM, run(Family.HOMOGLYPHS, SPAM, rate=1.0))}
    assert len(scripts) >= 5, scripts  # of CYRILLIC, GREEK, ARMENIAN, CHEROKEE, LATIN (small capitals), MATHEMATICAL, CIRCLED


def test_zero_width_characters_go_inside_words_only() -> None:
    after = run(Family.ZERO_WIDTH, SPAM)
    assert after != SPAM
    assert re.sub(f"[{INVISIBLES}]", "", after) == SPAM
    assert after.split(" ")[0].startswith("W") and not re.search(f"(^|\\s)[{INVISIBLES}]|[{INVISIBLES}](\\s|$)", after)


def test_full_width_forms_keep_the_spaces() -> None:
    after = run(Family.FULL_WIDTH, SPAM)
    changes = same_length_changes(SPAM, after)
    assert changes and all(new == chr(ord(old) + 0xFEE0) for old, new in changes)
    assert unicodedata.normalize("NFKC", after) == SPAM


def test_accents_are_a_base_letter_with_marks() -> None:
    after = run(Family.ACCENTS, SPAM, rate=1.0)
    stripped = "".join(c for c in unicodedata.normalize("NFD", after) if not unicodedata.combining(c)).replace("ø", "o").replace("Ø", "O")
    assert after != SPAM and stripped == SPAM
    assert any(unicodedata.combining(c) for c in after) and any(0xC0 <= ord(c) <= 0x17F for c in after)


def test_case_flips_letters_only() -> None:
    after = run(Family.CASE, SPAM)
    assert after != SPAM and after.lower() == SPAM.lower() and len(after) == len(SPAM)


def test_typos_keep_the_first_letter_and_change_a_word_by_one_edit() -> None:
    after = run(Family.TYPOS, SPAM, rate=1.0)
    words, changed = SPAM.split(), after.split()
    assert len(words) == len(changed) and words != changed
    for old, new in zip(words, changed, strict=True):
        assert old[0] == new[0] and abs(len(old) - len(new)) <= 1


def test_words_spaced_and_dotted_out() -> None:
    assert run(Family.SPACED, "Call FREE now, at 0800 on 2 lines!", rate=1.0) == "C a l l F R E E n o w, at 0800 on 2 l i n e s!"
    assert run(Family.DOTTED, "Call FREE now, at 0800 on 2 lines!", rate=1.0) == "C.a.l.l F.R.E.E n.o.w, at 0800 on 2 l.i.n.e.s!"


def test_punctuation_goes_inside_words() -> None:
    after = run(Family.PUNCTUATION, "Please call our customer service", rate=1.0)
    assert re.sub(f"[{re.escape(PUNCTUATION)}]", "", after) == "Please call our customer service"
    assert all(word[0] not in PUNCTUATION and word[-1] not in PUNCTUATION for word in after.split())


def test_vowels_dropped_inside_words_of_four_letters_or_more() -> None:
    assert run(Family.VOWELS, "Please call our customer service", rate=1.0) == "Plse cll our cstmr srvce"


def test_misspellings_keep_case_and_draw_on_their_half_of_the_list() -> None:
    words = run(Family.MISSPELLINGS, "FREE entry: Call now to claim", rate=1.0).split()
    assert words[0].isupper() and words[0].lower() in SUBSTITUTES["free"][1]
    assert words[1].endswith(":") and words[1][:-1] in SUBSTITUTES["entry"][1]
    assert words[2][0].isupper() and words[2].lower() in SUBSTITUTES["call"][1]
    assert words[3:5] == ["now", "to"] and words[5] in SUBSTITUTES["claim"][1]
    training = run(Family.MISSPELLINGS, "free", rate=1.0, use=Use.TRAINING)
    assert training in SUBSTITUTES["free"][0]


def test_emoji_pad_words() -> None:
    after = run(Family.EMOJI, SPAM)
    assert after != SPAM
    assert re.sub(" ?(" + "|".join(EMOJI) + ")", "", after) == SPAM


@pytest.mark.parametrize("use", list(Use))
def test_good_words_are_benign_sentences_appended(use: Use) -> None:
    after = run(Family.GOOD_WORDS, SPAM, use=use)
    assert after.startswith(SPAM + " ")
    added = after[len(SPAM) + 1 :]
    pool = GOOD_SENTENCES[use is Use.EVALUATION]
    assert re.fullmatch("(" + "|".join(map(re.escape, pool)) + ")( (" + "|".join(map(re.escape, pool)) + "))*", added)
    assert len(added.split()) >= len(SPAM.split()) / 3


def test_chatty_wraps_the_message() -> None:
    after = run(Family.CHATTY, SPAM)
    before, _, rest = after.partition(SPAM)

    def some_of(pool: tuple[str, ...]) -> str:
        one = "(" + "|".join(map(re.escape, pool)) + ")"
        return f"{one}( {one})*"

    assert re.fullmatch(some_of(CHATTY_OPENERS[1]) + " ", before) and re.fullmatch(" " + some_of(CHATTY_CLOSERS[1]), rest), after


def test_mixed_combines_levels() -> None:
    after = run(Family.MIXED, SPAM)
    assert after != SPAM and len(after.split()) > len(SPAM.split())


def test_training_and_evaluation_word_lists_are_disjoint() -> None:
    training = {w for halves in SUBSTITUTES.values() for w in halves[0]}
    evaluation = {w for halves in SUBSTITUTES.values() for w in halves[1]}
    assert not training & evaluation
    for lists in (GOOD_SENTENCES, CHATTY_OPENERS, CHATTY_CLOSERS):
        assert not set(lists[0]) & set(lists[1])


def test_evaluation_texts_are_seeded_per_family() -> None:
    texts = [SPAM, HAM]
    assert evaluation_texts(texts, Family.DIGITS, seed=0) == evaluation_texts(texts, Family.DIGITS, seed=0)
    assert evaluation_texts(texts, Family.DIGITS, seed=0) != evaluation_texts(texts, Family.DIGITS, seed=1)


def test_families_are_parsed_by_name() -> None:
    assert parse_families("all") == tuple(Family)
    assert parse_families("spaced, lookalikes,spaced") == (Family.SPACED, Family.LOOKALIKES)
    with pytest.raises(ValueError, match=r"^unknown obfuscation family 'bold': expected one of lookalikes, homoglyphs, "):
        parse_families("spaced,bold")


# ---- training copies -------------------------------------------------------------------------------------


def test_copies_keep_their_labels_and_say_where_they_came_from() -> None:
    texts = [SPAM, HAM, "hm", "FREE entry now"]  # "hm": nothing either family can change
    made, origin = obfuscated(texts, [Family.SPACED, Family.DIGITS], 1 / 3, copies=3, seed=5)
    again, again_origin = obfuscated(texts, [Family.SPACED, Family.DIGITS], 1 / 3, copies=3, seed=5)
    assert (again, again_origin.tolist()) == (made, origin.tolist())
    assert all(copy != texts[i] for copy, i in zip(made, origin, strict=True))  # a copy the family left alone is dropped
    assert set(origin.tolist()) <= {0, 1, 3} and len(made) <= 3 * len(texts)
    config = TrainConfig(augment_copies=3, augment_families="spaced,digits", augment_rate=1 / 3, seed=5)
    vocabulary = Vocabulary.fit(texts, TokenizerConfig(num_words=100, maxlen=10))
    labels = np.array([1, 0, 0, 1])
    copies = obfuscated_copies(config, vocabulary, texts, labels)
    assert copies is not None
    assert copies.origin.tolist() == origin.tolist() and copies.y.tolist() == labels[origin].tolist()
    assert np.array_equal(copies.x, vocabulary.encode(made))
    normalising = Vocabulary.fit(texts, TokenizerConfig(num_words=100, maxlen=10), TextSpec.of_this_python(normalise=True))
    undone = obfuscated_copies(TrainConfig(augment_copies=3, augment_families="spaced,lookalikes"), normalising, ["FREE ENTRY", "WINNER NOW"], labels[:2])
    assert undone is not None and len(undone.y) == 0  # every copy normalises back to its original: none is kept
    x, y = copies.added(vocabulary.encode(texts[:2]), labels[:2].astype(np.float32), np.array([0, 1]))
    assert len(x) == len(y) == 2 + int(np.isin(origin, [0, 1]).sum())
    assert obfuscated_copies(TrainConfig(augment_copies=0), vocabulary, texts, labels) is None


def test_presets_other_than_fused_never_augment_and_old_runs_read_back_without_it() -> None:
    for name in ("tutorial", "tuned", "mediapipe"):
        assert TrainConfig.from_preset(name).augment_copies == 0
    recorded = {k: v for k, v in TrainConfig().__dict__.items() if not k.startswith("augment_")}
    assert TrainConfig.from_dict(recorded).augment_copies == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("augment_copies", -1, "augment_copies must be 0 (no obfuscated copies) or more, found -1"),
        ("augment_rate", 0.0, "augment_rate must be in (0, 1], found 0.0"),
        ("augment_rate", 1.5, "augment_rate must be in (0, 1], found 1.5"),
        ("augment_families", "spaced,bold", "augment_families: unknown obfuscation family 'bold': expected one of " + ", ".join(f.value for f in Family)),
        ("augment_families", " , ", "augment_families: expected 'all' or obfuscation family names separated by commas, found ' , '"),
    ],
)
def test_augmentation_settings_are_checked(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrainConfig(**{field: value})


@pytest.mark.slow
def test_a_short_augmented_run_trains_on_copies_and_keeps_its_threshold_folds_honest(data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`smsguard train` with obfuscated copies, on 900 messages for one epoch and two threshold folds."""
    from smsguard.train import load_messages, read_run_config

    messages = load_messages(data_path)
    small = tmp_path / "small.csv"
    with small.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((text, "spam" if label else "ham") for text, label in list(zip(messages.texts, messages.labels, strict=True))[:900])
    out = tmp_path / "run"
    flags = ["--epochs", "1", "--threshold-folds", "2", "--augment-copies", "2", "--augment-families", "typos,digits,good-words", "--seed", "3"]
    assert main(["train", "--out", str(out), "--data", str(small), *flags]) == 0
    err = capsys.readouterr().err
    made = re.search(r"\* Obfuscated copies \(labels kept\): ([0-9,]+) of ([0-9,]+) training and validation messages x 2, 0.33 of their eligible words, 3 families\n", err)
    assert made, err
    pool = int(made[2].replace(",", ""))
    assert 1.2 * pool < int(made[1].replace(",", "")) <= 2 * pool  # most messages are changed by any of the three
    config, _ = read_run_config(out)
    assert (config.augment_copies, config.families, config.seed) == (2, (Family.TYPOS, Family.DIGITS, Family.GOOD_WORDS), 3)
    oof = json.loads((out / "out_of_fold.json").read_text())
    assert oof["folds"] == 2 and len(oof["labels"]) == len(oof["words"]) == len(oof["ngrams"]) == len(oof["fused"]) == pool
    fused = (np.array(oof["words"]) + np.array(oof["ngrams"])) / 2
    assert np.allclose(fused, oof["fused"], atol=1e-6)
