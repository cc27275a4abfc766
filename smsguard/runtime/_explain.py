"""Why a message scored what it did: its words as spans of the text as written, each with its share of the score.

Two parts, one per branch of the model, both in points of the model's probability (0.12 = twelve points):

- the n-gram bag, exactly: the branch's logit is `bias + sum(scores[id]) / count`, so each n-gram id carries
  `scores[id] / count` of it. The shares are scaled into probability by the branch's own secant (how far its
  probability moved from the empty bag's, over how far its logit moved) and halved (the fused score is the mean
  of the branches): they add up to exactly how far the bag moves the score. Each id's share is spread over
  the places its n-grams occur, and each occurrence over the characters it covers, in the message as written
  (through the normaliser's and the lowercase table's offsets);
- the word branch, by occlusion: each word the model sees is taken out of its word ids, one at a time (the bag
  left as it is), and the whole model is run again; the share of a word is how much the score drops without
  it. This needs nothing but the model's input, so it works on every backend: one batch of a message's words
  + 1 rows. Occlusion shares do not add up to anything: two words that say the same thing can each matter
  little alone.

A span is a word of the normalised text (a run of characters between whitespace, as the bag splits it) shown
where it is in the original: `start`/`end` are code point offsets of the text as given, so a spaced-out
"F R E E" is one span over the seven characters it was written with.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from smsguard._errors import BundleError
from smsguard.runtime._contract import Decision
from smsguard.runtime._lstm import NgramBranch, read_meta
from smsguard.runtime._manifest import BundleFile, ModelFormat
from smsguard.runtime._ngrams import ENCODING, ENCODING_ERRORS, WRAP, NgramConfig
from smsguard.runtime._text import WHITESPACE
from smsguard.runtime._vocabulary import Side, Vocabulary

if TYPE_CHECKING:
    from smsguard.runtime.bundle import Bundle

_WHITESPACE = frozenset(WHITESPACE)


@dataclass(frozen=True)
class Span:
    """A word of the message, `text[start:end]` (code point offsets of the text as given), and its share of the
    score in points of probability: `ngrams` (exact) + `words` (occlusion) = `contribution`."""

    start: int
    end: int
    text: str
    ngrams: float
    words: float

    @property
    def contribution(self) -> float:
        return self.ngrams + self.words

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "contribution": round(self.contribution, 6),
                "ngrams": round(self.ngrams, 6), "words": round(self.words, 6)}


@dataclass(frozen=True)
class Explanation:
    """A message's score, its label, and its spans in text order."""

    text: str
    probability: float  # the score explained (a personal state's adjustment included, see `personal`)
    label: str
    threshold: float
    spans: tuple[Span, ...]
    model: str
    personal: float = 0.0  # how far the user's corrections moved the score, in points of probability (not split over spans)

    def top(self, k: int) -> list[Span]:
        """The k spans that push the score up the most (spam-ward), largest first; only those with a positive share."""
        ranked = sorted((s for s in self.spans if s.contribution > 0), key=lambda s: -s.contribution)
        return ranked[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "probability": round(self.probability, 6), "label": self.label, "threshold": self.threshold,
                "model": self.model, "personal": round(self.personal, 6), "spans": [s.to_dict() for s in self.spans]}


