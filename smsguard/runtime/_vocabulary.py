"""The tokenizer: Keras `Tokenizer` + `pad_sequences` semantics in pure Python, shared by training and
the device. One implementation, so the ids a device computes are the ids the model was trained on."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from smsguard._enum import TextEnum
from smsguard._errors import BackendError, BundleError, ConfigError
from smsguard.runtime import _native
from smsguard.runtime._contract import DEFAULT_MAXLEN, InputLayout
from smsguard.runtime._inputs import as_texts, is_int
from smsguard.runtime._manifest import VOCAB_FORMAT
from smsguard.runtime._ngrams import ENCODING, ENCODING_ERRORS, NgramHasher, joined_words
from smsguard.runtime._text import TextSpec

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'  # Keras' default: ASCII punctuation, tab, newline
_Word = TypeVar("_Word", str, bytes)  # a word as text, or as ASCII bytes on the fast path
_CHUNK = 2048  # characters tokenized at a time in a long text, so a 1 MB text stops after `maxlen` ids
LONG_PREPARED = 1 << 16  # characters: a longer non-ASCII text is encoded by the reference path, a chunk at a time, not
# prepared whole for C (normalised, lowered and encoded whole, a 10 MB text took 18 to 28 times its size)
LEGACY_VOCAB_FORMAT = 1  # no `text` section: the running Python's str.lower(), no normalisation
Lower = Callable[[str], str]


class Side(TextEnum):
    """Which end of a sequence: where padding goes, which end truncation cuts."""

    PRE = "pre"
    POST = "post"


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes a fixed-length row of token ids. Defaults are the tutorial's."""

    num_words: int | None = 10000  # ids 1..num_words-1 are kept, as in Keras; None keeps every word
    filters: str = DEFAULT_FILTERS  # characters replaced by `split` before splitting
    lower: bool = True
    split: str = " "
    oov_token: str | None = None  # None drops unknown words (the tutorial); a token gets id 1
    maxlen: int = DEFAULT_MAXLEN  # the model's fixed input length
    padding: Side = Side.PRE  # where zeros go in a short text
    truncating: Side = Side.POST  # which end of a long text is cut: "post" keeps the first maxlen ids

    def __post_init__(self) -> None:
        if self.num_words is not None and (not is_int(self.num_words) or self.num_words < 2):
            msg = f"num_words must be an integer of at least 2 or None, found {self.num_words!r}"
            raise ConfigError(msg)
        if not is_int(self.maxlen) or self.maxlen < 1:
            msg = f"maxlen must be a positive integer, found {self.maxlen!r}"
            raise ConfigError(msg)
        for name in ("padding", "truncating"):
            object.__setattr__(self, name, as_side(name, getattr(self, name)))
        if not isinstance(self.split, str) or not self.split:
            msg = f"split must be a non-empty string, found {self.split!r}"
            raise ConfigError(msg)


def as_side(name: str, value: object) -> Side:
    """`value` as a Side, or a ConfigError naming the setting."""
    try:
        return Side(value)
    except ValueError:
        msg = f"{name} must be 'pre' or 'post', found {value!r}"
        raise ConfigError(msg) from None


def text_to_word_sequence(text: str, config: TokenizerConfig, lower: Lower = str.lower) -> list[str]:
    """The words of `text`, exactly as `keras.preprocessing.text.text_to_word_sequence` gives them (`lower`: the
    pinned lowercase of a vocabulary's `TextSpec`; Keras uses `str.lower`)."""
    if config.lower:
        text = lower(text)
    table: dict[str, str | int | None] = dict.fromkeys(config.filters, config.split)
    text = text.translate(str.maketrans(table))
    return [word for word in text.split(config.split) if word]


def pad_sequences(sequences: Sequence[Sequence[int]], config: TokenizerConfig) -> np.ndarray:
    """Keras `pad_sequences(maxlen, padding, truncating, value=0)`, as an int32 array."""
    out = np.zeros((len(sequences), config.maxlen), dtype=np.int32)
    for row, ids in zip(out, sequences, strict=True):
        kept = ids[: config.maxlen] if config.truncating is Side.POST else ids[-config.maxlen :]
        if len(kept):
            if config.padding is Side.PRE:
                row[config.maxlen - len(kept) :] = kept
            else:
                row[: len(kept)] = kept
    return out


