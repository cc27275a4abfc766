"""Export: a trained run -> quantized TFLite and ONNX models, vocabulary, parity report and manifest.

Names load on first use, so reading `ExportConfig` (the CLI's flags) costs no TensorFlow."""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

_WHERE = {
    "ExportConfig": "_config",
    "export": "_exporter",
    "MAX_ACCURACY_DROP": "_parity",
    "MIN_LABEL_AGREEMENT": "_parity",
    "ModelParity": "_parity",
    "ParityError": "_parity",
    "ConversionError": "_quiet",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'smsguard.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsguard.export.{_WHERE[name]}"), name)
