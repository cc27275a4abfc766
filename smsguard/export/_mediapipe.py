"""The client model: a TFLite model that MediaPipe's TextClassifier runs as is, tokenizing from metadata.

The graph takes MediaPipe's ids, shape [1, L], padded after the words; for a model trained on ids
padded before them (smsguard's default), a parameter-free prefix (NOT_EQUAL, CAST, SUM, ADD,
FLOOR_MOD, GATHER) rotates the k ids of the row to its end, `out[j] = in[(j + k) % L]`, and the
trained model follows, unchanged. The output is one score, the spam probability: the same number
every other export of the bundle gives (see README, "On a phone", for why not two classes).

`convert_mediapipe` writes one client model; `check_mediapipe` is the gate: it says why a run's
tokenizer cannot be reproduced by the client (then export writes no client model).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np

import smsguard
from smsguard._staging import write_atomic
from smsguard.export._tflite_metadata import TextClassifierMetadata, metadata_buffer, populate
from smsguard.runtime import SmsguardError, Vocabulary
from smsguard.runtime.mediapipe import LABELS_FILE, VOCAB_FILE, delimiter_pattern, incompatibility, vocab_file

INPUT_NAME = "token_ids"
OUTPUT_NAME = "probability"
POSITIVE_LABEL = "spam"
PROBE_NAME = "mediapipe.probe.tflite"
LICENSE = "MIT (smsguard); trained on the SMS Spam Collection v.1 (Almeida et al., 2011), CC BY 4.0"


class ClientQuantization(str, Enum):
    FLOAT32 = "float32"
    DYNAMIC_INT8 = "dynamic_int8"  # int8 weights, float activations: as model.dynamic_int8.tflite


class ClientModelError(SmsguardError):
    """The client model cannot be built, or is not what MediaPipe reads."""


def model_name(quantization: ClientQuantization) -> str:
    return f"model.mediapipe.{quantization.value}.tflite"


def check_mediapipe(vocabulary: Vocabulary) -> str | None:
    """None when a client model can be built for this vocabulary; else the one line export prints."""
    reason = incompatibility(vocabulary.config)
    return f"no MediaPipe client model: MediaPipe's TextClassifier cannot reproduce this run's tokenizer: {reason}" if reason else None


def convert_mediapipe(keras_model, model_config, vocabulary: Vocabulary, threshold: float, out_path: Path, quantization: ClientQuantization) -> None:
    """Write the client model of `keras_model` (trained on `vocabulary`) to `out_path`, with metadata
    naming `threshold` as the score from which a message is spam."""
    problem = check_mediapipe(vocabulary)
    if problem:
        raise ClientModelError(problem)
    from smsguard.train import inference_copy

    quantization = ClientQuantization(quantization)
    unrolled = inference_copy(keras_model, model_config, unroll=True)
    rotate = vocabulary.config.padding == "pre"
    model = _convert(lambda ids: unrolled(_rotated(ids) if rotate else ids, training=False), vocabulary.config.maxlen, quantization)
    _check_graph(model, vocabulary.config.maxlen, 1)
    metadata = _metadata(vocabulary, threshold, quantization, rotate)
    write_atomic(Path(out_path), populate(model, metadata_buffer(metadata), _files(vocabulary)))


def write_probe(vocabulary: Vocabulary, out_path: Path) -> None:
    """A model with the client models' metadata and prefix whose output is its input: the ids the
    model sees, as floats (exact below 2**24), one score per position. MediaPipe then shows its ids."""
    problem = check_mediapipe(vocabulary)
    if problem:
        raise ClientModelError(problem)
    import tensorflow as tf

    rotate = vocabulary.config.padding == "pre"
    model = _convert(lambda ids: tf.cast(_rotated(ids) if rotate else ids, tf.float32), vocabulary.config.maxlen, ClientQuantization.FLOAT32)
    _check_graph(model, vocabulary.config.maxlen, vocabulary.config.maxlen)
    metadata = _metadata(vocabulary, 0.5, ClientQuantization.FLOAT32, rotate)
    probe = TextClassifierMetadata(
        **{**metadata.__dict__, "name": "smsguard id probe", "description": "Outputs the token ids the model sees, as scores; for tests only."}
    )
    positions = "\n".join(str(j) for j in range(vocabulary.config.maxlen)).encode()
    write_atomic(Path(out_path), populate(model, metadata_buffer(probe), {VOCAB_FILE: vocab_file(vocabulary), LABELS_FILE: positions}))


def _rotated(ids):
    """[1, L] ids padded after their k ids -> padded before them: out[j] = in[(j + k) % L]."""
    import tensorflow as tf

    length = ids.shape[1]
    k = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1, keepdims=True)
    positions = tf.math.floormod(tf.range(length, dtype=tf.int32)[tf.newaxis, :] + k, length)
    return tf.gather(ids, positions, batch_dims=1)


def _convert(body, maxlen: int, quantization: ClientQuantization) -> bytes:
    import tensorflow as tf

    class Client(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, maxlen], tf.int32, name=INPUT_NAME)])
        def serve(self, token_ids):
            return {OUTPUT_NAME: body(token_ids)}

    module = Client()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # MediaPipe ships the builtin ops only
    if quantization is ClientQuantization.DYNAMIC_INT8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True  # as model.dynamic_int8.tflite
    return converter.convert()


def _check_graph(model: bytes, maxlen: int, outputs: int) -> None:
    """What MediaPipe's text classifier requires of the graph (text_model_utils.cc,
    text_preprocessing_graph.cc, classification_postprocessing_graph.cc): one subgraph, one int32
    input of shape [1, L], one float32 output."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    graph = root.Subgraphs(0)
    problems = []
    if root.SubgraphsLength() != 1:
        problems.append(f"{root.SubgraphsLength()} subgraphs, MediaPipe reads text models of one")
    inputs = [graph.Tensors(graph.Inputs(i)) for i in range(graph.InputsLength())]
    outputs_found = [graph.Tensors(graph.Outputs(i)) for i in range(graph.OutputsLength())]
    if len(inputs) != 1 or inputs[0].Type() != schema.TensorType.INT32 or inputs[0].ShapeAsNumpy().tolist() != [1, maxlen]:
        problems.append(f"the input is not one int32 tensor of shape [1, {maxlen}]")
    if len(outputs_found) != 1 or outputs_found[0].Type() != schema.TensorType.FLOAT32 or int(np.prod(outputs_found[0].ShapeAsNumpy())) != outputs:
        problems.append(f"the output is not one float32 tensor of {outputs} values")
    if problems:
        raise ClientModelError("the MediaPipe client model is not what MediaPipe reads: " + "; ".join(problems))


