"""The tutorial's network: Embedding -> LSTM -> Dense(sigmoid), and its unrolled twin for TFLite; and the
fused network: that word model beside a bag of hashed character n-grams, their probabilities averaged.

A fused model keeps one int32 input (`INPUT_NAME`), `maxlen` word ids then `ngram_length` n-gram ids
(what `Vocabulary.encode` gives), so every format, backend, golden vector and parity gate stays one
tensor in, one out. Its two branches are models of their own, nested under the names `WORDS` and
`NGRAMS`, trained one after the other, each with its own early stopping (`smsguard.train._trainer`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from keras import ops

from smsguard.runtime import BundleError
from smsguard.runtime.bundle import INPUT_NAME, OUTPUT_NAME
from smsguard.train._config import ModelConfig

__all__ = ["NGRAMS", "WORDS", "MaskedMean", "ModelConfig", "build_model", "build_ngram_model", "build_word_model", "folded_ngrams", "fuse", "inference_copy", "load_model", "word_branch"]


WORDS, NGRAMS = "words", "ngrams"  # a fused model's branches (nested models)
NGRAM_EMBEDDING = "ngram_embedding"


@keras.saving.register_keras_serializable(package="smsguard")
class MaskedMean(keras.layers.Layer):
    """`scale` times the mean of the embedded ids that are not 0; 0 for a message with none (an empty text).

    Registered, so a saved model loads with `safe_mode` on: no Python travels in the file."""

    def __init__(self, scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, embedded, ids):
        mask = ops.cast(ops.not_equal(ids, 0), embedded.dtype)
        total = ops.sum(embedded * ops.expand_dims(mask, -1), axis=1)
        count = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        return total * (self.scale / count)

    def get_config(self) -> dict:
        return super().get_config() | {"scale": self.scale}


def build_model(config: ModelConfig, unroll: bool = False) -> keras.Model:
    """The word model, or the fused model when `config.fused`. `unroll=True` builds the same weights as
    fixed steps: the form TFLite converts with a dynamic batch."""
    if not config.fused:
        return build_word_model(config, unroll)
    return fuse(build_word_model(config, unroll), build_ngram_model(config), config)


def build_word_model(config: ModelConfig, unroll: bool = False) -> keras.Model:
    """Embedding -> LSTM -> Dense(sigmoid) over the `maxlen` word ids."""
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
    return _compiled(keras.Model(inputs, outputs, name="smsguard_lstm"), config)


def build_ngram_model(config: ModelConfig) -> keras.Model:
    """Embedding(buckets + 1) -> masked mean x scale -> Dense(sigmoid) over the `ngram_length` n-gram ids.
    Linear in the bag: export folds the table, the scale and the Dense layer into one score per bucket."""
    inputs = keras.Input(shape=(config.ngram_length,), dtype="int32", name="ngram_ids")
    x = keras.layers.Embedding(config.ngram_buckets + 1, config.ngram_dim, name=NGRAM_EMBEDDING)(inputs)
    x = MaskedMean(config.ngram_scale, name="masked_mean")(x, inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    return _compiled(keras.Model(inputs, outputs, name="smsguard_ngrams"), config)


def fuse(words: keras.Model, ngrams: keras.Model, config: ModelConfig) -> keras.Model:
    """One model over [word ids | n-gram ids]: the mean of the two branches' probabilities (late fusion)."""
    inputs = keras.Input(shape=(config.width,), dtype="int32", name=INPUT_NAME)
    words_out = keras.Model(words.inputs[0], words.outputs[0], name=WORDS)(inputs[:, : config.maxlen])
    ngrams_out = keras.Model(ngrams.inputs[0], ngrams.outputs[0], name=NGRAMS)(inputs[:, config.maxlen :])
    outputs = keras.layers.Average(name=OUTPUT_NAME)([words_out, ngrams_out])
    return _compiled(keras.Model(inputs, outputs, name="smsguard_fused"), config)


def word_branch(model: keras.Model) -> keras.Model:
    """The word model of a fused model (the model itself when it is not fused)."""
    try:
        return model.get_layer(WORDS)
    except ValueError:
        return model


def _compiled(model: keras.Model, config: ModelConfig) -> keras.Model:
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

    A fused model's n-gram branch is folded as well: its table, scale and Dense layer become one score per
    bucket (`folded_ngrams`), an Embedding(buckets + 1, 1), so the converted models carry 8,193 numbers
    for it instead of 262,176 and gather one float per n-gram instead of 32.
    """
    twin_config = replace(config, dropout=0.0, recurrent_dropout=0.0)
    if not config.fused:
        twin = build_model(twin_config, unroll=unroll)
        twin.set_weights(model.get_weights())
        return twin
    words = build_word_model(twin_config, unroll=unroll)
    words.set_weights(word_branch(model).get_weights())
    ngrams = build_ngram_model(replace(twin_config, ngram_dim=1, ngram_scale=1.0))
    scores, bias = folded_ngrams(model)
    ngrams.get_layer(NGRAM_EMBEDDING).set_weights([scores.reshape(-1, 1)])
    ngrams.get_layer(OUTPUT_NAME).set_weights([np.ones((1, 1), dtype=np.float32), bias])
    return fuse(words, ngrams, twin_config)


def folded_ngrams(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """A fused model's n-gram branch as (one float32 score per bucket, bias (1,)): logit = b + w . (scale x
    mean of E[id]) = b + mean of (scale x E[id] . w). The padding score is 0, so a sum over a whole row of
    ids is the sum over its n-grams."""
    ngrams = model.get_layer(NGRAMS)
    table = ngrams.get_layer(NGRAM_EMBEDDING).get_weights()[0].astype(np.float64)
    scale = ngrams.get_layer("masked_mean").scale
    kernel, bias = ngrams.get_layer(OUTPUT_NAME).get_weights()
    scores = scale * table @ kernel.reshape(-1).astype(np.float64)
    scores[0] = 0.0
    return scores.astype(np.float32), bias.reshape(-1).astype(np.float32)


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
