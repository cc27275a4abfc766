"""`TrainConfig`: every setting of a training run, one field per `smsguard train` flag, and the named
presets (`--preset`) that set many of them at once."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from smsguard._enum import TextEnum
from smsguard.runtime import DEFAULT_MAXLEN, ConfigError, InputLayout, NgramConfig, Side, TokenizerConfig
from smsguard.train._evasion import Family, parse_families


class SplitKind(TextEnum):
    """How messages are drawn into the train, validation and test parts."""

    STRATIFIED = "stratified"  # at random, the same spam share (and, with several files, the same file shares) in each
    CAMPAIGN = "campaign"  # near-duplicates kept together (campaigns), whole groups drawn at random per label


DEFAULT_PRESET = "fused"
# The Keras tutorial as published: every field a preset sets, so `--preset tutorial` stays the tutorial
# whatever the defaults become.
TUTORIAL: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "num_words": 10000,
    "maxlen": 40,
    "oov_token": None,
    "lower": True,
    "padding": "pre",
    "truncating": "post",
    "embedding_dim": 128,
    "lstm_units": 32,
    "activation": "tanh",
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "spam_weight": 1.0,
    "early_stopping_patience": 0,
    "target_ham_fpr": None,
    "threshold_folds": 0,
    "ngram_buckets": 0,
    "ngram_min_n": 2,
    "ngram_max_n": 5,
    "ngram_length": 512,
    "ngram_lower": True,
    "ngram_dim": 32,
    "ngram_scale": 30.0,
    "normalise": False,
    "augment_copies": 0,
    "augment_rate": 0.33,
    "augment_families": "all",
}
# "fused", the default (the field defaults below), is two models in one, trained separately and their
# probabilities averaged: the "mediapipe" word LSTM (which the bundle's client model runs alone) and a bag of
# hashed character n-grams (`smsguard.runtime.NgramHasher`), which sees what the word ids cannot (numbers,
# new spellings, words unseen in training); its threshold flags at most 0.2% of ham on 5-fold out-of-fold
# predictions over train + validation; it trains on three obfuscated copies of every training message
# (benchmarks/results/evasion.md). benchmarks/results/accuracy.md measures it beside the others.
# "tuned" is the word LSTM alone, the best of benchmarks/search.py (benchmarks/results/search.md), judged on the
# validation parts: an OOV token, 64 LSTM units, early stopping, a 7,000-word table, lowercased words, and a
# threshold of 0.5 (a validation part holds about 450 ham: too few to place a 0.2% threshold).
# "mediapipe" is "tuned" with the tokenizer MediaPipe's TextClassifier reproduces from a model's metadata
# (Android, iOS, web, Python): cased words, unknown words as `<UNKNOWN>`. Its export adds the client models.
TUNED: dict[str, Any] = {"lower": True, "oov_token": "<OOV>", "ngram_buckets": 0, "target_ham_fpr": None, "threshold_folds": 0, "normalise": False, "augment_copies": 0}
MEDIAPIPE: dict[str, Any] = TUNED | {"lower": False, "oov_token": "<UNKNOWN>"}
PRESETS: dict[str, dict[str, Any]] = {"fused": {}, "tuned": TUNED, "tutorial": TUTORIAL, "mediapipe": MEDIAPIPE}
# What a run recorded before a field existed trained with: read back, a missing field takes this value, not
# today's default.
BEFORE_IT_EXISTED: dict[str, Any] = {"normalise": False, "augment_copies": 0}


@dataclass(frozen=True)
class TrainConfig:
    """Every field is a `smsguard train` flag (`num_words` -> `--num-words`). Defaults: the "fused"
    preset; build a config from a preset with `TrainConfig.from_preset`."""

    preset: str = DEFAULT_PRESET  # fused (the mediapipe word LSTM + a character n-gram branch, 5-fold threshold for 0.2% ham flagged), tuned (the word LSTM alone, benchmarks/results/search.md), tutorial, or mediapipe (tuned, cased, <UNKNOWN>: runs in MediaPipe's TextClassifier); flags given override it
    data: tuple[str, ...] = ()  # SMSSpamCollection or CSV files, repeat for several (exact duplicates across them dropped, metrics per file); default: $SMSGUARD_DATA, ../shared/data, download
    text_column: str | None = None  # CSV only; default: SMS, text, message, v2
    label_column: str | None = None  # CSV only; default: Label, label, v1, class
    seed: int = 42  # fixes the split, the initial weights and the batch order
    epochs: int = 15  # the most; early stopping usually ends sooner (tutorial: 5, no early stopping)
    batch_size: int = 32  # Keras' default, as in the tutorial
    learning_rate: float = 1e-3  # Adam's default
    num_words: int = 7000  # ids kept; every word of a 3,103-message training part (at most 6,777) gets one
    maxlen: int = DEFAULT_MAXLEN  # tokens per message; longer ones are cut
    oov_token: str | None = "<UNKNOWN>"  # words unseen in training become this token (id 1); None drops them, as the tutorial does
    lower: bool = False  # lowercase text before splitting it into words (Keras' default; tuned); MediaPipe's tokenizer keeps case
    padding: Side = Side.PRE  # where a short message's zeros go
    truncating: Side = Side.POST  # which end of a long message is cut: post keeps its first maxlen tokens
    embedding_dim: int = 128  # width of a word's learned vector
    lstm_units: int = 64  # size of the LSTM's state: the search kept 64 over the tutorial's 32 (benchmarks/results/search.md)
    activation: str = "tanh"  # the LSTM's cell activation; the .npz backends run tanh only
    dropout: float = 0.0  # LSTM input dropout while training; inference skips it, so exports are unchanged
    recurrent_dropout: float = 0.0  # LSTM recurrent-state dropout while training, likewise
    spam_weight: float = 1.0  # class weight: a spam message's share of the loss against a ham one
    early_stopping_patience: int = 2  # stop after this many epochs without a lower validation loss, keeping the best epoch; 0 = off
    split: SplitKind = SplitKind.STRATIFIED  # stratified (at random, by label and file), or campaign (near-duplicates kept in one part: a test part of campaigns never seen)
    test_size: float = 0.30  # share of the deduplicated messages held out for the final figures
    validation_size: float = 0.10  # share of the whole, taken from the rest, for thresholds
    target_ham_fpr: float | None = 0.002  # pick the lowest threshold meeting this ham FP rate; None: 0.5
    threshold_folds: int = 5  # with target_ham_fpr: choose it on out-of-fold predictions over train + validation, this many folds (0: on the validation part)
    ngram_buckets: int = 8192  # hashed character n-gram ids 1..buckets in a second branch beside the word LSTM (0: no such branch)
    ngram_min_n: int = 2  # the shortest character n-gram, counting the < > that wrap each word
    ngram_max_n: int = 5  # the longest
    ngram_length: int = 512  # n-gram ids kept per message, first seen first
    ngram_lower: bool = True  # lowercase text before taking its n-grams (independent of `lower`, the word tokenizer's)
    ngram_dim: int = 32  # the n-gram embedding's width while training (export folds it to one score per bucket)
    ngram_scale: float = 30.0  # the mean n-gram embedding is multiplied by this while training, so Adam moves the table fast enough
    normalise: bool = True  # before both branches: drop invisible characters, fold compatibility forms and look-alike letters, join spaced-out letters (vocab.json `text`)
    augment_copies: int = 3  # obfuscated copies of each training message added to the training part, labels kept (docs/explanation/evasion.md, the sweep of 0-4 copies); 0: none
    augment_rate: float = 0.33  # share of the eligible words an obfuscated copy changes (one letter each for a character family)
    augment_families: str = "all"  # the obfuscations copies are drawn from, one family per copy: all, or names separated by commas (lookalikes, spaced, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _paths(self.data))
        object.__setattr__(self, "split", _split_kind(self.split))
        if self.preset not in PRESETS:
            msg = f"unknown preset {self.preset!r}: expected one of {', '.join(PRESETS)}"
            raise ConfigError(msg)
        positive = ("epochs", "batch_size", "num_words", "maxlen", "embedding_dim", "lstm_units")
        for name in positive:
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1, found {getattr(self, name)}"
                raise ConfigError(msg)
        if self.learning_rate <= 0:
            msg = f"learning_rate must be positive, found {self.learning_rate}"
            raise ConfigError(msg)
        for name in ("dropout", "recurrent_dropout"):
            if not 0 <= getattr(self, name) < 1:
                msg = f"{name} must be in [0, 1), found {getattr(self, name)}"
                raise ConfigError(msg)
        if self.spam_weight <= 0:
            msg = f"spam_weight must be positive, found {self.spam_weight}"
            raise ConfigError(msg)
        if self.early_stopping_patience < 0:
            msg = f"early_stopping_patience must be 0 (off) or more epochs, found {self.early_stopping_patience}"
            raise ConfigError(msg)
        if self.target_ham_fpr is not None and not 0 <= self.target_ham_fpr < 1:
            msg = f"target_ham_fpr must be in [0, 1), found {self.target_ham_fpr}"
            raise ConfigError(msg)
        if self.threshold_folds < 0 or self.threshold_folds == 1:
            msg = f"threshold_folds must be 0 (choose on the validation part) or at least 2, found {self.threshold_folds}"
            raise ConfigError(msg)
        if self.ngram_dim < 1 or self.ngram_scale <= 0:
            msg = f"ngram_dim must be at least 1 and ngram_scale positive, found {self.ngram_dim} and {self.ngram_scale}"
            raise ConfigError(msg)
        self._check_augmentation()
        _ = self.ngrams  # validates the n-gram settings
        tokenizer = self.tokenizer  # validates padding, truncating, num_words
        object.__setattr__(self, "padding", tokenizer.padding)  # as Side, whether given as one or as text
        object.__setattr__(self, "truncating", tokenizer.truncating)

    def _check_augmentation(self) -> None:
        if self.augment_copies < 0:
            msg = f"augment_copies must be 0 (no obfuscated copies) or more, found {self.augment_copies}"
            raise ConfigError(msg)
        if not 0 < self.augment_rate <= 1:
            msg = f"augment_rate must be in (0, 1], found {self.augment_rate}"
            raise ConfigError(msg)
        _ = self.families  # validates the names

    @property
    def families(self) -> tuple[Family, ...]:
        """The obfuscation families of `augment_families`."""
        try:
            return parse_families(self.augment_families)
        except ValueError as error:
            msg = f"augment_families: {error}"
            raise ConfigError(msg) from None

    @property
    def tokenizer(self) -> TokenizerConfig:
        return TokenizerConfig(
            num_words=self.num_words,
            oov_token=self.oov_token,
            lower=self.lower,
            maxlen=self.maxlen,
            padding=self.padding,
            truncating=self.truncating,
        )

    @property
    def ngrams(self) -> NgramConfig | None:
        """The n-gram branch's featuriser settings; None without that branch (`ngram_buckets` 0)."""
        if not self.ngram_buckets:
            return None
        return NgramConfig(buckets=self.ngram_buckets, min_n=self.ngram_min_n, max_n=self.ngram_max_n, length=self.ngram_length, lower=self.ngram_lower)

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The network these settings train, for a vocabulary of `vocab_size` ids."""
        ngrams = self.ngrams
        return ModelConfig(
            vocab_size=vocab_size,
            maxlen=self.maxlen,
            embedding_dim=self.embedding_dim,
            lstm_units=self.lstm_units,
            activation=self.activation,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            learning_rate=self.learning_rate,
            ngram_buckets=ngrams.buckets if ngrams else 0,
            ngram_length=ngrams.length if ngrams else 0,
            ngram_dim=self.ngram_dim,
            ngram_scale=self.ngram_scale,
        )

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_PRESET, **overrides: Any) -> TrainConfig:
        """The preset's values, then `overrides` (the flags given on the command line) on top."""
        return cls(**(PRESETS.get(preset, {}) | overrides | {"preset": preset}))  # an unknown name fails in __post_init__

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A run's recorded config. A run from before presets has no "preset": it was the tutorial."""
        known = {f.name for f in fields(cls)}
        recorded = BEFORE_IT_EXISTED | {k: v for k, v in data.items() if k in known}
        return cls.from_preset(recorded.pop("preset", "tutorial"), **recorded)


