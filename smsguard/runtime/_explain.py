"""Why a message scored what it did: its words as spans of the text as written, each with what it does to the score.

A span is a word of the normalised text (a run of characters between whitespace, as the bag splits it) shown where
it is in the original: `start`/`end` are code point offsets of the text as given, so a spaced-out "F R E E" is one
span over the seven characters it was written with. Every figure is in points of the model's probability
(0.12 = twelve points); a fused model's score is the mean of its two branches, so each branch's figures are halved.

- `contribution`: how much the score drops when the span is taken out of the message, both branches at once. It is
  the sum of two exact parts, because the branches read separate inputs and the score is their mean:
  - `words`: the word branch's part, by occlusion: the model is run again on the word ids without the span's words
    (the bag as it was). This needs nothing but the model's input, so it works on every backend: one batch of
    (spans + 1) rows per message.
  - `ngrams`: the bag's part, computed, not run: the branch's logit is `bias + sum(scores[id]) / count`, so taking
    out the ids that occur only inside the span gives its new probability directly.
- `bag_share`: the span's share of the exact split of the bag's logit (each id carries `scores[id] / count`, spread
  over the places its n-grams occur), scaled into probability by the branch's secant; the shares of a message add
  up to exactly how far its bag moves the score from an empty bag's. Unlike `ngrams`, a long span of ordinary
  n-grams gets a large share here even when taking it out would change little, because the bag is an average.

Shares are small everywhere in a message the model is sure of (a score of 0.9996 drops little whatever one word is
taken out): no single word decides it. Occlusion figures do not add up to the score: two words that say the same
thing can each matter little alone.
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
    """A word of the message, `text[start:end]` (code point offsets of the text as given), and what it does to the
    score in points of probability: `contribution` = `words` + `ngrams` (the drop without it), and `bag_share`."""

    start: int
    end: int
    text: str
    words: float  # the word branch's part of the drop without the span (occlusion)
    ngrams: float  # the bag's part of the drop without the span (computed exactly)
    bag_share: float = 0.0  # the span's share of the exact split of the bag's part of the score

    log_odds: float = 0.0  # the same drop, in the log-odds of the score: readable where the score is near 0 or 1

    @property
    def contribution(self) -> float:
        return self.words + self.ngrams

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "contribution": round(self.contribution, 9), "log_odds": round(self.log_odds, 6),
                "words": round(self.words, 9), "ngrams": round(self.ngrams, 9), "bag_share": round(self.bag_share, 9)}


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
        """The k spans whose absence would lower the score the most, largest drop first; only those that do lower it."""
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
        ranges, span_of = _span_ranges(normalised, sources)
        row = vocabulary.encode_checked([text])
        maxlen = vocabulary.config.maxlen
        tokens = _kept_tokens(vocabulary, normalised)
        if not np.array_equal(_padded([index for index, _, _ in tokens], vocabulary), row[0, :maxlen]):
            msg = f"explain: the words found in {text!r} are not the model's word ids; please report this as a bug"
            raise RuntimeError(msg)
        owners = [next((span_of[at] for at in range(start, end) if span_of[at] >= 0), -1) for _, start, end in tokens]
        occluded = sorted(set(owners) - {-1})
        rows = np.repeat(row, len(occluded) + 1, axis=0)
        for k, span in enumerate(occluded):  # row k + 1: the word ids without those of one span, the bag as it was
            rows[k + 1, :maxlen] = _padded([index for (index, _, _), owner in zip(tokens, owners, strict=True) if owner != span], vocabulary)
        probabilities = self._run(rows).astype(np.float64)
        model_probability = float(probabilities[0])
        words = np.zeros(len(ranges), dtype=np.float64)
        words[occluded] = model_probability - probabilities[1:]
        ngrams, shares = np.zeros(len(ranges)), np.zeros(len(ranges))
        if self._branch is not None and ranges:
            self._bag(normalised, span_of, row[0, maxlen:], ngrams, shares)
        final = model_probability if adjust is None else float(adjust(probabilities[:1].astype(np.float32), row)[0])
        odds = _logit(model_probability) - _logit(model_probability - words - ngrams)
        spans = tuple(Span(a, b, text[a:b], float(w), float(n), float(s), float(o)) for (a, b), w, n, s, o in zip(ranges, words, ngrams, shares, odds, strict=True))
        return Explanation(text, final, self.decision.label(final), self.decision.threshold, spans, self.model, final - model_probability)

    def _bag(self, normalised: str, span_of: list[int], ids: np.ndarray, drops: np.ndarray, shares: np.ndarray) -> None:
        """Per span: the drop of the score without it in the bag, and its share of the bag's exact split."""
        branch, hasher = self._branch, self.vocabulary.ngrams
        assert branch is not None and hasher is not None
        present = ids[ids > 0]
        if not len(present):
            return
        config = hasher.config
        lowered, lowered_sources = lowered_with_offsets(hasher.lowercase, normalised) if config.lower else (normalised, list(range(len(normalised))))
        places = [(_gram_places(lowered[start:end], config), span_of[lowered_sources[start]]) for start, end in _words(lowered)]
        grams = np.concatenate([ids for ids, _ in places])
        where = np.concatenate([np.full(len(ids), span, dtype=np.intp) for ids, span in places])
        scores = branch.scores.astype(np.float64)
        bias, count = float(branch.bias), len(present)
        total = float(scores[present].sum())
        probability = _sigmoid(bias + total / count)
        kept = np.zeros(len(scores), dtype=bool)
        kept[present] = True
        occurrences, at = grams[kept[grams]], where[kept[grams]]  # every occurrence of a kept id (a later one keeps it in the bag)
        seen = np.bincount(occurrences, minlength=len(scores))
        base, moved = _sigmoid(bias), total / count
        slope = (probability - base) / moved if abs(moved) > 1e-9 else base * (1 - base)
        np.add.at(shares, at, 0.5 * slope * scores[occurrences] / count / seen[occurrences])  # halved: the score is the mean of two branches
        if count < config.length:  # the bag held every id: without a span, its ids that occur nowhere else are gone
            first, last = np.full(len(scores), len(drops)), np.full(len(scores), -1)
            np.minimum.at(first, occurrences, at)
            np.maximum.at(last, occurrences, at)
            alone = np.flatnonzero(kept & (first == last))
            lost_sum = np.bincount(first[alone], weights=scores[alone], minlength=len(drops))
            lost_count = np.bincount(first[alone], minlength=len(drops))
            logits = bias + np.where(count > lost_count, (total - lost_sum) / np.maximum(count - lost_count, 1), 0.0)
        else:  # a full bag takes in the next ids when a span goes: its first `length` ids without the span, one span at a time
            logits = np.array([bias + _bag_mean(grams[where != span], scores, config.length) for span in range(len(drops))])
        drops += 0.5 * (probability - 1.0 / (1.0 + np.exp(-logits)))


