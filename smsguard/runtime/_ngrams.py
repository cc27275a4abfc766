"""The hashed character n-grams of a message ("the bag"): a fixed-width row of bucket ids that does not
depend on a vocabulary, so a word never seen in training still counts. One spec, here; `ids` is its
reference in plain Python, and the C extension (`_lstm_c.ngram_rows`) computes the same ids faster.

The spec, everything a port needs (`NgramHasher.to_dict` writes it into a bundle):
1. if `lower`, `text = lowercase(text)`: the vocabulary's pinned table (`_text.Lowercase`: Python's full Unicode
   lowering, 'İ' becomes 'i' and a combining dot), or, in a format 1 vocabulary, the running Python's `str.lower()`;
2. the words are `text.split()`: runs of characters that are not whitespace (`WHITESPACE`);
3. for each word in order, w = "<" + word + ">"; for each start position i over w's code points, for
   n = min_n..max_n ascending while i + n <= len(w): the id of w[i:i+n] is
   `zlib.crc32(gram.encode("utf-8", "surrogatepass")) % buckets + 1`;
4. an id is kept the first time it is seen; the row is the first `length` ids kept, then zeros.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smsguard._errors import BackendError, BundleError, ConfigError
from smsguard.runtime import _native
from smsguard.runtime._inputs import as_texts, is_int
from smsguard.runtime._manifest import NGRAM_FORMAT
from smsguard.runtime._text import WHITESPACE

MAX_BUCKETS = 2**31 - 2  # every id, `buckets` included, fits the int32 row
MAX_N = 16  # the C kernel's bound; longer grams say nothing a word id would not
WRAP = ("<", ">")  # marks a word's ends, so "at" alone and "at" inside "cat" are different grams
ORDER = "word, start, n"
HASH = "crc32"  # zlib's CRC-32 (IEEE 802.3): in every language's standard library
ENCODING = "utf-8"
ENCODING_ERRORS = "surrogatepass"  # a lone surrogate is encoded as its 3 bytes, not refused
_FIELDS = ("buckets", "min_n", "max_n", "length", "lower")  # the config, in the frozen spec
_CONSTANTS = {"hash": HASH, "encoding": ENCODING, "encoding_errors": ENCODING_ERRORS, "wrap": list(WRAP), "order": ORDER, "whitespace": WHITESPACE}


@dataclass(frozen=True)
class NgramConfig:
    """Which n-grams are hashed into how many buckets, and how many ids a message keeps."""

    buckets: int = 8192  # ids are 1..buckets; 0 is padding
    min_n: int = 2
    max_n: int = 5
    length: int = 512  # ids kept per message (the bag's fixed width), 0-padded at the end
    lower: bool = True  # str.lower() before splitting

    def __post_init__(self) -> None:
        if not is_int(self.buckets) or not 1 <= self.buckets <= MAX_BUCKETS:
            msg = f"buckets must be an integer from 1 to {MAX_BUCKETS}, found {self.buckets!r}"
            raise ConfigError(msg)
        if not (is_int(self.min_n) and is_int(self.max_n) and 1 <= self.min_n <= self.max_n <= MAX_N):
            msg = f"n-gram sizes must be integers with 1 <= min_n <= max_n <= {MAX_N}, found min_n={self.min_n!r}, max_n={self.max_n!r}"
            raise ConfigError(msg)
        if not is_int(self.length) or self.length < 1:
            msg = f"length must be a positive integer, found {self.length!r}"
            raise ConfigError(msg)
        if not isinstance(self.lower, bool):
            msg = f"lower must be true or false, found {self.lower!r}"
            raise ConfigError(msg)


class NgramHasher:
    """A message's n-gram ids under a config: `ids` for one text (the reference), `encode` for model input.

    `native` picks the implementation: None uses the C extension when it was built and the reference
    otherwise, False always the reference, True the extension or a BackendError. Both give the same ids.
    """

    def __init__(self, config: NgramConfig | None = None, *, native: bool | None = None, lowercase: Callable[[str], str] = str.lower) -> None:
        """`lowercase`: the vocabulary's pinned table (`Vocabulary` binds it, `with_lowercase`); `str.lower` alone."""
        self.config = config or NgramConfig()
        self.lowercase = lowercase
        if native is None:
            native = _native.available()
        elif native and not _native.available():
            raise BackendError(_native.NOT_BUILT)
        self.native = native
        self._rows: Any = _native.ngram_rows if native else None

    def ids(self, text: str) -> list[int]:
        """The ids of `text` in order, at most `length` of them: the spec, written to be read."""
        config = self.config
        if config.lower:
            text = self.lowercase(text)
        kept: list[int] = []
        seen: set[int] = set()
        for word in text.split():
            wrapped = WRAP[0] + word + WRAP[1]
            for start in range(len(wrapped)):
                for n in range(config.min_n, config.max_n + 1):
                    if start + n > len(wrapped):
                        break
                    gram = wrapped[start : start + n]
                    index = zlib.crc32(gram.encode(ENCODING, ENCODING_ERRORS)) % config.buckets + 1
                    if index not in seen:
                        seen.add(index)
                        kept.append(index)
                        if len(kept) == config.length:
                            return kept
        return kept

    def encode(self, texts: Iterable[str | bytes]) -> np.ndarray:
        """The bag for `texts`: int32 array of shape (len(texts), length), each row its ids then zeros."""
        return self.encode_checked(list(as_texts(texts)))

    def encode_checked(self, texts: list[str], out: np.ndarray | None = None) -> np.ndarray:
        """`encode` for a list that `as_texts` has already checked (the classifier's chunks); into `out`
        when given (returned): int32 (len(texts), length) with contiguous rows, such as the n-gram columns
        of a fused model's input (`Vocabulary.encode_checked`). Every element is written."""
        config = self.config
        if out is None:
            out = np.empty((len(texts), config.length), dtype=np.int32)
        if self._rows is None:
            for row, text in zip(out, texts, strict=True):
                ids = self.ids(text)
                row[: len(ids)] = ids
                row[len(ids) :] = 0
            return out
        # What C reads: an ASCII text as it is (C splits on ASCII whitespace and lowers ASCII letters, all
        # that str.split() and str.lower() do there); any other lowered here, split on Python's whitespace
        # and joined by spaces, since C knows no Unicode.
        lower = config.lower
        self._rows(
            [text if text.isascii() else joined_words(self.lowercase(text) if lower else text) for text in texts],
            config.buckets,
            config.min_n,
            config.max_n,
            lower,
            out,
        )
        return out

    def with_lowercase(self, lowercase: Callable[[str], str], native: bool | None = None) -> NgramHasher:
        """The same hasher lowering with `lowercase` (a vocabulary's pinned table); `native`: as it is by default."""
        return NgramHasher(self.config, native=self.native if native is None else native, lowercase=lowercase)

    def to_dict(self) -> dict[str, Any]:
        """The frozen spec: the config and every constant a port needs to compute the same ids."""
        config = self.config
        return {"format": NGRAM_FORMAT, **{name: getattr(config, name) for name in _FIELDS}, **_CONSTANTS, "wrap": list(WRAP)}  # a list of its own

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NgramHasher:
        """Read what `to_dict` wrote; raise BundleError naming the first field that is wrong."""
        if not isinstance(data, Mapping):
            msg = f"n-gram bag is malformed: expected a JSON object, found {type(data).__name__}"
            raise BundleError(msg)
        missing = [name for name in ("format", *_FIELDS, *_CONSTANTS) if name not in data]
        if missing:
            msg = f"n-gram bag is malformed: missing field {missing[0]!r}"
            raise BundleError(msg)
        if not is_int(data["format"]) or data["format"] != NGRAM_FORMAT:
            msg = f"n-gram bag format {data['format']!r} is not supported (this smsguard reads {NGRAM_FORMAT})"
            raise BundleError(msg)
        for name, value in _CONSTANTS.items():
            if data[name] != value:
                msg = f"n-gram bag field {name!r} is {data[name]!r}, this smsguard computes {value!r}"
                raise BundleError(msg)
        try:
            config = NgramConfig(**{name: data[name] for name in _FIELDS})
        except ConfigError as error:
            msg = f"n-gram bag is malformed: {error}"
            raise BundleError(msg) from None
        return cls(config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NgramHasher) and self.config == other.config

    def __hash__(self) -> int:
        return hash(self.config)

    def __repr__(self) -> str:
        return f"NgramHasher({self.config}, {'native' if self.native else 'python'})"


_JOIN_PIECE = 1 << 16  # characters: a longer text is split and joined a piece at a time (no list of all its words)


def joined_words(text: str) -> bytes:
    """What C reads of a text that is not ASCII: its words (split on Python's whitespace) joined by single spaces, in UTF-8.
    A long text a piece at a time, each piece ending at whitespace, so that its memory is a few times its size, not a
    string object per word (a 10 MB text of two million emoji words made 200 MB of them)."""
    if len(text) <= _JOIN_PIECE:
        return " ".join(text.split()).encode(ENCODING, ENCODING_ERRORS)
    out = bytearray()
    start = 0
    while start < len(text):
        end = min(start + _JOIN_PIECE, len(text))
        while end < len(text) and not text[end].isspace():  # a word is never cut in two
            end += 1
        piece = " ".join(text[start:end].split()).encode(ENCODING, ENCODING_ERRORS)
        if piece:
            out += b" " + piece if out else piece
        start = end
    return bytes(out)
