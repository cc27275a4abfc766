"""What MediaPipe's TextClassifier needs from a vocabulary, and the ids it computes, in one place.

MediaPipe Tasks (Android, iOS, web, Python) tokenizes a text model's input itself, from the model's
metadata: its regex tokenizer (`tasks/cc/text/tokenizers/regex_tokenizer.cc`, fed by
`calculators/tensor/regex_preprocessor_calculator.cc`) splits the text at every match of a delimiter
regex (RE2), skips empty pieces, keeps case, looks each piece up in a `token id` vocabulary file,
writes the `<UNKNOWN>` id for a piece it does not know, keeps the first L pieces for an input tensor
of shape [1, L], and pads after them with the `<PAD>` id. It reads the text up to its first NUL.

That is smsguard's Keras tokenizer exactly when the tokenizer keeps case, maps unknown words to an
OOV token named `<UNKNOWN>`, splits on single characters and keeps the first words of a long text;
`incompatibility` says, in one line, why a tokenizer is not such a one. The padding side does not
matter: the client model turns MediaPipe's trailing pads into the leading ones a pre-padded model
was trained on (`smsguard.export._mediapipe`).

A developer porting the tokenizer instead of using MediaPipe follows `client_ids`: it is the
specification, and a bundle's golden vectors are the test cases.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from smsguard.runtime._inputs import as_texts
from smsguard.runtime._vocabulary import TokenizerConfig, Vocabulary

PAD = "<PAD>"  # MediaPipe requires both in the vocabulary file; smsguard's padding id is 0
UNKNOWN = "<UNKNOWN>"
START = "<START>"  # optional in MediaPipe: when the file has it, its id goes first. smsguard never writes it
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}
_SPECIAL = set("\\]-^[")  # characters with a meaning inside an RE2 character class


def delimiters(config: TokenizerConfig) -> str:
    """The characters that end a word: `split`, then the filters, each once."""
    return "".join(dict.fromkeys(config.split + config.filters))


def incompatibility(config: TokenizerConfig) -> str | None:
    """None when MediaPipe's regex tokenizer reproduces `config` id for id; else why not, in one line."""
    if config.lower:
        return "it lowercases text and MediaPipe's regex tokenizer keeps case (train with --no-lower, or --preset mediapipe)"
    if config.oov_token != UNKNOWN:
        found = "drops unknown words" if config.oov_token is None else f"names its OOV token {config.oov_token!r}"
        return f"it {found}, and MediaPipe writes the id of {UNKNOWN!r} for an unknown word (train with --oov-token '{UNKNOWN}', or --preset mediapipe)"
    if len(config.split) != 1:
        return f"it splits on the string {config.split!r}; MediaPipe's delimiter pattern matches single characters"
    if config.truncating != "post":
        return "it keeps the last words of a long text and MediaPipe keeps the first ones (train with --truncating post)"
    ends = delimiters(config)
    for needed, why in ((" ", "the vocabulary file separates word and id with a space"), ("\n", "the vocabulary file holds one word per line")):
        if needed not in ends:
            return f"{needed!r} is not a delimiter, and {why}"
    for token in (PAD, START):
        if not any(char in ends for char in token):
            return f"a text could hold the word {token!r}, which MediaPipe reserves (keep '<' or '>' among the filters)"
    return None


def delimiter_pattern(config: TokenizerConfig) -> str:
    """The RE2 pattern for the metadata: one character class of every delimiter (Keras' defaults give
    ``[ !"#$%&()*+,\\-./:;<=>?@\\[\\\\\\]\\^_`{|}~\\t\\n]``)."""
    return "[" + "".join(_escape(char) for char in delimiters(config)) + "]"


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char in _SPECIAL:
        return "\\" + char
    if char.isprintable() and ord(char) < 0x7F:
        return char
    return f"\\x{{{ord(char):x}}}"


def vocab_file(vocabulary: Vocabulary) -> bytes:
    """MediaPipe's vocabulary file: `<PAD> 0`, then every word the model has an id for (the OOV token,
    `<UNKNOWN>`, among them), one `word id` a line, in id order."""
    words = vocabulary.to_dict()["word_index"]
    lines = [f"{PAD} 0", *(f"{word} {index}" for word, index in words.items())]
    return ("\n".join(lines) + "\n").encode("utf-8")


def client_text(text: str) -> str:
    """What MediaPipe tokenizes of `text`: the text up to its first NUL (its C++ reads a C string).

    The one difference from smsguard's runtime, which reads the whole text; a lone surrogate, which
    has no UTF-8 form, is refused by MediaPipe's Python API and scored as a character by smsguard."""
    return text.split("\0", 1)[0]


def client_ids(vocabulary: Vocabulary, texts: Iterable[str]) -> np.ndarray:
    """The int32 rows MediaPipe's TextClassifier feeds the model: each text up to its first NUL,
    tokenized by `vocabulary`, first maxlen ids kept, padded with 0 after them."""
    reason = incompatibility(vocabulary.config)
    if reason:
        msg = f"MediaPipe cannot reproduce this tokenizer: {reason}"
        raise ValueError(msg)
    sequences = vocabulary.texts_to_sequences(client_text(text) for text in as_texts(texts))
    out = np.zeros((len(sequences), vocabulary.config.maxlen), dtype=np.int32)
    for row, ids in zip(out, sequences, strict=True):
        kept = ids[: vocabulary.config.maxlen]
        row[: len(kept)] = kept
    return out


def pre_padded(ids: np.ndarray) -> np.ndarray:
    """Rows padded after their ids, as MediaPipe gives them, turned into rows padded before them: what
    the client model's parameter-free prefix computes, `out[j] = in[(j + k) % L]` with k ids in the row."""
    ids = np.asarray(ids)
    length = ids.shape[1]
    k = np.count_nonzero(ids, axis=1)[:, None]
    return np.take_along_axis(ids, (np.arange(length)[None, :] + k) % length, axis=1)