def _bag_mean(grams: np.ndarray, scores: np.ndarray, length: int) -> float:
    """The mean score of the bag of these n-gram ids: the first `length` distinct ones, in order (0 for none)."""
    distinct, first = np.unique(grams, return_index=True)
    kept = distinct[np.argsort(first)][:length]
    return float(scores[kept].mean()) if len(kept) else 0.0


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


def _logit(p: Any) -> Any:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


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
def _gram_places(word: str, config: NgramConfig) -> np.ndarray:
    """The ids of a word's n-grams, in the bag's order (`NgramHasher.ids`), repeats included."""
    wrapped = WRAP[0] + word + WRAP[1]
    grams = (wrapped[start : start + n] for start in range(len(wrapped)) for n in range(config.min_n, min(config.max_n, len(wrapped) - start) + 1))
    return np.fromiter((zlib.crc32(gram.encode(ENCODING, ENCODING_ERRORS)) % config.buckets + 1 for gram in grams), dtype=np.intp)


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


def _padded(ids: list[int], vocabulary: Vocabulary) -> np.ndarray:
    row = np.zeros(vocabulary.config.maxlen, dtype=np.int32)
    if ids:
        if vocabulary.config.padding is Side.PRE:
            row[len(row) - len(ids) :] = ids
        else:
            row[: len(ids)] = ids
    return row


def _span_ranges(normalised: str, sources: list[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """The spans as ranges of the original text (words of the normalised text, those whose ranges overlap merged),
    and the span of each normalised character (-1 for whitespace)."""
    ranges: list[tuple[int, int]] = []
    span_of = [-1] * len(normalised)
    for start, end in _words(normalised):
        first, last = sources[start], sources[end - 1] + 1
        if ranges and first < ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
        span_of[start:end] = [len(ranges) - 1] * (end - start)
    return ranges, span_of