def _paths(data: object) -> tuple[str, ...]:
    """`data` as given, or as a run recorded it: none, one path, or several."""
    if data is None:
        return ()
    if isinstance(data, str):
        return (data,)
    return tuple(str(path) for path in data)  # type: ignore[attr-defined]


def _split_kind(value: object) -> SplitKind:
    try:
        return SplitKind(value)
    except ValueError:
        msg = f"split must be one of {', '.join(k.value for k in SplitKind)}, found {value!r}"
        raise ConfigError(msg) from None


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 10000  # embedding rows: the tokenizer's num_words
    maxlen: int = DEFAULT_MAXLEN
    embedding_dim: int = 128
    lstm_units: int = 32
    activation: str = "tanh"  # the LSTM's cell activation
    dropout: float = 0.0  # training only: the unrolled twin and every export compute without it
    recurrent_dropout: float = 0.0
    learning_rate: float = 1e-3  # Adam's default
    ngram_buckets: int = 0  # n-gram ids 1..buckets (0: no n-gram branch, the word model alone)
    ngram_length: int = 0  # n-gram ids per message, after the word ids
    ngram_dim: int = 32  # the n-gram embedding's width (training only: export folds it to one score per bucket)
    ngram_scale: float = 30.0  # the mean n-gram embedding is multiplied by this: Adam then moves the table fast enough

    @property
    def fused(self) -> bool:
        return self.ngram_buckets > 0

    @property
    def layout(self) -> InputLayout:
        """The model's input: the word ids, then the n-gram ids of a fused model."""
        return InputLayout(self.maxlen, self.ngram_length if self.fused else 0)

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def words(self) -> ModelConfig:
        """The word model alone (a fused model's word branch)."""
        return replace(self, ngram_buckets=0, ngram_length=0)
