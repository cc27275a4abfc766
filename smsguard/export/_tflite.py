"""Keras -> TFLite (LiteRT) in four precisions, builtin ops only, with a dynamic batch size."""

from __future__ import annotations

from enum import Enum

import numpy as np


class TFLiteQuantization(str, Enum):
    FLOAT32 = "float32"
    DYNAMIC_INT8 = "dynamic_int8"  # int8 weights, float activations quantized on the fly
    FLOAT16 = "float16"  # float16 weights, float32 compute
    INT8 = "int8"  # full integer: weights and activations int8, calibrated on training messages


def convert_tflite(unrolled_model, quantization: TFLiteQuantization, calibration_ids: np.ndarray) -> bytes:
    """Convert the unrolled twin of the model (a Keras 3 LSTM converts only with fixed steps).

    `calibration_ids` (n, maxlen) int32 feeds the full-integer calibration, one message at a time.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(unrolled_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops: LiteRT alone runs it
    if quantization is not TFLiteQuantization.FLOAT32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization is TFLiteQuantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if quantization is TFLiteQuantization.INT8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([calibration_ids[i : i + 1]] for i in range(len(calibration_ids)))
    return converter.convert()