def without(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with the character ranges `spans` (start, end) taken out."""
    keep = np.ones(len(text), dtype=bool)
    for start, end in spans:
        keep[start:end] = False
    return "".join(char for char, kept in zip(text, keep.tolist(), strict=True) if kept)


class Explainer:
    """Explains messages for one loaded model: its vocabulary, its `run(ids)`, and a fused model's folded n-gram branch."""

    def __init__(self, vocabulary: Vocabulary, run: Any, decision: Decision, model: str, ngrams: NgramBranch | None) -> None:
        self.vocabulary = vocabulary
        self._run = run
        self.decision = decision
        self.model = model
        self._branch = ngrams if vocabulary.ngrams is not None else None

    def explain(self, text: str, adjust: Any = None) -> Explanation:
        """`adjust(probabilities, rows)`: a personal state's adjustment of the model's probabilities (None: none)."""
        vocabulary = self.vocabulary
        normalised, sources = _normalised(vocabulary, text)
        row = vocabulary.encode_checked([text])
        tokens = _kept_tokens(vocabulary, normalised)
        maxlen = vocabulary.config.maxlen
        if not np.array_equal(_padded([index for index, _, _ in tokens], vocabulary), row[0, :maxlen]):
            msg = f"explain: the words found in {text!r} are not the model's word ids; please report this as a bug"
            raise RuntimeError(msg)
        rows = np.repeat(row, len(tokens) + 1, axis=0)
        rows[1:, :maxlen] = _occluded([index for index, _, _ in tokens], vocabulary)
        probabilities = self._run(rows).astype(np.float64)
        model_probability = float(probabilities[0])
        chars_words = np.zeros(len(text))
        for (_, start, end), dropped in zip(tokens, probabilities[1:], strict=True):
            _spread(chars_words, sources, start, end, model_probability - float(dropped), normalised)
        chars_ngrams = np.zeros(len(text))
        if self._branch is not None:
            self._ngram_shares(normalised, sources, row[0, maxlen:], chars_ngrams)
        final = model_probability if adjust is None else float(adjust(probabilities[:1].astype(np.float32), row)[0])
        spans = _spans(text, normalised, sources, chars_ngrams, chars_words)
        return Explanation(text, final, self.decision.label(final), self.decision.threshold, spans, self.model, final - model_probability)

    def _ngram_shares(self, normalised: str, sources: list[int], ids: np.ndarray, out: np.ndarray) -> None:
        """Each n-gram id's exact share of the bag's part of the score, over the characters its n-grams cover."""
        branch, hasher = self._branch, self.vocabulary.ngrams
        assert branch is not None and hasher is not None
        present = ids[ids > 0]
        if not len(present):
            return
        logits = branch.scores[present].astype(np.float64) / len(present)
        bias = float(branch.bias)
        moved = float(logits.sum())
        base = _sigmoid(bias)
        slope = (_sigmoid(bias + moved) - base) / moved if abs(moved) > 1e-9 else base * (1 - base)
        share = np.zeros(len(branch.scores))
        share[present] = 0.5 * slope * logits  # halved: the fused score is the mean of the two branches
        config = hasher.config
        lowered, lowered_sources = lowered_with_offsets(hasher.lowercase, normalised) if config.lower else (normalised, list(range(len(normalised))))
        words = _words(lowered)
        if not words:
            return
        grams = [_gram_places(lowered[start:end], config) for start, end in words]
        occurrences = np.concatenate([g[0] for g in grams])
        first = np.concatenate([g[1] + start for g, (start, _) in zip(grams, words, strict=True)])
        last = np.concatenate([g[2] + start for g, (start, _) in zip(grams, words, strict=True)])
        # an id's share over its occurrences (a kept id may occur again after the bag's cut), each over its characters
        per_char = share[occurrences] / np.bincount(occurrences, minlength=len(share))[occurrences] / (last - first)
        steps = np.zeros(len(lowered) + 1)
        np.add.at(steps, first, per_char)
        np.add.at(steps, last, -per_char)
        np.add.at(out, np.asarray(sources)[np.asarray(lowered_sources, dtype=np.intp)], np.cumsum(steps[:-1]))


def ngram_branch(bundle: Bundle, entry: BundleFile) -> NgramBranch | None:
    """A fused model's folded n-gram branch: from its own file when it is an .npz, else from the bundle's .npz
    models (every model file of a bundle holds the same folded scores); None for a word model alone."""
    if bundle.vocabulary.ngrams is None:
        return None
    candidates = [entry] if entry.format is ModelFormat.NPZ else [e for e in bundle.models.values() if e.format is ModelFormat.NPZ]
    if not candidates:
        msg = f"bundle '{bundle.path}' has no .npz model to read the n-gram scores of its fused model '{entry.name}' from; explain needs one"
        raise BundleError(msg)
    path = bundle.model_path(candidates[0])
    with np.load(path, allow_pickle=False) as data:
        return NgramBranch.load(data, read_meta(data, path), path)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _normalised(vocabulary: Vocabulary, text: str) -> tuple[str, list[int]]:
    normaliser = vocabulary.text.normaliser if vocabulary.text is not None else None
    return normaliser.with_offsets(text) if normaliser is not None else (text, list(range(len(text))))


def _words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of characters that are not whitespace: the words of `str.split()`."""
    out, start = [], None
    for at, char in enumerate(text):
        if char in _WHITESPACE:
            if start is not None:
                out.append((start, at))
                start = None
        elif start is None:
            start = at
    if start is not None:
        out.append((start, len(text)))
    return out


@functools.lru_cache(maxsize=65536)
def _gram_places(word: str, config: NgramConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The id of each n-gram of a word in the bag's order (`NgramHasher.ids`), and the characters of the word it
    covers, [first, last): the wrap characters "<" ">" are no characters (alone, with min_n = 1: the one beside)."""
    wrapped = WRAP[0] + word + WRAP[1]
    ids, firsts, lasts = [], [], []
    for start in range(len(wrapped)):
        for n in range(config.min_n, min(config.max_n, len(wrapped) - start) + 1):
            ids.append(zlib.crc32(wrapped[start : start + n].encode(ENCODING, ENCODING_ERRORS)) % config.buckets + 1)
            first, last = max(start - 1, 0), min(start + n - 1, len(word))
            if last <= first:
                first, last = (0, 1) if start == 0 else (len(word) - 1, len(word))
            firsts.append(first)
            lasts.append(last)
    return np.asarray(ids, dtype=np.intp), np.asarray(firsts, dtype=np.intp), np.asarray(lasts, dtype=np.intp)


def _kept_tokens(vocabulary: Vocabulary, normalised: str) -> list[tuple[int, int, int]]:
    """(word id, start, end in the normalised text) of each word the model's row holds, in order: the tokenizer
    (`text_to_word_sequence`: lower, filters become `split`, split on it) with every character's place kept."""
    config = vocabulary.config
    text, sources = lowered_with_offsets(vocabulary._lower, normalised) if config.lower else (normalised, list(range(len(normalised))))
    translated, at_source = _mapped_with_offsets(text, sources, vocabulary, config.split)
    tokens: list[tuple[int, int, int]] = []
    at, split = 0, config.split
    while at <= len(translated):
        end = translated.find(split, at)
        end = len(translated) if end < 0 else end
        if end > at:
            index = vocabulary._lookup.get(translated[at:end], vocabulary._oov_id)
            if index is not None:
                tokens.append((index, at_source[at], at_source[end - 1] + 1))
        at = end + len(split)
    keep = config.maxlen
    return tokens[:keep] if config.truncating is Side.POST else tokens[-keep:]


def _mapped_with_offsets(text: str, sources: list[int], vocabulary: Vocabulary, split: str) -> tuple[str, list[int]]:
    """`text` with every character of the tokenizer's filters replaced by `split`, and each character's source."""
    cut = set(vocabulary.config.filters)
    if not cut.intersection(text):
        return text, sources
    if len(split) == 1:  # one character for one: the places stay
        return text.translate(vocabulary._table), sources
    chars: list[str] = []
    out: list[int] = []
    for char, source in zip(text, sources, strict=True):
        piece = split if char in cut else char
        chars.append(piece)
        out.extend([source] * len(piece))
    return "".join(chars), out


def lowered_with_offsets(lower: Any, text: str) -> tuple[str, list[int]]:
    """`lower(text)` with each character's source: a pinned table's own offsets, or (a format 1 vocabulary's
    `str.lower`) each character lowered alone, which differs from the whole only in a final sigma's form."""
    if hasattr(lower, "with_offsets"):
        return lower.with_offsets(text)
    lowered = lower(text)
    pieces = [lower(char) for char in text]
    sources = [at for at, piece in enumerate(pieces) for _ in piece]
    return lowered, sources if len(sources) == len(lowered) else [min(k, len(text) - 1) for k in range(len(lowered))]


def _occluded(ids: list[int], vocabulary: Vocabulary) -> np.ndarray:
    """Row k: the padded word ids without the k-th."""
    count, maxlen = len(ids), vocabulary.config.maxlen
    out = np.zeros((count, maxlen), dtype=np.int32)
    if count > 1:
        others = np.broadcast_to(np.asarray(ids, dtype=np.int32), (count, count))[~np.eye(count, dtype=bool)].reshape(count, count - 1)
        if vocabulary.config.padding is Side.PRE:
            out[:, maxlen - count + 1 :] = others
        else:
            out[:, : count - 1] = others
    return out


def _padded(ids: list[int], vocabulary: Vocabulary) -> np.ndarray:
    row = np.zeros(vocabulary.config.maxlen, dtype=np.int32)
    if ids:
        if vocabulary.config.padding is Side.PRE:
            row[len(row) - len(ids) :] = ids
        else:
            row[: len(ids)] = ids
    return row


def _spread(out: np.ndarray, sources: list[int], start: int, end: int, amount: float, normalised: str) -> None:
    """`amount` shared evenly over the characters of normalised[start:end] that are not whitespace (the spans')."""
    places = [at for at in range(start, end) if normalised[at] not in _WHITESPACE] or list(range(start, end))
    for at in places:
        out[sources[at]] += amount / len(places)


def _spans(text: str, normalised: str, sources: list[int], ngrams: np.ndarray, words: np.ndarray) -> tuple[Span, ...]:
    """The words of the normalised text as ranges of the original, overlapping ones merged, with their shares."""
    ranges: list[list[int]] = []
    for start, end in _words(normalised):
        first, last = sources[start], sources[end - 1] + 1
        if ranges and first < ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], last)
        else:
            ranges.append([first, last])
    return tuple(Span(first, last, text[first:last], float(ngrams[first:last].sum()), float(words[first:last].sum())) for first, last in ranges)
