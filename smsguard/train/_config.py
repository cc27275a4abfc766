"""`TrainConfig`: every setting of a training run, one field per `smsguard train` flag."""

from __future__ import annotations

from dataclasses import dataclass, fields

from smsguard.runtime._vocabulary import TokenizerConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every field is a `smsguard train` flag (`num_words` -> `--num-words`). Defaults: the tutorial's."""

    data: str | None = None  # SMSSpamCollection or CSV; default: $SMSGUARD_DATA, ../shared/data, download
    text_column: str | None = None  # CSV only; default: SMS, text, message, v2
    label_column: str | None = None  # CSV only; default: Label, label, v1, class
    seed: int = 42  # fixes the split, the initial weights and the batch order
    epochs: int = 5
    batch_size: int = 32  # Keras' default, as in the tutorial
    learning_rate: float = 1e-3  # Adam's default
    num_words: int = 10000
    maxlen: int = 40  # tokens per message; longer ones are cut
    oov_token: str | None = None  # None drops unknown words, as the tutorial does
    padding: str = "pre"
    truncating: str = "post"  # keeps a message's first maxlen tokens
    embedding_dim: int = 128
    lstm_units: int = 32
    activation: str = "tanh"
    test_size: float = 0.30  # share of the deduplicated messages held out for the final figures
    validation_size: float = 0.10  # share of the whole, taken from the rest, for thresholds
    target_ham_fpr: float | None = None  # pick the threshold meeting this ham FP rate on validation; else 0.5

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "num_words", "maxlen", "embedding_dim", "lstm_units")
        for name in positive:
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1, found {getattr(self, name)}"
                raise ValueError(msg)
        if self.learning_rate <= 0:
            msg = f"learning_rate must be positive, found {self.learning_rate}"
            raise ValueError(msg)
        if self.target_ham_fpr is not None and not 0 <= self.target_ham_fpr < 1:
            msg = f"target_ham_fpr must be in [0, 1), found {self.target_ham_fpr}"
            raise ValueError(msg)
        self.tokenizer  # validates padding, truncating, num_words

    @property
    def tokenizer(self) -> TokenizerConfig:
        return TokenizerConfig(
            num_words=self.num_words,
            oov_token=self.oov_token,
            maxlen=self.maxlen,
            padding=self.padding,
            truncating=self.truncating,
        )

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