def _metadata(vocabulary: Vocabulary, threshold: float, quantization: ClientQuantization, rotate: bool) -> TextClassifierMetadata:
    maxlen = vocabulary.config.maxlen
    return TextClassifierMetadata(
        name="smsguard SMS spam filter",
        description=(
            f"Spam probability of an SMS, from an LSTM over its first {maxlen} words ({quantization.value}). "
            f"The single score is the probability that the message is spam (label '{POSITIVE_LABEL}'); the bundle "
            f"labels a message spam when the score is >= {threshold:.8g} (set the classifier's score threshold to it "
            "to get the spam category for those messages only). MediaPipe tokenizes the text from this metadata: "
            "cased words split at the delimiter pattern, unknown words as <UNKNOWN>, padded after the words"
            + ("; the model moves the padding before them, as it was trained." if rotate else ".")
        ),
        version=f"smsguard {smsguard.__version__}",
        author="smsguard",
        license=LICENSE,
        input_name="text",
        input_description=f"Token ids of the SMS: the first {maxlen} words, <PAD> (0) after them.",
        delim_regex_pattern=delimiter_pattern(vocabulary.config),
        vocab_name=VOCAB_FILE,
        output_name=OUTPUT_NAME,
        output_description=f"Probability that the message is spam; spam from {threshold:.8g} on.",
        labels_name=LABELS_FILE,
    )


def _files(vocabulary: Vocabulary) -> dict[str, bytes]:
    return {VOCAB_FILE: vocab_file(vocabulary), LABELS_FILE: POSITIVE_LABEL.encode()}