class Vocabulary:
    """A fitted tokenizer: its config and word index, frozen. `encode` turns texts into model input:
    each row the word ids (`maxlen`), then, for a fused model, the message's hashed character n-gram ids
    (`ngrams`, see `_ngrams.py`), so that every model keeps one int32 input of `width` columns.

    `text` (vocab.json format 2) pins what happens before: the lowercase table both branches use instead of
    the running Python's `str.lower()`, and the normaliser `encode` applies first when the model was trained
    with one (`_text.py`). A format 1 vocabulary has neither: `str.lower()`, no normalisation.

    Keras quirks kept on purpose (it is the reference): ties in word frequency rank in order of first
    appearance; an `oov_token` that also occurs as a word in the texts takes that word's rank, and
    id 1 is then unused; characters outside `filters` (for example '\\r' or a no-break space) are
    part of words; text is lowered before it is filtered and split, so 'İ' becomes two characters
    ('i' and a combining dot) and a final 'Σ' becomes 'ς' by what follows it, even across filters;
    lone surrogates and unassigned code points are characters like any other.

    `encode` computes an ASCII text's row in C (`featuriser`) and any other text's here, in Python, the
    reference; `native=False` computes every row here (the n-gram bag too), `native=True` requires the C one.
    """

    def __init__(self, config: TokenizerConfig, word_index: Mapping[str, int], ngrams: NgramHasher | None = None, text: TextSpec | None = None,
                 *, native: bool | None = None) -> None:
        if native and not _native.available():
            raise BackendError(_native.NOT_BUILT)
        self.native = _native.available() if native is None else native
        self.config = config
        self.text = text
        self._lower: Lower = text.lowercase if text is not None else str.lower
        self._normalise = text.normaliser if text is not None else None
        self.ngrams = None if ngrams is None else ngrams.with_lowercase(self._lower, native=self.native and ngrams.native)
        self.word_index = dict(word_index)
        self._table = str.maketrans(dict.fromkeys(config.filters, config.split))
        self._oov_id = self.word_index.get(config.oov_token) if config.oov_token is not None else None
        limit = config.num_words
        # What each known word becomes in a sequence: its id, or the OOV id past num_words; absent words
        # (unknown, or past num_words with no OOV token) become the OOV id or are dropped.
        self._lookup = {}
        for word, index in self.word_index.items():
            if not word:
                continue  # never looked up: the tokenizer drops empty words
            if not limit or index < limit:
                self._lookup[word] = index
            elif self._oov_id is not None:
                self._lookup[word] = self._oov_id
        self._cut_chars = _cut_chars(config, self._lower)
        self._cut = re.compile("[" + re.escape(self._cut_chars) + "]") if self._cut_chars else None
        self._ascii_table, self._ascii_split, self._ascii_lookup = _ascii_path(config, self._lookup, self._lower)

    @classmethod
    def fit(cls, texts: Iterable[str], config: TokenizerConfig | None = None, text: TextSpec | None = None) -> Vocabulary:
        """Rank words by count like `Tokenizer.fit_on_texts`: most frequent first, ties by first appearance;
        with `text`, of the texts as `encode` sees them (normalised, lowered by its table)."""
        config = config or TokenizerConfig()
        lower: Lower = text.lowercase if text is not None else str.lower
        counts: Counter[str] = Counter()
        for message in as_texts(texts):
            counts.update(text_to_word_sequence(text.normalise(message) if text is not None else message, config, lower))
        ranked = [word for word, _ in sorted(counts.items(), key=lambda item: item[1], reverse=True)]
        if config.oov_token is not None:
            ranked.insert(0, config.oov_token)
        # dict(zip(...)) as in Keras: a repeated key keeps its last rank.
        return cls(config, dict(zip(ranked, range(1, len(ranked) + 1), strict=True)), text=text)

    @property
    def layout(self) -> InputLayout:
        """What a row of model input holds: `maxlen` word ids, then the n-gram ids when there are any."""
        return InputLayout(self.config.maxlen, self.ngrams.config.length if self.ngrams else 0)

    @property
    def width(self) -> int:
        return self.layout.width

    def with_ngrams(self, ngrams: NgramHasher | None) -> Vocabulary:
        """This tokenizer with `ngrams` after the word ids (None: the word ids alone)."""
        return Vocabulary(self.config, self.word_index, ngrams, self.text, native=self.native)

    def reference(self) -> Vocabulary:
        """This vocabulary computing every row in Python (the n-gram bag too): the reference the C paths are held to."""
        return Vocabulary(self.config, self.word_index, None if self.ngrams is None else self.ngrams.with_lowercase(self._lower, native=False),
                          self.text, native=False)

    @property
    def size(self) -> int:
        """The number of ids the model's embedding needs: num_words, or every word plus padding."""
        return self.config.num_words or max(self.word_index.values(), default=0) + 1

    def words(self, text: str) -> list[str]:
        """The words of `text` as given (not normalised), lowered by the vocabulary's table when it lowers."""
        return text_to_word_sequence(text, self.config, self._lower)

    def normalise(self, text: str) -> str:
        """`text` as both branches see it: the vocabulary's normaliser applied, or `text` itself without one."""
        return text if self._normalise is None else self._normalise(text)

    def texts_to_sequences(self, texts: Iterable[str | bytes]) -> list[list[int]]:
        """Unpadded ids per text as given (not normalised), as `Tokenizer.texts_to_sequences` gives them."""
        return [self._segment_ids(text) for text in as_texts(texts)]

    def encode(self, texts: Iterable[str | bytes]) -> np.ndarray:
        """Model input for `texts`: int32 array of shape (len(texts), maxlen), padded and truncated."""
        return self.encode_checked(list(as_texts(texts)))

    def encode_checked(self, texts: list[str]) -> np.ndarray:
        """`encode` for a list that `as_texts` has already checked (the classifier's chunks): in C (`featuriser`) where
        it was built, else in Python (`encode_reference`); the same ids."""
        featuriser = self.featuriser
        inputs = None if featuriser is None else self.featuriser_input(texts)
        if featuriser is None or inputs is None:
            return self.encode_reference(texts)
        out = np.empty((len(texts), self.width), dtype=np.int32)
        featuriser.encode(inputs, out)
        return out

    def featuriser_input(self, texts: list[str]) -> list[str | tuple[bytes, bytes]] | None:
        """What the C featuriser takes for `texts`: an ASCII text as it is (C normalises it: on ASCII the normaliser is
        its join rule), any other prepared here as `encode_reference` prepares it, as a pair of UTF-8 bytes: the text its
        word ids are made of (normalised, lowered by the table when the tokenizer lowers), and its bag's input
        (normalised, lowered when the bag lowers, its words joined by single spaces: C splits on ASCII spaces only).
        None when a text is not ASCII and longer than `LONG_PREPARED`: `encode_reference` encodes it in bounded memory."""
        if all(map(str.isascii, texts)):
            return texts  # type: ignore[return-value]  # most batches of SMS: nothing to prepare (a list[str], only read)
        if any(len(text) > LONG_PREPARED and not text.isascii() for text in texts):
            return None
        return [text if text.isascii() else self._prepared(text) for text in texts]

    def _prepared(self, text: str) -> tuple[bytes, bytes]:
        if self._normalise is not None:
            text = self._normalise(text)
        bag = self.ngrams
        lowered = self._lower(text) if self.config.lower or (bag is not None and bag.config.lower) else text
        words = (lowered if self.config.lower else text).encode(ENCODING, ENCODING_ERRORS)
        return words, b"" if bag is None else joined_words(lowered if bag.config.lower else text)

    @functools.cached_property
    def featuriser(self) -> Any | None:
        """This vocabulary's rules in C (`_native.featuriser`): the rows `encode_reference` makes, bit for bit
        (tests/test_featurise.py), of the texts `featuriser_input` gives. None where C cannot make them: no extension
        (or `native=False`), a `split` or a filter that is not one ASCII character, a lowercase table that does not lower
        ASCII as str.lower() or lowers something into an ASCII capital, a normaliser that does more to ASCII text than
        its join rule, or a pure Python n-gram bag."""
        config, bag = self.config, self.ngrams
        join = None if self._normalise is None else self._normalise.ascii_join
        words = {word.encode(ENCODING, ENCODING_ERRORS): index for word, index in self._lookup.items()}
        ascii_lower = all(self._lower(chr(code)) == chr(code).lower() for code in range(128))
        capitals = self.text is not None and re.search("[A-Z]", "".join(self.text.lowercase.mapping.values())) is not None
        if (not self.native or self._ascii_table is None or not config.filters.isascii() or not ascii_lower or capitals
                or (self._normalise is not None and join is None) or max([*words.values(), self._oov_id or 0]) >= 2**31
                or config.maxlen > 100_000 or (bag is not None and not bag.native)):
            return None
        return _native.featuriser(
            self._ascii_table, ord(config.split), words, self._oov_id or 0, config.maxlen, config.padding is Side.PRE, config.truncating is Side.POST,
            None if join is None else ("".join(c for c in join.separators if c.isascii()).encode("ascii"), join.min_letters, join.max_separator_run),
            None if bag is None else (bag.config.buckets, bag.config.min_n, bag.config.max_n, bag.config.lower, bag.config.length),
        )

    def encode_reference(self, texts: list[str]) -> np.ndarray:
        """`encode_checked` in Python, every text (the n-gram bag in C when the hasher is native): the reference. A fused
        model's row is written in place: the word ids, then the n-gram ids into the same array."""
        if self._normalise is not None:
            texts = [self._normalise(text) for text in texts]
        if self.ngrams is None:
            return self.encode_words(texts)
        maxlen = self.config.maxlen
        out = np.zeros((len(texts), self.width), dtype=np.int32)
        self.encode_words(texts, out[:, :maxlen])
        self.ngrams.encode_checked(texts, out[:, maxlen:])
        return out

    def encode_words(self, texts: list[str], out: np.ndarray | None = None) -> np.ndarray:
        """The word ids alone of `texts` as given (normalise first for model input: `encode_checked` does),
        (len(texts), maxlen); into `out` when given (returned), which must hold zeros (the padding is not written)."""
        config = self.config
        maxlen = config.maxlen
        if out is None:
            out = np.zeros((len(texts), maxlen), dtype=np.int32)
        keep_first = config.truncating is Side.POST
        pad_front = config.padding is Side.PRE
        for position, text in enumerate(texts):
            ids = self._first_ids(text, maxlen) if keep_first else self._last_ids(text, maxlen)
            if ids:
                if pad_front:
                    out[position, maxlen - len(ids) :] = ids
                else:
                    out[position, : len(ids)] = ids
        return out

    def _segment_ids(self, text: str) -> list[int]:
        if self._ascii_table is not None and text.isascii():  # most SMS: one C pass lowers and filters
            return self._ids(text.encode("ascii").translate(self._ascii_table).split(self._ascii_split), self._ascii_lookup)
        if self.config.lower:
            text = self._lower(text)
        return self._ids(text.translate(self._table).split(self.config.split), self._lookup)

    def _ids(self, words: list[_Word], lookup: Mapping[_Word, int]) -> list[int]:
        get = lookup.get
        if self._oov_id is None:
            return [index for index in map(get, words) if index is not None]
        oov = self._oov_id
        return [get(word, oov) for word in words if word]

    def _first_ids(self, text: str, limit: int) -> list[int]:
        if len(text) <= _CHUNK or self._cut is None:
            return self._segment_ids(text)[:limit]
        ids: list[int] = []
        start = 0
        while start < len(text) and len(ids) < limit:
            found = self._cut.search(text, start + _CHUNK)
            end = found.start() if found else len(text)
            ids += self._segment_ids(text[start:end])
            start = end
        return ids[:limit]

    def _last_ids(self, text: str, limit: int) -> list[int]:
        if len(text) <= _CHUNK or self._cut is None:
            return self._segment_ids(text)[-limit:]
        pieces: list[list[int]] = []
        kept = 0
        end = len(text)
        while end > 0 and kept < limit:
            start = self._cut_before(text, end - _CHUNK)
            piece = self._segment_ids(text[start:end])
            pieces.append(piece)
            kept += len(piece)
            end = start
        return [index for piece in reversed(pieces) for index in piece][-limit:]

    def _cut_before(self, text: str, position: int) -> int:
        """The last cut at or before `position` (0 when there is none), looking back in widening windows
        so that a text with no cut character is scanned once, not once per piece."""
        width = _CHUNK
        low = position
        while low > 0:
            low = max(0, position - width)
            found = max(text.rfind(char, low, position + 1) for char in self._cut_chars)
            if found > 0:
                return found
            width *= 4
        return 0

    def to_dict(self) -> dict[str, Any]:
        """The frozen form written to vocab.json: config plus the word ids the model can see."""
        config = {key: str(value) if isinstance(value, Side) else value for key, value in asdict(self.config).items()}
        limit = self.config.num_words
        kept = {w: i for w, i in self.word_index.items() if not limit or i < limit or w == self.config.oov_token}
        return (
            {
                "format": VOCAB_FORMAT if self.text is not None else LEGACY_VOCAB_FORMAT,
                "tokenizer": {key: config[key] for key in ("filters", "lower", "split", "num_words", "oov_token")},
                "sequence": {key: config[key] for key in ("maxlen", "padding", "truncating")} | {"value": 0},
                "word_index": dict(sorted(kept.items(), key=lambda item: item[1])),
            }
            | ({"ngrams": self.ngrams.to_dict()} if self.ngrams else {})
            | ({"text": self.text.to_dict()} if self.text is not None else {})
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        """Read what `to_dict` wrote; raise BundleError naming the first field that is wrong."""
        try:
            if not is_int(data["format"]) or data["format"] not in (LEGACY_VOCAB_FORMAT, VOCAB_FORMAT):
                msg = f"vocabulary format {data['format']!r} is not supported (this smsguard reads {LEGACY_VOCAB_FORMAT} and {VOCAB_FORMAT}): upgrade smsguard"
                raise BundleError(msg)
            if (data["format"] == VOCAB_FORMAT) != ("text" in data):
                msg = f"vocabulary format {data['format']} must {'' if data['format'] == VOCAB_FORMAT else 'not '}have a 'text' section"
                raise BundleError(msg)
            tokenizer, sequence = data["tokenizer"], data["sequence"]
            config = TokenizerConfig(
                **{key: tokenizer[key] for key in ("num_words", "filters", "lower", "split", "oov_token")},
                **{key: sequence[key] for key in ("maxlen", "padding", "truncating")},
            )
            word_index = data["word_index"]
            if not all(isinstance(w, str) and is_int(i) and i >= 1 for w, i in word_index.items()):
                msg = "word_index must map words to positive integer ids"
                raise BundleError(msg)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            kind = next(c.__name__ for c in type(error).__mro__ if c.__module__ == "builtins")  # ConfigError: ValueError
            msg = f"vocabulary is malformed: {kind}: {error}"
            raise BundleError(msg) from None
        ngrams = None
        if data.get("ngrams") is not None:
            ngrams = NgramHasher.from_dict(data["ngrams"])
        text = TextSpec.from_dict(data["text"]) if "text" in data else None
        return cls(config, word_index, ngrams, text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.word_index)} words, {self.config})"


