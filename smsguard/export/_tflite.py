"""Keras -> TFLite (LiteRT) in four precisions, builtin ops only, with a dynamic batch size."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from smsguard.runtime import InputLayout, Quantization
from smsguard.runtime.bundle import LAYOUT_METADATA


def convert_tflite(unrolled_model: Any, quantization: Quantization, calibration_ids: np.ndarray) -> bytes:
    """Convert the unrolled twin of the model (a Keras 3 LSTM converts only with fixed steps).

    DYNAMIC_INT8: int8 weights (one scale per matrix), float activations quantized on the fly; FLOAT16:
    float16 weights, float32 compute; INT8: full integer, weights and activations, calibrated on
    `calibration_ids` (n, maxlen) int32, one message at a time.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(unrolled_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops: LiteRT alone runs it
    if quantization is not Quantization.FLOAT32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization is Quantization.DYNAMIC_INT8:
        # One weight scale per matrix, not per output channel: FULLY_CONNECTED version 9 instead of 12,
        # which tflite-runtime 2.14 (the last release) can run. Measured on the tutorial model: the same
        # accuracy and speed (README, "Older runtime").
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if quantization is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if quantization is Quantization.INT8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([calibration_ids[i : i + 1]] for i in range(len(calibration_ids)))
    return converter.convert()


def min_runtime_version(model: bytes) -> str | None:
    """The oldest TFLite runtime (TensorFlow / tflite-runtime version) that runs every op version of
    `model`, as the converter computed it and stored in the model's `min_runtime_version` metadata."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    for i in range(root.MetadataLength()):
        metadata = root.Metadata(i)
        if metadata.Name() == b"min_runtime_version":
            data = root.Buffers(metadata.Buffer()).DataAsNumpy()
            return bytes(data).rstrip(b"\0").decode("ascii") or None
    return None


def with_layout(model: bytes, layout: InputLayout) -> bytes:
    """`model` with its input layout in a named metadata buffer (`LAYOUT_METADATA`), which the runtime reads."""
    from smsguard.export._tflite_metadata import with_metadata

    return with_metadata(model, LAYOUT_METADATA, json.dumps(layout.metadata(), sort_keys=True).encode("utf-8"))
