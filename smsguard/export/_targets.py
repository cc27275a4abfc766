"""The export targets: every model file a bundle can hold, declared once (file name, format, quantization,
variant, how to convert it, which backend checks it). Adding a model format is adding a target here.

Like Hugging Face Optimum's export configs: `export()` converts each target that applies to the run,
then checks each written model (`_check.py`), then writes the manifest from the records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smsguard.export._config import ExportConfig
from smsguard.export._onnx import convert_onnx, quantize_onnx
from smsguard.export._parity import FLOAT_ATOL
from smsguard.export._primed import PRIMED_STATE_NODES, keras_weights, write_npz, write_primed_onnx
from smsguard.export._quiet import converter_output
from smsguard.export._tflite import convert_tflite, with_layout
from smsguard.runtime import ModelFormat, Quantization, Side, Variant, Vocabulary
from smsguard.runtime.bundle import INPUT_NAME, OUTPUT_NAME, Form, model_file_name

if TYPE_CHECKING:
    from smsguard.train import ModelConfig


@dataclass
class ExportContext:
    """What the converters read: the trained model and its settings. The derived models are built once,
    on first use, and shared by the targets that need them."""

    model: Any  # the trained keras.Model
    model_config: ModelConfig
    vocabulary: Vocabulary
    calibration_ids: np.ndarray  # training messages for the full-integer calibration
    config: ExportConfig

    @cached_property
    def inference_model(self) -> Any:
        """The same weights without training-only dropout: what tf2onnx converts."""
        from smsguard.train import inference_copy

        return inference_copy(self.model, self.model_config)

    @cached_property
    def unrolled_model(self) -> Any:
        """The fixed-steps twin: a Keras 3 LSTM converts to builtin TFLite ops only unrolled."""
        from smsguard.train import inference_copy

        return inference_copy(self.model, self.model_config, unroll=True)

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        return keras_weights(self.model)

    @property
    def can_prime(self) -> bool:
        """The pad-primed models replay the pad state, which needs padding at the front and a tanh LSTM."""
        return self.vocabulary.config.padding is Side.PRE and self.model_config.activation == "tanh"


Converter = Callable[[ExportContext, Path, Path], None]  # (context, bundle folder being built, target path)


QUANTIZED_ATOL = 0.01  # a quantized model against its own output on the export machine: about 2 output steps of the int8 model, for CPUs whose integer kernels round differently


@dataclass(frozen=True)
class ExportTarget:
    format: ModelFormat
    quantization: Quantization
    variant: Variant
    title: str  # what the progress line calls it
    convert: Converter
    backend: str  # the backend export checks it in: the one a device runs it with
    primed: bool = False  # needs `ExportContext.can_prime`
    fused: bool = True  # converts a fused model (word and n-gram branches) too
    form: Form = Form.FOLDED  # an .npz model's table: compact ones are for packs (`smsguard pack`), never recommended

    @property
    def file_name(self) -> str:
        return model_file_name(self.format, self.quantization, self.variant, self.form)

    @property
    def atol(self) -> float:
        """How far the model may be from its reference: Keras' probability for a float32 model (the parity gate,
        and on a device), its own output on the export machine for a quantized one (on a device; at export a
        quantized model is held to Keras' labels instead). Recorded as the model's `tolerance` in the manifest."""
        return FLOAT_ATOL if self.quantization is Quantization.FLOAT32 else QUANTIZED_ATOL

    def applies_to(self, context: ExportContext) -> bool:
        return (context.can_prime or not self.primed) and (self.fused or not context.model_config.fused)


def _tflite(quantization: Quantization, title: str) -> Converter:
    def convert(context: ExportContext, folder: Path, path: Path) -> None:
        with converter_output(f"the model to TFLite ({title})"):
            model = convert_tflite(context.unrolled_model, quantization, context.calibration_ids)
        path.write_bytes(with_layout(model, context.model_config.layout))

    return convert


def _onnx(context: ExportContext, folder: Path, path: Path) -> None:
    opset = context.config.opset
    with converter_output(f"the model to ONNX (opset {opset})"):
        convert_onnx(context.inference_model, context.model_config.layout, INPUT_NAME, path, opset)


def _onnx_primed(context: ExportContext, folder: Path, path: Path) -> None:
    with converter_output("the pad-primed ONNX model"):
        write_primed_onnx(context.weights, context.model_config.maxlen, INPUT_NAME, OUTPUT_NAME, path, context.config.opset)


def _quantized_onnx(variant: Variant) -> Converter:
    """Dynamic int8 of the float32 ONNX target of the same variant, which comes earlier in TARGETS."""

    def convert(context: ExportContext, folder: Path, path: Path) -> None:
        source = folder / model_file_name(ModelFormat.ONNX, Quantization.FLOAT32, variant)
        keep_float = PRIMED_STATE_NODES if variant is Variant.PRIMED else ()
        with converter_output("the ONNX model to dynamic int8"):
            quantize_onnx(source, path, keep_float=keep_float)

    return convert


def _npz(quantize: bool, compact: bool = False) -> Converter:
    def convert(context: ExportContext, folder: Path, path: Path) -> None:
        write_npz(context.weights, context.model_config.maxlen, path, quantize, compact)

    return convert


_F32, _DYN8, _F16, _I8 = Quantization.FLOAT32, Quantization.DYNAMIC_INT8, Quantization.FLOAT16, Quantization.INT8
_TFLITE, _ONNX, _NPZ = ModelFormat.TFLITE, ModelFormat.ONNX, ModelFormat.NPZ
_FIXED, _PRIMED = Variant.FIXED, Variant.PRIMED

# In order: a target may read a file that an earlier one wrote (the int8 ONNX models quantize the float ones).
TARGETS: tuple[ExportTarget, ...] = (
    ExportTarget(_TFLITE, _F32, _FIXED, "TFLite float32", _tflite(Quantization.FLOAT32, "float32"), "litert"),
    ExportTarget(_TFLITE, _DYN8, _FIXED, "TFLite int8 dynamic range", _tflite(Quantization.DYNAMIC_INT8, "int8 dynamic range"), "litert"),
    ExportTarget(_TFLITE, _F16, _FIXED, "TFLite float16", _tflite(Quantization.FLOAT16, "float16"), "litert"),
    # Not for a fused model: its n-gram mean divides by the n-gram count, and an int8 DIV refuses a divisor at its
    # zero point (LiteRT's builtin kernel fails on one-word messages) while 1/count in int8 is off by up to 20%.
    ExportTarget(_TFLITE, _I8, _FIXED, "TFLite full integer int8", _tflite(Quantization.INT8, "full integer int8"), "litert", fused=False),
    ExportTarget(_ONNX, _F32, _FIXED, "ONNX float32", _onnx, "onnxruntime"),
    ExportTarget(_ONNX, _DYN8, _FIXED, "ONNX int8 dynamic", _quantized_onnx(_FIXED), "onnxruntime"),
    ExportTarget(_ONNX, _F32, _PRIMED, "ONNX float32, any length, pad-primed", _onnx_primed, "onnxruntime", primed=True),
    ExportTarget(_ONNX, _DYN8, _PRIMED, "ONNX int8 dynamic, any length, pad-primed", _quantized_onnx(_PRIMED), "onnxruntime", primed=True),
    ExportTarget(_NPZ, _F32, _PRIMED, "folded LSTM for NumPy, float32", _npz(quantize=False), "numpy", primed=True),
    ExportTarget(_NPZ, _I8, _PRIMED, "folded LSTM for NumPy, int8 table", _npz(quantize=True), "numpy", primed=True),
    # Half the bytes of the int8 table, for a pack where size counts (an app, a web page); folded when it loads.
    ExportTarget(_NPZ, _I8, _PRIMED, "LSTM for NumPy, compact: int8 embedding, folded at load", _npz(quantize=True, compact=True), "numpy", primed=True, form=Form.COMPACT),
)
