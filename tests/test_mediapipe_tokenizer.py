"""The MediaPipe tokenizer rules in the runtime: which tokenizers the client reproduces, the delimiter
pattern, the vocabulary file and the client's ids, against smsguard's Keras-exact tokenizer."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsguard.runtime._mediapipe import client_ids, delimiter_pattern, incompatibility, pre_padded, vocab_file
from smsguard.runtime._vocabulary import TokenizerConfig, Vocabulary

CLIENT = TokenizerConfig(lower=False, oov_token="<UNKNOWN>", num_words=50, maxlen=8)
TEXTS = ["Free entry in 2 a wkly comp to win FA Cup", "free ENTRY? ok... see you at 7", "U dun say so early hor", "WINNER!! claim £900 now"]


def test_the_mediapipe_tokenizer_is_compatible() -> None:
    assert incompatibility(CLIENT) is None
    assert incompatibility(TokenizerConfig(lower=False, oov_token="<UNKNOWN>", padding="post")) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lower": True}, "it lowercases text and MediaPipe's regex tokenizer keeps case (train with --no-lower, or --preset mediapipe)"),
        ({"oov_token": None}, "it drops unknown words, and MediaPipe writes the id of '<UNKNOWN>' for an unknown word"),
        ({"oov_token": "<OOV>"}, "it names its OOV token '<OOV>', and MediaPipe writes the id of '<UNKNOWN>'"),
        ({"split": "--"}, "it splits on the string '--'; MediaPipe's delimiter pattern matches single characters"),
        ({"truncating": "pre"}, "it keeps the last words of a long text and MediaPipe keeps the first ones"),
        ({"split": ",", "filters": "!\n"}, "' ' is not a delimiter, and the vocabulary file separates word and id with a space"),
        ({"filters": "!"}, "'\\n' is not a delimiter, and the vocabulary file holds one word per line"),
        ({"filters": "!\n"}, "a text could hold the word '<PAD>', which MediaPipe reserves"),
    ],
)
def test_each_incompatibility_is_named_in_one_line(changes: dict, reason: str) -> None:
    config = TokenizerConfig(**(CLIENT.__dict__ | changes))
    found = incompatibility(config)
    assert found is not None and found.startswith(reason) and "\n" not in found


def test_the_default_filters_give_the_measured_pattern() -> None:
    assert delimiter_pattern(CLIENT) == '[ !"#$%&()*+,\\-./:;<=>?@\\[\\\\\\]\\^_`{|}~\\t\\n]'
    assert delimiter_pattern(TokenizerConfig(filters="é\x00\u2028-", split=" ")) == "[ \\x{e9}\\x{0}\\x{2028}\\-]"


_text = st.text(alphabet=st.sampled_from(list("aAbB1 !-.<>[]\\^_\t\n\r\x0bé£ΣİÄ")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_text)
def test_splitting_at_the_pattern_gives_the_keras_words(text: str) -> None:
    """What MediaPipe's RE2 loop does (split at every match, skip empty pieces), with Python's re,
    whose character classes read this pattern as RE2 does."""
    config = TokenizerConfig(lower=False, oov_token="<UNKNOWN>")
    vocabulary = Vocabulary(config, {})
    assert [piece for piece in re.split(delimiter_pattern(config), text) if piece] == vocabulary.words(text)


def test_the_vocabulary_file_lists_pad_unknown_and_the_kept_words() -> None:
    vocabulary = Vocabulary.fit(TEXTS, dataclasses.replace(CLIENT, num_words=10))
    lines = vocab_file(vocabulary).decode("utf-8").splitlines()
    assert lines[:3] == ["<PAD> 0", "<UNKNOWN> 1", f"{next(w for w, i in vocabulary.word_index.items() if i == 2)} 2"]
    assert len(lines) == 10  # <PAD> plus ids 1..num_words-1
    assert len(vocabulary.word_index) > 10
    assert all(len(line.split(" ")) == 2 for line in lines)


@settings(max_examples=200, deadline=None)
@given(st.lists(_text, min_size=1, max_size=4))
def test_client_ids_rotated_are_the_model_input(texts: list[str]) -> None:
    vocabulary = Vocabulary.fit(TEXTS, CLIENT)
    ids = client_ids(vocabulary, texts)
    assert (pre_padded(ids) == vocabulary.encode(texts)).all()
    assert all((row[: np.count_nonzero(row)] != 0).all() for row in ids)  # padding after the words


def test_the_client_reads_a_text_up_to_its_first_nul() -> None:
    vocabulary = Vocabulary.fit(TEXTS, CLIENT)
    assert (client_ids(vocabulary, ["free entry\0 win FA Cup"]) == client_ids(vocabulary, ["free entry"])).all()
    assert not (vocabulary.encode(["free entry\0 win FA Cup"]) == vocabulary.encode(["free entry"])).all()


def test_client_ids_refuse_a_tokenizer_the_client_cannot_reproduce() -> None:
    with pytest.raises(ValueError, match=r"^MediaPipe cannot reproduce this tokenizer: it lowercases text"):
        client_ids(Vocabulary.fit(TEXTS, TokenizerConfig()), ["x"])
