"""The tutorial's network: Embedding -> LSTM -> Dense(sigmoid), and its unrolled twin for TFLite."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import keras

from smsguard.runtime import BundleError
from smsguard.runtime.bundle import INPUT_NAME, OUTPUT_NAME


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 10000  # embedding rows: the tokenizer's num_words
    maxlen: int = 40
    embedding_dim: int = 128
    lstm_units: int = 32
    activation: str = "tanh"  # the LSTM's cell activation
    dropout: float = 0.0  # training only: the unrolled twin and every export compute without it
    recurrent_dropout: float = 0.0
    learning_rate: float = 1e-3  # Adam's default


def build_model(config: ModelConfig, unroll: bool = False) -> keras.Model:
    """`unroll=True` builds the same weights as fixed steps: the form TFLite converts with a dynamic batch."""
    inputs = keras.Input(shape=(config.maxlen,), dtype="int32", name=INPUT_NAME)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(inputs)
    x = keras.layers.LSTM(
        config.lstm_units,
        activation=config.activation,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        unroll=unroll,
        name="lstm",
    )(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    model = keras.Model(inputs, outputs, name="smsguard_lstm")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def inference_copy(model: keras.Model, config: ModelConfig, unroll: bool = False) -> keras.Model:
    """The same weights, built without the training-only dropout: what the converters see.

    Dropout changes nothing at inference, but recurrent dropout makes Keras build the LSTM step by
    step, in which tf2onnx no longer finds an LSTM (it writes a Loop that ONNX Runtime may reject).
    """
    twin = build_model(replace(config, dropout=0.0, recurrent_dropout=0.0), unroll=unroll)
    twin.set_weights(model.get_weights())
    return twin


def load_model(path: Path) -> keras.Model:
    """Load a `.keras` file with safe_mode on: no pickled Python, no lambda layers."""
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as error:
        first = str(error).split(". ")[0].strip().rstrip(".")
        if "safe_mode" in str(error):
            msg = f"Keras model '{path}' holds Python code, which smsguard never loads ({first}); train it with `smsguard train`"
        else:
            msg = f"Keras model '{path}' cannot be loaded: {first}"
        raise BundleError(msg) from None