def _cut_chars(config: TokenizerConfig, lower: Lower) -> str:
    """Characters where a long text can be cut into pieces that tokenize exactly as the whole.

    A cut must fall on a word separator (a filtered character, or `split` itself when it is one
    character), and on one that cannot change how `str.lower` treats its neighbours: Greek capital
    sigma lowers differently at the end of a word, and some separators ('.', ':') do not end one for
    that rule. The sigma probe below keeps exactly the characters that do.
    """
    if len(config.split) != 1:
        return ""
    candidates = set(config.filters) | {config.split}
    return "".join(sorted(c for c in candidates if not config.lower or lower("AΣ" + c + "A")[1] == "ς"))


def _ascii_path(config: TokenizerConfig, lookup: Mapping[str, int], lower: Lower) -> tuple[bytes | None, bytes, dict[bytes, int]]:
    """The tokenizer for ASCII text as bytes: one 256-byte table that lowers (when `lower`) and then
    maps filters to `split`, exactly what `str.lower` then `str.translate` do to ASCII characters,
    and the word ids keyed by bytes. (None, ...) when `split` is not one ASCII character."""
    if len(config.split) != 1 or not config.split.isascii():
        return None, b"", {}
    filters = set(config.filters)
    table = bytearray(range(256))
    for code in range(128):
        char = lower(chr(code)) if config.lower else chr(code)
        if len(char) != 1 or not char.isascii():
            return None, b"", {}  # a hand-made lowercase table that takes ASCII elsewhere: the str path for all text
        table[code] = ord(config.split) if char in filters else ord(char)
    return bytes(table), config.split.encode("ascii"), {word.encode("ascii"): index for word, index in lookup.items() if word.isascii()}
